//! Property tests: every value a codec accepts decodes to itself (bit for bit for floats),
//! as a value and as a field; what it does not accept is refused as `Unsupported`; plain
//! fields decode only from exactly the bytes they encode to.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;

/// Whether a codec must accept a value: `Some(true)` it must, `Some(false)` it must refuse,
/// `None` either way (a refusal must then be `Unsupported`).
type Expect = Option<bool>;

/// The value as postcard writes it without a header: exact bits, so `-0.0` differs from
/// `0.0` and a NaN equals itself.
fn bits<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard accepts every test value")
}

fn check<C: Codec, T>(codec: &C, v: &T, expect: Expect, exact: bool) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let tag = TypeTag::of::<T>();
    let same = |back: &T| {
        if exact {
            bits(back) == bits(v)
        } else {
            back == v
        }
    };
    match codec.encode(v, &tag) {
        Ok(bytes) => {
            prop_assert_ne!(expect, Some(false), "{:?} should be refused", v);
            let back: T = codec
                .decode(&bytes, &tag)
                .map_err(|e| TestCaseError::fail(format!("{v:?}: {e:?}")))?;
            prop_assert!(same(&back), "{:?} read back as {:?}", v, back);
        }
        Err(e) => {
            prop_assert_ne!(expect, Some(true), "{:?} refused: {:?}", v, e);
            prop_assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{:?}", e);
        }
    }
    match codec.encode_field(v, &tag) {
        Ok(bytes) => {
            let back: T = codec
                .decode_field(&bytes, &tag)
                .map_err(|e| TestCaseError::fail(format!("field {v:?}: {e:?}")))?;
            prop_assert!(same(&back), "field {:?} read back as {:?}", v, back);
        }
        Err(e) => prop_assert_eq!(e.kind(), CodecErrorKind::Unsupported, "{:?}", e),
    }
    Ok(())
}

/// Checks `v` with every codec: `postcard`, `raw` and `json` say what each must do.
fn all<T>(v: &T, raw: Expect, json: Expect, exact: bool) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    check(&Postcard, v, Some(true), exact)?;
    check(&Raw, v, raw, exact)?;
    #[cfg(feature = "json")]
    check(&Json, v, json, exact)?;
    #[cfg(not(feature = "json"))]
    let _ = json;
    Ok(())
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Marker;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct UserId(u64);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Event {
    Ping,
    Move(i32, i32),
    Say(String),
    Login { user: u32, at: Option<u64> },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f32>,
    events: Vec<Event>,
    ids: BTreeMap<u16, UserId>,
}

fn f64s() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        any::<f64>(),
    ]
}

fn f32s() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        Just(-0.0),
        Just(f32::INFINITY),
        Just(f32::NAN),
        any::<f32>(),
    ]
}

fn events() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Ping),
        (any::<i32>(), any::<i32>()).prop_map(|(x, y)| Event::Move(x, y)),
        any::<String>().prop_map(Event::Say),
        (any::<u32>(), any::<Option<u64>>()).prop_map(|(user, at)| Event::Login { user, at }),
    ]
}

fn records() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..4),
        prop::option::of(f32s()),
        prop::collection::vec(events(), 0..4),
        prop::collection::btree_map(any::<u16>(), any::<u64>().prop_map(UserId), 0..4),
    )
        .prop_map(|(id, name, tags, score, events, ids)| Record {
            id,
            name,
            tags,
            score,
            events,
            ids,
        })
}

proptest! {
    #[test]
    fn integers_round_trip(
        a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
        e in any::<u128>(), f in any::<i8>(), g in any::<i16>(), h in any::<i32>(),
        i in any::<i64>(), j in any::<i128>(),
    ) {
        all(&a, Some(true), Some(true), false)?;
        all(&b, Some(true), Some(true), false)?;
        all(&c, Some(true), Some(true), false)?;
        all(&d, Some(true), Some(true), false)?;
        all(&e, Some(true), Some(true), false)?;
        all(&f, Some(true), Some(true), false)?;
        all(&g, Some(true), Some(true), false)?;
        all(&h, Some(true), Some(true), false)?;
        all(&i, Some(true), Some(true), false)?;
        all(&j, Some(true), Some(true), false)?;
        all(&UserId(d), Some(true), Some(true), false)?;
    }

    #[test]
    fn floats_round_trip_bit_for_bit(x in f64s(), y in f32s()) {
        all(&x, Some(!x.is_nan()), Some(x.is_finite()), true)?;
        all(&y, Some(!y.is_nan()), Some(y.is_finite()), true)?;
        all(&Some(x), Some(false), Some(x.is_finite()), true)?;
    }

    #[test]
    fn text_and_bytes_round_trip(
        s in any::<String>(), c in any::<char>(), b in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        all(&s, Some(true), Some(true), false)?;
        all(&c, Some(true), Some(true), false)?;
        all(&b, Some(true), Some(true), false)?;
        all(&bytes, Some(true), Some(true), false)?;
    }

    #[test]
    fn options_and_units_round_trip(
        o in any::<Option<u32>>(), oo in any::<Option<Option<u8>>>(), ou in any::<Option<()>>(),
    ) {
        all(&o, Some(false), Some(true), false)?;
        all(&oo, Some(false), Some(oo != Some(None)), false)?;
        all(&ou, Some(false), Some(ou.is_none()), false)?;
        all(&(), Some(false), Some(true), false)?;
        all(&Marker, Some(false), Some(true), false)?;
        all(&Some(Marker), Some(false), Some(false), false)?;
    }

    #[test]
    fn collections_round_trip(
        strings in prop::collection::vec(any::<String>(), 0..4),
        ints in prop::collection::vec(any::<i64>(), 0..4),
        map in prop::collection::hash_map(any::<u32>(), any::<String>(), 0..4),
        floats in prop::collection::btree_map(any::<String>(), f64s(), 0..4),
        pair in any::<(u8, String)>(),
    ) {
        // The raw codec stores an empty sequence of anything as empty bytes.
        all(&strings, Some(strings.is_empty()), Some(true), false)?;
        all(&ints, Some(ints.is_empty()), Some(true), false)?;
        all(&map, Some(false), Some(true), false)?;
        let finite = floats.values().all(|f| f.is_finite());
        all(&floats, Some(false), Some(finite), true)?;
        all(&pair, Some(false), Some(true), false)?;
    }

    #[test]
    fn structs_and_enums_round_trip(record in records()) {
        let finite = record.score.is_none_or(f32::is_finite);
        all(&record, Some(false), Some(finite), true)?;
        for event in &record.events {
            all(event, Some(false), Some(true), false)?;
        }
    }

    /// A plain field decodes only from the bytes its value encodes to: no second spelling
    /// of a member can exist.
    #[test]
    fn plain_fields_have_one_spelling(
        bytes in prop::collection::vec(any::<u8>(), 0..24),
        digits in "-?[0-9]{0,40}",
    ) {
        for input in [&bytes[..], digits.as_bytes()] {
            strict::<u8>(input)?;
            strict::<i8>(input)?;
            strict::<u32>(input)?;
            strict::<i64>(input)?;
            strict::<u128>(input)?;
            strict::<i128>(input)?;
            strict::<UserId>(input)?;
            strict::<String>(input)?;
            strict::<char>(input)?;
        }
    }

    #[test]
    fn borrowed_fields_match_owned_ones(s in any::<String>()) {
        let tag = TypeTag::of_owned::<str>();
        prop_assert_eq!(
            Postcard.encode_field(s.as_str(), &tag).unwrap(),
            Postcard.encode_field(&s, &TypeTag::of::<String>()).unwrap()
        );
        prop_assert_eq!(Postcard.encode_field(s.as_str(), &tag).unwrap(), s.as_bytes());
        prop_assert_eq!(
            Postcard.encode(s.as_str(), &tag).unwrap(),
            Postcard.encode(&s, &TypeTag::of::<String>()).unwrap()
        );
    }
}

fn strict<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let tag = TypeTag::of::<T>();
    if let Ok(v) = Postcard.decode_field::<T>(bytes, &tag) {
        prop_assert_eq!(
            Postcard.encode_field(&v, &tag).unwrap(),
            bytes,
            "{:?} read from {:?}",
            v,
            bytes
        );
    }
    Ok(())
}

/// Every `HashMap` key type serde_json can write reads back (as a JSON object key, a string).
#[cfg(feature = "json")]
#[test]
fn json_map_keys_round_trip() {
    let t = TypeTag::of::<u8>();
    fn back<K>(map: HashMap<K, u8>) -> HashMap<K, u8>
    where
        K: Serialize + DeserializeOwned + Eq + std::hash::Hash,
    {
        let t = TypeTag::of::<u8>();
        Json.decode(&Json.encode(&map, &t).unwrap(), &t).unwrap()
    }
    let ints = HashMap::from([(-1i64, 1u8), (i64::MAX, 2)]);
    assert_eq!(back(ints.clone()), ints);
    let bools = HashMap::from([(true, 1u8), (false, 2)]);
    assert_eq!(back(bools.clone()), bools);
    let chars = HashMap::from([('a', 1u8), ('"', 2)]);
    assert_eq!(back(chars.clone()), chars);
    let big = HashMap::from([(u128::MAX, 1u8)]);
    assert_eq!(back(big.clone()), big);
    let e = Json.encode(&HashMap::from([((), 1u8)]), &t).unwrap_err();
    assert_eq!(e.kind(), CodecErrorKind::Unsupported);
}
