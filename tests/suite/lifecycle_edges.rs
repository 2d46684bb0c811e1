//! Found by an adversarial review of the lifecycle change: Cause with the election and
//! the cascade, announce vs children/guards/triggers, reentrant and
//! panicking wakers of Announced futures.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{bounded, quiet_panics, Inline, Panicking};
use quiescent::{Cause, Shutdown};

#[derive(Debug)]
struct E(&'static str);
impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for E {}

#[derive(Debug)]
struct Zst;
impl fmt::Display for Zst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zst")
    }
}
impl std::error::Error for Zst {}

/// Concurrent triggers with different causes on every level of a chain
/// (root, child, grandchild, great-grandchild), plus a guard's fail and a
/// force, while handles are dropped. Every latch's cause must be either
/// one that a call on that latch gave, or its parent's; and its reason
/// must be the cause's text.
#[test]
fn adv_causes_race_on_every_level() {
    bounded(120, || {
        let rounds = 300;
        for round in 0..rounds {
            let root = Shutdown::new();
            let a = root.child().unwrap();
            let b = a.child().unwrap();
            let c = b.child().unwrap();
            let d = c.child().unwrap(); // no trigger of its own: must equal c's
            let guards = [
                root.guard().unwrap(),
                a.guard().unwrap(),
                b.guard().unwrap(),
                c.guard().unwrap(),
                d.guard().unwrap(),
            ];
            let failing = c.guard_named("failing").unwrap();
            let err: Arc<dyn std::error::Error + Send + Sync> = Arc::new(E("b-err"));
            let own: [Vec<Cause>; 5] = [
                vec![Cause::Requested(Some("root".into()))],
                vec![Cause::Signal(15), Cause::Requested(None)], // trigger + force
                vec![Cause::Error(err.clone())],
                vec![], // filled with the Failed cause below
                vec![],
            ];
            let barrier = Arc::new(Barrier::new(4));
            let mut threads = Vec::new();
            {
                let (root, barrier) = (root.clone(), barrier.clone());
                threads.push(std::thread::spawn(move || {
                    barrier.wait();
                    root.trigger_with_reason("root");
                    drop(root);
                }));
            }
            {
                let (a, barrier) = (a.clone(), barrier.clone());
                threads.push(std::thread::spawn(move || {
                    barrier.wait();
                    if round % 2 == 0 {
                        a.trigger_with_cause(Cause::Signal(15));
                    } else {
                        a.force();
                    }
                    drop(a);
                }));
            }
            {
                let (b, barrier, err) = (b.clone(), barrier.clone(), err.clone());
                threads.push(std::thread::spawn(move || {
                    barrier.wait();
                    drop(b.clone());
                    b.trigger_with_cause(Cause::Error(err));
                }));
            }
            drop((a, b, c, d)); // the handles of the middle go now
            barrier.wait();
            failing.fail("boom");
            for t in threads {
                t.join().unwrap();
            }
            let causes: Vec<Cause> = guards
                .iter()
                .map(|g| g.cause().expect("triggered"))
                .collect();
            for (i, cause) in causes.iter().enumerate() {
                let allowed_own = own[i].iter().any(|o| o == cause)
                    || (i == 3 && matches!(cause, Cause::Failed(f) if f.reason == "boom"));
                let from_parent = i > 0 && causes[i - 1] == *cause;
                assert!(
                    allowed_own || from_parent,
                    "round {round}: level {i} has cause {cause:?}; chain {causes:?}"
                );
                if i == 4 {
                    assert_eq!(
                        *cause, causes[3],
                        "round {round}: d has no trigger of its own"
                    );
                }
            }
            drop(guards);

            let _ = root.wait_drained();
        }
    });
}

/// The cause reads the same through the child's guard, the child's report
/// and the root's; an error comes back as itself (downcast), a ZST error
/// compares by identity.
#[test]
fn adv_error_cause_identity_and_downcast_through_the_tree() {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let g = child.guard().unwrap();
    drop(child);
    root.trigger_with_error(Zst);
    let rc = root.cause().unwrap();
    let gc = g.cause().unwrap();
    assert_eq!(rc, gc);
    assert!(gc.error().unwrap().downcast_ref::<Zst>().is_some());
    let other = Shutdown::new();
    other.trigger_with_error(Zst);
    assert_ne!(
        other.cause().unwrap(),
        rc,
        "two different ZST errors compare equal"
    );
    drop(g);
    assert_eq!(root.wait_drained().cause, Some(rc));
}

/// An error whose Display fails (returns Err): trigger_with_error panics
/// in to_string, and the latch is left untriggered.
#[test]
fn adv_error_with_failing_display_still_triggers() {
    #[derive(Debug)]
    struct Bad;
    impl fmt::Display for Bad {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }
    impl std::error::Error for Bad {}
    let s = Shutdown::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.trigger_with_error(Bad)));
    assert!(
        r.is_ok() && s.is_triggered(),
        "trigger_with_error panicked: {} ; triggered = {}",
        r.is_err(),
        s.is_triggered()
    );
}

/// announce racing child() at depth: after both return, every latch made
/// is announced, and an Announced future registered on it right after
/// creation is woken.
#[test]
fn adv_announce_vs_children_at_depth() {
    bounded(120, || {
        for _ in 0..300 {
            let root = Shutdown::new();
            let mid = root.child().unwrap().child().unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let (r2, b2) = (root.clone(), barrier.clone());
            let announcer = std::thread::spawn(move || {
                b2.wait();
                r2.announce();
            });
            barrier.wait();
            let mut made = Vec::new();
            let mut futs = Vec::new();
            let mut parent = mid.clone();
            for i in 0..8 {
                let child = if i % 2 == 0 {
                    mid.child().unwrap()
                } else {
                    parent.child().unwrap()
                };
                futs.push(Probe::new(child.wait_announced_async()));
                let g = child.guard().unwrap();
                made.push((child.clone(), g));
                parent = child;
            }
            announcer.join().unwrap();
            for (i, (c, g)) in made.iter().enumerate() {
                assert!(
                    c.is_announced() && g.is_announced(),
                    "child {i} not announced"
                );
            }
            for (i, f) in futs.iter().enumerate() {
                assert!(f.done(), "Announced future {i} never woken");
            }
            assert!(root.guard().is_ok(), "announce must still admit");
        }
    });
}

/// While a 10,000-deep chain is being announced, an observer that sees the
/// root announced must see the leaf announced ("is_announced: this latch
/// or an ancestor").
#[test]
fn adv_is_announced_sees_ancestors_during_the_cascade() {
    bounded(60, || {
        let mut violations = 0;
        let rounds = 3;
        for _ in 0..rounds {
            let root = Shutdown::new();
            let mut chain = vec![root.clone()];
            for _ in 0..10_000 {
                let next = chain.last().unwrap().child().unwrap();
                chain.push(next);
            }
            let leaf = chain.last().unwrap().clone();
            let done = Arc::new(AtomicBool::new(false));
            let (r2, d2) = (root.clone(), done.clone());
            let observer = std::thread::spawn(move || {
                let mut seen = false;
                while !d2.load(Ordering::SeqCst) {
                    let r = r2.is_announced();
                    let l = leaf.is_announced();
                    if r && !l {
                        seen = true;
                        break;
                    }
                }
                seen
            });
            std::thread::sleep(Duration::from_millis(2));
            root.announce();
            done.store(true, Ordering::SeqCst);
            if observer.join().unwrap() {
                violations += 1;
            }
            // Drop the chain bottom-first (cheap).
            while chain.pop().is_some() {}
        }
        eprintln!("root announced but leaf not, in {violations}/{rounds} rounds");
        assert_eq!(
            violations, 0,
            "root announced, leaf not: {violations}/{rounds}"
        );
    });
}

/// Wakers of Announced futures that reenter: trigger, announce, child,
/// guard and read reports inline, on every level of a tree.
#[test]
fn adv_reentrant_announced_wakers() {
    bounded(20, || {
        let root = Shutdown::new();
        let a = root.child().unwrap();
        let b = a.child().unwrap();
        let mut tasks = Vec::new();
        for (i, s) in [root.clone(), a.clone(), b.clone()].into_iter().enumerate() {
            let (r, s2) = (root.clone(), s.clone());
            tasks.push(Inline::start(
                async move {
                    s2.wait_announced_async().await;
                    let c = s2.child().ok();
                    let g = s2.guard().ok();
                    s2.announce();
                    let _ = s2.cause();
                    let _ = s2.reason();
                    let _ = s2.holders();
                    if i == 2 {
                        r.trigger_with_reason("from b's waker");
                    }
                    drop((c, g));
                    let _ = s2.wait_drained_timeout(Duration::ZERO);
                },
                false,
            ));
        }
        root.announce();
        for (i, t) in tasks.iter().enumerate() {
            assert!(t.is_gone(), "task {i} did not complete inline");
        }
        assert!(root.is_triggered());
        assert_eq!(b.reason().as_deref(), Some("from b's waker"));
        // and during a trigger's announce (no prior announce)
        let s = Shutdown::new();
        let c = s.child().unwrap();
        let s2 = s.clone();
        let t = Inline::start(
            async move {
                c.wait_announced_async().await;
                assert!(c.child().is_err());
                s2.announce();
                s2.trigger_with_reason("again");
            },
            false,
        );
        s.trigger_with_reason("first");
        assert!(t.is_gone());
        assert_eq!(s.reason().as_deref(), Some("first"));
    });
}

/// A panicking Announced waker on the root: the announcement still reaches
/// the whole subtree and wakes every other waiter; the panic comes back to
/// announce(). Also through a trigger.
#[test]
fn adv_panicking_announced_waker() {
    quiet_panics();
    bounded(20, || {
        for trigger in [false, true] {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let mut bad = Box::pin(root.wait_announced_async());
            common::poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
            let mut bad2 = Box::pin(child.wait_announced_async());
            common::poll_pending(&mut bad2, &Waker::from(Arc::new(Panicking)));
            let good = Inline::start(grand.wait_announced_async(), false);
            let good_root = Inline::start(root.wait_announced_async(), false);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if trigger {
                    root.trigger();
                } else {
                    root.announce();
                }
            }));
            assert!(r.is_err(), "the panic is resumed");
            assert!(grand.is_announced() && child.is_announced());
            assert!(
                good.take().is_some(),
                "grandchild's waiter not woken (trigger={trigger})"
            );
            assert!(good_root.take().is_some(), "root's other waiter not woken");
            if trigger {
                assert!(grand.is_triggered());
            }
            assert!(root.child().map(|c| c.is_announced()).unwrap_or(true));
            drop((bad, bad2));
        }
    });
}

/// An Announced future polled with a new waker: only the latest is woken;
/// dropped mid-wait, it changes nothing.
#[test]
fn adv_announced_rewake_and_drop() {
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let s = Shutdown::new();
    let (w1, w2) = (
        Arc::new(Count(AtomicUsize::new(0))),
        Arc::new(Count(AtomicUsize::new(0))),
    );
    let mut f = Box::pin(s.wait_announced_async());
    for w in [&w1, &w2] {
        let waker = Waker::from(w.clone());
        assert!(f
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    let dropped = Box::pin(s.wait_announced_async());
    {
        let waker = Waker::from(w1.clone());
        let mut dropped = dropped;
        assert!(dropped
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    s.announce();
    assert_eq!(
        w1.0.load(Ordering::SeqCst),
        0,
        "an old or dropped registration was woken"
    );
    assert_eq!(w2.0.load(Ordering::SeqCst), 1);
    use std::future::Future;
    let _ = f
        .as_mut()
        .poll(&mut Context::from_waker(&Waker::from(w2.clone())));
}

/// announce racing trigger, force, guard and child on a wide tree, with
/// Announced futures everywhere: every future woken, no deadlock.
#[test]
fn adv_announce_trigger_force_wide_tree_storm() {
    bounded(120, || {
        for round in 0..50 {
            let root = Shutdown::new();
            let mut latches = vec![root.clone()];
            for i in 0..60 {
                let p = latches[i / 3].clone();
                latches.push(p.child().unwrap());
            }
            let futs: Vec<_> = latches
                .iter()
                .map(|l| Inline::start(l.wait_announced_async(), false))
                .collect();
            let barrier = Arc::new(Barrier::new(4));
            let mut ts = Vec::new();
            for k in 0..3 {
                let (ls, b) = (latches.clone(), barrier.clone());
                ts.push(std::thread::spawn(move || {
                    b.wait();
                    match k {
                        0 => {
                            ls[0].announce();
                        }
                        1 => {
                            ls[(round % 20) + 1].trigger();
                        }
                        _ => {
                            for l in &ls {
                                let root_announced = ls[0].is_announced();
                                if let Ok(c) = l.child() {
                                    // Announced before the child was made:
                                    // the child is announced at birth.
                                    assert!(c.is_announced() || !root_announced);
                                }
                                let _ = l.guard();
                            }
                            ls[0].force();
                        }
                    }
                }));
            }
            barrier.wait();
            for t in ts {
                t.join().unwrap();
            }
            for (i, f) in futs.iter().enumerate() {
                assert!(f.take().is_some(), "round {round}: future {i} not woken");
            }
            for l in &latches {
                assert!(l.is_announced() && l.is_triggered() && l.is_forced());
                assert!(l.cause().is_some());
            }
        }
    });
}

/// Polls a future once with a counting waker; `done()` when it was ready at
/// once, or woken and ready when polled again.
struct Probe {
    fut: std::sync::Mutex<std::pin::Pin<Box<quiescent::futures::Announced>>>,
    ready: AtomicBool,
    woken: Arc<CountWake>,
}
struct CountWake(AtomicUsize);
impl Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl Probe {
    fn new(f: quiescent::futures::Announced) -> Self {
        use std::future::Future;
        let woken = Arc::new(CountWake(AtomicUsize::new(0)));
        let mut fut = Box::pin(f);
        let waker = Waker::from(woken.clone());
        let ready = fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        Self {
            fut: std::sync::Mutex::new(fut),
            ready: AtomicBool::new(ready),
            woken,
        }
    }
    fn done(&self) -> bool {
        use std::future::Future;
        if self.ready.load(Ordering::SeqCst) {
            return true;
        }
        if self.woken.0.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let waker = Waker::from(self.woken.clone());
        self.fut
            .lock()
            .unwrap()
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
    }
}
