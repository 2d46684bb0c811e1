//! `WaitGroup`, `Token` and the `Wait` future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::hold::{Anchor, Hold, Node};
use crate::core::state::{Core, Until};
use crate::core::sync::Arc;
use crate::core::wakers::Key;
use crate::report::Timeout;

/// The shared part of a wait group: just the counting core. Its `CLOSED` bit
/// is set only while the waiter waits (see `state::CLOSED`).
#[derive(Debug)]
pub(crate) struct Group {
    core: Core,
}

impl Node for Group {
    fn core(&self) -> &Core {
        &self.core
    }

    fn parent(&self) -> Option<&Arc<Self>> {
        None
    }
}

/// Waits for a set of [`Token`]s to be dropped.
///
/// The count lives only in tokens: [`token`](Self::token) makes one, dropping
/// it gives it back, and there is no `done()` that could be called once too
/// often. [`wait`](Self::wait) takes `&mut self`, so while someone waits
/// nobody can mint a token from the group (Go's "WaitGroup is reused before
/// previous Wait has returned"); tokens already out may still be cloned.
/// After a wait returns the group is ready for the next round.
///
/// `WaitGroup` is deliberately not `Clone`: it has one owner, the one who
/// waits. Share [`Token`]s instead, or use [`Shutdown`](crate::Shutdown) when
/// many parties need to wait.
///
/// # Examples
///
/// ```
/// use quiescent::WaitGroup;
///
/// let mut wg = WaitGroup::new();
/// for i in 0..4 {
///     // The token is taken here, before the thread exists.
///     wg.spawn(move || println!("worker {i} done"));
/// }
/// wg.wait(); // returns once all four workers have dropped their tokens
/// assert_eq!(wg.count(), 0);
/// ```
///
/// Minting a token while a wait borrows the group does not compile:
///
/// ```compile_fail,E0502
/// use quiescent::WaitGroup;
///
/// let mut wg = WaitGroup::new();
/// let waiting = wg.wait_async();
/// let late = wg.token(); // error[E0502]: `wg` is mutably borrowed by the wait
/// drop(waiting);
/// ```
///
/// # Panics
///
/// Nothing here panics. A token dropped while its thread unwinds still
/// releases its count (so `wait` never hangs on a panicked worker) and is
/// counted in [`panicked`](Self::panicked).
pub struct WaitGroup {
    group: Anchor<Group>,
}

impl WaitGroup {
    /// Creates a wait group with no tokens.
    ///
    /// ```
    /// let wg = quiescent::WaitGroup::new();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            group: Anchor::new(Group { core: Core::new() }),
        }
    }

    /// Makes a new token, raising the count by one.
    ///
    /// ```
    /// let wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// assert_eq!(wg.count(), 1);
    /// drop(token);
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn token(&self) -> Token {
        Token {
            hold: Hold::acquire(self.group.arc()),
        }
    }

    /// The number of live tokens: a snapshot, stale as soon as it returns.
    /// ```
    /// let wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// assert_eq!(wg.count(), 1);
    /// drop(token);
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn count(&self) -> usize {
        self.group.core.snapshot().count()
    }

    /// Tokens dropped while their thread was panicking, since the group was
    /// created. A non-zero value after [`wait`](Self::wait) means some work
    /// did not finish cleanly.
    ///
    /// ```
    /// let mut wg = quiescent::WaitGroup::new();
    /// let worker = wg.spawn(|| panic!("boom"));
    /// wg.wait();
    /// assert!(worker.join().is_err());
    /// assert_eq!(wg.panicked(), 1);
    /// ```
    pub fn panicked(&self) -> usize {
        // Ordered by the Acquire snapshot a caller's wait already made.
        self.group.core.panicked()
    }

    /// Blocks until every token has been dropped.
    ///
    /// Returns at once when there are none. Writes made by a token's holder
    /// before dropping it are visible after `wait` returns.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let mut wg = quiescent::WaitGroup::new();
    /// let sum = Arc::new(AtomicUsize::new(0));
    /// for i in 1..=3 {
    ///     let sum = sum.clone();
    ///     wg.spawn(move || sum.fetch_add(i, Ordering::Relaxed));
    /// }
    /// wg.wait();
    /// assert_eq!(sum.load(Ordering::Relaxed), 6);
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread; from async code use
    /// [`wait_async`](Self::wait_async).
    pub fn wait(&mut self) {
        self.wait_until(None)
            .expect("a wait without a deadline cannot time out");
    }

    /// Blocks until every token has been dropped or `timeout` has passed.
    ///
    /// Any duration is accepted: `Duration::ZERO` only checks, and a timeout
    /// too large to add to `Instant::now()` (such as `Duration::MAX`) waits
    /// without a deadline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// let err = wg.wait_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.remaining, 1);
    /// drop(token);
    /// assert!(wg.wait_timeout(Duration::ZERO).is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Timeout`] with the number of tokens still alive when time ran out.
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `timeout` at most; from async code, bound
    /// [`wait_async`](Self::wait_async) with your runtime's timeout.
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until every token has been dropped or `deadline` has passed.
    /// A deadline in the past only checks.
    ///
    /// # Errors
    ///
    /// [`Timeout`] with the number of tokens still alive at the deadline.
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mut wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(wg.wait_deadline(deadline).unwrap_err().remaining, 1);
    /// drop(token);
    /// assert!(wg.wait_deadline(deadline).is_ok());
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread until the deadline at most; from async code,
    /// bound [`wait_async`](Self::wait_async) with your runtime's timeout.
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Result<(), Timeout> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), Timeout> {
        let core = &self.group.core;
        // Fast path: nothing to wait for, nothing to announce.
        if core.snapshot().count() == 0 {
            return Ok(());
        }
        self.group.watch();
        let zero = core.wait(Until::Zero, deadline);
        self.group.unwatch();
        if zero {
            Ok(())
        } else {
            Err(Timeout {
                remaining: self.count(),
            })
        }
    }

    /// Waits asynchronously until every token has been dropped.
    ///
    /// The future works on any executor (it uses only the waker it is given).
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let mut wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// std::thread::spawn(move || drop(token));
    /// wg.wait_async().await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes removes its listener and
    /// changes nothing else; waiting again later is fine.
    pub fn wait_async(&mut self) -> Wait<'_> {
        Wait {
            group: &self.group,
            key: Key::default(),
            watching: false,
        }
    }

    /// Spawns a thread that holds a token until `f` returns (or panics).
    ///
    /// The token is taken before the thread is created, so a `wait` that
    /// follows can never miss it (Go's `Add` inside the goroutine).
    ///
    /// ```
    /// let mut wg = quiescent::WaitGroup::new();
    /// let handle = wg.spawn(|| 6 * 7);
    /// wg.wait();
    /// assert_eq!(handle.join().unwrap(), 42);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the OS fails to create a thread, like `std::thread::spawn`;
    /// the token is released before the panic propagates.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let token = self.token();
        std::thread::spawn(move || {
            let _token = token;
            f()
        })
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .field("panicked", &self.panicked())
            .finish()
    }
}

/// One count on a [`WaitGroup`]; dropping it releases the count.
///
/// Cloning a token adds a count (it cannot race with a completed wait: the
/// token being cloned keeps the count at one or more). A token may outlive
/// its group. It is one pointer wide, and `Option<Token>` is too.
///
/// ```
/// let wg = quiescent::WaitGroup::new();
/// let a = wg.token();
/// let b = a.clone();
/// assert_eq!(b.count(), 2);
/// assert_eq!(std::mem::size_of::<quiescent::Token>(), std::mem::size_of::<usize>());
/// # drop((a, b));
/// ```
///
/// Releasing a count twice is not expressible: a token moves into `drop`.
///
/// ```compile_fail,E0382
/// let wg = quiescent::WaitGroup::new();
/// let token = wg.token();
/// drop(token);
/// drop(token); // error[E0382]: use of moved value
/// ```
#[must_use = "a token releases its count when dropped; an unused token is released at once"]
#[clippy::has_significant_drop]
#[derive(Clone)]
pub struct Token {
    hold: Hold<Group>,
}

impl Token {
    /// The number of live tokens of this token's group (this one included).
    /// ```
    /// let wg = quiescent::WaitGroup::new();
    /// let token = wg.token();
    /// let clone = token.clone();
    /// assert_eq!(clone.count(), 2);
    /// drop(token);
    /// assert_eq!(clone.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        self.hold.node().core.snapshot().count()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("count", &self.count())
            .finish()
    }
}

/// Future returned by [`WaitGroup::wait_async`]; resolves when no token is
/// left.
///
/// ```
/// # futures_executor::block_on(async {
/// let mut wg = quiescent::WaitGroup::new();
/// let token = wg.token();
/// std::thread::spawn(move || drop(token));
/// wg.wait_async().await;
/// assert_eq!(wg.count(), 0);
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Wait<'a> {
    group: &'a Anchor<Group>,
    key: Key,
    /// Whether this future has set the group's `CLOSED` bit (and must clear
    /// it when it completes or is dropped).
    watching: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let core = &this.group.core;
        if !this.watching {
            if core.snapshot().count() == 0 {
                return Poll::Ready(());
            }
            this.group.watch();
            this.watching = true;
        }
        let poll = core.poll(Until::Zero, &mut this.key, cx);
        if poll.is_ready() {
            this.group.unwatch();
            this.watching = false;
        }
        poll
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        self.group.core.cancel(Until::Zero, &mut self.key);
        if self.watching {
            self.group.unwatch();
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("count", &self.group.core.snapshot().count())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_dropped_wait_future_leaves_no_listener() {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut wait = wg.wait_async();
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            assert_eq!(wait.group.core.listeners(), 1);
        }
        assert_eq!(wg.group.core.listeners(), 0);
        drop(token);
        let mut wait = wg.wait_async();
        assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
        assert_eq!(wait.group.core.listeners(), 0);
    }

    #[test]
    fn only_a_waiting_waiter_asks_for_the_zero_notification() {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(!wg.group.core.snapshot().is_closed());
        {
            let mut wait = wg.wait_async();
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            assert!(wait.group.core.snapshot().is_closed());
        }
        assert!(
            !wg.group.core.snapshot().is_closed(),
            "dropped wait left the bit"
        );
        let t = std::thread::spawn(move || drop(token));
        wg.wait_timeout(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        assert!(
            !wg.group.core.snapshot().is_closed(),
            "finished wait left the bit"
        );
        let _late = wg.token();
        assert!(wg.wait_timeout(Duration::from_millis(1)).is_err());
        assert!(
            !wg.group.core.snapshot().is_closed(),
            "timed-out wait left the bit"
        );
    }

    /// A `Wait` future polled and then leaked leaves the group watched: the
    /// next wait must neither panic nor pay a second notify reference (which
    /// would keep the group alive for ever).
    #[test]
    fn forgetting_a_wait_future_leaves_the_reference_count_exact() {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        let mut cx = Context::from_waker(Waker::noop());
        let mut wait = Box::pin(wg.wait_async());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        // Leak the future (and its listener) without running its Drop: the
        // `Box` keeps the leak on the heap, where it is expected.
        Box::leak(Box::new(wait));
        // The group is still watched (CLOSED), with one notify reference.
        assert!(wg.group.core.snapshot().is_closed());
        assert_eq!(Arc::strong_count(wg.group.arc()), 2);
        assert!(wg.wait_timeout(Duration::from_millis(1)).is_err());
        let late = wg.token();
        drop((token, late));
        wg.wait_timeout(Duration::from_secs(5)).unwrap();
        // Every notify reference was given back: only the anchor's is left.
        assert_eq!(Arc::strong_count(wg.group.arc()), 1);
        assert!(!wg.group.core.snapshot().is_closed());
    }

    #[test]
    fn a_timed_out_wait_leaves_no_listener() {
        let mut wg = WaitGroup::new();
        let _token = wg.token();
        assert!(wg.wait_timeout(Duration::from_millis(1)).is_err());
        assert_eq!(wg.group.core.listeners(), 0);
    }
}
