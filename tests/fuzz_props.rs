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

/// Marks every piece of a generated password. Nothing else a generator below produces
/// contains it (their alphabets leave out `q`), so wherever it shows, a password leaked.
const MARK: &str = "qzx";

fn marker() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,3}".prop_map(|tail| format!("{MARK}{tail}"))
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

/// Characters with a meaning in a URL, alone or in short runs, raw or percent-encoded, and
/// percent-escapes good and bad.
fn special() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[:/?#@\\[\\]%&=+,; !$'()*~\"<>^`{|}.-]{1,3}", any::<bool>())
            .prop_map(|(s, escape)| if escape { percent_encode(&s) } else { s }),
        1 => "%[0-9A-Fa-fGg]{0,2}",
    ]
}

/// A password of marked pieces, each with special characters before it, so that a separator
/// cuts it at every position: before the first piece, between any two, after the last.
fn password() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((prop::option::of(special()), marker()), 1..4),
        prop::option::of(special()),
    )
        .prop_map(|(pieces, tail)| {
            let mut password = String::new();
            for (before, piece) in pieces {
                password.push_str(&before.unwrap_or_default());
                password.push_str(&piece);
            }
            password.push_str(&tail.unwrap_or_default());
            password
        })
}

/// Every scheme the parser knows (in several cases) and one it does not.
const SCHEMES: [&str; 11] = [
    "redis",
    "rediss",
    "REDIS",
    "unix",
    "redis+unix",
    "redis+cluster",
    "rediss+cluster",
    "Redis+Sentinel",
    "redis+sentinel",
    "rediss+sentinel",
    "mysql",
];

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
        prop::sample::select(vec![
            "1",
            "0",
            "0ms",
            "-0",
            "1e-10",
            "1e19",
            "4294967295",
            "250ms",
            "1.5",
            "true",
            "false",
            "resp2",
            "resp3",
            "app:",
            "a@b",
            "{x}",
            "2147483648",
            "/ca.pem",
        ])
        .prop_map(str::to_string),
        "[ -pr-~]{0,8}",
    ];
    (key, value, any::<bool>()).prop_map(|(k, v, escape)| {
        let v = if escape { percent_encode(&v) } else { v };
        format!("{k}={v}")
    })
}

prop_compose! {
    /// A DSN of every scheme put together from random pieces: mostly plausible, often
    /// invalid, with the password (when there is one) in the credentials as a user would
    /// write it, special characters escaped or not.
    fn any_dsn()(
        scheme in prop::sample::select(SCHEMES.to_vec()),
        user in prop::option::of("[a-p]{1,5}"),
        password in prop::option::of(password()),
        hosts in prop::sample::select(vec![
            "h", "h:6380", "127.0.0.1:1", "[::1]:7000", "[::1]", "h1:7000,h2:7001", "h1,[::1]:2",
            "", "h:0", "h:99999", "h:x", "h1,,h2", "[::1", "s1:26379,s2",
        ]),
        path in prop::option::of(prop::sample::select(vec![
            "/0", "/2", "/x", "/-1", "/m", "/m/1", "/m/1/2", "/", "/run/r.sock", "/2147483648",
            "/%ZZ", "/m%20n/0", "/a@b",
        ])),
        options in prop::collection::vec(option(), 0..4),
        fragment in prop::option::of("[a-p@#:/%]{0,5}"),
    ) -> String {
        let mut url = format!("{scheme}://");
        match (user, password) {
            (user, Some(password)) => {
                url.push_str(&format!("{}:{password}@", user.unwrap_or_default()));
            }
            (Some(user), None) => url.push_str(&format!("{user}@")),
            (None, None) => {}
        }
        url.push_str(hosts);
        url.push_str(path.unwrap_or_default());
        if !options.is_empty() {
            url.push('?');
            url.push_str(&options.join("&"));
        }
        if let Some(fragment) = fragment {
            url.push_str(&format!("#{fragment}"));
        }
        url
    }
}

prop_compose! {
    /// A valid DSN of every scheme that can carry credentials, with a password of any
    /// characters, percent-encoded as documented.
    fn valid_dsn_with_password()(
        form in prop::sample::select(vec![
            ("redis", "h"),
            ("rediss", "h:6380/2"),
            ("REDIS", "[::1]:7000/0"),
            ("redis", "127.0.0.1"),
            ("redis+cluster", "h1:7000,h2:7001"),
            ("rediss+cluster", "h1,[::1]:2/0"),
            ("redis+sentinel", "s1,s2:26380/mymaster"),
            ("rediss+sentinel", "s1/my%20master/3"),
        ]),
        user in prop::option::of("[a-p]{1,5}"),
        before in "\\PC{0,6}",
        after in "\\PC{0,6}",
        mark in marker(),
        options in prop::sample::subsequence(
            vec!["timeout=250ms", "pool_size=4", "prefix=app:", "protocol=resp2", "connect_timeout=2"],
            0..3,
        ),
        fragment in prop::option::of("[a-p]{1,5}"),
    ) -> (String, String) {
        let password = format!("{before}{mark}{after}");
        let (scheme, rest) = form;
        let mut url = format!(
            "{scheme}://{}:{}@{rest}",
            user.unwrap_or_default(),
            percent_encode(&password)
        );
        if !options.is_empty() {
            url.push('?');
            url.push_str(&options.join("&"));
        }
        if let Some(fragment) = fragment {
            url.push_str(&format!("#{fragment}"));
        }
        (url, password)
    }
}

/// Every text a DSN or a parse error shows: `Display`, `Debug` and pretty `Debug`, the parts
/// a caller can read back, the error's source chain, and the `Debug` of a connection opened
/// from the DSN (which opens no socket).
fn shown_texts(dsn: &str) -> Vec<String> {
    match Dsn::parse(dsn) {
        Ok(d) => {
            let mut texts = vec![
                d.to_string(),
                format!("{d:?}"),
                format!("{d:#?}"),
                format!("{:?} {:?}", d.target(), d.tls()),
                d.prefix().to_string(),
                d.name().unwrap_or_default().to_string(),
                d.username().unwrap_or_default().to_string(),
            ];
            match redis_caches::Connection::from_dsn("fuzz", d) {
                Ok(conn) => texts.push(format!("{conn:?} {conn:#?} {:?}", conn.dsn())),
                Err(e) => texts.extend(error_texts(&e)),
            }
            texts
        }
        Err(e) => {
            assert!(e.is_config(), "{dsn}: {e:?}");
            error_texts(&e)
        }
    }
}

fn error_texts(e: &redis_caches::Error) -> Vec<String> {
    let mut texts = vec![e.to_string(), format!("{e:?}"), format!("{e:#?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        texts.push(format!("{s} {s:?}"));
        source = s.source();
    }
    texts
}

fn assert_unmarked(dsn: &str, texts: &[String]) -> Result<(), TestCaseError> {
    for text in texts {
        prop_assert!(
            !text.to_lowercase().contains(MARK),
            "{dsn:?} shows part of its password: {text}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dsn_parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = Dsn::parse(&s);
    }

    #[test]
    fn dsn_parse_never_panics_on_url_like_strings(tail in "[ -~]{0,40}") {
        for scheme in SCHEMES {
            let _ = Dsn::parse(&format!("{scheme}://{tail}"));
        }
    }

    /// No DSN, valid or not, shows any part of its password, wherever a separator cuts it.
    #[test]
    fn no_dsn_shows_any_part_of_its_password(dsn in any_dsn()) {
        assert_unmarked(&dsn, &shown_texts(&dsn))?;
    }

    /// A password of any characters, percent-encoded, parses in every form and stays hidden.
    #[test]
    fn escaped_passwords_parse_in_every_form_and_stay_hidden(
        (dsn, password) in valid_dsn_with_password()
    ) {
        let parsed = Dsn::parse(&dsn);
        prop_assert!(parsed.is_ok(), "{dsn:?}: {:?}", parsed.err());
        prop_assert!(parsed.unwrap().has_password());
        let texts = shown_texts(&dsn);
        assert_unmarked(&dsn, &texts)?;
        for text in &texts {
            prop_assert!(!text.contains(&percent_encode(&password)), "{dsn:?}: {text}");
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

fn header<T: DeserializeOwned>() -> Vec<u8> {
    let mut h = vec![POSTCARD_MAGIC, POSTCARD_VERSION];
    h.extend_from_slice(&TypeTag::of::<T>().fingerprint().to_be_bytes());
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

fn with_header<T: DeserializeOwned>(body: &[u8]) -> Vec<u8> {
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
