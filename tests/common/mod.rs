//! Helpers shared by the integration tests.
#![allow(dead_code)]
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it has not finished
/// within `secs` seconds: a hang becomes a failure, never a stuck CI job.
/// A panic inside `f` is propagated.
pub(crate) fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let value = f();
        let _ = tx.send(());
        value
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().expect("test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(value) => value,
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test body did not finish within {secs}s"),
    }
}

/// Silences the default panic message for panics the test provokes on
/// purpose (their message starts with "deliberate"), keeping the output
/// readable; any other panic, an assertion's among them, is printed.
pub(crate) fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if !message.is_some_and(|m| m.starts_with("deliberate")) {
            eprintln!("{info}");
        }
    }));
}

/// How long to keep watching that something has *not* happened yet.
pub(crate) const SETTLE: Duration = Duration::from_millis(50);

/// tokio's multi-thread runtime with two workers (one per CI core).
pub(crate) fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A waker that runs its task inline, as a "poll it right now" executor does:
/// on `wake` it polls the future it owns (or drops it, if told to), on the
/// waking thread, before `wake` returns. Reentrant by design: the future is
/// polled (or dropped) from inside the wake-up of the very thing it waits for.
pub(crate) struct Inline<F: std::future::Future> {
    slot: std::sync::Mutex<Option<std::pin::Pin<Box<F>>>>,
    out: std::sync::Mutex<Option<F::Output>>,
    drop_on_wake: bool,
    woken: std::sync::atomic::AtomicUsize,
}

impl<F> Inline<F>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Polls `fut` once with this waker; it must be pending.
    pub(crate) fn start(fut: F, drop_on_wake: bool) -> std::sync::Arc<Self> {
        let this = std::sync::Arc::new(Self {
            slot: std::sync::Mutex::new(Some(Box::pin(fut))),
            out: std::sync::Mutex::new(None),
            drop_on_wake,
            woken: std::sync::atomic::AtomicUsize::new(0),
        });
        assert!(this.poll().is_none(), "the future must be pending at first");
        this
    }

    fn poll(self: &std::sync::Arc<Self>) -> Option<()> {
        let waker = std::task::Waker::from(self.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut slot = self.slot.lock().unwrap();
        let fut = slot.as_mut()?;
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => {
                *slot = None;
                drop(slot);
                *self.out.lock().unwrap() = Some(out);
                Some(())
            }
            std::task::Poll::Pending => None,
        }
    }

    /// The output, once an inline poll completed the future.
    pub(crate) fn take(&self) -> Option<F::Output> {
        self.out.lock().unwrap().take()
    }

    /// Whether the future was dropped (inline, or once completed).
    pub(crate) fn is_gone(&self) -> bool {
        self.slot.lock().unwrap().is_none()
    }

    /// How many times the waker was woken.
    pub(crate) fn woken(&self) -> usize {
        self.woken.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl<F> std::task::Wake for Inline<F>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: std::sync::Arc<Self>) {
        self.woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.drop_on_wake {
            let fut = self.slot.lock().unwrap().take();
            drop(fut); // the future's own Drop runs inside this wake-up
        } else {
            self.poll();
        }
    }
}

/// A waker that panics when woken ("deliberate", so `quiet_panics` hides it).
pub(crate) struct Panicking;

impl std::task::Wake for Panicking {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("deliberate: a waker panicked");
    }
}

/// Polls `fut` once with `waker`; it must be pending.
pub(crate) fn poll_pending<F: std::future::Future + Unpin>(fut: &mut F, waker: &std::task::Waker) {
    let mut cx = std::task::Context::from_waker(waker);
    assert!(std::pin::Pin::new(fut).poll(&mut cx).is_pending());
}

/// Runs the test `name` (this test binary's, exact) in a child process, where
/// `body` runs; here, in the parent, asserts that the child passed within
/// `secs` seconds. For scenarios whose failure is an abort (a panic out of a
/// function that cannot unwind, a double panic): the abort fails this test
/// instead of killing the harness, and a hang fails it too.
pub(crate) fn in_child(name: &str, secs: u64, body: impl FnOnce()) {
    const CHILD: &str = "QUIESCENT_TEST_CHILD";
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("child test process");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            let stderr = String::from_utf8_lossy(&out.stderr);
            panic!("child {name} did not finish within {secs}s\nstderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.success() && stdout.contains("1 passed"),
        "child {name} failed: {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
