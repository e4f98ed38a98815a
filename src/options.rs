//! Options shared by every collection, and the builder that sets them.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use once_cell::sync::OnceCell;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, TypeTag};
use crate::connection::{Connection, ConnectionRef, RedisConn};
use crate::error::{Error, Result};
use crate::key::{IntoKey, Key};

/// What happens to a collection's TTL when it is written to.
///
/// ```
/// use redis_caches::TtlPolicy;
/// assert_eq!(TtlPolicy::default(), TtlPolicy::Refresh);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TtlPolicy {
    /// Every write sets the TTL again (`PEXPIRE key ttl` in the same round trip), as `caches`
    /// does: the key lives until `ttl` after its last write.
    #[default]
    Refresh,
    /// The TTL is set when the key is created and left alone afterwards (`PEXPIRE key ttl
    /// NX`, Redis 7.0 or later): the key lives until `ttl` after its first write.
    Keep,
}

/// The largest encoded value the collections accept by default: Redis' own limit for one
/// bulk string (`proto-max-bulk-len`, 512 MiB).
pub const DEFAULT_MAX_VALUE_SIZE: usize = 512 * 1024 * 1024;

/// Settings shared by all collection types.
#[derive(Clone)]
pub(crate) struct Options<C> {
    pub(crate) connection: ConnectionRef,
    pub(crate) prefix: Option<String>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) ttl_policy: TtlPolicy,
    pub(crate) codec: C,
    pub(crate) max_value_size: usize,
}

impl Default for Options<Postcard> {
    fn default() -> Self {
        Options {
            connection: ConnectionRef::default(),
            prefix: None,
            ttl: None,
            ttl_policy: TtlPolicy::Refresh,
            codec: Postcard,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
        }
    }
}

/// Implemented by every collection type so that one [`Builder`] serves them all. Sealed.
pub trait Collection: Sized + private::Sealed {
    /// The codec the collection encodes with.
    type Codec: Codec;
    /// Options only this collection type has (a default value, ...).
    #[doc(hidden)]
    type Extra: Default;
    /// The same collection with another codec.
    type WithCodec<C2: Codec>: Collection<Codec = C2, Extra = Self::Extra>;
    /// The Redis type the collection keeps under its key (`string`, `hash`, ...).
    #[doc(hidden)]
    const REDIS_TYPE: &'static str;
    #[doc(hidden)]
    fn from_core(core: Core<Self::Codec>, extra: Self::Extra) -> Self;
}

pub(crate) mod private {
    pub trait Sealed {}
}

/// Configures a collection before it is built. Every collection type has a
/// `builder(key)` that returns one; `new(key)` is `builder(key).build()`.
///
/// Building does no I/O: the connection is resolved, and the key rendered, at the first
/// operation.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redis_caches::{RedisCache, TtlPolicy};
///
/// let carts: RedisCache<Vec<u32>> = RedisCache::builder(["shop", "carts"])
///     .connection("sessions")
///     .prefix("v2")
///     .ttl(Duration::from_secs(3600))
///     .ttl_policy(TtlPolicy::Keep)
///     .build();
/// assert!(format!("{carts:?}").contains("shop.carts"));
/// ```
pub struct Builder<T: Collection> {
    key: Key,
    options: Options<T::Codec>,
    extra: T::Extra,
    _collection: PhantomData<fn() -> T>,
}

impl<T: Collection<Codec = Postcard>> Builder<T> {
    pub(crate) fn new(key: impl IntoKey) -> Self {
        Builder {
            key: key.into_key(),
            options: Options::default(),
            extra: T::Extra::default(),
            _collection: PhantomData,
        }
    }
}

impl<T: Collection> Builder<T> {
    /// Uses this connection: a registered name (`"sessions"`) or a [`Connection`] handle.
    /// The default is the connection named `"default"` (`CACHES_DSN`).
    pub fn connection(mut self, connection: impl Into<ConnectionRef>) -> Self {
        self.options.connection = connection.into();
        self
    }

    /// Puts `prefix` in front of the key, joined with `.` (`prefix.part.part`). Change it to
    /// orphan every value stored under the old prefix. Must be non-empty, without `{` `}`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.prefix = Some(prefix.into());
        self
    }

    /// Gives the key a time to live (millisecond precision), applied as the
    /// [`ttl_policy`](Builder::ttl_policy) says. No TTL by default.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(ttl);
        self
    }

    /// Whether writes refresh the TTL ([`TtlPolicy::Refresh`], the default) or keep the one
    /// set at creation ([`TtlPolicy::Keep`]).
    pub fn ttl_policy(mut self, policy: TtlPolicy) -> Self {
        self.options.ttl_policy = policy;
        self
    }

    /// The largest encoded value (or field, or member) accepted; larger ones are refused with
    /// [`Error::ValueTooLarge`] before anything is sent. Default: 512 MiB, Redis' limit.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.options.max_value_size = bytes;
        self
    }

    /// Encodes with `codec` instead of [`Postcard`].
    pub fn codec<C2: Codec>(self, codec: C2) -> Builder<T::WithCodec<C2>> {
        let Options {
            connection,
            prefix,
            ttl,
            ttl_policy,
            codec: _,
            max_value_size,
        } = self.options;
        Builder {
            key: self.key,
            options: Options {
                connection,
                prefix,
                ttl,
                ttl_policy,
                codec,
                max_value_size,
            },
            extra: self.extra,
            _collection: PhantomData,
        }
    }

    /// Builds the collection handle. No I/O.
    pub fn build(self) -> T {
        self.build_core(false)
    }

    /// Builds a collection over the hash of a region: every write through it also links the
    /// region to its tree's root (see [`Core::add_ttl`]).
    pub(crate) fn build_in_region_tree(self) -> T {
        self.build_core(true)
    }

    fn build_core(self, in_region_tree: bool) -> T {
        T::from_core(
            Core {
                key: self.key,
                options: self.options,
                redis_type: T::REDIS_TYPE,
                in_region_tree,
                resolved: OnceCell::new(),
            },
            self.extra,
        )
    }

    pub(crate) fn extra_mut(&mut self) -> &mut T::Extra {
        &mut self.extra
    }

    /// A builder from existing parts (a child collection that inherits its parent's options).
    pub(crate) fn from_parts(key: Key, options: Options<T::Codec>, extra: T::Extra) -> Self {
        Builder {
            key,
            options,
            extra,
            _collection: PhantomData,
        }
    }

    pub(crate) fn options_mut(&mut self) -> &mut Options<T::Codec> {
        &mut self.options
    }
}

impl<T: Collection> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("key", &self.key)
            .field("type", &T::REDIS_TYPE)
            .finish_non_exhaustive()
    }
}

/// What every collection handle holds: its key, options and, after the first operation, its
/// resolved connection and rendered key. Shared behind an `Arc`, so handles clone cheaply.
#[doc(hidden)]
pub struct Core<C> {
    pub(crate) key: Key,
    pub(crate) options: Options<C>,
    pub(crate) redis_type: &'static str,
    /// The key is a region's hash (the prefix is the tree's root): writes link it to the root.
    in_region_tree: bool,
    resolved: OnceCell<Resolved>,
}

pub(crate) struct Resolved {
    pub(crate) connection: Connection,
    pub(crate) key: String,
    /// For a region's hash: the `(link set, member)` pairs from the root down to it.
    links: Vec<(String, String)>,
}

impl<C: Codec> Core<C> {
    /// The connection and full key, resolved once.
    pub(crate) fn resolved(&self) -> Result<&Resolved> {
        self.resolved.get_or_try_init(|| {
            let connection = self.options.connection.resolve()?;
            let key = self
                .key
                .render(connection.prefix(), self.options.prefix.as_deref())?;
            let links = if self.in_region_tree {
                crate::region::links_to_root(
                    connection.prefix(),
                    self.options.prefix.as_deref(),
                    &self.key,
                )?
            } else {
                Vec::new()
            };
            Ok(Resolved {
                connection,
                key,
                links,
            })
        })
    }

    /// A short description for `Debug`: the key parts as the user gave them.
    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>, type_name: &str) -> fmt::Result {
        let shown = self
            .resolved
            .get()
            .map(|r| r.key.clone())
            .or_else(|| self.key.render("", self.options.prefix.as_deref()).ok())
            .unwrap_or_else(|| "<invalid key>".to_string());
        f.debug_struct(type_name)
            .field("key", &shown)
            .field("connection", &self.options.connection.name())
            .finish()
    }

    /// Encodes `value` as a value of the type `tag` describes, checking the size limit.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
        key: &str,
    ) -> Result<Vec<u8>> {
        let bytes = self
            .options
            .codec
            .encode(value, tag)
            .map_err(|e| Error::Encode {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
        if bytes.len() > self.options.max_value_size {
            return Err(Error::ValueTooLarge {
                key: key.to_string(),
                size: bytes.len(),
                limit: self.options.max_value_size,
            });
        }
        Ok(bytes)
    }

    /// Decodes bytes read from `what` (a key, or `key[field]`).
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.options
            .codec
            .decode(bytes, tag)
            .map_err(|e| Error::Decode {
                key: what(),
                reason: e.to_string(),
            })
    }

    /// Whether writes must refresh the TTL, and so go in MULTI/EXEC with it.
    pub(crate) fn has_ttl(&self) -> bool {
        self.options.ttl.is_some()
    }

    /// Adds the TTL command of the policy (if any) to `pipe`, its reply ignored. For a
    /// region's hash (a [`Region::dict`](crate::Region::dict) view) it also adds the `SADD`s
    /// that link the region to its root, which every write to a region carries.
    pub(crate) fn add_ttl(&self, pipe: &mut redis::Pipeline, key: &str) {
        if let Some(resolved) = self.resolved.get() {
            for (set, member) in &resolved.links {
                pipe.cmd("SADD").arg(set).arg(member).ignore();
            }
        }
        if let Some(ttl) = self.options.ttl {
            let ms = ttl.as_millis().max(1) as u64;
            let cmd = pipe.cmd("PEXPIRE").arg(key).arg(ms);
            if self.options.ttl_policy == TtlPolicy::Keep {
                cmd.arg("NX");
            }
            cmd.ignore();
        }
    }

    /// A pipeline for one write: atomic (MULTI/EXEC) when a TTL or a region's links ride
    /// along.
    pub(crate) fn write_pipe(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        if self.has_ttl() || self.in_region_tree {
            pipe.atomic();
        }
        pipe
    }

    /// Runs `f` with a pooled connection and the full key. A `WRONGTYPE` reply becomes
    /// [`Error::WrongType`] naming the type Redis holds (one more round trip, on that error
    /// path only); keys in several cluster slots become [`Error::CrossSlot`].
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut RedisConn, &str) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let resolved = self.resolved()?;
        let key = resolved.key.as_str();
        let mut conn = resolved.connection.get()?;
        match f(&mut conn, key) {
            Ok(v) => Ok(v),
            Err(e) if is_wrong_type(&e) => {
                let found = redis::cmd("TYPE")
                    .arg(key)
                    .query::<String>(&mut *conn)
                    .unwrap_or_else(|_| "value of another type".to_string());
                Err(Error::WrongType {
                    key: key.to_string(),
                    expected: self.redis_type,
                    found,
                })
            }
            Err(e) if crate::cluster::is_cross_slot(&e) => Err(Error::CrossSlot {
                key: key.to_string(),
                source: e,
            }),
            Err(e) => {
                resolved.connection.observe(&mut conn, &e);
                Err(Error::redis(key, e))
            }
        }
    }

    /// `EXISTS key`.
    pub(crate) fn exists(&self) -> Result<bool> {
        self.run(|c, k| redis::cmd("EXISTS").arg(k).query(c))
    }

    /// `DEL key`; true when something was deleted.
    pub(crate) fn clear(&self) -> Result<bool> {
        self.run(|c, k| redis::cmd("DEL").arg(k).query::<u32>(c))
            .map(|n| n > 0)
    }

    /// `PTTL key`, as a [`Ttl`].
    pub(crate) fn ttl(&self) -> Result<Ttl> {
        let ms: i64 = self.run(|c, k| redis::cmd("PTTL").arg(k).query(c))?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    /// `PEXPIRE key ms`; true when the key exists.
    pub(crate) fn expire(&self, ttl: Duration) -> Result<bool> {
        let ms = ttl.as_millis().max(1) as u64;
        self.run(|c, k| redis::cmd("PEXPIRE").arg(k).arg(ms).query(c))
    }
}

/// Whether Redis refused a command for the type the key holds: a plain `WRONGTYPE` reply, or
/// one inside a pipeline or `MULTI`/`EXEC` reply (which `RedisError::code` does not report).
fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, s)| s.code() == "WRONGTYPE"))
}

/// The time to live of a key, as `PTTL` reports it.
///
/// ```
/// use std::time::Duration;
/// use redis_caches::Ttl;
/// assert_eq!(Ttl::Expires(Duration::from_secs(1)).remaining(), Some(Duration::from_secs(1)));
/// assert_eq!(Ttl::Persistent.remaining(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

impl Ttl {
    /// The remaining time, when the key expires.
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            Ttl::Expires(d) => Some(*d),
            _ => None,
        }
    }
}
