//! The text Python's Redis libraries write: redis-py's encoding ([`PythonText`]) and
//! `json.dumps(x, sort_keys=True)` ([`PythonJson`], crate feature `json`).
//!
//! Python services find hash fields and set members by their exact bytes, so a Rust service
//! sharing their data must write the same text: `2.0` and not `2`, `1e+16` and not
//! `10000000000000000`, `"\u00e9"` and not `"é"`. These codecs write it; the
//! [compatibility layouts](crate::Layout) use them for fields and members, and they can be
//! chosen for values with the builder's `codec(..)`. The exact bytes are specified in
//! `docs/python-formats.md`.
//!
//! Floats follow Python's `repr` ([`float_repr`]): the shortest decimal that reads back as
//! the same number, in positional form from `1e-4` up to (not including) `1e16`, with `.0`
//! on whole numbers, and in exponent form otherwise (`1e-05`, `1.5e+300`: a sign and at least
//! two exponent digits).
//!
//! ```
//! use redis_caches::codec::python::float_repr;
//! assert_eq!(float_repr(2.0), "2.0");
//! assert_eq!(float_repr(1e16), "1e+16");
//! assert_eq!(float_repr(0.00001), "1e-05");
//! assert_eq!(float_repr(f64::NEG_INFINITY), "-inf");
//! ```
#![cfg_attr(
    not(feature = "json"),
    doc = "[`PythonJson`]: https://docs.rs/redis-caches/latest/redis_caches/codec/struct.PythonJson.html"
)]

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "json")]
use super::CodecErrorKind;
use super::{Codec, CodecError, TypeTag};

/// Python's `repr(x)` of a float: `2.0`, `0.1`, `1e+16`, `1e-05`, `-0.0`, `inf`, `-inf`,
/// `nan`. See the [module docs](self).
///
/// ```
/// use redis_caches::codec::python::float_repr;
/// assert_eq!(float_repr(1e15), "1000000000000000.0");
/// assert_eq!(float_repr(1.2345678901234568e17), "1.2345678901234568e+17");
/// assert_eq!(float_repr(0.0001), "0.0001");
/// ```
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    repr_from_exp(&shortest_exp(
        x,
        |x| format!("{x:e}"),
        |x, p| format!("{x:.p$e}"),
    ))
}

/// [`float_repr`] of an `f32`, with the `f32`'s own shortest digits (`0.1`, not the `f64`
/// widening `0.10000000149011612`): what Python writes for the number the `f32` stands for.
///
/// ```
/// use redis_caches::codec::python::float_repr_f32;
/// assert_eq!(float_repr_f32(0.1), "0.1");
/// assert_eq!(float_repr_f32(3e20), "3e+20");
/// ```
pub fn float_repr_f32(x: f32) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    repr_from_exp(&shortest_exp(
        x,
        |x| format!("{x:e}"),
        |x, p| format!("{x:.p$e}"),
    ))
}

/// The shortest digits that read back as `x`, in exponent form, chosen as Python chooses
/// them. Rust's shortest form (`{:e}`) has as few digits as Python's, but when two strings
/// of that length are equally close to `x` it takes the upper one, where Python rounds half
/// to even (`1658206780088562.2`, not `.3`); Rust's fixed-precision form rounds the exact
/// value half to even, so it is used whenever it reads back as `x` too.
fn shortest_exp<F: Copy + PartialEq + std::str::FromStr>(
    x: F,
    shortest: impl Fn(F) -> String,
    with_precision: impl Fn(F, usize) -> String,
) -> String {
    let short = shortest(x);
    let Some((mantissa, _)) = short.split_once('e') else {
        return short; // inf
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let even = with_precision(x, digits.saturating_sub(1));
    if even.parse::<F>().ok() == Some(x) {
        even
    } else {
        short
    }
}

/// Python's repr from Rust's shortest exponent form (`-1.25e-7`, `inf`).
fn repr_from_exp(exp_form: &str) -> String {
    let (negative, body) = match exp_form.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exp_form),
    };
    let sign = if negative { "-" } else { "" };
    let Some((mantissa, exp)) = body.split_once('e') else {
        // `inf`
        return format!("{sign}{body}");
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python (`float_repr_style = 'short'`): positional when -4 <= exp < 16.
    if (-4..16).contains(&exp) {
        let mut out = String::from(sign);
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
        out
    } else {
        // A sign always, and at least two digits: `e+16`, `e-05`, `e+308`.
        format!("{sign}{mantissa}e{exp:+03}")
    }
}

/// redis-py's encoding of a value, which `caches` (with `serialize=False`), `region-cache`
/// (for fields) and every library built on redis-py write: strings as UTF-8, bytes as they
/// are, integers in decimal, floats as Python's [`float_repr`] (`2.0`, `1e+16`, `inf`).
///
/// Like [`Raw`](super::Raw) otherwise (newtypes as what they wrap; structs, options,
/// sequences other than bytes refused), with two differences that match redis-py: floats in
/// Python's text, and `bool` refused (redis-py raises `DataError` on `True`). Writing `NaN` is
/// refused (it is not a Redis number; Python's `nan` reads back as `NaN`). Reading a value
/// accepts what Python writes and Rust's float text alike (`2`, `2.0`, `1e+16`); reading a
/// hash field or set member accepts a number only in the text Python writes for it, so that
/// two fields never read as the same key.
///
/// ```
/// use redis_caches::codec::{Codec, PythonText, TypeTag};
/// let tag = TypeTag::of::<f64>();
/// assert_eq!(PythonText.encode(&2.0, &tag)?, b"2.0");
/// assert_eq!(PythonText.encode(&1e16, &tag)?, b"1e+16");
/// assert_eq!(PythonText.decode::<f64>(b"1e-05", &tag)?, 0.00001);
/// assert_eq!(PythonText.encode("é", &TypeTag::of::<String>())?, "é".as_bytes());
/// assert!(PythonText.encode(&true, &TypeTag::of::<bool>()).is_err());
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PythonText;

impl Codec for PythonText {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        super::raw::encode_python(value, tag)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        super::Raw.decode(bytes, tag)
    }

    /// redis-py text, as values: Python writes fields and members as it writes values.
    const FIELDS_AS_VALUES: bool = true;

    /// As values, but numbers only in the text Python writes for them (`42`, `2.0`): `+42`,
    /// `042` or `2` would decode to a key whose own encoding is another field.
    fn decode_field<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &TypeTag,
    ) -> Result<T, CodecError> {
        super::raw::decode_python_field(bytes)
    }
}

/// Python's `json.dumps(x, sort_keys=True)` (crate feature `json`): what `pottery` writes for
/// every field, member, list item and value.
///
/// Byte for byte as Python: separators `", "` and `": "`; map keys sorted; every character
/// outside printable ASCII escaped as `\uXXXX` in lowercase hex (surrogate pairs above
/// U+FFFF), `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`; floats as [`float_repr`]. Refused when
/// writing: `NaN` and infinities (Python writes `NaN` and `Infinity`, which are not JSON),
/// and, as by [`Json`](super::Json), an `Option` whose content is written as `null`. Reading
/// is serde_json's: everything Python writes except `NaN`, `Infinity` and integers beyond 64
/// bits, which are decode errors.
///
/// Two limits: map keys are sorted as text, so a map with integer keys of different lengths
/// (`{9: .., 10: ..}`, which Python sorts as numbers) is ordered differently; an `f32` is
/// written as the `f64` it widens to.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use serde_json::json;
/// use redis_caches::codec::{Codec, PythonJson, TypeTag};
/// let tag = TypeTag::of::<serde_json::Value>();
/// let value = json!({"b": 1, "a": [2.0, "é"]});
/// assert_eq!(PythonJson.encode(&value, &tag).unwrap(), br#"{"a": [2.0, "\u00e9"], "b": 1}"#);
/// assert_eq!(PythonJson.encode("x", &TypeTag::of::<String>()).unwrap(), br#""x""#);
/// # }
/// ```
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PythonJson;

#[cfg(feature = "json")]
impl Codec for PythonJson {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        super::json::check(value)?;
        let value = serde_json::to_value(value).map_err(|e| {
            CodecError::with_kind(
                CodecErrorKind::Unsupported,
                format!("json cannot encode this `{}` value", tag.name()),
            )
            .with_source(e)
        })?;
        let mut out = String::new();
        write_json(&value, &mut out);
        Ok(out.into_bytes())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        refuse_big_integers(bytes, tag)?;
        super::Json.decode(bytes, tag)
    }

    /// Python's JSON, as values: pottery writes fields and members as it writes values.
    const FIELDS_AS_VALUES: bool = true;
}

/// Refuses JSON text holding an integer beyond 64 bits, which Python writes for its big
/// integers and serde_json would read as an approximate float (into a `serde_json::Value` or
/// an `f64`).
#[cfg(feature = "json")]
fn refuse_big_integers(bytes: &[u8], tag: &TypeTag) -> Result<(), CodecError> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &bytes[start..i];
                let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                let fits = || {
                    let text = std::str::from_utf8(token).unwrap_or("");
                    text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
                };
                if integer && !fits() {
                    return Err(CodecError::with_kind(
                        CodecErrorKind::Invalid,
                        format!(
                            "the json for a `{}` holds an integer beyond 64 bits",
                            tag.name()
                        ),
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Writes `value` as `json.dumps(value, sort_keys=True)` does.
#[cfg(feature = "json")]
fn write_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_json_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            // Code point order, which is UTF-8 byte order.
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_str(k, out);
                out.push_str(": ");
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Python's `ensure_ascii` writes it.
#[cfg(feature = "json")]
fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python 3.11's `repr` of each (checked against Python itself, many more values, in
    /// `tests/python_interop.rs::python_float_text_matches_python_repr`).
    #[test]
    fn python_text_fields_decode_only_the_text_python_writes() {
        let int = TypeTag::of::<i64>();
        assert_eq!(PythonText.decode_field::<i64>(b"42", &int).unwrap(), 42);
        assert_eq!(PythonText.decode_field::<i64>(b"-7", &int).unwrap(), -7);
        for text in [&b"+42"[..], b"042", b" 42", b"42.0"] {
            assert!(
                PythonText.decode_field::<i64>(text, &int).is_err(),
                "{text:?}"
            );
            // Values stay lenient: they are never looked up by their text.
            assert!(PythonText.decode::<i64>(b"042", &int).is_ok());
        }
        let float = TypeTag::of::<f64>();
        assert_eq!(PythonText.decode_field::<f64>(b"2.0", &float).unwrap(), 2.0);
        assert_eq!(
            PythonText.decode_field::<f64>(b"1e+16", &float).unwrap(),
            1e16
        );
        for text in [&b"2"[..], b"2.00", b"1e16", b"10000000000000000.0"] {
            assert!(
                PythonText.decode_field::<f64>(text, &float).is_err(),
                "{text:?}"
            );
        }
        assert_eq!(PythonText.decode::<f64>(b"2", &float).unwrap(), 2.0);
        let single = TypeTag::of::<f32>();
        assert_eq!(
            PythonText.decode_field::<f32>(b"0.1", &single).unwrap(),
            0.1
        );
        assert!(
            PythonText
                .decode_field::<f32>(b"0.10000000149011612", &single)
                .is_err()
        );
        let s = TypeTag::of::<String>();
        assert_eq!(
            PythonText.decode_field::<String>(b"042", &s).unwrap(),
            "042"
        );
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (2.5e-7, "2.5e-07"),
            (100.0, "100.0"),
            (12345.678, "12345.678"),
            (-1e100, "-1e+100"),
            // Two shortest candidates, equally close: Python rounds half to even.
            (f64::from_bits(0x4317_9085_685d_83c9), "1658206780088562.2"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, expected) in cases {
            assert_eq!(float_repr(*x), *expected, "{x:e}");
        }
        assert_eq!(float_repr_f32(0.1), "0.1");
        assert_eq!(float_repr_f32(-2.0), "-2.0");
        assert_eq!(float_repr_f32(1e-7), "1e-07");
    }

    #[test]
    fn text_is_redis_py_text() {
        let tag = TypeTag::of::<f64>();
        assert_eq!(PythonText.encode(&2.0, &tag).unwrap(), b"2.0");
        assert_eq!(PythonText.encode(&2.5f32, &tag).unwrap(), b"2.5");
        assert_eq!(PythonText.encode(&-7i64, &tag).unwrap(), b"-7");
        assert_eq!(
            PythonText.encode(&u128::MAX, &tag).unwrap(),
            u128::MAX.to_string().as_bytes()
        );
        assert_eq!(PythonText.encode(&f64::INFINITY, &tag).unwrap(), b"inf");
        assert!(PythonText.encode(&f64::NAN, &tag).is_err());
        assert!(PythonText.encode(&false, &tag).is_err());
        assert!(PythonText.encode(&Some(1), &tag).is_err());
        assert_eq!(PythonText.encode_field(&1e16, &tag).unwrap(), b"1e+16");
        for text in ["2.0", "2", "1e+16", "inf", "-0.0", "1e-05"] {
            let x: f64 = PythonText.decode(text.as_bytes(), &tag).unwrap();
            assert_eq!(float_repr(x), float_repr(text.parse().unwrap()));
        }
        assert_eq!(PythonText.decode_field::<f64>(b"2.0", &tag).unwrap(), 2.0);
        // Python can write nan; reading it is not lossy, writing it is refused.
        assert!(PythonText.decode::<f64>(b"nan", &tag).unwrap().is_nan());
        assert!(PythonText.decode::<i64>(b"2.0", &tag).is_err());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_is_python_json_dumps_with_sorted_keys() {
        use serde_json::json;
        let tag = TypeTag::of::<serde_json::Value>();
        let enc = |v: serde_json::Value| String::from_utf8(PythonJson.encode(&v, &tag).unwrap());
        // Each expected text is what Python 3.11's json.dumps(x, sort_keys=True) writes.
        let cases = [
            (json!("a"), r#""a""#),
            (json!("é"), r#""\u00e9""#),
            (json!("😀"), r#""\ud83d\ude00""#),
            (json!("\u{7f}"), r#""\u007f""#),
            (json!("\u{1}\n\"\\/"), r#""\u0001\n\"\\/""#),
            (json!("\u{8}\u{c}\r\t"), r#""\b\f\r\t""#),
            (json!(2), "2"),
            (json!(-2), "-2"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(2.0), "2.0"),
            (json!(1e16), "1e+16"),
            (json!(1e-5), "1e-05"),
            (json!(0.1), "0.1"),
            (json!(-0.0), "-0.0"),
            (json!(true), "true"),
            (json!(null), "null"),
            (json!([1, "a"]), r#"[1, "a"]"#),
            (json!([]), "[]"),
            (json!({}), "{}"),
            (json!({"b": 1, "a": [2]}), r#"{"a": [2], "b": 1}"#),
            (
                json!({"é": 1, "z": 2, "A": 3}),
                r#"{"A": 3, "z": 2, "\u00e9": 1}"#,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(enc(value.clone()).unwrap(), expected, "{value}");
        }
        assert!(PythonJson.encode(&f64::NAN, &tag).is_err());
        assert!(PythonJson.encode(&f64::INFINITY, &tag).is_err());
        assert!(PythonJson.encode(&Some(()), &tag).is_err());
        let s = TypeTag::of::<String>();
        assert_eq!(PythonJson.encode_field("é", &s).unwrap(), br#""\u00e9""#);
        assert_eq!(
            PythonJson
                .decode_field::<String>(br#""\u00e9""#, &s)
                .unwrap(),
            "é"
        );
        assert!(PythonJson.decode::<f64>(b"NaN", &tag).is_err());
        assert!(
            PythonJson
                .decode::<i64>(b"1180591620717411303424", &tag)
                .is_err()
        );
        // Not even as an approximate float, wherever it is; digits inside strings are text.
        let big = br#"{"a": [1, -1180591620717411303424]}"#;
        assert!(PythonJson.decode::<serde_json::Value>(big, &tag).is_err());
        assert!(
            PythonJson
                .decode::<f64>(b"1180591620717411303424", &tag)
                .is_err()
        );
        // Text cut short (inside a string, after a backslash) is a decode error, not a panic.
        for cut in [&b"\"abc"[..], b"\"ab\\", b"[1, \"a"] {
            assert!(PythonJson.decode::<serde_json::Value>(cut, &tag).is_err());
        }
        let fine = br#"{"a\"1180591620717411303424": [18446744073709551615, -9223372036854775808, 1e300, 2.5]}"#;
        assert!(PythonJson.decode::<serde_json::Value>(fine, &tag).is_ok());
        let pairs = TypeTag::of::<Vec<(i32, String)>>();
        assert_eq!(
            PythonJson
                .encode(&vec![(1, "x".to_string())], &pairs)
                .unwrap(),
            br#"[[1, "x"]]"#
        );
    }
}
