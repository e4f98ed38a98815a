//! Options shared by every collection, and the builder that sets them.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{Codec, Postcard};
use crate::connection::ConnectionRef;
use crate::engine::{Engine, PlacementFn};
use crate::error::{Error, Result};
use crate::key::{IntoKey, Key};
use crate::layout::Layout;

/// What a read does with a stored value of another shape: written for another type (another
/// [fingerprint](crate::codec#fingerprints)), under another
/// [schema version](Builder::schema_version), or by stored-data format v1 (redis-caches 0.1).
///
/// A plain collection's data is never silently lost, so the default is an error; a
/// collection used as a cache (its values can be computed again) can read such a value as
/// missing instead, so that a redeploy with a changed type refills it. `Memo` results and
/// values a region computes (`get_or_insert_with`) are always read that way.
///
/// ```
/// use redis_caches::{OtherShape, RedisCache};
/// assert_eq!(OtherShape::default(), OtherShape::Error);
/// let prices: RedisCache<u64> = RedisCache::builder("price").other_shape(OtherShape::Miss).build();
/// # let _ = prices;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OtherShape {
    /// [`Error::Decode`] naming the key, the expected and the found fingerprint.
    #[default]
    Error,
    /// Read as missing: `get` returns `None` (or the default value), an entry is left out of
    /// iteration and snapshots, an old value returned by a write is `None`, and
    /// `get_or_insert_with` computes a new value and writes it over the old one. Only reads
    /// of values change: hash fields and set members are never read as missing, and bytes
    /// that are no value at all (truncated, a damaged header or body, another codec's bytes)
    /// are still [`Error::Decode`]. (A damaged fingerprint cannot be told from another
    /// shape's: it reads as missing too.)
    Miss,
}

/// What happens to a collection's TTL when it is written to.
///
/// ```
/// use redis_caches::TtlPolicy;
/// assert_eq!(TtlPolicy::default(), TtlPolicy::Refresh);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TtlPolicy {
    /// Every write sets the TTL again (`PEXPIRE key ttl` in the same script as the write,
    /// one round trip): the key lives until `ttl` after its last write.
    ///
    /// The script checks first that the key holds the collection's Redis type, so a write
    /// over a key of another type (someone else's data) changes nothing, its TTL included.
    #[default]
    Refresh,
    /// The TTL is set when the key is created (or found without one) and left alone
    /// afterwards: the key lives until `ttl` after its first write. (Redis 7.0's `PEXPIRE
    /// NX`, done inside the write's script so that Redis 6.2 gets it too.)
    Keep,
}

/// The shortest TTL accepted: Redis counts in milliseconds.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// The longest TTL accepted: 100 years. Redis itself refuses a TTL whose expiry time does not
/// fit in 64 bits of milliseconds, and would then have applied the write without it; a bound
/// checked before sending keeps every write whole.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Whether `ttl` is within [`MIN_TTL`]..=[`MAX_TTL`]; the problem otherwise.
pub(crate) fn check_ttl(ttl: Duration) -> std::result::Result<(), String> {
    if ttl < MIN_TTL {
        Err(format!("the TTL {ttl:?} is shorter than 1 ms"))
    } else if ttl > MAX_TTL {
        Err(format!("the TTL {ttl:?} is longer than 100 years"))
    } else {
        Ok(())
    }
}

/// A TTL in whole milliseconds for `PX`/`PEXPIRE`, for a TTL [`check_ttl`] accepted (so at
/// least 1, and far from overflowing). Every TTL the crate sends goes through here.
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
    /// The handle's own near cache; `None` uses the connection's (DSN `near_cache`), if any.
    pub(crate) near: Option<crate::NearCache>,
    /// How the key is named and fields, members and scores are encoded.
    pub(crate) layout: Layout,
    /// Put into the fingerprint of every value (and encoded field or member) the handle
    /// writes and reads ([`TypeTag::with_schema_version`](crate::codec::TypeTag::with_schema_version)).
    pub(crate) schema_version: Option<u32>,
    /// What reads do with values of another shape.
    pub(crate) other_shape: OtherShape,
}

impl<C> Options<C> {
    /// Checks the options before anything is sent: an out-of-range value is
    /// [`Error::Config`] naming the key, at every operation of the handle.
    pub(crate) fn check(&self, key: &Key) -> Result<()> {
        let origin = || {
            self.render_key(key, "")
                .unwrap_or_else(|_| "a collection".to_string())
        };
        if let Some(ttl) = self.ttl {
            check_ttl(ttl).map_err(|problem| Error::config(origin(), problem))?;
        }
        Ok(())
    }

    /// The full Redis key of `key`, as the layout names it.
    pub(crate) fn render_key(&self, key: &Key, connection_prefix: &str) -> Result<String> {
        self.layout
            .render_key(key, connection_prefix, self.prefix.as_deref())
    }
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
            near: None,
            layout: Layout::Native,
            schema_version: None,
            other_shape: OtherShape::Error,
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
    #[allow(private_interfaces)]
    fn from_engine(engine: Engine<Self::Codec>, extra: Self::Extra) -> Self;
    /// The Python `caches` class this collection stands for (`Cache`, `DictCache`, ...),
    /// the default prefix of [`Layout::PythonCaches`]; empty when there is none.
    #[doc(hidden)]
    fn python_class() -> &'static str {
        ""
    }
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
    placement: Option<Arc<PlacementFn>>,
    _collection: PhantomData<fn() -> T>,
}

impl<T: Collection<Codec = Postcard>> Builder<T> {
    pub(crate) fn new(key: impl IntoKey) -> Self {
        Builder {
            key: key.into_key(),
            options: Options::default(),
            extra: T::Extra::default(),
            placement: None,
            _collection: PhantomData,
        }
    }
}

impl<T: Collection> Builder<T> {
    /// Uses this connection: a registered name (`"sessions"`) or a [`Connection`](crate::Connection) handle.
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
    /// [`ttl_policy`](Builder::ttl_policy) says. No TTL by default. Between [`MIN_TTL`] and
    /// [`MAX_TTL`]: a handle built with another TTL returns [`Error::Config`] from every
    /// operation, before anything is sent ([`try_build`](Builder::try_build) reports it at
    /// once).
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

    /// Serves this handle's point reads from `near`, a process-local cache that Redis keeps
    /// correct (see [`NearCache`](crate::NearCache) for what is cached and the exact
    /// guarantee). Overrides the connection's `near_cache` DSN option. Off by default.
    ///
    /// ```
    /// use redis_caches::{DictCache, NearCache};
    /// let near = NearCache::with_capacity(10_000);
    /// let d: DictCache<String, u32> = DictCache::builder("ages").near_cache(near).build();
    /// # let _ = d;
    /// ```
    pub fn near_cache(mut self, near: crate::NearCache) -> Self {
        self.options.near = Some(near);
        self
    }

    /// Names the key and encodes fields, members and scores as a Python library does, to
    /// share its data: see [`Layout`] for what each layout changes. Values keep the codec.
    /// The default is [`Layout::Native`].
    ///
    /// A layout that brings a prefix (the `caches` class name, region-cache's `root`) uses
    /// it when [`prefix`](Builder::prefix) is not given.
    ///
    /// ```
    /// use redis_caches::{Layout, SetCache, codec::PythonText};
    ///
    /// // Python: caches.SetCache(["tags", "red"], serialize=False)
    /// let tags: SetCache<String, PythonText> = SetCache::builder(["tags", "red"])
    ///     .layout(Layout::PythonCaches)
    ///     .codec(PythonText)
    ///     .build();
    /// assert!(format!("{tags:?}").contains("\"SetCache.tags.red\""));
    /// ```
    pub fn layout(mut self, layout: Layout) -> Self {
        self.options.layout = layout;
        self
    }

    /// Puts `version` into the fingerprint of every value the handle stores (and of fields
    /// and members stored in the codec's encoding; plain-text fields and members of strings
    /// and integers carry no fingerprint): bump it when a type keeps its shape but changes its
    /// meaning (a `price: u64` goes from cents to millicents). Values written under another
    /// version then read as [`CodecErrorKind::OtherShape`](crate::codec::CodecErrorKind::OtherShape):
    /// [`Error::Decode`] naming the key and both fingerprints. Version 0 is the same as no
    /// version for a type whose shape can be traced; for one whose shape cannot, any explicit
    /// version lets [`Postcard`] store it (see [`TypeTag::with_schema_version`](crate::codec::TypeTag::with_schema_version)).
    ///
    /// ```
    /// use redis_caches::RedisCache;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Price { amount: u64 } // in millicents since version 2, in cents before
    ///
    /// let prices: RedisCache<Price> = RedisCache::builder("price").schema_version(2).build();
    /// # let _ = prices;
    /// ```
    pub fn schema_version(mut self, version: u32) -> Self {
        self.options.schema_version = Some(version);
        self
    }

    /// What reads do with a stored value of another shape (another type's fingerprint,
    /// another schema version, format v1): [`OtherShape::Error`] (the default) or, for a
    /// collection whose values can be computed again, [`OtherShape::Miss`]. For
    /// [`RedisCache`](crate::RedisCache), [`DictCache`](crate::DictCache) and
    /// [`Region`](crate::Region) values; sets and sorted sets store no values.
    ///
    /// ```
    /// use redis_caches::{DictCache, OtherShape};
    /// let sessions: DictCache<String, Vec<u8>> =
    ///     DictCache::builder("sessions").other_shape(OtherShape::Miss).build();
    /// # let _ = sessions;
    /// ```
    pub fn other_shape(mut self, policy: OtherShape) -> Self {
        self.options.other_shape = policy;
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
            near,
            layout,
            schema_version,
            other_shape,
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
                near,
                layout,
                schema_version,
                other_shape,
            },
            extra: self.extra,
            placement: self.placement,
            _collection: PhantomData,
        }
    }

    /// Builds the collection handle. No I/O.
    ///
    /// Invalid options (a TTL out of range) do not stop the build: every operation of the
    /// handle then returns the [`Error::Config`], before anything is sent.
    pub fn build(mut self) -> T {
        if self.options.prefix.as_deref().is_none_or(str::is_empty)
            && let Some(p) = self.options.layout.default_prefix(T::python_class())
        {
            self.options.prefix = Some(p.to_string());
        }
        T::from_engine(
            Engine::new(self.key, self.options, T::REDIS_TYPE, self.placement),
            self.extra,
        )
    }

    /// Builds the collection handle after checking its options. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key for an option out of range.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redis_caches::SetCache;
    ///
    /// let bad = SetCache::<u8>::builder("s").ttl(Duration::MAX).try_build();
    /// assert!(bad.unwrap_err().is_config());
    /// ```
    pub fn try_build(self) -> Result<T> {
        self.options.check(&self.key)?;
        Ok(self.build())
    }

    /// Places the handle's data with `placement` (a region's hash, found at run time by its
    /// scripts) instead of at its key rendered.
    pub(crate) fn with_placement(mut self, placement: Arc<PlacementFn>) -> Self {
        self.placement = Some(placement);
        self
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
            placement: None,
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

/// What a cache does when Redis is unreachable, does not answer in time, or refuses to write
/// (out of memory, too few replicas): [`Region`](crate::Region)s and
/// [`Memo`](crate::Memo)s take one.
///
/// Only the operations on the cache path degrade: reads and writes of entries, memoized
/// calls. Operations whose failure must be seen always return their error: invalidating a
/// region (silently skipping it would leave stale data), clearing, counting, iterating.
///
/// ```
/// use redis_caches::OutagePolicy;
/// assert_eq!(OutagePolicy::default(), OutagePolicy::Fail);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Return the error ([`Error::is_connection`] or [`Error::is_write_refused`] is true on
    /// it). The default: an outage is visible, and the backend behind the cache is not
    /// suddenly hit by every call.
    #[default]
    Fail,
    /// Behave as an empty cache that drops writes: reads miss (a region answers `None`, a
    /// memoized function computes its result and returns it unstored), writes are skipped
    /// and return as if they had succeeded on nothing. Each is counted. Errors that are not
    /// outages (a decode error, a wrong type) are still returned.
    Miss,
}

impl OutagePolicy {
    /// Whether `e` is an outage this policy turns into a miss.
    pub(crate) fn degrades(self, e: &Error) -> bool {
        self == OutagePolicy::Miss && (e.is_connection() || e.is_write_refused())
    }
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

    #[test]
    fn ttls_out_of_range_are_refused() {
        assert!(check_ttl(Duration::ZERO).is_err());
        assert!(check_ttl(Duration::from_micros(999)).is_err());
        assert!(check_ttl(MIN_TTL).is_ok());
        assert!(check_ttl(MAX_TTL).is_ok());
        assert!(check_ttl(MAX_TTL + Duration::from_millis(1)).is_err());
        assert!(check_ttl(Duration::MAX).is_err());
        let options = Options {
            ttl: Some(Duration::MAX),
            ..Options::default()
        };
        let e = options.check(&Key::from_parts(["k"])).unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains('k'), "{e}");
        assert!(Options::default().check(&Key::from_parts(["k"])).is_ok());
    }
}
