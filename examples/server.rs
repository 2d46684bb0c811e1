//! A tokio line-echo server with graceful shutdown and named stragglers,
//! written with quiescent: every connection task runs under a named guard,
//! the acceptor stops at the trigger, and the drain is bounded by a grace
//! period after which the stuck connections are named. Its twin,
//! `server_tokio_util.rs`, does the same with tokio-util.
//!
//! ```sh
//! cargo run --example server   # serves on 127.0.0.1 for 2 s, one client stuck
//! ```
use std::net::SocketAddr;
use std::time::Duration;

use quiescent::{Report, Shutdown, Stragglers};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Serves until `run_for` passes, then drains for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    run_for: Duration,
    grace: Duration,
) -> Result<Report, Stragglers> {
    let shutdown = Shutdown::new();
    let acceptor = shutdown.guard_named("acceptor").expect("fresh");
    let conns = shutdown.child_named("conns").expect("fresh");
    tokio::spawn(async move {
        while let Some(Ok((stream, peer))) = acceptor.run_until_triggered(listener.accept()).await {
            // In-flight connections finish; the drain waits for them.
            let Ok(conn) = conns.track_named(format!("conn {peer}"), echo(stream)) else {
                break;
            };
            tokio::spawn(conn);
        }
    });
    tokio::time::sleep(run_for).await;
    shutdown
        .shutdown_async()
        .until(tokio::time::sleep(grace))
        .await
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
        Ok(report) => println!("{report}"),
        Err(stragglers) => println!("{stragglers}"),
    }
    Ok(())
}
