//! `server.rs` again, with tokio-util's `CancellationToken` and
//! `TaskTracker` instead of quiescent: the same line-echo server, graceful
//! shutdown and named stragglers. TaskTracker counts tasks but cannot name
//! them, so the names, sites and ages are kept by hand in a registry that
//! each task must enter and leave, and the drain's deadline is a `timeout`.
//!
//! ```sh
//! cargo run --example server_tokio_util
//! ```
#![allow(clippy::disallowed_types)] // the hand-written registry's Mutex

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Who is still running: name and start, by task id.
#[derive(Clone, Default)]
struct Registry(Arc<Mutex<HashMap<u64, (String, Instant)>>>);

/// Removes its entry when the task ends or is dropped.
struct Entry(Registry, u64);

impl Registry {
    fn enter(&self, id: u64, name: String) -> Entry {
        self.0.lock().unwrap().insert(id, (name, Instant::now()));
        Entry(self.clone(), id)
    }

    fn report(&self, grace: Duration) -> String {
        let entries = self.0.lock().unwrap();
        let mut held: Vec<_> = entries.values().collect();
        held.sort_by_key(|(_, since)| *since);
        let names: Vec<_> = held
            .iter()
            .map(|(name, since)| format!("{name:?} (held {:.1}s)", since.elapsed().as_secs_f64()))
            .collect();
        format!(
            "{} task(s) still running {:.1}s after shutdown: {}",
            held.len(),
            grace.as_secs_f64(),
            names.join(", ")
        )
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.0 .0.lock().unwrap().remove(&self.1);
    }
}

/// Serves until `run_for` passes, then drains for at most `grace`; `Err`
/// names the stragglers.
pub async fn serve(
    listener: TcpListener,
    run_for: Duration,
    grace: Duration,
) -> Result<(), String> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let registry = Registry::default();
    let acceptor = {
        let (token, tracker, registry) = (token.clone(), tracker.clone(), registry.clone());
        tokio::spawn(async move {
            let mut id = 0;
            loop {
                let (stream, peer) = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(conn) => conn,
                        Err(_) => break,
                    },
                };
                // Entered here, not inside the task, so a drain that starts
                // before the task is first polled still sees it.
                let entry = registry.enter(id, format!("conn {peer}"));
                id += 1;
                tracker.spawn(async move {
                    let _entry = entry;
                    let _ = echo(stream).await;
                });
            }
        })
    };
    tokio::time::sleep(run_for).await;
    token.cancel();
    let _ = acceptor.await;
    tracker.close();
    match tokio::time::timeout(grace, tracker.wait()).await {
        Ok(()) => Ok(()),
        Err(_) => Err(registry.report(grace)),
    }
}

/// Echoes lines until the peer closes.
async fn echo(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        write.write_all(format!("{line}\n").as_bytes()).await?;
    }
    Ok(())
}

/// A client that sends one line, reads the echo and stays connected.
pub async fn client(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(b"hello\n").await?;
    let mut line = String::new();
    BufReader::new(&mut stream).read_line(&mut line).await?;
    assert_eq!(line, "hello\n");
    Ok(stream)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(
        listener,
        Duration::from_secs(2),
        Duration::from_millis(500),
    ));
    let _client = client(addr).await?;
    match server.await.expect("server task") {
        Ok(()) => println!("drained"),
        Err(stragglers) => println!("{stragglers}"),
    }
    Ok(())
}
