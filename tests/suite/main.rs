//! The integration tests, one module per concern, in one test binary (one
//! link instead of forty: the README's test command stays quick from an
//! empty target directory). The tests that need a process of their own stay
//! apart: `alloc` (a counting global allocator), `signal` (process-wide
//! signal handlers), `spawn_tls` and `races` (child processes, environment),
//! `examples` (builds and runs the examples), `b5_close_spawns_nothing`
//! (counts the process's threads), `stress` (also run in release
//! by CI).

#[path = "../common/mod.rs"]
mod common;

mod b1_negative_counter;
mod b2_concurrent_close;
mod b3_panic_before_done;
mod b4_add_inside_task;
mod b6_admitted_after_shutdown;
mod blocking;
mod chaos;
mod deep;
mod docs;
mod holders;
mod layering;
mod lifecycle;
mod lifecycle_edges;
mod phased;
mod policy;
mod release_edges;
mod shutdown;
mod shutdown_async;
mod spawn;
mod spawn_edges;
mod spawn_identity;
mod tower;
mod tracing;
mod track;
mod wait_group;
mod wait_group_async;
mod wakers;
