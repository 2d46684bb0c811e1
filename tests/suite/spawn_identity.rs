//! Adversarial: the spawn guard's identity is the address of its `Extra`.
//! Thread A's spawn guard is moved to thread B and dropped there (A's
//! thread-local still holds the address); B then spawns thread C, whose
//! spawn guard's `Extra` reuses the freed block; C hands its guard to A,
//! and A's panic drops it: A takes it for its own spawn guard.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::Shutdown;

#[test]
fn adv_spawn_identity_by_address_is_reused_across_threads() {
    quiet_panics();
    bounded(30, || {
        let sd_a = Shutdown::new();
        let sd_c = Shutdown::new();
        let _prior = sd_c.guard_named("prior").unwrap(); // so C's id is 1 in sd_c
        let (to_b, from_a) = mpsc::channel::<quiescent::Guard>();
        let (to_a, from_c) = mpsc::channel::<quiescent::Guard>();
        let (other_tx, other_rx) = mpsc::channel::<()>();
        let a = sd_a
            .spawn_named("a", move |ga| {
                to_b.send(ga).unwrap();
                let gc = from_c.recv().unwrap();
                let _gc = gc;
                panic!("deliberate: A");
            })
            .unwrap();
        // sd_a's "other" gets id 1 (after "a" = 0)
        let other = sd_a.guard_named("other").unwrap();
        let sd_c2 = sd_c.clone();
        let b = std::thread::spawn(move || {
            let ga = from_a.recv().unwrap();
            drop(ga); // frees A's Extra in B
            let c = sd_c2
                .spawn_named("c", move |gc| {
                    to_a.send(gc).unwrap();
                })
                .unwrap();
            c.join().unwrap();
            let _ = other_rx;
        });
        b.join().unwrap();
        let _ = a.join();
        drop(other_tx);
        let ha = sd_a.holders();
        let hc = sd_c.holders();
        println!("sd_a holders: {ha}\nsd_c holders: {hc}");
        assert!(
            hc.named.len() <= hc.count,
            "sd_c names more than it counts: {hc}"
        );
        assert_eq!(ha.named.len(), 1, "sd_a lost the live \"other\": {ha}");
        drop(other);
        drop(_prior);
        let rc = sd_c.shutdown_timeout(Duration::from_secs(2));
        println!("{rc:?}");
    });
}
