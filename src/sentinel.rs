//! [`SentinelCache`]: a set-once gate, claimed by exactly one caller.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::codec::{Codec, Postcard};
use crate::error::Result;
use crate::key::IntoKey;
use crate::options::{Builder, Core};

/// A set-once gate under one Redis key: [`claim`](SentinelCache::claim) returns `true` for
/// exactly one caller, across every thread and process, until the gate is
/// [`reset`](SentinelCache::reset) or its TTL runs out.
///
/// The claim is one atomic command, `SET key 1 NX GET [PX ttl]`: Redis decides who wins, so
/// two processes can never both pass. (The Python `caches.SentinelCache` checks with `EXISTS`
/// and then sets with `INCRBY`, in two steps, so two processes can both see an open gate.)
///
/// The gate stores the Redis string `1`. A key holding another Redis type makes `claim` fail
/// with [`Error::WrongType`](crate::Error::WrongType) instead of reporting a claim that no
/// gate made. With a [TTL](Builder::ttl) the gate re-opens by itself that long after it was
/// claimed; the [TTL policy](Builder::ttl_policy) changes nothing, since a claim only ever
/// writes a missing key. The builder's [`codec`](Builder::codec) and
/// [`max_value_size`](Builder::max_value_size) are accepted for uniformity and ignored: the
/// gate stores no user value.
///
/// | Method | Redis commands | Round trips |
/// |---|---|---|
/// | [`claim`](SentinelCache::claim) | `SET key 1 NX GET [PX ttl]` | 1 |
/// | [`is_set`](SentinelCache::is_set), [`exists`](SentinelCache::exists) | `EXISTS` | 1 |
/// | [`reset`](SentinelCache::reset), [`clear`](SentinelCache::clear) | `DEL` | 1 |
/// | [`ttl`](SentinelCache::ttl), [`expire`](SentinelCache::expire) | `PTTL`, `PEXPIRE` | 1 |
///
/// Requires Redis 7.0 or later (`SET` with both `NX` and `GET`).
///
/// # Example: a nightly batch job that must run once per day
///
/// Every worker of the fleet runs the same code; the first one to claim today's gate does the
/// work, the others skip it. The TTL re-opens the gate if the day's key is ever reused.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::SentinelCache;
///
/// # fn send_invoices() {}
/// let today = "2024-05-01";
/// let gate = SentinelCache::builder(["jobs", "invoices", today])
///     .ttl(Duration::from_secs(36 * 3600))
///     .build();
/// if gate.claim()? {
///     send_invoices(); // exactly one worker gets here
/// } else {
///     println!("another worker already sent today's invoices");
/// }
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct SentinelCache<C = Postcard> {
    core: Arc<Core<C>>,
    _codec: PhantomData<fn() -> C>,
}

crate::options::collection_handle! {
    SentinelCache[],
    redis_type: "string",
    extra: (),
    clone: { core, _codec },
    from_core: |core, ()| SentinelCache {
        core: Arc::new(core),
        _codec: PhantomData,
    },
}

impl SentinelCache {
    /// A gate at `key`, on the default connection, without a TTL (once claimed, it stays
    /// claimed until [`reset`](SentinelCache::reset)). No I/O.
    ///
    /// ```
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// # let _ = gate;
    /// ```
    pub fn new(key: impl IntoKey) -> Self {
        Self::builder(key).build()
    }

    /// A [`Builder`] for the gate at `key`, to set the connection, prefix or TTL. No I/O.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Re-opens an hour after each claim.
    /// let gate = redis_caches::SentinelCache::builder(["jobs", "hourly-report"])
    ///     .ttl(Duration::from_secs(3600))
    ///     .build();
    /// # let _ = gate;
    /// ```
    pub fn builder(key: impl IntoKey) -> Builder<Self> {
        Builder::new(key)
    }
}

impl<C: Codec> SentinelCache<C> {
    /// Claims the gate: `true` for the one caller that found it open (and closed it), `false`
    /// for everyone else until it is reset or its TTL runs out. `SET key 1 NX GET [PX ttl]`,
    /// one command, one round trip.
    ///
    /// If any number of threads or processes call this at once on an open gate, exactly one
    /// of them gets `true`: Redis runs the `SET NX` atomically.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`](crate::Error::WrongType) when the key holds another Redis type
    /// (nothing is written); connection errors. After a connection error the claim may or may
    /// not have been made: [`is_set`](SentinelCache::is_set) tells whether the gate is closed,
    /// not who closed it.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// if gate.claim()? {
    ///     // run the migration, once
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn claim(&self) -> Result<bool> {
        let ttl = self.core.options.ttl;
        // With GET, SET NX replies nil exactly when it wrote the key, the old string when the
        // key was already set, and WRONGTYPE when it holds another type.
        let previous: Option<Vec<u8>> = self.core.run(|c, k| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(k).arg(1).arg("NX").arg("GET");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(crate::options::ttl_millis(ttl));
            }
            cmd.query(c)
        })?;
        Ok(previous.is_none())
    }

    /// Whether the gate is closed (claimed, and neither reset nor expired). `EXISTS`, one
    /// round trip.
    ///
    /// This is a snapshot: the gate can be claimed, reset or expire right after it is taken.
    /// To act only once, use [`claim`](SentinelCache::claim), never `is_set` followed by a
    /// write. A key holding another Redis type counts as set.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// println!("migration done: {}", gate.is_set()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        self.core.exists()
    }

    /// Re-opens the gate, so that the next [`claim`](SentinelCache::claim) succeeds; `true`
    /// when it was closed. `DEL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// gate.reset()?; // run the migration again
    /// assert!(gate.claim()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn reset(&self) -> Result<bool> {
        self.core.clear()
    }

    crate::options::key_methods! {
        handle: "redis_caches::SentinelCache::new(\"g\")",
        exists: "Whether the key exists; the same as [`is_set`](SentinelCache::is_set), named \
                 like every other collection's `exists`.",
        clear: "Deletes the key; the same as [`reset`](SentinelCache::reset), named like every \
                other collection's `clear`.",
        ttl: "How long until the gate re-opens by itself: [`Ttl::Missing`](crate::Ttl::Missing) \
              when it is open, [`Ttl::Persistent`](crate::Ttl::Persistent) when it was claimed \
              without a TTL.",
        expire: "Makes a closed gate re-open `ttl` from now; `false` when the gate is open \
                 (there is nothing to expire).",
    }
}
