//! [`Memoized`] (deprecated): a function whose results are cached in a [`Region`]'s hash.
//! [`Region::memo`] places a [`Memo`](crate::Memo) in a region instead; this type stays for
//! one release because its signature (a borrowed argument, a function that need not be
//! `Send + Sync + 'static`) cannot be carried over to `Memo`.
#![allow(deprecated)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Region;
use crate::codec::{Codec, Postcard, TypeTag};
use crate::dict::ops;
use crate::error::{Error, Result};

/// The tag of memoized-call fields.
fn memo_tag() -> TypeTag {
    TypeTag::internal("RegionMemo")
}

/// A function whose results are cached in a [`Region`], made by [`Region::memoize`].
///
/// `Debug` shows the function's name and the region.
///
/// ```no_run
/// # #![allow(deprecated)]
/// let r = redis_caches::Region::new("geo");
/// let distance = r.memoize("distance", |(a, b): &(String, String)| a.len().abs_diff(b.len()));
/// let d = distance.call(&("Paris".into(), "Rome".into()))?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[deprecated(
    since = "0.2.0",
    note = "use `Region::memo`, a `Memo` in the region (lock, statistics, single flight)"
)]
pub struct Memoized<A: ?Sized, R, F, C = Postcard> {
    region: Region<C>,
    name: Arc<str>,
    f: F,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A: ?Sized, R, F: Clone, C> Clone for Memoized<A, R, F, C> {
    fn clone(&self) -> Self {
        Memoized {
            region: self.region.clone(),
            name: self.name.clone(),
            f: self.f.clone(),
            _types: PhantomData,
        }
    }
}

impl<A: ?Sized, R, F, C: Codec> fmt::Debug for Memoized<A, R, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memoized")
            .field("name", &self.name)
            .field("region", &self.region)
            .finish()
    }
}

impl<A: ?Sized, R, F, C> Memoized<A, R, F, C> {
    pub(super) fn new(region: Region<C>, name: String, f: F) -> Self {
        Memoized {
            region,
            name: Arc::from(name),
            f,
            _types: PhantomData,
        }
    }
}

impl<A, R, F, C> Memoized<A, R, F, C>
where
    A: Serialize + ?Sized,
    R: Serialize + DeserializeOwned,
    F: Fn(&A) -> R,
    C: Codec,
{
    fn field(&self, args: &A) -> Result<Vec<u8>> {
        let layout = self.region.layout()?;
        // The same header as a `Memo`'s fields in a region (`memo::field_header`).
        let bytes = Postcard
            .encode(&(&*self.name, args), &memo_tag())
            .map_err(|e| {
                Error::encode(
                    layout.key.clone(),
                    format_args!("the arguments of {}: {e}", self.name),
                )
            })?;
        self.region
            .inner
            .engine
            .check_size(bytes.len(), &layout.key)?;
        Ok(bytes)
    }

    /// Returns the cached result for `args`, or calls the function, stores its result and
    /// returns it. The same cost as [`Region::get_or_insert_with`]: one round trip on a hit
    /// (none when the region's [near cache](crate::NearCache) holds it), two on a miss. Every result is cached, `None` included. If several callers miss at
    /// once, each calls the function and all return the result stored first.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the arguments cannot be encoded; as
    /// [`Region::get_or_insert_with`] otherwise.
    ///
    /// ```no_run
    /// # #![allow(deprecated)]
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// assert_eq!(square.call(&12)?, 144);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call(&self, args: &A) -> Result<R> {
        let field = self.field(args)?;
        self.region
            .get_or_insert_field(&field, &self.name, || (self.f)(args))
    }

    /// Calls the function without the cache (neither read nor written). No I/O.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// assert_eq!(square.call_uncached(&3), 9);
    /// ```
    pub fn call_uncached(&self, args: &A) -> R {
        (self.f)(args)
    }

    /// Removes the cached result for `args`; `true` when there was one. `HDEL`, one round
    /// trip.
    ///
    /// # Errors
    ///
    /// As [`Region::delete`].
    ///
    /// ```no_run
    /// # #![allow(deprecated)]
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// square.forget(&12)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: &A) -> Result<bool> {
        let field = self.field(args)?;
        let deleted = ops::delete(&self.region.inner.engine, &field);
        self.region.write_outage(deleted, 1, || false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_fields_cannot_be_entry_fields() {
        let header = crate::memo::field_header();
        assert_eq!(header.len(), 6);
        let entry = Postcard
            .encode("anything", &TypeTag::of::<String>())
            .unwrap();
        assert!(!entry.starts_with(&header));
        // Raw and JSON keys are valid UTF-8; the header is not.
        assert!(std::str::from_utf8(&header).is_err());
    }
}
