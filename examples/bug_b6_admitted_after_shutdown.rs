//! B6 — work admitted after shutdown began is never waited for (IBM/sarama
//! PR #451). The Go shape:
//!
//! ```go
//! func (p *producer) Input(msg) {
//!     p.inFlight.Add(1)   // from zero, while AsyncClose is already in Wait
//!     p.input <- msg
//! }
//! ```
//!
//! `Shutdown::guard` is refused once the latch is triggered, and trigger and
//! admission are one atomic decision: every admitted guard is drained, none
//! is admitted after the trigger.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use quiescent::Shutdown;

/// Races a producer against the trigger `rounds` times; returns (admitted
/// in total, refusals after trigger returned).
pub fn run(rounds: usize) -> (usize, usize) {
    let mut admitted = 0;
    let mut refused_after = 0;
    for _ in 0..rounds {
        let producer = Shutdown::new();
        let start = Arc::new(Barrier::new(2));
        let input = {
            let producer = producer.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut in_flight = Vec::new();
                while let Ok(guard) = producer.guard() {
                    in_flight.push(guard);
                    if in_flight.len() == 100 {
                        break;
                    }
                }
                in_flight
            })
        };
        start.wait();
        // Let the producer get going, then close while it is admitting.
        for _ in 0..50 {
            std::hint::spin_loop();
        }
        producer.trigger();
        if producer.guard().is_err() {
            refused_after += 1;
        }
        let in_flight = input.join().expect("producer panicked");
        // Every admitted message is still counted by the drain.
        let pending = producer
            .wait_drained_timeout(Duration::ZERO)
            .map_or_else(|s| s.remaining, |_| 0);
        assert_eq!(pending, in_flight.len());
        admitted += in_flight.len();
        drop(in_flight);
        producer.wait_drained();
    }
    (admitted, refused_after)
}

#[allow(dead_code)]
fn main() {
    let (admitted, refused) = run(1_000);
    println!("B6: 1000 races of Input against AsyncClose: {admitted} messages admitted, every one drained; {refused} of 1000 post-trigger Inputs refused");
}
