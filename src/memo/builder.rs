//! [`MemoBuilder`]: the options of a memoized function.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use once_cell::sync::OnceCell;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    BytesFn, DefaultFn, Func, Inner, KeepFn, KeyFn, Memo, Mode, RefreshPool, RenderFn, Storage,
    WhenUnavailable, keys,
};
use crate::codec::{Codec, Postcard};
use crate::connection::ConnectionRef;
use crate::error::Error;
use crate::key::{IntoKey, Key};

/// How the arguments become key parts, before [`MemoBuilder::build`] combines it with the
/// key style.
enum ArgKey<A> {
    Bytes(Arc<BytesFn<A>>),
    Parts(Arc<KeyFn<A>>),
    Template(keys::Template, Arc<RenderFn<A>>),
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
/// every result cached, statistics on, [`WhenUnavailable::ReturnError`], enabled,
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
/// use redis_caches::memo::{Memo, WhenUnavailable};
///
/// let rates = Memo::builder("fx-rate", |(from, to): (String, String)| 1.0f64)
///     .connection("rates")
///     .ttl(Duration::from_secs(600))
///     .refresh(Duration::from_secs(60))
///     .lock_timeout(Duration::from_secs(5))
///     .when_unavailable(WhenUnavailable::Compute)
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
    unavailable: WhenUnavailable,
    enabled: bool,
    pool: RefreshPool,
    problems: Vec<String>,
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
            unavailable: WhenUnavailable::ReturnError,
            enabled: true,
            pool: RefreshPool::global(),
            problems: Vec::new(),
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

    /// Keys from a projection of the arguments instead of all of them (`rediscache`'s
    /// `use_args`/`use_kwargs`): `f` returns the part that identifies the result, which is
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
    /// `{{` and `}}` are literal braces. Values are written with `%`, `:`, `{`, `}`,
    /// whitespace and control characters escaped as `%XX`. Flask-CacheOBJ's
    /// `'item:{item_id}'`.
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
    /// [`lock_timeout`](MemoBuilder::lock_timeout). `rediscache`'s `refresh` and `expire`.
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
    /// the same arguments even if the first has not finished (`rediscache`'s `retry`). Set it
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
    /// of waiting for it (`rediscache`'s `wait=False`). The default is never stored, not even
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
    /// again next time (`caches`' `canary`).
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

    /// What a call does when Redis is unreachable. Default: [`WhenUnavailable::ReturnError`].
    ///
    /// ```
    /// use redis_caches::memo::{Memo, WhenUnavailable};
    /// let m = Memo::builder("f", |x: u8| x).when_unavailable(WhenUnavailable::Compute).build();
    /// # let _ = m;
    /// ```
    pub fn when_unavailable(mut self, policy: WhenUnavailable) -> Self {
        self.unavailable = policy;
        self
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
            unavailable,
            enabled,
            pool,
            mut problems,
        } = self;
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
        if lock_timeout.is_zero() {
            problems.push("the lock timeout must not be zero".into());
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
        Memo {
            inner: Arc::new(Inner {
                name,
                func,
                key,
                storage,
                connection,
                resolved: OnceCell::new(),
                ttl,
                refresh,
                lock_timeout,
                wait_timeout,
                default,
                cache_if,
                stats,
                unavailable,
                enabled: AtomicBool::new(enabled),
                pool,
                config_error: (!problems.is_empty()).then(|| problems.join("; ")),
            }),
        }
    }

    pub(crate) fn set_storage(&mut self, storage: Storage<R>) {
        self.storage = storage;
    }

    pub(crate) fn storage_mode(&mut self, mode: Mode) {
        self.storage.mode = mode;
    }
}

impl<A: 'static, T: 'static, E> MemoBuilder<A, Option<T>, E> {
    /// Does not store `None` results: they are computed again at the next call (as `caches`
    /// and Flask-CacheOBJ do). By default `None` is cached like any other result.
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
