//! The quick start from the README: a WaitGroup fan-out, then a Shutdown
//! with a straggler report.

use std::time::Duration;

use quiescent::{Shutdown, WaitGroup};

fn main() {
    let mut wg = WaitGroup::new();
    for i in 0..4 {
        wg.spawn(move || println!("worker {i} done"));
    }
    wg.wait();
    println!("all workers done; panicked: {}", wg.panicked());

    let shutdown = Shutdown::new();
    for id in 0..3 {
        let guard = shutdown.guard_named(format!("worker-{id}")).unwrap();
        std::thread::spawn(move || {
            guard.wait_triggered();
            drop(guard);
        });
    }
    match shutdown.shutdown_timeout(Duration::from_secs(5)) {
        Ok(report) => println!("{report}"),
        Err(stragglers) => {
            eprintln!("{stragglers}");
            std::process::exit(1);
        }
    }
}
