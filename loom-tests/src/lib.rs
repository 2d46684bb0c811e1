//! Helpers for the loom models in `tests/`; see README.md.
//!
//! Build and run with `RUSTFLAGS="--cfg loom"`; without it this crate is
//! empty and its tests compile to nothing.
#![cfg(loom)]

use loom::cell::UnsafeCell;

/// Plain (non-atomic) data that loom watches for races: a write on one thread
/// and a read on another must be ordered by happens-before, or loom fails
/// the model. This is how the models check that a wait or a drain really
/// synchronizes with the holders it waited for.
#[derive(Debug, Default)]
pub struct Data(UnsafeCell<usize>);

// SAFETY: every access goes through loom's `UnsafeCell`, which checks at run
// time that no two accesses race; sharing it is exactly what the models test.
unsafe impl Sync for Data {}

impl Data {
    /// Writes `value`.
    pub fn write(&self, value: usize) {
        // SAFETY: loom checks that this write does not race with any access.
        self.0.with_mut(|p| unsafe { *p = value })
    }

    /// Reads the value.
    pub fn read(&self) -> usize {
        // SAFETY: loom checks that this read does not race with any write.
        self.0.with(|p| unsafe { *p })
    }
}

/// Spawns the "holder" of most models: it writes `value` to `data`, then
/// drops `hold` (a token or guard), so the waiter that reads `data` after its
/// wait checks the happens-before edge the drop must create.
pub fn write_then_drop<H: Send + 'static>(
    data: &loom::sync::Arc<Data>,
    value: usize,
    hold: H,
) -> loom::thread::JoinHandle<()> {
    let data = data.clone();
    loom::thread::spawn(move || {
        data.write(value);
        drop(hold);
    })
}

/// Spawns a holder that clones `guard` (after the trigger, a hold taken on
/// a draining word in two RMWs), drops the original, writes 1 to `data` and
/// drops the clone: a drain must wait for the clone and see the write.
pub fn clone_then_write_then_drop(
    data: &loom::sync::Arc<Data>,
    guard: quiescent::Guard,
) -> loom::thread::JoinHandle<()> {
    let data = data.clone();
    loom::thread::spawn(move || {
        let clone = guard.clone();
        drop(guard);
        data.write(1);
        drop(clone);
    })
}

/// Runs the model and prints how many executions loom explored and how long
/// that took (visible with `--nocapture`; README.md quotes these figures).
fn check<F: Fn() + Sync + Send + 'static>(builder: loom::model::Builder, f: F) {
    #[allow(clippy::disallowed_types)] // a plain counter outside the model
    static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let start = std::time::Instant::now();
    let before = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    builder.check(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let before = quiescent::__loom_live_nodes();
        f();
        // Every group and latch the model made is freed by the end: a
        // reference paid twice, or never given back, leaves one alive.
        assert_eq!(
            quiescent::__loom_live_nodes(),
            before,
            "a quiescent node outlived the model: a reference was leaked"
        );
    });
    let executions = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
    let name = std::thread::current().name().unwrap_or("model").to_owned();
    eprintln!(
        "loom: {name}: {executions} executions in {:.2?} (preemption bound {:?})",
        start.elapsed(),
        builder_bound()
    );
}

fn builder_bound() -> Option<usize> {
    BOUND.with(|b| b.get())
}

thread_local! {
    static BOUND: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs a model with two threads (or fewer) exhaustively: no preemption bound.
pub fn exhaustive<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    BOUND.with(|b| b.set(None));
    check(builder, f);
}

/// Runs a three-thread model with a preemption bound (4 unless
/// `QUIESCENT_LOOM_BOUND` says otherwise); `QUIESCENT_LOOM_EXHAUSTIVE=1` lifts
/// the bound (see README.md for how long each takes).
pub fn bounded<F: Fn() + Sync + Send + 'static>(f: F) {
    bounded_at(4, f)
}

/// [`bounded`] with another default bound, for a model whose bound 4 does
/// not fit the CI budget (README.md says which, and what it costs).
pub fn bounded_at<F: Fn() + Sync + Send + 'static>(default_bound: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    let bound = std::env::var("QUIESCENT_LOOM_BOUND")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(default_bound);
    builder.preemption_bound = if std::env::var_os("QUIESCENT_LOOM_EXHAUSTIVE").is_none() {
        Some(bound)
    } else {
        None
    };
    BOUND.with(|b| b.set(builder.preemption_bound));
    check(builder, f);
}

/// Hides the messages of panics a model provokes on purpose (their message
/// starts with "deliberate"); loom runs a model thousands of times.
pub fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.starts_with("deliberate")) {
                default(info);
            }
        }));
    });
}

/// A waker that polls its future inline when woken, as a "run it now"
/// executor does: the poll runs inside the wake-up of what it waits for.
/// Its slot is a loom mutex, so the model sees the hand-over.
#[allow(missing_debug_implementations)] // holds a future of any type
pub struct InlineTask<F: std::future::Future> {
    slot: loom::sync::Mutex<Option<std::pin::Pin<Box<F>>>>,
    done: loom::sync::atomic::AtomicBool,
}

// SAFETY: the future is only touched under the loom mutex; `F: Send`.
unsafe impl<F: std::future::Future + Send> Sync for InlineTask<F> {}
// SAFETY: as above.
unsafe impl<F: std::future::Future + Send> Send for InlineTask<F> {}

impl<F: std::future::Future + Send + 'static> InlineTask<F> {
    /// Polls `fut` once with this waker; it must be pending.
    pub fn start(fut: F) -> std::sync::Arc<Self> {
        let task = std::sync::Arc::new(Self {
            slot: loom::sync::Mutex::new(Some(Box::pin(fut))),
            done: loom::sync::atomic::AtomicBool::new(false),
        });
        task.poll();
        assert!(!task.is_done(), "the future must be pending at first");
        task
    }

    fn poll(self: &std::sync::Arc<Self>) {
        let waker = std::task::Waker::from(self.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut slot = self.slot.lock().unwrap();
        if let Some(fut) = slot.as_mut() {
            if fut.as_mut().poll(&mut cx).is_ready() {
                *slot = None;
                self.done.store(true, loom::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Whether an inline poll completed the future.
    pub fn is_done(&self) -> bool {
        self.done.load(loom::sync::atomic::Ordering::SeqCst)
    }
}

impl<F: std::future::Future + Send + 'static> std::task::Wake for InlineTask<F> {
    fn wake(self: std::sync::Arc<Self>) {
        self.poll();
    }
}

/// A waker that panics when woken.
#[derive(Debug)]
pub struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("deliberate: a waker panicked");
    }
}
