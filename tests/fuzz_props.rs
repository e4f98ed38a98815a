//! Property tests over arbitrary input: the DSN parser, key rendering and every codec's
//! decoder never panic, never leak a password, keep keys apart, and refuse what they did not
//! write. Pure: no server needed.

use std::collections::BTreeMap;

use proptest::prelude::*;
use redis_caches::Dsn;
use redis_caches::codec::{Codec, POSTCARD_MAGIC, POSTCARD_VERSION, Postcard, Raw, TypeTag};
use redis_caches::key::{Key, KeyPart};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

// ---------------------------------------------------------------- DSN

/// A password that cannot appear by accident in a message: a marker plus printable ASCII,
/// including the URL's reserved characters.
fn password() -> impl Strategy<Value = String> {
    "[ -~]{3,12}".prop_map(|tail| format!("PwZ{tail}"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn option() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "pool_size",
        "pool_timeout",
        "connect_timeout",
        "timeout",
        "socket_timeout",
        "prefix",
        "protocol",
        "db",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "tls_insecure",
        "colour",
        "",
    ]);
    let value = prop_oneof![
        Just("1".to_string()),
        Just("0".to_string()),
        Just("250ms".to_string()),
        Just("1.5".to_string()),
        Just("true".to_string()),
        Just("resp3".to_string()),
        "[ -~]{0,8}",
    ];
    (key, value).prop_map(|(k, v)| format!("{k}={}", percent_encode(&v)))
}

prop_compose! {
    /// A URL put together from random pieces: mostly plausible, often invalid.
    fn structured_dsn()(
        scheme in prop::sample::select(vec!["redis", "rediss", "unix", "redis+unix", "mysql", "REDIS"]),
        user in prop::option::of("[a-z]{1,6}"),
        password in password(),
        escape in any::<bool>(),
        with_password in any::<bool>(),
        host in prop::sample::select(vec!["h", "127.0.0.1", "[::1]", "localhost", "", "/run/r.sock"]),
        port in prop::option::of(0u32..70_000),
        db in prop::option::of("[0-9a-z-]{0,3}"),
        options in prop::collection::vec(option(), 0..4),
        fragment in prop::option::of("[a-z#]{0,4}"),
    ) -> (String, String, bool) {
        let mut url = format!("{scheme}://");
        if with_password {
            let shown = if escape { percent_encode(&password) } else { password.clone() };
            url.push_str(&format!("{}:{shown}@", user.unwrap_or_default()));
        } else if let Some(user) = user {
            url.push_str(&format!("{user}@"));
        }
        url.push_str(host);
        if let Some(port) = port {
            url.push_str(&format!(":{port}"));
        }
        if let Some(db) = db {
            url.push_str(&format!("/{db}"));
        }
        if !options.is_empty() {
            url.push('?');
            url.push_str(&options.join("&"));
        }
        if let Some(fragment) = fragment {
            url.push_str(&format!("#{fragment}"));
        }
        (url, if with_password { password } else { String::new() }, escape)
    }
}

fn assert_hidden(password: &str, shown: &str) {
    if password.is_empty() {
        return;
    }
    assert!(
        !shown.contains(password),
        "password {password:?} shown: {shown}"
    );
    let encoded = percent_encode(password);
    assert!(
        !shown.contains(&encoded),
        "password {encoded:?} shown: {shown}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dsn_parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = Dsn::parse(&s);
    }

    #[test]
    fn dsn_parse_never_panics_on_url_like_strings(tail in "[ -~]{0,40}") {
        for scheme in ["redis://", "rediss://", "unix://", "redis+unix://"] {
            let _ = Dsn::parse(&format!("{scheme}{tail}"));
        }
    }

    #[test]
    fn dsn_never_shows_the_password((url, password, escaped) in structured_dsn()) {
        match Dsn::parse(&url) {
            Ok(dsn) => {
                // An unescaped password with reserved characters may legitimately parse as
                // something else (a host and a query); only escaped ones are known secrets.
                if escaped && !password.is_empty() {
                    assert_hidden(&password, &dsn.to_string());
                    assert_hidden(&password, &format!("{dsn:?}"));
                    prop_assert!(dsn.has_password());
                }
            }
            Err(e) => {
                prop_assert!(e.is_config());
                assert_hidden(&password, &e.to_string());
                assert_hidden(&password, &format!("{e:?}"));
            }
        }
    }
}

// ---------------------------------------------------------------- keys

fn part() -> impl Strategy<Value = KeyPart> {
    prop_oneof![
        // A small alphabet so that different lists often render alike if escaping is wrong.
        "[a.\\\\{} *]{1,3}".prop_map(KeyPart::Str),
        (-3i128..3).prop_map(KeyPart::Int),
    ]
}

/// What a part means: integers are written in decimal, so `1` and `"1"` are the same key.
fn meaning(parts: &[KeyPart]) -> Vec<String> {
    parts.iter().map(ToString::to_string).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn key_rendering_never_panics(
        parts in prop::collection::vec(any::<String>().prop_map(KeyPart::Str), 0..4),
        connection_prefix in any::<String>(),
        prefix in prop::option::of(any::<String>()),
        tag in any::<bool>(),
    ) {
        let key = Key::from_parts(parts);
        let key = if tag { key.with_hash_tag() } else { key };
        let _ = key.render(&connection_prefix, prefix.as_deref());
    }

    #[test]
    fn distinct_part_lists_give_distinct_keys(
        a in prop::collection::vec(part(), 1..4),
        b in prop::collection::vec(part(), 1..4),
        prefix in prop::option::of(prop::sample::select(vec!["p", "app.v2"])),
        tag in any::<bool>(),
    ) {
        let render = |parts: &[KeyPart]| {
            let key = Key::from_parts(parts.iter().cloned());
            let key = if tag { key.with_hash_tag() } else { key };
            key.render("cp:", prefix)
        };
        match (render(&a), render(&b)) {
            (Ok(ka), Ok(kb)) => prop_assert_eq!(meaning(&a) == meaning(&b), ka == kb, "{:?} {:?} -> {} {}", a, b, ka, kb),
            (ra, rb) => {
                // Only an empty string part is refused.
                let has_empty = |p: &[KeyPart]| p.iter().any(|x| *x == KeyPart::Str(String::new()));
                prop_assert_eq!(ra.is_err(), has_empty(&a));
                prop_assert_eq!(rb.is_err(), has_empty(&b));
            }
        }
    }
}

// ---------------------------------------------------------------- codecs

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct User {
    id: u32,
    name: String,
    tags: Vec<String>,
    score: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Shape {
    Dot,
    Circle(u16),
    Rect { w: u8, h: u8 },
}

fn header<T>() -> Vec<u8> {
    let mut h = vec![POSTCARD_MAGIC, POSTCARD_VERSION];
    h.extend_from_slice(&TypeTag::of::<T>().fingerprint().to_le_bytes());
    h
}

/// Decodes `bytes` as a `T` with every codec; none may panic. What postcard accepts has a
/// stable canonical form (encode, decode, encode gives the same bytes). postcard also accepts a
/// few non-canonical bodies behind a valid header (overlong varints, unsorted map keys): the
/// limitation is documented in `codec`'s module docs.
fn decode_all<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + std::fmt::Debug,
{
    let tag = TypeTag::of::<T>();
    if let Ok(v) = Postcard.decode::<T>(bytes, &tag) {
        let canonical = Postcard.encode(&v, &tag).expect("re-encode");
        let again: T = Postcard
            .decode(&canonical, &tag)
            .expect("decode the canonical form");
        prop_assert_eq!(Postcard.encode(&again, &tag).expect("re-encode"), canonical);
    }
    let _ = Raw.decode::<T>(bytes, &tag);
    #[cfg(feature = "json")]
    let _ = redis_caches::codec::Json.decode::<T>(bytes, &tag);
    Ok(())
}

fn decode_every_type(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_all::<u8>(bytes)?;
    decode_all::<u32>(bytes)?;
    decode_all::<i64>(bytes)?;
    decode_all::<u128>(bytes)?;
    decode_all::<f64>(bytes)?;
    decode_all::<bool>(bytes)?;
    decode_all::<char>(bytes)?;
    decode_all::<String>(bytes)?;
    decode_all::<Vec<u8>>(bytes)?;
    decode_all::<Option<u16>>(bytes)?;
    decode_all::<(u8, String)>(bytes)?;
    decode_all::<Vec<String>>(bytes)?;
    decode_all::<BTreeMap<u8, String>>(bytes)?;
    decode_all::<User>(bytes)?;
    decode_all::<Shape>(bytes)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        decode_every_type(&bytes)?;
        // Bytes without our header are always refused by postcard.
        if bytes.first() != Some(&POSTCARD_MAGIC) {
            prop_assert!(Postcard.decode::<String>(&bytes, &TypeTag::of::<String>()).is_err());
        }
    }

    #[test]
    fn postcard_refuses_another_types_header(bytes in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut b = header::<u64>();
        b.extend_from_slice(&bytes);
        prop_assert!(Postcard.decode::<u32>(&b, &TypeTag::of::<u32>()).is_err());
        prop_assert!(Postcard.decode::<String>(&b, &TypeTag::of::<String>()).is_err());
        prop_assert!(Postcard.decode::<User>(&b, &TypeTag::of::<User>()).is_err());
    }
}

/// Bodies behind a valid header: the decoder gets past the header and must judge the body.
macro_rules! body_props {
    ($($name:ident: $t:ty),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1500))]
            $(
                #[test]
                fn $name(body in prop::collection::vec(any::<u8>(), 0..24)) {
                    let mut bytes = header::<$t>();
                    bytes.extend_from_slice(&body);
                    decode_all::<$t>(&bytes)?;
                }
            )*
        }
    };
}

body_props!(
    postcard_body_u32: u32,
    postcard_body_i64: i64,
    postcard_body_bool: bool,
    postcard_body_char: char,
    postcard_body_string: String,
    postcard_body_option: Option<u16>,
    postcard_body_tuple: (u8, String),
    postcard_body_vec: Vec<String>,
    postcard_body_map: BTreeMap<u8, String>,
    postcard_body_user: User,
    postcard_body_shape: Shape,
);

fn user() -> impl Strategy<Value = User> {
    (
        any::<u32>(),
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..4),
        any::<Option<i64>>(),
    )
        .prop_map(|(id, name, tags, score)| User {
            id,
            name,
            tags,
            score,
        })
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Dot),
        any::<u16>().prop_map(Shape::Circle),
        (any::<u8>(), any::<u8>()).prop_map(|(w, h)| Shape::Rect { w, h }),
    ]
}

fn round_trip<T, C>(codec: &C, value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    C: Codec,
{
    let tag = TypeTag::of::<T>();
    let bytes = codec.encode(value, &tag).expect("encode");
    let back: T = codec.decode(&bytes, &tag).expect("decode what we wrote");
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn postcard_round_trips(
        u in user(),
        s in shape(),
        m in prop::collection::btree_map(any::<u8>(), any::<String>(), 0..5),
        f in any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()),
        c in any::<char>(),
        big in any::<u128>(),
    ) {
        round_trip(&Postcard, &u)?;
        round_trip(&Postcard, &s)?;
        round_trip(&Postcard, &m)?;
        round_trip(&Postcard, &f)?;
        round_trip(&Postcard, &c)?;
        round_trip(&Postcard, &big)?;
        round_trip(&Postcard, &(u.clone(), s.clone()))?;
    }

    #[test]
    fn raw_round_trips(
        i in any::<i64>(),
        u in any::<u64>(),
        small in any::<i8>(),
        f in any::<f64>().prop_filter("NaN is refused", |f| !f.is_nan()),
        s in any::<String>(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        b in any::<bool>(),
        c in any::<char>(),
    ) {
        round_trip(&Raw, &i)?;
        round_trip(&Raw, &u)?;
        round_trip(&Raw, &small)?;
        round_trip(&Raw, &f)?;
        round_trip(&Raw, &s)?;
        round_trip(&Raw, &bytes)?;
        round_trip(&Raw, &b)?;
        round_trip(&Raw, &c)?;
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips(
        u in user(),
        s in shape(),
        m in prop::collection::btree_map(any::<u8>(), any::<String>(), 0..5),
        i in any::<i64>(),
    ) {
        let json = redis_caches::codec::Json;
        round_trip(&json, &u)?;
        round_trip(&json, &s)?;
        round_trip(&json, &m)?;
        round_trip(&json, &i)?;
    }

    #[test]
    fn raw_decoding_a_number_is_exact_for_what_raw_writes(i in any::<i64>()) {
        let tag = TypeTag::of::<i64>();
        // What INCRBY leaves behind is decimal text: read back exactly.
        prop_assert_eq!(Raw.decode::<i64>(i.to_string().as_bytes(), &tag).unwrap(), i);
        // Overflowing the type is an error, never a wrap.
        let too_big = format!("{}0", i64::MAX);
        prop_assert!(Raw.decode::<i64>(too_big.as_bytes(), &tag).is_err());
    }
}

fn with_header<T>(body: &[u8]) -> Vec<u8> {
    let mut bytes = header::<T>();
    bytes.extend_from_slice(body);
    bytes
}

#[test]
fn postcard_refuses_malformed_bodies() {
    fn refused<T: DeserializeOwned + std::fmt::Debug>(body: &[u8]) {
        let r = Postcard.decode::<T>(&with_header::<T>(body), &TypeTag::of::<T>());
        assert!(r.is_err(), "{body:?} decoded as {r:?}");
    }
    refused::<bool>(&[2]);
    refused::<Option<u8>>(&[2, 0]);
    refused::<u32>(&[0xff, 0xff, 0xff, 0xff, 0x7f]); // over u32::MAX
    refused::<u32>(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]); // too long a varint
    refused::<String>(&[2, 0xff, 0xfe]); // not UTF-8
    refused::<Shape>(&[3]); // no such variant
    refused::<u8>(&[]); // truncated
    refused::<u8>(&[1, 2]); // trailing byte
}
