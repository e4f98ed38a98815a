//! [`RedisCache<T>`]: one typed value under one key, with atomic counters.

use std::sync::Arc;

use once_cell::sync::Lazy;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, LazyTag, Postcard, Raw};
use crate::connection::Retry;
use crate::engine::{Engine, Script};
use crate::error::{Error, Result};
use crate::key::IntoKey;
use crate::near::Point;
use crate::options::{Builder, TtlPolicy, private, ttl_millis};

/// One typed value stored under one Redis key (a Redis string).
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`. Nothing is cached in the process: every read goes to Redis, so every handle,
/// thread and process sees the latest write.
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`get`](RedisCache::get) | `GET` | 1 | resent |
/// | [`get_many`](RedisCache::get_many) | `MGET` | 1 | resent |
/// | [`set`](RedisCache::set) | `SET [PX ttl]` (under [`TtlPolicy::Keep`]: a script, `SET KEEPTTL` and `PEXPIRE` when the key has no TTL) | 1 | resent |
/// | [`get_or_insert_with`](RedisCache::get_or_insert_with) | `GET`, then on a miss a script (`SET NX [PX]`, `GET`) | 1 or 2 | resent |
/// | [`incr`](RedisCache::incr), [`decr`](RedisCache::decr) | `INCRBY` (`INCRBYFLOAT` for floats); with a TTL, a script running it and `PEXPIRE` | 1 | `OutcomeUnknown` |
/// | [`exists`](RedisCache::exists), [`clear`](RedisCache::clear), [`ttl`](RedisCache::ttl), [`expire`](RedisCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 | resent |
///
/// `set` is Redis' `SET`: like a `let` binding, it replaces whatever the key held, a value of
/// another Redis type included. Every other write refuses a key of another type with
/// [`Error::WrongType`] and changes nothing.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::RedisCache;
///
/// let greeting: RedisCache<String> = RedisCache::new(["greeting", "en"]);
/// greeting.set("hello")?;
/// assert_eq!(greeting.get()?.as_deref(), Some("hello"));
///
/// // Counters store plain integers (the Raw codec), so INCRBY can work on them.
/// let hits = RedisCache::<i64>::counter("hits").ttl(Duration::from_secs(60)).build();
/// assert_eq!(hits.incr(5)?, 5);
/// assert_eq!(hits.decr(2)?, 3);
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct RedisCache<T, C = Postcard> {
    engine: Arc<Engine<C>>,
    tag: Arc<LazyTag>,
    default: Option<Arc<DefaultFn<T>>>,
}

type DefaultFn<T> = dyn Fn() -> T + Send + Sync;

/// A [`RedisCache`] of integers (or floats) stored as plain decimal text, so that `INCRBY`
/// works on them: what [`RedisCache::counter`] builds.
///
/// ```no_run
/// use redis_caches::{CounterCache, RedisCache};
/// let visits: CounterCache = RedisCache::counter("visits").build();
/// visits.incr(1)?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub type CounterCache<T = i64> = RedisCache<T, Raw>;

crate::handle::collection_handle! {
    RedisCache[T],
    redis_type: "string",
    extra: Option<Arc<DefaultFn<T>>>,
    clone: { engine, tag, default },
    from_engine: |engine, default| RedisCache {
        engine: Arc::new(engine),
        tag: Arc::new(LazyTag::default()),
        default,
    },
}

impl<T> RedisCache<T> {
    /// A handle for the value at `key`, on the default connection, postcard-encoded, without a
    /// TTL. No I/O.
    ///
    /// ```
    /// let c: redis_caches::RedisCache<u32> = redis_caches::RedisCache::new(("user", 7, "visits"));
    /// # let _ = c;
    /// ```
    pub fn new(key: impl IntoKey) -> Self {
        Self::builder(key).build()
    }

    /// A [`Builder`] for the value at `key`, to set the connection, prefix, TTL, codec or a
    /// default value.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = redis_caches::RedisCache::<String>::builder("motd").ttl(Duration::from_secs(30)).build();
    /// # let _ = c;
    /// ```
    pub fn builder(key: impl IntoKey) -> Builder<Self> {
        Builder::new(key)
    }
}

impl<T: Counter> RedisCache<T> {
    /// A [`Builder`] for a counter at `key`: the value is stored as plain decimal text (the
    /// [`Raw`] codec), which [`incr`](RedisCache::incr) and [`decr`](RedisCache::decr) need.
    ///
    /// ```no_run
    /// use redis_caches::RedisCache;
    /// let hits = RedisCache::<u64>::counter("hits").build();
    /// assert_eq!(hits.incr(1)?, 1);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn counter(key: impl IntoKey) -> Builder<RedisCache<T, Raw>> {
        Builder::<RedisCache<T>>::new(key).codec(Raw)
    }
}

impl<T, C: Codec> Builder<RedisCache<T, C>> {
    /// The value [`RedisCache::get`] returns when the key is missing.
    ///
    /// ```
    /// let c = redis_caches::RedisCache::<u32>::builder("n").default_value(0).build();
    /// # let _ = c;
    /// ```
    pub fn default_value(self, value: T) -> Self
    where
        T: Clone + Send + Sync + 'static,
    {
        self.default_with(move || value.clone())
    }

    /// Computes the value [`RedisCache::get`] returns when the key is missing, at each miss.
    ///
    /// ```
    /// let c = redis_caches::RedisCache::<Vec<u8>>::builder("n").default_with(Vec::new).build();
    /// # let _ = c;
    /// ```
    pub fn default_with(mut self, f: impl Fn() -> T + Send + Sync + 'static) -> Self {
        *self.extra_mut() = Some(Arc::new(f));
        self
    }
}

/// `SET key value KEEPTTL`, then the TTL when the key has none: the write under
/// [`TtlPolicy::Keep`]. `KEYS[1]`; `ARGV`: type, ttl, policy, value.
static SET_KEEP_TTL: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _may('SET', KEYS[1], ARGV[4]) or _may_expire(KEYS[1], ARGV[2], ARGV[3])
if e then return e end
redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')
_expire(KEYS[1], ARGV[2], ARGV[3])
return true
",
    )
});

/// `SET key value NX [PX ttl]`, and the value the key holds when it was already set: what
/// `SET NX GET` does on Redis 7.0, for 6.2 too. `KEYS[1]`; `ARGV`: value, ttl ms or empty.
/// Returns false when the value was stored.
static SET_NX_GET: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _wrongtype(KEYS[1], 'string') or _may('SET', KEYS[1], ARGV[1]) or _may('GET', KEYS[1])
if e then return e end
local ok
if ARGV[2] ~= '' then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if ok then return false end
return redis.call('GET', KEYS[1])
",
    )
});

impl<T, C> RedisCache<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    /// Reads the value, or the [default value](Builder::default_value) (else `None`) when the
    /// key is missing. `GET`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for bytes this codec did not write for `T`; [`Error::WrongType`]
    /// when the key holds another Redis type; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<String> = redis_caches::RedisCache::new("motd");
    /// let motd: Option<String> = c.get()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get(&self) -> Result<Option<T>> {
        match self.engine.read_point(Point::Value)? {
            Some(b) => match self.decode_or_miss(&b)? {
                Some(v) => Ok(Some(v)),
                None => Ok(self.default.as_ref().map(|f| f())),
            },
            None => Ok(self.default.as_ref().map(|f| f())),
        }
    }

    /// Reads the values of several handles at once, in the order given (`None` for a
    /// missing key; defaults are not applied). `MGET`, one round trip; no round trip for no
    /// handles.
    ///
    /// All the handles must be on the same Redis database (the same connection, or
    /// connections to the same server and database number); on a Redis Cluster their keys
    /// must share a hash tag.
    ///
    /// # Errors
    ///
    /// [`Error::MixedConnections`] before anything is sent when a handle is on another
    /// database; [`Error::CrossSlot`] on a cluster; [`Error::Decode`] naming the first key
    /// whose bytes do not decode; connection errors.
    ///
    /// ```no_run
    /// use redis_caches::RedisCache;
    /// let en: RedisCache<String> = RedisCache::new(["greeting", "en"]);
    /// let fr: RedisCache<String> = RedisCache::new(["greeting", "fr"]);
    /// let both = RedisCache::get_many([&en, &fr])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_many<'a, I>(handles: I) -> Result<Vec<Option<T>>>
    where
        I: IntoIterator<Item = &'a RedisCache<T, C>>,
        T: 'a,
        C: 'a,
    {
        let handles: Vec<&RedisCache<T, C>> = handles.into_iter().collect();
        let Some(first) = handles.first() else {
            return Ok(Vec::new());
        };
        let own = first.engine.resolved()?;
        let mut cmd = redis::cmd("MGET");
        for h in &handles {
            let theirs = h.engine.resolved()?;
            if !own.connection.same_database(&theirs.connection) {
                return Err(Error::MixedConnections {
                    key: own.key.clone(),
                    connection: own.connection.name().to_string(),
                    other_key: theirs.key.clone(),
                    other_connection: theirs.connection.name().to_string(),
                });
            }
            cmd.arg(&theirs.key);
        }
        let values: Vec<Option<Vec<u8>>> = first.engine.query(&cmd, Retry::Idempotent)?;
        for h in handles.iter() {
            h.engine.fence_pool_read()?;
        }
        handles
            .iter()
            .zip(values)
            .map(|(h, v)| v.map_or(Ok(None), |b| h.decode_or_miss(&b)))
            .collect()
    }

    /// Stores `value`, replacing whatever the key held (a value of another Redis type
    /// included: this is Redis' `SET`), and applies the TTL. `SET key value [PX ttl]`, one
    /// command (under [`TtlPolicy::Keep`]: a script running `SET KEEPTTL`, then `PEXPIRE`
    /// when the key has no TTL), one round trip.
    ///
    /// Accepts borrowed forms: `set("x")` on a `RedisCache<String>`. Idempotent: after a lost
    /// reply the crate may send it again within the call's deadline.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] and [`Error::Config`] (invalid options)
    /// before anything is sent; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<String> = redis_caches::RedisCache::new("motd");
    /// c.set("closed on sunday")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<Q>(&self, value: &Q) -> Result<()>
    where
        T: std::borrow::Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self
            .engine
            .encode_item(self.tag.get::<T>(self.engine.schema_version()), value)?;
        let key = &self.engine.resolved()?.key;
        let options = &self.engine.options;
        match options.ttl {
            Some(_) if options.ttl_policy == TtlPolicy::Keep => self.engine.eval(
                &SET_KEEP_TTL,
                1,
                |cmd| {
                    cmd.arg(key);
                    self.engine.ttl_args(cmd);
                    cmd.arg(&bytes);
                },
                Retry::Idempotent,
            ),
            ttl => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(&bytes);
                if let Some(ttl) = ttl {
                    cmd.arg("PX").arg(ttl_millis(ttl));
                }
                self.engine.query(&cmd, Retry::Idempotent)
            }
        }
    }

    /// Deletes the value; true when there was one.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<String> = redis_caches::RedisCache::new("motd");
    /// # #[allow(deprecated)]
    /// let was_there = c.delete()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    #[deprecated(
        since = "0.2.0",
        note = "use `clear`, the name every collection shares"
    )]
    pub fn delete(&self) -> Result<bool> {
        self.engine.clear()
    }

    /// Returns the stored value, or computes it with `f`, stores it unless another writer got
    /// there first, and returns whichever value Redis kept. `GET`; on a miss a script (`SET
    /// key value NX [PX ttl]`, and `GET` when the key was already set): one round trip on a
    /// hit, two on a miss.
    ///
    /// If several threads or processes miss at once, each runs `f`, but all of them return
    /// the same value: the first one stored.
    ///
    /// # Errors
    ///
    /// As [`get`](RedisCache::get) and [`set`](RedisCache::set); [`Error::WrongType`] when
    /// the key holds another Redis type (nothing is written).
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<u64> = redis_caches::RedisCache::new("answer");
    /// let v = c.get_or_insert_with(|| 42)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_or_insert_with(&self, f: impl FnOnce() -> T) -> Result<T> {
        let key = &self.engine.resolved()?.key;
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let bytes: Option<Vec<u8>> = self.engine.query(&cmd, Retry::Idempotent)?;
        if let Some(b) = bytes {
            if let Some(v) = self.decode_or_miss(&b)? {
                return Ok(v);
            }
            // Another shape, read as missing: written over.
            let value = f();
            self.set(&value)?;
            return Ok(value);
        }
        let value = f();
        let encoded = self
            .engine
            .encode_item(self.tag.get::<T>(self.engine.schema_version()), &value)?;
        let ttl = self
            .engine
            .options
            .ttl
            .map(|t| ttl_millis(t).to_string())
            .unwrap_or_default();
        // Idempotent: sent twice, the second SET NX finds the first one's value.
        let previous: Option<Vec<u8>> = self.engine.eval(
            &SET_NX_GET,
            1,
            |cmd| {
                cmd.arg(key).arg(&encoded).arg(&ttl);
            },
            Retry::Idempotent,
        )?;
        match previous {
            Some(b) if b != encoded => match self.decode_or_miss(&b)? {
                Some(v) => Ok(v),
                None => {
                    self.set(&value)?;
                    Ok(value)
                }
            },
            _ => Ok(value),
        }
    }

    crate::handle::key_methods! {
        handle: "redis_caches::RedisCache::<u8>::new(\"k\")",
        exists: "Whether the key exists.",
        clear: "Deletes the key; true when it existed.",
        ttl: "The key's remaining time to live.",
        expire: "Sets the key's time to live now; false when the key does not exist.",
    }

    fn decode_or_miss(&self, bytes: &[u8]) -> Result<Option<T>> {
        self.engine.decode_or_miss(
            self.tag.get::<T>(self.engine.schema_version()),
            bytes,
            || self.engine.key_for_errors(),
        )
    }
}

/// `INCRBY` (or `INCRBYFLOAT`) then the TTL, atomically; a refused increment (not a number,
/// another Redis type, overflow) stops the script before the TTL is touched.
/// `KEYS[1]`; `ARGV`: type, ttl, policy, command, increment.
static INCR_WITH_TTL: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _wrongtype(KEYS[1], ARGV[1]) or _may(ARGV[4], KEYS[1], ARGV[5]) or _may_expire(KEYS[1], ARGV[2], ARGV[3])
if e then return e end
local n = redis.call(ARGV[4], KEYS[1], ARGV[5])
_expire(KEYS[1], ARGV[2], ARGV[3])
return n
",
    )
});

/// Number types a [`RedisCache`] can count with: integers through `INCRBY`, floats through
/// `INCRBYFLOAT`. Sealed.
pub trait Counter: Serialize + DeserializeOwned + Copy + private::Sealed + 'static {
    #[doc(hidden)]
    const COMMAND: &'static str;
    #[doc(hidden)]
    fn increment(self, negate: bool) -> Option<String>;
    #[doc(hidden)]
    fn from_reply(reply: redis::Value) -> Option<Self>;
}

/// `by` (negated for a decrement) as the argument of a counter command (`INCRBY`, `HINCRBY`
/// and their float forms), or the [`Error::Encode`] naming `what` when it does not fit.
pub(crate) fn counter_step<T: Counter>(
    by: T,
    negate: bool,
    what: impl FnOnce() -> String,
) -> Result<String> {
    by.increment(negate).ok_or_else(|| {
        Error::encode(
            what(),
            if negate {
                "the decrement does not fit an i64"
            } else {
                "the increment does not fit an i64"
            },
        )
    })
}

/// A counter command's reply as `T`, or the [`Error::Decode`] naming `what` and the new value
/// that does not fit `T`.
pub(crate) fn counter_reply<T: Counter>(
    reply: redis::Value,
    what: impl FnOnce() -> String,
) -> Result<T> {
    let shown = match &reply {
        redis::Value::Int(n) => n.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    T::from_reply(reply).ok_or_else(|| {
        Error::decode(
            what(),
            format_args!(
                "the counter's new value {shown} does not fit {}",
                std::any::type_name::<T>()
            ),
        )
    })
}

macro_rules! int_counters {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Counter for $t {
            const COMMAND: &'static str = "INCRBY";
            fn increment(self, negate: bool) -> Option<String> {
                let n = i64::try_from(self).ok()?;
                let n = if negate { n.checked_neg()? } else { n };
                Some(n.to_string())
            }
            fn from_reply(reply: redis::Value) -> Option<Self> {
                let n: i64 = redis::from_redis_value(reply).ok()?;
                <$t>::try_from(n).ok()
            }
        }
    )*};
}
int_counters!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! float_counters {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Counter for $t {
            const COMMAND: &'static str = "INCRBYFLOAT";
            fn increment(self, negate: bool) -> Option<String> {
                let x = f64::from(self);
                if !x.is_finite() {
                    return None;
                }
                Some(format!("{:?}", if negate { -x } else { x }))
            }
            fn from_reply(reply: redis::Value) -> Option<Self> {
                let text: String = redis::from_redis_value(reply).ok()?;
                let x: $t = text.parse().ok()?;
                x.is_finite().then_some(x)
            }
        }
    )*};
}
float_counters!(f32, f64);

/// Codecs that store numbers as plain decimal text, which `INCRBY` needs: [`Raw`],
/// [`PythonText`](crate::codec::PythonText) (a `caches` counter) and `PythonJson` (feature
/// `json`: a pottery `RedisCounter`'s counts). Sealed.
#[diagnostic::on_unimplemented(
    message = "counters need numbers stored as plain text: build the cache with `RedisCache::counter(key)` or `.codec(Raw)`",
    label = "`incr`/`decr` are not available with the `{Self}` codec"
)]
pub trait CounterCodec: Codec + private::Sealed {}

impl private::Sealed for Raw {}
impl CounterCodec for Raw {}
impl private::Sealed for crate::codec::PythonText {}
impl CounterCodec for crate::codec::PythonText {}
#[cfg(feature = "json")]
impl private::Sealed for crate::codec::PythonJson {}
#[cfg(feature = "json")]
impl CounterCodec for crate::codec::PythonJson {}

impl<T: Counter, C: CounterCodec> RedisCache<T, C> {
    /// Adds `by` atomically and returns the new value; a missing key counts as 0. `INCRBY`
    /// (`INCRBYFLOAT` for `f32`/`f64`); with a TTL, a script that runs it then applies the
    /// TTL, so that a refused increment never touches the key. One round trip.
    ///
    /// Only on counters, whose values are stored as plain text: build them with
    /// [`RedisCache::counter`] (or `.codec(Raw)`). There is no `+=`: a network operation must
    /// be able to fail.
    ///
    /// Not idempotent: when the reply is lost the crate does not send it again, and the call
    /// fails with [`Error::OutcomeUnknown`] (the increment may or may not have counted).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `by` does not fit an `i64` (or is not finite), before anything
    /// is sent; [`Error::Decode`] when the new value does not fit `T` (Redis counts in `i64`:
    /// the new value is stored even then, e.g. `-1` after `decr(1)` on a `u64` at 0);
    /// [`Error::Redis`] naming the key when the stored value is not a number or the sum
    /// overflows (the value is left unchanged); [`Error::WrongType`] when the key holds
    /// another Redis type; [`Error::OutcomeUnknown`]; connection errors.
    ///
    /// ```no_run
    /// use redis_caches::RedisCache;
    /// let visits = RedisCache::<u64>::counter("visits").build();
    /// let n = visits.incr(1)?;
    /// let seconds = RedisCache::<f64>::counter("uptime").build();
    /// let total = seconds.incr(0.25)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn incr(&self, by: T) -> Result<T> {
        self.add(by, false)
    }

    /// Subtracts `by` atomically and returns the new value. `INCRBY key -by` (in the same
    /// script as the TTL when one is set), one round trip. See [`incr`](RedisCache::incr).
    ///
    /// # Errors
    ///
    /// As [`incr`](RedisCache::incr).
    ///
    /// ```no_run
    /// use redis_caches::RedisCache;
    /// let stock = RedisCache::<i32>::counter("stock").build();
    /// let left = stock.decr(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn decr(&self, by: T) -> Result<T> {
        self.add(by, true)
    }

    fn add(&self, by: T, negate: bool) -> Result<T> {
        let key = &self.engine.resolved()?.key;
        let by = counter_step(by, negate, || key.clone())?;
        let reply: redis::Value = if self.engine.options.ttl.is_some() {
            self.engine.eval(
                &INCR_WITH_TTL,
                1,
                |cmd| {
                    cmd.arg(key);
                    self.engine.ttl_args(cmd);
                    cmd.arg(T::COMMAND).arg(&by);
                },
                Retry::Once,
            )?
        } else {
            let mut cmd = redis::cmd(T::COMMAND);
            cmd.arg(key).arg(&by);
            self.engine.query(&cmd, Retry::Once)?
        };
        counter_reply(reply, || key.clone())
    }
}
