//! Adversarial: spawn guards dropped by thread-local destructors. The
//! scenario runs in a child process (an abort must not kill the harness).
#![allow(clippy::disallowed_types)]

mod common;

use std::cell::RefCell;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::bounded;
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
