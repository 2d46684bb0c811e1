//! The demo: a loopback chat hub that shuts down cleanly, on a deadline, with
//! nothing lost and every straggler named.
//!
//! A TCP server on 127.0.0.1 gives each connection one reader thread and one
//! writer thread. The writer owns the socket's write half and is fed by a
//! channel (the single-writer pattern that avoids gorilla/websocket's
//! "concurrent write to websocket connection", B7). A hub thread broadcasts
//! every message to the other connections. In-process clients generate load.
//!
//! Every component holds a guard of its own child latch under one root
//! `Shutdown`. When the run ends (`--seconds`, or Ctrl-C with the `signal`
//! feature) the root is triggered and the shutdown goes in order:
//! the acceptor stops; each writer tells its client "draining", the client
//! stops sending and half-closes, so the reader reads everything and exits;
//! when the readers are gone the hub has routed every message and lets the
//! writers go; each writer flushes its queue and says "goodbye" once.
//! `shutdown_timeout(--grace)` then reports, or names who is stuck.
//!
//! ```sh
//! cargo run --release --example hub
//! cargo run --release --example hub -- --clients 16 --seconds 5
//! cargo run --release --example hub -- --stuck    # a guard that never lets go
//! cargo run --release --example hub -- --panic    # a handler that panics
//! ```
//!
//! Exit status: 0 when drained with nothing lost and no panic; 1 when
//! stragglers remain, a handler panicked, or messages were lost (the last line
//! says which); 2 on bad flags.
#![allow(clippy::disallowed_types)] // an application: std types directly

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown as Half, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use quiescent::{Guard, Shutdown, Stragglers};

/// Command-line settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// In-process clients generating load.
    pub clients: usize,
    /// Run time before the shutdown is triggered.
    pub seconds: f64,
    /// How long the shutdown may take before it is forced.
    pub grace: f64,
    /// How long the forced (second) phase may take before stragglers are
    /// named.
    pub hard: f64,
    /// Leave one named guard hanging.
    pub stuck: bool,
    /// Make one connection handler panic.
    pub panic: bool,
}

/// The help text.
pub const USAGE: &str =
    "usage: hub [--clients N] [--seconds S] [--grace S] [--hard S] [--stuck] [--panic]
  --clients N   in-process clients generating load (default 8, 1..=256)
  --seconds S   how long to run before shutting down (default 3)
  --grace S     how long the shutdown may take before it is forced (default 2)
  --hard S      how long the forced phase may take before stragglers are named (default 1)
  --stuck       leave one named guard hanging, to show the straggler report
  --panic       make one connection handler panic, to show it is reported and still drained";

impl Default for Config {
    fn default() -> Self {
        Self {
            clients: 8,
            seconds: 3.0,
            grace: 2.0,
            hard: 1.0,
            stuck: false,
            panic: false,
        }
    }
}

/// Parses the flags (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--clients" => {
                let v = value("--clients")?;
                config.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| {
                        format!("--clients takes a whole number from 1 to 256, not {v:?}")
                    })?;
            }
            "--seconds" | "--grace" | "--hard" => {
                let v = value(&flag)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && (0.0..=3600.0).contains(s))
                    .ok_or_else(|| format!("{flag} takes seconds from 0 to 3600, not {v:?}"))?;
                match flag.as_str() {
                    "--seconds" => config.seconds = secs,
                    "--grace" => config.grace = secs,
                    _ => config.hard = secs,
                }
            }
            "--stuck" => config.stuck = true,
            "--panic" => config.panic = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(config)
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Connections accepted.
    pub connections: usize,
    /// Lines the clients wrote.
    pub sent: u64,
    /// Lines the server's readers read.
    pub read: u64,
    /// Copies the hub queued for writers (each message to every other client).
    pub routed: u64,
    /// Copies the clients received.
    pub delivered: u64,
    /// Copies a writer dropped because the shutdown was forced before it
    /// could write them (the second phase: abandon in-flight work).
    pub abandoned: u64,
    /// Goodbyes the clients received (one per connection).
    pub goodbyes: u64,
    /// Per component, in shutdown order: name and time from trigger to drained.
    pub stages: Vec<(&'static str, Option<Duration>)>,
    /// The root's bounded drain.
    pub result: Result<quiescent::Report, Stragglers>,
    /// How long the hub served before the trigger (less than asked for when
    /// a signal came first).
    pub served: Duration,
    /// Every client finished and reported its counts; otherwise the message
    /// counts are incomplete and say nothing about loss.
    pub clients_done: bool,
}

impl Outcome {
    /// Every line sent was read, and every copy routed was delivered.
    pub fn nothing_lost(&self) -> bool {
        self.sent == self.read && self.routed == self.delivered + self.abandoned
    }

    /// Guards dropped by a panicking thread, whether or not the drain
    /// completed.
    pub fn panicked(&self) -> usize {
        match &self.result {
            Ok(report) => report.panicked,
            Err(stragglers) => stragglers.panicked,
        }
    }

    /// Why the run failed, if it did: stragglers, a panic, lost messages.
    pub fn failure(&self) -> Option<String> {
        if let Err(stragglers) = &self.result {
            return Some(format!("{} guard(s) still held", stragglers.remaining));
        }
        if self.panicked() > 0 {
            return Some(format!("{} handler(s) panicked", self.panicked()));
        }
        if self.clients_done && !self.nothing_lost() {
            return Some("messages were lost".into());
        }
        None
    }

    /// 0 when drained with nothing lost and no panic, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failure().is_some())
    }
}

enum Event {
    Join(u64, mpsc::Sender<String>),
    Message(u64, String),
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    read: AtomicU64,
    routed: AtomicU64,
    delivered: AtomicU64,
    abandoned: AtomicU64,
    goodbyes: AtomicU64,
    connections: AtomicU64,
}

/// The server's latches: one root, one child per component.
struct Latches {
    root: Shutdown,
    acceptor: Shutdown,
    readers: Shutdown,
    hub: Shutdown,
    writers: Shutdown,
}

impl Latches {
    fn new(root: Shutdown) -> Self {
        let child = || root.child().expect("not triggered yet");
        Self {
            acceptor: child(),
            readers: child(),
            hub: child(),
            writers: child(),
            root,
        }
    }
}

/// Runs the demo with `config` under `root` (which `main` connects to
/// Ctrl-C with the `signal` feature); the caller prints and exits.
pub fn run(config: &Config, root: Shutdown) -> std::io::Result<Outcome> {
    let latches = Latches::new(root);
    let counters = Arc::new(Counters::default());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (hub_tx, hub_rx) = mpsc::channel();

    let hub_guard = latches.hub.guard_named("hub").expect("fresh latch");
    let hub = {
        let counters = counters.clone();
        thread::spawn(move || run_hub(hub_guard, hub_rx, &counters))
    };
    let acceptor = {
        let guard = latches
            .acceptor
            .guard_named("acceptor")
            .expect("fresh latch");
        let (readers, writers) = (latches.readers.clone(), latches.writers.clone());
        let counters = counters.clone();
        let panic_first = config.panic;
        thread::spawn(move || {
            accept(
                guard,
                listener,
                &hub_tx,
                &readers,
                &writers,
                &counters,
                panic_first,
            )
        })
    };
    if config.stuck {
        // A worker that never looks at the latch: it will be named.
        let guard = latches
            .root
            .guard_named("stuck-worker")
            .expect("fresh latch");
        thread::spawn(move || {
            let _guard = guard;
            thread::sleep(Duration::from_secs(3600));
        });
    }

    let load = Shutdown::new();
    let clients: Vec<_> = (0..config.clients)
        .map(|i| {
            let counters = counters.clone();
            load.spawn(move |_| client(i, addr, &counters))
                .expect("fresh latch")
        })
        .collect();

    // Run for the given time, or until a signal triggers the root earlier.
    let start = Instant::now();
    latches
        .root
        .wait_triggered_timeout(Duration::from_secs_f64(config.seconds));
    latches.root.trigger_with_reason("run time over");
    let triggered = Instant::now();
    let served = triggered - start;
    let grace = Duration::from_secs_f64(config.grace);
    let mut stages = Vec::new();
    for (name, latch) in [
        ("acceptor", &latches.acceptor),
        ("readers", &latches.readers),
        ("hub", &latches.hub),
        ("writers", &latches.writers),
    ] {
        let left = grace.saturating_sub(triggered.elapsed());
        let drained = latch.wait_drained_timeout(left).ok();
        stages.push((name, drained.map(|_| triggered.elapsed())));
    }
    // What is left of the grace, then the forced phase: writers still
    // behind drop their queued messages instead of writing them.
    let result = latches.root.shutdown_phased(
        grace.saturating_sub(triggered.elapsed()),
        Duration::from_secs_f64(config.hard),
    );
    // The clients count what they sent and received when they finish; the
    // server keeps draining past a grace that ran out, so give them a moment
    // either way, and say so if they still are not done.
    load.trigger();
    let clients_done = load.wait_drained_timeout(Duration::from_secs(5)).is_ok();
    for c in clients {
        if clients_done {
            let _ = c.join();
        }
    }
    if result.is_ok() {
        let _ = acceptor.join();
        let _ = hub.join();
    }
    Ok(Outcome {
        connections: counters.connections.load(Ordering::Relaxed) as usize,
        sent: counters.sent.load(Ordering::Relaxed),
        read: counters.read.load(Ordering::Relaxed),
        routed: counters.routed.load(Ordering::Relaxed),
        delivered: counters.delivered.load(Ordering::Relaxed),
        abandoned: counters.abandoned.load(Ordering::Relaxed),
        goodbyes: counters.goodbyes.load(Ordering::Relaxed),
        stages,
        result,
        served,
        clients_done,
    })
}

fn accept(
    guard: Guard,
    listener: TcpListener,
    hub: &mpsc::Sender<Event>,
    readers: &Shutdown,
    writers: &Shutdown,
    counters: &Arc<Counters>,
    mut panic_next: bool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut next_id = 0u64;
    while !guard.is_triggered() {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                guard.wait_triggered_timeout(Duration::from_millis(2));
                continue;
            }
            Err(e) => return Err(e),
        };
        stream.set_nonblocking(false)?;
        let id = next_id;
        next_id += 1;
        // Both guards are admitted here, before the threads exist; if the
        // shutdown started meanwhile, the connection is refused politely.
        let (Ok(reader), Ok(writer)) = (
            readers.guard_named(format!("reader-{peer}")),
            writers.guard_named(format!("writer-{peer}")),
        ) else {
            let _ = (&stream).write_all(b"goodbye\n");
            break;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let _ = hub.send(Event::Join(id, tx));
        let write_half = stream.try_clone()?;
        let abandoned = counters.clone();
        thread::spawn(move || write_loop(writer, write_half, rx, &abandoned));
        let (hub, counters) = (hub.clone(), counters.clone());
        let panics = std::mem::take(&mut panic_next);
        thread::spawn(move || read_loop(reader, stream, id, hub, &counters, panics));
    }
    Ok(())
}

/// One connection's reader: every line to the hub, until the client
/// half-closes (it does so once its writer has said "draining").
fn read_loop(
    guard: Guard,
    stream: TcpStream,
    id: u64,
    hub: mpsc::Sender<Event>,
    counters: &Counters,
    panics: bool,
) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        counters.read.fetch_add(1, Ordering::Relaxed);
        if hub.send(Event::Message(id, line)).is_err() {
            break;
        }
    }
    if panics {
        // After forwarding everything: the panic loses no message, and the
        // guard, released while unwinding, is counted as panicked.
        panic!(
            "deliberate panic in {}'s cleanup (--panic)",
            guard.name().unwrap_or("reader")
        );
    }
    drop(guard);
}

/// One connection's single writer: owns the write half, fed by the hub.
fn write_loop(
    guard: Guard,
    mut stream: TcpStream,
    rx: mpsc::Receiver<String>,
    counters: &Counters,
) {
    let mut told = false;
    loop {
        if !told && guard.is_triggered() {
            told = true;
            if stream.write_all(b"draining\n").is_err() {
                return;
            }
        }
        if guard.is_forced() {
            // The second phase: discard what is queued, and what the hub
            // still routes here, instead of writing it (counted, so that
            // "nothing lost" stays exact). The client was told to stop.
            let dropped = rx.iter().count() as u64;
            counters.abandoned.fetch_add(dropped, Ordering::Relaxed);
            break;
        }
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => {
                if writeln!(stream, "{line}").is_err() {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The hub is done: every message for this client is written.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if !told {
        let _ = stream.write_all(b"draining\n");
    }
    let _ = stream.write_all(b"goodbye\n");
    let _ = stream.flush();
    drop(guard);
}

/// The hub: routes every message to every other connection. It runs until
/// the acceptor and all readers have dropped their senders, so everything
/// read is routed before the writers are let go.
fn run_hub(guard: Guard, rx: mpsc::Receiver<Event>, counters: &Counters) {
    let mut writers: HashMap<u64, mpsc::Sender<String>> = HashMap::new();
    for event in rx {
        match event {
            Event::Join(id, tx) => {
                writers.insert(id, tx);
            }
            Event::Message(from, line) => {
                for (&to, tx) in &writers {
                    if to != from && tx.send(line.clone()).is_ok() {
                        counters.routed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    drop(writers);
    drop(guard);
}

/// A client: sends a line every millisecond until the server says
/// "draining", then half-closes and reads until "goodbye".
fn client(i: usize, addr: std::net::SocketAddr, counters: &Counters) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    let mut write = stream.try_clone().expect("clone a socket");
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let draining = draining.clone();
        thread::spawn(move || {
            let mut sent = 0u64;
            while !draining.load(Ordering::Acquire) {
                if writeln!(write, "msg from client {i} #{sent}").is_err() {
                    break;
                }
                sent += 1;
                thread::sleep(Duration::from_millis(1));
            }
            let _ = write.shutdown(Half::Write);
            sent
        })
    };
    let mut delivered = 0;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        match line.as_str() {
            "draining" => draining.store(true, Ordering::Release),
            "goodbye" => {
                counters.goodbyes.fetch_add(1, Ordering::Relaxed);
                break;
            }
            _ => delivered += 1,
        }
    }
    draining.store(true, Ordering::Release);
    let sent = sender.join().unwrap_or(0);
    counters.sent.fetch_add(sent, Ordering::Relaxed);
    counters.delivered.fetch_add(delivered, Ordering::Relaxed);
}

/// Prints the report.
pub fn print(config: &Config, outcome: &Outcome) {
    println!(
        "hub: {} clients for {:.1}s, grace {:.1}s",
        config.clients,
        outcome.served.as_secs_f64(),
        config.grace
    );
    println!("  connections  {}", outcome.connections);
    println!(
        "  messages     sent {}, read by the server {}, copies routed {}, delivered {}{}{}",
        outcome.sent,
        outcome.read,
        outcome.routed,
        outcome.delivered,
        if outcome.abandoned > 0 {
            format!(", abandoned when forced {}", outcome.abandoned)
        } else {
            String::new()
        },
        match (outcome.clients_done, outcome.nothing_lost()) {
            (false, _) => " (clients still running: counts incomplete)",
            (true, true) if outcome.abandoned > 0 => {
                " (every copy delivered or abandoned on purpose)"
            }
            (true, true) => " (nothing lost)",
            (true, false) => " (LOST MESSAGES)",
        }
    );
    println!("  goodbyes     {}", outcome.goodbyes);
    let stages: Vec<String> = outcome
        .stages
        .iter()
        .map(|(name, at)| match at {
            Some(at) => format!("{name} {:.1?}", at),
            None => format!("{name} still busy"),
        })
        .collect();
    println!("  drained      {} (time from trigger)", stages.join(", "));
    match &outcome.result {
        Ok(report) => {
            println!("  shutdown     {report}");
            println!("  panicked     {}", report.panicked);
            println!("  stragglers   none");
        }
        Err(stragglers) => {
            println!("  panicked     {}", stragglers.panicked);
            println!("  stragglers   {stragglers}");
        }
    }
    if let Some(why) = outcome.failure() {
        println!("  exit         1: {why}");
    }
}

#[allow(dead_code)] // unused when the tests include this file as a module
fn main() {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                std::process::exit(0);
            }
            eprintln!("hub: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if config.panic {
        // Keep the output readable: the panic is expected and reported below.
        std::panic::set_hook(Box::new(|info| eprintln!("(expected) {info}")));
    }
    let root = Shutdown::new();
    #[cfg(all(feature = "signal", unix))]
    if let Err(e) = root.trigger_on_signals() {
        eprintln!("hub: cannot listen for Ctrl-C: {e}");
    }
    match run(&config, root) {
        Ok(outcome) => {
            print(&config, &outcome);
            std::process::exit(outcome.exit_code());
        }
        Err(e) => {
            eprintln!("hub: {e}");
            std::process::exit(1);
        }
    }
}
