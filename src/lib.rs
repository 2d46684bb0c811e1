//! WaitGroup and shutdown primitives that make the classic bugs impossible to
//! write instead of merely documented.
//!
//! * [`WaitGroup`] counts live [`Token`]s; [`wait`](WaitGroup::wait) returns
//!   when none is left. There is no `done()` to call once too often, and no
//!   way to mint a token while someone waits.
//! * [`Shutdown`] is a one-shot latch on the same counting core: once
//!   triggered it refuses new [`Guard`]s, tells every holder, drains, and
//!   names the stragglers when a deadline passes.
//!
//! Every interleaving of both is model-checked with [loom]: enable the `loom`
//! feature and build with `--cfg loom`, and your own loom models explore
//! ours too.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use quiescent::{Shutdown, WaitGroup};
//!
//! // Fan out, then wait for every worker.
//! let mut wg = WaitGroup::new();
//! for _ in 0..4 {
//!     wg.spawn(|| { /* work */ });
//! }
//! wg.wait();
//!
//! // A service that stops on request and reports who did not.
//! let shutdown = Shutdown::new();
//! for id in 0..3 {
//!     let guard = shutdown.guard_named(format!("worker-{id}")).unwrap();
//!     std::thread::spawn(move || {
//!         guard.wait_triggered(); // ... serve until told to stop
//!         drop(guard);
//!     });
//! }
//! let report = shutdown.shutdown_timeout(Duration::from_secs(5)).unwrap();
//! assert_eq!(report.panicked, 0);
//! ```
//!
//! # Blocking and async
//!
//! Blocking methods keep the std names (`wait`, `wait_timeout`); their async
//! twins end in `_async` and return the named futures in [`futures`]. The
//! futures need no particular runtime.
//!
//! # Limits
//!
//! * One group or latch holds at most 2^29 (536,870,912) live tokens or
//!   guards at once; one more aborts the process, as `Arc` does on a
//!   refcount overflow (a leak in a loop, not a workload). The count never
//!   wraps.
//! * The target needs 64-bit atomics: a latch's state word packs an open and
//!   a drain count into one `AtomicU64`, so that admission is one atomic
//!   operation. Elsewhere the crate does not compile, and says why.
//!
//! # Promises at the edges
//!
//! What the docs promise holds where services break things, and each promise
//! is checked in its hostile case (the package's `docs/PROMISES.md` lists
//! every one with its test or loom model):
//!
//! * **No handle left.** Guards keep working when every [`Shutdown`] handle
//!   is gone: [`Guard::fail`] and a [vital](Guard::vital) guard's panic still
//!   trigger their latch and its subtree. Dropping handles never triggers.
//! * **Wakers are user code.** No waker runs under a lock, ours or a
//!   dependency's: a waker may poll or drop its own future, trigger, take a
//!   guard or read a report inline. A waker that panics cannot stop other
//!   waiters from being woken or children from being triggered; its panic
//!   reaches the call that woke it once that call's work is done (or is
//!   dropped, if that thread is unwinding already: no abort).
//! * **A spawned thread is one guard** in [`Shutdown::count`], in
//!   [`Shutdown::holders`] and in a drain's stragglers; its panic's message
//!   reaches every report of its latch.
//! * **Unwinding** releases every token and guard, counts it in `panicked`,
//!   and names every named or vital guard the panic dropped.
//! * **Huge inputs**: any `Duration` (zero only checks, `Duration::MAX` waits
//!   without a deadline); reports of any size print a bounded summary
//!   ([`DISPLAY_LIMIT`]).
//!
#![doc = include_str!("../docs/method-map.md")]
//!
//! # Features
//!
//! * `loom`: with `--cfg loom`, every atomic, lock and event goes through loom.
//! * `signal`: [`Shutdown::trigger_on_signals`] (SIGINT/SIGTERM).
//! * `tracing`: events on trigger, drain and stragglers.
//!
//! [loom]: https://docs.rs/loom
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod core;
pub mod guide;
mod mutant;
mod report;
mod shutdown;
#[cfg(all(feature = "signal", unix))]
mod signals;
#[cfg(all(feature = "systemd", target_os = "linux"))]
mod systemd;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod wait_group;

pub use report::{
    Cause, Failure, Failures, Holders, Report, SharedStr, ShutdownStarted, Straggler, Stragglers,
    Timeout, DISPLAY_LIMIT, DISPLAY_TEXT,
};
pub use shutdown::{Guard, Shutdown};
#[cfg(all(feature = "signal", unix))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "signal", unix))))]
pub use signals::{SecondSignal, Signals};
pub use wait_group::{Token, WaitGroup};

/// Under `--cfg loom`: the nodes (groups, latches) allocated and not yet
/// freed by the model running on this thread. `loom-tests` asserts after
/// every execution that none outlived it, the leak check loom's own cannot
/// make for quiescent's reference protocol. Not part of the API.
#[cfg(all(loom, feature = "loom"))]
#[doc(hidden)]
pub fn __loom_live_nodes() -> usize {
    crate::core::shadow::live_nodes()
}

/// The named futures returned by the `_async` methods.
pub mod futures {
    pub use crate::shutdown::{
        Announced, Drained, DrainedUntil, Forced, PhasedDrain, Tracked, Triggered, UntilTriggered,
    };
    pub use crate::wait_group::Wait;
}

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
