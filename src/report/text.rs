//! `SharedStr`: the text a report shares with all its copies.

use std::borrow::Cow;
use std::fmt;

/// Text that every copy of a [`Report`](crate::Report) shares: a `&'static str`, or a
/// reference-counted string made once from an owned one. Cloning never
/// allocates (a `&'static str` is copied; a shared one costs one reference
/// count increment), so [`wait_drained`](crate::Shutdown::wait_drained) on a
/// drained latch hands out its cached report without allocating, whatever
/// the reason.
///
/// It reads as a `str` (`Deref`, `Display`, comparisons with `str` and
/// `String`), and converts from `&'static str`, `String` and
/// `Cow<'static, str>`.
///
/// ```
/// use quiescent::SharedStr;
///
/// let shutdown = quiescent::Shutdown::new();
/// shutdown.trigger_with_reason(format!("deploy {}", 42));
/// let report = shutdown.wait_drained();
/// let reason: &SharedStr = report.reason.as_ref().unwrap();
/// assert_eq!(reason, "deploy 42");
/// assert!(reason.starts_with("deploy"));
/// assert_eq!(report.reason.as_deref(), Some("deploy 42"));
/// assert_eq!(SharedStr::from("SIGTERM").to_string(), "SIGTERM");
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    /// `std`'s `Arc` even under loom: the text never changes after it is
    /// made, so there is nothing for a model to interleave.
    Shared(std::sync::Arc<str>),
}

impl SharedStr {
    /// A shared string of a `&'static str`, in a `const` context too.
    ///
    /// ```
    /// const SIGTERM: quiescent::SharedStr = quiescent::SharedStr::from_static("SIGTERM");
    /// assert_eq!(SIGTERM, "SIGTERM");
    /// ```
    pub const fn from_static(text: &'static str) -> Self {
        Self(Repr::Static(text))
    }

    /// The text.
    ///
    /// ```
    /// let text = quiescent::SharedStr::from(String::from("deploy"));
    /// assert_eq!(text.as_str(), "deploy");
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            Repr::Shared(text) => text,
        }
    }
}

impl Default for SharedStr {
    /// The empty string (nothing allocated).
    fn default() -> Self {
        Self::from_static("")
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

macro_rules! eq_with_text {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for SharedStr {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == &other[..]
            }
        }

        impl PartialEq<SharedStr> for $other {
            fn eq(&self, other: &SharedStr) -> bool {
                &self[..] == other.as_str()
            }
        }
    )*};
}

eq_with_text!(str, &str, String, Cow<'_, str>);

impl From<&'static str> for SharedStr {
    fn from(text: &'static str) -> Self {
        Self::from_static(text)
    }
}

impl From<String> for SharedStr {
    /// Moves the text into one shared allocation (this is the only copy;
    /// an empty string allocates nothing).
    fn from(text: String) -> Self {
        if text.is_empty() {
            return Self::default();
        }
        Self(Repr::Shared(text.into()))
    }
}

impl From<Cow<'static, str>> for SharedStr {
    fn from(text: Cow<'static, str>) -> Self {
        match text {
            Cow::Borrowed(text) => Self::from_static(text),
            Cow::Owned(text) => text.into(),
        }
    }
}

impl From<SharedStr> for Cow<'static, str> {
    /// Borrowed if it was made from a `&'static str`, else an owned copy.
    fn from(text: SharedStr) -> Self {
        match text.0 {
            Repr::Static(text) => Cow::Borrowed(text),
            Repr::Shared(text) => Cow::Owned(text.to_string()),
        }
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}
