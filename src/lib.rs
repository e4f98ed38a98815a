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
//! - [One rule per verb](#one-rule-per-verb)
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
//! | [`RedisCache<T>`] | `Option<T>` | string | `GET`, `MGET`, `SET [PX]`, `DEL`, `INCRBY`/`INCRBYFLOAT` |
//! | [`DictCache<K, V>`] | `HashMap<K, V>` | hash | `HGET`, `HSET`, `HDEL`, `HEXISTS`, `HLEN`, `HMGET`, `HSCAN`, `HINCRBY` |
//! | [`SetCache<T>`] | `HashSet<T>` | set | `SADD`, `SREM`, `SISMEMBER`, `SCARD`, `SPOP`, `SSCAN`, `SUNION`/`SINTER`/`SDIFF` |
//! | [`SortedSetCache<T>`] | `BTreeMap` by score | zset | `ZADD`, `ZINCRBY`, `ZSCORE`, `ZRANK`, `ZCOUNT`, `ZPOPMIN`/`ZPOPMAX`, `ZRANGE`, `ZREMRANGEBY*` |
//! | [`SentinelCache`] | a set-once flag | string | `SET NX`, `EXISTS`, `DEL` |
//! | [`Region`] | nested namespaces of typed values | hash per region generation, hash of children per parent | one request per operation (writes one script, reads a pipeline checked against the generations); invalidation in constant time |
//! | [`Memo<A, R>`](Memo) | a memoized `Fn(A) -> R` | string per arguments, lock, stats hash | one round trip per fresh hit (`GET` and `HINCRBY`, pipelined), scripts for misses |
//!
//! Every type is built the same way: `Type::new(key)` (infallible, no I/O) or
//! `Type::builder(key)` to choose the connection, a prefix, a TTL and its
//! [`TtlPolicy`], or a codec. Every request to Redis is one command or one Lua script, with
//! one reply, except reads that need none of a script's guarantees (a memo's fresh hit, a
//! region's read: a pipeline of reads, and a memo's statistic): an operation of several commands (a write with its TTL, an `insert` that returns
//! the old value, a region write that finds its region's generation) is a script, which Redis runs atomically, so
//! it is applied whole or not at all, and refused whole (a key of another type, a missing ACL
//! permission, no memory left) before anything is written. Bulk operations send batches, and
//! iteration streams with `HSCAN`/`SSCAN`/ranged reads in bounded memory, yielding `Result`
//! items. The crate never sends `KEYS`, `MULTI` or `EXEC`. Each method's documentation names
//! the commands and round trips it costs.
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
//! # One rule per verb
//!
//! The same name does the same thing on every type, and std's names mean std's semantics:
//!
//! | Verb | Means | Returns |
//! |---|---|---|
//! | `get` | read one item | `Option` |
//! | `insert` | store one item, reading what it replaces (like `HashMap::insert`) | the old value (`DictCache`, `Region`); whether it was new (`SetCache`, `SortedSetCache`, like `HashSet::insert`) |
//! | `set` | store one value without reading the old one (the cheap write) | `()` for [`RedisCache`]; whether the key was new elsewhere |
//! | `remove` | remove one item, reading it (like `HashMap::remove`) | the old value (`DictCache`, `Region`); whether it was there (sets) |
//! | `delete` | remove one item without reading it | whether it was there |
//! | `extend` | add many items, in batches of one round trip each | how many items were new |
//! | `clear` | delete the whole key | whether it existed |
//! | `exists`, `ttl`, `expire` | about the key as a whole | |
//! | `iter`, `keys`, `values`, `for x in &c` | stream with a `SCAN` (or ranked reads), one page per round trip | an iterator that owns a clone of the handle, items `Result<T>` |
//! | `get_many` | read many items in one command | `Vec<Option<T>>` in the order given |
//!
//! Arguments: lookups borrow like std (`get("a")` on a `DictCache<String, _>`, through
//! [`Borrow`](std::borrow::Borrow)); writes of one item take a reference; bulk writes take an
//! iterator of items by value or borrowed forms ([`EncodesAs`]: `extend(["a", "b"])` on a
//! `SetCache<String>`). Memoized functions take their arguments by value, as the function
//! itself does ([`Memo::call`], [`Memo::forget`], and a region's memoizer alike).
//!
//! # Connections
//!
//! **Servers:** Redis 6.2 or later, and Valkey; the test suite runs against Redis 6.2, 7.0 and
//! Valkey 8.1. Every operation works on all of them with the same number of round trips. The
//! server's version is read once per connection, in its handshake (`INFO server`), and the few
//! commands whose form depends on it are chosen from it without a round trip:
//! [`SentinelCache::claim`] is `SET NX GET` from 7.0 and a script on 6.2. A script checks the
//! user's ACL permissions before writing only from Redis 7.0 (`redis.acl_check_cmd`); on 6.2 a
//! user allowed `EVALSHA` but not a command inside a script can see the script stop after its
//! first writes.
//!
//! Connections come from the environment, read once at first use:
//!
//! | Variable | Connection name |
//! |---|---|
//! | `CACHES_DSN` | `"default"` (and its `#fragment`, if any) |
//! | `CACHES_DSN_1`, `CACHES_DSN_2`, ... (or from `CACHES_DSN_0`) | the `#fragment`, else the number |
//!
//! A gap in the numbering, a name used twice, an unknown scheme or option, or a value that does
//! not parse or is out of range ([`dsn::limits`]) is an [`Error::Config`] naming the variable (never the password). Code can add
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
//! stores any serde type behind a 6-byte header (magic `0xCA`, stored-data format version 2,
//! a fingerprint of the type's *shape*: its field names, types and order, its enum variants),
//! so bytes written by another program, for another type, for an older version of the type,
//! or corrupted, give an [`Error::Decode`] instead of a wrong value. [`Raw`](codec::Raw)
//! stores integers, floats, strings and bytes as Redis-native values, which counters need
//! (`INCRBY`) and `redis-cli` shows readably; `Json` (feature `json`) stores JSON text.
//! Decoding never executes code.
//!
//! Hash fields of a [`DictCache`], members of a [`SetCache`] and [`SortedSetCache`], and a
//! region's entry keys are plain text when their type is a string or an integer, with the
//! default codec and `Raw`: after `insert("ada", ..)`, `HGET key ada`, `SISMEMBER key ada`
//! and `ZSCORE key ada` work from `redis-cli` or any other client. Other types keep the
//! codec's encoding. Codecs whose fields are their values
//! ([`Codec::FIELDS_AS_VALUES`](codec::Codec::FIELDS_AS_VALUES)) write fields as values:
//! `Json` as JSON text (`"ada"`), `Pickle` as pickles, the Python codecs as Python writes them.
//!
//! ## When a type changes
//!
//! The fingerprint sees the type's shape, not its name: a renamed or moved type keeps
//! reading its data, and any change of shape is seen. What a new build gets from a value an
//! older build stored with [`Postcard`](codec::Postcard):
//!
//! | Change | Plain collection (`RedisCache`, `DictCache`, sets, `Region::get`) | Cache (`Memo`, `Region::get_or_insert_with`, `Region::memo`, and a collection built with [`other_shape(OtherShape::Miss)`](OtherShape)) |
//! |---|---|---|
//! | Type renamed or moved, same fields | reads normally | a hit |
//! | Field added, removed, renamed or reordered | [`Error::Decode`] naming the key, the expected and the found fingerprint | a miss: recomputed and written over |
//! | Field type changed (`u32` to `u64`) | `Error::Decode` | a miss |
//! | Enum variant added, removed, renamed or reordered | `Error::Decode` | a miss |
//! | Only the meaning changed (cents to millicents) | reads normally: bump the `schema_version` | a hit: bump the `schema_version` |
//! | `schema_version(n)` bumped on the builder | `Error::Decode` | a miss |
//! | Written by redis-caches 0.1 (format v1) | `Error::Decode` "written by stored-data format v1 (redis-caches 0.1)" | a miss |
//!
//! The [`codec`] module has the details: the shape rule, types whose shape cannot be traced,
//! what each codec refuses rather than store lossily, and what `Json` does on each change.
//!
//! # Regions
//!
//! A [`Region`] is a dotted, nested namespace of typed values: `Region::new("users.42")` is a
//! Redis hash, a child of `users`, and [`Region::invalidate`] makes a region and all its
//! descendants unreachable at once, from any process, in one script whose cost does not depend
//! on how many there are; their keys are deleted afterwards, in the background, in small steps.
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
//! })?; // one script, or nothing on error or panic
//! users.invalidate_on(&Signal::named("user-updated"));
//! Signal::named("user-updated").send()?; // users and users.alice are gone
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! Key layout, for the root `root` (the builder's `root(..)`) and a connection prefix `P`:
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `P{root}#tree` | hash | the root region's generation, the last generation handed out |
//! | `P{root}@1`, `P{root}@4.users`, `P{root}@9.users.alice` | hash | each region's entries, in its current generation |
//! | `P{root}@1#children`, `P{root}@4.users#children` | hash | each region's children: name → generation |
//! | `P{root}#gc` | list | retired generations waiting to be deleted |
//!
//! The root is a Redis Cluster hash tag, so a whole tree lives in one slot. Entry keys are
//! the fields' plain text (as a `String` field of a [`DictCache`]); values are typed per call
//! (`get::<V>`).
//!
//! - Every operation follows the tree's maps from the root to the region's current
//!   generation (one `HGET` per level) before it reads or writes, in one request: a write in
//!   its script, a read in a pipeline whose reply counts only when the maps named the hash it
//!   read (else the read script decides). An
//!   invalidation retires a generation by deleting the one map entry that names it: once
//!   `invalidate()` returns, nothing written below the region before it began is reachable,
//!   for any process; a write concurrent with it lands entirely before (invalidated) or
//!   entirely after (in a new generation, visible). The retired keys are deleted by the
//!   crate's background thread in bounded steps (or by [`Region::reclaim`]), from a queue in
//!   Redis that any process picks up.
//! - Options (TTL, TTL policy, codec, connection, root, [`OutagePolicy`], reclamation) are
//!   copied to children, which may override them for themselves. The parents that
//!   `Region::new("a.b.c")` implies only get generations: nothing is written to their hashes,
//!   so nothing of the leaf's options reaches them. A parent's TTL does not cascade;
//!   invalidation does.
//! - [`Region::dict`] hands out a typed [`DictCache<String, V>`](DictCache) over a region's
//!   hash, in its current generation too.
//! - [`Signal`]s are named, in-process events; [`Region::invalidate_on`] connects a region.
//! - [`Region::get_or_insert_with`] caches a computed value in a region, and
//!   [`Region::memo`] places a [`Memo`] there: its results are fields of the region's hash
//!   (skipped by iteration), invalidated with it and kept for its TTL, with the memo's lock,
//!   statistics and single flight.
//! - Under [`OutagePolicy::Miss`] a region reads as a miss and
//!   skips writes while Redis is down, counting both ([`Region::outage_stats`]); the default
//!   returns the error. Invalidation always reports errors.
//! - A tree written by redis-caches 0.1 is refused with [`Error::OldLayout`] until its root
//!   region is invalidated (see the region module's "Upgrading from 0.1").
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
//! price.forget(7)?;                      // after item 7 changed
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
//! What it does:
//!
//! - **Keys** are `{memo:<name>}.v.<args>`: the name is the function's namespace, the
//!   arguments are their [postcard](https://docs.rs/postcard) bytes, escaped (or hashed,
//!   projected to the arguments that matter, built by your function, or a template such as
//!   `"item:{id}"`), so keys are the same in every process and build and two functions never
//!   collide.
//! - **Fallible functions** ([`Memo::try_builder`]): errors are returned, never cached.
//!   `None` results are cached unless [`skip_none`](MemoBuilder::skip_none).
//! - **Stale-while-revalidate**: a result older than `refresh` is returned at once and
//!   recomputed in the background, on a bounded [`RefreshPool`](memo::RefreshPool). A
//!   failed refresh keeps the stale result until the TTL, and is counted; the default value
//!   is never stored.
//! - **One computation at a time** per arguments across all processes: a lock with an owner
//!   token (`SET NX PX`, released only by its owner, inside a Lua script) and a timeout after
//!   which another caller may try. Callers that miss while another computes wait for its
//!   result (single flight), or get the [default value](MemoBuilder::default_value) at once.
//! - **Statistics** ([`MemoStats`]) live in one Redis hash per function, so all processes add
//!   up; [`reset_stats`](Memo::reset_stats) reads and zeroes them atomically.
//! - **One round trip** for a fresh or a stale hit: the read, the statistics and the lock
//!   attempt run in one script.
//! - **Switches**: [`Memo::disable`] per function and [`memo::disable_all`] per process turn
//!   the cache off (for tests); [`OutagePolicy`] (the same type regions take) chooses between
//!   returning the connection error (default) and computing without the cache when Redis is
//!   down or refuses writes.
//! - **Other shapes of cached results**: a counter changed in place
//!   ([`build_counter`](MemoBuilder::build_counter)), a real Redis list, ordered, with its TTL
//!   ([`build_list`](MemoBuilder::build_list)), a field of one hash
//!   ([`build_hash_field`](MemoBuilder::build_hash_field)), and
//!   [`forget_after`](Memo::forget_after) for functions that change what another cached.
//!
//! [`memo`] has the key layout and the cost of each case.
//!
//! # Errors
//!
//! Every operation returns [`Result`], with one [`Error`] enum whose messages say what failed
//! and name the key or connection; the cause (the `redis` error, the codec's complaint) is
//! the error's [`source`](std::error::Error::source). Classify with [`Error::is_timeout`],
//! [`Error::is_connection`], [`Error::is_outcome_unknown`], [`Error::is_auth`],
//! [`Error::is_permission`], [`Error::is_write_refused`], [`Error::is_wrong_type`],
//! [`Error::is_cross_slot`], [`Error::is_decode`], [`Error::is_config`]; they look at the kind
//! of the cause, never at message text.
//!
//! # Failure modes
//!
//! A cache sits on every request path, so each fault ends in a typed [`Error`] within a bound
//! the DSN sets, never in a hang or a panic, and the same handles work again once the fault is
//! gone: nothing needs rebuilding. This holds for every type ([`RedisCache`], [`DictCache`],
//! [`SetCache`], [`SortedSetCache`], [`SentinelCache`], [`Region`], [`Memo`]).
//!
//! **How long a call may take.** A call's replies share one `timeout`, however many it
//! reads (a script, an `HMGET` of 20,000 fields, a `WRONGTYPE` followed by the `TYPE` that
//! names the type found, a memo's release of an earlier call's lock before its read). Before
//! that clock starts, taking a pooled connection waits up to `pool_timeout` when all are
//! busy, and opening one takes up to `connect_timeout`. Bulk operations whose number of
//! round trips grows with their input (`extend`, [`Memo::clear`]) give each round trip its
//! own `timeout` and stop at the first that fails; so do the operations of two round trips
//! (a `get_or_insert_with` or a memoized call that misses: the read, then the write); an
//! iterator's `next()` is one call. Time spent encoding and decoding values is the
//! caller's own, outside these bounds.
//!
//! | Fault | What the caller sees |
//! |---|---|
//! | Server down, refusing connections, or unreachable | [`Error::Connect`] with the cause, as soon as the attempt fails (within `connect_timeout`); for [`CONNECT_BACKOFF`](connection::CONNECT_BACKOFF) after that, calls that need a new connection get the same error at once. A call already on a connection that breaks gets [`Error::Redis`] (`is_connection`), or [`Error::OutcomeUnknown`] for a write (below). Once the server is back and the back-off window over, the next calls succeed: broken connections, and idle ones opened before a failure the pool saw, are discarded. An idle connection that died unseen (the server restarted between two calls) costs a read or an idempotent write a second attempt within its call, and a write that is never sent twice an [`Error::OutcomeUnknown`] (it was not applied). |
//! | Wrong password, unknown user, rejected certificate | [`Error::Connect`] at once, with [`is_auth`](Error::is_auth) for credentials and the TLS error as the source; never a timeout, and at most one attempt per back-off window. |
//! | Server stalled (overloaded, `SIGSTOP`, network partition) | [`Error::Redis`] with `is_timeout` after the call's `timeout` (1 s by default); that connection is discarded, so a late reply is never read as the answer to another command. With `timeout=0` calls wait as long as the server does. |
//! | A write whose reply is lost (timeout, connection dropped after sending) | Sent again within the call's `timeout` when it is idempotent (`SET`, `HSET`, `SADD`, `DEL`, reads); otherwise [`Error::OutcomeUnknown`]: it may or may not have been applied, and the crate never resends it (counters, `insert`/`remove` returning old values, claims, pops, scripts). The same on one server, a cluster and a Sentinel master. Each type's cost table says which each method is (column "Lost reply"). An idempotent write sent again has its effect once, but what it returns describes the second attempt (`SetCache::insert` may answer `false` for a member the first attempt added). |
//! | Slots moving between cluster masters (resharding) | Nothing, usually: `ASK` and `MOVED` are followed, and a request whose keys are split between the two nodes (`TRYAGAIN`) is sent again within its `timeout`; past it, [`Error::Redis`] with `is_connection` and nothing written. See "Scale: Cluster and Sentinel". |
//! | A cluster master dies | Its keys, and for under a second every key (`CLUSTERDOWN`), fail with `is_connection` errors until its replica is promoted; see "Failover" below for the times and for `WAIT`. |
//! | Every pooled connection in use | [`Error::Pool`] (`is_timeout`) after `pool_timeout`, not a deadlock. |
//! | Server refuses writes (`maxmemory` with `noeviction`, too few replicas, a read-only replica) | [`Error::Redis`] with [`is_write_refused`](Error::is_write_refused); nothing of the operation was written. Reads still work; a memoized value already cached is still served. |
//! | The user lacks an ACL permission | [`Error::Permission`] before anything is written: scripts check every command they run first (on Redis 7.0 and later; Redis 6.2 cannot tell a script, so there a command refused halfway through a script leaves what ran before it; the error is an [`Error::Permission`] there too). A user who may not run `INFO` still connects. |
//! | Redis unavailable during a memoized call or a region operation | As its [`OutagePolicy`] says: `Fail` (the default) returns the error; `Miss` behaves as an empty cache: a memo computes and returns without storing, a region answers reads as misses and skips writes (counted in [`Region::outage_stats`]). A miss whose result could not be stored leaves its lock until `lock_timeout`; the process that lost the reply releases it at its next call, and callers elsewhere wait at most `wait_timeout`, then compute without storing. |
//! | Connection dropped or server killed during an operation | Every request is one command or one script, which Redis applies whole or not at all. Operations of several round trips (`extend` of more than one batch, [`Memo::clear`]) may stop between batches, each batch whole. With persistence (`appendfsync always`), every acknowledged write survives a crash. |
//! | The key is deleted or expires while an iterator runs | The iteration ends early without an error (the next page finds no key); items not yielded yet are lost. |
//! | Bytes another program, another type or another codec wrote, or corrupt bytes | [`Error::Decode`] naming the key (and field); never a wrong value. A memoized result that does not decode is treated as a miss, deleted and computed again. |
//! | The key holds another Redis type | [`Error::WrongType`] naming the key, the expected and the found type; the write changes nothing, its TTL included. [`RedisCache::set`] is the exception: it is Redis' `SET`, which replaces whatever the key holds. |
//! | A value, field or member over the collection's `max_value_size` | [`Error::ValueTooLarge`] before anything is sent; nothing of a refused batch is sent. |
//! | A value over the server's `proto-max-bulk-len` | [`Error::Redis`] naming the key; the connection is replaced and the next calls work. |
//! | A TTL out of range ([`MIN_TTL`]..=[`MAX_TTL`]) | [`Error::Config`] naming the key, from every operation of the handle, before anything is sent ([`Builder::try_build`] reports it when building). |
//! | An invalid DSN or `CACHES_DSN*` variable, an option out of its range | [`Error::Config`] naming the variable or connection and the option, never the password: a DSN whose password an unescaped `/`, `?` or `#` would split is refused, with a hint to percent-encode it. A bad variable is reported by every lookup; it never poisons the registry. |
//!
//! Names and keys are data, never patterns: fields, members, memo arguments and key parts may
//! hold spaces, unicode, `.`, `*`, `?`, `[`, `]` or `\`, and the one `SCAN MATCH` the crate
//! sends ([`Memo::clear`]) escapes its pattern, so clearing a function named
//! `a*` never touches one named `ab`. Region invalidation and reclamation follow the tree's
//! maps, not patterns.
//!
//! No `Debug` or `Display` output, error message or source error of the crate contains a
//! password: DSNs show `***` in its place, and values that might hold part of one are not
//! quoted.
//!
//! ## What the crate trusts
//!
//! Values are decoded only with the codec the collection was built with: postcard, raw and JSON
//! are data formats, and decoding them never executes code (the read-only
//! [`Pickle`](codec) codec refuses every pickle that would). Bytes that the codec
//! did not write for the collection's type give [`Error::Decode`]. The postcard header's type
//! fingerprint guards against mistakes (another type, another program), not against an
//! attacker: anyone who can write to your Redis can store valid values, so Redis access, and its
//! credentials and TLS, remain the trust boundary.
//!
//! # Scale: Cluster and Sentinel
//!
//! The same code runs on one server, on a Redis Cluster, or on a master that Redis Sentinel
//! keeps available: only the DSN changes. Every type ([`RedisCache`], [`DictCache`],
//! [`SetCache`], [`SortedSetCache`], [`SentinelCache`], [`Region`], [`Memo`]) has the same API
//! on all three; the tests run each type's scenarios on a real cluster and a real Sentinel
//! group, and kill a master under a workload of all of them.
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
//! **Cluster.** Each request goes to the node that owns its key's hash slot, as the crate's
//! own slot map says: a `MOVED` updates it (and the whole map is read again with
//! `CLUSTER SLOTS`), an `ASK` sends the request once to the importing node with `ASKING`, and
//! `TRYAGAIN` or `CLUSTERDOWN` are retried within the call's `timeout`: none of these ran the
//! command. A script runs on one node, so all its keys must be in one slot: when they are not,
//! the operation fails with [`Error::CrossSlot`] ([`is_cross_slot`](Error::is_cross_slot),
//! "a multi-key operation across slots") and nothing is written, since Redis refuses it
//! (`CROSSSLOT`) before it runs. On one server or a Sentinel-managed master there is no such
//! constraint.
//!
//! **Resharding.** Slots can move between masters while the same handles serve traffic
//! (`redis-cli --cluster add-node`, `reshard`, `rebalance`): no restart, no rebuilt handle. While
//! a slot migrates, an operation whose keys are all on one of the two nodes runs there whole
//! (a key already moved, or not created yet, is served by the importing node through `ASK`);
//! one whose keys are split between them (a region read or write whose hash moved before its
//! tree's maps, a multi-key read, a region invalidation whose tree is half moved: region
//! scripts declare every key of the tree they touch, see the region module's "Redis
//! Cluster") gets `TRYAGAIN` before anything runs,
//! and is sent again until the slot's last keys have moved, within its `timeout`; if that is
//! not soon enough it fails with an error for which [`Error::is_connection`] is true, having
//! written nothing. Once the slot is handed over, `MOVED` points every pooled connection at the
//! new owner. The tests move a third of the slots to a new master and back under a workload of
//! every type from four threads, on Redis 6.2, 7.0 and Valkey 8.1: no call failed (with a
//! 2 s `timeout`), no write was applied twice or in part, and the slowest call took under 0.7 s
//! (`benches/RESULTS.md`).
//!
//! **Hash tags.** When a key contains `{...}`, Redis Cluster hashes only the text between the
//! first `{` and the next `}`: `{user42}.cart` and `{user42}.visits` are in one slot. What
//! each type does:
//!
//! | Type | Keys | Hash tag | On a cluster |
//! |---|---|---|---|
//! | [`RedisCache`], [`DictCache`], [`SetCache`], [`SortedSetCache`], [`SentinelCache`] | one key per collection | none (yours if you give one) | every operation touches only the collection's key, including the bulk ones (`extend`, `get_many`), scripts (writes with a TTL, `insert`, `pop_item`) and iteration (`HSCAN`, `SSCAN`, `ZRANGE` pages), so any key works and collections spread over the masters. [`RedisCache::get_many`] and set algebra touch several keys: give them a common tag |
//! | [`SetCache`] set algebra: `union`, `intersection`, `difference` and their `*_store` forms | the operands and the destination | yours to give: tag them alike | one command over several keys: in different slots it is [`Error::CrossSlot`], and the destination is left as it was |
//! | [`Region`] | `{root}#tree`, `{root}@<n>.a.b` (hashes), `{root}@<n>.a#children` (maps), `{root}#gc` | the root, always | a whole tree is in one slot, which every script needs (they follow the tree's maps to a region's current generation at run time, and a memo in a region keeps its lock and statistics there too); one tree lives on one master, so spread load with several roots |
//! | [`Memo`] | `{memo:<name>}.v.<args>`, `.lock.<args>`, `.stats`, `.h` | the function's name, always | a call reads and writes value, lock and statistics in one script; [`clear`](Memo::clear) scans only the master serving the function's slot (`SCAN` cannot be sent anywhere else), where all its keys are; one function's results live on one master |
//!
//! [`Key::with_hash_tag`](key::Key::with_hash_tag) wraps a key's first element (the
//! collection prefix when there is one) in braces. The connection `prefix` comes before the
//! tag and may not contain braces, so it never moves a key to another slot.
//!
//! ```no_run
//! use redis_caches::{Connection, SetCache, key::Key};
//!
//! let cluster = Connection::open("cluster", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")?;
//! // {teams}.red and {teams}.blue: one slot, so they can be combined in one command.
//! let team = |name: &str| -> SetCache<String> {
//!     SetCache::builder(Key::from_parts(["teams", name]).with_hash_tag())
//!         .connection(&cluster)
//!         .build()
//! };
//! let (red, blue) = (team("red"), team("blue"));
//! red.insert("ada")?;
//! let everyone = red.union([&blue])?;
//! // Sets in different slots: a typed error, nothing sent.
//! let loose: SetCache<String> = SetCache::builder("loose").connection(&cluster).build();
//! assert!(red.union([&loose]).unwrap_err().is_cross_slot());
//! # Ok::<(), redis_caches::Error>(())
//! ```
//!
//! **Failover.** When a master dies, its replica takes over: on a cluster after
//! `cluster-node-timeout` and an election, under Sentinel after `down-after-milliseconds` and
//! an election. Meanwhile operations on the keys it served fail with an error for which
//! [`Error::is_connection`] is true (the node refuses connections, `CLUSTERDOWN`, no master
//! known yet), after retrying within their `timeout` what certainly did not run; a call that
//! was waiting on the dead node when it died may also see [`Error::is_timeout`]. A pooled
//! connection that sees such an error, or `READONLY` from a demoted master, is dropped
//! together with its idle siblings, and the connections opened next ask the cluster (or the
//! sentinels) again. So the same handles work again as soon as the replica is promoted, with
//! nothing to rebuild.
//!
//! | Deployment | Operations resume after a master is killed, at most |
//! |---|---|
//! | Cluster | `cluster-node-timeout` + 2.5 s (measured: 1.7 to 3.5 s with `cluster-node-timeout 1000`, 3.4 to 4.4 s with `2000`): the node is suspected after `cluster-node-timeout` and marked failed once a majority of masters agree (their pings are up to half that apart), then its replica waits 0.5 to 1 s and wins the election |
//! | Sentinel | `down-after-milliseconds` + 1.5 s: the sentinels agree, elect a leader, promote the replica |
//!
//! The crate's tests (`cluster-node-timeout 1000`, `down-after-milliseconds 500`) hold every
//! type to these figures, plus the `timeout` of a call already waiting, plus 25%.
//!
//! Add the `pool_timeout` (or `timeout`) of a call already waiting. **Keys on the surviving
//! masters fail too** for part of that time: by default Redis Cluster refuses every key
//! (`CLUSTERDOWN`) from the moment the dead master is marked failed until its replica is
//! promoted (measured: 0.4 to 0.8 s), because not every slot is served. A master that dies
//! with all its replicas leaves the whole cluster down until it is back. With
//! `cluster-require-full-coverage no` in the servers' configuration, the surviving masters
//! keep serving their keys, and only the dead master's slots fail; the crate needs no option
//! for it.
//!
//! Redis replicates asynchronously: a write acknowledged just before the master died may be
//! lost unless it had reached a replica; writes that had are all there after the failover,
//! for every type. This holds for [`SentinelCache::claim`] too: a claim the dead master had not
//! passed on can be won a second time on the new one. To make sure writes survive, wait for a
//! replica after them with Redis' `WAIT`, which must run on the connection to the master that
//! has the writes: write a marker in the same slot and `WAIT` in one pipeline on a pooled
//! connection (routed by the marker's key). Replication is ordered, so once a replica has the
//! marker it has every write acknowledged before it:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use redis_caches::{Connection, RedisCache};
//!
//! let cluster = Connection::open("cluster", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")?;
//! let orders: RedisCache<u64> = RedisCache::builder("{shop}.orders").connection(&cluster).build();
//! orders.set(&42)?;
//! // One replica has `{shop}.orders` (and everything written before) within 100 ms, or `acked` is 0.
//! let (acked,): (u32,) = redis::pipe()
//!     .cmd("SET").arg("{shop}.replicated").arg(1).ignore()
//!     .cmd("WAIT").arg(1).arg(100)
//!     .query(&mut *cluster.get()?)?;
//! # Ok(()) }
//! ```
//!
//! A write whose reply was lost in the failover is never sent again by the crate unless it is
//! idempotent ([`Error::OutcomeUnknown`]).
//!
//! # Features
//!
//! - `tls`: `rediss://` connections through rustls.
//! - `json`: the `codec::Json` codec, and `codec::PythonJson` (pottery's JSON) for
//!   [`Layout::Pottery`].
//! - `pickle`: the `codec::Pickle` codec, which reads plain data that Python pickled.
//!
//! # Sharing data with Python services
//!
//! [`Layout`]s, chosen with [`Builder::layout`], name keys and encode fields, members and
//! scores exactly as Python's `caches`, `pottery` and `region-cache` do, so that a Rust
//! service and a Python service can share data during a migration; `docs/migration.md` in the
//! repository is the guide.

mod borrowed;
pub mod cache;
pub mod codec;
pub mod connection;
mod deadline;
pub mod dict;
pub mod dsn;
mod engine;
mod error;
mod handle;
pub mod key;
pub mod layout;
pub mod memo;
pub mod near;
mod options;
pub mod region;
pub mod sentinel;
pub mod set;
pub mod signal;
pub mod sorted_set;

pub use borrowed::EncodesAs;
pub use cache::{CounterCache, RedisCache};
pub use connection::Connection;
pub use dict::DictCache;
pub use dsn::Dsn;
pub use error::{Error, Result};
pub use layout::Layout;
pub use memo::{Memo, MemoBuilder, MemoStats};
pub use near::{NearCache, NearCacheStats};
pub use options::{
    Builder, Collection, DEFAULT_MAX_VALUE_SIZE, MAX_TTL, MIN_TTL, OtherShape, OutagePolicy, Ttl,
    TtlPolicy,
};
pub use region::Region;
pub use sentinel::SentinelCache;
pub use set::SetCache;
pub use signal::Signal;
pub use sorted_set::SortedSetCache;

/// The code blocks of `README.md`, compiled (and run where not `no_run`) as doctests, so the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
