//! [`DictCache<K, V>`]: a typed map stored as one Redis hash, and its iterators.

pub(crate) mod ops;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::EncodesAs;
use crate::cache::{Counter, CounterCodec, counter_reply, counter_step};
use crate::codec::{Codec, LazyTag, Postcard};
use crate::connection::Retry;
use crate::deadline::Call;
use crate::engine::{Engine, Pages, scan_page};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::key::IntoKey;
use crate::options::Builder;

/// How many entries the iterators ask `HSCAN` for per round trip (its `COUNT` hint).
pub const SCAN_BATCH: usize = 1000;

/// How many field/value pairs [`DictCache::extend`] sends in one round trip (one `HSET`).
const PAIRS_PER_ROUND_TRIP: usize = 4096;

/// A typed map stored as one Redis hash: keys become hash fields, values their values.
/// Values are encoded with the collection's [codec](crate::codec); keys that are strings or
/// integers are their plain text (`ada`, `42`), so `HGET key ada` works from any client, and
/// other keys are encoded by the codec (see [fields and members](crate::codec#fields-and-members)).
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`. Nothing is cached in the process: every read goes to Redis, so every handle,
/// thread and process sees the latest write. A TTL, when set, applies to the whole hash (Redis
/// 7.0 has no per-field TTL); every write applies it as the
/// [`TtlPolicy`](crate::TtlPolicy) says, in the same round trip.
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`get`](DictCache::get) | `HGET` | 1 | resent |
/// | [`insert`](DictCache::insert) | a script: `HGET`, `HSET`, (`PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`set`](DictCache::set) | `HSET` (with a TTL: a script, `HSET`, `PEXPIRE`) | 1 | resent |
/// | [`remove`](DictCache::remove) | a script: `HGET`, `HDEL`, (`PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`delete`](DictCache::delete) | `HDEL` (with a TTL: a script, `HDEL`, `PEXPIRE`) | 1 | resent |
/// | [`contains_key`](DictCache::contains_key) | `HEXISTS` | 1 | resent |
/// | [`len`](DictCache::len), [`is_empty`](DictCache::is_empty) | `HLEN` | 1 | resent |
/// | [`iter`](DictCache::iter), [`keys`](DictCache::keys), [`values`](DictCache::values), `for entry in &dict` | `HSCAN` | 1 per batch of about [`SCAN_BATCH`] entries | resent |
/// | [`get_many`](DictCache::get_many) | `HMGET` | 1 | resent |
/// | [`extend`](DictCache::extend) | `HSET` with up to 4,096 pairs (with a TTL: a script, `HSET`s, `PEXPIRE`) | 1 per 4,096 entries | resent |
/// | [`get_or_insert_with`](DictCache::get_or_insert_with) | `HGET`; on a miss a script: `HSETNX`, `HGET`, (`PEXPIRE`) | 1 on a hit, 2 on a miss | resent |
/// | [`pop_item`](DictCache::pop_item) | a script: `HRANDFIELD`, `HGET`, `HDEL`, (`PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`to_hash_map`](DictCache::to_hash_map) | `HGETALL` | 1 | resent |
/// | [`incr`](DictCache::incr), [`decr`](DictCache::decr) (counter codecs) | `HINCRBY`/`HINCRBYFLOAT` (with a TTL: a script, the same, `PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`exists`](DictCache::exists), [`clear`](DictCache::clear), [`ttl`](DictCache::ttl), [`expire`](DictCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 | resent |
///
/// (`PEXPIRE`) is sent only when the collection has a TTL, as the [`TtlPolicy`](crate::TtlPolicy)
/// says. A script is sent by hash (`EVALSHA`); the first time a server sees it, once more
/// with its text. Every script checks first that the key holds a hash: over a key of another
/// type it fails with [`Error::WrongType`] and changes nothing.
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
    engine: Arc<Engine<C>>,
    tags: Arc<Tags>,
    _types: PhantomData<fn() -> (K, V)>,
}

#[derive(Default)]
struct Tags {
    key: LazyTag,
    value: LazyTag,
}

crate::handle::collection_handle! {
    DictCache[K, V],
    redis_type: "hash",
    extra: (),
    clone: { engine, tags, _types },
    from_engine: |engine, ()| DictCache {
        engine: Arc::new(engine),
        tags: Arc::new(Tags::default()),
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
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
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
        let bytes = ops::get(&self.engine, &field)?;
        bytes.map_or(Ok(None), |b| self.decode_value_or_miss(&field, &b))
    }

    /// Stores `value` for `key` and returns the value it replaces, like [`HashMap::insert`];
    /// applies the TTL. One script (`HGET`, `HSET`, (`PEXPIRE`)): one round trip, atomic, so
    /// the returned value is exactly the one this write replaced even when other writers
    /// race.
    ///
    /// Redis has no `HSET` that returns the old value, so this reads it in the same script;
    /// that costs its transfer (no extra round trip). When you do not need it,
    /// [`set`](DictCache::set) is a plain `HSET`. Not sent again after a lost reply (the
    /// old value would be lost): [`Error::OutcomeUnknown`] instead.
    ///
    /// Accepts borrowed forms: `insert("ada", &36)` on a `DictCache<String, u32>`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] before anything is sent;
    /// [`Error::WrongType`] (nothing is written); [`Error::OutcomeUnknown`]; connection
    /// errors. [`Error::Decode`] when the replaced value cannot be decoded: the new value is
    /// stored even then.
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
        let old = ops::insert(&self.engine, &field, &value)?;
        old.map_or(Ok(None), |b| self.decode_value_or_miss(&field, &b))
    }

    /// Stores `value` for `key` without reading the value it replaces; true when `key` was
    /// new. `HSET`, one command (with a TTL: a script, `HSET` and `PEXPIRE`), one round trip.
    /// Idempotent: sent again after a lost reply, within the call's deadline (it then says
    /// `false`).
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
        ops::set(&self.engine, &field, &value)
    }

    /// Removes `key` and returns its value, like [`HashMap::remove`]; applies the TTL when
    /// something was removed. One script (`HGET`, `HDEL`, (`PEXPIRE`)): one round trip,
    /// atomic, so if several threads or processes remove the same key at once, exactly one of
    /// them gets the value. Not sent again after a lost reply: [`Error::OutcomeUnknown`].
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
        let old = ops::remove(&self.engine, &field)?;
        old.map_or(Ok(None), |b| self.decode_value_or_miss(&field, &b))
    }

    /// Deletes `key`; true when it had a value. `HDEL` (with a TTL: a script running `HDEL`
    /// and `PEXPIRE`), one round trip, without reading the value: the cheaper
    /// [`remove`](DictCache::remove) when the value does not matter. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; [`Error::Encode`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let was_there = c.delete("ada")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let field = self.field(key)?;
        ops::delete(&self.engine, &field)
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
        ops::contains(&self.engine, &field)
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
        ops::len(&self.engine)
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
    pub fn iter(&self) -> Iter<K, V, C> {
        Iter::new(self.clone())
    }

    /// Iterates over the keys, in batches, as [`iter`](DictCache::iter) does (same
    /// guarantees). `HSCAN` per batch; the values travel too (`HSCAN NOVALUES` is Redis 7.4's)
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
    pub fn keys(&self) -> Keys<K, V, C> {
        Keys::new(self.clone())
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
    pub fn values(&self) -> Values<K, V, C> {
        Values::new(self.clone())
    }

    /// Reads the values of several keys at once, in the order given, `None` for a key
    /// without a value. One `HMGET`: one round trip, one reply, within one `timeout`. No
    /// round trip for no keys.
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
        let replies = self.engine.read_fields(&fields)?;
        fields
            .iter()
            .zip(replies)
            .map(|(field, bytes)| bytes.map_or(Ok(None), |b| self.decode_value_or_miss(field, &b)))
            .collect()
    }

    /// Inserts every entry of `entries`, replacing existing values, and applies the TTL;
    /// returns how many keys were new. One `HSET` of up to 4,096 pairs per round trip (with a
    /// TTL: a script running the `HSET`s and `PEXPIRE`), each round trip atomic and with its
    /// own `timeout`; no round trip for no entries. Memory is bounded by one round trip's
    /// worth of entries, so `entries` can be a long stream.
    ///
    /// Accepts borrowed forms (`extend([("ada", 36)])` on a `DictCache<String, u32>`): see
    /// [`EncodesAs`]. A large `extend` is not atomic as a whole: readers may see part of it,
    /// and when a round trip fails the ones before it are stored.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] (nothing of the failing round trip is
    /// sent, earlier ones are stored); [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let new = c.extend([("ada", 36), ("alan", 41)])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn extend<I, KQ, VQ>(&self, entries: I) -> Result<usize>
    where
        I: IntoIterator<Item = (KQ, VQ)>,
        KQ: EncodesAs<K>,
        VQ: EncodesAs<V>,
    {
        let mut call = self.engine.call()?;
        let mut added = 0;
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (key, value) in entries {
            batch.push((self.field(&key)?, self.value(&value)?));
            if batch.len() == PAIRS_PER_ROUND_TRIP {
                added += self.send_hset(&mut call, &batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            added += self.send_hset(&mut call, &batch)?;
        }
        Ok(added)
    }

    fn send_hset(&self, call: &mut Call, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<usize> {
        call.next_batch();
        self.engine.write(
            call,
            "HSET",
            |cmd| {
                for (field, value) in pairs {
                    cmd.arg(field).arg(value);
                }
            },
            Retry::Idempotent,
        )
    }

    /// Returns the value of `key`, or computes one with `f`, stores it unless another writer
    /// got there first, and returns whichever value the hash holds then. `HGET`; on a miss a
    /// script (`HSETNX`,
    /// `HGET`, (`PEXPIRE`)): one round trip on a hit, two on a miss.
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
        let stale = match ops::get(&self.engine, &field)? {
            Some(b) => match self.decode_value_or_miss(&field, &b)? {
                Some(v) => return Ok(v),
                None => true,
            },
            None => false,
        };
        let value = f();
        let encoded = self.value(&value)?;
        if stale {
            // Another shape, read as missing: written over (`HSETNX` would keep it).
            ops::set(&self.engine, &field, &encoded)?;
            return Ok(value);
        }
        let stored = ops::get_or_insert(&self.engine, &field, &encoded)?;
        match stored {
            Some(b) if b != encoded => match self.decode_value_or_miss(&field, &b)? {
                Some(v) => Ok(v),
                None => {
                    ops::set(&self.engine, &field, &encoded)?;
                    Ok(value)
                }
            },
            _ => Ok(value),
        }
    }

    /// Removes an entry chosen at random and returns it, `None` when the map is empty;
    /// applies the TTL. One script (`HRANDFIELD`, `HGET`, `HDEL`, (`PEXPIRE`)), atomic:
    /// concurrent callers never get the same entry. One round trip. Not sent again after a
    /// lost reply: [`Error::OutcomeUnknown`].
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
        // An entry of another shape read as missing is removed all the same; the next one
        // is popped.
        while let Some((field, value)) = ops::pop(&self.engine)? {
            if let Some(entry) = self.decode_entry(&field, &value)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
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
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&self.engine.resolved()?.key);
        let raw: HashMap<Vec<u8>, Vec<u8>> = self.engine.query(&cmd, Retry::Idempotent)?;
        raw.iter()
            .filter(|(field, _)| !self.hides(field))
            .filter_map(|(field, value)| self.decode_entry(field, value).transpose())
            .collect()
    }

    crate::handle::key_methods! {
        handle: "redis_caches::DictCache::<String, u32>::new(\"ages\")",
        exists: "Whether the key exists (a hash exists while it has at least one entry).",
        clear: "Deletes the whole hash; true when it existed.",
        ttl: "The hash's remaining time to live.",
        expire: "Sets the hash's time to live now; false when the key does not exist.",
    }

    /// Encodes a key into its hash field by the field rule (plain text for strings and
    /// integers, see [`codec`](crate::codec#fields-and-members)).
    fn field<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        self.engine.encode_field(self.key_tag(), key)
    }

    fn value<R: Serialize + ?Sized>(&self, value: &R) -> Result<Vec<u8>> {
        self.engine.encode_item(self.value_tag(), value)
    }

    fn key_tag(&self) -> &crate::codec::TypeTag {
        self.tags.key.get::<K>(self.engine.schema_version())
    }

    fn value_tag(&self) -> &crate::codec::TypeTag {
        self.tags.value.get::<V>(self.engine.schema_version())
    }

    /// The value, `None` for one of another shape under [`OtherShape::Miss`](crate::OtherShape::Miss).
    fn decode_value_or_miss(&self, field: &[u8], bytes: &[u8]) -> Result<Option<V>> {
        self.engine.decode_or_miss(self.value_tag(), bytes, || {
            field_label(&self.engine.key_for_errors(), field)
        })
    }

    /// Decodes a hash field back into its key (the field rule).
    fn decode_key(&self, field: &[u8]) -> Result<K> {
        self.engine.decode_field(self.key_tag(), field, || {
            format!(
                "{} (the field itself)",
                field_label(&self.engine.key_for_errors(), field)
            )
        })
    }

    /// Whether `field` is the layout's bookkeeping (region-cache's marker), not an entry.
    fn hides(&self, field: &[u8]) -> bool {
        self.engine.options.layout.hides_field(field)
    }

    /// The entry, `None` for a value of another shape read as missing.
    fn decode_entry(&self, field: &[u8], value: &[u8]) -> Result<Option<(K, V)>> {
        let key = self.decode_key(field)?;
        Ok(self.decode_value_or_miss(field, value)?.map(|v| (key, v)))
    }
}

impl<K, V, C> DictCache<K, V, C>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Counter,
    C: CounterCodec,
{
    /// Adds `by` to the count stored for `key` atomically and returns the new count; a
    /// missing entry counts as 0. `HINCRBY` (`HINCRBYFLOAT` for `f32`/`f64`); with a TTL or
    /// TTL policy, in the write script that applies it, so that a refused increment changes
    /// nothing. One round trip.
    ///
    /// Only on counters, whose values are stored as plain decimal text: `Raw`, `PythonText`,
    /// or `PythonJson` for a pottery `RedisCounter` (see [`Layout::Pottery`](crate::Layout)).
    ///
    /// Not idempotent: when the reply is lost the crate does not send it again, and the call
    /// fails with [`Error::OutcomeUnknown`] (the increment may or may not have counted).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `key` cannot be encoded or `by` does not fit an `i64` (or is not
    /// finite), before anything is sent; [`Error::Decode`] when the new count does not fit `V`
    /// (it is stored even then); [`Error::Redis`] when the stored value is not a number or the
    /// sum overflows (the value is left unchanged); [`Error::WrongType`];
    /// [`Error::OutcomeUnknown`]; connection errors.
    ///
    /// ```no_run
    /// use redis_caches::{DictCache, codec::Raw};
    /// let words: DictCache<String, i64, Raw> = DictCache::builder("words").codec(Raw).build();
    /// let n = words.incr("apple", 1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn incr<Q>(&self, key: &Q, by: V) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.add(key, by, false)
    }

    /// Subtracts `by` from the count stored for `key` atomically and returns the new count.
    /// `HINCRBY key field -by` (in the write script when there is a TTL), one round trip. See
    /// [`incr`](DictCache::incr).
    ///
    /// # Errors
    ///
    /// As [`incr`](DictCache::incr).
    ///
    /// ```no_run
    /// use redis_caches::{DictCache, codec::Raw};
    /// let stock: DictCache<String, i64, Raw> = DictCache::builder("stock").codec(Raw).build();
    /// let left = stock.decr("apples", 1)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn decr<Q>(&self, key: &Q, by: V) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.add(key, by, true)
    }

    fn add<Q: Serialize + ?Sized>(&self, key: &Q, by: V, negate: bool) -> Result<V> {
        let field = self.field(key)?;
        let label = || field_label(&self.engine.key_for_errors(), &field);
        let by = counter_step(by, negate, label)?;
        let command = if V::COMMAND == "INCRBY" {
            "HINCRBY"
        } else {
            "HINCRBYFLOAT"
        };
        let mut call = self.engine.call()?;
        let reply: redis::Value = self.engine.write(
            &mut call,
            command,
            |cmd| {
                cmd.arg(&field).arg(&by);
            },
            Retry::Once,
        )?;
        counter_reply(reply, label)
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
        pub struct $name<K, V, C = Postcard> {
            dict: DictCache<K, V, C>,
            pages: Pages<u64, (Vec<u8>, Vec<u8>)>,
        }

        impl<K, V, C> $name<K, V, C> {
            fn new(dict: DictCache<K, V, C>) -> Self {
                $name {
                    dict,
                    pages: Pages::new(0),
                }
            }
        }

        impl<K, V, C> Iterator for $name<K, V, C>
        where
            K: Serialize + DeserializeOwned + 'static,
            V: Serialize + DeserializeOwned + 'static,
            C: Codec,
        {
            type Item = Result<$item>;

            fn next(&mut self) -> Option<Self::Item> {
                loop {
                    let $dict = &self.dict;
                    let raw = self
                        .pages
                        .next(|cursor| scan_page(&$dict.engine, "HSCAN", cursor, SCAN_BATCH))?;
                    if matches!(&raw, Ok((field, _)) if $dict.hides(field)) {
                        continue;
                    }
                    // `None`: a value of another shape read as missing, left out.
                    match raw.and_then(|($field, $value)| $decode) {
                        Ok(Some(item)) => return Some(Ok(item)),
                        Ok(None) => {}
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }

        impl<K, V, C> FusedIterator for $name<K, V, C>
        where
            K: Serialize + DeserializeOwned + 'static,
            V: Serialize + DeserializeOwned + 'static,
            C: Codec,
        {
        }

        impl<K, V, C: Codec> fmt::Debug for $name<K, V, C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("dict", &self.dict)
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
    Keys yields K, |dict, field, _value| dict.decode_key(&field).map(Some)
}

dict_iterator! {
    /// The values of a [`DictCache`], streamed with `HSCAN`: see [`DictCache::values`].
    ///
    /// ```no_run
    /// let c: redis_caches::DictCache<String, u32> = redis_caches::DictCache::new("ages");
    /// let oldest = c.values().collect::<Result<Vec<_>, _>>()?.into_iter().max();
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    Values yields V, |dict, field, value| dict.decode_value_or_miss(&field, &value)
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
impl<K, V, C> IntoIterator for &DictCache<K, V, C>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<K, V, C>;

    fn into_iter(self) -> Iter<K, V, C> {
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
