//! One deadline per call: however many replies, retries or batches a call waits for, it
//! waits for all of them together at most its budget (the DSN's `timeout`).
//!
//! Arithmetic saturates: a budget too large for `Instant` (`Duration::MAX`) means no deadline,
//! never a panic.

use std::time::{Duration, Instant};

/// When a call must be over. `None` budget: no limit (`timeout=0`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `budget` from now; `None` (or a budget beyond what `Instant` can hold) never
    /// expires.
    pub(crate) fn after(budget: Option<Duration>) -> Deadline {
        Deadline {
            at: budget.and_then(|b| Instant::now().checked_add(b)),
        }
    }

    /// A deadline that never expires.
    pub(crate) fn never() -> Deadline {
        Deadline { at: None }
    }

    /// The earlier of `self` and `budget` from now.
    pub(crate) fn capped(&self, budget: Duration) -> Deadline {
        let other = Deadline::after(Some(budget));
        match (self.at, other.at) {
            (Some(a), Some(b)) if a <= b => *self,
            (None, None) => *self,
            (Some(_), None) => *self,
            _ => other,
        }
    }

    /// The time left: `None` without a limit, `Some(ZERO)` once expired.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Sleeps `pause`, or less when the deadline comes first. False when no time is left
    /// after it.
    pub(crate) fn sleep(&self, pause: Duration) -> bool {
        let pause = match self.remaining() {
            Some(left) => pause.min(left),
            None => pause,
        };
        std::thread::sleep(pause);
        !self.expired()
    }
}

/// The deadline of one call, started when the call first needs it: opening a connection
/// (bounded by `connect_timeout` on its own) and waiting for a pooled one (bounded by
/// `pool_timeout`) happen before the clock starts; everything after shares the budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    budget: Option<Duration>,
    started: Option<Deadline>,
}

impl Call {
    /// A call whose replies may take `budget` together (`None`: no limit).
    pub(crate) fn new(budget: Option<Duration>) -> Call {
        Call {
            budget,
            started: None,
        }
    }

    /// The deadline, starting the clock if it has not started yet.
    pub(crate) fn deadline(&mut self) -> Deadline {
        *self
            .started
            .get_or_insert_with(|| Deadline::after(self.budget))
    }

    /// The deadline if the clock has started.
    pub(crate) fn started(&self) -> Option<Deadline> {
        self.started
    }

    /// Starts the next batch of a bulk operation: a fresh budget.
    pub(crate) fn next_batch(&mut self) {
        self.started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_budget_never_expires() {
        let d = Deadline::after(None);
        assert_eq!(d.remaining(), None);
        assert!(!d.expired());
        assert!(!Deadline::never().expired());
    }

    #[test]
    fn huge_budgets_saturate_instead_of_panicking() {
        let d = Deadline::after(Some(Duration::MAX));
        assert!(!d.expired());
        assert_eq!(d.remaining(), None, "too far to represent: no deadline");
        // Capping an unrepresentable deadline gives the cap.
        let capped = d.capped(Duration::from_millis(50));
        assert!(capped.remaining().unwrap() <= Duration::from_millis(50));
    }

    #[test]
    fn a_zero_budget_is_expired_at_once() {
        let d = Deadline::after(Some(Duration::ZERO));
        assert!(d.expired());
        assert_eq!(d.remaining(), Some(Duration::ZERO));
        assert!(
            !d.sleep(Duration::from_secs(10)),
            "sleeps nothing past the deadline"
        );
    }

    #[test]
    fn remaining_shrinks() {
        let d = Deadline::after(Some(Duration::from_millis(200)));
        std::thread::sleep(Duration::from_millis(20));
        let left = d.remaining().unwrap();
        assert!(left <= Duration::from_millis(180), "{left:?}");
        assert!(left > Duration::ZERO);
    }

    #[test]
    fn a_call_starts_its_clock_once() {
        let mut call = Call::new(Some(Duration::from_millis(100)));
        assert!(call.started().is_none());
        let first = call.deadline();
        std::thread::sleep(Duration::from_millis(5));
        let second = call.deadline();
        assert_eq!(first.at, second.at, "the same deadline");
        assert!(second.remaining().unwrap() <= Duration::from_millis(95));
        call.next_batch();
        assert!(call.started().is_none());
        assert!(call.deadline().remaining().unwrap() > Duration::from_millis(95));
    }

    #[test]
    fn capped_takes_the_earlier() {
        let long = Deadline::after(Some(Duration::from_secs(60)));
        let c = long.capped(Duration::from_millis(10));
        assert!(c.remaining().unwrap() <= Duration::from_millis(10));
        let short = Deadline::after(Some(Duration::from_millis(10)));
        let c = short.capped(Duration::from_secs(60));
        assert!(c.remaining().unwrap() <= Duration::from_millis(10));
        let none = Deadline::never().capped(Duration::from_millis(10));
        assert!(none.remaining().unwrap() <= Duration::from_millis(10));
    }
}
