//! The crate's only `unsafe`: a counted pointer whose clone and drop cost one
//! atomic read-modify-write each.
//!
//! A `Token` or `Guard` must keep the shared state alive, but an `Arc` clone
//! per token would double the fast path (one RMW on the refcount, one on the
//! hold count). Instead the live holds of a node *collectively* own a single
//! strong reference to its `Arc`: the hold that moves the count from 0 to 1
//! takes that reference, the hold that moves it from 1 to 0 gives it back.
//! Every other clone and drop touches only the count.
//!
//! Why this is sound: a hold can only be created from an `&Arc<N>` (a handle,
//! which owns a strong reference of its own) or from a live hold (whose
//! count keeps the collective reference), so the node is alive whenever a
//! count is taken; and while a node's count is non-zero the collective
//! reference is held, so the node is alive whenever a count is released.
//! Increments of 0 → 1 and decrements of 1 → 0 alternate in the word's
//! modification order, so the strong references taken and given back balance.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::state::{Closed, Core};
use crate::sync::Arc;

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
        let mut level = Some(node);
        while let Some(n) = level {
            let prev = n.core().acquire();
            take_collective_ref(&**n, prev);
            level = n.parent();
        }
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
                let prev = node.core().try_acquire()?;
                take_collective_ref(&**node, prev);
                let mut level = Some(parent);
                while let Some(n) = level {
                    let prev = n.core().acquire();
                    take_collective_ref(&**n, prev);
                    level = n.parent();
                }
                return Ok(());
            }
            if let Some(parent) = node.parent() {
                chain(parent)?;
            }
            match node.core().try_acquire() {
                Ok(prev) => {
                    take_collective_ref(&**node, prev);
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
        let mut level = Some(self.node());
        while let Some(n) = level {
            // The count is at least one (ours), so this never takes the
            // collective reference; `acquire` is still the one counting path.
            n.core().acquire();
            level = n.parent().map(|p| &**p);
        }
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

/// The 0 → 1 transition takes the collective strong reference.
#[inline]
fn take_collective_ref<N: Node>(node: &N, prev: usize) {
    if prev == 0 {
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
        if node.core().release(panicking) == 0 {
            // SAFETY: this release moved the count 1 → 0, so this thread gives
            // back the collective reference the 0 → 1 transition took. `node`
            // is not used after this line.
            unsafe { Arc::decrement_strong_count(ptr) };
        }
        match parent {
            Some(parent) => ptr = parent,
            None => return,
        }
    }
}
