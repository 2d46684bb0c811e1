//! The wakers of a one-shot event: the async trigger waiters of a latch.
//!
//! `event-listener` gives every future a linked-list node of its own (one
//! allocation), wakes each task while holding the list's lock, and makes
//! every woken future take that lock again to unlink itself. For a trigger
//! that wakes ten thousand tasks at once that is ten thousand lock handovers
//! between the waking thread and the woken ones. A one-shot event needs less:
//!
//! * registered wakers live in a slab behind a mutex (no allocation per
//!   future once the slab has grown, no `unsafe`);
//! * the event takes the whole slab out under the lock once, *seals* the set
//!   so that no waker can be added afterwards, and wakes every waker after
//!   the lock is released;
//! * a woken future sees the event in its own word (the latch's `CLOSED`
//!   bit) and neither locks nor unlinks: the slab it was in is gone.
//!
//! No lost wake-up: the event's flag is set before [`WakerSet::wake_all`]
//! locks. A registration that takes the lock before it is in the slab the
//! event takes and is woken; one that takes it after finds the set sealed
//! and reports the event instead of registering. Mutex acquisition orders
//! the two, so there is no third case.
//!
//! Unregistering (a future dropped before the event) takes the lock only if
//! the flag is still clear; once it is set, the event owns the slab and
//! drops the waker itself, at worst waking a task that no longer waits (a
//! spurious wake-up, which every executor tolerates).

use std::mem;
use std::task::Waker;

use crate::mutant;
use crate::sync::Mutex;

/// The registered wakers of a one-shot event.
#[derive(Debug, Default)]
pub(crate) struct WakerSet {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Registered wakers; `None` marks a free slot (listed in `free`).
    wakers: Vec<Option<Waker>>,
    /// Indices of free slots in `wakers`.
    free: Vec<usize>,
    /// Set by [`WakerSet::wake_all`]: the event happened and nothing more
    /// is registered.
    sealed: bool,
}

/// A registration: the waker's slot in the set, while the event has not
/// happened.
#[derive(Debug, Default)]
pub(crate) struct Key(Option<usize>);

impl Key {
    /// Whether a waker was registered under this key (and possibly taken by
    /// the event since).
    pub(crate) fn is_registered(&self) -> bool {
        self.0.is_some()
    }
}

impl WakerSet {
    /// Registers `waker` under `key` (or replaces the one registered there
    /// if it would wake another task). False if the set is sealed: the event
    /// has happened, and nothing is registered.
    pub(crate) fn register(&self, key: &mut Key, waker: &Waker) -> bool {
        let mut slots = self.slots.lock();
        // Mutant: a registration after the event is kept and never woken.
        if slots.sealed && !mutant::is("unsealed-wakers") {
            return false;
        }
        match key.0 {
            Some(index) => {
                let slot = &mut slots.wakers[index];
                if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
            }
            None => {
                let index = match slots.free.pop() {
                    Some(index) => {
                        slots.wakers[index] = Some(waker.clone());
                        index
                    }
                    None => {
                        slots.wakers.push(Some(waker.clone()));
                        slots.wakers.len() - 1
                    }
                };
                key.0 = Some(index);
            }
        }
        true
    }

    /// Removes the waker registered under `key`, unless the event took it.
    /// Call only while the event's flag is clear (module docs); a caller
    /// that sees the flag set leaves the waker to the event.
    pub(crate) fn unregister(&self, key: &mut Key) {
        let Some(index) = key.0.take() else {
            return;
        };
        let mut slots = self.slots.lock();
        if slots.sealed {
            return;
        }
        slots.wakers[index] = None;
        slots.free.push(index);
    }

    /// Seals the set and wakes every registered waker, after releasing the
    /// lock (a waker may run its task inline and poll a future of this set).
    /// Call after setting the event's flag; later calls find nothing to wake.
    pub(crate) fn wake_all(&self) {
        let wakers = {
            let mut slots = self.slots.lock();
            slots.sealed = true;
            slots.free = Vec::new();
            mem::take(&mut slots.wakers)
        };
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    /// Wakers registered now (for tests of cancellation).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let slots = self.slots.lock();
        slots.wakers.len() - slots.free.len()
    }
}
