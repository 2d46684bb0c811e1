//! The `signal` feature (unix): SIGINT/SIGTERM drive a [`Shutdown`] through
//! its stages, with a policy a person can predict at 3 a.m.
//!
//! The stages are announce, trigger, force, exit. Each signal moves the
//! latch one stage forward; the notice period ([`Signals::notice`]) moves it
//! from announce to trigger by itself, and an application's phased drain
//! ([`Shutdown::shutdown_phased`]) from trigger to force. With no notice (the
//! default) the first signal announces and triggers at once. After the
//! drain completes, signals never exit. Each stage change is logged once: as
//! a `tracing` event with the `tracing` feature and a subscriber installed,
//! else on stderr.

use std::io;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::{Cause, Shutdown};

/// What a signal does once the shutdown is under way (and not yet drained).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondSignal {
    /// [Force](Shutdown::force) the shutdown; a further signal exits. The
    /// default.
    Force,
    /// Print the stragglers (unless told not to) and exit with 128 + the
    /// signal number.
    Exit,
    /// Do nothing: the process exits only when the application says so.
    Ignore,
}

/// The signal policy of a latch: built by [`Shutdown::signals`], started by
/// [`install`](Self::install).
///
/// ```no_run
/// use quiescent::SecondSignal;
///
/// let shutdown = quiescent::Shutdown::new();
/// shutdown.signals().on_second(SecondSignal::Exit).install()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a signal policy does nothing until installed"]
pub struct Signals {
    shutdown: Shutdown,
    signals: Vec<i32>,
    second: SecondSignal,
    print: bool,
    notice: Duration,
}

impl Signals {
    pub(crate) fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            signals: vec![SIGINT, SIGTERM],
            second: SecondSignal::Force,
            print: true,
            notice: Duration::ZERO,
        }
    }

    /// A notice period: the first signal only [announces](Shutdown::announce)
    /// ("stopping soon": readiness probes turn, load balancers stop sending,
    /// guards are still admitted), and the latch is triggered when `notice`
    /// has passed, or at the next signal, whichever comes first. Zero (the
    /// default) triggers at the first signal. Any duration is accepted;
    /// `Duration::MAX` waits for the next signal.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// // Kubernetes: SIGTERM, 5 s for the endpoints to drop the pod, then drain.
    /// shutdown.signals().notice(Duration::from_secs(5)).install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notice(mut self, notice: Duration) -> Self {
        self.notice = notice;
        self
    }

    /// Listens to these signals instead of SIGINT and SIGTERM.
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.signals().only(&[signal_hook::consts::SIGHUP]).install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn only(mut self, signals: &[i32]) -> Self {
        self.signals = signals.to_vec();
        self
    }

    /// What a signal during the drain does ([`SecondSignal::Force`] unless
    /// told otherwise).
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.signals().on_second(quiescent::SecondSignal::Ignore).install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_second(mut self, what: SecondSignal) -> Self {
        self.second = what;
        self
    }

    /// Whether the straggler list goes to stderr before a signal exits the
    /// process (yes unless told otherwise): whoever pressed Ctrl-C twice
    /// wants to know what was stuck.
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.signals().print_stragglers(false).install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn print_stragglers(mut self, print: bool) -> Self {
        self.print = print;
        self
    }

    /// Installs the handlers through signal-hook and starts the one thread
    /// that listens for them (the only thread this crate ever starts by
    /// itself). Once per process: signals are process-wide; make other
    /// latches children of this one instead.
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.signals().install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ErrorKind::AlreadyExists` if a policy was already installed in this
    /// process; `ErrorKind::InvalidInput` for an empty or forbidden signal
    /// list; otherwise whatever registering the handlers or starting the
    /// thread returned.
    pub fn install(self) -> io::Result<()> {
        // Not synchronization that loom needs to see: it only guards the
        // process-wide registration (and holds no atomic of its own, which
        // only the core names).
        #[allow(clippy::disallowed_types)]
        static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        if self.signals.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no signal to listen to",
            ));
        }
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if *installed {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a signal policy was already installed in this process; \
                 make the other latches children of that one instead",
            ));
        }
        let mut iterator = signal_hook::iterator::Signals::new(&self.signals)?;
        *installed = true;
        drop(installed);
        std::thread::Builder::new()
            .name("quiescent-signals".into())
            .spawn(move || {
                for signo in iterator.forever() {
                    self.on_signal(signo);
                }
            })?;
        Ok(())
    }

    /// One signal, by the policy: one stage forward.
    fn on_signal(&self, signo: i32) {
        let name = signal_hook::low_level::signal_name(signo).unwrap_or("signal");
        let shutdown = &self.shutdown;
        if !shutdown.is_announced() {
            if self.notice.is_zero() {
                if shutdown.trigger_with_cause(Cause::Signal(signo)) {
                    log(&format!("{name}: shutting down"));
                }
                return;
            }
            if shutdown.announce() {
                log(&format!(
                    "{name}: stopping in {:.1?} (announced; another signal shuts down now)",
                    self.notice
                ));
                self.start_notice(signo, name);
            }
            return;
        }
        if !shutdown.is_triggered() {
            if shutdown.trigger_with_cause(Cause::Signal(signo)) {
                log(&format!("{name} during the notice: shutting down now"));
            }
            return;
        }
        match self.second {
            SecondSignal::Ignore => {
                log(&format!("{name} while shutting down; ignored"));
            }
            SecondSignal::Force if !shutdown.is_forced() => {
                if self.drained(name) {
                    return;
                }
                log(&format!(
                    "{name} while shutting down; forcing (another one exits)"
                ));
                shutdown.force();
            }
            SecondSignal::Force | SecondSignal::Exit => self.exit(name, signo),
        }
    }

    /// The notice period's end: triggers with the signal as the cause,
    /// unless a signal (or the application) triggered first. A thread that
    /// waits for the trigger with a deadline, so it ends with the trigger.
    fn start_notice(&self, signo: i32, name: &'static str) {
        let shutdown = self.shutdown.clone();
        let notice = self.notice;
        let started = std::thread::Builder::new()
            .name("quiescent-notice".into())
            .spawn(move || {
                if !shutdown.wait_triggered_timeout(notice)
                    && shutdown.trigger_with_cause(Cause::Signal(signo))
                {
                    log(&format!("{name}: notice over, shutting down"));
                }
            });
        if started.is_err() {
            // No thread for the timer: trigger now rather than never.
            self.shutdown.trigger_with_cause(Cause::Signal(signo));
            log(&format!(
                "{name}: no thread for the notice, shutting down now"
            ));
        }
    }

    /// True (and says so) if the drain has completed. No count is taken
    /// to look: a drain that completes right after only makes the forcing
    /// that follows a no-op.
    fn drained(&self, name: &str) -> bool {
        let drained = self.shutdown.try_wait_drained().is_some();
        if drained {
            log(&format!("{name} after the drain completed; not exiting"));
        }
        drained
    }

    /// Exits naming the stragglers, unless the drain has completed. The
    /// straggler list is taken while an extra count keeps the drain from
    /// completing, and that count is still held at the exit: a program that
    /// has seen its drain complete is never killed by a late signal.
    fn exit(&self, name: &str, signo: i32) {
        let Some((stragglers, _held)) = self.shutdown.stragglers_while_held() else {
            log(&format!("{name} after the drain completed; not exiting"));
            return;
        };
        if self.print {
            eprintln!("quiescent: {name} again, exiting: {stragglers}");
        } else {
            eprintln!("quiescent: {name} again, exiting");
        }
        std::process::exit(128 + signo)
    }
}

/// Logs a stage change once: a `tracing` event when the `tracing` feature is
/// on and a subscriber is installed, else a line on stderr.
fn log(message: &str) {
    #[cfg(feature = "tracing")]
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "quiescent::signals", "{message}");
        return;
    }
    eprintln!("quiescent: {message}");
}
