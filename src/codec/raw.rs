//! The raw codec: Redis-native values, readable in `redis-cli` and usable by `INCRBY`.

use std::io::Write as _;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Impossible};
use serde::{Serialize, forward_to_deserialize_any};

use super::{Codec, CodecError, CodecErrorKind, TypeTag};

/// Redis-native values: integers and floats as decimal text (so `INCRBY` works on them),
/// strings as UTF-8, byte vectors as they are, `bool` as `1`/`0`, newtype structs as what
/// they wrap. Anything else (structs, enums, options, units, sequences other than bytes) is
/// an encode error, as is `NaN` (Redis has none); infinities are `inf` and `-inf` as Redis
/// writes them. There is no header and no type check: read values with the type they were
/// written with.
///
/// ```
/// use redis_caches::codec::{Codec, Raw, TypeTag};
/// assert_eq!(Raw.encode(&-42i64, &TypeTag::of::<i64>())?, b"-42");
/// assert_eq!(Raw.encode("héllo", &TypeTag::of::<String>())?, "héllo".as_bytes());
/// assert_eq!(Raw.encode(&0.1f32, &TypeTag::of::<f32>())?, b"0.1");
/// assert_eq!(Raw.decode::<u16>(b"65535", &TypeTag::of::<u16>())?, 65535);
/// assert!(Raw.decode::<u8>(b"256", &TypeTag::of::<u8>()).is_err());
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw;

impl Codec for Raw {
    fn encode<T: Serialize + ?Sized>(&self, value: &T, _: &TypeTag) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        value.serialize(RawSerializer {
            out: &mut out,
            python: false,
        })?;
        Ok(out)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], _: &TypeTag) -> Result<T, CodecError> {
        T::deserialize(RawDeserializer {
            bytes,
            canonical: false,
        })
    }
}

/// Decodes a hash field or set member written by redis-py ([`PythonText`](super::PythonText)'s
/// field rule): as [`Raw`] reads a value, but a number must be in the one text Python writes
/// for it (`42`, not `+42` or `042`; `2.0`, not `2`), so that two fields never decode to the
/// same key and every key decoded is found again by its own encoding.
pub(super) fn decode_python_field<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    T::deserialize(RawDeserializer {
        bytes,
        canonical: true,
    })
}

/// The one text Python writes for a number.
trait PythonText {
    fn python_text(&self) -> String;
}

macro_rules! python_text_int {
    ($($t:ty),*) => {$(
        impl PythonText for $t {
            fn python_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
python_text_int!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);

impl PythonText for f64 {
    fn python_text(&self) -> String {
        super::python::float_repr(*self)
    }
}

impl PythonText for f32 {
    fn python_text(&self) -> String {
        super::python::float_repr_f32(*self)
    }
}

/// [`PythonText`](super::PythonText)'s encoding: as raw, with floats in Python's `repr` and
/// `bool` refused, as redis-py does.
pub(super) fn encode_python<T: Serialize + ?Sized>(
    value: &T,
    _: &TypeTag,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    value.serialize(RawSerializer {
        out: &mut out,
        python: true,
    })?;
    Ok(out)
}

fn unsupported(what: &str) -> CodecError {
    CodecError::with_kind(
        CodecErrorKind::Unsupported,
        format!("the raw codec stores only integers, floats, bools, strings and bytes, not {what}"),
    )
}

fn invalid(message: String) -> CodecError {
    CodecError::with_kind(CodecErrorKind::Invalid, message)
}

struct RawSerializer<'a> {
    out: &'a mut Vec<u8>,
    /// Floats as Python's `repr`, `bool` refused ([`encode_python`]).
    python: bool,
}

macro_rules! raw_display {
    ($($method:ident: $t:ty),* $(,)?) => {$(
        fn $method(self, v: $t) -> Result<(), CodecError> {
            // Writing to a Vec cannot fail.
            let _ = write!(self.out, "{v}");
            Ok(())
        }
    )*};
}

impl RawSerializer<'_> {
    /// Rust's shortest round-trip decimal (no exponent, as Redis writes floats), `inf` and
    /// `-inf` as Redis writes infinities; Redis has no `NaN`.
    fn float(self, v: impl std::fmt::Display, nan: bool) -> Result<(), CodecError> {
        if nan {
            return Err(CodecError::with_kind(
                CodecErrorKind::Unsupported,
                "the raw codec cannot store NaN",
            ));
        }
        let _ = write!(self.out, "{v}");
        Ok(())
    }

    /// Python's `repr` of the float (its text is made by the caller); `NaN` refused.
    fn python_float(self, text: String, nan: bool) -> Result<(), CodecError> {
        if nan {
            return Err(CodecError::with_kind(
                CodecErrorKind::Unsupported,
                "redis-py text cannot store NaN",
            ));
        }
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

impl<'a> ser::Serializer for RawSerializer<'a> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = RawBytesSeq<'a>;
    type SerializeTuple = Impossible<(), CodecError>;
    type SerializeTupleStruct = Impossible<(), CodecError>;
    type SerializeTupleVariant = Impossible<(), CodecError>;
    type SerializeMap = Impossible<(), CodecError>;
    type SerializeStruct = Impossible<(), CodecError>;
    type SerializeStructVariant = Impossible<(), CodecError>;

    raw_display!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128,
    );

    fn serialize_f32(self, v: f32) -> Result<(), CodecError> {
        if self.python {
            return self.python_float(super::python::float_repr_f32(v), v.is_nan());
        }
        // f32's own shortest form: `0.1`, not the f64 widening `0.10000000149011612`.
        self.float(v, v.is_nan())
    }

    fn serialize_f64(self, v: f64) -> Result<(), CodecError> {
        if self.python {
            return self.python_float(super::python::float_repr(v), v.is_nan());
        }
        self.float(v, v.is_nan())
    }

    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        if self.python {
            return Err(CodecError::with_kind(
                CodecErrorKind::Unsupported,
                "redis-py text has no bool (redis-py refuses True and False)",
            ));
        }
        self.out.push(if v { b'1' } else { b'0' });
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        self.out
            .extend_from_slice(v.encode_utf8(&mut [0; 4]).as_bytes());
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
        Err(unsupported("an Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CodecError> {
        Err(unsupported("an Option"))
    }

    fn serialize_unit(self) -> Result<(), CodecError> {
        Err(unsupported("()"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), CodecError> {
        Err(unsupported(name))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), CodecError> {
        Err(unsupported(name))
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
        Err(unsupported(name))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<RawBytesSeq<'a>, CodecError> {
        Ok(RawBytesSeq { out: self.out })
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
        Err(unsupported("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CodecError> {
        Err(unsupported(name))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CodecError> {
        Err(unsupported(name))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        Err(unsupported("a map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CodecError> {
        Err(unsupported(name))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CodecError> {
        Err(unsupported(name))
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

/// Serializes one element of a byte sequence: a `u8`, or an error.
struct ByteOnly;

fn not_a_byte() -> CodecError {
    unsupported("a sequence other than bytes")
}

macro_rules! not_bytes {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<u8, CodecError> {
            Err(not_a_byte())
        }
    )*};
}

impl ser::Serializer for ByteOnly {
    type Ok = u8;
    type Error = CodecError;
    type SerializeSeq = Impossible<u8, CodecError>;
    type SerializeTuple = Impossible<u8, CodecError>;
    type SerializeTupleStruct = Impossible<u8, CodecError>;
    type SerializeTupleVariant = Impossible<u8, CodecError>;
    type SerializeMap = Impossible<u8, CodecError>;
    type SerializeStruct = Impossible<u8, CodecError>;
    type SerializeStructVariant = Impossible<u8, CodecError>;

    fn serialize_u8(self, v: u8) -> Result<u8, CodecError> {
        Ok(v)
    }

    not_bytes!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CodecError> {
        Err(not_a_byte())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CodecError> {
        Err(not_a_byte())
    }
}

struct RawDeserializer<'a> {
    bytes: &'a [u8],
    /// Numbers only in the text Python writes for them (fields of `PythonText`).
    canonical: bool,
}

impl RawDeserializer<'_> {
    fn text(&self, what: &str) -> Result<&str, CodecError> {
        std::str::from_utf8(self.bytes).map_err(|e| {
            invalid(format!("raw bytes are not UTF-8 text, expected {what}")).with_source(e)
        })
    }

    fn number<N: std::str::FromStr + PythonText>(&self, what: &str) -> Result<N, CodecError> {
        let text = self.text(what)?;
        let n = text.parse::<N>().map_err(|_| {
            invalid(format!(
                "raw value of {} bytes is not {what}",
                self.bytes.len()
            ))
        })?;
        if self.canonical && n.python_text() != text {
            return Err(invalid(format!(
                "field of {} bytes is {what} but not in the text Python writes for it",
                self.bytes.len()
            )));
        }
        Ok(n)
    }
}

macro_rules! raw_numbers {
    ($($method:ident: $t:ty => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
            visitor.$visit(self.number::<$t>(concat!("a ", stringify!($t)))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for RawDeserializer<'_> {
    type Error = CodecError;

    /// Raw bytes do not say what they are: a type that asks (`serde_json::Value`, untagged
    /// enums) would read `5` as a string where it wrote a number.
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("a type that asks the data for its type"))
    }

    raw_numbers!(
        deserialize_i8: i8 => visit_i8, deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32, deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128, deserialize_u8: u8 => visit_u8,
        deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64, deserialize_u128: u128 => visit_u128,
        deserialize_f32: f32 => visit_f32, deserialize_f64: f64 => visit_f64,
    );

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.bytes {
            b"1" => visitor.visit_bool(true),
            b"0" => visitor.visit_bool(false),
            _ => Err(invalid("raw value is not a bool (1 or 0)".into())),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let text = self.text("a char")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(invalid("raw value is not a single char".into())),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_str(self.text("a string")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_bytes(self.bytes)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_bytes(self.bytes)
    }

    /// Only a sequence of bytes: each element must ask for a `u8`, so `Vec<i64>` or
    /// `Vec<char>` are refused as the encoder refuses them, not read byte by byte.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_seq(ByteSeq {
            bytes: self.bytes.iter(),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("an Option"))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("()"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(unsupported(name))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("a tuple"))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(unsupported(name))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("a map"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(unsupported(name))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(unsupported(name))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("an identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
}

struct ByteSeq<'a> {
    bytes: std::slice::Iter<'a, u8>,
}

impl<'de> de::SeqAccess<'de> for ByteSeq<'_> {
    type Error = CodecError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, CodecError> {
        match self.bytes.next() {
            Some(&byte) => seed.deserialize(Byte(byte)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// One element of a byte sequence: readable only as a `u8`.
struct Byte(u8);

impl<'de> de::Deserializer<'de> for Byte {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(unsupported("a sequence other than bytes"))
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u8(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
