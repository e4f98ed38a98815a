//! Typed, Redis-backed collections and caches with a synchronous API.
//!
//! `redis_caches` puts Redis behind the data structures you already know: a single value
//! ([`RedisCache`]). Handles are cheap views of shared remote state: every thread and every
//! process that builds one with the same key sees the same data.
//!
//! # Contents
//!
//! - [Quick start](#quick-start)
//! - [Connections](#connections)
//! - [Keys](#keys)
//! - [Encoding](#encoding)
//! - [Errors](#errors)
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
//! # Errors
//!
//! Every operation returns [`Result`], with one [`Error`] enum whose messages name the key
//! or connection. Classify with [`Error::is_timeout`], [`Error::is_connection`],
//! [`Error::is_decode`], [`Error::is_config`]. Operations time out after the DSN's `timeout`
//! (1 s by default) instead of hanging.
//!
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
pub mod dsn;
mod error;
pub mod key;
mod options;

pub use cache::RedisCache;
pub use connection::Connection;
pub use dsn::Dsn;
pub use error::{Error, Result};
pub use options::{Builder, Collection, DEFAULT_MAX_VALUE_SIZE, Ttl, TtlPolicy};
