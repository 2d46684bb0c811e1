//! The crate's only `unsafe`: a counted pointer whose clone and drop cost one
//! atomic read-modify-write each, and the anchor that makes that possible.
//!
//! A `Token` or `Guard` must keep the shared state alive, but an `Arc` clone
//! per token would double the fast path (one RMW on the refcount, one on the
//! hold count). Instead:
//!
//! * While the node's handle lives (the `WaitGroup`, or the `Shutdown` tree
//!   node), it is the node's [`Anchor`]: it owns a strong reference and the
//!   state word's `ANCHORED` bit is set. Holds own no reference at all, and
//!   taking or dropping one touches only the count.
//! * Otherwise the live holds *collectively* own one strong reference: the
//!   hold that moves the count from 0 to 1 while unanchored takes it, the one
//!   that moves it from 1 to 0 while unanchored gives it back.
//! * When the anchor lets go, one read-modify-write clears `ANCHORED` and
//!   reads the count: if holds are alive, the anchor first takes their
//!   collective reference on their behalf, then drops its own.
//!
//! Invariant: the holds own a collective reference exactly when the count is
//! non-zero and `ANCHORED` is clear. Every transition of either is a
//! read-modify-write of the one word, so each side sees which case it is in.
//! A hold is only ever created from an `&Arc<N>` (a handle, an ancestor link)
//! or from a live hold, so the node is alive whenever a count is taken; while
//! a count is held, the anchor or the collective reference keeps it alive.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::state::{Closed, Core};
use crate::sync::Arc;
use std::ops::Deref;

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

    /// Takes a count on `node` and its ancestors, root first, refusing if any
    /// of them is closed (and giving back what it took).
    ///
    /// Every level checks its own `CLOSED` bit in the same read-modify-write
    /// that raises its count, so each latch's drain depends on its own word
    /// alone: a guard admitted at the parent before the parent's close is in
    /// the parent's count for every drain; one that comes after is refused,
    /// even if the parent's cascade has not reached the child yet. (Raising
    /// ancestors unconditionally after checking only the child would let a
    /// parent's drain finish in between; a loom model catches that.)
    #[inline]
    pub(crate) fn try_acquire(node: &Arc<N>) -> Result<Self, Closed> {
        fn chain<N: Node>(node: &Arc<N>) -> Result<(), Closed> {
            #[cfg(quiescent_mutant = "unchecked-ancestors")]
            if let Some(parent) = node.parent() {
                // Only this level decides; ancestors are raised afterwards,
                // unconditionally: a parent's drain can finish in between.
                let take = node.core().try_acquire()?;
                take_collective_ref(&**node, take);
                acquire_levels(&**parent);
                return Ok(());
            }
            if let Some(parent) = node.parent() {
                chain(parent)?;
            }
            match node.core().try_acquire() {
                Ok(take) => {
                    take_collective_ref(&**node, take);
                    Ok(())
                }
                Err(closed) => {
                    if let Some(parent) = node.parent() {
                        // SAFETY: `chain(parent)` succeeded above, so this
                        // thread holds one count on the parent and each of
                        // its ancestors; `release_chain` gives back exactly
                        // those counts.
                        unsafe { release_chain(Arc::as_ptr(parent), false) };
                    }
                    Err(closed)
                }
            }
        }
        chain(node)?;
        Ok(Self::from_arc(node))
    }

    fn from_arc(node: &Arc<N>) -> Self {
        let ptr = NonNull::new(Arc::as_ptr(node).cast_mut()).expect("Arc pointers are non-null");
        Self {
            ptr,
            _owns: PhantomData,
        }
    }

    /// A strong reference to the held node, for futures that must outlive
    /// the hold.
    pub(crate) fn to_arc(&self) -> Arc<N> {
        let ptr = self.ptr.as_ptr().cast_const();
        // SAFETY: `ptr` is `Arc::as_ptr` of a live `Arc<N>` (same pointer and
        // provenance as `Arc::into_raw`); our count keeps the strong count at
        // one or more. The increment is the reference `from_raw` takes over.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// The held node.
    #[inline]
    pub(crate) fn node(&self) -> &N {
        // SAFETY: this hold's count keeps the node's collective strong
        // reference alive (module docs), so the pointee outlives `&self`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<N: Node> Clone for Hold<N> {
    #[inline]
    fn clone(&self) -> Self {
        // Our count keeps every level at one or more, so this never takes a
        // collective reference; it is still the one counting path.
        acquire_levels(self.node());
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<N: Node> Drop for Hold<N> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self` owns one count on the node and each ancestor, and is
        // never used again.
        unsafe { release_chain(self.ptr.as_ptr(), std::thread::panicking()) }
    }
}

/// Takes one count on `node` and each of its ancestors, closed or not.
#[inline]
fn acquire_levels<N: Node>(node: &N) {
    let mut level = Some(node);
    while let Some(n) = level {
        let take = n.core().acquire();
        take_collective_ref(n, take);
        level = n.parent().map(|p| &**p);
    }
}

/// Takes the holds' collective strong reference when `take` says so (see
/// the module docs).
#[inline]
fn take_collective_ref<N: Node>(node: &N, take: bool) {
    if take {
        // SAFETY: `node` was reached through a live `Arc<N>` (a handle or an
        // ancestor link), so the pointer came from an `Arc` and its strong
        // count is at least one for the duration of the call.
        unsafe { Arc::increment_strong_count(node as *const N) }
    }
}

/// Releases one count on the node at `ptr` and on each of its ancestors,
/// child first, so that a child is drained before its parent.
///
/// # Safety
/// The caller owns one count on the node and on each ancestor, and gives it
/// up: `ptr` must not be used by the caller afterwards.
#[inline]
unsafe fn release_chain<N: Node>(mut ptr: *const N, panicking: bool) {
    loop {
        // SAFETY: our count on this level keeps its collective reference.
        let node = unsafe { &*ptr };
        // Read the parent link before our count goes: once it does, the node
        // may be freed (its parent link with it). The parent itself stays
        // alive, because our count on it is still there.
        let parent = node.parent().map(Arc::as_ptr);
        if node.core().release(panicking) {
            // SAFETY: this release moved the count 1 → 0 while unanchored, so
            // the holds owned the collective reference and this thread gives
            // it back. `node` is not used after this line.
            unsafe { Arc::decrement_strong_count(ptr) };
        }
        match parent {
            Some(parent) => ptr = parent,
            None => return,
        }
    }
}

/// The handle that anchors a node: owns one strong reference and keeps the
/// node's `ANCHORED` bit set until dropped, so holds need no reference of
/// their own meanwhile (module docs).
pub(crate) struct Anchor<N: Node> {
    arc: Arc<N>,
}

impl<N: Node> Anchor<N> {
    /// Anchors a node whose core was just created (created anchored).
    pub(crate) fn new(node: N) -> Self {
        Self {
            arc: Arc::new(node),
        }
    }

    /// The anchored node's `Arc`, to make holds or extra references from.
    pub(crate) fn arc(&self) -> &Arc<N> {
        &self.arc
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
        if self.arc.core().unanchor() && !cfg!(quiescent_mutant = "anchor-no-transfer") {
            // Holds are alive and now unanchored: they own the collective
            // reference from here on. Take it for them before our own goes.
            take_collective_ref(&*self.arc, true);
        }
    }
}

impl<N: Node + std::fmt::Debug> std::fmt::Debug for Anchor<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.arc.fmt(f)
    }
}
