//! Compatibility layouts: the key names and field, member and score encodings that let a
//! collection share data byte for byte with a Python service.
//!
//! Chosen on the builder with [`layout`](crate::Builder::layout); the default,
//! [`Layout::Native`], is this crate's own layout. Everything a layout changes is decided
//! here: how the key is rendered, how hash fields and set members are encoded (values keep
//! the codec the builder chose), and which scores may be written. The exact bytes each Python
//! library writes are specified in `docs/python-formats.md`; the migration guide,
//! `docs/migration.md`, says which layout and codec to use for each Python setting.
//!
//! | Layout | Key | Hash fields | Set and sorted-set members | Values |
//! |---|---|---|---|---|
//! | [`Native`](Layout::Native) | parts escaped (see [`key`](crate::key)) | the codec's field rule | the codec's field rule | the codec |
//! | [`PythonCaches`](Layout::PythonCaches) | `<prefix or class name>.<part>...` verbatim, `0` and `""` parts dropped | [`PythonText`] | the codec's field rule | the codec |
//! | [`Pottery`](Layout::Pottery) | the parts verbatim | [`PythonJson`] | [`PythonJson`] | the codec |
//! | [`PythonRegionCache`](Layout::PythonRegionCache) | `<prefix or root>.<part>...` verbatim | [`PythonText`] | the codec's field rule | the codec |
//!
#![cfg_attr(
    not(feature = "json"),
    doc = "[`PythonJson`]: https://docs.rs/redis-caches/latest/redis_caches/codec/struct.PythonJson.html"
)]
#![cfg_attr(feature = "json", doc = "[`PythonJson`]: crate::codec::PythonJson")]
//! [`PythonText`]: crate::codec::PythonText

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, TypeTag};
use crate::error::{Error, Result};
use crate::key::{Key, KeyPart};

/// How a collection names its key and encodes its fields, members and scores: this crate's
/// own layout, or that of a Python library whose data it shares. See the
/// [module docs](self) for the table.
///
/// ```no_run
/// use redis_caches::{DictCache, Layout, codec::PythonText};
///
/// // Python: caches.DictCache("prefs", serialize=False)["lang"] = "en"
/// let prefs: DictCache<String, String, PythonText> = DictCache::builder("prefs")
///     .layout(Layout::PythonCaches)
///     .codec(PythonText)
///     .build(); // the key is `DictCache.prefs`
/// assert_eq!(prefs.get("lang")?.as_deref(), Some("en"));
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// This crate's layout: parts escaped and joined with `.`, fields and members by the
    /// codec's field rule ([`Codec::encode_field`]: plain text for strings and integers),
    /// values by the codec, any score but NaN.
    #[default]
    Native,
    /// Python's `caches` 3.0.0 (`Cache`, `DictCache`, `SetCache`, `SortedSetCache`,
    /// `SentinelCache`):
    ///
    /// - the key is the prefix, else the Python class name (`Cache` for a
    ///   [`RedisCache`](crate::RedisCache), `DictCache`, `SetCache`, `SortedSetCache`,
    ///   `SentinelCache`; give `.prefix("Users")` for a Python subclass `Users` or a class
    ///   `prefix`), then the parts, joined with `.` **without escaping**, with the parts `0`
    ///   and `""` **dropped** as Python drops them (so `["a", 0]` is `DictCache.a`, and
    ///   `["a.b"]` and `["a", "b"]` are the same key, as in Python);
    /// - hash fields are redis-py text ([`PythonText`](crate::codec::PythonText)), whatever
    ///   the codec, as `caches` never pickles them;
    /// - members and values follow the codec, as they follow `serialize` in Python:
    ///   [`PythonText`](crate::codec::PythonText) for `serialize=False`, `codec::Pickle`
    ///   (read-only) for `serialize=True`;
    /// - sorted-set scores must be whole numbers (and so finite): Python writes
    ///   `int(score)` and reads scores back as `int`, failing on an infinite one, so other
    ///   scores are refused with [`Error::Encode`] before anything is sent.
    PythonCaches,
    /// `pottery` 3.0.1 (`RedisDict`, `RedisSet`, `RedisCounter`): the key is the parts
    /// joined with `.` verbatim (give pottery's `key=` as one part), with no prefix unless
    /// one is given; hash fields and set members are Python's
    /// `json.dumps(x, sort_keys=True)` (`PythonJson`, crate feature `json`; without it,
    /// encoding them is refused); values follow the codec (`PythonJson` writes them as
    /// Python does, `Json` writes JSON Python reads). A `RedisCounter` is a
    /// `DictCache<String, i64, PythonJson>`, whose [`incr`](crate::DictCache::incr) is an
    /// atomic `HINCRBY` on pottery's field.
    Pottery,
    /// `region-cache` 0.3.8 regions, read and written as a
    /// [`DictCache`](crate::DictCache): the key is the prefix (the `RegionCache`'s root,
    /// `root` when none is given), then the region's name, joined with `.` verbatim (the
    /// region `users.alice` is the hash `root.users.alice`); fields are redis-py text; values
    /// follow the codec (`codec::Pickle` for the default pickle regions, read-only; `Json`
    /// for regions with `serializer=json`). Iteration skips region-cache's marker field
    /// `__cache_region_created_at__`; [`len`](crate::DictCache::len) counts it, as Python's
    /// `len` does, and [`pop_item`](crate::DictCache::pop_item) may pick it (its value is
    /// then a decode error). Invalidating Python's region trees (`::child_caches` link sets)
    /// is not done by this layout: let the Python side invalidate, or let the entries expire.
    /// A [`Region`](crate::Region) refuses every layout but `Native` with
    /// [`Error::Config`]: it keeps its own generation layout.
    PythonRegionCache,
}

/// What is being encoded: a hash field, a set or sorted-set member, or a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Field,
    Member,
    Value,
}

/// The field region-cache writes into every region hash.
const REGION_MARKER: &[u8] = b"__cache_region_created_at__";

impl Layout {
    /// The prefix the layout puts in front when the builder gives none (or an empty one):
    /// the Python class name for `caches`, `root` for region-cache.
    pub(crate) fn default_prefix(self, python_class: &'static str) -> Option<&'static str> {
        match self {
            Layout::PythonCaches if !python_class.is_empty() => Some(python_class),
            Layout::PythonRegionCache => Some("root"),
            _ => None,
        }
    }

    /// The full Redis key of `key` under this layout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`]: as [`Key::render`] for the native layout; for the others, when
    /// nothing is left to name the key, or (pottery, region-cache) a part is empty.
    pub(crate) fn render_key(
        self,
        key: &Key,
        connection_prefix: &str,
        prefix: Option<&str>,
    ) -> Result<String> {
        if self == Layout::Native {
            return key.render(connection_prefix, prefix);
        }
        let mut out = String::from(connection_prefix);
        let mut first = true;
        let mut push = |out: &mut String, part: &str| {
            if !first {
                out.push('.');
            }
            out.push_str(part);
            first = false;
        };
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            push(&mut out, p);
        }
        for part in key.parts() {
            let text = part.to_string();
            let falsy = matches!(part, KeyPart::Int(0)) || text.is_empty();
            if falsy && self == Layout::PythonCaches {
                continue;
            }
            if text.is_empty() {
                return Err(Error::InvalidKey {
                    reason: "a key part is an empty string".into(),
                });
            }
            push(&mut out, &text);
        }
        if first {
            return Err(Error::InvalidKey {
                reason: "a key needs at least one non-empty part or a prefix".into(),
            });
        }
        Ok(out)
    }

    /// Encodes a field, member or value as this layout stores it.
    pub(crate) fn encode<C: Codec, T: Serialize + ?Sized>(
        self,
        codec: &C,
        slot: Slot,
        value: &T,
        tag: &TypeTag,
    ) -> std::result::Result<Vec<u8>, CodecError> {
        match (self, slot) {
            (Layout::PythonCaches | Layout::PythonRegionCache, Slot::Field) => {
                crate::codec::PythonText.encode(value, tag)
            }
            (Layout::Pottery, Slot::Field | Slot::Member) => pottery_json::encode(value, tag),
            // Other fields and members (the native layout's, and the members of the `caches`
            // layout, which follow `serialize`): the codec's rule for fields.
            (_, Slot::Field | Slot::Member) => codec.encode_field(value, tag),
            (_, Slot::Value) => codec.encode(value, tag),
        }
    }

    /// Decodes what [`encode`](Layout::encode) writes for the same slot.
    pub(crate) fn decode<C: Codec, T: DeserializeOwned>(
        self,
        codec: &C,
        slot: Slot,
        bytes: &[u8],
        tag: &TypeTag,
    ) -> std::result::Result<T, CodecError> {
        match (self, slot) {
            (Layout::PythonCaches | Layout::PythonRegionCache, Slot::Field) => {
                crate::codec::PythonText.decode(bytes, tag)
            }
            (Layout::Pottery, Slot::Field | Slot::Member) => pottery_json::decode(bytes, tag),
            (_, Slot::Field | Slot::Member) => codec.decode_field(bytes, tag),
            (_, Slot::Value) => codec.decode(bytes, tag),
        }
    }

    /// Why `score` cannot be written under this layout, if it cannot (NaN is refused for
    /// every layout by the sorted set itself).
    pub(crate) fn refuse_score(self, score: f64) -> Option<&'static str> {
        let whole = score.is_finite() && score.fract() == 0.0;
        (self == Layout::PythonCaches && !whole).then_some(
            "the caches layout stores whole-number scores only (Python truncates others and \
             fails on infinite ones)",
        )
    }

    /// Whether `field` is the layout's own bookkeeping, skipped when iterating a hash.
    pub(crate) fn hides_field(self, field: &[u8]) -> bool {
        self.hidden_field() == Some(field)
    }

    /// The layout's own bookkeeping field in a hash, never an entry (region-cache's marker).
    pub(crate) fn hidden_field(self) -> Option<&'static [u8]> {
        (self == Layout::PythonRegionCache).then_some(REGION_MARKER)
    }
}

/// pottery's JSON, or a clear refusal without the `json` feature.
mod pottery_json {
    use super::*;

    #[cfg(feature = "json")]
    pub(super) fn encode<T: Serialize + ?Sized>(
        value: &T,
        tag: &TypeTag,
    ) -> std::result::Result<Vec<u8>, CodecError> {
        crate::codec::PythonJson.encode(value, tag)
    }

    #[cfg(feature = "json")]
    pub(super) fn decode<T: DeserializeOwned>(
        bytes: &[u8],
        tag: &TypeTag,
    ) -> std::result::Result<T, CodecError> {
        crate::codec::PythonJson.decode(bytes, tag)
    }

    #[cfg(not(feature = "json"))]
    use crate::codec::CodecErrorKind;

    #[cfg(not(feature = "json"))]
    fn refused() -> CodecError {
        CodecError::with_kind(
            CodecErrorKind::Unsupported,
            "the pottery layout needs the crate feature `json`",
        )
    }

    #[cfg(not(feature = "json"))]
    pub(super) fn encode<T: Serialize + ?Sized>(
        _: &T,
        _: &TypeTag,
    ) -> std::result::Result<Vec<u8>, CodecError> {
        Err(refused())
    }

    #[cfg(not(feature = "json"))]
    pub(super) fn decode<T: DeserializeOwned>(
        _: &[u8],
        _: &TypeTag,
    ) -> std::result::Result<T, CodecError> {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::IntoKey;

    /// Golden: the keys Python writes (captured in `docs/python-formats.md`).
    #[test]
    fn python_keys_are_rendered_as_python_does() {
        let caches = |k: Key, p: Option<&str>| Layout::PythonCaches.render_key(&k, "", p);
        assert_eq!(
            caches("foo".into_key(), Some("Cache")).unwrap(),
            "Cache.foo"
        );
        assert_eq!(
            caches(["a", "b"].into_key(), Some("DictCache")).unwrap(),
            "DictCache.a.b"
        );
        assert_eq!(
            caches(("a", 0, "b").into_key(), Some("Cache")).unwrap(),
            "Cache.a.b"
        );
        assert_eq!(
            caches(["a", "", "b"].into_key(), Some("Cache")).unwrap(),
            "Cache.a.b"
        );
        assert_eq!(
            caches("a.b".into_key(), Some("Cache")).unwrap(),
            "Cache.a.b"
        );
        assert_eq!(caches(7.into_key(), Some("ints")).unwrap(), "ints.7");
        assert_eq!(caches(Key::default(), Some("Cache")).unwrap(), "Cache");
        assert!(caches(["", ""].into_key(), None).is_err());
        let pottery = |k: Key| Layout::Pottery.render_key(&k, "", None);
        assert_eq!(pottery("pd".into_key()).unwrap(), "pd");
        assert_eq!(pottery("a.b\\c{x}".into_key()).unwrap(), "a.b\\c{x}");
        assert!(pottery(["a", ""].into_key()).is_err());
        let region = |k: Key| Layout::PythonRegionCache.render_key(&k, "", Some("root"));
        assert_eq!(
            region("users.alice".into_key()).unwrap(),
            "root.users.alice"
        );
        assert_eq!(
            region(["users", "alice"].into_key()).unwrap(),
            "root.users.alice"
        );
        assert_eq!(
            Layout::Native
                .render_key(&"a.b".into_key(), "", Some("Cache"))
                .unwrap(),
            r"Cache.a\.b"
        );
        assert_eq!(
            Layout::PythonCaches.default_prefix("DictCache"),
            Some("DictCache")
        );
        assert_eq!(Layout::PythonRegionCache.default_prefix(""), Some("root"));
        assert_eq!(Layout::Pottery.default_prefix("DictCache"), None);
    }

    #[test]
    fn each_layout_encodes_its_own_slots() {
        let codec = crate::codec::Raw;
        let f = TypeTag::of::<f64>();
        let enc = |l: Layout, slot| l.encode(&codec, slot, &2.0f64, &f).unwrap();
        assert_eq!(enc(Layout::Native, Slot::Field), b"2");
        assert_eq!(enc(Layout::PythonCaches, Slot::Field), b"2.0");
        assert_eq!(enc(Layout::PythonCaches, Slot::Member), b"2");
        assert_eq!(enc(Layout::PythonCaches, Slot::Value), b"2");
        assert_eq!(enc(Layout::PythonRegionCache, Slot::Field), b"2.0");
        #[cfg(feature = "json")]
        {
            assert_eq!(enc(Layout::Pottery, Slot::Field), b"2.0");
            let s = TypeTag::of::<String>();
            let member = Layout::Pottery
                .encode(&codec, Slot::Member, "é", &s)
                .unwrap();
            assert_eq!(member, br#""\u00e9""#);
            let back: String = Layout::Pottery
                .decode(&codec, Slot::Member, &member, &s)
                .unwrap();
            assert_eq!(back, "é");
        }
        assert_eq!(
            Layout::PythonCaches
                .decode::<_, f64>(&codec, Slot::Field, b"1e+16", &f)
                .unwrap(),
            1e16
        );
    }

    #[cfg(not(feature = "json"))]
    #[test]
    fn the_pottery_layout_needs_the_json_feature() {
        let s = TypeTag::of::<String>();
        let codec = crate::codec::Raw;
        let e = Layout::Pottery
            .encode(&codec, Slot::Field, "a", &s)
            .unwrap_err();
        assert!(e.to_string().contains("feature `json`"), "{e}");
        let e = Layout::Pottery.decode::<_, String>(&codec, Slot::Member, b"\"a\"", &s);
        assert!(e.is_err());
        // Values follow the codec, which needs no feature.
        assert_eq!(
            Layout::Pottery
                .encode(&codec, Slot::Value, "a", &s)
                .unwrap(),
            b"a"
        );
    }

    #[test]
    fn the_caches_layout_takes_whole_scores_only() {
        for ok in [0.0, -3.0, 1e15, 2f64.powi(60)] {
            assert_eq!(Layout::PythonCaches.refuse_score(ok), None, "{ok}");
        }
        for bad in [1.5, -0.5, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(Layout::PythonCaches.refuse_score(bad).is_some(), "{bad}");
            assert_eq!(Layout::Native.refuse_score(bad), None);
        }
        assert!(Layout::PythonRegionCache.hides_field(b"__cache_region_created_at__"));
        assert!(!Layout::PythonRegionCache.hides_field(b"__other"));
        assert!(!Layout::Native.hides_field(b"__cache_region_created_at__"));
    }
}
