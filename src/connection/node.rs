//! One connection to one Redis server, read under a deadline.
//!
//! `redis::Connection` applies its socket timeout to every reply it reads, so a command that
//! waits for several replies could wait that long for each. Here requests are written with
//! `send_packed_command` and their replies read one by one with `recv_response`, the socket
//! timeout set before each read to what is left of the call's [`Deadline`]: a stalled server
//! costs one deadline, however many replies were expected. The handshake (`AUTH`, `SELECT`,
//! `INFO server`) is read the same way, under `connect_timeout`.
//!
//! A connection that saw a timeout, an I/O error, a protocol error, or that was interrupted
//! in the middle of a request (a panic) is marked broken and never handed out again: a late
//! reply can never be read as the answer to another command.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionLike, RedisError, Value};

use crate::deadline::Deadline;
use crate::dsn::Protocol;

/// How a request failed: before the server could have run it, or after.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing was executed: the command could not be (fully) written, or the deadline had
    /// passed before sending. Safe to send again.
    NotSent(RedisError),
    /// The command was written but its reply was not read (timeout, connection lost): it may
    /// or may not have been applied.
    Unknown(RedisError),
}

impl Failure {
    pub(crate) fn error(&self) -> &RedisError {
        match self {
            Failure::NotSent(e) | Failure::Unknown(e) => e,
        }
    }

    pub(crate) fn into_error(self) -> RedisError {
        match self {
            Failure::NotSent(e) | Failure::Unknown(e) => e,
        }
    }
}

/// Which server software answers, and its version, from `INFO server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    /// `redis` or `valkey`.
    pub(crate) product: &'static str,
    /// The product's own version (`valkey_version` for Valkey).
    pub(crate) version: (u16, u16, u16),
    /// The server process' id, which tests compare with the process they started.
    pub(crate) process_id: Option<u32>,
}

impl ServerInfo {
    /// Parses the reply of `INFO server`.
    pub(crate) fn parse(text: &str) -> ServerInfo {
        let field = |name: &str| {
            text.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        let version = |v: &str| {
            let mut parts = v.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
            (
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
            )
        };
        match field("valkey_version") {
            Some(v) => ServerInfo {
                product: "valkey",
                version: version(v),
                process_id: field("process_id").and_then(|p| p.parse().ok()),
            },
            None => ServerInfo {
                product: "redis",
                version: field("redis_version").map_or((0, 0, 0), version),
                process_id: field("process_id").and_then(|p| p.parse().ok()),
            },
        }
    }

    /// Redis-compatible version: Valkey 7.2 and later implement Redis 7.2's commands.
    pub(crate) fn redis_compatible(&self) -> (u16, u16, u16) {
        match self.product {
            "valkey" => self.version.max((7, 2, 0)),
            _ => self.version,
        }
    }
}

impl ServerInfo {
    /// Whether the server is known to be older than `version` (in Redis versions; a server
    /// whose version could not be read, major version 0 included, is not).
    pub(crate) fn older_than(&self, version: (u16, u16, u16)) -> bool {
        self.version.0 != 0 && self.redis_compatible() < version
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "{} {a}.{b}.{c}", self.product)
    }
}

/// The bytes of a request: fixed, or made for the server that will run it (its form depends
/// on the server's version).
#[derive(Clone, Copy)]
pub(crate) enum Packed<'a> {
    Fixed(&'a [u8]),
    For(&'a dyn Fn(&ServerInfo) -> Vec<u8>),
}

impl Packed<'_> {
    /// The bytes for `server`.
    pub(crate) fn bytes(&self, server: &ServerInfo) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Packed::Fixed(b) => std::borrow::Cow::Borrowed(b),
            Packed::For(f) => std::borrow::Cow::Owned(f(server)),
        }
    }
}

/// What opening a connection needs besides the address.
#[derive(Clone)]
pub(crate) struct NodeSettings {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
    pub(crate) protocol: Protocol,
    pub(crate) connect_timeout: Duration,
    /// The default per-call budget, set on the socket between calls.
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for NodeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSettings")
            .field("username", &self.username)
            .field("db", &self.db)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl NodeSettings {
    /// The `redis` connection info for the bare connection (TCP, TLS, and for RESP3 the
    /// `HELLO 3 AUTH` that switches protocols); `AUTH` and `SELECT` for RESP2 are sent by
    /// [`NodeConn::open`] under the deadline.
    pub(crate) fn redis_info(&self) -> redis::RedisConnectionInfo {
        let info = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        match self.protocol {
            Protocol::Resp2 => info,
            Protocol::Resp3 => {
                let mut info = info.set_protocol(redis::ProtocolVersion::RESP3);
                if let Some(user) = &self.username {
                    info = info.set_username(user);
                }
                if let Some(password) = &self.password {
                    info = info.set_password(password);
                }
                info
            }
        }
    }
}

/// A timeout as `redis` reports one from a socket, so that `is_timeout()` is true.
pub(crate) fn timeout_error() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the call's deadline passed",
    ))
}

/// One open connection to one server.
pub(crate) struct NodeConn {
    con: redis::Connection,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    info: Arc<ServerInfo>,
    /// Unusable: never to be used or pooled again.
    broken: bool,
    /// A request is under way (set before writing, cleared after its last reply): a
    /// connection dropped in that state (a panic) still has replies in flight.
    busy: bool,
}

impl fmt::Debug for NodeConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConn")
            .field("server", &self.info.to_string())
            .field("broken", &self.broken)
            .finish()
    }
}

impl NodeConn {
    /// Connects with `client` (a bare client: address and TLS), authenticates, selects the
    /// database and reads `INFO server`, all within `connect_timeout` and `deadline`.
    pub(crate) fn open(
        client: &redis::Client,
        settings: &NodeSettings,
        deadline: &Deadline,
    ) -> Result<NodeConn, RedisError> {
        let deadline = deadline.capped(settings.connect_timeout);
        let budget = match deadline.remaining() {
            Some(left) if !left.is_zero() => left,
            _ => return Err(timeout_error()),
        };
        let con = client.get_connection_with_timeout(budget)?;
        let mut node = NodeConn {
            con,
            read_timeout: None,
            write_timeout: None,
            info: Arc::new(ServerInfo::parse("")),
            broken: false,
            busy: false,
        };
        let mut pipe = redis::pipe();
        if settings.protocol == Protocol::Resp2
            && let Some(password) = &settings.password
        {
            let cmd = pipe.cmd("AUTH");
            if let Some(user) = &settings.username {
                cmd.arg(user);
            }
            cmd.arg(password);
        }
        if settings.db != 0 {
            pipe.cmd("SELECT").arg(settings.db);
        }
        pipe.cmd("INFO").arg("server");
        let replies = node
            .request(&pipe.get_packed_pipeline(), pipe.len(), &deadline)
            .map_err(Failure::into_error)?;
        // AUTH refused (WRONGPASS), or no AUTH where one is required (NOAUTH on what
        // follows), or a database that does not exist: the first error is the cause. A user
        // who may not run INFO (ACL `NOPERM`) still connects, to a server of unknown
        // version: version-dependent commands then take their oldest form.
        let mut replies = replies;
        let info = match replies.pop() {
            Some(Value::ServerError(e)) if e.code() == "NOPERM" => Value::BulkString(Vec::new()),
            Some(info) => info,
            None => Value::Nil,
        };
        if let Some(Value::ServerError(e)) = replies
            .iter()
            .chain([&info])
            .find(|r| matches!(r, Value::ServerError(_)))
        {
            return Err(e.clone().into());
        }
        let text: String = match info {
            Value::Nil => String::new(),
            info => redis::from_redis_value(info)?,
        };
        node.info = Arc::new(ServerInfo::parse(&text));
        node.set_timeouts(settings.timeout)?;
        Ok(node)
    }

    /// The server this connection reaches.
    pub(crate) fn info(&self) -> &Arc<ServerInfo> {
        &self.info
    }

    /// Whether the connection may be used again.
    pub(crate) fn usable(&self) -> bool {
        !self.broken && !self.busy && self.con.is_open()
    }

    fn set_timeouts(&mut self, timeout: Option<Duration>) -> Result<(), RedisError> {
        self.con.set_read_timeout(timeout)?;
        self.con.set_write_timeout(timeout)?;
        self.read_timeout = timeout;
        self.write_timeout = timeout;
        Ok(())
    }

    /// Sets the socket timeout for the next read (or write) to what is left of `deadline`,
    /// unless it is already that within a small slack (no system call on the common path).
    fn arm(&mut self, deadline: &Deadline, read: bool) -> Result<(), RedisError> {
        let want = match deadline.remaining() {
            Some(left) if left.is_zero() => return Err(timeout_error()),
            other => other,
        };
        let current = if read {
            self.read_timeout
        } else {
            self.write_timeout
        };
        if !needs_reset(current, want) {
            return Ok(());
        }
        if read {
            self.con.set_read_timeout(want)?;
            self.read_timeout = want;
        } else {
            self.con.set_write_timeout(want)?;
            self.write_timeout = want;
        }
        Ok(())
    }

    /// Writes `packed` (one command, or several) and reads `replies` replies, all before
    /// `deadline`. Error replies come back as `Value::ServerError` items; push messages are
    /// skipped.
    pub(crate) fn request(
        &mut self,
        packed: &[u8],
        replies: usize,
        deadline: &Deadline,
    ) -> Result<Vec<Value>, Failure> {
        let mut out = Vec::with_capacity(replies);
        self.send(packed, deadline)?;
        while out.len() < replies {
            out.push(self.receive(deadline)?);
        }
        self.busy = false;
        Ok(out)
    }

    /// [`request`](NodeConn::request) for one command and its one reply.
    pub(crate) fn request_one(
        &mut self,
        packed: &[u8],
        deadline: &Deadline,
    ) -> Result<Value, Failure> {
        self.send(packed, deadline)?;
        let reply = self.receive(deadline)?;
        self.busy = false;
        Ok(reply)
    }

    fn send(&mut self, packed: &[u8], deadline: &Deadline) -> Result<(), Failure> {
        if self.broken {
            return Err(Failure::NotSent(RedisError::from((
                redis::ErrorKind::Io,
                "the connection was discarded after an earlier failure",
            ))));
        }
        if let Err(e) = self.arm(deadline, false) {
            return Err(Failure::NotSent(e));
        }
        self.busy = true;
        if let Err(e) = self.con.send_packed_command(packed) {
            // Redis runs a command only once it has read all of it: a command that could not
            // be written whole was not run.
            self.broken = true;
            return Err(Failure::NotSent(e));
        }
        Ok(())
    }

    fn receive(&mut self, deadline: &Deadline) -> Result<Value, Failure> {
        loop {
            if let Err(e) = self.arm(deadline, true) {
                self.broken = true;
                return Err(Failure::Unknown(e));
            }
            match self.con.recv_response() {
                Ok(Value::Push { .. }) => continue,
                // The server closes the connection after it: never hand it out again (the
                // next caller's write would meet a reset and an unknown outcome).
                Ok(Value::ServerError(e)) if is_protocol_error(&e) => {
                    self.broken = true;
                    return Ok(Value::ServerError(e));
                }
                Ok(value) => return Ok(value),
                Err(e) => {
                    self.broken = true;
                    return Err(Failure::Unknown(e));
                }
            }
        }
    }
}

/// Whether an error reply is Redis' "Protocol error" (a request it could not parse, or a bulk
/// string over `proto-max-bulk-len`), after which it closes the connection.
fn is_protocol_error(e: &redis::ServerError) -> bool {
    e.code() == "ERR" && e.details().is_some_and(|d| d.starts_with("Protocol error"))
}

/// Whether a socket timeout of `current` is too far from `want` (2%, at least 1 ms) to stand
/// for it: too long would overrun the deadline, too short would give up early.
fn needs_reset(current: Option<Duration>, want: Option<Duration>) -> bool {
    match (current, want) {
        (None, None) => false,
        (Some(c), Some(w)) => {
            let slack = (w / 50).max(Duration::from_millis(1));
            c > w.saturating_add(slack) || c.saturating_add(slack) < w
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_of_redis_and_valkey() {
        let redis = ServerInfo::parse(
            "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nprocess_id:4242\r\n",
        );
        assert_eq!(redis.product, "redis");
        assert_eq!(redis.version, (7, 0, 15));
        assert_eq!(redis.process_id, Some(4242));
        assert_eq!(redis.to_string(), "redis 7.0.15");
        assert_eq!(redis.redis_compatible(), (7, 0, 15));

        let valkey = ServerInfo::parse(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\nprocess_id:7\r\n",
        );
        assert_eq!(valkey.product, "valkey");
        assert_eq!(valkey.version, (8, 1, 8));
        assert_eq!(valkey.redis_compatible(), (8, 1, 8));
        assert_eq!(valkey.to_string(), "valkey 8.1.8");

        let old = ServerInfo::parse("redis_version:6.2.14\r\n");
        assert_eq!(old.version, (6, 2, 14));
        assert_eq!(old.process_id, None);
        assert_eq!(ServerInfo::parse("garbage").version, (0, 0, 0));

        assert!(old.older_than((7, 0, 0)));
        assert!(!old.older_than((6, 2, 0)));
        assert!(ServerInfo::parse("redis_version:5.0.6\r\n").older_than((6, 2, 0)));
        assert!(!valkey.older_than((6, 2, 0)));
        assert!(
            !ServerInfo::parse("garbage").older_than((6, 2, 0)),
            "an unknown version is not refused"
        );
        assert!(
            !ServerInfo::parse("redis_version:v7.2.4\r\n").older_than((6, 2, 0)),
            "a version that does not parse is unknown, not old"
        );
    }

    #[test]
    fn socket_timeouts_are_reset_only_when_they_would_be_wrong() {
        let ms = Duration::from_millis;
        assert!(!needs_reset(None, None));
        assert!(needs_reset(None, Some(ms(100))));
        assert!(needs_reset(Some(ms(100)), None));
        assert!(!needs_reset(Some(ms(1000)), Some(ms(995))), "within 2%");
        assert!(needs_reset(Some(ms(1000)), Some(ms(500))), "would overrun");
        assert!(
            needs_reset(Some(ms(500)), Some(ms(1000))),
            "would give up early"
        );
        assert!(!needs_reset(Some(ms(10)), Some(ms(10))));
        assert!(needs_reset(Some(ms(10)), Some(ms(5))));
        assert!(!needs_reset(
            Some(Duration::MAX),
            Some(Duration::MAX - ms(1))
        ));
    }

    #[test]
    fn timeout_errors_classify_as_timeouts() {
        assert!(timeout_error().is_timeout());
    }
}
