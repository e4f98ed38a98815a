//! [`Transaction`]: the buffered writes of one [`Region::transaction`].

use std::collections::HashMap;
use std::fmt;

use once_cell::sync::Lazy;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Region;
use crate::codec::{Codec, Postcard};
use crate::connection::Retry;
use crate::dict::ops::{self, hash_script};
use crate::engine::Script;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// Applies a transaction: `DEL` the hash when it was cleared, `HDEL` the deleted fields,
/// `HSET` the written ones (creating the region's generation first when it has none), with
/// the TTL. `ARGV` after the placement: `1` when cleared, the number of deleted fields `D`,
/// the `D` fields, then field/value pairs.
///
/// No command names the hash after one that may have deleted it (on Redis Cluster, while the
/// slot migrates, that command would fail the script after the deletion): a cleared hash
/// that gets new pairs loses its other fields by `HDEL` after the first pair is written (so
/// it is never empty), the TTL is set before deletions that may empty it, and a `DEL` comes
/// last.
static COMMIT: Lazy<Script> = Lazy::new(|| {
    Script::new(hash_script!(
        "{'DEL'}, {'HDEL', 'f'}, {'HSET', 'f', 'v'}, {'HKEYS'}",
        r"
local cleared, deleted = ARGV[at] == '1', tonumber(ARGV[at + 1])
local first_pair = at + 2 + deleted
local function remove(fields)
  for i = 1, #fields, 1000 do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + 999, #fields)))
  end
end
if first_pair > #ARGV then
  -- Only deletions: the TTL first, then what may delete the hash.
  _expire(key, ARGV[2], ARGV[3])
  if cleared then
    redis.call('DEL', key)
  elseif deleted > 0 then
    remove({unpack(ARGV, at + 2, first_pair - 1)})
  end
  return true
end
link()
-- The first write may use memory, so that a server out of memory refuses the commit
-- here, whole: once a script has written (a deletion is allowed out of memory), Redis
-- lets the rest of it run.
redis.call('HSET', key, ARGV[first_pair], ARGV[first_pair + 1])
if cleared then
  local keep = {}
  for i = first_pair, #ARGV, 2 do keep[ARGV[i]] = true end
  local gone = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if not keep[f] then gone[#gone + 1] = f end
  end
  remove(gone)
elseif deleted > 0 then
  remove({unpack(ARGV, at + 2, first_pair - 1)})
end
for i = first_pair, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
_expire(key, ARGV[2], ARGV[3])
return true
"
    ))
});

/// The writes of one [`Region::transaction`], buffered until it commits. Reads see them.
///
/// ```no_run
/// let r = redis_caches::Region::new("r");
/// r.transaction(|tx| {
///     tx.clear();
///     tx.set("only", &1u8)?;
///     Ok::<_, redis_caches::Error>(())
/// })?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Transaction<'r, C = Postcard> {
    region: &'r Region<C>,
    cleared: bool,
    /// Field -> new value, or `None` for a deletion.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<C: Codec> fmt::Debug for Transaction<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("region", &self.region)
            .field("pending", &self.pending.len())
            .field("cleared", &self.cleared)
            .finish()
    }
}

impl<'r, C: Codec> Transaction<'r, C> {
    /// Reads `key`: its pending write if any, else the live value (as [`Region::get`], one
    /// round trip).
    ///
    /// # Errors
    ///
    /// As [`Region::get`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     tx.set("a", &1u8)?;
    ///     assert_eq!(tx.get::<u8>("a")?, Some(1));
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>> {
        let field = self.region.field(key)?;
        match self.pending.get(&field) {
            Some(Some(b)) => {
                self.region
                    .decode_value_or_miss(&crate::codec::TypeTag::of::<V>(), b, key)
            }
            Some(None) => Ok(None),
            None if self.cleared => Ok(None),
            None => self.region.get(key),
        }
    }

    /// Whether `key` holds a value, pending writes included (as [`Region::contains_key`] when
    /// it has none).
    ///
    /// # Errors
    ///
    /// As [`Region::contains_key`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     tx.delete("a")?;
    ///     assert!(!tx.contains_key("a")?);
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        let field = self.region.field(key)?;
        match self.pending.get(&field) {
            Some(v) => Ok(v.is_some()),
            None if self.cleared => Ok(false),
            None => self.region.contains_key(key),
        }
    }

    /// Buffers a write of `value` at `key` (like [`Region::set`], without reading the value
    /// it replaces). No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| tx.set("a", "x"))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<V>(&mut self, key: &str, value: &V) -> Result<()>
    where
        V: Serialize + ToOwned + ?Sized,
        V::Owned: DeserializeOwned,
    {
        let field = self.region.field(key)?;
        let bytes = self.region.encode_value(value)?;
        self.pending.insert(field, Some(bytes));
        Ok(())
    }

    /// Buffers the deletion of `key`, returning its current value (pending, else live: one
    /// round trip).
    ///
    /// # Errors
    ///
    /// As [`Transaction::get`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     let old: Option<u8> = tx.remove("a")?;
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<V: DeserializeOwned>(&mut self, key: &str) -> Result<Option<V>> {
        let old = self.get(key)?;
        let field = self.region.field(key)?;
        self.pending.insert(field, None);
        Ok(old)
    }

    /// Buffers the deletion of `key`. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] or connection configuration errors from resolving the region.
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| tx.delete("a"))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn delete(&mut self, key: &str) -> Result<()> {
        let field = self.region.field(key)?;
        self.pending.insert(field, None);
        Ok(())
    }

    /// Buffers the deletion of every entry of the region (`DEL` at commit, before the writes
    /// that follow it). No I/O.
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| { tx.clear(); Ok::<_, redis_caches::Error>(()) })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn clear(&mut self) {
        self.cleared = true;
        self.pending.clear();
    }

    pub(super) fn new(region: &'r Region<C>) -> Self {
        Transaction {
            region,
            cleared: false,
            pending: HashMap::new(),
        }
    }

    pub(super) fn commit(self) -> Result<()> {
        if self.pending.is_empty() && !self.cleared {
            return Ok(());
        }
        let writes = self.pending.len() as u64 + u64::from(self.cleared);
        let (set, del): (Vec<_>, Vec<_>) = self.pending.into_iter().partition(|(_, v)| v.is_some());
        let deleted = if self.cleared { 0 } else { del.len() };
        let cleared: &[u8] = if self.cleared { b"1" } else { b"0" };
        let count = deleted.to_string();
        let mut args: Vec<&[u8]> = Vec::with_capacity(2 + deleted + 2 * set.len());
        args.push(cleared);
        args.push(count.as_bytes());
        if !self.cleared {
            args.extend(del.iter().map(|(field, _)| field.as_slice()));
        }
        for (field, value) in &set {
            args.push(field);
            args.push(value.as_deref().unwrap_or_default());
        }
        let engine = &self.region.inner.engine;
        // Idempotent: the same writes applied twice leave the same hash.
        let sent: Result<bool> = ops::script(
            engine,
            &mut engine.call()?,
            &COMMIT,
            &args,
            Retry::Idempotent,
        );
        if sent.is_ok() && !set.is_empty() {
            self.region.created()?;
        }
        self.region.write_outage(sent.map(drop), writes, || ())
    }
}
