//! [`TypeTag`]: a type's shape fingerprint, traced once per type and cached process-wide.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};

use serde::de::DeserializeOwned;

use super::trace;

/// How a collection stores hash fields and set or sorted-set members of a type, decided per
/// type from its traced shape (see the [module docs](super#fields-and-members)).
///
/// ```
/// use redis_caches::codec::{FieldForm, TypeTag};
///
/// #[derive(serde::Deserialize)]
/// struct UserId(u64);
///
/// assert_eq!(TypeTag::of::<String>().field_form(), FieldForm::Text);
/// assert_eq!(TypeTag::of::<UserId>().field_form(), FieldForm::Integer);
/// assert_eq!(TypeTag::of::<(u8, u8)>().field_form(), FieldForm::Encoded);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldForm {
    /// The UTF-8 text as it is (`ada`): strings and `char`, and newtype structs around them.
    Text,
    /// Canonical decimal text (`42`, `-7`): integers `i8`..`i128` and `u8`..`u128`, and
    /// newtype structs around them.
    Integer,
    /// The codec's own encoding of the value: for [`Postcard`](super::Postcard), the header
    /// and postcard body, which carries its own type check.
    Encoded,
}

/// Where a tag's fingerprint comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// The canonical shape text.
    Shape(&'static str),
    /// The shape could not be traced, for this reason; the fingerprint hashes the type name.
    Untraced(&'static str),
    /// A crate-internal label (the name), not a Rust type.
    Internal,
}

/// The fingerprint of a type's shape, and how its fields and members are stored: what a
/// collection hands its codec with every value.
///
/// Built by [`TypeTag::of`], which traces the type's `Deserialize` impl the first time it is
/// asked for a type and caches the result for the life of the process; copying a tag is
/// free. Two types with the same shape (the same field names, types and order, the same
/// variants...) have the same fingerprint whatever their names or modules; see the
/// [module docs](super#the-shape-of-a-type) for the rule.
///
/// ```
/// use redis_caches::codec::TypeTag;
///
/// mod v1 {
///     #[derive(serde::Deserialize)]
///     pub struct Account { pub owner: u64, pub cents: i64 }
/// }
/// mod billing {
///     #[derive(serde::Deserialize)]
///     pub struct Ledger { pub owner: u64, pub cents: i64 } // renamed and moved
/// }
/// #[derive(serde::Deserialize)]
/// struct Reordered { cents: i64, owner: u64 }
///
/// let account = TypeTag::of::<v1::Account>();
/// assert_eq!(account.fingerprint(), TypeTag::of::<billing::Ledger>().fingerprint());
/// assert_ne!(account.fingerprint(), TypeTag::of::<Reordered>().fingerprint());
/// assert_eq!(account.shape(), Some(r#"struct{"owner":u64,"cents":i64}"#));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeTag {
    name: &'static str,
    origin: Origin,
    field: FieldForm,
    version: Option<u32>,
    fingerprint: u32,
}

/// Tags already traced, by the type's id (lifetimes erased: a shape never depends on them).
static TAGS: LazyLock<RwLock<HashMap<TypeId, TypeTag>>> = LazyLock::new(Default::default);

thread_local! {
    /// This thread's copy of the tags it has asked for: a warm lookup takes no lock, so
    /// threads asking at once do not contend on the global one.
    static LOCAL_TAGS: RefCell<HashMap<TypeId, TypeTag>> = RefCell::new(HashMap::new());
}

impl TypeTag {
    /// The tag of `T`: traced on first use, then read from a process-wide cache, copied into
    /// a per-thread one (a warm lookup is one hash lookup: no lock, no allocation).
    ///
    /// When the shape of `T` cannot be traced (its `Deserialize` uses `deserialize_any`, or
    /// rejects the tracer's sample values) the tag falls back to the type's name: see
    /// [`untraced_reason`](TypeTag::untraced_reason) and the
    /// [module docs](super#types-whose-shape-cannot-be-traced).
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// let tag = TypeTag::of::<Vec<Option<String>>>();
    /// assert_eq!(tag.shape(), Some("seq<option<str>>"));
    /// assert_eq!(tag, TypeTag::of::<Vec<Option<String>>>());
    /// ```
    pub fn of<T: DeserializeOwned>() -> TypeTag {
        let id = typeid::of::<T>();
        // `try_with`: during thread teardown the thread's copy may be gone already.
        let local = LOCAL_TAGS.try_with(|tags| tags.borrow().get(&id).copied());
        if let Ok(Some(tag)) = local {
            return tag;
        }
        let tag = TypeTag::of_global::<T>(id);
        let _ = LOCAL_TAGS.try_with(|tags| tags.borrow_mut().insert(id, tag));
        tag
    }

    fn of_global<T: DeserializeOwned>(id: TypeId) -> TypeTag {
        let cached = TAGS
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .copied();
        if let Some(tag) = cached {
            return tag;
        }
        // Traced outside the lock: tracing runs the type's own code.
        let tag = TypeTag::trace::<T>();
        *TAGS
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert(tag)
    }

    /// The tag of the owned form of `Q`, for values passed borrowed: `of_owned::<str>()` is
    /// `of::<String>()`, `of_owned::<[T]>()` is `of::<Vec<T>>()`, and for a `Clone` type
    /// `of_owned::<T>()` is `of::<T>()`. serde writes a borrowed form exactly as its owned
    /// form, so both must share a fingerprint.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// assert_eq!(TypeTag::of_owned::<str>(), TypeTag::of::<String>());
    /// assert_eq!(TypeTag::of_owned::<[u32]>(), TypeTag::of::<Vec<u32>>());
    /// ```
    pub fn of_owned<Q>() -> TypeTag
    where
        Q: ToOwned + ?Sized,
        Q::Owned: DeserializeOwned,
    {
        TypeTag::of::<Q::Owned>()
    }

    /// This tag with an explicit schema version, which becomes part of the fingerprint: bump
    /// it to make values written before a change unreadable (a miss for caches) when the
    /// shape alone does not change, for example when a field keeps its type but changes its
    /// meaning. Version 0 gives the same fingerprint as no version for a traced type; for a
    /// type whose shape cannot be traced, any explicit version lets [`Postcard`](super::Postcard)
    /// store it.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// let v0 = TypeTag::of::<u32>();
    /// assert_eq!(v0.with_schema_version(0).fingerprint(), v0.fingerprint());
    /// assert_ne!(v0.with_schema_version(2).fingerprint(), v0.fingerprint());
    /// assert_eq!(v0.with_schema_version(2).schema_version(), Some(2));
    /// ```
    #[must_use]
    pub fn with_schema_version(self, version: u32) -> TypeTag {
        TypeTag {
            version: Some(version),
            fingerprint: fingerprint(self.origin, self.name, version),
            ..self
        }
    }

    /// The explicit schema version, if one was given.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// assert_eq!(TypeTag::of::<u8>().schema_version(), None);
    /// ```
    pub fn schema_version(&self) -> Option<u32> {
        self.version
    }

    /// The 32-bit fingerprint that [`Postcard`](super::Postcard) writes in its header: the
    /// first four bytes of the SHA-1 of the canonical [`shape`](TypeTag::shape) text and the
    /// schema version.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// assert_ne!(TypeTag::of::<u32>().fingerprint(), TypeTag::of::<i32>().fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// The type's name without module paths (`Vec<User>`), for messages only: it is not part
    /// of the fingerprint, except for a type whose shape cannot be traced.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// assert_eq!(TypeTag::of::<Vec<String>>().name(), "Vec<String>");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The canonical text of the type's shape (see the
    /// [module docs](super#the-shape-of-a-type)), or `None` when it could not be traced.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    /// assert_eq!(TypeTag::of::<(u8, String)>().shape(), Some("tuple<u8,str>"));
    /// ```
    pub fn shape(&self) -> Option<&'static str> {
        match self.origin {
            Origin::Shape(shape) => Some(shape),
            Origin::Untraced(_) | Origin::Internal => None,
        }
    }

    /// Why the type's shape could not be traced, or `None` when it was.
    ///
    /// ```
    /// use redis_caches::codec::TypeTag;
    ///
    /// #[derive(serde::Deserialize)]
    /// #[serde(untagged)]
    /// enum Loose { Number(u64), Text(String) }
    ///
    /// assert!(TypeTag::of::<Loose>().untraced_reason().is_some());
    /// assert!(TypeTag::of::<u64>().untraced_reason().is_none());
    /// ```
    pub fn untraced_reason(&self) -> Option<&'static str> {
        match self.origin {
            Origin::Untraced(reason) => Some(reason),
            Origin::Shape(_) | Origin::Internal => None,
        }
    }

    /// How fields and members of this type are stored.
    ///
    /// ```
    /// use redis_caches::codec::{FieldForm, TypeTag};
    /// assert_eq!(TypeTag::of::<u128>().field_form(), FieldForm::Integer);
    /// assert_eq!(TypeTag::of::<f64>().field_form(), FieldForm::Encoded);
    /// ```
    pub fn field_form(&self) -> FieldForm {
        self.field
    }

    /// Whether [`Postcard`](super::Postcard) can rely on the fingerprint: the shape was
    /// traced, or the user took charge with an explicit schema version.
    pub(crate) fn is_checked(&self) -> bool {
        !matches!(self.origin, Origin::Untraced(_)) || self.version.is_some()
    }

    /// A tag for bytes the crate writes for itself rather than for a user type (a region's
    /// memoized-call fields): its fingerprint hashes `label` and can equal no type's.
    pub(crate) fn internal(label: &'static str) -> TypeTag {
        TypeTag {
            name: label,
            origin: Origin::Internal,
            field: FieldForm::Encoded,
            version: None,
            fingerprint: fingerprint(Origin::Internal, label, 0),
        }
    }

    fn trace<T: DeserializeOwned>() -> TypeTag {
        let name = leak(strip_paths(std::any::type_name::<T>()));
        let traced = std::panic::catch_unwind(trace::trace::<T>).unwrap_or_else(|_| {
            Err("its Deserialize panicked on the tracer's sample values".into())
        });
        let (origin, field) = match traced {
            Ok(traced) => (Origin::Shape(leak(traced.shape)), traced.field),
            Err(reason) => (Origin::Untraced(leak(reason)), FieldForm::Encoded),
        };
        TypeTag {
            name,
            origin,
            field,
            version: None,
            fingerprint: fingerprint(origin, name, 0),
        }
    }
}

impl fmt::Debug for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("TypeTag");
        s.field("name", &self.name)
            .field("fingerprint", &format_args!("{:#010x}", self.fingerprint));
        match self.origin {
            Origin::Shape(shape) => s.field("shape", &shape),
            Origin::Untraced(reason) => s.field("untraced", &reason),
            Origin::Internal => s.field("internal", &true),
        };
        if let Some(version) = self.version {
            s.field("schema_version", &version);
        }
        s.finish()
    }
}

/// A tag resolved on first use, for handles whose constructors cannot require
/// `DeserializeOwned`: after the first call it is one atomic load.
#[derive(Default)]
pub(crate) struct LazyTag(OnceLock<TypeTag>);

impl LazyTag {
    /// The tag of `T`, with the handle's schema version (fixed for the handle's life) if it
    /// has one.
    pub(crate) fn get<T: DeserializeOwned>(&self, version: Option<u32>) -> &TypeTag {
        self.0.get_or_init(|| {
            let tag = TypeTag::of::<T>();
            match version {
                Some(v) => tag.with_schema_version(v),
                None => tag,
            }
        })
    }
}

/// Traced once per type and kept for the life of the process, like the type itself.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn fingerprint(origin: Origin, name: &str, version: u32) -> u32 {
    let mut hash = sha1_smol::Sha1::new();
    match origin {
        Origin::Shape(shape) => {
            hash.update(b"redis-caches shape\n");
            hash.update(shape.as_bytes());
        }
        Origin::Untraced(_) => {
            hash.update(b"redis-caches untraced type\n");
            hash.update(name.as_bytes());
        }
        Origin::Internal => {
            hash.update(b"redis-caches internal\n");
            hash.update(name.as_bytes());
        }
    }
    hash.update(format!("\nschema version {version}").as_bytes());
    let digest = hash.digest().bytes();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `alloc::vec::Vec<my::User>` -> `Vec<User>`.
fn strip_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut segment_start = 0;
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("::") {
            out.truncate(segment_start);
            rest = after;
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            segment_start = out.len();
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}
