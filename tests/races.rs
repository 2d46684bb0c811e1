//! Race stress for the memory safety of the core (DESIGN.md, "Memory safety
//! of the core"): a handle goes away at the very moment the last hold goes,
//! notifies, or is pruned. Public API only; the proof's third leg next to
//! the written argument in `hold.rs` and the loom models.
//!
//! # How a test races
//!
//! Every test runs `ROUNDS` rounds (`QUIESCENT_RACE_ROUNDS` overrides). A
//! round spawns two fresh threads, side A and side B, pinned to two
//! different CPUs (Linux), that meet on a `std::sync::Barrier` and then race
//! `ATTEMPTS` times. Each attempt builds fresh state on side A, hands B its
//! part, lines both sides up on a spin barrier (so that the two operations
//! start within a few hundred nanoseconds of each other, which a `Barrier`
//! alone does not achieve), adds a few spins of jitter to one side so that
//! the offset sweeps the race window, and runs the two hostile operations.
//! The handle is always dropped on its own thread while the other side is
//! still releasing: nobody joins the holder first. Results are compared only
//! after both operations are done.
//!
//! Every test runs on a thread with a 60 s deadline: a lost wake-up or a
//! stuck thread is a failure with a message, never a hang. Tests take turns
//! (one lock), since each needs both cores of a small CI machine.
//!
//! # What each test hammers
//!
//! | test | side A | side B |
//! |---|---|---|
//! | `wait_group_dropped_while_last_token_drops` | drops the `WaitGroup` | drops the last `Token` |
//! | `root_dropped_while_last_guard_drops` | drops the last root handle (untriggered) | drops the last `Guard` |
//! | `triggered_root_dropped_while_last_guard_drops` | same, triggered (the guard's drop also notifies) | drops the last `Guard` |
//! | `child_dropped_while_last_guard_drops` | drops the last child handle (root handle gone) | drops the child's last `Guard` |
//! | `triggered_child_dropped_while_last_guard_drops` | same, triggered | same |
//! | `root_dropped_with_its_child_while_last_guard_drops` | drops the root handle, whose list holds the child's tree | drops the child's last `Guard` |
//! | `triggered_root_dropped_with_its_child_while_last_guard_drops` | same, triggered | same |
//! | `wait_group_waited_then_dropped_while_last_token_notifies` | `wait()`, then drops the `WaitGroup` | drops the last `Token` |
//! | `wait_group_waited_async_then_dropped_while_last_token_notifies` | `wait_async()` (futures-executor), then drops | same |
//! | `root_drained_then_dropped_while_last_guard_notifies` | `wait_drained()` on a triggered root, then drops it | drops the last `Guard` |
//! | `refused_admission_then_drained_and_dropped_while_last_guard_notifies` | a refused `guard()` (one `fetch_add`, never backed out), `wait_drained()`, drops the root | drops the last `Guard` |
//! | `root_drained_then_dropped_while_clone_after_trigger_notifies` | `wait_drained()` on a triggered root, then drops it | clones the last `Guard` (two RMWs on a draining word), drops the original, then the clone |
//! | `root_shut_down_then_dropped_while_last_guard_notifies` | `shutdown()`, then drops the root | same |
//! | `root_drained_async_then_dropped_while_last_guard_notifies` | `wait_drained_async()` (tokio), then drops | same |
//! | `root_drained_then_dropped_while_child_guard_notifies` | `wait_drained()` on the root, then drops it (and the child's tree) | drops the child's last `Guard` |
//! | `child_drained_then_dropped_while_last_guard_notifies` | `wait_drained()` on a triggered child (root gone), then drops it | drops the child's last `Guard` |
//! | `child_drained_async_then_dropped_while_last_guard_notifies` | `wait_drained_async()` (futures-executor), then drops | same |
//! | `prune_on_trigger_keeps_children_with_live_futures` | `root.trigger()`, which prunes dead children | turns each child's last guard into a `Triggered` future, drops the guard |
//! | `prune_on_child_keeps_children_with_live_futures` | `root.child()` in a loop, each call pruning | same, spaced out; then `trigger()` must complete every future |
//! | `stragglers_never_name_more_guards_than_remaining` | `wait_drained_timeout(ZERO)` on a triggered latch, repeatedly | clones and drops a named guard, repeatedly |
//!
//! The first seven hit the hand-off of the node's reference from the
//! anchoring handle to the holds (a use-after-free or double free when both
//! think the other one owns it), and a notification sent on a node the
//! handle just freed. The next ten hit a waiter that sees zero, returns
//! and frees the node while the last hold's drop is still inside `notify`.
//! Those are memory errors: AddressSanitizer reports them at once, a plain
//! run may pass or crash. Every test also asserts what it can see (waits
//! return, counts are zero after, reports are clean).
//!
//! The last three assert plainly, with or without ASan: a child pruned while
//! a future made from its last guard is alive never sees the trigger (the
//! future is still pending after `trigger()` returned), and `Stragglers`
//! must not list more names than `remaining`. Their windows (between two
//! reads of the pruning or the reporting thread) are shorter than the other
//! side's operation, so they are only lost when that thread is preempted in
//! between: these three tests run a noise thread on side A's CPU that
//! preempts it every few tens of microseconds, as a loaded machine would.
//!
//! # Running
//!
//! Plainly (debug, a few seconds): `cargo test --test races`. Under
//! AddressSanitizer (nightly; `.ci/sanitizers` runs the whole suite this
//! way, with LeakSanitizer on):
//!
//! ```text
//! RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
//!     CARGO_TARGET_DIR=target/asan \
//!     cargo +nightly test --target x86_64-unknown-linux-gnu --test races
//! ```
//!
//! `QUIESCENT_RACE_ROUNDS=N` sets the rounds of every test (a long hunt:
//! 10000); `QUIESCENT_RACE_VERBOSE=1` prints each round as it starts (with
//! `--nocapture`), which tells how many attempts a failing run took.
#![allow(clippy::disallowed_types)] // tests use std atomics and locks directly

use std::any::Any;
use std::future::Future;
use std::hint::spin_loop;
use std::panic::resume_unwind;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use quiescent::futures::Triggered;
use quiescent::{Guard, Shutdown, WaitGroup};

/// Rounds of each test unless `QUIESCENT_RACE_ROUNDS` says otherwise.
const ROUNDS: usize = 300;
/// Attempts per round: each builds fresh state and races once.
const ATTEMPTS: usize = 50;
/// How long one test may run before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);
/// The jitter sweep: one side waits up to this many spins after the start.
const SPREAD: usize = 16;
/// Spins at a start line before yielding (the other side is not running).
const SPINS_BEFORE_YIELD: u64 = 4_000;
/// ... and before sleeping instead (the other side is stuck).
const YIELDS_BEFORE_SLEEP: u64 = 1_000_000;
/// How long the noise thread keeps side A off its CPU each time.
const NOISE_BUSY: Duration = Duration::from_micros(10);
/// The payload of the panic a side raises when the other side panicked.
const PARTNER_FAILED: &str = "the other side of the race panicked";

/// One race test at a time: each needs both cores of a small CI machine, and
/// libtest runs tests in parallel.
static SERIAL: Mutex<()> = Mutex::new(());

fn rounds() -> usize {
    std::env::var("QUIESCENT_RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
}

/// One race: `setup` (on side A) builds fresh state and splits it between
/// the two sides; `a` and `b` are the two hostile operations, run at the same
/// moment on two threads; `check` (on side A, once both are done) asserts
/// what they returned.
struct Race<S, A, B, C> {
    /// Preempts side A at random points (see `noise`).
    noise: bool,
    setup: S,
    a: A,
    b: B,
    check: C,
}

/// Runs `rounds()` rounds of `race` on a thread with a deadline: a lost
/// wake-up becomes a failure, never a hang. Each round spawns the two sides
/// afresh; they meet on a `Barrier`, then race `ATTEMPTS` times.
fn hammer<S, A, B, C, SA, SB, RA, RB>(name: &'static str, race: Race<S, A, B, C>)
where
    S: Fn() -> (SA, SB) + Send + Sync + 'static,
    A: Fn(SA) -> RA + Send + Sync + 'static,
    B: Fn(SB) -> RB + Send + Sync + 'static,
    C: Fn(RA, RB) + Send + Sync + 'static,
    SB: Send + 'static,
    RB: Send + 'static,
{
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rounds = rounds();
    let verbose = std::env::var_os("QUIESCENT_RACE_VERBOSE").is_some();
    let progress = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let body = {
        let progress = progress.clone();
        let race = Arc::new(race);
        thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for round in 0..rounds {
                    if verbose {
                        eprintln!("{name}: round {round} ({} attempts)", round * ATTEMPTS);
                    }
                    progress.store(round, Ordering::Relaxed);
                    run_round(&race, round);
                }
                let _ = tx.send(());
            })
            .expect("spawn the test body")
    };
    match rx.recv_timeout(DEADLINE) {
        Ok(()) => body.join().expect("test body panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = body.join() {
                resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: round {} of {rounds} still running after {DEADLINE:?}: a waiter was \
             never woken (lost wake-up) or a thread is stuck",
            progress.load(Ordering::Relaxed)
        ),
    }
    if verbose {
        eprintln!("{name}: {rounds} rounds in {:?}", started.elapsed());
    }
}

/// What the two sides of one round share.
struct Shared<SB, RB> {
    barrier: Barrier,
    arrived: AtomicUsize,
    failed: AtomicBool,
    to_b: Mutex<Option<SB>>,
    to_a: Mutex<Option<RB>>,
}

/// One side's view of the start lines of a round (a spin barrier: the
/// `Barrier` alone lets the thread that arrives last run microseconds ahead
/// of the one it wakes).
struct Line<'a> {
    arrived: &'a AtomicUsize,
    failed: &'a AtomicBool,
    passed: usize,
}

impl Line<'_> {
    fn wait(&mut self) {
        self.passed += 1;
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let mut spins = 0u64;
        while self.arrived.load(Ordering::Acquire) < 2 * self.passed {
            if self.failed.load(Ordering::Relaxed) {
                std::panic::panic_any(PARTNER_FAILED);
            }
            spins += 1;
            if spins < SPINS_BEFORE_YIELD {
                spin_loop();
            } else if spins < YIELDS_BEFORE_SLEEP {
                // Not both running (other processes): don't burn the slice.
                thread::yield_now();
            } else {
                // The other side is stuck (the test is about to fail on its
                // deadline): don't burn a CPU for the rest of the run.
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Pins the calling thread to the `nth` CPU it may run on (Linux only; a
/// no-op elsewhere or when there is a single CPU). Fresh threads tend to
/// start on the CPU of the thread that spawned them and would then take
/// turns instead of racing; pinned apart, the two sides run in parallel from
/// their first attempt.
#[cfg(target_os = "linux")]
fn pin_to_cpu(nth: usize) {
    extern "C" {
        fn sched_getaffinity(pid: i32, size: usize, mask: *mut u64) -> i32;
        fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
    }
    let mut mask = [0u64; 16];
    let size = std::mem::size_of_val(&mask);
    // SAFETY: `mask` is a writable buffer of `size` bytes; pid 0 is this thread.
    if unsafe { sched_getaffinity(0, size, mask.as_mut_ptr()) } != 0 {
        return;
    }
    let cpus: Vec<usize> = (0..mask.len() * 64)
        .filter(|&cpu| mask[cpu / 64] & (1 << (cpu % 64)) != 0)
        .collect();
    if cpus.len() < 2 {
        return;
    }
    let cpu = cpus[nth % cpus.len()];
    let mut one = [0u64; 16];
    one[cpu / 64] = 1 << (cpu % 64);
    // SAFETY: `one` is a readable buffer of `size` bytes. Failure is harmless.
    unsafe { sched_setaffinity(0, size, one.as_ptr()) };
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu(_nth: usize) {}

/// Preemption noise on side A's CPU until `stop`: a thread that wakes up
/// every few tens of microseconds and keeps the CPU for `NOISE_BUSY`, so
/// that side A is preempted at random points of its code (as on a loaded
/// machine) and stays off the CPU while side B runs. A race whose window is
/// shorter than the other side's operation (the prune's two reads) can only
/// be lost that way.
fn noise(stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        pin_to_cpu(0);
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_micros(20));
            let busy = Instant::now();
            while busy.elapsed() < NOISE_BUSY {
                spin_loop();
            }
        }
    })
}

/// Tells the other side to stop waiting if this side panics.
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The extra spins of each side in one attempt: none half the time, else
/// one side waits a pseudo-random 1..=SPREAD spins, so that the offset
/// between the two operations sweeps the race window.
fn jitter(attempt: usize) -> (usize, usize) {
    let h = (attempt as u64 ^ 0x5851_F42D_4C95_7F2D).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let spins = 1 + (h as usize) % SPREAD;
    match h >> 30 {
        0 => (spins, 0),
        1 => (0, spins),
        _ => (0, 0),
    }
}

fn spin(spins: usize) {
    for _ in 0..spins {
        spin_loop();
    }
}

fn run_round<S, A, B, C, SA, SB, RA, RB>(race: &Arc<Race<S, A, B, C>>, round: usize)
where
    S: Fn() -> (SA, SB) + Send + Sync + 'static,
    A: Fn(SA) -> RA + Send + Sync + 'static,
    B: Fn(SB) -> RB + Send + Sync + 'static,
    C: Fn(RA, RB) + Send + Sync + 'static,
    SB: Send + 'static,
    RB: Send + 'static,
{
    let shared = Arc::new(Shared {
        barrier: Barrier::new(2),
        arrived: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        to_b: Mutex::new(None),
        to_a: Mutex::new(None),
    });
    let side_a = {
        let (race, shared) = (race.clone(), shared.clone());
        thread::spawn(move || {
            let _fail = FailOnPanic(&shared.failed);
            pin_to_cpu(0);
            shared.barrier.wait();
            let mut line = Line {
                arrived: &shared.arrived,
                failed: &shared.failed,
                passed: 0,
            };
            for attempt in round * ATTEMPTS..(round + 1) * ATTEMPTS {
                let (sa, sb) = (race.setup)();
                *shared.to_b.lock().unwrap() = Some(sb);
                line.wait(); // B takes its part
                line.wait(); // the start
                spin(jitter(attempt).0);
                let ra = (race.a)(sa);
                line.wait(); // B is done
                let rb = shared.to_a.lock().unwrap().take().expect("B's result");
                (race.check)(ra, rb);
            }
        })
    };
    let side_b = {
        let (race, shared) = (race.clone(), shared);
        thread::spawn(move || {
            let _fail = FailOnPanic(&shared.failed);
            pin_to_cpu(1);
            shared.barrier.wait();
            let mut line = Line {
                arrived: &shared.arrived,
                failed: &shared.failed,
                passed: 0,
            };
            for attempt in round * ATTEMPTS..(round + 1) * ATTEMPTS {
                line.wait(); // A has built the state
                let sb = shared.to_b.lock().unwrap().take().expect("A's setup");
                line.wait(); // the start
                spin(jitter(attempt).1);
                let rb = (race.b)(sb);
                *shared.to_a.lock().unwrap() = Some(rb);
                line.wait(); // tell A
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let noise = race.noise.then(|| noise(stop.clone()));
    let (a, b) = (side_a.join(), side_b.join());
    stop.store(true, Ordering::Relaxed);
    if let Some(noise) = noise {
        noise.join().expect("noise thread");
    }
    // Propagate the panic that came first, not the partner's reaction to it.
    let first = |p: &Box<dyn Any + Send>| p.downcast_ref::<&str>() != Some(&PARTNER_FAILED);
    match (a, b) {
        (Ok(()), Ok(())) => {}
        (Err(pa), Err(pb)) if !first(&pa) => resume_unwind(pb),
        (Err(p), _) | (_, Err(p)) => resume_unwind(p),
    }
}

/// For races whose sides assert on their own.
fn no_check<RA, RB>(_: RA, _: RB) {}

/// A waker that does nothing (`Waker::noop` is newer than the MSRV).
struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` once: true if it is already complete.
fn ready_now<F: Future>(fut: F) -> bool {
    let waker = Waker::from(Arc::new(Noop));
    let mut fut = pin!(fut);
    fut.as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
}

// ---------------------------------------------------------------------------
// The anchor hand-off: a handle goes while the last hold goes.
// ---------------------------------------------------------------------------

#[test]
fn wait_group_dropped_while_last_token_drops() {
    hammer(
        "wait_group_dropped_while_last_token_drops",
        Race {
            noise: false,
            setup: || {
                let wg = WaitGroup::new();
                let token = wg.token();
                (wg, token)
            },
            a: drop::<WaitGroup>,
            b: |token: quiescent::Token| {
                assert_eq!(token.count(), 1);
                drop(token);
            },
            check: no_check,
        },
    );
}

#[test]
fn root_dropped_while_last_guard_drops() {
    hammer(
        "root_dropped_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let guard = root.guard().unwrap();
                (root, guard)
            },
            a: drop::<Shutdown>,
            b: |guard: Guard| {
                assert!(!guard.is_triggered(), "dropping handles never triggers");
                drop(guard);
            },
            check: no_check,
        },
    );
}

#[test]
fn triggered_root_dropped_while_last_guard_drops() {
    hammer(
        "triggered_root_dropped_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let guard = root.guard().unwrap();
                assert!(root.trigger());
                (root, guard)
            },
            a: drop::<Shutdown>,
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn child_dropped_while_last_guard_drops() {
    hammer(
        "child_dropped_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let child = root.child().unwrap();
                let guard = child.guard().unwrap();
                // The child handle is now the only reference to its tree.
                drop(root);
                (child, guard)
            },
            a: drop::<Shutdown>,
            b: |guard: Guard| {
                assert!(!guard.is_triggered(), "dropping handles never triggers");
                drop(guard);
            },
            check: no_check,
        },
    );
}

#[test]
fn triggered_child_dropped_while_last_guard_drops() {
    hammer(
        "triggered_child_dropped_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let child = root.child().unwrap();
                let guard = child.guard().unwrap();
                assert!(root.trigger());
                assert!(guard.is_triggered());
                drop(root);
                (child, guard)
            },
            a: drop::<Shutdown>,
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn root_dropped_with_its_child_while_last_guard_drops() {
    hammer(
        "root_dropped_with_its_child_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                // The root's list of children now holds the child's tree
                // alone: dropping the root frees both anchors while the
                // guard holds a count on both latches.
                let guard = root.child().unwrap().guard().unwrap();
                assert_eq!(root.count(), 1);
                (root, guard)
            },
            a: drop::<Shutdown>,
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn triggered_root_dropped_with_its_child_while_last_guard_drops() {
    hammer(
        "triggered_root_dropped_with_its_child_while_last_guard_drops",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let guard = root.child().unwrap().guard().unwrap();
                assert!(root.trigger());
                (root, guard)
            },
            a: drop::<Shutdown>,
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

// ---------------------------------------------------------------------------
// Notify after release: the waiter sees zero, returns and frees the node
// while the last hold's drop is still notifying.
// ---------------------------------------------------------------------------

#[test]
fn wait_group_waited_then_dropped_while_last_token_notifies() {
    hammer(
        "wait_group_waited_then_dropped_while_last_token_notifies",
        Race {
            noise: false,
            setup: || {
                let wg = WaitGroup::new();
                let token = wg.token();
                (wg, token)
            },
            a: |mut wg: WaitGroup| {
                wg.wait();
                assert_eq!(wg.count(), 0);
                drop(wg);
            },
            b: drop::<quiescent::Token>,
            check: no_check,
        },
    );
}

#[test]
fn wait_group_waited_async_then_dropped_while_last_token_notifies() {
    hammer(
        "wait_group_waited_async_then_dropped_while_last_token_notifies",
        Race {
            noise: false,
            setup: || {
                let wg = WaitGroup::new();
                let token = wg.token();
                (wg, token)
            },
            a: |mut wg: WaitGroup| {
                futures_executor::block_on(wg.wait_async());
                assert_eq!(wg.count(), 0);
                drop(wg);
            },
            b: drop::<quiescent::Token>,
            check: no_check,
        },
    );
}

/// The latch is triggered with one guard; the waiter drains, then drops the
/// last handle.
fn triggered_with_one_guard() -> (Shutdown, Guard) {
    let root = Shutdown::new();
    let guard = root.guard().unwrap();
    assert!(root.trigger());
    (root, guard)
}

/// Side A of the drain races: drain, check, drop the last handle at once.
fn drain_then_drop(root: Shutdown) {
    let report = root.wait_drained();
    assert_eq!((report.panicked, root.count()), (0, 0));
    drop(root);
}

#[test]
fn root_drained_then_dropped_while_last_guard_notifies() {
    hammer(
        "root_drained_then_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: triggered_with_one_guard,
            a: drain_then_drop,
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn refused_admission_then_drained_and_dropped_while_last_guard_notifies() {
    hammer(
        "refused_admission_then_drained_and_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: triggered_with_one_guard,
            a: |root: Shutdown| {
                // One `fetch_add`, refused: it lands in the open field,
                // which nothing reads once the latch drains, and may
                // overtake the last release or follow it.
                assert!(root.guard().is_err());
                drain_then_drop(root);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn root_drained_then_dropped_while_clone_after_trigger_notifies() {
    hammer(
        "root_drained_then_dropped_while_clone_after_trigger_notifies",
        Race {
            noise: false,
            setup: triggered_with_one_guard,
            a: drain_then_drop,
            b: |guard: Guard| {
                // Both holds count in the drain field; the clone's release
                // is the one that announces the drain.
                let clone = guard.clone();
                drop(guard);
                drop(clone);
            },
            check: no_check,
        },
    );
}

#[test]
fn root_shut_down_then_dropped_while_last_guard_notifies() {
    hammer(
        "root_shut_down_then_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let guard = root.guard().unwrap();
                (root, guard)
            },
            a: |root: Shutdown| {
                let report = root.shutdown();
                assert_eq!((report.panicked, root.count()), (0, 0));
                drop(root);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn root_drained_async_then_dropped_while_last_guard_notifies() {
    // A current-thread runtime whose handle drives the future on side A.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    hammer(
        "root_drained_async_then_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: triggered_with_one_guard,
            a: move |root: Shutdown| {
                let report = rt.handle().block_on(root.wait_drained_async());
                assert_eq!((report.panicked, root.count()), (0, 0));
                drop(root);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn root_drained_then_dropped_while_child_guard_notifies() {
    hammer(
        "root_drained_then_dropped_while_child_guard_notifies",
        Race {
            noise: false,
            setup: || {
                let root = Shutdown::new();
                let guard = root.child().unwrap().guard().unwrap();
                assert!(root.trigger());
                (root, guard)
            },
            a: |root: Shutdown| {
                let report = root.wait_drained();
                assert_eq!((report.panicked, root.count()), (0, 0));
                // Frees the root's tree and, through its list, the child's.
                drop(root);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

/// A triggered child with one guard whose root handle is gone: the child
/// handle is the last reference to the child's tree.
fn triggered_orphan_child_with_one_guard() -> (Shutdown, Guard) {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let guard = child.guard().unwrap();
    assert!(root.trigger());
    drop(root);
    (child, guard)
}

#[test]
fn child_drained_then_dropped_while_last_guard_notifies() {
    hammer(
        "child_drained_then_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: triggered_orphan_child_with_one_guard,
            a: |child: Shutdown| {
                let report = child.wait_drained();
                assert_eq!((report.panicked, child.count()), (0, 0));
                drop(child);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

#[test]
fn child_drained_async_then_dropped_while_last_guard_notifies() {
    hammer(
        "child_drained_async_then_dropped_while_last_guard_notifies",
        Race {
            noise: false,
            setup: triggered_orphan_child_with_one_guard,
            a: |child: Shutdown| {
                let report = futures_executor::block_on(child.wait_drained_async());
                assert_eq!((report.panicked, child.count()), (0, 0));
                drop(child);
            },
            b: drop::<Guard>,
            check: no_check,
        },
    );
}

// ---------------------------------------------------------------------------
// Prune: a child reachable only through a future made from its last guard
// must stay in its parent's list, or the trigger never reaches it.
// ---------------------------------------------------------------------------

/// Children whose guards race with the trigger's prune.
const PRUNE_TRIGGER_CHILDREN: usize = 32;
/// Children whose guards race with `child()`'s prune: with 2^n - 1 of
/// them alive, the list is at capacity on every call but the first, so
/// every later call prunes.
const PRUNE_CHILD_CHILDREN: usize = 15;
/// Spins between two futures in the race with `child()`'s prune, so that
/// they meet the pruning loop at independent moments.
const PRUNE_CHILD_SPACING: usize = 128;

/// `n` children of `root`, each with one guard and no handle left.
fn orphaned_guards(root: &Shutdown, n: usize) -> Vec<Guard> {
    (0..n)
        .map(|_| root.child().unwrap().guard().unwrap())
        .collect()
}

/// Turns each guard into a `Triggered` future, then drops the guard
/// (reachability moves guard -> reference), `spins` apart. Last child first,
/// so that this sweep crosses the prune's, which walks the list from the
/// front.
fn futures_from_last_guards(guards: Vec<Guard>, spins: usize) -> Vec<Triggered> {
    guards
        .into_iter()
        .rev()
        .map(|guard| {
            let future = guard.wait_triggered_async();
            drop(guard);
            spin(spins);
            future
        })
        .collect()
}

/// After `root.trigger()` returned, every child future is complete; one that
/// is not belongs to a child pruned while it was still reachable.
fn assert_all_triggered(root: &Shutdown, futures: Vec<Triggered>) {
    let pending = futures
        .into_iter()
        .map(ready_now)
        .filter(|ready| !ready)
        .count();
    assert_eq!(
        pending, 0,
        "{pending} Triggered future(s) of child latches still pending after root.trigger() \
         returned: the child was pruned while its future was alive (lost wake-up)"
    );
    assert_eq!(root.count(), 0);
    assert!(root.wait_drained_timeout(Duration::ZERO).is_ok());
}

#[test]
fn prune_on_trigger_keeps_children_with_live_futures() {
    hammer(
        "prune_on_trigger_keeps_children_with_live_futures",
        Race {
            noise: true,
            setup: || {
                let root = Shutdown::new();
                let guards = orphaned_guards(&root, PRUNE_TRIGGER_CHILDREN);
                (root, guards)
            },
            a: |root: Shutdown| {
                assert!(root.trigger()); // prunes, then cascades
                root
            },
            b: |guards| futures_from_last_guards(guards, 0),
            check: |root: Shutdown, futures| assert_all_triggered(&root, futures),
        },
    );
}

#[test]
fn prune_on_child_keeps_children_with_live_futures() {
    hammer(
        "prune_on_child_keeps_children_with_live_futures",
        Race {
            noise: true,
            setup: || {
                let root = Shutdown::new();
                // Every call to `child()` after the first prunes (see
                // `PRUNE_CHILD_CHILDREN`).
                let guards = orphaned_guards(&root, PRUNE_CHILD_CHILDREN);
                let done = Arc::new(AtomicBool::new(false));
                ((root, done.clone()), (guards, done))
            },
            a: |(root, done): (Shutdown, Arc<AtomicBool>)| {
                let mut calls = 0;
                while !done.load(Ordering::Acquire) && calls < 10_000 {
                    drop(root.child().unwrap());
                    calls += 1;
                }
                root
            },
            b: |(guards, done): (Vec<Guard>, Arc<AtomicBool>)| {
                let futures = futures_from_last_guards(guards, PRUNE_CHILD_SPACING);
                done.store(true, Ordering::Release);
                futures
            },
            check: |root: Shutdown, futures| {
                assert!(root.trigger());
                assert_all_triggered(&root, futures);
            },
        },
    );
}

// ---------------------------------------------------------------------------
// Stragglers: a snapshot never names more guards than it counts.
// ---------------------------------------------------------------------------

#[test]
fn stragglers_never_name_more_guards_than_remaining() {
    const LOOKS: usize = 20;
    hammer(
        "stragglers_never_name_more_guards_than_remaining",
        Race {
            noise: true,
            setup: || {
                let latch = Shutdown::new();
                let guard = latch.guard_named("straggler").unwrap();
                assert!(latch.trigger());
                (latch, guard)
            },
            a: |latch: Shutdown| {
                let bad = (0..LOOKS).find_map(|_| {
                    let s = latch
                        .wait_drained_timeout(Duration::ZERO)
                        .expect_err("a live guard cannot be drained");
                    (s.names.len() > s.remaining).then_some(s)
                });
                (latch, bad)
            },
            b: |guard: Guard| {
                for _ in 0..LOOKS {
                    // Allowed after the trigger; registered under the name.
                    drop(guard.clone());
                }
                guard
            },
            check: |(latch, bad): (Shutdown, Option<quiescent::Stragglers>), guard| {
                if let Some(s) = bad {
                    panic!(
                        "Stragglers lists {} names but counts only {} remaining guards: {:?}",
                        s.names.len(),
                        s.remaining,
                        s.names
                    );
                }
                drop(guard);
                let report = latch.wait_drained_timeout(Duration::ZERO).unwrap();
                assert_eq!((report.panicked, latch.count()), (0, 0));
            },
        },
    );
}
