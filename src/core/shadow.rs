//! Under `--cfg loom`: an `Arc` whose reference count loom can see.
//!
//! loom 0.7's own `Arc` treats increments and decrements as commuting (its
//! `last_dependent_access` logic): that is sound for safe `Arc`, where only a
//! holder can clone, but it hides exactly the orders that break a hand-written
//! reference protocol such as `hold.rs`'s, where a count is taken from a raw
//! pointer by a thread that owns no reference. So under loom the crate's
//! `sync::Arc` is this one: the *protocol's* strong count is a loom atomic (a
//! scheduling point, explored in every order), and it is checked:
//!
//! * an increment from zero panics ("revived a freed node");
//! * a decrement at zero panics ("released a reference twice");
//! * the release that takes the count to zero drops the value and writes a
//!   loom `UnsafeCell` (the *free*); every touch of the node reads that cell
//!   ([`touch`]), so a touch that is not ordered before the free, or that
//!   comes after it, fails the model (causality violation, or the assertion).
//!
//! The memory itself is kept by a plain `std::sync::Arc` that loom does not
//! see: every handle, and every [`KeepAlive`] a hold takes, owns one, so that a
//! broken protocol shows up as a clean loom failure instead of real heap
//! corruption in the test process.
#![allow(clippy::disallowed_types)]

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;

use loom::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Nodes created and not yet freed on this thread. loom runs a model's
    /// threads as coroutines of the thread that calls `loom::model`, so this
    /// counts the nodes of the model running here.
    static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Nodes allocated and not yet freed by the model running on this thread:
/// a model that ends with more than it started with leaked a reference
/// (loom's own leak check cannot see these counts).
pub(crate) fn live_nodes() -> usize {
    LIVE.with(std::cell::Cell::get)
}

/// `#[repr(C)]` with the value first: a pointer to the value is a pointer to
/// the whole allocation, so `as_ptr` and the raw-pointer functions agree.
#[repr(C)]
struct Inner<T> {
    value: UnsafeCell<ManuallyDrop<T>>,
    /// The protocol's strong references (the shadow count).
    refs: AtomicUsize,
    /// Written once, by the release that frees the value.
    freed: loom::cell::UnsafeCell<bool>,
}

// SAFETY: `Inner` is shared exactly as `std::sync::Arc<T>` shares `T`; the
// value is only dropped by the single release that takes `refs` to zero.
unsafe impl<T: Send + Sync> Send for Inner<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Inner<T> {}

impl<T> Inner<T> {
    fn touch(&self) {
        // SAFETY: loom checks that this read is ordered with the free's write.
        let freed = self.freed.with(|freed| unsafe { *freed });
        assert!(
            !freed,
            "quiescent: a node was touched after its last reference was released"
        );
    }

    fn retain(&self) {
        // Relaxed, as `Arc::clone`: the caller already owns a reference.
        let prev = self.refs.fetch_add(1, Ordering::Relaxed);
        assert!(
            prev > 0,
            "quiescent: a reference was taken on a node whose last reference was already released"
        );
    }

    /// Gives back one reference; frees the value if it was the last.
    fn release(&self) {
        // `AcqRel`: the free is ordered after every release of a reference,
        // as `Arc::drop` orders it (with a `Release` decrement and an
        // `Acquire` fence on the last one). Not a fence here: loom's fence
        // acquires from every store that any thread ordered before us has
        // read, which is more than the memory model promises and would hide a
        // missing fence in the protocol itself (`hold.rs`, R1).
        let prev = self.refs.fetch_sub(1, Ordering::AcqRel);
        assert!(prev > 0, "quiescent: a node's reference was released twice");
        if prev == 1 {
            // SAFETY: loom checks that every touch happens before this write.
            self.freed.with_mut(|freed| unsafe { *freed = true });
            // SAFETY: the count reached zero once, here: nobody may use the
            // value any more (`touch` checks it), and it was not dropped yet.
            unsafe { ManuallyDrop::drop(&mut *self.value.get()) }
            LIVE.with(|live| live.set(live.get() - 1));
        }
    }
}

/// The loom build's `Arc` (module docs).
pub(crate) struct Arc<T> {
    inner: std::sync::Arc<Inner<T>>,
}

// SAFETY: as `std::sync::Arc<T>`.
unsafe impl<T: Send + Sync> Send for Arc<T> {}
// SAFETY: as `std::sync::Arc<T>`.
unsafe impl<T: Send + Sync> Sync for Arc<T> {}

impl<T> Arc<T> {
    pub(crate) fn new(value: T) -> Self {
        LIVE.with(|live| live.set(live.get() + 1));
        Self {
            inner: std::sync::Arc::new(Inner {
                value: UnsafeCell::new(ManuallyDrop::new(value)),
                refs: AtomicUsize::new(1),
                freed: loom::cell::UnsafeCell::new(false),
            }),
        }
    }

    pub(crate) fn as_ptr(this: &Self) -> *const T {
        std::sync::Arc::as_ptr(&this.inner).cast()
    }

    /// # Safety
    /// `ptr` comes from `as_ptr` of an `Arc<T>` whose allocation is still
    /// there (the shadow then checks that a reference is alive).
    pub(crate) unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: the caller's contract; `retain` checks the protocol.
        let inner = unsafe { &*ptr.cast::<Inner<T>>() };
        inner.touch();
        inner.retain();
        // SAFETY: the allocation is alive (caller's contract).
        unsafe { std::sync::Arc::increment_strong_count(ptr.cast::<Inner<T>>()) }
    }

    /// # Safety
    /// As for [`increment_strong_count`](Self::increment_strong_count); the
    /// reference given back must be one the caller owns.
    pub(crate) unsafe fn decrement_strong_count(ptr: *const T) {
        // SAFETY: the caller gives back a reference it owns.
        drop(unsafe { Self::from_raw(ptr) })
    }

    /// # Safety
    /// `ptr` comes from `as_ptr`, and the caller owns the reference (taken
    /// with `increment_strong_count`) that the result takes over.
    pub(crate) unsafe fn from_raw(ptr: *const T) -> Self {
        Self {
            // SAFETY: every protocol reference also owns one std reference.
            inner: unsafe { std::sync::Arc::from_raw(ptr.cast::<Inner<T>>()) },
        }
    }
}

impl<T> Arc<T> {
    /// The value, if this was its last reference (as `std`'s
    /// `Arc::into_inner`); otherwise the reference is given back.
    pub(crate) fn into_inner(this: Self) -> Option<T> {
        let this = ManuallyDrop::new(this);
        let inner = &this.inner;
        inner.touch();
        // `AcqRel`, as `release`.
        let prev = inner.refs.fetch_sub(1, Ordering::AcqRel);
        assert!(prev > 0, "quiescent: a node's reference was released twice");
        let value = (prev == 1).then(|| {
            // SAFETY: loom checks that every touch happens before this write.
            inner.freed.with_mut(|freed| unsafe { *freed = true });
            LIVE.with(|live| live.set(live.get() - 1));
            // SAFETY: the count reached zero once, here: the value is ours,
            // not dropped yet, and never touched again (`freed`).
            unsafe { ManuallyDrop::take(&mut *inner.value.get()) }
        });
        // SAFETY: `this` is not used again; its std reference goes here.
        drop(unsafe { std::ptr::read(&this.inner) });
        value
    }

    /// A link that does not keep the value alive; see [`Weak::upgrade`].
    pub(crate) fn downgrade(this: &Self) -> Weak<T> {
        this.inner.touch();
        Weak {
            inner: this.inner.clone(),
        }
    }
}

/// The loom build's `Weak`: keeps the memory (a std reference, invisible to
/// loom) but not the value; `upgrade` takes a protocol reference only while
/// the shadow count is above zero, in one loom compare-exchange.
pub(crate) struct Weak<T> {
    inner: std::sync::Arc<Inner<T>>,
}

// SAFETY: as `std::sync::Weak<T>`.
unsafe impl<T: Send + Sync> Send for Weak<T> {}
// SAFETY: as `std::sync::Weak<T>`.
unsafe impl<T: Send + Sync> Sync for Weak<T> {}

impl<T> Weak<T> {
    /// The protocol's strong count, as `std::sync::Weak::strong_count` (a
    /// hint: zero is final, anything else may already be stale).
    pub(crate) fn strong_count(&self) -> usize {
        self.inner.refs.load(Ordering::Relaxed)
    }

    pub(crate) fn upgrade(&self) -> Option<Arc<T>> {
        let refs = &self.inner.refs;
        let mut n = refs.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            // Acquire: what the value's last users did is visible, as in
            // `std::sync::Weak::upgrade`.
            match refs.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    return Some(Arc {
                        inner: self.inner.clone(),
                    })
                }
                Err(actual) => n = actual,
            }
        }
    }
}

impl<T> Clone for Weak<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

impl<T> Clone for Arc<T> {
    fn clone(&self) -> Self {
        self.inner.touch();
        self.inner.retain();
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Drop for Arc<T> {
    fn drop(&mut self) {
        self.inner.release();
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.inner.touch();
        // SAFETY: we own a reference, so the value has not been dropped.
        unsafe { &*self.inner.value.get() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Keeps a node's memory (not its value) allocated while a hold works on it,
/// so that a broken protocol fails the model at [`touch`] instead of
/// corrupting the test process's heap.
pub(crate) struct KeepAlive<T>(#[allow(dead_code)] std::sync::Arc<Inner<T>>);

/// # Safety
/// `ptr` comes from `Arc::as_ptr` and its allocation is alive.
pub(crate) unsafe fn keep_alive<T>(ptr: *const T) -> KeepAlive<T> {
    let ptr = ptr.cast::<Inner<T>>();
    // SAFETY: the caller's contract.
    unsafe {
        std::sync::Arc::increment_strong_count(ptr);
        KeepAlive(std::sync::Arc::from_raw(ptr))
    }
}

/// Checks that the node at `ptr` may still be touched: its last reference
/// has not been released, and (loom checks) that release is not concurrent
/// with this touch.
///
/// # Safety
/// `ptr` comes from `Arc::as_ptr` and its allocation is alive (a
/// [`KeepAlive`] or a handle keeps it).
pub(crate) unsafe fn touch<T>(ptr: *const T) {
    // SAFETY: the caller's contract.
    unsafe { &*ptr.cast::<Inner<T>>() }.touch()
}
