//! [`SetCache<T>`]: a typed Redis set, with the set algebra of `SUNION`/`SINTER`/`SDIFF`.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use once_cell::sync::Lazy;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::EncodesAs;
use crate::codec::{Codec, LazyTag, Postcard};
use crate::connection::Retry;
use crate::engine::{Engine, Pages, Script, scan_page};
use crate::error::{Error, Result};
use crate::key::IntoKey;
use crate::near::Point;
use crate::options::Builder;

/// How many members one `SSCAN` page asks for, and one `SADD` of [`SetCache::extend`] sends.
const BATCH: usize = 1000;

/// A typed set stored under one Redis key (a Redis set), like a `HashSet<T>` that every
/// thread and process shares.
///
/// Members that are strings or integers are stored as their plain text (`rust`, `42`), so
/// `SISMEMBER key rust` works from any client; other members are encoded by the codec (see
/// [fields and members](crate::codec#fields-and-members)). Two values are the same member
/// when their stored bytes are equal. The handle is a view of shared remote state: cheap to clone,
/// `Send + Sync`, every method takes `&self`, nothing is cached in the process.
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`insert`](SetCache::insert) | `SADD` (with a TTL: a script, `SADD`, `PEXPIRE`) | 1 | resent |
/// | [`remove`](SetCache::remove) | `SREM` (with a TTL: a script, `SREM`, `PEXPIRE`) | 1 | resent |
/// | [`pop`](SetCache::pop) | `SPOP` (with a TTL: a script, `SPOP`, `PEXPIRE`) | 1 | `OutcomeUnknown` |
/// | [`contains`](SetCache::contains) | `SISMEMBER` | 1 | resent |
/// | [`len`](SetCache::len), [`is_empty`](SetCache::is_empty) | `SCARD` | 1 | resent |
/// | [`iter`](SetCache::iter), [`to_hash_set`](SetCache::to_hash_set) | `SSCAN`, 1,000 members a page | 1 per page | resent |
/// | [`extend`](SetCache::extend) | one `SADD` per 1,000 members (with a TTL: a script, `SADD`, `PEXPIRE`) | 1 per 1,000 | resent |
/// | [`union`](SetCache::union), [`intersection`](SetCache::intersection), [`difference`](SetCache::difference), [`symmetric_difference`](SetCache::symmetric_difference) | `SUNION`, `SINTER`, `SDIFF`; a script for the symmetric difference | 1 | resent |
/// | [`union_store`](SetCache::union_store), [`intersection_store`](SetCache::intersection_store), [`difference_store`](SetCache::difference_store) | a script: `SUNIONSTORE`, `SINTERSTORE`, `SDIFFSTORE`, and the destination's `PEXPIRE` | 1 | resent |
/// | [`is_subset`](SetCache::is_subset), [`is_superset`](SetCache::is_superset) | a script: `SCARD`, `SMEMBERS`, `SMISMEMBER` | 1 | resent |
/// | [`exists`](SetCache::exists), [`clear`](SetCache::clear), [`ttl`](SetCache::ttl), [`expire`](SetCache::expire) | `EXISTS`, `DEL`, `PTTL`, `PEXPIRE` | 1 | resent |
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
    engine: Arc<Engine<C>>,
    tag: Arc<LazyTag>,
    _member: PhantomData<fn() -> T>,
}

crate::handle::collection_handle! {
    SetCache[T],
    redis_type: "set",
    extra: (),
    clone: { engine, tag, _member },
    from_engine: |engine, ()| SetCache {
        engine: Arc::new(engine),
        tag: Arc::new(LazyTag::default()),
        _member: PhantomData,
    },
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
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    /// Adds `value`; true when it was not in the set yet (like `HashSet::insert`). `SADD`
    /// (with a TTL: a script running `SADD` and `PEXPIRE`), one round trip. Idempotent: sent
    /// again after a lost reply, within the call's deadline (it then says `false`).
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
        self.write_one("SADD", &bytes, Retry::Idempotent)
    }

    /// Removes `value`; true when it was in the set. `SREM` (with a TTL: a script running
    /// `SREM` and `PEXPIRE`), one round trip. Idempotent.
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
        self.write_one("SREM", &bytes, Retry::Idempotent)
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
        self.engine
            .read_point(Point::Member(&bytes))
            .map(|v| v.is_some())
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
        let mut cmd = redis::cmd("SCARD");
        cmd.arg(&self.engine.resolved()?.key);
        self.engine.query(&cmd, Retry::Idempotent)
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

    /// Removes and returns a random member, or `None` when the set is empty. `SPOP` (with a
    /// TTL: a script running `SPOP` and `PEXPIRE`), one round trip. Not sent again after a
    /// lost reply: [`Error::OutcomeUnknown`] (the member may be gone).
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
        let popped: Option<Vec<u8>> =
            self.engine
                .write(&mut self.engine.call()?, "SPOP", |_| {}, Retry::Once)?;
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
    /// iterator ends. If the set is deleted, or expires, during the iteration, the
    /// iteration ends early without an error: the next `SSCAN` finds no key.
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
            pages: Pages::new(0),
        }
    }

    /// Adds every item; returns how many of them were new. One `SADD` per 1,000 items (with a
    /// TTL: a script running it and `PEXPIRE`): one round trip per 1,000 items, each with its
    /// own `timeout`, none when `items` is empty. Memory stays bounded by one batch. Accepts
    /// borrowed forms (`extend(["a", "b"])` on a `SetCache<String>`): see [`EncodesAs`].
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
    /// let tags: redis_caches::SetCache<String> = redis_caches::SetCache::new("tags");
    /// tags.extend(["rust", "redis"])?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn extend<I>(&self, items: I) -> Result<usize>
    where
        I: IntoIterator,
        I::Item: EncodesAs<T>,
    {
        let mut call = self.engine.call()?;
        let mut added = 0;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch = items
                .by_ref()
                .take(BATCH)
                .map(|item| self.encode(&item))
                .collect::<Result<Vec<_>>>()?;
            call.next_batch();
            let n: usize = self.engine.write(
                &mut call,
                "SADD",
                |cmd| {
                    cmd.arg(&batch);
                },
                Retry::Idempotent,
            )?;
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
    /// returns its new size. A script running `SUNIONSTORE` and the destination's
    /// `PEXPIRE` (when it has a TTL), one round trip, whatever the sizes.
    ///
    /// The destination's members are replaced, so it is a new key: it gets its own TTL
    /// afresh under either [policy](crate::TtlPolicy). An empty result deletes it. The
    /// destination may be one of the sources; it must hold a set or nothing (a key of
    /// another type is refused with [`Error::WrongType`] and left alone).
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
    /// and returns its new size. A script running `SINTERSTORE` and the destination's
    /// `PEXPIRE`, one round trip. See [`union_store`](SetCache::union_store).
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
    /// inside Redis, and returns its new size. A script running `SDIFFSTORE` and the
    /// destination's `PEXPIRE`, one round trip. See [`union_store`](SetCache::union_store).
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

    /// The members in exactly one of this set and `other`. A script running `SDIFF` both
    /// ways, one round trip.
    ///
    /// # Errors
    ///
    /// As [`union`](SetCache::union).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let a: SetCache<u32> = SetCache::new("a");
    /// let b: SetCache<u32> = SetCache::new("b");
    /// let in_one = a.symmetric_difference(&b)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn symmetric_difference(&self, other: &SetCache<T, C>) -> Result<HashSet<T>>
    where
        T: Eq + Hash,
    {
        let keys = self.keys_of([other])?;
        let own = &self.engine.resolved()?.key;
        let members: Vec<Vec<u8>> = self
            .engine
            .eval(
                &SYMMETRIC_DIFFERENCE,
                2,
                |cmd| {
                    cmd.arg(own).arg(&keys);
                },
                Retry::Idempotent,
            )
            .map_err(|e| self.blame_wrong_type(e, &keys))?;
        members.iter().map(|b| self.decode(b)).collect()
    }

    /// Whether every member of this set is in `other` (an empty set is a subset of any).
    /// A script (`SCARD` both, then `SMEMBERS` and `SMISMEMBER` in batches of 1,000), one
    /// round trip; the server's work grows with this set's size.
    ///
    /// # Errors
    ///
    /// As [`union`](SetCache::union).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let admins: SetCache<String> = SetCache::new("admins");
    /// let users: SetCache<String> = SetCache::new("users");
    /// assert!(admins.is_subset(&users)?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_subset(&self, other: &SetCache<T, C>) -> Result<bool> {
        let keys = self.keys_of([other])?;
        let own = &self.engine.resolved()?.key;
        let n: i64 = self
            .engine
            .eval(
                &IS_SUBSET,
                2,
                |cmd| {
                    cmd.arg(own).arg(&keys);
                },
                Retry::Idempotent,
            )
            .map_err(|e| self.blame_wrong_type(e, &keys))?;
        Ok(n == 1)
    }

    /// Whether every member of `other` is in this set: `other.is_subset(self)`.
    ///
    /// # Errors
    ///
    /// As [`is_subset`](SetCache::is_subset).
    ///
    /// ```no_run
    /// use redis_caches::SetCache;
    /// let users: SetCache<String> = SetCache::new("users");
    /// let admins: SetCache<String> = SetCache::new("admins");
    /// assert!(users.is_superset(&admins)?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_superset(&self, other: &SetCache<T, C>) -> Result<bool> {
        other.is_subset(self)
    }

    crate::handle::key_methods! {
        handle: "redis_caches::SetCache::<u8>::new(\"k\")",
        exists: "Whether the key exists (an empty set does not: Redis deletes it).",
        clear: "Deletes the whole set; true when it existed.",
        ttl: "The key's remaining time to live.",
        expire: "Sets the key's time to live now; false when the key does not exist.",
    }

    /// Encodes a member by the field rule (plain text for strings and integers, see
    /// [`codec`](crate::codec#fields-and-members)).
    fn encode<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<Vec<u8>> {
        self.engine.encode_member(self.tag(), value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        self.engine
            .decode_member(self.tag(), bytes, || self.engine.key_for_errors())
    }

    fn tag(&self) -> &crate::codec::TypeTag {
        self.tag.get::<T>(self.engine.schema_version())
    }

    /// `SADD`/`SREM key member` with the TTL; true when the reply is 1.
    fn write_one(&self, command: &str, member: &[u8], retry: Retry) -> Result<bool> {
        self.engine.write(
            &mut self.engine.call()?,
            command,
            |cmd| {
                cmd.arg(member);
            },
            retry,
        )
    }

    /// The full keys of `others`, checked to be on this set's database.
    fn keys_of<'a>(
        &self,
        others: impl IntoIterator<Item = &'a SetCache<T, C>>,
    ) -> Result<Vec<String>>
    where
        T: 'a,
    {
        let own = self.engine.resolved()?;
        others
            .into_iter()
            .map(|other| {
                let theirs = other.engine.resolved()?;
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
        let mut cmd = redis::cmd(op.command());
        cmd.arg(&self.engine.resolved()?.key).arg(&keys);
        let members: Vec<Vec<u8>> = self
            .engine
            .query(&cmd, Retry::Idempotent)
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
        destination.engine.resolved()?;
        let own = &self.engine.resolved()?.key;
        self.engine
            .eval(
                &STORE,
                2 + keys.len(),
                |cmd| {
                    cmd.arg(&dest).arg(own).arg(&keys);
                    destination.engine.ttl_args(cmd);
                    cmd.arg(op.store_command());
                },
                Retry::Idempotent,
            )
            .map_err(|e| {
                self.blame_wrong_type(e, &[std::slice::from_ref(&dest), &keys[..]].concat())
            })
    }

    /// `Engine` names this set's key in [`Error::WrongType`]; when this key is fine (a set,
    /// or missing), finds which of `others` is not a set (one more round trip per key, on
    /// this error path only).
    fn blame_wrong_type(&self, error: Error, others: &[String]) -> Error {
        let Error::WrongType { found, .. } = &error else {
            return error;
        };
        if found != "set" && found != "none" {
            return error;
        }
        for key in others {
            let mut cmd = redis::cmd("TYPE");
            cmd.arg(key);
            if let Ok(found) = self.engine.query::<String>(&cmd, Retry::Idempotent)
                && found != "set"
                && found != "none"
            {
                return Error::WrongType {
                    key: key.clone(),
                    expected: "set",
                    found,
                };
            }
        }
        error
    }
}

/// `SUNIONSTORE`/`SINTERSTORE`/`SDIFFSTORE` into `KEYS[1]` from `KEYS[2..]`, then the
/// destination's TTL. `ARGV`: the destination's type, ttl and policy, the command. The
/// destination must hold a set or nothing: a key of another type is left alone.
static STORE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _wrongtype(KEYS[1], 'set') or _may(ARGV[4], unpack(KEYS)) or _may_expire(KEYS[1], ARGV[2], ARGV[3])
if e then return e end
local n = redis.call(ARGV[4], unpack(KEYS))
_expire(KEYS[1], ARGV[2], ARGV[3])
return n
",
    )
});

/// The members of `KEYS[1]` not in `KEYS[2]`, then those of `KEYS[2]` not in `KEYS[1]`.
static SYMMETRIC_DIFFERENCE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _may('SDIFF', KEYS[1], KEYS[2])
if e then return e end
local out = redis.call('SDIFF', KEYS[1], KEYS[2])
for _, m in ipairs(redis.call('SDIFF', KEYS[2], KEYS[1])) do
  out[#out + 1] = m
end
return out
",
    )
});

/// 1 when every member of `KEYS[1]` is in `KEYS[2]` (`SMISMEMBER` exists from Redis 6.2).
static IS_SUBSET: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _may('SCARD', KEYS[1]) or _may('SCARD', KEYS[2]) or _may('SMEMBERS', KEYS[1])
  or _may('SMISMEMBER', KEYS[2], 'm')
if e then return e end
local n = redis.call('SCARD', KEYS[1])
if n == 0 then return 1 end
if n > redis.call('SCARD', KEYS[2]) then return 0 end
local members = redis.call('SMEMBERS', KEYS[1])
for i = 1, #members, 1000 do
  local found = redis.call('SMISMEMBER', KEYS[2], unpack(members, i, math.min(i + 999, #members)))
  for _, f in ipairs(found) do
    if f == 0 then return 0 end
  end
end
return 1
",
    )
});

/// The iterator of [`SetCache::iter`]: members streamed with `SSCAN`, one page at a time.
///
/// Holds a clone of the handle, so it does not borrow the set.
pub struct Iter<T, C = Postcard> {
    set: SetCache<T, C>,
    /// Members read ahead, and the next `SSCAN` cursor.
    pages: Pages<u64, Vec<u8>>,
}

impl<T, C: Codec> fmt::Debug for Iter<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("set", &self.set)
            .field("cursor", &self.pages.next_position())
            .field("buffered", &self.pages.buffered())
            .finish()
    }
}

impl<T, C> Iterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let set = &self.set;
        let raw = self
            .pages
            .next(|cursor| scan_page(&set.engine, "SSCAN", cursor, BATCH))?;
        Some(raw.and_then(|bytes| set.decode(&bytes)))
    }
}

impl<T, C> std::iter::FusedIterator for Iter<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
}

impl<T, C> IntoIterator for &SetCache<T, C>
where
    T: Serialize + DeserializeOwned + 'static,
    C: Codec,
{
    type Item = Result<T>;
    type IntoIter = Iter<T, C>;

    /// Same as [`SetCache::iter`].
    fn into_iter(self) -> Iter<T, C> {
        self.iter()
    }
}
