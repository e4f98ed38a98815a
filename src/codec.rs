//! How values become bytes in Redis, and back.
//!
//! A collection encodes its values with a [`Codec`], chosen with the builder's `codec(...)`,
//! and tags them with the [`TypeTag`] of the value type:
//!
//! | Codec | Stored bytes | For |
//! |---|---|---|
//! | [`Postcard`] (default) | 6-byte header + [postcard](https://docs.rs/postcard) body | any serde type |
//! | [`Raw`] | Redis-native: integers and floats as decimal text, strings as UTF-8, bytes as is | counters (`INCRBY`), values readable in `redis-cli` |
//! | `Json` (feature `json`) | JSON text | values other programs read |
//!
//! Hash fields and set or sorted-set members follow their own rule (see
//! [Fields and members](#fields-and-members)): strings and integers are plain text whatever
//! the codec, so `HGET`, `SISMEMBER` and `ZSCORE` work from any client.
//!
//! # The postcard header
//!
//! postcard is compact but not self-describing: bytes written for one type can decode
//! "successfully" as another. Every postcard value therefore starts with a header (stored-data
//! format v2):
//!
//! ```text
//! byte 0      0xCA        magic
//! byte 1      0x02        format version
//! bytes 2..6  fingerprint the first 4 bytes of SHA-1 over the type's canonical shape text
//!                         and schema version (big endian, so that `redis-cli`'s
//!                         `\xca\x02\x12\x34\xab\xcd` reads as fingerprint 0x1234abcd)
//! bytes 6..   the postcard body
//! ```
//!
//! Decoding checks the magic, the version, the fingerprint and that the body is consumed
//! exactly; anything else is a [`CodecError`] whose [`kind`](CodecError::kind) says which
//! (`Foreign`, `OldFormat`, `NewerFormat`, `OtherShape`, `Corrupt`), never a panic. Decoding
//! never runs code (unlike pickle in the Python originals).
//!
//! One limit, from postcard itself: behind a valid header, a few non-canonical bodies that
//! this crate never writes still decode (an integer or length written as an overlong varint,
//! map keys out of order, a `char` followed by extra bytes). They cannot arise from this crate
//! or from bytes written for another type; only deliberate tampering produces them.
//!
//! # The shape of a type
//!
//! The fingerprint is computed from the type's shape as serde sees it, by tracing the type's
//! `Deserialize` impl (once per type per process; [`TypeTag::of`] caches it). The shape is
//! written as canonical text ([`TypeTag::shape`]) and hashed:
//!
//! - primitives: `bool`, `i8`..`i128`, `u8`..`u128`, `f32`, `f64`, `char`, `str` (`String`,
//!   `&str`, `Box<str>`), `bytes` (`serde_bytes`), `unit` (`()`);
//! - `option<T>`, `seq<T>` (`Vec`, `VecDeque`, `HashSet`, `BTreeSet`, slices), `map<K,V>`
//!   (`HashMap`, `BTreeMap`), `tuple<A,B>` (tuples and arrays `[T; N]`);
//! - containers, inlined without their names: `unit_struct`, `newtype<T>`,
//!   `tuple_struct<A,B>`, `struct{"a":A,"b":B}` (field names and order),
//!   `enum{"A":unit,"B":newtype<T>,"C":tuple<..>,"D":struct{..}}` (variant names and order,
//!   each variant's contents);
//! - `^n` where a container recurs inside itself, `n` levels up (`^0` is the innermost
//!   enclosing container): `struct List { next: Option<Box<List>> }` is
//!   `struct{"next":option<^0>}`.
//!
//! So a type's name, its module and the compiler's `type_name` text are not part of it: a
//! renamed or moved type keeps reading its data. Wrappers serde writes transparently (`Box`,
//! `Arc`, `Cow`, references) are invisible, and types serde writes alike share a shape
//! (`Vec<T>` and `HashSet<T>`, `HashMap` and `BTreeMap`, `[u8; 4]` and `(u8, u8, u8, u8)`), as
//! they share postcard bytes. Borrowed forms share their owned form's tag through
//! [`TypeTag::of_owned`] (`str` as `String`, `[T]` as `Vec<T>`). `#[serde(rename)]` changes
//! the names seen; a type that deserializes from a primitive (`serde_repr` enums, types with
//! `#[serde(from = "u8")]`) has that primitive's shape.
//!
//! The tracer answers each request with a sample value (numbers are 1, strings `"a"`, bytes
//! one long; a type that refuses its sample is offered others, such as 16 bytes for a UUID
//! or `"1.0.0"` for a version), drives the type as postcard does (structs as sequences, enum
//! variants by index, not human-readable) and runs it again until every variant of every enum
//! it reaches has been seen. Containers are told apart by their Rust type, not their name, so
//! two `Item`s from different modules inside one type are two containers. A `Deserialize` that
//! reads different things depending on the values it reads is seen along the sample values'
//! path only. A type is traced once per process, when its first tag is built.
//!
//! # Types whose shape cannot be traced
//!
//! Tracing fails for types whose `Deserialize` asks the data for its own type
//! (`deserialize_any`: `serde_json::Value`, `#[serde(untagged)]` and internally tagged
//! enums, `#[serde(flatten)]`), names enum variants only by string, rejects every sample
//! offered, panics on them, asks for different shapes on different runs, or has no finite
//! values; and for types too large to trace (over a million steps, or a shape over 1 MiB
//! written out). [`TypeTag::untraced_reason`] says why. Such
//! a tag's fingerprint falls back to the type's name without module paths, which cannot see a
//! change of shape, so [`Postcard`] refuses to encode or decode it
//! ([`CodecErrorKind::Unsupported`]) unless the tag carries an explicit schema version, which
//! makes the user responsible for bumping it on every change of the type. (postcard cannot
//! read `deserialize_any` types at all; refusing at the first write is better than storing
//! values that never read back.) [`Raw`] and [`Json`] do not use the fingerprint and store
//! such types as they can.
//!
//! # Schema versions
//!
//! [`TypeTag::with_schema_version`] puts an explicit version number into the fingerprint;
//! collections take it from their builder's
//! [`schema_version`](crate::Builder::schema_version), memos from
//! [`MemoBuilder::schema_version`](crate::MemoBuilder::schema_version). It applies to
//! every value the handle stores and to fields and members stored in the codec's encoding;
//! plain-text fields and members carry no fingerprint.
//! Bump it when the shape stays the same but the meaning changes (a field `price: u64` goes
//! from cents to millicents): values written under another version then read as
//! [`CodecErrorKind::OtherShape`], a miss for caches.
//!
//! # When a type changes
//!
//! What a new build reads from values that an older build stored:
//!
//! | Change between the two builds | Fingerprint | [`Postcard`] | [`Json`] |
//! |---|---|---|---|
//! | Type renamed or moved to another module, same fields | same | reads normally | reads normally |
//! | Field added | changes | `OtherShape` | reads if the field has `#[serde(default)]` (or is an `Option`), else `Invalid` |
//! | Field removed | changes | `OtherShape` | reads normally (the old field is ignored) |
//! | Field renamed | changes | `OtherShape` | `Invalid` unless `#[serde(alias)]` |
//! | Fields reordered | changes | `OtherShape` | reads normally |
//! | Field type changed (`u32` to `u64`, `String` to `Option<String>`) | changes | `OtherShape` | reads if the JSON fits the new type, else `Invalid` |
//! | Enum variant added | changes | `OtherShape` | reads normally |
//! | Enum variant removed or renamed | changes | `OtherShape` | `Invalid` for values of that variant |
//! | Enum variants reordered | changes | `OtherShape` | reads normally |
//! | Variant contents changed | changes | `OtherShape` | as for fields |
//! | Container kind changed (`struct Id(u64)` to `u64`) | changes | `OtherShape` | reads normally (a newtype is its contents in JSON) |
//! | Only the meaning changed | same | reads normally: bump the schema version | reads normally |
//! | Schema version bumped | changes | `OtherShape` | not used |
//!
//! What the reader then gets depends on whether it is a cache:
//!
//! | Kind of error | Plain collection (`RedisCache`, `DictCache`, sets, `Region::get`) | Cache (`Memo`, `Region::get_or_insert_with`, `Region::memo`) |
//! |---|---|---|
//! | `OtherShape`, `OldFormat`, `NewerFormat` ([`CodecError::is_stale`]) | [`Error::Decode`](crate::Error::Decode) naming the key, with the expected and found fingerprint in its source | a miss: recomputed and written over |
//! | `Invalid`, `Corrupt`, `Foreign` | `Error::Decode` | a `Memo` deletes it and recomputes; `Region::get_or_insert_with` returns `Error::Decode` |
//!
//! [`Raw`] stores only primitives: a changed primitive type reads if the text fits it
//! (`"7"` as `u32` or `u64`), else `Invalid`.
//!
//! # Fields and members
//!
//! Hash fields of a `DictCache<K, _>` and members of `SetCache<T>` and `SortedSetCache<T>` go
//! through [`Codec::encode_field`] and [`Codec::decode_field`], whose default follows the
//! key type's [`FieldForm`], decided per type from its traced shape:
//!
//! - [`FieldForm::Text`] for strings and `char` (and newtype structs around them, at any
//!   depth): the UTF-8 text as is, `ada`; reading requires valid UTF-8 (exactly one character
//!   for a `char`);
//! - [`FieldForm::Integer`] for `i8`..`i128` and `u8`..`u128` (and newtypes around them):
//!   canonical decimal, `42`, `-7`; reading accepts only what encoding writes (no `+`, no
//!   leading zero, no `-0`, no spaces) within the type's range;
//! - [`FieldForm::Encoded`] for every other type (and for types whose shape cannot be traced):
//!   the codec's own encoding, which for [`Postcard`] carries the header and its type check.
//!
//! A borrowed lookup (`get("ada")` on a `DictCache<String, _>`) encodes `&str` with the
//! `String` tag and gives the same bytes. Plain text never starts with the postcard header
//! (`0xCA` followed by a version byte is not UTF-8), so a field written by format v1, or a
//! postcard field of another type, is reported as `OldFormat` or `OtherShape`, never misread.
//! [`Json`] overrides the rule and writes fields as JSON text (`"ada"`), as in format v1;
//! `Pickle` (feature `pickle`) keeps its own encoding for fields and members too, as Python's
//! `caches` pickles set members (it cannot write, so lookups are refused).
//!
//! # Lossless or refused
//!
//! Every codec either stores a value so that it decodes to itself or refuses it with
//! [`CodecErrorKind::Unsupported`] (property tests check this):
//!
//! - [`Postcard`] stores every value of a traced type bit for bit (`-0.0`, `NaN` payloads,
//!   `u128`, `Option<()>`, nested options, unit structs, empty strings);
//! - [`Raw`] stores integers of every width, `bool`, `char`, strings, byte vectors, floats in
//!   Rust's shortest round-trip decimal (`f32` in its own, `-0`, `inf`, `-inf`), and refuses
//!   `NaN`, options, units, tuples, structs, enums, maps and sequences other than bytes, also
//!   when reading, so that it never reads `"12"` as the bytes of a `Vec<i64>`;
//! - [`Json`] refuses `NaN` and infinities (serde_json would write `null`) and `Some(x)`
//!   where `x` is written as `null` (`Some(())`, `Some(None)`), which would read back as
//!   `None`; serde_json itself refuses map keys that are not strings, integers, floats, bools
//!   or chars.
//!
//! # From format v1
//!
//! redis-caches 0.1 wrote format v1: the same header with version byte `0x01` and a
//! fingerprint hashing the type's name, which could not see a reordered field. v1 data is
//! never read as v2: decoding a v1 postcard value or field gives
//! [`CodecErrorKind::OldFormat`] `{ version: 1 }` ("written by stored-data format v1
//! (redis-caches 0.1)"), an [`Error::Decode`](crate::Error::Decode) for plain collections and
//! a miss for caches, which overwrite it. [`Raw`] values and fields are unchanged (an `f32`
//! written by v1 as its `f64` widening reads back as the same `f32`), as are [`Json`] values
//! and fields, except that v1 wrote `NaN` and infinities as `null`.
//!
//! # Writing your own codec
//!
//! A codec implements [`encode`](Codec::encode) and [`decode`](Codec::decode); fields and
//! members then follow the default rule above.
//!
//! ```
//! use redis_caches::codec::{Codec, CodecError, CodecErrorKind, TypeTag};
//! use serde::{Serialize, de::DeserializeOwned};
//!
//! /// Stores values as postcard without a header (not recommended: no type check).
//! #[derive(Clone, Copy, Debug, Default)]
//! struct Bare;
//!
//! impl Codec for Bare {
//!     fn encode<T: Serialize + ?Sized>(&self, value: &T, _: &TypeTag) -> Result<Vec<u8>, CodecError> {
//!         postcard::to_stdvec(value)
//!             .map_err(|e| CodecError::with_kind(CodecErrorKind::Unsupported, "postcard").with_source(e))
//!     }
//!     fn decode<T: DeserializeOwned>(&self, bytes: &[u8], _: &TypeTag) -> Result<T, CodecError> {
//!         postcard::from_bytes(bytes)
//!             .map_err(|e| CodecError::with_kind(CodecErrorKind::Invalid, "postcard").with_source(e))
//!     }
//! }
//!
//! let tag = TypeTag::of::<u32>();
//! assert_eq!(Bare.decode::<u32>(&Bare.encode(&7u32, &tag)?, &tag)?, 7);
//! assert_eq!(Bare.encode_field(&7u32, &tag)?, b"7"); // the default field rule
//! # Ok::<(), CodecError>(())
//! ```
#![cfg_attr(
    not(feature = "json"),
    doc = "[`Json`]: https://docs.rs/redis-caches/latest/redis_caches/codec/struct.Json.html"
)]

#[cfg(feature = "pickle")]
pub mod pickle;
#[cfg(feature = "pickle")]
pub use pickle::Pickle;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod error;
mod field;
#[cfg(feature = "json")]
mod json;
mod postcard_codec;
pub mod python;
mod raw;
mod tag;
mod trace;

pub use error::{CodecError, CodecErrorKind};
#[cfg(feature = "json")]
pub use json::Json;
pub use postcard_codec::{POSTCARD_MAGIC, POSTCARD_VERSION, Postcard};
#[cfg(feature = "json")]
pub use python::PythonJson;
pub use python::PythonText;
pub use raw::Raw;
pub(crate) use tag::LazyTag;
pub use tag::{FieldForm, TypeTag};

/// Turns values into bytes and back. See the [module docs](self) for the built-in codecs and
/// an example of a custom one.
///
/// Implementations must be deterministic: equal values (and a borrowed form and its owned
/// form, like `&str` and `String`) must give equal bytes, because hash fields and set members
/// are found by their bytes.
pub trait Codec: Clone + Send + Sync + 'static {
    /// Whether hash fields and set members are written and read exactly as values, instead
    /// of by the field rule of the [module docs](self#fields-and-members) (`false`, the
    /// default). `true` for codecs whose data other programs share, which write fields as
    /// values (`Json`, the Python codecs).
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Json, Postcard};
    /// assert!(Json::FIELDS_AS_VALUES && !Postcard::FIELDS_AS_VALUES);
    /// ```
    const FIELDS_AS_VALUES: bool = false;

    /// Encodes `value`, a value of the collection's type described by `tag`.
    ///
    /// # Errors
    ///
    /// When the codec cannot represent the value faithfully
    /// ([`CodecErrorKind::Unsupported`]).
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Raw, TypeTag};
    /// assert_eq!(Raw.encode(&7u8, &TypeTag::of::<u8>())?, b"7");
    /// # Ok::<(), redis_caches::codec::CodecError>(())
    /// ```
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError>;

    /// Decodes bytes this codec wrote for the type described by `tag`.
    ///
    /// # Errors
    ///
    /// For anything this codec did not write for that type, with a [`CodecErrorKind`] saying
    /// what; never panics.
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Raw, TypeTag};
    /// assert_eq!(Raw.decode::<u8>(b"7", &TypeTag::of::<u8>())?, 7);
    /// # Ok::<(), redis_caches::codec::CodecError>(())
    /// ```
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError>;

    /// Encodes `value` as a hash field or set member of the type described by `tag`. The
    /// default follows the tag's [`FieldForm`]: plain text for strings and integers, else
    /// [`encode`](Codec::encode) (see the [module docs](self#fields-and-members)).
    ///
    /// # Errors
    ///
    /// As [`encode`](Codec::encode); also when a type whose shape is a string or an integer
    /// serializes as something else.
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Postcard, TypeTag};
    /// assert_eq!(Postcard.encode_field("ada", &TypeTag::of::<String>())?, b"ada");
    /// assert_eq!(Postcard.encode_field(&42u64, &TypeTag::of::<u64>())?, b"42");
    /// # Ok::<(), redis_caches::codec::CodecError>(())
    /// ```
    fn encode_field<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        match tag.field_form() {
            _ if Self::FIELDS_AS_VALUES => self.encode(value, tag),
            FieldForm::Encoded => self.encode(value, tag),
            form => field::encode(value, form, tag),
        }
    }

    /// Decodes a hash field or set member that [`encode_field`](Codec::encode_field) wrote
    /// for the type described by `tag`. The default is strict: it accepts exactly the bytes
    /// the default `encode_field` writes for some value.
    ///
    /// # Errors
    ///
    /// As [`decode`](Codec::decode); for plain-text fields, [`CodecErrorKind::Invalid`] for
    /// non-UTF-8 text or a non-canonical integer (`042`, `+42`, `-0`), `OldFormat` or
    /// `OtherShape` for a postcard value.
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Postcard, TypeTag};
    /// let tag = TypeTag::of::<u32>();
    /// assert_eq!(Postcard.decode_field::<u32>(b"42", &tag)?, 42);
    /// assert!(Postcard.decode_field::<u32>(b"042", &tag).is_err());
    /// # Ok::<(), redis_caches::codec::CodecError>(())
    /// ```
    fn decode_field<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        tag: &TypeTag,
    ) -> Result<T, CodecError> {
        match tag.field_form() {
            _ if Self::FIELDS_AS_VALUES => self.decode(bytes, tag),
            FieldForm::Encoded => self.decode(bytes, tag),
            form => field::decode(bytes, form, tag),
        }
    }
}

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod shape_tests;
