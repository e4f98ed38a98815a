//! The JSON codec (crate feature `json`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser;

use super::{Codec, CodecError, CodecErrorKind, TypeTag};

/// JSON text through serde_json (crate feature `json`): readable by other programs, no header
/// and no type check. Values JSON cannot hold faithfully are refused rather than written
/// lossily: `NaN` and infinities (serde_json would write `null`), and an `Option` whose
/// content is itself written as `null` (`Some(())`, `Some(None)`), which would read back as
/// `None`. Hash fields and set members are JSON text too (a `String` member is `"rust"`,
/// quotes included), as in format v1.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use redis_caches::codec::{Codec, CodecErrorKind, Json, TypeTag};
/// assert_eq!(Json.encode(&vec![1, 2], &TypeTag::of::<Vec<i32>>()).unwrap(), b"[1,2]");
/// let err = Json.encode(&f64::NAN, &TypeTag::of::<f64>()).unwrap_err();
/// assert_eq!(err.kind(), CodecErrorKind::Unsupported);
/// assert_eq!(Json.encode_field("ada", &TypeTag::of::<String>()).unwrap(), b"\"ada\"");
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        value.serialize(Check)?;
        serde_json::to_vec(value).map_err(|e| {
            CodecError::with_kind(
                CodecErrorKind::Unsupported,
                format!("json cannot encode this `{}` value", tag.name()),
            )
            .with_source(e)
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| {
            CodecError::with_kind(
                CodecErrorKind::Invalid,
                format!("the json does not read as a `{}`", tag.name()),
            )
            .with_source(e)
        })
    }

    /// JSON text, as values: fields and members written by format v1 stay readable, and a
    /// string field read from v1 data can never be taken for a plain-text one.
    const FIELDS_AS_VALUES: bool = true;
}

fn refuse(what: &str) -> CodecError {
    CodecError::with_kind(
        CodecErrorKind::Unsupported,
        format!("json cannot store {what} faithfully"),
    )
}

/// Refuses what JSON would store lossily (see [`Json`]), before anything is written.
pub(super) fn check<T: Serialize + ?Sized>(value: &T) -> Result<(), CodecError> {
    value.serialize(Check)
}

/// Walks a value before serde_json writes it, refusing what JSON would store lossily.
struct Check;

type Checked = Result<(), CodecError>;

fn check_float(finite: bool) -> Checked {
    if finite {
        Ok(())
    } else {
        Err(refuse("NaN or an infinite number (it would be null)"))
    }
}

macro_rules! fine {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Checked {
            Ok(())
        }
    )*};
}

impl ser::Serializer for Check {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Check;
    type SerializeTuple = Check;
    type SerializeTupleStruct = Check;
    type SerializeTupleVariant = Check;
    type SerializeMap = Check;
    type SerializeStruct = Check;
    type SerializeStructVariant = Check;

    fine!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_f32(self, v: f32) -> Checked {
        check_float(v.is_finite())
    }

    fn serialize_f64(self, v: f64) -> Checked {
        check_float(v.is_finite())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Checked {
        if value.serialize(IsNull)? {
            return Err(refuse(
                "Some of a value written as null (it would read back as None)",
            ));
        }
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Checked {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Checked {
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_tuple(self, _: usize) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Check, CodecError> {
        Ok(Check)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Check, CodecError> {
        Ok(Check)
    }
}

impl ser::SerializeSeq for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeTuple for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeMap for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Checked {
        key.serialize(Check)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeStruct for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Check {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Checked {
        value.serialize(Check)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

/// Whether serde_json writes a value as `null`: units, unit structs and `None`, also inside
/// newtype structs.
struct IsNull;

macro_rules! not_null {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<bool, CodecError> {
            Ok(false)
        }
    )*};
}

impl ser::Serializer for IsNull {
    type Ok = bool;
    type Error = CodecError;
    type SerializeSeq = NotNull;
    type SerializeTuple = NotNull;
    type SerializeTupleStruct = NotNull;
    type SerializeTupleVariant = NotNull;
    type SerializeMap = NotNull;
    type SerializeStruct = NotNull;
    type SerializeStructVariant = NotNull;

    not_null!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_variant(&'static str, u32, &'static str),
        // serde_json writes non-finite floats as null, but `Check` refuses them anyway, with
        // a more precise message.
        serialize_f32(f32),
        serialize_f64(f64),
    );

    fn serialize_none(self) -> Result<bool, CodecError> {
        Ok(true)
    }

    fn serialize_unit(self) -> Result<bool, CodecError> {
        Ok(true)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<bool, CodecError> {
        Ok(true)
    }

    /// `Some(x)` is written as `x`; when that is null, `Check` refuses it where it meets
    /// it, one level down.
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<bool, CodecError> {
        Ok(false)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, CodecError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, CodecError> {
        Ok(false)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_tuple(self, _: usize) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NotNull, CodecError> {
        Ok(NotNull)
    }
}

/// A compound value, never `null`: its contents need no look.
struct NotNull;

macro_rules! not_null_compound {
    ($($trait:ident: $method:ident($($arg:ty),*)),* $(,)?) => {$(
        impl ser::$trait for NotNull {
            type Ok = bool;
            type Error = CodecError;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $arg,)* _: &T) -> Result<(), CodecError> {
                Ok(())
            }
            fn end(self) -> Result<bool, CodecError> {
                Ok(false)
            }
        }
    )*};
}

not_null_compound!(
    SerializeSeq: serialize_element(),
    SerializeTuple: serialize_element(),
    SerializeTupleStruct: serialize_field(),
    SerializeTupleVariant: serialize_field(),
    SerializeStruct: serialize_field(&'static str),
    SerializeStructVariant: serialize_field(&'static str),
);

impl ser::SerializeMap for NotNull {
    type Ok = bool;
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), CodecError> {
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), CodecError> {
        Ok(())
    }
    fn end(self) -> Result<bool, CodecError> {
        Ok(false)
    }
}
