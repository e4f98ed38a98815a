//! Typed, Redis-backed collections and caches with a synchronous API.
//!
//! `redis_caches` puts Redis behind the data structures you already know: a single value
//! with atomic counters ([`RedisCache`]), a map ([`DictCache`]), a set ([`SetCache`]), a sorted
//! set ([`SortedSetCache`]), a set-once gate for batch jobs ([`SentinelCache`]), nested
//! regions of typed values with atomic recursive invalidation ([`Region`]), and memoized
//! functions with stale-while-revalidate and a cross-process stampede lock ([`Memo`]).
//! Handles are cheap views of shared remote state: every thread and every process that builds
//! one with the same key sees the same data. The API is synchronous; connections are r2d2
//! pools configured from `CACHES_DSN` and `CACHES_DSN_n`.
//!
//! # Contents
//!
//! - [Quick start](#quick-start)
//! - [Types](#types)
//! - [Connections](#connections)
//! - [Keys](#keys)
//! - [Encoding](#encoding)
//! - [Regions](#regions)
//! - [Memoization](#memoization)
//! - [Errors](#errors)
//! - [Failure modes](#failure-modes)
//! - [Scale: Cluster and Sentinel](#scale-cluster-and-sentinel)
//! - [Features](#features)
//!
//! # Quick start
//!
//! ```no_run
//! use redis_caches::RedisCache;
//!
//! // CACHES_DSN=redis://127.0.0.1:6379/0 configures the default connection.
//! let motd: RedisCache<String> = RedisCache::new(["site", "motd"]);
//! motd.set("hello")?;
//! assert_eq!(motd.get()?.as_deref(), Some("hello"));
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! # Types
//!
//! | Type | Like | Redis type | Commands (one round trip per single-element operation) |
//! |---|---|---|---|
//! | [`RedisCache<T>`] | `Option<T>` | string | `GET`, `SET [PX]`, `DEL`, `SET NX GET`, `INCRBY` |
//! | [`DictCache<K, V>`] | `HashMap<K, V>` | hash | `HGET`, `HSET`, `HDEL`, `HEXISTS`, `HLEN`, `HMGET`, `HSCAN` |
//! | [`SetCache<T>`] | `HashSet<T>` | set | `SADD`, `SREM`, `SISMEMBER`, `SCARD`, `SPOP`, `SSCAN`, `SUNION`/`SINTER`/`SDIFF` |
//! | [`SortedSetCache<T>`] | `BTreeMap` by score | zset | `ZADD`, `ZINCRBY`, `ZSCORE`, `ZRANK`, `ZPOPMIN`/`ZPOPMAX`, `ZRANGE` |
//! | [`SentinelCache`] | a set-once flag | string | `SET NX`, `EXISTS`, `DEL` |
//! | [`Region`] | nested namespaces of typed values | hash per region, set of children per parent | `HGET`, `HSET` (+ `SADD`s in `MULTI`/`EXEC`), one Lua script to invalidate |
//! | [`Memo<A, R>`](Memo) | a memoized `Fn(A) -> R` | string per arguments, lock, stats hash | one Lua script per call |
//!
//! Every type is built the same way: `Type::new(key)` (infallible, no I/O) or
//! `Type::builder(key)` to choose the connection, a prefix, a TTL and its
//! [`TtlPolicy`], or a codec. Every write applies the TTL in the same round trip (in
//! `MULTI`/`EXEC` or a script where atomicity matters), bulk operations pipeline in batches,
//! and iteration streams with `HSCAN`/`SSCAN`/ranged reads in bounded memory, yielding
//! `Result` items. The crate never sends `KEYS`. Each method's documentation names the commands
//! and round trips it costs.
//!
//! ```no_run
//! use redis_caches::{DictCache, SentinelCache};
//!
//! let ages: DictCache<String, u32> = DictCache::new(["foo", "bar"]);
//! ages.insert("ada", &36)?;
//! for entry in &ages {
//!     let (name, age) = entry?;
//!     println!("{name}: {age}");
//! }
//!
//! // A batch job that must run once, whichever process gets there first.
//! if SentinelCache::new(["jobs", "2026-11-21"]).claim()? {
//!     println!("running the nightly job");
//! }
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! # Connections
//!
//! Connections come from the environment, read once at first use:
//!
//! | Variable | Connection name |
//! |---|---|
//! | `CACHES_DSN` | `"default"` (and its `#fragment`, if any) |
//! | `CACHES_DSN_1`, `CACHES_DSN_2`, ... (or from `CACHES_DSN_0`) | the `#fragment`, else the number |
//!
//! A gap in the numbering, a name used twice, an unknown scheme or option, or a value that does
//! not parse is an [`Error::Config`] naming the variable (never the password). Code can add
//! connections with [`connection::register`], or hand a [`Connection`] to a collection's
//! builder. [`Dsn`] documents the URL forms and options; each connection is an r2d2 pool of
//! `redis` connections, opened lazily, recovering by itself after an outage, and checked out
//! without a round trip.
//!
//! # Keys
//!
//! A collection's key is built from parts joined with `.`: `["foo", "bar", "che"]` is
//! `foo.bar.che`, `("user", 42)` is `user.42`, and `0` is a part like any other. The
//! connection's `prefix` option and the collection's own prefix come first:
//! `<connection prefix><prefix>.<parts>`. A `.` or `\` inside a part is escaped with `\`, so
//! distinct part lists never share a key. See [`key`] for the exact layout, which golden tests
//! pin, and how a Redis Cluster hash tag is carried.
//!
//! # Encoding
//!
//! Values go through a [`Codec`](codec::Codec). The default, [`Postcard`](codec::Postcard),
//! stores any serde type behind a 6-byte header (magic, format version, fingerprint of the
//! type), so bytes written by another program, for another type, or corrupted, give an
//! [`Error::Decode`] instead of a wrong value. [`Raw`](codec::Raw) stores integers, floats,
//! strings and bytes as Redis-native values, which counters need (`INCRBY`) and `redis-cli`
//! shows readably. Decoding never executes code.
//!
//! # Regions
//!
//! A [`Region`] is a dotted, nested namespace of typed values: `Region::new("users.42")` is a
//! Redis hash, a child of `users`, and [`Region::invalidate`] deletes a region with all its
//! descendants in one atomic Lua script, from any process.
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_caches::{Region, Signal};
//!
//! let users = Region::builder("users").ttl(Duration::from_secs(600)).build();
//! let alice = users.region("alice"); // inherits the TTL
//! alice.set("name", "Alice")?;
//! alice.transaction(|tx| {
//!     tx.set("visits", &1u32)?;
//!     tx.set("plan", "pro")
//! })?; // one MULTI/EXEC, or nothing on error or panic
//! users.invalidate_on(&Signal::named("user-updated"));
//! Signal::named("user-updated").send()?; // users and users.alice are gone
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! Key layout, for the root `root` (the builder's `root(..)`) and a connection prefix `P`:
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `P{root}` | hash | the root region's entries |
//! | `P{root}.users`, `P{root}.users.alice` | hash | each region's entries |
//! | `P{root}#children`, `P{root}#children.users` | set | the hash keys of each region's children |
//!
//! The root is a Redis Cluster hash tag, so a whole tree lives in one slot; link keys carry
//! `#` right after the tag where region keys carry `.`, so the two can never collide. Entry
//! keys are fields encoded as `String`s by the region's codec; values are typed per call
//! (`get::<V>`).
//!
//! - Every write carries `SADD`s linking its region up to the root in the same
//!   `MULTI`/`EXEC` (one round trip), so a region written after another process invalidated
//!   its parent is linked again, and an invalidation finds every region holding data. Once
//!   `invalidate()` returns, nothing written before it began survives below it; a region
//!   written concurrently is deleted entirely or kept entirely, never left unlinked.
//! - Options (TTL, TTL policy, codec, connection, root, [`OutagePolicy`](region::OutagePolicy))
//!   are copied to children, which may override them for themselves. The parents that
//!   `Region::new("a.b.c")` implies are only linked: nothing is written to them, so nothing of
//!   the leaf's options reaches them. A parent's TTL does not cascade; invalidation does.
//! - [`Region::dict`] hands out a typed [`DictCache<String, V>`](DictCache) over a region's
//!   hash; its writes carry the links too.
//! - [`Signal`]s are named, in-process events; [`Region::invalidate_on`] connects a region.
//! - [`Region::get_or_insert_with`] and [`Region::memoize`] cache computed values inside a
//!   region (memoized results are keyed by the encoded arguments and skipped by iteration).
//! - Under [`OutagePolicy::Miss`](region::OutagePolicy::Miss) a region reads as a miss and
//!   skips writes while Redis is down, counting both ([`Region::outage_stats`]); the default
//!   returns the error. Invalidation always reports errors.
//!
//! See [`region`] for every method's commands and round trips.
//!
//! # Memoization
//!
//! [`Memo`] caches a function's results in Redis, for every thread and process at once. One
//! statement declares it, around a closure:
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_caches::Memo;
//!
//! fn fetch_price(id: u64) -> f64 { id as f64 * 1.5 } // a slow call in real life
//!
//! let price = Memo::builder("price", |id: u64| fetch_price(id))
//!     .ttl(Duration::from_secs(600))      // kept for ten minutes...
//!     .refresh(Duration::from_secs(60))   // ...fresh for one, then refreshed in the background
//!     .build();
//! let p = price.call(7)?;                 // computed once, then read from Redis
//! price.forget(&7)?;                      // after item 7 changed
//! let raw = price.call_uncached(7);       // the function itself, no cache
//! println!("{:?}", price.stats()?);       // hits, misses, stale hits, ... over all processes
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! Or as an item, with [`memoize!`]:
//!
//! ```no_run
//! use std::time::Duration;
//! redis_caches::memoize! {
//!     /// The price of an item, cached for a minute.
//!     #[memo(PRICE, ttl(Duration::from_secs(60)))]
//!     pub fn price(id: u64) -> f64 { id as f64 * 1.5 }
//! }
//! let p = price(7)?;
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! What it does, and what the Python originals did differently:
//!
//! - **Keys** are `{memo:<name>}.v.<args>`: the name is the function's namespace, the
//!   arguments are their [postcard](https://docs.rs/postcard) bytes, escaped (or hashed,
//!   projected to the arguments that matter, built by your function, or a template such as
//!   `"item:{id}"`), so keys are the same in every process and build and two functions never
//!   collide (`rediscache` keyed on `str()` of the values, without the function's module).
//! - **Fallible functions** ([`Memo::try_builder`]): errors are returned, never cached.
//!   `None` results are cached unless [`skip_none`](MemoBuilder::skip_none).
//! - **Stale-while-revalidate**: a result older than `refresh` is returned at once and
//!   recomputed in the background, on a bounded [`RefreshPool`](memo::RefreshPool). A
//!   failed refresh keeps the stale result until the TTL, and is counted; the default value
//!   is never stored (`rediscache` cached it, poisoning the entry).
//! - **One computation at a time** per arguments across all processes: a lock with an owner
//!   token (`SET NX PX`, released only by its owner, inside a Lua script) and a timeout after
//!   which another caller may try. Callers that miss while another computes wait for its
//!   result (single flight), or get the [default value](MemoBuilder::default_value) at once.
//! - **Statistics** ([`MemoStats`]) live in one Redis hash per function, so all processes add
//!   up; [`reset_stats`](Memo::reset_stats) reads and zeroes them atomically.
//! - **One round trip** for a fresh or a stale hit: the read, the statistics and the lock
//!   attempt run in one script (`rediscache` paid three round trips per hit).
//! - **Switches**: [`Memo::disable`] per function and [`memo::disable_all`] per process turn
//!   the cache off (for tests); [`WhenUnavailable`](memo::WhenUnavailable) chooses between
//!   returning the connection error (default) and computing without the cache when Redis is
//!   down.
//! - **Flask-CacheOBJ's strategies**: a counter changed in place
//!   ([`build_counter`](MemoBuilder::build_counter)), a real Redis list, ordered, with its TTL
//!   ([`build_list`](MemoBuilder::build_list)), a field of one hash
//!   ([`build_hash_field`](MemoBuilder::build_hash_field)), and
//!   [`forget_after`](Memo::forget_after) for functions that change what another cached.
//!
//! [`memo`] has the key layout and the cost of each case.
//!
//! # Errors
//!
//! Every operation returns [`Result`], with one [`Error`] enum whose messages name the key
//! or connection. Classify with [`Error::is_timeout`], [`Error::is_connection`],
//! [`Error::is_decode`], [`Error::is_config`]. Operations time out after the DSN's `timeout`
//! (1 s by default) instead of hanging.
//!
//! # Failure modes
//!
//! A cache sits on every request path, so each fault ends in a typed [`Error`] within a bound
//! the DSN sets (`timeout`, `pool_timeout`, `connect_timeout`), never in a hang or a panic, and
//! the same handles work again once the fault is gone: nothing needs rebuilding.
//!
//! | Fault | What the caller sees |
//! |---|---|
//! | Server down, killed, or unreachable | [`Error::Pool`] ([`is_connection`](Error::is_connection), [`is_timeout`](Error::is_timeout)) with the last connect error, after at most `pool_timeout`; a call already on a connection that breaks gets [`Error::Redis`] (`is_connection`). Once the server is back, the next calls succeed: broken connections, and idle ones opened before the failure, are discarded. |
//! | Server stalled (overloaded, `SIGSTOP`, network partition) | [`Error::Redis`] with `is_timeout` after the operation `timeout` (1 s by default); that connection is discarded, so a late reply is never read as the answer to another command. With `timeout=0` calls wait as long as the server does. |
//! | Every pooled connection in use | [`Error::Pool`] ("all N connections of the pool are in use", `is_timeout`) after `pool_timeout`, not a deadlock. |
//! | Wrong password, unknown ACL user, missing `AUTH` | An error with [`is_auth`](Error::is_auth); the message never contains the password. |
//! | TLS: a server certificate from an unknown CA, or no client certificate where the server requires one | [`Error::Pool`] (`is_connection`) with the TLS error. Verification is on unless the DSN says `tls_insecure=true`. An unreadable `tls_ca`/`tls_cert`/`tls_key` file is an [`Error::Config`] when the connection is opened. |
//! | Bytes another program, another type or another codec wrote, or corrupt bytes | [`Error::Decode`] naming the key; never a wrong value. |
//! | The key holds another Redis type | [`Error::WrongType`] naming the key, the expected and the found type. |
//! | A value over the collection's `max_value_size` | [`Error::ValueTooLarge`] before anything is sent; the stored value is untouched. |
//! | A value over the server's `proto-max-bulk-len` | [`Error::Redis`] naming the key; the connection is replaced and the next calls work. |
//! | An invalid DSN or `CACHES_DSN*` variable | [`Error::Config`] naming the variable or connection, never the password (not even when an unescaped `/`, `?` or `#` splits it). |
//!
//! No `Debug` or `Display` output, error message or source error of the crate contains a
//! password: DSNs show `***` in its place, and values that might hold part of one are not
//! quoted.
//!
//! ## What the crate trusts
//!
//! Values are decoded only with the codec the collection was built with: postcard, raw and JSON
//! are data formats, and decoding them never executes code, unlike pickle in the Python
//! originals, where whoever can write to Redis can run code in every reader. Bytes that the codec
//! did not write for the collection's type give [`Error::Decode`]. The postcard header's type
//! fingerprint guards against mistakes (another type, another program), not against an
//! attacker: anyone who can write to your Redis can store valid values, so Redis access, and its
//! credentials and TLS, remain the trust boundary.
//! # Scale: Cluster and Sentinel
//!
//! The same code runs on one server, on a Redis Cluster, or on a master that Redis Sentinel
//! keeps available: only the DSN changes.
//!
//! | DSN | Deployment |
//! |---|---|
//! | `redis://host:6379/0` | one server |
//! | `redis+cluster://h1:7000,h2:7001,h3:7002` | a Redis Cluster; the hosts are seeds, the rest of the cluster is discovered |
//! | `rediss+cluster://:pass@h1:7000,h2:7001` | the same over TLS (feature `tls`), with a password |
//! | `redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0` | the master the sentinels monitor as `mymaster`, database 0 |
//! | `rediss+sentinel://:pass@s1,s2,s3/mymaster` | the same over TLS (to sentinels and master), sentinel port 26379 |
//!
//! Every option means what it means for one server: `connect_timeout` bounds each connection
//! attempt (to a node, a sentinel, a master), `timeout` each reply, `pool_size` the pooled
//! connections (on a cluster, each of them holds one connection per node). A cluster has only
//! database 0. Credentials in the URL are the data nodes'; sentinels are contacted without
//! credentials.
//!
//! **Cluster.** Each command goes to the node that owns its key's hash slot; `MOVED` and
//! `ASK` redirections are followed and the slot map refreshed. A pipeline, a `MULTI`/`EXEC`
//! transaction (what a write with a TTL sends) or a script runs on one node, so all its keys
//! must be in one slot: when they are not, the operation fails with [`Error::CrossSlot`]
//! ("a multi-key operation across slots"), checked before anything is sent, or reported by
//! Redis (`CROSSSLOT`) for keys the crate cannot see.
//!
//! **Hash tags.** When a key contains `{...}`, Redis Cluster hashes only the text between the
//! first `{` and the next `}`: `{user42}.cart` and `{user42}.visits` are in one slot. Which
//! keys the crate tags, and why:
//!
//! | Keys | Hash tag | Why |
//! |---|---|---|
//! | a collection's own key ([`RedisCache`], and every collection stored under one key) | none | one key: each operation stays in its slot, and collections spread over the cluster |
//! | a region and everything under it | the region's root: `{root}.child.leaf` | invalidating a region touches its keys together |
//! | a memoized function's values, locks and statistics | one per function | a call reads and writes them in one pipeline or script |
//! | the operands of set algebra (unions, intersections, differences, and their stores) | yours to give | only you know which sets are combined: tag them alike, or get [`Error::CrossSlot`] |
//!
//! [`Key::with_hash_tag`](key::Key::with_hash_tag) wraps a key's first element (the
//! collection prefix when there is one) in braces. The connection `prefix` comes before the
//! tag and may not contain braces, so it never moves a key to another slot.
//!
//! ```no_run
//! use redis_caches::{Connection, RedisCache, key::Key};
//!
//! let cluster = Connection::open("cluster", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")?;
//! // {user42}.cart and {user42}.visits: one slot, so they can be combined in one operation.
//! let cart: RedisCache<Vec<u32>> = RedisCache::builder(Key::from_parts(["user42", "cart"]).with_hash_tag())
//!     .connection(&cluster)
//!     .build();
//! cart.set(&vec![7, 9])?;
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! **Failover.** When a master dies, its replica takes over: on a cluster after
//! `cluster-node-timeout` and an election, under Sentinel after `down-after-milliseconds` and
//! an election. Meanwhile operations on the keys it served fail with an error for which
//! [`Error::is_connection`] is true (the node is unreachable, `CLUSTERDOWN`, no master known
//! yet); a pooled connection that sees such an error, or `READONLY` from a demoted master, is
//! dropped together with its idle siblings, and the connections opened next ask the cluster
//! (or the sentinels) again. So the same handles work again as soon as the replica is
//! promoted: the crate's tests, with `cluster-node-timeout 1000` and
//! `down-after-milliseconds 500`, see operations resume about 2 s after a master is killed
//! (they allow 15 s and 20 s). Redis replicates asynchronously: a write acknowledged just
//! before the master died may be lost unless it had reached a replica (`WAIT`). The cluster
//! client retries a failed request up to 3 times, 10 to 100 ms apart, so an operation on a
//! frozen node fails after about 4 × `timeout`, and a write whose reply was lost may be applied
//! twice (as with any client-side retry; idempotent writes do not mind).
//!
//! # Features
//!
//! - `tls`: `rediss://` connections through rustls.
//! - `json`: the [`Json`](codec::Json) codec.

#![warn(missing_docs)]

pub mod cache;
mod cluster;
pub mod codec;
pub mod connection;
pub mod dict;
pub mod dsn;
mod error;
pub mod key;
pub mod memo;
mod options;
pub mod region;
pub mod sentinel;
pub mod set;
pub mod signal;
pub mod sorted_set;

pub use cache::RedisCache;
pub use connection::Connection;
pub use dict::DictCache;
pub use dsn::Dsn;
pub use error::{Error, Result};
pub use memo::{Memo, MemoBuilder, MemoStats};
pub use options::{Builder, Collection, DEFAULT_MAX_VALUE_SIZE, Ttl, TtlPolicy};
pub use region::Region;
pub use sentinel::SentinelCache;
pub use set::SetCache;
pub use signal::Signal;
pub use sorted_set::SortedSetCache;
