//! The crate's error type.
//!
//! Every fallible operation returns [`Result<T>`](Result), whose error is the one
//! [`Error`] enum. Messages are lowercase, name the key or connection involved, and never
//! contain a password, a URL with credentials, or value bytes.

use std::time::Duration;

/// The result type of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `redis_caches`.
///
/// Use the classifiers ([`is_timeout`](Error::is_timeout),
/// [`is_connection`](Error::is_connection), [`is_decode`](Error::is_decode),
/// [`is_config`](Error::is_config)) rather than matching on variants when all you need is the
/// kind of failure; the underlying [`redis::RedisError`] stays reachable through
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
    /// A DSN or another configuration value is invalid.
    ///
    /// `origin` names where it came from: an environment variable such as `CACHES_DSN_2`, or
    /// the connection name it was registered under.
    #[error("invalid configuration in {origin}: {problem}")]
    Config {
        /// The environment variable or connection name the bad value came from.
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

    /// No pooled connection could be had in time: the server is unreachable or every
    /// connection of the pool is in use.
    #[error("connection {connection:?}: no connection available within {waited:?}: {reason}")]
    Pool {
        /// The connection name.
        connection: String,
        /// How long the pool waited.
        waited: Duration,
        /// Why: the last connection error, or that the pool stayed exhausted.
        reason: String,
    },

    /// Redis answered with an error, or the connection failed during a command.
    #[error("redis error on {target}: {source}")]
    Redis {
        /// The key (or connection) the command was about.
        target: String,
        /// The error from the `redis` crate.
        #[source]
        source: redis::RedisError,
    },

    /// The bytes stored under a key could not be decoded into the requested type.
    #[error("cannot decode the value at {key}: {reason}")]
    Decode {
        /// The Redis key holding the value (with the hash field or member where relevant).
        key: String,
        /// What did not match.
        reason: String,
    },

    /// A value could not be encoded by the collection's codec.
    #[error("cannot encode a value for {key}: {reason}")]
    Encode {
        /// The Redis key the value was meant for.
        key: String,
        /// Why the codec refused it.
        reason: String,
    },

    /// The key holds a different Redis type than the collection expects.
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
    /// them all.
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

    /// An encoded value is larger than the limit the collection allows.
    #[error("the value for {key} is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        /// The Redis key the value was meant for.
        key: String,
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The keys of one operation (a multi-key command, a pipeline, a transaction, a script)
    /// hash to different Redis Cluster slots, which a cluster cannot serve together. Nothing
    /// was written. Give the keys a common hash tag (see the crate docs, "Scale: Cluster and
    /// Sentinel").
    #[error(
        "a multi-key operation across slots on {key}: on a Redis Cluster all keys of one \
         operation must share a hash tag ({source})"
    )]
    CrossSlot {
        /// The key of the collection that ran the operation.
        key: String,
        /// The crate's own check, or Redis' `CROSSSLOT` reply.
        #[source]
        source: redis::RedisError,
    },
}

impl Error {
    /// True when the operation failed because Redis did not answer in time (operation or
    /// connect timeout), or no pooled connection became free in time.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::Pool { connection: "default".into(), waited: std::time::Duration::from_secs(1), reason: "timed out".into() };
    /// assert!(err.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Redis { source, .. } => source.is_timeout(),
            Error::Pool { .. } => true,
            _ => false,
        }
    }

    /// True when the connection to Redis could not be made or was lost (refused, reset,
    /// closed, unreachable, or no pooled connection available), or, on a Redis Cluster or
    /// a Sentinel-managed group, when a failover is under way (`CLUSTERDOWN`, `TRYAGAIN`,
    /// `MASTERDOWN`, no master known yet): retrying later may succeed.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::Pool { connection: "default".into(), waited: std::time::Duration::from_secs(1), reason: "connection refused".into() };
    /// assert!(err.is_connection());
    /// ```
    pub fn is_connection(&self) -> bool {
        match self {
            Error::Redis { source, .. } => {
                source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_io_error()
                    || source.is_timeout()
                    || is_failing_over(source)
            }
            Error::Pool { .. } => true,
            _ => false,
        }
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
    /// # use redis_caches::Error;
    /// let err = Error::Decode { key: "k".into(), reason: "bad header".into() };
    /// assert!(err.is_decode());
    /// ```
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. })
    }

    /// True for configuration errors: invalid DSNs, unknown options or connection names.
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::UnknownConnection { name: "nope".into() };
    /// assert!(err.is_config());
    /// ```
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config { .. } | Error::UnknownConnection { .. })
    }

    /// True when Redis rejected the credentials (wrong password, unknown ACL user).
    ///
    /// ```
    /// # use redis_caches::Error;
    /// let err = Error::InvalidKey { reason: "empty".into() };
    /// assert!(!err.is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        match self {
            Error::Redis { source, .. } => {
                source.kind() == redis::ErrorKind::AuthenticationFailed
                    || source.code() == Some("WRONGPASS")
                    || source.code() == Some("NOAUTH")
            }
            Error::Pool { reason, .. } => {
                reason.contains("WRONGPASS")
                    || reason.contains("NOAUTH")
                    || reason.contains("uthentication")
            }
            _ => false,
        }
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
}

/// Errors a cluster or a Sentinel-managed group gives while a master is down or being
/// replaced.
fn is_failing_over(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::ClusterDown | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown
        ) | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::MasterNameNotFoundBySentinel
    )
}
