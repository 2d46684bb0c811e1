//! Loom models of `WaitGroup`, written against the public API only, exactly
//! as a user would model their own code.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::{exhaustive, write_then_drop, Data};
use quiescent::WaitGroup;

/// The last token is dropped on another thread while `wait` blocks: `wait`
/// returns, and the holder's write is ordered before it.
#[test]
fn last_token_drop_vs_wait() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let token = wg.token();
        let holder = write_then_drop(&data, 1, token);
        wg.wait();
        assert_eq!(data.read(), 1);
        assert_eq!(wg.count(), 0);
        holder.join().unwrap();
    });
}

/// The same against the first poll of `wait_async`: the waker is registered
/// and the state re-checked after registering, so the wake-up is not lost.
#[test]
fn last_token_drop_vs_first_poll_of_wait_async() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let token = wg.token();
        let holder = write_then_drop(&data, 1, token);
        loom::future::block_on(wg.wait_async());
        assert_eq!(data.read(), 1);
        holder.join().unwrap();
    });
}

/// One thread clones a token while another drops the last other token: the
/// count never reaches zero early and the final wait sees both gone.
#[test]
fn token_clone_vs_drop_of_the_last_other_token() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let a = wg.token();
        let b = wg.token();
        let cloner = thread::spawn(move || {
            let c = a.clone();
            drop(a);
            assert!(c.count() >= 1);
            c
        });
        drop(b);
        let c = cloner.join().unwrap();
        assert_eq!(wg.count(), 1);
        drop(c);
        wg.wait();
        assert_eq!(wg.count(), 0);
    });
}

/// Wait, mint, wait again, with the second round's token dropped late on
/// another thread: each wait covers exactly its own round.
#[test]
fn sequential_reuse_with_a_late_drop() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let first = wg.token();
        drop(first);
        wg.wait();
        let second = wg.token();
        let late = write_then_drop(&data, 2, second);
        wg.wait();
        assert_eq!(data.read(), 2);
        late.join().unwrap();
    });
}

/// Dropping the group while a token lives on another thread: the token keeps
/// the state alive and frees it when it goes (loom reports leaks).
#[test]
fn token_outlives_the_group() {
    exhaustive(|| {
        let wg = WaitGroup::new();
        let token = wg.token();
        let holder = thread::spawn(move || {
            let clone = token.clone();
            drop(token);
            drop(clone);
        });
        drop(wg);
        holder.join().unwrap();
    });
}
