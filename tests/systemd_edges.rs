//! Found by an adversarial review: the systemd feature's messages against what systemd's
//! manager actually accepts (src/core/manager.c: a datagram of
//! NOTIFY_BUFFER_MAX = PIPE_BUF = 4096 bytes or more is ignored whole, one
//! with an embedded NUL is ignored whole, and assignments are split on
//! "\n\r", i.e. CR is a line separator too). Tests are serialized: NOTIFY_SOCKET
//! is process-wide.
#![cfg(all(feature = "systemd", target_os = "linux"))]
#![allow(clippy::disallowed_types)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::Duration;

use quiescent::Shutdown;

static SERIAL: Mutex<()> = Mutex::new(());

const SYSTEMD_NOTIFY_BUFFER_MAX: usize = 4096;

struct Sock {
    socket: UnixDatagram,
    dir: std::path::PathBuf,
}

impl Drop for Sock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bind(tag: &str) -> Sock {
    let dir = std::env::temp_dir().join(format!("adv-sd-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);
    Sock { socket, dir }
}

fn next(socket: &UnixDatagram) -> Option<Vec<u8>> {
    let mut buf = vec![0; 1 << 20];
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let n = socket.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// What systemd's manager makes of one datagram: `None` if it ignores it
/// whole, else the assignments (split on "\n\r", empty ones dropped).
fn systemd_parse(msg: &[u8]) -> Option<Vec<String>> {
    if msg.len() >= SYSTEMD_NOTIFY_BUFFER_MAX {
        return None;
    }
    if msg.len() > 1 && msg[..msg.len() - 1].contains(&0) {
        return None;
    }
    let text = String::from_utf8_lossy(msg);
    Some(
        text.split(['\n', '\r'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// A reason with a carriage return injects a second assignment: systemd
/// splits on CR as well as LF. The docs promise one STATUS line.
#[test]
fn adv_sd_carriage_return_in_reason_injects_an_assignment() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("cr");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        shutdown.trigger_with_reason("upstream said\rREADY=1\rMAINPID=1");
        let msg = next(&sock.socket).expect("a message");
        let tags = systemd_parse(&msg).expect("accepted");
        eprintln!("systemd sees: {tags:?}");
        assert!(
            !tags.iter().any(|t| t == "READY=1" || t == "MAINPID=1"),
            "STATUS is not one line for systemd: injected assignments {tags:?}"
        );
    });
}

/// A reason with a NUL byte: systemd ignores the whole datagram, so
/// STOPPING=1 is lost with the status.
#[test]
fn adv_sd_nul_in_reason_loses_stopping() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("nul");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        shutdown.trigger_with_reason("bad\0input");
        let msg = next(&sock.socket).expect("a message");
        let tags = systemd_parse(&msg);
        assert!(
            tags.as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "STOPPING=1")),
            "systemd ignores the datagram (embedded NUL): STOPPING=1 lost; raw {:?}",
            String::from_utf8_lossy(&msg)
        );
    });
}

/// A long reason (5,000 bytes): the datagram exceeds systemd's 4096-byte
/// buffer and is ignored whole: STOPPING=1 lost.
#[test]
fn adv_sd_long_reason_loses_stopping() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("long");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        shutdown.trigger_with_reason("x".repeat(5_000));
        let msg = next(&sock.socket).expect("a message");
        assert!(
            systemd_parse(&msg).is_some(),
            "datagram of {} bytes >= {SYSTEMD_NOTIFY_BUFFER_MAX}: systemd ignores it, STOPPING=1 lost",
            msg.len()
        );
    });
}

/// A huge reason (1 MiB): the send fails (EMSGSIZE) and nothing at all is
/// sent, not even STOPPING=1.
#[test]
fn adv_sd_huge_reason_sends_nothing() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("huge");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        shutdown.trigger_with_reason("y".repeat(1 << 20));
        let msg = next(&sock.socket);
        assert!(
            msg.is_some(),
            "a 1 MiB reason: no datagram at all reached NOTIFY_SOCKET (STOPPING=1 lost)"
        );
    });
}

/// Even the bounded Display (DISPLAY_LIMIT names of DISPLAY_TEXT chars)
/// is too big for systemd when the names are 4-byte characters.
#[test]
fn adv_sd_gave_up_status_over_systemd_limit() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("gaveup");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        let guards: Vec<_> = (0..quiescent::DISPLAY_LIMIT)
            .map(|i| {
                shutdown
                    .guard_named(format!("{i}{}", "𝄞".repeat(200)))
                    .unwrap()
            })
            .collect();
        shutdown.trigger();
        let _ = next(&sock.socket); // shutting down
        assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_err());
        let msg = next(&sock.socket).expect("gave up message");
        drop(guards);
        assert!(
            systemd_parse(&msg).is_some(),
            "gave-up STATUS of {} bytes: systemd ignores it",
            msg.len()
        );
    });
}

/// A receiver that does not read (a stuck manager, or NOTIFY_SOCKET
/// pointing at some other program's datagram socket): the blocking send
/// makes `announce()` / `trigger()` hang. "Best effort ... nothing here fails
/// the caller."
#[test]
fn adv_sd_unread_socket_blocks_trigger() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sock = bind("full");
    let result = std::panic::catch_unwind(|| {
        common::bounded(10, || {
            for i in 0..64 {
                let s = Shutdown::new();
                assert!(s.notify_systemd());
                s.announce();
                s.trigger();
                if i % 8 == 0 {
                    eprintln!("latch {i} told");
                }
            }
        })
    });
    // Unblock the stuck thread before failing, so the process can exit.
    sock.socket.set_nonblocking(true).unwrap();
    let mut buf = vec![0; 65536];
    for _ in 0..1000 {
        let _ = sock.socket.recv(&mut buf);
    }
    std::env::remove_var("NOTIFY_SOCKET");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The last STATUS must be the last stage: a drain observed by a Triggered
/// waker (inline) sends "drained", then the trigger sends "shutting down"
/// after it.
#[test]
fn adv_sd_status_goes_back_after_drained_inline_waker() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(20, || {
        let sock = bind("stale");
        let shutdown = Shutdown::new();
        assert!(shutdown.notify_systemd());
        let s2 = shutdown.clone();
        let fut = async move {
            s2.wait_triggered_async().await;
            // An inline executor: the task drains as soon as it is woken.
            assert!(s2.try_wait_drained().is_some());
        };
        let task = common::Inline::start(fut, false);
        shutdown.trigger();
        assert!(task.is_gone());
        let mut msgs = Vec::new();
        while let Some(m) = next(&sock.socket) {
            msgs.push(String::from_utf8(m).unwrap());
        }
        eprintln!("{msgs:#?}");
        let last = msgs.last().unwrap();
        assert!(
            last.contains("drained"),
            "the last STATUS is not the drain's: {msgs:?}"
        );
    });
}

/// The same race with threads, no waker trickery: one thread blocks in
/// wait_drained (no guards), another triggers. Count rounds where the last
/// STATUS systemd keeps says "shutting down: draining" after "drained".
#[test]
fn adv_sd_status_goes_back_after_drained_threads() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(60, || {
        let sock = bind("stale2");
        let rounds = 300;
        let mut stale = 0;
        for _ in 0..rounds {
            let shutdown = Shutdown::new();
            assert!(shutdown.notify_systemd());
            let s2 = shutdown.clone();
            let drainer = std::thread::spawn(move || {
                s2.wait_drained();
            });
            std::thread::sleep(Duration::from_micros(300));
            shutdown.trigger();
            drainer.join().unwrap();
            let mut msgs = Vec::new();
            sock.socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let mut buf = vec![0; 65536];
            while let Ok(n) = sock.socket.recv(&mut buf) {
                msgs.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            if !msgs.last().is_some_and(|m| m.contains("drained")) {
                stale += 1;
                if stale == 1 {
                    eprintln!("stale example: {msgs:?}");
                }
            }
        }
        eprintln!("stale final status in {stale}/{rounds} rounds");
        assert_eq!(stale, 0, "stale final status in {stale}/{rounds} rounds");
    });
}

/// announce racing trigger: the announce's "stopping soon ... still
/// admitting" can land after the trigger's "shutting down".
#[test]
fn adv_sd_announce_vs_trigger_status_order() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(60, || {
        let sock = bind("order");
        let rounds = 2000;
        let mut stale = 0;
        for _ in 0..rounds {
            let shutdown = Shutdown::new();
            assert!(shutdown.notify_systemd());
            let s2 = shutdown.clone();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let b2 = barrier.clone();
            let t = std::thread::spawn(move || {
                b2.wait();
                s2.announce();
            });
            barrier.wait();
            shutdown.trigger();
            t.join().unwrap();
            let mut msgs = Vec::new();
            sock.socket.set_nonblocking(true).unwrap();
            let mut buf = vec![0; 65536];
            while let Ok(n) = sock.socket.recv(&mut buf) {
                msgs.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            if msgs.last().is_some_and(|m| m.contains("stopping soon")) {
                stale += 1;
                if stale == 1 {
                    eprintln!("stale example: {msgs:?}");
                }
            }
        }
        eprintln!("final STATUS 'stopping soon' after trigger in {stale}/{rounds} rounds");
        assert_eq!(stale, 0);
    });
}

/// NOTIFY_SOCKET set but not an address a socket can send to (too long for
/// `sun_path`): `notify_systemd` says false, as its docs say ("set to an
/// address a socket can send to"), and nothing fails; a relative path is an
/// address (sends to it simply fail).
#[test]
fn adv_sd_notify_socket_set_but_unusable() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("NOTIFY_SOCKET", format!("/{}", "a".repeat(200)));
    let long = Shutdown::new();
    let set = long.notify_systemd();
    long.trigger();
    std::env::set_var("NOTIFY_SOCKET", "garbage-relative");
    let rel = Shutdown::new().notify_systemd();
    std::env::remove_var("NOTIFY_SOCKET");
    assert!(!set, "a path too long for a socket address is not usable");
    assert!(rel, "a relative path is an address");
}
