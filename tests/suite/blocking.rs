//! Blocking waits (std's thread parker, `Core::wait`): wake-ups with and
//! without deadlines, many waiters on parent and child latches, `WaitGroup`
//! reuse with tokens dropped on another thread, and deadlines near the end
//! of `Instant`'s range. Adapted from the second adversary session of issue
//! 13; every body is bounded, so a lost wake-up fails instead of hanging.

use crate::common;

use common::bounded;
use quiescent::{Shutdown, WaitGroup};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn wg_reuse_loop_tokens_dropped_elsewhere() {
    bounded(120, || {
        let n = 20_000;
        let mut wg = WaitGroup::new();
        let (tx, rx) = mpsc::channel::<quiescent::Token>();
        let worker = thread::spawn(move || {
            for t in rx {
                drop(t);
            }
        });
        let mut worst = Duration::ZERO;
        for i in 0..n {
            let t1 = wg.token();
            let t2 = wg.token();
            tx.send(t1).unwrap();
            tx.send(t2).unwrap();
            let start = Instant::now();
            if i % 3 == 0 {
                wg.wait_timeout(Duration::from_secs(10))
                    .expect("lost wake-up?");
            } else if i % 3 == 1 {
                wg.wait_timeout(Duration::MAX).unwrap();
            } else {
                wg.wait();
            }
            worst = worst.max(start.elapsed());
            assert_eq!(wg.count(), 0);
        }
        drop(tx);
        worker.join().unwrap();
        eprintln!("wg reuse: {n} iterations, worst wait {worst:?}");
    });
}

#[test]
fn many_waiters_one_drain() {
    bounded(240, || {
        let n = 300;
        let mut worst = Duration::ZERO;
        for i in 0..n {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let g = child.guard().unwrap();
            let g2 = root.guard().unwrap();
            let waiters = 6;
            let barrier = Arc::new(Barrier::new(waiters + 1));
            let mut hs = Vec::new();
            for w in 0..waiters {
                let (root, child, b) = (root.clone(), child.clone(), barrier.clone());
                let cg = child.guard().ok();
                hs.push(thread::spawn(move || {
                    let cg = if w == 4 {
                        cg
                    } else {
                        drop(cg);
                        None
                    };
                    b.wait();
                    let start = Instant::now();
                    match w {
                        0 => {
                            let r = root.wait_drained();
                            assert_eq!(root.count(), 0, "{r:?}");
                        }
                        1 => {
                            root.wait_drained_timeout(Duration::from_secs(30))
                                .expect("lost wake-up");
                            assert_eq!(root.count(), 0);
                        }
                        2 => {
                            child.wait_drained_timeout(Duration::MAX).expect("child");
                            assert_eq!(child.count(), 0);
                        }
                        3 => {
                            drop(cg);
                            child.wait_triggered();
                            assert!(child.is_triggered());
                        }
                        4 => {
                            let cg = cg.unwrap();
                            assert!(cg.wait_triggered_timeout(Duration::from_secs(30)));
                            drop(cg);
                            root.wait_drained_deadline(
                                Instant::now() + Duration::from_secs(1_000_000_000),
                            )
                            .expect("huge deadline");
                        }
                        _ => {
                            drop(cg);
                            assert!(root.wait_triggered_timeout(Duration::MAX));
                            let _ = root.shutdown();
                            assert_eq!(root.count(), 0);
                        }
                    }
                    start.elapsed()
                }));
            }
            barrier.wait();
            if i % 2 == 0 {
                thread::yield_now();
            }
            if i % 3 == 0 {
                child.trigger();
            }
            root.trigger();
            drop(g);
            drop(g2);
            drop(child);
            drop(root);
            for h in hs {
                worst = worst.max(h.join().unwrap());
            }
        }
        eprintln!("many waiters: {n} iterations, worst wait {worst:?}");
    });
}

#[test]
fn extreme_deadlines_are_woken() {
    bounded(60, || {
        let now = Instant::now();
        let mut d = Duration::from_secs(1);
        while now.checked_add(d * 2).is_some() {
            d *= 2;
        }
        let mut step = d / 2;
        while step > Duration::from_secs(1) {
            if now.checked_add(d + step).is_some() {
                d += step;
            }
            step /= 2;
        }
        let far = now + d;
        eprintln!("far deadline: now + {d:?}");
        for round in 0..50 {
            let s = Shutdown::new();
            let g = s.guard().unwrap();
            let s2 = s.clone();
            let h = thread::spawn(move || {
                let t = Instant::now();
                let a = s2.wait_triggered_timeout(d - Duration::from_secs(5));
                let r = s2.wait_drained_deadline(far).is_ok();
                (a, r, t.elapsed())
            });
            if round % 2 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            s.trigger();
            drop(g);
            let (a, r, el) = h.join().unwrap();
            assert!(a && r, "{a} {r} {el:?}");
            let mut wg = WaitGroup::new();
            let t = wg.token();
            let h = thread::spawn(move || {
                thread::sleep(Duration::from_micros(200));
                drop(t)
            });
            wg.wait_deadline(far).unwrap();
            h.join().unwrap();
        }
    });
}
