//! How a memoized function's arguments become the last parts of its keys.
//!
//! - [`escape`]: postcard bytes of the arguments, printable ASCII kept, every other byte and
//!   `%` written `%XX`. Injective (distinct arguments give distinct keys) and stable across
//!   processes, builds and platforms: postcard's format is fixed and documented, unlike
//!   `std::hash::Hash`.
//! - [`hash`]: SHA-1 of the same bytes, 40 hex digits, for long arguments.
//! - [`Template`]: `"item:{id}"` filled from the fields of a serde struct or tuple,
//!   injective too: values are escaped so that they cannot run into the text between
//!   placeholders, and `None` is written `%-`, which no value's escaping produces.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The first bytes of every memoized result kept as a field of a region's hash (by a memo
/// placed in a region, and by the deprecated `Memoized`): the postcard codec's header for a
/// type tagged `RegionMemo`. No entry key field starts with them: postcard-encoded keys carry
/// the header of `String`, raw and JSON keys are UTF-8, which these bytes are not.
pub(crate) fn field_header() -> Vec<u8> {
    use crate::codec::{Codec, Postcard, TypeTag};
    // Encoding a unit gives exactly the header.
    Postcard
        .encode(&(), &TypeTag::internal("RegionMemo"))
        .unwrap_or_default()
}

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
///
/// Rendering is injective (distinct values of the fields it names give distinct keys): two
/// placeholders must have text between them, the text may not contain `%` (the escape
/// character), and a value has `%` and the first character of every text that follows a
/// placeholder escaped, so where a value ends is never in doubt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
    /// The first character of each literal that follows a placeholder: escaped in values.
    stops: Vec<char>,
}

/// How a `None` (at any level) is written: `%` followed by a character that is not a hex
/// digit, which escaping never produces, so that `None` and `Some("")` differ.
const NONE: &str = "%-";

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
                    } else if matches!(segments.last(), Some(Segment::Field(_))) {
                        return Err(format!(
                            "the key template {text:?} has two placeholders with no text \
                             between them: their values could run together"
                        ));
                    }
                    segments.push(Segment::Field(name));
                }
                '}' => return Err(format!("the key template {text:?} has a lone '}}'")),
                '%' => {
                    return Err(format!(
                        "the key template {text:?} has a '%', which is reserved for escapes"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if segments.is_empty() {
            return Err("the key template is empty".into());
        }
        let stops = segments
            .windows(2)
            .filter_map(|pair| match pair {
                [Segment::Field(_), Segment::Literal(text)] => text.chars().next(),
                _ => None,
            })
            .collect();
        Ok(Template { segments, stops })
    }

    /// Fills the template from `args`, a struct (by field name), a tuple (by index) or a
    /// single scalar (`{0}`). Values are written with `%`, `:`, `{`, `}`, whitespace,
    /// control characters and the template's stops escaped as `%XX`, so a value cannot
    /// forge a separator; `None` is [`NONE`].
    pub(crate) fn render<T: Serialize + ?Sized>(&self, args: &T) -> Result<String, String> {
        let mut fields = Fields::default();
        args.serialize(FieldCollector {
            fields: &mut fields,
            optional: false,
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
                    match value {
                        None => out.push_str(NONE),
                        Some(value) => escape_value(value, &self.stops, &mut out),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn escape_value(value: &str, stops: &[char], out: &mut String) {
    for c in value.chars() {
        if matches!(c, '%' | ':' | '{' | '}')
            || c.is_whitespace()
            || c.is_control()
            || stops.contains(&c)
        {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Field name -> its value as text, `None` for a `None`.
#[derive(Default)]
struct Fields(Vec<(String, Option<String>)>);

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
    /// Inside a `Some`: a `None` here would be written as the outer `None` is.
    optional: bool,
}

/// Renders one scalar to text (`None` for a `None`).
struct Scalar;

macro_rules! scalar_display {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Option<String>, TemplateError> {
            Ok(Some(v.to_string()))
        }
    )*};
}

impl ser::Serializer for Scalar {
    type Ok = Option<String>;
    type Error = TemplateError;
    type SerializeSeq = Impossible<Option<String>, TemplateError>;
    type SerializeTuple = Impossible<Option<String>, TemplateError>;
    type SerializeTupleStruct = Impossible<Option<String>, TemplateError>;
    type SerializeTupleVariant = Impossible<Option<String>, TemplateError>;
    type SerializeMap = Impossible<Option<String>, TemplateError>;
    type SerializeStruct = Impossible<Option<String>, TemplateError>;
    type SerializeStructVariant = Impossible<Option<String>, TemplateError>;

    scalar_display!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str
    );

    fn serialize_bytes(self, _: &[u8]) -> Result<Option<String>, TemplateError> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<Option<String>, TemplateError> {
        Ok(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Option<String>, TemplateError> {
        // `Some(None)` would be written as `None` is.
        v.serialize(self)?
            .map(Some)
            .ok_or_else(|| unsupported("an option of an option"))
    }
    fn serialize_unit(self) -> Result<Option<String>, TemplateError> {
        Ok(Some(String::new()))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Option<String>, TemplateError> {
        Ok(Some(name.to_string()))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Option<String>, TemplateError> {
        Ok(Some(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Option<String>, TemplateError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Option<String>, TemplateError> {
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
        if self.optional {
            return Err(unsupported("an option of an option"));
        }
        self.fields.0.push(("0".into(), None));
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), TemplateError> {
        if self.optional {
            return Err(unsupported("an option of an option"));
        }
        v.serialize(FieldCollector {
            fields: self.fields,
            optional: true,
        })
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
        self.fields.0.push(("0".into(), Some(variant.to_string())));
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
            "{x}%-",
            "None has a rendering of its own"
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

    #[test]
    fn templates_that_could_render_two_arguments_alike_are_refused() {
        for ambiguous in ["{a}{b}", "x{0}{1}y", "{a}%{b}", "100%{a}"] {
            assert!(Template::parse(ambiguous).is_err(), "{ambiguous}");
        }
        let t = Template::parse("{0}").unwrap();
        let none: Option<&str> = None;
        assert_ne!(t.render(&none).unwrap(), t.render(&Some("")).unwrap());
        assert_eq!(t.render(&Some("")).unwrap(), "");
        // `Some(None)` cannot be told from `None`: refused, not confused.
        assert!(t.render(&Some(none)).is_err());
        assert!(t.render(&(Some(none),)).is_err());
        // A value holding the text that follows its placeholder has it escaped.
        let t = Template::parse("{0}-{1}").unwrap();
        assert_eq!(t.render(&("a-b", "c")).unwrap(), "a%2Db-c");
        assert_eq!(t.render(&("a", "b-c")).unwrap(), "a-b%2Dc");
        assert_eq!(t.render(&(1, "b")).unwrap(), "1-b", "unchanged otherwise");
    }

    /// A template from generated pieces: text (never empty between two placeholders) and
    /// placeholders naming the fields of [`Args`].
    fn template() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // Small alphabets shared with the values, so that values often hold the text around
        // them and would run into it unescaped.
        let text = "[a1:-]{0,2}";
        let field = proptest::sample::select(vec!["{0}", "{1}", "{2}", "{3}"]);
        (
            text,
            proptest::collection::vec((field, "[a1:-]{1,2}"), 1..4),
            text,
        )
            .prop_map(|(head, pieces, tail)| {
                let mut t = head;
                let n = pieces.len();
                for (i, (field, sep)) in pieces.into_iter().enumerate() {
                    t.push_str(field);
                    if i + 1 < n {
                        t.push_str(&sep);
                    }
                }
                t.push_str(&tail);
                t
            })
    }

    /// Arguments with every kind of value a template writes: optional strings, strings, signed
    /// integers and optional booleans.
    type Args = (Option<String>, String, i64, Option<bool>);

    /// Every combination of a small universe of values built from the templates' alphabet,
    /// so that values often hold the text around their placeholder, and `None` meets
    /// `Some("")`, `"%-"` and `"-"`.
    fn all_args() -> Vec<Args> {
        let strings = ["", "a", "1", "-", ":", "a-", "-1", "1a", "%", "%-", "a a"];
        let mut out = Vec::new();
        for s0 in std::iter::once(None).chain(strings.iter().map(|s| Some(s.to_string()))) {
            for s1 in strings {
                for n in [-11i64, -1, 0, 1, 11] {
                    for b in [None, Some(false), Some(true)] {
                        out.push((s0.clone(), s1.to_string(), n, b));
                    }
                }
            }
        }
        out
    }

    /// The fields of `a` that `template` names, in order.
    fn named(template: &str, a: &Args) -> Vec<String> {
        let mut out = Vec::new();
        for (i, field) in ["{0}", "{1}", "{2}", "{3}"].iter().enumerate() {
            if template.contains(field) {
                out.push(match i {
                    0 => format!("{:?}", a.0),
                    1 => format!("{:?}", a.1),
                    2 => format!("{:?}", a.2),
                    _ => format!("{:?}", a.3),
                });
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn distinct_arguments_never_share_a_key_whatever_the_template(text in template()) {
            let t = Template::parse(&text).unwrap();
            let mut seen: std::collections::HashMap<String, (Vec<String>, Args)> =
                std::collections::HashMap::new();
            for a in all_args() {
                let key = t.render(&a).unwrap();
                let fields = named(&text, &a);
                if let Some((other, b)) = seen.get(&key) {
                    proptest::prop_assert_eq!(
                        other, &fields, "{} renders {:?} for {:?} and {:?}", text, key, a, b
                    );
                } else {
                    seen.insert(key, (fields, a));
                }
            }
        }
    }
}
