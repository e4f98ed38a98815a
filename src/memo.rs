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
//! the value, its lock and the statistics are read and written by one request (a script, or a
//! fresh hit's pipeline) in one slot:
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `<connection prefix>{memo:<name>}.v.<args>` | string (a list for [`MemoList`]) | the encoded result, `PX ttl` |
//! | `<connection prefix>{memo:<name>}.lock.<args>` | string | the refresh lock: the owner's token, `PX lock_timeout` |
//! | `<connection prefix>{memo:<name>}.stats` | hash | the [`MemoStats`] counters |
//! | `<connection prefix>{memo:<name>}.h` | hash | field `<args>`: results of a [hash-field](MemoBuilder::build_hash_field) memo |
//!
//! A memo [placed in a region](MemoBuilder::region) keeps its results as fields of the
//! region's hash instead (a header no entry key starts with, then `<name>.<args>`), its locks
//! beside that hash and its statistics in its tree: see the region module's
//! [key layout](crate::region#key-layout).
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
//! | fresh hit | 1 | `GET`, `HINCRBY` (the `hits` statistic), pipelined; with a `refresh`, in a region, with `hash_field`/`list` storage or a near cache: `EVALSHA` (`GET`, `PTTL` with a `refresh`, `HINCRBY`) |
//! | stale hit (with a `refresh`) | 1 | `EVALSHA` (`GET`, `PTTL`, `HINCRBY`, `SET NX PX`); the refresh runs in the background |
//! | miss, computed by this caller | 2 + the function | the read (`EVALSHA`: `GET`, `HINCRBY`, `SET NX PX`), then `EVALSHA` (`GET`, `DEL` lock, `SET PX`, `HINCRBY`); one more (the pipelined `GET`, `HINCRBY` first) where fresh hits are read with plain commands |
//! | miss, computed by another caller | 1 + one per poll | the read, then polls (`EVALSHA`: `GET`, `SET NX PX`) every 2 to 50 ms; one more where fresh hits are read with plain commands |
//! | miss with a default value | 1 | the read; the computation runs in the background; one more where fresh hits are read with plain commands |
//!
//! A fresh hit is read with plain commands where it can be (the default: a result in a key
//! of its own, no `refresh`, no region, no near cache; from a handle's second call on, once
//! the read script has shown that the user may run it): for the server a pipelined `GET` and
//! `HINCRBY` cost less than half of a script doing the same. When the `GET` finds no result,
//! the read script runs next and takes the `hits` counted for it back, atomically with
//! counting the miss: a [`stats`](Memo::stats) read in between may count one hit too many
//! per miss in flight.
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
use std::time::Duration;

use once_cell::sync::{Lazy, OnceCell};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, Postcard, TypeTag};
use crate::connection::{ConnectionRef, Retry};
use crate::deadline::Call;
use crate::engine::{Engine, Script};
use crate::error::{Error, Result};
use crate::key::{Key, glob_escape};
use crate::options::{OutagePolicy, TtlPolicy, ttl_millis};

pub(crate) use builder::InRegion;
pub use builder::MemoBuilder;
pub(crate) use keys::field_header;
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
/// the function directly, without any Redis command (for tests and emergencies). Takes effect for calls that start afterwards.
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

/// What [`Memo::call`] does when Redis cannot be reached: replaced by [`OutagePolicy`],
/// which regions take too.
///
/// ```
/// # #![allow(deprecated)]
/// use redis_caches::{OutagePolicy, memo::WhenUnavailable};
/// assert_eq!(OutagePolicy::from(WhenUnavailable::Compute), OutagePolicy::Miss);
/// ```
#[deprecated(
    since = "0.2.0",
    note = "use `OutagePolicy` (`Fail`, `Miss`) and `MemoBuilder::on_outage`"
)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(deprecated)]
pub enum WhenUnavailable {
    /// Return the connection error: [`OutagePolicy::Fail`].
    #[default]
    ReturnError,
    /// Run the function and return its result without caching it: [`OutagePolicy::Miss`].
    Compute,
}

#[allow(deprecated)]
impl From<WhenUnavailable> for OutagePolicy {
    fn from(policy: WhenUnavailable) -> OutagePolicy {
        match policy {
            WhenUnavailable::ReturnError => OutagePolicy::Fail,
            WhenUnavailable::Compute => OutagePolicy::Miss,
        }
    }
}

type Func<A, R, E> = dyn Fn(A) -> std::result::Result<R, E> + Send + Sync;
type KeyFn<A> = dyn Fn(&A) -> std::result::Result<Key, String> + Send + Sync;
type BytesFn<A> = dyn Fn(&A) -> std::result::Result<Vec<u8>, String> + Send + Sync;
/// Encodes a result; the second argument is the memo's schema version.
type EncodeFn<R> =
    dyn Fn(&R, Option<u32>) -> std::result::Result<Vec<Vec<u8>>, CodecError> + Send + Sync;
/// Decodes a stored result; the second argument is the memo's schema version.
type DecodeFn<R> = dyn Fn(Stored, Option<u32>) -> std::result::Result<R, CodecError> + Send + Sync;
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
            encode: Arc::new(move |r: &R, version| {
                Ok(vec![enc_codec.encode(r, &versioned(&enc_tag, version))?])
            }),
            decode: Arc::new(move |stored, version| match stored {
                Stored::One(bytes) => codec.decode(&bytes, &versioned(&tag, version)),
                Stored::Many(_) => Err(CodecError::new("expected one value, found a list")),
            }),
        }
    }
}

/// `tag` with the memo's schema version, if it has one.
pub(crate) fn versioned(tag: &TypeTag, version: Option<u32>) -> TypeTag {
    match version {
        Some(v) => tag.with_schema_version(v),
        None => *tag,
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
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`call`](Memo::call) | see [what a call costs](self#what-a-call-costs) | 1 on a hit | the read resent; storing a computed result `OutcomeUnknown` (under `OutagePolicy::Miss`, the result is returned) |
/// | [`call_many`](Memo::call_many) | one script doing `call`'s reads for every argument (per [`BATCH`](Memo::BATCH)), then as `call` for each missing result | 1 per `BATCH` when every result is cached | as `call` |
/// | [`call_uncached`](Memo::call_uncached) | none | 0 | — |
/// | [`peek`](Memo::peek) | `GET` (`LRANGE`, `HGET`) | 1 | resent |
/// | [`set`](Memo::set) | a script (`SET PX`, or the list or hash field) | 1 | `OutcomeUnknown` |
/// | [`refresh`](Memo::refresh) | the function, then a script (as `set`, and `HINCRBY`) | 1 | `OutcomeUnknown` (under `OutagePolicy::Miss`, the result is returned) |
/// | [`forget`](Memo::forget) | `DEL` value and lock (`HDEL` + `DEL` for a hash field) | 1 | resent |
/// | [`forget_after`](Memo::forget_after) | as `forget`, after your function succeeded | 1 | resent |
/// | [`clear`](Memo::clear) | `SCAN MATCH` + `UNLINK` in batches | 1 per 500 keys | resent |
/// | [`stats`](Memo::stats) | `HGETALL` | 1 | resent |
/// | [`reset_stats`](Memo::reset_stats) | a script: `HGETALL`, `DEL` | 1 | `OutcomeUnknown` |
///
/// # Concurrency
///
/// If several threads or processes miss the same arguments at once, one of them (the one
/// that takes the lock) runs the function; the others wait for its result, polling Redis, for
/// up to [`wait_timeout`](MemoBuilder::wait_timeout), then run the function themselves
/// without storing the result. If that caller's function fails, the lock is released and the
/// next waiter computes instead.
///
/// # Results of another shape
///
/// A stored result written for a type of another shape (a field added, reordered or
/// retyped by another build: see [when a type changes](crate::codec#when-a-type-changes)),
/// under another [`schema_version`](MemoBuilder::schema_version), or by redis-caches 0.1
/// (stored-data format v1) is a miss, not an error: [`call`](Memo::call) runs the function
/// and writes its result over the old one (one more script, as [`set`](Memo::set)), and
/// [`peek`](Memo::peek) returns `None`. Callers that read such a result at the same time each
/// run the function once. The call is counted in [`stats`](Memo::stats) as a miss and a
/// refresh (the read counts a hit, before the client decodes; the script that writes over
/// the old result moves it to `misses`), as when the function fails or `cache_if` turns the
/// result down. Bytes that are damaged or were not written by the codec at all
/// are a miss for `call` too (deleted, then computed again), but an
/// [`Error::Decode`] for `peek`.
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
    /// Sends the function's commands and scripts; its own key is `{memo:<name>}`, which every
    /// key of the function shares a hash slot with (in a region: the region's, placed).
    engine: Engine<Postcard>,
    resolved: OnceCell<Resolved>,
    /// In a region: the region's TTL and policy, which the region's hash (holding the
    /// results) follows.
    region: Option<(Option<Duration>, TtlPolicy)>,
    ttl: Option<Duration>,
    refresh: Option<Duration>,
    lock_timeout: Duration,
    wait_timeout: Duration,
    default: Option<Arc<DefaultFn<R>>>,
    cache_if: Option<Arc<KeepFn<R>>>,
    stats: bool,
    outage: OutagePolicy,
    /// Statistics this process could not count because the server refused writes.
    unrecorded: AtomicU64,
    /// The read script has answered a call of this handle: its user may run it, so fresh hits
    /// may be read with plain commands (see [`Memo::reads_plain`]).
    script_ran: AtomicBool,
    /// Fresh hits answered by the near cache (never counted in Redis).
    near_hits: AtomicU64,
    /// Locks this process may hold without knowing it: `(lock key, token)` of calls whose
    /// reply was lost after a script that takes or releases the lock was sent. Released
    /// (if still held by that token) before the next call.
    orphans: std::sync::Mutex<Vec<(String, String)>>,
    enabled: AtomicBool,
    pool: RefreshPool,
    config_error: Option<String>,
    /// Put into the fingerprint of every stored result ([`MemoBuilder::schema_version`]).
    schema_version: Option<u32>,
}

struct Resolved {
    /// `<connection prefix>{memo:<name>}`, rendered (in a region: the region's name key).
    base: String,
    stats: String,
}

/// The keys of one call. In a region, `value` and `lock` are named after the region's name
/// key; requests name them with its placeholder ([`Memo::named`]).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) value: String,
    pub(crate) lock: String,
    pub(crate) stats: String,
    pub(crate) field: Vec<u8>,
}

enum State {
    Fresh(Stored),
    Stale {
        value: Stored,
        owned: bool,
    },
    Missing {
        owned: bool,
    },
    /// Missing, and the server refuses writes: nothing can be stored.
    Refused(Error),
}

/// What [`Memo::read_plain`] found.
enum Plain {
    /// A fresh hit, counted.
    Fresh(State),
    /// Not a fresh hit, or not known to be one: the read script decides. `counted`: a hit
    /// was counted, which the script takes back.
    Not { counted: bool },
}

/// [`scripts::READ_MANY`]'s state for an entry that is not a fresh hit.
const NOT_FRESH: i64 = 6;

/// How many keys and arguments [`scripts::READ`] takes for one entry.
const READ_KEYS: usize = 3;
const READ_ARGS: usize = 11;
/// The position of the placement among them (1-based, as Lua counts).
const READ_PLACE: usize = 10;

/// The arguments of [`scripts::READ`] that come from the memo's options, the same for every
/// entry: rendered once per request, not once per entry.
struct ReadOptions<'a> {
    lock_ms: String,
    stale_after: String,
    store_ttl: String,
    store_policy: &'static str,
    place: &'a str,
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

#[derive(Clone, Copy)]
enum Finish {
    Store,
    Skip,
    Fail,
    FailKeep,
    Drop,
    /// Store whoever holds the lock ([`Memo::set`]).
    Prime,
    /// Store whoever holds the lock, counted as a refresh ([`Memo::refresh`]).
    Refresh,
    /// Store whoever holds the lock, after a read that found a value of another shape
    /// (another build's): the call was a miss, though the read counted it otherwise (see
    /// [`Counted`]).
    Replace,
}

/// What the read of a call counted it as, when the call turned out to be a miss (the value
/// it found was of another shape): the end of the call moves it to `misses`.
#[derive(Clone, Copy)]
enum Counted {
    Hit,
    StaleHit,
}

impl Counted {
    fn field(self) -> &'static str {
        match self {
            Counted::Hit => "hits",
            Counted::StaleHit => "stale_hits",
        }
    }
}

impl Finish {
    fn code(self) -> &'static str {
        match self {
            Finish::Store => "store",
            Finish::Skip => "skip",
            Finish::Fail => "fail",
            Finish::FailKeep => "fail_keep",
            Finish::Drop => "drop",
            Finish::Prime => "prime",
            Finish::Refresh => "refresh",
            Finish::Replace => "replace",
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

/// The most orphaned locks a memo remembers (see [`Memo::release_orphans`]); more are left to
/// expire after `lock_timeout`.
const MAX_ORPHANS: usize = 64;

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
    /// [`Postcard`] codec unless [`codec`](MemoBuilder::codec) says otherwise). Building does
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

    /// Runs the function directly: no cache read, nothing stored. No Redis command.
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

    /// The cached result for `args`, if there is one (fresh or stale), without computing
    /// anything, counting a statistic or taking a lock. `GET` (`LRANGE` for a cached list,
    /// `HGET` for a hash-field memo), one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for a stored result that is damaged or was not written by the
    /// codec (one of another shape or format is `None`: see
    /// [results of another shape](Memo#results-of-another-shape)); connection errors;
    /// [`Error::InvalidKey`]/[`Error::Config`] as for [`forget`](Memo::forget).
    ///
    /// ```no_run
    /// let price = redis_caches::Memo::builder("price", |id: u64| id * 100).build();
    /// if let Some(p) = price.peek(7)? {
    ///     println!("cached: {p}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn peek(&self, args: A) -> Result<Option<R>> {
        let keys = self.keys(&args)?;
        let mut cmd = match self.inner.storage.mode {
            Mode::Value => redis::cmd("GET"),
            Mode::List => redis::cmd("LRANGE"),
            Mode::HashField => redis::cmd("HGET"),
        };
        cmd.arg(&keys.value);
        match self.inner.storage.mode {
            Mode::Value => {}
            Mode::List => {
                cmd.arg(0).arg(-1);
            }
            Mode::HashField => {
                cmd.arg(&keys.field);
            }
        }
        let mut call = self.new_call()?;
        let stored = match self.inner.storage.mode {
            Mode::List => {
                let items: Vec<Vec<u8>> =
                    self.query_at(&mut call, &keys.value, &cmd, Retry::Idempotent)?;
                (!items.is_empty()).then_some(Stored::Many(items))
            }
            _ => {
                let one: Option<Vec<u8>> =
                    self.query_at(&mut call, &keys.value, &cmd, Retry::Idempotent)?;
                one.map(Stored::One)
            }
        };
        self.inner.engine.fence_pool_read_at(&keys.value)?;
        match stored.map(|s| self.decode(s, &keys)).transpose() {
            Err(e) if e.is_stale_decode() => Ok(None),
            other => other,
        }
    }

    /// Stores `value` as the result for `args`, fresh, with the memo's TTL, as if the
    /// function had returned it (to prime the cache, or to store a result known by other
    /// means). A computation in flight for the same arguments may overwrite it when it ends.
    /// One script, one round trip; no statistic is counted.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `value` cannot be encoded; connection errors; as
    /// [`forget`](Memo::forget).
    ///
    /// ```no_run
    /// let price = redis_caches::Memo::builder("price", |id: u64| id * 100).build();
    /// price.set(7, &650)?; // the new price is known: no need to compute it
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set(&self, args: A, value: &R) -> Result<()> {
        let keys = self.keys(&args)?;
        let values =
            (self.inner.storage.encode)(value, self.inner.schema_version).map_err(|source| {
                Error::Encode {
                    key: keys.value.clone(),
                    source,
                }
            })?;
        self.finish(&keys, &token(), Finish::Prime, &values)
            .map(drop)
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
        let key = &self.resolved()?.stats;
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(key);
        let fields: std::collections::HashMap<String, i64> =
            self.query_at(&mut self.new_call()?, key, &cmd, Retry::Idempotent)?;
        Ok(self.with_unrecorded(MemoStats::from_fields(fields)))
    }

    /// `stats` plus what this process could not count.
    fn with_unrecorded(&self, mut stats: MemoStats) -> MemoStats {
        stats.unrecorded = self.inner.unrecorded.load(Ordering::Relaxed);
        stats.hits += self.inner.near_hits.load(Ordering::Relaxed);
        stats
    }

    /// Returns the statistics and zeroes them, atomically: no increment from another process
    /// is lost in between. A script (`HGETALL`, `DEL`), one round trip.
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
        let key = &self.resolved()?.stats;
        let fields: std::collections::HashMap<String, i64> = self.eval_at(
            &mut self.new_call()?,
            key,
            &scripts::RESET_STATS,
            1,
            |cmd| {
                cmd.arg(key);
            },
            Retry::Once,
        )?;
        let stats = MemoStats::from_fields(fields);
        let unrecorded = self.inner.unrecorded.swap(0, Ordering::Relaxed);
        let near_hits = self.inner.near_hits.swap(0, Ordering::Relaxed);
        Ok(MemoStats {
            unrecorded,
            hits: stats.hits + near_hits,
            ..stats
        })
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
        if self.inner.region.is_some() {
            return self.clear_in_region();
        }
        let resolved = self.resolved()?;
        let pattern = format!("{}.*", glob_escape(&resolved.base));
        let stats = &resolved.stats;
        let mut call = self.new_call()?;
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            // Every key of the function shares its hash tag, so on a cluster they all live
            // on the master serving the statistics key's slot: the SCAN is routed by it.
            call.next_batch();
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500);
            let (next, batch): (u64, Vec<String>) =
                self.query_at(&mut call, stats, &scan, Retry::Idempotent)?;
            let batch: Vec<String> = batch.into_iter().filter(|k| k != stats).collect();
            if !batch.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&batch);
                let n: u64 = self.query_at(&mut call, stats, &unlink, Retry::Idempotent)?;
                removed += n;
                // The batch's keys are not the key the command was routed by: drop every
                // near-cache copy, so that this process sees the removal at once.
                self.inner.engine.flush_near()?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// [`clear`](Memo::clear) of a memo in a region: `HSCAN` of the region's hash and `HDEL`
    /// of this function's fields, one batch per round trip each, through scripts that find
    /// the region's hash.
    fn clear_in_region(&self) -> Result<u64> {
        let resolved = self.resolved()?;
        let mut mine = field_header();
        mine.extend_from_slice(self.inner.name.as_bytes());
        mine.push(b'.');
        let engine = &self.inner.engine;
        let mut call = self.new_call()?;
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            call.next_batch();
            let mut scan = redis::cmd("HSCAN");
            scan.arg(&resolved.base).arg(cursor).arg("COUNT").arg(500);
            let (next, page): (u64, Vec<Vec<u8>>) =
                engine.query_in(&mut call, &scan, Retry::Idempotent)?;
            let fields: Vec<&Vec<u8>> = page
                .iter()
                .step_by(2)
                .filter(|f| f.starts_with(&mine))
                .collect();
            if !fields.is_empty() {
                let mut hdel = redis::cmd("HDEL");
                hdel.arg(&resolved.base).arg(&fields);
                let n: u64 = engine.query_in(&mut call, &hdel, Retry::Idempotent)?;
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
            let engine = self.inner.engine.resolved()?;
            let base = engine.key.clone();
            let stats = match &engine.placed {
                // `B#memo:<name>.stats`, in the region's tree (the placeholder is `B@?`).
                Some(placed) => {
                    let tree = &placed.placeholder[..placed.placeholder.len() - 2];
                    format!("{tree}#memo:{}.stats", self.inner.name)
                }
                None => format!("{base}.stats"),
            };
            Ok(Resolved { base, stats })
        })
    }

    /// The name a request gives `key` (a key of this function): itself, or in a region, with
    /// the region's placeholder.
    fn named<'k>(&self, key: &'k str) -> Result<std::borrow::Cow<'k, str>> {
        Ok(self.inner.engine.resolved()?.named(key))
    }

    /// The placement argument of the function's scripts (empty unless in a region).
    fn place(&self) -> Result<&str> {
        Ok(self.inner.engine.resolved()?.place())
    }

    /// A new call on the function's connection.
    pub(crate) fn new_call(&self) -> Result<Call> {
        self.resolved()?;
        self.inner.engine.call()
    }

    /// Sends `cmd` about `key` (a key of this function), as part of `call`.
    pub(crate) fn query_at<T: redis::FromRedisValue>(
        &self,
        call: &mut Call,
        key: &str,
        cmd: &redis::Cmd,
        retry: Retry,
    ) -> Result<T> {
        self.resolved()?;
        self.inner.engine.query_at(call, key, cmd, retry)
    }

    /// Runs `script` about `key` (a key of this function), as part of `call`.
    pub(crate) fn eval_at<T: redis::FromRedisValue>(
        &self,
        call: &mut Call,
        key: &str,
        script: &Script,
        numkeys: usize,
        fill: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<T> {
        self.resolved()?;
        self.inner
            .engine
            .eval_at(call, key, script, numkeys, fill, retry)
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
        if self.inner.region.is_some() {
            // The region's hash; the field is a header no entry key starts with, the name
            // and the arguments; the lock sits beside the hash, in its generation.
            let mut field = field_header();
            field.extend_from_slice(self.inner.name.as_bytes());
            field.push(b'.');
            field.extend_from_slice(args.as_bytes());
            return Ok(Keys {
                value: resolved.base.clone(),
                lock: format!("{}#lock:{}.{args}", resolved.base, self.inner.name),
                stats: resolved.stats.clone(),
                field,
            });
        }
        let (value, field) = match self.inner.storage.mode {
            Mode::Value | Mode::List => (under("v"), Vec::new()),
            Mode::HashField => {
                // One hash for the whole function (`<base>.h`); the arguments name the field.
                let field = if args.is_empty() {
                    b"_".to_vec()
                } else {
                    args.clone().into_bytes()
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
    /// removed. `DEL value lock` (a hash-field memo: a script, `HDEL` + `DEL`), one round
    /// trip.
    ///
    /// # Errors
    ///
    /// Connection errors; [`Error::InvalidKey`] when the key cannot be built from `args`;
    /// [`Error::Config`] for an invalid configuration.
    ///
    /// ```no_run
    /// let price = redis_caches::memo::Memo::builder("price", |id: u64| id * 100).build();
    /// price.forget(7)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: A) -> Result<bool> {
        let keys = self.keys(&args)?;
        let mut call = self.new_call()?;
        let removed: i64 = match self.inner.storage.mode {
            Mode::HashField => {
                let (value, lock, place) = (
                    self.named(&keys.value)?,
                    self.named(&keys.lock)?,
                    self.place()?,
                );
                self.eval_at(
                    &mut call,
                    &keys.value,
                    &scripts::FORGET_FIELD,
                    2,
                    |cmd| {
                        cmd.arg(&value).arg(&lock).arg(&keys.field).arg(place);
                    },
                    Retry::Idempotent,
                )?
            }
            _ => {
                let mut del = redis::cmd("DEL");
                del.arg(&keys.value).arg(&keys.lock);
                self.query_at(&mut call, &keys.value, &del, Retry::Idempotent)?
            }
        };
        Ok(removed > 0)
    }

    /// Runs `mutate` (a function that changes what this memoized function computes from),
    /// then, if it succeeded, [forgets](Memo::forget) the result for `args`. If `mutate`
    /// fails nothing is forgotten. One round trip after `mutate`.
    ///
    /// # Errors
    ///
    /// `mutate`'s error, or the error of [`forget`](Memo::forget).
    ///
    /// ```no_run
    /// use redis_caches::memo::Memo;
    /// let price = Memo::builder("price", |id: u64| id * 100).build();
    /// let saved = price.forget_after(7, || -> Result<bool, redis_caches::Error> {
    ///     // update the price of item 7 in the database...
    ///     Ok(true)
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget_after<T, E2, F>(&self, args: A, mutate: F) -> std::result::Result<T, E2>
    where
        F: FnOnce() -> std::result::Result<T, E2>,
        E2: From<Error>,
    {
        let out = mutate()?;
        self.forget(args)?;
        Ok(out)
    }

    /// A fresh result from the near cache (or read into it: one round trip, no statistics
    /// script), when the memo has one and stores results as one value; `None` sends the call
    /// the usual way (a miss, a stale or undecodable result, an error).
    fn near_hit(&self, keys: &Keys) -> Option<R> {
        self.near_result(keys, true)
    }

    /// A fresh result already in the near cache, without reading Redis.
    fn near_copy(&self, keys: &Keys) -> Option<R> {
        self.near_result(keys, false)
    }

    /// A fresh result from the near cache, decoded and counted; `fill`: read it into the
    /// near cache when it holds no copy (one round trip).
    fn near_result(&self, keys: &Keys, fill: bool) -> Option<R> {
        let engine = &self.inner.engine;
        let bytes = if self.inner.region.is_some() {
            // A field of the region's hash, fresh while it is there (it never refreshes).
            engine.read_near_field(&keys.field, fill)
        } else if self.inner.storage.mode != Mode::Value {
            return None;
        } else if fill {
            let stale_after = match (self.inner.refresh, self.inner.ttl) {
                (Some(r), Some(t)) => Some(t.saturating_sub(r)),
                _ => None,
            };
            engine.read_fresh(&keys.value, stale_after)
        } else {
            engine.near_copy(&keys.value)
        };
        let r = self.decode(Stored::One(bytes.ok()??.to_vec()), keys).ok()?;
        self.inner.near_hits.fetch_add(1, Ordering::Relaxed);
        Some(r)
    }

    fn bypass(&self, e: &Error) -> bool {
        self.inner.outage.degrades(e)
    }

    /// Whether [`read_plain`](Memo::read_plain) reads this memo's fresh hits: once the read
    /// script has answered a call of this handle (a user who may not run it gets its refusal
    /// with nothing written, not a hit counted before it), for a result stored in a key of its
    /// own (the default storage), outside a region, never stale (no
    /// [`refresh`](MemoBuilder::refresh): a stale hit stays one round trip, the script's), and
    /// no near cache (which answers fresh hits first, without a command).
    fn reads_plain(&self) -> Result<bool> {
        Ok(self.inner.script_ran.load(Ordering::Relaxed)
            && self.inner.region.is_none()
            && self.inner.storage.mode == Mode::Value
            && self.inner.refresh.is_none()
            && !self.inner.engine.has_near_cache()?)
    }

    /// A fresh hit read with plain commands instead of [`scripts::READ`]: `GET` and, with
    /// statistics on, `HINCRBY` of `hits`, pipelined. One round trip, as the script, and for
    /// the server less than half its work. Anything but a fresh hit (missing, an error
    /// reply, a redirection) is left to the script, told whether a hit was counted here so
    /// that it takes it back (see [`scripts::READ`]): a miss costs one round trip more. A
    /// refused statistic (out of memory, too few replicas, a read-only replica) is a fresh
    /// hit whose statistic is unrecorded, as in the script.
    fn read_plain(&self, call: &mut Call, keys: &Keys) -> Result<Plain> {
        if !self.reads_plain()? {
            return Ok(Plain::Not { counted: false });
        }
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&keys.value);
        if self.inner.stats {
            pipe.cmd("HINCRBY").arg(&keys.stats).arg("hits").arg("1");
        }
        // Sent again after a lost reply: only a statistic may count twice, as the script.
        let mut replies = self
            .inner
            .engine
            .pipeline_at(call, &keys.value, &pipe, Retry::Idempotent)?
            .into_iter();
        let value = replies.next();
        let (counted, refused) = match (self.inner.stats, replies.next()) {
            (false, _) => (false, false),
            (true, Some(redis::Value::Int(_))) => (true, false),
            (true, Some(redis::Value::ServerError(e)))
                if matches!(e.code(), "OOM" | "NOREPLICAS" | "READONLY" | "MISCONF") =>
            {
                (false, true)
            }
            // Refused otherwise (a permission, a key of another type): the script, sent
            // next, meets it again and fails as it always does.
            (true, _) => return Ok(Plain::Not { counted: false }),
        };
        match value {
            Some(redis::Value::BulkString(v)) => {
                if refused {
                    self.inner.unrecorded.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Plain::Fresh(State::Fresh(Stored::One(v))))
            }
            _ => Ok(Plain::Not { counted }),
        }
    }

    /// `uncount`: [`read_plain`](Memo::read_plain) counted a hit for this call that was not
    /// one; the script takes it back.
    fn read(
        &self,
        call: &mut Call,
        keys: &Keys,
        token: &str,
        poll: bool,
        uncount: bool,
    ) -> Result<State> {
        let options = self.read_options()?;
        let (value, lock) = (self.named(&keys.value)?, self.named(&keys.lock)?);
        let reply: Vec<redis::Value> = self.eval_at(
            call,
            &keys.value,
            &scripts::READ,
            READ_KEYS,
            |cmd| {
                cmd.arg(value.as_ref()).arg(lock.as_ref()).arg(&keys.stats);
                self.push_read_argv(cmd, &options, keys, token, poll);
                cmd.arg(flag(uncount));
            },
            // Sent again after a lost reply: a lock this call's token already holds counts
            // as taken by this call (only a statistic may count twice).
            Retry::Idempotent,
        )?;
        self.inner.script_ran.store(true, Ordering::Relaxed);
        self.read_state(reply, keys, poll)
    }

    /// The fresh hits among many entries, in one script ([`scripts::READ_MANY`]): for each
    /// entry in order, `Some` fresh state (its hit counted) or `None` (nothing counted, no
    /// lock taken: the caller calls it on its own).
    fn read_fresh_many(&self, call: &mut Call, entries: &[&Keys]) -> Result<Vec<Option<State>>> {
        let Some(first) = entries.first() else {
            return Ok(Vec::new());
        };
        let options = self.read_options()?;
        let names = entries
            .iter()
            .map(|keys| Ok((self.named(&keys.value)?, self.named(&keys.lock)?)))
            .collect::<Result<Vec<_>>>()?;
        let replies: Vec<redis::Value> = self.eval_at(
            call,
            &first.value,
            &scripts::READ_MANY,
            READ_KEYS * entries.len(),
            |cmd| {
                for ((value, lock), keys) in names.iter().zip(entries) {
                    cmd.arg(value.as_ref()).arg(lock.as_ref()).arg(&keys.stats);
                }
                cmd.arg(READ_KEYS).arg(READ_ARGS).arg(READ_PLACE);
                for keys in entries {
                    self.push_read_argv(cmd, &options, keys, "", false);
                }
            },
            // Sent again after a lost reply: it takes no lock (only a hit may count twice).
            Retry::Idempotent,
        )?;
        if replies.len() != entries.len() {
            return Err(self.bad_reply(first));
        }
        replies
            .into_iter()
            .zip(entries)
            .map(|(reply, keys)| match reply {
                redis::Value::Array(reply)
                    if matches!(reply.first(), Some(redis::Value::Int(NOT_FRESH))) =>
                {
                    Ok(None)
                }
                redis::Value::Array(reply) => self.read_state(reply, keys, false).map(Some),
                _ => Err(self.bad_reply(keys)),
            })
            .collect()
    }

    /// The arguments of [`scripts::READ`] the memo's options decide.
    fn read_options(&self) -> Result<ReadOptions<'_>> {
        let stale_after = match (self.inner.refresh, self.inner.ttl) {
            (Some(r), Some(t)) => ttl_millis(t.saturating_sub(r)).to_string(),
            _ => "-1".to_string(),
        };
        let (store_ttl, store_policy) = self.store_ttl();
        Ok(ReadOptions {
            lock_ms: ttl_millis(self.inner.lock_timeout).to_string(),
            stale_after,
            store_ttl: store_ttl.to_string(),
            store_policy,
            place: self.place()?,
        })
    }

    /// Appends one entry's [`READ_ARGS`] arguments of [`scripts::READ`] (the placement at
    /// [`READ_PLACE`]).
    fn push_read_argv(
        &self,
        cmd: &mut redis::Cmd,
        options: &ReadOptions<'_>,
        keys: &Keys,
        token: &str,
        poll: bool,
    ) {
        cmd.arg(self.inner.storage.mode.code())
            .arg(&keys.field)
            .arg(token)
            .arg(&options.lock_ms)
            .arg(&options.stale_after)
            .arg(flag(self.inner.stats))
            .arg(flag(self.inner.default.is_some()))
            .arg(flag(poll))
            .arg(&options.store_ttl)
            .arg(options.place)
            .arg(options.store_policy);
    }

    /// The state [`scripts::READ`]'s reply describes.
    fn read_state(&self, reply: Vec<redis::Value>, keys: &Keys, poll: bool) -> Result<State> {
        let mut reply = reply.into_iter();
        let state = match reply.next() {
            Some(redis::Value::Int(n)) => n,
            _ => return Err(self.bad_reply(keys)),
        };
        let value = reply.next();
        let refused = match reply.next() {
            Some(redis::Value::BulkString(b)) if !b.is_empty() => {
                Some(String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        };
        if let Some(why) = &refused {
            if self.inner.stats && !poll {
                self.inner.unrecorded.fetch_add(1, Ordering::Relaxed);
            }
            if state == 5 {
                let (code, detail) = why.split_once(' ').unwrap_or((why.as_str(), ""));
                return Ok(State::Refused(Error::redis(
                    keys.value.clone(),
                    redis::make_extension_error(code.to_string(), Some(detail.to_string())),
                )));
            }
        }
        let value = match value {
            None | Some(redis::Value::Nil) => None,
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
        Error::decode(
            keys.value.clone(),
            "unexpected reply from the memo read script",
        )
    }

    /// The TTL in milliseconds (`0`: none) and policy (`keep` or empty) a stored result gets:
    /// a hash-field result keeps the hash's TTL once set (`keep`); in a region, the region's
    /// TTL and policy apply, as to every write to its hash. The read script checks the
    /// permissions storing will need with them.
    fn store_ttl(&self) -> (u64, &'static str) {
        let (ttl, policy) = match self.inner.region {
            Some((ttl, policy)) => (ttl, policy),
            None => (self.inner.ttl, TtlPolicy::Keep),
        };
        let policy = if policy == TtlPolicy::Keep {
            "keep"
        } else {
            ""
        };
        (ttl.map_or(0, ttl_millis), policy)
    }

    fn finish(&self, keys: &Keys, token: &str, action: Finish, values: &[Vec<u8>]) -> Result<bool> {
        self.finish_moving(keys, token, action, None, values)
    }

    /// [`finish`](Memo::finish), moving the call from the statistic `moved` to `misses`.
    fn finish_moving(
        &self,
        keys: &Keys,
        token: &str,
        action: Finish,
        moved: Option<Counted>,
        values: &[Vec<u8>],
    ) -> Result<bool> {
        let code: std::borrow::Cow<'static, str> = match moved {
            Some(counted) => format!("{}:{}", action.code(), counted.field()).into(),
            None => action.code().into(),
        };
        let (ttl, policy) = self.store_ttl();
        let (value, lock, place) = (
            self.named(&keys.value)?,
            self.named(&keys.lock)?,
            self.place()?,
        );
        let owned: Result<i64> = self.eval_at(
            &mut self.new_call()?,
            &keys.value,
            &scripts::FINISH,
            3,
            |cmd| {
                cmd.arg(&value)
                    .arg(&lock)
                    .arg(&keys.stats)
                    .arg(self.inner.storage.mode.code())
                    .arg(&keys.field)
                    .arg(token)
                    .arg(ttl)
                    .arg(if self.inner.stats { "1" } else { "0" })
                    .arg(code.as_ref())
                    .arg(place)
                    .arg(policy);
                for v in values {
                    cmd.arg(v.as_slice());
                }
            },
            Retry::Once,
        );
        match owned {
            Ok(owned) => Ok(owned == 1),
            Err(e) => {
                if !matches!(action, Finish::Prime | Finish::Refresh | Finish::Replace) {
                    self.note_orphan(keys, token, &e);
                }
                Err(e)
            }
        }
    }

    /// After a call failed with `e`: when the server may have run its script (a lost reply,
    /// an outage), the lock may be held by `token` with nobody to release it; remember it.
    fn note_orphan(&self, keys: &Keys, token: &str, e: &Error) {
        if !e.is_connection() {
            return;
        }
        let mut orphans = self
            .inner
            .orphans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if orphans.len() < MAX_ORPHANS {
            orphans.push((keys.lock.clone(), token.to_string()));
        }
    }

    /// Releases the locks of [`note_orphan`](Memo::note_orphan), each only if its token
    /// still holds it: one script for all of them, as part of the next call (sharing its
    /// deadline), so that callers of the same arguments do not wait `wait_timeout` for a
    /// computation that never runs. Locks that could not be released are kept for the next
    /// call; a connection error (the server is down or stalled) is the call's error, since
    /// the read that follows would meet it too, with no time left.
    fn release_orphans(&self, call: &mut Call) -> Result<()> {
        let orphans = std::mem::take(
            &mut *self
                .inner
                .orphans
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if orphans.is_empty() {
            return Ok(());
        }
        let locks = orphans
            .iter()
            .map(|(lock, _)| self.named(lock).map(std::borrow::Cow::into_owned))
            .collect::<Result<Vec<_>>>()
            .and_then(|locks| Ok((locks, self.place()?)));
        let released: Result<i64> = locks.and_then(|(locks, place)| {
            self.eval_at(
                call,
                &orphans[0].0,
                &scripts::RELEASE,
                orphans.len(),
                |cmd| {
                    for lock in &locks {
                        cmd.arg(lock);
                    }
                    for (_, token) in &orphans {
                        cmd.arg(token);
                    }
                    cmd.arg(place);
                },
                Retry::Idempotent,
            )
        });
        match released {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut kept = self
                    .inner
                    .orphans
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for orphan in orphans {
                    if kept.len() < MAX_ORPHANS {
                        kept.push(orphan);
                    }
                }
                if e.is_connection() { Err(e) } else { Ok(()) }
            }
        }
    }

    fn decode(&self, stored: Stored, keys: &Keys) -> Result<R> {
        (self.inner.storage.decode)(stored, self.inner.schema_version).map_err(|source| {
            Error::Decode {
                key: if keys.field.is_empty() {
                    keys.value.clone()
                } else {
                    format!("{}[{}]", keys.value, String::from_utf8_lossy(&keys.field))
                },
                source,
            }
        })
    }

    /// Stores `r` if cacheable and the lock is still ours (`Finish::Store`; whoever holds it
    /// for `Finish::Replace`); releases the lock either way (`Store`). `moved`: see
    /// [`Counted`].
    fn store(
        &self,
        keys: &Keys,
        token: &str,
        r: &R,
        action: Finish,
        moved: Option<Counted>,
    ) -> Result<()> {
        if let Some(keep) = &self.inner.cache_if
            && !keep(r)
        {
            return self
                .finish_moving(keys, token, Finish::Skip, moved, &[])
                .map(drop);
        }
        match (self.inner.storage.encode)(r, self.inner.schema_version) {
            Ok(values) => self
                .finish_moving(keys, token, action, moved, &values)
                .map(drop),
            Err(source) => {
                let _ = self.finish_moving(keys, token, Finish::Skip, moved, &[]);
                Err(Error::Encode {
                    key: keys.value.clone(),
                    source,
                })
            }
        }
    }

    /// Deletes an entry that cannot be decoded (written for another type, or corrupt), so the
    /// next call computes it again under the lock. One round trip, best effort.
    fn drop_undecodable(&self, keys: &Keys) {
        let mut cmd = match self.inner.storage.mode {
            Mode::HashField => redis::cmd("HDEL"),
            _ => redis::cmd("DEL"),
        };
        cmd.arg(&keys.value);
        if self.inner.storage.mode == Mode::HashField {
            cmd.arg(&keys.field);
        }
        if let Ok(mut call) = self.new_call() {
            let _: Result<i64> = if self.inner.region.is_some() {
                // The region's hash, found by the script that runs the command.
                self.inner
                    .engine
                    .query_in(&mut call, &cmd, Retry::Idempotent)
            } else {
                self.query_at(&mut call, &keys.value, &cmd, Retry::Idempotent)
            };
        }
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
    /// A stored result of another shape or format (written by an older build) counts as
    /// missing: it is computed again and written over (see
    /// [results of another shape](Memo#results-of-another-shape)); a corrupt one is deleted
    /// and computed again.
    ///
    /// If several threads call this for the same arguments at once, the function runs once;
    /// see [Concurrency](Memo#concurrency).
    ///
    /// # Errors
    ///
    /// The function's errors (never cached). Cache errors converted into `E`: connection
    /// errors and refused writes (unless [`OutagePolicy::Miss`]), [`Error::Encode`] when the
    /// result cannot
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
        if let Some(r) = self.near_hit(&keys) {
            return Ok(r);
        }
        let token = token();
        // One call, one deadline: the release of earlier orphans and the reads share it.
        let state = match self.new_call().and_then(|mut call| {
            self.release_orphans(&mut call)?;
            let counted = match self.read_plain(&mut call, &keys)? {
                Plain::Fresh(state) => return Ok(state),
                Plain::Not { counted } => counted,
            };
            self.read(&mut call, &keys, &token, false, counted)
        }) {
            Ok(state) => state,
            Err(e) => {
                self.note_orphan(&keys, &token, &e);
                if self.bypass(&e) {
                    return (self.inner.func)(args);
                }
                return Err(e.into());
            }
        };
        self.settle(args, keys, token, state)
    }

    /// Returns the results for many arguments, in their order, as that many
    /// [`call`](Memo::call)s would, reading every fresh result in one round trip: one script
    /// per [`BATCH`](Memo::BATCH) arguments, which counts their hits and takes no lock. Each
    /// argument whose result is not fresh (missing, stale, undecodable) is then `call`ed on
    /// its own, in order: its round trips, its statistics, its lock, taken only right before
    /// its computation (so an argument given twice is computed once, then a hit). Results in
    /// the [near cache](crate::NearCache) cost nothing; it is consulted, not filled, here.
    ///
    /// # Errors
    ///
    /// As [`call`](Memo::call): the first error stops the batch (the results computed before
    /// it are stored; no lock is left behind).
    ///
    /// ```no_run
    /// let square = redis_caches::memo::Memo::builder("square", |x: u64| x * x).build();
    /// assert_eq!(square.call_many([2, 3, 2])?, [4, 9, 4]);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call_many<I>(&self, args: I) -> std::result::Result<Vec<R>, E>
    where
        I: IntoIterator<Item = A>,
    {
        let args: Vec<A> = args.into_iter().collect();
        if !self.is_enabled() {
            return args.into_iter().map(|a| (self.inner.func)(a)).collect();
        }
        let mut results: Vec<Option<R>> = Vec::with_capacity(args.len());
        let mut pending = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            let keys = self.keys(&a)?;
            match self.near_copy(&keys) {
                Some(r) => results.push(Some(r)),
                None => {
                    results.push(None);
                    pending.push((i, a, keys));
                }
            }
        }
        let mut rest = pending.into_iter().peekable();
        while rest.peek().is_some() {
            let batch: Vec<_> = rest.by_ref().take(Self::BATCH).collect();
            let entries: Vec<&Keys> = batch.iter().map(|(_, _, keys)| keys).collect();
            let states = self.new_call().and_then(|mut call| {
                self.release_orphans(&mut call)?;
                self.read_fresh_many(&mut call, &entries)
            });
            let states = match states {
                Ok(states) => states,
                Err(e) if self.bypass(&e) => batch.iter().map(|_| None).collect(),
                Err(e) => return Err(e.into()),
            };
            for ((i, a, keys), state) in batch.into_iter().zip(states) {
                results[i] = Some(match state {
                    Some(state) => self.settle(a, keys, token(), state)?,
                    None => self.call(a)?,
                });
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// How many arguments [`call_many`](Memo::call_many) reads in one script (one round
    /// trip): a larger batch is sent as several scripts, so that none holds the server long.
    ///
    /// ```
    /// use redis_caches::Memo;
    /// assert_eq!(Memo::<u64, u64>::BATCH, 1000);
    /// ```
    pub const BATCH: usize = 1000;

    /// What [`call`](Memo::call) does once it has read the entry's state.
    fn settle(
        &self,
        args: A,
        keys: Keys,
        token: String,
        state: State,
    ) -> std::result::Result<R, E> {
        match state {
            State::Fresh(value) => match self.decode(value, &keys) {
                Ok(r) => Ok(r),
                Err(e) if e.is_stale_decode() => self.replace_stale(args, &keys, Counted::Hit),
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
                Err(e) if owned => {
                    let moved = e.is_stale_decode().then_some(Counted::StaleHit);
                    self.compute_and_store(args, &keys, &token, moved)
                }
                Err(e) if e.is_stale_decode() => self.replace_stale(args, &keys, Counted::StaleHit),
                Err(_) => {
                    self.drop_undecodable(&keys);
                    (self.inner.func)(args)
                }
            },
            State::Refused(e) if self.bypass(&e) => (self.inner.func)(args),
            State::Refused(e) => Err(e.into()),
            State::Missing { owned } => match &self.inner.default {
                Some(default) => {
                    if owned {
                        self.refresh_in_background(args, keys, token);
                    }
                    Ok(default())
                }
                None if owned => self.compute_and_store(args, &keys, &token, None),
                None => self.wait_for(args, &keys),
            },
        }
    }

    /// Computes the result for `args` now, stores it fresh (whatever is cached, and whoever
    /// holds the lock) and returns it: after the data behind a result changed, when the
    /// next call should not wait for the TTL. The function runs in the caller; a failure is
    /// returned and nothing is stored (the cached result stays). One script after the
    /// function, counted as a refresh.
    ///
    /// # Errors
    ///
    /// The function's errors; cache errors converted into `E` as for [`call`](Memo::call)
    /// (under [`OutagePolicy::Miss`], an outage returns the computed result unstored).
    ///
    /// ```no_run
    /// let price = redis_caches::Memo::builder("price", |id: u64| id * 100).build();
    /// let fresh = price.refresh(7)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn refresh(&self, args: A) -> std::result::Result<R, E> {
        if !self.is_enabled() {
            return (self.inner.func)(args);
        }
        let keys = self.keys(&args)?;
        let r = (self.inner.func)(args)?;
        let stored = (self.inner.storage.encode)(&r, self.inner.schema_version)
            .map_err(|source| Error::Encode {
                key: keys.value.clone(),
                source,
            })
            .and_then(|values| self.finish(&keys, &token(), Finish::Refresh, &values));
        match stored {
            Ok(_) => Ok(r),
            Err(e) if self.bypass(&e) => Ok(r),
            Err(e) => Err(e.into()),
        }
    }

    /// The lock is ours: compute, store, release.
    /// `moved`: what the read counted the call as, when it is a miss after all (it found a
    /// value of another shape).
    fn compute_and_store(
        &self,
        args: A,
        keys: &Keys,
        token: &str,
        moved: Option<Counted>,
    ) -> std::result::Result<R, E> {
        let outcome = match catch_unwind(AssertUnwindSafe(|| (self.inner.func)(args))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                // Release the lock so that waiters do not wait for a result that never comes.
                let _ = self.finish_moving(keys, token, Finish::Fail, moved, &[]);
                std::panic::resume_unwind(panic);
            }
        };
        match outcome {
            Ok(r) => match self.store(keys, token, &r, Finish::Store, moved) {
                Ok(()) => Ok(r),
                Err(e) if self.bypass(&e) => Ok(r),
                Err(e) => Err(e.into()),
            },
            Err(e) => {
                let _ = self.finish_moving(keys, token, Finish::Fail, moved, &[]);
                Err(e)
            }
        }
    }

    /// A result of another shape or format (an older build's) was read: compute and write
    /// over it, whoever holds the lock (as [`set`](Memo::set)), and return the result.
    /// `counted`: what the read counted the call as (moved to `misses` by the script that
    /// ends it, whether it stores, skips or fails).
    fn replace_stale(&self, args: A, keys: &Keys, counted: Counted) -> std::result::Result<R, E> {
        let token = token();
        let r = match (self.inner.func)(args) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.finish_moving(keys, &token, Finish::Fail, Some(counted), &[]);
                return Err(e);
            }
        };
        match self.store(keys, &token, &r, Finish::Replace, Some(counted)) {
            Ok(()) => Ok(r),
            Err(e) if self.bypass(&e) => Ok(r),
            Err(e) => Err(e.into()),
        }
    }

    /// Another caller holds the lock: poll for its result, take over if it gives up.
    fn wait_for(&self, args: A, keys: &Keys) -> std::result::Result<R, E> {
        let deadline = crate::deadline::Deadline::after(Some(self.inner.wait_timeout));
        let mut pause = Duration::from_millis(2);
        let token = token();
        loop {
            if deadline.expired() || !deadline.sleep(pause) {
                return (self.inner.func)(args);
            }
            pause = (pause * 2).min(Duration::from_millis(50));
            let polled = self.new_call().and_then(|mut call| {
                self.release_orphans(&mut call)?;
                self.read(&mut call, keys, &token, true, false)
            });
            match polled {
                Ok(State::Fresh(value) | State::Stale { value, .. }) => {
                    return match self.decode(value, keys) {
                        Ok(r) => Ok(r),
                        Err(_) => (self.inner.func)(args),
                    };
                }
                Ok(State::Missing { owned: true }) => {
                    return self.compute_and_store(args, keys, &token, None);
                }
                Ok(State::Missing { owned: false }) => {}
                Ok(State::Refused(e)) if self.bypass(&e) => return (self.inner.func)(args),
                Ok(State::Refused(e)) => return Err(e.into()),
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
                    let _ = memo.store(&job_keys, &job_token, &r, Finish::Store, None);
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
