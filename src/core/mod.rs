//! The core: the only files that touch the state word, an atomic
//! read-modify-write or the reference protocol. Everything else of the
//! crate (`wait_group`, `shutdown`, `report`, `signals`) uses them through
//! the types and functions below, and none of them imports back up.
//!
//! | file | owns |
//! |---|---|
//! | `sync.rs` | the choice of primitives: std and parking_lot, or loom's under `--cfg loom` |
//! | `shadow.rs` | under loom only: the loom-visible `Arc` that lets models see the reference protocol |
//! | `state.rs` | the counting core: one packed atomic word, every transition a named function; `Flag` |
//! | `hold.rs` | the counted pointer (`Hold`), the anchor, and the written protocol: the crate's only `unsafe` outside `shadow.rs` |
//! | `wakers.rs` | the wait lists: tasks and parked threads, woken outside every lock |
//!
//! Layering: `hold` → `state` → `wakers` → `sync` (→ `shadow`); `mutant`
//! (the loom mutants' switch) is the one module outside the core they use.

pub(crate) mod hold;
#[cfg(all(loom, feature = "loom"))]
pub(crate) mod shadow;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod wakers;
