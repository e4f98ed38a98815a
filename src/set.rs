//! [`SetCache<T>`]: a typed Redis set, with the set algebra of `SUNION`/`SINTER`/`SDIFF`.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, TypeTag};
use crate::error::{Error, Result};
use crate::key::IntoKey;
use crate::options::{Builder, Collection, Core, Ttl, private};

/// How many members one `SSCAN` page asks for, and one `SADD` of [`SetCache::extend`] sends.
const BATCH: usize = 1000;

/// A typed set stored under one Redis key (a Redis set), like a `HashSet<T>` that every
/// thread and process shares.
///
/// Members are stored encoded by the codec, so two values are the same member when their
/// encoded bytes are equal. The handle is a view of shared remote state: cheap to clone,
/// `Send + Sync`, every method takes `&self`, nothing is cached in the process.
///
/// | Method | Redis commands | Round trips |
/// |---|---|---|
/// | [`insert`](SetCache::insert) | `SADD` (+ `PEXPIRE` in `MULTI`/`EXEC` with a TTL) | 1 |
/// | [`remove`](SetCache::remove) | `SREM` (+ `PEXPIRE` in `MULTI`/`EXEC` with a TTL) | 1 |
/// | [`pop`](SetCache::pop) | `SPOP` (+ `PEXPIRE` in `MULTI`/`EXEC` with a TTL) | 1 |
/// | [`contains`](SetCache::contains) | `SISMEMBER` | 1 |
/// | [`len`](SetCache::len), [`is_empty`](SetCache::is_empty) | `SCARD` | 1 |
/// | [`iter`](SetCache::iter), [`to_hash_set`](SetCache::to_hash_set) | `SSCAN`, 1,000 members a page | 1 per page |
/// | [`extend`](SetCache::extend) | one `SADD` per 1,000 members (+ `PEXPIRE` in `MULTI`/`EXEC` with a TTL) | 1 per 1,000 |
/// | [`union`](SetCache::union), [`intersection`](SetCache::intersection), [`difference`](SetCache::difference) | `SUNION`, `SINTER`, `SDIFF` | 1 |
/// | [`union_store`](SetCache::union_store), [`intersection_store`](SetCache::intersection_store), [`difference_store`](SetCache::difference_store) | `SUNIONSTORE`, `SINTERSTORE`, `SDIFFSTORE` (+ `PEXPIRE` of the destination in `MULTI`/`EXEC`) | 1 |
/// | [`exists`](SetCache::exists), [`clear`](SetCache::clear), [`ttl`](SetCache::ttl), [`expire`](SetCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 |
///
/// Every write ([`insert`](SetCache::insert), [`remove`](SetCache::remove),
/// [`pop`](SetCache::pop), [`extend`](SetCache::extend), the `*_store` forms on their
/// destination) applies the [TTL](Builder::ttl) as the [policy](crate::TtlPolicy) says, in the
/// same round trip.
///
/// # Example
///
/// ```no_run
/// use redis_caches::SetCache;
///
/// let tags: SetCache<String> = SetCache::new(("post", 7, "tags"));
/// assert!(tags.insert("rust")?);
/// assert!(!tags.insert("rust")?); // already there
/// tags.extend(["redis".to_string(), "cache".to_string()])?;
/// assert!(tags.contains("redis")?);
/// assert_eq!(tags.len()?, 3);
/// for tag in &tags {
///     println!("{}", tag?);
/// }
/// # Ok::<(), redis_caches::Error>(())
/// ```
///
/// # Example: set algebra
///
/// ```no_run
/// use redis_caches::SetCache;
///
/// let alice: SetCache<u32> = SetCache::new(["likes", "alice"]);
/// let bob: SetCache<u32> = SetCache::new(["likes", "bob"]);
/// alice.extend([1, 2, 3])?;
/// bob.extend([2, 3, 4])?;
/// let both = alice.intersection([&bob])?;
/// assert_eq!(both, [2, 3].into_iter().collect());
///
/// // Store the result under another key, in Redis, without a round trip per member.
/// let common: SetCache<u32> = SetCache::new(["likes", "common"]);
/// assert_eq!(alice.intersection_store([&bob], &common)?, 2);
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct SetCache<T, C = Postcard> {
    core: Arc<Core<C>>,
    tag: Arc<TypeTag>,
    _member: PhantomData<fn() -> T>,
}

impl<T, C> Clone for SetCache<T, C> {
    fn clone(&self) -> Self {
        SetCache {
            core: self.core.clone(),
            tag: self.tag.clone(),
            _member: PhantomData,
        }
    }
}

impl<T, C: Codec> fmt::Debug for SetCache<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.describe(f, "SetCache")
    }
}

impl<T, C> private::Sealed for SetCache<T, C> {}

impl<T, C: Codec> Collection for SetCache<T, C> {
    type Codec = C;
    type Extra = ();
    type WithCodec<C2: Codec> = SetCache<T, C2>;
    const REDIS_TYPE: &'static str = "set";

    fn from_core(core: Core<C>, _extra: ()) -> Self {
        SetCache {
            core: Arc::new(core),
            tag: Arc::new(TypeTag::of::<T>()),
            _member: PhantomData,
        }
    }
}

impl<T> SetCache<T> {
    /// A handle for the set at `key`, on the default connection, postcard-encoded, without a
    /// TTL. No I/O.
    ///
    /// ```
    /// let s: redis_caches::SetCache<String> = redis_caches::SetCache::new(("user", 7, "roles"));
    /// # let _ = s;
    /// ```
    pub fn new(key: impl IntoKey) -> Self {
        Self::builder(key).build()
    }

    /// A [`Builder`] for the set at `key`, to set the connection, prefix, TTL or codec.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = redis_caches::SetCache::<u64>::builder("online").ttl(Duration::from_secs(60)).build();
    /// # let _ = s;
    /// ```
    pub fn builder(key: impl IntoKey) -> Builder<Self> {
        Builder::new(key)
    }
}

/// The kind of set algebra command.
#[derive(Clone, Copy)]
enum Algebra {
    Union,
    Intersection,
    Difference,
}

impl Algebra {
    fn command(self) -> &'static str {
        match self {
            Algebra::Union => "SUNION",
            Algebra::Intersection => "SINTER",
            Algebra::Difference => "SDIFF",
        }
    }

    fn store_command(self) -> &'static str {
        match self {
            Algebra::Union => "SUNIONSTORE",
            Algebra::Intersection => "SINTERSTORE",
            Algebra::Difference => "SDIFFSTORE",
        }
    }
}

impl<T, C> SetCache<T, C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    /// Adds `value`; true when it was not in the set yet (like `HashSet::insert`). `SADD`
    /// (+ `PEXPIRE` in `MULTI`/`EXEC` with a TTL), one round trip.
    ///
    /// Accepts borrowed forms: `insert("x")` on a `SetCache<String>`. Concurrent inserts of
    /// the same value from several threads or processes: exactly one of them gets `true`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`] when the key holds
    /// another Redis type, connection errors.
    ///
    /// ```no_run
    /// let seen: redis_caches::SetCache<String> = redis_caches::SetCache::new("seen");
    /// if seen.insert("order-17")? {
    ///     println!("first time");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn insert<Q>(&self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(value)?;
        self.write_one("SADD", &bytes)
    }

    /// Removes `value`; true when it was in the set. `SREM` (+ `PEXPIRE` in `MULTI`/`EXEC`
    /// with a TTL), one round trip.
    ///
    /// # Errors
    ///
    /// As [`insert`](SetCache::insert).
    ///
    /// ```no_run
    /// let seen: redis_caches::SetCache<String> = redis_caches::SetCache::new("seen");
    /// let was_there = seen.remove("order-17")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<Q>(&self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(value)?;
        self.write_one("SREM", &bytes)
    }

    /// Whether `value` is in the set. `SISMEMBER`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let seen: redis_caches::SetCache<String> = redis_caches::SetCache::new("seen");
    /// let known = seen.contains("order-17")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains<Q>(&self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.encode(value)?;
        self.core
            .run(|c, k| redis::cmd("SISMEMBER").arg(k).arg(&bytes).query(c))
    }

    /// The number of members. `SCARD`, one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let online: redis_caches::SetCache<u64> = redis_caches::SetCache::new("online");
    /// println!("{} users online", online.len()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.core.run(|c, k| redis::cmd("SCARD").arg(k).query(c))
    }

    /// Whether the set has no members (a missing key is an empty set). `SCARD`, one round
    /// trip.
    ///
    /// # Errors
    ///
    /// As [`len`](SetCache::len).
    ///
    /// ```no_run
    /// let online: redis_caches::SetCache<u64> = redis_caches::SetCache::new("online");
    /// if online.is_empty()? { println!("nobody here"); }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes and returns a random member, or `None` when the set is empty. `SPOP` (+
    /// `PEXPIRE` in `MULTI`/`EXEC` with a TTL), one round trip.
    ///
    /// If several threads or processes pop at once, each member goes to exactly one of them,
    /// which makes the set a simple work pool.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the key when the popped bytes are not a `T` of this codec
    /// (the member is removed all the same); [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let jobs: redis_caches::SetCache<u32> = redis_caches::SetCache::new("jobs");
    /// while let Some(job) = jobs.pop()? {
    ///     println!("working on {job}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Option<T>> {
        let popped: Option<Vec<u8>> = self.core.run(|c, k| {
            if self.core.has_ttl() {
                let mut pipe = self.core.write_pipe();
                pipe.cmd("SPOP").arg(k);
                self.core.add_ttl(&mut pipe, k);
                pipe.query::<(Option<Vec<u8>>,)>(c).map(|(v,)| v)
            } else {
                redis::cmd("SPOP").arg(k).query(c)
            }
        })?;
        popped.map(|b| self.decode(&b)).transpose()
    }

    /// Iterates over the members, streaming them with `SSCAN` in pages of about 1,000, so
    /// memory stays bounded whatever the size of the set. One round trip per page; the first
    /// one happens at the first `next()`.
    ///
    /// `SSCAN`'s guarantees apply: a member present during the whole iteration is yielded,
    /// one added or removed meanwhile may or may not be, and a member can be yielded twice
    /// if Redis resizes the set during the iteration. Use
    /// [`to_hash_set`](SetCache::to_hash_set) when duplicates matter. After an error the
    /// iterator ends.
    ///
    /// # Errors
    ///
    /// Each item is a `Result`: [`Error::Decode`] naming the key for a member this codec did
    /// not write for `T`; [`Error::WrongType`]; connection errors.
    ///
    /// ```no_run
    /// let tags: redis_caches::SetCache<String> = redis_caches::SetCache::new("tags");
    /// for tag in tags.iter() {
    ///     println!("{}", tag?);
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<T, C> {
        Iter {
            set: self.clone(),
            cursor: Some(0),
            buffer: VecDeque::new(),
        }
    }

    /// Adds every item; returns how many of them were new. One `SADD` per 1,000 items (+
    /// `PEXPIRE` in `MULTI`/`EXEC` with a TTL): one round trip per 1,000 items, none when
    /// `items` is empty. Memory stays bounded by one batch.
    ///
    /// The TTL rides along with every batch, so the key never exists without its TTL, and
    /// under [`TtlPolicy::Refresh`](crate::TtlPolicy::Refresh) it counts from the last batch.
    /// Each batch is atomic on its own, not the whole call: when a batch fails (an item that
    /// does not encode, a lost connection), the batches before it are stored.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`] (nothing of that batch is sent),
    /// [`Error::WrongType`], connection errors.
    ///
    /// ```no_run
    /// let ids: redis_caches::SetCache<u64> = redis_caches::SetCache::new("ids");
    /// let added = ids.extend(1..=10_000)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn extend<I>(&self, items: I) -> Result<usize>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let mut added = 0;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch = items
                .by_ref()
                .take(BATCH)
                .map(|item| self.encode(item.borrow()))
                .collect::<Result<Vec<_>>>()?;
            let n: usize = self.core.run(|c, k| {
                let mut pipe = self.core.write_pipe();
                pipe.cmd("SADD").arg(k).arg(&batch);
                self.core.add_ttl(&mut pipe, k);
                pipe.query::<(usize,)>(c).map(|(n,)| n)
            })?;
            added += n;
        }
        Ok(added)
    }

    /// Copies the members into a `HashSet`, streaming them like [`iter`](SetCache::iter)
    /// (`SSCAN`, one round trip per 1,000 members). The copy does not follow later changes.
    ///
    /// # Errors
    ///
    /// As [`iter`](SetCache::iter): the first failing item's error.
    ///
    /// ```no_run
    /// let tags: redis_caches::SetCache<String> = redis_caches::SetCache::new("tags");
    /// let local: std::collections::HashSet<String> = tags.to_hash_set()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn to_hash_set(&self) -> Result<HashSet<T>>
    where
        T: Eq + Hash,
    {
        self.iter().collect()
    }

    /// The members in this set or in any of `others`. `SUNION`, one round trip; the result
    /// is read in one reply.
    ///
    /// All the sets must be on the same Redis database (the same connection, or connections
    /// to the same server and database number); the command sees them all at one instant.
    ///
    /// # Errors
    ///
    /// [`Error::MixedConnections`] (before anything is sent) when a set is on another
    /// database; [`Error::WrongType`] naming the first key that is not a set;
    /// [`Error::Decode`]; connection errors.
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let c: SetCache<u32> = SetCache::new("c");
    /// let all = a.union([&b, &c])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn union<'a, I>(&self, others: I) -> Result<HashSet<T>>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: Eq + Hash + 'a,
    {
        self.algebra(Algebra::Union, others)
    }

    /// The members in this set and in every one of `others`. `SINTER`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`union`](SetCache::union).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let both = a.intersection([&b])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn intersection<'a, I>(&self, others: I) -> Result<HashSet<T>>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: Eq + Hash + 'a,
    {
        self.algebra(Algebra::Intersection, others)
    }

    /// The members in this set and in none of `others`. `SDIFF`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`union`](SetCache::union).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let only_a = a.difference([&b])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn difference<'a, I>(&self, others: I) -> Result<HashSet<T>>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: Eq + Hash + 'a,
    {
        self.algebra(Algebra::Difference, others)
    }

    /// Replaces `destination` with the union of this set and `others`, inside Redis, and
    /// returns its new size. `SUNIONSTORE` (+ `PEXPIRE` of the destination in
    /// `MULTI`/`EXEC` when it has a TTL), one round trip, whatever the sizes.
    ///
    /// The destination is overwritten, whatever it held before, so it is a new key: it gets
    /// its own TTL afresh under either [policy](crate::TtlPolicy). An empty result deletes it.
    /// The destination may be one of the sources.
    ///
    /// # Errors
    ///
    /// As [`union`](SetCache::union); the destination must be on the same database too.
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let all: SetCache<u32> = SetCache::new("all");
    /// let n = a.union_store([&b], &all)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn union_store<'a, I>(&self, others: I, destination: &SetCache<T, C>) -> Result<usize>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: 'a,
    {
        self.algebra_store(Algebra::Union, others, destination)
    }

    /// Replaces `destination` with the intersection of this set and `others`, inside Redis,
    /// and returns its new size. `SINTERSTORE` (+ `PEXPIRE` of the destination in
    /// `MULTI`/`EXEC`), one round trip. See [`union_store`](SetCache::union_store).
    ///
    /// # Errors
    ///
    /// As [`union_store`](SetCache::union_store).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let both: SetCache<u32> = SetCache::new("both");
    /// let n = a.intersection_store([&b], &both)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn intersection_store<'a, I>(
        &self,
        others: I,
        destination: &SetCache<T, C>,
    ) -> Result<usize>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: 'a,
    {
        self.algebra_store(Algebra::Intersection, others, destination)
    }

    /// Replaces `destination` with the members of this set that are in none of `others`,
    /// inside Redis, and returns its new size. `SDIFFSTORE` (+ `PEXPIRE` of the destination
    /// in `MULTI`/`EXEC`), one round trip. See [`union_store`](SetCache::union_store).
    ///
    /// # Errors
    ///
    /// As [`union_store`](SetCache::union_store).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let only_a: SetCache<u32> = SetCache::new("only-a");
    /// let n = a.difference_store([&b], &only_a)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn difference_store<'a, I>(&self, others: I, destination: &SetCache<T, C>) -> Result<usize>
    where
        I: IntoIterator<Item = &'a SetCache<T, C>>,
        T: 'a,
    {
        self.algebra_store(Algebra::Difference, others, destination)
    }

    /// Whether the key exists (an empty set does not: Redis deletes it). `EXISTS`, one
    /// round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// # let s: redis_caches::SetCache<u8> = redis_caches::SetCache::new("k");
    /// let there = s.exists()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn exists(&self) -> Result<bool> {
        self.core.exists()
    }

    /// Deletes the whole set; true when it existed. `DEL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// # let s: redis_caches::SetCache<u8> = redis_caches::SetCache::new("k");
    /// s.clear()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn clear(&self) -> Result<bool> {
        self.core.clear()
    }

    /// The key's remaining time to live. `PTTL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// # let s: redis_caches::SetCache<u8> = redis_caches::SetCache::new("k");
    /// println!("{:?}", s.ttl()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn ttl(&self) -> Result<Ttl> {
        self.core.ttl()
    }

    /// Sets the key's time to live now; false when the key does not exist. `PEXPIRE`, one
    /// round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// # let s: redis_caches::SetCache<u8> = redis_caches::SetCache::new("k");
    /// s.expire(std::time::Duration::from_secs(10))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn expire(&self, ttl: Duration) -> Result<bool> {
        self.core.expire(ttl)
    }

    fn encode<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<Vec<u8>> {
        let key = &self.core.resolved()?.key;
        self.core.encode(&self.tag, value, key)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        self.core.decode(&self.tag, bytes, || {
            self.core
                .resolved()
                .map(|r| r.key.clone())
                .unwrap_or_default()
        })
    }

    /// `SADD`/`SREM key member` with the TTL; true when the reply is 1.
    fn write_one(&self, command: &str, member: &[u8]) -> Result<bool> {
        self.core.run(|c, k| {
            if self.core.has_ttl() {
                let mut pipe = self.core.write_pipe();
                pipe.cmd(command).arg(k).arg(member);
                self.core.add_ttl(&mut pipe, k);
                pipe.query::<(bool,)>(c).map(|(b,)| b)
            } else {
                redis::cmd(command).arg(k).arg(member).query(c)
            }
        })
    }

    /// The full keys of `others`, checked to be on this set's database.
    fn keys_of<'a>(
        &self,
        others: impl IntoIterator<Item = &'a SetCache<T, C>>,
    ) -> Result<Vec<String>>
    where
        T: 'a,
    {
        let own = self.core.resolved()?;
        others
            .into_iter()
            .map(|other| {
                let theirs = other.core.resolved()?;
                if own.connection.same_database(&theirs.connection) {
                    Ok(theirs.key.clone())
                } else {
                    Err(Error::MixedConnections {
                        key: own.key.clone(),
                        connection: own.connection.name().to_string(),
                        other_key: theirs.key.clone(),
                        other_connection: theirs.connection.name().to_string(),
                    })
                }
            })
            .collect()
    }

    fn algebra<'a>(
        &self,
        op: Algebra,
        others: impl IntoIterator<Item = &'a SetCache<T, C>>,
    ) -> Result<HashSet<T>>
    where
        T: Eq + Hash + 'a,
    {
        let keys = self.keys_of(others)?;
        let members: Vec<Vec<u8>> = self
            .core
            .run(|c, k| redis::cmd(op.command()).arg(k).arg(&keys).query(c))
            .map_err(|e| self.blame_wrong_type(e, &keys))?;
        members.iter().map(|b| self.decode(b)).collect()
    }

    fn algebra_store<'a>(
        &self,
        op: Algebra,
        others: impl IntoIterator<Item = &'a SetCache<T, C>>,
        destination: &SetCache<T, C>,
    ) -> Result<usize>
    where
        T: 'a,
    {
        let keys = self.keys_of(others)?;
        let dest = self.keys_of([destination])?.pop().unwrap_or_default();
        let dest_core = &destination.core;
        self.core
            .run(|c, k| {
                let mut pipe = dest_core.write_pipe();
                pipe.cmd(op.store_command()).arg(&dest).arg(k).arg(&keys);
                dest_core.add_ttl(&mut pipe, &dest);
                pipe.query::<(usize,)>(c).map(|(n,)| n)
            })
            .map_err(|e| self.blame_wrong_type(e, &keys))
    }

    /// `Core::run` names this set's key in [`Error::WrongType`]; when this key is fine (a set,
    /// or missing), finds which of `others` is not a set (one more round trip, on this error
    /// path only).
    fn blame_wrong_type(&self, error: Error, others: &[String]) -> Error {
        let Error::WrongType { found, .. } = &error else {
            return error;
        };
        if found != "set" && found != "none" {
            return error;
        }
        let types: Result<Vec<String>> = self.core.run(|c, _| {
            let mut pipe = redis::pipe();
            for key in others {
                pipe.cmd("TYPE").arg(key);
            }
            pipe.query(c)
        });
        match types {
            Ok(types) => others
                .iter()
                .zip(types)
                .find(|(_, t)| t != "set" && t != "none")
                .map(|(key, found)| Error::WrongType {
                    key: key.clone(),
                    expected: "set",
                    found,
                })
                .unwrap_or(error),
            Err(_) => error,
        }
    }
}

/// The iterator of [`SetCache::iter`]: members streamed with `SSCAN`, one page at a time.
///
/// Holds a clone of the handle, so it does not borrow the set.
pub struct Iter<T, C = Postcard> {
    set: SetCache<T, C>,
    /// The next `SSCAN` cursor; `None` once the scan is complete (or failed).
    cursor: Option<u64>,
    buffer: VecDeque<Vec<u8>>,
}

impl<T, C: Codec> fmt::Debug for Iter<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("set", &self.set)
            .field("cursor", &self.cursor)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl<T, C> Iterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(bytes) = self.buffer.pop_front() {
                return Some(self.set.decode(&bytes));
            }
            let cursor = self.cursor?;
            let page: Result<(u64, Vec<Vec<u8>>)> = self.set.core.run(|c, k| {
                redis::cmd("SSCAN")
                    .arg(k)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(BATCH)
                    .query(c)
            });
            match page {
                Ok((next, members)) => {
                    self.cursor = (next != 0).then_some(next);
                    self.buffer.extend(members);
                }
                Err(e) => {
                    self.cursor = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<T, C> std::iter::FusedIterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
}

impl<T, C> IntoIterator for &SetCache<T, C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    type Item = Result<T>;
    type IntoIter = Iter<T, C>;

    /// Same as [`SetCache::iter`].
    fn into_iter(self) -> Iter<T, C> {
        self.iter()
    }
}
