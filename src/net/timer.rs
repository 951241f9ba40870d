use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, Either, select};

use crate::error::{Error, ErrorKind, Result};

/// Time, as the crate sees it: every timeout, backoff, schedule and sync window goes through
/// this trait, so tests can drive a [`ManualClock`] through "30 days" in milliseconds and
/// hosts can plug in their own runtime.
pub trait Timer: Send + Sync + fmt::Debug {
    /// A future that completes once `duration` has passed on this timer.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// The current wall-clock time on this timer.
    fn now(&self) -> SystemTime;
}

impl<T: Timer + ?Sized> Timer for Arc<T> {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// Runs `fut`, failing with a transient error naming `what` if it takes longer than `limit`.
pub async fn with_timeout<F: Future>(
    timer: &dyn Timer,
    limit: Duration,
    what: &str,
    fut: F,
) -> Result<F::Output> {
    let fut = std::pin::pin!(fut);
    match select(fut, timer.sleep(limit)).await {
        Either::Left((out, _)) => Ok(out),
        Either::Right(((), _)) => Err(Error::new(
            ErrorKind::Transient,
            format!(
                "timed out after {limit:?} waiting for {what}; the server may be overloaded, retry later"
            ),
        )),
    }
}

/// A clock that only moves when told to: for tests of timeouts, polling and sync windows.
///
/// ```
/// use mailmigrate::net::{ManualClock, Timer};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let start = clock.now();
/// let mut sleep = clock.sleep(Duration::from_secs(30 * 86_400));
/// assert!(futures::FutureExt::now_or_never(&mut sleep).is_none());
/// clock.advance(Duration::from_secs(30 * 86_400));
/// assert!(futures::FutureExt::now_or_never(&mut sleep).is_some());
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(30 * 86_400));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ClockState>>,
}

struct ClockState {
    now: SystemTime,
    next_id: u64,
    /// Sleeps not yet due that have been polled: (id, deadline, waker). A sleep removes its
    /// entry when it is dropped, so the count reflects only live sleeps.
    sleepers: Vec<(u64, SystemTime, Waker)>,
}

impl ManualClock {
    /// A clock at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }

    /// A clock at `now`.
    pub fn starting_at(now: SystemTime) -> Self {
        ManualClock {
            inner: Arc::new(Mutex::new(ClockState {
                now,
                next_id: 0,
                sleepers: Vec::new(),
            })),
        }
    }

    /// Moves time forward by `by`, waking every sleep that is now due.
    pub fn advance(&self, by: Duration) {
        let due: Vec<Waker> = {
            let mut state = lock(&self.inner);
            state.now += by;
            let now = state.now;
            let (due, waiting) = std::mem::take(&mut state.sleepers)
                .into_iter()
                .partition(|(_, at, _)| *at <= now);
            state.sleepers = waiting;
            due.into_iter().map(|(_, _, w)| w).collect()
        };
        for waker in due {
            waker.wake();
        }
    }

    /// How long until the earliest waiting sleep is due, `None` when none waits (lets a test
    /// tell which sleep the code under test is in).
    pub fn next_wake(&self) -> Option<Duration> {
        let state = lock(&self.inner);
        let now = state.now;
        state
            .sleepers
            .iter()
            .map(|(_, at, _)| at.duration_since(now).unwrap_or_default())
            .min()
    }

    /// How many sleeps are waiting: created, polled, not yet due and not dropped (lets a
    /// test wait until the code under test is idle).
    pub fn pending_sleeps(&self) -> usize {
        lock(&self.inner).sleepers.len()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner);
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("pending_sleeps", &state.sleepers.len())
            .finish()
    }
}

fn lock(m: &Mutex<ClockState>) -> std::sync::MutexGuard<'_, ClockState> {
    // A panic while holding the lock leaves consistent data (plain values), so go on.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Timer for ManualClock {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut state = lock(&self.inner);
        let deadline = state.now + duration;
        state.next_id += 1;
        let id = state.next_id;
        Box::pin(ManualSleep {
            clock: self.inner.clone(),
            id,
            deadline,
        })
    }

    fn now(&self) -> SystemTime {
        lock(&self.inner).now
    }
}

struct ManualSleep {
    clock: Arc<Mutex<ClockState>>,
    id: u64,
    deadline: SystemTime,
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        lock(&self.clock).sleepers.retain(|(id, _, _)| *id != self.id);
    }
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.clock);
        if state.now >= self.deadline {
            return Poll::Ready(());
        }
        let (id, deadline) = (self.id, self.deadline);
        match state.sleepers.iter_mut().find(|(i, _, _)| *i == id) {
            Some(entry) => entry.2 = cx.waker().clone(),
            None => state.sleepers.push((id, deadline, cx.waker().clone())),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn with_timeout_fails_transiently_once_the_clock_passes_the_limit() {
        let clock = ManualClock::new();
        let never = futures::future::pending::<()>();
        let mut fut = Box::pin(with_timeout(
            &clock,
            Duration::from_secs(5),
            "the greeting",
            never,
        ));
        assert!(fut.as_mut().now_or_never().is_none());
        clock.advance(Duration::from_secs(4));
        assert!(fut.as_mut().now_or_never().is_none());
        clock.advance(Duration::from_secs(1));
        let err = fut.now_or_never().expect("timed out").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert!(err.to_string().contains("the greeting"));
    }

    #[test]
    fn finished_and_dropped_sleeps_are_not_counted_as_pending() {
        let clock = ManualClock::new();
        let mut a = clock.sleep(Duration::from_secs(10));
        let mut b = clock.sleep(Duration::from_secs(20));
        assert!(a.as_mut().now_or_never().is_none());
        assert!(a.as_mut().now_or_never().is_none());
        assert!(b.as_mut().now_or_never().is_none());
        assert_eq!(clock.pending_sleeps(), 2);
        drop(b);
        assert_eq!(clock.pending_sleeps(), 1);
        let ok = with_timeout(&clock, Duration::from_secs(5), "x", async { 1 }).now_or_never();
        assert!(ok.is_some());
        assert_eq!(clock.pending_sleeps(), 1);
        clock.advance(Duration::from_secs(10));
        assert!(a.now_or_never().is_some());
        assert_eq!(clock.pending_sleeps(), 0);
    }

    #[test]
    fn with_timeout_passes_through_a_ready_result() {
        let clock = ManualClock::new();
        let out = with_timeout(&clock, Duration::from_secs(1), "x", async { 7 }).now_or_never();
        assert_eq!(out.unwrap().unwrap(), 7);
    }
}
