//! The async twin of `hub.rs`, on tokio: the same loopback hub, one reader
//! task and one writer task per connection (the writer owns the write half
//! and is fed by a channel), a hub task that broadcasts, in-process clients,
//! and an ordered shutdown: tasks run under `track_named` guards, the
//! acceptor under `run_until_triggered`, the writers watch a hoisted
//! `wait_triggered_async`, and the drain is bounded with
//! `shutdown_async().until(sleep(grace))`.
//!
//! ```sh
//! cargo run --release --example hub_async -- --clients 16 --seconds 2
//! ```
//!
//! Its flags are `hub`'s, with the same defaults (8 clients, 3 s, a 2 s grace,
//! a 1 s forced phase), except `--stuck` and `--panic`, which only `hub`
//! has: `hub` shows those failures; this one shows the same drain on tokio.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quiescent::{Guard, Shutdown};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Settings: clients, run time and grace, in seconds.
#[derive(Clone, Debug)]
pub struct Config {
    /// In-process clients generating load.
    pub clients: usize,
    /// Run time before the shutdown is triggered.
    pub seconds: f64,
    /// How long the shutdown may take before it is forced.
    pub grace: f64,
    /// How long the forced phase may take before stragglers are named.
    pub hard: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clients: 8,
            seconds: 3.0,
            grace: 2.0,
            hard: 1.0,
        }
    }
}

/// Parses `--clients N --seconds S --grace S --hard S`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--stuck" || flag == "--panic" {
            return Err(format!(
                "{flag} is a flag of `hub` only (cargo run --release --example hub -- {flag})"
            ));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value {value:?} for {flag}");
        let seconds = || {
            value
                .parse()
                .ok()
                .filter(|s: &f64| (0.0..=3600.0).contains(s))
                .ok_or_else(bad)
        };
        match flag.as_str() {
            "--clients" => {
                config.clients = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(bad)?
            }
            "--seconds" => config.seconds = seconds()?,
            "--grace" => config.grace = seconds()?,
            "--hard" => config.hard = seconds()?,
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(config)
}

/// Counts of one run.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Lines the clients wrote.
    pub sent: AtomicU64,
    /// Lines the server read.
    pub read: AtomicU64,
    /// Copies the hub queued.
    pub routed: AtomicU64,
    /// Copies the clients received.
    pub delivered: AtomicU64,
    /// Copies a writer discarded once the shutdown was forced.
    pub abandoned: AtomicU64,
    /// Goodbyes the clients received.
    pub goodbyes: AtomicU64,
}

enum Event {
    Join(u64, mpsc::UnboundedSender<String>),
    Message(u64, String),
}

/// Runs the demo; returns the counts and the drain's outcome.
pub async fn run(
    config: &Config,
) -> std::io::Result<(
    Arc<Counts>,
    Result<quiescent::Report, quiescent::Stragglers>,
)> {
    let root = Shutdown::new();
    let (acceptor, readers, hub, writers) = (
        root.child().expect("fresh"),
        root.child().expect("fresh"),
        root.child().expect("fresh"),
        root.child().expect("fresh"),
    );
    let counts = Arc::new(Counts::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (hub_tx, hub_rx) = mpsc::unbounded_channel();
    tokio::spawn(
        hub.track_named("hub", run_hub(hub_rx, counts.clone()))
            .expect("fresh"),
    );
    {
        let guard = acceptor.guard_named("acceptor").expect("fresh");
        let (readers, writers, counts) = (readers.clone(), writers.clone(), counts.clone());
        tokio::spawn(async move {
            let mut id = 0;
            // Accept until the trigger; the pending accept is dropped then.
            while let Some(Ok((stream, peer))) = guard.run_until_triggered(listener.accept()).await
            {
                let (read_half, write_half) = stream.into_split();
                let (tx, rx) = mpsc::unbounded_channel();
                let read = read_loop(read_half, id, hub_tx.clone(), counts.clone());
                // Admitted together or not at all (a refused tracked future
                // is dropped with the other one's guard).
                let (Ok(reader), Ok(writer)) = (
                    readers.track_named(format!("reader-{peer}"), read),
                    writers.guard_named(format!("writer-{peer}")),
                ) else {
                    break;
                };
                counts.connections.fetch_add(1, Ordering::Relaxed);
                let _ = hub_tx.send(Event::Join(id, tx));
                tokio::spawn(write_loop(writer, write_half, rx, counts.clone()));
                tokio::spawn(reader);
                id += 1;
            }
            drop(guard);
        });
    }
    let clients: Vec<_> = (0..config.clients)
        .map(|i| tokio::spawn(client(i, addr, counts.clone())))
        .collect();
    let _ = tokio::time::timeout(
        Duration::from_secs_f64(config.seconds),
        root.wait_triggered_async(),
    )
    .await;
    root.trigger_with_reason("run time over");
    let (grace, hard) = (
        Duration::from_secs_f64(config.grace),
        Duration::from_secs_f64(config.hard),
    );
    // The grace, then the forced phase (its timer starts when it begins).
    // A zero grace forces at once (a zero `sleep` waits for the timer's next
    // tick).
    let grace = async move {
        if !grace.is_zero() {
            tokio::time::sleep(grace).await;
        }
    };
    let result = root
        .shutdown_phased_async(grace, || tokio::time::sleep(hard))
        .await;
    // The clients add what they sent once they have read their goodbye and
    // finished: wait for them (bounded) before the counts are read, or a
    // slow machine reports messages as lost that were only not yet counted.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for client in clients {
            let _ = client.await;
        }
    })
    .await;
    Ok((counts, result))
}

async fn read_loop(
    read: tokio::net::tcp::OwnedReadHalf,
    id: u64,
    hub: mpsc::UnboundedSender<Event>,
    counts: Arc<Counts>,
) {
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        counts.read.fetch_add(1, Ordering::Relaxed);
        if hub.send(Event::Message(id, line)).is_err() {
            break;
        }
    }
}

async fn write_loop(
    guard: Guard,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<String>,
    counts: Arc<Counts>,
) {
    let mut told = false;
    // Created once, not per message: each new trigger future that finds the
    // latch untriggered registers (and allocates) a listener.
    let stop = guard.wait_triggered_async();
    tokio::pin!(stop);
    let forced = guard.wait_forced_async();
    tokio::pin!(forced);
    loop {
        tokio::select! {
            _ = &mut stop, if !told => {
                told = true;
                if write.write_all(b"draining\n").await.is_err() { return; }
            }
            _ = &mut forced, if told => {
                // The second phase: discard what is queued and still routed
                // here instead of writing it (counted, so nothing is lost
                // unaccounted).
                while rx.recv().await.is_some() {
                    counts.abandoned.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            line = rx.recv() => match line {
                Some(line) => {
                    if write.write_all(format!("{line}\n").as_bytes()).await.is_err() { return; }
                }
                None => break,
            },
        }
    }
    if !told {
        let _ = write.write_all(b"draining\n").await;
    }
    let _ = write.write_all(b"goodbye\n").await;
    let _ = write.flush().await;
    drop(guard);
}

async fn run_hub(mut rx: mpsc::UnboundedReceiver<Event>, counts: Arc<Counts>) {
    let mut writers = HashMap::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Join(id, tx) => {
                writers.insert(id, tx);
            }
            Event::Message(from, line) => {
                for (&to, tx) in &writers {
                    if to != from && tx.send(line.clone()).is_ok() {
                        counts.routed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    drop(writers);
}

async fn client(i: usize, addr: std::net::SocketAddr, counts: Arc<Counts>) {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return;
    };
    let (read, mut write) = stream.into_split();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = tick.tick() => {
                    if write.write_all(format!("msg from client {i} #{sent}\n").as_bytes()).await.is_err() { break; }
                    sent += 1;
                }
            }
        }
        let _ = write.shutdown().await;
        sent
    });
    let mut stop = Some(stop_tx);
    let mut delivered = 0;
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match line.as_str() {
            "draining" => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            "goodbye" => {
                counts.goodbyes.fetch_add(1, Ordering::Relaxed);
                break;
            }
            _ => delivered += 1,
        }
    }
    drop(stop);
    counts
        .sent
        .fetch_add(sender.await.unwrap_or(0), Ordering::Relaxed);
    counts.delivered.fetch_add(delivered, Ordering::Relaxed);
}

#[allow(dead_code)]
fn main() {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!(
                "hub_async: {e}\nusage: hub_async [--clients N] [--seconds S] [--grace S] [--hard S]"
            );
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (counts, result) = rt.block_on(run(&config)).expect("hub_async");
    let (sent, read) = (
        counts.sent.load(Ordering::Relaxed),
        counts.read.load(Ordering::Relaxed),
    );
    let (routed, delivered, abandoned) = (
        counts.routed.load(Ordering::Relaxed),
        counts.delivered.load(Ordering::Relaxed),
        counts.abandoned.load(Ordering::Relaxed),
    );
    let lost = sent != read || routed != delivered + abandoned;
    println!(
        "hub_async: {} clients for {:.1}s",
        config.clients, config.seconds
    );
    println!(
        "  connections  {}",
        counts.connections.load(Ordering::Relaxed)
    );
    println!(
        "  messages     sent {sent}, read {read}, routed {routed}, delivered {delivered}{}{}",
        if abandoned > 0 {
            format!(", abandoned when forced {abandoned}")
        } else {
            String::new()
        },
        match (lost, abandoned > 0) {
            (true, _) => " (LOST MESSAGES)",
            (false, true) => " (every copy delivered or abandoned on purpose)",
            (false, false) => " (nothing lost)",
        }
    );
    match &result {
        Ok(report) => println!("  shutdown     {report}"),
        Err(stragglers) => println!("  stragglers   {stragglers}"),
    }
    std::process::exit(if result.is_ok() && !lost { 0 } else { 1 });
}
