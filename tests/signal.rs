//! The `signal` feature: the first SIGTERM/SIGINT triggers with the signal's
//! name as reason; a second one exits at once with status 130. Each scenario
//! runs in a child process (this test binary, re-run with an env var), since
//! signal handlers and exits are process-wide.
#![cfg(all(feature = "signal", unix))]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::bounded;
use quiescent::Shutdown;
use signal_hook::consts::{SIGINT, SIGTERM};

const CHILD: &str = "QUIESCENT_SIGNAL_CHILD";

/// In the child process: run the scenario, print what happened, exit.
fn child_main(scenario: &str) -> ! {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals().unwrap();
    match scenario {
        "sigint-drains" => {
            let err = Shutdown::new().trigger_on_signals().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
            signal_hook::low_level::raise(SIGINT).unwrap();
            let report = shutdown
                .wait_drained_timeout(Duration::from_secs(10))
                .unwrap();
            println!("drained after {}", report.reason.unwrap());
        }
        "second-signal-exits" => {
            let guard = shutdown.guard_named("stuck").unwrap();
            signal_hook::low_level::raise(SIGTERM).unwrap();
            assert!(guard.wait_triggered_timeout(Duration::from_secs(10)));
            println!("triggered by {}", shutdown.reason().unwrap());
            signal_hook::low_level::raise(SIGINT).unwrap();
            std::thread::sleep(Duration::from_secs(10));
            println!("still alive after the second signal");
        }
        other => panic!("unknown scenario {other}"),
    }
    std::process::exit(0)
}

/// Runs `test` (this binary's test of that name) as a child in `scenario`.
fn run_child(test: &str, scenario: &str) -> Output {
    if let Ok(scenario) = std::env::var(CHILD) {
        child_main(&scenario);
    }
    let (test, scenario) = (test.to_owned(), scenario.to_owned());
    bounded(30, move || {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--nocapture"])
            .env(CHILD, scenario)
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
fn second_signal_exits_with_130() {
    let out = run_child("second_signal_exits_with_130", "second-signal-exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("triggered by SIGTERM"), "{stdout}");
    assert!(!stdout.contains("still alive"), "{stdout}");
    assert_eq!(out.status.code(), Some(130), "{out:?}");
}
