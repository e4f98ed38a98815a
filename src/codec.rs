//! How values become bytes in Redis, and back.
//!
//! A collection encodes its values (and hash fields, set members) with a [`Codec`], chosen
//! with the builder's `codec(...)`:
//!
//! | Codec | Stored bytes | For |
//! |---|---|---|
//! | [`Postcard`] (default) | 6-byte header + [postcard](https://docs.rs/postcard) body | any serde type |
//! | [`Raw`] | Redis-native: integers and floats as decimal text, strings as UTF-8, bytes as is | counters (`INCRBY`), values readable in `redis-cli` |
//! | [`Json`] (feature `json`) | JSON text | values other programs read |
//!
//! # The postcard header
//!
//! postcard is compact but not self-describing: bytes written for one type can decode
//! "successfully" as another. Every postcard value therefore starts with a header:
//!
//! ```text
//! byte 0      0xCA        magic
//! byte 1      0x01        format version
//! bytes 2..6  fingerprint FNV-1a (32 bit, little endian) of the value type's name
//! ```
//!
//! The type name is the one [`std::any::type_name`] gives, with module paths removed
//! (`alloc::vec::Vec<my_app::User>` becomes `Vec<User>`), so moving a type between modules
//! keeps its data readable while changing its name, or reading it as another type, is
//! detected. Decoding checks the magic, the version, the fingerprint and that the body is
//! consumed exactly; anything else is a [`CodecError`], never a panic. Decoding never runs
//! code (unlike pickle in the Python originals).
//!
//! One limit, from postcard itself: behind a valid header, a few non-canonical bodies that
//! this crate never writes still decode (an integer or length written as an overlong varint,
//! map keys out of order, a `char` followed by extra bytes). They cannot arise from this crate
//! or from bytes written for another type; only deliberate tampering produces them. Checking
//! by re-encoding is not possible in general, since types such as `HashMap` do not encode
//! deterministically.
//!
//! # Writing your own codec
//!
//! ```
//! use redis_caches::codec::{Codec, CodecError, TypeTag};
//! use serde::{Serialize, de::DeserializeOwned};
//!
//! /// Stores values as postcard without a header (not recommended: no type check).
//! #[derive(Clone, Copy, Debug, Default)]
//! struct Bare;
//!
//! impl Codec for Bare {
//!     fn encode<T: Serialize + ?Sized>(&self, value: &T, _: &TypeTag) -> Result<Vec<u8>, CodecError> {
//!         postcard::to_stdvec(value).map_err(CodecError::new)
//!     }
//!     fn decode<T: DeserializeOwned>(&self, bytes: &[u8], _: &TypeTag) -> Result<T, CodecError> {
//!         postcard::from_bytes(bytes).map_err(CodecError::new)
//!     }
//! }
//! assert_eq!(Bare.decode::<u32>(&Bare.encode(&7u32, &TypeTag::of::<u32>())?, &TypeTag::of::<u32>())?, 7);
//! # Ok::<(), CodecError>(())
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser;

/// Why a value could not be encoded or decoded. Collections turn it into
/// [`Error::Encode`](crate::Error::Encode) or [`Error::Decode`](crate::Error::Decode) naming the key.
///
/// ```
/// use redis_caches::codec::CodecError;
/// assert_eq!(CodecError::new("bad").to_string(), "bad");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(String);

impl CodecError {
    /// A codec error with this message.
    pub fn new(message: impl fmt::Display) -> Self {
        CodecError(message.to_string())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::new(msg)
    }
}

impl de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::new(msg)
    }
}

/// The name and fingerprint of a collection's value type, passed to codecs so that they can
/// tag what they write.
///
/// Lookups that borrow (`get("a")` on a `String`-keyed map) encode the borrowed value with the
/// collection type's tag, so the bytes are the same as for the owned value.
///
/// ```
/// use redis_caches::codec::TypeTag;
/// assert_eq!(TypeTag::of::<Vec<String>>().name(), "Vec<String>");
/// assert_ne!(TypeTag::of::<u32>().fingerprint(), TypeTag::of::<i32>().fingerprint());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeTag {
    name: String,
    fingerprint: u32,
}

impl TypeTag {
    /// The tag of `T`.
    pub fn of<T: ?Sized>() -> TypeTag {
        let name = strip_paths(std::any::type_name::<T>());
        let fingerprint = fnv1a(name.as_bytes());
        TypeTag { name, fingerprint }
    }

    /// The tag of a type known only by its (already path-stripped) name.
    pub(crate) fn named(name: String) -> TypeTag {
        let fingerprint = fnv1a(name.as_bytes());
        TypeTag { name, fingerprint }
    }

    /// The type name with module paths removed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit FNV-1a hash of [`name`](TypeTag::name).
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }
}

/// `alloc::vec::Vec<my::User>` -> `Vec<User>`.
fn strip_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut segment_start = 0;
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' && bytes.get(i + 1) == Some(&b':') {
            out.truncate(segment_start);
            i += 2;
            continue;
        }
        let c = bytes[i];
        if !(c.is_ascii_alphanumeric() || c == b'_') {
            out.push(c as char);
            segment_start = out.len();
        } else {
            out.push(c as char);
        }
        i += 1;
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Turns values into bytes and back. See the [module docs](self) for the built-in codecs and
/// an example of a custom one.
///
/// Implementations must be deterministic: equal values (and a borrowed form and its owned
/// form, like `&str` and `String`) must give equal bytes, because hash fields and set members
/// are found by their bytes.
pub trait Codec: Clone + Send + Sync + 'static {
    /// Encodes `value`, a value of the collection's type described by `tag`.
    ///
    /// # Errors
    ///
    /// When the codec cannot represent the value.
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError>;

    /// Decodes bytes this codec wrote for the type described by `tag`.
    ///
    /// # Errors
    ///
    /// For anything this codec did not write for that type; never panics.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError>;
}

/// The default codec: postcard with a type-checking header (see the [module docs](self)).
///
/// ```
/// use redis_caches::codec::{Codec, Postcard, TypeTag};
/// let tag = TypeTag::of::<(String, u8)>();
/// let bytes = Postcard.encode(&("hi".to_string(), 7u8), &tag)?;
/// assert_eq!(&bytes[..2], &[0xCA, 0x01]);
/// assert_eq!(Postcard.decode::<(String, u8)>(&bytes, &tag)?, ("hi".to_string(), 7));
/// assert!(Postcard.decode::<u64>(&bytes, &TypeTag::of::<u64>()).is_err());
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Postcard;

/// First byte of every postcard value.
pub const POSTCARD_MAGIC: u8 = 0xCA;
/// Second byte of every postcard value: the header format version.
pub const POSTCARD_VERSION: u8 = 0x01;
const HEADER_LEN: usize = 6;
/// The first allocation of an encoded value: the header plus 58 bytes.
const ENCODE_CAPACITY: usize = 64;

impl Codec for Postcard {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        // Room for the header and a typical small value: growing the vector costs a realloc
        // and a copy, which doubled the encoding cost of a 24-byte string.
        let mut out = Vec::with_capacity(ENCODE_CAPACITY);
        out.push(POSTCARD_MAGIC);
        out.push(POSTCARD_VERSION);
        out.extend_from_slice(&tag.fingerprint.to_le_bytes());
        postcard::to_extend(value, out).map_err(|e| CodecError::new(format!("postcard: {e}")))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        if bytes.len() < HEADER_LEN || bytes[0] != POSTCARD_MAGIC {
            return Err(CodecError::new(
                "not written by redis-caches' postcard codec (no header)",
            ));
        }
        if bytes[1] != POSTCARD_VERSION {
            return Err(CodecError::new(format!(
                "unknown postcard header version {}",
                bytes[1]
            )));
        }
        let found = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        if found != tag.fingerprint {
            return Err(CodecError::new(format!(
                "written for another type (fingerprint {found:#010x}), read as {} ({:#010x})",
                tag.name, tag.fingerprint
            )));
        }
        match postcard::take_from_bytes::<T>(&bytes[HEADER_LEN..]) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(CodecError::new(format!(
                "{} trailing bytes after the {} value",
                rest.len(),
                tag.name
            ))),
            Err(e) => Err(CodecError::new(format!(
                "postcard body of {}: {e}",
                tag.name
            ))),
        }
    }
}

/// Redis-native values: integers and floats as decimal text (so `INCRBY` works on them),
/// strings as UTF-8, byte vectors as they are, `bool` as `1`/`0`. Anything else (structs,
/// options, sequences other than bytes) is an encode error.
///
/// ```
/// use redis_caches::codec::{Codec, Raw, TypeTag};
/// assert_eq!(Raw.encode(&-42i64, &TypeTag::of::<i64>())?, b"-42");
/// assert_eq!(Raw.encode("héllo", &TypeTag::of::<String>())?, "héllo".as_bytes());
/// assert_eq!(Raw.decode::<u16>(b"65535", &TypeTag::of::<u16>())?, 65535);
/// assert!(Raw.decode::<u8>(b"256", &TypeTag::of::<u8>()).is_err());
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw;

impl Codec for Raw {
    fn encode<T: Serialize + ?Sized>(&self, value: &T, _: &TypeTag) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        value.serialize(RawSerializer { out: &mut out })?;
        Ok(out)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], _: &TypeTag) -> Result<T, CodecError> {
        T::deserialize(RawDeserializer { bytes })
    }
}

/// JSON text through serde_json (crate feature `json`): readable by other programs, no type
/// header.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use redis_caches::codec::{Codec, Json, TypeTag};
/// assert_eq!(Json.encode(&vec![1, 2], &TypeTag::of::<Vec<i32>>()).unwrap(), b"[1,2]");
/// # }
/// ```
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(&self, value: &T, _: &TypeTag) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::new(format!("json: {e}")))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        serde_json::from_slice(bytes)
            .map_err(|e| CodecError::new(format!("json for {}: {e}", tag.name)))
    }
}

struct RawSerializer<'a> {
    out: &'a mut Vec<u8>,
}

fn raw_unsupported(what: &str) -> CodecError {
    CodecError::new(format!(
        "the raw codec stores only integers, floats, bools, strings and bytes, not {what}"
    ))
}

macro_rules! raw_display {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), CodecError> {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(self.out, "{v}");
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for RawSerializer<'a> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = RawBytesSeq<'a>;
    type SerializeTuple = ser::Impossible<(), CodecError>;
    type SerializeTupleStruct = ser::Impossible<(), CodecError>;
    type SerializeTupleVariant = ser::Impossible<(), CodecError>;
    type SerializeMap = ser::Impossible<(), CodecError>;
    type SerializeStruct = ser::Impossible<(), CodecError>;
    type SerializeStructVariant = ser::Impossible<(), CodecError>;

    raw_display!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128
    );

    fn serialize_f32(self, v: f32) -> Result<(), CodecError> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), CodecError> {
        if !v.is_finite() {
            // Redis writes infinities as inf/-inf and has no NaN.
            if v.is_nan() {
                return Err(CodecError::new("the raw codec cannot store NaN"));
            }
            self.out
                .extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
            return Ok(());
        }
        use std::io::Write;
        let _ = write!(self.out, "{v}");
        Ok(())
    }

    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        self.out.push(if v { b'1' } else { b'0' });
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        let mut buf = [0; 4];
        self.out
            .extend_from_slice(v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), CodecError> {
        Err(raw_unsupported("an Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CodecError> {
        Err(raw_unsupported("an Option"))
    }

    fn serialize_unit(self) -> Result<(), CodecError> {
        Err(raw_unsupported("()"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<RawBytesSeq<'a>, CodecError> {
        Ok(RawBytesSeq { out: self.out })
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
        Err(raw_unsupported("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        Err(raw_unsupported("a map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CodecError> {
        Err(raw_unsupported(name))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CodecError> {
        Err(raw_unsupported(name))
    }
}

/// A sequence is accepted only when every element is a `u8` (a `Vec<u8>`).
struct RawBytesSeq<'a> {
    out: &'a mut Vec<u8>,
}

impl ser::SerializeSeq for RawBytesSeq<'_> {
    type Ok = ();
    type Error = CodecError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let byte = value.serialize(ByteOnly)?;
        self.out.push(byte);
        Ok(())
    }

    fn end(self) -> Result<(), CodecError> {
        Ok(())
    }
}

struct ByteOnly;

impl ser::Serializer for ByteOnly {
    type Ok = u8;
    type Error = CodecError;
    type SerializeSeq = ser::Impossible<u8, CodecError>;
    type SerializeTuple = ser::Impossible<u8, CodecError>;
    type SerializeTupleStruct = ser::Impossible<u8, CodecError>;
    type SerializeTupleVariant = ser::Impossible<u8, CodecError>;
    type SerializeMap = ser::Impossible<u8, CodecError>;
    type SerializeStruct = ser::Impossible<u8, CodecError>;
    type SerializeStructVariant = ser::Impossible<u8, CodecError>;

    fn serialize_u8(self, v: u8) -> Result<u8, CodecError> {
        Ok(v)
    }
    fn serialize_bool(self, _: bool) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_i8(self, _: i8) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_i16(self, _: i16) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_i32(self, _: i32) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_i64(self, _: i64) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_u16(self, _: u16) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_u32(self, _: u32) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_u64(self, _: u64) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_f32(self, _: f32) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_f64(self, _: f64) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_char(self, _: char) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_str(self, _: &str) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_none(self) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_unit(self) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CodecError> {
        Err(raw_unsupported("a sequence other than bytes"))
    }
}

struct RawDeserializer<'a> {
    bytes: &'a [u8],
}

impl RawDeserializer<'_> {
    fn text(&self, what: &str) -> Result<&str, CodecError> {
        std::str::from_utf8(self.bytes)
            .map_err(|_| CodecError::new(format!("raw bytes are not UTF-8 text, expected {what}")))
    }

    fn number<N: std::str::FromStr>(&self, what: &str) -> Result<N, CodecError> {
        let text = self.text(what)?;
        text.parse::<N>().map_err(|_| {
            CodecError::new(format!(
                "raw value of {} bytes is not {what}",
                self.bytes.len()
            ))
        })
    }
}

macro_rules! raw_numbers {
    ($($method:ident: $t:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
            visitor.$visit(self.number::<$t>(concat!("a ", stringify!($t)))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for RawDeserializer<'_> {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match std::str::from_utf8(self.bytes) {
            Ok(s) => visitor.visit_string(s.to_string()),
            Err(_) => visitor.visit_byte_buf(self.bytes.to_vec()),
        }
    }

    raw_numbers!(
        deserialize_i8: i8 => visit_i8, deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32, deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128, deserialize_u8: u8 => visit_u8,
        deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64, deserialize_u128: u128 => visit_u128,
        deserialize_f32: f32 => visit_f32, deserialize_f64: f64 => visit_f64
    );

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.bytes {
            b"1" => visitor.visit_bool(true),
            b"0" => visitor.visit_bool(false),
            _ => Err(CodecError::new("raw value is not a bool (1 or 0)")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let text = self.text("a char")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(CodecError::new("raw value is not a single char")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_string(self.text("a string")?.to_string())
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_byte_buf(self.bytes.to_vec())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_byte_buf(self.bytes.to_vec())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let seq: de::value::SeqDeserializer<_, CodecError> =
            de::value::SeqDeserializer::new(self.bytes.iter().copied());
        visitor.visit_seq(seq)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(raw_unsupported("an Option"))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(raw_unsupported("()"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(raw_unsupported(name))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, CodecError> {
        Err(raw_unsupported("a tuple"))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(raw_unsupported(name))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(raw_unsupported("a map"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(raw_unsupported(name))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(raw_unsupported(name))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(raw_unsupported("an identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }

    fn pc<T: Serialize>(v: &T) -> Vec<u8> {
        Postcard.encode(v, &TypeTag::of::<T>()).unwrap()
    }

    /// Golden tests: these bytes are what Redis holds; a change orphans users' data.
    #[test]
    fn golden_postcard_bytes() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(TypeTag::of::<u32>().fingerprint(), 0x5f374b1);
        assert_eq!(pc(&7u32), [0xCA, 0x01, 0xB1, 0x74, 0xF3, 0x05, 7]);
        assert_eq!(
            pc(&"hi".to_string()),
            [0xCA, 0x01, 0x58, 0x48, 0x4F, 0x60, 2, b'h', b'i']
        );
        let user = User {
            id: 300,
            name: "a".into(),
        };
        assert_eq!(
            pc(&user),
            [0xCA, 0x01, 0x12, 0x3E, 0xA6, 0xE0, 0xAC, 0x02, 1, b'a']
        );
    }

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(TypeTag::of::<String>().name(), "String");
        assert_eq!(
            TypeTag::of::<Vec<Option<String>>>().name(),
            "Vec<Option<String>>"
        );
        assert_eq!(TypeTag::of::<User>().name(), "User");
        assert_eq!(TypeTag::of::<(u8, &str)>().name(), "(u8, &str)");
        assert_eq!(
            TypeTag::of::<std::collections::HashMap<String, u8>>().name(),
            "HashMap<String, u8>"
        );
    }

    #[test]
    fn postcard_round_trip_and_borrowed_forms_match() {
        let tag = TypeTag::of::<String>();
        assert_eq!(
            Postcard.encode("abc", &tag).unwrap(),
            Postcard.encode(&"abc".to_string(), &tag).unwrap()
        );
        let user = User {
            id: 1,
            name: "x".into(),
        };
        let bytes = pc(&user);
        assert_eq!(
            Postcard
                .decode::<User>(&bytes, &TypeTag::of::<User>())
                .unwrap(),
            user
        );
    }

    #[test]
    fn postcard_rejects_what_it_did_not_write() {
        let tag = TypeTag::of::<User>();
        for bad in [&b""[..], b"hello", b"\xCA", b"\xCA\x01\0\0\0\0\x01"] {
            let e = Postcard.decode::<User>(bad, &tag).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
        let other = pc(&5u64);
        let e = Postcard.decode::<User>(&other, &tag).unwrap_err();
        assert!(e.to_string().contains("another type"), "{e}");
        let mut versioned = pc(&User {
            id: 1,
            name: "x".into(),
        });
        versioned[1] = 9;
        assert!(
            Postcard
                .decode::<User>(&versioned, &tag)
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        let mut trailing = pc(&User {
            id: 1,
            name: "x".into(),
        });
        trailing.push(0);
        assert!(
            Postcard
                .decode::<User>(&trailing, &tag)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        let mut truncated = pc(&User {
            id: 1,
            name: "xyz".into(),
        });
        truncated.pop();
        assert!(Postcard.decode::<User>(&truncated, &tag).is_err());
    }

    #[test]
    fn golden_raw_bytes() {
        let t = TypeTag::of::<()>;
        assert_eq!(Raw.encode(&42i64, &t()).unwrap(), b"42");
        assert_eq!(Raw.encode(&-7i8, &t()).unwrap(), b"-7");
        assert_eq!(
            Raw.encode(&u64::MAX, &t()).unwrap(),
            b"18446744073709551615"
        );
        assert_eq!(Raw.encode(&1.5f64, &t()).unwrap(), b"1.5");
        assert_eq!(Raw.encode(&f64::INFINITY, &t()).unwrap(), b"inf");
        assert_eq!(Raw.encode(&true, &t()).unwrap(), b"1");
        assert_eq!(Raw.encode("é", &t()).unwrap(), "é".as_bytes());
        assert_eq!(Raw.encode(&vec![0u8, 255], &t()).unwrap(), [0, 255]);
        assert!(Raw.encode(&f64::NAN, &t()).is_err());
        assert!(Raw.encode(&Some(1), &t()).is_err());
        assert!(
            Raw.encode(
                &User {
                    id: 1,
                    name: "x".into()
                },
                &t()
            )
            .is_err()
        );
        assert!(Raw.encode(&vec![1u32], &t()).is_err());
    }

    #[test]
    fn raw_decoding() {
        let t = TypeTag::of::<()>;
        assert_eq!(Raw.decode::<i64>(b"-42", &t()).unwrap(), -42);
        assert_eq!(Raw.decode::<f64>(b"2.5", &t()).unwrap(), 2.5);
        assert_eq!(Raw.decode::<f64>(b"inf", &t()).unwrap(), f64::INFINITY);
        assert_eq!(Raw.decode::<String>(b"abc", &t()).unwrap(), "abc");
        assert_eq!(
            Raw.decode::<Vec<u8>>(b"\xff\x00", &t()).unwrap(),
            vec![255, 0]
        );
        assert!(Raw.decode::<bool>(b"1", &t()).unwrap());
        assert!(Raw.decode::<i64>(b"4x", &t()).is_err());
        assert!(Raw.decode::<String>(b"\xff", &t()).is_err());
        assert!(Raw.decode::<i8>(b"128", &t()).is_err());
        assert!(Raw.decode::<User>(b"1", &t()).is_err());
    }
}
