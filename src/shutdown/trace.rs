//! The `tracing` feature's events: trigger (with its reason), drain
//! complete (elapsed, panicked), stragglers (names). Without the feature,
//! nothing.

use super::latch::Latch;
use crate::report::{Report, Stragglers};

#[cfg(feature = "tracing")]
pub(super) fn trace_trigger(latch: &Latch) {
    let reason = latch.reason();
    tracing::info!(
        latch = latch.path(),
        reason = reason.as_deref().unwrap_or(""),
        guards = latch.core.snapshot().count(),
        "shutdown triggered"
    );
}

#[cfg(feature = "tracing")]
pub(super) fn trace_drained(latch: &Latch, report: &Report) {
    tracing::info!(
        latch = latch.path(),
        elapsed = ?report.elapsed,
        panicked = report.panicked,
        "shutdown drained"
    );
}

#[cfg(feature = "tracing")]
pub(super) fn trace_stragglers(latch: &str, stragglers: &Stragglers, first: bool) {
    if first {
        tracing::warn!(
            latch,
            remaining = stragglers.remaining,
            names = ?stragglers.names,
            "{stragglers}"
        );
    } else {
        tracing::debug!(
            latch,
            remaining = stragglers.remaining,
            names = ?stragglers.names,
            "{stragglers}"
        );
    }
}

#[cfg(not(feature = "tracing"))]
pub(super) fn trace_trigger(_: &Latch) {}
#[cfg(not(feature = "tracing"))]
pub(super) fn trace_drained(_: &Latch, _: &Report) {}
#[cfg(not(feature = "tracing"))]
pub(super) fn trace_stragglers(_: &str, _: &Stragglers, _: bool) {}
