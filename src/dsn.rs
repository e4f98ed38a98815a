//! Parsing connection URLs (DSNs) and the `CACHES_DSN` / `CACHES_DSN_n` environment variables.
//!
//! This module is pure: it reads strings and produces [`Dsn`] values or configuration errors.
//! Opening pools from them is [`crate::connection`]'s job.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// The name of the default connection: the one `CACHES_DSN` configures and every collection
/// uses unless told otherwise.
pub const DEFAULT_CONNECTION: &str = "default";

/// The environment variable that configures the default connection.
pub const ENV_VAR: &str = "CACHES_DSN";

/// Defaults of the DSN query options, as documented in the README's configuration reference.
pub mod defaults {
    use std::time::Duration;

    /// Most connections a pool keeps open (`pool_size`).
    pub const POOL_SIZE: u32 = 16;
    /// How long taking a connection from the pool may wait (`pool_timeout`).
    pub const POOL_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long opening a TCP or Unix connection may take (`connect_timeout`).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// How long one call may wait for all its replies (`timeout`).
    pub const TIMEOUT: Duration = Duration::from_secs(1);
    /// The port when the DSN names none.
    pub const PORT: u16 = 6379;
    /// The port of a sentinel when the DSN names none.
    pub const SENTINEL_PORT: u16 = 26379;
}

/// The valid values of the DSN query options; a value outside them is an [`Error::Config`]
/// naming the option.
///
/// The bounds keep every value inside what the pool, the sockets and deadline arithmetic can
/// take (`Instant + Duration` overflows for absurd durations, r2d2 panics on a zero
/// `pool_timeout`, and a huge `pool_size` makes r2d2 allocate its slots up front), with room to
/// spare for any real deployment.
///
/// ```
/// use redis_caches::{Dsn, dsn::limits};
///
/// assert!(limits::POOL_SIZE.contains(&Dsn::parse("redis://h?pool_size=64")?.pool_size()));
/// let err = Dsn::parse("redis://h?pool_timeout=0").unwrap_err();
/// assert!(err.is_config() && err.to_string().contains("pool_timeout"));
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub mod limits {
    use std::ops::RangeInclusive;
    use std::time::Duration;

    /// `pool_size`: from 1 to 4096 connections.
    pub const POOL_SIZE: RangeInclusive<u32> = 1..=4096;
    /// `pool_timeout`: from 1 ms to one hour.
    pub const POOL_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(1)..=Duration::from_secs(3600);
    /// `connect_timeout`: from 1 ms to one hour.
    pub const CONNECT_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(1)..=Duration::from_secs(3600);
    /// `timeout` (`socket_timeout`): from 1 ms to one hour; `0` (in any unit) disables it.
    pub const TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(1)..=Duration::from_secs(3600);
    /// The database number (path or `db` option): from 0 to 2147483647, the largest index
    /// Redis' `SELECT` accepts.
    pub const DB: RangeInclusive<i64> = 0..=i32::MAX as i64;
    /// `near_cache`: from 1 to 100,000,000 copies (about 34 GB of 100-byte values; a
    /// larger near cache is a configuration mistake, not a cache).
    pub const NEAR_CACHE: RangeInclusive<u64> = 1..=100_000_000;
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A TCP server, `redis://host:port` (or TLS with `rediss://`).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket, `redis+unix:///path` or `unix:///path`.
    Unix(PathBuf),
    /// A Redis Cluster, `redis+cluster://h1:7000,h2:7001` (or TLS with `rediss+cluster://`):
    /// the seed nodes the cluster topology is discovered from. Any reachable one will do.
    Cluster(Vec<Node>),
    /// A master managed by Redis Sentinel, `redis+sentinel://s1:26379,s2:26379/mymaster/0`
    /// (or TLS with `rediss+sentinel://`): the sentinels to ask, and the name of the master
    /// (the service) they monitor.
    Sentinel {
        /// The sentinels, asked in order for the current master's address.
        sentinels: Vec<Node>,
        /// The name the sentinels monitor the master under (`mymaster`).
        service: String,
    },
}

/// One `host:port` of a host list (cluster seed nodes, sentinels).
///
/// ```
/// use redis_caches::{Dsn, dsn::{Node, Target}};
/// let dsn = Dsn::parse("redis+cluster://10.0.0.1:7000,[::1]:7001")?;
/// let Target::Cluster(nodes) = dsn.target() else { unreachable!() };
/// assert_eq!(nodes[1], Node { host: "::1".into(), port: 7001 });
/// assert_eq!(nodes[0].to_string(), "10.0.0.1:7000");
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The RESP protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3 (`protocol=resp3`), Redis 6 or later.
    Resp3,
}

/// TLS settings of a `rediss://` connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// A PEM file of CA certificates to trust instead of the system's (`tls_ca`).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate for mutual TLS (`tls_cert`, with `tls_key`).
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of the client certificate (`tls_key`).
    pub key_file: Option<PathBuf>,
    /// Skip certificate and host name verification (`tls_insecure=true`). Off by default;
    /// turning it on is always explicit.
    pub insecure: bool,
}

/// A parsed connection URL: where to connect, how, and the options of its pool.
///
/// Parse one with [`Dsn::parse`]. `Debug` and `Display` show the URL with the password
/// replaced by `***`.
///
/// | Form | Meaning |
/// |---|---|
/// | `redis://host:6379/2#name` | TCP, database 2, connection named `name` |
/// | `rediss://host/0` | TLS (crate feature `tls`) |
/// | `redis://user:pass@host`, `redis://:pass@host` | ACL user and password, or password only |
/// | `redis+unix:///run/redis.sock?db=1`, `unix:///run/redis.sock` | Unix socket |
/// | `redis+cluster://h1:7000,h2:7001/` | Redis Cluster: seed nodes, any reachable one will do |
/// | `rediss+cluster://:pass@h1:7000,h2:7001` | Redis Cluster over TLS, with a password |
/// | `redis+sentinel://s1:26379,s2:26379/mymaster/2` | the master the sentinels know as `mymaster`, database 2 |
/// | `rediss+sentinel://:pass@s1,s2/mymaster` | the same over TLS (sentinels and master), port 26379 |
///
/// Query options, each at most once; a value outside its range is an [`Error::Config`] naming
/// the option (the bounds are also [`limits`]):
///
/// | Option | Default | Valid values |
/// |---|---|---|
/// | `pool_size` | `16` | 1 to 4096 connections |
/// | `pool_timeout` | `2s` | 1 ms to 1 hour (`3600`) |
/// | `connect_timeout` | `1s` | 1 ms to 1 hour |
/// | `timeout` (alias `socket_timeout`) | `1s` | `0` (no operation timeout), or 1 ms to 1 hour |
/// | `prefix` | empty | any text without `{` or `}` |
/// | `protocol` | `resp2` | `resp2` or `resp3` (also `2`, `3`; any case) |
/// | `near_cache` | none | 1 to 100,000,000 entries: a [`NearCache`](crate::NearCache) of that size for every handle on the connection (not over TLS) |
/// | `db` | `0` | 0 to 2147483647; for Unix sockets and sentinels (TCP URLs give it in the path, with the same range) |
/// | `tls_ca`, `tls_cert`, `tls_key` | none | a file path (`rediss://` only; `tls_cert` and `tls_key` together) |
/// | `tls_insecure` | `false` | `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`), `rediss://` only |
///
/// Durations are decimal seconds (`1.5`, `.25`) or carry a unit (`250ms`, `2s`); a sign, an
/// exponent, `inf` or `NaN` is an error. Ports are 1 to 65535.
///
/// Characters with a meaning in URLs (`/`, `?`, `#`, `@`, `%`, `:` in a user name) are
/// percent-encoded in user names and passwords (`/` as `%2F`, `?` as `%3F`, `#` as `%23`, `@`
/// as `%40`, `%` as `%25`). An unescaped `/`, `?` or `#` would cut the password short and make
/// its rest a path, option or name; so an `@` after the host with a `:` anywhere before it,
/// which could close such cut credentials, is refused with an error that quotes nothing of the
/// DSN. An `@` meant for a path, an option or the `#name` is written `%40`.
///
/// Host lists (`h1:7000,h2:7001`, IPv6 as `[::1]:7000`) are only allowed in the cluster and
/// sentinel forms. A cluster has only database 0 (a path `/0` is accepted, any other database
/// is an error). In the sentinel form the path is `/<service>` or `/<service>/<db>`; the
/// user name and password are those of the master (and its replicas), the sentinels
/// themselves are contacted without credentials. Every option applies to the cluster nodes
/// or the master as it would to a single server: `connect_timeout` bounds every connection
/// attempt (to a node, a sentinel, a master), `timeout` every reply.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redis_caches::Dsn;
///
/// let dsn = Dsn::parse("redis://:s3cret@cache.internal:6380/2?timeout=250ms&prefix=app:#sessions")?;
/// assert_eq!(dsn.name(), Some("sessions"));
/// assert_eq!(dsn.db(), 2);
/// assert_eq!(dsn.timeout(), Some(Duration::from_millis(250)));
/// assert_eq!(dsn.prefix(), "app:");
/// assert_eq!(dsn.to_string(), "redis://:***@cache.internal:6380/2?timeout=250ms&prefix=app:#sessions");
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    pub(crate) name: Option<String>,
    pub(crate) target: Target,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
    pub(crate) pool_size: u32,
    pub(crate) pool_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) prefix: String,
    pub(crate) protocol: Protocol,
    pub(crate) near_cache: Option<u64>,
    redacted: String,
}

impl Dsn {
    /// Parses a connection URL.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the problem: an unknown scheme, an unknown or repeated query
    /// option, a value that does not parse or is outside its range (see the table above), a
    /// database that is not a number, an `@` after the host that could end a password cut
    /// short by an unescaped `/`, `?` or `#`. The message never contains the password.
    ///
    /// # Example
    ///
    /// ```
    /// use redis_caches::Dsn;
    /// assert!(Dsn::parse("redis://localhost").is_ok());
    /// assert!(Dsn::parse("mysql://localhost").unwrap_err().is_config());
    /// ```
    pub fn parse(dsn: &str) -> Result<Dsn> {
        Self::parse_from(dsn, "a DSN")
    }

    /// Parses `dsn`, naming `origin` (a variable or connection name) in errors.
    pub(crate) fn parse_from(dsn: &str, origin: &str) -> Result<Dsn> {
        let err = |problem: String| Error::config(origin, problem);
        let dsn = dsn.trim();
        // First, before anything of the DSN can be quoted: from here on the password, if any,
        // is wholly inside the authority, and nothing else (path, options, name, hosts) can
        // hold part of it.
        refuse_split_userinfo(dsn).map_err(&err)?;
        let multi = MultiHost::split(dsn);
        let url = url::Url::parse(multi.as_ref().map_or(dsn, |m| m.surrogate.as_str()))
            .map_err(|e| err(format!("not a URL ({e}): {}", redact_raw(dsn))))?;
        let password = url
            .password()
            .map(percent_decode)
            .transpose()
            .map_err(&err)?;
        let username = match url.username() {
            "" => None,
            u => Some(percent_decode(u).map_err(&err)?),
        };
        let name = url
            .fragment()
            .map(percent_decode)
            .transpose()
            .map_err(&err)?;
        if name.as_deref() == Some("") {
            return Err(err("the #fragment naming the connection is empty".into()));
        }

        let (target, tls, path_db) = if let Some(multi) = &multi {
            multi.target(&url).map_err(&err)?
        } else {
            match url.scheme() {
                "redis" | "rediss" => {
                    // The URL parser gives no host rather than an empty one (`redis:///0`);
                    // an empty one is refused all the same.
                    let host = match url.host_str().filter(|h| !h.is_empty()) {
                        Some(h) => h.trim_start_matches('[').trim_end_matches(']'),
                        None => return Err(err("the URL names no host".into())),
                    };
                    let port = match url.port() {
                        None => defaults::PORT,
                        Some(0) => return Err(err("the port 0 is not a port number".into())),
                        Some(p) => p,
                    };
                    let db = match url.path().trim_start_matches('/') {
                        "" => None,
                        p => Some(parse_db(p).map_err(&err)?),
                    };
                    let tls = (url.scheme() == "rediss").then(TlsOptions::default);
                    let target = Target::Tcp {
                        host: host.to_string(),
                        port,
                    };
                    (target, tls, db)
                }
                "redis+unix" | "unix" => {
                    let path = percent_decode(url.path()).map_err(&err)?;
                    if path.is_empty() || path == "/" {
                        return Err(err("the unix URL names no socket path".into()));
                    }
                    (Target::Unix(PathBuf::from(path)), None, None)
                }
                other => {
                    return Err(err(format!(
                        "unknown scheme {other:?} (expected redis, rediss, redis+unix, unix, \
                         redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel)"
                    )));
                }
            }
        };

        let mut dsn = Dsn {
            name,
            target,
            tls,
            username,
            password,
            db: path_db.unwrap_or(0),
            pool_size: defaults::POOL_SIZE,
            pool_timeout: defaults::POOL_TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            timeout: Some(defaults::TIMEOUT),
            prefix: String::new(),
            protocol: Protocol::Resp2,
            near_cache: None,
            redacted: String::new(),
        };

        let mut seen = HashMap::new();
        for (key, value) in url.query_pairs() {
            let canonical = if key == "socket_timeout" {
                "timeout"
            } else {
                &*key
            };
            if seen.insert(canonical.to_string(), ()).is_some() {
                return Err(err(format!("the option {} is given twice", shown(&key))));
            }
            dsn.apply_option(&key, &value, path_db.is_some())
                .map_err(|problem| {
                    let problem = if value.contains('@') {
                        format!("the value {} is invalid", shown(&value))
                    } else {
                        problem
                    };
                    err(format!("option {}: {problem}", shown(&key)))
                })?;
        }
        if let Some(tls) = &dsn.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err(err("tls_cert and tls_key must be given together".into()));
        }
        if dsn.near_cache.is_some() && dsn.tls.is_some() {
            return Err(err(
                "near_cache is not available over TLS yet: the near cache's tracking connection \
                 is a plain TCP or Unix socket"
                    .into(),
            ));
        }
        if matches!(dsn.target, Target::Cluster(_)) && dsn.db != 0 {
            return Err(err(format!(
                "a Redis Cluster has only database 0, not {}",
                dsn.db
            )));
        }
        dsn.redacted = match &multi {
            Some(multi) => multi.redact(&url),
            None => redact(&url),
        };
        Ok(dsn)
    }

    fn apply_option(&mut self, key: &str, value: &str, db_in_path: bool) -> Result<(), String> {
        fn tls_only(dsn: &mut Dsn) -> Result<&mut TlsOptions, String> {
            dsn.tls
                .as_mut()
                .ok_or_else(|| "TLS options need a rediss:// URL".to_string())
        }
        fn path(value: &str) -> Result<Option<PathBuf>, String> {
            if value.is_empty() {
                return Err("the path is empty".into());
            }
            Ok(Some(PathBuf::from(value)))
        }
        match key {
            "pool_size" => {
                let range = limits::POOL_SIZE;
                self.pool_size = parse_digits(value)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "{value:?} is not a whole number from {} to {}",
                            range.start(),
                            range.end()
                        )
                    })?;
            }
            "pool_timeout" => {
                self.pool_timeout = duration_within(value, limits::POOL_TIMEOUT, "")?;
            }
            "connect_timeout" => {
                self.connect_timeout = duration_within(value, limits::CONNECT_TIMEOUT, "")?;
            }
            "timeout" | "socket_timeout" => {
                self.timeout = if parse_duration(value)?.is_zero() {
                    None
                } else {
                    Some(duration_within(
                        value,
                        limits::TIMEOUT,
                        "0 (no timeout) or ",
                    )?)
                };
            }
            "prefix" => {
                if value.contains(['{', '}']) {
                    return Err(
                        "must not contain '{' or '}' (they would change cluster hash slots)".into(),
                    );
                }
                self.prefix = value.to_string();
            }
            "protocol" => {
                self.protocol = match value.to_ascii_lowercase().as_str() {
                    "resp2" | "2" => Protocol::Resp2,
                    "resp3" | "3" => Protocol::Resp3,
                    _ => return Err(format!("{value:?} is not resp2 or resp3")),
                }
            }
            "near_cache" => {
                self.near_cache = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| limits::NEAR_CACHE.contains(n))
                        .ok_or_else(|| {
                            format!(
                                "{value:?} is not a number of entries from {} to {}",
                                limits::NEAR_CACHE.start(),
                                limits::NEAR_CACHE.end()
                            )
                        })?,
                )
            }
            "db" => {
                if db_in_path {
                    return Err("the database is already given in the path".into());
                }
                self.db = parse_db(value)?;
            }
            "tls_ca" => tls_only(self)?.ca_file = path(value)?,
            "tls_cert" => tls_only(self)?.cert_file = path(value)?,
            "tls_key" => tls_only(self)?.key_file = path(value)?,
            "tls_insecure" => tls_only(self)?.insecure = parse_bool(value)?,
            _ => return Err("unknown option".into()),
        }
        Ok(())
    }

    /// The connection name given by the URL's `#fragment`, if any.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h#jobs")?.name(), Some("jobs"));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the connection goes.
    ///
    /// ```
    /// # use redis_caches::{Dsn, dsn::Target};
    /// assert!(matches!(Dsn::parse("unix:///tmp/r.sock")?.target(), Target::Unix(_)));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The database number (path of a TCP URL, `db` option of a Unix one, last path part of a
    /// sentinel URL); 0 by default, and always 0 for a cluster.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h/3")?.db(), 3);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The ACL user name, if the URL gives one.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://app:pw@h")?.username(), Some("app"));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether the URL carries a password. The password itself is not exposed.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert!(Dsn::parse("redis://:pw@h")?.has_password());
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// TLS settings, present for `rediss://` URLs.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert!(Dsn::parse("rediss://h")?.tls().is_some());
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn tls(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// Most connections the pool keeps open (`pool_size`, default 16).
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?pool_size=4")?.pool_size(), 4);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// How long taking a connection from the pool may wait (`pool_timeout`, default 2 s).
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?pool_timeout=0.5")?.pool_timeout().as_millis(), 500);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn pool_timeout(&self) -> Duration {
        self.pool_timeout
    }

    /// How long opening a connection may take (`connect_timeout`, default 1 s).
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?connect_timeout=3s")?.connect_timeout().as_secs(), 3);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long one command or pipeline may wait for a reply (`timeout`, default 1 s);
    /// `None` when disabled with `timeout=0`.
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?timeout=0")?.timeout(), None);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The key prefix applied to every key on this connection (`prefix`, default empty).
    /// It is prepended as given: include your own separator (`prefix=app:`).
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?prefix=app:")?.prefix(), "app:");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The protocol version (`protocol`, default RESP2).
    ///
    /// ```
    /// # use redis_caches::{Dsn, dsn::Protocol};
    /// assert_eq!(Dsn::parse("redis://h?protocol=resp3")?.protocol(), Protocol::Resp3);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The capacity, in entries, of the [`NearCache`](crate::NearCache) every handle on this
    /// connection uses unless its builder gives one (`near_cache`, none by default).
    ///
    /// ```
    /// # use redis_caches::Dsn;
    /// assert_eq!(Dsn::parse("redis://h?near_cache=10000")?.near_cache(), Some(10_000));
    /// assert!(Dsn::parse("redis://h?near_cache=0").is_err());
    /// assert!(Dsn::parse("rediss://h?near_cache=10").is_err());
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn near_cache(&self) -> Option<u64> {
        self.near_cache
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dsn").field(&self.redacted).finish()
    }
}

impl std::str::FromStr for Dsn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Dsn> {
        Dsn::parse(s)
    }
}

/// Reads `CACHES_DSN` and `CACHES_DSN_n` from `vars` (name, value pairs, as from
/// [`std::env::vars`]) and returns each connection's name with its DSN.
///
/// `CACHES_DSN` is the default connection (and is also reachable under its `#fragment`
/// name, if it has one). Numbered variables start at 0 or 1 and must not leave gaps; each is
/// named by its fragment, or by its number when it has none. Empty values count as unset.
pub(crate) fn from_vars<I>(vars: I) -> Result<Vec<(String, Dsn)>>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut default = None;
    let mut numbered = BTreeMap::new();
    for (var, value) in vars {
        if value.trim().is_empty() {
            continue;
        }
        if var == ENV_VAR {
            default = Some(Dsn::parse_from(&value, &var)?);
        } else if let Some(suffix) = var.strip_prefix("CACHES_DSN_") {
            let n: u32 = suffix.parse().map_err(|_| {
                Error::config(&var, "the suffix after CACHES_DSN_ must be a number")
            })?;
            numbered.insert(n, (var.clone(), Dsn::parse_from(&value, &var)?));
        }
    }

    let mut out: Vec<(String, Dsn)> = Vec::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut claim = |name: String, var: &str, dsn: &Dsn, out: &mut Vec<(String, Dsn)>| {
        if let Some(first) = owner.insert(name.clone(), var.to_string()) {
            return Err(Error::config(
                var,
                format!("the connection name {name:?} is already used by {first}"),
            ));
        }
        out.push((name, dsn.clone()));
        Ok(())
    };
    if let Some(dsn) = &default {
        claim(DEFAULT_CONNECTION.to_string(), ENV_VAR, dsn, &mut out)?;
        if let Some(alias) = dsn.name().filter(|n| *n != DEFAULT_CONNECTION) {
            claim(alias.to_string(), ENV_VAR, dsn, &mut out)?;
        }
    }
    if let Some(&first) = numbered.keys().next() {
        if first > 1 {
            return Err(Error::config(
                format!("CACHES_DSN_{first}"),
                "numbered DSNs must start at CACHES_DSN_0 or CACHES_DSN_1",
            ));
        }
        for (expected, (&n, (var, dsn))) in (first..).zip(numbered.iter()) {
            if n != expected {
                return Err(Error::config(
                    var,
                    format!("CACHES_DSN_{expected} is missing: numbered DSNs must not leave gaps"),
                ));
            }
            let name = dsn.name().map_or_else(|| n.to_string(), str::to_string);
            claim(name, var, dsn, &mut out)?;
        }
    }
    Ok(out)
}

/// A DSN with a host list (`redis+cluster://`, `redis+sentinel://`), which the `url` crate
/// cannot parse: the host list is cut out and replaced by a placeholder host, so that the
/// rest (credentials, path, options, fragment) parses as any other URL.
struct MultiHost {
    /// The scheme as given, lowercased (`redis+cluster`, ...).
    scheme: String,
    /// The host list as given (`h1:7000,h2:7001`).
    hosts: String,
    /// `redis://<userinfo>@placeholder<rest>` (`rediss://` for TLS).
    surrogate: String,
}

impl MultiHost {
    const PLACEHOLDER: &'static str = "hosts.invalid";

    /// `Some` when `raw` has a cluster or sentinel scheme.
    fn split(raw: &str) -> Option<MultiHost> {
        let (scheme, after) = raw.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let tls = match scheme.as_str() {
            "redis+cluster" | "redis+sentinel" => false,
            "rediss+cluster" | "rediss+sentinel" => true,
            _ => return None,
        };
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(authority_end);
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let base = if tls { "rediss" } else { "redis" };
        Some(MultiHost {
            surrogate: format!("{base}://{userinfo}{}{rest}", Self::PLACEHOLDER),
            scheme,
            hosts: hosts.to_string(),
        })
    }

    fn is_sentinel(&self) -> bool {
        self.scheme.ends_with("+sentinel")
    }

    /// The target, TLS settings and database of the path.
    fn target(&self, url: &url::Url) -> Result<(Target, Option<TlsOptions>, Option<i64>), String> {
        let default_port = if self.is_sentinel() {
            defaults::SENTINEL_PORT
        } else {
            defaults::PORT
        };
        let nodes = parse_host_list(&self.hosts, default_port)?;
        let tls = (url.scheme() == "rediss").then(TlsOptions::default);
        let path = url.path().trim_start_matches('/');
        if !self.is_sentinel() {
            let db = match path {
                "" => None,
                p => Some(parse_db(p)?),
            };
            return Ok((Target::Cluster(nodes), tls, db));
        }
        let mut segments = path.split('/');
        let service = percent_decode(segments.next().unwrap_or(""))?;
        if service.is_empty() {
            return Err(
                "the sentinel URL names no master: give its service name as the path, \
                 as in redis+sentinel://host:26379/mymaster/0"
                    .into(),
            );
        }
        let db = match (segments.next(), segments.next()) {
            (None | Some(""), None) => None,
            (Some(p), None) => Some(parse_db(p)?),
            _ => {
                return Err(format!(
                    "the sentinel URL path {:?} has too many parts (expected /<service>/<db>)",
                    url.path()
                ));
            }
        };
        let target = Target::Sentinel {
            sentinels: nodes,
            service,
        };
        Ok((target, tls, db))
    }

    /// The URL as given, with its password replaced by `***`.
    fn redact(&self, url: &url::Url) -> String {
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        let userinfo = shown[url::Position::AfterScheme..url::Position::BeforeHost]
            .replace("%2A%2A%2A", "***");
        format!(
            "{}{userinfo}{}{}",
            self.scheme,
            self.hosts,
            &shown[url::Position::AfterPort..]
        )
    }
}

/// Parses `h1:7000,h2,[::1]:7001`.
fn parse_host_list(hosts: &str, default_port: u16) -> Result<Vec<Node>, String> {
    if hosts.is_empty() {
        return Err("the URL names no host".into());
    }
    hosts
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            let (host, port) =
                if let Some(v6) = entry.strip_prefix('[') {
                    let (host, after) = v6
                        .split_once(']')
                        .ok_or_else(|| format!("the host {entry:?} lacks its closing ']'"))?;
                    match after {
                        "" => (host, None),
                        p => (
                            host,
                            Some(p.strip_prefix(':').ok_or_else(|| {
                                format!("the host {entry:?} has text after its ']'")
                            })?),
                        ),
                    }
                } else {
                    match entry.rsplit_once(':') {
                        Some((host, port)) => (host, Some(port)),
                        None => (entry, None),
                    }
                };
            if host.is_empty() {
                return Err(format!(
                    "the host list {hosts:?} has an empty host (hosts are separated by ',')"
                ));
            }
            let port = match port {
                None => default_port,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("the port {p:?} of the host {host:?} is not a port number")
                })?,
            };
            Ok(Node {
                host: host.to_string(),
                port,
            })
        })
        .collect()
}

/// Parses `1`, `1.5`, `.5` (seconds), `250ms`, `2s`: decimal digits with an optional
/// fraction and unit, nothing else (no sign, exponent, `inf` or `NaN`), so that every accepted
/// text means one exact duration. Digits beyond the nanosecond are dropped, but a text with a
/// nonzero digit is never read as zero (it becomes 1 ns, which every range refuses); a number
/// too large for a `Duration` saturates to `Duration::MAX`, which every range refuses too.
fn parse_duration(value: &str) -> Result<Duration, String> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let bad = || format!("{value:?} is not a duration (seconds like 1.5, or 250ms, 2s)");
    let (number, unit) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, NANOS_PER_SEC / 1000)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, NANOS_PER_SEC)
    } else {
        (value, NANOS_PER_SEC)
    };
    let number = number.trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let whole = digits_value(whole).ok_or_else(bad)?;
    // The first nine digits of the fraction, as billionths of the unit.
    if digits_value(fraction).is_none() {
        return Err(bad());
    }
    let billionths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u128, |n, b| n * 10 + u128::from(b - b'0'));
    let nanos = whole
        .saturating_mul(unit)
        .saturating_add(billionths * unit / NANOS_PER_SEC);
    let nonzero = number.bytes().any(|b| matches!(b, b'1'..=b'9'));
    Ok(match u64::try_from(nanos) {
        Ok(0) if nonzero => Duration::from_nanos(1),
        Ok(n) => Duration::from_nanos(n),
        Err(_) => Duration::MAX,
    })
}

/// The value of a string of ASCII digits (empty is 0), saturating at `u128::MAX`; `None`
/// for anything else.
fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |n, b| {
        b.is_ascii_digit()
            .then(|| n.saturating_mul(10).saturating_add(u128::from(b - b'0')))
    })
}

/// A non-empty string of ASCII digits as a number (saturating), or `None`.
fn parse_digits(value: &str) -> Option<u128> {
    if value.is_empty() {
        return None;
    }
    digits_value(value)
}

/// A duration option's value, refused unless inside `range`. `also` names a further allowed
/// value for the message (`"0 (no timeout) or "`).
fn duration_within(
    value: &str,
    range: std::ops::RangeInclusive<Duration>,
    also: &str,
) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if range.contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{value:?} is out of range: must be {also}from {} to {}",
            show_duration(*range.start()),
            show_duration(*range.end())
        ))
    }
}

/// A bound of a duration range in the DSN's own units.
fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A database number: ASCII digits within [`limits::DB`].
fn parse_db(value: &str) -> Result<i64, String> {
    let range = limits::DB;
    parse_digits(value)
        .and_then(|n| i64::try_from(n).ok())
        .filter(|db| range.contains(db))
        .ok_or_else(|| {
            format!(
                "the database {} is not a number from {} to {}",
                shown(value),
                range.start(),
                range.end()
            )
        })
}

/// Refuses a DSN in which an unescaped `/`, `?` or `#` may have cut the password short.
///
/// The authority (`user:password@host:port`) ends at the first `/`, `?` or `#`, and the
/// credentials end at its last `@`. When a password holds one of those three characters, the
/// authority ends inside it, and the `@` that closed the credentials lands after the authority,
/// in the path, the options or the `#name`, which the parser would then read (and show) as
/// such. So an `@` after the authority, with a `:` before it that would start a password, is
/// refused, and the message quotes nothing of the DSN. An `@` meant for a path, an option or a
/// name is written `%40`.
fn refuse_split_userinfo(dsn: &str) -> Result<(), String> {
    let (after_scheme, authority_end) = match dsn.split_once("://") {
        Some((_, rest)) => (rest, rest.find(['/', '?', '#']).unwrap_or(rest.len())),
        // `scheme:rest` has no authority: all of it is path, options and name.
        None => match dsn.split_once(':') {
            Some((_, rest)) => (rest, 0),
            None => return Ok(()),
        },
    };
    let after_authority = &after_scheme[authority_end..];
    match after_authority.rfind('@') {
        Some(at) if after_scheme[..authority_end + at].contains(':') => Err(
            "an '@' follows the host, where it may end a password cut short by an unescaped \
             '/', '?' or '#' (so nothing of the DSN is shown): percent-encode special \
             characters in passwords ('/' as %2F, '?' as %3F, '#' as %23, '@' as %40), and \
             write an '@' meant for the path, an option or the #name as %40"
                .into(),
        ),
        _ => Ok(()),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad %-escape in the URL".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape in the URL is not UTF-8".to_string())
}

/// `value` quoted for an error message, unless it contains `@`. [`refuse_split_userinfo`]
/// already refuses every DSN in which a path, option or name could hold part of a password;
/// not echoing values with an `@` (the mark of cut credentials) keeps messages safe should a
/// later change of the parser open a gap.
fn shown(value: &str) -> String {
    if value.contains('@') {
        "(not shown: it contains '@', so it may hold part of a password; percent-encode \
         '/', '?', '#' and '@' in passwords)"
            .to_string()
    } else {
        format!("{value:?}")
    }
}

/// The URL with its password replaced by `***`.
fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Setting a password only fails for URLs that cannot carry one, which had none.
        let _ = shown.set_password(Some("***"));
    }
    let s = shown.to_string();
    s.replace("%2A%2A%2A", "***")
}

/// A redaction of a string that did not parse as a URL: drop everything between `://` and the
/// last `@` of the string. Not only of the authority: a password with an unescaped `/`, `?` or
/// `#` (common in generated passwords) ends the authority early, and its rest would be shown.
fn redact_raw(raw: &str) -> String {
    let Some(start) = raw.find("://").map(|i| i + 3) else {
        return "(unparsable)".to_string();
    };
    let rest = &raw[start..];
    match rest.rfind('@') {
        Some(at) => format!("{}***@{}", &raw[..start], &rest[at + 1..]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests;
