//! Adversarial: reentrant and panicking wakers, handles, guards and futures
//! dropped in every order across threads, on trees. Meant for ASan.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::{Shutdown, WaitGroup};

/// A waker that, when woken, runs an arbitrary action (once), then panics if
/// told to.
struct Act {
    action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    panic: bool,
    woken: AtomicUsize,
}
impl Wake for Act {
    fn wake(self: Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        let a = self.action.lock().unwrap().take();
        if let Some(a) = a {
            a();
        }
        if self.panic {
            panic!("deliberate: act waker");
        }
    }
}
fn act(panic: bool, f: impl FnOnce() + Send + 'static) -> (Arc<Act>, Waker) {
    let a = Arc::new(Act {
        action: Mutex::new(Some(Box::new(f))),
        panic,
        woken: AtomicUsize::new(0),
    });
    (a.clone(), Waker::from(a))
}

fn poll_once<F: Future + Unpin>(f: &mut F, w: &Waker) -> bool {
    Pin::new(f).poll(&mut Context::from_waker(w)).is_ready()
}

/// xorshift
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A future stored in a slot, dropped by its own waker (reentrant drop of a
/// future registered on the very list being woken), together with the last
/// handle of its latch.
#[test]
fn adv_waker_drops_its_future_and_last_handle_on_child_drain() {
    quiet_panics();
    bounded(120, || {
        for round in 0..2000u64 {
            let mut rng = Rng(round * 7919 + 1);
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let g_child = child.guard().unwrap();
            let g_root = root.guard().unwrap();
            root.trigger();
            // a drain future on the child, owned by a slot its waker empties
            let slot: Arc<
                Mutex<Option<Box<dyn Future<Output = quiescent::Report> + Send + Unpin>>>,
            > = Arc::new(Mutex::new(Some(Box::new(child.wait_drained_async()))));
            let handles: Arc<Mutex<Option<(Shutdown, Shutdown)>>> =
                Arc::new(Mutex::new(Some((root.clone(), child.clone()))));
            let panic = rng.below(2) == 0;
            let (_a, w) = {
                let slot = slot.clone();
                let handles = handles.clone();
                act(panic, move || {
                    drop(slot.lock().unwrap().take());
                    drop(handles.lock().unwrap().take());
                })
            };
            {
                let mut s = slot.lock().unwrap();
                assert!(!poll_once(s.as_mut().unwrap(), &w));
            }
            // a root drain future with a panicking waker too, sometimes
            let mut rd = root.wait_drained_async();
            let (_b, wb) = act(rng.below(2) == 0, || {});
            assert!(!poll_once(&mut rd, &wb));
            let blocked = {
                let root = root.clone();
                std::thread::spawn(move || root.wait_drained_timeout(Duration::from_secs(10)))
            };
            drop(child);
            if rng.below(2) == 0 {
                drop(root);
                let r = catch_unwind(AssertUnwindSafe(move || drop(g_child)));
                let _ = r;
                let r = catch_unwind(AssertUnwindSafe(move || drop(g_root)));
                let _ = r;
            } else {
                let t = std::thread::spawn(move || {
                    let _ = catch_unwind(AssertUnwindSafe(move || drop(g_child)));
                });
                let _ = catch_unwind(AssertUnwindSafe(move || drop(g_root)));
                drop(root);
                t.join().unwrap();
            }
            let r = blocked.join().unwrap();
            assert!(r.is_ok(), "round {round}: {r:?}");
            drop(rd);
        }
    });
}

/// Trigger cascade on a tree where every latch has a Triggered future whose
/// waker (a) takes a guard, (b) creates a child, (c) reads holders, (d)
/// forces, (e) drops its own future, and panics half the time. Handles are
/// dropped beforehand; the trigger comes from a failing guard.
#[test]
fn adv_reentrant_panicking_wakers_on_the_trigger_cascade() {
    quiet_panics();
    bounded(120, || {
        for round in 0..300u64 {
            let mut rng = Rng(round * 104729 + 3);
            let root = Shutdown::new();
            let mut latches = vec![root.clone()];
            for _ in 0..20 {
                let p = latches[rng.below(latches.len() as u64) as usize].clone();
                latches.push(p.child().unwrap());
            }
            let mut keep = Vec::new();
            let guards: Vec<_> = latches.iter().map(|l| l.guard().unwrap()).collect();
            for (i, l) in latches.iter().enumerate() {
                let fut: Arc<Mutex<Option<quiescent::futures::Triggered>>> =
                    Arc::new(Mutex::new(Some(l.wait_triggered_async())));
                let l2 = l.clone();
                let f2 = fut.clone();
                let kind = rng.below(6);
                let (a, w) = act(rng.below(2) == 0, move || match kind {
                    0 => {
                        assert!(l2.guard().is_err());
                    }
                    1 => {
                        assert!(l2.child().is_err());
                    }
                    2 => {
                        let h = l2.holders();
                        assert!(h.named.len() <= h.count);
                    }
                    3 => {
                        l2.force();
                    }
                    4 => {
                        drop(f2.lock().unwrap().take());
                    }
                    _ => {
                        drop(l2.shutdown_timeout(Duration::ZERO));
                    }
                });
                {
                    let mut s = fut.lock().unwrap();
                    assert!(!poll_once(s.as_mut().unwrap(), &w), "latch {i}");
                }
                keep.push((a, fut));
            }
            drop(latches);
            drop(root);
            let mut guards = guards;
            let failing = guards.remove(0);
            let r = catch_unwind(AssertUnwindSafe(move || failing.fail("deliberate: fail")));
            let _ = r;
            // every guard sees the trigger
            assert!(guards.iter().all(|g| g.is_triggered()), "round {round}");
            for (a, _) in &keep {
                assert!(
                    a.woken.load(Ordering::SeqCst) >= 1,
                    "round {round}: a waker not woken"
                );
            }
            let waiter = guards[0].wait_triggered_async();
            drop(waiter);
            // drop the rest in random order, some from other threads, some panicking
            while !guards.is_empty() {
                let i = rng.below(guards.len() as u64) as usize;
                let g = guards.swap_remove(i);
                match rng.below(3) {
                    0 => drop(g),
                    1 => std::thread::spawn(move || drop(g)).join().unwrap(),
                    _ => {
                        let _ = catch_unwind(AssertUnwindSafe(move || {
                            let _g = g;
                            panic!("deliberate: holder");
                        }));
                    }
                }
            }
            drop(keep);
        }
    });
}

/// WaitGroup reused many times; each round a wait_async is polled with a
/// waker that re-polls inline / drops / panics, and the last token is
/// dropped on another thread while the waiting thread cancels.
#[test]
fn adv_wait_group_reuse_with_hostile_wakers() {
    quiet_panics();
    bounded(120, || {
        let mut wg = WaitGroup::new();
        for round in 0..3000u64 {
            let mut rng = Rng(round + 11);
            let tokens: Vec<_> = (0..rng.below(3) + 1).map(|_| wg.token()).collect();
            let mode = rng.below(3);
            {
                let mut w = wg.wait_async();
                let (_a, waker) = act(mode == 2, || {});
                assert!(!poll_once(&mut w, &waker));
                let barrier = Arc::new(Barrier::new(2));
                let b2 = barrier.clone();
                let t = std::thread::spawn(move || {
                    b2.wait();
                    for tok in tokens {
                        let _ = catch_unwind(AssertUnwindSafe(move || drop(tok)));
                    }
                });
                barrier.wait();
                if mode == 0 {
                    drop(w);
                } else {
                    // poll until ready, with a fresh waker each time
                    let mut spins = 0;
                    loop {
                        let (_c, waker) = act(false, || {});
                        if poll_once(&mut w, &waker) {
                            break;
                        }
                        spins += 1;
                        if spins > 1_000_000 {
                            panic!("round {round}: wait never completes");
                        }
                        std::thread::yield_now();
                    }
                }
                t.join().unwrap();
            }
            assert_eq!(wg.count(), 0);
            wg.wait_timeout(Duration::from_secs(5)).unwrap();
        }
    });
}
