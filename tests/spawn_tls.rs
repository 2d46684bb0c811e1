//! Adversarial: spawn guards dropped by thread-local destructors, in a panic
//! hook, by a waker inside another guard's drop, under a `catch_unwind` in
//! the body. Each scenario runs in a child process (an abort must not kill
//! the harness).
#![allow(clippy::disallowed_types)]

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{bounded, in_child};
use quiescent::{Guard, Shutdown};

thread_local! {
    static KEEP: RefCell<Vec<Guard>> = const { RefCell::new(Vec::new()) };
}

/// A spawn guard handed out of its thread (allowed: "a spawn guard moved to
/// another thread is released there").
fn spawn_guard(sd: &Shutdown) -> Guard {
    let (tx, rx) = mpsc::channel();
    let h = sd.spawn(move |g| tx.send(g).unwrap()).unwrap();
    let g = rx.recv().unwrap();
    h.join().unwrap();
    g
}

fn scenario(order: &str) {
    let sd = Shutdown::new();
    let g1 = spawn_guard(&sd);
    let g2 = spawn_guard(&sd);
    let order = order.to_owned();
    std::thread::spawn(move || {
        if order == "keep-first" {
            // KEEP's destructor is registered before SPAWNED's.
            KEEP.with(|k| k.borrow_mut().push(g1));
            drop(g2); // first touch of SPAWNED on this thread
        } else {
            drop(g2);
            KEEP.with(|k| k.borrow_mut().push(g1));
        }
    })
    .join()
    .unwrap();
    let r = sd.shutdown_timeout(Duration::from_secs(2));
    println!(
        "RESULT {:?}",
        r.map(|r| r.panicked).map_err(|s| s.remaining)
    );
}

#[test]
fn adv_tls_child() {
    if let Ok(order) = std::env::var("ADV_TLS_ORDER") {
        scenario(&order);
    }
}

fn run(order: &str) -> (Option<i32>, String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "adv_tls_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ADV_TLS_ORDER", order)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn adv_spawn_guard_in_tls_registered_before_spawned_slot() {
    bounded(60, || {
        let (code, out, err) = run("keep-first");
        assert!(
            code == Some(0) && out.contains("RESULT Ok(0)"),
            "status {code:?}\nstdout: {out}\nstderr: {err}"
        );
    });
}

#[test]
fn adv_spawn_guard_in_tls_registered_after_spawned_slot() {
    bounded(60, || {
        let (code, out, err) = run("spawned-first");
        assert!(
            code == Some(0) && out.contains("RESULT Ok(0)"),
            "status {code:?}\nstdout: {out}\nstderr: {err}"
        );
    });
}

// Spawn guards in odd places (an adversary of commit 64597bc, whose
// guard drop cannot unwind: none of these may abort or hang).

static STASH: Mutex<Option<Guard>> = Mutex::new(None);

thread_local! {
    static TLS_GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

fn drained(s: &Shutdown) {
    s.trigger();
    let r = s.wait_drained_timeout(Duration::from_secs(5));
    assert!(r.is_ok(), "not drained: {r:?}");
}

/// The spawn guard moved to a plain thread's thread-local, dropped at its
/// exit (SPAWNED lazily initialised during TLS destruction).
#[test]
fn s1_spawn_guard_in_other_threads_tls() {
    in_child("s1_spawn_guard_in_other_threads_tls", 20, || {
        let s = Shutdown::new();
        let (tx, rx) = std::sync::mpsc::channel();
        s.spawn_named("w", move |g| tx.send(g).unwrap())
            .unwrap()
            .join()
            .unwrap();
        let g = rx.recv().unwrap();
        std::thread::spawn(move || TLS_GUARD.with(|t| *t.borrow_mut() = Some(g)))
            .join()
            .unwrap();
        drained(&s);
    });
}

/// The spawn guard stashed in the body's own thread-local, dropped by the
/// thread's TLS destructors after the body panicked.
#[test]
fn s2_spawn_guard_in_own_tls_after_panic() {
    in_child("s2_spawn_guard_in_own_tls_after_panic", 20, || {
        let s = Shutdown::new();
        let h = s
            .spawn_named("w", |g| {
                let g = g.vital();
                TLS_GUARD.with(|t| *t.borrow_mut() = Some(g));
                panic!("deliberate");
            })
            .unwrap();
        assert!(h.join().is_err());
        drained(&s);
    });
}

/// The spawn guard (vital) dropped inside the panic hook of its own thread.
#[test]
fn s3_spawn_guard_dropped_in_panic_hook() {
    in_child("s3_spawn_guard_dropped_in_panic_hook", 20, || {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut stash) = STASH.try_lock() {
                drop(stash.take());
            }
            prev(info);
        }));
        let s = Shutdown::new();
        let h = s
            .spawn_named("w", |g| {
                *STASH.lock().unwrap() = Some(g.vital());
                panic!("deliberate: hook drops the spawn guard");
            })
            .unwrap();
        assert!(h.join().is_err());
        assert!(s.is_triggered());
        let r = s.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        eprintln!("{:?}", r.failures);
    });
}

/// A waker that drops the stashed guard when woken.
struct DropStash;
impl Wake for DropStash {
    fn wake(self: Arc<Self>) {
        drop(STASH.lock().unwrap().take());
    }
}

/// A vital guard dropped by a spawned thread's panic triggers its latch; a
/// waker of that trigger drops the thread's own spawn guard (vital too),
/// nested inside the first drop_slow.
#[test]
fn s4_waker_drops_spawn_guard_inside_vital_drop() {
    in_child("s4_waker_drops_spawn_guard_inside_vital_drop", 20, || {
        let s = Shutdown::new();
        let other = Shutdown::new();
        let mut t = other.wait_triggered_async();
        let w = Waker::from(Arc::new(DropStash));
        assert!(std::pin::Pin::new(&mut t)
            .poll(&mut Context::from_waker(&w))
            .is_pending());
        let v = other.guard_named("v").unwrap().vital();
        let h = s
            .spawn_named("w", move |g| {
                *STASH.lock().unwrap() = Some(g.vital());
                let _v = v;
                panic!("deliberate");
            })
            .unwrap();
        assert!(h.join().is_err());
        assert!(other.is_triggered());
        assert!(s.is_triggered());
        let r = s.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        eprintln!("{:?}", r.failures);
        other.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        drop(t);
    });
}

/// The spawn guard is dropped under a catch_unwind in its body; the body
/// then forgets a clone, spawns a nested spawn from inside, and returns.
#[test]
fn s5_caught_then_nested() {
    in_child("s5_caught_then_nested", 20, || {
        let s = Shutdown::new();
        let s2 = s.clone_handle_for_test();
        let h = s
            .spawn_named("outer", move |g| {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let _g = g;
                    panic!("deliberate");
                }));
                assert!(r.is_err());
                let inner = s2.spawn_named("inner", |g| {
                    let _g = g;
                    panic!("deliberate inner");
                });
                assert!(inner.unwrap().join().is_err());
            })
            .unwrap();
        h.join().unwrap();
        drained(&s);
    });
}

trait CloneHandle {
    fn clone_handle_for_test(&self) -> Shutdown;
}
impl CloneHandle for Shutdown {
    fn clone_handle_for_test(&self) -> Shutdown {
        // A child latch, the public way to get a second handle in the tree.
        self.child_named("sub").unwrap()
    }
}
