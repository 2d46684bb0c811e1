//! What waits return: `Report`, `Stragglers`, `Holders`, `Failure(s)`,
//! `Timeout`, `ShutdownStarted`, and the bounded `Display` they share.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the report types and their `Display` |
//! | `text.rs` | `SharedStr`, the text every copy of a report shares |
//! | `registry.rs` | the named guards of a latch, which snapshots list |

mod cause;
mod registry;
mod text;

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

pub use self::cause::Cause;
pub(crate) use self::registry::Registry;
pub use self::text::SharedStr;

/// The outcome of a completed drain. `Display` writes one line; the
/// alternate form (`{:#}`) puts each failure and the panicked count on lines
/// of their own. Either stays readable at any size: at most
/// [`DISPLAY_LIMIT`] failures are listed (oldest first), then "and N more",
/// and long names and reasons are shortened; the fields hold everything.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// shutdown.trigger_with_reason("deploy");
/// let report = shutdown.wait_drained();
/// assert_eq!(report.panicked, 0);
/// assert_eq!(report.reason.as_deref(), Some("deploy"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Guards of the latch (or its subtree) dropped while their thread was
    /// panicking, since creation.
    pub panicked: usize,
    /// Time from the trigger to the moment the drain was first observed
    /// complete (every drainer of one latch gets the same report).
    pub elapsed: Duration,
    /// The reason given to [`trigger_with_reason`](crate::Shutdown::trigger_with_reason),
    /// or the text of another [`cause`](Self::cause).
    pub reason: Option<SharedStr>,
    /// Why the latch was triggered: the first trigger's cause, or its
    /// ancestor's.
    pub cause: Option<Cause>,
    /// The drained latch's path: the names of the named latches from the
    /// root down ([`child_named`](crate::Shutdown::child_named)); empty when
    /// none is named.
    pub latch: SharedStr,
    /// The latch had been forced ([`Shutdown::force`](crate::Shutdown::force))
    /// when the drain completed: the grace period was not enough.
    pub forced: bool,
    /// Guards of the subtree that failed ([`Guard::fail`](crate::Guard::fail),
    /// a [`vital`](crate::Guard::vital) guard dropped by a panic, or a
    /// spawned thread that panicked), oldest first.
    pub failures: Failures,
}

/// How many named guards (stragglers, holders) or failures a `Display` of
/// [`Report`], [`Stragglers`] or [`Holders`] lists before it sums up the
/// rest as "and N more": the oldest ones, which are the likeliest culprits.
/// Names, latch paths and reasons longer than [`DISPLAY_TEXT`] characters
/// are shortened there too, ending in `…`. The fields are never shortened.
///
/// ```
/// use std::time::Duration;
///
/// let shutdown = quiescent::Shutdown::new();
/// let guards: Vec<_> = (0..1000)
///     .map(|i| shutdown.guard_named(format!("conn-{i}")).unwrap())
///     .collect();
/// let stragglers = shutdown.shutdown_timeout(Duration::ZERO).unwrap_err();
/// assert_eq!(stragglers.names.len(), 1000); // the fields hold everything
/// let text = stragglers.to_string();
/// assert!(text.contains("\"conn-9\" ("), "{text}");
/// assert!(!text.contains("\"conn-10\" ("), "{text}");
/// assert!(text.ends_with("and 990 more named"), "{text}");
/// # drop(guards);
/// ```
pub const DISPLAY_LIMIT: usize = 10;

/// The longest name, latch path or reason a `Display` of a report shows
/// whole, in characters; see [`DISPLAY_LIMIT`].
pub const DISPLAY_TEXT: usize = 120;

/// `text`, shortened to [`DISPLAY_TEXT`] characters (the last one `…`).
struct Short<'a>(&'a str);

impl Short<'_> {
    /// The text kept: all of it, or the first `DISPLAY_TEXT - 1` characters.
    fn kept(&self) -> (&str, bool) {
        match self.0.char_indices().nth(DISPLAY_TEXT) {
            None => (self.0, false),
            Some(_) => {
                let cut = self
                    .0
                    .char_indices()
                    .nth(DISPLAY_TEXT - 1)
                    .map_or(self.0.len(), |(at, _)| at);
                (&self.0[..cut], true)
            }
        }
    }
}

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kept, cut) = self.kept();
        f.write_str(kept)?;
        if cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Short<'_> {
    /// Quoted and escaped as `str`'s `Debug`, the `…` inside the quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kept() {
            (kept, false) => fmt::Debug::fmt(kept, f),
            (kept, true) => fmt::Debug::fmt(&format!("{kept}…"), f),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.latch.is_empty() {
            write!(f, "{}: ", Short(&self.latch))?;
        }
        write!(f, "drained {:.1?} after shutdown", self.elapsed)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({})", Short(reason))?;
        }
        if self.forced {
            f.write_str(", forced")?;
        }
        write_failures(f, &self.failures)?;
        if self.panicked > 0 {
            let sep = if f.alternate() { "\n  " } else { "; " };
            write!(
                f,
                "{sep}{} guard(s) were dropped by a panicking thread",
                self.panicked
            )?;
        }
        Ok(())
    }
}

/// Who holds a latch's subtree open right now: a snapshot from
/// [`Shutdown::holders`](crate::Shutdown::holders), usable at any time,
/// before or after the trigger.
///
/// The count and the names are read together (under every registry lock of
/// the subtree), so `named.len() <= count` always holds, even while named
/// guards are cloned and dropped concurrently.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// let _reader = shutdown.guard_named("ws-reader").unwrap();
/// let _anon = shutdown.guard().unwrap();
/// let holders = shutdown.holders();
/// assert_eq!(holders.count, 2);
/// assert_eq!(holders.named[0].name, "ws-reader");
/// assert!(holders.to_string().starts_with("2 guards held: \"ws-reader\" ("));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holders {
    /// Guards (named or not) alive in the latch's subtree.
    pub count: usize,
    /// Guards of the subtree dropped while their thread was panicking, since
    /// creation.
    pub panicked: usize,
    /// The named guards alive in the subtree, oldest first.
    pub named: Vec<Straggler>,
}

impl fmt::Display for Holders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.count == 1 { "guard" } else { "guards" };
        write!(f, "{} {plural} held", self.count)?;
        write_named(f, &self.named, self.count)?;
        write_panicked(f, self.panicked)
    }
}

/// `: "name" (file:line, held 1.2s), ..., and N more named, and N
/// unnamed`; with `{:#}`, one line each. At most [`DISPLAY_LIMIT`] names.
fn write_named(f: &mut fmt::Formatter<'_>, named: &[Straggler], count: usize) -> fmt::Result {
    let alternate = f.alternate();
    for (i, s) in named.iter().take(DISPLAY_LIMIT).enumerate() {
        let sep = match (alternate, i) {
            (true, _) => "\n  ",
            (false, 0) => ": ",
            (false, _) => ", ",
        };
        f.write_str(sep)?;
        if !s.latch.is_empty() {
            write!(f, "{}: ", Short(&s.latch))?;
        }
        write!(
            f,
            "{:?} ({}:{}, held {:.1}s)",
            Short(&s.name),
            s.site.file(),
            s.site.line(),
            s.held.as_secs_f64()
        )?;
    }
    let more = named.len().saturating_sub(DISPLAY_LIMIT);
    if more > 0 {
        let sep = if alternate { "\n  " } else { ", " };
        write!(f, "{sep}and {more} more named")?;
    }
    let unnamed = count.saturating_sub(named.len());
    if unnamed > 0 && !named.is_empty() {
        let sep = if alternate { "\n  " } else { ", " };
        write!(f, "{sep}and {unnamed} unnamed")?;
    }
    Ok(())
}

fn write_panicked(f: &mut fmt::Formatter<'_>, panicked: usize) -> fmt::Result {
    if panicked > 0 {
        let sep = if f.alternate() { "\n  " } else { "; " };
        write!(f, "{sep}{panicked} dropped by a panicking thread")?;
    }
    Ok(())
}

/// A named guard alive when a snapshot ([`Holders`], [`Stragglers`]) was taken.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// let _g = shutdown.guard_named("indexer").unwrap();
/// let straggler = &shutdown.holders().named[0];
/// assert_eq!((straggler.name.as_str(), straggler.site.file()), ("indexer", "src/report/mod.rs"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Straggler {
    /// The name given to [`guard_named`](crate::Shutdown::guard_named).
    pub name: String,
    /// The latch the guard holds, as a path of the named latches from the
    /// root down ([`child_named`](crate::Shutdown::child_named)), e.g.
    /// `server/readers`; empty when none of them is named.
    pub latch: String,
    /// Where the guard was made.
    pub site: &'static Location<'static>,
    /// How long it had been held when the drain gave up.
    pub held: Duration,
}

/// A bounded drain timed out: who is still holding on.
///
/// Its `Display` names the named stragglers with their latch paths, where
/// they were made and how long they have been held (the oldest
/// [`DISPLAY_LIMIT`], then "and N more named"), then the failures and the
/// panicked count, on one line; the alternate form (`{:#}`) gives each its own
/// line, for a person reading a terminal:
///
/// ```
/// use std::time::Duration;
///
/// let shutdown = quiescent::Shutdown::new();
/// let _stuck = shutdown.guard_named("ws-reader").unwrap();
/// let err = shutdown.shutdown_timeout(Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err.remaining, 1);
/// assert_eq!(err.names, ["ws-reader"]);
/// let text = err.to_string();
/// assert!(text.starts_with("1 guard still held"), "{text}");
/// assert!(text.contains("\"ws-reader\" (src/report/mod.rs:"), "{text}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stragglers {
    /// Guards (named or not) still alive in the latch's subtree.
    pub remaining: usize,
    /// Names of the named guards still alive, oldest first.
    pub names: Vec<String>,
    /// Guards of the subtree dropped while their thread was panicking.
    pub panicked: usize,
    /// The trigger's reason, if one was given (the text of `cause`).
    pub reason: Option<SharedStr>,
    /// Why the latch was triggered (see [`Report::cause`]).
    pub cause: Option<Cause>,
    /// Time from the trigger to the moment the drain gave up.
    pub elapsed: Duration,
    /// Whether the latch had been forced ([`Shutdown::force`](crate::Shutdown::force))
    /// when the drain gave up.
    pub forced: bool,
    /// Guards of the subtree that failed, oldest first (see [`Report::failures`]).
    pub failures: Failures,
    /// The named stragglers in detail, in the order of `names`.
    pub held: Vec<Straggler>,
}

impl fmt::Display for Stragglers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.remaining == 1 {
            "guard"
        } else {
            "guards"
        };
        write!(
            f,
            "{} {plural} still held {:.1}s after shutdown",
            self.remaining,
            self.elapsed.as_secs_f64()
        )?;
        if let Some(reason) = &self.reason {
            write!(f, " ({})", Short(reason))?;
        }
        if self.forced {
            f.write_str(" even after forcing")?;
        }
        write_named(f, &self.held, self.remaining)?;
        write_failures(f, &self.failures)?;
        write_panicked(f, self.panicked)
    }
}

impl Error for Stragglers {}

/// The failures of a [`Report`] or [`Stragglers`], oldest first: a slice of
/// [`Failure`]s that every copy of the report shares, so copying the report
/// never allocates (no failure costs nothing; some cost one reference count
/// increment).
///
/// It reads as a `&[Failure]` (`Deref`: `len`, `is_empty`, indexing,
/// `iter`), and iterates by reference or, by value, over copies.
///
/// ```
/// let jobs = quiescent::Shutdown::new();
/// jobs.guard_named("parse").unwrap().fail("bad input");
/// let report = jobs.wait_drained();
/// assert_eq!(report.failures.len(), 1);
/// for failure in &report.failures {
///     assert_eq!(failure.reason, "bad input");
/// }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Failures(Option<std::sync::Arc<[Failure]>>);

impl std::ops::Deref for Failures {
    type Target = [Failure];

    #[inline]
    fn deref(&self) -> &[Failure] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl fmt::Debug for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<Failure>> for Failures {
    fn from(failures: Vec<Failure>) -> Self {
        Self((!failures.is_empty()).then(|| failures.into()))
    }
}

impl<'a> IntoIterator for &'a Failures {
    type Item = &'a Failure;
    type IntoIter = std::slice::Iter<'a, Failure>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Failures {
    type Item = Failure;
    type IntoIter = std::vec::IntoIter<Failure>;

    /// Copies of the failures (the report shares them).
    // The iterator owns its items, and the slice is shared: a copy it is.
    #[allow(clippy::unnecessary_to_owned)]
    fn into_iter(self) -> Self::IntoIter {
        self.to_vec().into_iter()
    }
}

/// A guard that failed: [`Guard::fail`](crate::Guard::fail), a
/// [`vital`](crate::Guard::vital) guard dropped by a panic, or a thread of
/// [`Shutdown::spawn`](crate::Shutdown::spawn) that panicked.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// let guard = shutdown.guard_named("loader").unwrap();
/// guard.fail("config file missing");
/// let report = shutdown.wait_drained();
/// let failure = &report.failures[0];
/// assert_eq!(failure.name.as_deref(), Some("loader"));
/// assert_eq!(failure.reason, "config file missing");
/// assert!(failure.to_string().starts_with("\"loader\" (src/report/mod.rs:"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The guard's name, if it had one.
    pub name: Option<SharedStr>,
    /// The latch path of the guard's latch (see [`Straggler::latch`]).
    pub latch: SharedStr,
    /// Where the guard was made (named or spawned guards), marked vital, or
    /// failed.
    pub site: &'static Location<'static>,
    /// What went wrong: the reason given to `fail`, the panic's message, or
    /// "panicked" when the payload was not a string.
    pub reason: SharedStr,
}

impl fmt::Display for Failure {
    /// `latch: "name" (file:line): reason`, long texts shortened (see
    /// [`DISPLAY_TEXT`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.latch.is_empty() {
            write!(f, "{}: ", Short(&self.latch))?;
        }
        match &self.name {
            Some(name) => write!(f, "{:?}", Short(name))?,
            None => f.write_str("a guard")?,
        }
        write!(
            f,
            " ({}:{}): {}",
            self.site.file(),
            self.site.line(),
            Short(&self.reason)
        )
    }
}

/// `; failed: <failure>, <failure>, and N more failures`; with `{:#}`, one
/// line each. At most [`DISPLAY_LIMIT`] failures, the oldest.
fn write_failures(f: &mut fmt::Formatter<'_>, failures: &[Failure]) -> fmt::Result {
    let alternate = f.alternate();
    for (i, failure) in failures.iter().take(DISPLAY_LIMIT).enumerate() {
        let sep = match (alternate, i) {
            (true, _) => "\n  failed: ",
            (false, 0) => "; failed: ",
            (false, _) => ", ",
        };
        write!(f, "{sep}{failure}")?;
    }
    let more = failures.len().saturating_sub(DISPLAY_LIMIT);
    if more > 0 {
        let sep = if alternate { "\n  " } else { ", " };
        write!(f, "{sep}and {more} more failures")?;
    }
    Ok(())
}

/// A bounded [`WaitGroup`](crate::WaitGroup) wait timed out.
///
/// ```
/// use std::time::Duration;
///
/// let mut wg = quiescent::WaitGroup::new();
/// let _token = wg.token();
/// let timeout = wg.wait_timeout(Duration::ZERO).unwrap_err();
/// assert_eq!(timeout.to_string(), "timed out with 1 token still alive");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeout {
    /// Tokens still alive when time ran out.
    pub remaining: usize,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.remaining == 1 {
            "token"
        } else {
            "tokens"
        };
        write!(f, "timed out with {} {plural} still alive", self.remaining)
    }
}

impl Error for Timeout {}

/// [`Shutdown::guard`](crate::Shutdown::guard) (or `child`, or `spawn`) was
/// refused: the latch has been triggered.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// shutdown.trigger();
/// let err = shutdown.guard().unwrap_err();
/// assert_eq!(err, quiescent::ShutdownStarted);
/// assert_eq!(err.to_string(), "shutdown has started: no new work is admitted");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownStarted;

impl fmt::Display for ShutdownStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shutdown has started: no new work is admitted")
    }
}

impl Error for ShutdownStarted {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn straggler(name: &str, secs: f64, site: &'static Location<'static>) -> Straggler {
        Straggler {
            name: name.into(),
            latch: String::new(),
            site,
            held: Duration::from_secs_f64(secs),
        }
    }

    #[test]
    fn stragglers_display_names_site_and_age() {
        let site = Location::caller();
        let s = Stragglers {
            remaining: 3,
            names: vec!["ws-reader".into(), "hub".into()],
            panicked: 1,
            reason: Some("SIGTERM".into()),
            cause: None,
            elapsed: Duration::from_millis(5_000),
            forced: false,
            failures: Failures::default(),
            held: vec![
                straggler("ws-reader", 12.34, site),
                straggler("hub", 0.5, site),
            ],
        };
        let text = s.to_string();
        let line = site.line();
        assert_eq!(
            text,
            format!(
                "3 guards still held 5.0s after shutdown (SIGTERM): \
                 \"ws-reader\" (src/report/mod.rs:{line}, held 12.3s), \
                 \"hub\" (src/report/mod.rs:{line}, held 0.5s), and 1 unnamed; \
                 1 dropped by a panicking thread"
            )
        );
    }

    #[test]
    fn forced_drains_and_stragglers_say_so() {
        let report = Report {
            panicked: 0,
            elapsed: Duration::from_millis(2_500),
            reason: Some("SIGTERM".into()),
            cause: None,
            latch: "server".into(),
            forced: true,
            failures: Failures::default(),
        };
        assert_eq!(
            report.to_string(),
            "server: drained 2.5s after shutdown (SIGTERM), forced"
        );
        let site = Location::caller();
        let s = Stragglers {
            remaining: 1,
            names: vec!["writer".into()],
            panicked: 0,
            reason: None,
            cause: None,
            elapsed: Duration::from_secs(7),
            forced: true,
            failures: Failures::default(),
            held: vec![straggler("writer", 7.0, site)],
        };
        assert_eq!(
            s.to_string(),
            format!(
                "1 guard still held 7.0s after shutdown even after forcing: \
                 \"writer\" (src/report/mod.rs:{}, held 7.0s)",
                site.line()
            )
        );
    }

    #[test]
    fn the_alternate_form_reads_on_a_few_lines() {
        let site = Location::caller();
        let line = site.line();
        let failure = Failure {
            name: Some("parse".into()),
            latch: "jobs".into(),
            site,
            reason: "bad input".into(),
        };
        let mut reader = straggler("reader-3", 2.1, site);
        reader.latch = "server/readers".into();
        let s = Stragglers {
            remaining: 3,
            names: vec!["reader-3".into(), "writer".into()],
            panicked: 1,
            reason: Some("SIGTERM".into()),
            cause: None,
            elapsed: Duration::from_secs(5),
            forced: true,
            failures: vec![failure.clone()].into(),
            held: vec![reader, straggler("writer", 7.1, site)],
        };
        assert_eq!(
            format!("{s:#}"),
            format!(
                "3 guards still held 5.0s after shutdown (SIGTERM) even after forcing\n  \
                 server/readers: \"reader-3\" (src/report/mod.rs:{line}, held 2.1s)\n  \
                 \"writer\" (src/report/mod.rs:{line}, held 7.1s)\n  \
                 and 1 unnamed\n  \
                 failed: jobs: \"parse\" (src/report/mod.rs:{line}): bad input\n  \
                 1 dropped by a panicking thread"
            )
        );
        let report = Report {
            panicked: 1,
            elapsed: Duration::from_millis(4_500),
            reason: Some("deploy".into()),
            cause: None,
            latch: SharedStr::default(),
            forced: false,
            failures: vec![failure].into(),
        };
        assert_eq!(
            format!("{report:#}"),
            format!(
                "drained 4.5s after shutdown (deploy)\n  \
                 failed: jobs: \"parse\" (src/report/mod.rs:{line}): bad input\n  \
                 1 guard(s) were dropped by a panicking thread"
            )
        );
        // The one-line form says the same on one line.
        assert_eq!(
            report.to_string(),
            format!(
                "drained 4.5s after shutdown (deploy); failed: jobs: \"parse\" \
                 (src/report/mod.rs:{line}): bad input; 1 guard(s) were dropped by a panicking thread"
            )
        );
    }

    #[test]
    fn shared_text_reads_and_compares_as_a_str() {
        use std::collections::HashSet;

        let owned = SharedStr::from(format!("deploy {}", 7));
        let fixed = SharedStr::from("deploy 7");
        assert_eq!(owned, fixed, "equal by text, whatever the storage");
        assert_eq!(owned, "deploy 7");
        assert_eq!("deploy 7", owned);
        assert_eq!(owned, String::from("deploy 7"));
        assert_eq!(owned, Cow::Borrowed("deploy 7"));
        assert!(owned.starts_with("deploy"), "derefs to str");
        assert_eq!(format!("{owned} {owned:?}"), "deploy 7 \"deploy 7\"");
        let (a, b) = (SharedStr::from("a"), SharedStr::from(String::from("b")));
        assert!(a < b);
        // Hash and Borrow agree with str's: a set of them is searched by &str.
        let set: HashSet<SharedStr> = [owned.clone(), "SIGTERM".into()].into();
        assert!(set.contains("deploy 7") && set.contains("SIGTERM"));
        assert_eq!(set.len(), 2);
        // Conversions keep a &'static str borrowed and copy a shared one.
        assert!(matches!(Cow::from(fixed), Cow::Borrowed("deploy 7")));
        assert!(matches!(Cow::from(owned.clone()), Cow::Owned(text) if text == "deploy 7"));
        assert_eq!(String::from(owned), "deploy 7");
        assert_eq!(SharedStr::from(Cow::Owned(String::new())), "");
        assert_eq!(SharedStr::default().as_str(), "");
        const SIGNAL: SharedStr = SharedStr::from_static("SIGINT");
        assert_eq!(SIGNAL, "SIGINT");
    }

    #[test]
    fn shared_text_and_failures_are_shared_by_their_copies() {
        let owned = SharedStr::from(String::from("deploy"));
        let copy = owned.clone();
        assert!(
            std::ptr::eq(owned.as_str(), copy.as_str()),
            "one allocation"
        );
        let site = Location::caller();
        let failure = Failure {
            name: None,
            latch: String::new().into(),
            site,
            reason: "bad input".into(),
        };
        let failures = Failures::from(vec![failure.clone(), failure.clone()]);
        let copy = failures.clone();
        assert!(std::ptr::eq(&failures[0], &copy[0]), "one allocation");
        assert_eq!((&failures).into_iter().count(), 2);
        assert_eq!(
            failures.clone().into_iter().collect::<Vec<_>>(),
            [failure.clone(), failure]
        );
        assert_eq!(format!("{:?}", Failures::default()), "[]");
        assert_eq!(Failures::from(Vec::new()), Failures::default());
        assert!(Failures::default().is_empty());
    }

    #[test]
    fn displays_stay_bounded_at_any_size() {
        let site = Location::caller();
        let huge = "x".repeat(1 << 20);
        let held: Vec<_> = (0..100_000)
            .map(|i| straggler(&format!("conn-{i}"), 1.0, site))
            .chain([straggler(&huge, 1.0, site)])
            .collect();
        let failure = Failure {
            name: Some(huge.clone().into()),
            latch: huge.clone().into(),
            site,
            reason: huge.clone().into(),
        };
        let s = Stragglers {
            remaining: 100_005,
            names: held.iter().map(|s| s.name.clone()).collect(),
            panicked: 0,
            reason: Some(huge.clone().into()),
            cause: None,
            elapsed: Duration::from_secs(1),
            forced: false,
            failures: vec![failure.clone(); 50].into(),
            held,
        };
        for text in [s.to_string(), format!("{s:#}")] {
            assert!(text.len() < 8 * 1024, "{} bytes", text.len());
            assert!(text.contains("and 99991 more named"), "{text}");
            assert!(text.contains("and 4 unnamed"), "{text}");
            assert!(text.contains("and 40 more failures"), "{text}");
        }
        // The fields keep everything.
        assert_eq!(s.held.len(), 100_001);
        assert_eq!(s.held[100_000].name.len(), 1 << 20);
        // A long name is shortened to DISPLAY_TEXT characters, `…` last,
        // inside its quotes; a short one is whole.
        let one = Failure {
            name: Some(huge.clone().into()),
            latch: String::new().into(),
            site,
            reason: "é".repeat(DISPLAY_TEXT + 1).into(),
        }
        .to_string();
        let quoted = format!("\"{}…\"", "x".repeat(DISPLAY_TEXT - 1));
        assert!(one.starts_with(&quoted), "{one}");
        assert!(
            one.ends_with(&format!("{}…", "é".repeat(DISPLAY_TEXT - 1))),
            "{one}"
        );
        assert_eq!(
            Short(&"y".repeat(DISPLAY_TEXT)).to_string().len(),
            DISPLAY_TEXT
        );
        let report = Report {
            panicked: 0,
            elapsed: Duration::from_secs(1),
            reason: Some(huge.clone().into()),
            cause: None,
            latch: huge.clone().into(),
            forced: false,
            failures: vec![failure; 11].into(),
        };
        let text = report.to_string();
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());
        assert!(text.contains("and 1 more failures"), "{text}");
    }

    #[test]
    fn error_messages_say_what_happened() {
        assert_eq!(
            Timeout { remaining: 1 }.to_string(),
            "timed out with 1 token still alive"
        );
        assert_eq!(
            ShutdownStarted.to_string(),
            "shutdown has started: no new work is admitted"
        );
    }
}
