//! The orchestrator's shutdown, played on loopback against the real demo
//! binary: start, `/ready` 200; a slow and a stuck request in flight; SIGTERM;
//! during the notice `/ready` 503 while `/` is still served; after it, a
//! request on a kept-alive connection gets 503 with `connection: close` and
//! new connections are refused; the slow request completes with 200; the
//! process exits 1 naming `GET /stuck`. Bounded: the child is killed and the
//! test fails if any step takes too long.
#![allow(clippy::disallowed_types)] // a test: std types directly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A response: status and headers (lower-cased names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 response (with a `content-length`) from `stream`.
fn read_response(stream: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let mut line = String::new();
    if stream.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A kept-alive connection.
struct Connection(BufReader<TcpStream>);

impl Connection {
    fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self(BufReader::new(stream)))
    }

    fn get(&mut self, path: &str) -> std::io::Result<Response> {
        write!(
            self.0.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: demo\r\n\r\n"
        )?;
        read_response(&mut self.0)
    }
}

/// One request on a connection of its own.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    Connection::open(addr)?.get(path)
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child if the test fails half way.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[test]
fn an_orchestrators_shutdown_from_sigterm_to_exit() {
    let (done, finished) = mpsc::channel();
    let test = thread::spawn(move || {
        scenario();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => test.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(test.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the scenario took over 60 s"),
    }
}

fn scenario() {
    let child = Command::new(env!("CARGO_BIN_EXE_http-demo"))
        .args(["--notice", "1.5", "--grace", "3", "--hard", "0.5"])
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let mut stdout = BufReader::new(demo.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .trim()
        .parse()
        .unwrap();

    // 1. Ready.
    assert_eq!(get(addr, "/ready").unwrap().status, 200);
    // 2. A slow and a stuck request in flight, and a kept-alive connection.
    let slow = thread::spawn(move || get(addr, "/slow?ms=2500"));
    let stuck = thread::spawn(move || get(addr, "/stuck"));
    let mut kept = Connection::open(addr).unwrap();
    assert_eq!(kept.get("/").unwrap().status, 200);
    thread::sleep(Duration::from_millis(200)); // let both requests arrive
                                               // 3. SIGTERM.
    let pid = demo.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // 4. The notice: not ready, still serving, on new connections too.
    eventually("/ready turns 503", || {
        get(addr, "/ready").is_ok_and(|r| r.status == 503)
    });
    let served = get(addr, "/").unwrap();
    assert_eq!((served.status, served.body.as_str()), (200, "ok\n"));
    // 5. After the notice: 503 with `connection: close` on the kept-alive
    //    connection, and no new connection accepted.
    let mut refused = None;
    eventually("a request on a kept-alive connection is refused", || {
        let response = kept.get("/").unwrap();
        let done = response.status == 503;
        if done {
            refused = Some(response);
        }
        done
    });
    let refused = refused.unwrap();
    assert_eq!(refused.header("connection"), Some("close"), "{refused:?}");
    eventually("the listener closes", || get(addr, "/").is_err());
    // 6. The slow request completes.
    let slow = slow.join().unwrap().unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (200, "slept 2500 ms\n"));
    // 7. Exit 1, naming the stuck request.
    let status = demo.0.wait().unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    demo.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("triggered (SIGTERM): listener closed"),
        "{out}"
    );
    assert!(
        out.contains("gave up: 1 guard still held") && out.contains("\"GET /stuck\" ("),
        "{out}\n{err}"
    );
    assert!(
        err.contains("SIGTERM: stopping in 1.5s (announced"),
        "{err}"
    );
    assert!(err.contains("SIGTERM: notice over, shutting down"), "{err}");
    // The stuck request's connection was dropped with the process.
    assert!(stuck.join().unwrap().is_err());
}
