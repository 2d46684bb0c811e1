//! An HTTP service shut down the way an orchestrator (Kubernetes, systemd)
//! expects, with quiescent:
//!
//! 1. SIGTERM **announces**: `GET /ready` turns 503 (load balancers stop
//!    sending), and requests are still served;
//! 2. after `--notice` seconds (or a second signal) the latch is
//!    **triggered**: the listener closes, and a request on a connection
//!    still open gets 503 with `connection: close`;
//! 3. requests in flight **drain** within `--grace` seconds, named
//!    `"METHOD /path"` by the layer;
//! 4. then the shutdown is **forced** for `--hard` seconds;
//! 5. exit 0 when drained, or 1 naming the requests still held
//!    (`"GET /stuck"`, with its age).
//!
//! ```sh
//! cargo run --release -p http-demo -- --notice 2 --grace 5 --hard 1
//! ```
//!
//! Routes: `GET /ready`, `GET /` (200), `GET /slow?ms=N` (answers after N
//! ms), `GET /stuck` (never answers by itself).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use quiescent::Shutdown;

/// The flags.
#[derive(Debug)]
struct Config {
    addr: SocketAddr,
    notice: Duration,
    grace: Duration,
    hard: Duration,
}

const USAGE: &str = "usage: http-demo [--addr A] [--notice S] [--grace S] [--hard S]";

fn parse(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config {
        addr: ([127, 0, 0, 1], 0).into(),
        notice: Duration::ZERO,
        grace: Duration::from_secs(10),
        hard: Duration::from_secs(1),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let secs = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=86_400.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("bad value {value:?} for {flag}: seconds, 0 to 86400"))
        };
        match flag.as_str() {
            "--addr" => {
                config.addr = value
                    .parse()
                    .map_err(|e| format!("bad value {value:?} for --addr: {e}"))?
            }
            "--notice" => config.notice = secs()?,
            "--grace" => config.grace = secs()?,
            "--hard" => config.hard = secs()?,
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(config)
}

/// 200 until the shutdown is announced, then 503.
async fn ready(State(shutdown): State<Shutdown>) -> (StatusCode, &'static str) {
    if shutdown.is_announced() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

#[derive(serde::Deserialize)]
struct Slow {
    ms: u64,
}

async fn slow(Query(slow): Query<Slow>) -> String {
    tokio::time::sleep(Duration::from_millis(slow.ms)).await;
    format!("slept {} ms\n", slow.ms)
}

async fn stuck() -> &'static str {
    std::future::pending::<()>().await;
    unreachable!()
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("http-demo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let shutdown = Shutdown::new();
    // Under systemd: STOPPING=1 and a status line at each stage.
    shutdown.notify_systemd();
    // SIGTERM/SIGINT: announce, then trigger after the notice (or at the
    // next signal), then force, then exit.
    if let Err(e) = shutdown.signals().notice(config.notice).install() {
        eprintln!("http-demo: signals: {e}");
        return ExitCode::from(2);
    }
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("http-demo: bind {}: {e}", config.addr);
            return ExitCode::from(2);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("listening on {addr}");
    let app = Router::new()
        .route("/", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/slow", get(slow))
        .route("/stuck", get(stuck))
        .with_state(shutdown.clone())
        // Outside the routes: every request counts, and is refused after
        // the trigger.
        .layer(shutdown.layer().named());
    // The accept loop runs until the trigger; each connection is served in
    // a task of its own, so closing the listener at the trigger leaves the
    // open connections to the layer, which answers their new requests with
    // 503 and `connection: close`. (axum's own graceful shutdown would close
    // idle connections instead, and wait for busy ones without a bound.)
    let mut triggered = std::pin::pin!(shutdown.wait_triggered_async());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
            () = &mut triggered => break,
        }
    }
    drop(listener);
    println!(
        "triggered ({}): listener closed",
        shutdown.reason().unwrap_or_default()
    );
    let hard = config.hard;
    let result = shutdown
        .shutdown_phased_async(tokio::time::sleep(config.grace), move || {
            tokio::time::sleep(hard)
        })
        .await;
    match result {
        Ok(report) => {
            println!("drained: {report}");
            ExitCode::SUCCESS
        }
        Err(stragglers) => {
            println!("gave up: {stragglers}");
            eprintln!("{stragglers:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Config, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_and_bad_ones_say_why() {
        let config = args(&[
            "--addr",
            "127.0.0.1:8080",
            "--notice",
            "2",
            "--grace",
            "0.5",
        ])
        .unwrap();
        assert_eq!(config.addr.port(), 8080);
        assert_eq!(config.notice, Duration::from_secs(2));
        assert_eq!(config.grace, Duration::from_millis(500));
        assert_eq!(config.hard, Duration::from_secs(1));
        assert!(args(&["--grace", "-1"]).unwrap_err().contains("--grace"));
        assert!(args(&["--addr", "nowhere"]).unwrap_err().contains("--addr"));
        assert!(args(&["--bogus", "1"])
            .unwrap_err()
            .contains("unknown flag"));
        assert!(args(&["--notice"]).unwrap_err().contains("needs a value"));
    }
}
