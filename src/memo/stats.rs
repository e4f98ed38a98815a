//! [`MemoStats`]: what a memoized function's cache did, summed over every process.

use std::collections::HashMap;

/// Counters of one memoized function, kept in one Redis hash (`{memo:<name>}.stats`, one
/// field per counter, `HINCRBY` in the same request as the read: the read script, or the
/// pipeline of a fresh hit read with plain commands), so every thread and process adds to the
/// same numbers. Read with [`Memo::stats`](super::Memo::stats), read and zero
/// atomically with [`Memo::reset_stats`](super::Memo::reset_stats).
///
/// Each call counts one of `hits`, `stale_hits` or `misses` (once its requests are done; see
/// `hits` for a miss in flight); a miss may also count a `wait` or a `default` served.
///
/// ```
/// let s = redis_caches::memo::MemoStats::default();
/// assert_eq!(s.calls(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MemoStats {
    /// Calls answered with a fresh cached value. Where fresh hits are read with plain
    /// commands (see [what a call costs](super#what-a-call-costs)) a miss counts here first
    /// and is taken back when its miss is counted: a read in between may find one hit too
    /// many per miss in flight; a call whose plain read's reply was lost may leave one, and
    /// one whose read script was sent again after a lost reply may take one too many back.
    pub hits: u64,
    /// Calls that found no cached value, or only a value of another shape (written by
    /// another build of the program), which they computed again.
    pub misses: u64,
    /// Calls answered with a stale value (older than `refresh`, younger than the TTL) while a
    /// refresh runs in the background.
    pub stale_hits: u64,
    /// Computations run for the cache, by the caller that held the refresh lock (on a miss,
    /// or in the background) or that found only another build's value. Successful or not.
    pub refreshes: u64,
    /// Calls that missed while another thread or process was computing the value, and waited
    /// for its result (single flight).
    pub waits: u64,
    /// Refreshes whose function returned an error or panicked. Nothing is stored; a stale
    /// value keeps being served until the TTL ends.
    pub failures: u64,
    /// Calls on a miss that got the [default value](super::MemoBuilder::default_value) at
    /// once, while the value is computed in the background.
    pub defaults: u64,
    /// Background refreshes dropped because the [`RefreshPool`](super::RefreshPool)'s queue
    /// was full.
    pub dropped: u64,
    /// Calls of this process whose statistics were not counted in Redis because the server
    /// refused writes (out of memory, too few replicas); kept in the process, not in Redis.
    pub unrecorded: u64,
}

impl MemoStats {
    /// `hits + stale_hits + misses`: calls that went through the cache.
    ///
    /// ```
    /// let s = redis_caches::memo::MemoStats::default();
    /// assert_eq!(s.calls(), s.hits + s.stale_hits + s.misses);
    /// ```
    pub fn calls(&self) -> u64 {
        self.hits + self.stale_hits + self.misses
    }

    pub(crate) fn from_fields(fields: HashMap<String, i64>) -> MemoStats {
        let get = |name: &str| fields.get(name).copied().unwrap_or(0).max(0) as u64;
        MemoStats {
            hits: get("hits"),
            misses: get("misses"),
            stale_hits: get("stale_hits"),
            refreshes: get("refreshes"),
            waits: get("waits"),
            failures: get("failures"),
            defaults: get("defaults"),
            dropped: get("dropped"),
            unrecorded: 0,
        }
    }
}
