//! Threads of [`Shutdown::spawn`](crate::Shutdown::spawn) and futures of [`Shutdown::track`](crate::Shutdown::track):
//! work started under a guard, and the wrapper that records a spawned
//! thread's panic.

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::panic::Location;
use std::thread::JoinHandle;
use std::time::Instant;

use super::futures::Tracked;
use super::guard::Guard;
use super::latch::{FailureRecord, Latch, SharedRecord};
use super::Shutdown;
use crate::core::hold::Hold;
use crate::core::sync::Arc;
use crate::mutant;
use crate::report::{Failure, SharedStr, ShutdownStarted};

/// This thread's spawn ([`Shutdown::spawn`](crate::Shutdown::spawn)), while its body runs.
pub(super) struct Spawned {
    /// The spawn guard's identity (`Extra::spawn`), while it lives (0 once
    /// it is dropped).
    pub(super) guard: u64,
    /// The failure records made while this thread unwinds (vital or named
    /// guards dropped by the panic): the panic's message goes into them.
    pub(super) records: Vec<SharedRecord>,
    /// The spawn guard's registration, when the guard was dropped by the
    /// panic: its name stays listed until its count, deferred to the
    /// wrapper, goes.
    pub(super) name: Option<u64>,
}

crate::core::sync::thread_local! {
    /// In a thread of `Shutdown::spawn`: its spawn (see [`Spawned`]).
    pub(super) static SPAWNED: RefCell<Option<Spawned>> = RefCell::new(None);
}

/// The body of a thread of `Shutdown::spawn` / `spawn_named`: `f` runs with
/// `guard` under [`run_recording_panic`].
pub(super) fn spawn_body<F, T>(
    mut guard: Guard,
    name: Option<String>,
    site: &'static Location<'static>,
    f: F,
) -> impl FnOnce() -> T + Send + 'static
where
    F: FnOnce(Guard) -> T + Send + 'static,
    T: Send + 'static,
{
    let id = guard.mark_spawned();
    let latch = guard.hold.to_arc();
    // Mutant: the extra count this replaced, which every view saw.
    let hidden = mutant::is("spawn-hidden-count").then(|| guard.hold.clone());
    move || {
        let result = run_recording_panic(id, latch, name, site, move || f(guard));
        drop(hidden);
        result
    }
}

/// Starts a thread of `Shutdown::spawn`, named `name` if the OS can take it
/// (no NUL byte). Panics if the OS cannot start a thread, as
/// `std::thread::spawn` does.
pub(super) fn spawn_thread<T: Send + 'static>(
    name: Option<&str>,
    body: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let mut builder = std::thread::Builder::new();
    if let Some(name) = name.filter(|name| !name.contains('\0')) {
        builder = builder.name(name.to_owned());
    }
    builder.spawn(body).expect("failed to spawn thread")
}

/// Runs a spawned thread's body. If it panics, records the panic's message
/// as a failure (in the records the vital and named guards of this thread
/// made while it unwound, or as a new one on the spawning latch), then
/// resumes the panic, so that the `JoinHandle` still reports it.
///
/// The spawn guard is the thread's only count: no extra one, so every view
/// counts one guard per thread. If the panic drops it, its release is
/// deferred to here (`Hold::defer_release`), after the record is made: the
/// spawning latch (and its ancestors) cannot drain (and cache a report)
/// while the panic's message is still on its way. Two cases end the
/// deferral early ([`settle_deferred`]): the body catches the panic itself,
/// or the unwinding waits for a drain (a `Drop` that shuts its latch down
/// would otherwise wait for itself). A vital guard of another latch has no
/// deferral: that latch may drain while this thread is still unwinding, and
/// if a report shows the record first, the record keeps "panicked" (its text
/// never changes once shown, so every report of it agrees).
pub(super) fn run_recording_panic<T>(
    guard: u64,
    latch: Arc<Latch>,
    name: Option<String>,
    site: &'static Location<'static>,
    body: impl FnOnce() -> T,
) -> T {
    SPAWNED.with(|spawned| {
        *spawned.borrow_mut() = Some(Spawned {
            guard,
            records: Vec::new(),
            name: None,
        })
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    // The spawn guard's count, if the panic dropped it: still held, so the
    // drain waits for the message.
    let deferred = Hold::<Latch>::take_deferred();
    let spawned = SPAWNED.with(|spawned| spawned.borrow_mut().take());
    if let (Err(payload), Some(spawned)) = (&result, &spawned) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .map_or(SharedStr::from_static("panicked"), SharedStr::from);
        let mine = |record: &SharedRecord| {
            latch
                .failures
                .lock()
                .iter()
                .any(|r| std::sync::Arc::ptr_eq(r, record))
        };
        for record in &spawned.records {
            let mut record = record.lock();
            if !record.shown {
                record.failure.reason = message.clone();
            }
        }
        if !spawned.records.iter().any(mine) {
            latch.push_failure(FailureRecord {
                at: Instant::now(),
                failure: Failure {
                    name: name.map(SharedStr::from),
                    latch: latch.path().into(),
                    site,
                    reason: message,
                },
                shown: false,
            });
        }
    }
    if let Some(hold) = deferred {
        // A waker that panics as this release announces the drain does not
        // replace the thread's own outcome (its message was printed by the
        // panic hook when it happened): every other waiter is woken and
        // every count given back before the panic comes here.
        let name = spawned.and_then(|spawned| spawned.name);
        let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            release_deferred(hold, name);
        }));
        if let Err(payload) = released {
            // Its payload may panic when dropped, too.
            crate::core::wakers::discard(payload);
        }
    }
    drop(latch);
    match result {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Gives back a spawn guard's deferred count, counted as panicked, its
/// name first (a straggler list never names a guard already released).
fn release_deferred(hold: Hold<Latch>, name: Option<u64>) {
    if let Some(id) = name {
        hold.node().registry.lock().remove(id);
    }
    hold.release_panicked();
}

/// Ends this thread's deferral early (see [`run_recording_panic`]): when the
/// thread is no longer unwinding (its body caught the panic that dropped the
/// spawn guard, so no message is coming), or when `waiting` (the caller is
/// about to wait for a drain, or to look at who holds one open, and the
/// deferred count must not hold it up or be seen). The panic's message, if
/// one comes, still reaches the records no report has shown yet.
///
/// Called by the drains (blocking and async), `count`, `holders` and the
/// straggler snapshot. One thread-local read when nothing is deferred.
pub(super) fn settle_deferred(waiting: bool) {
    // Mutant: the deferral never ends early; a drain in the unwinding
    // waits for itself.
    if !Hold::<Latch>::is_deferred() || mutant::is("no-settle") {
        return;
    }
    // Still unwinding and only looking: the message may yet come.
    if !waiting && std::thread::panicking() {
        return;
    }
    let Some(hold) = Hold::<Latch>::take_deferred() else {
        return;
    };
    let name = SPAWNED
        .try_with(|spawned| spawned.borrow_mut().as_mut().and_then(|s| s.name.take()))
        .ok()
        .flatten();
    release_deferred(hold, name);
}

impl Shutdown {
    /// Spawns a thread that is handed a guard, admitted before the thread
    /// exists.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] if the latch has been triggered; no thread is
    /// created then.
    ///
    /// # Panics
    ///
    /// Panics if the OS fails to create a thread, like `std::thread::spawn`.
    ///
    /// # A panic in the body
    ///
    /// If the body panics, the panic's message is recorded as a failure
    /// before the guard's count goes, so the drain's report carries it; the
    /// `JoinHandle` still returns the panic. If the body *catches* a panic
    /// that dropped its guard (`catch_unwind` around code that owns the
    /// guard), the count stays until the body returns, or until the thread
    /// next waits for a drain or reads `count`/`holders`: a drain meanwhile
    /// waits for the thread, and names it if it gives up.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown.spawn(|guard| {
    ///     guard.wait_triggered();
    ///     "stopped"
    /// }).unwrap();
    /// shutdown.shutdown();
    /// assert_eq!(worker.join().unwrap(), "stopped");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let body = spawn_body(self.guard()?, None, Location::caller(), f);
        Ok(spawn_thread(None, body))
    }

    /// Like [`spawn`](Self::spawn), with a named guard: a drain that times
    /// out names this thread, with the caller's file and line as its site.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown
    ///     .spawn_named("indexer", |guard| guard.wait_triggered())
    ///     .unwrap();
    /// assert_eq!(shutdown.holders().named[0].name, "indexer");
    /// shutdown.shutdown();
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] if the latch has been triggered; no thread is
    /// created then.
    ///
    /// # Panics
    ///
    /// Panics if the OS fails to create a thread, like `std::thread::spawn`.
    #[track_caller]
    pub fn spawn_named<F, T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: F,
    ) -> Result<JoinHandle<T>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let name = name.into();
        let guard = self.guard_named(name.clone())?;
        let body = spawn_body(guard, Some(name.to_string()), Location::caller(), f);
        Ok(spawn_thread(Some(&name), body))
    }

    /// Runs `fut` under a guard of this latch: the returned future holds the
    /// guard until `fut` completes or is dropped, so the drain waits for it.
    /// Refused after the trigger, atomically, like [`guard`](Self::guard).
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let task = shutdown.track(async { 6 * 7 }).unwrap();
    /// assert_eq!(shutdown.count(), 1);
    /// assert_eq!(task.await, 42);
    /// assert_eq!(shutdown.count(), 0);
    /// shutdown.trigger();
    /// assert!(shutdown.track(async {}).is_err());
    /// # });
    /// ```
    ///
    /// With tokio: `tokio::spawn(shutdown.track(handle(conn))?)`.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once the latch has been triggered.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and releases the guard, as a
    /// completed future does: the drain no longer waits for it.
    pub fn track<F: Future>(&self, fut: F) -> Result<Tracked<F>, ShutdownStarted> {
        Ok(self.guard()?.track(fut))
    }

    /// Like [`track`](Self::track), with a named guard; the site recorded is
    /// the caller's line (`#[track_caller]`).
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let task = shutdown.track_named("uploader", async {}).unwrap();
    /// let holders = shutdown.holders();
    /// assert_eq!(holders.named[0].name, "uploader");
    /// assert_eq!(holders.named[0].site.line(), line!() - 3);
    /// # drop(task);
    /// ```
    ///
    /// Helpers of your own that call this should be `#[track_caller]` too,
    /// or every guard they make is reported at the helper's line.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once the latch has been triggered.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and releases the guard, as a
    /// completed future does: the drain no longer waits for it.
    #[track_caller]
    pub fn track_named<F: Future>(
        &self,
        name: impl Into<Cow<'static, str>>,
        fut: F,
    ) -> Result<Tracked<F>, ShutdownStarted> {
        Ok(self.guard_named(name)?.track(fut))
    }

    /// For the loom models only: [`spawn`](Self::spawn)'s thread, as a loom
    /// thread (the same body, wrapper and panic recording); its result is
    /// the body's, or the panic it resumed. Not part of the API.
    #[cfg(all(loom, feature = "loom"))]
    #[doc(hidden)]
    #[track_caller]
    pub fn __loom_spawn_named<F, T>(
        &self,
        name: &'static str,
        f: F,
    ) -> Result<loom::thread::JoinHandle<std::thread::Result<T>>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.guard_named(name)?;
        let body = spawn_body(guard, Some(name.to_owned()), Location::caller(), f);
        Ok(loom::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        }))
    }
}
