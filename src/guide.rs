//! A guide: which primitive to choose, a tokio server, the pitfalls, and
//! model-checking your own code with loom. Every Rust block here is a
//! doctest.
//!
//! # Choosing `WaitGroup` or `Shutdown`
//!
//! * [`WaitGroup`](crate::WaitGroup): "wait until these N things are done".
//!   One owner waits (`wait` takes `&mut self`); workers hold
//!   [`Token`](crate::Token)s. Nothing tells the workers to stop: they finish
//!   their work and drop the token. Reusable: after a wait returns, mint new
//!   tokens for the next round. Use it for fan-out/fan-in: a batch of jobs, a
//!   parallel scan, "all threads have exited".
//! * [`Shutdown`](crate::Shutdown): "stop admitting work, tell everyone, wait
//!   until they are gone, and tell me who is stuck". One-shot. Any number of
//!   handles and drainers; guards are refused after the trigger; child
//!   latches order the drain; named guards make a timed-out drain name its
//!   stragglers. Use it for the life cycle of a server or a service.
//!
//! ```
//! use quiescent::{Shutdown, WaitGroup};
//!
//! // Fan-out, fan-in: the workers run to completion.
//! let mut batch = WaitGroup::new();
//! for job in 0..4 {
//!     batch.spawn(move || job * 2);
//! }
//! batch.wait();
//!
//! // A service: the workers run until told to stop.
//! let service = Shutdown::new();
//! let worker = service.spawn_named("poller", |guard| guard.wait_triggered()).unwrap();
//! let report = service.shutdown();
//! assert_eq!(report.panicked, 0);
//! worker.join().unwrap();
//! ```
//!
#![doc = include_str!("../docs/method-map.md")]
//!
//! # Graceful shutdown of a tokio server
//!
//! Stop accepting at the trigger, let in-flight connections finish under
//! named guards, bound the drain with a grace period, and name whoever is
//! still connected when it ends. `examples/server.rs` is the complete server;
//! the shape:
//!
//! ```
//! use std::time::Duration;
//! use quiescent::Shutdown;
//!
//! #[tokio::main]
//! async fn main() {
//!     let shutdown = Shutdown::new();
//!     let conns = shutdown.child_named("conns").unwrap();
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let acceptor = shutdown.guard_named("acceptor").unwrap();
//!     tokio::spawn(async move {
//!         while let Some(Ok((stream, peer))) = acceptor.run_until_triggered(listener.accept()).await {
//!             let serve = async move { drop(stream) /* ... */ };
//!             let Ok(conn) = conns.track_named(format!("conn {peer}"), serve) else { break };
//!             tokio::spawn(conn);
//!         }
//!     });
//!     // ... until a signal (`trigger_on_signals` with the `signal` feature) ...
//!     let grace = tokio::time::sleep(Duration::from_secs(5));
//!     match shutdown.shutdown_async().until(grace).await {
//!         Ok(report) => println!("{report}"),
//!         Err(stragglers) => eprintln!("{stragglers}"),
//!     }
//! }
//! ```
//!
//! # HTTP servers
//!
//! With the `tower` feature, [`Shutdown::layer`](crate::Shutdown::layer)
//! counts every request in flight as a guard (until its response body ends),
//! answers 503 once the latch is triggered, and, named, lets a drain that
//! gives up name the slow requests. axum in ten lines:
//!
//! ```ignore
//! let shutdown = quiescent::Shutdown::new();
//! shutdown.signals().notice(Duration::from_secs(5)).install()?;
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "ok" }))
//!     .layer(shutdown.layer().named());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! tokio::spawn(axum::serve(listener, app).into_future());
//! shutdown.wait_triggered_async().await;
//! let grace = tokio::time::sleep(Duration::from_secs(20));
//! let report = shutdown.shutdown_async().until(grace).await; // names "GET /slow" if it gives up
//! ```
//!
//! (`ignore`: axum is not a dependency of this crate; `http-demo/` in the
//! repository is the complete server, with its end-to-end test.) With tonic,
//! add the same layer to the server: `Server::builder().layer(shutdown.layer())`.
//!
//! # Running under Kubernetes or systemd
//!
//! An orchestrator stops a service in stages, and quiescent has one for
//! each: **announce** (the readiness probe turns "not ready", load balancers
//! stop sending, requests in flight and still arriving are served),
//! **trigger** (new work refused, holders told), **drain** within a grace
//! period, **force** (holders abandon in-flight work) for a hard period, and
//! **exit**, naming whoever still holds on.
//!
//! ```no_run
//! # #[cfg(all(feature = "signal", feature = "systemd", target_os = "linux"))]
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use quiescent::Shutdown;
//!
//! let (notice, grace, hard) = (Duration::from_secs(5), Duration::from_secs(20), Duration::from_secs(5));
//! let shutdown = Shutdown::new();
//! shutdown.notify_systemd(); // under systemd: STOPPING=1 and a status line per stage
//! // SIGTERM announces; the notice's end (or a second signal) triggers;
//! // the next signal forces, the one after exits naming the stragglers.
//! shutdown.signals().notice(notice).install()?;
//!
//! // ... serve; the readiness probe answers 503 once `shutdown.is_announced()` ...
//!
//! shutdown.wait_triggered();
//! match shutdown.shutdown_phased(grace, hard) {
//!     Ok(report) => println!("{report}"),
//!     Err(stragglers) => {
//!         eprintln!("{stragglers:#}");
//!         std::process::exit(1);
//!     }
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "signal", feature = "systemd", target_os = "linux")))]
//! # fn main() {} // the `signal` and `systemd` features (Linux) are needed
//! ```
//!
//! The same stages without signals, as a test drives them:
//!
//! ```
//! use std::time::Duration;
//! use quiescent::{Cause, Shutdown};
//!
//! let shutdown = Shutdown::new();
//! let request = shutdown.guard_named("GET /slow").unwrap();
//! shutdown.announce(); // the readiness probe: 503 from now on
//! assert!(shutdown.is_announced() && shutdown.guard().is_ok()); // still served
//! shutdown.trigger_with_cause(Cause::Signal(15)); // the notice is over
//! assert!(shutdown.guard().is_err());
//! drop(request); // the request in flight completes within the grace
//! let report = shutdown.shutdown_phased(Duration::from_secs(20), Duration::from_secs(5)).unwrap();
//! assert_eq!(report.reason.as_deref(), Some("SIGTERM"));
//! assert!(!report.forced);
//! ```
//!
//! Settings that match, with `notice`, `grace` and `hard` as above:
//!
//! * **Kubernetes**: `terminationGracePeriodSeconds` at least
//!   `notice + grace + hard` (plus a margin: the kubelet's SIGKILL comes
//!   when it runs out). The notice must outlast the time the endpoints take
//!   to drop the pod: the readiness probe's `periodSeconds` ×
//!   `failureThreshold`, plus the endpoint controller's propagation
//!   (seconds). No `preStop` sleep is needed: the notice is that sleep, with
//!   the requests still served.
//! * **systemd**: `TimeoutStopSec=` at least `notice + grace + hard`;
//!   `KillSignal=SIGTERM` (the default). `notify_systemd` sends `STOPPING=1`
//!   and a `STATUS=` line at each stage (`systemctl status` shows it); it
//!   does not send `READY=1`, which is the application's to send when it is
//!   ready (with `Type=notify` and `NotifyAccess=main`), or use `Type=exec`.
//! * **Windows** has neither signals nor `NOTIFY_SOCKET`: the `signal` and
//!   `systemd` features add nothing there. A Windows service announces and
//!   triggers its latch from its service control handler
//!   (`SERVICE_CONTROL_PRESHUTDOWN` to announce, `SERVICE_CONTROL_STOP` or
//!   `SERVICE_CONTROL_SHUTDOWN` to trigger, with
//!   [`trigger_with_cause`](crate::Shutdown::trigger_with_cause)), and a
//!   console program from a console control handler (Ctrl-C).
//!
//! # Pitfalls
//!
//! **`let _ = shutdown.guard()` drops the guard at once.** `_` is not a
//! binding: the guard is released on the same line and the drain does not
//! wait for the work that follows. Bind it to a name (`let _guard = ...`) or
//! move it into the task.
//!
//! ```
//! let shutdown = quiescent::Shutdown::new();
//! let _ = shutdown.guard().unwrap(); // released here
//! assert_eq!(shutdown.count(), 0);
//! let _guard = shutdown.guard().unwrap(); // held to the end of the scope
//! assert_eq!(shutdown.count(), 1);
//! ```
//!
//! **Blocking calls inside async code.** `wait_drained`, `shutdown_timeout`
//! and the other blocking waits block the thread. On a current-thread
//! runtime that also stops every task that could release a guard: the drain
//! times out with false stragglers. In async code use the `_async` twins and
//! [`Drained::until`](crate::futures::Drained::until).
//!
//! **Recreating the trigger future in a `select!` loop.** Each
//! `wait_triggered_async()` that finds the latch untriggered registers a
//! listener, which allocates. Create it once before the loop and poll it by
//! reference (see [`Shutdown::wait_triggered_async`](crate::Shutdown::wait_triggered_async)),
//! or wrap the loop's work in
//! [`Guard::run_until_triggered`](crate::Guard::run_until_triggered).
//!
//! **Helpers that make named guards.** `guard_named`, `track_named` and
//! `spawn_named` record their caller's line. A helper of yours that calls them
//! records *its own* line for every guard, unless it is `#[track_caller]` too:
//!
//! ```
//! use quiescent::{Guard, Shutdown};
//!
//! #[track_caller]
//! fn reader_guard(latch: &Shutdown, id: u32) -> Guard {
//!     latch.guard_named(format!("reader-{id}")).unwrap()
//! }
//!
//! let latch = Shutdown::new();
//! let guard = reader_guard(&latch, 3);
//! assert_eq!(latch.holders().named[0].site.line(), line!() - 1);
//! # drop(guard);
//! ```
//!
//! **`shutdown_async()` triggers when called**, not when first polled.
//!
//! **Timed waits under loom.** loom's parker cannot time out, so under
//! `--cfg loom` a wait with a non-zero timeout panics. `Duration::ZERO` only
//! checks the state and never parks, so `wait_drained_timeout(Duration::ZERO)`
//! works in a model; cover real timeouts with ordinary tests.
//!
//! # Model-checking your code with quiescent and loom
//!
//! Enable quiescent's `loom` feature for loom builds and build your models
//! with `--cfg loom`: every atomic, lock, parker and wake-up inside quiescent
//! then goes through loom, reference counts included, so your models explore
//! our interleavings together with yours. Building with `--cfg loom` but
//! without the feature stops with one error, quiescent's own, that says so.
//!
//! `RUSTFLAGS="--cfg loom"` reaches every crate of the build. tokio, for one,
//! hides `tokio::net` under `--cfg loom`, so an application that uses it
//! stops compiling. Keep the models in a package of their own, which depends
//! on quiescent (with `loom`) and loom but not on tokio, and build them into a
//! target directory of their own, so the flag never meets the application's
//! build. The recipe, which CI runs on a tiny tokio application
//! (`docs/loom-recipe/` in the repository):
//!
//! ```toml
//! # app-loom/Cargo.toml: the models, next to the application's package
//! [dependencies]
//! quiescent = { version = "0.1", features = ["loom"] }
//! loom = "0.7"
//!
//! [lints.rust]
//! # Tell rustc that `cfg(loom)` is expected.
//! unexpected_cfgs = { level = "warn", check-cfg = ["cfg(loom)"] }
//! ```
//!
//! ```sh
//! cargo run -p app                                   # the application, as usual
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p app-loom --release               # its models (loom explores thousands of executions)
//! ```
//!
//! A worked model (`app-loom/tests/drain.rs`): a worker's write must be
//! visible after the drain, in every interleaving of the drop, the trigger
//! and the wait.
//!
//! ```
//! // In app-loom/tests/drain.rs, under `#![cfg(loom)]`, with `#[test]` on
//! // the function.
//! #[cfg(loom)]
//! fn worker_write_is_visible_after_the_drain() {
//!     use loom::sync::atomic::{AtomicUsize, Ordering};
//!     use loom::sync::Arc;
//!     use quiescent::Shutdown;
//!
//!     loom::model(|| {
//!         let shutdown = Shutdown::new();
//!         let result = Arc::new(AtomicUsize::new(0));
//!         let guard = shutdown.guard().unwrap();
//!         let worker = {
//!             let result = result.clone();
//!             loom::thread::spawn(move || {
//!                 result.store(42, Ordering::Relaxed);
//!                 drop(guard);
//!             })
//!         };
//!         shutdown.shutdown();
//!         // The drain is a happens-before edge: a Relaxed load suffices.
//!         assert_eq!(result.load(Ordering::Relaxed), 42);
//!         worker.join().unwrap();
//!     });
//! }
//! ```
//!
//! `loom-tests/` in the repository holds quiescent's own models, written
//! against the public API exactly like this one.
