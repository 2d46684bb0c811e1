//! The deferral slot of a thread (`Hold::defer_release`, transition D): a
//! count whose release a guard's drop put off, by node address, owned by the
//! slot until the spawn's wrapper takes it back as a hold.

use std::cell::Cell;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    /// The next unwinding drop of a hold of this node is deferred.
    Armed(*const ()),
    /// A count on this node is deferred, owned by the slot.
    Held(*const ()),
}

crate::core::sync::thread_local! {
    static SLOT: Cell<Slot> = Cell::new(Slot::Empty);
}

pub(super) fn arm(node: *const ()) {
    SLOT.with(|slot| {
        debug_assert!(
            !matches!(slot.get(), Slot::Held(_)),
            "a second release deferred before the first was taken"
        );
        slot.set(Slot::Armed(node));
    });
}

/// Whether the hold of `node` being dropped now is the armed one (and
/// its count is now the slot's).
#[cold]
#[inline(never)]
pub(super) fn claim(node: *const ()) -> bool {
    // `try_with`: a hold dropped while the thread's locals are being
    // destroyed is simply released.
    SLOT.try_with(|slot| {
        let armed = slot.get() == Slot::Armed(node);
        if armed {
            slot.set(Slot::Held(node));
        }
        armed
    })
    .unwrap_or(false)
}

/// Whether a count is deferred (one thread-local read).
pub(super) fn is_held() -> bool {
    SLOT.try_with(|slot| matches!(slot.get(), Slot::Held(_)))
        .unwrap_or(false)
}

pub(super) fn take() -> Option<*const ()> {
    SLOT.with(|slot| match slot.replace(Slot::Empty) {
        Slot::Held(node) => Some(node),
        _ => None,
    })
}
