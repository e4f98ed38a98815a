//! Named connections: r2d2 pools of Redis connections, created lazily.
//!
//! The environment configures the registry the first time any connection is looked up:
//! `CACHES_DSN` is the connection named [`DEFAULT_CONNECTION`] (`"default"`), and
//! `CACHES_DSN_1`, `CACHES_DSN_2`, ... (or from `CACHES_DSN_0`) are named by their `#fragment`,
//! or by their number. [`register`] adds connections from code. Collections pick one with the
//! builder's `connection("name")` (or a [`Connection`] handle directly).
//!
//! The DSN picks the topology: one server, a Redis Cluster (`redis+cluster://`), or the
//! master of a Sentinel-managed group (`redis+sentinel://`); see the crate docs, "Scale:
//! Cluster and Sentinel".
//!
//! # What a call costs, and how long it may take
//!
//! Taking a connection from the pool costs no round trip (no `PING` on checkout). A new
//! connection is opened by the caller that needs it, within `connect_timeout` (its handshake
//! included: `AUTH`, `SELECT`, `INFO server`); then the call's replies share one `timeout`,
//! however many there are. When every connection is in use, a call waits up to
//! `pool_timeout` for one.
//!
//! A connection that cannot be opened (refused, unreachable, wrong password, bad
//! certificate) fails the call at once with [`Error::Connect`] and the real cause; for a short
//! back-off window ([`CONNECT_BACKOFF`]) afterwards, calls that would need a new connection
//! get the same error without trying again, so a dead server or a wrong password does not cost
//! every caller a connection attempt, and the server is not flooded with failing `AUTH`s. An
//! I/O failure on a pooled connection discards it with every idle connection opened before it,
//! so after a server restart the pool recovers by itself.
//!
//! # Retries
//!
//! Within its `timeout`, a call is sent again when Redis certainly did not run it: the
//! connection broke before the command was written, or the server answered `TRYAGAIN`,
//! `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` or `READONLY` (a failover or resharding under way).
//! A command whose reply was lost is sent again only if it is idempotent (reads, plain
//! overwrites); any other write fails with [`Error::OutcomeUnknown`]. When the deadline ends
//! the retries, the error is what kept the call from running (`CLUSTERDOWN`, a node refusing
//! connections), not only that time ran out.
//!
//! # Example
//!
//! ```no_run
//! use redis_caches::{connection, RedisCache};
//!
//! connection::register("sessions", "redis://127.0.0.1:6380/1?timeout=250ms")?;
//! let token: RedisCache<String> = RedisCache::builder(["token", "alice"]).connection("sessions").build();
//! token.set("s3cr3t")?;
//! # Ok::<(), redis_caches::Error>(())
//! ```

mod cluster;
mod endpoint;
mod node;
mod pool;
mod raw;
mod redis_sentinel;
pub(crate) mod tracking;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use redis::Value;

use crate::deadline::{Call, Deadline};
pub use crate::dsn::DEFAULT_CONNECTION;
use crate::dsn::{Dsn, Target};
use crate::error::{Error, Result};

use endpoint::Endpoints;
pub(crate) use node::Packed;
pub(crate) use node::ServerInfo;
use node::{Failure, NodeSettings};
use pool::Topology;
pub use pool::{Manager, RedisConn};
pub use tracking::TRACKING_CLIENT_NAME;
use tracking::{Addressing, Tracking};

/// How long, after a connection attempt failed, calls that need a new connection get that
/// failure again without trying: long enough that a dead server or a wrong password costs at
/// most a few attempts a second, short enough to notice quickly that the server is back.
/// After the window one caller tries again while the others wait for its outcome (at most
/// `connect_timeout`): one attempt per window however many callers there are, and every
/// caller served as soon as the server is back.
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// The first pause before sending a call again; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two attempts of one call.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A handle to one named connection pool. Cheap to clone; clones share the pool.
///
/// `Debug` shows the name and the DSN with its password redacted.
///
/// # Example
///
/// ```no_run
/// use redis_caches::Connection;
///
/// let conn = Connection::open("scratch", "redis://127.0.0.1:6379/0")?;
/// let pong: String = redis::cmd("PING").query(&mut *conn.get()?).map_err(|e| redis_caches::Error::Redis { target: "ping".into(), source: e })?;
/// assert_eq!(pong, "PONG");
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    dsn: Dsn,
    pool: r2d2::Pool<Manager>,
    generation: Arc<AtomicU64>,
    /// The last failed connection attempt, for [`CONNECT_BACKOFF`].
    failed: Mutex<Attempts>,
    /// Signalled when an attempt after a failure ends (see [`Connection::claim_attempt`]).
    attempt_ended: std::sync::Condvar,
    topology: Arc<Topology>,
    /// The near cache of the DSN's `near_cache` option.
    near: Option<crate::NearCache>,
    /// The near cache's tracking connections, set up at the first near-cache read.
    tracking: once_cell::sync::OnceCell<Arc<Tracking>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.inner.name)
            .field("dsn", &self.inner.dsn)
            .finish()
    }
}

/// A pooled connection, returned to its pool when dropped. Derefs to [`RedisConn`], which
/// implements [`redis::ConnectionLike`], so raw `redis` commands can run on it.
pub type Pooled = r2d2::PooledConnection<Manager>;

/// Whether a command may be sent again after its reply was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read, or a write that gives the same result when applied twice (`SET`, `HSET` of a
    /// value, `DEL`).
    Idempotent,
    /// Applying it twice would differ (counters, `insert` returning the old value, claims,
    /// pops, scripts with side effects): a lost reply is [`Error::OutcomeUnknown`].
    Once,
}

impl Connection {
    /// Builds a pool for `dsn` under `name` without registering it. No I/O happens until the
    /// first command.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the DSN does not parse or names a feature this build lacks.
    ///
    /// # Example
    ///
    /// ```
    /// let conn = redis_caches::Connection::open("local", "redis://127.0.0.1:1/0")?;
    /// assert_eq!(conn.name(), "local");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn open(name: &str, dsn: &str) -> Result<Connection> {
        Connection::from_dsn(name, Dsn::parse_from(dsn, name)?)
    }

    /// Builds a pool for an already parsed DSN. See [`Connection::open`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the DSN names a feature this build lacks (TLS without the `tls`
    /// feature) or a TLS file that cannot be read.
    ///
    /// ```
    /// use redis_caches::{Connection, Dsn};
    /// let conn = Connection::from_dsn("local", Dsn::parse("redis://127.0.0.1:1")?)?;
    /// assert_eq!(conn.dsn().db(), 0);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn from_dsn(name: &str, dsn: Dsn) -> Result<Connection> {
        // r2d2 panics on a zero size or timeout; the DSN parser refuses them, this keeps a
        // hand-built `Dsn` from ever reaching that panic.
        if dsn.pool_size() == 0 || dsn.pool_timeout().is_zero() {
            return Err(Error::config(
                name,
                "pool_size and pool_timeout must be greater than zero",
            ));
        }
        let topology = Arc::new(topology_for(name, &dsn)?);
        let generation = Arc::new(AtomicU64::new(0));
        let manager = Manager {
            topology: topology.clone(),
            generation: generation.clone(),
            timeout: dsn.timeout(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(dsn.pool_size())
            .min_idle(Some(0))
            .connection_timeout(dsn.pool_timeout())
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        let near = dsn.near_cache().map(crate::NearCache::with_capacity);
        Ok(Connection {
            inner: Arc::new(Inner {
                name: name.to_string(),
                dsn,
                pool,
                generation,
                failed: Mutex::new(Attempts::default()),
                attempt_ended: std::sync::Condvar::new(),
                topology,
                near,
                tracking: once_cell::sync::OnceCell::new(),
            }),
        })
    }

    /// The name this connection was opened or registered under.
    ///
    /// ```
    /// # let conn = redis_caches::Connection::open("n", "redis://h")?;
    /// assert_eq!(conn.name(), "n");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The parsed DSN (its password is never shown).
    ///
    /// ```
    /// # let conn = redis_caches::Connection::open("n", "redis://:pw@h/4")?;
    /// assert_eq!(conn.dsn().db(), 4);
    /// assert!(!format!("{conn:?}").contains("pw"));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn dsn(&self) -> &Dsn {
        &self.inner.dsn
    }

    /// The key prefix of this connection (`prefix` DSN option).
    ///
    /// ```
    /// # let conn = redis_caches::Connection::open("n", "redis://h?prefix=app:")?;
    /// assert_eq!(conn.prefix(), "app:");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn prefix(&self) -> &str {
        self.inner.dsn.prefix()
    }

    /// The underlying r2d2 pool.
    ///
    /// ```
    /// # let conn = redis_caches::Connection::open("n", "redis://h?pool_size=3")?;
    /// assert_eq!(conn.pool().max_size(), 3);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pool(&self) -> &r2d2::Pool<Manager> {
        &self.inner.pool
    }

    /// The [`NearCache`](crate::NearCache) the DSN's `near_cache` option gives every handle on
    /// this connection (a handle's builder may give its own instead).
    ///
    /// ```
    /// # let conn = redis_caches::Connection::open("n", "redis://h?near_cache=100")?;
    /// assert!(conn.near_cache().is_some());
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn near_cache(&self) -> Option<&crate::NearCache> {
        self.inner.near.as_ref()
    }

    /// The near cache's tracking, set up at the first near-cache read (no I/O here: tracking
    /// connections open when a read needs one).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] over TLS, which the tracking connections do not support yet.
    pub(crate) fn tracking(&self) -> Result<&Arc<Tracking>> {
        let inner = &self.inner;
        inner.tracking.get_or_try_init(|| {
            if inner.dsn.tls().is_some() {
                return Err(Error::config(
                    &inner.name,
                    "a near cache is not available over TLS yet: its tracking connection is a \
                     plain TCP or Unix socket",
                ));
            }
            let addressing = match (&*inner.topology, inner.dsn.target()) {
                (Topology::Cluster(cluster), _) => Addressing::Cluster(cluster.clone()),
                (Topology::Sentinel(_), _) => Addressing::Sentinel(inner.topology.clone()),
                (_, Target::Tcp { host, port }) => Addressing::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                #[cfg(unix)]
                (_, Target::Unix(path)) => Addressing::Unix(path.clone()),
                _ => {
                    return Err(Error::config(
                        &inner.name,
                        "a near cache needs a TCP or Unix socket connection",
                    ));
                }
            };
            Ok(Arc::new(Tracking::new(
                &inner.name,
                addressing,
                node_settings(&inner.dsn),
            )))
        })
    }

    /// The tracking, if a near-cache read has set it up: writes stamp their keys in it.
    pub(crate) fn tracking_started(&self) -> Option<&Arc<Tracking>> {
        self.inner.tracking.get()
    }

    /// Takes a connected connection from the pool, opening one if none is idle. No round trip
    /// is spent on an idle connection; idle connections older than the last observed I/O
    /// failure are discarded instead of handed out.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when a connection had to be opened and could not be (refused,
    /// unreachable, rejected credentials or certificate); [`Error::Pool`] when every
    /// connection stayed in use for `pool_timeout`.
    ///
    /// ```no_run
    /// # let conn = redis_caches::Connection::open("n", "redis://127.0.0.1")?;
    /// let mut c = conn.get()?;
    /// let _: () = redis::cmd("PING").query(&mut *c).unwrap();
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get(&self) -> Result<Pooled> {
        self.checkout(&Call::new(self.inner.dsn.timeout()))
    }

    /// A connected connection: idle, or opened now within `connect_timeout` (and the call's
    /// deadline, once its clock runs).
    fn checkout(&self, call: &Call) -> Result<Pooled> {
        let inner = &self.inner;
        loop {
            let mut conn = inner.pool.get().map_err(|_| Error::Pool {
                connection: inner.name.clone(),
                waited: inner.dsn.pool_timeout(),
                size: inner.dsn.pool_size(),
            })?;
            if conn.generation < inner.generation.load(Ordering::Acquire) {
                // Opened before a failure was seen on a sibling: likely dead too. Drop it.
                conn.discard();
                continue;
            }
            if conn.is_connected() {
                return Ok(conn);
            }
            let claimed = match self.claim_attempt(call) {
                Ok(claimed) => claimed,
                Err(e) => {
                    conn.discard();
                    return Err(Error::Connect {
                        connection: inner.name.clone(),
                        source: e,
                    });
                }
            };
            let deadline = call.started().unwrap_or_else(Deadline::never);
            let outcome = conn.connect(&deadline);
            {
                let mut attempts = self.failed();
                match &outcome {
                    Ok(()) => attempts.failed = None,
                    Err(e) => attempts.failed = Some((Instant::now(), e.clone())),
                }
                if claimed {
                    attempts.in_flight = false;
                    self.inner.attempt_ended.notify_all();
                }
            }
            match outcome {
                Ok(()) => return Ok(conn),
                Err(e) => {
                    conn.discard();
                    return Err(Error::Connect {
                        connection: inner.name.clone(),
                        source: e,
                    });
                }
            }
        }
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.inner
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this caller may try to open a connection, and whether it makes the one
    /// attempt after a failure (`Ok(true)`: it must end it, see [`checkout`]). Within
    /// [`CONNECT_BACKOFF`] of a failed attempt, the error is that attempt's. After the window,
    /// one caller makes the next attempt while the others wait for its outcome (at most
    /// `connect_timeout`, within their call's deadline): the error if it failed, a fresh
    /// attempt of their own if it succeeded. So a server that stays down sees one attempt per
    /// window however many callers wait, and one that is back serves every caller at once.
    ///
    /// [`checkout`]: Connection::checkout
    fn claim_attempt(&self, call: &Call) -> std::result::Result<bool, redis::RedisError> {
        let mut attempts = self.failed();
        loop {
            match &attempts.failed {
                None => return Ok(false),
                Some((at, e)) if at.elapsed() < CONNECT_BACKOFF => return Err(e.clone()),
                Some((_, e)) if attempts.in_flight => {
                    let mut wait = self.inner.dsn.connect_timeout();
                    if let Some(started) = call.started() {
                        match started.remaining() {
                            Some(left) if left.is_zero() => return Err(e.clone()),
                            Some(left) => wait = wait.min(left),
                            None => {}
                        }
                    }
                    let (next, timed_out) = self
                        .inner
                        .attempt_ended
                        .wait_timeout(attempts, wait)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    attempts = next;
                    if timed_out.timed_out()
                        && attempts.in_flight
                        && let Some((_, e)) = &attempts.failed
                    {
                        return Err(e.clone());
                    }
                }
                Some(_) => {
                    attempts.in_flight = true;
                    return Ok(true);
                }
            }
        }
    }

    /// Sends one request (a command or a script, already packed) about `key` and returns its
    /// reply, which may be an error reply (`Value::ServerError`) for the caller to classify.
    /// Sends it again within the call's deadline when Redis certainly did not run it, or when
    /// `retry` allows; see the [module docs](self#retries).
    pub(crate) fn request(
        &self,
        call: &mut Call,
        key: &[u8],
        packed: &[u8],
        retry: Retry,
    ) -> Result<Value> {
        self.send(call, key, Packed::Fixed(packed), 1, retry)
    }

    /// [`request`](Connection::request) for a pipeline of `replies` commands whose keys share
    /// `key`'s hash slot: one round trip, its replies in order (error replies among them as
    /// `Value::ServerError`). Sent again as a whole when `retry` allows; on a cluster,
    /// redirections inside it come back as error replies, for the caller to send what they
    /// name another way (a script, which follows them).
    pub(crate) fn request_many(
        &self,
        call: &mut Call,
        key: &[u8],
        packed: &[u8],
        replies: usize,
        retry: Retry,
    ) -> Result<Vec<Value>> {
        match self.send(call, key, Packed::Fixed(packed), replies, retry)? {
            // One command's reply is its own, an array included.
            reply if replies == 1 => Ok(vec![reply]),
            Value::Array(replies) => Ok(replies),
            // Never: a pipeline's replies come as an array.
            other => Ok(vec![other]),
        }
    }

    /// [`request`](Connection::request) for a command whose form depends on the server's
    /// version: `build` makes it for the server that will run it (known from the connection's
    /// handshake, so choosing costs no round trip).
    pub(crate) fn request_for(
        &self,
        call: &mut Call,
        key: &[u8],
        build: &dyn Fn(&ServerInfo) -> Vec<u8>,
        retry: Retry,
    ) -> Result<Value> {
        self.send(call, key, Packed::For(build), 1, retry)
    }

    fn send(
        &self,
        call: &mut Call,
        key: &[u8],
        packed: Packed<'_>,
        replies: usize,
        retry: Retry,
    ) -> Result<Value> {
        let target = || String::from_utf8_lossy(key).into_owned();
        let mut pause = FIRST_RETRY_PAUSE;
        let mut attempt = 0u32;
        // The last failure that was not the deadline itself: when the deadline ends the
        // retries, the caller learns what kept failing (`CLUSTERDOWN`, a node refusing
        // connections), not only that time ran out.
        let mut cause: Option<Cause> = None;
        loop {
            attempt += 1;
            let mut conn = match self.checkout(call) {
                Ok(conn) => conn,
                Err(e @ Error::Connect { .. }) if self.may_heal() && call.started().is_some() => {
                    // A failover: the next attempt asks the cluster or the sentinels again.
                    let deadline = call.deadline();
                    if !deadline.sleep(pause) {
                        return Err(e);
                    }
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(server) = conn.server().filter(|s| s.older_than(OLDEST_SERVER)) {
                let bytes = packed.bytes(server);
                return Err(Error::Unsupported {
                    operation: format!("{} on {}", command_name(&bytes), target()),
                    needs: OLDEST_SERVER_NAME,
                    found: server.to_string(),
                });
            }
            let deadline = call.deadline();
            match conn.request(key, &packed, replies, &deadline) {
                Ok(Value::ServerError(e)) if not_run_and_transient(&reply_code(&e)) => {
                    self.after_topology_error(&mut conn, &reply_code(&e));
                    drop(conn);
                    if !deadline.sleep(pause) {
                        return Ok(Value::ServerError(e));
                    }
                    cause = Some(Cause::Reply(e));
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Ok(reply) => return Ok(reply),
                Err(Failure::NotSent(e)) => {
                    self.observe(&mut conn, &e);
                    drop(conn);
                    if !e.is_timeout() {
                        cause = Some(Cause::Failed(e.clone()));
                    }
                    // The first retry is immediate: a stale idle connection is the usual
                    // cause, and a fresh one usually works.
                    if deadline.expired() || (attempt > 1 && !deadline.sleep(pause)) {
                        return match cause {
                            Some(Cause::Reply(reply)) if e.is_timeout() => {
                                Ok(Value::ServerError(reply))
                            }
                            Some(Cause::Failed(cause)) if e.is_timeout() => {
                                Err(Error::redis(target(), cause))
                            }
                            _ => Err(Error::redis(target(), e)),
                        };
                    }
                    if attempt > 1 {
                        pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    }
                }
                Err(Failure::Unknown(e)) => {
                    self.observe(&mut conn, &e);
                    drop(conn);
                    match retry {
                        Retry::Idempotent if !deadline.expired() => {}
                        Retry::Idempotent => return Err(Error::redis(target(), e)),
                        Retry::Once => {
                            return Err(Error::OutcomeUnknown {
                                target: target(),
                                source: e,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Whether a failed connection attempt can heal within a call: on a cluster or under
    /// Sentinel, a failover gives the slots or the service a new master.
    fn may_heal(&self) -> bool {
        !matches!(
            self.inner.dsn.target(),
            Target::Tcp { .. } | Target::Unix(_)
        )
    }

    /// After `TRYAGAIN`, `READONLY` and the like: on a cluster, refresh the slot map; under
    /// Sentinel, a demoted master means every pooled connection is stale.
    fn after_topology_error(&self, conn: &mut Pooled, code: &str) {
        if !matches!(code, "READONLY" | "MASTERDOWN" | "CLUSTERDOWN") {
            return;
        }
        if let Some(cluster) = conn.cluster() {
            cluster.mark_stale();
        } else if matches!(conn.topology(), Topology::Sentinel(_)) {
            conn.discard();
            self.inner
                .generation
                .fetch_max(conn.generation + 1, Ordering::AcqRel);
            if let Some(tracking) = self.tracking_started() {
                tracking.reset();
            }
        }
    }

    /// After a failed request: the connection is discarded (done by the node already); an
    /// I/O failure (not a timeout) also retires the idle connections opened before it.
    fn observe(&self, conn: &mut Pooled, e: &redis::RedisError) {
        conn.discard();
        if !e.is_timeout()
            && (e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal())
        {
            self.inner
                .generation
                .fetch_max(conn.generation + 1, Ordering::AcqRel);
            if let Some(cluster) = conn.cluster() {
                cluster.mark_stale();
            }
        }
    }

    /// Whether `self` and `other` reach the same Redis database (the same pool, or the same
    /// server address and database number), so that one command may read keys of both.
    pub(crate) fn same_database(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.dsn.target() == other.inner.dsn.target()
                && self.inner.dsn.db() == other.inner.dsn.db())
    }
}

/// Why an earlier attempt of a call did not run: reported when the deadline ends the retries.
/// Connection attempts that failed (see [`Connection::claim_attempt`]).
#[derive(Default)]
struct Attempts {
    /// The last failed attempt, until an attempt succeeds.
    failed: Option<(Instant, redis::RedisError)>,
    /// A caller is making the one attempt after a failure.
    in_flight: bool,
}

enum Cause {
    /// A transient error reply (`CLUSTERDOWN`, `TRYAGAIN`, ...).
    Reply(redis::ServerError),
    /// A connection that could not be opened or written to.
    Failed(redis::RedisError),
}

/// The oldest Redis version the crate sends commands to (see the README's server table).
const OLDEST_SERVER: (u16, u16, u16) = (6, 2, 0);
/// [`OLDEST_SERVER`] as [`Error::Unsupported`] names it.
const OLDEST_SERVER_NAME: &str = "Redis 6.2 or later (or Valkey)";

/// The name of the command in a packed request, for errors.
fn command_name(packed: &[u8]) -> String {
    let name = raw::command_name(packed).unwrap_or_default();
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

/// The code of an error reply, seen through Redis 6.2's wrapping of errors raised inside a
/// script (see [`unwrap_script_error`](crate::error::unwrap_script_error)).
fn reply_code(e: &redis::ServerError) -> String {
    if e.code() == "ERR" || e.details().is_some_and(|d| d.contains("non local key")) {
        let unwrapped = crate::error::unwrap_script_error(redis::RedisError::from(e.clone()));
        if let Some(code) = unwrapped.code() {
            return code.to_string();
        }
    }
    e.code().to_string()
}

/// Error replies after which Redis certainly did not run the command, and a later attempt
/// may succeed.
fn not_run_and_transient(code: &str) -> bool {
    matches!(
        code,
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" | "READONLY"
    )
}

/// How a pool makes connections for the topology its DSN names.
fn topology_for(name: &str, dsn: &Dsn) -> Result<Topology> {
    let endpoints = Endpoints::new(name, dsn)?;
    let settings = node_settings(dsn);
    Ok(match dsn.target() {
        Target::Unix(path) => Topology::Single {
            client: Endpoints::unix_client(path, settings.redis_info())
                .map_err(|e| Error::config(name, e.to_string()))?,
            settings,
        },
        Target::Tcp { host, port } => Topology::Single {
            client: endpoints
                .client(host, *port, settings.redis_info())
                .map_err(|e| endpoints.setup_error(name, &e))?,
            settings,
        },
        Target::Cluster(seeds) => {
            let seeds = seeds.iter().map(|n| (n.host.clone(), n.port)).collect();
            Topology::Cluster(Arc::new(cluster::ClusterTopology::new(
                seeds, endpoints, settings,
            )))
        }
        Target::Sentinel { sentinels, service } => {
            let bare = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
            let sentinels = sentinels
                .iter()
                .map(|n| {
                    Ok((
                        n.to_string(),
                        endpoints.client(&n.host, n.port, bare.clone())?,
                    ))
                })
                .collect::<redis::RedisResult<Vec<_>>>()
                .map_err(|e| endpoints.setup_error(name, &e))?;
            Topology::Sentinel(redis_sentinel::SentinelMaster::new(
                service.clone(),
                sentinels,
                settings,
                endpoints,
            ))
        }
    })
}

/// What opening a connection to one of the DSN's servers needs besides its address.
fn node_settings(dsn: &Dsn) -> NodeSettings {
    NodeSettings {
        username: dsn.username().map(str::to_string),
        password: dsn.password().map(str::to_string),
        db: dsn.db(),
        protocol: dsn.protocol(),
        connect_timeout: dsn.connect_timeout(),
        timeout: dsn.timeout(),
    }
}

struct Registry {
    env: std::result::Result<(), Error>,
    connections: HashMap<String, Connection>,
}

static REGISTRY: Lazy<RwLock<Registry>> = Lazy::new(|| {
    let mut registry = Registry {
        env: Ok(()),
        connections: HashMap::new(),
    };
    registry.env = crate::dsn::from_vars(std::env::vars()).and_then(|list| {
        for (name, dsn) in list {
            let conn = Connection::from_dsn(&name, dsn)?;
            registry.connections.insert(name, conn);
        }
        Ok(())
    });
    RwLock::new(registry)
});

/// Registers a connection under `name`, parsing `dsn`. The pool opens no connection until
/// it is used.
///
/// # Errors
///
/// [`Error::Config`] when the DSN is invalid or `name` is already registered (by the
/// environment or an earlier call).
///
/// # Example
///
/// ```
/// use redis_caches::connection;
/// connection::register("reports", "redis://127.0.0.1:6379/3")?;
/// assert!(connection::register("reports", "redis://127.0.0.1:6379/4").is_err());
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub fn register(name: &str, dsn: &str) -> Result<Connection> {
    register_dsn(name, Dsn::parse_from(dsn, name)?)
}

/// Registers an already parsed DSN under `name`. See [`register`].
///
/// # Errors
///
/// As [`register`].
///
/// ```
/// use redis_caches::{connection, Dsn};
/// connection::register_dsn("archive", Dsn::parse("redis://127.0.0.1/9")?)?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub fn register_dsn(name: &str, dsn: Dsn) -> Result<Connection> {
    if name.is_empty() {
        return Err(Error::config("connection::register", "the name is empty"));
    }
    let conn = Connection::from_dsn(name, dsn)?;
    let mut registry = REGISTRY
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if registry.connections.contains_key(name) {
        return Err(Error::config(
            name,
            "a connection with this name is already registered",
        ));
    }
    registry.connections.insert(name.to_string(), conn.clone());
    Ok(conn)
}

/// Resolves a connection name to its pool, reading the environment on first use.
///
/// # Errors
///
/// [`Error::Config`] when the `CACHES_DSN*` variables are invalid (naming the variable), or
/// [`Error::UnknownConnection`] when nothing is registered under `name`.
///
/// ```no_run
/// let sessions = redis_caches::connection::get("sessions")?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub fn get(name: &str) -> Result<Connection> {
    let registry = REGISTRY
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    registry.env.clone()?;
    registry
        .connections
        .get(name)
        .cloned()
        .ok_or_else(|| Error::UnknownConnection {
            name: name.to_string(),
        })
}

/// The names of every registered connection, sorted.
///
/// ```
/// let names = redis_caches::connection::names();
/// # let _ = names;
/// ```
pub fn names() -> Vec<String> {
    let registry = REGISTRY
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut names: Vec<_> = registry.connections.keys().cloned().collect();
    names.sort();
    names
}

/// Which connection a collection uses: a registered name, or a [`Connection`] handle.
///
/// ```
/// use redis_caches::connection::ConnectionRef;
/// let by_name: ConnectionRef = "sessions".into();
/// assert!(matches!(by_name, ConnectionRef::Named(_)));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionRef {
    /// Looked up in the registry at the first operation.
    Named(String),
    /// A connection handle used as is.
    Handle(Connection),
}

impl Default for ConnectionRef {
    fn default() -> Self {
        ConnectionRef::Named(DEFAULT_CONNECTION.to_string())
    }
}

impl ConnectionRef {
    /// Resolves to a connection handle.
    ///
    /// # Errors
    ///
    /// As [`get`] for a name.
    ///
    /// ```
    /// use redis_caches::{Connection, connection::ConnectionRef};
    /// let handle = Connection::open("local", "redis://127.0.0.1:1")?;
    /// let by_handle: ConnectionRef = (&handle).into();
    /// assert_eq!(by_handle.resolve()?.name(), "local");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn resolve(&self) -> Result<Connection> {
        match self {
            ConnectionRef::Named(name) => get(name),
            ConnectionRef::Handle(conn) => Ok(conn.clone()),
        }
    }

    /// The connection's name.
    ///
    /// ```
    /// use redis_caches::connection::ConnectionRef;
    /// assert_eq!(ConnectionRef::from("sessions").name(), "sessions");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            ConnectionRef::Named(name) => name,
            ConnectionRef::Handle(conn) => conn.name(),
        }
    }
}

impl From<&str> for ConnectionRef {
    fn from(name: &str) -> Self {
        ConnectionRef::Named(name.to_string())
    }
}

impl From<String> for ConnectionRef {
    fn from(name: String) -> Self {
        ConnectionRef::Named(name)
    }
}

impl From<Connection> for ConnectionRef {
    fn from(conn: Connection) -> Self {
        ConnectionRef::Handle(conn)
    }
}

impl From<&Connection> for ConnectionRef {
    fn from(conn: &Connection) -> Self {
        ConnectionRef::Handle(conn.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> redis::ServerError {
        match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
            Ok(Value::ServerError(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_that_did_not_run_are_retried_whatever_wraps_them() {
        for code in [
            "TRYAGAIN",
            "CLUSTERDOWN",
            "LOADING",
            "MASTERDOWN",
            "READONLY",
        ] {
            let plain = reply(&format!("{code} try later"));
            assert!(not_run_and_transient(&reply_code(&plain)), "{code}");
            // As Redis 6.2 wraps an error raised inside a script.
            let wrapped = reply(&format!(
                "ERR Error running script (call to f_1): @user_script:3: {code} try later"
            ));
            assert_eq!(reply_code(&wrapped), code);
            assert!(
                not_run_and_transient(&reply_code(&wrapped)),
                "wrapped {code}"
            );
        }
        for code in [
            "ERR",
            "WRONGTYPE",
            "NOPERM",
            "OOM",
            "MOVED",
            "ASK",
            "CROSSSLOT",
        ] {
            assert!(
                !not_run_and_transient(&reply_code(&reply(&format!("{code} x")))),
                "{code}"
            );
        }
    }
}
