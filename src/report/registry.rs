//! The registry of named guards: one per latch, in creation order. A
//! straggler snapshot (`Holders`, `Stragglers`) is built from it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::Location;
use std::time::Instant;

use super::Straggler;

/// One named guard's registration.
#[derive(Debug)]
struct Entry {
    name: Cow<'static, str>,
    site: &'static Location<'static>,
    since: Instant,
}

/// The named guards alive on one latch, in creation order. Unnamed guards
/// never come here.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next: u64,
    entries: BTreeMap<u64, Entry>,
}

impl Registry {
    pub(crate) fn insert(
        &mut self,
        name: Cow<'static, str>,
        site: &'static Location<'static>,
    ) -> u64 {
        let id = self.next;
        self.next += 1;
        self.entries.insert(
            id,
            Entry {
                name,
                site,
                since: Instant::now(),
            },
        );
        id
    }

    /// Where the named guard `id` was made.
    pub(crate) fn site(&self, id: u64) -> Option<&'static Location<'static>> {
        self.entries.get(&id).map(|e| e.site)
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.entries.remove(&id);
    }

    /// Appends the live entries, aged as of `now`.
    pub(crate) fn snapshot_into(
        &self,
        now: Instant,
        latch: &str,
        out: &mut Vec<(Instant, Straggler)>,
    ) {
        out.extend(self.entries.values().map(|e| {
            (
                e.since,
                Straggler {
                    name: e.name.to_string(),
                    latch: latch.to_owned(),
                    site: e.site,
                    held: now.saturating_duration_since(e.since),
                },
            )
        }));
    }
}
