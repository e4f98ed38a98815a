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
    ///
    /// Where the write and its `PEXPIRE` share a `MULTI`/`EXEC`, the `PEXPIRE` runs inside a
    /// small `EVAL` that first checks the key holds the collection's Redis type: `MULTI`/`EXEC`
    /// does not stop after a command Redis refuses, and a bare `PEXPIRE` would otherwise give a
    /// key of another type (someone else's data) this collection's TTL.
    #[default]
    Refresh,
    /// The TTL is set when the key is created and left alone afterwards (`PEXPIRE key ttl
    /// NX`, Redis 7.0 or later): the key lives until `ttl` after its first write.
    Keep,
}

/// A duration in whole milliseconds for `PX`/`PEXPIRE`: at least 1 (Redis refuses 0), and
/// saturating at `u64::MAX` instead of wrapping (Redis then refuses it with an error naming the
/// key). Every TTL the crate sends goes through here.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
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

    /// The full key, for error messages; empty when it cannot be rendered (the error that
    /// stopped rendering it is reported by the operation that needed it).
    pub(crate) fn key_for_errors(&self) -> String {
        self.resolved().map(|r| r.key.clone()).unwrap_or_default()
    }

    /// Encodes `value` (a value, member, field...) of the collection at this key: as
    /// [`encode`](Core::encode), naming this key in errors.
    pub(crate) fn encode_item<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
    ) -> Result<Vec<u8>> {
        let key = &self.resolved()?.key;
        self.encode(tag, value, key)
    }

    /// Decodes bytes read from this key: as [`decode`](Core::decode), naming this key in
    /// errors.
    pub(crate) fn decode_item<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
    ) -> Result<T> {
        self.decode(tag, bytes, || self.key_for_errors())
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
            // Not a bare PEXPIRE: in MULTI/EXEC a write refused with WRONGTYPE does not stop
            // the commands after it, and the TTL would land on a key of another type (someone
            // else's data, which Redis would then delete). The script expires the key only
            // when it holds this collection's type. EVAL, not EVALSHA: a NOSCRIPT inside
            // EXEC could not be retried without running the write twice.
            let ms = ttl_millis(ttl);
            let cmd = pipe
                .cmd("EVAL")
                .arg(GUARDED_PEXPIRE)
                .arg(1)
                .arg(key)
                .arg(self.redis_type)
                .arg(ms);
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

    /// Runs one write command, which `add` puts on a pipeline, with the TTL command of the
    /// policy (if any) in the same `MULTI`/`EXEC`: one round trip. Returns the reply of the one
    /// command `add` did not `ignore()`; without a TTL, Redis sees that command alone.
    pub(crate) fn write<R: redis::FromRedisValue>(
        &self,
        add: impl FnOnce(&mut redis::Pipeline, &str),
    ) -> Result<R> {
        self.run(|c, k| {
            let mut pipe = self.write_pipe();
            add(&mut pipe, k);
            self.add_ttl(&mut pipe, k);
            match pipe.cmd_iter().next() {
                // One command and no TTL: sent alone, without the pipeline's packing and
                // reply bookkeeping (about 2,000 client instructions a call, by callgrind).
                Some(cmd) if pipe.len() == 1 => cmd.query(c),
                _ => pipe.query::<(R,)>(c).map(|(r,)| r),
            }
        })
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
        let ms = ttl_millis(ttl);
        self.run(|c, k| redis::cmd("PEXPIRE").arg(k).arg(ms).query(c))
    }
}

/// Writes what every collection handle has besides its own methods: `Clone` (cheap, and
/// without bounds on the type parameters: the fields are `Arc`s and markers), `Debug` (key
/// and connection only, through [`Core::describe`], never a value), and the sealed
/// [`Collection`] impl through which [`Builder::build`] makes the handle.
///
/// The handle is `Name<params.., C>` with the codec parameter last, named `C`, and a `core:
/// Arc<Core<C>>` field. `clone` lists every field; `from_core` builds the handle from the
/// [`Core`] and the builder's `Extra` options.
macro_rules! collection_handle {
    (
        $name:ident [$($param:ident),*],
        redis_type: $redis_type:literal,
        extra: $extra:ty,
        clone: { $($field:ident),+ $(,)? },
        from_core: |$core:ident, $extra_arg:pat_param| $from_core:expr $(,)?
    ) => {
        impl<$($param,)* C> Clone for $name<$($param,)* C> {
            fn clone(&self) -> Self {
                $name {
                    $($field: self.$field.clone()),+
                }
            }
        }

        impl<$($param,)* C: $crate::codec::Codec> ::std::fmt::Debug for $name<$($param,)* C> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.core.describe(f, stringify!($name))
            }
        }

        impl<$($param,)* C> $crate::options::private::Sealed for $name<$($param,)* C> {}

        impl<$($param,)* C: $crate::codec::Codec> $crate::options::Collection
            for $name<$($param,)* C>
        {
            type Codec = C;
            type Extra = $extra;
            type WithCodec<C2: $crate::codec::Codec> = $name<$($param,)* C2>;
            const REDIS_TYPE: &'static str = $redis_type;

            fn from_core($core: $crate::options::Core<C>, $extra_arg: $extra) -> Self {
                $from_core
            }
        }
    };
}
pub(crate) use collection_handle;

/// Writes the four methods every collection has for its key as a whole (`exists`, `clear`,
/// `ttl`, `expire`), with their docs, inside the collection's own `impl` block: inherent
/// methods, so that users need no trait import. The handle must have a `core: Arc<Core<_>>`
/// field.
///
/// `handle` is an expression that builds a handle for the doc examples; the other arguments
/// are the first sentence of each method's doc, which says what the key means for that
/// collection. The macro adds the commands, round trips, errors and an example.
macro_rules! key_methods {
    (
        handle: $handle:literal,
        exists: $exists:literal,
        clear: $clear:literal,
        ttl: $ttl:literal,
        expire: $expire:literal $(,)?
    ) => {
        #[doc = $exists]
        /// `EXISTS`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// if !c.exists()? {
        ///     println!("never written, cleared or expired");
        /// }
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn exists(&self) -> $crate::Result<bool> {
            self.core.exists()
        }

        #[doc = $clear]
        /// `DEL`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// let existed = c.clear()?;
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn clear(&self) -> $crate::Result<bool> {
            self.core.clear()
        }

        #[doc = $ttl]
        /// `PTTL`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// if let Some(left) = c.ttl()?.remaining() {
        ///     println!("expires in {left:?}");
        /// }
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn ttl(&self) -> $crate::Result<$crate::Ttl> {
            self.core.ttl()
        }

        #[doc = $expire]
        /// `PEXPIRE`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// c.expire(std::time::Duration::from_secs(10))?;
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn expire(&self, ttl: ::std::time::Duration) -> $crate::Result<bool> {
            self.core.expire(ttl)
        }
    };
}
pub(crate) use key_methods;

/// Whether Redis refused a command for the type the key holds: a plain `WRONGTYPE` reply, or
/// one inside a pipeline or `MULTI`/`EXEC` reply (which `RedisError::code` does not report).
fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, s)| s.code() == "WRONGTYPE"))
}

/// `PEXPIRE KEYS[1] ARGV[2] [ARGV[3]]` when the key holds the Redis type `ARGV[1]`.
const GUARDED_PEXPIRE: &str = "if redis.call('TYPE', KEYS[1])['ok'] == ARGV[1] then \
return redis.call('PEXPIRE', KEYS[1], ARGV[2], unpack(ARGV, 3)) end return 0";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_millis_rounds_up_to_one_and_saturates() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_millis(Duration::MAX), u64::MAX);
    }
}
