//! `Cause`: why a latch was triggered, typed.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use super::{Failure, SharedStr};

/// Why a latch was triggered: Go's `context.Cause`, typed.
///
/// The first trigger's cause wins, decided atomically with the election (a
/// later trigger changes nothing), and a latch triggered by an ancestor
/// reports the ancestor's cause. [`Shutdown::reason`](crate::Shutdown::reason)
/// is the cause's text (`Display`).
///
/// ```
/// use quiescent::{Cause, Shutdown};
///
/// let server = Shutdown::new();
/// let conns = server.child().unwrap();
/// assert_eq!(server.cause(), None); // not triggered yet
/// server.trigger_with_reason("deploy");
/// server.trigger_with_reason("ignored: the first cause wins");
/// let cause = conns.cause().unwrap(); // a child reports its ancestor's cause
/// assert_eq!(cause, Cause::Requested(Some("deploy".into())));
/// assert_eq!(cause.to_string(), "deploy");
/// assert_eq!(conns.reason().as_deref(), Some("deploy"));
/// ```
///
/// An error of your own comes back as itself, to `downcast_ref`:
///
/// ```
/// use std::fmt;
///
/// #[derive(Debug)]
/// struct DatabaseGone { host: String }
///
/// impl fmt::Display for DatabaseGone {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "database {} is gone", self.host)
///     }
/// }
///
/// impl std::error::Error for DatabaseGone {}
///
/// let shutdown = quiescent::Shutdown::new();
/// shutdown.trigger_with_error(DatabaseGone { host: "db-1".into() });
/// let cause = shutdown.cause().unwrap();
/// let gone = cause.error().unwrap().downcast_ref::<DatabaseGone>().unwrap();
/// assert_eq!(gone.host, "db-1");
/// assert_eq!(shutdown.reason().as_deref(), Some("database db-1 is gone"));
/// ```
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum Cause {
    /// [`trigger`](crate::Shutdown::trigger) (no reason) or
    /// [`trigger_with_reason`](crate::Shutdown::trigger_with_reason).
    Requested(Option<SharedStr>),
    /// A signal of the `signal` feature's policy, by number (`Display` names
    /// it: `SIGTERM`).
    Signal(i32),
    /// A guard that failed: [`Guard::fail`](crate::Guard::fail), or a
    /// [vital](crate::Guard::vital) guard dropped by a panic. The failure as
    /// it was when it triggered (a panic's message reaches
    /// [`Report::failures`](crate::Report::failures) later).
    Failed(Failure),
    /// [`trigger_with_error`](crate::Shutdown::trigger_with_error): the error
    /// itself, shared.
    Error(Arc<dyn Error + Send + Sync + 'static>),
}

impl Cause {
    /// The error of [`Cause::Error`], to `downcast_ref` to your own type;
    /// `None` for the other causes.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger_with_error(std::io::Error::new(std::io::ErrorKind::Other, "disk full"));
    /// let cause = shutdown.cause().unwrap();
    /// let io = cause.error().unwrap().downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(io.to_string(), "disk full");
    /// ```
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match self {
            Cause::Error(error) => Some(&**error),
            _ => None,
        }
    }

    /// The text `reason()` returns: none for a trigger without a reason,
    /// else the `Display`. A reason given as text is shared, not copied.
    ///
    /// The text is made once, at the trigger, and a `Display` of the user's
    /// (an error's) that fails or panics must not stop the trigger: its text
    /// then says so instead.
    pub(crate) fn reason(&self) -> Option<SharedStr> {
        use std::fmt::Write as _;
        match self {
            Cause::Requested(reason) => reason.clone(),
            other => {
                let mut text = String::new();
                let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    write!(text, "{other}").is_ok()
                }));
                match written {
                    Ok(true) => {}
                    Ok(false) => text = "an error whose Display failed".to_owned(),
                    Err(payload) => {
                        // Its payload may panic when dropped, too.
                        crate::core::wakers::discard(payload);
                        text = "an error whose Display failed".to_owned();
                    }
                }
                Some(text.into())
            }
        }
    }
}

impl fmt::Display for Cause {
    /// The reason's text: the text given, the signal's name, the failing
    /// guard with its site and what went wrong, or the error's `Display`.
    /// A trigger without a reason reads "requested".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Requested(Some(reason)) => f.write_str(reason),
            Cause::Requested(None) => f.write_str("requested"),
            Cause::Signal(signo) => match signal_name(*signo) {
                Some(name) => f.write_str(name),
                None => write!(f, "signal {signo}"),
            },
            Cause::Failed(failure) => {
                match &failure.name {
                    Some(name) => write!(f, "{name:?}")?,
                    None => f.write_str("a guard")?,
                }
                write!(f, " ({}:{}) ", failure.site.file(), failure.site.line())?;
                if failure.reason == "panicked" {
                    f.write_str("panicked")
                } else {
                    write!(f, "failed: {}", failure.reason)
                }
            }
            Cause::Error(error) => fmt::Display::fmt(error, f),
        }
    }
}

/// The names of the signals a shutdown policy listens to (their numbers are
/// the same on every unix).
fn signal_name(signo: i32) -> Option<&'static str> {
    Some(match signo {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        15 => "SIGTERM",
        _ => return None,
    })
}

impl PartialEq for Cause {
    /// By value, except an error, which compares by identity (the same
    /// shared error): `dyn Error` has no equality.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cause::Requested(a), Cause::Requested(b)) => a == b,
            (Cause::Signal(a), Cause::Signal(b)) => a == b,
            (Cause::Failed(a), Cause::Failed(b)) => a == b,
            (Cause::Error(a), Cause::Error(b)) => {
                Arc::as_ptr(a) as *const () == Arc::as_ptr(b) as *const ()
            }
            _ => false,
        }
    }
}

impl Eq for Cause {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_their_reasons_and_compare_by_value_or_identity() {
        assert_eq!(Cause::Signal(15).to_string(), "SIGTERM");
        assert_eq!(Cause::Signal(64).to_string(), "signal 64");
        assert_eq!(Cause::Requested(None).to_string(), "requested");
        assert_eq!(Cause::Requested(None).reason(), None);
        assert_eq!(Cause::Signal(2).reason().as_deref(), Some("SIGINT"));
        let error: Arc<dyn Error + Send + Sync> =
            Arc::new(std::io::Error::new(std::io::ErrorKind::Other, "gone"));
        let (a, b) = (Cause::Error(error.clone()), Cause::Error(error));
        assert_eq!(a, b, "the same shared error");
        let other = Cause::Error(Arc::new(std::io::Error::new(
            std::io::ErrorKind::Other,
            "gone",
        )));
        assert_ne!(a, other, "another error with the same text");
        assert_ne!(Cause::Signal(2), Cause::Signal(15));
        assert_ne!(Cause::Signal(2), Cause::Requested(None));
    }
}
