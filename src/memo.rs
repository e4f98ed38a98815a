//! Memoized functions: results cached in Redis, shared by every thread and process, with
//! stale-while-revalidate, a cross-process stampede lock and statistics.
//!
//! A [`Memo`] wraps a function `Fn(A) -> R` (or `Fn(A) -> Result<R, E>`). Calling it through
//! [`Memo::call`] returns the cached result when there is one, and otherwise computes, stores
//! and returns it. The crate docs' [Memoization](crate#memoization) chapter is the guided
//! tour; this page is the reference.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_caches::memo::Memo;
//!
//! fn fetch_price(id: u64) -> f64 { id as f64 * 1.5 } // a slow lookup in real life
//!
//! let price = Memo::builder("price", |id: u64| fetch_price(id))
//!     .ttl(Duration::from_secs(60))
//!     .build();
//! let p = price.call(7)?; // computed and stored
//! let q = price.call(7)?; // from Redis
//! assert_eq!(p, q);
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! # Key layout
//!
//! Every key of one memoized function shares the Redis Cluster hash tag `{memo:<name>}`, so
//! the value, its lock and the statistics are read and written by one script in one slot:
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `<connection prefix>{memo:<name>}.v.<args>` | string (a list for [`MemoList`]) | the encoded result, `PX ttl` |
//! | `<connection prefix>{memo:<name>}.lock.<args>` | string | the refresh lock: the owner's token, `PX lock_timeout` |
//! | `<connection prefix>{memo:<name>}.stats` | hash | the [`MemoStats`] counters |
//! | `<connection prefix>{memo:<name>}.h` | hash | field `<args>`: results of a [hash-field](MemoBuilder::build_hash_field) memo |
//!
//! `<args>` is, by default, the [postcard](https://docs.rs/postcard) encoding of the arguments
//! with every byte outside printable ASCII (and `%`) written `%XX`: `7u64` is `%07`, `"abc"`
//! is `%03abc`. It is the same in every process, build and platform (unlike
//! `std::hash::Hash`), and distinct arguments always give distinct keys. Alternatives:
//! [`hashed_keys`](MemoBuilder::hashed_keys) (SHA-1 of those bytes),
//! [`key_args`](MemoBuilder::key_args) (only some of the arguments take part),
//! [`key`](MemoBuilder::key) (your own key parts), [`key_template`](MemoBuilder::key_template)
//! (`"item:{id}"`). Unit tests pin the layout, since changing it orphans stored values.
//!
//! # What a call costs
//!
//! | Case | Round trips for the caller | Commands |
//! |---|---|---|
//! | fresh hit | 1 | `EVALSHA` (`GET`, `PTTL` with a `refresh`, `HINCRBY`) |
//! | stale hit | 1 | `EVALSHA` (`GET`, `PTTL`, `HINCRBY`, `SET NX PX`); the refresh runs in the background |
//! | miss, computed by this caller | 2 + the function | `EVALSHA` (read, `HINCRBY`, `SET NX PX`), then `EVALSHA` (`GET`, `DEL` lock, `SET PX`, `HINCRBY`) |
//! | miss, computed by another caller | 1 + one per poll | the read, then polls (`EVALSHA`: `GET`, `SET NX PX`) every 2 to 50 ms |
//! | miss with a default value | 1 | the read; the computation runs in the background |
//!
//! The scripts are sent by hash (`EVALSHA`); the first call on a server that does not know a
//! script yet loads it (`SCRIPT LOAD`), once.

mod builder;
mod keys;
mod macros;
mod pool;
mod scripts;
mod stats;
mod strategies;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use once_cell::sync::{Lazy, OnceCell};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, TypeTag};
use crate::connection::{Connection, ConnectionRef, RedisConn};
use crate::error::{Error, Result};
use crate::key::{Key, glob_escape};

pub use builder::MemoBuilder;
pub use pool::RefreshPool;
pub use stats::MemoStats;
pub use strategies::{MemoCounter, MemoList};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns caching back on for every memoized function of the process (the default), after
/// [`disable_all`]. Functions disabled one by one with [`Memo::disable`] stay disabled.
///
/// ```no_run
/// // In a test harness: turn caching back on after a test that ran without it.
/// redis_caches::memo::enable_all();
/// assert!(redis_caches::memo::is_enabled_globally());
/// ```
pub fn enable_all() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Turns caching off for every memoized function of the process: [`Memo::call`] then runs
/// the function directly, without any Redis command (`rediscache`'s `enabled=False`, for
/// tests and emergencies). Takes effect for calls that start afterwards.
///
/// ```no_run
/// // Process-wide: not run here, since doctests share a process.
/// redis_caches::memo::disable_all();
/// assert!(!redis_caches::memo::is_enabled_globally());
/// ```
pub fn disable_all() {
    ENABLED.store(false, Ordering::SeqCst);
}

/// Whether caching is on process-wide (see [`disable_all`]).
///
/// ```
/// let on = redis_caches::memo::is_enabled_globally();
/// # let _ = on;
/// ```
pub fn is_enabled_globally() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// What [`Memo::call`] does when Redis cannot be reached (connection refused, reset, timed
/// out, or no pooled connection available in time).
///
/// ```
/// use redis_caches::memo::WhenUnavailable;
/// assert_eq!(WhenUnavailable::default(), WhenUnavailable::ReturnError);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WhenUnavailable {
    /// Return the connection error (the default): an outage is visible, and the function's
    /// backend is not suddenly hit by every call.
    #[default]
    ReturnError,
    /// Run the function and return its result without caching it (Flask-CacheOBJ's "graceful
    /// downgrade"). Each call then pays the connection timeout first; keep the DSN's
    /// `timeout`/`connect_timeout`/`pool_timeout` short.
    Compute,
}

type Func<A, R, E> = dyn Fn(A) -> std::result::Result<R, E> + Send + Sync;
type KeyFn<A> = dyn Fn(&A) -> std::result::Result<Key, String> + Send + Sync;
type BytesFn<A> = dyn Fn(&A) -> std::result::Result<Vec<u8>, String> + Send + Sync;
type EncodeFn<R> = dyn Fn(&R) -> std::result::Result<Vec<Vec<u8>>, CodecError> + Send + Sync;
type DecodeFn<R> = dyn Fn(Stored) -> std::result::Result<R, CodecError> + Send + Sync;
type RenderFn<A> = dyn Fn(&A, &keys::Template) -> std::result::Result<String, String> + Send + Sync;
type KeepFn<R> = dyn Fn(&R) -> bool + Send + Sync;
type DefaultFn<R> = dyn Fn() -> R + Send + Sync;

/// How the result is kept in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One string per arguments.
    Value,
    /// One list per arguments (`MemoList`).
    List,
    /// One field of the function's hash per arguments.
    HashField,
}

impl Mode {
    fn code(self) -> &'static str {
        match self {
            Mode::Value => "s",
            Mode::List => "l",
            Mode::HashField => "h",
        }
    }
}

/// What a read returned: one string, or a list's elements.
pub(crate) enum Stored {
    One(Vec<u8>),
    Many(Vec<Vec<u8>>),
}

pub(crate) struct Storage<R> {
    pub(crate) mode: Mode,
    pub(crate) encode: Arc<EncodeFn<R>>,
    pub(crate) decode: Arc<DecodeFn<R>>,
}

impl<R> Clone for Storage<R> {
    fn clone(&self) -> Self {
        Storage {
            mode: self.mode,
            encode: self.encode.clone(),
            decode: self.decode.clone(),
        }
    }
}

impl<R: Serialize + DeserializeOwned + 'static> Storage<R> {
    /// One value, encoded with `codec`.
    pub(crate) fn value<C: Codec>(codec: C) -> Storage<R> {
        let tag = Arc::new(TypeTag::of::<R>());
        let (enc_codec, enc_tag) = (codec.clone(), tag.clone());
        Storage {
            mode: Mode::Value,
            encode: Arc::new(move |r: &R| Ok(vec![enc_codec.encode(r, &enc_tag)?])),
            decode: Arc::new(move |stored| match stored {
                Stored::One(bytes) => codec.decode(&bytes, &tag),
                Stored::Many(_) => Err(CodecError::new("expected one value, found a list")),
            }),
        }
    }
}

/// A memoized function: results cached in Redis under `{memo:<name>}` keys, shared by every
/// thread and process that builds a `Memo` with the same name on the same server.
///
/// Build one with [`Memo::builder`] (for `Fn(A) -> R`) or [`Memo::try_builder`] (for
/// `Fn(A) -> Result<R, E>`). The handle is cheap to clone (clones share everything,
/// including the [enable switch](Memo::disable)), `Send + Sync`, and its `Debug` shows the
/// name and connection only.
///
/// | Method | Redis commands | Round trips |
/// |---|---|---|
/// | [`call`](Memo::call) | see [what a call costs](self#what-a-call-costs) | 1 on a hit |
/// | [`call_uncached`](Memo::call_uncached) | none | 0 |
/// | [`forget`](Memo::forget) | `DEL` value and lock (`HDEL` + `DEL` for a hash field) | 1 |
/// | [`forget_after`](Memo::forget_after) | as `forget`, after your function succeeded | 1 |
/// | [`clear`](Memo::clear) | `SCAN MATCH` + `UNLINK` in batches | 1 per 500 keys |
/// | [`stats`](Memo::stats) | `HGETALL` | 1 |
/// | [`reset_stats`](Memo::reset_stats) | `HGETALL` + `DEL` in `MULTI`/`EXEC` | 1 |
///
/// # Concurrency
///
/// If several threads or processes miss the same arguments at once, one of them (the one
/// that takes the lock) runs the function; the others wait for its result, polling Redis, for
/// up to [`wait_timeout`](MemoBuilder::wait_timeout), then run the function themselves
/// without storing the result. If that caller's function fails, the lock is released and the
/// next waiter computes instead.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::memo::Memo;
///
/// #[derive(Debug)]
/// struct NotFound;
/// impl From<redis_caches::Error> for NotFound {
///     fn from(_: redis_caches::Error) -> Self { NotFound }
/// }
///
/// let user_name = Memo::try_builder("user-name", |id: u32| {
///     if id == 0 { Err(NotFound) } else { Ok(format!("user {id}")) }
/// })
/// .ttl(Duration::from_secs(300))
/// .refresh(Duration::from_secs(60)) // stale after a minute: served, refreshed in the background
/// .build();
/// assert_eq!(user_name.call(1).unwrap(), "user 1");
/// assert!(user_name.call(0).is_err()); // errors are returned, never cached
/// ```
pub struct Memo<A, R, E = Error> {
    inner: Arc<Inner<A, R, E>>,
}

struct Inner<A, R, E> {
    name: String,
    func: Box<Func<A, R, E>>,
    key: Box<KeyFn<A>>,
    storage: Storage<R>,
    connection: ConnectionRef,
    resolved: OnceCell<Resolved>,
    ttl: Option<Duration>,
    refresh: Option<Duration>,
    lock_timeout: Duration,
    wait_timeout: Duration,
    default: Option<Arc<DefaultFn<R>>>,
    cache_if: Option<Arc<KeepFn<R>>>,
    stats: bool,
    unavailable: WhenUnavailable,
    enabled: AtomicBool,
    pool: RefreshPool,
    config_error: Option<String>,
}

struct Resolved {
    connection: Connection,
    /// `<connection prefix>{memo:<name>}`, rendered.
    base: String,
    stats: String,
}

/// The keys of one call.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) value: String,
    pub(crate) lock: String,
    pub(crate) stats: String,
    pub(crate) field: String,
}

enum State {
    Fresh(Stored),
    Stale { value: Stored, owned: bool },
    Missing { owned: bool },
}

#[derive(Clone, Copy)]
enum Finish {
    Store,
    Skip,
    Fail,
    FailKeep,
    Drop,
}

impl Finish {
    fn code(self) -> &'static str {
        match self {
            Finish::Store => "store",
            Finish::Skip => "skip",
            Finish::Fail => "fail",
            Finish::FailKeep => "fail_keep",
            Finish::Drop => "drop",
        }
    }
}

impl<A, R, E> Clone for Memo<A, R, E> {
    fn clone(&self) -> Self {
        Memo {
            inner: self.inner.clone(),
        }
    }
}

impl<A, R, E> fmt::Debug for Memo<A, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("name", &self.inner.name)
            .field("connection", &self.inner.connection.name())
            .finish()
    }
}

/// A lock token unique to this call: a random per-process part and a counter.
fn token() -> String {
    static PROCESS: Lazy<u64> = Lazy::new(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}-{:x}",
        *PROCESS,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl<A, R> Memo<A, R, Error>
where
    A: Serialize + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    /// Starts a memoized function named `name` around `f`. `name` is the function's namespace
    /// in Redis: two memoized functions with the same name on one server share their cache,
    /// so give each its own. It must be non-empty and free of `{` and `}`.
    ///
    /// Arguments are one value `A` (a tuple or struct for several); `A` must be `Serialize`
    /// (for the key) and `R` `Serialize + DeserializeOwned` (stored with the
    /// [`Postcard`](crate::codec::Postcard) codec unless [`codec`](MemoBuilder::codec) says otherwise). Building does
    /// no I/O. [`call`](Memo::call) returns the crate's [`Result`].
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let area = Memo::builder("area", |(w, h): (u32, u32)| w * h).build();
    /// # let _ = area;
    /// ```
    pub fn builder<F>(name: impl Into<String>, f: F) -> MemoBuilder<A, R, Error>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
    {
        MemoBuilder::new(name.into(), Box::new(move |a| Ok(f(a))))
    }
}

impl<A, R, E> Memo<A, R, E>
where
    A: Serialize + 'static,
    R: Serialize + DeserializeOwned + 'static,
    E: From<Error>,
{
    /// Starts a memoized function around a fallible `f`. Errors are returned to the caller
    /// and never cached. `E` must hold the cache's own errors too (`From<redis_caches::Error>`),
    /// as `anyhow::Error`, `Box<dyn std::error::Error + Send + Sync>` and
    /// [`redis_caches::Error`](Error) do, or an enum of your own with a variant for it.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// type BoxError = Box<dyn std::error::Error + Send + Sync>;
    /// let parse = Memo::try_builder("parse", |s: String| s.parse::<i64>().map_err(BoxError::from)).build();
    /// # let _ = parse;
    /// ```
    pub fn try_builder<F>(name: impl Into<String>, f: F) -> MemoBuilder<A, R, E>
    where
        F: Fn(A) -> std::result::Result<R, E> + Send + Sync + 'static,
    {
        MemoBuilder::new(name.into(), Box::new(f))
    }
}

impl<A, R, E> Memo<A, R, E> {
    /// The function's name (its namespace in Redis).
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("price", |x: u8| x).build();
    /// assert_eq!(m.name(), "price");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Turns caching off for this function (and its clones): calls run the function
    /// directly, without any Redis command.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).build();
    /// m.disable();
    /// assert!(!m.is_enabled());
    /// m.enable();
    /// ```
    pub fn disable(&self) {
        self.inner.enabled.store(false, Ordering::SeqCst);
    }

    /// Turns caching back on for this function (it still obeys [`disable_all`]).
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).disabled().build();
    /// m.enable();
    /// # let _ = m;
    /// ```
    pub fn enable(&self) {
        self.inner.enabled.store(true, Ordering::SeqCst);
    }

    /// Whether calls use the cache: this function is enabled and so is the process
    /// ([`disable_all`]).
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).disabled().build();
    /// assert!(!m.is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::SeqCst) && is_enabled_globally()
    }

    /// Runs the function directly: no cache read, nothing stored (`rediscache`'s
    /// `.function`). No Redis command.
    ///
    /// # Errors
    ///
    /// The function's own errors.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x + 1).build();
    /// assert_eq!(m.call_uncached(1)?, 2);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call_uncached(&self, args: A) -> std::result::Result<R, E> {
        (self.inner.func)(args)
    }

    /// The statistics, summed over every process. `HGETALL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors, [`Error::Config`] for an invalid configuration.
    ///
    /// ```no_run
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).build();
    /// let s = m.stats()?;
    /// println!("{} hits out of {} calls", s.hits, s.calls());
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn stats(&self) -> Result<MemoStats> {
        let key = self.resolved()?.stats.clone();
        let fields: std::collections::HashMap<String, i64> =
            self.run(&key, |c| redis::cmd("HGETALL").arg(&key).query(c))?;
        Ok(MemoStats::from_fields(fields))
    }

    /// Returns the statistics and zeroes them, atomically: no increment from another process
    /// is lost in between (unlike `rediscache`'s GET-then-DEL). `HGETALL` and `DEL` in one
    /// `MULTI`/`EXEC`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`stats`](Memo::stats).
    ///
    /// ```no_run
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).build();
    /// let last_minute = m.reset_stats()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn reset_stats(&self) -> Result<MemoStats> {
        let key = self.resolved()?.stats.clone();
        let (fields,): (std::collections::HashMap<String, i64>,) = self.run(&key, |c| {
            redis::pipe()
                .atomic()
                .cmd("HGETALL")
                .arg(&key)
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .query(c)
        })?;
        Ok(MemoStats::from_fields(fields))
    }

    /// Removes every cached result of this function, and any lock; statistics stay.
    /// `SCAN MATCH <prefix>{memo:<name>}.*` and `UNLINK` of each batch: one round trip per
    /// 500 keys scanned. Returns the number of keys removed. On a Redis Cluster the `SCAN`
    /// goes to the master serving the function's slot, where all its keys are.
    ///
    /// Not atomic: results stored while it runs may survive.
    ///
    /// # Errors
    ///
    /// Connection errors, [`Error::Config`] for an invalid configuration.
    ///
    /// ```no_run
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).build();
    /// m.clear()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn clear(&self) -> Result<u64> {
        let resolved = self.resolved()?;
        let pattern = format!("{}.*", glob_escape(&resolved.base));
        let stats = resolved.stats.clone();
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            // Every key of the function shares its hash tag, so on a cluster they all live
            // on the master serving the statistics key's slot: SCAN that node.
            let (next, batch): (u64, Vec<String>) = self.run(&pattern, |c| {
                c.query_on_node_of(
                    &stats,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500),
                )
            })?;
            let batch: Vec<String> = batch.into_iter().filter(|k| *k != stats).collect();
            if !batch.is_empty() {
                let n: u64 = self.run(&pattern, |c| redis::cmd("UNLINK").arg(&batch).query(c))?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    fn resolved(&self) -> Result<&Resolved> {
        if let Some(problem) = &self.inner.config_error {
            return Err(Error::config(
                format!("memo {:?}", self.inner.name),
                problem.clone(),
            ));
        }
        self.inner.resolved.get_or_try_init(|| {
            let connection = self.inner.connection.resolve()?;
            let base = Key::from_parts([format!("memo:{}", self.inner.name)]).with_hash_tag();
            let stats = base
                .clone()
                .child("stats")
                .render(connection.prefix(), None)?;
            let base = base.render(connection.prefix(), None)?;
            Ok(Resolved {
                connection,
                base,
                stats,
            })
        })
    }

    /// Runs `f` on a pooled connection; errors name `target`.
    pub(crate) fn run<T>(
        &self,
        target: &str,
        f: impl FnOnce(&mut RedisConn) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let resolved = self.resolved()?;
        let mut conn = resolved.connection.get()?;
        f(&mut conn).map_err(|e| {
            resolved.connection.observe(&mut conn, &e);
            Error::redis(target, e)
        })
    }

    /// The keys for `args`.
    pub(crate) fn keys(&self, args: &A) -> Result<Keys> {
        let resolved = self.resolved()?;
        let parts = (self.inner.key)(args).map_err(|reason| Error::InvalidKey {
            reason: format!("memo {:?}: {reason}", self.inner.name),
        })?;
        // `<base>.<kind>.<escaped parts>`: the same bytes `Key::render` gives for
        // `{memo:<name>}.<kind>.<parts>`, with the base rendered once per memo (in `resolved`)
        // and the parts once per call, instead of a `Key` built and rendered per key.
        let args = if parts.parts().is_empty() {
            String::new()
        } else {
            parts.render("", None)?
        };
        let under = |kind: &str| {
            let mut key = String::with_capacity(resolved.base.len() + kind.len() + args.len() + 2);
            key.push_str(&resolved.base);
            key.push('.');
            key.push_str(kind);
            if !args.is_empty() {
                key.push('.');
                key.push_str(&args);
            }
            key
        };
        let (value, field) = match self.inner.storage.mode {
            Mode::Value | Mode::List => (under("v"), String::new()),
            Mode::HashField => {
                // One hash for the whole function (`<base>.h`); the arguments name the field.
                let field = if args.is_empty() {
                    "_".to_string()
                } else {
                    args.clone()
                };
                (format!("{}.h", resolved.base), field)
            }
        };
        Ok(Keys {
            value,
            lock: under("lock"),
            stats: resolved.stats.clone(),
            field,
        })
    }

    /// Removes the cached result for `args`, and its lock, so that a computation in flight
    /// for them does not store a result computed before the removal. True when a result was
    /// removed. `DEL value lock` (a hash-field memo: `HDEL` + `DEL` in one `MULTI`/`EXEC`),
    /// one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors; [`Error::InvalidKey`] when the key cannot be built from `args`;
    /// [`Error::Config`] for an invalid configuration.
    ///
    /// ```no_run
    /// let price = redis_caches::memo::Memo::builder("price", |id: u64| id * 100).build();
    /// price.forget(&7)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: &A) -> Result<bool> {
        let keys = self.keys(args)?;
        let removed: i64 = self.run(&keys.value, |c| match self.inner.storage.mode {
            Mode::HashField => redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&keys.value)
                .arg(&keys.field)
                .cmd("DEL")
                .arg(&keys.lock)
                .ignore()
                .query::<(i64,)>(c)
                .map(|(n,)| n),
            _ => redis::cmd("DEL").arg(&keys.value).arg(&keys.lock).query(c),
        })?;
        Ok(removed > 0)
    }

    /// Runs `mutate` (a function that changes what this memoized function computes from),
    /// then, if it succeeded, [forgets](Memo::forget) the result for `args`: Flask-CacheOBJ's
    /// `delete_obj`. If `mutate` fails nothing is forgotten. One round trip after `mutate`.
    ///
    /// # Errors
    ///
    /// `mutate`'s error, or the error of [`forget`](Memo::forget).
    ///
    /// ```no_run
    /// use redis_caches::memo::Memo;
    /// let price = Memo::builder("price", |id: u64| id * 100).build();
    /// let saved = price.forget_after(&7, || -> Result<bool, redis_caches::Error> {
    ///     // update the price of item 7 in the database...
    ///     Ok(true)
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget_after<T, E2, F>(&self, args: &A, mutate: F) -> std::result::Result<T, E2>
    where
        F: FnOnce() -> std::result::Result<T, E2>,
        E2: From<Error>,
    {
        let out = mutate()?;
        self.forget(args)?;
        Ok(out)
    }

    fn bypass(&self, e: &Error) -> bool {
        self.inner.unavailable == WhenUnavailable::Compute && e.is_connection()
    }

    fn read(&self, keys: &Keys, token: &str, poll: bool) -> Result<State> {
        let stale_after = match (self.inner.refresh, self.inner.ttl) {
            (Some(r), Some(t)) => crate::options::ttl_millis(t.saturating_sub(r)).to_string(),
            _ => "-1".to_string(),
        };
        let reply: Vec<redis::Value> = self.run(&keys.value, |c| {
            scripts::READ
                .key(&keys.value)
                .key(&keys.lock)
                .key(&keys.stats)
                .arg(self.inner.storage.mode.code())
                .arg(&keys.field)
                .arg(token)
                .arg(crate::options::ttl_millis(self.inner.lock_timeout))
                .arg(stale_after)
                .arg(if self.inner.stats { "1" } else { "0" })
                .arg(if self.inner.default.is_some() {
                    "1"
                } else {
                    "0"
                })
                .arg(if poll { "1" } else { "0" })
                .invoke(c)
        })?;
        let mut reply = reply.into_iter();
        let state = match reply.next() {
            Some(redis::Value::Int(n)) => n,
            _ => return Err(self.bad_reply(keys)),
        };
        let value = match reply.next() {
            None => None,
            Some(redis::Value::BulkString(b)) => Some(Stored::One(b)),
            Some(redis::Value::Array(items)) => Some(Stored::Many(
                items
                    .into_iter()
                    .map(|v| match v {
                        redis::Value::BulkString(b) => Ok(b),
                        _ => Err(self.bad_reply(keys)),
                    })
                    .collect::<Result<_>>()?,
            )),
            Some(_) => return Err(self.bad_reply(keys)),
        };
        Ok(match (state, value) {
            (0, Some(v)) => State::Fresh(v),
            (1, Some(v)) => State::Stale {
                value: v,
                owned: false,
            },
            (2, Some(v)) => State::Stale {
                value: v,
                owned: true,
            },
            (3, None) => State::Missing { owned: false },
            (4, None) => State::Missing { owned: true },
            _ => return Err(self.bad_reply(keys)),
        })
    }

    fn bad_reply(&self, keys: &Keys) -> Error {
        Error::Decode {
            key: keys.value.clone(),
            reason: "unexpected reply from the memo read script".into(),
        }
    }

    fn finish(&self, keys: &Keys, token: &str, action: Finish, values: &[Vec<u8>]) -> Result<bool> {
        let ttl = self.inner.ttl.map_or(0, crate::options::ttl_millis);
        let owned: i64 = self.run(&keys.value, |c| {
            let mut invocation = scripts::FINISH.key(&keys.value);
            invocation
                .key(&keys.lock)
                .key(&keys.stats)
                .arg(self.inner.storage.mode.code())
                .arg(&keys.field)
                .arg(token)
                .arg(ttl)
                .arg(if self.inner.stats { "1" } else { "0" })
                .arg(action.code());
            for v in values {
                invocation.arg(v.as_slice());
            }
            invocation.invoke(c)
        })?;
        Ok(owned == 1)
    }

    fn decode(&self, stored: Stored, keys: &Keys) -> Result<R> {
        (self.inner.storage.decode)(stored).map_err(|e| Error::Decode {
            key: if keys.field.is_empty() {
                keys.value.clone()
            } else {
                format!("{}[{}]", keys.value, keys.field)
            },
            reason: e.to_string(),
        })
    }

    /// Stores `r` if cacheable and the lock is still ours; releases the lock either way.
    fn store(&self, keys: &Keys, token: &str, r: &R) -> Result<()> {
        if let Some(keep) = &self.inner.cache_if
            && !keep(r)
        {
            return self.finish(keys, token, Finish::Skip, &[]).map(drop);
        }
        match (self.inner.storage.encode)(r) {
            Ok(values) => self.finish(keys, token, Finish::Store, &values).map(drop),
            Err(e) => {
                let _ = self.finish(keys, token, Finish::Skip, &[]);
                Err(Error::Encode {
                    key: keys.value.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Deletes an entry that cannot be decoded (written for another type, or corrupt), so the
    /// next call computes it again under the lock. One round trip, best effort.
    fn drop_undecodable(&self, keys: &Keys) {
        let _ = self.run(&keys.value, |c| match self.inner.storage.mode {
            Mode::HashField => redis::cmd("HDEL").arg(&keys.value).arg(&keys.field).exec(c),
            _ => redis::cmd("DEL").arg(&keys.value).exec(c),
        });
    }
}

impl<A, R, E> Memo<A, R, E>
where
    A: Send + 'static,
    R: Send + 'static,
    E: From<Error> + 'static,
{
    /// Returns the cached result for `args`, or computes, stores and returns it.
    ///
    /// - Fresh result: returned (one round trip).
    /// - Stale result (older than [`refresh`](MemoBuilder::refresh)): returned at once; if no
    ///   other caller is refreshing it, a refresh is queued on the [`RefreshPool`] (one round
    ///   trip for the caller).
    /// - No result: if another caller is computing it, waits for that result (up to the
    ///   [`wait_timeout`](MemoBuilder::wait_timeout)); otherwise computes it, stores it and
    ///   returns it. With a [default value](MemoBuilder::default_value), returns the default
    ///   at once and computes in the background instead.
    /// - Caching disabled ([`Memo::disable`], [`disable_all`]): runs the function, no Redis
    ///   command.
    ///
    /// A stored result that cannot be decoded (written for another result type by an older
    /// build, or corrupt) counts as missing: it is deleted and computed again.
    ///
    /// If several threads call this for the same arguments at once, the function runs once;
    /// see [Concurrency](Memo#concurrency).
    ///
    /// # Errors
    ///
    /// The function's errors (never cached). Cache errors converted into `E`: connection
    /// errors (unless [`WhenUnavailable::Compute`]), [`Error::Encode`] when the result cannot
    /// be encoded, [`Error::InvalidKey`], and [`Error::Config`] for an invalid configuration.
    ///
    /// ```no_run
    /// let square = redis_caches::memo::Memo::builder("square", |x: u64| x * x).build();
    /// assert_eq!(square.call(12)?, 144);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call(&self, args: A) -> std::result::Result<R, E> {
        if !self.is_enabled() {
            return (self.inner.func)(args);
        }
        let keys = self.keys(&args)?;
        let token = token();
        let state = match self.read(&keys, &token, false) {
            Ok(state) => state,
            Err(e) if self.bypass(&e) => return (self.inner.func)(args),
            Err(e) => return Err(e.into()),
        };
        match state {
            State::Fresh(value) => match self.decode(value, &keys) {
                Ok(r) => Ok(r),
                Err(_) => {
                    self.drop_undecodable(&keys);
                    (self.inner.func)(args)
                }
            },
            State::Stale { value, owned } => match self.decode(value, &keys) {
                Ok(r) => {
                    if owned {
                        self.refresh_in_background(args, keys, token);
                    }
                    Ok(r)
                }
                Err(_) if owned => self.compute_and_store(args, &keys, &token),
                Err(_) => {
                    self.drop_undecodable(&keys);
                    (self.inner.func)(args)
                }
            },
            State::Missing { owned } => match &self.inner.default {
                Some(default) => {
                    if owned {
                        self.refresh_in_background(args, keys, token);
                    }
                    Ok(default())
                }
                None if owned => self.compute_and_store(args, &keys, &token),
                None => self.wait_for(args, &keys),
            },
        }
    }

    /// The lock is ours: compute, store, release.
    fn compute_and_store(&self, args: A, keys: &Keys, token: &str) -> std::result::Result<R, E> {
        let outcome = match catch_unwind(AssertUnwindSafe(|| (self.inner.func)(args))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                // Release the lock so that waiters do not wait for a result that never comes.
                let _ = self.finish(keys, token, Finish::Fail, &[]);
                std::panic::resume_unwind(panic);
            }
        };
        match outcome {
            Ok(r) => match self.store(keys, token, &r) {
                Ok(()) => Ok(r),
                Err(e) if self.bypass(&e) => Ok(r),
                Err(e) => Err(e.into()),
            },
            Err(e) => {
                let _ = self.finish(keys, token, Finish::Fail, &[]);
                Err(e)
            }
        }
    }

    /// Another caller holds the lock: poll for its result, take over if it gives up.
    fn wait_for(&self, args: A, keys: &Keys) -> std::result::Result<R, E> {
        let deadline = Instant::now() + self.inner.wait_timeout;
        let mut pause = Duration::from_millis(2);
        let token = token();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return (self.inner.func)(args);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
            match self.read(keys, &token, true) {
                Ok(State::Fresh(value) | State::Stale { value, .. }) => {
                    return match self.decode(value, keys) {
                        Ok(r) => Ok(r),
                        Err(_) => (self.inner.func)(args),
                    };
                }
                Ok(State::Missing { owned: true }) => {
                    return self.compute_and_store(args, keys, &token);
                }
                Ok(State::Missing { owned: false }) => {}
                Err(e) if self.bypass(&e) => return (self.inner.func)(args),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The lock is ours: queue the computation; if the queue is full, release the lock and
    /// count the refresh as dropped.
    fn refresh_in_background(&self, args: A, keys: Keys, token: String) {
        let memo = self.clone();
        let (job_keys, job_token) = (keys.clone(), token.clone());
        let job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| (memo.inner.func)(args)));
            match outcome {
                Ok(Ok(r)) => {
                    let _ = memo.store(&job_keys, &job_token, &r);
                }
                _ => {
                    let _ = memo.finish(&job_keys, &job_token, Finish::FailKeep, &[]);
                }
            }
        });
        if self.inner.pool.submit(job).is_err() {
            let _ = self.finish(&keys, &token, Finish::Drop, &[]);
        }
    }
}
