//! The release path under attack (an adversary's tests of the inline
//! release): guards of every kind dropped from thread-local destructors, by
//! panics on spawned threads, and with handles dropped in every order.
#![allow(clippy::disallowed_types)]

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::common::{bounded, quiet_panics};
use quiescent::{Guard, Shutdown};

/// Guards of every kind on a root, a child and a grandchild, dropped from a
/// thread-local destructor (after the thread's main returned): counts and
/// names go, drains complete, at every level.
#[test]
fn guards_dropped_by_thread_local_destructors() {
    bounded(20, || {
        thread_local! {
            static KEPT: RefCell<Vec<Guard>> = const { RefCell::new(Vec::new()) };
        }
        for round in 0..50 {
            let root = Shutdown::new();
            let child = root.child_named("c").unwrap();
            let grand = child.child_named("g").unwrap();
            let mut guards = Vec::new();
            for latch in [&root, &child, &grand] {
                guards.push(latch.guard().unwrap());
                guards.push(latch.guard_named("n").unwrap());
                guards.push(latch.guard_named("v").unwrap().vital());
                guards.push(latch.guard().unwrap().vital());
                let named = latch.guard_named("cl").unwrap();
                guards.push(named.clone());
                guards.push(named);
            }
            assert_eq!(root.count(), 18);
            // Spawn threads whose spawn guard and others live in a TLS.
            let handles: Vec<_> = [&root, &child, &grand]
                .iter()
                .map(|latch| {
                    latch
                        .spawn_named("sp", |g| {
                            KEPT.with(|k| k.borrow_mut().push(g));
                        })
                        .unwrap()
                })
                .collect();
            let t = thread::spawn(move || {
                KEPT.with(|k| k.borrow_mut().extend(guards));
            });
            t.join().unwrap();
            for h in handles {
                h.join().unwrap();
            }
            // Drop handles in varying order before the drain on another.
            match round % 3 {
                0 => {
                    drop(grand);
                    drop(child);
                }
                1 => {
                    drop(child);
                    drop(grand);
                }
                _ => {}
            }
            let report = root
                .shutdown_timeout(Duration::from_secs(5))
                .expect("root drains");
            assert_eq!(report.panicked, 0);
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            assert_eq!(root.count(), 0);
            assert!(root.holders().named.is_empty());
        }
    });
}

/// A guard dropped while its thread unwinds, from inside a thread-local
/// destructor (a `catch_unwind` in the destructor): counted as panicked,
/// a vital one fails its latch, a named one is recorded.
#[test]
fn guards_dropped_by_a_panic_inside_a_thread_local_destructor() {
    quiet_panics();
    bounded(20, || {
        struct Dtor(Option<Vec<Guard>>);
        impl Drop for Dtor {
            fn drop(&mut self) {
                let guards = self.0.take();
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let _g = guards;
                    panic!("deliberate in tls dtor");
                }));
            }
        }
        thread_local! {
            static D: RefCell<Dtor> = const { RefCell::new(Dtor(None)) };
        }
        for _ in 0..30 {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let gs = vec![
                grand.guard_named("tls-named").unwrap(),
                grand.guard().unwrap(),
                child.guard().unwrap().vital(),
            ];
            let spawned = grand
                .spawn_named("spawned", move |g| {
                    D.with(|d| {
                        let mut v = gs;
                        v.push(g);
                        d.borrow_mut().0 = Some(v);
                    });
                })
                .unwrap();
            spawned.join().unwrap();
            assert!(child.is_triggered(), "vital guard failed the child");
            assert!(grand.is_triggered());
            assert!(!root.is_triggered());
            let report = grand.wait_drained_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(report.panicked, 3, "{report:?}");
            let names: Vec<_> = report
                .failures
                .iter()
                .filter_map(|f| f.name.as_deref().map(str::to_owned))
                .collect();
            assert!(names.contains(&"tls-named".to_owned()), "{report:?}");
            assert!(names.contains(&"spawned".to_owned()), "{report:?}");
            let report = child.wait_drained_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(report.panicked, 4, "{report:?}");
            assert_eq!(root.count(), 0);
            assert_eq!(root.holders().panicked, 4);
        }
    });
}

/// Spawned threads that panic with named, vital and cloned guards, on a
/// grandchild: the report has every one of them, with the panic's message,
/// and the count never lingers or goes early.
#[test]
fn spawned_panics_on_grandchildren_are_all_reported() {
    quiet_panics();
    bounded(30, || {
        for round in 0..100 {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let n = 4;
            let start = Arc::new(Barrier::new(n + 1));
            let mut hs = Vec::new();
            for i in 0..n {
                let named = grand.guard_named(format!("extra{i}")).unwrap();
                let start = start.clone();
                hs.push(
                    grand
                        .spawn_named(format!("t{i}"), move |g| {
                            let g = if i % 2 == 0 { g.vital() } else { g };
                            let c = g.clone();
                            let c2 = named.clone();
                            start.wait();
                            let _all = (g, c, named, c2);
                            panic!("deliberate {i}");
                        })
                        .unwrap(),
                );
            }
            start.wait();
            if round % 2 == 0 {
                drop(child);
            }
            let report = root.shutdown_timeout(Duration::from_secs(5)).unwrap();
            for h in hs {
                assert!(h.join().is_err());
            }
            assert_eq!(report.panicked, 4 * n, "{report:?}");
            for i in 0..n {
                let t = format!("t{i}");
                let f = report
                    .failures
                    .iter()
                    .find(|f| f.name.as_deref() == Some(&t))
                    .unwrap_or_else(|| panic!("no failure for {t}: {report:?}"));
                assert_eq!(&*f.reason, format!("deliberate {i}"), "{report:?}");
                let e = format!("extra{i}");
                assert!(
                    report
                        .failures
                        .iter()
                        .any(|f| f.name.as_deref() == Some(&e)),
                    "no failure for {e}: {report:?}"
                );
            }
            assert_eq!(root.count(), 0);
        }
    });
}

/// Named clones released on many threads while a drain with a zero timeout
/// samples stragglers: a name is listed only while the guard lives; the
/// drain finishes at the last release, never early.
#[test]
fn named_clones_vs_straggler_snapshots() {
    bounded(30, || {
        for _ in 0..200 {
            let root = Shutdown::new();
            let grand = root.child().unwrap().child().unwrap();
            let base = grand.guard_named("w").unwrap();
            let clones: Vec<Guard> = (0..8).map(|_| base.clone()).collect();
            let live = Arc::new(AtomicUsize::new(9));
            root.trigger();
            let mut hs = Vec::new();
            let mut it = clones.into_iter();
            for _ in 0..2 {
                let mine: Vec<Guard> = it.by_ref().take(4).collect();
                let live = live.clone();
                hs.push(thread::spawn(move || {
                    for g in mine {
                        drop(g);
                        live.fetch_sub(1, Ordering::SeqCst);
                    }
                }));
            }
            loop {
                let before = live.load(Ordering::SeqCst);
                match root.wait_drained_timeout(Duration::ZERO) {
                    Ok(_) => panic!("drained with the base guard alive"),
                    Err(s) => {
                        // `live` lags the releases (decremented after
                        // each drop returns), so it bounds the live guards
                        // from above: neither the names nor the count may
                        // exceed it, and the base guard is always there.
                        assert!(s.names.len() <= before, "{s:?} live {before}");
                        assert!(s.remaining <= before, "{s:?} live {before}");
                        assert!(s.remaining >= 1 && !s.names.is_empty(), "{s:?}");
                        assert!(s.names.iter().all(|n| n == "w"));
                    }
                }
                if live.load(Ordering::SeqCst) == 1 {
                    break;
                }
            }
            for h in hs {
                h.join().unwrap();
            }
            let s = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
            assert_eq!(s.remaining, 1);
            assert_eq!(s.names, vec!["w".to_owned()]);
            drop(base);
            root.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        }
    });
}

/// The last guard of a grandchild released on one thread while every
/// handle is dropped on others and a drainer of the root returns and drops
/// everything at once. (For ASan.)
#[test]
fn handles_dropped_in_every_order_while_chains_release() {
    bounded(60, || {
        for round in 0..3000u32 {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let g1 = grand.guard().unwrap();
            let g2 = child.guard_named("x").unwrap();
            let g3 = grand.guard_named("y").unwrap().vital();
            let b = Arc::new(Barrier::new(3));
            let b1 = b.clone();
            let t1 = thread::spawn(move || {
                b1.wait();
                drop(g1);
                drop(g3);
            });
            let b2 = b.clone();
            let order = round % 4;
            let t2 = thread::spawn(move || {
                b2.wait();
                match order {
                    0 => drop((grand, child)),
                    1 => drop((child, grand)),
                    2 => {
                        grand.trigger();
                        drop(grand);
                        drop(child)
                    }
                    _ => {
                        child.trigger();
                        drop(child);
                        drop(grand)
                    }
                }
                drop(g2);
            });
            b.wait();
            root.trigger();
            let r = root.wait_drained_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(r.panicked, 0);
            drop(root);
            t1.join().unwrap();
            t2.join().unwrap();
        }
    });
}

/// A guard clone and drop storm on a triggered (DRAINING) grandchild, with
/// the count checked exactly at the end: every release takes the
/// draining path's second RMW at each level.
#[test]
fn clone_drop_storm_on_draining_chain_counts_exactly() {
    bounded(30, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let grand = child.child().unwrap();
        let base = grand.guard().unwrap();
        let named = grand.guard_named("nm").unwrap();
        child.trigger(); // child and grand draining; root open
        let mut hs = Vec::new();
        for t in 0..2 {
            let base = base.clone();
            let named = named.clone();
            hs.push(thread::spawn(move || {
                for i in 0..20000 {
                    let a = base.clone();
                    let b = if (i + t) % 16 == 0 {
                        Some(named.clone())
                    } else {
                        None
                    };
                    let c = a.clone();
                    drop(a);
                    drop(b);
                    drop(c);
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(root.count(), 2);
        assert_eq!(child.count(), 2);
        assert_eq!(grand.count(), 2);
        assert_eq!(root.holders().named.len(), 1);
        assert!(child.wait_drained_timeout(Duration::ZERO).is_err());
        drop(base);
        drop(named);
        assert_eq!(root.count(), 0);
        child.wait_drained_timeout(Duration::from_secs(1)).unwrap();
        grand.wait_drained_timeout(Duration::from_secs(1)).unwrap();
        assert!(!root.is_triggered());
        root.shutdown_timeout(Duration::from_secs(1)).unwrap();
    });
}

/// A child's drain waker that, inside the release announcing the child's
/// drain (before the ancestors' levels are released), drops every handle
/// and the root's other guards, then panics. The chain must still finish
/// on the root, and nothing is freed under the releaser. (For ASan.)
#[test]
fn reentrant_then_panicking_drain_waker_on_a_child() {
    quiet_panics();
    bounded(30, || {
        struct W(
            std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
            bool,
        );
        impl std::task::Wake for W {
            fn wake(self: Arc<Self>) {
                let stuff = self.0.lock().unwrap().take();
                drop(stuff);
                if self.1 {
                    panic!("deliberate waker");
                }
            }
        }
        for round in 0..500 {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let g = grand.guard().unwrap();
            let root_g = root.guard_named("rg").unwrap();
            child.trigger();
            let mut fut = Box::pin(child.wait_drained_async());
            let observer = root.clone();
            let w = Arc::new(W(std::sync::Mutex::new(None), round % 2 == 0));
            let waker = std::task::Waker::from(w.clone());
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            *w.0.lock().unwrap() = Some(Box::new((root, child, grand, root_g, fut)));
            let dropper = thread::spawn(move || drop(g));
            let res = dropper.join();
            assert_eq!(res.is_err(), round % 2 == 0);
            assert_eq!(observer.count(), 0);
            observer.trigger();
            observer
                .wait_drained_timeout(Duration::from_secs(2))
                .unwrap();
            drop(waker);
        }
    });
}

/// Tokens dropped by panics and normally on several threads while the group
/// waits and is then dropped at once: the panicked count is exact and the
/// wait returns only at zero. (For ASan: the group goes right after.)
#[test]
fn wait_group_tokens_dropped_by_panics_vs_wait_then_drop() {
    quiet_panics();
    bounded(30, || {
        for round in 0..300usize {
            let mut wg = quiescent::WaitGroup::new();
            let done = Arc::new(AtomicUsize::new(0));
            let mut hs = Vec::new();
            for t in 0..3usize {
                let toks: Vec<_> = (0..3).map(|_| wg.token()).collect();
                let done = done.clone();
                hs.push(thread::spawn(move || {
                    let mut toks = toks;
                    let last = toks.pop().unwrap();
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                        let _t = toks;
                        if (round + t) % 2 == 0 {
                            panic!("deliberate token panic");
                        }
                    }));
                    done.fetch_add(1, Ordering::SeqCst);
                    drop(last);
                }));
            }
            wg.wait_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(done.load(Ordering::SeqCst), 3);
            let expect: usize = (0..3).filter(|t| (round + t) % 2 == 0).count() * 2;
            assert_eq!(wg.panicked(), expect);
            assert_eq!(wg.count(), 0);
            drop(wg);
            for h in hs {
                h.join().unwrap();
            }
        }
    });
}

/// Many threads panic with guards of a draining grandchild (the unwinding
/// release, out of line, through the drain field at two levels) while the
/// root drains: panicked is exact at every level.
#[test]
fn unwinding_releases_on_a_draining_chain_count_exactly() {
    quiet_panics();
    bounded(30, || {
        for _ in 0..200 {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let grand = child.child().unwrap();
            let keep = root.guard().unwrap();
            let start = Arc::new(Barrier::new(3));
            let mut hs = Vec::new();
            for _ in 0..2 {
                let gs: Vec<Guard> = (0..5)
                    .map(|i| match i {
                        0 => grand.guard_named("n").unwrap(),
                        1 => child.guard().unwrap(),
                        _ => grand.guard().unwrap(),
                    })
                    .collect();
                let start = start.clone();
                hs.push(thread::spawn(move || {
                    start.wait();
                    let _g = gs;
                    panic!("deliberate");
                }));
            }
            child.trigger();
            start.wait();
            let r = child.wait_drained_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(r.panicked, 10, "{r:?}");
            for h in hs {
                assert!(h.join().is_err());
            }
            assert_eq!(
                grand.wait_drained_timeout(Duration::ZERO).unwrap().panicked,
                8
            );
            assert_eq!(root.count(), 1);
            assert_eq!(root.holders().panicked, 10);
            assert!(root.holders().named.is_empty());
            drop(keep);
            root.shutdown_timeout(Duration::from_secs(1)).unwrap();
        }
    });
}
