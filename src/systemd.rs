//! The `systemd` feature (Linux): the service manager's notification
//! protocol, sd_notify(3), over the datagram socket `NOTIFY_SOCKET` names.
//!
//! A few lines on std's `UnixDatagram` rather than the `sd-notify` crate:
//! the protocol needs one unbound datagram socket and `send_to`, std has had
//! abstract socket addresses (`@name`) since Rust 1.70, and `sd-notify` 0.5
//! declares Rust 1.82 where this crate supports 1.73.
//!
//! What systemd's manager accepts shapes every message: it drops a whole
//! datagram of 4096 bytes or more, or one with a NUL byte, and reads `\n` and
//! `\r` as the ends of assignments. So a status is one line with no control
//! character (a reason's text cannot add an assignment such as `READY=1`),
//! and it is cut to [`STATUS_MAX`] bytes. The socket does not block: a
//! manager that does not read loses messages, and nobody waits for it.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use crate::core::sync::Mutex;

/// The longest status sent, in bytes (well under systemd's 4096 for the
/// whole datagram).
pub(crate) const STATUS_MAX: usize = 1024;

pub(crate) use crate::shutdown::Stage;

/// Where the service manager listens, and a socket to send from.
#[derive(Debug)]
pub(crate) struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// The latest stage told, so that threads that reach stages at once
    /// (the drain's end racing the trigger's message) never leave an
    /// earlier stage as the last status: the send is made under this lock.
    told: Mutex<Option<Stage>>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names, if it is set to an address a
    /// socket can send to: a path, or `@name` for an abstract one.
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
        socket.set_nonblocking(true).ok()?;
        Some(Self {
            socket,
            addr,
            told: Mutex::new(None),
        })
    }

    /// Sends `STOPPING=1` and `STATUS=` with `status` (one line, control
    /// characters made spaces, cut to [`STATUS_MAX`] bytes), unless a later
    /// stage was told already. Best effort: a manager gone or not reading
    /// loses the message, and nothing here fails or blocks the caller.
    pub(crate) fn send(&self, stage: Stage, status: &str) {
        let mut told = self.told.lock();
        if told.is_some_and(|told| told > stage) {
            return;
        }
        *told = Some(stage);
        let mut message = String::with_capacity(STATUS_MAX + 24);
        message.push_str("STOPPING=1\nSTATUS=");
        let start = message.len();
        for c in status.chars() {
            if message.len() - start + c.len_utf8() > STATUS_MAX - '…'.len_utf8() {
                message.push('…');
                break;
            }
            message.push(if c.is_control() { ' ' } else { c });
        }
        message.push('\n');
        let _ = self.socket.send_to_addr(message.as_bytes(), &self.addr);
    }
}
