//! The `tracing` feature: events on trigger (with reason), drain complete and
//! stragglers (with names), captured by a minimal subscriber.
#![cfg(feature = "tracing")]
#![allow(clippy::disallowed_types)]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiescent::Shutdown;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    /// Runs `f` with this capture as the thread's subscriber.
    ///
    /// A second dispatcher stays registered meanwhile (the anchor): with
    /// exactly one registered, tracing-core computes the interest of a
    /// callsite first reached now from the *reaching* thread's subscriber,
    /// so a test of this binary on another thread, with none, would cache
    /// "never" for one of our events and this capture would miss it
    /// (tokio-rs/tracing#3611; seen once here under ASan). With two, the
    /// interest is the union over every registered dispatcher, ours
    /// included.
    fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let _anchor = tracing::Dispatch::new(Capture::default());
        tracing::subscriber::with_default(self.clone(), f)
    }
}

#[test]
fn trigger_stragglers_and_drain_are_traced() {
    let capture = Capture::default();
    capture.during(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard_named("ws-reader").unwrap();
        shutdown.trigger_with_reason("deploy");
        assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_err());
        drop(guard);
        let bounded = Duration::from_secs(5);
        shutdown.wait_drained_timeout(bounded).unwrap();
        shutdown.wait_drained_timeout(bounded).unwrap(); // the drain is reported once
    });
    let lines = capture.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("INFO") && lines[0].contains("shutdown triggered"),
        "{lines:#?}"
    );
    assert!(lines[0].contains("reason=\"deploy\""), "{lines:#?}");
    assert!(
        lines[1].starts_with("WARN") && lines[1].contains("names=[\"ws-reader\"]"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("shutdown drained") && lines[2].contains("panicked=0"),
        "{lines:#?}"
    );
}

#[test]
fn a_tree_logs_its_trigger_once_and_a_polled_drain_warns_once() {
    let capture = Capture::default();
    capture.during(|| {
        let server = Shutdown::new();
        let readers = server.child_named("readers").unwrap();
        let _writers = server.child_named("writers").unwrap();
        let stuck = readers.guard_named("reader-3").unwrap();
        server.trigger_with_reason("deploy");
        for _ in 0..5 {
            assert!(server.wait_drained_timeout(Duration::ZERO).is_err());
        }
        drop(stuck);
        server.wait_drained_timeout(Duration::from_secs(5)).unwrap();
    });
    let lines = capture.0.lock().unwrap().clone();
    let count = |level: &str, text: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(level) && l.contains(text))
            .count()
    };
    assert_eq!(count("INFO", "shutdown triggered"), 1, "{lines:#?}");
    assert_eq!(count("WARN", "still held"), 1, "{lines:#?}");
    assert_eq!(count("DEBUG", "still held"), 4, "{lines:#?}");
    let warn = lines.iter().find(|l| l.starts_with("WARN")).unwrap();
    assert!(warn.contains("readers: \"reader-3\""), "{warn}");
}
