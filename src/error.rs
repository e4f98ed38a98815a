//! The crate's error type.
//!
//! Every fallible operation returns [`Result<T>`](Result), whose error is the one
//! [`Error`] enum. Messages are lowercase, say what failed and for which key or connection,
//! and never contain a password, a URL with credentials, or value bytes. The cause (the
//! `redis` error, the codec's complaint) is the error's [`source`](std::error::Error::source),
//! not repeated in its `Display`: print the chain (`{:#}` with `anyhow`, or walk `source()`)
//! to see both.

use std::time::Duration;

use crate::codec::CodecError;

/// The result type of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `redis_caches`.
///
/// Use the classifiers ([`is_timeout`](Error::is_timeout),
/// [`is_connection`](Error::is_connection), [`is_outcome_unknown`](Error::is_outcome_unknown),
/// [`is_decode`](Error::is_decode), ...) rather than matching on variants when all you need
/// is the kind of failure; they look at the kind of the cause, never at message text. The
/// underlying [`redis::RedisError`] or [`CodecError`] stays reachable through
/// [`std::error::Error::source`].
///
/// # Example
///
/// ```
/// use redis_caches::Dsn;
///
/// let err = Dsn::parse("redis://:hunter2@localhost/0?colour=blue").unwrap_err();
/// assert!(err.is_config());
/// assert!(err.to_string().contains("colour"));
/// assert!(!err.to_string().contains("hunter2"));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A DSN, an option or another configuration value is invalid. Nothing was sent.
    ///
    /// `origin` names where it came from: an environment variable such as `CACHES_DSN_2`,
    /// the connection name it was registered under, or the handle whose options are wrong.
    #[error("invalid configuration in {origin}: {problem}")]
    Config {
        /// The environment variable, connection name or handle the bad value came from.
        origin: String,
        /// What is wrong with it (never the password).
        problem: String,
    },

    /// No connection is registered under this name.
    #[error(
        "no connection named {name:?} is configured (set CACHES_DSN or CACHES_DSN_n, or call connection::register)"
    )]
    UnknownConnection {
        /// The name that was looked up.
        name: String,
    },

    /// A connection could not be opened: the server refused it, could not be reached in
    /// `connect_timeout`, rejected the credentials, or failed the TLS handshake. Nothing was
    /// sent. Within a short back-off window after such a failure, calls get the same error at
    /// once instead of trying again.
    #[error("connection {connection:?}: cannot connect")]
    Connect {
        /// The connection name.
        connection: String,
        /// Why: the `redis` error of the last attempt.
        #[source]
        source: redis::RedisError,
    },

    /// Every connection of the pool stayed in use for `pool_timeout`. Nothing was sent.
    #[error(
        "connection {connection:?}: all {size} pooled connections stayed in use for {waited:?}"
    )]
    Pool {
        /// The connection name.
        connection: String,
        /// How long the call waited for one.
        waited: Duration,
        /// The pool's size (`pool_size`).
        size: u32,
    },

    /// Redis answered with an error, or the connection failed before the command could have
    /// run (or, for a read, at any point).
    #[error("redis command on {target} failed")]
    Redis {
        /// The key (or connection) the command was about.
        target: String,
        /// The error from the `redis` crate.
        #[source]
        source: redis::RedisError,
    },

    /// A write was sent but its reply was lost (the connection dropped, or the call's
    /// deadline passed): it may or may not have been applied. The crate never resends such a
    /// write by itself; read back before retrying it, if it is not idempotent.
    #[error("the outcome of the write on {target} is unknown: it may or may not have been applied")]
    OutcomeUnknown {
        /// The key the write was about.
        target: String,
        /// What interrupted it: a timeout or a connection failure.
        #[source]
        source: redis::RedisError,
    },

    /// The connection's user lacks a permission the operation needs (ACL `NOPERM`). Nothing
    /// was written.
    #[error("permission denied for the command on {target}")]
    Permission {
        /// The key the command was about.
        target: String,
        /// Redis' `NOPERM` reply.
        #[source]
        source: redis::RedisError,
    },

    /// The server is too old for the crate: every operation on a server older than Redis 6.2
    /// (Redis 5.0, 6.0) fails with this error, before anything is sent, instead of failing
    /// halfway on a command that server does not know. Checked on connections to one server
    /// and under Sentinel, from the version the connection read when it was opened (no round
    /// trip).
    #[error("{operation} needs {needs}, the server is {found}")]
    Unsupported {
        /// The command that was about to be sent and its key (`EVALSHA on dict.foo`).
        operation: String,
        /// The oldest server version that has what it needs.
        needs: &'static str,
        /// The server found.
        found: String,
    },

    /// The bytes stored under a key could not be decoded into the requested type.
    #[error("cannot decode the value at {key}")]
    Decode {
        /// The Redis key holding the value (with the hash field or member where relevant).
        key: String,
        /// What did not match.
        #[source]
        source: CodecError,
    },

    /// A value could not be encoded by the collection's codec. Nothing was sent.
    #[error("cannot encode a value for {key}")]
    Encode {
        /// The Redis key the value was meant for.
        key: String,
        /// Why the codec refused it.
        #[source]
        source: CodecError,
    },

    /// The key holds a different Redis type than the collection expects. Nothing was
    /// written.
    #[error("the key {key} holds a redis {found}, not a {expected}")]
    WrongType {
        /// The Redis key.
        key: String,
        /// The Redis type this collection works with (`hash`, `set`, ...).
        expected: &'static str,
        /// The type Redis reports for the key.
        found: String,
    },

    /// A command that combines several keys (set algebra such as `SUNION`) was given
    /// collections that are not on the same Redis database, so no single command can see
    /// them all. Nothing was sent.
    #[error(
        "cannot combine {key} (connection {connection:?}) with {other_key} (connection {other_connection:?}): they are not on the same redis database"
    )]
    MixedConnections {
        /// The key of the collection the operation was called on.
        key: String,
        /// Its connection name.
        connection: String,
        /// The key of the collection on another database.
        other_key: String,
        /// That collection's connection name.
        other_connection: String,
    },

    /// A sorted-set score (or score bound, or increment) is NaN, which Redis rejects;
    /// refused before anything is sent.
    #[error("invalid score for {key}: NaN is not a valid sorted set score")]
    InvalidScore {
        /// The Redis key of the sorted set.
        key: String,
    },

    /// A key could not be built: no parts at all, or an empty part.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },

    /// An encoded value is larger than the limit the collection allows. Nothing was sent.
    #[error("the value for {key} is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        /// The Redis key the value was meant for.
        key: String,
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// A region tree holds data in the layout of redis-caches 0.1, which this release neither
    /// reads nor writes (see the [region module](crate::region)'s "Upgrading from 0.1").
    /// Nothing was read or written. Invalidating the tree's root region discards the old
    /// data (reclaimed in the background like any invalidated region) and lifts the refusal.
    #[error(
        "the region tree of {key} holds data in the layout of redis-caches 0.1; invalidate its \
         root region to discard it"
    )]
    OldLayout {
        /// The key of the region the operation was about.
        key: String,
        /// The script's refusal.
        #[source]
        source: redis::RedisError,
    },

    /// The keys of one operation (a multi-key command or a script) hash to different Redis
    /// Cluster slots, which a cluster cannot serve together. Nothing was written. Give the
    /// keys a common hash tag (see the crate docs, "Scale: Cluster and Sentinel").
    #[error(
        "a multi-key operation across slots on {key}: on a Redis Cluster all keys of one \
         operation must share a hash tag"
    )]
    CrossSlot {
        /// The key of the collection that ran the operation.
        key: String,
        /// Redis' `CROSSSLOT` reply.
        #[source]
        source: redis::RedisError,
    },
}

impl Error {
    /// The `redis` error this error wraps, if any.
    fn redis_source(&self) -> Option<&redis::RedisError> {
        match self {
            Error::Connect { source, .. }
            | Error::Redis { source, .. }
            | Error::OutcomeUnknown { source, .. }
            | Error::Permission { source, .. }
            | Error::CrossSlot { source, .. }
            | Error::OldLayout { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the operation failed because Redis did not answer in time (the call's
    /// `timeout`, or `connect_timeout` while connecting), or no pooled connection became free
    /// within `pool_timeout`.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::Pool { connection: "default".into(), waited: std::time::Duration::from_secs(1), size: 16 };
    /// assert!(err.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Pool { .. } => true,
            _ => self
                .redis_source()
                .is_some_and(redis::RedisError::is_timeout),
        }
    }

    /// True when the connection to Redis could not be made or was lost (refused, reset,
    /// closed, unreachable, timed out, no pooled connection available), or a failover or a
    /// resharding is under way (`CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`, `LOADING`,
    /// `READONLY` from a demoted master, no master known yet): retrying later may succeed.
    /// An [`Error::OutcomeUnknown`] is a connection error too: check
    /// [`is_outcome_unknown`](Error::is_outcome_unknown) before retrying a write that is not
    /// idempotent.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::Pool { connection: "default".into(), waited: std::time::Duration::from_secs(1), size: 16 };
    /// assert!(err.is_connection());
    /// ```
    pub fn is_connection(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Pool { .. } | Error::OutcomeUnknown { .. } => true,
            Error::Redis { source, .. } => is_transient(source),
            _ => false,
        }
    }

    /// True when a write was sent but its reply was lost: it may or may not have been
    /// applied ([`Error::OutcomeUnknown`]).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    /// let err = Error::OutcomeUnknown { target: "hits".into(), source: lost.into() };
    /// assert!(err.is_outcome_unknown() && err.is_connection());
    /// ```
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when the keys of one operation are in different Redis Cluster slots
    /// ([`Error::CrossSlot`]).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::InvalidKey { reason: "empty".into() };
    /// assert!(!err.is_cross_slot());
    /// ```
    pub fn is_cross_slot(&self) -> bool {
        matches!(self, Error::CrossSlot { .. })
    }

    /// True when stored bytes could not be decoded (foreign, corrupt, or written for another
    /// type).
    ///
    /// ```
    /// # use redis_caches::{Error, codec::CodecError};
    /// let err = Error::Decode { key: "k".into(), source: CodecError::new("bad header") };
    /// assert!(err.is_decode());
    /// ```
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. })
    }

    /// A [`Error::Decode`] whose bytes are a value of another shape, schema version or
    /// stored-data format ([`CodecError::is_stale`]): a miss for caches.
    pub(crate) fn is_stale_decode(&self) -> bool {
        matches!(self, Error::Decode { source, .. } if source.is_stale())
    }

    /// True when the key holds another Redis type ([`Error::WrongType`]).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::WrongType { key: "k".into(), expected: "hash", found: "list".into() };
    /// assert!(err.is_wrong_type());
    /// ```
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, Error::WrongType { .. })
    }

    /// True for configuration errors: invalid DSNs or options, unknown connection names.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::UnknownConnection { name: "nope".into() };
    /// assert!(err.is_config());
    /// ```
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config { .. } | Error::UnknownConnection { .. })
    }

    /// True when Redis rejected the credentials (wrong password, unknown ACL user, or a
    /// password required and not given).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::InvalidKey { reason: "empty".into() };
    /// assert!(!err.is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        self.redis_source().is_some_and(|e| {
            e.kind() == redis::ErrorKind::AuthenticationFailed
                || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"))
        })
    }

    /// True when the connection's ACL user may not run a command the operation needs
    /// ([`Error::Permission`]).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::InvalidKey { reason: "empty".into() };
    /// assert!(!err.is_permission());
    /// ```
    pub fn is_permission(&self) -> bool {
        matches!(self, Error::Permission { .. })
    }

    /// True when the server refused to write and wrote nothing: out of memory under a
    /// `noeviction` policy (`OOM`), too few replicas (`NOREPLICAS`), a failing disk
    /// (`MISCONF`), or a read-only replica (`READONLY`). Reads still work.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::InvalidKey { reason: "empty".into() };
    /// assert!(!err.is_write_refused());
    /// ```
    pub fn is_write_refused(&self) -> bool {
        self.redis_source().is_some_and(is_write_refusal)
    }

    pub(crate) fn config(origin: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            origin: origin.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn redis(target: impl Into<String>, source: redis::RedisError) -> Self {
        Error::Redis {
            target: target.into(),
            source,
        }
    }

    pub(crate) fn decode(key: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Error::Decode {
            key: key.into(),
            source: CodecError::new(why),
        }
    }

    pub(crate) fn encode(key: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Error::Encode {
            key: key.into(),
            source: CodecError::new(why),
        }
    }
}

/// Errors after which retrying later may succeed: the connection, or a failover or
/// resharding under way.
pub(crate) fn is_transient(e: &redis::RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_io_error()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::ClusterConnectionNotFound
                | redis::ErrorKind::MasterNameNotFoundBySentinel
        )
        || matches!(
            e.code(),
            Some(
                "CLUSTERDOWN"
                    | "TRYAGAIN"
                    | "MASTERDOWN"
                    | "LOADING"
                    | "READONLY"
                    | "MOVED"
                    | "ASK"
            )
        )
}

/// Replies by which the server refuses a write before applying anything.
pub(crate) fn is_write_refusal(e: &redis::RedisError) -> bool {
    matches!(
        e.code(),
        Some("OOM" | "NOREPLICAS" | "MISCONF" | "READONLY")
    )
}

/// Redis 6.2 reports an error raised by `redis.call` inside a script as `ERR Error running
/// script (call to f_...): @user_script:2: WRONGTYPE ...` (some errors with a second
/// `@user_script: 2:` and a `-` before the code); 7.0 and later pass the code on. This reads
/// the code back out of that fixed wrapper, so that classifiers see the cause, not the
/// wrapping; an error that is not wrapped this way is returned as it is.
pub(crate) fn unwrap_script_error(e: redis::RedisError) -> redis::RedisError {
    // Redis Cluster fails a script that names a key its node does not hold while the key's
    // slot migrates, without a code (`Script attempted to access a non local key in a
    // cluster node ...`; 6.2: `Lua script attempted ...`): a slot being resharded, like
    // `TRYAGAIN`. The crate's scripts name such keys (ones they do not declare, or that they
    // deleted) only before their first write, so nothing ran.
    if let (Some(code), Some(detail)) = (e.code(), e.detail())
        && (detail.contains(SCRIPT_NON_LOCAL) || code.contains(SCRIPT_NON_LOCAL))
    {
        return redis::make_extension_error(
            "TRYAGAIN".to_string(),
            Some(format!("{code} {detail}")),
        );
    }
    // Redis 7.0 words an ACL refusal of a command a script runs with `redis.call` without
    // a code too (`The user executing the script can't run this command ... script: <sha>,
    // on @user_script:67.`), the text standing where the code would be.
    if let (Some(code), Some(detail)) = (e.code(), e.detail()) {
        let text = format!("{code} {detail}");
        if let Some(refusal) = [text.as_str(), detail]
            .into_iter()
            .find(|t| t.starts_with(SCRIPT_NOPERM_6_2) || t.starts_with(SCRIPT_NOPERM_VALKEY))
        {
            return redis::make_extension_error("NOPERM".to_string(), Some(refusal.to_string()));
        }
    }
    if e.code() != Some("ERR") {
        return e;
    }
    let Some(detail) = e.detail() else {
        return e;
    };
    if !detail.starts_with("Error running script") {
        return e;
    }
    // The text after the last `@user_script...:` location, e.g. `WRONGTYPE Operation ...`.
    let inner = detail
        .rsplit_once("@user_script")
        .map(|(_, rest)| rest)
        .and_then(|rest| {
            // `:27: CODE ...` or `: 50: CODE ...`
            let rest = rest.trim_start_matches(':').trim_start();
            let (line, rest) = rest.split_once(": ")?;
            line.bytes().all(|b| b.is_ascii_digit()).then_some(rest)
        })
        .map(|rest| rest.trim_start_matches('-'));
    match inner.and_then(|i| i.split_once(' ')) {
        Some((code, rest)) if code.len() > 1 && code.bytes().all(|b| b.is_ascii_uppercase()) => {
            redis::make_extension_error(code.to_string(), Some(rest.to_string()))
        }
        // Redis 6.2's one ACL refusal inside a script, which carries no code at all.
        Some(_) if inner.is_some_and(|i| i.starts_with(SCRIPT_NOPERM_6_2)) => {
            redis::make_extension_error("NOPERM".to_string(), inner.map(str::to_string))
        }
        _ => e,
    }
}

/// The text of the error for a command a script's user may not run, without a code: Redis
/// 6.2 (`luaRedisGenericCommand`), and 7.0 for a `redis.call` the script did not check first
/// (the crate's scripts check with `redis.acl_check_cmd` there, which replies `NOPERM`).
const SCRIPT_NOPERM_6_2: &str = "The user executing the script can't run this command";

/// Valkey 8's wording of [`SCRIPT_NOPERM_6_2`] (`ACL failure in script: User u has no
/// permissions to run the 'hget' command script: <sha>, on @user_script:91.`).
const SCRIPT_NOPERM_VALKEY: &str = "ACL failure in script";

/// The text of the error for a script that names a key of a slot its node does not serve
/// (or, while the slot migrates, a key it lacks), without a code.
const SCRIPT_NON_LOCAL: &str = "attempted to access a non local key in a cluster node";

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn server(code: &str) -> redis::RedisError {
        redis::make_extension_error(code.to_string(), Some("detail".into()))
    }

    #[test]
    fn causes_are_sources_not_repeated_in_display() {
        let e = Error::redis("k", server("WRONGTYPE"));
        assert_eq!(e.to_string(), "redis command on k failed");
        assert!(std::error::Error::source(&e).is_some());
        let d = Error::decode("k", "bad header");
        assert_eq!(d.to_string(), "cannot decode the value at k");
        assert_eq!(
            std::error::Error::source(&d).map(|s| s.to_string()),
            Some("bad header".into())
        );
    }

    #[test]
    fn classifiers_look_at_kinds() {
        for code in [
            "CLUSTERDOWN",
            "TRYAGAIN",
            "MASTERDOWN",
            "LOADING",
            "READONLY",
        ] {
            assert!(Error::redis("k", server(code)).is_connection(), "{code}");
        }
        let cluster_down = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
            "down",
        ));
        assert!(Error::redis("k", cluster_down).is_connection());
        assert!(!Error::redis("k", server("WRONGTYPE")).is_connection());
        for code in ["OOM", "NOREPLICAS", "MISCONF", "READONLY"] {
            assert!(Error::redis("k", server(code)).is_write_refused(), "{code}");
        }
        assert!(!Error::redis("k", server("ERR")).is_write_refused());
        let reset =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let unknown = Error::OutcomeUnknown {
            target: "k".into(),
            source: reset.clone(),
        };
        assert!(unknown.is_connection() && unknown.is_outcome_unknown() && !unknown.is_timeout());
        let timed_out = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let late = Error::OutcomeUnknown {
            target: "k".into(),
            source: timed_out,
        };
        assert!(late.is_timeout());
        let connect = Error::Connect {
            connection: "c".into(),
            source: server("WRONGPASS"),
        };
        assert!(connect.is_auth() && connect.is_connection() && !connect.is_timeout());
        assert!(!Error::redis("k", reset).is_auth());
        let perm = Error::Permission {
            target: "k".into(),
            source: server("NOPERM"),
        };
        assert!(perm.is_permission() && !perm.is_connection());
    }

    #[test]
    fn script_errors_of_redis_6_keep_their_code() {
        let parse = |text: &str| match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
            Ok(Value::ServerError(e)) => redis::RedisError::from(e),
            other => panic!("{other:?}"),
        };
        // As Redis 6.2.14 words them.
        let wrongtype = parse(
            "ERR Error running script (call to f_3edd): @user_script:27: WRONGTYPE Operation against a key holding the wrong kind of value",
        );
        assert_eq!(unwrap_script_error(wrongtype).code(), Some("WRONGTYPE"));
        let oom = parse(
            "ERR Error running script (call to f_1234): @user_script:3: @user_script: 3: -OOM command not allowed when used memory > 'maxmemory'.",
        );
        let oom = unwrap_script_error(oom);
        assert_eq!(oom.code(), Some("OOM"));
        assert!(crate::error::is_write_refusal(&oom));
        // An ACL refusal inside a script, which 6.2 words without a code.
        let noperm = unwrap_script_error(parse(
            "ERR Error running script (call to f_8de1): @user_script:65: @user_script: 65: The user executing the script can't run this command or subcommand",
        ));
        assert_eq!(noperm.code(), Some("NOPERM"));
        // As Redis 7.0.15 words it (after `ERR`, or with the text where the code would be).
        for text in [
            "ERR The user executing the script can't run this command or subcommand script: 5b2e, on @user_script:67.",
            "The user executing the script can't run this command or subcommand script: 5b2e, on @user_script:67.",
        ] {
            assert_eq!(
                unwrap_script_error(parse(text)).code(),
                Some("NOPERM"),
                "{text}"
            );
        }
        // As Valkey 8.1 words an ACL refusal inside a script.
        assert_eq!(
            unwrap_script_error(parse(
                "ACL failure in script: User u has no permissions to run the 'hget' command script: e673, on @user_script:91."
            ))
            .code(),
            Some("NOPERM")
        );
        // A script that named a key its node lacks while the slot migrates (7.0, 6.2).
        for text in [
            "Script attempted to access a non local key in a cluster node script: 65f6, on @user_script:69.",
            "ERR Error running script (call to f_65f6): @user_script:69: @user_script: 69: Lua script attempted to access a non local key in a cluster node",
        ] {
            let e = unwrap_script_error(parse(text));
            assert_eq!(e.code(), Some("TRYAGAIN"), "{text}");
            assert!(is_transient(&e));
        }
        // A Lua error, not a Redis error code: left as it is.
        let arity = parse(
            "ERR Error running script (call to f_ec79): @user_script:50: @user_script: 50: Wrong number of args calling Redis command From Lua script",
        );
        assert_eq!(unwrap_script_error(arity).code(), Some("ERR"));
        assert_eq!(
            unwrap_script_error(parse("ERR syntax error")).code(),
            Some("ERR")
        );
        assert_eq!(
            unwrap_script_error(parse("WRONGTYPE x")).code(),
            Some("WRONGTYPE")
        );
    }
}
