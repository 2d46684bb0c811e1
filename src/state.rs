//! The counting core shared by `WaitGroup` and `Shutdown`.
//!
//! One packed atomic word holds the number of live holds (tokens or guards),
//! a `CLOSED` flag and an `ANCHORED` flag; two `event_listener::Event`s carry
//! the wake-ups. The fast path (taking or dropping a hold while the group or
//! latch handle lives, or while other holds live) is a single atomic
//! read-modify-write and touches neither event nor lock nor refcount.

use std::time::Instant;

use crate::mutant;
use crate::sync::{AtomicUsize, Event, EventListener, Listener, Mutex, Ordering};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `state` bit 0: closed. While it is set, the state becoming exactly
/// `CLOSED` (no hold left) is announced on `drained`; while it is clear, a
/// return to zero costs nothing beyond the decrement.
///
/// * A `Shutdown` latch sets it once, on trigger, for good; it also makes
///   [`Core::try_acquire`] refuse new holds.
/// * A `WaitGroup` sets it only while its (single, `&mut`) waiter waits
///   ([`Core::watch`] / [`Core::unwatch`]); it never refuses a token, since it
///   only uses [`Core::acquire`].
pub(crate) const CLOSED: usize = 0b01;
/// `state` bit 1: anchored. Set while a handle (the `WaitGroup`, or the
/// `Shutdown` tree node) owns a strong reference to the node, so the holds
/// need none of their own; see `hold.rs` for the reference protocol.
pub(crate) const ANCHORED: usize = 0b10;
/// `state` bits 2..: the number of live holds, in units of `ONE`.
pub(crate) const ONE: usize = 0b100;
/// Holds beyond this abort the process, like `Arc`'s refcount. Half of what
/// the count field can represent, so that any number of threads racing past
/// the check still cannot wrap the word before one of them aborts.
pub(crate) const MAX_COUNT: usize = (isize::MAX as usize) / ONE;

/// A decoded copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn count(self) -> usize {
        self.0 / ONE
    }

    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    /// Closed and no hold left: the condition `drained` announces.
    pub(crate) fn is_drained(self) -> bool {
        self.0 & !ANCHORED == CLOSED
    }
}

/// What a waiter waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// `CLOSED` is set.
    Closed,
    /// `CLOSED` is set and the count is zero.
    Drained,
    /// The count is zero (a `WaitGroup` waiter, which has set `CLOSED`
    /// through [`Core::watch`] before waiting).
    Zero,
}

/// References to the node that a transition of the word hands to its caller:
/// to take on the holds' behalf (`acquire`), or to give back (`release`).
/// Each is decided by the transition's single read-modify-write, so exactly
/// one thread takes or gives back each of them (`hold.rs` has the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a reference handed over by a transition must be taken or given back"]
pub(crate) struct Refs {
    /// The holds' collective reference: the word has holds and no anchor.
    pub(crate) collective: bool,
    /// The notify reference: the word has holds and `CLOSED`.
    pub(crate) notify: bool,
}

impl Refs {
    pub(crate) const NONE: Self = Self {
        collective: false,
        notify: false,
    };
    pub(crate) const NOTIFY: Self = Self {
        collective: false,
        notify: true,
    };
    pub(crate) const COLLECTIVE: Self = Self {
        collective: true,
        notify: false,
    };

    /// What the count leaving (or reaching) zero hands over, given the flags
    /// of the word at zero.
    #[inline]
    fn owed_at_zero(flags: usize) -> Self {
        Self {
            collective: flags & ANCHORED == 0,
            notify: flags & CLOSED != 0,
        }
    }

    /// Whether any reference changes hands.
    #[inline]
    pub(crate) fn any(self) -> bool {
        self.collective || self.notify
    }
}

/// The counting core.
#[derive(Debug)]
pub(crate) struct Core {
    /// | bits  | meaning                                  |
    /// |-------|------------------------------------------|
    /// | 0     | `CLOSED`                                 |
    /// | 1     | `ANCHORED`                               |
    /// | 2..   | live holds (`state / ONE`)               |
    state: AtomicUsize,
    /// Holds dropped while their thread was panicking, since creation. Only
    /// written on the unwinding path.
    panicked: AtomicUsize,
    /// Notified (all listeners) when the count reaches zero while `CLOSED`
    /// is set (`ANCHORED` aside).
    drained: Event,
    /// Notified (all listeners) when `CLOSED` is set.
    closed: Event,
    /// Threads blocked in [`Core::wait`] (outside loom).
    sleepers: Sleepers,
}

impl Core {
    /// An open core with no holds, anchored by the handle that creates it.
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(ANCHORED),
            panicked: AtomicUsize::new(0),
            drained: Event::new(),
            closed: Event::new(),
            sleepers: Sleepers::default(),
        }
    }

    /// A snapshot of the state.
    ///
    /// `Acquire`: a caller that sees the count at zero (or `CLOSED`) also sees
    /// every write made before the `Release` decrements (or the `close`) it
    /// observes, which is what makes `wait` a happens-before edge.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot(self.state.load(Ordering::Acquire))
    }

    /// Holds dropped during unwinding, since creation.
    ///
    /// `Relaxed`: the increments are published by the `Release` decrement that
    /// follows each of them; callers read this after an `Acquire` snapshot.
    pub(crate) fn panicked(&self) -> usize {
        self.panicked.load(Ordering::Relaxed)
    }

    /// Adds one hold unconditionally; returns the references the caller must
    /// now take for the holds (`hold.rs`, transition A1): the collective one
    /// if the count left zero while unanchored, the notify one if it left
    /// zero while `CLOSED`.
    ///
    /// `Relaxed`: the caller already owns a reference that keeps the core
    /// alive, and the count itself is ordered by the word's single modification
    /// order; nothing is published by taking a hold (as in `Arc::clone`).
    #[inline]
    pub(crate) fn acquire(&self) -> Refs {
        let prev = self.state.fetch_add(ONE, Ordering::Relaxed);
        if prev < ONE {
            return Refs::owed_at_zero(prev);
        }
        if prev / ONE >= MAX_COUNT {
            overflow();
        }
        Refs::NONE
    }

    /// Adds one hold unless `CLOSED`; on success, the references the caller
    /// must take, as for [`acquire`](Self::acquire) (never the notify one:
    /// the core is open).
    ///
    /// `Relaxed` on both the load and the exchange: admission and `close` are
    /// read-modify-writes of this one word, so the word's modification order
    /// alone decides whether a hold came before the close (and is then seen by
    /// every drain, which reads the word after the close) or after (and is
    /// refused). No data is published by admission.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<Refs, Closed> {
        match self.acquire_unless(|word| word & CLOSED != 0 && !mutant::is("unchecked-admission")) {
            Some(prev) if prev < ONE => Ok(Refs::owed_at_zero(prev)),
            Some(_) => Ok(Refs::NONE),
            None => Err(Closed),
        }
    }

    /// Adds one hold only if another is alive (count ≥ 1), closed or not: a
    /// look at the latch that keeps a drain from completing meanwhile, and
    /// never revives a drained one. Always transition A2: no reference
    /// changes hands. False if the count was zero.
    ///
    /// `Relaxed`: as [`try_acquire`](Self::try_acquire), the word's
    /// modification order alone decides whether this came before the last
    /// release (and the drain waits for it) or after (and it is refused).
    #[cfg(any(loom, all(feature = "signal", unix)))]
    pub(crate) fn try_acquire_busy(&self) -> bool {
        self.acquire_unless(|word| word < ONE && !mutant::is("busy-unchecked"))
            .is_some()
    }

    /// Adds one hold in one compare-exchange, unless `refuse` says no to the
    /// word it would replace; the replaced word on success. `Relaxed`, as
    /// its callers explain.
    #[inline]
    fn acquire_unless(&self, refuse: impl Fn(usize) -> bool) -> Option<usize> {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if refuse(cur) {
                return None;
            }
            if cur / ONE >= MAX_COUNT {
                overflow();
            }
            match self.state.compare_exchange_weak(
                cur,
                cur + ONE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(cur),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Removes one hold; returns the references the caller now owns and must
    /// give back (`hold.rs`, transition R1). If that includes the notify
    /// reference, the caller must first announce the drain with
    /// [`notify_drained`](Self::notify_drained), while the reference keeps
    /// the node alive.
    ///
    /// `Release`: every write the holder made happens-before a waiter's
    /// `Acquire` snapshot that sees the lower count (all decrements are
    /// read-modify-writes, so they extend one release sequence). A caller
    /// that is given references to give back issues an `Acquire` fence before
    /// using them, as `Arc::drop` does.
    #[inline]
    pub(crate) fn release(&self, panicking: bool) -> Refs {
        if panicking {
            // Cold path: published by the Release decrement just below.
            self.panicked.fetch_add(1, Ordering::Relaxed);
        }
        let order = if mutant::is("relaxed-release") {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        let prev = self.state.fetch_sub(ONE, order);
        debug_assert!(prev >= ONE, "hold count underflow");
        let left = prev - ONE;
        // The common last release (anchored, nobody watching) owes nothing.
        if left < ONE && left != ANCHORED {
            return Refs::owed_at_zero(left);
        }
        Refs::NONE
    }

    /// Wakes every drain waiter. Called by the release that owns the notify
    /// reference, or by the closer that found no hold.
    ///
    /// `notify` emits a SeqCst fence before reading the listener list; a
    /// waiter registers its listener (also followed by a SeqCst fence) before
    /// its second look at the state. One of the two sees the other: either the
    /// waiter's re-check sees the drained word, or this notification finds its
    /// listener. No lost wake-up.
    pub(crate) fn notify_drained(&self) {
        self.drained.notify(usize::MAX);
        self.sleepers.wake_all();
    }

    /// The anchoring handle lets go (`hold.rs`, transition U). True if holds
    /// are still alive: the handle's reference then becomes their collective
    /// one, and the caller must not touch the node again.
    ///
    /// `AcqRel`: the word's modification order decides whether a concurrent
    /// last release saw the anchor (and left the reference to it) or not (and
    /// gave back the collective one); `Acquire` also orders every hold's uses
    /// of the node (published by their `Release` decrements) before the
    /// handle's drop of what may be the last reference.
    pub(crate) fn unanchor(&self) -> bool {
        let prev = self.state.fetch_and(!ANCHORED, Ordering::AcqRel);
        debug_assert!(prev & ANCHORED != 0, "unanchored twice");
        prev >= ONE
    }

    /// Sets `CLOSED` (`hold.rs`, transition C); `None` if it was set already.
    /// Otherwise the caller must [`announce`](Self::announce) the close
    /// (once it holds no lock a woken waker might want), and the word holds a
    /// notify reference if [`Closing::holds_alive`]: the caller paid it in
    /// advance and keeps it there, or gives it back.
    ///
    /// `AcqRel`: `Release` publishes whatever the closer wrote before (the
    /// reason, the trigger time) to anyone who sees `CLOSED` with `Acquire`.
    pub(crate) fn close(&self) -> Option<Closing> {
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        if prev & CLOSED != 0 {
            return None;
        }
        Some(Closing {
            holds_alive: prev >= ONE,
        })
    }

    /// Wakes the waiters of a close: every trigger waiter, and the drain
    /// waiters if no hold was alive. A waiter that looks at the word after
    /// the close sees `CLOSED` by itself, so announcing later loses nothing.
    pub(crate) fn announce(&self, closing: Closing) {
        self.closed.notify(usize::MAX);
        self.sleepers.wake_all();
        if !closing.holds_alive {
            self.notify_drained();
        }
    }

    /// Registered listeners on both events (for tests of cancellation).
    #[cfg(test)]
    pub(crate) fn listeners(&self) -> usize {
        self.drained.total_listeners() + self.closed.total_listeners()
    }

    /// Sets `CLOSED` without announcing it: a `WaitGroup` waiter asks to be
    /// told when the count reaches zero (`hold.rs`, transition W). True if
    /// the word now holds a notify reference (tokens are alive), which the
    /// caller paid in advance; otherwise the caller gives it back.
    ///
    /// Why no wake-up is lost: this and every decrement are read-modify-writes
    /// of one word. A decrement ordered after this one sees `CLOSED` and
    /// notifies; one ordered before has already lowered the count that the
    /// waiter checks after registering its listener. `AcqRel` is more than
    /// the protocol needs (the word's modification order decides); it keeps
    /// the argument free of ordering subtleties on a path that is already slow.
    ///
    /// The word may already be watched: a `Wait` future that was polled and
    /// then leaked (`mem::forget`) never unwatched. Its request still stands,
    /// and so does the notify reference it paid (if tokens are alive), so
    /// this call keeps nothing and the caller gives its payment back.
    pub(crate) fn watch(&self) -> bool {
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        prev & CLOSED == 0 && prev >= ONE
    }

    /// Clears `CLOSED` after a `WaitGroup` wait, so that later returns to zero
    /// skip the notification (`hold.rs`, transition W'). True if the word held
    /// a notify reference (tokens still alive: the wait gave up), which the
    /// caller now owns and gives back. Only the single waiter (`&mut
    /// WaitGroup`) calls this, so no other waiter can lose its request.
    pub(crate) fn unwatch(&self) -> bool {
        let prev = self.state.fetch_and(!CLOSED, Ordering::AcqRel);
        prev & CLOSED != 0 && prev >= ONE
    }

    fn holds(&self, until: Until) -> bool {
        let snapshot = self.snapshot();
        match until {
            Until::Closed => snapshot.is_closed(),
            Until::Drained => snapshot.is_drained(),
            Until::Zero => snapshot.count() == 0,
        }
    }

    fn listen(&self, until: Until) -> EventListener {
        match until {
            Until::Closed => self.closed.listen(),
            Until::Drained | Until::Zero => self.drained.listen(),
        }
    }

    /// Blocks until `until` holds or `deadline` passes; true if it holds.
    ///
    /// The thread registers in [`Sleepers`] (checking the condition again
    /// under its lock) and parks with std's thread parker; the thread that
    /// makes the condition hold (the release that announces the drain, the
    /// closer) changes the word first and then takes and unparks every
    /// registered thread under the same lock. So either the check under the
    /// lock sees the new word, or the waiter is registered before the waker
    /// looks, and an unpark that comes before the park makes the park return
    /// at once: no lost wake-up. Blocking waiters cost nothing while nobody
    /// waits, and no listener is allocated.
    ///
    /// Under loom, which cannot see std's parker, blocking waiters use the
    /// event-listener path the async waiters use
    /// ([`wait_listening`](Self::wait_listening)).
    pub(crate) fn wait(&self, until: Until, deadline: Option<Instant>) -> bool {
        if cfg!(loom) {
            return self.wait_listening(until, deadline);
        }
        loop {
            if self.holds(until) {
                return true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return false;
            }
            if !self.sleepers.register(|| self.holds(until)) {
                return true;
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => std::thread::park_timeout(deadline - now),
            }
            // Unparked (and taken off the list), or woken early or timed
            // out (still on it): either way off the list before looking again.
            self.sleepers.unregister();
        }
    }

    /// [`wait`](Self::wait) through an event listener: check, listen, check
    /// again, wait. The second check runs after the listener is registered,
    /// so a notification sent after the first check is never lost.
    fn wait_listening(&self, until: Until, deadline: Option<Instant>) -> bool {
        loop {
            if self.holds(until) {
                return true;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                // Nothing to wait for: a zero (or past) deadline only checks,
                // without registering a listener.
                return false;
            }
            let listener = self.listen(until);
            if self.holds(until) && !mutant::is("no-recheck") {
                return true;
            }
            match deadline {
                None => listener.wait(),
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        return self.holds(until);
                    }
                }
            }
        }
    }
}

/// The threads blocked in [`Core::wait`], parked with std's thread parker.
/// (`parking_lot_core`'s parker was measured slower to wake a thread that
/// has just been spawned, in Go's ActuallyWait shape: BENCHMARKS.md.)
#[derive(Debug, Default)]
pub(crate) struct Sleepers(Mutex<Vec<std::thread::Thread>>);

impl Sleepers {
    /// Puts this thread on the list unless `done` (checked under the lock)
    /// already holds; true if it did.
    fn register(&self, done: impl FnOnce() -> bool) -> bool {
        let mut threads = self.0.lock();
        if done() {
            return false;
        }
        threads.push(std::thread::current());
        true
    }

    /// Takes this thread off the list, if it is still there.
    fn unregister(&self) {
        let me = std::thread::current().id();
        self.0.lock().retain(|thread| thread.id() != me);
    }

    /// Unparks every registered thread and empties the list. Call after the
    /// RMW that makes the waited-for condition hold. Nothing under loom,
    /// where nobody registers.
    fn wake_all(&self) {
        if cfg!(loom) {
            return;
        }
        let threads = std::mem::take(&mut *self.0.lock());
        for thread in threads {
            thread.unpark();
        }
    }
}

/// A close that still has to be announced ([`Core::announce`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a close must be announced"]
pub(crate) struct Closing {
    /// Holds were alive at the close: the word holds a notify reference.
    pub(crate) holds_alive: bool,
}

/// `try_acquire` found the core closed.
#[derive(Debug)]
pub(crate) struct Closed;

#[cold]
#[inline(never)]
fn overflow() -> ! {
    // Like `Arc`: an impossible number of live handles (leaked in a loop) is
    // not recoverable, and unwinding here could leave the count half-updated.
    std::process::abort()
}

/// The async half of [`Core::wait`]: at most one listener, created on demand.
///
/// Polling it again with another waker re-registers the new waker (the
/// listener stores the latest one); dropping it removes the listener.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    listener: Option<EventListener>,
}

impl Waiting {
    pub(crate) fn poll(&mut self, core: &Core, until: Until, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_with(|| core.holds(until), || core.listen(until), cx)
    }

    /// Check, listen, check again, wait, for any condition announced on an
    /// event: `holds` is the condition, `listen` registers on its event.
    pub(crate) fn poll_with(
        &mut self,
        holds: impl Fn() -> bool,
        listen: impl Fn() -> EventListener,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        loop {
            if holds() {
                self.listener = None;
                return Poll::Ready(());
            }
            match &mut self.listener {
                // Register, then loop to check again before sleeping.
                None if mutant::is("no-recheck") => {
                    let mut listener = listen();
                    let pending = Pin::new(&mut listener).poll(cx).is_pending();
                    self.listener = Some(listener);
                    if pending {
                        return Poll::Pending;
                    }
                }
                None => self.listener = Some(listen()),
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const COLLECTIVE: Refs = Refs {
        collective: true,
        notify: false,
    };
    const BOTH: Refs = Refs {
        collective: true,
        notify: true,
    };

    #[test]
    fn snapshot_decodes_the_word() {
        let core = Core::new();
        // Anchored and open: no reference changes hands.
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.try_acquire().unwrap(), Refs::NONE);
        let s = core.snapshot();
        assert_eq!(
            (s.count(), s.is_closed(), s.is_drained()),
            (2, false, false)
        );
        // Closed with holds alive: the word now holds a notify reference.
        assert_eq!(core.close(), Some(Closing { holds_alive: true }));
        assert_eq!(core.close(), None);
        assert!(core.try_acquire().is_err());
        assert_eq!(core.release(false), Refs::NONE);
        // The anchor lets go with a hold alive: its reference passes on...
        assert!(core.unanchor());
        // ...and the last release owns both the collective and the notify
        // reference.
        assert_eq!(core.release(true), BOTH);
        assert!(core.snapshot().is_drained());
        assert_eq!(core.panicked(), 1);
    }

    #[test]
    fn each_transition_hands_over_what_the_word_says() {
        let core = Core::new();
        // Anchored, open, count 0 -> 1 -> 0: the fast path.
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.release(false), Refs::NONE);
        // Watch with no token: nothing to keep; with one: a notify reference.
        assert!(!core.watch());
        assert!(!core.unwatch());
        assert_eq!(core.acquire(), Refs::NONE);
        assert!(core.watch());
        // A wait that gives up takes the notify reference back.
        assert!(core.unwatch());
        assert!(core.watch());
        // The last release while watched announces and owns it.
        assert_eq!(core.release(false), Refs::NOTIFY);
        assert!(!core.unwatch());
        // Unanchored: the count leaving and reaching zero moves the
        // collective reference.
        assert!(!core.unanchor());
        assert_eq!(core.acquire(), COLLECTIVE);
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.release(false), Refs::NONE);
        assert_eq!(core.release(false), COLLECTIVE);
        // A closed, unanchored word with no hold: closing owes nothing.
        assert_eq!(core.close(), Some(Closing { holds_alive: false }));
        assert!(core.snapshot().is_drained());
    }

    #[test]
    fn timed_wait_gives_up_and_reports_state() {
        let core = Core::new();
        assert_eq!(core.close(), Some(Closing { holds_alive: false }));
        // A hold taken on a closed word owes the notify reference (A1)...
        assert_eq!(core.acquire(), Refs::NOTIFY);
        let deadline = Instant::now() + std::time::Duration::from_millis(10);
        assert!(!core.wait(Until::Drained, Some(deadline)));
        // ...and its release owns it again (R1).
        assert_eq!(core.release(false), Refs::NOTIFY);
        assert!(core.wait(Until::Drained, Some(Instant::now())));
    }

    /// The overflow check aborts; run in a child process so the abort is
    /// observed rather than suffered.
    #[test]
    fn overflow_aborts_instead_of_wrapping() {
        if std::env::var_os("QUIESCENT_OVERFLOW_CHILD").is_some() {
            let core = Core::new();
            core.state.store(MAX_COUNT * ONE, Ordering::Relaxed);
            let _ = core.acquire();
            unreachable!("acquire past MAX_COUNT returned");
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "state::tests::overflow_aborts_instead_of_wrapping",
                "--nocapture",
            ])
            .env("QUIESCENT_OVERFLOW_CHILD", "1")
            .output()
            .unwrap();
        assert!(!out.status.success());
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(6), "expected SIGABRT: {out:?}");
        }
    }
}
