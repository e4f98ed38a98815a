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
//! # Features
//!
//! - `tls`: `rediss://` connections through rustls.
//! - `json`: the [`Json`](codec::Json) codec.

#![warn(missing_docs)]

pub mod cache;
pub mod codec;
pub mod connection;
pub mod dsn;
mod error;
pub mod key;
mod options;
pub mod sentinel;
pub mod set;
pub mod sorted_set;

pub use cache::RedisCache;
pub use connection::Connection;
pub use dsn::Dsn;
pub use error::{Error, Result};
pub use options::{Builder, Collection, DEFAULT_MAX_VALUE_SIZE, Ttl, TtlPolicy};
pub use sentinel::SentinelCache;
pub use set::SetCache;
pub use sorted_set::SortedSetCache;
