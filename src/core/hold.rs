//! The crate's only `unsafe` outside the loom shadow: a counted pointer whose
//! clone and drop cost one atomic read-modify-write each, and the anchor that
//! makes that possible. This is the reference protocol the whole crate rests
//! on; it carries the burden of proof that `Arc` carries for everyone else.
//!
//! # Why not one `Arc` per hold
//!
//! A `Token` or `Guard` must keep the shared node alive, but an `Arc` clone
//! per hold would double the fast path (one RMW on the refcount, one on the
//! hold count). Instead the node's state word (`state.rs`: `CLOSED`,
//! `ANCHORED`, the count) also says which references to the node exist on the
//! holds' behalf, and only the transitions that change *that* touch the
//! refcount.
//!
//! # The references
//!
//! The node lives in an `Arc<N>`. Its strong count is the sum of:
//!
//! * **owned references**: ordinary `Arc`s held by the [`Anchor`] (while
//!   `ANCHORED`), by futures, by child latches' parent links, by a spawned
//!   thread's wrapper, and for the length of a call by whoever upgraded a
//!   child link (the trigger's cascade) or called [`Hold::to_arc`] (a
//!   guard's future, a failing guard's trigger). Any of them may be made
//!   from a hold: a guard can reach, and trigger, its latch with no handle
//!   left;
//! * **the collective reference**, owned by the holds as a group. It exists
//!   exactly when the word has `count > 0` and `ANCHORED` clear;
//! * **the notify reference**, owned by "the release that will announce the
//!   drain". It exists exactly when the word has `count > 0` and `CLOSED` set.
//!
//! # Invariants
//!
//! 1. **The word says which references exist.** Outside the short windows
//!    of the transitions below (A1's and C's, argued there), the collective
//!    and notify references exist exactly when the word says so.
//! 2. **One payer, one owner.** Whoever performs a read-modify-write of the
//!    word that makes one of them come into existence pays it (an
//!    increment), and whoever performs the one that makes it cease owns it
//!    and gives it back (a decrement). Each transition is one RMW of one
//!    word, so for every reference exactly one thread is its payer and
//!    exactly one its owner, whatever the interleaving.
//! 3. **While `count > 0`, the strong count is at least one** (from 1): the
//!    anchor's (if `ANCHORED`) or the collective reference (if not). A hold
//!    may therefore touch its node at any time, and take a new reference from
//!    a raw pointer (`Hold::to_arc`), as `Arc::increment_strong_count`
//!    requires.
//! 4. **Nothing touches a node without owning something that keeps it
//!    alive at that moment**: a count (3), an owned reference, or the notify
//!    reference while it announces a drain. A release reads what it needs
//!    (the parent link) *before* its RMW gives its count up.
//! 5. **The last reference goes after an `Acquire` edge** from every other
//!    hold's `Release` decrement (the fence of `Arc::drop`), so every use of
//!    the node happens before its free.
//! 6. **Unwinding gives everything back.** Every waker a transition wakes
//!    runs under `catch_unwind` (`wakers.rs`): a waker's panic cannot cut an
//!    R1 between its announcement and its references, nor a release chain
//!    between a child's level and its ancestors', nor a close between its
//!    payment and the cascade. The panic is resumed once all of it is done
//!    (dropped if the thread is unwinding already). A count whose release is
//!    deferred (D, below) is owned by the thread's deferral slot meanwhile.
//!
//! # The transitions
//!
//! "count" below is the number of live holds, which the word keeps in one of
//! two fields (`state.rs`, `DRAINING`): the open field until a latch's close,
//! the drain field from then on. On a `DRAINING` word a hold is taken or
//! given back in two RMWs: the first, on the open field, is the one every
//! hold does and finds `DRAINING` in the word it replaced; it changes only a
//! field nothing reads any more, so it is no transition. The second, on the
//! drain field, is the A or R transition below.
//!
//! | | RMW | before → after | references |
//! |---|---|---|---|
//! | A0 | admission (`fetch_add`) on a `CLOSED` word | count unchanged (only the unused open field rises) | none: refused, and never backed out |
//! | A1 | acquire (`fetch_add`) | count 0 → 1 | the acquirer pays the collective one if unanchored, the notify one if `CLOSED` |
//! | A2 | acquire; a clone's `acquire_another` is always A2 (the cloned hold counts already) and tests only for `DRAINING` and overflow | count n → n+1, n ≥ 1 | none: the fast path |
//! | A2' | acquire if busy (compare-exchange, the signal policy's look) | count n → n+1 only if n ≥ 1 | none; refused at zero, so it never revives a drained word |
//! | R1 | release (`fetch_sub`) | count 1 → 0 | the releaser owns the collective one if unanchored, the notify one if `CLOSED`; it announces the drain *before* giving the notify one back |
//! | R2 | release | count n+1 → n, n ≥ 1; or 1 → 0 anchored and open | none: the fast path |
//! | U | unanchor (`fetch_and`) | clears `ANCHORED` | if count > 0, the anchor's own reference *becomes* the collective one (no refcount change); else the anchor drops it |
//! | C | close (compare-exchange, latches) | sets `CLOSED` and `DRAINING`, moves the count from the open field to the drain field | the count is unchanged, so the collective one is too; the closer pays the notify reference *before* the RMW and gives it back if count was 0 |
//! | W | watch (`fetch_or`, a waiting `WaitGroup`) | sets `CLOSED` | as C; if it was set already (a `Wait` future leaked before it could unwatch), the notify reference is paid already and the new payment goes back |
//! | W' | unwatch (`fetch_and`) | clears `CLOSED` | if count > 0, the unwatcher owns the notify reference and gives it back |
//! | D | deferred release (no RMW): a spawn guard dropped by its thread's panic | count unchanged | none: the count passes from the hold to the thread's deferral slot, and back to a hold in the spawn's wrapper, which releases it (R1 or R2) once the panic's message is recorded |
//!
//! Why each keeps the invariant, and never lets the strong count touch zero
//! while the node is still in use:
//!
//! * **A0** changes no count that decides a reference: `CLOSED` is only ever
//!   set together with `DRAINING` on a latch (a `WaitGroup`'s watch sets it
//!   alone, but a `WaitGroup` never admits conditionally).
//! * **The two-RMW holds on a `DRAINING` word** are safe in between: a
//!   release's hold is still in the drain field until its second RMW (so
//!   the node stays alive, as for any live hold); an acquire's new hold is
//!   not in it yet, but the acquirer reaches the node through a handle or a
//!   live hold of its own, as for A1.
//! * **A1** pays *after* its RMW. The window is safe: the acquirer reaches the
//!   node through a handle it owns (strong ≥ 1), and the reference it owes can
//!   only be given back by an R1, which needs this very hold released first.
//!   (A W' could take a notify reference paid late by an A1 on a `CLOSED`
//!   word, but both need the `WaitGroup`: `token` borrows it shared, `wait`
//!   exclusively, so they never overlap; latches never reopen.)
//! * **R1** gives back only what the word says it owns, and announces the
//!   drain while the notify reference keeps the node alive: a waiter that sees
//!   the drained word returns, its caller drops the last handle at once, and
//!   the node still outlives the notification. Before giving anything back it
//!   issues an `Acquire` fence, pairing with every other hold's `Release`
//!   decrement, so every hold's uses of the node happen before the free (the
//!   fence `Arc::drop` has). If a waker panics during the announcement, the
//!   other waiters are still woken, the references are still given back,
//!   and the ancestors' levels of the same release are released, all before
//!   the panic is resumed ([`finish_release`], invariant 6).
//! * **U** hands over rather than taking a new reference: taking one *after*
//!   the RMW would let an R1 in between give back a collective reference not
//!   yet paid, freeing the node under the anchor. After U with holds alive the
//!   anchor does not touch the node again.
//! * **C / W** pay *before* their RMW, for the same reason: an R1 may take and
//!   give back the notify reference the moment `CLOSED` is set. The closer
//!   owns a reference (the anchor's, or one upgraded from a child link by
//!   the cascade, or taken from a failing guard), so paying and giving back
//!   can never free the node; it also wakes the close's waiters (and, with
//!   no hold alive, the drain's) through that reference, after releasing
//!   the trigger's lock, catching a waker's panic until the cascade is done.
//! * **D** moves a count without an RMW: no reference changes hands, and
//!   the count keeps the node alive (3) while the slot owns it. Only the
//!   hold dropped right after `defer_release` on the same thread is
//!   deferred, and only while that thread unwinds; the wrapper that armed it
//!   takes it back after the body returns or unwinds, on the same thread.
//! * **W'** gives back while the waiter still owns the `WaitGroup`'s anchor,
//!   so it never frees the node.
//!
//! A hold on a child latch counts on every ancestor too; each level runs the
//! protocol on its own word. A release reads the parent link before its RMW
//! on the child (afterwards the child may be gone); the parent stays alive
//! because this hold still counts on it.
//!
//! # Who keeps the node alive while a notification is in flight
//!
//! The notify reference. It is paid by whoever sets `CLOSED` with holds alive
//! (C, W, or an A1 on a closed word) and owned by the R1 that announces the
//! drain, from its RMW until after `notify_drained` returns. Neither the
//! anchor nor the waiter is trusted to outlive the notification: a waiter may
//! see the drained word by itself, return, and let its caller drop the group.
//!
//! # How this is checked
//!
//! * loom: under `--cfg loom`, `sync::Arc` is `shadow.rs`'s, whose strong
//!   count is a loom atomic that panics on an increment from zero, on a
//!   release at zero, and (through [`touch`]) on any touch of a node after, or
//!   concurrently with, its free; every model also checks that all its nodes
//!   were freed by its end (a reference paid twice is a leak). The models in
//!   `loom-tests/` drop handles without joining the holders first, and
//!   `loom-tests/mutants.sh` puts each past defect back and shows a model
//!   catching it. Invariants 1-5: `handles.rs` and `shutdown.rs`; 6:
//!   `promises::panicking_waker_vs_blocked_drainer` (mutant
//!   `panic-cuts-wakes`) and `promises::spawned_panic_message_reaches_the_drain`
//!   (D; mutant `spawn-no-defer`).
//! * AddressSanitizer: `tests/races.rs` hammers every "a handle goes" against
//!   "the last hold goes / notifies", `tests/suite/wakers.rs` panics out of wakers
//!   on every path, and `.ci/sanitizers` runs the test suite under ASan and
//!   LeakSanitizer.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use super::state::{Closed, Closing, Core, Refs};
use super::sync::{fence, keep_alive, touch, Arc, KeepAlive, Ordering};
use super::wakers::Unwound;
use crate::mutant;

/// Something that can be held: a counting core, and the parent whose count
/// every hold on this node also raises (a child latch's guards keep its
/// parent's drain open).
pub(crate) trait Node: Send + Sync + Sized {
    fn core(&self) -> &Core;
    fn parent(&self) -> Option<&Arc<Self>>;
}

/// One count on a node and on each of its ancestors.
pub(crate) struct Hold<N: Node> {
    ptr: NonNull<N>,
    /// Nothing outside loom; under loom, keeps the node's memory (not its
    /// value) allocated so a protocol bug fails the model cleanly.
    _keep: KeepAlive<N>,
    /// Behaves as a (shared) `Arc<N>` for variance, auto traits and drop check.
    _owns: PhantomData<Arc<N>>,
}

// SAFETY: a `Hold` is a counted `&N` that keeps `N` alive; sending or sharing
// it across threads is sending or sharing `&N`, sound because `N: Send + Sync`
// (required by `Node`).
unsafe impl<N: Node> Send for Hold<N> {}
// SAFETY: as above.
unsafe impl<N: Node> Sync for Hold<N> {}

impl<N: Node> Hold<N> {
    /// Takes a count on `node` and its ancestors, whether closed or not.
    #[inline]
    pub(crate) fn acquire(node: &Arc<N>) -> Self {
        acquire_levels(&**node);
        Self::from_arc(node)
    }

    /// Takes a count on `node` and its ancestors, child first, refusing if
    /// any of them is closed (and giving back what it took).
    ///
    /// Every level checks its own `CLOSED` bit in the same read-modify-write
    /// that raises its count (A1 or A2, or the refused A0: one `fetch_add`),
    /// so each latch's drain depends on its own word alone: a guard admitted at the parent before the parent's close
    /// is in the parent's count for every drain; one that comes after is
    /// refused, even if the parent's cascade has not reached the child yet.
    /// (Raising ancestors unconditionally after checking only the child
    /// would let a parent's drain finish in between; a loom model catches
    /// that.) A loop, not a recursion: a chain of any depth costs no stack.
    #[inline]
    pub(crate) fn try_acquire(node: &Arc<N>) -> Result<Self, Closed> {
        if let (true, Some(parent)) = (mutant::is("unchecked-ancestors"), node.parent()) {
            // Only this level decides; ancestors are raised afterwards,
            // unconditionally: a parent's drain can finish in between.
            let refs = node.core().try_acquire()?;
            take_refs(&**node, refs);
            acquire_levels(&**parent);
            return Ok(Self::from_arc(node));
        }
        Self::acquire_each_level(node, |level| match level.core().try_acquire() {
            Ok(refs) => {
                take_refs(level, refs);
                true
            }
            Err(Closed) => false,
        })
        .ok_or(Closed)
    }

    /// Takes a count on `node` and its ancestors only if each level has a
    /// live hold already, closed or not (transition A2' on every level, child
    /// first, like admission). `None` if a level had none; the levels taken
    /// below it are given back. Checking every level, not only `node`'s,
    /// matters: a child's count can be an admission that its parent is about
    /// to refuse, and raising the parent unconditionally would revive it
    /// after its drain.
    #[cfg(any(loom, all(feature = "signal", unix)))]
    pub(crate) fn acquire_if_busy(node: &Arc<N>) -> Option<Self> {
        Self::acquire_each_level(node, |level| level.core().try_acquire_busy())
    }

    /// Takes a count on `node` and on each ancestor, child first, with
    /// `take` (true if it took the level's count and paid what it owed);
    /// the first level it refuses ends the walk, and the levels already
    /// taken below it are given back. A loop, not a recursion.
    ///
    /// The first level is taken inline and the ancestors out of line, so a
    /// root latch's guard costs no loop.
    #[inline]
    fn acquire_each_level(node: &Arc<N>, take: impl Fn(&N) -> bool) -> Option<Self> {
        // The parent link is read before the level's RMW, which a load
        // after it would have to wait for.
        let parent = node.parent();
        if !take(node) {
            return None;
        }
        if let Some(parent) = parent {
            if !Self::acquire_ancestors(node, parent, take) {
                return None;
            }
        }
        Some(Self::from_arc(node))
    }

    /// [`acquire_each_level`](Self::acquire_each_level) from `node`'s
    /// parent up, `node` itself taken already; false (and `node`'s and the
    /// taken levels' counts given back) if a level refuses.
    #[inline(never)]
    fn acquire_ancestors(node: &Arc<N>, parent: &N, take: impl Fn(&N) -> bool) -> bool {
        let mut level = parent;
        loop {
            if !take(level) {
                // SAFETY: the levels from `node` up to, not including,
                // `level` each hold one count of ours (taken above);
                // `release_chain` gives back exactly those and stops at
                // `level`.
                unsafe { release_chain(Arc::as_ptr(node), false, level) };
                return false;
            }
            match level.parent() {
                Some(parent) => level = parent,
                None => return true,
            }
        }
    }

    /// Wraps the count just taken on `node`.
    fn from_arc(node: &Arc<N>) -> Self {
        let ptr = Arc::as_ptr(node);
        Self {
            ptr: NonNull::new(ptr.cast_mut()).expect("Arc pointers are non-null"),
            // SAFETY: `ptr` is the pointer of the live `Arc` we borrow.
            _keep: unsafe { keep_alive(ptr) },
            _owns: PhantomData,
        }
    }

    /// A strong reference to the held node, for futures that must outlive
    /// the hold.
    pub(crate) fn to_arc(&self) -> Arc<N> {
        let ptr = self.ptr.as_ptr().cast_const();
        // SAFETY: `ptr` is `Arc::as_ptr` of a live `Arc<N>` (same pointer and
        // provenance as `Arc::into_raw`). Our count makes the strong count at
        // least one (module docs: while `count > 0`, the anchor's or the
        // collective reference exists), as `increment_strong_count` requires.
        // The increment is the reference `from_raw` takes over.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// The held node.
    #[inline]
    pub(crate) fn node(&self) -> &N {
        // SAFETY: while this hold's count is in the word, the anchor's or the
        // collective reference keeps the node alive (module docs), so the
        // pointee outlives `&self`. `touch` is the loom shadow's check of
        // exactly that (nothing outside loom).
        unsafe {
            touch(self.ptr.as_ptr());
            self.ptr.as_ref()
        }
    }
}

impl<N: Node> Clone for Hold<N> {
    #[inline]
    fn clone(&self) -> Self {
        // Our count keeps every level at one or more, so this is always A2:
        // one RMW and one test on a root node (a token's or an unnamed
        // guard's whole clone), the ancestors out of line. Their order does
        // not matter: every level is taken unconditionally, and our count
        // keeps each of them alive and undrained meanwhile.
        let node = self.node();
        // The parent link is read before the RMW, which a load after it
        // would have to wait for.
        let parent = node.parent();
        take_refs(node, node.core().acquire_another());
        if let Some(parent) = parent {
            acquire_other_levels(&**parent);
        }
        Self {
            ptr: self.ptr,
            // SAFETY: our count keeps the node alive.
            _keep: unsafe { keep_alive(self.ptr.as_ptr().cast_const()) },
            _owns: PhantomData,
        }
    }
}

impl<N: Node> Drop for Hold<N> {
    /// Always inline: the release of a root latch's hold is one RMW and a
    /// test, and a call around it would cost as much again. A drop during
    /// unwinding goes out of line ([`release_unwinding`]), so the inlined
    /// path knows it is not panicking and carries no code for it.
    #[inline(always)]
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr().cast_const();
        if std::thread::panicking() {
            // SAFETY: `self` owns one count on the node and each ancestor,
            // and is never used again.
            return unsafe { release_unwinding(ptr) };
        }
        // SAFETY: as above.
        unsafe { release_chain(ptr, false, std::ptr::null()) }
    }
}

/// A hold's drop during unwinding: deferred if `defer_release` armed it
/// (the count then stays, owned by this thread's deferral slot), else
/// released and counted as panicked.
///
/// # Safety
/// As [`release_chain`]: the caller owns one count on the node at `ptr` and
/// on each ancestor, and gives it up.
#[cold]
#[inline(never)]
unsafe fn release_unwinding<N: Node>(ptr: *const N) {
    if deferral::claim(ptr.cast()) {
        return;
    }
    // SAFETY: as this function's contract.
    unsafe { release_chain(ptr, true, std::ptr::null()) }
}

impl<N: Node> Hold<N> {
    /// Defers this hold's release if the thread is unwinding and this hold
    /// is dropped next: its count then stays in the word, owned by this
    /// thread's deferral slot, until [`take_deferred`](Self::take_deferred)
    /// takes it back as a hold. Call right before the hold is dropped, with
    /// no other hold dropped in between (a guard's `Drop`, before its `hold`
    /// field drops). Nothing happens if the thread is not unwinding.
    ///
    /// This is how a spawned thread's guard, dropped by the thread's panic,
    /// keeps its latch from draining until the spawn's wrapper has recorded
    /// the panic's message, without a second count that `count()` would see.
    pub(crate) fn defer_release(&self) {
        deferral::arm(self.ptr.as_ptr().cast_const().cast());
    }

    /// Whether this thread holds a deferred count (`defer_release`).
    pub(crate) fn is_deferred() -> bool {
        deferral::is_held()
    }

    /// The count this thread deferred (`defer_release`), as a hold again.
    ///
    /// Only holds of one node type are ever deferred (a latch's guards), so
    /// the caller names it.
    pub(crate) fn take_deferred() -> Option<Self> {
        let ptr = deferral::take()?.cast::<N>();
        Some(Self {
            ptr: NonNull::new(ptr.cast_mut()).expect("deferred pointers are non-null"),
            // SAFETY: `ptr` is `Arc::as_ptr` of a node whose count the
            // deferral slot held until now, which keeps the node alive.
            _keep: unsafe { keep_alive(ptr) },
            _owns: PhantomData,
        })
    }

    /// Releases this hold as a panicking thread's drop would (counted in
    /// `panicked`): for a count whose release was deferred past the
    /// unwinding.
    pub(crate) fn release_panicked(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: its keep-alive is
        // moved out once, here (and dropped at the end of this function,
        // after the release), and its count released once, below.
        let _keep = unsafe { std::ptr::read(&this._keep) };
        // SAFETY: `this` owns one count on the node and each ancestor.
        unsafe { release_chain(this.ptr.as_ptr(), true, std::ptr::null()) };
    }
}

/// The deferral slot of this thread (`Hold::defer_release`).
mod deferral;

/// Takes one count on `node` and each of its ancestors, closed or not.
#[inline]
fn acquire_levels<N: Node>(node: &N) {
    let mut level = Some(node);
    while let Some(n) = level {
        // The parent link is read before the level's RMW, which a load
        // after it would have to wait for (a locked RMW orders every load
        // after it).
        level = n.parent().map(|p| &**p);
        let refs = n.core().acquire();
        take_refs(n, refs);
    }
}

/// [`Hold::clone`]'s count on each ancestor, from `node` up: always A2, our
/// count being on every level already.
#[inline(never)]
fn acquire_other_levels<N: Node>(node: &N) {
    let mut level = Some(node);
    while let Some(n) = level {
        level = n.parent().map(|p| &**p);
        take_refs(n, n.core().acquire_another());
    }
}

/// A1: pays the references an acquire found owed (module docs).
#[inline]
fn take_refs<N: Node>(node: &N, refs: Refs) {
    if refs.any() {
        take_refs_slow(node, refs);
    }
}

#[cold]
#[inline(never)]
fn take_refs_slow<N: Node>(node: &N, refs: Refs) {
    for _ in 0..owned(refs) {
        // SAFETY: `node` was reached through an `Arc<N>` this thread owns for
        // the duration of the call (a handle, or an ancestor link of a node
        // it holds), so the pointer came from an `Arc` and the strong count is
        // at least one.
        unsafe { Arc::increment_strong_count(node as *const N) }
    }
}

/// How many strong references `refs` stands for.
#[inline]
fn owned(refs: Refs) -> usize {
    // Mutant: the notify reference is never paid nor given back, so nothing
    // keeps the node alive while a drain is announced (the defect fixed by
    // it).
    let notify = refs.notify && !mutant::is("notify-without-ref");
    usize::from(refs.collective) + usize::from(notify)
}

/// Releases one count on the node at `ptr` and on each of its ancestors,
/// child first, so that a child is drained before its parent; stops before
/// the ancestor at `stop` (null: goes to the root).
///
/// Only the first level's RMW is inline; everything after it (R1's
/// announcement and references, the ancestors) is one call out of line,
/// taken only when there is something to do, so a root's R2 (the common
/// release) is one RMW and a test.
///
/// # Safety
/// The caller owns one count on the node and on each ancestor below `stop`,
/// and gives it up: `ptr` must not be used by the caller afterwards.
#[inline(always)]
unsafe fn release_chain<N: Node>(ptr: *const N, panicking: bool, stop: *const N) {
    // SAFETY: our count on this level keeps the node alive until the
    // release below (module docs), so `ptr` is valid for all three.
    let (_keep, node) = unsafe {
        let keep = keep_alive(ptr);
        touch(ptr);
        (keep, &*ptr)
    };
    // Read the parent link before our count goes: once it does, the node
    // may be freed (its parent link with it). The parent itself stays
    // alive, because our count on it is still there.
    let parent = node.parent().map(Arc::as_ptr);
    let prev = node.core().release_word(panicking);
    if parent.is_some() || !Core::owes_nothing(prev) {
        // SAFETY: `prev` is the word our release of `ptr`'s level replaced;
        // our counts on the ancestors below `stop` are still there.
        unsafe { release_rest(ptr, prev, parent, panicking, stop) }
    }
}

/// [`release_chain`] after the first level's RMW, which replaced `prev`:
/// the drain field's release if the word was draining, R1's announcement and
/// references, then the ancestors below `stop`.
///
/// # Safety
/// `prev` is the word replaced by this thread's release of its count on the
/// node at `ptr` (`Core::release_word`); the caller does not use the node
/// afterwards, and owns one count on each ancestor from `parent` up to, not
/// including, `stop`.
#[inline(never)]
unsafe fn release_rest<N: Node>(
    ptr: *const N,
    prev: u64,
    parent: Option<*const N>,
    panicking: bool,
    stop: *const N,
) {
    let refs = match Core::settle(prev) {
        Some(refs) => refs,
        // SAFETY: the word was draining, so our count is still in its drain
        // field, which keeps the node alive until this second RMW.
        None => unsafe {
            touch(ptr);
            (*ptr).core().release_draining()
        },
    };
    // SAFETY: R1 handed these references to this thread; our counts on the
    // ancestors below `stop` are still there.
    if refs.any() && unsafe { finish_release(ptr, refs, parent, panicking, stop) } {
        return;
    }
    match parent {
        // SAFETY: our counts on the ancestors below `stop` are still there.
        Some(parent) if parent != stop => unsafe { release_ancestors(parent, panicking, stop) },
        _ => {}
    }
}

/// [`release_chain`] from an ancestor up: a loop, not a recursion.
///
/// # Safety
/// As [`release_chain`].
#[inline(never)]
unsafe fn release_ancestors<N: Node>(mut ptr: *const N, panicking: bool, stop: *const N) {
    loop {
        // SAFETY: as this function's contract.
        let (_keep, parent, refs) = unsafe { release_one(ptr, panicking) };
        // SAFETY: R1 handed these references to this thread; our counts on
        // the ancestors below `stop` are still there.
        if refs.any() && unsafe { finish_release(ptr, refs, parent, panicking, stop) } {
            return;
        }
        match parent {
            Some(parent) if parent != stop => ptr = parent,
            _ => return,
        }
    }
}

/// Releases our count on the node at `ptr` alone (the level's one RMW);
/// returns the node's keep-alive (loom's: held until the caller is done
/// with the level), its parent, read before the release, and the
/// references the release handed over (R1), which the caller must finish
/// with [`finish_release`].
///
/// # Safety
/// The caller owns one count on the node at `ptr`, and gives it up.
#[inline(always)]
unsafe fn release_one<N: Node>(
    ptr: *const N,
    panicking: bool,
) -> (KeepAlive<N>, Option<*const N>, Refs) {
    // SAFETY: our count on this level keeps the node alive until the
    // release below (module docs), so `ptr` is valid for all three.
    let (keep, node) = unsafe {
        let keep = keep_alive(ptr);
        touch(ptr);
        (keep, &*ptr)
    };
    // Read the parent link before our count goes: once it does, the node
    // may be freed (its parent link with it). The parent itself stays
    // alive, because our count on it is still there.
    let parent = node.parent().map(Arc::as_ptr);
    let refs = node.core().release(panicking);
    (keep, parent, refs)
}

/// R1's slow half: announce the drain if the notify reference came with the
/// release, then give back what it handed over.
///
/// If a waker panics while the drain is announced, every other waiter is
/// still woken (`wakers.rs`), the references are still given back, and the
/// rest of the chain (`parent` up to, not including, `stop`) is released
/// here, before the panic is resumed: so a panicking waker leaves no count
/// that nobody owns on an ancestor and no reference unreturned. Returns true
/// in that case (the chain is done, whether the panic was resumed or, in a
/// thread already unwinding, dropped), false otherwise.
///
/// # Safety
/// `refs` was returned by the release of a count on the node at `ptr` by
/// this thread; the node is not used by the caller afterwards. The caller
/// owns one count on each ancestor from `parent` up to, not including,
/// `stop`.
#[cold]
#[inline(never)]
unsafe fn finish_release<N: Node>(
    ptr: *const N,
    refs: Refs,
    parent: Option<*const N>,
    panicking: bool,
    stop: *const N,
) -> bool {
    // Acquire: pairs with every other hold's Release decrement of this word,
    // so that their uses of the node happen before we may free it (the fence
    // of `Arc::drop`).
    if !mutant::is("release-no-acquire") {
        fence(Ordering::Acquire);
    }
    let mut unwound = Unwound::default();
    if refs.notify {
        // SAFETY: the notify reference we now own keeps the node alive until
        // we give it back below; `touch` checks it under loom, before and
        // after the notification.
        unsafe {
            touch(ptr);
            unwound = (*ptr).core().notify_drained();
            touch(ptr);
        }
    }
    for _ in 0..owned(refs) {
        // SAFETY: each of these references was handed to this thread by its
        // release (module docs, R1); the node is not touched after the last.
        unsafe { Arc::decrement_strong_count(ptr) };
    }
    if !unwound.is_some() {
        return false;
    }
    // A waker panicked (caught): finish the chain, then resume. A level
    // above that panics too has finished the chain above it before
    // resuming, so catching it here leaves nothing to do.
    if let Some(parent) = parent.filter(|&parent| parent != stop) {
        // SAFETY: our counts from `parent` up to `stop` are still there.
        unwound.catch(|| unsafe { release_ancestors(parent, panicking, stop) });
    }
    unwound.resume();
    true
}

/// The handle that anchors a node: owns one strong reference and keeps the
/// node's `ANCHORED` bit set until dropped, so holds need no reference of
/// their own meanwhile (module docs).
pub(crate) struct Anchor<N: Node> {
    /// Dropped by `Drop`, or handed to the holds (transition U).
    arc: ManuallyDrop<Arc<N>>,
}

impl<N: Node> Anchor<N> {
    /// Anchors a node whose core was just created (created anchored).
    pub(crate) fn new(node: N) -> Self {
        Self {
            arc: ManuallyDrop::new(Arc::new(node)),
        }
    }

    /// The anchored node's `Arc`, to make holds or extra references from.
    pub(crate) fn arc(&self) -> &Arc<N> {
        &self.arc
    }

    /// W: a `WaitGroup` waiter asks for the zero notification.
    pub(crate) fn watch(&self) {
        notify_ref(&self.arc, true);
        if !self.arc.core().watch() {
            notify_ref(&self.arc, false);
        }
    }

    /// W': the waiter withdraws the request.
    pub(crate) fn unwatch(&self) {
        if self.arc.core().unwatch() {
            notify_ref(&self.arc, false);
        }
    }
}

/// C: sets `CLOSED` on a latch, through a strong reference the caller owns
/// (the anchor's, or one upgraded from a child link: a latch is closed by
/// its tree's trigger whether or not a handle still anchors it). The notify
/// reference is paid before the RMW (module docs).
///
/// `None` if it was closed already; otherwise the close, which the caller
/// must announce (`Core::announce`) once it holds no lock.
pub(crate) fn close<N: Node>(node: &Arc<N>) -> Option<Closing> {
    notify_ref(node, true);
    let closing = node.core().close();
    if !closing.is_some_and(|c| c.holds_alive) && !mutant::is("close-keeps-ref") {
        // Already closed, or no hold alive: the word holds no notify
        // reference of ours.
        notify_ref(node, false);
    }
    closing
}

/// Takes (`true`) or gives back (`false`) one notify reference on behalf of
/// the owner of `node`. The caller's own reference outlives the call, so
/// giving one back never frees the node.
fn notify_ref<N: Node>(node: &Arc<N>, take: bool) {
    if owned(Refs::NOTIFY) == 0 {
        return;
    }
    let ptr = Arc::as_ptr(node);
    // SAFETY: `ptr` is a live `Arc` the caller owns; a reference given back
    // is one a C, W or W' transition handed to it.
    unsafe {
        if take {
            Arc::increment_strong_count(ptr);
        } else {
            Arc::decrement_strong_count(ptr);
        }
    }
}

impl<N: Node> Deref for Anchor<N> {
    type Target = N;

    fn deref(&self) -> &N {
        &self.arc
    }
}

impl<N: Node> Drop for Anchor<N> {
    fn drop(&mut self) {
        if mutant::is("anchor-late-transfer") {
            // The defect this replaced: clear `ANCHORED`, *then* take the
            // collective reference. A last release in between gives back a
            // reference not yet taken and frees the node under us.
            if self.arc.core().unanchor() {
                take_refs(&**self.arc, Refs::COLLECTIVE);
            }
            // SAFETY: dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.arc) };
            return;
        }
        if self.arc.core().unanchor() && !mutant::is("anchor-no-transfer") {
            // U with holds alive: our reference is now their collective one.
            // The node may be freed by their last release from here on, so
            // we neither touch it nor drop the `Arc`.
            return;
        }
        // SAFETY: no hold was alive at U (or the mutant says so): the
        // reference is still ours, and it is dropped once, here.
        unsafe { ManuallyDrop::drop(&mut self.arc) };
    }
}

impl<N: Node + std::fmt::Debug> std::fmt::Debug for Anchor<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self.arc).fmt(f)
    }
}
