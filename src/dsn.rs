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
    /// How long one command or pipeline may wait for the server (`timeout`), as in `caches`.
    pub const TIMEOUT: Duration = Duration::from_secs(1);
    /// The port when the DSN names none.
    pub const PORT: u16 = 6379;
    /// The port of a sentinel when the DSN names none.
    pub const SENTINEL_PORT: u16 = 26379;
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
/// Query options (each at most once): `pool_size`, `pool_timeout`, `connect_timeout`,
/// `timeout` (alias `socket_timeout`), `prefix`, `protocol` (`resp2` or `resp3`), `db` (Unix
/// sockets, sentinel), and for `rediss://`: `tls_ca`, `tls_cert`, `tls_key`, `tls_insecure`.
/// Durations are seconds (`1.5`) or carry a unit (`250ms`, `2s`); `timeout=0` means no
/// operation timeout.
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
    redacted: String,
}

impl Dsn {
    /// Parses a connection URL.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the problem: an unknown scheme, an unknown or repeated query
    /// option, a value that does not parse, a database that is not a number. The message
    /// never contains the password.
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
        let multi = MultiHost::split(dsn.trim());
        let url = url::Url::parse(multi.as_ref().map_or(dsn.trim(), |m| m.surrogate.as_str()))
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
                    let host = match url.host_str() {
                        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
                        _ => return Err(err("the URL names no host".into())),
                    };
                    let port = url.port().unwrap_or(defaults::PORT);
                    let db =
                        match url.path().trim_start_matches('/') {
                            "" => None,
                            p => Some(p.parse::<i64>().ok().filter(|db| *db >= 0).ok_or_else(
                                || err(format!("the database {} is not a number", shown(p))),
                            )?),
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
        match key {
            "pool_size" => {
                self.pool_size = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{value:?} is not a positive whole number"))?
            }
            "pool_timeout" => self.pool_timeout = parse_duration(value)?,
            "connect_timeout" => {
                self.connect_timeout = parse_duration(value)?;
                if self.connect_timeout.is_zero() {
                    return Err("must be more than zero".into());
                }
            }
            "timeout" | "socket_timeout" => {
                let d = parse_duration(value)?;
                self.timeout = (!d.is_zero()).then_some(d);
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
            "db" => {
                if db_in_path {
                    return Err("the database is already given in the path".into());
                }
                self.db = value
                    .parse::<i64>()
                    .ok()
                    .filter(|db| *db >= 0)
                    .ok_or_else(|| format!("{value:?} is not a database number"))?;
            }
            "tls_ca" => tls_only(self)?.ca_file = Some(PathBuf::from(value)),
            "tls_cert" => tls_only(self)?.cert_file = Some(PathBuf::from(value)),
            "tls_key" => tls_only(self)?.key_file = Some(PathBuf::from(value)),
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
        let parse_db = |p: &str| {
            p.parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| format!("the database {p:?} is not a number"))
        };
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

/// Parses `1`, `1.5` (seconds), `250ms`, `2s`.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?} is not a duration (seconds like 1.5, or 250ms, 2s)");
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
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

/// `value` quoted for an error message, unless it contains `@`: then the URL most likely has a
/// password with an unescaped `/`, `?` or `#` in it, which split the password into the path,
/// query or fragment, and echoing the value would leak part of it.
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
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_host_port_db_and_name() {
        let d = Dsn::parse("redis://cache:6380/2#sessions").unwrap();
        assert_eq!(
            d.target(),
            &Target::Tcp {
                host: "cache".into(),
                port: 6380
            }
        );
        assert_eq!(d.db(), 2);
        assert_eq!(d.name(), Some("sessions"));
        assert_eq!(d.timeout(), Some(defaults::TIMEOUT));
        assert_eq!(d.pool_size(), defaults::POOL_SIZE);
    }

    #[test]
    fn default_port_and_db() {
        let d = Dsn::parse("redis://localhost").unwrap();
        assert_eq!(
            d.target(),
            &Target::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert_eq!(d.db(), 0);
        assert_eq!(d.name(), None);
    }

    #[test]
    fn credentials_forms() {
        let d = Dsn::parse("redis://user:pa%40ss@h").unwrap();
        assert_eq!(d.username(), Some("user"));
        assert_eq!(d.password(), Some("pa@ss"));
        let d = Dsn::parse("redis://:only@h").unwrap();
        assert_eq!(d.username(), None);
        assert_eq!(d.password(), Some("only"));
    }

    #[test]
    fn password_is_redacted_everywhere() {
        let d = Dsn::parse("redis://user:hunter2@h:1/0?timeout=2#n").unwrap();
        for shown in [d.to_string(), format!("{d:?}"), format!("{d:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        let e = Dsn::parse("redis://user:hunter2@h/0?nope=1").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = Dsn::parse("redis://user:hunter2@h:notaport/0").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    #[test]
    fn unescaped_separators_in_passwords_are_not_echoed() {
        // A '/', '?' or '#' in a password ends the authority early: the URL then fails to
        // parse, or its path, query or fragment holds the rest of the password.
        for (dsn, rest) in [
            ("redis://user:ab/cd-hunter2@h:1/0", "hunter2"),
            ("redis://user:ab?cd-hunter2@h", "hunter2"),
            ("redis://user:ab#cd-hunter2@h", "hunter2"),
            ("redis://u:12/hunter2@h", "hunter2"),
            ("redis://u:12?timeout=hunter2@h", "hunter2"),
            ("redis://u:12?x=hunter2@h", "hunter2"),
        ] {
            let e = Dsn::parse(dsn).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains(rest), "{dsn}: {shown}");
            }
        }
    }

    #[test]
    fn unix_sockets() {
        let d = Dsn::parse("redis+unix:///run/redis.sock?db=3").unwrap();
        assert_eq!(d.target(), &Target::Unix("/run/redis.sock".into()));
        assert_eq!(d.db(), 3);
        let d = Dsn::parse("unix:///tmp/r.sock#local").unwrap();
        assert_eq!(d.target(), &Target::Unix("/tmp/r.sock".into()));
        assert_eq!(d.name(), Some("local"));
        assert!(Dsn::parse("unix://").unwrap_err().is_config());
    }

    #[test]
    fn options() {
        let d = Dsn::parse(
            "redis://h/0?pool_size=3&pool_timeout=250ms&connect_timeout=2&socket_timeout=0.5&prefix=app:&protocol=resp3",
        )
        .unwrap();
        assert_eq!(d.pool_size(), 3);
        assert_eq!(d.pool_timeout(), Duration::from_millis(250));
        assert_eq!(d.connect_timeout(), Duration::from_secs(2));
        assert_eq!(d.timeout(), Some(Duration::from_millis(500)));
        assert_eq!(d.prefix(), "app:");
        assert_eq!(d.protocol(), Protocol::Resp3);
        assert_eq!(Dsn::parse("redis://h?timeout=0").unwrap().timeout(), None);
    }

    #[test]
    fn tls_options() {
        let d = Dsn::parse("rediss://h?tls_ca=/ca.pem&tls_insecure=true").unwrap();
        let tls = d.tls().unwrap();
        assert_eq!(
            tls.ca_file.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert!(tls.insecure);
        assert!(!Dsn::parse("rediss://h").unwrap().tls().unwrap().insecure);
        let e = Dsn::parse("redis://h?tls_ca=/ca.pem").unwrap_err();
        assert!(e.to_string().contains("rediss"), "{e}");
        let e = Dsn::parse("rediss://h?tls_cert=/c.pem").unwrap_err();
        assert!(e.to_string().contains("together"), "{e}");
    }

    #[test]
    fn bad_dsns_name_the_problem() {
        let cases = [
            ("mysql://h", "unknown scheme"),
            ("redis://h/x", "not a number"),
            ("redis://h/-1", "not a number"),
            ("redis://h?colour=blue", "unknown option"),
            ("redis://h?pool_size=0", "positive"),
            ("redis://h?pool_size=many", "positive"),
            ("redis://h?timeout=soon", "not a duration"),
            ("redis://h?timeout=-1", "not a duration"),
            ("redis://h?connect_timeout=0", "more than zero"),
            ("redis://h?protocol=resp9", "resp2 or resp3"),
            ("redis://h?timeout=1&timeout=2", "twice"),
            ("redis://h?timeout=1&socket_timeout=2", "twice"),
            ("redis://h?prefix={x}", "must not contain"),
            ("redis://h/1?db=2", "already given"),
            ("redis://h#", "empty"),
            ("not a url", "not a URL"),
            ("redis:///0", "no host"),
        ];
        for (dsn, expected) in cases {
            let e = Dsn::parse(dsn).unwrap_err();
            assert!(e.is_config(), "{dsn}: {e}");
            assert!(e.to_string().contains(expected), "{dsn}: {e}");
        }
    }

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn cluster_host_lists() {
        let d = Dsn::parse("redis+cluster://h1:7000,h2:7001/?timeout=250ms#jobs").unwrap();
        assert_eq!(
            d.target(),
            &Target::Cluster(vec![node("h1", 7000), node("h2", 7001)])
        );
        assert_eq!(d.timeout(), Some(Duration::from_millis(250)));
        assert_eq!(d.name(), Some("jobs"));
        assert_eq!(d.db(), 0);
        assert!(d.tls().is_none());

        let d = Dsn::parse("redis+cluster://h1,[::1]:7001,[fe80::2],10.0.0.3:7002/0").unwrap();
        assert_eq!(
            d.target(),
            &Target::Cluster(vec![
                node("h1", 6379),
                node("::1", 7001),
                node("fe80::2", 6379),
                node("10.0.0.3", 7002)
            ])
        );
        let d = Dsn::parse("REDIS+CLUSTER://h1:7000").unwrap();
        assert!(matches!(d.target(), Target::Cluster(n) if n.len() == 1));
    }

    #[test]
    fn cluster_tls_and_credentials() {
        let d =
            Dsn::parse("rediss+cluster://app:s3cret@h1:7000,h2:7001?tls_insecure=true").unwrap();
        assert!(d.tls().unwrap().insecure);
        assert_eq!(d.username(), Some("app"));
        assert_eq!(d.password(), Some("s3cret"));
        assert_eq!(
            d.to_string(),
            "rediss+cluster://app:***@h1:7000,h2:7001?tls_insecure=true"
        );
        let e = Dsn::parse("redis+cluster://h1:7000?tls_ca=/ca.pem").unwrap_err();
        assert!(e.to_string().contains("rediss"), "{e}");
    }

    #[test]
    fn sentinel_service_and_db() {
        let d = Dsn::parse("redis+sentinel://s1:26379,s2:26380/mymaster/2?prefix=app:").unwrap();
        assert_eq!(
            d.target(),
            &Target::Sentinel {
                sentinels: vec![node("s1", 26379), node("s2", 26380)],
                service: "mymaster".into()
            }
        );
        assert_eq!(d.db(), 2);
        assert_eq!(d.prefix(), "app:");

        let d = Dsn::parse("redis+sentinel://s1,s2/mymaster").unwrap();
        assert_eq!(
            d.target(),
            &Target::Sentinel {
                sentinels: vec![node("s1", 26379), node("s2", 26379)],
                service: "mymaster".into()
            }
        );
        assert_eq!(d.db(), 0);
        assert_eq!(Dsn::parse("redis+sentinel://s1/m/").unwrap().db(), 0);
        assert_eq!(Dsn::parse("redis+sentinel://s1/m?db=4").unwrap().db(), 4);
        assert_eq!(
            Dsn::parse("redis+sentinel://s1/my%20master")
                .unwrap()
                .target(),
            &Target::Sentinel {
                sentinels: vec![node("s1", 26379)],
                service: "my master".into()
            }
        );
        let d = Dsn::parse("rediss+sentinel://:pw@s1:1,s2:2/m/1#ha").unwrap();
        assert!(d.tls().is_some());
        assert_eq!(d.name(), Some("ha"));
        assert_eq!(d.to_string(), "rediss+sentinel://:***@s1:1,s2:2/m/1#ha");
    }

    #[test]
    fn bad_host_lists_name_the_problem() {
        let cases = [
            ("redis+cluster://", "no host"),
            ("redis+cluster:///0", "no host"),
            ("redis+cluster://h1,,h2", "empty host"),
            ("redis+cluster://h1:7000,:7001", "empty host"),
            ("redis+cluster://h1:port", "not a port number"),
            ("redis+cluster://h1:0", "not a port number"),
            ("redis+cluster://h1:70000", "not a port number"),
            ("redis+cluster://[::1", "closing"),
            ("redis+cluster://[::1]x", "after its"),
            ("redis+cluster://h1/2", "only database 0"),
            ("redis+cluster://h1?db=3", "only database 0"),
            ("redis+cluster://h1/x", "not a number"),
            ("redis+cluster://h1?colour=blue", "unknown option"),
            ("redis+sentinel://s1", "names no master"),
            ("redis+sentinel://s1/", "names no master"),
            ("redis+sentinel://s1/m/x", "not a number"),
            ("redis+sentinel://s1/m/1/2", "too many parts"),
            ("redis+sentinel://s1/m/1?db=2", "already given"),
            ("redis://h1:7000,h2:7001", "not a URL"),
            ("redis+nope://h1", "unknown scheme"),
        ];
        for (dsn, expected) in cases {
            let e = Dsn::parse(dsn).unwrap_err();
            assert!(e.is_config(), "{dsn}: {e}");
            assert!(e.to_string().contains(expected), "{dsn}: {e}");
        }
    }

    #[test]
    fn host_list_errors_never_show_the_password() {
        for dsn in [
            "redis+cluster://u:hunter2@h1,,h2",
            "redis+cluster://u:hunter2@h1:x",
            "redis+sentinel://u:hunter2@s1",
            "redis+sentinel://:hunter2@s1/m?nope=1",
            "redis+cluster://:hunter2@h1/5",
        ] {
            let e = Dsn::parse(dsn).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{dsn}: {e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{dsn}: {e:?}");
        }
        let d = Dsn::parse("redis+cluster://u:hunter2@h1:1,h2:2").unwrap();
        for shown in [d.to_string(), format!("{d:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("1e400").is_err());
    }

    #[test]
    fn env_default_and_numbered() {
        let got = from_vars(vars(&[
            ("CACHES_DSN", "redis://a/0"),
            ("CACHES_DSN_1", "redis://b/0#sessions"),
            ("CACHES_DSN_2", "redis://c/0"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["default", "sessions", "2"]);
    }

    #[test]
    fn env_zero_start_and_alias() {
        let got = from_vars(vars(&[
            ("CACHES_DSN_0", "redis://a/0"),
            ("CACHES_DSN_1", "redis://b/0"),
            ("CACHES_DSN", "redis://c/0#main"),
        ]))
        .unwrap();
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["default", "main", "0", "1"]);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let gap = from_vars(vars(&[
            ("CACHES_DSN_1", "redis://a"),
            ("CACHES_DSN_3", "redis://c"),
        ]))
        .unwrap_err();
        assert!(gap.to_string().contains("CACHES_DSN_3"), "{gap}");
        assert!(gap.to_string().contains("CACHES_DSN_2 is missing"), "{gap}");

        let late = from_vars(vars(&[("CACHES_DSN_2", "redis://a")])).unwrap_err();
        assert!(late.to_string().contains("start at"), "{late}");

        let dup = from_vars(vars(&[
            ("CACHES_DSN_1", "redis://a#x"),
            ("CACHES_DSN_2", "redis://b#x"),
        ]))
        .unwrap_err();
        assert!(dup.to_string().contains("CACHES_DSN_2"), "{dup}");
        assert!(
            dup.to_string().contains("already used by CACHES_DSN_1"),
            "{dup}"
        );

        let dup_default = from_vars(vars(&[
            ("CACHES_DSN", "redis://a"),
            ("CACHES_DSN_1", "redis://b#default"),
        ]))
        .unwrap_err();
        assert!(
            dup_default.to_string().contains("\"default\""),
            "{dup_default}"
        );

        let suffix = from_vars(vars(&[("CACHES_DSN_X", "redis://a")])).unwrap_err();
        assert!(suffix.to_string().contains("CACHES_DSN_X"), "{suffix}");

        let bad = from_vars(vars(&[("CACHES_DSN_1", "redis://:pw@h?x=1")])).unwrap_err();
        assert!(bad.to_string().contains("CACHES_DSN_1"), "{bad}");
        assert!(!bad.to_string().contains("pw@"), "{bad}");
    }

    #[test]
    fn env_empty_values_count_as_unset() {
        assert!(from_vars(vars(&[("CACHES_DSN", "")])).unwrap().is_empty());
    }
}
