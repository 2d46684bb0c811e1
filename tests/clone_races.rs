//! A clone is one RMW and one test (`Core::acquire_another`, always
//! transition A2): the scenarios an adversarial review of that change
//! wrote, kept as regression tests. Clones race triggers at every level of
//! a tree, drains, a `WaitGroup`'s waits, handles dropped in every order,
//! panicking spawned threads. Every test is bounded. (The overflow limit of
//! a clone is `core::state`'s unit test: reaching 2^29 live holds takes a
//! release build.) `QUIESCENT_CLONE_ROUNDS` sets the rounds.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::{Guard, Shutdown, WaitGroup};

const THREADS: usize = 4;

fn rounds(default: usize) -> usize {
    std::env::var("QUIESCENT_CLONE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// A guard that is only ever replaced by its own clone: the old one is
/// dropped after the clone exists, so the thread never has zero holds until
/// it lets go of the last one. `released` is set *before* that last drop, so
/// a drainer that returns must see every flag set.
fn hand_off_loop(
    mut g: Guard,
    iters: usize,
    released: &AtomicBool,
    hop: Option<&mpsc::Sender<Guard>>,
) {
    for i in 0..iters {
        let c = g.clone();
        if i % 7 == 0 {
            if let Some(tx) = hop {
                // a clone that lives on another thread for a while
                let _ = tx.send(c.clone());
            }
        }
        drop(std::mem::replace(&mut g, c));
    }
    released.store(true, Ordering::SeqCst);
    drop(g);
}

/// Clones (hand-off) racing the trigger on a root; the drain must wait for
/// every chain and every hopped clone.
#[test]
fn root_clone_chains_vs_trigger_and_drain() {
    bounded(120, || {
        for round in 0..rounds(200) {
            let sd = Shutdown::new();
            let flags: Arc<Vec<AtomicBool>> =
                Arc::new((0..THREADS).map(|_| AtomicBool::new(false)).collect());
            let hop_alive = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mpsc::channel::<Guard>();
            // hop thread: keeps hopped clones a bit, then drops them
            let hop_alive2 = hop_alive.clone();
            let hop = thread::spawn(move || {
                let mut kept = Vec::new();
                for g in rx {
                    hop_alive2.fetch_add(1, Ordering::SeqCst);
                    kept.push(g);
                    if kept.len() > 8 {
                        let g = kept.remove(0);
                        hop_alive2.fetch_sub(1, Ordering::SeqCst);
                        drop(g);
                    }
                }
                for g in kept.drain(..) {
                    hop_alive2.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            });
            let barrier = Arc::new(Barrier::new(THREADS + 1));
            let mut workers = Vec::new();
            for t in 0..THREADS {
                let g = sd.guard().unwrap();
                let flags = flags.clone();
                let barrier = barrier.clone();
                let tx = tx.clone();
                workers.push(thread::spawn(move || {
                    barrier.wait();
                    hand_off_loop(g, 500 + round % 97, &flags[t], Some(&tx));
                }));
            }
            drop(tx);
            barrier.wait();
            if round % 3 == 0 {
                thread::yield_now();
            }
            assert!(sd.trigger());
            let report = sd.wait_drained();
            for (i, f) in flags.iter().enumerate() {
                assert!(
                    f.load(Ordering::SeqCst),
                    "round {round}: drained while chain {i} still held a clone"
                );
            }
            assert_eq!(
                hop_alive.load(Ordering::SeqCst),
                0,
                "round {round}: drained while a hopped clone lived"
            );
            assert_eq!(sd.count(), 0);
            assert_eq!(report.panicked, 0);
            for w in workers {
                w.join().unwrap();
            }
            hop.join().unwrap();
        }
    });
}

/// Same on child latches: clones of grandchild/child guards; the root is
/// triggered (cascade) while the chains run, and the root's (and each
/// level's) drain must wait for them.
#[test]
fn child_clone_chains_vs_parent_trigger() {
    bounded(120, || {
        for round in 0..rounds(200) {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let flags: Arc<Vec<AtomicBool>> =
                Arc::new((0..THREADS).map(|_| AtomicBool::new(false)).collect());
            let barrier = Arc::new(Barrier::new(THREADS + 1));
            let mut workers = Vec::new();
            for t in 0..THREADS {
                let g = match t % 3 {
                    0 => grand.guard().unwrap(),
                    1 => child.guard().unwrap(),
                    _ => grand.guard().unwrap(),
                };
                let flags = flags.clone();
                let barrier = barrier.clone();
                workers.push(thread::spawn(move || {
                    barrier.wait();
                    hand_off_loop(g, 300 + round % 53, &flags[t], None);
                }));
            }
            barrier.wait();
            // trigger at different levels: the root, or the child first
            match round % 3 {
                0 => assert!(root.trigger()),
                1 => {
                    assert!(child.trigger());
                    assert!(root.trigger());
                }
                _ => {
                    assert!(grand.trigger());
                    thread::yield_now();
                    assert!(root.trigger());
                }
            }
            // drop intermediate handles while clones are in flight
            if round % 2 == 0 {
                drop(grand);
                let _ = root.wait_drained();
            } else {
                let _ = grand.wait_drained();
                let _ = root.wait_drained();
            }
            for (i, f) in flags.iter().enumerate() {
                assert!(
                    f.load(Ordering::SeqCst),
                    "round {round}: root drained while chain {i} held a clone"
                );
            }
            assert_eq!(root.count(), 0);
            assert_eq!(child.count(), 0);
            drop(child);
            for w in workers {
                w.join().unwrap();
            }
        }
    });
}

/// A child's guard cloned while the *parent's* drain is in progress (parent
/// triggered and waited on; the child level may still be open when the
/// clone happens because the cascade has not reached it yet). The parent's
/// drain must not finish while the clone lives.
#[test]
fn child_clone_during_parent_drain_holds_parent() {
    bounded(120, || {
        for round in 0..rounds(300) {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let g = child.guard().unwrap();
            let clone_alive = Arc::new(AtomicBool::new(false));
            let ca = clone_alive.clone();
            let (tx, rx) = mpsc::channel::<()>();
            let w = thread::spawn(move || {
                rx.recv().unwrap();
                for _ in 0..(round % 5) {
                    thread::yield_now();
                }
                let c = g.clone();
                ca.store(true, Ordering::SeqCst);
                drop(g);
                // the clone lives on; the parent must not be drained
                thread::sleep(Duration::from_micros(200));
                ca.store(false, Ordering::SeqCst);
                drop(c);
            });
            tx.send(()).unwrap();
            root.trigger();
            let t = thread::spawn({
                let root = root.clone();
                move || root.wait_drained()
            });
            // while the clone exists, root not drained
            let rep = t.join().unwrap();
            assert!(
                !clone_alive.load(Ordering::SeqCst),
                "round {round}: parent drained while child clone alive"
            );
            assert_eq!(rep.panicked, 0);
            w.join().unwrap();
            assert_eq!(root.count(), 0);
            assert_eq!(child.count(), 0);
        }
    });
}

/// The last handle dropped while holds clone themselves and the last holder
/// drops: exercised under ASan for use-after-free and leaks.
#[test]
fn handles_dropped_while_cloning_children() {
    bounded(120, || {
        for round in 0..rounds(500) {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let g = child.guard().unwrap();
            let g2 = g.clone();
            let b = Arc::new(Barrier::new(3));
            let b1 = b.clone();
            let b2 = b.clone();
            let a = thread::spawn(move || {
                b1.wait();
                let c = g.clone();
                drop(g);
                let d = c.clone();
                drop(c);
                drop(d);
            });
            let bthr = thread::spawn(move || {
                b2.wait();
                let c = g2.clone();
                drop(g2);
                drop(c);
            });
            b.wait();
            match round % 4 {
                0 => {
                    drop(child);
                    drop(root);
                }
                1 => {
                    root.trigger();
                    drop(root);
                    drop(child);
                }
                2 => {
                    child.trigger();
                    drop(child);
                    root.trigger();
                    let _ = root.wait_drained();
                    assert_eq!(root.count(), 0);
                    drop(root);
                }
                _ => {
                    drop(root);
                    child.trigger();
                    let _ = child.wait_drained();
                    drop(child);
                }
            }
            a.join().unwrap();
            bthr.join().unwrap();
        }
    });
}

/// WaitGroup: tokens hand-off-cloned while the group waits (watch sets
/// CLOSED without DRAINING, then unwatch on timeouts); `wait` must return
/// only once every chain is done.
#[test]
fn token_clone_chains_vs_wait_and_timeouts() {
    bounded(120, || {
        for round in 0..rounds(200) {
            let mut wg = WaitGroup::new();
            let flags: Arc<Vec<AtomicBool>> =
                Arc::new((0..THREADS).map(|_| AtomicBool::new(false)).collect());
            let barrier = Arc::new(Barrier::new(THREADS + 1));
            let mut workers = Vec::new();
            for t in 0..THREADS {
                let mut tok = wg.token();
                let flags = flags.clone();
                let barrier = barrier.clone();
                workers.push(thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..(400 + round % 31) {
                        let c = tok.clone();
                        drop(std::mem::replace(&mut tok, c));
                    }
                    flags[t].store(true, Ordering::SeqCst);
                    drop(tok);
                }));
            }
            barrier.wait();
            // watch/unwatch toggles while clones happen
            for _ in 0..(round % 4) {
                let _ = wg.wait_timeout(Duration::from_micros(1));
            }
            wg.wait();
            for (i, f) in flags.iter().enumerate() {
                assert!(
                    f.load(Ordering::SeqCst),
                    "round {round}: wait returned while token chain {i} lived"
                );
            }
            assert_eq!(wg.count(), 0);
            for w in workers {
                w.join().unwrap();
            }
            // the group is reusable: a new token after the wait
            let t = wg.token();
            let t2 = t.clone();
            assert_eq!(wg.count(), 2);
            drop((t, t2));
            assert_eq!(wg.count(), 0);
        }
    });
}

/// WaitGroup dropped while the last holders clone and drop.
#[test]
fn wait_group_dropped_while_cloning() {
    bounded(120, || {
        for round in 0..rounds(1000) {
            let wg = WaitGroup::new();
            let t = wg.token();
            let t2 = t.clone();
            let b = Arc::new(Barrier::new(3));
            let (b1, b2) = (b.clone(), b.clone());
            let a = thread::spawn(move || {
                b1.wait();
                let c = t.clone();
                drop(t);
                drop(c);
            });
            let c = thread::spawn(move || {
                b2.wait();
                let c = t2.clone();
                let d = c.clone();
                drop(t2);
                drop(c);
                drop(d);
            });
            b.wait();
            if round % 2 == 0 {
                thread::yield_now();
            }
            drop(wg);
            a.join().unwrap();
            c.join().unwrap();
        }
    });
}

/// WaitGroup with a pending `wait_async` future leaked/dropped mid-wait
/// (W then W' or no W'), while tokens clone.
#[test]
fn wait_group_async_wait_dropped_while_cloning() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    bounded(120, || {
        for round in 0..rounds(300) {
            let mut wg = WaitGroup::new();
            let tok = wg.token();
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let w = thread::spawn(move || {
                let mut tok = tok;
                while !s2.load(Ordering::Relaxed) {
                    let c = tok.clone();
                    drop(std::mem::replace(&mut tok, c));
                }
                drop(tok);
            });
            {
                // leaked without a heap allocation (so LSan only reports
                // what the crate leaks)
                let mut fut = std::mem::ManuallyDrop::new(wg.wait_async());
                let waker = Waker::noop();
                let mut cx = Context::from_waker(waker);
                let _ = std::pin::Pin::new(&mut *fut).poll(&mut cx);
                if round % 2 == 1 {
                    // `Wait` is `Unpin` (polled through `Pin::new` above).
                    drop(std::mem::ManuallyDrop::into_inner(fut));
                }
            }
            stop.store(true, Ordering::Relaxed);
            w.join().unwrap();
            assert_eq!(wg.count(), 0);
            // a second wait after a leaked future: must return at once
            let mut fut = Box::pin(wg.wait_async());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Ready(())));
        }
    });
}

/// Spawned threads whose guard (and clones of it) are alive when the thread
/// panics; clones taken during unwinding, in a Drop; clones of named and
/// vital guards. The report must count every panicking drop and the drain
/// must wait for every clone.
#[test]
fn clones_in_panicking_spawned_threads() {
    quiet_panics();
    struct CloneOnDrop(Option<Guard>, mpsc::Sender<Guard>);
    impl Drop for CloneOnDrop {
        fn drop(&mut self) {
            if let Some(g) = &self.0 {
                // clone while the thread is panicking, send it away
                let _ = self.1.send(g.clone());
            }
        }
    }
    bounded(120, || {
        for round in 0..rounds(100) {
            let sd = Shutdown::new();
            let (tx, rx) = mpsc::channel::<Guard>();
            let mut hs = Vec::new();
            for i in 0..3 {
                let tx = tx.clone();
                hs.push(
                    sd.spawn_named(format!("w{i}"), move |guard| {
                        let c = guard.clone();
                        let _d = CloneOnDrop(Some(c.clone()), tx);
                        let _keep = (guard, c);
                        if i != 1 || round % 2 == 0 {
                            panic!("deliberate {i}");
                        }
                    })
                    .unwrap(),
                );
            }
            drop(tx);
            let named = sd.guard_named("n").unwrap();
            let vital = sd.guard().unwrap().vital();
            let nc = named.clone();
            let vc = vital.clone();
            // the clones sent out during unwinding are held here for a while
            let kept: Vec<Guard> = rx.iter().collect();
            assert_eq!(kept.len(), 3);
            for h in hs {
                let _ = h.join();
            }
            sd.trigger();
            assert!(
                sd.wait_drained_timeout(Duration::from_millis(5)).is_err(),
                "drained with clones alive"
            );
            let kept2: Vec<Guard> = kept.iter().map(Guard::clone).collect();
            drop(kept);
            drop((named, vital));
            assert!(sd.wait_drained_timeout(Duration::from_millis(5)).is_err());
            drop((nc, kept2));
            assert!(sd.wait_drained_timeout(Duration::from_millis(5)).is_err());
            drop(vc);
            let rep = sd
                .wait_drained_timeout(Duration::from_secs(5))
                .expect("drained");
            // panicking drops: spawned guard + c (2 per panicking thread) + the
            // CloneOnDrop's inner clone
            let panicking_threads = if round % 2 == 0 { 3 } else { 2 };
            assert_eq!(
                rep.panicked,
                panicking_threads * 3,
                "round {round}: {rep:?}"
            );
            assert_eq!(sd.count(), 0);
        }
    });
}

/// Guards turned into futures (`track`) after cloning, racing the trigger.
#[test]
fn tracked_clones_vs_trigger() {
    bounded(120, || {
        let rt = common::multi_thread_runtime();
        for _ in 0..rounds(100) {
            let sd = Shutdown::new();
            let g = sd.guard().unwrap();
            let mut js = Vec::new();
            for i in 0..8 {
                let c = g.clone();
                js.push(rt.spawn(c.track(async move {
                    for _ in 0..i {
                        tokio::task::yield_now().await;
                    }
                })));
            }
            let sd2 = sd.clone();
            let trig = thread::spawn(move || sd2.trigger());
            let c2 = g.clone();
            drop(g);
            trig.join().unwrap();
            assert!(sd.wait_drained_timeout(Duration::from_millis(1)).is_err());
            drop(c2);
            let rep = sd
                .wait_drained_timeout(Duration::from_secs(5))
                .expect("drains");
            assert_eq!(rep.panicked, 0);
            for j in js {
                rt.block_on(j).unwrap();
            }
        }
    });
}

/// Counting exactness: many clones before/after the trigger, counts match.
#[test]
fn clone_counts_exact_across_trigger_on_children() {
    bounded(60, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let g = child.guard().unwrap();
        let mut v: Vec<Guard> = (0..1000).map(|_| g.clone()).collect();
        assert_eq!(child.count(), 1001);
        assert_eq!(root.count(), 1001);
        root.trigger();
        v.extend((0..1000).map(|_| g.clone()));
        assert_eq!(child.count(), 2001);
        assert_eq!(root.count(), 2001);
        drop(g);
        v.truncate(1);
        assert_eq!(child.count(), 1);
        assert_eq!(root.count(), 1);
        assert!(root.wait_drained_timeout(Duration::from_millis(1)).is_err());
        drop(v);
        assert!(root.wait_drained_timeout(Duration::from_secs(1)).is_ok());
        assert!(child.wait_drained_timeout(Duration::from_secs(1)).is_ok());
    });
}
