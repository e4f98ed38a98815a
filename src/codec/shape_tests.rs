//! Shapes and fingerprints: golden values, what changes them and what does not, tracing of
//! awkward types, the fallback for types that cannot be traced.

// Most types here exist only to be traced, never built.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::*;

fn shape<T: DeserializeOwned>() -> &'static str {
    let tag = TypeTag::of::<T>();
    tag.shape()
        .unwrap_or_else(|| panic!("{} untraced: {:?}", tag.name(), tag.untraced_reason()))
}

fn fp<T: DeserializeOwned>() -> u32 {
    TypeTag::of::<T>().fingerprint()
}

fn untraced<T: DeserializeOwned>() -> &'static str {
    let tag = TypeTag::of::<T>();
    assert_eq!(tag.shape(), None, "{tag:?}");
    tag.untraced_reason().expect("a reason")
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(super) struct User {
    pub(super) id: u32,
    pub(super) name: String,
}

#[derive(Deserialize)]
struct Team {
    lead: User,
    members: Vec<User>,
}

#[derive(Deserialize)]
struct List {
    value: u8,
    next: Option<Box<List>>,
}

#[derive(Deserialize)]
enum Color {
    Red,
    Green,
}

#[derive(Deserialize)]
enum Event {
    Ping,
    Move(i32, i32),
    Say(String),
    Login { user: u32 },
}

#[derive(Deserialize)]
struct UserId(u64);

#[derive(Deserialize)]
struct Marker;

#[derive(Deserialize)]
struct Pair(u8, String);

#[derive(Deserialize)]
enum Expr {
    Add(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Lit(i64),
}

#[derive(Deserialize)]
struct Tree(Vec<Tree>);

#[derive(Deserialize)]
enum Ping {
    Pong(Box<Pong>),
    Stop,
}

#[derive(Deserialize)]
enum Pong {
    Ping(Box<Ping>),
    Colored(Color),
}

/// The canonical shape text and fingerprint of representative types. These fingerprints are
/// in every postcard value in Redis: a change here makes all stored data unreadable.
#[test]
fn golden_shapes_and_fingerprints() {
    let cases: Vec<(TypeTag, &str, u32)> = vec![
        (TypeTag::of::<bool>(), "bool", 0x4099d264),
        (TypeTag::of::<u8>(), "u8", 0x6835f6cd),
        (TypeTag::of::<u32>(), "u32", 0xbf0ea7bd),
        (TypeTag::of::<i64>(), "i64", 0xc471f524),
        (TypeTag::of::<u128>(), "u128", 0xdaabfbae),
        (TypeTag::of::<f32>(), "f32", 0x88183a5e),
        (TypeTag::of::<f64>(), "f64", 0xb2ace628),
        (TypeTag::of::<char>(), "char", 0x267ffeb9),
        (TypeTag::of::<String>(), "str", 0x05ec993a),
        (TypeTag::of::<()>(), "unit", 0x72ce0701),
        (TypeTag::of::<Vec<u32>>(), "seq<u32>", 0xb2d808ba),
        (TypeTag::of::<Option<u8>>(), "option<u8>", 0x097f39ce),
        (
            TypeTag::of::<Option<Option<u8>>>(),
            "option<option<u8>>",
            0xb961eb5d,
        ),
        (TypeTag::of::<(u8, String)>(), "tuple<u8,str>", 0x81e3a6c9),
        (TypeTag::of::<[u16; 3]>(), "tuple<u16,u16,u16>", 0xa2e87bc1),
        (
            TypeTag::of::<HashMap<String, u32>>(),
            "map<str,u32>",
            0x92b92990,
        ),
        (
            TypeTag::of::<User>(),
            r#"struct{"id":u32,"name":str}"#,
            0x125e0a89,
        ),
        (
            TypeTag::of::<Team>(),
            r#"struct{"lead":struct{"id":u32,"name":str},"members":seq<struct{"id":u32,"name":str}>}"#,
            0x6e2ff085,
        ),
        (
            TypeTag::of::<List>(),
            r#"struct{"value":u8,"next":option<^0>}"#,
            0x6468d7b6,
        ),
        (
            TypeTag::of::<Color>(),
            r#"enum{"Red":unit,"Green":unit}"#,
            0x85ff0e5f,
        ),
        (
            TypeTag::of::<Event>(),
            r#"enum{"Ping":unit,"Move":tuple<i32,i32>,"Say":newtype<str>,"Login":struct{"user":u32}}"#,
            0x7c446648,
        ),
        (TypeTag::of::<UserId>(), "newtype<u64>", 0x3aa736eb),
        (TypeTag::of::<Marker>(), "unit_struct", 0x742d89cc),
        (TypeTag::of::<Pair>(), "tuple_struct<u8,str>", 0xf9f7d374),
        (
            TypeTag::of::<Expr>(),
            r#"enum{"Add":tuple<^0,^0>,"Neg":newtype<^0>,"Lit":newtype<i64>}"#,
            0x7c281fb2,
        ),
        (TypeTag::of::<Tree>(), "newtype<seq<^0>>", 0x237f8a4d),
        (
            TypeTag::of::<Ping>(),
            r#"enum{"Pong":newtype<enum{"Ping":newtype<^1>,"Colored":newtype<enum{"Red":unit,"Green":unit}>}>,"Stop":unit}"#,
            0x305f6873,
        ),
    ];
    let mut seen = HashMap::new();
    for (tag, shape, fingerprint) in &cases {
        assert_eq!(tag.shape(), Some(*shape), "{}", tag.name());
        assert_eq!(
            tag.fingerprint(),
            *fingerprint,
            "{}: {:#010x}",
            tag.name(),
            tag.fingerprint()
        );
        if let Some(other) = seen.insert(tag.fingerprint(), tag.name()) {
            panic!("{} and {other} share a fingerprint", tag.name());
        }
    }
}

/// The same type as it evolves between two builds, in two modules of one test binary.
mod v1 {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Account {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: super::v1::Role,
    }

    #[derive(Deserialize)]
    pub enum Role {
        User,
        Admin,
    }
}

mod v2 {
    use serde::Deserialize;

    /// Fields reordered.
    #[derive(Deserialize)]
    pub struct Account {
        pub owner_id: u64,
        pub balance_cents: i64,
        pub role: super::v1::Role,
    }

    /// Variants reordered.
    #[derive(Deserialize)]
    pub enum Role {
        Admin,
        User,
    }

    /// A variant added at the end.
    #[derive(Deserialize)]
    pub enum RoleAdded {
        User,
        Admin,
        Auditor,
    }

    /// A variant renamed.
    #[derive(Deserialize)]
    pub enum RoleRenamed {
        Member,
        Admin,
    }

    /// A variant's contents changed.
    #[derive(Deserialize)]
    pub enum RoleWithData {
        User,
        Admin(u8),
    }

    #[derive(Deserialize)]
    pub struct WithRole {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: Role,
    }

    /// A field added.
    #[derive(Deserialize)]
    pub struct Added {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: super::v1::Role,
        pub note: Option<String>,
    }

    /// A field added with a default: postcard cannot read the old bytes as this type either
    /// (it has no "missing field"), so the shape changes.
    #[derive(Deserialize)]
    pub struct AddedWithDefault {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: super::v1::Role,
        #[serde(default)]
        pub note: Option<String>,
    }

    /// A field removed.
    #[derive(Deserialize)]
    pub struct Removed {
        pub balance_cents: i64,
        pub owner_id: u64,
    }

    /// A field renamed.
    #[derive(Deserialize)]
    pub struct Renamed {
        pub balance: i64,
        pub owner_id: u64,
        pub role: super::v1::Role,
    }

    /// A field's type changed.
    #[derive(Deserialize)]
    pub struct Retyped {
        pub balance_cents: i128,
        pub owner_id: u64,
        pub role: super::v1::Role,
    }

    /// A field's type wrapped in a newtype.
    #[derive(Deserialize)]
    pub struct Wrapped {
        pub balance_cents: Cents,
        pub owner_id: u64,
        pub role: super::v1::Role,
    }

    #[derive(Deserialize)]
    pub struct Cents(pub i64);
}

/// Renamed and moved: another module, another name, the same shape.
mod billing {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Ledger {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: Level,
    }

    #[derive(Deserialize)]
    pub enum Level {
        User,
        Admin,
    }

    /// A serde rename keeps the stored names, so the shape.
    #[derive(Deserialize)]
    pub struct RenamedFieldKeptName {
        #[serde(rename = "balance_cents")]
        pub cents: i64,
        pub owner_id: u64,
        pub role: Level,
    }
}

#[test]
fn a_renamed_or_moved_type_keeps_its_fingerprint() {
    assert_eq!(fp::<v1::Account>(), fp::<billing::Ledger>());
    assert_eq!(fp::<v1::Role>(), fp::<billing::Level>());
    assert_eq!(fp::<v1::Account>(), fp::<billing::RenamedFieldKeptName>());
}

#[test]
fn every_change_of_shape_changes_the_fingerprint() {
    let base = fp::<v1::Account>();
    let changed = [
        ("fields reordered", fp::<v2::Account>()),
        ("variants reordered", fp::<v2::WithRole>()),
        ("field added", fp::<v2::Added>()),
        ("field added with a default", fp::<v2::AddedWithDefault>()),
        ("field removed", fp::<v2::Removed>()),
        ("field renamed", fp::<v2::Renamed>()),
        ("field type changed", fp::<v2::Retyped>()),
        ("field wrapped in a newtype", fp::<v2::Wrapped>()),
    ];
    for (change, fingerprint) in changed {
        assert_ne!(fingerprint, base, "{change}");
    }
    let role = fp::<v1::Role>();
    for (change, fingerprint) in [
        ("variants reordered", fp::<v2::Role>()),
        ("variant added", fp::<v2::RoleAdded>()),
        ("variant renamed", fp::<v2::RoleRenamed>()),
        ("variant contents changed", fp::<v2::RoleWithData>()),
    ] {
        assert_ne!(fingerprint, role, "{change}");
    }
}

#[test]
fn types_serde_writes_alike_share_a_shape() {
    assert_eq!(shape::<Vec<u8>>(), shape::<VecDeque<u8>>());
    assert_eq!(shape::<Vec<u8>>(), shape::<HashSet<u8>>());
    assert_eq!(shape::<HashMap<u8, u8>>(), shape::<BTreeMap<u8, u8>>());
    assert_eq!(shape::<[u8; 2]>(), shape::<(u8, u8)>());
    assert_eq!(shape::<Box<u32>>(), shape::<u32>());
    assert_eq!(shape::<Box<str>>(), shape::<String>());
    assert_eq!(shape::<std::borrow::Cow<'static, str>>(), shape::<String>());
    // Newtype and tuple structs are part of the shape: wrapping is a change.
    assert_ne!(shape::<UserId>(), shape::<u64>());
    assert_ne!(shape::<Pair>(), shape::<(u8, String)>());
    assert_ne!(shape::<Marker>(), shape::<()>());
}

#[test]
fn borrowed_forms_share_the_owned_tag() {
    assert_eq!(TypeTag::of_owned::<str>(), TypeTag::of::<String>());
    assert_eq!(TypeTag::of_owned::<[u32]>(), TypeTag::of::<Vec<u32>>());
    assert_eq!(
        TypeTag::of_owned::<[String]>(),
        TypeTag::of::<Vec<String>>()
    );
    assert_eq!(TypeTag::of_owned::<u8>(), TypeTag::of::<u8>());
    assert_eq!(TypeTag::of_owned::<User>(), TypeTag::of::<User>());
}

/// Lifetimes do not matter: a borrowed-capable type that is `DeserializeOwned` gets a tag
/// without being `'static`.
#[test]
fn non_static_types_get_tags() {
    #[derive(Deserialize)]
    struct Named<'a> {
        name: std::borrow::Cow<'a, str>,
    }
    fn tag_of<'a>(_: &'a str) -> TypeTag {
        TypeTag::of::<Named<'a>>()
    }
    let local = String::from("local");
    assert_eq!(tag_of(&local).shape(), Some(r#"struct{"name":str}"#));
    assert_eq!(tag_of(&local), TypeTag::of::<Named<'static>>());
}

#[test]
fn tags_are_cached_per_type() {
    let a = TypeTag::of::<Team>();
    let b = TypeTag::of::<Team>();
    assert_eq!(a, b);
    // The same leaked text, not a second trace.
    assert!(std::ptr::eq(a.shape().unwrap(), b.shape().unwrap()));
    assert!(std::ptr::eq(a.name(), b.name()));
}

/// Two containers of the same name and field names, one inside the other.
mod a {
    #[derive(serde::Deserialize)]
    pub struct Item {
        pub x: u32,
    }
}

mod b {
    #[derive(serde::Deserialize)]
    pub struct Item {
        pub x: super::a::Item,
    }
}

#[test]
fn containers_are_told_apart_by_type_not_by_name() {
    #[derive(Deserialize)]
    struct Both {
        plain: a::Item,
        nested: b::Item,
    }
    #[derive(Deserialize)]
    struct Generic<T> {
        x: T,
    }
    #[derive(Deserialize)]
    struct Instances {
        small: Generic<u8>,
        text: Generic<String>,
    }
    assert_eq!(shape::<b::Item>(), r#"struct{"x":struct{"x":u32}}"#);
    assert_eq!(
        shape::<Both>(),
        r#"struct{"plain":struct{"x":u32},"nested":struct{"x":struct{"x":u32}}}"#
    );
    assert_eq!(
        shape::<Instances>(),
        r#"struct{"small":struct{"x":u8},"text":struct{"x":str}}"#
    );
}

#[test]
fn names_are_quoted_and_escaped() {
    #[derive(Deserialize)]
    struct Odd {
        #[serde(rename = "a\"b\\c,d:e")]
        field: u8,
    }
    assert_eq!(shape::<Odd>(), r#"struct{"a\"b\\c,d:e":u8}"#);
}

#[test]
fn every_variant_of_every_nested_enum_is_traced() {
    #[derive(Deserialize)]
    enum Inner {
        A,
        B(u8),
        C { c: Color },
    }
    #[derive(Deserialize)]
    enum Outer {
        One(Inner),
        Two(Vec<Inner>, Option<Color>),
        Three,
    }
    #[derive(Deserialize)]
    struct Holder {
        first: Outer,
        map: BTreeMap<String, Inner>,
    }
    let inner = r#"enum{"A":unit,"B":newtype<u8>,"C":struct{"c":enum{"Red":unit,"Green":unit}}}"#;
    let outer = format!(
        r#"enum{{"One":newtype<{inner}>,"Two":tuple<seq<{inner}>,option<enum{{"Red":unit,"Green":unit}}>>,"Three":unit}}"#
    );
    assert_eq!(
        shape::<Holder>(),
        format!(r#"struct{{"first":{outer},"map":map<str,{inner}>}}"#)
    );
}

#[test]
fn recursion_through_enums_sequences_and_maps() {
    #[derive(Deserialize)]
    enum Json {
        Null,
        Array(Vec<Json>),
        Object(BTreeMap<String, Json>),
    }
    assert_eq!(
        shape::<Json>(),
        r#"enum{"Null":unit,"Array":newtype<seq<^0>>,"Object":newtype<map<str,^0>>}"#
    );
    // The only base case comes last.
    #[derive(Deserialize)]
    enum Deep {
        Left(Box<Deep>),
        Right(Box<Deep>, Box<Deep>),
        Leaf,
    }
    assert_eq!(
        shape::<Deep>(),
        r#"enum{"Left":newtype<^0>,"Right":tuple<^0,^0>,"Leaf":unit}"#
    );
    // A recursive enum reached only through a variant of another.
    #[derive(Deserialize)]
    enum Wrapper {
        Empty,
        Holds(Deep),
        Again(Box<Wrapper>),
    }
    assert!(shape::<Wrapper>().contains(r#""Holds":newtype<enum{"Left":newtype<^0>"#));
    // A struct recursing only through an enum that comes back to it.
    #[derive(Deserialize)]
    struct Node {
        children: Children,
    }
    #[derive(Deserialize)]
    enum Children {
        Many(Box<Node>, Box<Node>),
        None,
    }
    assert_eq!(
        shape::<Node>(),
        r#"struct{"children":enum{"Many":tuple<^1,^1>,"None":unit}}"#
    );
}

/// A type that reads `u32`s but accepts only 7: no sample passes.
#[derive(Debug, PartialEq, Serialize)]
struct Seven(u32);

impl<'de> Deserialize<'de> for Seven {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u32::deserialize(d)? {
            7 => Ok(Seven(7)),
            n => Err(de::Error::custom(format!("{n} is not 7"))),
        }
    }
}

#[test]
fn types_that_refuse_every_sample_are_untraced() {
    let reason = untraced::<Seven>();
    assert!(reason.contains("refused"), "{reason}");
    assert!(reason.contains("is not 7"), "{reason}");
    #[derive(Deserialize)]
    struct Holder {
        ok: u8,
        seven: Seven,
    }
    assert!(untraced::<Holder>().contains("is not 7"));
}

/// Types that validate what they read find a sample they accept among the alternatives.
#[test]
fn validating_types_find_an_accepted_sample() {
    /// Like a UUID read by a non-human-readable format: exactly 16 bytes.
    struct Uuid;
    impl<'de> Deserialize<'de> for Uuid {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Uuid;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("16 bytes")
                }
                fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Uuid, E> {
                    match b.len() {
                        16 => Ok(Uuid),
                        n => Err(E::invalid_length(n, &self)),
                    }
                }
            }
            d.deserialize_bytes(V)
        }
    }
    /// Like a semantic version parsed from a string.
    struct Version;
    impl<'de> Deserialize<'de> for Version {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            match s.split('.').count() {
                3 => Ok(Version),
                _ => Err(de::Error::custom("not a version")),
            }
        }
    }
    /// Reads bytes into a buffer it owns.
    struct Digest;
    impl<'de> Deserialize<'de> for Digest {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Digest;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Digest, E> {
                    match b.len() {
                        32 => Ok(Digest),
                        n => Err(E::invalid_length(n, &self)),
                    }
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
    #[derive(Deserialize)]
    struct Release {
        id: Uuid,
        version: Version,
        name: String,
        digest: Digest,
        build: std::num::NonZeroU32,
    }
    assert_eq!(
        shape::<Release>(),
        r#"struct{"id":bytes,"version":str,"name":str,"digest":bytes,"build":u32}"#
    );
}

#[test]
fn types_that_ask_the_data_for_its_type_are_untraced() {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Number(u64),
        Text(String),
    }
    assert!(untraced::<Loose>().contains("deserialize_any"));
    #[derive(Deserialize)]
    #[serde(tag = "type")]
    enum Tagged {
        A { x: u8 },
    }
    assert!(untraced::<Tagged>().contains("deserialize_any"));
    #[derive(Deserialize)]
    struct Flat {
        #[serde(flatten)]
        rest: BTreeMap<String, u8>,
    }
    assert!(!untraced::<Flat>().is_empty());
    assert!(!untraced::<serde::de::IgnoredAny>().is_empty());
    #[cfg(feature = "json")]
    assert!(untraced::<serde_json::Value>().contains("deserialize_any"));
}

#[test]
fn types_without_finite_values_are_untraced() {
    #[derive(Deserialize)]
    enum Never {}
    assert!(untraced::<Never>().contains("without variants"));
    #[derive(Deserialize)]
    enum Endless {
        More(Box<Endless>),
    }
    assert!(
        untraced::<Endless>().contains("deeper"),
        "{}",
        untraced::<Endless>()
    );
    #[derive(Deserialize)]
    struct Loop(Box<Loop>);
    assert!(!untraced::<Loop>().is_empty());
}

#[test]
fn a_panicking_deserialize_is_untraced() {
    struct Panics;
    impl<'de> Deserialize<'de> for Panics {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("tracer sample");
        }
    }
    assert!(untraced::<Panics>().contains("panicked"));
}

/// A hand-written `Deserialize` that asks for a sequence and reads none of it: its element
/// type is never seen.
#[test]
fn a_shape_never_asked_for_is_untraced() {
    struct Lazy;
    impl<'de> Deserialize<'de> for Lazy {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Lazy;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Lazy, A::Error> {
                    Ok(Lazy)
                }
            }
            d.deserialize_seq(V)
        }
    }
    assert!(untraced::<Lazy>().contains("never asked for"));
}

/// A `Deserialize` that asks for something else each time it is run: no single shape.
#[test]
fn a_shape_that_changes_between_runs_is_untraced() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    struct Fickle;
    impl<'de> Deserialize<'de> for Fickle {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if RUNS.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                u8::deserialize(d).map(|_| Fickle)
            } else {
                u16::deserialize(d).map(|_| Fickle)
            }
        }
    }
    // The enum needs two runs, and the Fickle inside a struct is recorded on both.
    #[derive(Deserialize)]
    struct Holder {
        color: Color,
        fickle: Fickle,
    }
    assert!(untraced::<Holder>().contains("different shapes"));
    #[derive(Deserialize)]
    struct InSeq {
        color: Color,
        fickle: Vec<Option<(Fickle,)>>,
    }
    assert!(untraced::<InSeq>().contains("different shapes"));
}

#[test]
fn untraced_types_fall_back_to_their_name() {
    let tag = TypeTag::of::<Seven>();
    assert_eq!(tag.name(), "Seven");
    assert_eq!(tag.field_form(), FieldForm::Encoded);
    // Never the fingerprint of a traced shape, even the same one.
    assert_ne!(tag.fingerprint(), fp::<u32>());
    mod elsewhere {
        #[derive(serde::Deserialize)]
        pub struct Seven(#[serde(deserialize_with = "no")] pub u32);
        fn no<'de, D: serde::Deserializer<'de>>(_: D) -> Result<u32, D::Error> {
            Err(serde::de::Error::custom("no"))
        }
    }
    // The documented weakness of the fallback: another untraced type of the same name.
    assert_eq!(
        TypeTag::of::<elsewhere::Seven>().fingerprint(),
        tag.fingerprint()
    );
    assert!(format!("{tag:?}").contains("untraced"));
}

#[test]
fn schema_versions_are_part_of_the_fingerprint() {
    let tag = TypeTag::of::<User>();
    assert_eq!(tag.schema_version(), None);
    let v0 = tag.with_schema_version(0);
    assert_eq!(v0.fingerprint(), tag.fingerprint());
    assert_eq!(v0.schema_version(), Some(0));
    let v1 = tag.with_schema_version(1);
    let v2 = tag.with_schema_version(2);
    assert_ne!(v1.fingerprint(), tag.fingerprint());
    assert_ne!(v1.fingerprint(), v2.fingerprint());
    assert_eq!(v1.fingerprint(), tag.with_schema_version(1).fingerprint());
    assert_eq!(v1.shape(), tag.shape());
    assert_eq!(v1.field_form(), tag.field_form());
    // Golden: a versioned fingerprint is stored like any other.
    assert_eq!(v1.fingerprint(), 0x8513_1972);
    let untraced = TypeTag::of::<Seven>();
    assert_ne!(
        untraced.with_schema_version(3).fingerprint(),
        untraced.fingerprint()
    );
    assert!(format!("{v2:?}").contains("schema_version: 2"));
}

#[test]
fn type_names_lose_their_paths() {
    assert_eq!(TypeTag::of::<String>().name(), "String");
    assert_eq!(
        TypeTag::of::<Vec<Option<String>>>().name(),
        "Vec<Option<String>>"
    );
    assert_eq!(TypeTag::of::<User>().name(), "User");
    assert_eq!(
        TypeTag::of::<(u8, std::collections::BTreeMap<String, u8>)>().name(),
        "(u8, BTreeMap<String, u8>)"
    );
    #[derive(Deserialize)]
    struct Café;
    assert_eq!(TypeTag::of::<Option<Café>>().name(), "Option<Café>");
}

#[test]
fn field_forms_follow_the_shape() {
    #[derive(Deserialize)]
    struct Name(String);
    #[derive(Deserialize)]
    struct Nested(Name);
    #[derive(Deserialize)]
    struct Initial(char);
    let cases = [
        (TypeTag::of::<String>(), FieldForm::Text),
        (TypeTag::of_owned::<str>(), FieldForm::Text),
        (TypeTag::of::<char>(), FieldForm::Text),
        (TypeTag::of::<Name>(), FieldForm::Text),
        (TypeTag::of::<Nested>(), FieldForm::Text),
        (TypeTag::of::<Initial>(), FieldForm::Text),
        (TypeTag::of::<std::path::PathBuf>(), FieldForm::Text),
        (TypeTag::of::<i8>(), FieldForm::Integer),
        (TypeTag::of::<i16>(), FieldForm::Integer),
        (TypeTag::of::<i32>(), FieldForm::Integer),
        (TypeTag::of::<i64>(), FieldForm::Integer),
        (TypeTag::of::<i128>(), FieldForm::Integer),
        (TypeTag::of::<u8>(), FieldForm::Integer),
        (TypeTag::of::<u16>(), FieldForm::Integer),
        (TypeTag::of::<u32>(), FieldForm::Integer),
        (TypeTag::of::<u64>(), FieldForm::Integer),
        (TypeTag::of::<u128>(), FieldForm::Integer),
        (TypeTag::of::<UserId>(), FieldForm::Integer),
        (TypeTag::of::<std::num::NonZeroU64>(), FieldForm::Integer),
        (TypeTag::of::<bool>(), FieldForm::Encoded),
        (TypeTag::of::<f32>(), FieldForm::Encoded),
        (TypeTag::of::<f64>(), FieldForm::Encoded),
        (TypeTag::of::<()>(), FieldForm::Encoded),
        (TypeTag::of::<Marker>(), FieldForm::Encoded),
        (TypeTag::of::<Vec<u8>>(), FieldForm::Encoded),
        (TypeTag::of::<Option<String>>(), FieldForm::Encoded),
        (TypeTag::of::<(String,)>(), FieldForm::Encoded),
        (TypeTag::of::<Pair>(), FieldForm::Encoded),
        (TypeTag::of::<Color>(), FieldForm::Encoded),
        (TypeTag::of::<User>(), FieldForm::Encoded),
        (TypeTag::of::<Tree>(), FieldForm::Encoded),
        (TypeTag::of::<Seven>(), FieldForm::Encoded),
    ];
    for (tag, form) in cases {
        assert_eq!(tag.field_form(), form, "{}", tag.name());
    }
}

#[test]
fn internal_tags_are_checked_and_distinct() {
    let memo = TypeTag::internal("RegionMemo");
    assert!(memo.is_checked());
    assert_eq!(memo.shape(), None);
    assert_eq!(memo.untraced_reason(), None);
    assert_eq!(memo.field_form(), FieldForm::Encoded);
    assert_eq!(memo.name(), "RegionMemo");
    assert_eq!(memo, TypeTag::internal("RegionMemo"));
    assert_ne!(memo.fingerprint(), TypeTag::internal("Other").fingerprint());
    assert!(format!("{memo:?}").contains("internal"));
    // Golden: a region's memoized-call fields start with this fingerprint.
    assert_eq!(memo.fingerprint(), 0x6308_dccc);
}

#[test]
fn debug_shows_name_fingerprint_and_shape() {
    let shown = format!("{:?}", TypeTag::of::<u32>());
    assert_eq!(
        shown,
        r#"TypeTag { name: "u32", fingerprint: 0xbf0ea7bd, shape: "u32" }"#
    );
}

#[test]
fn checked_means_traced_or_versioned() {
    assert!(TypeTag::of::<u8>().is_checked());
    assert!(!TypeTag::of::<Seven>().is_checked());
    assert!(TypeTag::of::<Seven>().with_schema_version(0).is_checked());
}

/// An enum that names its variants only by string cannot be read by postcard (which names
/// them by index): untraced, for that reason rather than a sample's.
#[test]
fn enums_refusing_variant_indices_are_untraced() {
    struct ByName;
    impl<'de> Deserialize<'de> for ByName {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Variant;
            impl<'de> Deserialize<'de> for Variant {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    struct V;
                    impl Visitor<'_> for V {
                        type Value = Variant;
                        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                            f.write_str("a variant name")
                        }
                        fn visit_str<E: de::Error>(self, _: &str) -> Result<Variant, E> {
                            Ok(Variant)
                        }
                    }
                    d.deserialize_identifier(V)
                }
            }
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ByName;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an enum")
                }
                fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<ByName, A::Error> {
                    let (Variant, access) = data.variant::<Variant>()?;
                    de::VariantAccess::unit_variant(access)?;
                    Ok(ByName)
                }
            }
            d.deserialize_enum("ByName", &["A"], V)
        }
    }
    /// Reads a string that must be a version, before the enum.
    struct Version;
    impl<'de> Deserialize<'de> for Version {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match String::deserialize(d)?.as_str() {
                "1.0.0" => Ok(Version),
                _ => Err(de::Error::custom("not a version")),
            }
        }
    }
    #[derive(Deserialize)]
    struct Holder {
        version: Version,
        by_name: ByName,
    }
    let reason = untraced::<Holder>();
    assert!(reason.contains("integer"), "{reason}");
}

/// A visitor that reads `u8` contents only when told to, as a hand-written `Deserialize`
/// might read more on some runs than on others.
struct Partial(bool);

impl<'de> Visitor<'de> for Partial {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        if self.0 {
            while a.next_element::<u8>()?.is_some() {}
        }
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        if self.0 {
            while a.next_entry::<String, u8>()?.is_some() {}
        }
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0 {
            u8::deserialize(d)?;
        }
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.visit_some(d)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (index, variant) = data.variant::<u32>()?;
        match index {
            0 => de::VariantAccess::tuple_variant(variant, 2, self),
            1 => de::VariantAccess::struct_variant(variant, &["a", "b"], self),
            _ => {
                let inner = de::VariantAccess::newtype_variant::<Option<u8>>(variant)?;
                let _ = (inner, self);
                Ok(())
            }
        }
    }
}

/// Declares a type whose `Deserialize` calls `$call` with a [`Partial`] that reads from the
/// type's `$from`-th run on (counted from 0).
macro_rules! partial {
    ($name:ident, $from:expr, |$d:ident, $v:ident| $call:expr) => {
        struct $name;
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>($d: D) -> Result<Self, D::Error> {
                static RUNS: AtomicUsize = AtomicUsize::new(0);
                let $v = Partial(RUNS.fetch_add(1, Ordering::Relaxed) >= $from);
                $call.map(|()| $name)
            }
        }
    };
}

/// What one run leaves unknown, a later run fills in: shapes and container bodies merge.
#[test]
fn partly_read_shapes_are_completed_by_later_runs() {
    partial!(LaterOption, 1, |d, v| d.deserialize_option(v));
    partial!(LaterSeq, 1, |d, v| d.deserialize_seq(v));
    partial!(LaterMap, 1, |d, v| d.deserialize_map(v));
    partial!(LaterTuple, 1, |d, v| d.deserialize_tuple(2, v));
    partial!(LaterTupleStruct, 1, |d, v| d
        .deserialize_tuple_struct("T", 2, v));
    partial!(LaterStruct, 1, |d, v| d.deserialize_struct(
        "S",
        &["a", "b"],
        v
    ));
    partial!(LaterNewtype, 1, |d, v| d.deserialize_newtype_struct("N", v));
    partial!(LaterTupleVariant, 1, |d, v| d.deserialize_enum(
        "E",
        &["A"],
        v
    ));
    #[derive(Deserialize)]
    struct Holder {
        o: LaterOption,
        s: LaterSeq,
        m: LaterMap,
        t: LaterTuple,
        ts: LaterTupleStruct,
        st: LaterStruct,
        n: LaterNewtype,
        v: LaterTupleVariant,
        options: Option<Option<LaterSeq2>>,
    }
    partial!(LaterSeq2, 1, |d, v| d.deserialize_seq(v));
    assert_eq!(
        shape::<Holder>(),
        r#"struct{"o":option<u8>,"s":seq<u8>,"m":map<str,u8>,"t":tuple<u8,u8>,"ts":tuple_struct<u8,u8>,"st":struct{"a":u8,"b":u8},"n":newtype<u8>,"v":enum{"A":tuple<u8,u8>},"options":option<option<seq<u8>>>}"#
    );
    // Struct and newtype variants, each the only variant of its enum.
    partial!(LaterStructVariant, 1, |d, v| d.deserialize_enum(
        "E",
        &["A", "B"],
        v
    ));
    partial!(LaterNewtypeVariant, 1, |d, v| d.deserialize_enum(
        "E",
        &["A", "B", "C"],
        v
    ));
    #[derive(Deserialize)]
    struct Variants {
        s: LaterStructVariant,
        n: LaterNewtypeVariant,
    }
    assert_eq!(
        shape::<Variants>(),
        r#"struct{"s":enum{"A":tuple<u8,u8>,"B":struct{"a":u8,"b":u8}},"n":enum{"A":tuple<u8,u8>,"B":struct{"a":u8,"b":u8},"C":newtype<option<u8>>}}"#
    );
}

/// A unit variant taken again on a later run, when everything else about its enum is known
/// but a container on the path is not.
#[test]
fn variants_traced_twice_merge() {
    // Read on its fourth run: the first three leave `S` incomplete while `E` is fully seen.
    partial!(Third, 3, |d, v| d.deserialize_seq(v));
    #[derive(Deserialize)]
    enum E {
        U,
        A(Box<S>),
    }
    #[derive(Deserialize)]
    struct S {
        e: E,
        x: Third,
    }
    assert_eq!(
        shape::<S>(),
        r#"struct{"e":enum{"U":unit,"A":newtype<^1>},"x":seq<u8>}"#
    );
}

/// A `Deserialize` that asks for `$first` on even runs and `$second` on odd ones, inside a
/// struct that needs several runs (for its enum).
macro_rules! fickle {
    ($name:ident, |$d:ident, $v:ident| $first:expr, $second:expr) => {{
        struct $name;
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>($d: D) -> Result<Self, D::Error> {
                static RUNS: AtomicUsize = AtomicUsize::new(0);
                let $v = Partial(true);
                let _ = &$v;
                if RUNS.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                    $first.map(|()| $name)
                } else {
                    $second.map(|()| $name)
                }
            }
        }
        #[derive(Deserialize)]
        struct Holder {
            color: Color,
            fickle: $name,
        }
        untraced::<Holder>()
    }};
}

#[test]
fn shapes_that_disagree_between_runs_are_untraced() {
    // A first run that leaves the variant's contents unknown, so that a later run traces the
    // variant again.
    let reasons = [
        fickle!(
            Tuple,
            |d, v| d.deserialize_tuple(2, v),
            d.deserialize_tuple(3, v)
        ),
        fickle!(
            TupleVariant,
            |d, v| d.deserialize_enum("E", &["A"], OneVariant::Tuple(2, false)),
            d.deserialize_enum("E", &["A"], OneVariant::Tuple(3, true))
        ),
        fickle!(
            StructVariant,
            |d, v| d.deserialize_enum("E", &["A"], OneVariant::Struct(&["a", "b"], false)),
            d.deserialize_enum("E", &["A"], OneVariant::Struct(&["x", "y"], true))
        ),
        fickle!(
            LongerStructVariant,
            |d, v| d.deserialize_enum("E", &["A"], OneVariant::Struct(&["a", "b"], false)),
            d.deserialize_enum("E", &["A"], OneVariant::Struct(&["a", "b", "c"], true))
        ),
        fickle!(
            VariantKind,
            |d, v| d.deserialize_enum("E", &["A"], OneVariant::Tuple(2, false)),
            d.deserialize_enum("E", &["A"], OneVariant::Unit)
        ),
        fickle!(Option, |d, v| d.deserialize_option(v), d.deserialize_seq(v)),
        fickle!(Map, |d, v| d.deserialize_map(v), d.deserialize_tuple(2, v)),
    ];
    for reason in reasons {
        assert!(reason.contains("different shapes"), "{reason}");
    }
}

/// Reads whatever variant it is given as one kind of variant, reading its `u8` contents or
/// not.
enum OneVariant {
    Tuple(usize, bool),
    Struct(&'static [&'static str], bool),
    Unit,
}

impl<'de> Visitor<'de> for OneVariant {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an enum")
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (_, variant) = data.variant::<u32>()?;
        match self {
            OneVariant::Tuple(len, read) => {
                de::VariantAccess::tuple_variant(variant, len, Partial(read))
            }
            OneVariant::Struct(fields, read) => {
                de::VariantAccess::struct_variant(variant, fields, Partial(read))
            }
            OneVariant::Unit => de::VariantAccess::unit_variant(variant),
        }
    }
}

/// Once everything below a container is known, later runs only build a value through it
/// and record nothing: what a hand-written `Deserialize` asks for then does not matter.
#[test]
fn complete_containers_are_not_traced_again() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    struct AskedOnce;
    impl<'de> Deserialize<'de> for AskedOnce {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if RUNS.fetch_add(1, Ordering::Relaxed) == 0 {
                u8::deserialize(d).map(|_| AskedOnce)
            } else {
                String::deserialize(d).map(|_| AskedOnce)
            }
        }
    }
    #[derive(Deserialize)]
    struct Inner {
        asked: AskedOnce,
    }
    #[derive(Deserialize)]
    struct Holder {
        inner: Inner,
        color: Color,
    }
    assert_eq!(
        shape::<Holder>(),
        r#"struct{"inner":struct{"asked":u8},"color":enum{"Red":unit,"Green":unit}}"#
    );
    assert_eq!(
        RUNS.load(Ordering::Relaxed),
        2,
        "built again on the second run"
    );

    // The same for a variant seen on the first run.
    static VARIANT_RUNS: AtomicUsize = AtomicUsize::new(0);
    struct AskedOnceInVariant;
    impl<'de> Deserialize<'de> for AskedOnceInVariant {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if VARIANT_RUNS.fetch_add(1, Ordering::Relaxed) == 0 {
                u8::deserialize(d).map(|_| AskedOnceInVariant)
            } else {
                String::deserialize(d).map(|_| AskedOnceInVariant)
            }
        }
    }
    #[derive(Deserialize)]
    enum OneVariant {
        Only(AskedOnceInVariant),
    }
    #[derive(Deserialize)]
    struct VariantHolder {
        one: OneVariant,
        color: Color,
    }
    assert_eq!(
        shape::<VariantHolder>(),
        r#"struct{"one":enum{"Only":newtype<u8>},"color":enum{"Red":unit,"Green":unit}}"#
    );
    assert_eq!(VARIANT_RUNS.load(Ordering::Relaxed), 2);
}

/// An enum whose many recursive variants come before its base case: cutting must not
/// explore every combination of them (2^24 values here) before it knows `Leaf`.
#[test]
fn base_cases_listed_last_are_found_quickly() {
    #[derive(Deserialize)]
    enum Ast {
        V0(Box<Ast>, Box<Ast>),
        V1(Box<Ast>, Box<Ast>),
        V2(Box<Ast>, Box<Ast>),
        V3(Box<Ast>, Box<Ast>),
        V4(Box<Ast>, Box<Ast>),
        V5(Box<Ast>, Box<Ast>),
        V6(Box<Ast>, Box<Ast>),
        V7(Box<Ast>, Box<Ast>),
        V8(Box<Ast>, Box<Ast>),
        V9(Box<Ast>, Box<Ast>),
        V10(Box<Ast>, Box<Ast>),
        V11(Box<Ast>, Box<Ast>),
        V12(Box<Ast>, Box<Ast>),
        V13(Box<Ast>, Box<Ast>),
        V14(Box<Ast>, Box<Ast>),
        V15(Box<Ast>, Box<Ast>),
        V16(Box<Ast>, Box<Ast>),
        V17(Box<Ast>, Box<Ast>),
        V18(Box<Ast>, Box<Ast>),
        V19(Box<Ast>, Box<Ast>),
        V20(Box<Ast>, Box<Ast>),
        V21(Box<Ast>, Box<Ast>),
        V22(Box<Ast>, Box<Ast>),
        V23(Box<Ast>, Box<Ast>),
        Leaf { a: u8, b: u8 },
    }
    let shape = shape::<Ast>();
    assert!(shape.starts_with(r#"enum{"V0":tuple<^0,^0>,"V1":tuple<^0,^0>"#));
    assert!(shape.ends_with(r#""V23":tuple<^0,^0>,"Leaf":struct{"a":u8,"b":u8}}"#));
}

/// Building a value of a type that uses a container twice at each of 22 levels takes 2^22
/// steps: the step budget stops it rather than the machine.
#[test]
fn huge_types_exhaust_the_budget() {
    #[derive(Deserialize)]
    struct P<T>(Box<T>, Box<T>);
    type P4 = P<P<P<P<u8>>>>;
    type P8 = P<P<P<P<P4>>>>;
    type P12 = P<P<P<P<P8>>>>;
    type P16 = P<P<P<P<P12>>>>;
    type P20 = P<P<P<P<P16>>>>;
    type P22 = P<P<P20>>;
    assert!(untraced::<P22>().contains("steps"), "{}", untraced::<P22>());
}

/// A container used twice at each of 17 levels is traced once per level, but written out
/// inline its shape has 2^17 leaves: too long.
#[test]
fn shapes_too_long_to_write_are_untraced() {
    macro_rules! levels {
        ($top:ident $(, $next:ident)* ; $last:ident) => {
            levels!(@pairs $top $(, $next)* , $last);
            #[derive(Deserialize)]
            struct $last {
                a: u64,
            }
        };
        (@pairs $a:ident, $b:ident $(, $rest:ident)*) => {
            #[derive(Deserialize)]
            struct $a {
                left: Box<$b>,
                right: Box<$b>,
            }
            levels!(@pairs $b $(, $rest)*);
        };
        (@pairs $a:ident) => {};
    }
    levels!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16; L17);
    assert!(
        untraced::<L0>().contains("longer than"),
        "{}",
        untraced::<L0>()
    );
}

/// A map whose visitor reads a key but not its value on the first run: the map is not known
/// until a later run reads the value too.
#[test]
fn a_map_is_known_only_with_its_values() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    struct KeyFirst;
    impl<'de> Deserialize<'de> for KeyFirst {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V(bool);
            impl<'de> Visitor<'de> for V {
                type Value = KeyFirst;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<KeyFirst, A::Error> {
                    if a.next_key::<String>()?.is_some() && self.0 {
                        a.next_value::<u8>()?;
                    }
                    Ok(KeyFirst)
                }
            }
            d.deserialize_map(V(RUNS.fetch_add(1, Ordering::Relaxed) > 0))
        }
    }
    assert_eq!(shape::<KeyFirst>(), "map<str,u8>");
}

/// The shape is the compact form postcard stores, not the form a type writes for humans.
#[test]
fn shapes_are_traced_in_compact_form() {
    assert_eq!(shape::<std::net::Ipv4Addr>(), "tuple<u8,u8,u8,u8>");
    struct Level;
    impl<'de> Deserialize<'de> for Level {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if d.is_human_readable() {
                String::deserialize(d).map(|_| Level)
            } else {
                u32::deserialize(d).map(|_| Level)
            }
        }
    }
    assert_eq!(shape::<Level>(), "u32");
}

/// Another thread finds the tag the first one traced, through the process-wide cache.
#[test]
fn tags_are_shared_between_threads() {
    #[derive(Deserialize)]
    struct Shared {
        x: u8,
    }
    let here = TypeTag::of::<Shared>();
    let there = std::thread::spawn(TypeTag::of::<Shared>).join().unwrap();
    assert_eq!(here, there);
    assert!(std::ptr::eq(here.shape().unwrap(), there.shape().unwrap()));
}

/// What an earlier run saw stays known when a later run reads less.
#[test]
fn later_runs_that_read_less_keep_what_was_seen() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    struct Earlier;
    impl<'de> Deserialize<'de> for Earlier {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let first = RUNS.fetch_add(1, Ordering::Relaxed) == 0;
            d.deserialize_seq(Partial(first)).map(|()| Earlier)
        }
    }
    #[derive(Deserialize)]
    struct Holder {
        color: Color,
        earlier: Earlier,
    }
    assert_eq!(
        shape::<Holder>(),
        r#"struct{"color":enum{"Red":unit,"Green":unit},"earlier":seq<u8>}"#
    );
    assert!(RUNS.load(Ordering::Relaxed) >= 2, "traced on two runs");
}

/// Containers met several times before a recursion (a struct and an enum used three times
/// each): each leaves the path of containers being traced as it ends, so the recursion into
/// `Node` is still seen as one and cut.
#[test]
fn repeated_parts_before_a_recursion_leave_the_path_exact() {
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Leaf {
        x: u8,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Mark {
        On,
        Off,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Node {
        a: Leaf,
        b: Leaf,
        c: Leaf,
        m: Mark,
        n: Mark,
        o: Mark,
        children: Vec<Node>,
    }
    let leaf = r#"struct{"x":u8}"#;
    let mark = r#"enum{"On":unit,"Off":unit}"#;
    assert_eq!(
        shape::<Node>(),
        format!(
            r#"struct{{"a":{leaf},"b":{leaf},"c":{leaf},"m":{mark},"n":{mark},"o":{mark},"children":seq<^0>}}"#
        )
    );
}

/// Two enums that recurse through each other, with a value only through the second one's
/// unit variant (`E::B(F::Q)`): cutting reaches it.
#[test]
fn mutually_recursive_enums_with_a_value_are_traced() {
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum E {
        A(Box<E>),
        B(F),
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum F {
        P(Box<E>),
        Q,
    }
    assert_eq!(
        shape::<E>(),
        r#"enum{"A":newtype<^0>,"B":newtype<enum{"P":newtype<^1>,"Q":unit}>}"#
    );
    // Three enums in a cycle, the one value-building variant at the far end: two dead
    // ends before it is found.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum X {
        A(Box<X>),
        B(Y),
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Y {
        C(Box<X>),
        D(Z),
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Z {
        E(Box<Y>),
        F(Box<X>),
        G,
    }
    assert_eq!(
        shape::<X>(),
        concat!(
            r#"enum{"A":newtype<^0>,"B":newtype<enum{"C":newtype<^1>,"D":newtype<"#,
            r#"enum{"E":newtype<^1>,"F":newtype<^2>,"G":unit}>}>}"#
        )
    );
}
