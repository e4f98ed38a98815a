//! [`DictCache<K, V>`]: a typed map stored as one Redis hash, and its iterators.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::sync::Arc;

use once_cell::sync::Lazy;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, TypeTag};
use crate::error::{Error, Result};
use crate::key::IntoKey;
use crate::options::{Builder, Core, TtlPolicy};
use crate::pages::{Pages, scan_page};

/// How many entries the iterators ask `HSCAN` for per round trip (its `COUNT` hint).
pub const SCAN_BATCH: usize = 1000;

/// How many field/value pairs [`DictCache::extend`] puts in one `HSET`.
const PAIRS_PER_HSET: usize = 512;

/// How many `HSET`s [`DictCache::extend`] pipelines in one round trip.
const HSETS_PER_ROUND_TRIP: usize = 8;

/// How many fields [`DictCache::get_many`] puts in one `HMGET` (all of them go in one pipeline).
const FIELDS_PER_HMGET: usize = 1000;

/// Removes a random field atomically and returns it with its value; applies the TTL.
/// `ARGV[1]`: the TTL in milliseconds, or empty; `ARGV[2]`: `NX` under `TtlPolicy::Keep`.
static POP_ITEM: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
local field = redis.call('HRANDFIELD', KEYS[1])
if not field then
  return false
end
local value = redis.call('HGET', KEYS[1], field)
redis.call('HDEL', KEYS[1], field)
if ARGV[1] ~= '' then
  if ARGV[2] == 'NX' then
    redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
  end
end
return {field, value}
",
    )
});

/// A typed map stored as one Redis hash: keys become hash fields, values their values, both
/// encoded with the collection's [codec](crate::codec).
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`. Nothing is cached in the process: every read goes to Redis, so every handle,
/// thread and process sees the latest write. A TTL, when set, applies to the whole hash (Redis
/// 7.0 has no per-field TTL); every write applies it as the
/// [`TtlPolicy`] says, in the same round trip.
///
/// | Method | Redis commands | Round trips |
/// |---|---|---|
/// | [`get`](DictCache::get) | `HGET` | 1 |
/// | [`insert`](DictCache::insert) | `MULTI`, `HGET`, `HSET`, (`PEXPIRE`), `EXEC` | 1 |
/// | [`set`](DictCache::set) | `HSET` (in `MULTI`/`EXEC` with `PEXPIRE` when a TTL is set) | 1 |
/// | [`remove`](DictCache::remove) | `MULTI`, `HGET`, `HDEL`, (`PEXPIRE`), `EXEC` | 1 |
/// | [`contains_key`](DictCache::contains_key) | `HEXISTS` | 1 |
/// | [`len`](DictCache::len), [`is_empty`](DictCache::is_empty) | `HLEN` | 1 |
/// | [`iter`](DictCache::iter), [`keys`](DictCache::keys), [`values`](DictCache::values), `for entry in &dict` | `HSCAN` | 1 per batch of about [`SCAN_BATCH`] entries |
/// | [`get_many`](DictCache::get_many) | `HMGET` (one per 1,000 keys, pipelined) | 1 |
/// | [`extend`](DictCache::extend) | `HSET` with up to 512 pairs; more `HSET`s, or (`PEXPIRE`), in `MULTI`/`EXEC` | 1 per 4,096 entries |
/// | [`get_or_insert_with`](DictCache::get_or_insert_with) | `HGET`; on a miss `MULTI`, `HSETNX`, `HGET`, (`PEXPIRE`), `EXEC` | 1 on a hit, 2 on a miss |
/// | [`pop_item`](DictCache::pop_item) | a Lua script (`EVALSHA`): `HRANDFIELD`, `HGET`, `HDEL`, (`PEXPIRE`) | 1 (3 the first time a server sees the script) |
/// | [`to_hash_map`](DictCache::to_hash_map) | `HGETALL` | 1 |
/// | [`exists`](DictCache::exists), [`clear`](DictCache::clear), [`ttl`](DictCache::ttl), [`expire`](DictCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 |
///
/// (`PEXPIRE`) is sent only when the collection has a TTL; under [`TtlPolicy::Keep`] it is
/// `PEXPIRE key ttl NX`.
///
/// # Example
///
/// ```no_run
/// use redis_caches::DictCache;
///
/// let ages: DictCache<String, u32> = DictCache::new(["people", "ages"]);
/// ages.insert("ada", &36)?;
/// assert_eq!(ages.get("ada")?, Some(36)); // borrowed lookups, like HashMap
/// ages.extend([("alan".to_string(), 41), ("grace".to_string(), 85)])?;
/// for entry in &ages {
///     let (name, age) = entry?;
///     println!("{name} is {age}");
/// }
/// assert_eq!(ages.remove("alan")?, Some(41));
/// # Ok::<(), redis_caches::Error>(())
/// ```
///
/// # Example: a TTL for the whole map
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::DictCache;
///
/// // The hash disappears 10 minutes after its last write.
/// let sessions = DictCache::<u64, String>::builder("sessions")
///     .ttl(Duration::from_secs(600))
///     .build();
/// sessions.insert(&42, "ada")?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct DictCache<K, V, C = Postcard> {
    core: Arc<Core<C>>,
    tags: Arc<Tags>,
    _types: PhantomData<fn() -> (K, V)>,
}

struct Tags {
    key: TypeTag,
    value: TypeTag,
}

crate::options::collection_handle! {
    DictCache[K, V],
    redis_type: "hash",
    extra: (),
    clone: { core, tags, _types },
    from_core: |core, ()| DictCache {
        core: Arc::new(core),
        tags: Arc::new(Tags {
            key: TypeTag::of::<K>(),
            value: TypeTag::of::<V>(),
        }),
        _types: PhantomData,
    },
}

impl<K, V> DictCache<K, V> {
    /// A handle for the hash at `key`, on the default connection, postcard-encoded, without a
    /// TTL. No I/O.
    ///
    /// ```
    /// use redis_caches::DictCache;
    /// let c: DictCache<String, u64> = DictCache::new(["foo", "bar"]);
    /// assert!(format!("{c:?}").contains("foo.bar"));
    /// ```
    pub fn new(key: impl IntoKey) -> Self {
        Self::builder(key).build()
    }

    /// A [`Builder`] for the hash at `key`, to set the connection, prefix, TTL, TTL policy or
    /// codec.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = redis_caches::DictCache::<String, u64>::builder("scores")
    ///     .ttl(Duration::from_secs(30))
    ///     .build();
    /// # let _ = c;
    /// ```
    pub fn builder(key: impl IntoKey) -> Builder<Self> {
        Builder::new(key)
    }
}

impl<K, V, C> DictCache<K, V, C>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
{
    /// Reads the value stored for `key`, `None` when there is none. `HGET`, one round trip.
    ///
    /// Borrows like [`HashMap::get`]: `get("a")` works on a `DictCache<String, _>`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the key and field when the stored bytes were not written by
    /// this codec for `V`; [`Error::WrongType`] when the key holds another Redis type;
    /// [`Error::Encode`] when `key` cannot be encoded; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let age: Option<u32> = c.get("ada")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        let bytes: Option<Vec<u8>> = self
            .core
            .run(|c, k| redis::cmd("HGET").arg(k).arg(&field).query(c))?;
        bytes.map(|b| self.decode_value(&field, &b)).transpose()
    }

    /// Stores `value` for `key` and returns the value it replaces, like [`HashMap::insert`];
    /// applies the TTL. `MULTI`, `HGET`, `HSET`, (`PEXPIRE`), `EXEC`: one round trip,
    /// atomic, so the returned value is exactly the one this write replaced even when other
    /// writers race.
    ///
    /// Redis has no `HSET` that returns the old value, so this reads it in the same
    /// transaction; that costs its transfer (no extra round trip). When you do not need it,
    /// [`set`](DictCache::set) is a plain `HSET`.
    ///
    /// Accepts borrowed forms: `insert("ada", &36)` on a `DictCache<String, u32>`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] before anything is sent;
    /// [`Error::WrongType`]; connection errors. [`Error::Decode`] when the replaced value
    /// cannot be decoded: the new value is stored even then.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// assert_eq!(c.insert("ada", &36)?, None);
    /// assert_eq!(c.insert("ada", &37)?, Some(36));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn insert<Q, R>(&self, key: &Q, value: &R) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        V: Borrow<R>,
        Q: Serialize + ?Sized,
        R: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        let value = self.value(value)?;
        let (old,): (Option<Vec<u8>>,) = self.core.run(|c, k| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("HGET").arg(k).arg(&field);
            pipe.cmd("HSET").arg(k).arg(&field).arg(&value).ignore();
            self.core.add_ttl(&mut pipe, k);
            pipe.query(c)
        })?;
        old.map(|b| self.decode_value(&field, &b)).transpose()
    }

    /// Stores `value` for `key` without reading the value it replaces; true when `key` was
    /// new. `HSET`, one command (with a TTL: `HSET` and `PEXPIRE` in `MULTI`/`EXEC`), one
    /// round trip.
    ///
    /// The cheaper [`insert`](DictCache::insert) when the old value does not matter.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] before anything is sent;
    /// [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let was_new = c.set("ada", &36)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<Q, R>(&self, key: &Q, value: &R) -> Result<bool>
    where
        K: Borrow<Q>,
        V: Borrow<R>,
        Q: Serialize + ?Sized,
        R: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        let value = self.value(value)?;
        let added: u32 = self.core.write(|pipe, k| {
            pipe.cmd("HSET").arg(k).arg(&field).arg(&value);
        })?;
        Ok(added > 0)
    }

    /// Removes `key` and returns its value, like [`HashMap::remove`]; applies the TTL.
    /// `MULTI`, `HGET`, `HDEL`, (`PEXPIRE`), `EXEC`: one round trip, atomic, so if several
    /// threads or processes remove the same key at once, exactly one of them gets the value.
    ///
    /// Removing the last entry deletes the hash, and with it its TTL.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the removed value cannot be decoded (it is removed even then);
    /// [`Error::WrongType`]; [`Error::Encode`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// if let Some(age) = c.remove("ada")? {
    ///     println!("ada was {age}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        let (old,): (Option<Vec<u8>>,) = self.core.run(|c, k| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("HGET").arg(k).arg(&field);
            pipe.cmd("HDEL").arg(k).arg(&field).ignore();
            self.core.add_ttl(&mut pipe, k);
            pipe.query(c)
        })?;
        old.map(|b| self.decode_value(&field, &b)).transpose()
    }

    /// Whether `key` has a value. `HEXISTS`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; [`Error::Encode`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// if !c.contains_key("ada")? { c.set("ada", &36)?; }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        self.core
            .run(|c, k| redis::cmd("HEXISTS").arg(k).arg(&field).query(c))
    }

    /// The number of entries. `HLEN`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// println!("{} people", c.len()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.core.run(|c, k| redis::cmd("HLEN").arg(k).query(c))
    }

    /// Whether the map has no entries (a missing key is an empty map). `HLEN`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// if c.is_empty()? { println!("nobody yet"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Iterates over the entries, streaming them from Redis in batches. `HSCAN key cursor
    /// COUNT 1000` per batch, one round trip each; memory is bounded by one batch.
    ///
    /// # What the iteration guarantees
    ///
    /// It has `HSCAN`'s guarantees, not a snapshot's: every entry present for the whole
    /// iteration is yielded at least once; entries inserted or removed meanwhile may or may
    /// not be; and **an entry can be yielded more than once** when Redis resizes the hash
    /// during the iteration. Hashes small enough for Redis' compact encoding (at most
    /// `hash-max-listpack-entries`, 128 by default) come back in one batch, without
    /// duplicates. Collect into a `HashMap` to drop duplicates, or take a snapshot with
    /// [`to_hash_map`](DictCache::to_hash_map).
    ///
    /// If the hash is deleted, or expires, during the iteration, the iteration ends early
    /// without an error: the next `HSCAN` finds no key, and what was not yielded yet is lost.
    ///
    /// # Errors
    ///
    /// Each item is a `Result`. An entry that cannot be decoded yields an [`Error::Decode`]
    /// naming the key and field, and the iteration goes on; a connection error or
    /// [`Error::WrongType`] is yielded once and ends the iteration.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// for entry in c.iter() {
    ///     let (name, age) = entry?;
    ///     println!("{name}: {age}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, C> {
        Iter::new(self)
    }

    /// Iterates over the keys, in batches, as [`iter`](DictCache::iter) does (same
    /// guarantees). `HSCAN` per batch; the values travel too (Redis 7.0 has no `NOVALUES`)
    /// but are not decoded.
    ///
    /// # Errors
    ///
    /// As [`iter`](DictCache::iter).
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let names: Vec<String> = c.keys().collect::<Result<_, _>>()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V, C> {
        Keys::new(self)
    }

    /// Iterates over the values, in batches, as [`iter`](DictCache::iter) does (same
    /// guarantees). `HSCAN` per batch.
    ///
    /// # Errors
    ///
    /// As [`iter`](DictCache::iter).
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let mut total = 0;
    /// for age in c.values() { total += age?; }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn values(&self) -> Values<'_, K, V, C> {
        Values::new(self)
    }

    /// Reads the values of several keys at once, in the order given, `None` for a key
    /// without a value. `HMGET` (one per 1,000 keys, all in one pipeline): one round trip.
    /// No round trip for no keys.
    ///
    /// # Errors
    ///
    /// As [`get`](DictCache::get); the first value that cannot be decoded fails the call.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let [ada, alan] = c.get_many(["ada", "alan"])?[..] else { unreachable!() };
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_many<'q, Q, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        I: IntoIterator<Item = &'q Q>,
        K: Borrow<Q>,
        Q: Serialize + ?Sized + 'q,
    {
        let fields = keys
            .into_iter()
            .map(|k| self.field(k))
            .collect::<Result<Vec<_>>>()?;
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<Vec<Option<Vec<u8>>>> = self.core.run(|c, k| {
            let mut pipe = redis::pipe();
            for chunk in fields.chunks(FIELDS_PER_HMGET) {
                pipe.cmd("HMGET").arg(k).arg(chunk);
            }
            pipe.query(c)
        })?;
        fields
            .iter()
            .zip(replies.into_iter().flatten())
            .map(|(field, bytes)| bytes.map(|b| self.decode_value(field, &b)).transpose())
            .collect()
    }

    /// Inserts every entry of `entries`, replacing existing values; applies the TTL. `HSET`
    /// with up to 512 pairs each, 8 of them in one `MULTI`/`EXEC`: one round trip per 4,096
    /// entries, with one `PEXPIRE` in each when a TTL is set. Up to 512 entries without a TTL
    /// are one plain `HSET`. No round trip for no entries.
    ///
    /// Each round trip is atomic on its own; a large `extend` is not atomic as a whole, and
    /// readers may see part of it. Memory is bounded by one round trip's worth of entries,
    /// so `entries` can be a long stream.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] (nothing of the failing round trip is
    /// sent, earlier ones are stored); [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// c.extend([("ada".to_string(), 36), ("alan".to_string(), 41)])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn extend<I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let per_round_trip = PAIRS_PER_HSET * HSETS_PER_ROUND_TRIP;
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (key, value) in entries {
            batch.push((self.field(&key)?, self.value(&value)?));
            if batch.len() == per_round_trip {
                self.send_hsets(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.send_hsets(&batch)?;
        }
        Ok(())
    }

    fn send_hsets(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        self.core.run(|c, k| {
            let mut pipe = self.core.write_pipe();
            // Several HSETs go in one MULTI/EXEC too, so that the round trip is atomic: a
            // plain pipeline lets other clients in between its commands, and a dropped
            // connection can leave part of it applied.
            if pairs.len() > PAIRS_PER_HSET {
                pipe.atomic();
            }
            for chunk in pairs.chunks(PAIRS_PER_HSET) {
                let cmd = pipe.cmd("HSET").arg(k);
                for (field, value) in chunk {
                    cmd.arg(field).arg(value);
                }
                cmd.ignore();
            }
            self.core.add_ttl(&mut pipe, k);
            pipe.exec(c)
        })
    }

    /// Returns the value of `key`, or computes one with `f`, stores it unless another writer
    /// got there first, and returns whichever value the hash holds then (unlike the Python
    /// original's `setdefault`, which returns `None`). `HGET`; on a miss `MULTI`, `HSETNX`,
    /// `HGET`, (`PEXPIRE`), `EXEC`: one round trip on a hit, two on a miss.
    ///
    /// If several threads or processes miss at once, each runs `f`, but all of them return
    /// the same value: the first one stored. The TTL is applied on a miss even when another
    /// writer's value won.
    ///
    /// # Errors
    ///
    /// As [`get`](DictCache::get) and [`set`](DictCache::set).
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let age = c.get_or_insert_with("ada", || 36)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_or_insert_with<Q>(&self, key: &Q, f: impl FnOnce() -> V) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        let bytes: Option<Vec<u8>> = self
            .core
            .run(|c, k| redis::cmd("HGET").arg(k).arg(&field).query(c))?;
        if let Some(b) = bytes {
            return self.decode_value(&field, &b);
        }
        let value = f();
        let encoded = self.value(&value)?;
        let (stored,): (Option<Vec<u8>>,) = self.core.run(|c, k| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("HSETNX").arg(k).arg(&field).arg(&encoded).ignore();
            pipe.cmd("HGET").arg(k).arg(&field);
            self.core.add_ttl(&mut pipe, k);
            pipe.query(c)
        })?;
        match stored {
            Some(b) if b != encoded => self.decode_value(&field, &b),
            _ => Ok(value),
        }
    }

    /// Removes an entry chosen at random and returns it, `None` when the map is empty;
    /// applies the TTL. One Lua script (`EVALSHA`: `HRANDFIELD`, `HGET`, `HDEL`,
    /// (`PEXPIRE`)), atomic: concurrent callers never get the same entry. One round trip;
    /// three the first time a server sees the script (`EVALSHA` answers `NOSCRIPT`, then
    /// `SCRIPT LOAD` and `EVALSHA` again). Needs Redis 6.2 or later.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the entry cannot be decoded (it is removed even then);
    /// [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let jobs: redis_caches::DictCache<u64, String> = redis_caches::DictCache::new("jobs");
    /// while let Some((id, job)) = jobs.pop_item()? {
    ///     println!("running {id}: {job}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pop_item(&self) -> Result<Option<(K, V)>> {
        let ttl = self
            .core
            .options
            .ttl
            .map(|t| crate::options::ttl_millis(t).to_string())
            .unwrap_or_default();
        let mode = match self.core.options.ttl_policy {
            TtlPolicy::Keep => "NX",
            _ => "",
        };
        let popped: Option<(Vec<u8>, Vec<u8>)> = self.core.run(|c, k| {
            POP_ITEM
                .key(k)
                .arg(&ttl)
                .arg(mode)
                .invoke(c as &mut dyn redis::ConnectionLike)
        })?;
        popped
            .map(|(field, value)| self.decode_entry(&field, &value))
            .transpose()
    }

    /// Copies the whole map into a `HashMap`: a consistent snapshot. `HGETALL`, one round
    /// trip; Redis builds the whole reply at once, so prefer [`iter`](DictCache::iter) for
    /// very large hashes.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the key and field of the first entry that cannot be decoded;
    /// [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let local: std::collections::HashMap<String, u32> = c.to_hash_map()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn to_hash_map(&self) -> Result<HashMap<K, V>>
    where
        K: Eq + Hash,
    {
        let raw: HashMap<Vec<u8>, Vec<u8>> = self
            .core
            .run(|c, k| redis::cmd("HGETALL").arg(k).query(c))?;
        raw.iter()
            .map(|(field, value)| self.decode_entry(field, value))
            .collect()
    }

    crate::options::key_methods! {
        handle: "redis_caches::DictCache::<String, u32>::new(\"ages\")",
        exists: "Whether the key exists (a hash exists while it has at least one entry).",
        clear: "Deletes the whole hash; true when it existed.",
        ttl: "The hash's remaining time to live.",
        expire: "Sets the hash's time to live now; false when the key does not exist.",
    }

    /// Encodes a key into its hash field.
    fn field<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        self.core.encode_item(&self.tags.key, key)
    }

    fn value<R: Serialize + ?Sized>(&self, value: &R) -> Result<Vec<u8>> {
        self.core.encode_item(&self.tags.value, value)
    }

    fn decode_value(&self, field: &[u8], bytes: &[u8]) -> Result<V> {
        self.core.decode(&self.tags.value, bytes, || {
            field_label(&self.core.key_for_errors(), field)
        })
    }

    fn decode_key(&self, field: &[u8]) -> Result<K> {
        self.core
            .decode(&self.tags.key, field, || {
                field_label(&self.core.key_for_errors(), field)
            })
            .map_err(|e| match e {
                Error::Decode { key, reason } => Error::Decode {
                    key,
                    reason: format!("the field itself: {reason}"),
                },
                e => e,
            })
    }

    fn decode_entry(&self, field: &[u8], value: &[u8]) -> Result<(K, V)> {
        Ok((self.decode_key(field)?, self.decode_value(field, value)?))
    }
}

/// `key["field"]`, the field's bytes shown as `redis-cli` does (printable ASCII as is, the rest
/// as `\xNN`), cut after 64 bytes.
fn field_label(key: &str, field: &[u8]) -> String {
    const SHOWN: usize = 64;
    let mut out = String::with_capacity(key.len() + 4 + SHOWN * 2);
    out.push_str(key);
    out.push_str("[\"");
    for &b in field.iter().take(SHOWN) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if field.len() > SHOWN {
        out.push_str("...");
    }
    out.push_str("\"]");
    out
}

/// Writes one of the dict's iterators: the struct with its docs, streaming raw field/value
/// pairs with `HSCAN` and turning each into an item with `decode`, `Iterator`,
/// `FusedIterator` and a `Debug` that shows the key, never a value.
macro_rules! dict_iterator {
    (
        $(#[$doc:meta])*
        $name:ident yields $item:ty, |$dict:ident, $field:ident, $value:ident| $decode:expr
    ) => {
        $(#[$doc])*
        pub struct $name<'a, K, V, C = Postcard> {
            dict: &'a DictCache<K, V, C>,
            pages: Pages<u64, (Vec<u8>, Vec<u8>)>,
        }

        impl<'a, K, V, C> $name<'a, K, V, C> {
            fn new(dict: &'a DictCache<K, V, C>) -> Self {
                $name {
                    dict,
                    pages: Pages::new(0),
                }
            }
        }

        impl<K, V, C> Iterator for $name<'_, K, V, C>
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned,
            C: Codec,
        {
            type Item = Result<$item>;

            fn next(&mut self) -> Option<Self::Item> {
                let $dict = self.dict;
                let raw = self
                    .pages
                    .next(|cursor| scan_page(&$dict.core, "HSCAN", cursor, SCAN_BATCH))?;
                Some(raw.and_then(|($field, $value)| $decode))
            }
        }

        impl<K, V, C> FusedIterator for $name<'_, K, V, C>
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned,
            C: Codec,
        {
        }

        impl<K, V, C: Codec> fmt::Debug for $name<'_, K, V, C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("dict", self.dict)
                    .field("cursor", &self.pages.next_position())
                    .field("buffered", &self.pages.buffered())
                    .finish()
            }
        }
    };
}

dict_iterator! {
    /// The entries of a [`DictCache`], streamed with `HSCAN`: see [`DictCache::iter`] for what it
    /// guarantees. Items are `Result<(K, V)>`.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let adults = c.iter().filter(|e| matches!(e, Ok((_, age)) if *age >= 18)).count();
    /// # let _ = adults;
    /// ```
    Iter yields (K, V), |dict, field, value| dict.decode_entry(&field, &value)
}

dict_iterator! {
    /// The keys of a [`DictCache`], streamed with `HSCAN`: see [`DictCache::keys`].
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// for name in c.keys() { println!("{}", name?); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    Keys yields K, |dict, field, _value| dict.decode_key(&field)
}

dict_iterator! {
    /// The values of a [`DictCache`], streamed with `HSCAN`: see [`DictCache::values`].
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let oldest = c.values().collect::<Result<Vec<_>, _>>()?.into_iter().max();
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    Values yields V, |dict, field, value| dict.decode_value(&field, &value)
}

/// `for entry in &dict` iterates like [`DictCache::iter`].
///
/// ```no_run
/// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
/// for entry in &c {
///     let (name, age) = entry?;
/// }
/// # Ok::<(), redis_caches::Error>(())
/// ```
impl<'a, K, V, C> IntoIterator for &'a DictCache<K, V, C>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<'a, K, V, C>;

    fn into_iter(self) -> Iter<'a, K, V, C> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::field_label;

    #[test]
    fn field_labels_escape_like_redis_cli() {
        assert_eq!(field_label("k", b"ab"), "k[\"ab\"]");
        assert_eq!(
            field_label("k", &[0xca, 0x01, b'"', b'\\']),
            "k[\"\\xca\\x01\\\"\\\\\"]"
        );
        let long = vec![b'a'; 100];
        assert_eq!(
            field_label("k", &long),
            format!("k[\"{}...\"]", "a".repeat(64))
        );
    }
}
