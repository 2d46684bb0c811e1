//! The `systemd` feature: the messages a latch sends to a real datagram
//! socket bound where `NOTIFY_SOCKET` says, at a path and at an abstract
//! address; nothing sent, and nothing failing, when it is unset. One test,
//! in a binary of its own: `NOTIFY_SOCKET` is process-wide.
#![cfg(all(feature = "systemd", target_os = "linux"))]

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use quiescent::Shutdown;

/// The next message on `socket`, or `None` within 200 ms.
fn next(socket: &UnixDatagram) -> Option<String> {
    let mut buf = vec![0; 64 * 1024];
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8(buf[..n].to_vec()).unwrap())
}

/// Every stage, told to the socket at `NOTIFY_SOCKET`.
fn stages(socket: &UnixDatagram) {
    let shutdown = Shutdown::new();
    assert!(shutdown.notify_systemd());
    assert_eq!(next(socket), None, "nothing before the first stage");
    let request = shutdown.guard_named("GET /stuck").unwrap();
    shutdown.announce();
    let announced = next(socket).unwrap();
    assert!(
        announced.starts_with("STOPPING=1\nSTATUS=stopping soon"),
        "{announced:?}"
    );
    assert!(
        announced.ends_with('\n') && announced.lines().count() == 2,
        "{announced:?}"
    );
    shutdown.trigger_with_reason("SIGTERM\nwith a newline");
    let triggered = next(socket).unwrap();
    assert_eq!(
        triggered,
        "STOPPING=1\nSTATUS=shutting down (SIGTERM with a newline): draining 1 guards\n"
    );
    shutdown.force();
    assert_eq!(
        next(socket).unwrap(),
        "STOPPING=1\nSTATUS=forcing: 1 guards still held\n"
    );
    let stragglers = shutdown.wait_drained_timeout(Duration::ZERO).unwrap_err();
    let gave_up = next(socket).unwrap();
    let one_line = |text: String| text.replace('\n', " ");
    assert_eq!(
        gave_up,
        format!(
            "STOPPING=1\nSTATUS=gave up: {}\n",
            one_line(stragglers.to_string())
        )
    );
    assert!(gave_up.contains("\"GET /stuck\" ("), "{gave_up}");
    // Polled again: the manager is told once.
    assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_err());
    assert_eq!(next(socket), None);
    drop(request);
    let report = shutdown.wait_drained();
    assert_eq!(
        next(socket).unwrap(),
        format!("STOPPING=1\nSTATUS={}\n", one_line(report.to_string()))
    );
    assert!(report.to_string().starts_with("drained "));
    // A latch triggered before it is told says where it is at once.
    let late = Shutdown::new();
    late.trigger();
    assert!(late.notify_systemd());
    assert_eq!(
        next(socket).unwrap(),
        "STOPPING=1\nSTATUS=shutting down: draining 0 guards\n"
    );
}

#[test]
fn the_stages_reach_notify_socket_at_a_path_and_an_abstract_address() {
    common::bounded(30, || {
        // Unset: nothing to tell, nothing fails.
        std::env::remove_var("NOTIFY_SOCKET");
        let quiet = Shutdown::new();
        assert!(!quiet.notify_systemd());
        quiet.trigger();
        std::env::set_var("NOTIFY_SOCKET", "");
        assert!(!Shutdown::new().notify_systemd());

        // A path.
        let dir = std::env::temp_dir().join(format!("quiescent-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        stages(&socket);
        drop(socket);
        std::fs::remove_dir_all(&dir).unwrap();

        // An abstract address (`@name`).
        let name = format!("quiescent-sd-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        stages(&socket);

        // The manager gone: sends fail quietly.
        drop(socket);
        let orphan = Shutdown::new();
        assert!(orphan.notify_systemd());
        orphan.announce();
        orphan.trigger();
        assert!(orphan.wait_drained_timeout(Duration::ZERO).is_ok());
        std::env::remove_var("NOTIFY_SOCKET");
    });
}
