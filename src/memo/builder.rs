//! [`MemoBuilder`]: the options of a memoized function.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use once_cell::sync::OnceCell;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[allow(deprecated)]
use super::WhenUnavailable;
use super::{
    BytesFn, DefaultFn, Func, Inner, KeepFn, KeyFn, Memo, Mode, RefreshPool, RenderFn, Storage,
    keys,
};
use crate::codec::{Codec, Postcard};
use crate::connection::ConnectionRef;
use crate::engine::{Engine, PlacementFn};
use crate::error::Error;
use crate::key::{IntoKey, Key};
use crate::options::{Options, OutagePolicy, TtlPolicy, check_ttl};

/// How the arguments become key parts, before [`MemoBuilder::build`] combines it with the
/// key style.
enum ArgKey<A> {
    Bytes(Arc<BytesFn<A>>),
    Parts(Arc<KeyFn<A>>),
    Template(keys::Template, Arc<RenderFn<A>>),
}

/// Where a memo placed in a region keeps its results: fields of the region's hash, found at
/// run time like every region's (see [`Region::memo`](crate::Region::memo)). Made by the
/// region, so that this module knows nothing of regions.
pub(crate) struct InRegion {
    /// The region's name parts and options: its engine is the memo's.
    pub(crate) key: Key,
    pub(crate) connection: ConnectionRef,
    pub(crate) prefix: Option<String>,
    pub(crate) placement: Arc<PlacementFn>,
    /// The region's TTL and policy, which its hash (and so the memo's results) follows.
    pub(crate) ttl: Option<Duration>,
    pub(crate) ttl_policy: TtlPolicy,
    /// The region's near cache, which the memo's fresh hits use unless its builder names
    /// another.
    pub(crate) near: Option<crate::NearCache>,
}

/// How encoded arguments are written in keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyStyle {
    Escaped,
    Hashed,
}

/// Configures a [`Memo`] before it is built; from [`Memo::builder`] or [`Memo::try_builder`].
///
/// Defaults: no TTL, no stale state, lock timeout 10 s, wait timeout 5 s, no default value,
/// every result cached, statistics on, [`OutagePolicy::Fail`], enabled,
/// [`RefreshPool::global`], the `"default"` connection, keys from the escaped postcard
/// encoding of the arguments.
///
/// Invalid settings (an empty name, a `refresh` without a longer `ttl`, a bad template) are
/// reported as [`Error::Config`] by the first call, since building does no I/O and cannot
/// fail.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redis_caches::{OutagePolicy, memo::Memo};
///
/// let rates = Memo::builder("fx-rate", |(from, to): (String, String)| 1.0f64)
///     .connection("rates")
///     .ttl(Duration::from_secs(600))
///     .refresh(Duration::from_secs(60))
///     .lock_timeout(Duration::from_secs(5))
///     .on_outage(OutagePolicy::Miss)
///     .build();
/// assert!(format!("{rates:?}").contains("fx-rate"));
/// ```
pub struct MemoBuilder<A, R, E = Error> {
    name: String,
    func: Box<Func<A, R, E>>,
    args: ArgKey<A>,
    style: KeyStyle,
    storage: Storage<R>,
    connection: ConnectionRef,
    ttl: Option<Duration>,
    refresh: Option<Duration>,
    lock_timeout: Duration,
    wait_timeout: Duration,
    default: Option<Arc<DefaultFn<R>>>,
    cache_if: Option<Arc<KeepFn<R>>>,
    stats: bool,
    outage: OutagePolicy,
    enabled: bool,
    pool: RefreshPool,
    near: Option<crate::NearCache>,
    region: Option<InRegion>,
    problems: Vec<String>,
    schema_version: Option<u32>,
}

impl<A, R, E> fmt::Debug for MemoBuilder<A, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoBuilder")
            .field("name", &self.name)
            .field("connection", &self.connection.name())
            .finish_non_exhaustive()
    }
}

impl<A, R, E> MemoBuilder<A, R, E>
where
    A: Serialize + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    pub(super) fn new(name: String, func: Box<Func<A, R, E>>) -> Self {
        MemoBuilder {
            name,
            func,
            args: ArgKey::Bytes(Arc::new(|a: &A| keys::encode_args(a))),
            style: KeyStyle::Escaped,
            storage: Storage::value(Postcard),
            connection: ConnectionRef::default(),
            ttl: None,
            refresh: None,
            lock_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(5),
            default: None,
            cache_if: None,
            stats: true,
            outage: OutagePolicy::Fail,
            enabled: true,
            pool: RefreshPool::global(),
            near: None,
            region: None,
            problems: Vec::new(),
            schema_version: None,
        }
    }

    /// Stores results with `codec` instead of [`Postcard`] (e.g. [`Raw`](crate::codec::Raw)
    /// for values readable in `redis-cli`).
    ///
    /// ```
    /// use redis_caches::{codec::Raw, memo::Memo};
    /// let m = Memo::builder("len", |s: String| s.len() as u64).codec(Raw).build();
    /// # let _ = m;
    /// ```
    pub fn codec<C: Codec>(mut self, codec: C) -> Self {
        self.storage = Storage::value(codec);
        self
    }

    /// Puts `version` into the fingerprint of every stored result: bump it when the result
    /// type keeps its shape but changes its meaning (a `u64` price goes from cents to
    /// millicents). Results stored under another version (or another shape, or by format
    /// v1) are a miss: computed again and written over, like any result of an older build
    /// (see [stale results](crate::Memo#results-of-another-shape)). For a result type whose
    /// shape cannot be traced, any version lets [`Postcard`] store it. A memo in a region
    /// ([`Region::memo`](crate::Region::memo)) has its own version, not the region's.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    ///
    /// // Version 2: prices in millicents (version 1 stored cents, in the same `u64`).
    /// let price = Memo::builder("price", |id: u64| id * 100_000).schema_version(2).build();
    /// # let _ = price;
    /// ```
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = Some(version);
        self
    }

    /// Keys from a projection of the arguments instead of all of them: `f` returns the part that identifies the result, which is
    /// encoded like arguments are. Arguments left out do not change the key.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// // The request id is only for logging: it must not split the cache.
    /// let m = Memo::builder("lookup", |(user, _request): (u32, String)| user * 2)
    ///     .key_args(|(user, _): &(u32, String)| *user)
    ///     .build();
    /// # let _ = m;
    /// ```
    pub fn key_args<K, F>(mut self, f: F) -> Self
    where
        K: Serialize,
        F: Fn(&A) -> K + Send + Sync + 'static,
    {
        self.args = ArgKey::Bytes(Arc::new(move |a: &A| keys::encode_args(&f(a))));
        self
    }

    /// Fills a key template from the arguments: `{name}` takes the field `name` of an
    /// argument struct, `{0}`, `{1}` the elements of a tuple (or `{0}` a single scalar);
    /// `{{` and `}}` are literal braces.
    ///
    /// Arguments that differ in a field the template names never share a key: values are
    /// written with `%`, `:`, `{`, `}`, whitespace, control characters and the first
    /// character of the text after each placeholder escaped as `%XX`, and `None` as `%-`
    /// (so `None` and `Some("")` differ). So that this holds, two placeholders need text
    /// between them and the template may not contain `%` (else the first call returns
    /// [`Error::Config`]), and arguments holding an option of an option are refused
    /// ([`Error::InvalidKey`]: `Some(None)` would be written as `None` is).
    ///
    /// The result is one key part: `{memo:<name>}.v.item:7`.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// #[derive(serde::Serialize)]
    /// struct Item { id: u64, lang: String }
    /// let title = Memo::builder("title", |i: Item| format!("#{} ({})", i.id, i.lang))
    ///     .key_template("item:{id}:{lang}")
    ///     .build();
    /// # let _ = title;
    /// ```
    pub fn key_template(mut self, template: &str) -> Self {
        match keys::Template::parse(template) {
            Ok(t) => {
                self.args = ArgKey::Template(t, Arc::new(|a: &A, t: &keys::Template| t.render(a)));
            }
            Err(problem) => self.problems.push(problem),
        }
        self
    }

    /// Hashes the encoded arguments (SHA-1, 40 hex digits) instead of escaping them: fixed
    /// length keys for long arguments, at the price of readability. Applies to the default
    /// keys and to [`key_args`](MemoBuilder::key_args).
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let m = Memo::builder("render", |page: String| page.len()).hashed_keys().build();
    /// # let _ = m;
    /// ```
    pub fn hashed_keys(mut self) -> Self {
        self.style = KeyStyle::Hashed;
        self
    }
}

impl<A: 'static, R, E> MemoBuilder<A, R, E> {
    /// Keys from your own function: it returns the key parts for the arguments (anything
    /// [`IntoKey`]: a string, an integer, a tuple or array of them), escaped like every key
    /// part. Parts that can be equal for arguments with different results make those
    /// arguments share a cache entry, which is the point when they are irrelevant.
    ///
    /// ```
    /// use redis_caches::memo::Memo;
    /// let m = Memo::builder("greet", |(lang, name): (String, String)| format!("{lang}: {name}"))
    ///     .key(|(lang, name): &(String, String)| (lang.clone(), name.to_lowercase()))
    ///     .build();
    /// # let _ = m;
    /// ```
    pub fn key<K, F>(mut self, f: F) -> Self
    where
        K: IntoKey,
        F: Fn(&A) -> K + Send + Sync + 'static,
    {
        self.args = ArgKey::Parts(Arc::new(move |a: &A| Ok(f(a).into_key())));
        self
    }

    /// Uses this connection: a registered name or a [`Connection`](crate::Connection). Default: `"default"`.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).connection("cache").build();
    /// # let _ = m;
    /// ```
    pub fn connection(mut self, connection: impl Into<ConnectionRef>) -> Self {
        self.connection = connection.into();
        self
    }

    /// How long a result is kept (`PX` on the value). Without a TTL results are kept until
    /// [`forget`](Memo::forget)/[`clear`](Memo::clear) or eviction.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).ttl(Duration::from_secs(30)).build();
    /// # let _ = m;
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Stale-while-revalidate: a result is fresh for `refresh`, then stale until the
    /// [`ttl`](MemoBuilder::ttl) ends. A stale result is returned at once and recomputed in
    /// the background (one refresh per arguments at a time, across processes); a failed
    /// refresh keeps the stale result until the TTL, and is retried after the
    /// [`lock_timeout`](MemoBuilder::lock_timeout).
    ///
    /// `refresh` must be shorter than the TTL (the age is read from the value's `PTTL`, so
    /// every process agrees without comparing clocks); otherwise the first call returns
    /// [`Error::Config`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x)
    ///     .ttl(Duration::from_secs(3600))
    ///     .refresh(Duration::from_secs(60))
    ///     .build();
    /// # let _ = m;
    /// ```
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// How long the refresh lock lasts (default 10 s): after this, another caller may compute
    /// the same arguments even if the first has not finished. Set it
    /// above the function's longest run: a result computed after its lock expired is returned
    /// but not stored. A failed background refresh keeps the lock until it expires, so
    /// retries of a failing function are spaced by this much.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).lock_timeout(Duration::from_secs(30)).build();
    /// # let _ = m;
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a caller that misses waits for another caller's computation of the same
    /// arguments (default 5 s), before running the function itself without storing the
    /// result.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).wait_timeout(Duration::from_millis(500)).build();
    /// # let _ = m;
    /// ```
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// On a miss, return `value` at once and compute the result in the background, instead
    /// of waiting for it. The default is never stored, not even
    /// when the computation fails.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("report", |day: u32| format!("report {day}"))
    ///     .default_value(String::from("(being computed)"))
    ///     .build();
    /// # let _ = m;
    /// ```
    pub fn default_value(mut self, value: R) -> Self
    where
        R: Clone + Send + Sync + 'static,
    {
        self.default = Some(Arc::new(move || value.clone()));
        self
    }

    /// Stores only results for which `keep` returns true; others are returned and computed
    /// again next time.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: i32| x - 1).cache_if(|r: &i32| *r >= 0).build();
    /// # let _ = m;
    /// ```
    pub fn cache_if<F>(mut self, keep: F) -> Self
    where
        F: Fn(&R) -> bool + Send + Sync + 'static,
    {
        self.cache_if = Some(Arc::new(keep));
        self
    }

    /// Does not count [`MemoStats`](super::MemoStats): calls then send no `HINCRBY`.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).without_stats().build();
    /// # let _ = m;
    /// ```
    pub fn without_stats(mut self) -> Self {
        self.stats = false;
        self
    }

    /// What a call does when Redis is unreachable or refuses writes: [`OutagePolicy::Fail`]
    /// (the default) returns the error, [`OutagePolicy::Miss`] runs the function and returns
    /// its result without storing it (each call then pays the connection failure first; keep
    /// the DSN's timeouts short). A value already cached is served even when the server
    /// refuses writes, under either policy.
    ///
    /// ```
    /// use redis_caches::{OutagePolicy, memo::Memo};
    /// let m = Memo::builder("f", |x: u8| x).on_outage(OutagePolicy::Miss).build();
    /// # let _ = m;
    /// ```
    pub fn on_outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// What a call does when Redis is unreachable: see [`on_outage`](MemoBuilder::on_outage).
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use redis_caches::memo::{Memo, WhenUnavailable};
    /// let m = Memo::builder("f", |x: u8| x).when_unavailable(WhenUnavailable::Compute).build();
    /// # let _ = m;
    /// ```
    #[deprecated(since = "0.2.0", note = "use `on_outage(OutagePolicy::..)`")]
    #[allow(deprecated)]
    pub fn when_unavailable(self, policy: WhenUnavailable) -> Self {
        self.on_outage(policy.into())
    }

    /// Builds the function with caching switched off; [`Memo::enable`] turns it on.
    ///
    /// ```
    /// let m = redis_caches::memo::Memo::builder("f", |x: u8| x).disabled().build();
    /// assert!(!m.is_enabled());
    /// ```
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Runs background refreshes on `pool` instead of [`RefreshPool::global`].
    ///
    /// ```
    /// use redis_caches::memo::{Memo, RefreshPool};
    /// let m = Memo::builder("f", |x: u8| x).refresh_pool(&RefreshPool::new(1, 4)).build();
    /// # let _ = m;
    /// ```
    pub fn refresh_pool(mut self, pool: &RefreshPool) -> Self {
        self.pool = pool.clone();
        self
    }

    /// Answers fresh hits from `near`, a process-local cache that Redis keeps correct (see
    /// [`NearCache`](crate::NearCache)): a fresh hit then costs no command. Results stored as
    /// one value, and results of a [memo in a region](crate::Region::memo) (which uses the
    /// region's near cache unless this names another), only: [`MemoList`](super::MemoList)s
    /// and other [hash-field](MemoBuilder::build_hash_field) memos always read from Redis. A
    /// copy is used only while the result is fresh: once it is older than
    /// [`refresh`](MemoBuilder::refresh), the call goes to Redis, which serves it stale and
    /// starts its refresh (a memo in a region never refreshes: its copy lasts until the
    /// result, its region or a region above it changes, or the region's hash expires). Hits
    /// from the near cache are counted in [`MemoStats::hits`](super::MemoStats::hits) of this
    /// process only. The connection's `near_cache` DSN option applies too.
    ///
    /// Cost: a call without a usable copy first reads the result into the near cache (one
    /// round trip, on the tracking connection); only when that finds no fresh result does it
    /// go on as without a near cache. So a miss costs one round trip more than without it
    /// (three scripts for a memo in a region: the read for the copy, the read that takes the
    /// lock, the store), and a memo whose calls mostly compute is better without one.
    ///
    /// ```
    /// use redis_caches::{memo::Memo, NearCache};
    /// let square = Memo::builder("square", |x: u64| x * x)
    ///     .near_cache(NearCache::with_capacity(1_000))
    ///     .build();
    /// # let _ = square;
    /// ```
    pub fn near_cache(mut self, near: crate::NearCache) -> Self {
        self.near = Some(near);
        self
    }

    /// Builds the memoized function. No I/O.
    ///
    /// ```
    /// let double = redis_caches::memo::Memo::builder("double", |x: u64| x * 2).build();
    /// # let _ = double;
    /// ```
    pub fn build(self) -> Memo<A, R, E> {
        let MemoBuilder {
            name,
            func,
            args,
            style,
            storage,
            connection,
            ttl,
            refresh,
            lock_timeout,
            wait_timeout,
            default,
            cache_if,
            stats,
            outage,
            enabled,
            pool,
            near,
            region,
            mut problems,
            schema_version,
        } = self;
        for (what, d) in [("ttl", ttl), ("refresh", refresh)] {
            if let Some(d) = d
                && let Err(problem) = check_ttl(d)
            {
                problems.push(format!("{what}: {problem}"));
            }
        }
        if let Err(problem) = check_ttl(lock_timeout) {
            problems.push(format!("lock timeout: {problem}"));
        }
        if name.is_empty() || name.contains(['{', '}']) {
            problems.push(format!(
                "the name {name:?} must be non-empty and free of '{{' and '}}'"
            ));
        }
        if let Some(r) = refresh {
            match ttl {
                Some(t) if r < t => {}
                Some(t) => problems.push(format!(
                    "refresh ({r:?}) must be shorter than the ttl ({t:?})"
                )),
                None => problems.push(format!(
                    "refresh ({r:?}) needs a longer ttl: a result is stale between the two"
                )),
            }
            if storage.mode == Mode::HashField {
                problems.push(
                    "a hash-field memo cannot refresh: Redis 7.0 keeps no age per hash field"
                        .into(),
                );
            }
        }

        let key: Box<KeyFn<A>> = match args {
            ArgKey::Bytes(bytes) => Box::new(move |a: &A| {
                let encoded = bytes(a)?;
                Ok(match (encoded.is_empty(), style) {
                    (true, _) => Key::default(),
                    (false, KeyStyle::Escaped) => Key::from_parts([keys::escape(&encoded)]),
                    (false, KeyStyle::Hashed) => Key::from_parts([keys::hash(&encoded)]),
                })
            }),
            ArgKey::Parts(parts) => Box::new(move |a: &A| parts(a)),
            ArgKey::Template(template, render) => {
                Box::new(move |a: &A| Ok(Key::from_parts([render(a, &template)?])))
            }
        };
        let mut storage = storage;
        let (engine, region_ttl) = match region {
            Some(place) => {
                // The results are fields of the region's hash: its TTL is theirs.
                if ttl.is_some() || refresh.is_some() {
                    problems.push(
                        "a memo in a region keeps its results in the region's hash, whose TTL \
                         is the region's: set the TTL on the region, not on the memo"
                            .into(),
                    );
                }
                if storage.mode == Mode::List {
                    problems.push("a memo in a region stores single values, not lists".into());
                }
                storage.mode = Mode::HashField;
                let engine = Engine::new(
                    place.key,
                    Options {
                        connection: place.connection,
                        prefix: place.prefix,
                        near: near.or(place.near),
                        ..Options::default()
                    },
                    "hash",
                    Some(place.placement),
                );
                (engine, Some((place.ttl, place.ttl_policy)))
            }
            None => {
                let redis_type = match storage.mode {
                    Mode::Value => "string",
                    Mode::List => "list",
                    Mode::HashField => "hash",
                };
                let engine = Engine::new(
                    Key::from_parts([format!("memo:{name}")]).with_hash_tag(),
                    Options {
                        connection: connection.clone(),
                        near,
                        ..Options::default()
                    },
                    redis_type,
                    None,
                );
                (engine, None)
            }
        };
        Memo {
            inner: Arc::new(Inner {
                name,
                func,
                key,
                storage,
                connection,
                engine,
                resolved: OnceCell::new(),
                region: region_ttl,
                ttl,
                refresh,
                lock_timeout,
                wait_timeout,
                default,
                cache_if,
                stats,
                outage,
                unrecorded: AtomicU64::new(0),
                script_ran: AtomicBool::new(false),
                near_hits: AtomicU64::new(0),
                orphans: std::sync::Mutex::new(Vec::new()),
                enabled: AtomicBool::new(enabled),
                pool,
                config_error: (!problems.is_empty()).then(|| problems.join("; ")),
                schema_version,
            }),
        }
    }

    pub(crate) fn set_storage(&mut self, storage: Storage<R>) {
        self.storage = storage;
    }

    /// Places the memo's results in a region (see [`InRegion`]); its connection is the
    /// region's.
    pub(crate) fn in_region(mut self, place: InRegion) -> Self {
        self.connection = place.connection.clone();
        self.region = Some(place);
        self
    }

    /// Records that `what` cannot be kept in a region, when the memo is placed in one.
    pub(crate) fn refuse_in_region(&mut self, what: &str) {
        if self.region.is_some() {
            self.problems.push(format!(
                "{what} cannot be kept in a region; build() a plain memo"
            ));
        }
    }

    pub(crate) fn storage_mode(&mut self, mode: Mode) {
        self.storage.mode = mode;
    }
}

impl<A: 'static, T: 'static, E> MemoBuilder<A, Option<T>, E> {
    /// Does not store `None` results: they are computed again at the next call. By default
    /// `None` is cached like any other result.
    ///
    /// ```
    /// let find = redis_caches::memo::Memo::builder("find", |id: u32| (id % 2 == 0).then_some(id))
    ///     .skip_none()
    ///     .build();
    /// # let _ = find;
    /// ```
    pub fn skip_none(self) -> Self {
        self.cache_if(|r: &Option<T>| r.is_some())
    }
}
