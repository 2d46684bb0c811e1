//! The `systemd` feature (Linux): the service manager's notification
//! protocol, sd_notify(3), over the datagram socket `NOTIFY_SOCKET` names.
//!
//! A few lines on std's `UnixDatagram` rather than the `sd-notify` crate:
//! the protocol needs one unbound datagram socket and `send_to`, std has had
//! abstract socket addresses (`@name`) since Rust 1.70, and `sd-notify` 0.5
//! declares Rust 1.82 where this crate supports 1.73.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where the service manager listens, and a socket to send from.
#[derive(Debug)]
pub(crate) struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names, if it is set to a usable
    /// address: a path, or `@name` for an abstract one.
    pub(crate) fn from_env() -> Option<Self> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        Self::at(&path)
    }

    fn at(path: &OsStr) -> Option<Self> {
        let bytes = path.as_bytes();
        let addr = match bytes.split_first()? {
            (b'@', name) => SocketAddr::from_abstract_name(name).ok()?,
            _ => SocketAddr::from_pathname(path).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Self { socket, addr })
    }

    /// Sends `STATUS=` with `status` on one line (newlines become spaces),
    /// after `STOPPING=1` when `stopping`. Best effort: the service manager
    /// may be gone, and nothing here fails the caller.
    pub(crate) fn send(&self, stopping: bool, status: &str) {
        let mut message = String::with_capacity(status.len() + 24);
        if stopping {
            message.push_str("STOPPING=1\n");
        }
        message.push_str("STATUS=");
        message.extend(status.chars().map(|c| if c == '\n' { ' ' } else { c }));
        message.push('\n');
        let _ = self.socket.send_to_addr(message.as_bytes(), &self.addr);
    }
}
