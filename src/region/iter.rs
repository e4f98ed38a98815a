//! The iterators of a [`Region`]: its entry keys, its entries, its children.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::Region;
use super::tree::unescape_part;
use crate::codec::{Codec, Postcard};
use crate::engine::scan_page_of;
use crate::error::{Error, Result};
use crate::memo::field_header;

/// How many fields or members one `HSCAN`/`SSCAN` asks for.
const SCAN_BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanOf {
    /// `HSCAN` of the region's hash: field, value, field, value, ...
    Hash,
    /// `HSCAN` of the region's map of children: child name, generation, ...
    Children,
}

/// A cursor over a hash or set, fetching a batch per round trip.
struct Scan<C> {
    region: Region<C>,
    of: ScanOf,
    cursor: u64,
    done: bool,
    buffer: VecDeque<Vec<u8>>,
}

impl<C: Codec> Scan<C> {
    fn new(region: Region<C>, of: ScanOf) -> Self {
        Scan {
            region,
            of,
            cursor: 0,
            done: false,
            buffer: VecDeque::new(),
        }
    }

    /// The next raw item, fetching batches as needed.
    fn next_raw(&mut self) -> Option<Result<Vec<u8>>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                self.buffer.clear();
                return Some(Err(e));
            }
        }
    }

    fn fetch(&mut self) -> Result<()> {
        let layout = self.region.layout()?;
        // The region's name key, or it followed by `#children`: the engine names them with
        // the placeholder, and the script finds the current generation's keys.
        let key = match self.of {
            ScanOf::Hash => layout.key.clone(),
            ScanOf::Children => format!("{}#children", layout.key),
        };
        let (items, next): (Vec<Vec<u8>>, Option<u64>) = scan_page_of(
            &self.region.inner.engine,
            &key,
            "HSCAN",
            self.cursor,
            SCAN_BATCH,
        )?;
        self.cursor = next.unwrap_or(0);
        self.done = next.is_none();
        self.buffer.extend(items);
        Ok(())
    }

    /// The next field and value of a hash scan.
    fn next_pair(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        let field = match self.next_raw()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        match self.next_raw() {
            Some(Ok(value)) => Some(Ok((field, value))),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        }
    }

    /// The next entry (not memoized) field and value, with the field decoded as a key.
    fn next_entry(&mut self) -> Option<Result<(String, Vec<u8>)>> {
        let memo = field_header();
        loop {
            let (field, value) = match self.next_pair()? {
                Ok(pair) => pair,
                Err(e) => return Some(Err(e)),
            };
            if field.starts_with(&memo) {
                continue;
            }
            let key =
                self.region
                    .inner
                    .engine
                    .decode_field::<String>(super::key_tag(), &field, || {
                        let name = self.region.layout().map(|l| l.key.as_str());
                        format!("a field of {}", name.unwrap_or_default())
                    });
            return Some(key.map(|k| (k, value)));
        }
    }
}

/// The entry keys of a [`Region`], from [`Region::keys`]: `HSCAN` in batches.
///
/// ```no_run
/// let keys: Vec<String> = redis_caches::Region::new("r").keys().collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Keys<C = Postcard> {
    scan: Scan<C>,
}

impl<C: Codec> Keys<C> {
    pub(super) fn new(region: Region<C>) -> Self {
        Keys {
            scan: Scan::new(region, ScanOf::Hash),
        }
    }
}

impl<C: Codec> Iterator for Keys<C> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.scan.next_entry()?.map(|(k, _)| k))
    }
}

impl<C: Codec> fmt::Debug for Keys<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}

/// The entries of a [`Region`] with values read as `V`, from [`Region::iter`]: `HSCAN` in
/// batches.
///
/// ```no_run
/// use std::collections::HashMap;
/// let ages: HashMap<String, u8> = redis_caches::Region::new("ages").iter::<u8>().collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Iter<V, C = Postcard> {
    scan: Scan<C>,
    _value: PhantomData<fn() -> V>,
}

impl<V, C: Codec> Iter<V, C> {
    pub(super) fn new(region: Region<C>) -> Self {
        Iter {
            scan: Scan::new(region, ScanOf::Hash),
            _value: PhantomData,
        }
    }
}

impl<V: DeserializeOwned, C: Codec> Iterator for Iter<V, C> {
    type Item = Result<(String, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, bytes) = match self.scan.next_entry()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let value = self.scan.region.decode_value_or_miss(
                &crate::codec::TypeTag::of::<V>(),
                &bytes,
                &key,
            );
            // `Ok(None)`: a value of another shape read as missing, left out.
            match value {
                Ok(Some(v)) => return Some(Ok((key, v))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<V, C: Codec> fmt::Debug for Iter<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}

/// The child regions of a [`Region`], from [`Region::children`]: `HSCAN` in batches.
///
/// ```no_run
/// let names: Vec<String> = redis_caches::Region::new("users")
///     .children()
///     .map(|child| child.map(|r| r.name()))
///     .collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Children<C = Postcard> {
    scan: Scan<C>,
}

impl<C: Codec> Children<C> {
    pub(super) fn new(region: Region<C>) -> Self {
        Children {
            scan: Scan::new(region, ScanOf::Children),
        }
    }
}

impl<C: Codec> Iterator for Children<C> {
    type Item = Result<Region<C>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (field, _generation) = match self.scan.next_pair()? {
            Ok(pair) => pair,
            Err(e) => return Some(Err(e)),
        };
        let region = &self.scan.region;
        let layout = match region.layout() {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let part = std::str::from_utf8(&field)
            .ok()
            .and_then(unescape_part)
            .filter(|p| !p.is_empty());
        Some(match part {
            Some(part) => {
                let mut parts = region.inner.parts.clone();
                parts.push(part);
                Ok(region.child_builder(parts).build())
            }
            None => Err(Error::decode(
                format!("{}#children", layout.key),
                "a field is not the escaped name of a child region",
            )),
        })
    }
}

impl<C: Codec> fmt::Debug for Children<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Children")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}
