//! quiescent side by side with crossbeam-utils' `WaitGroup`, tokio-util's
//! `TaskTracker` (+ `CancellationToken`), a raw `AtomicUsize` pair (the
//! physical floor) and a naive `Mutex<usize>` + `Condvar`, on the same work.
//!
//! Run: `cargo bench -p quiescent-benches --bench compare`; chart and table:
//! `cargo run --release -p quiescent-benches --example bench_report` (see BENCHMARKS.md).
#![allow(clippy::disallowed_types)] // competitors use std types directly

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// Go's benchmarks pad each per-goroutine group to 128 bytes.
#[repr(align(128))]
struct Padded<T>(T);

/// The naive baseline: a count under a mutex, a condvar for waiters.
#[derive(Default)]
struct Naive {
    count: Mutex<usize>,
    zero: Condvar,
}

impl Naive {
    fn add(&self) {
        *self.count.lock().unwrap() += 1;
    }
    fn done(&self) {
        let mut count = self.count.lock().unwrap();
        *count -= 1;
        if *count == 0 {
            self.zero.notify_all();
        }
    }
    fn wait(&self) {
        let mut count = self.count.lock().unwrap();
        while *count != 0 {
            count = self.zero.wait(count).unwrap();
        }
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `f(iters)` on every core at once; the time from release to the last
/// thread's end, per iteration of one thread.
fn on_every_core(iters: u64, f: impl Fn(u64) + Sync) -> Duration {
    let n = cores();
    let barrier = Barrier::new(n + 1);
    let mut start = Instant::now();
    thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| {
                barrier.wait();
                f(iters);
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    start.elapsed()
}

fn work(steps: u32) -> u64 {
    let mut x = black_box(3u64);
    for _ in 0..steps {
        x = black_box(x * 2);
        x = black_box(x / 2);
    }
    x
}

/// Token clone+drop, one thread, and the same contended by every core.
fn clone_drop(c: &mut Criterion) {
    for contended in [false, true] {
        let name = if contended {
            "clone_drop_contended"
        } else {
            "clone_drop"
        };
        let mut g = c.benchmark_group(name);
        let run = |iters: u64, f: &(dyn Fn(u64) + Sync)| {
            if contended {
                on_every_core(iters, f)
            } else {
                let start = Instant::now();
                f(iters);
                start.elapsed()
            }
        };
        g.bench_function("raw_atomic", |b| {
            let a = AtomicUsize::new(1);
            b.iter_custom(|iters| {
                run(iters, &|n| {
                    for _ in 0..n {
                        a.fetch_add(1, Ordering::Relaxed);
                        black_box(a.fetch_sub(1, Ordering::Release));
                    }
                })
            })
        });
        g.bench_function("quiescent", |b| {
            let wg = quiescent::WaitGroup::new();
            let base = wg.token();
            b.iter_custom(|iters| {
                run(iters, &|n| {
                    for _ in 0..n {
                        drop(black_box(base.clone()));
                    }
                })
            })
        });
        g.bench_function("crossbeam", |b| {
            let base = crossbeam_utils::sync::WaitGroup::new();
            b.iter_custom(|iters| {
                run(iters, &|n| {
                    for _ in 0..n {
                        drop(black_box(base.clone()));
                    }
                })
            })
        });
        g.bench_function("tokio_util", |b| {
            let tracker = tokio_util::task::TaskTracker::new();
            let base = tracker.token();
            b.iter_custom(|iters| {
                run(iters, &|n| {
                    for _ in 0..n {
                        drop(black_box(base.clone()));
                    }
                })
            })
        });
        g.bench_function("naive_mutex", |b| {
            let naive = Naive::default();
            naive.add();
            b.iter_custom(|iters| {
                run(iters, &|n| {
                    for _ in 0..n {
                        naive.add();
                        naive.done();
                    }
                })
            })
        });
        g.finish();
    }
}

/// `Shutdown::guard` + drop against token clone+drop, on a busy latch (other
/// guards alive, the steady state of a server) and an idle one (each guard
/// takes the count 0 -> 1 -> 0).
fn guard_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("guard_drop");
    g.bench_function("token_clone_drop", |b| {
        let wg = quiescent::WaitGroup::new();
        let base = wg.token();
        b.iter(|| drop(black_box(base.clone())))
    });
    g.bench_function("guard_busy", |b| {
        let shutdown = quiescent::Shutdown::new();
        let _base = shutdown.guard().unwrap();
        b.iter(|| drop(black_box(shutdown.guard().unwrap())))
    });
    g.bench_function("guard_clone", |b| {
        let shutdown = quiescent::Shutdown::new();
        let base = shutdown.guard().unwrap();
        b.iter(|| drop(black_box(base.clone())))
    });
    g.bench_function("guard_idle", |b| {
        let shutdown = quiescent::Shutdown::new();
        b.iter(|| drop(black_box(shutdown.guard().unwrap())))
    });
    g.bench_function("guard_child_busy", |b| {
        let root = quiescent::Shutdown::new();
        let child = root.child().unwrap();
        let _base = child.guard().unwrap();
        b.iter(|| drop(black_box(child.guard().unwrap())))
    });
    g.bench_function("tokio_util_token", |b| {
        let tracker = tokio_util::task::TaskTracker::new();
        b.iter(|| drop(black_box(tracker.token())))
    });
    g.finish();
}

/// `Shutdown::guard` + drop on every core at once, on one busy latch (the
/// steady state of a server admitting work from every thread), against the
/// raw atomic pair and tokio-util's tracker token on the same shape.
fn guard_drop_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("guard_drop_contended");
    g.bench_function("raw_atomic", |b| {
        let a = AtomicUsize::new(1);
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                for _ in 0..n {
                    a.fetch_add(1, Ordering::Relaxed);
                    black_box(a.fetch_sub(1, Ordering::Release));
                }
            })
        })
    });
    g.bench_function("guard_busy", |b| {
        let shutdown = quiescent::Shutdown::new();
        let _base = shutdown.guard().unwrap();
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                for _ in 0..n {
                    drop(black_box(shutdown.guard().unwrap()));
                }
            })
        })
    });
    g.bench_function("tokio_util_token", |b| {
        let tracker = tokio_util::task::TaskTracker::new();
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                for _ in 0..n {
                    drop(black_box(tracker.token()));
                }
            })
        })
    });
    g.finish();
}

/// The shapes of Go's src/sync/waitgroup_test.go.
fn go_shapes(c: &mut Criterion) {
    // Uncontended: per-thread group, loop {add, done, wait}.
    let mut g = c.benchmark_group("go_uncontended");
    g.bench_function("quiescent", |b| {
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                let mut wg = Padded(quiescent::WaitGroup::new());
                for _ in 0..n {
                    drop(wg.0.token());
                    wg.0.wait();
                }
            })
        })
    });
    g.bench_function("crossbeam", |b| {
        // crossbeam's wait consumes the group: a new one per round.
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                for _ in 0..n {
                    let wg = Padded(crossbeam_utils::sync::WaitGroup::new());
                    drop(wg.0.clone());
                    wg.0.wait();
                }
            })
        })
    });
    g.bench_function("tokio_util", |b| {
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                let tracker = Padded(tokio_util::task::TaskTracker::new());
                tracker.0.close();
                for _ in 0..n {
                    drop(tracker.0.token());
                    futures_executor::block_on(tracker.0.wait());
                }
            })
        })
    });
    g.bench_function("naive_mutex", |b| {
        b.iter_custom(|iters| {
            on_every_core(iters, |n| {
                let naive = Padded(Naive::default());
                for _ in 0..n {
                    naive.0.add();
                    naive.0.done();
                    naive.0.wait();
                }
            })
        })
    });
    g.finish();

    // AddDone / AddDoneWork: one shared group, loop {add, done}.
    for steps in [0u32, 100] {
        let name = if steps == 0 {
            "go_add_done"
        } else {
            "go_add_done_work"
        };
        let mut g = c.benchmark_group(name);
        g.bench_function("quiescent", |b| {
            let wg = quiescent::WaitGroup::new();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        let t = wg.token();
                        black_box(work(steps));
                        drop(t);
                    }
                })
            })
        });
        g.bench_function("crossbeam", |b| {
            let wg = crossbeam_utils::sync::WaitGroup::new();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        let t = wg.clone();
                        black_box(work(steps));
                        drop(t);
                    }
                })
            })
        });
        g.bench_function("tokio_util", |b| {
            let tracker = tokio_util::task::TaskTracker::new();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        let t = tracker.token();
                        black_box(work(steps));
                        drop(t);
                    }
                })
            })
        });
        g.bench_function("raw_atomic", |b| {
            let a = AtomicUsize::new(0);
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        a.fetch_add(1, Ordering::Relaxed);
                        black_box(work(steps));
                        a.fetch_sub(1, Ordering::Release);
                    }
                })
            })
        });
        g.bench_function("naive_mutex", |b| {
            let naive = Naive::default();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        naive.add();
                        black_box(work(steps));
                        naive.done();
                    }
                })
            })
        });
        g.finish();
    }

    // Wait / WaitWork: wait on an idle group. A quiescent WaitGroup has one
    // waiter by construction (`&mut self`), so it runs on one thread; the
    // shared form is `Shutdown::wait_drained` on a drained latch, from every
    // core.
    for steps in [0u32, 100] {
        let name = if steps == 0 {
            "go_wait"
        } else {
            "go_wait_work"
        };
        let mut g = c.benchmark_group(name);
        g.bench_function("quiescent_wait_group", |b| {
            let mut wg = quiescent::WaitGroup::new();
            b.iter(|| {
                wg.wait();
                black_box(work(steps))
            })
        });
        g.bench_function("quiescent_shutdown", |b| {
            let shutdown = quiescent::Shutdown::new();
            shutdown.trigger();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        black_box(shutdown.wait_drained());
                        black_box(work(steps));
                    }
                })
            })
        });
        g.bench_function("tokio_util", |b| {
            let tracker = tokio_util::task::TaskTracker::new();
            tracker.close();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        futures_executor::block_on(tracker.wait());
                        black_box(work(steps));
                    }
                })
            })
        });
        g.bench_function("naive_mutex", |b| {
            let naive = Naive::default();
            b.iter_custom(|iters| {
                on_every_core(iters, |n| {
                    for _ in 0..n {
                        naive.wait();
                        black_box(work(steps));
                    }
                })
            })
        });
        g.finish();
    }

    // ActuallyWait: a new group, a token into a new thread, wait.
    let mut g = c.benchmark_group("go_actually_wait");
    g.bench_function("quiescent", |b| {
        b.iter(|| {
            let mut wg = quiescent::WaitGroup::new();
            let t = wg.token();
            thread::spawn(move || drop(t));
            wg.wait();
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter(|| {
            let wg = crossbeam_utils::sync::WaitGroup::new();
            let t = wg.clone();
            thread::spawn(move || drop(t));
            wg.wait();
        })
    });
    g.bench_function("tokio_util", |b| {
        b.iter(|| {
            let tracker = tokio_util::task::TaskTracker::new();
            let t = tracker.token();
            thread::spawn(move || drop(t));
            tracker.close();
            futures_executor::block_on(tracker.wait());
        })
    });
    g.bench_function("naive_mutex", |b| {
        b.iter(|| {
            let naive = Arc::new(Naive::default());
            naive.add();
            let n = naive.clone();
            thread::spawn(move || n.done());
            naive.wait();
        })
    });
    g.finish();
}

/// Wake-up latency: a waiter is blocked; a helper thread drops the last
/// token; the time from just before that drop to the waiter running.
fn wakeup(c: &mut Criterion) {
    fn latency<W: Send + 'static>(
        iters: u64,
        make: impl Fn() -> (W, Box<dyn FnOnce() + Send>),
        wait: impl Fn(W),
    ) -> Duration {
        let (to_helper, jobs) = mpsc::channel::<(Box<dyn FnOnce() + Send>, Duration)>();
        let (stamp_tx, stamps) = mpsc::channel::<Instant>();
        let helper = thread::spawn(move || {
            for (release, pause) in jobs {
                // Give the waiter time to block, then release.
                let until = Instant::now() + pause;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                let at = Instant::now();
                release();
                stamp_tx.send(at).unwrap();
            }
        });
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let (waiter, release) = make();
            to_helper
                .send((release, Duration::from_micros(50)))
                .unwrap();
            wait(waiter);
            let woke = Instant::now();
            let released = stamps.recv().unwrap();
            total += woke.saturating_duration_since(released);
        }
        drop(to_helper);
        helper.join().unwrap();
        total
    }

    let mut g = c.benchmark_group("wakeup_latency");
    g.bench_function("quiescent", |b| {
        b.iter_custom(|iters| {
            latency(
                iters,
                || {
                    let wg = quiescent::WaitGroup::new();
                    let t = wg.token();
                    (wg, Box::new(move || drop(t)))
                },
                |mut wg| wg.wait(),
            )
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            latency(
                iters,
                || {
                    let wg = crossbeam_utils::sync::WaitGroup::new();
                    let t = wg.clone();
                    (wg, Box::new(move || drop(t)))
                },
                |wg| wg.wait(),
            )
        })
    });
    g.bench_function("tokio_util", |b| {
        b.iter_custom(|iters| {
            latency(
                iters,
                || {
                    let tracker = tokio_util::task::TaskTracker::new();
                    let t = tracker.token();
                    tracker.close();
                    (tracker, Box::new(move || drop(t)))
                },
                |tracker| futures_executor::block_on(tracker.wait()),
            )
        })
    });
    g.bench_function("naive_mutex", |b| {
        b.iter_custom(|iters| {
            latency(
                iters,
                || {
                    let naive = Arc::new(Naive::default());
                    naive.add();
                    let n = naive.clone();
                    (naive, Box::new(move || n.done()))
                },
                |naive| naive.wait(),
            )
        })
    });
    g.finish();
}

/// Fan-in: 1,000,000 tokens handed to a pool of worker threads in batches of
/// 1,000, dropped there; then wait.
fn fan_in(c: &mut Criterion) {
    const TOKENS: usize = 1_000_000;
    const BATCH: usize = 1_000;

    /// Hands `TOKENS` tokens to the workers, which drop them as they come;
    /// returns while the workers may still be dropping.
    fn hand_out<T: Send + 'static>(mint: impl Fn() -> T) -> Workers<T> {
        let n = cores();
        let (txs, handles) = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Vec<T>>();
                (tx, thread::spawn(move || rx.into_iter().for_each(drop)))
            })
            .unzip();
        let workers = Workers { txs, handles };
        for i in 0..TOKENS / BATCH {
            let batch: Vec<T> = (0..BATCH).map(|_| mint()).collect();
            workers.txs[i % n].send(batch).unwrap();
        }
        workers
    }

    struct Workers<T> {
        txs: Vec<mpsc::Sender<Vec<T>>>,
        handles: Vec<thread::JoinHandle<()>>,
    }

    impl<T> Workers<T> {
        fn finish(self) {
            drop(self.txs);
            self.handles.into_iter().for_each(|h| h.join().unwrap());
        }
    }

    let mut g = c.benchmark_group("fan_in_1m");
    g.sample_size(10);
    g.bench_function("quiescent", |b| {
        b.iter(|| {
            let mut wg = quiescent::WaitGroup::new();
            let minter = wg.token();
            let workers = hand_out(|| minter.clone());
            drop(minter);
            wg.wait();
            workers.finish();
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter(|| {
            let wg = crossbeam_utils::sync::WaitGroup::new();
            let workers = hand_out(|| wg.clone());
            wg.wait();
            workers.finish();
        })
    });
    g.bench_function("tokio_util", |b| {
        b.iter(|| {
            let tracker = tokio_util::task::TaskTracker::new();
            let workers = hand_out(|| tracker.token());
            tracker.close();
            futures_executor::block_on(tracker.wait());
            workers.finish();
        })
    });
    g.bench_function("naive_mutex", |b| {
        struct Done(Arc<Naive>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        b.iter(|| {
            let naive = Arc::new(Naive::default());
            let workers = hand_out(|| {
                naive.add();
                Done(naive.clone())
            });
            naive.wait();
            workers.finish();
        })
    });
    g.finish();
}

/// 10,000 tokio tasks each holding a guard and awaiting shutdown; trigger;
/// time until drained. quiescent's `Shutdown` against tokio-util's
/// `CancellationToken` + `TaskTracker` doing the same.
fn async_shutdown(c: &mut Criterion) {
    const TASKS: usize = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("async_shutdown_10k");
    g.sample_size(20);

    async fn all_parked(started: &AtomicUsize) {
        while started.load(Ordering::Acquire) < TASKS {
            tokio::task::yield_now().await;
        }
    }

    g.bench_function(BenchmarkId::new("quiescent", TASKS), |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let shutdown = quiescent::Shutdown::new();
                let started = Arc::new(AtomicUsize::new(0));
                for _ in 0..TASKS {
                    let guard = shutdown.guard().unwrap();
                    let started = started.clone();
                    tokio::spawn(async move {
                        let stop = guard.wait_triggered_async();
                        started.fetch_add(1, Ordering::Release);
                        stop.await;
                        drop(guard);
                    });
                }
                all_parked(&started).await;
                let start = Instant::now();
                shutdown.shutdown_async().await;
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::new("tokio_util", TASKS), |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cancel = tokio_util::sync::CancellationToken::new();
                let tracker = tokio_util::task::TaskTracker::new();
                let started = Arc::new(AtomicUsize::new(0));
                for _ in 0..TASKS {
                    let cancel = cancel.clone();
                    let started = started.clone();
                    tracker.spawn(async move {
                        let stop = cancel.cancelled();
                        started.fetch_add(1, Ordering::Release);
                        stop.await;
                    });
                }
                all_parked(&started).await;
                let start = Instant::now();
                cancel.cancel();
                tracker.close();
                tracker.wait().await;
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// A consumer's `select!` loop per message: the trigger future recreated on
/// every iteration (polled once, pending, dropped: one listener allocation
/// each time) against the same future created once before the loop.
fn select_loop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut g = c.benchmark_group("select_loop");
    for hoisted in [false, true] {
        let name = if hoisted { "hoisted" } else { "recreated" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let shutdown = quiescent::Shutdown::new();
                    let guard = shutdown.guard().unwrap();
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    for i in 0..iters {
                        tx.send(i).unwrap();
                    }
                    let stop = guard.wait_triggered_async();
                    tokio::pin!(stop);
                    let start = Instant::now();
                    for _ in 0..iters {
                        if hoisted {
                            tokio::select! {
                                biased;
                                _ = &mut stop => unreachable!(),
                                Some(v) = rx.recv() => { black_box(v); }
                            }
                        } else {
                            tokio::select! {
                                biased;
                                _ = guard.wait_triggered_async() => unreachable!(),
                                Some(v) = rx.recv() => { black_box(v); }
                            }
                        }
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

/// Cost as the tree grows: a root with N child latches × 100 guards each,
/// trigger → drained, for N = 1, 10, 100, 1,000. Blocking: one thread holds
/// every guard, waits for the root's trigger and drops them (the time is
/// the cascade to N latches, the wake-up, and 100·N releases with the last
/// of each child announcing). Async: one tokio task per child latch holds
/// its 100 guards and awaits its own latch's trigger; tokio-util does the
/// same with N child `CancellationToken`s and one `TaskTracker` (100
/// tracker tokens per task). Only trigger → drained is timed.
fn tree_growth(c: &mut Criterion) {
    const GUARDS: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("tree_growth");
    g.sample_size(10);
    for children in [1usize, 10, 100, 1_000] {
        let elements = (children * GUARDS) as u64;
        g.throughput(criterion::Throughput::Elements(elements));
        g.bench_function(BenchmarkId::new("quiescent_blocking", children), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let root = quiescent::Shutdown::new();
                    let kids: Vec<_> = (0..children).map(|_| root.child().unwrap()).collect();
                    let guards: Vec<_> = kids
                        .iter()
                        .flat_map(|kid| (0..GUARDS).map(|_| kid.guard().unwrap()))
                        .collect();
                    let waiter = root.clone();
                    let holder = thread::spawn(move || {
                        waiter.wait_triggered();
                        drop(guards);
                    });
                    let start = Instant::now();
                    root.trigger();
                    root.wait_drained();
                    total += start.elapsed();
                    holder.join().unwrap();
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("quiescent_async", children), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let root = quiescent::Shutdown::new();
                    let started = Arc::new(AtomicUsize::new(0));
                    for _ in 0..children {
                        let kid = root.child().unwrap();
                        let guards: Vec<_> = (0..GUARDS).map(|_| kid.guard().unwrap()).collect();
                        let started = started.clone();
                        tokio::spawn(async move {
                            let stop = kid.wait_triggered_async();
                            started.fetch_add(1, Ordering::Release);
                            stop.await;
                            drop(guards);
                        });
                    }
                    while started.load(Ordering::Acquire) < children {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    root.shutdown_async().await;
                    total += start.elapsed();
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("tokio_util_async", children), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let root = tokio_util::sync::CancellationToken::new();
                    let tracker = tokio_util::task::TaskTracker::new();
                    let started = Arc::new(AtomicUsize::new(0));
                    for _ in 0..children {
                        let kid = root.child_token();
                        let tokens: Vec<_> = (0..GUARDS).map(|_| tracker.token()).collect();
                        let started = started.clone();
                        tokio::spawn(async move {
                            let stop = kid.cancelled();
                            started.fetch_add(1, Ordering::Release);
                            stop.await;
                            drop(tokens);
                        });
                    }
                    while started.load(Ordering::Acquire) < children {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    root.cancel();
                    tracker.close();
                    tracker.wait().await;
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

/// `wait_drained` on a drained latch, one thread: the cached report copied
/// out whole into `black_box`, with a `&'static` reason, an owned one, and a
/// named latch with a failure; the same with three fields read instead (what
/// a caller does with it); `try_wait_drained`, which borrows it; against the
/// floor (one acquire load) and tokio-util's closed, empty tracker (its
/// `wait()` polled once).
fn drained_report(c: &mut Criterion) {
    let mut g = c.benchmark_group("drained_report");
    g.bench_function("raw_acquire_load", |b| {
        let a = AtomicUsize::new(1);
        b.iter(|| black_box(&a).load(Ordering::Acquire))
    });
    g.bench_function("quiescent_static_reason", |b| {
        let shutdown = quiescent::Shutdown::new();
        shutdown.trigger_with_reason("deploy");
        shutdown.wait_drained();
        b.iter(|| black_box(&shutdown).wait_drained())
    });
    g.bench_function("quiescent_static_reason_fields_read", |b| {
        let shutdown = quiescent::Shutdown::new();
        shutdown.trigger_with_reason("deploy");
        shutdown.wait_drained();
        b.iter(|| {
            let report = black_box(&shutdown).wait_drained();
            (report.panicked, report.elapsed, report.reason.is_some())
        })
    });
    g.bench_function("quiescent_try_wait_drained", |b| {
        let shutdown = quiescent::Shutdown::new();
        shutdown.trigger_with_reason(format!("deploy {}", 7));
        shutdown.wait_drained();
        b.iter(|| black_box(&shutdown).try_wait_drained().is_some())
    });
    g.bench_function("quiescent_owned_reason", |b| {
        let shutdown = quiescent::Shutdown::new();
        shutdown.trigger_with_reason(format!("deploy {}", 7));
        shutdown.wait_drained();
        b.iter(|| black_box(&shutdown).wait_drained())
    });
    g.bench_function("quiescent_named_latch_with_failure", |b| {
        let root = quiescent::Shutdown::new();
        let jobs = root.child_named("jobs").unwrap();
        jobs.guard_named("parse")
            .unwrap()
            .fail(format!("bad input {}", 7));
        jobs.wait_drained();
        b.iter(|| black_box(&jobs).wait_drained())
    });
    g.bench_function("tokio_util", |b| {
        let tracker = tokio_util::task::TaskTracker::new();
        tracker.close();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        b.iter(|| {
            let wait = std::pin::pin!(black_box(&tracker).wait());
            black_box(wait.poll(&mut cx).is_ready())
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    clone_drop,
    guard_drop,
    guard_drop_contended,
    drained_report,
    go_shapes,
    wakeup,
    fan_in,
    async_shutdown,
    select_loop,
    tree_growth
);
criterion_main!(benches);
