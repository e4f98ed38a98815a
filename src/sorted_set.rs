//! [`SortedSetCache<T>`]: a typed Redis sorted set, members ordered by an `f64` score.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::EncodesAs;
use crate::codec::{Codec, LazyTag, Postcard};
use crate::connection::Retry;
use crate::engine::{Engine, Pages};
use crate::error::{Error, Result};
use crate::key::IntoKey;
use crate::near::Point;
use crate::options::Builder;

/// How many members one page of [`SortedSetCache::iter`] reads, and one `ZADD` of
/// [`SortedSetCache::extend`] sends.
const BATCH: usize = 1000;

/// A typed sorted set stored under one Redis key (a Redis sorted set): members ordered by a
/// score, shared by every thread and process, as for a leaderboard or a priority queue.
///
/// Scores are `f64` and stored as given (`1.7` stays `1.7`). Members that are strings or
/// integers are stored as their plain text (`ada`, `42`), so `ZSCORE key ada` works from any
/// client; other members are encoded by the codec (see
/// [fields and members](crate::codec#fields-and-members)). Members with equal scores are
/// ordered by their stored bytes, compared byte-wise, as Redis does (so integers `10` before
/// `9`). A NaN score is refused with [`Error::InvalidScore`] before
/// anything is sent (Redis rejects NaN); infinite scores are allowed.
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`insert`](SortedSetCache::insert), [`insert_with`](SortedSetCache::insert_with) | `ZADD` (with a TTL: a script, `ZADD`, `PEXPIRE`) | 1 | resent |
/// | [`incr_score`](SortedSetCache::incr_score) | `ZINCRBY` (with a TTL: a script, `ZINCRBY`, `PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`remove`](SortedSetCache::remove) | `ZREM` (with a TTL: a script, `ZREM`, `PEXPIRE`) | 1 | resent |
/// | [`remove_range`](SortedSetCache::remove_range), [`remove_range_by_score`](SortedSetCache::remove_range_by_score) | `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE` (with a TTL: a script with `PEXPIRE`) | 1 | `OutcomeUnknown` (`remove_range`), resent (`remove_range_by_score`) |
/// | [`pop_min`](SortedSetCache::pop_min), [`pop_max`](SortedSetCache::pop_max) | `ZPOPMIN`, `ZPOPMAX` (with a TTL: a script with `PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`count`](SortedSetCache::count) | `ZCOUNT` | 1 | resent |
/// | [`score`](SortedSetCache::score), [`contains`](SortedSetCache::contains) | `ZSCORE` | 1 | resent |
/// | [`rank`](SortedSetCache::rank), [`rank_rev`](SortedSetCache::rank_rev) | `ZRANK`, `ZREVRANK` | 1 | resent |
/// | [`len`](SortedSetCache::len), [`is_empty`](SortedSetCache::is_empty) | `ZCARD` | 1 | resent |
/// | [`range`](SortedSetCache::range), [`range_rev`](SortedSetCache::range_rev) | `ZRANGE start stop [REV] WITHSCORES` | 1 | resent |
/// | [`range_by_score`](SortedSetCache::range_by_score), [`range_by_score_rev`](SortedSetCache::range_by_score_rev) | `ZRANGE min max BYSCORE [REV] [LIMIT offset count] WITHSCORES` | 1 | resent |
/// | [`iter`](SortedSetCache::iter), [`iter_rev`](SortedSetCache::iter_rev) | `ZRANGE start stop [REV] WITHSCORES`, 1,000 members a page | 1 per page | resent |
/// | [`extend`](SortedSetCache::extend) | one `ZADD` per 1,000 members (with a TTL: a script, `ZADD`, `PEXPIRE`) | 1 per 1,000 | resent |
/// | [`exists`](SortedSetCache::exists), [`clear`](SortedSetCache::clear), [`ttl`](SortedSetCache::ttl), [`expire`](SortedSetCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 | resent |
///
/// Every write applies the [TTL](Builder::ttl) as the [policy](crate::TtlPolicy) says, in the
/// same round trip.
///
/// # Example: a leaderboard
///
/// ```no_run
/// use redis_caches::SortedSetCache;
/// use redis_caches::sorted_set::Limit;
///
/// let board: SortedSetCache<String> = SortedSetCache::new(("game", 1, "scores"));
/// board.insert("ada", 310.5)?;
/// board.insert("bob", 120.0)?;
/// board.insert("cyd", 250.0)?;
/// board.incr_score("bob", 200.0)?; // bob now has 320
///
/// let top3 = board.range_rev(0..3)?;
/// assert_eq!(top3[0], ("bob".to_string(), 320.0));
/// assert_eq!(board.rank_rev("ada")?, Some(1));
///
/// // Everybody from 200 up, best first, the first two only.
/// let good = board.range_by_score_rev(200.0.., Limit::first(2))?;
/// assert_eq!(good.len(), 2);
/// # Ok::<(), redis_caches::Error>(())
/// ```
///
/// # Example: a priority queue
///
/// ```no_run
/// use redis_caches::SortedSetCache;
///
/// let queue: SortedSetCache<String> = SortedSetCache::new("jobs");
/// queue.insert("rebuild-index", 2.0)?;
/// queue.insert("send-mail", 1.0)?;
/// // Each job goes to exactly one worker, however many pop at once.
/// while let Some((job, priority)) = queue.pop_min()? {
///     println!("{job} ({priority})");
/// }
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct SortedSetCache<T, C = Postcard> {
    engine: Arc<Engine<C>>,
    tag: Arc<LazyTag>,
    _member: PhantomData<fn() -> T>,
}

crate::handle::collection_handle! {
    SortedSetCache[T],
    redis_type: "zset",
    extra: (),
    clone: { engine, tag, _member },
    from_engine: |engine, ()| SortedSetCache {
        engine: Arc::new(engine),
        tag: Arc::new(LazyTag::default()),
        _member: PhantomData,
    },
}

impl<T> SortedSetCache<T> {
    /// A handle for the sorted set at `key`, on the default connection, postcard-encoded,
    /// without a TTL. No I/O.
    ///
    /// ```
    /// let s: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new(("game", 1, "scores"));
    /// # let _ = s;
    /// ```
    pub fn new(key: impl IntoKey) -> Self {
        Self::builder(key).build()
    }

    /// A [`Builder`] for the sorted set at `key`, to set the connection, prefix, TTL or codec.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = redis_caches::SortedSetCache::<u64>::builder("recent").ttl(Duration::from_secs(600)).build();
    /// # let _ = s;
    /// ```
    pub fn builder(key: impl IntoKey) -> Builder<Self> {
        Builder::new(key)
    }
}

/// When [`SortedSetCache::insert_with`] adds a member or changes its score: `ZADD`'s `NX`,
/// `XX`, `GT` and `LT` flags, as one choice so that no invalid combination can be asked for.
///
/// ```
/// use redis_caches::sorted_set::InsertMode;
/// assert_eq!(InsertMode::default(), InsertMode::Always);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InsertMode {
    /// Add a new member, or set the score of an existing one (plain `ZADD`).
    #[default]
    Always,
    /// Only add new members; never change an existing score (`NX`).
    OnlyNew,
    /// Only change the score of existing members; never add one (`XX`).
    OnlyExisting,
    /// Add new members; change an existing score only to a greater one (`GT`), as for a
    /// high score table.
    NewOrGreater,
    /// Add new members; change an existing score only to a smaller one (`LT`), as for a
    /// best time.
    NewOrLess,
    /// Never add; change an existing score only to a greater one (`XX GT`).
    ExistingIfGreater,
    /// Never add; change an existing score only to a smaller one (`XX LT`).
    ExistingIfLess,
}

impl InsertMode {
    fn flags(self) -> &'static [&'static str] {
        match self {
            InsertMode::Always => &[],
            InsertMode::OnlyNew => &["NX"],
            InsertMode::OnlyExisting => &["XX"],
            InsertMode::NewOrGreater => &["GT"],
            InsertMode::NewOrLess => &["LT"],
            InsertMode::ExistingIfGreater => &["XX", "GT"],
            InsertMode::ExistingIfLess => &["XX", "LT"],
        }
    }
}

/// Which part of a score range [`SortedSetCache::range_by_score`] returns: skip `offset`
/// members, then at most `count` (`ZRANGE ... LIMIT offset count`). The limit is exact:
/// Redis sends no more than `count` members.
///
/// ```
/// use redis_caches::sorted_set::Limit;
/// assert_eq!(Limit::first(3), Limit::new(0, 3));
/// assert_eq!(Limit::ALL.count(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    offset: usize,
    count: Option<usize>,
}

impl Limit {
    /// Every member of the range.
    pub const ALL: Limit = Limit {
        offset: 0,
        count: None,
    };

    /// The first `count` members of the range.
    pub fn first(count: usize) -> Limit {
        Limit {
            offset: 0,
            count: Some(count),
        }
    }

    /// `count` members after skipping `offset`: page `p` of size `n` is `Limit::new(p * n, n)`.
    pub fn new(offset: usize, count: usize) -> Limit {
        Limit {
            offset,
            count: Some(count),
        }
    }

    /// Every member after skipping `offset`.
    pub fn skip(offset: usize) -> Limit {
        Limit {
            offset,
            count: None,
        }
    }

    /// How many members are skipped.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The most members returned; `None` for no limit.
    pub fn count(&self) -> Option<usize> {
        self.count
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit::ALL
    }
}

/// A score as Redis reads it (`inf`, `-inf`, or the shortest decimal that round-trips).
fn score_arg(score: f64) -> String {
    if score == f64::INFINITY {
        "+inf".to_string()
    } else if score == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        format!("{score:?}")
    }
}

/// The `start` and `stop` ranks of `ZRANGE`/`ZREMRANGEBYRANK` for `ranks`; `None` for an
/// empty range.
fn rank_bounds(ranks: &impl RangeBounds<usize>) -> Option<(i64, i64)> {
    let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let start = match ranks.start_bound() {
        Bound::Included(&s) => clamp(s),
        Bound::Excluded(&s) => clamp(s).saturating_add(1),
        Bound::Unbounded => 0,
    };
    let stop = match ranks.end_bound() {
        Bound::Included(&e) => clamp(e),
        Bound::Excluded(&0) => return None,
        Bound::Excluded(&e) => clamp(e) - 1,
        Bound::Unbounded => -1,
    };
    if stop >= 0 && stop < start {
        return None;
    }
    Some((start, stop))
}

/// A score bound for `ZRANGE ... BYSCORE`: `1.5`, `(1.5` (exclusive) or `-inf`/`+inf`.
fn bound_arg(bound: Bound<&f64>, unbounded: &str) -> String {
    match bound {
        Bound::Included(s) => score_arg(*s),
        Bound::Excluded(s) => format!("({}", score_arg(*s)),
        Bound::Unbounded => unbounded.to_string(),
    }
}

impl<T, C> SortedSetCache<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    /// Adds `member` with `score`, or sets the score of an existing member; true when the
    /// member is new. `ZADD` (with a TTL: a script running `ZADD` and `PEXPIRE`), one round
    /// trip. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`] for a NaN score (nothing is sent), [`Error::Encode`],
    /// [`Error::ValueTooLarge`], [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// assert!(board.insert("ada", 10.5)?);
    /// assert!(!board.insert("ada", 12.0)?); // updated, not new
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn insert<Q>(&self, member: &Q, score: f64) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        let score = self.check_score(score)?;
        self.write(
            "ZADD",
            |cmd| {
                cmd.arg(&score).arg(&bytes);
            },
            Retry::Idempotent,
        )
    }

    /// Adds or updates `member` as `mode` allows (`ZADD` with `NX`, `XX`, `GT` or `LT`);
    /// true when the member was added or its score changed (`ZADD ... CH`). `ZADD` (with a
    /// TTL: a script running `ZADD` and `PEXPIRE`), one round trip. The TTL is applied even
    /// when `mode` leaves the set unchanged.
    ///
    /// # Errors
    ///
    /// As [`insert`](SortedSetCache::insert).
    ///
    /// ```no_run
    /// use redis_caches::{SortedSetCache, sorted_set::InsertMode};
    /// let best: SortedSetCache<String> = SortedSetCache::new("high-scores");
    /// best.insert_with("ada", 300.0, InsertMode::NewOrGreater)?;
    /// // A lower score does not replace a high score.
    /// assert!(!best.insert_with("ada", 200.0, InsertMode::NewOrGreater)?);
    /// assert_eq!(best.score("ada")?, Some(300.0));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn insert_with<Q>(&self, member: &Q, score: f64, mode: InsertMode) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        let score = self.check_score(score)?;
        self.write(
            "ZADD",
            |cmd| {
                cmd.arg(mode.flags()).arg("CH").arg(&score).arg(&bytes);
            },
            Retry::Idempotent,
        )
    }

    /// The score of `member`, or `None` when it is not in the set. `ZSCORE`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// if let Some(points) = board.score("ada")? { println!("ada: {points}"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn score<Q>(&self, member: &Q) -> Result<Option<f64>>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        match self.engine.read_point(Point::Score(&bytes))? {
            None => Ok(None),
            Some(text) => std::str::from_utf8(&text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    Error::decode(
                        self.engine.key_for_errors(),
                        "ZSCORE did not return a number",
                    )
                }),
        }
    }

    /// Whether `member` is in the set. `ZSCORE`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`score`](SortedSetCache::score).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// let playing = board.contains("ada")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains<Q>(&self, member: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.score(member)?.is_some())
    }

    /// The 0-based position of `member` in ascending order (lowest score first), or `None`
    /// when it is not in the set. `ZRANK`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`score`](SortedSetCache::score).
    ///
    /// ```no_run
    /// let times: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("lap-times");
    /// if times.rank("ada")? == Some(0) { println!("ada is fastest"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn rank<Q>(&self, member: &Q) -> Result<Option<usize>>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        self.read("ZRANK", &bytes)
    }

    /// The 0-based position of `member` in descending order (highest score first), or `None`
    /// when it is not in the set. `ZREVRANK`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`score`](SortedSetCache::score).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// if let Some(r) = board.rank_rev("ada")? { println!("ada is #{}", r + 1); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn rank_rev<Q>(&self, member: &Q) -> Result<Option<usize>>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        self.read("ZREVRANK", &bytes)
    }

    /// Adds `by` to the score of `member` atomically (a missing member starts at 0) and
    /// returns the new score. `ZINCRBY` (with a TTL: a script running `ZINCRBY` and
    /// `PEXPIRE`), one round trip. Not sent again after a lost reply:
    /// [`Error::OutcomeUnknown`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`] when `by` is NaN (nothing is sent); a Redis error when the sum
    /// would be NaN (`inf` plus `-inf`); as [`insert`](SortedSetCache::insert) otherwise.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// let now = board.incr_score("ada", 25.0)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn incr_score<Q>(&self, member: &Q, by: f64) -> Result<f64>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        let by = self.check_score(by)?;
        self.write(
            "ZINCRBY",
            |cmd| {
                cmd.arg(&by).arg(&bytes);
            },
            Retry::Once,
        )
    }

    /// Removes `member`; true when it was in the set. `ZREM` (with a TTL: a script running
    /// `ZREM` and `PEXPIRE`), one round trip. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// let was_there = board.remove("ada")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<Q>(&self, member: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(member)?;
        self.write(
            "ZREM",
            |cmd| {
                cmd.arg(&bytes);
            },
            Retry::Idempotent,
        )
    }

    /// Removes the members at the positions `ranks` in ascending order (0 is the lowest
    /// score) and returns how many were removed. `ZREMRANGEBYRANK` (with a TTL: a script
    /// running it and `PEXPIRE`), one round trip. Not sent again after a lost reply (the
    /// positions move): [`Error::OutcomeUnknown`].
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// // Keep the top 100: remove everyone below them.
    /// let dropped = board.remove_range(..board.len()?.saturating_sub(100))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove_range(&self, ranks: impl RangeBounds<usize>) -> Result<usize> {
        let Some((start, stop)) = rank_bounds(&ranks) else {
            return Ok(0);
        };
        self.write(
            "ZREMRANGEBYRANK",
            |cmd| {
                cmd.arg(start).arg(stop);
            },
            Retry::Once,
        )
    }

    /// Removes the members whose scores are in `scores` and returns how many were removed.
    /// `ZREMRANGEBYSCORE` (with a TTL: a script running it and `PEXPIRE`), one round trip.
    /// Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`] for a NaN bound (nothing is sent), [`Error::WrongType`],
    /// connection errors.
    ///
    /// ```no_run
    /// let events: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("events-by-time");
    /// let expired = events.remove_range_by_score(..1_700_000_000.0)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove_range_by_score(&self, scores: impl RangeBounds<f64>) -> Result<usize> {
        let (min, max) = self.score_bounds(&scores)?;
        self.write(
            "ZREMRANGEBYSCORE",
            |cmd| {
                cmd.arg(&min).arg(&max);
            },
            Retry::Idempotent,
        )
    }

    /// How many members have a score in `scores`. `ZCOUNT`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`] for a NaN bound (nothing is sent), [`Error::WrongType`],
    /// connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// let passing = board.count(50.0..)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn count(&self, scores: impl RangeBounds<f64>) -> Result<usize> {
        let (min, max) = self.score_bounds(&scores)?;
        let mut cmd = redis::cmd("ZCOUNT");
        cmd.arg(&self.engine.resolved()?.key).arg(&min).arg(&max);
        self.engine.query(&cmd, Retry::Idempotent)
    }

    /// The number of members. `ZCARD`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// println!("{} players", board.len()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(&self.engine.resolved()?.key);
        self.engine.query(&cmd, Retry::Idempotent)
    }

    /// Whether the set has no members (a missing key is an empty set). `ZCARD`, one round
    /// trip.
    ///
    /// # Errors
    ///
    /// As [`len`](SortedSetCache::len).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// if board.is_empty()? { println!("no players yet"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes and returns the member with the lowest score, with its score, or `None` when
    /// the set is empty. Among equal scores, the member whose encoded bytes sort first.
    /// `ZPOPMIN` (with a TTL: a script running it and `PEXPIRE`), one round trip. Not sent
    /// again after a lost reply: [`Error::OutcomeUnknown`].
    ///
    /// If several threads or processes pop at once, each member goes to exactly one of them.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the key when the popped member is not a `T` of this codec
    /// (it is removed all the same); [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let queue: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("jobs");
    /// if let Some((job, priority)) = queue.pop_min()? { println!("{job} at {priority}"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pop_min(&self) -> Result<Option<(T, f64)>> {
        self.pop("ZPOPMIN")
    }

    /// Removes and returns the member with the highest score, with its score, or `None` when
    /// the set is empty. `ZPOPMAX` (with a TTL: a script running it and `PEXPIRE`), one round
    /// trip. Not sent again after a lost reply: [`Error::OutcomeUnknown`].
    ///
    /// # Errors
    ///
    /// As [`pop_min`](SortedSetCache::pop_min).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// if let Some((winner, points)) = board.pop_max()? { println!("{winner} won with {points}"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pop_max(&self) -> Result<Option<(T, f64)>> {
        self.pop("ZPOPMAX")
    }

    /// The members at the positions `ranks` in ascending order (0 is the lowest score), with
    /// their scores: `range(0..10)` is the bottom ten. `ZRANGE key start stop WITHSCORES`, one
    /// round trip, all the members in one reply.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the key; [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let times: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("lap-times");
    /// let podium = times.range(0..3)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn range(&self, ranks: impl RangeBounds<usize>) -> Result<Vec<(T, f64)>> {
        self.rank_range(ranks, false)
    }

    /// The members at the positions `ranks` in descending order (0 is the highest score),
    /// with their scores: `range_rev(0..3)` is the top three. `ZRANGE key start stop REV
    /// WITHSCORES`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`range`](SortedSetCache::range).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// for (player, points) in board.range_rev(0..3)? { println!("{player}: {points}"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn range_rev(&self, ranks: impl RangeBounds<usize>) -> Result<Vec<(T, f64)>> {
        self.rank_range(ranks, true)
    }

    /// The members whose scores are in `scores`, lowest first, within `limit`:
    /// `range_by_score(10.0..20.0, Limit::first(5))`. Exclusive and open bounds work
    /// (`(10.0..)`, `..=20.0`). `ZRANGE key min max BYSCORE [LIMIT offset count] WITHSCORES`,
    /// one round trip; Redis sends exactly the members asked for.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`] for a NaN bound (nothing is sent); as
    /// [`range`](SortedSetCache::range) otherwise.
    ///
    /// ```no_run
    /// use redis_caches::{SortedSetCache, sorted_set::Limit};
    /// let events: SortedSetCache<String> = SortedSetCache::new("events-by-time");
    /// let page2 = events.range_by_score(1_700_000_000.0..1_800_000_000.0, Limit::new(50, 50))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn range_by_score(
        &self,
        scores: impl RangeBounds<f64>,
        limit: Limit,
    ) -> Result<Vec<(T, f64)>> {
        self.score_range(scores, limit, false)
    }

    /// The members whose scores are in `scores`, highest first, within `limit`.
    /// `ZRANGE key max min BYSCORE REV [LIMIT offset count] WITHSCORES`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`range_by_score`](SortedSetCache::range_by_score).
    ///
    /// ```no_run
    /// use redis_caches::{SortedSetCache, sorted_set::Limit};
    /// let board: SortedSetCache<String> = SortedSetCache::new("board");
    /// let best_passing = board.range_by_score_rev(50.0.., Limit::first(10))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn range_by_score_rev(
        &self,
        scores: impl RangeBounds<f64>,
        limit: Limit,
    ) -> Result<Vec<(T, f64)>> {
        self.score_range(scores, limit, true)
    }

    /// Iterates over the members with their scores, lowest first, reading pages of 1,000 by
    /// rank (`ZRANGE key start stop WITHSCORES`): bounded memory, one round trip per page, the
    /// first at the first `next()`. After an error the iterator ends.
    ///
    /// Pages are read by position, so a write between two pages shifts what the next page
    /// sees: an insert or score change below the current position makes a member come
    /// twice, a removal there makes one be skipped. Use
    /// [`range_by_score`](SortedSetCache::range_by_score) for a consistent view of a range.
    /// If the sorted set is deleted, or expires, during the iteration, the iteration ends
    /// early without an error: the next page comes back empty.
    ///
    /// # Errors
    ///
    /// Each item is a `Result`: [`Error::Decode`] naming the key, [`Error::WrongType`],
    /// connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// for entry in board.iter() {
    ///     let (player, points) = entry?;
    ///     println!("{player}: {points}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<T, C> {
        Iter::new(self.clone(), false)
    }

    /// Iterates over the members with their scores, highest first, in pages of 1,000
    /// (`ZRANGE key start stop REV WITHSCORES`). See [`iter`](SortedSetCache::iter).
    ///
    /// # Errors
    ///
    /// As [`iter`](SortedSetCache::iter).
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// for entry in board.iter_rev().take(100) {
    ///     let (player, points) = entry?;
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn iter_rev(&self) -> Iter<T, C> {
        Iter::new(self.clone(), true)
    }

    /// Adds every `(member, score)` pair (setting the score of members already there);
    /// returns how many members were new. One `ZADD` per 1,000 pairs (with a TTL: a script
    /// running it and `PEXPIRE`): one round trip per 1,000 pairs, each with its own
    /// `timeout`, none when `items` is empty. Accepts borrowed members
    /// (`extend([("ada", 1.0)])` on a `SortedSetCache<String>`): see [`EncodesAs`].
    ///
    /// Each batch is atomic on its own, not the whole call: when a batch fails (a NaN score,
    /// a member that does not encode, a lost connection), the batches before it are stored
    /// and nothing of that batch is sent. A member given twice keeps its last score.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScore`], [`Error::Encode`], [`Error::ValueTooLarge`],
    /// [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let board: redis_caches::SortedSetCache<String> = redis_caches::SortedSetCache::new("board");
    /// board.extend([("ada", 10.0), ("bob", 7.5)])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn extend<I, M>(&self, items: I) -> Result<usize>
    where
        I: IntoIterator<Item = (M, f64)>,
        M: EncodesAs<T>,
    {
        let mut call = self.engine.call()?;
        let mut added = 0;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch = items
                .by_ref()
                .take(BATCH)
                .map(|(member, score)| Ok((self.check_score(score)?, self.encode(&member)?)))
                .collect::<Result<Vec<_>>>()?;
            call.next_batch();
            let n: usize = self.engine.write(
                &mut call,
                "ZADD",
                |cmd| {
                    for (score, member) in &batch {
                        cmd.arg(score).arg(member);
                    }
                },
                Retry::Idempotent,
            )?;
            added += n;
        }
        Ok(added)
    }

    crate::handle::key_methods! {
        handle: "redis_caches::SortedSetCache::<u8>::new(\"k\")",
        exists: "Whether the key exists (an empty sorted set does not: Redis deletes it).",
        clear: "Deletes the whole sorted set; true when it existed.",
        ttl: "The key's remaining time to live.",
        expire: "Sets the key's time to live now; false when the key does not exist.",
    }

    /// Encodes a member by the field rule (plain text for strings and integers, see
    /// [`codec`](crate::codec#fields-and-members)).
    fn encode<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<Vec<u8>> {
        self.engine.encode_member(self.tag(), value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        self.engine
            .decode_member(self.tag(), bytes, || self.engine.key_for_errors())
    }

    fn tag(&self) -> &crate::codec::TypeTag {
        self.tag.get::<T>(self.engine.schema_version())
    }

    /// `command key member`, one round trip.
    fn read<R: redis::FromRedisValue>(&self, command: &str, member: &[u8]) -> Result<R> {
        let mut cmd = redis::cmd(command);
        cmd.arg(&self.engine.resolved()?.key).arg(member);
        self.engine.query(&cmd, Retry::Idempotent)
    }

    /// A write with the collection's TTL, one round trip.
    fn write<R: redis::FromRedisValue>(
        &self,
        command: &str,
        args: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<R> {
        self.engine
            .write(&mut self.engine.call()?, command, args, retry)
    }

    /// The score as a command argument, or [`Error::InvalidScore`] for NaN.
    fn check_score(&self, score: f64) -> Result<String> {
        if score.is_nan() {
            return Err(Error::InvalidScore {
                key: self.engine.key_for_errors(),
            });
        }
        if let Some(why) = self.engine.options.layout.refuse_score(score) {
            return Err(Error::encode(self.engine.key_for_errors(), why));
        }
        Ok(score_arg(score))
    }

    /// The `min` and `max` arguments for `scores`, or [`Error::InvalidScore`] for a NaN bound.
    fn score_bounds(&self, scores: &impl RangeBounds<f64>) -> Result<(String, String)> {
        let bounds = [scores.start_bound(), scores.end_bound()];
        if bounds
            .iter()
            .any(|b| matches!(b, Bound::Included(s) | Bound::Excluded(s) if s.is_nan()))
        {
            return Err(Error::InvalidScore {
                key: self.engine.key_for_errors(),
            });
        }
        Ok((
            bound_arg(scores.start_bound(), "-inf"),
            bound_arg(scores.end_bound(), "+inf"),
        ))
    }

    fn pop(&self, command: &str) -> Result<Option<(T, f64)>> {
        let reply: redis::Value = self.write(command, |_| {}, Retry::Once)?;
        Ok(self.pairs(reply)?.into_iter().next())
    }

    fn rank_range(&self, ranks: impl RangeBounds<usize>, rev: bool) -> Result<Vec<(T, f64)>> {
        match rank_bounds(&ranks) {
            Some((start, stop)) => self.zrange(start, stop, rev),
            None => Ok(Vec::new()),
        }
    }

    fn zrange(&self, start: i64, stop: i64, rev: bool) -> Result<Vec<(T, f64)>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.engine.resolved()?.key).arg(start).arg(stop);
        if rev {
            cmd.arg("REV");
        }
        cmd.arg("WITHSCORES");
        let reply: redis::Value = self.engine.query(&cmd, Retry::Idempotent)?;
        self.pairs(reply)
    }

    fn score_range(
        &self,
        scores: impl RangeBounds<f64>,
        limit: Limit,
        rev: bool,
    ) -> Result<Vec<(T, f64)>> {
        let (min, max) = self.score_bounds(&scores)?;
        if limit.count == Some(0) {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.engine.resolved()?.key);
        if rev {
            cmd.arg(&max).arg(&min).arg("BYSCORE").arg("REV");
        } else {
            cmd.arg(&min).arg(&max).arg("BYSCORE");
        }
        if limit != Limit::ALL {
            let count = limit
                .count
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            cmd.arg("LIMIT").arg(limit.offset).arg(count);
        }
        cmd.arg("WITHSCORES");
        let reply: redis::Value = self.engine.query(&cmd, Retry::Idempotent)?;
        self.pairs(reply)
    }

    /// Member/score pairs from a `WITHSCORES` or `ZPOPMIN` reply: flat (`[m, s, m, s]`,
    /// RESP2) or nested (`[[m, s], ...]`, RESP3).
    fn pairs(&self, reply: redis::Value) -> Result<Vec<(T, f64)>> {
        let malformed = |what: &str| {
            Error::decode(
                self.engine.key_for_errors(),
                format_args!("unexpected reply from redis: {what}"),
            )
        };
        let items = match reply {
            redis::Value::Nil => return Ok(Vec::new()),
            redis::Value::Array(items) => items,
            _ => return Err(malformed("not an array")),
        };
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match item {
                redis::Value::Array(pair) => flat.extend(pair),
                other => flat.push(other),
            }
        }
        if flat.len() % 2 != 0 {
            return Err(malformed("an odd number of items"));
        }
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(member), Some(score)) = (it.next(), it.next()) {
            let member: Vec<u8> =
                redis::from_redis_value(member).map_err(|_| malformed("a member is not bytes"))?;
            let score: f64 =
                redis::from_redis_value(score).map_err(|_| malformed("a score is not a number"))?;
            out.push((self.decode(&member)?, score));
        }
        Ok(out)
    }
}

/// The iterator of [`SortedSetCache::iter`] and [`SortedSetCache::iter_rev`]: members with
/// their scores, read in pages of 1,000 by rank.
///
/// Holds a clone of the handle, so it does not borrow the set.
pub struct Iter<T, C = Postcard> {
    set: SortedSetCache<T, C>,
    rev: bool,
    /// Members read ahead, and the rank of the next page.
    pages: Pages<i64, (T, f64)>,
}

impl<T, C> Iter<T, C> {
    fn new(set: SortedSetCache<T, C>, rev: bool) -> Self {
        Iter {
            set,
            rev,
            pages: Pages::new(0),
        }
    }
}

impl<T, C: Codec> fmt::Debug for Iter<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("set", &self.set)
            .field("rev", &self.rev)
            .field("next_rank", &self.pages.next_position())
            .field("buffered", &self.pages.buffered())
            .finish()
    }
}

impl<T, C> Iterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    type Item = Result<(T, f64)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (set, rev) = (&self.set, self.rev);
        let page = BATCH as i64;
        self.pages.next(|start| {
            let items = set.zrange(start, start + page - 1, rev)?;
            let next = (items.len() as i64 == page).then_some(start + page);
            Ok((items, next))
        })
    }
}

impl<T, C> std::iter::FusedIterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
}

impl<T, C> IntoIterator for &SortedSetCache<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    type Item = Result<(T, f64)>;
    type IntoIter = Iter<T, C>;

    /// Same as [`SortedSetCache::iter`]: ascending.
    fn into_iter(self) -> Iter<T, C> {
        self.iter()
    }
}
