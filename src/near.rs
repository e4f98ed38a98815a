//! [`NearCache`]: hot reads served from process memory, kept correct by Redis'
//! server-assisted invalidation (`CLIENT TRACKING`, Redis 6 and later).
//!
//! # What it caches
//!
//! A handle built with [`near_cache`](crate::options::Builder::near_cache) (or on a
//! connection whose DSN has `near_cache=<entries>`) keeps a local copy of what these reads
//! return, and answers them from memory, without any command, until Redis says the key
//! changed:
//!
//! | Read | Copy kept for |
//! |---|---|
//! | [`RedisCache::get`](crate::RedisCache::get) | the key |
//! | [`DictCache::get`](crate::DictCache::get), [`contains_key`](crate::DictCache::contains_key), [`get_many`](crate::DictCache::get_many) | each field (`contains_key` shares `get`'s copy) |
//! | [`SetCache::contains`](crate::SetCache::contains) | each member |
//! | [`SortedSetCache::score`](crate::SortedSetCache::score) | each member |
//! | [`Memo::call`](crate::Memo::call), fresh hits ([`MemoBuilder::near_cache`](crate::MemoBuilder::near_cache)) | each result, until it turns stale (a [memo in a region](crate::Region::memo): until the result, its region or a region above it changes) |
//! | [`Region::get`](crate::Region::get), [`contains_key`](crate::Region::contains_key) (and `get`/`contains_key` of a region's [`dict`](crate::Region::dict) view) | each entry (`contains_key` shares `get`'s copy), until the entry, its region or any region above it changes |
//!
//! Absent values are cached too (a `None` is as good an answer as a value). Everything
//! else (iteration, counts, ranges, writes) goes to Redis as without a near cache, and so do
//! a region's [`get_many`](crate::DictCache::get_many) (through its `dict` view). A write through a handle of the same connection
//! makes the copies of its key unusable in this process as soon as its reply arrives (so a
//! process reads its own writes at once); other processes learn of it from Redis.
//!
//! ## Regions
//!
//! A region's entries live in the hash of its current generation, which a script finds
//! through the tree's hash and the map of each level (see the [key layout](crate::region)).
//! A miss runs one script on the tracking connection that checks that path, and returns the
//! hash's `PTTL` and the `HGET`, from one atomic step. Redis tracks every key a script
//! reads for the client that sent it, so the copy depends on all of them: the region's hash,
//! the tree's hash and every map on the way. Any change to one of them makes the copy
//! unusable: a write to the region (by any client), an invalidation of the region or of an
//! ancestor (which changes a map), a generation handed out anywhere in the tree (which changes
//! the tree's counter: a refill, never a wrong answer), the region's hash expiring. A
//! region's write through the crate makes the copies of the region's entries unusable in this
//! process at once, as for any other write; an invalidation, or a write that hands out
//! generations, also those of every region below the maps it changes. A copy of an entry
//! of a region without a generation (a `None`) lasts until the region, or a level above it,
//! gets one. A [memo in a region](crate::Region::memo) keeps its results in fields of the
//! region's hash: its fresh hits are copies of those fields, as `get`'s (it uses the region's
//! near cache unless its builder names another).
//!
//! # The guarantee
//!
//! **A value served from a near cache was Redis' value for that key (for a region's entry: the
//! entry of the region's current generation) no longer ago than it took
//! Redis' invalidation message to reach this process, and never more than 1.75 s ago even when
//! the network silently loses messages: a tracking connection that closes, breaks or stays
//! silent for 1.5 s (it is pinged every 0.5 s) empties the cache before it answers again.**
//!
//! Besides:
//!
//! - a write through the crate is read back at once by this process: copies of its key read
//!   before the write's reply arrived are never used again;
//! - reads of a key through near caches never go backwards, in any thread of the process,
//!   through one [`Connection`](crate::Connection) (a read that goes to Redis through the
//!   pool while the tracking connection is down makes the copies read before its reply
//!   unusable, as a write does, and so do the reads that go to Redis though a copy could
//!   answer them: `RedisCache::get_many`, a region `dict` view's `get_many`, `Memo::peek`, a
//!   memo's `call_many` in a region, which therefore drops this process's copies of that
//!   region's entries); two `Connection`s to one server have a tracking connection each,
//!   and reads through one may be behind reads through the other by an invalidation's
//!   delay. Iteration, counts and ranges read through the pool and fence nothing: a copy
//!   read after them may be older than what they returned, by an invalidation's delay;
//! - `FLUSHALL`/`FLUSHDB`, a server restart, a `CLIENT KILL` of the tracking connection, a
//!   Sentinel failover or a cluster slot move drop every copy; reads go to Redis until a new
//!   tracking connection is up (the next read opens it);
//! - a copy never outlives the key's TTL: the read that fills it also sends `PTTL`, and the copy
//!   expires at that time counted from before the read was sent (for a region's entry, the
//!   `PTTL` of its hash, read in the same script as the entry);
//! - the server's `tracking-table-max-keys` is harmless: a key it stops tracking is
//!   invalidated first.
//!
//! Invalidations are read as soon as they arrive by whichever thread reads the tracking
//! connection: a caller waiting for a miss, or its background thread, which stays off it for
//! 2 ms after a caller read it (so an invalidation may wait up to 2 ms right after a miss).
//!
//! What it costs: a hit is a map lookup and a decode (0.1 to 0.3 µs, more than 100 times
//! faster than a round trip; see `benches/RESULTS.md`); a miss is one round trip on the
//! tracking connection carrying `PTTL` and the read, whose reply the waiting caller reads
//! itself when no other thread is reading (about 1.2 times a pooled `GET`).
//!
//! It needs Redis 6 or later (`HELLO 3`, `CLIENT TRACKING`). On an older server the tracking
//! connection is refused, and near-cache reads go to Redis like any other read (a new attempt
//! at most every [`CONNECT_BACKOFF`](crate::connection::CONNECT_BACKOFF)).
//!
//! # Why this design
//!
//! Redis offers three ways for a client with a connection pool to hear about changes; the
//! crate uses the third.
//!
//! 1. **`CLIENT TRACKING ON REDIRECT <id>` on every pooled connection**, invalidations sent to
//!    one subscribed connection. The server remembers which *connection* read a key: once
//!    that connection is closed (reaped by the pool, broken, `CLIENT KILL TYPE normal`), writes
//!    to its keys are never invalidated again, though the redirect target is alive (shown by
//!    the test `redirect_tracking_dies_with_the_data_connection_that_read`), and nothing tells
//!    the client. Every copy would have to die with the connection that read it, and a
//!    connection killed while idle in the pool is only noticed at its next use. The
//!    invalidation also races the reply of the read it concerns (they travel on different
//!    connections).
//! 2. **`BCAST` with a `PREFIX` per collection key**, on a connection the crate owns: no state
//!    per data connection, but Redis compares the key of *every write* with every prefix
//!    registered by any client. Measured here (`examples/compare`, "The cost of BCAST
//!    tracking"): one client's `SET`s fell from 34,851/s to 2,073/s with 4 clients holding
//!    1,000 prefixes each, and to 322/s with 16 clients: a prefix per key of a `RedisCache`
//!    per user would stall the server. Prefixes of one client may not overlap
//!    (`user.1` and `user.10` do), every process receives every write under its prefixes
//!    whether it read the key or not, and the reads on the pool still race the invalidations.
//! 3. **Default tracking on a RESP3 connection the crate owns, which sends the reads that
//!    fill the cache itself** (one per server, shared by every thread, pipelined). The state
//!    the server keeps is per key *read*, on a connection whose death the crate sees at once
//!    (a thread reads it all the time); pooled connections carry none. Redis orders the
//!    invalidation of a write before the reply of any later read on the same connection, so
//!    a stale reply can only be one whose invalidation follows it; a clock checked at every
//!    hit closes the remaining window between the reader thread and the caller (see
//!    [`connection::tracking`](crate::connection)).
//!
//! Over TLS the tracking connection is not available yet: a near cache on a `rediss://`
//! connection is refused with [`Error::Config`](crate::Error::Config) (at `Connection::open`
//! for the DSN option, at the first read for a builder's near cache).
//!
//! # Example
//!
//! ```no_run
//! use redis_caches::{DictCache, NearCache};
//!
//! let near = NearCache::with_capacity(10_000);
//! let prices: DictCache<String, u64> = DictCache::builder("prices").near_cache(near.clone()).build();
//! prices.get("apple")?; // from Redis (one round trip), kept
//! prices.get("apple")?; // from memory: no command at all
//! assert_eq!(near.stats().hits, 1);
//! # Ok::<(), redis_caches::Error>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};

use crate::connection::tracking::Stamps;

/// What one cached entry costs in [`NearCache::with_max_bytes`] besides its key and value
/// bytes: the entry, its `Arc`s, the allocations' headers and the map's slot (about what
/// [`NearCacheStats::memory`] counts per copy, less the key and value).
const ENTRY_OVERHEAD: u64 = 200;

/// A bounded, process-local cache of Redis reads, invalidated by Redis itself. Cheap to
/// clone (clones share the cache); share one between handles to give them one capacity.
///
/// Evicts with [`quick_cache`]'s CLOCK-Pro policy (scan resistant) when it is full.
///
/// # Example
///
/// ```no_run
/// use redis_caches::{NearCache, RedisCache};
///
/// let near = NearCache::with_capacity(1_000);
/// let motd: RedisCache<String> = RedisCache::builder("motd").near_cache(near.clone()).build();
/// motd.get()?;
/// motd.get()?;
/// println!("{:?}", near.stats());
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone)]
pub struct NearCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Cache<Box<[u8]>, Arc<Entry>, Weigh, DefaultHashBuilder, Evictions>,
    capacity: Capacity,
    hits: Striped,
    misses: Striped,
    evictions: AtomicU64,
    /// Heap bytes of the copies held (see [`heap_bytes`]).
    heap: AtomicU64,
    /// The trackings whose copies this cache holds, for their statistics.
    trackings: Mutex<Vec<Weak<Stamps>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capacity {
    Entries(u64),
    Bytes(u64),
}

/// What a [`NearCache`] has done so far.
///
/// ```
/// let s = redis_caches::NearCache::with_capacity(10).stats();
/// assert_eq!(s.hits + s.misses, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Reads answered from memory, without a command.
    pub hits: u64,
    /// Reads that went to Redis (no copy, or one no longer usable).
    pub misses: u64,
    /// Keys the servers said had changed (invalidation messages, one per key), counted on
    /// the connections this cache read through.
    pub invalidations: u64,
    /// Times every copy was dropped at once (a gap in the invalidations, `FLUSHALL`, a slot
    /// move), on those connections.
    pub flushes: u64,
    /// Copies dropped to stay within the capacity.
    pub evictions: u64,
    /// Copies held now (some may be unusable already, and are replaced at the next read).
    pub entries: u64,
    /// Bytes the copies take: the map, and the keys, values and bookkeeping each copy
    /// allocates (with a 16-byte allowance per allocation for the allocator's own header).
    pub memory: u64,
}

impl NearCache {
    /// A near cache of at most `entries` copies (a value, a field, a member each).
    ///
    /// ```
    /// let near = redis_caches::NearCache::with_capacity(10_000);
    /// assert_eq!(near.stats().entries, 0);
    /// ```
    pub fn with_capacity(entries: u64) -> NearCache {
        NearCache::new(Capacity::Entries(entries.max(1)))
    }

    /// A near cache of at most about `bytes` bytes: keys and values, plus a fixed overhead
    /// per copy.
    ///
    /// ```
    /// let near = redis_caches::NearCache::with_max_bytes(64 << 20);
    /// # let _ = near;
    /// ```
    pub fn with_max_bytes(bytes: u64) -> NearCache {
        NearCache::new(Capacity::Bytes(bytes.max(ENTRY_OVERHEAD)))
    }

    fn new(capacity: Capacity) -> NearCache {
        let (items, weight) = match capacity {
            Capacity::Entries(n) => (n, n),
            Capacity::Bytes(b) => ((b / 256).max(1), b),
        };
        let store = Cache::with(
            usize::try_from(items).unwrap_or(usize::MAX),
            weight,
            Weigh(capacity),
            DefaultHashBuilder::default(),
            Evictions,
        );
        NearCache {
            inner: Arc::new(Inner {
                store,
                capacity,
                hits: Striped::default(),
                misses: Striped::default(),
                evictions: AtomicU64::new(0),
                heap: AtomicU64::new(0),
                trackings: Mutex::new(Vec::new()),
            }),
        }
    }

    /// What the cache has done so far. No I/O.
    ///
    /// ```
    /// let near = redis_caches::NearCache::with_capacity(10);
    /// assert_eq!(near.stats().evictions, 0);
    /// ```
    pub fn stats(&self) -> NearCacheStats {
        let inner = &self.inner;
        let (invalidations, flushes) = inner
            .trackings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .fold((0, 0), |(i, f), s| (i + s.invalidations(), f + s.flushes()));
        NearCacheStats {
            hits: inner.hits.sum(),
            misses: inner.misses.sum(),
            invalidations,
            flushes,
            evictions: inner.evictions.load(Ordering::Relaxed),
            entries: inner.store.len() as u64,
            memory: inner.store.memory_used().total() as u64 + inner.heap.load(Ordering::Relaxed),
        }
    }

    /// Drops every copy held. Nothing is sent to Redis.
    ///
    /// ```
    /// let near = redis_caches::NearCache::with_capacity(10);
    /// near.clear();
    /// assert_eq!(near.stats().entries, 0);
    /// ```
    pub fn clear(&self) {
        self.inner.store.clear();
        self.inner.heap.store(0, Ordering::Relaxed);
    }

    /// The copy under `key`, when there is one and it may be used; counts a hit or a miss.
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let found = self
            .inner
            .store
            .get(key)
            .filter(|e| e.usable())
            .map(|e| e.value.is_some().then_some(Bytes(Repr::Copy(e))));
        let counter = if found.is_some() {
            &self.inner.hits
        } else {
            &self.inner.misses
        };
        counter.add();
        found
    }

    /// Keeps a copy, unless it is already unusable.
    pub(crate) fn install(&self, key: Vec<u8>, entry: Entry) {
        if !entry.usable() {
            return;
        }
        self.note(&entry.stamps);
        let key = key.into_boxed_slice();
        // Counted before it can be evicted, so that the sum never goes below zero.
        self.inner
            .heap
            .fetch_add(heap_bytes(&key, &entry), Ordering::Relaxed);
        let mut evicted = Evicted::default();
        self.inner
            .store
            .insert_with_lifecycle(key.clone(), Arc::new(entry), &mut evicted);
        let freed: u64 = evicted.0.iter().map(|(k, e)| heap_bytes(k, e)).sum();
        let _ = self
            .inner
            .heap
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(freed))
            });
        // The cache reports the copy a new one replaces as evicted too: not counted.
        let n = evicted.0.iter().filter(|(k, _)| *k != key).count();
        if n > 0 {
            self.inner.evictions.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Remembers the tracking a copy came from, for [`stats`](NearCache::stats).
    fn note(&self, stamps: &Arc<Stamps>) {
        let mut list = self
            .inner
            .trackings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !list
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(stamps)))
        {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(stamps));
        }
    }
}

impl fmt::Debug for NearCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCache")
            .field("capacity", &self.inner.capacity)
            .field("entries", &self.inner.store.len())
            .finish()
    }
}

/// A counter spread over cache lines, one per group of threads: hits are counted on every
/// read, from every thread, and one shared counter would make the threads wait for each
/// other's cache line.
#[derive(Default)]
struct Striped([Padded; STRIPES]);

const STRIPES: usize = 16;

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl Striped {
    fn add(&self) {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) as usize % STRIPES
            };
        }
        let i = STRIPE.with(|s| *s);
        self.0[i].0.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

/// Bytes read through the near cache: a copy it holds (no bytes copied on a hit), or bytes
/// just read from Redis.
pub(crate) struct Bytes(Repr);

enum Repr {
    Copy(Arc<Entry>),
    Read(Arc<[u8]>),
}

impl Bytes {
    pub(crate) fn read(bytes: Arc<[u8]>) -> Bytes {
        Bytes(Repr::Read(bytes))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Copy(e) => e.value.as_deref().unwrap_or_default(),
            Repr::Read(b) => b,
        }
    }
}

/// One copy: the bytes Redis returned (`None` for nothing there), and what decides whether
/// it may still be used.
pub(crate) struct Entry {
    pub(crate) value: Option<Arc<[u8]>>,
    /// When the request that read it was sent, on the tracking's clock.
    pub(crate) ticket: u64,
    /// When its reply was read, on the same clock.
    pub(crate) replied: u64,
    /// The slots in the tracking's stamps of every key the read depended on.
    pub(crate) buckets: Buckets,
    /// When the key expires in Redis (measured from before the read was sent).
    pub(crate) expires: Option<Instant>,
    pub(crate) stamps: Arc<Stamps>,
}

impl Entry {
    fn usable(&self) -> bool {
        let buckets = self.buckets.as_slice();
        self.expires.is_none_or(|at| Instant::now() < at)
            && !buckets.is_empty()
            && buckets
                .iter()
                .all(|&b| self.stamps.valid(self.ticket, self.replied, b))
    }
}

/// The slots of the keys a copy depends on: one for a read of one key, several for a read
/// of a region's entry (its hash, the tree's hash and the map of every level on the way,
/// any of which changing may change the answer). A copy is usable only while every one of
/// them is.
pub(crate) enum Buckets {
    One(usize),
    Many(Box<[usize]>),
}

impl Buckets {
    /// The slot of one key.
    pub(crate) fn of(key: &[u8]) -> Buckets {
        Buckets::One(Stamps::bucket(key))
    }

    /// The slots of every key in `keys` (a copy with none is never usable).
    pub(crate) fn of_all<K: AsRef<[u8]>>(keys: &[K]) -> Buckets {
        let mut slots: Vec<usize> = keys.iter().map(|k| Stamps::bucket(k.as_ref())).collect();
        slots.sort_unstable();
        slots.dedup();
        match slots[..] {
            [one] => Buckets::One(one),
            _ => Buckets::Many(slots.into_boxed_slice()),
        }
    }

    fn as_slice(&self) -> &[usize] {
        match self {
            Buckets::One(b) => std::slice::from_ref(b),
            Buckets::Many(bs) => bs,
        }
    }

    /// Bytes allocated besides the entry itself.
    fn heap(&self) -> u64 {
        match self {
            Buckets::One(_) => 0,
            Buckets::Many(bs) => 16 + std::mem::size_of_val(&bs[..]) as u64,
        }
    }
}

/// A point read the near cache can answer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Point<'a> {
    /// `GET key`.
    Value,
    /// `HGET key field`.
    Field(&'a [u8]),
    /// Whether the field exists: `HEXISTS key field` from Redis, but through the near cache
    /// the copy of [`Field`](Point::Field) (an `HGET`), so `get` and `contains_key` share it.
    FieldExists(&'a [u8]),
    /// `SISMEMBER key member` (a copy holds an empty value for a member, nothing otherwise).
    Member(&'a [u8]),
    /// `ZSCORE key member` (a copy holds the score as text).
    Score(&'a [u8]),
}

impl Point<'_> {
    /// The command that reads it from Redis: the one that fills its copy when `near`.
    pub(crate) fn command(&self, key: &str, near: bool) -> redis::Cmd {
        let (name, item) = self.name_and_item(near);
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        if let Some(item) = item {
            cmd.arg(item);
        }
        cmd
    }

    /// The name of [`command`](Point::command) and its argument after the key, if any.
    pub(crate) fn name_and_item(&self, near: bool) -> (&'static str, Option<&[u8]>) {
        match *self {
            Point::Value => ("GET", None),
            Point::Field(f) => ("HGET", Some(f)),
            Point::FieldExists(f) if near => ("HGET", Some(f)),
            Point::FieldExists(f) => ("HEXISTS", Some(f)),
            Point::Member(m) => ("SISMEMBER", Some(m)),
            Point::Score(m) => ("ZSCORE", Some(m)),
        }
    }

    /// Runs `f` with the key of its copy (see [`entry_key`](Point::entry_key)), built on the
    /// stack when it is short: a hit allocates nothing.
    pub(crate) fn with_entry_key<R>(
        &self,
        tracking: u64,
        scope: Scope,
        key: &str,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let item = self.item();
        let len = 13 + key.len() + item.len();
        if len > 256 {
            return f(&self.entry_key(tracking, scope, key));
        }
        let mut buf = [0u8; 256];
        buf[..8].copy_from_slice(&tracking.to_le_bytes());
        buf[8] = self.kind() | scope as u8;
        buf[9..13].copy_from_slice(&(key.len() as u32).to_le_bytes());
        buf[13..13 + key.len()].copy_from_slice(key.as_bytes());
        buf[13 + key.len()..len].copy_from_slice(item);
        f(&buf[..len])
    }

    fn kind(&self) -> u8 {
        match self {
            Point::Value => 0,
            Point::Field(_) | Point::FieldExists(_) => 1,
            Point::Member(_) => 2,
            Point::Score(_) => 3,
        }
    }

    fn item(&self) -> &[u8] {
        match self {
            Point::Value => &[],
            Point::Field(i) | Point::FieldExists(i) | Point::Member(i) | Point::Score(i) => i,
        }
    }

    /// The key of its copy: the tracking, the kind of read and its scope, the Redis key (a
    /// region's name key for [`Scope::Region`]) and the item, each delimited so that no two
    /// reads share a copy.
    pub(crate) fn entry_key(&self, tracking: u64, scope: Scope, key: &str) -> Vec<u8> {
        let (kind, item) = (self.kind() | scope as u8, self.item());
        let mut out = Vec::with_capacity(13 + key.len() + item.len());
        out.extend_from_slice(&tracking.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(item);
        out
    }
}

/// Where a [`Point`] read's key is: the key itself, or a region's name key, whose entries are
/// in the hash of its current generation (a region's copies never answer a read of a key
/// spelled like its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Scope {
    Key = 0,
    Region = 0x80,
}

/// Turns a reply to a [`Point`]'s command into what a copy holds.
pub(crate) fn normalize(reply: redis::Value) -> Result<Option<Arc<[u8]>>, redis::Value> {
    use redis::Value;
    match reply {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(Arc::from(b))),
        Value::SimpleString(s) => Ok(Some(Arc::from(s.into_bytes()))),
        Value::Int(0) | Value::Boolean(false) => Ok(None),
        Value::Int(_) | Value::Boolean(true) => Ok(Some(Arc::from(Vec::new()))),
        Value::Double(d) => Ok(Some(Arc::from(d.to_string().into_bytes()))),
        other => Err(other),
    }
}

#[derive(Clone)]
struct Weigh(Capacity);

impl Weighter<Box<[u8]>, Arc<Entry>> for Weigh {
    fn weight(&self, key: &Box<[u8]>, val: &Arc<Entry>) -> u64 {
        match self.0 {
            Capacity::Entries(_) => 1,
            Capacity::Bytes(_) => {
                ENTRY_OVERHEAD + key.len() as u64 + val.value.as_ref().map_or(0, |v| v.len() as u64)
            }
        }
    }
}

/// Counts evictions.
#[derive(Clone)]
struct Evictions;

/// The copies an insertion evicted (among them the one it replaced, if any).
#[derive(Default)]
struct Evicted(Vec<(Box<[u8]>, Arc<Entry>)>);

impl Lifecycle<Box<[u8]>, Arc<Entry>> for Evictions {
    type RequestState = Evicted;

    fn on_evict(&self, state: &mut Evicted, key: Box<[u8]>, entry: Arc<Entry>) {
        state.0.push((key, entry));
    }
}

/// What one copy allocates besides its slot in the map: its key, its entry (behind an `Arc`)
/// and its value (behind another), each with 16 bytes for the allocator's header.
fn heap_bytes(key: &[u8], entry: &Entry) -> u64 {
    const ALLOCATION: u64 = 16;
    let arc_header = 2 * std::mem::size_of::<usize>() as u64;
    let value = entry
        .value
        .as_ref()
        .map_or(0, |v| ALLOCATION + arc_header + v.len() as u64);
    ALLOCATION
        + key.len() as u64
        + ALLOCATION
        + arc_header
        + std::mem::size_of::<Entry>() as u64
        + entry.buckets.heap()
        + value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_never_collide() {
        let key = Scope::Key;
        let a = Point::Field(b"bc").entry_key(1, key, "a");
        let b = Point::Field(b"c").entry_key(1, key, "ab");
        assert_ne!(a, b);
        assert_ne!(
            Point::Member(b"x").entry_key(1, key, "k"),
            Point::Score(b"x").entry_key(1, key, "k")
        );
        assert_ne!(
            Point::Value.entry_key(1, key, "k"),
            Point::Value.entry_key(2, key, "k")
        );
        assert_ne!(
            Point::Field(b"f").entry_key(1, key, "{r}.a"),
            Point::Field(b"f").entry_key(1, Scope::Region, "{r}.a")
        );
        for scope in [Scope::Key, Scope::Region] {
            let point = Point::Field(b"f");
            let built = point.entry_key(1, scope, "k");
            assert!(point.with_entry_key(1, scope, "k", |k| k == built));
        }
    }

    #[test]
    fn replies_normalize_to_copies() {
        use redis::Value;
        assert_eq!(normalize(Value::Nil).unwrap(), None);
        assert_eq!(normalize(Value::Int(1)).unwrap().as_deref(), Some(&[][..]));
        assert_eq!(normalize(Value::Int(0)).unwrap(), None);
        assert_eq!(
            normalize(Value::Double(1.5)).unwrap().as_deref(),
            Some(&b"1.5"[..])
        );
        assert!(normalize(Value::Array(vec![])).is_err());
    }

    #[test]
    fn any_capacity_is_accepted_without_allocating_it_up_front() {
        for near in [
            NearCache::with_capacity(u64::MAX),
            NearCache::with_capacity(0),
            NearCache::with_max_bytes(u64::MAX),
            NearCache::with_max_bytes(0),
        ] {
            assert_eq!(near.stats().entries, 0);
        }
    }

    #[test]
    fn capacity_is_bounded_and_evictions_counted() {
        let near = NearCache::with_capacity(100);
        let stamps = Arc::new(Stamps::new());
        for i in 0..1000u32 {
            let ticket = stamps.tick();
            near.install(
                Point::Value.entry_key(stamps.id, Scope::Key, &i.to_string()),
                Entry {
                    value: None,
                    ticket,
                    replied: stamps.now(),
                    buckets: Buckets::One(0),
                    expires: None,
                    stamps: stamps.clone(),
                },
            );
        }
        let s = near.stats();
        assert!(s.entries <= 110, "{s:?}");
        assert!(s.evictions >= 890, "{s:?}");
    }
}
