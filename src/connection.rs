//! Named connections: r2d2 pools of `redis` connections, created lazily.
//!
//! The environment configures the registry the first time any connection is looked up:
//! `CACHES_DSN` is the connection named [`DEFAULT_CONNECTION`] (`"default"`), and
//! `CACHES_DSN_1`, `CACHES_DSN_2`, ... (or from `CACHES_DSN_0`) are named by their `#fragment`,
//! or by their number. [`register`] adds connections from code. Collections pick one with the
//! builder's `connection("name")` (or a [`Connection`] handle directly).
//!
//! The DSN picks the topology: one server, a Redis Cluster (`redis+cluster://`), or the
//! master of a Sentinel-managed group (`redis+sentinel://`); see the crate docs, "Scale:
//! Cluster and Sentinel". Each connection is an r2d2 pool that opens connections only when
//! they are needed. Taking a
//! connection from the pool costs no round trip (no `PING` on checkout). A connection that
//! fails with an I/O error is discarded, together with every idle connection opened before it,
//! so after a server restart the pool recovers by itself; the first command sent over a
//! connection that broke while idle still reports the error.
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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use once_cell::sync::Lazy;

pub use crate::dsn::DEFAULT_CONNECTION;
use crate::dsn::{Dsn, Protocol, Target};
use crate::error::{Error, Result};

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
        let topology = Topology::for_dsn(name, &dsn)?;
        let generation = Arc::new(AtomicU64::new(0));
        let manager = Manager {
            topology,
            connect_timeout: dsn.connect_timeout,
            timeout: dsn.timeout,
            generation: generation.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(dsn.pool_size)
            .min_idle(Some(0))
            .connection_timeout(dsn.pool_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(Connection {
            inner: Arc::new(Inner {
                name: name.to_string(),
                dsn,
                pool,
                generation,
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
        &self.inner.dsn.prefix
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

    /// Takes a connection from the pool, opening one if none is idle. No round trip is
    /// spent on an idle connection; idle connections older than the last observed I/O failure
    /// are discarded instead of handed out.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] when no connection could be had within the `pool_timeout`: the server
    /// is unreachable, refuses the credentials, or every connection is in use.
    ///
    /// ```no_run
    /// # let conn = redis_caches::Connection::open("n", "redis://127.0.0.1")?;
    /// let mut c = conn.get()?;
    /// let _: () = redis::cmd("PING").query(&mut *c).unwrap();
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get(&self) -> Result<Pooled> {
        let inner = &self.inner;
        loop {
            let mut conn = inner.pool.get().map_err(|e| Error::Pool {
                connection: inner.name.clone(),
                waited: inner.dsn.pool_timeout,
                reason: match e.to_string() {
                    s if s == "timed out waiting for connection" => format!(
                        "all {} connections of the pool are in use",
                        inner.dsn.pool_size
                    ),
                    s => s,
                },
            })?;
            if conn.generation >= inner.generation.load(Ordering::Acquire) {
                return Ok(conn);
            }
            // Opened before a failure was seen on a sibling: likely dead too. Drop it.
            conn.broken = true;
        }
    }

    /// Whether `self` and `other` reach the same Redis database (the same pool, or the same
    /// server address and database number), so that one command may read keys of both.
    pub(crate) fn same_database(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.dsn.target == other.inner.dsn.target
                && self.inner.dsn.db == other.inner.dsn.db)
    }

    /// Marks `conn` broken after `e` when the error leaves the connection unusable.
    pub(crate) fn observe(&self, conn: &mut RedisConn, e: &redis::RedisError) {
        if e.is_timeout() {
            // A late reply would be read as the answer to the next command.
            conn.broken = true;
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || (!matches!(conn.con, Conn::Single(_)) && crate::cluster::is_topology_error(e))
        {
            // A dead server, or (cluster, sentinel) a view of the topology that a failover
            // made stale: the siblings opened before are likely in the same state.
            conn.broken = true;
            self.inner
                .generation
                .fetch_max(conn.generation + 1, Ordering::AcqRel);
        }
    }
}

/// How a pool makes new connections: the topology its DSN names.
enum Topology {
    /// One server (TCP, TLS or Unix socket).
    Single(redis::Client),
    /// A Redis Cluster: each pooled connection is a `ClusterConnection` with a connection
    /// per node.
    Cluster(redis::cluster::ClusterClient),
    /// The master of a Sentinel-managed group, looked up at each new connection.
    Sentinel(SentinelMaster),
}

impl Topology {
    fn for_dsn(name: &str, dsn: &Dsn) -> Result<Topology> {
        let config = |e: redis::RedisError| Error::config(name, e.to_string());
        let nodes = Nodes::new(name, dsn)?;
        Ok(match &dsn.target {
            Target::Unix(path) => {
                let info = redis::IntoConnectionInfo::into_connection_info(
                    redis::ConnectionAddr::Unix(path.clone()),
                )
                .map_err(config)?
                .set_redis_settings(redis_settings(dsn));
                Topology::Single(redis::Client::open(info).map_err(config)?)
            }
            Target::Tcp { host, port } => Topology::Single(
                nodes
                    .client(host, *port, redis_settings(dsn))
                    .map_err(|e| nodes.setup_error(name, e))?,
            ),
            Target::Cluster(seeds) => {
                let infos = seeds
                    .iter()
                    .map(|n| {
                        redis::IntoConnectionInfo::into_connection_info(nodes.addr(&n.host, n.port))
                            .map(|info| info.set_redis_settings(redis_settings(dsn)))
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .map_err(config)?;
                let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                    .connection_timeout(dsn.connect_timeout)
                    .retries(crate::cluster::RETRIES)
                    .min_retry_wait(crate::cluster::MIN_RETRY_WAIT_MS)
                    .max_retry_wait(crate::cluster::MAX_RETRY_WAIT_MS);
                if let Some(timeout) = dsn.timeout {
                    builder = builder.response_timeout(timeout);
                }
                #[cfg(feature = "tls")]
                if let Some(tls) = &nodes.tls {
                    builder = builder.certs(tls.certs.clone());
                }
                Topology::Cluster(builder.build().map_err(config)?)
            }
            Target::Sentinel { sentinels, service } => {
                let sentinel_settings = redis::RedisConnectionInfo::default();
                let sentinels = sentinels
                    .iter()
                    .map(|n| {
                        let client = nodes.client(&n.host, n.port, sentinel_settings.clone())?;
                        Ok((n.to_string(), client))
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .map_err(|e| nodes.setup_error(name, e))?;
                Topology::Sentinel(SentinelMaster {
                    service: service.clone(),
                    sentinels: std::sync::Mutex::new(sentinels),
                    settings: redis_settings(dsn),
                    nodes,
                })
            }
        })
    }
}

fn redis_settings(dsn: &Dsn) -> redis::RedisConnectionInfo {
    let mut settings = redis::RedisConnectionInfo::default()
        .set_db(dsn.db)
        .set_protocol(match dsn.protocol {
            Protocol::Resp2 => redis::ProtocolVersion::RESP2,
            Protocol::Resp3 => redis::ProtocolVersion::RESP3,
        })
        .set_lib_name("redis-caches", env!("CARGO_PKG_VERSION"));
    if let Some(user) = &dsn.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = dsn.password() {
        settings = settings.set_password(password);
    }
    settings
}

/// Makes clients for `host:port` addresses with the DSN's TLS settings, if any.
struct Nodes {
    tls: Option<TlsSetup>,
}

/// The TLS settings of a `rediss` DSN, with its certificate files read.
struct TlsSetup {
    insecure: bool,
    #[cfg(feature = "tls")]
    certs: redis::TlsCertificates,
}

impl Nodes {
    fn new(name: &str, dsn: &Dsn) -> Result<Nodes> {
        let tls = match &dsn.tls {
            None => None,
            Some(tls) => Some(tls_setup(name, tls)?),
        };
        Ok(Nodes { tls })
    }

    fn setup_error(&self, name: &str, e: redis::RedisError) -> Error {
        match self.tls {
            Some(_) => Error::config(name, format!("TLS setup failed: {e}")),
            None => Error::config(name, e.to_string()),
        }
    }

    fn addr(&self, host: &str, port: u16) -> redis::ConnectionAddr {
        match &self.tls {
            None => redis::ConnectionAddr::Tcp(host.to_string(), port),
            Some(tls) => redis::ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: tls.insecure,
                tls_params: None,
            },
        }
    }

    fn client(
        &self,
        host: &str,
        port: u16,
        settings: redis::RedisConnectionInfo,
    ) -> redis::RedisResult<redis::Client> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.addr(host, port))?
            .set_redis_settings(settings);
        match &self.tls {
            None => redis::Client::open(info),
            #[cfg(feature = "tls")]
            Some(tls) => redis::Client::build_with_tls(info, tls.certs.clone()),
            #[cfg(not(feature = "tls"))]
            Some(_) => redis::Client::open(info),
        }
    }
}

#[cfg(feature = "tls")]
fn tls_setup(name: &str, tls: &crate::dsn::TlsOptions) -> Result<TlsSetup> {
    // rustls panics at the first handshake when the process has no default crypto provider
    // and cannot pick one from its crate features (none enabled by `redis`, or both `ring`
    // and `aws-lc-rs` enabled by the application). Install ring unless the application
    // installed one already; losing that race to another thread is fine.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            Error::config(
                name,
                format!("cannot read the {what} file {}: {e}", path.display()),
            )
        })
    };
    let root_cert = tls
        .ca_file
        .as_deref()
        .map(|p| read("tls_ca", p))
        .transpose()?;
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read("tls_cert", cert)?,
            client_key: read("tls_key", key)?,
        }),
        _ => None,
    };
    Ok(TlsSetup {
        insecure: tls.insecure,
        certs: redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    })
}

#[cfg(not(feature = "tls"))]
fn tls_setup(name: &str, _: &crate::dsn::TlsOptions) -> Result<TlsSetup> {
    Err(Error::config(
        name,
        "rediss:// needs the crate feature \"tls\" (redis-caches = { features = [\"tls\"] })",
    ))
}

/// Finds the current master of a Sentinel-managed group.
///
/// Not `redis::sentinel::SentinelClient`: in `redis` 1.8 its sync API opens its connections
/// to the sentinels and to the master (for the `ROLE` check) without a connect or read
/// timeout, so one frozen sentinel would hang every new connection of the pool (and, behind
/// `LockedSentinelClient`'s mutex, every thread waiting for one). This follows the same
/// client protocol (ask each sentinel in turn for the master's address, check with `ROLE`
/// that it is a master, prefer the sentinel that answered) with the DSN's timeouts.
struct SentinelMaster {
    service: String,
    /// The sentinels in order of preference: the last one that answered comes first.
    sentinels: std::sync::Mutex<Vec<(String, redis::Client)>>,
    /// Database, credentials and protocol for the master.
    settings: redis::RedisConnectionInfo,
    nodes: Nodes,
}

impl SentinelMaster {
    fn connect(
        &self,
        connect_timeout: Duration,
        timeout: Option<Duration>,
    ) -> redis::RedisResult<redis::Connection> {
        let sentinels = self
            .sentinels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut problems = Vec::new();
        for (addr, sentinel) in &sentinels {
            match self.ask(sentinel, connect_timeout, timeout) {
                Ok(con) => {
                    let mut shared = self
                        .sentinels
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(at) = shared.iter().position(|(a, _)| a == addr) {
                        let answered = shared.remove(at);
                        shared.insert(0, answered);
                    }
                    return Ok(con);
                }
                Err(problem) => problems.push(format!("sentinel {addr}: {problem}")),
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::MasterNameNotFoundBySentinel,
            "no sentinel named a reachable master",
            format!("service {:?}: {}", self.service, problems.join("; ")),
        )))
    }

    fn ask(
        &self,
        sentinel: &redis::Client,
        connect_timeout: Duration,
        timeout: Option<Duration>,
    ) -> std::result::Result<redis::Connection, String> {
        let mut con = sentinel
            .get_connection_with_timeout(connect_timeout)
            .map_err(|e| format!("unreachable ({e})"))?;
        set_timeouts(&con, timeout).map_err(|e| e.to_string())?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.service)
            .query(&mut con)
            .map_err(|e| format!("did not answer ({e})"))?;
        let (host, port) = addr.ok_or_else(|| "does not know this service".to_string())?;
        let master = format!("{host}:{port}");
        let mut con = self
            .nodes
            .client(&host, port, self.settings.clone())
            .and_then(|c| c.get_connection_with_timeout(connect_timeout))
            .map_err(|e| format!("names the master {master}, which is unreachable ({e})"))?;
        set_timeouts(&con, timeout).map_err(|e| e.to_string())?;
        match redis::cmd("ROLE").query::<redis::Role>(&mut con) {
            Ok(redis::Role::Primary { .. }) => Ok(con),
            Ok(_) => Err(format!("names {master}, which is not a master")),
            Err(e) => Err(format!("names {master}, whose role is unknown ({e})")),
        }
    }
}

fn set_timeouts(con: &redis::Connection, timeout: Option<Duration>) -> redis::RedisResult<()> {
    con.set_read_timeout(timeout)?;
    con.set_write_timeout(timeout)
}

/// Opens connections for a pool. Public only because it appears in [`Pooled`] and
/// [`Connection::pool`]'s types.
pub struct Manager {
    topology: Topology,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    generation: Arc<AtomicU64>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topology = match self.topology {
            Topology::Single(_) => "single",
            Topology::Cluster(_) => "cluster",
            Topology::Sentinel(_) => "sentinel",
        };
        f.debug_struct("Manager")
            .field("topology", &topology)
            .finish_non_exhaustive()
    }
}

/// One connection of a pool: a `redis` connection (to one server, to every node of a
/// cluster, or to the current master of a Sentinel-managed group) plus the bookkeeping the
/// pool needs. Implements [`redis::ConnectionLike`]: commands, pipelines (plain and
/// MULTI/EXEC) and scripts run on it the same way whatever the topology.
pub struct RedisConn {
    con: Conn,
    generation: u64,
    broken: bool,
}

enum Conn {
    Single(redis::Connection),
    Cluster(Box<crate::cluster::ClusterConn>),
    /// A connection to the master a sentinel named.
    Sentinel(redis::Connection),
}

impl RedisConn {
    fn like(&mut self) -> &mut dyn redis::ConnectionLike {
        match &mut self.con {
            Conn::Single(c) | Conn::Sentinel(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }

    fn like_ref(&self) -> &dyn redis::ConnectionLike {
        match &self.con {
            Conn::Single(c) | Conn::Sentinel(c) => c,
            Conn::Cluster(c) => &**c,
        }
    }

    fn topology(&self) -> &'static str {
        match self.con {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
            Conn::Sentinel(_) => "sentinel",
        }
    }
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConn")
            .field("topology", &self.topology())
            .field("generation", &self.generation)
            .field("broken", &self.broken)
            .finish()
    }
}

impl redis::ConnectionLike for RedisConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        self.like().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        self.like().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        self.like().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        self.like_ref().get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.like().check_connection()
    }

    fn is_open(&self) -> bool {
        self.like_ref().is_open()
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = RedisConn;
    type Error = redis::RedisError;

    fn connect(&self) -> redis::RedisResult<RedisConn> {
        let generation = self.generation.load(Ordering::Acquire);
        let con = match &self.topology {
            Topology::Single(client) => {
                let con = client.get_connection_with_timeout(self.connect_timeout)?;
                set_timeouts(&con, self.timeout)?;
                Conn::Single(con)
            }
            Topology::Cluster(client) => {
                // Connect and read timeouts are the client's; the write timeout is set here.
                let con = client.get_connection()?;
                con.set_write_timeout(self.timeout)?;
                Conn::Cluster(Box::new(crate::cluster::ClusterConn::new(con)))
            }
            Topology::Sentinel(master) => {
                Conn::Sentinel(master.connect(self.connect_timeout, self.timeout)?)
            }
        };
        Ok(RedisConn {
            con,
            generation,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut RedisConn) -> redis::RedisResult<()> {
        redis::cmd("PING").query::<()>(conn.like())
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.broken
            || !conn.like_ref().is_open()
            || conn.generation < self.generation.load(Ordering::Acquire)
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
    pub fn resolve(&self) -> Result<Connection> {
        match self {
            ConnectionRef::Named(name) => get(name),
            ConnectionRef::Handle(conn) => Ok(conn.clone()),
        }
    }

    /// The connection's name.
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
