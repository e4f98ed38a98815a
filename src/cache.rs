//! [`RedisCache<T>`]: one typed value under one key, with atomic counters.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, Raw, TypeTag};
use crate::error::Result;
use crate::key::IntoKey;
use crate::options::{Builder, Core, private};

/// One typed value stored under one Redis key (a Redis string).
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`. Nothing is cached in the process: every read goes to Redis, so every handle,
/// thread and process sees the latest write.
///
/// | Method | Redis commands | Round trips |
/// |---|---|---|
/// | [`get`](RedisCache::get) | `GET` | 1 |
/// | [`set`](RedisCache::set) | `SET` (`PX ttl` or `KEEPTTL` + `PEXPIRE NX` under [`TtlPolicy::Keep`](crate::TtlPolicy::Keep)) | 1 |
/// | [`delete`](RedisCache::delete) | `DEL` | 1 |
/// | [`get_or_insert_with`](RedisCache::get_or_insert_with) | `GET`, then on a miss `SET NX GET` | 1 or 2 |
/// | [`incr`](RedisCache::incr), [`decr`](RedisCache::decr) | `INCRBY`; with a TTL, a Lua script (`EVALSHA`) running `INCRBY` and `PEXPIRE` | 1 |
/// | [`exists`](RedisCache::exists), [`clear`](RedisCache::clear), [`ttl`](RedisCache::ttl), [`expire`](RedisCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 |
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::{RedisCache, codec::Raw};
///
/// let greeting: RedisCache<String> = RedisCache::new(["greeting", "en"]);
/// greeting.set("hello")?;
/// assert_eq!(greeting.get()?.as_deref(), Some("hello"));
///
/// // Counters store plain integers, so INCRBY can work on them.
/// let hits = RedisCache::<i64>::builder("hits").codec(Raw).ttl(Duration::from_secs(60)).build();
/// assert_eq!(hits.incr(5)?, 5);
/// assert_eq!(hits.decr(2)?, 3);
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct RedisCache<T, C = Postcard> {
    core: Arc<Core<C>>,
    tag: Arc<TypeTag>,
    default: Option<Arc<T>>,
}

crate::options::collection_handle! {
    RedisCache[T],
    redis_type: "string",
    extra: Option<Arc<T>>,
    clone: { core, tag, default },
    from_core: |core, default| RedisCache {
        core: Arc::new(core),
        tag: Arc::new(TypeTag::of::<T>()),
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

impl<T, C: Codec> Builder<RedisCache<T, C>> {
    /// The value [`RedisCache::get`] returns when the key is missing (`caches`' `default`).
    ///
    /// ```
    /// let c = redis_caches::RedisCache::<u32>::builder("n").default_value(0).build();
    /// # let _ = c;
    /// ```
    pub fn default_value(mut self, value: T) -> Self {
        *self.extra_mut() = Some(Arc::new(value));
        self
    }
}

impl<T, C> RedisCache<T, C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    /// Reads the value, or the [default value](Builder::default_value) (else `None`) when the
    /// key is missing. `GET`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`](crate::Error::Decode) for bytes this codec did not write for `T`;
    /// [`Error::WrongType`](crate::Error::WrongType) when the key holds another Redis type;
    /// connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<String> = redis_caches::RedisCache::new("motd");
    /// let motd: Option<String> = c.get()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get(&self) -> Result<Option<T>>
    where
        T: Clone,
    {
        let bytes: Option<Vec<u8>> = self.core.run(|c, k| redis::cmd("GET").arg(k).query(c))?;
        match bytes {
            Some(b) => self.decode(&b).map(Some),
            None => Ok(self.default.as_deref().cloned()),
        }
    }

    /// Stores `value`, replacing any previous one, and applies the TTL. `SET key value [PX
    /// ttl]`, one command (under [`TtlPolicy::Keep`](crate::TtlPolicy::Keep): `SET KEEPTTL`
    /// and `PEXPIRE NX` in one `MULTI`/`EXEC`), one round trip.
    ///
    /// Accepts borrowed forms: `set("x")` on a `RedisCache<String>`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`](crate::Error::Encode), [`Error::ValueTooLarge`](crate::Error::ValueTooLarge),
    /// connection errors.
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
        let bytes = self.core.encode_item(&self.tag, value)?;
        let ttl = self.core.options.ttl;
        let keep = self.core.options.ttl_policy == crate::TtlPolicy::Keep;
        self.core.run(|c, k| match ttl {
            None => redis::cmd("SET").arg(k).arg(&bytes).exec(c),
            Some(ttl) if !keep => {
                let ms = crate::options::ttl_millis(ttl);
                redis::cmd("SET")
                    .arg(k)
                    .arg(&bytes)
                    .arg("PX")
                    .arg(ms)
                    .exec(c)
            }
            Some(_) => {
                let mut pipe = self.core.write_pipe();
                pipe.cmd("SET").arg(k).arg(&bytes).arg("KEEPTTL").ignore();
                self.core.add_ttl(&mut pipe, k);
                pipe.exec(c)
            }
        })
    }

    /// Deletes the value; true when there was one. `DEL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<String> = redis_caches::RedisCache::new("motd");
    /// let was_there = c.delete()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn delete(&self) -> Result<bool> {
        self.core.clear()
    }

    /// Returns the stored value, or computes it with `f`, stores it unless another writer got
    /// there first, and returns whichever value Redis kept. `GET`; on a miss `SET key value NX
    /// GET [PX ttl]` (Redis 7.0+): one round trip on a hit, two on a miss.
    ///
    /// If several threads or processes miss at once, each runs `f`, but all of them return
    /// the same value: the first one stored.
    ///
    /// # Errors
    ///
    /// As [`get`](RedisCache::get) and [`set`](RedisCache::set).
    ///
    /// ```no_run
    /// let c: redis_caches::RedisCache<u64> = redis_caches::RedisCache::new("answer");
    /// let v = c.get_or_insert_with(|| 42)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_or_insert_with(&self, f: impl FnOnce() -> T) -> Result<T> {
        let bytes: Option<Vec<u8>> = self.core.run(|c, k| redis::cmd("GET").arg(k).query(c))?;
        if let Some(b) = bytes {
            return self.decode(&b);
        }
        let value = f();
        let encoded = self.core.encode_item(&self.tag, &value)?;
        let ttl = self.core.options.ttl;
        let previous: Option<Vec<u8>> = self.core.run(|c, k| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(k).arg(&encoded).arg("NX").arg("GET");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(crate::options::ttl_millis(ttl));
            }
            cmd.query(c)
        })?;
        match previous {
            Some(b) => self.decode(&b),
            None => Ok(value),
        }
    }

    crate::options::key_methods! {
        handle: "redis_caches::RedisCache::<u8>::new(\"k\")",
        exists: "Whether the key exists.",
        clear: "Deletes the key; true when it existed. Same as [`delete`](RedisCache::delete), \
                named like every other collection's `clear`.",
        ttl: "The key's remaining time to live.",
        expire: "Sets the key's time to live now; false when the key does not exist.",
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        self.core.decode_item(&self.tag, bytes)
    }
}

/// `INCRBY` then `PEXPIRE` (with `NX` under `TtlPolicy::Keep`), atomically; an error in
/// `INCRBY` stops the script before the TTL is touched.
static INCR_WITH_TTL: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[3] == 'NX' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
",
    )
});

/// Integer types that [`RedisCache::incr`] can count with.
pub trait Counter: Serialize + DeserializeOwned + Copy + private::Sealed {
    #[doc(hidden)]
    fn to_i64(self) -> Option<i64>;
    #[doc(hidden)]
    fn from_i64(n: i64) -> Option<Self>;
}

macro_rules! counters {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Counter for $t {
            fn to_i64(self) -> Option<i64> {
                i64::try_from(self).ok()
            }
            fn from_i64(n: i64) -> Option<Self> {
                <$t>::try_from(n).ok()
            }
        }
    )*};
}
counters!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl<T: Counter> RedisCache<T, Raw> {
    /// Adds `by` atomically and returns the new value; a missing key counts as 0. `INCRBY`; with
    /// a TTL, a Lua script (`EVALSHA`) that runs `INCRBY` then `PEXPIRE`, so that a failed
    /// increment never touches the key's TTL. One round trip (the first script call on a server
    /// also loads it: `SCRIPT LOAD` and a retried `EVALSHA`).
    ///
    /// There is no `+=`: a network operation must be able to fail.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`](crate::Error::Encode) when `by` does not fit an `i64`,
    /// [`Error::Decode`](crate::Error::Decode) when the new value does not fit `T` (Redis counts
    /// in `i64`: the new value is stored even then, e.g. `-1` after `decr(1)` on a `u64` at 0),
    /// [`Error::Redis`](crate::Error::Redis) naming the key when the stored value is not an
    /// integer or the sum overflows an `i64` (the value is left unchanged),
    /// [`Error::WrongType`](crate::Error::WrongType) when the key holds another Redis type,
    /// connection errors.
    ///
    /// ```no_run
    /// use redis_caches::{RedisCache, codec::Raw};
    /// let visits = RedisCache::<u64>::builder("visits").codec(Raw).build();
    /// let n = visits.incr(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn incr(&self, by: T) -> Result<T> {
        let key = self.core.resolved()?.key.as_str();
        let by = by.to_i64().ok_or_else(|| crate::Error::Encode {
            key: key.to_string(),
            reason: "the increment does not fit an i64".into(),
        })?;
        self.add(by, key)
    }

    /// Subtracts `by` atomically and returns the new value. `INCRBY key -by` (in the same
    /// script as `PEXPIRE` when a TTL is set), one round trip. See
    /// [`incr`](RedisCache::incr).
    ///
    /// # Errors
    ///
    /// As [`incr`](RedisCache::incr).
    ///
    /// ```no_run
    /// use redis_caches::{RedisCache, codec::Raw};
    /// let stock = RedisCache::<i32>::builder("stock").codec(Raw).build();
    /// let left = stock.decr(1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn decr(&self, by: T) -> Result<T> {
        let key = self.core.resolved()?.key.as_str();
        let by = by
            .to_i64()
            .and_then(i64::checked_neg)
            .ok_or_else(|| crate::Error::Encode {
                key: key.to_string(),
                reason: "the decrement does not fit an i64".into(),
            })?;
        self.add(by, key)
    }

    fn add(&self, by: i64, key: &str) -> Result<T> {
        let ttl = self.core.options.ttl;
        let keep = self.core.options.ttl_policy == crate::TtlPolicy::Keep;
        let new: i64 = self.core.run(|c, k| match ttl {
            // A script rather than MULTI/EXEC: a failing INCRBY (not an integer, another
            // Redis type, overflow) must abort before the PEXPIRE touches the key.
            Some(ttl) => INCR_WITH_TTL
                .key(k)
                .arg(by)
                .arg(crate::options::ttl_millis(ttl))
                .arg(if keep { "NX" } else { "" })
                .invoke(c),
            None => redis::cmd("INCRBY").arg(k).arg(by).query(c),
        })?;
        T::from_i64(new).ok_or_else(|| crate::Error::Decode {
            key: key.to_string(),
            reason: format!(
                "the counter's new value {new} does not fit {}",
                self.tag.name()
            ),
        })
    }
}
