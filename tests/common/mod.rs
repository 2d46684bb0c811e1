//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
/// purpose, keeping the output readable.
pub(crate) fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if !msg.contains("deliberate") {
            eprintln!("{msg}");
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
