//! Wake-ups: the waiters of one event, tasks and parked threads in one list,
//! woken outside every lock.
//!
//! Every wait of the crate goes through a [`WaitList`]: the trigger's (tasks
//! of `Triggered`, threads in `wait_triggered`), the drain's, a `WaitGroup`'s
//! zero, the forcing's. It replaces `event-listener`, which 5.x wakes while
//! holding its list lock: a waker that polls or drops its own future inline
//! (a current-thread executor's "run it now" waker, or a test's) then takes
//! that lock again and the thread that dropped the last guard never returns.
//!
//! # The promises, and why they hold
//!
//! 1. **No lost wake-up.** A waiter checks its condition *under the list's
//!    lock* before it registers ([`WaitList::register`]); the notifier first
//!    changes the state word (the read-modify-write that makes the condition
//!    true), then takes the list under the same lock ([`WaitList::wake_all`]).
//!    If the waiter locks first, its registration is in the list the notifier
//!    takes; if the notifier locks first, its RMW happens before the waiter's
//!    lock, so the check sees the new word. Mutex acquisition orders the two.
//! 2. **No waker runs under a lock.** `wake_all` takes the whole list out
//!    under the lock and wakes after releasing it. A waker replaced by a
//!    later poll, or taken out by a cancel, is dropped after the lock too
//!    (a waker's drop may drop a task, and with it a future of this list).
//!    So a waker may poll or drop its own future, trigger, take a guard or
//!    read a report inline.
//! 3. **A panicking waker stops nothing.** Each waker is woken under
//!    `catch_unwind`; the others are still woken, and the first panic is
//!    handed to the caller as an [`Unwound`], which finishes its own work
//!    (gives back references, triggers children) before resuming it. A
//!    thread that is already unwinding drops it instead (a second panic
//!    would abort); the panic hook has printed it when it happened. A
//!    payload dropped so (or a second one) may itself panic when dropped:
//!    [`discard`] catches that too, so no panic cuts a wake-up loop short.
//! 4. **Stale registrations are harmless.** Every `wake_all` starts a new
//!    epoch; a [`Key`] of an older one owns no slot any more, so a late
//!    cancel never removes another waiter's registration, and a list can be
//!    reused (a `WaitGroup` is waited on again and again).
//!
//! Blocking waiters park with the thread parker (`sync::thread`: std's, or
//! loom's under `--cfg loom`, so the models check this very code); async
//! waiters register their task's waker. No allocation per waiter once the
//! list has grown, no thread, no `unsafe`.

use std::any::Any;
use std::mem;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::sync::{thread, Mutex};
use crate::mutant;

/// One registered waiter.
enum Waiter {
    /// An async task, woken through its waker.
    Task(Waker),
    /// A thread blocked in [`WaitList::block`], unparked.
    Thread(thread::Thread),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Task(waker) => waker.wake(),
            Waiter::Thread(thread) => thread.unpark(),
        }
    }
}

/// The waiters of one event (module docs).
#[derive(Default)]
pub(crate) struct WaitList {
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Registered waiters; `None` marks a free slot (listed in `free`).
    waiters: Vec<Option<Waiter>>,
    /// Indices of free slots in `waiters`.
    free: Vec<usize>,
    /// Bumped by every [`WaitList::wake_all`]: keys of older epochs own
    /// nothing.
    epoch: u64,
}

impl Slots {
    /// The slot `key` owns, if it is of this epoch.
    fn slot_of(&self, key: &Key) -> Option<usize> {
        key.0
            .filter(|&(_, epoch)| epoch == self.epoch)
            .map(|(index, _)| index)
    }
}

/// A waiter's registration: its slot and the epoch it belongs to.
#[derive(Debug, Default)]
pub(crate) struct Key(Option<(usize, u64)>);

impl WaitList {
    /// Registers a waiter under `key` unless `done` holds; `done` is checked
    /// under the lock (module docs, 1). True if the waiter is registered and
    /// must wait; false if the condition holds (and `key` owns nothing).
    ///
    /// `make` builds the waiter for a new registration, or to replace the
    /// one `key` holds unless `same` says it would wake the same waiter.
    fn register(
        &self,
        key: &mut Key,
        make: impl FnOnce() -> Waiter,
        same: impl FnOnce(&Waiter) -> bool,
        done: impl FnOnce() -> bool,
    ) -> bool {
        let mut slots = self.slots.lock();
        // Mutant: register without looking again under the lock: a
        // notification that took the list after the caller's first look is
        // never seen.
        if !mutant::is("no-recheck") && done() {
            let old = slots.slot_of(key).and_then(|index| {
                slots.free.push(index);
                slots.waiters[index].take()
            });
            key.0 = None;
            drop(slots);
            drop(old); // after the lock (module docs, 2)
            return false;
        }
        let replaced = match slots.slot_of(key) {
            Some(index) => {
                let slot = &mut slots.waiters[index];
                if slot.as_ref().is_some_and(same) {
                    None
                } else {
                    slot.replace(make())
                }
            }
            None => {
                let waiter = Some(make());
                let index = match slots.free.pop() {
                    Some(index) => {
                        slots.waiters[index] = waiter;
                        index
                    }
                    None => {
                        slots.waiters.push(waiter);
                        slots.waiters.len() - 1
                    }
                };
                key.0 = Some((index, slots.epoch));
                None
            }
        };
        drop(slots);
        drop(replaced); // after the lock (module docs, 2)
        true
    }

    /// Takes `key`'s registration out, if it still owns one.
    pub(crate) fn unregister(&self, key: &mut Key) {
        let Some(_) = key.0 else {
            return;
        };
        let mut slots = self.slots.lock();
        let old = slots.slot_of(key).and_then(|index| {
            slots.free.push(index);
            slots.waiters[index].take()
        });
        key.0 = None;
        drop(slots);
        drop(old); // after the lock (module docs, 2)
    }

    /// A waiter that stops waiting (a future dropped, a wait that gave up):
    /// takes its registration out unless `done` holds, in which case the
    /// notification that made it hold takes (or took) the whole list, and
    /// the lock is not needed.
    pub(crate) fn cancel(&self, key: &mut Key, done: impl FnOnce() -> bool) {
        if key.0.is_some() && !done() {
            self.unregister(key);
        }
    }

    /// Wakes every registered waiter, after releasing the lock, each under
    /// `catch_unwind` (module docs, 2 and 3). Call after the read-modify-write
    /// that makes the waited-for condition hold.
    pub(crate) fn wake_all(&self) -> Unwound {
        let mut slots = self.slots.lock();
        slots.epoch = slots.epoch.wrapping_add(1);
        slots.free.clear();
        let waiters = mem::take(&mut slots.waiters);
        if mutant::is("wake-under-lock") {
            // Mutant: wakers run while the list is locked, as event-listener
            // 5.x runs them: a waker that polls its future inline deadlocks.
            let mut unwound = Unwound::default();
            for waiter in waiters.into_iter().flatten() {
                unwound.catch(|| waiter.wake());
            }
            drop(slots);
            return unwound;
        }
        drop(slots);
        let mut unwound = Unwound::default();
        for waiter in waiters.into_iter().flatten() {
            if mutant::is("panic-cuts-wakes") {
                // Mutant: a waker's panic unwinds out of the loop, and the
                // waiters after it are dropped without being woken.
                waiter.wake();
            } else {
                unwound.catch(|| waiter.wake());
            }
        }
        unwound
    }

    /// Polls for the event: ready if `done` holds, else registers the task's
    /// waker under `key` (or keeps the one registered there if it wakes the
    /// same task) and returns pending. Polling again with another waker
    /// replaces it; only the latest one is woken.
    pub(crate) fn poll(
        &self,
        key: &mut Key,
        cx: &mut Context<'_>,
        done: impl Fn() -> bool,
    ) -> Poll<()> {
        if done() {
            return Poll::Ready(());
        }
        let waker = cx.waker();
        let registered = self.register(
            key,
            || Waiter::Task(waker.clone()),
            |old| matches!(old, Waiter::Task(old) if old.will_wake(waker)),
            done,
        );
        if registered {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Blocks the calling thread until `done` holds (true) or `deadline`
    /// passes (false). A deadline already past only checks; `done` is
    /// checked first, so a condition that holds wins over a deadline that
    /// passed.
    ///
    /// Check, register (checking again under the lock), park, and loop: an
    /// unpark that comes before the park makes the park return at once, and
    /// a spurious return only loops.
    ///
    /// # Loom
    ///
    /// loom's parker cannot time out, so a wait that would park with a
    /// deadline panics under `--cfg loom`.
    pub(crate) fn block(&self, done: impl Fn() -> bool, deadline: Option<Instant>) -> bool {
        // The fast path: the condition holds already (a drained latch, a
        // group with no token); no handle of the thread is taken.
        if done() {
            return true;
        }
        let mut key = Key::default();
        let me = thread::current();
        let reached = loop {
            if done() {
                break true;
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break false,
                },
            };
            let registered = self.register(
                &mut key,
                || Waiter::Thread(me.clone()),
                // The key is this thread's own: its slot can only hold us.
                |_| true,
                &done,
            );
            if !registered {
                break true;
            }
            match timeout {
                None => thread::park(),
                Some(timeout) => thread::park_timeout(timeout),
            }
        };
        self.cancel(&mut key, done);
        reached
    }

    /// Registered waiters now (for tests of cancellation).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let slots = self.slots.lock();
        slots.waiters.len() - slots.free.len()
    }
}

impl std::fmt::Debug for WaitList {
    /// Never locks (`Debug` must not block): the list is shown opaque.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitList")
    }
}

/// A panic caught while waking (module docs, 3): held until the operation
/// that woke has finished its own work, then [resumed](Self::resume).
#[derive(Default)]
#[must_use = "a caught panic must be resumed once the operation is done"]
pub(crate) struct Unwound(Option<Box<dyn Any + Send>>);

impl Unwound {
    /// Runs `f`, keeping its panic if it panics (the first one only).
    pub(crate) fn catch(&mut self, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.keep(Unwound(Some(payload)));
        }
    }

    /// Keeps `other`'s panic too if none is kept yet (the first one wins;
    /// a later one is [discarded](discard), its message printed already by
    /// the hook).
    pub(crate) fn keep(&mut self, other: Unwound) {
        match (&self.0, other.0) {
            (None, other) => self.0 = other,
            (Some(_), Some(later)) => discard(later),
            (Some(_), None) => {}
        }
    }

    /// Whether a panic was caught.
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Resumes the kept panic, unless this thread is unwinding already (a
    /// second panic would abort the process): then it is
    /// [discarded](discard).
    pub(crate) fn resume(self) {
        if let Some(payload) = self.0 {
            if std::thread::panicking() {
                discard(payload);
            } else {
                resume_unwind(payload);
            }
        }
    }
}

/// Drops a panic's payload that will not be resumed, so that nothing
/// unwinds out of here: a payload is any value (`panic_any`), and its
/// `Drop` may panic in turn. That panic is caught and its own payload
/// dropped the same way; after a few such rounds (a payload whose drop
/// panics with another such payload, and so on), the last one is forgotten
/// (leaked) rather than dropped. Without this, a payload that panics when
/// dropped would cut the operation short (the remaining wake-ups, the
/// release chain, the cascade) or, inside a guard's drop while the thread
/// unwinds, abort the process.
pub(crate) fn discard(mut payload: Box<dyn Any + Send>) {
    for _ in 0..4 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    mem::forget(payload);
}

impl std::fmt::Debug for Unwound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Unwound").field(&self.0.is_some()).finish()
    }
}
