//! A tiny tokio server shut down by quiescent: binds a listener, serves
//! until the trigger, drains. Uses `tokio::net`, which `--cfg loom` would
//! hide: the reason the models live in `app-loom`.
use std::time::Duration;

use quiescent::Shutdown;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acceptor = shutdown.guard_named("acceptor").unwrap();
    let server = tokio::spawn(async move {
        let accepted = acceptor.run_until_triggered(listener.accept()).await;
        drop(accepted);
    });
    shutdown.trigger();
    let report = shutdown
        .shutdown_async()
        .until(tokio::time::sleep(Duration::from_secs(5)))
        .await
        .expect("drained");
    server.await.unwrap();
    println!("{report}");
}
