//! The counting core shared by `WaitGroup` and `Shutdown`.
//!
//! One packed 64-bit atomic word holds the number of live holds (tokens or
//! guards), a `CLOSED` flag and an `ANCHORED` flag; two wait lists
//! (`wakers.rs`: tasks and parked threads, woken outside every lock) carry
//! the wake-ups.
//! The fast path (taking or dropping a hold while the group or latch handle
//! lives, or while other holds live) is a single atomic read-modify-write and
//! touches neither event nor lock nor refcount. A guard's admission is one
//! `fetch_add` too: see [`DRAINING`] for how a refused one stays out of
//! every drain.

use std::task::{Context, Poll};
use std::time::Instant;

use super::sync::{AtomicU64, AtomicUsize, Ordering};
use super::wakers::{Key, Unwound, WaitList};
use crate::mutant;

/// `state` bit 0: closed. While it is set, the live holds reaching zero is
/// announced on `drained`; while it is clear, a return to zero costs
/// nothing beyond the decrement.
///
/// * A `Shutdown` latch sets it once, on trigger, for good, together with
///   [`DRAINING`]; it also makes [`Core::try_acquire`] refuse new holds.
/// * A `WaitGroup` sets it alone, only while its (single, `&mut`) waiter
///   waits ([`Core::watch`] / [`Core::unwatch`]); it never refuses a token,
///   since it only uses [`Core::acquire`].
pub(crate) const CLOSED: u64 = 0b001;
/// `state` bit 1: anchored. Set while a handle (the `WaitGroup`, or the
/// `Shutdown` tree node) owns a strong reference to the node, so the holds
/// need none of their own; see `hold.rs` for the reference protocol.
pub(crate) const ANCHORED: u64 = 0b010;
/// `state` bit 2: draining (set with `CLOSED` by a latch's close, for good).
/// The live holds are counted in the drain field, not the open field.
///
/// Why two fields: admission is one `fetch_add` of [`ONE`] on the open field,
/// refused if the word it replaced was `CLOSED`. The close moves the open
/// count into the drain field in the same compare-exchange that sets
/// `CLOSED`, so every admission before it in the word's modification order
/// is in the drain field, and every refused one after it only raises the
/// open field, which nobody reads once `DRAINING` is set. A refused guard
/// therefore neither backs out nor makes any drain wait, whatever the
/// number of threads refused at once. After the close, a release (or a
/// clone) finds `DRAINING` in the word its open-field RMW replaced, and
/// counts itself in the drain field with a second RMW.
pub(crate) const DRAINING: u64 = 0b100;
/// `state` bits 3..33: the drain field, in units of `DRAIN_ONE` (30 bits).
const DRAIN_ONE: u64 = 1 << 3;
const DRAIN_MASK: u64 = ((1 << 30) - 1) * DRAIN_ONE;
/// `state` bits 33..64: the open field, in units of `ONE` (31 bits). It is
/// the top of the word, so that once [`DRAINING`] is set its refused
/// increments and the releases' decrements wrap off the top of the word
/// without ever carrying into the flags or the drain field.
pub(crate) const ONE: u64 = 1 << 33;
/// Holds beyond this (2^29, on either field) abort the process, like `Arc`'s
/// refcount overflow. A quarter of what the open field and half of what the
/// drain field can represent, so that any number of threads racing past the
/// check still cannot overflow either before one of them aborts, and the
/// open count always fits the drain field when the close moves it there.
pub(crate) const MAX_COUNT: u64 = 1 << 29;

/// The bits of a word whose open count is [`MAX_COUNT`] or more: an open
/// increment that replaced such a word must take the overflow check.
const NEAR_MAX: u64 = !(MAX_COUNT * ONE - 1);
const _: () = assert!(
    NEAR_MAX == 0b11 << 62,
    "the overflow check tests the top two bits"
);

/// The order of a release's RMW (`Core::release`).
#[inline(always)]
fn release_order() -> Ordering {
    // Mutant: a release that does not publish the holder's writes.
    if mutant::is("relaxed-release") {
        Ordering::Relaxed
    } else {
        Ordering::Release
    }
}

/// The drain field of `word`, as a count.
#[inline]
fn drain_count(word: u64) -> u64 {
    (word & DRAIN_MASK) / DRAIN_ONE
}

/// A decoded copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    /// The live holds: the drain field once `DRAINING`, the open field before.
    pub(crate) fn count(self) -> usize {
        self.holds() as usize
    }

    #[inline]
    fn holds(self) -> u64 {
        if self.0 & DRAINING != 0 {
            drain_count(self.0)
        } else {
            self.0 / ONE
        }
    }

    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    /// Closed and no hold left: the condition `drained` announces.
    pub(crate) fn is_drained(self) -> bool {
        self.is_closed() && self.holds() == 0
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
    fn owed_at_zero(flags: u64) -> Self {
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
    /// | bits   | meaning                                              |
    /// |--------|------------------------------------------------------|
    /// | 0      | `CLOSED`                                             |
    /// | 1      | `ANCHORED`                                           |
    /// | 2      | `DRAINING`                                           |
    /// | 3..33  | drain field: live holds once `DRAINING`, else zero   |
    /// | 33..64 | open field: live holds until `DRAINING`, then unused |
    state: AtomicU64,
    /// Holds dropped while their thread was panicking, since creation. Only
    /// written on the unwinding path.
    panicked: AtomicUsize,
    /// Woken when the count reaches zero while `CLOSED` is set (`ANCHORED`
    /// aside): drain waiters, or a `WaitGroup`'s waiter.
    drained: WaitList,
    /// Woken when `CLOSED` is set: trigger waiters, tasks and threads.
    closed: WaitList,
}

impl Core {
    /// An open core with no holds, anchored by the handle that creates it.
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(ANCHORED),
            panicked: AtomicUsize::new(0),
            drained: WaitList::default(),
            closed: WaitList::default(),
        }
    }

    /// A snapshot of the state.
    ///
    /// `Acquire`: a caller that sees the count at zero (or `CLOSED`) also sees
    /// every write made before the `Release` decrements (or the `close`) it
    /// observes, which is what makes `wait` a happens-before edge. (Every
    /// write to the word is a read-modify-write, so each `Release` one heads
    /// a release sequence that runs through all later ones, whichever field
    /// they change.)
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
        if prev & DRAINING != 0 {
            // The increment went to the unused open field; count it where
            // the drain looks.
            return self.acquire_draining();
        }
        Self::admitted(prev)
    }

    /// Adds one hold beside one the caller owns on this core (a clone):
    /// always transition A2, since the caller's own hold keeps the count at
    /// one or more in whichever field counts it, so no reference changes
    /// hands. One `fetch_add` and one test: a `DRAINING` word (the hold then
    /// counts itself in the drain field with a second RMW) and a count
    /// nearing [`MAX_COUNT`] share one cold path, which decides exactly as
    /// [`acquire`](Self::acquire) would, so a caller whose count were at
    /// zero after all would still be handed the references it owes.
    ///
    /// `Relaxed`: as [`acquire`](Self::acquire).
    #[inline]
    pub(crate) fn acquire_another(&self) -> Refs {
        let prev = self.state.fetch_add(ONE, Ordering::Relaxed);
        // Mutant: a clone after the close that is not counted where the
        // drain looks.
        let slow = if mutant::is("clone-skips-drain") {
            NEAR_MAX
        } else {
            DRAINING | NEAR_MAX
        };
        if prev & slow != 0 {
            return self.acquire_another_slow(prev);
        }
        debug_assert!(prev >= ONE, "a clone of a hold that is not counted");
        Refs::NONE
    }

    /// [`acquire_another`](Self::acquire_another)'s increment that replaced
    /// `prev`, a `DRAINING` word or one whose open count reached
    /// [`MAX_COUNT`]: what [`acquire`](Self::acquire) decides after its RMW.
    #[cold]
    #[inline(never)]
    fn acquire_another_slow(&self, prev: u64) -> Refs {
        if prev & DRAINING != 0 {
            return self.acquire_draining();
        }
        Self::admitted(prev)
    }

    /// What an open-field increment that replaced `prev` (not `DRAINING`)
    /// hands over: transition A1 if the open count left zero, else A2.
    /// (Without `DRAINING` the drain field is zero, so `prev < ONE` is "the
    /// count was zero".)
    #[inline]
    fn admitted(prev: u64) -> Refs {
        Self::added_to(prev / ONE, prev)
    }

    /// What raising a count that was `held` (in the word `prev`) hands over:
    /// A1's references if it left zero, none (A2) otherwise; aborts past
    /// [`MAX_COUNT`].
    #[inline]
    fn added_to(held: u64, prev: u64) -> Refs {
        if held == 0 {
            return Refs::owed_at_zero(prev);
        }
        if held >= MAX_COUNT {
            overflow();
        }
        Refs::NONE
    }

    /// Adds one hold to the drain field of a `DRAINING` word: the second
    /// RMW of a hold taken after a latch's close (a clone of a live guard).
    /// Transition A1 or A2 on the drain field. `Relaxed`, as `acquire`.
    #[cold]
    #[inline(never)]
    fn acquire_draining(&self) -> Refs {
        let prev = self.state.fetch_add(DRAIN_ONE, Ordering::Relaxed);
        Self::added_to(drain_count(prev), prev)
    }

    /// Adds one hold unless `CLOSED`, in one `fetch_add`; on success, the
    /// references the caller must take, as for [`acquire`](Self::acquire)
    /// (never the notify one: the core is open).
    ///
    /// A refused increment lands in the open field of a `DRAINING` word,
    /// which nothing reads any more ([`DRAINING`]): it is never backed out
    /// and never seen by a drain, so refusals cannot hold a drain off.
    ///
    /// `Relaxed`: admission and `close` are read-modify-writes of this one
    /// word, so the word's modification order alone decides whether a hold
    /// came before the close (and the close moved it into the drain field,
    /// which every drain reads) or after (and it is refused). No data is
    /// published by admission.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<Refs, Closed> {
        let prev = self.state.fetch_add(ONE, Ordering::Relaxed);
        if prev & CLOSED != 0 {
            if mutant::is("unchecked-admission") {
                // Admitted after the trigger: counted where the drain looks.
                return Ok(self.acquire_draining());
            }
            return Err(Closed);
        }
        Ok(Self::admitted(prev))
    }

    /// Adds one hold only if another is alive (count ≥ 1), closed or not: a
    /// look at the latch that keeps a drain from completing meanwhile, and
    /// never revives a drained one. Always transition A2: no reference
    /// changes hands. False if the count was zero.
    ///
    /// A compare-exchange on whichever field counts the holds (the drain
    /// field once `DRAINING`), so the check and the increment are one RMW.
    /// `Relaxed`: as [`try_acquire`](Self::try_acquire), the word's
    /// modification order alone decides whether this came before the last
    /// release (and the drain waits for it) or after (and it is refused).
    #[cfg(any(loom, all(feature = "signal", unix)))]
    pub(crate) fn try_acquire_busy(&self) -> bool {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let unit = if cur & DRAINING != 0 { DRAIN_ONE } else { ONE };
            let held = Snapshot(cur).holds();
            if held == 0 && !mutant::is("busy-unchecked") {
                return false;
            }
            if held >= MAX_COUNT {
                overflow();
            }
            match self.state.compare_exchange_weak(
                cur,
                cur.wrapping_add(unit),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
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
    /// `Acquire` snapshot that sees the lower count (all writes to the word
    /// are read-modify-writes, so they extend one release sequence). A caller
    /// that is given references to give back issues an `Acquire` fence before
    /// using them, as `Arc::drop` does.
    #[inline(always)]
    pub(crate) fn release(&self, panicking: bool) -> Refs {
        let prev = self.release_word(panicking);
        if Self::owes_nothing(prev) {
            return Refs::NONE;
        }
        match Self::settle(prev) {
            Some(refs) => refs,
            None => self.release_draining(),
        }
    }

    /// [`release`](Self::release)'s read-modify-write alone: returns the
    /// word it replaced, which [`owes_nothing`](Self::owes_nothing) and
    /// [`settle`](Self::settle) decide. (Split so that a hold's drop can
    /// inline this and the test, and decide the rest out of line.)
    #[inline(always)]
    pub(crate) fn release_word(&self, panicking: bool) -> u64 {
        if panicking {
            // Cold path: published by the Release decrement just below.
            self.panicked.fetch_add(1, Ordering::Relaxed);
        }
        self.state.fetch_sub(ONE, release_order())
    }

    /// The common releases, decided by one test: another hold is left in
    /// the open field, or the last one goes from an anchored, open,
    /// unwatched word. Both are R2 and owe nothing.
    #[inline(always)]
    pub(crate) fn owes_nothing(prev: u64) -> bool {
        (prev & DRAINING == 0 && prev >= 2 * ONE) || prev == ONE + ANCHORED
    }

    /// What a release that replaced `prev` owes; `None` if the hold is
    /// counted in the drain field, which [`release_draining`](Self::release_draining)
    /// must then release. A function of the word alone: the release may
    /// have been the last one, and the node gone.
    #[inline]
    pub(crate) fn settle(prev: u64) -> Option<Refs> {
        if prev & DRAINING != 0 && !mutant::is("release-skips-drain") {
            // The decrement went to the unused open field (where it wraps
            // off the top harmlessly); this hold is counted in the drain field.
            return None;
        }
        debug_assert!(prev >= ONE, "hold count underflow");
        let left = prev.wrapping_sub(ONE);
        // The common last release (anchored, nobody watching) owes nothing.
        if left < ONE && left != ANCHORED {
            return Some(Refs::owed_at_zero(left));
        }
        Some(Refs::NONE)
    }

    /// Removes one hold from the drain field of a `DRAINING` word: the
    /// second RMW of a release after a latch's close, and the one that
    /// decides R1 (the drain field reaching zero) or R2. Ordered as
    /// `release`'s. Call only when [`settle`](Self::settle) says so: the
    /// hold's count in the drain field keeps the node alive until this.
    #[inline(never)]
    pub(crate) fn release_draining(&self) -> Refs {
        let prev = self.state.fetch_sub(DRAIN_ONE, release_order());
        debug_assert!(drain_count(prev) >= 1, "drain count underflow");
        let left = prev.wrapping_sub(DRAIN_ONE);
        if drain_count(left) == 0 {
            return Refs::owed_at_zero(left);
        }
        Refs::NONE
    }

    /// Wakes every drain waiter. Called by the release that owns the notify
    /// reference, or by the closer that found no hold, after the RMW that
    /// drained the word: a waiter checks the word under the list's lock
    /// before it registers, so either it sees the drained word or this finds
    /// it registered (`wakers.rs`). No lost wake-up. A waker's panic comes
    /// back as the `Unwound`, after every other waiter was woken.
    pub(crate) fn notify_drained(&self) -> Unwound {
        self.drained.wake_all()
    }

    /// Wakes the drain waiters without a drain, so that a waiter for "drained
    /// or something else" (a phased drain's grace period, which ends early
    /// when the latch is forced) looks again. Drain waiters only re-check.
    pub(crate) fn wake_drain_waiters(&self) -> Unwound {
        self.drained.wake_all()
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
        Snapshot(prev).holds() > 0
    }

    /// Sets `CLOSED` and `DRAINING` and moves the open count into the drain
    /// field, in one compare-exchange (`hold.rs`, transition C); `None` if
    /// the word was closed already. Otherwise the caller must
    /// [`announce`](Self::announce) the close (once it holds no lock a woken
    /// waker might want), and the word holds a notify reference if
    /// [`Closing::holds_alive`]: the caller paid it in advance and keeps it
    /// there, or gives it back.
    ///
    /// A compare-exchange, not a `fetch_or`, because the move depends on the
    /// count it replaces; it retries only while open-field holds come and go,
    /// and the word is closed for good once it succeeds. `AcqRel`: `Release`
    /// publishes whatever the closer wrote before (the reason, the trigger
    /// time) to anyone who sees `CLOSED` with `Acquire`; `Acquire` (also on
    /// the loads) so that a caller told "closed already" sees that close's
    /// writes, as with the `fetch_or` this replaced.
    pub(crate) fn close(&self) -> Option<Closing> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & CLOSED != 0 {
                return None;
            }
            let held = cur / ONE;
            let moved = if mutant::is("close-keeps-count") {
                0
            } else {
                held * DRAIN_ONE
            };
            let closed = (cur & ANCHORED) | CLOSED | DRAINING | moved;
            match self
                .state
                .compare_exchange_weak(cur, closed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Closing {
                        holds_alive: held > 0,
                    })
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Wakes the waiters of a close: every trigger waiter, and the drain
    /// waiters if no hold was alive. A waiter that looks at the word after
    /// the close sees `CLOSED` by itself, so announcing later loses nothing.
    ///
    /// A waker's panic is caught and returned, after every other waiter (and
    /// the drain's, with no hold alive) was woken.
    pub(crate) fn announce(&self, closing: Closing) -> Unwound {
        let mut unwound = self.closed.wake_all();
        if !closing.holds_alive {
            unwound.keep(self.notify_drained());
        }
        unwound
    }

    /// Registered waiters on both lists (for tests of cancellation).
    #[cfg(test)]
    pub(crate) fn listeners(&self) -> usize {
        self.drained.len() + self.closed.len()
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
        prev & CLOSED == 0 && Snapshot(prev).holds() > 0
    }

    /// Clears `CLOSED` after a `WaitGroup` wait, so that later returns to zero
    /// skip the notification (`hold.rs`, transition W'). True if the word held
    /// a notify reference (tokens still alive: the wait gave up), which the
    /// caller now owns and gives back. Only the single waiter (`&mut
    /// WaitGroup`) calls this, so no other waiter can lose its request.
    pub(crate) fn unwatch(&self) -> bool {
        let prev = self.state.fetch_and(!CLOSED, Ordering::AcqRel);
        debug_assert!(prev & DRAINING == 0, "a latch's close is for good");
        prev & CLOSED != 0 && Snapshot(prev).holds() > 0
    }

    fn holds(&self, until: Until) -> bool {
        let snapshot = self.snapshot();
        match until {
            Until::Closed => snapshot.is_closed(),
            Until::Drained => snapshot.is_drained(),
            Until::Zero => snapshot.count() == 0,
        }
    }

    fn list(&self, until: Until) -> &WaitList {
        match until {
            Until::Closed => &self.closed,
            Until::Drained | Until::Zero => &self.drained,
        }
    }

    /// Blocks until `until` holds or `deadline` passes; true if it holds.
    ///
    /// The thread registers on the event's wait list (checking the condition
    /// again under its lock) and parks; the thread that makes the condition
    /// hold (the release that announces the drain, the closer) changes the
    /// word first and then takes and unparks every registered thread. No
    /// lost wake-up (`wakers.rs`). Blocking waiters cost nothing while
    /// nobody waits. Under loom the same code parks with loom's parker.
    pub(crate) fn wait(&self, until: Until, deadline: Option<Instant>) -> bool {
        self.list(until).block(|| self.holds(until), deadline)
    }

    /// [`wait`](Self::wait) for `until`'s event with another condition: one
    /// that holds when `until` does, or earlier, woken through `until`'s
    /// list (a phased drain's grace: drained, or forced).
    pub(crate) fn wait_for(
        &self,
        until: Until,
        done: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        self.list(until).block(done, deadline)
    }

    /// The async half of [`wait`](Self::wait): ready if `until` holds, else
    /// the task's waker is registered under `key` (`wakers.rs`).
    pub(crate) fn poll(&self, until: Until, key: &mut Key, cx: &mut Context<'_>) -> Poll<()> {
        self.list(until).poll(key, cx, || self.holds(until))
    }

    /// A future of [`poll`](Self::poll) goes: its registration is taken out
    /// (unless the event has happened and took it).
    pub(crate) fn cancel(&self, until: Until, key: &mut Key) {
        self.list(until).cancel(key, || self.holds(until));
    }
}

/// A one-way flag of a latch (forced; a failure recorded in its subtree):
/// set once, never cleared. In the core so that no file outside it names an
/// atomic read-modify-write.
#[derive(Debug)]
pub(crate) struct Flag(AtomicUsize);

impl Flag {
    pub(crate) fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// Sets the flag; true for the call that set it (one RMW elects it).
    ///
    /// `AcqRel`: `Release` publishes what the setter wrote before (a failure
    /// record, what the forcing thread did) to whoever sees the flag with
    /// [`is_set`](Self::is_set); `Acquire` so that a setter that finds it set
    /// already sees the first setter's writes too.
    pub(crate) fn set(&self) -> bool {
        self.0.fetch_or(1, Ordering::AcqRel) == 0
    }

    /// Whether the flag is set. `Acquire`: pairs with [`set`](Self::set).
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire) != 0
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
    fn refused_admissions_never_reach_the_drain_field() {
        let core = Core::new();
        assert_eq!(core.try_acquire().unwrap(), Refs::NONE);
        assert_eq!(core.try_acquire().unwrap(), Refs::NONE);
        // The close moves both holds into the drain field.
        assert_eq!(core.close(), Some(Closing { holds_alive: true }));
        // One pre-close hold goes: its open-field decrement is ignored, its
        // drain-field one counts.
        assert_eq!(core.release(false), Refs::NONE);
        assert_eq!(core.snapshot().count(), 1);
        // Refusals only raise the unused open field: no back-out, and the
        // count the drain reads does not move.
        for _ in 0..1000 {
            assert!(core.try_acquire().is_err());
            assert_eq!(core.snapshot().count(), 1);
        }
        // A clone of the live hold after the close counts in the drain field.
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.snapshot().count(), 2);
        assert_eq!(core.release(false), Refs::NONE);
        assert!(!core.snapshot().is_drained());
        // The last one drains the latch and owns the notify reference.
        assert_eq!(core.release(false), Refs::NOTIFY);
        assert!(core.snapshot().is_drained());
        assert!(core.try_acquire().is_err());
        assert!(core.snapshot().is_drained());
    }

    #[test]
    fn the_unused_open_field_wraps_off_the_top_of_the_word() {
        let core = Core::new();
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.close(), Some(Closing { holds_alive: true }));
        // Open field at zero: the release's decrement borrows off bit 63...
        assert_eq!(core.release(false), Refs::NOTIFY);
        let word = core.state.load(Ordering::Relaxed);
        assert_eq!(word & (ONE - 1), ANCHORED | CLOSED | DRAINING);
        assert!(core.snapshot().is_drained());
        // ...and a storm of refusals carries off it: flags and drain field
        // never change.
        core.state.store(!(ONE - 1) | word, Ordering::Relaxed);
        for _ in 0..3 {
            assert!(core.try_acquire().is_err());
            assert_eq!(
                core.state.load(Ordering::Relaxed) & (ONE - 1),
                ANCHORED | CLOSED | DRAINING
            );
        }
        assert!(core.snapshot().is_drained());
        assert_eq!(core.snapshot().count(), 0);
    }

    #[test]
    fn the_close_moves_the_largest_open_count() {
        let core = Core::new();
        core.state
            .store(ANCHORED | ((MAX_COUNT + 64) * ONE), Ordering::Relaxed);
        assert_eq!(core.close(), Some(Closing { holds_alive: true }));
        let snapshot = core.snapshot();
        assert_eq!(snapshot.count() as u64, MAX_COUNT + 64);
        assert!(snapshot.is_closed() && !snapshot.is_drained());
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

    /// A clone's one-test acquire decides as `acquire` does: in the open
    /// field before the close, in the drain field after it (so the drain
    /// waits for the clone), and one below the limit is still no overflow.
    #[test]
    fn acquire_another_counts_where_the_drain_looks() {
        let core = Core::new();
        assert_eq!(core.acquire(), Refs::NONE);
        assert_eq!(core.acquire_another(), Refs::NONE);
        assert_eq!(core.snapshot().count(), 2);
        assert_eq!(core.close(), Some(Closing { holds_alive: true }));
        assert_eq!(core.acquire_another(), Refs::NONE);
        assert_eq!(core.snapshot().count(), 3);
        for _ in 0..2 {
            assert_eq!(core.release(false), Refs::NONE);
        }
        assert!(!core.snapshot().is_drained());
        assert_eq!(core.release(false), Refs::NOTIFY);
        assert!(core.snapshot().is_drained());

        let below = Core::new();
        below.state.store((MAX_COUNT - 1) * ONE, Ordering::Relaxed);
        assert_eq!(below.acquire_another(), Refs::NONE);
        assert_eq!(below.snapshot().count() as u64, MAX_COUNT);
    }

    /// The overflow check aborts; run in a child process so the abort is
    /// observed rather than suffered.
    #[test]
    fn overflow_aborts_instead_of_wrapping() {
        if let Some(field) = std::env::var_os("QUIESCENT_OVERFLOW_CHILD") {
            let core = Core::new();
            if field == "drain" {
                // A clone after the close, on a drain field at the limit.
                let full = ANCHORED | CLOSED | DRAINING | (MAX_COUNT * DRAIN_ONE);
                core.state.store(full, Ordering::Relaxed);
            } else {
                core.state.store(MAX_COUNT * ONE, Ordering::Relaxed);
            }
            if std::env::var_os("QUIESCENT_OVERFLOW_CLONE").is_some_and(|v| v == "1") {
                let _ = core.acquire_another();
            } else {
                let _ = core.acquire();
            }
            unreachable!("acquire past MAX_COUNT returned");
        }
        for (field, clone) in [
            ("open", false),
            ("drain", false),
            ("open", true),
            ("drain", true),
        ] {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "core::state::tests::overflow_aborts_instead_of_wrapping",
                    "--nocapture",
                ])
                .env("QUIESCENT_OVERFLOW_CHILD", field)
                .env("QUIESCENT_OVERFLOW_CLONE", if clone { "1" } else { "" })
                .output()
                .unwrap();
            assert!(!out.status.success(), "{field}: {out:?}");
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(out.status.signal(), Some(6), "expected SIGABRT: {out:?}");
            }
        }
    }
}
