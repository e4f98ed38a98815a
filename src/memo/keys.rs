//! How a memoized function's arguments become the last parts of its keys.
//!
//! - [`escape`]: postcard bytes of the arguments, printable ASCII kept, every other byte and
//!   `%` written `%XX`. Injective (distinct arguments give distinct keys) and stable across
//!   processes, builds and platforms: postcard's format is fixed and documented, unlike
//!   `std::hash::Hash`.
//! - [`hash`]: SHA-1 of the same bytes, 40 hex digits, for long arguments.
//! - [`Template`]: `"item:{id}"` filled from the fields of a serde struct or tuple.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `%XX` for every byte outside `!`..=`~`, and for `%` itself.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Lowercase hex SHA-1 of `bytes`.
pub(crate) fn hash(bytes: &[u8]) -> String {
    let digest = sha1_smol::Sha1::from(bytes).digest().bytes();
    let mut out = String::with_capacity(40);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The postcard bytes of the arguments (no codec header: they are never decoded).
pub(crate) fn encode_args<T: Serialize + ?Sized>(args: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(args).map_err(|e| format!("cannot encode the arguments: {e}"))
}

/// A parsed key template: literal text and `{name}` / `{0}` placeholders; `{{` and `}}` are
/// literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(String),
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_alphanumeric() || c == '_' => name.push(c),
                            Some(c) => {
                                return Err(format!(
                                    "the key template {text:?} has {c:?} in a placeholder; \
                                     placeholders are {{field}} or {{0}}"
                                ));
                            }
                            None => {
                                return Err(format!(
                                    "the key template {text:?} has an unclosed '{{'"
                                ));
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(format!(
                            "the key template {text:?} has an empty placeholder '{{}}'"
                        ));
                    }
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Field(name));
                }
                '}' => return Err(format!("the key template {text:?} has a lone '}}'")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if segments.is_empty() {
            return Err("the key template is empty".into());
        }
        Ok(Template { segments })
    }

    /// Fills the template from `args`, a struct (by field name), a tuple (by index) or a
    /// single scalar (`{0}`). Values are written with `%`, `:`, `{`, `}`, whitespace and
    /// control characters escaped as `%XX`, so a value cannot forge a separator.
    pub(crate) fn render<T: Serialize + ?Sized>(&self, args: &T) -> Result<String, String> {
        let mut fields = Fields::default();
        args.serialize(FieldCollector {
            fields: &mut fields,
        })
        .map_err(|e| e.0)?;
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Field(name) => {
                    let value = fields
                        .0
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                        .ok_or_else(|| {
                            format!(
                                "the key template needs {{{name}}}, which the arguments do not have \
                                 (they have: {})",
                                fields
                                    .0
                                    .iter()
                                    .map(|(n, _)| n.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })?;
                    escape_value(value, &mut out);
                }
            }
        }
        Ok(out)
    }
}

fn escape_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '%' | ':' | '{' | '}') || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

#[derive(Debug)]
struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl ser::Error for TemplateError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TemplateError(msg.to_string())
    }
}

fn unsupported(what: &str) -> TemplateError {
    TemplateError(format!(
        "key templates take a struct, a tuple or a scalar as arguments, and scalar fields \
         (integers, floats, bools, chars, strings, unit enum variants, options of those), not {what}"
    ))
}

/// The top level: collects fields by name (struct) or index (tuple), or one scalar as `0`.
struct FieldCollector<'a> {
    fields: &'a mut Fields,
}

/// Renders one scalar to text.
struct Scalar;

macro_rules! scalar_display {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<String, TemplateError> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for Scalar {
    type Ok = String;
    type Error = TemplateError;
    type SerializeSeq = Impossible<String, TemplateError>;
    type SerializeTuple = Impossible<String, TemplateError>;
    type SerializeTupleStruct = Impossible<String, TemplateError>;
    type SerializeTupleVariant = Impossible<String, TemplateError>;
    type SerializeMap = Impossible<String, TemplateError>;
    type SerializeStruct = Impossible<String, TemplateError>;
    type SerializeStructVariant = Impossible<String, TemplateError>;

    scalar_display!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str
    );

    fn serialize_bytes(self, _: &[u8]) -> Result<String, TemplateError> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<String, TemplateError> {
        Ok(String::new())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, TemplateError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, TemplateError> {
        Ok(String::new())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<String, TemplateError> {
        Ok(name.to_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, TemplateError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, TemplateError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, TemplateError> {
        Err(unsupported("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, TemplateError> {
        Err(unsupported("a nested tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, TemplateError> {
        Err(unsupported("a nested tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TemplateError> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, TemplateError> {
        Err(unsupported("a nested struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
}

macro_rules! top_scalar {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), TemplateError> {
            let text = Scalar.$method(v)?;
            self.fields.0.push(("0".into(), text));
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for FieldCollector<'a> {
    type Ok = ();
    type Error = TemplateError;
    type SerializeSeq = Impossible<(), TemplateError>;
    type SerializeTuple = Indexed<'a>;
    type SerializeTupleStruct = Indexed<'a>;
    type SerializeTupleVariant = Impossible<(), TemplateError>;
    type SerializeMap = Impossible<(), TemplateError>;
    type SerializeStruct = Named<'a>;
    type SerializeStructVariant = Impossible<(), TemplateError>;

    top_scalar!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str
    );

    fn serialize_bytes(self, _: &[u8]) -> Result<(), TemplateError> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<(), TemplateError> {
        self.fields.0.push(("0".into(), String::new()));
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), TemplateError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), TemplateError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), TemplateError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), TemplateError> {
        self.fields.0.push(("0".into(), variant.to_string()));
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), TemplateError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, TemplateError> {
        Err(unsupported("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Indexed<'a>, TemplateError> {
        Ok(Indexed {
            fields: self.fields,
            next: 0,
        })
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Indexed<'a>, TemplateError> {
        Ok(Indexed {
            fields: self.fields,
            next: 0,
        })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TemplateError> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Named<'a>, TemplateError> {
        Ok(Named {
            fields: self.fields,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TemplateError> {
        Err(unsupported("an enum variant with data"))
    }
}

struct Indexed<'a> {
    fields: &'a mut Fields,
    next: usize,
}

impl Indexed<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TemplateError> {
        let text = v.serialize(Scalar)?;
        self.fields.0.push((self.next.to_string(), text));
        self.next += 1;
        Ok(())
    }
}

impl ser::SerializeTuple for Indexed<'_> {
    type Ok = ();
    type Error = TemplateError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TemplateError> {
        self.push(v)
    }
    fn end(self) -> Result<(), TemplateError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Indexed<'_> {
    type Ok = ();
    type Error = TemplateError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TemplateError> {
        self.push(v)
    }
    fn end(self) -> Result<(), TemplateError> {
        Ok(())
    }
}

struct Named<'a> {
    fields: &'a mut Fields,
}

impl ser::SerializeStruct for Named<'_> {
    type Ok = ();
    type Error = TemplateError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), TemplateError> {
        let text = v.serialize(Scalar)?;
        self.fields.0.push((name.to_string(), text));
        Ok(())
    }
    fn skip_field(&mut self, _: &'static str) -> Result<(), TemplateError> {
        Ok(())
    }
    fn end(self) -> Result<(), TemplateError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Item {
        id: u64,
        lang: String,
        draft: Option<bool>,
    }

    /// Golden: the key parts of arguments are pinned, since a change orphans stored values.
    #[test]
    fn golden_escaped_arguments() {
        let e = |bytes: Vec<u8>| escape(&bytes);
        assert_eq!(e(encode_args(&7u64).unwrap()), "%07");
        assert_eq!(e(encode_args(&300u64).unwrap()), "%AC%02");
        assert_eq!(e(encode_args("abc").unwrap()), "%03abc");
        assert_eq!(e(encode_args(&(1u8, "a b%")).unwrap()), "%01%04a%20b%25");
        assert_eq!(e(encode_args(&()).unwrap()), "");
        assert_eq!(
            hash(&encode_args("abc").unwrap()),
            "44ba8821161c91a7b3855dbbde12f44799c21a77"
        );
    }

    /// The inverse of `escape`: its existence is the proof that escaping is injective.
    fn unescape(s: &str) -> Vec<u8> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_is_injective(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let escaped = escape(&bytes);
            proptest::prop_assert!(escaped.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            proptest::prop_assert_eq!(unescape(&escaped), bytes);
        }
    }

    #[test]
    fn templates() {
        let t = Template::parse("item:{id}:{lang}").unwrap();
        let item = Item {
            id: 7,
            lang: "en us:x".into(),
            draft: None,
        };
        assert_eq!(t.render(&item).unwrap(), "item:7:en%20us%3Ax");
        let t = Template::parse("{0}-{1}").unwrap();
        assert_eq!(t.render(&(1, "b")).unwrap(), "1-b");
        assert_eq!(
            Template::parse("user:{0}").unwrap().render(&42u8).unwrap(),
            "user:42"
        );
        assert_eq!(
            Template::parse("{{x}}{draft}")
                .unwrap()
                .render(&item)
                .unwrap(),
            "{x}"
        );
        assert!(Template::parse("a{").is_err());
        assert!(Template::parse("a}").is_err());
        assert!(Template::parse("a{}").is_err());
        assert!(Template::parse("a{b c}").is_err());
        assert!(Template::parse("").is_err());
        let missing = Template::parse("{nope}")
            .unwrap()
            .render(&item)
            .unwrap_err();
        assert!(
            missing.contains("nope") && missing.contains("id, lang, draft"),
            "{missing}"
        );
        assert!(Template::parse("{0}").unwrap().render(&vec![1]).is_err());
    }
}
