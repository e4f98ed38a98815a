//! The codecs' stored bytes (golden), their errors and kinds, and the field rule.

// Some types here exist only to be refused, never read.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::error::Error as _;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

use super::shape_tests::User;
use super::*;

fn tag<T: DeserializeOwned>() -> TypeTag {
    TypeTag::of::<T>()
}

fn pc<T: Serialize + DeserializeOwned>(v: &T) -> Vec<u8> {
    Postcard.encode(v, &tag::<T>()).unwrap()
}

fn kind<T>(r: Result<T, CodecError>) -> CodecErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Marker;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Color {
    Red,
    Green,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct UserId(u64);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Name(String);

/// Golden tests: these bytes are what Redis holds; a change orphans users' data.
#[test]
fn golden_postcard_bytes() {
    let header = |t: TypeTag| {
        let mut h = vec![0xCA, 0x02];
        h.extend_from_slice(&t.fingerprint().to_be_bytes());
        h
    };
    assert_eq!(header(tag::<u32>()), [0xCA, 0x02, 0xBF, 0x0E, 0xA7, 0xBD]);
    assert_eq!(pc(&7u32), [0xCA, 0x02, 0xBF, 0x0E, 0xA7, 0xBD, 7]);
    assert_eq!(
        pc(&"hi".to_string()),
        [0xCA, 0x02, 0x05, 0xEC, 0x99, 0x3A, 2, b'h', b'i']
    );
    let user = User {
        id: 300,
        name: "a".into(),
    };
    assert_eq!(
        pc(&user),
        [0xCA, 0x02, 0x12, 0x5E, 0x0A, 0x89, 0xAC, 0x02, 1, b'a']
    );
    assert_eq!(pc(&()), header(tag::<()>()));
    assert_eq!(pc(&Marker), header(tag::<Marker>()));
    let mut some_unit = header(tag::<Option<()>>());
    some_unit.push(1);
    assert_eq!(pc(&Some(())), some_unit);
    let mut green = header(tag::<Color>());
    green.push(1);
    assert_eq!(pc(&Color::Green), green);
    let mut neg_zero = header(tag::<f64>());
    neg_zero.extend_from_slice(&(-0.0f64).to_le_bytes());
    assert_eq!(pc(&-0.0f64), neg_zero);
    let mut max = header(tag::<u128>());
    max.extend_from_slice(&[0xFF; 18]);
    max.push(0x03);
    assert_eq!(pc(&u128::MAX), max);
}

#[test]
fn postcard_round_trips_and_borrowed_forms_match() {
    let string = tag::<String>();
    assert_eq!(
        Postcard.encode("abc", &string).unwrap(),
        Postcard.encode(&"abc".to_string(), &string).unwrap()
    );
    let user = User {
        id: 1,
        name: "x".into(),
    };
    assert_eq!(
        Postcard.decode::<User>(&pc(&user), &tag::<User>()).unwrap(),
        user
    );
    assert_eq!(Postcard.decode::<()>(&pc(&()), &tag::<()>()).unwrap(), ());
    assert_eq!(
        Postcard
            .decode::<Marker>(&pc(&Marker), &tag::<Marker>())
            .unwrap(),
        Marker
    );
    assert_eq!(
        Postcard
            .decode::<Option<()>>(&pc(&Some(())), &tag::<Option<()>>())
            .unwrap(),
        Some(())
    );
    let nested: Option<Option<u8>> = Some(None);
    assert_eq!(
        Postcard
            .decode::<Option<Option<u8>>>(&pc(&nested), &tag::<Option<Option<u8>>>())
            .unwrap(),
        nested
    );
}

#[test]
fn postcard_errors_have_kinds() {
    let t = tag::<User>();
    let good = pc(&User {
        id: 1,
        name: "xyz".into(),
    });
    for foreign in [
        &b""[..],
        b"h",
        b"hello",
        b"\xCB\x02\0\0\0\0",
        b"\xCA\x00\0\0\0\0",
    ] {
        let e = Postcard.decode::<User>(foreign, &t).unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Foreign, "{foreign:?}");
        assert!(e.to_string().contains("not written by"), "{e}");
    }
    for short in 2..6 {
        let e = Postcard.decode::<User>(&good[..short], &t).unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Corrupt, "{short}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
    let e = Postcard.decode::<User>(&pc(&5u64), &t).unwrap_err();
    assert_eq!(
        e.kind(),
        CodecErrorKind::OtherShape {
            expected: t.fingerprint(),
            found: tag::<u64>().fingerprint()
        }
    );
    assert!(e.is_stale());
    assert_eq!(
        e.to_string(),
        "written for another type or shape (fingerprint 0x46759e1f), read as `User` (0x125e0a89)"
    );
    let mut newest = good.clone();
    newest[1] = 255;
    assert_eq!(
        kind(Postcard.decode::<User>(&newest, &t)),
        CodecErrorKind::NewerFormat { version: 255 }
    );
    let mut newer = good.clone();
    newer[1] = 3;
    let e = Postcard.decode::<User>(&newer, &t).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::NewerFormat { version: 3 });
    assert!(e.to_string().contains("v3"), "{e}");
    // Two bytes that look like a newer header are damage, not a newer value (a cache would
    // read a newer value as a miss and hide the damage).
    assert_eq!(
        kind(Postcard.decode::<User>(&newer[..2], &t)),
        CodecErrorKind::Corrupt
    );
    // A whole header of a newer format, with no body, is still a newer value.
    assert_eq!(
        kind(Postcard.decode::<User>(&newer[..super::postcard_codec::HEADER_LEN], &t)),
        CodecErrorKind::NewerFormat { version: 3 }
    );
    let mut trailing = good.clone();
    trailing.push(0);
    let e = Postcard.decode::<User>(&trailing, &t).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Corrupt);
    assert_eq!(e.to_string(), "1 trailing bytes after the `User` value");
    let mut truncated = good.clone();
    truncated.pop();
    let e = Postcard.decode::<User>(&truncated, &t).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Corrupt);
    assert!(e.source().is_some());
    // An invalid body behind a valid header.
    let mut bad_bool = pc(&true);
    bad_bool[6] = 2;
    assert_eq!(
        kind(Postcard.decode::<bool>(&bad_bool, &tag::<bool>())),
        CodecErrorKind::Corrupt
    );
}

/// Format v1 (redis-caches 0.1) bytes, as its golden tests pinned them, are never values.
#[test]
fn format_v1_values_are_reported_not_read() {
    let v1_u32 = [0xCA, 0x01, 0xB1, 0x74, 0xF3, 0x05, 7];
    let v1_string = [0xCA, 0x01, 0x58, 0x48, 0x4F, 0x60, 2, b'h', b'i'];
    let v1_user = [0xCA, 0x01, 0x12, 0x3E, 0xA6, 0xE0, 0xAC, 0x02, 1, b'a'];
    let e = Postcard.decode::<u32>(&v1_u32, &tag::<u32>()).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::OldFormat { version: 1 });
    assert!(e.is_stale());
    assert_eq!(
        e.to_string(),
        "written by stored-data format v1 (redis-caches 0.1), which this release does not read"
    );
    assert_eq!(
        kind(Postcard.decode::<String>(&v1_string, &tag::<String>())),
        CodecErrorKind::OldFormat { version: 1 }
    );
    assert_eq!(
        kind(Postcard.decode::<User>(&v1_user, &tag::<User>())),
        CodecErrorKind::OldFormat { version: 1 }
    );
    // Fields and members written by v1 carried the same header.
    for codec_field in [
        Postcard.decode_field::<String>(&v1_string, &tag::<String>()),
        Raw.decode_field::<String>(&v1_string, &tag::<String>()),
    ] {
        assert_eq!(kind(codec_field), CodecErrorKind::OldFormat { version: 1 });
    }
    assert_eq!(
        kind(Postcard.decode_field::<u32>(&v1_u32, &tag::<u32>())),
        CodecErrorKind::OldFormat { version: 1 }
    );
    assert_eq!(
        kind(Postcard.decode_field::<User>(&v1_user, &tag::<User>())),
        CodecErrorKind::OldFormat { version: 1 }
    );
}

/// A type that reads `u32`s but accepts only 7: its shape cannot be traced.
#[derive(Debug, PartialEq, Serialize)]
struct Seven(u32);

impl<'de> Deserialize<'de> for Seven {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u32::deserialize(d)? {
            7 => Ok(Seven(7)),
            _ => Err(serde::de::Error::custom("not 7")),
        }
    }
}

#[test]
fn postcard_refuses_untraced_types_without_a_schema_version() {
    let t = tag::<Seven>();
    let e = Postcard.encode(&Seven(7), &t).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Unsupported);
    assert!(e.to_string().contains("schema version"), "{e}");
    assert!(e.to_string().contains("not 7"), "{e}");
    let versioned = t.with_schema_version(1);
    let bytes = Postcard.encode(&Seven(7), &versioned).unwrap();
    assert_eq!(&bytes[2..6], &versioned.fingerprint().to_be_bytes());
    assert_eq!(
        Postcard.decode::<Seven>(&bytes, &versioned).unwrap(),
        Seven(7)
    );
    assert_eq!(
        kind(Postcard.decode::<Seven>(&bytes, &t)),
        CodecErrorKind::Unsupported
    );
    // Raw needs no fingerprint.
    assert_eq!(
        Raw.decode::<Seven>(&Raw.encode(&Seven(7), &t).unwrap(), &t)
            .unwrap(),
        Seven(7)
    );
}

#[test]
fn schema_versions_separate_stored_values() {
    let v1 = tag::<u32>().with_schema_version(1);
    let v2 = tag::<u32>().with_schema_version(2);
    let bytes = Postcard.encode(&5u32, &v1).unwrap();
    assert_eq!(Postcard.decode::<u32>(&bytes, &v1).unwrap(), 5);
    let e = Postcard.decode::<u32>(&bytes, &v2).unwrap_err();
    assert!(e.is_stale(), "{e:?}");
    assert!(
        Postcard
            .decode::<u32>(&bytes, &tag::<u32>())
            .unwrap_err()
            .is_stale()
    );
}

#[test]
fn postcard_encode_errors_are_unsupported() {
    /// A `Serialize` that fails, as postcard reports a refusal.
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let e = Postcard.encode(&Fails, &tag::<u8>()).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Unsupported);
    assert!(e.source().is_some());
}

#[test]
fn golden_raw_bytes() {
    let t = tag::<u8>();
    let enc = |v: &dyn erased::Value| v.raw(&t);
    assert_eq!(enc(&42i64), b"42");
    assert_eq!(enc(&-7i8), b"-7");
    assert_eq!(enc(&i128::MIN), i128::MIN.to_string().as_bytes());
    assert_eq!(enc(&u128::MAX), u128::MAX.to_string().as_bytes());
    assert_eq!(enc(&u64::MAX), b"18446744073709551615");
    assert_eq!(enc(&1.5f64), b"1.5");
    assert_eq!(enc(&0.1f32), b"0.1");
    assert_eq!(enc(&-0.0f64), b"-0");
    assert_eq!(enc(&-0.0f32), b"-0");
    assert_eq!(enc(&f64::INFINITY), b"inf");
    assert_eq!(enc(&f32::NEG_INFINITY), b"-inf");
    assert_eq!(enc(&1e21f64), b"1000000000000000000000");
    assert_eq!(enc(&true), b"1");
    assert_eq!(enc(&false), b"0");
    assert_eq!(enc(&'é'), "é".as_bytes());
    assert_eq!(enc(&"é".to_string()), "é".as_bytes());
    assert_eq!(enc(&String::new()), b"");
    assert_eq!(enc(&vec![0u8, 255]), [0, 255]);
    assert_eq!(enc(&Vec::<u8>::new()), b"");
    assert_eq!(enc(&UserId(42)), b"42");
    assert_eq!(enc(&Bytes(vec![1, 2])), [1, 2]);
}

#[test]
fn raw_refuses_what_it_cannot_store() {
    let t = tag::<u8>();
    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, u8),
        Struct { a: u8 },
    }
    #[derive(Serialize)]
    struct TupleStruct(u8, u8);
    let refused: Vec<(&str, Result<Vec<u8>, CodecError>)> = vec![
        ("NaN", Raw.encode(&f64::NAN, &t)),
        ("f32 NaN", Raw.encode(&f32::NAN, &t)),
        ("Some", Raw.encode(&Some(1), &t)),
        ("None", Raw.encode(&None::<u8>, &t)),
        ("()", Raw.encode(&(), &t)),
        ("unit struct", Raw.encode(&Marker, &t)),
        ("unit variant", Raw.encode(&E::Unit, &t)),
        ("newtype variant", Raw.encode(&E::New(1), &t)),
        ("tuple variant", Raw.encode(&E::Tuple(1, 2), &t)),
        ("struct variant", Raw.encode(&E::Struct { a: 1 }, &t)),
        ("tuple", Raw.encode(&(1u8, 2u8), &t)),
        ("tuple struct", Raw.encode(&TupleStruct(1, 2), &t)),
        ("map", Raw.encode(&BTreeMap::from([(1u8, 2u8)]), &t)),
        (
            "struct",
            Raw.encode(
                &User {
                    id: 1,
                    name: "x".into(),
                },
                &t,
            ),
        ),
    ];
    for (what, r) in refused {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{what}");
    }
}

/// Sequences are bytes or nothing: every other element type is refused, never written as
/// garbage.
#[test]
fn raw_sequences_are_bytes_only() {
    let t = tag::<u8>();
    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, u8),
        Struct { a: u8 },
    }
    #[derive(Serialize)]
    struct TupleStruct(u8, u8);
    #[derive(Serialize)]
    struct Wrapped(u8);
    let refused: Vec<(&str, Result<Vec<u8>, CodecError>)> = vec![
        ("bool", Raw.encode(&vec![true], &t)),
        ("i8", Raw.encode(&vec![1i8], &t)),
        ("i16", Raw.encode(&vec![1i16], &t)),
        ("i32", Raw.encode(&vec![1i32], &t)),
        ("i64", Raw.encode(&vec![1i64, 2], &t)),
        ("i128", Raw.encode(&vec![1i128], &t)),
        ("u16", Raw.encode(&vec![1u16], &t)),
        ("u32", Raw.encode(&vec![1u32], &t)),
        ("u64", Raw.encode(&vec![1u64], &t)),
        ("u128", Raw.encode(&vec![1u128], &t)),
        ("f32", Raw.encode(&vec![1f32], &t)),
        ("f64", Raw.encode(&vec![1f64], &t)),
        ("char", Raw.encode(&vec!['a'], &t)),
        ("String", Raw.encode(&vec!["a".to_string()], &t)),
        ("bytes", Raw.encode(&vec![Bytes(vec![1])], &t)),
        ("None", Raw.encode(&vec![None::<u8>], &t)),
        ("Some", Raw.encode(&vec![Some(1u8)], &t)),
        ("unit", Raw.encode(&vec![()], &t)),
        ("unit struct", Raw.encode(&vec![Marker], &t)),
        ("unit variant", Raw.encode(&vec![E::Unit], &t)),
        ("newtype struct", Raw.encode(&vec![Wrapped(1)], &t)),
        ("newtype variant", Raw.encode(&vec![E::New(1)], &t)),
        ("seq", Raw.encode(&vec![vec![1u8]], &t)),
        ("tuple", Raw.encode(&vec![(1u8, 2u8)], &t)),
        ("tuple struct", Raw.encode(&vec![TupleStruct(1, 2)], &t)),
        ("tuple variant", Raw.encode(&vec![E::Tuple(1, 2)], &t)),
        ("map", Raw.encode(&vec![BTreeMap::from([(1u8, 2u8)])], &t)),
        (
            "struct",
            Raw.encode(
                &vec![User {
                    id: 1,
                    name: "x".into(),
                }],
                &t,
            ),
        ),
        ("struct variant", Raw.encode(&vec![E::Struct { a: 1 }], &t)),
    ];
    for (what, r) in refused {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{what}");
        assert!(e.to_string().contains("other than bytes"), "{what}: {e}");
    }
}

#[test]
fn raw_decoding() {
    let t = tag::<u8>();
    assert_eq!(Raw.decode::<i64>(b"-42", &t).unwrap(), -42);
    assert_eq!(Raw.decode::<i8>(b"-128", &t).unwrap(), -128);
    assert_eq!(Raw.decode::<i16>(b"-300", &t).unwrap(), -300);
    assert_eq!(Raw.decode::<i32>(b"70000", &t).unwrap(), 70000);
    assert_eq!(Raw.decode::<i128>(b"-1", &t).unwrap(), -1);
    assert_eq!(Raw.decode::<u8>(b"255", &t).unwrap(), 255);
    assert_eq!(Raw.decode::<u32>(b"7", &t).unwrap(), 7);
    assert_eq!(Raw.decode::<u64>(b"7", &t).unwrap(), 7);
    assert_eq!(Raw.decode::<u128>(b"7", &t).unwrap(), 7);
    assert_eq!(Raw.decode::<f64>(b"2.5", &t).unwrap(), 2.5);
    assert_eq!(Raw.decode::<f32>(b"0.1", &t).unwrap(), 0.1f32);
    // An f32 written by format v1 as its f64 widening reads back as the same f32.
    assert_eq!(
        Raw.decode::<f32>(b"0.10000000149011612", &t).unwrap(),
        0.1f32
    );
    assert_eq!(Raw.decode::<f64>(b"inf", &t).unwrap(), f64::INFINITY);
    assert!(Raw.decode::<f64>(b"-0", &t).unwrap().is_sign_negative());
    assert_eq!(Raw.decode::<String>(b"abc", &t).unwrap(), "abc");
    assert_eq!(Raw.decode::<String>(b"", &t).unwrap(), "");
    assert_eq!(Raw.decode::<char>("é".as_bytes(), &t).unwrap(), 'é');
    assert_eq!(
        Raw.decode::<Vec<u8>>(b"\xff\x00", &t).unwrap(),
        vec![255, 0]
    );
    assert_eq!(
        Raw.decode::<Bytes>(b"\xff\x00", &t).unwrap(),
        Bytes(vec![255, 0])
    );
    assert_eq!(
        Raw.decode::<BorrowedBytes>(b"\x01", &t).unwrap(),
        BorrowedBytes(vec![1])
    );
    assert_eq!(Raw.decode::<UserId>(b"42", &t).unwrap(), UserId(42));
    assert!(Raw.decode::<bool>(b"1", &t).unwrap());
    assert!(!Raw.decode::<bool>(b"0", &t).unwrap());
    Raw.decode::<serde::de::IgnoredAny>(b"anything", &t)
        .unwrap();
    let invalid: Vec<(&str, CodecErrorKind)> = vec![
        ("4x", kind(Raw.decode::<i64>(b"4x", &t))),
        ("not utf-8", kind(Raw.decode::<String>(b"\xff", &t))),
        ("not utf-8 number", kind(Raw.decode::<u8>(b"\xff", &t))),
        ("128", kind(Raw.decode::<i8>(b"128", &t))),
        ("true", kind(Raw.decode::<bool>(b"true", &t))),
        ("2", kind(Raw.decode::<bool>(b"2", &t))),
        ("two chars", kind(Raw.decode::<char>(b"ab", &t))),
        ("no char", kind(Raw.decode::<char>(b"", &t))),
    ];
    for (what, k) in invalid {
        assert_eq!(k, CodecErrorKind::Invalid, "{what}");
    }
    #[derive(Deserialize, Debug)]
    enum E {
        A,
    }
    #[derive(Deserialize, Debug)]
    struct TupleStruct(u8, u8);
    let unsupported: Vec<(&str, CodecErrorKind)> = vec![
        ("Vec<i64>", kind(Raw.decode::<Vec<i64>>(b"12", &t))),
        ("Vec<String>", kind(Raw.decode::<Vec<String>>(b"12", &t))),
        ("Vec<char>", kind(Raw.decode::<Vec<char>>(b"12", &t))),
        ("Option", kind(Raw.decode::<Option<u8>>(b"1", &t))),
        ("()", kind(Raw.decode::<()>(b"", &t))),
        ("unit struct", kind(Raw.decode::<Marker>(b"", &t))),
        ("tuple", kind(Raw.decode::<(u8, u8)>(b"12", &t))),
        ("tuple struct", kind(Raw.decode::<TupleStruct>(b"12", &t))),
        ("map", kind(Raw.decode::<BTreeMap<u8, u8>>(b"12", &t))),
        ("struct", kind(Raw.decode::<User>(b"1", &t))),
        ("enum", kind(Raw.decode::<E>(b"A", &t))),
        ("identifier", kind(Raw.decode::<Ident>(b"A", &t))),
        ("any", kind(Raw.decode::<Any>(b"5", &t))),
    ];
    for (what, k) in unsupported {
        assert_eq!(k, CodecErrorKind::Unsupported, "{what}");
    }
}

/// Plain-text fields: the bytes `HGET`, `SISMEMBER` and `ZSCORE` see.
#[test]
fn golden_field_bytes() {
    for codec_bytes in [
        Postcard.encode_field("ada", &tag::<String>()).unwrap(),
        Postcard
            .encode_field(&"ada".to_string(), &tag::<String>())
            .unwrap(),
        Postcard
            .encode_field("ada", &TypeTag::of_owned::<str>())
            .unwrap(),
        Raw.encode_field("ada", &tag::<String>()).unwrap(),
        Postcard
            .encode_field(&Name("ada".into()), &tag::<Name>())
            .unwrap(),
    ] {
        assert_eq!(codec_bytes, b"ada");
    }
    let f = |v: &dyn erased::Value, t: &TypeTag| v.field(t);
    assert_eq!(f(&String::new(), &tag::<String>()), b"");
    assert_eq!(f(&'é', &tag::<char>()), "é".as_bytes());
    assert_eq!(f(&42u32, &tag::<u32>()), b"42");
    assert_eq!(f(&0u8, &tag::<u8>()), b"0");
    assert_eq!(f(&-7i64, &tag::<i64>()), b"-7");
    assert_eq!(f(&-128i8, &tag::<i8>()), b"-128");
    assert_eq!(f(&i16::MIN, &tag::<i16>()), b"-32768");
    assert_eq!(f(&i32::MIN, &tag::<i32>()), b"-2147483648");
    assert_eq!(f(&u16::MAX, &tag::<u16>()), b"65535");
    assert_eq!(f(&u64::MAX, &tag::<u64>()), b"18446744073709551615");
    assert_eq!(
        f(&i128::MIN, &tag::<i128>()),
        i128::MIN.to_string().as_bytes()
    );
    assert_eq!(
        f(&u128::MAX, &tag::<u128>()),
        u128::MAX.to_string().as_bytes()
    );
    assert_eq!(f(&UserId(42), &tag::<UserId>()), b"42");
    // Other types keep the codec's encoding: postcard with its header...
    let pair = tag::<(u8, u8)>();
    assert_eq!(
        Postcard.encode_field(&(1u8, 2u8), &pair).unwrap(),
        Postcard.encode(&(1u8, 2u8), &pair).unwrap()
    );
    // ...the raw codec's text...
    assert_eq!(Raw.encode_field(&1.5f64, &tag::<f64>()).unwrap(), b"1.5");
    assert_eq!(Raw.encode_field(&true, &tag::<bool>()).unwrap(), b"1");
    // ...and decode back.
    assert_eq!(
        Postcard
            .decode_field::<(u8, u8)>(&Postcard.encode_field(&(1u8, 2u8), &pair).unwrap(), &pair)
            .unwrap(),
        (1, 2)
    );
    assert_eq!(Raw.decode_field::<f64>(b"1.5", &tag::<f64>()).unwrap(), 1.5);
}

#[test]
fn field_decoding_is_strict() {
    let t = tag::<u32>();
    assert_eq!(Postcard.decode_field::<u32>(b"42", &t).unwrap(), 42);
    assert_eq!(Postcard.decode_field::<u32>(b"0", &t).unwrap(), 0);
    assert_eq!(
        Postcard.decode_field::<i64>(b"-7", &tag::<i64>()).unwrap(),
        -7
    );
    assert_eq!(
        Postcard
            .decode_field::<UserId>(b"42", &tag::<UserId>())
            .unwrap(),
        UserId(42)
    );
    for bad in [
        &b"042"[..],
        b"+42",
        b"-0",
        b"00",
        b" 42",
        b"42 ",
        b"",
        b"-",
        b"4_2",
        b"4.0",
        b"0x2a",
        "٤٢".as_bytes(),
        b"4294967296",
        b"-1",
        b"\xff",
    ] {
        let e = Postcard.decode_field::<u32>(bad, &t).unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Invalid, "{bad:?}");
    }
    assert_eq!(
        kind(Postcard.decode_field::<i8>(b"-129", &tag::<i8>())),
        CodecErrorKind::Invalid
    );
    let s = tag::<String>();
    assert_eq!(Postcard.decode_field::<String>(b"", &s).unwrap(), "");
    assert_eq!(Postcard.decode_field::<String>(b"042", &s).unwrap(), "042");
    let e = Postcard.decode_field::<String>(b"\xff", &s).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Invalid);
    assert!(e.source().is_some());
    let c = tag::<char>();
    assert_eq!(
        Postcard.decode_field::<char>("é".as_bytes(), &c).unwrap(),
        'é'
    );
    assert_eq!(
        kind(Postcard.decode_field::<char>(b"ab", &c)),
        CodecErrorKind::Invalid
    );
    assert_eq!(
        kind(Postcard.decode_field::<char>(b"", &c)),
        CodecErrorKind::Invalid
    );
}

/// A field with a postcard header is another type's (or format v1's), never text.
#[test]
fn postcard_fields_read_as_plain_text_are_other_shapes() {
    let pair = tag::<(u8, u8)>();
    let bytes = Postcard.encode_field(&(1u8, 2u8), &pair).unwrap();
    let s = tag::<String>();
    assert_eq!(
        kind(Postcard.decode_field::<String>(&bytes, &s)),
        CodecErrorKind::OtherShape {
            expected: s.fingerprint(),
            found: pair.fingerprint()
        }
    );
    // A header without a body is still a header.
    assert_eq!(
        kind(Postcard.decode_field::<String>(b"\xCA\x01\0\0\0\0", &s)),
        CodecErrorKind::OldFormat { version: 1 }
    );
    assert_eq!(
        kind(Postcard.decode_field::<String>(&bytes[..6], &s)),
        CodecErrorKind::OtherShape {
            expected: s.fingerprint(),
            found: pair.fingerprint()
        }
    );
    // A header too short to be one, or of an unknown version, is just bytes.
    assert_eq!(
        kind(Postcard.decode_field::<String>(b"\xCA\x02\0\0\0", &s)),
        CodecErrorKind::Invalid
    );
    assert_eq!(
        kind(Postcard.decode_field::<String>(b"\xCA\x09\0\0\0\0", &s)),
        CodecErrorKind::Invalid
    );
    assert_eq!(
        kind(Postcard.decode_field::<String>(b"\xCB\x01\0\0\0\0", &s)),
        CodecErrorKind::Invalid
    );
    // And plain text is not a postcard field.
    assert_eq!(
        kind(Postcard.decode_field::<(u8, u8)>(b"ada", &pair)),
        CodecErrorKind::Foreign
    );
}

/// A type whose shape says text or integer but whose Serialize or Deserialize disagrees is
/// refused, never stored as something else.
#[test]
fn field_types_that_disagree_with_their_shape_are_refused() {
    let text = tag::<String>();
    let int = tag::<u32>();
    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, u8),
        Struct { a: u8 },
    }
    #[derive(Serialize)]
    struct TupleStruct(u8, u8);
    let refusals: Vec<(&str, Result<Vec<u8>, CodecError>)> = vec![
        ("int as text", Postcard.encode_field(&1u8, &text)),
        ("i128 as text", Postcard.encode_field(&1i128, &text)),
        ("text as int", Postcard.encode_field("1", &int)),
        ("char as int", Postcard.encode_field(&'1', &int)),
        ("bool", Postcard.encode_field(&true, &text)),
        ("f32", Postcard.encode_field(&1f32, &int)),
        ("f64", Postcard.encode_field(&1f64, &int)),
        ("bytes", Postcard.encode_field(&Bytes(vec![1]), &text)),
        ("None", Postcard.encode_field(&None::<String>, &text)),
        ("Some", Postcard.encode_field(&Some("a"), &text)),
        ("unit", Postcard.encode_field(&(), &text)),
        ("unit struct", Postcard.encode_field(&Marker, &text)),
        ("unit variant", Postcard.encode_field(&E::Unit, &text)),
        ("newtype variant", Postcard.encode_field(&E::New(1), &int)),
        ("seq", Postcard.encode_field(&vec!["a"], &text)),
        ("tuple", Postcard.encode_field(&("a",), &text)),
        (
            "tuple struct",
            Postcard.encode_field(&TupleStruct(1, 2), &int),
        ),
        (
            "tuple variant",
            Postcard.encode_field(&E::Tuple(1, 2), &int),
        ),
        (
            "map",
            Postcard.encode_field(&BTreeMap::from([(1u8, 2u8)]), &int),
        ),
        (
            "struct",
            Postcard.encode_field(
                &User {
                    id: 1,
                    name: "x".into(),
                },
                &text,
            ),
        ),
        (
            "struct variant",
            Postcard.encode_field(&E::Struct { a: 1 }, &int),
        ),
    ];
    for (what, r) in refusals {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{what}");
        assert!(e.to_string().contains("Serialize wrote"), "{what}: {e}");
    }
    assert_eq!(
        Postcard.encode_field(&1u8, &text).unwrap_err().to_string(),
        "fields and members of `String` are stored as text, but its Serialize wrote an integer"
    );
    assert_eq!(
        Postcard.encode_field("1", &int).unwrap_err().to_string(),
        "fields and members of `u32` are stored as an integer, but its Serialize wrote a string"
    );
    assert_eq!(
        Postcard
            .decode_field::<bool>(b"1", &int)
            .unwrap_err()
            .to_string(),
        "fields and members of `u32` are stored as an integer, but its Deserialize asked for a bool"
    );
    #[derive(Deserialize, Debug)]
    enum D {
        A,
    }
    #[derive(Deserialize, Debug)]
    struct TupleStructD(u8, u8);
    let refused: Vec<(&str, CodecErrorKind)> = vec![
        (
            "int from text",
            kind(Postcard.decode_field::<u8>(b"1", &text)),
        ),
        (
            "text from int",
            kind(Postcard.decode_field::<String>(b"1", &int)),
        ),
        (
            "char from int",
            kind(Postcard.decode_field::<char>(b"1", &int)),
        ),
        ("bool", kind(Postcard.decode_field::<bool>(b"1", &int))),
        ("f32", kind(Postcard.decode_field::<f32>(b"1", &int))),
        ("f64", kind(Postcard.decode_field::<f64>(b"1", &int))),
        ("bytes", kind(Postcard.decode_field::<Bytes>(b"1", &text))),
        (
            "borrowed bytes",
            kind(Postcard.decode_field::<BorrowedBytes>(b"1", &text)),
        ),
        (
            "Option",
            kind(Postcard.decode_field::<Option<u8>>(b"1", &int)),
        ),
        ("unit", kind(Postcard.decode_field::<()>(b"1", &text))),
        (
            "unit struct",
            kind(Postcard.decode_field::<Marker>(b"1", &text)),
        ),
        ("seq", kind(Postcard.decode_field::<Vec<u8>>(b"1", &text))),
        ("tuple", kind(Postcard.decode_field::<(u8,)>(b"1", &int))),
        (
            "tuple struct",
            kind(Postcard.decode_field::<TupleStructD>(b"1", &int)),
        ),
        (
            "map",
            kind(Postcard.decode_field::<BTreeMap<u8, u8>>(b"1", &int)),
        ),
        ("struct", kind(Postcard.decode_field::<User>(b"1", &text))),
        ("enum", kind(Postcard.decode_field::<D>(b"A", &text))),
        (
            "identifier",
            kind(Postcard.decode_field::<Ident>(b"A", &text)),
        ),
        ("any", kind(Postcard.decode_field::<Any>(b"1", &int))),
        (
            "ignored",
            kind(Postcard.decode_field::<serde::de::IgnoredAny>(b"1", &int)),
        ),
    ];
    for (what, k) in refused {
        assert_eq!(k, CodecErrorKind::Unsupported, "{what}");
    }
}

/// A type that reads and writes itself as a number in compact formats and as a string for
/// humans (as `IpAddr` or date types do): its field form is decided, and used, compact.
#[derive(Debug, PartialEq)]
struct Level(u32);

impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&format!("level {}", self.0))
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.strip_prefix("level ")
                .and_then(|n| n.parse().ok())
                .map(Level)
                .ok_or_else(|| serde::de::Error::custom("not a level"))
        } else {
            u32::deserialize(d).map(Level)
        }
    }
}

#[test]
fn fields_use_the_compact_form_they_were_traced_in() {
    let t = tag::<Level>();
    assert_eq!(t.field_form(), FieldForm::Integer);
    assert_eq!(Postcard.encode_field(&Level(5), &t).unwrap(), b"5");
    assert_eq!(Postcard.decode_field::<Level>(b"5", &t).unwrap(), Level(5));
    // The raw codec is for humans: its values use the readable form.
    assert_eq!(Raw.encode(&Level(5), &t).unwrap(), b"level 5");
    assert_eq!(Raw.decode::<Level>(b"level 5", &t).unwrap(), Level(5));
}

#[test]
fn fields_of_untraced_types_are_encoded() {
    let t = tag::<Seven>().with_schema_version(1);
    let bytes = Postcard.encode_field(&Seven(7), &t).unwrap();
    assert_eq!(&bytes[..2], &[0xCA, 0x02]);
    assert_eq!(
        Postcard.decode_field::<Seven>(&bytes, &t).unwrap(),
        Seven(7)
    );
}

/// The JSON codec: values and fields as JSON text, lossy values refused.
#[cfg(feature = "json")]
mod json {
    use super::*;

    #[test]
    fn golden_json_bytes() {
        let t = tag::<u8>();
        let enc = |v: &dyn erased::Value| v.json(&t);
        assert_eq!(enc(&vec![1, 2]), b"[1,2]");
        assert_eq!(enc(&-0.0f64), b"-0.0");
        assert_eq!(enc(&0.1f32), b"0.1");
        assert_eq!(enc(&u128::MAX), u128::MAX.to_string().as_bytes());
        assert_eq!(enc(&Some(1u8)), b"1");
        assert_eq!(enc(&None::<u8>), b"null");
        assert_eq!(enc(&Some(Some(1u8))), b"1");
        assert_eq!(enc(&()), b"null");
        assert_eq!(enc(&Marker), b"null");
        assert_eq!(enc(&'é'), "\"é\"".as_bytes());
        assert_eq!(enc(&BTreeMap::from([(1u8, "a")])), b"{\"1\":\"a\"}");
        assert_eq!(
            enc(&User {
                id: 1,
                name: "a".into()
            }),
            b"{\"id\":1,\"name\":\"a\"}"
        );
        // Fields are JSON too, as in format v1.
        assert_eq!(
            Json.encode_field("ada", &tag::<String>()).unwrap(),
            b"\"ada\""
        );
        assert_eq!(Json.encode_field(&42u32, &tag::<u32>()).unwrap(), b"42");
        assert_eq!(
            Json.decode_field::<String>(b"\"ada\"", &tag::<String>())
                .unwrap(),
            "ada"
        );
    }

    #[test]
    fn json_refuses_what_it_would_store_lossily() {
        let t = tag::<u8>();
        #[derive(Serialize)]
        struct Holder {
            x: f64,
        }
        #[derive(Serialize)]
        struct Wrapped(());
        #[derive(Serialize)]
        enum E {
            V(f32),
            T(u8, f64),
            S { x: f64 },
        }
        #[derive(Serialize)]
        struct TupleStruct(u8, f64);
        let refused: Vec<(&str, Result<Vec<u8>, CodecError>)> = vec![
            ("NaN", Json.encode(&f64::NAN, &t)),
            ("inf", Json.encode(&f64::INFINITY, &t)),
            ("-inf f32", Json.encode(&f32::NEG_INFINITY, &t)),
            ("f32 NaN", Json.encode(&f32::NAN, &t)),
            ("Some(inf)", Json.encode(&Some(f64::INFINITY), &t)),
            ("in a seq", Json.encode(&vec![1.0, f64::NAN], &t)),
            ("in a tuple", Json.encode(&(1u8, f64::NAN), &t)),
            (
                "in a tuple struct",
                Json.encode(&TupleStruct(1, f64::NAN), &t),
            ),
            ("in a struct", Json.encode(&Holder { x: f64::NAN }, &t)),
            ("in a newtype variant", Json.encode(&E::V(f32::NAN), &t)),
            ("in a tuple variant", Json.encode(&E::T(1, f64::NAN), &t)),
            (
                "in a struct variant",
                Json.encode(&E::S { x: f64::NAN }, &t),
            ),
            (
                "map value",
                Json.encode(&BTreeMap::from([(1u8, f64::NAN)]), &t),
            ),
            ("Some(())", Json.encode(&Some(()), &t)),
            ("Some(None)", Json.encode(&Some(None::<u8>), &t)),
            ("Some(unit struct)", Json.encode(&Some(Marker), &t)),
            ("Some(newtype of ())", Json.encode(&Some(Wrapped(())), &t)),
            ("Some(Some(None))", Json.encode(&Some(Some(None::<u8>)), &t)),
            ("nested", Json.encode(&vec![Some(())], &t)),
        ];
        for (what, r) in refused {
            let e = r.expect_err(what);
            assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{what}");
            assert!(e.to_string().contains("json cannot store"), "{what}: {e}");
        }
        // Keys serde_json cannot write are its own refusal.
        let e = Json
            .encode(&BTreeMap::from([((1u8, 2u8), 3u8)]), &t)
            .unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Unsupported);
        assert!(e.source().is_some());
        let e = Json
            .encode(&std::collections::HashMap::from([(Key(f64::NAN), 1u8)]), &t)
            .unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Unsupported);
    }

    /// A float map key (serde_json writes finite ones as strings).
    #[derive(Serialize, PartialEq)]
    struct Key(f64);
    impl Eq for Key {}
    impl std::hash::Hash for Key {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.to_bits().hash(h);
        }
    }

    type SomeTypes = (
        Option<UserId>,
        Option<E>,
        Option<E>,
        Option<BTreeMap<u8, u8>>,
        Option<Vec<u8>>,
        Option<(u8, u8)>,
        Option<User>,
        Option<E>,
        Option<E>,
        Option<Name>,
    );

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, Option<u8>),
        Struct { a: Vec<u8> },
    }

    #[test]
    fn json_round_trips_what_it_accepts() {
        let t = tag::<u8>();
        let values = (
            Some(Some(1u8)),
            None::<Option<u8>>,
            [
                E::Unit,
                E::New(1),
                E::Tuple(1, None),
                E::Struct { a: vec![] },
            ],
            BTreeMap::from([(-1i64, ()), (2, ())]),
            (
                u128::MAX,
                i128::MIN,
                -0.0f64,
                0.1f32,
                'é',
                String::new(),
                Marker,
            ),
        );
        let somes = (
            Some(UserId(5)),
            Some(E::New(1)),
            Some(E::Unit),
            Some(BTreeMap::from([(1u8, 2u8)])),
            Some(vec![1u8]),
            Some((1u8, 2u8)),
            Some(User {
                id: 1,
                name: "a".into(),
            }),
            Some(E::Tuple(1, Some(2))),
            Some(E::Struct { a: vec![1] }),
            Some(Name(String::new())),
        );
        let bytes = Json.encode(&somes, &t).unwrap();
        assert_eq!(Json.decode::<SomeTypes>(&bytes, &t).unwrap(), somes);
        let bytes = Json.encode(&values, &t).unwrap();
        type All = (
            Option<Option<u8>>,
            Option<Option<u8>>,
            [E; 4],
            BTreeMap<i64, ()>,
            (u128, i128, f64, f32, char, String, Marker),
        );
        let back: All = Json.decode(&bytes, &t).unwrap();
        assert_eq!(back, values);
        assert!(back.4.2.is_sign_negative());
        let e = Json.decode::<u8>(b"null", &t).unwrap_err();
        assert_eq!(e.kind(), CodecErrorKind::Invalid);
        assert!(e.source().is_some());
        // What format v1 wrote for NaN no longer reads as a float.
        assert!(Json.decode::<f64>(b"null", &t).is_err());
    }

    /// The `Json` column of "When a type changes" in the module docs: JSON matches fields
    /// and variants by name, so only changes that lose a name fail.
    #[test]
    fn json_reads_values_of_an_evolved_type_by_name() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        enum RoleV1 {
            User,
            Admin,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct V1 {
            balance: i64,
            owner: u64,
            role: RoleV1,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        enum Reordered {
            Admin,
            User,
            Guest,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Evolved {
            owner: u64, // reordered
            balance: i64,
            role: Reordered, // variants reordered and one added
            #[serde(default)]
            email: Option<String>, // added
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Removed {
            owner: u64,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Renamed {
            balance_cents: i64,
            owner: u64,
            role: Reordered,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Added {
            balance: i64,
            owner: u64,
            role: Reordered,
            email: String, // no default
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        enum RoleRemoved {
            Admin,
        }
        let old = V1 {
            balance: -5,
            owner: 42,
            role: RoleV1::User,
        };
        let bytes = Json.encode(&old, &tag::<V1>()).unwrap();
        assert_eq!(
            Json.decode::<Evolved>(&bytes, &tag::<Evolved>()).unwrap(),
            Evolved {
                owner: 42,
                balance: -5,
                role: Reordered::User,
                email: None,
            }
        );
        assert_eq!(
            Json.decode::<Removed>(&bytes, &tag::<Removed>()).unwrap(),
            Removed { owner: 42 }
        );
        assert_eq!(
            kind(Json.decode::<Renamed>(&bytes, &tag::<Renamed>())),
            CodecErrorKind::Invalid
        );
        assert_eq!(
            kind(Json.decode::<Added>(&bytes, &tag::<Added>())),
            CodecErrorKind::Invalid
        );
        let role = Json.encode(&RoleV1::User, &tag::<RoleV1>()).unwrap();
        assert_eq!(
            kind(Json.decode::<RoleRemoved>(&role, &tag::<RoleRemoved>())),
            CodecErrorKind::Invalid
        );
        // A newtype is its contents in JSON.
        let id = Json.encode(&UserId(5), &tag::<UserId>()).unwrap();
        assert_eq!(Json.decode::<u64>(&id, &tag::<u64>()).unwrap(), 5);
    }
}

/// Values of any of the test types, through one object-safe interface.
mod erased {
    use super::*;

    pub(super) trait Value {
        fn raw(&self, tag: &TypeTag) -> Vec<u8>;
        fn field(&self, tag: &TypeTag) -> Vec<u8>;
        #[cfg(feature = "json")]
        fn json(&self, tag: &TypeTag) -> Vec<u8>;
    }

    impl<T: Serialize> Value for T {
        fn raw(&self, tag: &TypeTag) -> Vec<u8> {
            Raw.encode(self, tag).unwrap()
        }
        fn field(&self, tag: &TypeTag) -> Vec<u8> {
            Postcard.encode_field(self, tag).unwrap()
        }
        #[cfg(feature = "json")]
        fn json(&self, tag: &TypeTag) -> Vec<u8> {
            super::super::Json.encode(self, tag).unwrap()
        }
    }
}

/// Bytes through `serialize_bytes` / `deserialize_byte_buf`, as `serde_bytes` does.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(b.to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Bytes through `deserialize_bytes`.
#[derive(Debug, PartialEq)]
struct BorrowedBytes(Vec<u8>);

impl<'de> Deserialize<'de> for BorrowedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BorrowedBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<BorrowedBytes, E> {
                Ok(BorrowedBytes(b.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A type that asks for an identifier.
#[derive(Debug)]
struct Ident;

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(serde::de::IgnoredAny)
            .map(|_| Ident)
    }
}

/// A type that asks the data what it is.
#[derive(Debug)]
struct Any;

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(serde::de::IgnoredAny).map(|_| Any)
    }
}
