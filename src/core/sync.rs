//! The one place that chooses synchronization primitives.
//!
//! Normally these are `std` atomics, `Arc` and the thread parker plus a
//! `parking_lot` mutex; under `--cfg loom` (with the `loom` feature) the
//! atomics, fences, mutexes and the parker are loom's, and `Arc` is the
//! loom-visible shadow of `shadow.rs` (loom's own `Arc` cannot see the
//! reference protocol of `hold.rs`). So a loom model explores every
//! interleaving inside `quiescent` too, reference counts and the wake-ups of
//! blocked threads included: the code it checks is the code that ships.
//!
//! `--cfg loom` without the `loom` feature stops the build with one error
//! that says so; everything else then builds as usual (the loom half is
//! compiled only with both), so that error is the only one.
//!
//! No other module names `std::sync` or `parking_lot` directly (`.clippy.toml`
//! enforces it with `disallowed-types`).
#![allow(clippy::disallowed_types)]

#[cfg(all(loom, not(feature = "loom")))]
compile_error!(
    "quiescent was built with `--cfg loom` but without its `loom` feature: \
     enable `quiescent/loom` so that its atomics and event-listener go through loom"
);

#[cfg(not(target_has_atomic = "64"))]
compile_error!(
    "quiescent needs 64-bit atomics (`AtomicU64`), which this target lacks: \
     its state word packs the open and the drain count of a latch into one \
     64-bit atomic, so that admission is a single read-modify-write"
);

#[cfg(not(all(loom, feature = "loom")))]
mod imp {
    pub(crate) use super::once::OnceCell;
    pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Weak};

    /// The loom build keeps a node's memory allocated while a hold works on
    /// it (`shadow.rs`); here the protocol alone does, so this is nothing.
    pub(crate) struct KeepAlive<T>(std::marker::PhantomData<fn() -> T>);

    /// Nothing outside loom (see `shadow::keep_alive`).
    ///
    /// # Safety
    /// As `shadow::keep_alive`: `ptr` comes from `Arc::as_ptr` of a live node.
    #[inline(always)]
    pub(crate) unsafe fn keep_alive<T>(_ptr: *const T) -> KeepAlive<T> {
        KeepAlive(std::marker::PhantomData)
    }

    /// Nothing outside loom (see `shadow::touch`).
    ///
    /// # Safety
    /// As `shadow::touch`.
    #[inline(always)]
    pub(crate) unsafe fn touch<T>(_ptr: *const T) {}

    /// A mutex whose `lock` never reports poisoning, so that the std and loom
    /// builds share one signature.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(not(all(loom, feature = "loom")))]
mod once {
    /// A write-once cell read without a lock (std's `OnceLock`).
    #[derive(Debug)]
    pub(crate) struct OnceCell<T>(std::sync::OnceLock<T>);

    impl<T: Clone> OnceCell<T> {
        pub(crate) fn new() -> Self {
            Self(std::sync::OnceLock::new())
        }

        #[inline]
        pub(crate) fn get(&self) -> Option<T> {
            self.0.get().cloned()
        }

        /// The value, borrowed: one acquire load once it is set.
        #[inline]
        pub(crate) fn get_ref(&self) -> Option<&T> {
            self.0.get()
        }

        /// Stores `value` unless a value is there already; true if stored.
        pub(crate) fn set(&self, value: T) -> bool {
            self.0.set(value).is_ok()
        }
    }
}

#[cfg(all(loom, feature = "loom"))]
mod imp {
    pub(crate) use crate::core::shadow::{keep_alive, touch, Arc, KeepAlive, Weak};
    pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

    /// loom's mutex behind the same signature as the std build's.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            // Poisoning cannot happen: no code of ours panics while holding a lock.
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    /// loom has no `OnceLock`: std's holds the value, and a loom mutex
    /// around a "set" flag elects the writer and publishes it, so that a
    /// model sees the edge from `set` to `get` (one lock per call, as many
    /// loom operations as a `Mutex<Option<T>>` takes). The value is written
    /// once, before the flag under the lock, and read only after the flag is
    /// seen under the lock, so lending it is sound.
    #[derive(Debug)]
    pub(crate) struct OnceCell<T> {
        set: Mutex<bool>,
        value: std::sync::OnceLock<T>,
    }

    impl<T: Clone> OnceCell<T> {
        pub(crate) fn new() -> Self {
            Self {
                set: Mutex::new(false),
                value: std::sync::OnceLock::new(),
            }
        }

        pub(crate) fn get(&self) -> Option<T> {
            self.get_ref().cloned()
        }

        pub(crate) fn get_ref(&self) -> Option<&T> {
            if *self.set.lock() {
                self.value.get()
            } else {
                None
            }
        }

        pub(crate) fn set(&self, value: T) -> bool {
            let mut set = self.set.lock();
            if *set || self.value.set(value).is_err() {
                return false;
            }
            *set = true;
            true
        }
    }
}

pub(crate) use imp::{fence, keep_alive, touch, Arc, KeepAlive, Mutex, OnceCell, Ordering, Weak};

/// Declares a thread-local: std's (with a `const` initializer, so an access
/// is a plain load), or under loom, loom's (loom runs a model's threads on
/// one OS thread, so std's would be shared by them).
macro_rules! thread_local_value {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(not(all(loom, feature = "loom")))]
        std::thread_local!($(#[$attr])* $vis static $name: $t = const { $init };);
        #[cfg(all(loom, feature = "loom"))]
        loom::thread_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
pub(crate) use thread_local_value as thread_local;

/// A number no other call of this process returns: an identity that, unlike
/// an address, is never reused. std's atomic even under loom: it is an id,
/// not synchronization, and a model needs no interleaving of it.
pub(crate) fn unique_id() -> u64 {
    #[allow(clippy::disallowed_types)]
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The thread parker of blocking waits (`wakers.rs`): std's, or loom's.
#[cfg(not(all(loom, feature = "loom")))]
pub(crate) mod thread {
    pub(crate) use std::thread::{current, park, park_timeout, Thread};
}

/// The thread parker of blocking waits (`wakers.rs`) under loom, whose
/// parker cannot time out.
#[cfg(all(loom, feature = "loom"))]
pub(crate) mod thread {
    pub(crate) use loom::thread::{current, park, Thread};

    /// loom cannot time out a park: a model must not wait with a deadline
    /// that has not passed (a deadline already past only checks).
    pub(crate) fn park_timeout(_: std::time::Duration) {
        panic!(
            "quiescent: under loom a wait cannot park with a deadline (loom's parker \
             cannot time out); use Duration::ZERO, or a wait without a deadline"
        )
    }
}

/// An atomic integer newtype, so that the rest of the crate never names
/// `std`'s or loom's type (and clippy can ban both elsewhere).
macro_rules! atomic_newtype {
    ($(#[$doc:meta])* $name:ident, $int:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name(imp::$name);

        #[allow(dead_code)] // each newtype uses a different subset
        impl $name {
            pub(crate) fn new(value: $int) -> Self {
                Self(imp::$name::new(value))
            }

            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $int {
                self.0.load(order)
            }

            #[cfg(test)]
            pub(crate) fn store(&self, value: $int, order: Ordering) {
                self.0.store(value, order)
            }

            /// Wraps on overflow, as std's and loom's do.
            #[inline]
            pub(crate) fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_add(value, order)
            }

            /// Wraps on overflow, as std's and loom's do.
            #[inline]
            pub(crate) fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_sub(value, order)
            }

            #[inline]
            pub(crate) fn fetch_or(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_or(value, order)
            }

            #[inline]
            pub(crate) fn fetch_and(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_and(value, order)
            }

            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.0.compare_exchange_weak(current, new, success, failure)
            }
        }
    };
}

atomic_newtype!(
    /// A `usize` counter (the guard registry's, the panicked count).
    AtomicUsize,
    usize
);
atomic_newtype!(
    /// The state word of `state.rs`: 64 bits on every target, because it
    /// packs two counts (see `state::Core`).
    AtomicU64,
    u64
);
