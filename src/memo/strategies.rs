//! Other shapes of cached results on top of [`Memo`]: a cached counter, a cached list, a
//! cached hash field.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Memo, MemoBuilder, MemoStats, Mode, Storage, Stored, scripts, versioned};
use crate::codec::{Codec, CodecError, Postcard, Raw, TypeTag};
use crate::connection::Retry;
use crate::error::{Error, Result};

impl<A, R, E> MemoBuilder<A, R, E>
where
    A: Serialize + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    /// Builds a memo whose results are fields of one hash, `{memo:<name>}.h`, one field per
    /// arguments (a static hash key, a templated field, see
    /// [`key_template`](MemoBuilder::key_template)). `HGET`/`HSET` instead of `GET`/`SET`,
    /// same round trips as [`Memo`].
    ///
    /// Redis 7.0 has no TTL per hash field, so a [`ttl`](MemoBuilder::ttl) applies to the
    /// whole hash, from its creation (`PEXPIRE NX`): every field is gone at most `ttl` after
    /// it was stored, some sooner. [`refresh`](MemoBuilder::refresh) is not available (the
    /// first call returns [`Error::Config`]).
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let title = Memo::builder("item", |id: u64| format!("item #{id}"))
    ///     .key_template("{0}")
    ///     .build_hash_field();
    /// # let _ = title;
    /// ```
    pub fn build_hash_field(mut self) -> Memo<A, R, E> {
        self.storage_mode(Mode::HashField);
        self.build()
    }
}

impl<A, E> MemoBuilder<A, i64, E>
where
    A: Serialize + 'static,
{
    /// Builds a cached counter: the function's integer result is stored as a plain Redis
    /// integer ([`Raw`] codec), which [`MemoCounter::incr`], [`decr`](MemoCounter::decr) and
    /// [`set`](MemoCounter::set) change in place.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let views = Memo::builder("views", |page: u32| i64::from(page) * 10).build_counter();
    /// # let _ = views;
    /// ```
    pub fn build_counter(mut self) -> MemoCounter<A, E> {
        self.refuse_in_region("a counter");
        self.set_storage(Storage::value(Raw));
        MemoCounter { memo: self.build() }
    }
}

impl<A, T, E> MemoBuilder<A, Vec<T>, E>
where
    A: Serialize + 'static,
    T: Serialize + DeserializeOwned + 'static,
{
    /// Builds a cached list: the function's `Vec<T>` is stored as a real Redis list, one
    /// postcard-encoded element per item, order kept, TTL honoured.
    /// [`MemoList::push`] appends to a cached list.
    ///
    /// An empty result is not cached (an empty list does not exist in Redis): it is computed
    /// again at the next call.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let recent = Memo::builder("recent", |user: u32| vec![user, user + 1]).build_list();
    /// # let _ = recent;
    /// ```
    pub fn build_list(self) -> MemoList<A, T, E> {
        self.build_list_with(Postcard)
    }

    /// [`build_list`](MemoBuilder::build_list) with the elements encoded by `codec` (e.g.
    /// [`Raw`] for integers or strings readable with `LRANGE` in `redis-cli`).
    ///
    /// ```
    /// use redis_caches::{codec::Raw, memo::Memo};
    /// let ids = Memo::builder("ids", |n: u32| (0..n).collect::<Vec<u32>>()).build_list_with(Raw);
    /// # let _ = ids;
    /// ```
    pub fn build_list_with<C: Codec>(mut self, codec: C) -> MemoList<A, T, E> {
        self.refuse_in_region("a list");
        let tag = Arc::new(TypeTag::of::<T>());
        let (enc_codec, enc_tag) = (codec.clone(), tag.clone());
        let dec_tag = tag.clone();
        let dec_codec = codec.clone();
        self.set_storage(Storage {
            mode: Mode::List,
            encode: Arc::new(move |items: &Vec<T>, version| {
                let tag = versioned(&enc_tag, version);
                items
                    .iter()
                    .map(|item| enc_codec.encode(item, &tag))
                    .collect()
            }),
            decode: Arc::new(move |stored, version| match stored {
                Stored::Many(items) => {
                    let tag = versioned(&dec_tag, version);
                    items
                        .iter()
                        .map(|bytes| dec_codec.decode(bytes, &tag))
                        .collect()
                }
                Stored::One(_) => Err(CodecError::new("expected a list, found one value")),
            }),
        });
        MemoList {
            memo: self.build(),
            codec: Arc::new(move |item: &T, version| codec.encode(item, &versioned(&tag, version))),
        }
    }
}

/// A memoized function whose integer result is a Redis counter that can be changed in place:
/// `incr`/`decr` when the underlying count changes, instead of recomputing it. Built with
/// [`MemoBuilder::build_counter`].
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`call`](MemoCounter::call) | as [`Memo::call`] | 1 on a hit | as [`Memo::call`] |
/// | [`incr`](MemoCounter::incr), [`decr`](MemoCounter::decr) | `EVALSHA` (`EXISTS`, `INCRBY`) | 1 | `OutcomeUnknown` |
/// | [`set`](MemoCounter::set) | `SET PX ttl` | 1 | resent |
/// | [`peek`](MemoCounter::peek) | `GET` | 1 | resent |
/// | [`forget`](MemoCounter::forget) | `DEL` | 1 | resent |
///
/// Incrementing a counter that is not cached does nothing (it returns `None`): creating it
/// from 0 would cache a wrong count; the next [`call`](MemoCounter::call) computes the right
/// one. `incr` keeps the counter's TTL, and [`set`](MemoCounter::set) sets it again.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::memo::Memo;
///
/// fn count_likes_in_db(post: u64) -> i64 { 41 }
///
/// let likes = Memo::builder("likes", |post: u64| count_likes_in_db(post))
///     .ttl(Duration::from_secs(3600))
///     .build_counter();
/// assert_eq!(likes.call(9)?, 41);
/// // A new like is saved in the database; keep the cached count in step:
/// assert_eq!(likes.incr(9, 1)?, Some(42));
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct MemoCounter<A, E = Error> {
    memo: Memo<A, i64, E>,
}

impl<A, E> Clone for MemoCounter<A, E> {
    fn clone(&self) -> Self {
        MemoCounter {
            memo: self.memo.clone(),
        }
    }
}

impl<A, E> fmt::Debug for MemoCounter<A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoCounter")
            .field("name", &self.memo.name())
            .finish()
    }
}

impl<A, E> MemoCounter<A, E> {
    /// The underlying [`Memo`], for everything else it offers ([`stats`](Memo::stats),
    /// [`disable`](Memo::disable), ...).
    ///
    /// ```
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// assert_eq!(c.memo().name(), "c");
    /// ```
    pub fn memo(&self) -> &Memo<A, i64, E> {
        &self.memo
    }

    /// Adds `by` to the cached count for `args` and returns the new count, or `None` (and
    /// changes nothing) when no count is cached. `EVALSHA` (`EXISTS` + `INCRBY`), one round
    /// trip; the TTL is kept.
    ///
    /// # Errors
    ///
    /// Connection errors; a Redis error when the stored value is not an integer or the sum
    /// overflows; [`Error::InvalidKey`]/[`Error::Config`] as for [`Memo::forget`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// let now = c.incr(1, 5)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn incr(&self, args: A, by: i64) -> Result<Option<i64>> {
        let keys = self.memo.keys(&args)?;
        self.memo.eval_at(
            &mut self.memo.new_call()?,
            &keys.value,
            &scripts::INCR_IF_CACHED,
            1,
            |cmd| {
                cmd.arg(&keys.value).arg(by);
            },
            Retry::Once,
        )
    }

    /// Subtracts `by`: [`incr`](MemoCounter::incr) with `-by`.
    ///
    /// # Errors
    ///
    /// As [`incr`](MemoCounter::incr); [`Error::Encode`] when `-by` overflows.
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// let now = c.decr(1, 1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn decr(&self, args: A, by: i64) -> Result<Option<i64>> {
        let by = by
            .checked_neg()
            .ok_or_else(|| Error::encode(self.memo.name(), "the decrement does not fit an i64"))?;
        self.incr(args, by)
    }

    /// Stores `value` as the count for `args`, fresh, with the memo's TTL. `SET [PX ttl]`, one
    /// round trip.
    ///
    /// # Errors
    ///
    /// As [`Memo::forget`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// c.set(1, 0)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set(&self, args: A, value: i64) -> Result<()> {
        let keys = self.memo.keys(&args)?;
        let ttl: Option<Duration> = self.memo.inner.ttl;
        let mut cmd = redis::cmd("SET");
        cmd.arg(&keys.value).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(crate::options::ttl_millis(ttl));
        }
        self.memo.query_at(
            &mut self.memo.new_call()?,
            &keys.value,
            &cmd,
            Retry::Idempotent,
        )
    }

    /// [`Memo::forget`].
    ///
    /// # Errors
    ///
    /// As [`Memo::forget`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// c.forget(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: A) -> Result<bool> {
        self.memo.forget(args)
    }

    /// [`Memo::peek`]: the cached count for `args`, without computing or counting. `GET`,
    /// one round trip.
    ///
    /// # Errors
    ///
    /// As [`Memo::peek`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// let cached: Option<i64> = c.peek(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn peek(&self, args: A) -> Result<Option<i64>> {
        self.memo.peek(args)
    }

    /// [`Memo::stats`].
    ///
    /// # Errors
    ///
    /// As [`Memo::stats`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// let s = c.stats()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn stats(&self) -> Result<MemoStats> {
        self.memo.stats()
    }
}

impl<A, E> MemoCounter<A, E>
where
    A: Send + 'static,
    E: From<Error> + 'static,
{
    /// [`Memo::call`]: the cached count, or the function's, stored.
    ///
    /// # Errors
    ///
    /// As [`Memo::call`].
    ///
    /// ```no_run
    /// let c = redis_caches::memo::Memo::builder("c", |x: u8| i64::from(x)).build_counter();
    /// assert_eq!(c.call(3)?, 3);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call(&self, args: A) -> std::result::Result<i64, E> {
        self.memo.call(args)
    }
}

/// Encodes a list item; the second argument is the memo's schema version.
type ItemEncoder<T> =
    dyn Fn(&T, Option<u32>) -> std::result::Result<Vec<u8>, CodecError> + Send + Sync;

/// A memoized function whose `Vec<T>` result is kept as a Redis list, in order, with the
/// memo's TTL. Built with [`MemoBuilder::build_list`].
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`call`](MemoList::call) | as [`Memo::call`] (`EXISTS` + `LRANGE 0 -1` in the script; storing: `DEL`, `RPUSH`, `PEXPIRE`) | 1 on a hit | as [`Memo::call`] |
/// | [`push`](MemoList::push) | `EVALSHA` (`EXISTS`, `RPUSH`) | 1 | `OutcomeUnknown` |
/// | [`cached_len`](MemoList::cached_len) | `LLEN` | 1 | resent |
/// | [`peek`](MemoList::peek) | `LRANGE 0 -1` | 1 | resent |
/// | [`set`](MemoList::set) | a script: `DEL`, `RPUSH`, `PEXPIRE` | 1 | `OutcomeUnknown` |
/// | [`refresh`](MemoList::refresh) | the function, then as `set` | 1 | `OutcomeUnknown` |
/// | [`forget`](MemoList::forget) | `DEL` | 1 | resent |
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::memo::Memo;
///
/// let tags = Memo::builder("tags", |post: u64| vec!["rust".to_string(), format!("post-{post}")])
///     .ttl(Duration::from_secs(600))
///     .build_list();
/// assert_eq!(tags.call(1)?, ["rust", "post-1"]);
/// tags.push(1, &"redis".to_string())?;
/// assert_eq!(tags.call(1)?.len(), 3);
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct MemoList<A, T, E = Error> {
    memo: Memo<A, Vec<T>, E>,
    codec: Arc<ItemEncoder<T>>,
}

impl<A, T, E> Clone for MemoList<A, T, E> {
    fn clone(&self) -> Self {
        MemoList {
            memo: self.memo.clone(),
            codec: self.codec.clone(),
        }
    }
}

impl<A, T, E> fmt::Debug for MemoList<A, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoList")
            .field("name", &self.memo.name())
            .finish()
    }
}

impl<A, T, E> MemoList<A, T, E> {
    /// The underlying [`Memo`].
    ///
    /// ```
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// assert_eq!(l.memo().name(), "l");
    /// ```
    pub fn memo(&self) -> &Memo<A, Vec<T>, E> {
        &self.memo
    }

    /// Appends `item` to the cached list for `args` and returns the new length, or `None`
    /// (and changes nothing) when no list is cached. `EVALSHA` (`EXISTS` + `RPUSH`), one
    /// round trip; the TTL is kept.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`]; connection errors; as [`Memo::forget`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// l.push(1, &2)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn push(&self, args: A, item: &T) -> Result<Option<usize>> {
        let keys = self.memo.keys(&args)?;
        let bytes =
            (self.codec)(item, self.memo.inner.schema_version).map_err(|source| Error::Encode {
                key: keys.value.clone(),
                source,
            })?;
        self.memo.eval_at(
            &mut self.memo.new_call()?,
            &keys.value,
            &scripts::PUSH_IF_CACHED,
            1,
            |cmd| {
                cmd.arg(&keys.value).arg(bytes.as_slice());
            },
            Retry::Once,
        )
    }

    /// The length of the cached list for `args`, `None` when none is cached. `LLEN`, one
    /// round trip.
    ///
    /// # Errors
    ///
    /// As [`Memo::forget`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// let n = l.cached_len(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn cached_len(&self, args: A) -> Result<Option<usize>> {
        let keys = self.memo.keys(&args)?;
        let mut cmd = redis::cmd("LLEN");
        cmd.arg(&keys.value);
        let n: usize = self.memo.query_at(
            &mut self.memo.new_call()?,
            &keys.value,
            &cmd,
            Retry::Idempotent,
        )?;
        Ok((n > 0).then_some(n))
    }

    /// [`Memo::peek`]: the cached list for `args`, without computing or counting. `LRANGE`,
    /// one round trip.
    ///
    /// # Errors
    ///
    /// As [`Memo::peek`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// let cached: Option<Vec<u8>> = l.peek(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn peek(&self, args: A) -> Result<Option<Vec<T>>> {
        self.memo.peek(args)
    }

    /// [`Memo::set`]: replaces the cached list for `args` with `items`, fresh, with the
    /// memo's TTL. One script (`DEL`, `RPUSH`, `PEXPIRE`), one round trip. An empty list
    /// leaves nothing cached, as an empty result does.
    ///
    /// # Errors
    ///
    /// As [`Memo::set`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// l.set(1, &vec![1, 2, 3])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set(&self, args: A, items: &Vec<T>) -> Result<()> {
        self.memo.set(args, items)
    }

    /// [`Memo::forget`].
    ///
    /// # Errors
    ///
    /// As [`Memo::forget`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// l.forget(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: A) -> Result<bool> {
        self.memo.forget(args)
    }
}

impl<A, T, E> MemoList<A, T, E>
where
    A: Send + 'static,
    T: Send + 'static,
    E: From<Error> + 'static,
{
    /// [`Memo::call`]: the cached list, or the function's, stored.
    ///
    /// # Errors
    ///
    /// As [`Memo::call`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x, x]).build_list();
    /// assert_eq!(l.call(3)?, [3, 3]);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call(&self, args: A) -> std::result::Result<Vec<T>, E> {
        self.memo.call(args)
    }

    /// [`Memo::refresh`]: computes the list for `args` now and stores it, replacing the
    /// cached one.
    ///
    /// # Errors
    ///
    /// As [`Memo::refresh`].
    ///
    /// ```no_run
    /// let l = redis_caches::memo::Memo::builder("l", |x: u8| vec![x]).build_list();
    /// let fresh = l.refresh(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn refresh(&self, args: A) -> std::result::Result<Vec<T>, E> {
        self.memo.refresh(args)
    }
}
