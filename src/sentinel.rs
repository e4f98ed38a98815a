//! [`SentinelCache`]: a set-once gate, claimed by exactly one caller.

use std::marker::PhantomData;
use std::sync::Arc;

use once_cell::sync::Lazy;

use crate::codec::{Codec, Postcard};
use crate::connection::Retry;
use crate::engine::{Engine, Script};
use crate::error::Result;
use crate::key::IntoKey;
use crate::options::{Builder, ttl_millis};

/// A set-once gate under one Redis key: [`claim`](SentinelCache::claim) returns `true` for
/// exactly one caller, across every thread and process, until the gate is
/// [cleared](SentinelCache::clear) or its TTL runs out.
///
/// The claim is one atomic command, `SET key 1 NX GET [PX ttl]`: Redis decides who wins, so
/// two processes can never both pass.
///
/// The gate stores the Redis string `1`. A key holding another Redis type makes `claim` fail
/// with [`Error::WrongType`](crate::Error::WrongType) instead of reporting a claim that no
/// gate made. With a [TTL](Builder::ttl) the gate re-opens by itself that long after it was
/// claimed; the [TTL policy](Builder::ttl_policy) changes nothing, since a claim only ever
/// writes a missing key. The builder's [`codec`](Builder::codec) and
/// [`max_value_size`](Builder::max_value_size) are accepted for uniformity and ignored: the
/// gate stores no user value.
///
/// | Method | Redis commands | Round trips | Lost reply |
/// |---|---|---|---|
/// | [`claim`](SentinelCache::claim) | `SET key 1 NX GET [PX ttl]` (Redis 6.2, which has no `SET NX GET`: a script, `SET key 1 NX [PX ttl]` and `TYPE` when the key was set) | 1 | `OutcomeUnknown` |
/// | [`exists`](SentinelCache::exists) | `EXISTS` | 1 | resent |
/// | [`clear`](SentinelCache::clear) | `DEL` | 1 | resent |
/// | [`ttl`](SentinelCache::ttl), [`expire`](SentinelCache::expire) | `PTTL`, `PEXPIRE` | 1 | resent |
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
    engine: Arc<Engine<C>>,
    _codec: PhantomData<fn() -> C>,
}

crate::handle::collection_handle! {
    SentinelCache[],
    redis_type: "string",
    extra: (),
    clone: { engine, _codec },
    from_engine: |engine, ()| SentinelCache {
        engine: Arc::new(engine),
        _codec: PhantomData,
    },
}

impl SentinelCache {
    /// A gate at `key`, on the default connection, without a TTL (once claimed, it stays
    /// claimed until [`clear`](SentinelCache::clear)). No I/O.
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

/// `SET NX GET` for Redis 6.2: nil when the key was set, else the stored string, or
/// `WRONGTYPE` when the key holds another type. `KEYS[1]`; `ARGV[1]`: TTL in ms or empty.
static CLAIM: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local ok
if ARGV[1] ~= '' then
  ok = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
else
  ok = redis.call('SET', KEYS[1], '1', 'NX')
end
if ok then return false end
local e = _wrongtype(KEYS[1], 'string')
if e then return e end
return redis.call('GET', KEYS[1])
",
    )
});

impl<C: Codec> SentinelCache<C> {
    /// Claims the gate: `true` for the one caller that found it open (and closed it), `false`
    /// for everyone else until it is cleared or its TTL runs out. `SET key 1 NX GET [PX ttl]`,
    /// one command, one round trip (Redis 6.2: the same in a script, `EVAL`).
    ///
    /// If any number of threads or processes call this at once on an open gate, exactly one
    /// of them gets `true`: Redis runs the `SET NX` atomically.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`](crate::Error::WrongType) when the key holds another Redis type
    /// (nothing is written); connection errors.
    /// [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) when the reply was lost: the
    /// claim may or may not have been made, and the crate does not send it again.
    /// [`exists`](SentinelCache::exists) tells whether the gate is closed, not who closed it.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// if gate.claim()? {
    ///     // run the migration, once
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn claim(&self) -> Result<bool> {
        let key = &self.engine.resolved()?.key;
        let ttl = self.engine.options.ttl.map(ttl_millis);
        // With GET, SET NX replies nil exactly when it wrote the key, the old string when the
        // key was already set, and WRONGTYPE when it holds another type. Redis 6.2 has no
        // SET NX GET: the script answers the same (nil when it wrote the key), sent as EVAL
        // since a one-command path has no NOSCRIPT retry.
        let reply: redis::Value = self.engine.query_for(
            |server| {
                if server.redis_compatible() >= (7, 0, 0) {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(key).arg(1).arg("NX").arg("GET");
                    if let Some(ms) = ttl {
                        cmd.arg("PX").arg(ms);
                    }
                    cmd
                } else {
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(CLAIM.text()).arg(1).arg(key);
                    cmd.arg(ttl.map(|ms| ms.to_string()).unwrap_or_default());
                    cmd
                }
            },
            Retry::Once,
        )?;
        Ok(reply == redis::Value::Nil)
    }

    /// Whether the gate is closed (claimed, and neither cleared nor expired).
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// # #[allow(deprecated)]
    /// println!("migration done: {}", gate.is_set()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    #[deprecated(
        since = "0.2.0",
        note = "use `exists`, the name every collection shares"
    )]
    pub fn is_set(&self) -> Result<bool> {
        self.engine.exists()
    }

    /// Re-opens the gate; `true` when it was closed.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let gate = redis_caches::SentinelCache::new(["jobs", "migrate-v2"]);
    /// # #[allow(deprecated)]
    /// gate.reset()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    #[deprecated(
        since = "0.2.0",
        note = "use `clear`, the name every collection shares"
    )]
    pub fn reset(&self) -> Result<bool> {
        self.engine.clear()
    }

    crate::handle::key_methods! {
        handle: "redis_caches::SentinelCache::new(\"g\")",
        exists: "Whether the gate is closed (claimed, and neither cleared nor expired). A \
                 snapshot: the gate can be claimed, cleared or expire right after it is taken. \
                 To act only once, use [`claim`](SentinelCache::claim), never `exists` followed \
                 by a write. A key holding another Redis type counts as closed.",
        clear: "Re-opens the gate, so that the next [`claim`](SentinelCache::claim) succeeds; \
                `true` when it was closed.",
        ttl: "How long until the gate re-opens by itself: [`Ttl::Missing`](crate::Ttl::Missing) \
              when it is open, [`Ttl::Persistent`](crate::Ttl::Persistent) when it was claimed \
              without a TTL.",
        expire: "Makes a closed gate re-open `ttl` from now; `false` when the gate is open \
                 (there is nothing to expire).",
    }
}
