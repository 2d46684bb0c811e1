//! The `signal` feature's policy, with real signals sent to child processes
//! (this test binary, re-run with an env var), since handlers and exits are
//! process-wide:
//! * the first SIGINT/SIGTERM triggers, with the signal's name as reason;
//! * a second one during the drain forces;
//! * a third (or a second after forcing) prints the stragglers and exits
//!   with 128 + the signal number;
//! * after the drain, signals no longer exit;
//! * the builder changes what the second one does and whether to print.
#![cfg(all(feature = "signal", unix))]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::bounded;
use quiescent::{SecondSignal, Shutdown};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;

const CHILD: &str = "QUIESCENT_SIGNAL_CHILD";

/// Waits (bounded) until `cond` holds: the signal thread acts asynchronously.
fn eventually(cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// In the child process: run the scenario, print what happened, exit.
fn child_main(scenario: &str) -> ! {
    let shutdown = Shutdown::new();
    match scenario {
        "sigint-drains" => {
            shutdown.trigger_on_signals().unwrap();
            let err = Shutdown::new().trigger_on_signals().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
            raise(SIGINT).unwrap();
            let report = shutdown
                .wait_drained_timeout(Duration::from_secs(10))
                .unwrap();
            println!("drained after {}", report.reason.unwrap());
        }
        "second-forces-third-exits" => {
            shutdown.trigger_on_signals().unwrap();
            let guard = shutdown.guard_named("stuck-writer").unwrap();
            raise(SIGTERM).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            println!("triggered by {}", shutdown.reason().unwrap());
            raise(SIGINT).unwrap();
            eventually(|| guard.is_forced());
            println!("forced");
            raise(SIGTERM).unwrap();
            std::thread::sleep(Duration::from_secs(10));
            println!("still alive after the third signal");
        }
        "no-exit-after-the-drain" => {
            shutdown.trigger_on_signals().unwrap();
            raise(SIGTERM).unwrap();
            shutdown
                .wait_drained_timeout(Duration::from_secs(10))
                .unwrap();
            raise(SIGTERM).unwrap();
            raise(SIGINT).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            println!("still alive after the drain");
        }
        "builder-exit-quietly" => {
            shutdown
                .signals()
                .only(&[SIGTERM])
                .on_second(SecondSignal::Exit)
                .print_stragglers(false)
                .install()
                .unwrap();
            let guard = shutdown.guard_named("stuck-writer").unwrap();
            raise(SIGTERM).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            raise(SIGTERM).unwrap();
            std::thread::sleep(Duration::from_secs(10));
            println!("still alive after the second signal");
        }
        "builder-ignore" => {
            shutdown
                .signals()
                .on_second(SecondSignal::Ignore)
                .install()
                .unwrap();
            let guard = shutdown.guard().unwrap();
            raise(SIGINT).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            raise(SIGINT).unwrap();
            raise(SIGINT).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(!guard.is_forced());
            println!("still alive, not forced");
        }
        "exit-races-the-drain" => {
            // The third signal races the last guard's drop: either the
            // process exits before the drain completes, or it is never
            // killed after it.
            shutdown.trigger_on_signals().unwrap();
            let guard = shutdown.guard_named("stuck").unwrap();
            raise(SIGINT).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            raise(SIGINT).unwrap();
            eventually(|| guard.is_forced());
            let spin: u32 = std::env::var("QUIESCENT_SPIN").unwrap().parse().unwrap();
            raise(SIGTERM).unwrap();
            for _ in 0..spin {
                std::hint::spin_loop();
            }
            drop(guard);
            shutdown.wait_drained();
            use std::io::Write;
            println!("drained");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            println!("still alive");
        }
        "notice-stages" => {
            // A long notice: every stage comes from a signal.
            shutdown
                .signals()
                .notice(Duration::from_secs(60))
                .install()
                .unwrap();
            let guard = shutdown.guard_named("stuck-writer").unwrap();
            raise(SIGTERM).unwrap();
            eventually(|| guard.is_announced());
            assert!(!guard.is_triggered(), "the notice holds the trigger off");
            let late = shutdown.guard().expect("still admitted during the notice");
            drop(late);
            println!("announced, not triggered, still admitting");
            raise(SIGTERM).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            println!("triggered by {:?}", shutdown.cause().unwrap());
            raise(SIGTERM).unwrap();
            eventually(|| guard.is_forced());
            println!("forced");
            raise(SIGTERM).unwrap();
            std::thread::sleep(Duration::from_secs(10));
            println!("still alive after the fourth signal");
        }
        "notice-runs-out" => {
            shutdown
                .signals()
                .notice(Duration::from_millis(200))
                .install()
                .unwrap();
            let guard = shutdown.guard().unwrap();
            raise(SIGINT).unwrap();
            eventually(|| guard.is_announced());
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            println!(
                "triggered by {} after the notice",
                shutdown.reason().unwrap()
            );
        }
        other => panic!("unknown scenario {other}"),
    }
    std::process::exit(0)
}

/// Runs `test` (this binary's test of that name) as a child in `scenario`.
fn run_child(test: &str, scenario: &str) -> Output {
    run_child_with(test, scenario, 0)
}

/// As `run_child`, with `QUIESCENT_SPIN` set for the child.
fn run_child_with(test: &str, scenario: &str, spin: u32) -> Output {
    if let Ok(scenario) = std::env::var(CHILD) {
        child_main(&scenario);
    }
    let (test, scenario) = (test.to_owned(), scenario.to_owned());
    bounded(30, move || {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--nocapture"])
            .env(CHILD, scenario)
            .env("QUIESCENT_SPIN", spin.to_string())
            .output()
            .unwrap()
    })
}

#[test]
fn first_signal_triggers_with_its_name() {
    let out = run_child("first_signal_triggers_with_its_name", "sigint-drains");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("drained after SIGINT"), "{stdout}");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn second_signal_forces_and_third_exits_naming_the_stragglers() {
    let out = run_child(
        "second_signal_forces_and_third_exits_naming_the_stragglers",
        "second-forces-third-exits",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("triggered by SIGTERM"), "{stdout}");
    assert!(stdout.contains("forced"), "{stdout}");
    assert!(!stdout.contains("still alive"), "{stdout}");
    assert_eq!(out.status.code(), Some(128 + SIGTERM), "{out:?}");
    assert!(
        stderr.contains("SIGINT while shutting down; forcing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("quiescent: SIGTERM again, exiting: 1 guard still held")
            && stderr.contains("even after forcing: \"stuck-writer\" (tests/signal.rs:"),
        "{stderr}"
    );
}

#[test]
fn signals_after_the_drain_do_not_exit() {
    let out = run_child(
        "signals_after_the_drain_do_not_exit",
        "no-exit-after-the-drain",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("still alive after the drain"), "{stdout}");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("after the drain completed; not exiting"),
        "{stderr}"
    );
}

#[test]
fn the_builder_can_exit_on_the_second_signal_without_printing() {
    let out = run_child(
        "the_builder_can_exit_on_the_second_signal_without_printing",
        "builder-exit-quietly",
    );
    assert_eq!(out.status.code(), Some(128 + SIGTERM), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM again, exiting"), "{stderr}");
    assert!(!stderr.contains("stuck-writer"), "{stderr}");
}

#[test]
fn the_builder_can_ignore_further_signals() {
    let out = run_child("the_builder_can_ignore_further_signals", "builder-ignore");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("still alive, not forced"), "{stdout}");
    assert!(out.status.success(), "{out:?}");
}

/// With a notice: the first signal only announces (guards still
/// admitted), the second triggers, the third forces, the fourth exits with
/// 128 + its number, naming the stragglers; each stage logged once.
#[test]
fn with_a_notice_each_signal_moves_one_stage() {
    let out = run_child("with_a_notice_each_signal_moves_one_stage", "notice-stages");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("announced, not triggered, still admitting"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("triggered by Signal(15)"), "{stdout}");
    assert!(stdout.contains("forced"), "{stdout}");
    assert!(!stdout.contains("still alive"), "{stdout}");
    assert_eq!(out.status.code(), Some(128 + SIGTERM), "{out:?}");
    for stage in [
        "SIGTERM: stopping in 60.0s (announced",
        "SIGTERM during the notice: shutting down now",
        "SIGTERM while shutting down; forcing",
        "SIGTERM again, exiting: 1 guard still held",
    ] {
        assert_eq!(stderr.matches(stage).count(), 1, "{stage:?} in {stderr}");
    }
}

/// The notice running out moves the latch from announced to triggered by
/// itself, with the signal as the cause.
#[test]
fn the_notice_running_out_triggers() {
    let out = run_child("the_notice_running_out_triggers", "notice-runs-out");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("triggered by SIGINT after the notice"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("SIGINT: notice over, shutting down"),
        "{stderr}"
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_empty_signal_list_is_refused() {
    let err = Shutdown::new().signals().only(&[]).install().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// A signal that would exit races the drain completing: a process that has
/// seen its drain complete is never killed (the exit decision holds the
/// drain open until the process is gone).
#[test]
fn an_exit_never_follows_a_completed_drain() {
    for i in 0..40 {
        let out = run_child_with(
            "an_exit_never_follows_a_completed_drain",
            "exit-races-the-drain",
            (i % 20) * 1_000,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.contains("drained") {
            assert!(
                stdout.contains("still alive") && out.status.success(),
                "killed after its drain completed: {out:?}"
            );
        } else {
            assert_eq!(out.status.code(), Some(128 + SIGTERM), "{out:?}");
        }
    }
}
