//! Plain-text fields and members: strings as their UTF-8 bytes, integers as canonical
//! decimal text. Used by [`Codec::encode_field`](super::Codec::encode_field) and
//! [`Codec::decode_field`](super::Codec::decode_field) for types whose
//! [`FieldForm`] is `Text` or `Integer`.

use std::io::Write as _;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Impossible, Serialize};

use super::postcard_codec::{HEADER_LEN, POSTCARD_MAGIC, POSTCARD_VERSION, POSTCARD_VERSION_1};
use super::{CodecError, CodecErrorKind, FieldForm, TypeTag};

/// Encodes `value` as plain text; `form` is `Text` or `Integer`.
pub(super) fn encode<T: Serialize + ?Sized>(
    value: &T,
    form: FieldForm,
    tag: &TypeTag,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    value.serialize(PlainSer {
        out: &mut out,
        form,
        tag,
    })?;
    Ok(out)
}

/// Decodes a plain-text field strictly: exactly the bytes [`encode`] writes for some value.
pub(super) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    form: FieldForm,
    tag: &TypeTag,
) -> Result<T, CodecError> {
    if let Some(e) = postcard_header(bytes, tag) {
        return Err(e);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        CodecError::with_kind(
            CodecErrorKind::Invalid,
            format!("a field or member of `{}` is not UTF-8 text", tag.name()),
        )
        .with_source(e)
    })?;
    if form == FieldForm::Integer && !is_canonical_integer(text) {
        return Err(CodecError::with_kind(
            CodecErrorKind::Invalid,
            format!(
                "a field or member of `{}` is not an integer in canonical decimal \
                 (no sign but `-`, no leading zero)",
                tag.name()
            ),
        ));
    }
    T::deserialize(PlainDe { text, form, tag })
}

/// Plain text never starts with the postcard magic followed by a version byte (it is not
/// UTF-8), so a field that does was written by the postcard codec: by format v1, or in v2
/// for a type whose fields are not plain text.
fn postcard_header(bytes: &[u8], tag: &TypeTag) -> Option<CodecError> {
    if bytes.len() < HEADER_LEN || bytes[0] != POSTCARD_MAGIC {
        return None;
    }
    match bytes[1] {
        POSTCARD_VERSION_1 => Some(super::postcard_codec::old_format(1)),
        POSTCARD_VERSION => {
            let found = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
            Some(super::postcard_codec::other_shape(tag, found))
        }
        _ => None,
    }
}

/// `0`, or an optional `-` and digits without a leading zero (not `-0`).
fn is_canonical_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits && (!digits.starts_with('0') || text == "0")
}

fn form_name(form: FieldForm) -> &'static str {
    match form {
        FieldForm::Text => "text",
        FieldForm::Integer => "an integer",
        FieldForm::Encoded => "encoded",
    }
}

struct PlainSer<'a> {
    out: &'a mut Vec<u8>,
    form: FieldForm,
    tag: &'a TypeTag,
}

impl PlainSer<'_> {
    /// The type's shape said text or integer, but its `Serialize` wrote something else.
    fn refuse(&self, what: &str) -> CodecError {
        CodecError::with_kind(
            CodecErrorKind::Unsupported,
            format!(
                "fields and members of `{}` are stored as {}, but its Serialize wrote {what}",
                self.tag.name(),
                form_name(self.form)
            ),
        )
    }

    fn text(self, text: &str) -> Result<(), CodecError> {
        if self.form != FieldForm::Text {
            return Err(self.refuse("a string"));
        }
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn integer(self, n: impl std::fmt::Display) -> Result<(), CodecError> {
        if self.form != FieldForm::Integer {
            return Err(self.refuse("an integer"));
        }
        // Writing to a Vec cannot fail.
        let _ = write!(self.out, "{n}");
        Ok(())
    }
}

macro_rules! plain_integers {
    ($($method:ident: $t:ty),* $(,)?) => {$(
        fn $method(self, v: $t) -> Result<(), CodecError> {
            self.integer(v)
        }
    )*};
}

impl<'a> ser::Serializer for PlainSer<'a> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Impossible<(), CodecError>;
    type SerializeTuple = Impossible<(), CodecError>;
    type SerializeTupleStruct = Impossible<(), CodecError>;
    type SerializeTupleVariant = Impossible<(), CodecError>;
    type SerializeMap = Impossible<(), CodecError>;
    type SerializeStruct = Impossible<(), CodecError>;
    type SerializeStructVariant = Impossible<(), CodecError>;

    plain_integers!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128,
    );

    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        self.text(v)
    }

    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        value.serialize(self)
    }

    /// As the tracer that decided the form: a type that writes itself differently for
    /// humans must write the form its shape was traced in.
    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, _: bool) -> Result<(), CodecError> {
        Err(self.refuse("a bool"))
    }

    fn serialize_f32(self, _: f32) -> Result<(), CodecError> {
        Err(self.refuse("a float"))
    }

    fn serialize_f64(self, _: f64) -> Result<(), CodecError> {
        Err(self.refuse("a float"))
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), CodecError> {
        Err(self.refuse("bytes"))
    }

    fn serialize_none(self) -> Result<(), CodecError> {
        Err(self.refuse("an Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CodecError> {
        Err(self.refuse("an Option"))
    }

    fn serialize_unit(self) -> Result<(), CodecError> {
        Err(self.refuse("a unit"))
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CodecError> {
        Err(self.refuse("a unit struct"))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), CodecError> {
        Err(self.refuse("an enum"))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CodecError> {
        Err(self.refuse("an enum"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CodecError> {
        Err(self.refuse("a sequence"))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
        Err(self.refuse("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CodecError> {
        Err(self.refuse("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CodecError> {
        Err(self.refuse("an enum"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        Err(self.refuse("a map"))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CodecError> {
        Err(self.refuse("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CodecError> {
        Err(self.refuse("an enum"))
    }
}

struct PlainDe<'a> {
    text: &'a str,
    form: FieldForm,
    tag: &'a TypeTag,
}

impl PlainDe<'_> {
    /// The type's shape said text or integer, but its `Deserialize` asked for something else.
    fn refuse(&self, what: &str) -> CodecError {
        CodecError::with_kind(
            CodecErrorKind::Unsupported,
            format!(
                "fields and members of `{}` are stored as {}, but its Deserialize asked for {what}",
                self.tag.name(),
                form_name(self.form)
            ),
        )
    }

    fn integer<N: std::str::FromStr>(&self, what: &str) -> Result<N, CodecError> {
        if self.form != FieldForm::Integer {
            return Err(self.refuse(what));
        }
        self.text.parse::<N>().map_err(|_| {
            CodecError::with_kind(
                CodecErrorKind::Invalid,
                format!(
                    "a field or member of `{}` is out of range for {what}",
                    self.tag.name()
                ),
            )
        })
    }
}

macro_rules! plain_numbers {
    ($($method:ident: $t:ty => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
            visitor.$visit(self.integer::<$t>(concat!("a ", stringify!($t)))?)
        }
    )*};
}

macro_rules! plain_refused {
    ($($method:ident: $what:literal),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
            Err(self.refuse($what))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for PlainDe<'_> {
    type Error = CodecError;

    plain_numbers!(
        deserialize_i8: i8 => visit_i8, deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32, deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128, deserialize_u8: u8 => visit_u8,
        deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64, deserialize_u128: u128 => visit_u128,
    );

    plain_refused!(
        deserialize_any: "any type",
        deserialize_bool: "a bool",
        deserialize_f32: "a float",
        deserialize_f64: "a float",
        deserialize_bytes: "bytes",
        deserialize_byte_buf: "bytes",
        deserialize_option: "an Option",
        deserialize_unit: "a unit",
        deserialize_seq: "a sequence",
        deserialize_map: "a map",
        deserialize_identifier: "an identifier",
        deserialize_ignored_any: "nothing",
    );

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        if self.form != FieldForm::Text {
            return Err(self.refuse("a string"));
        }
        visitor.visit_str(self.text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        if self.form != FieldForm::Text {
            return Err(self.refuse("a char"));
        }
        let mut chars = self.text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(CodecError::with_kind(
                CodecErrorKind::Invalid,
                format!(
                    "a field or member of `{}` is not a single char",
                    self.tag.name()
                ),
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(self.refuse("a unit struct"))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, CodecError> {
        Err(self.refuse("a tuple"))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(self.refuse("a tuple struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(self.refuse("a struct"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, CodecError> {
        Err(self.refuse("an enum"))
    }

    /// As the tracer that decided the form.
    fn is_human_readable(&self) -> bool {
        false
    }
}
