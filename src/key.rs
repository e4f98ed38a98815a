//! Building Redis keys from parts and prefixes.
//!
//! A key is a list of parts (strings or integers) joined with `.`: `["foo", "bar", "che"]`
//! gives `foo.bar.che`. In front come, in order,
//! the connection's `prefix` option (prepended as given) and the collection's own prefix
//! (joined with `.` like a part):
//!
//! ```text
//! <connection prefix><collection prefix>.<part>.<part>...
//! ```
//!
//! Inside a part, `.` is written `\.` and `\` is written `\\`, so that different part lists
//! always give different keys (`["a.b"]` is `a\.b`, `["a", "b"]` is `a.b`). Integers, `0`
//! included, are written in decimal.
//!
//! With a hash tag, the first element after the connection prefix is wrapped in `{...}`
//! (`{foo}.bar`), so that every key sharing that first element lands in the same Redis Cluster
//! slot.
//!
//! # Example
//!
//! ```
//! use redis_caches::key::{IntoKey, Key};
//!
//! assert_eq!(["foo", "bar", "che"].into_key().render("", None)?, "foo.bar.che");
//! assert_eq!(("user", 42).into_key().render("app:", Some("v2"))?, "app:v2.user.42");
//! assert_eq!("a.b".into_key().render("", None)?, r"a\.b");
//! assert_eq!(Key::from_parts(["tree", "leaf"]).with_hash_tag().render("", None)?, "{tree}.leaf");
//! # Ok::<(), redis_caches::Error>(())
//! ```

use std::fmt;

use crate::error::{Error, Result};

/// One part of a key: a string or an integer.
///
/// ```
/// use redis_caches::key::KeyPart;
/// assert_eq!(KeyPart::from(0u8), KeyPart::Int(0));
/// assert_eq!(KeyPart::from("x"), KeyPart::Str("x".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    /// A string part, escaped when rendered.
    Str(String),
    /// An integer part, rendered in decimal.
    Int(i128),
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPart::Str(s) => f.write_str(s),
            KeyPart::Int(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for KeyPart {
    fn from(s: &str) -> Self {
        KeyPart::Str(s.to_string())
    }
}

impl From<String> for KeyPart {
    fn from(s: String) -> Self {
        KeyPart::Str(s)
    }
}

impl From<&String> for KeyPart {
    fn from(s: &String) -> Self {
        KeyPart::Str(s.clone())
    }
}

macro_rules! int_parts {
    ($($t:ty),*) => {$(
        impl From<$t> for KeyPart {
            fn from(n: $t) -> Self {
                KeyPart::Int(n as i128)
            }
        }
    )*};
}
int_parts!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// The parts of a key, before prefixes are applied. Build one with [`IntoKey`].
///
/// ```
/// use redis_caches::key::{IntoKey, Key};
/// let key: Key = vec!["a", "b"].into_key();
/// assert_eq!(key.parts().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    parts: Vec<KeyPart>,
    hash_tag: bool,
}

impl Key {
    /// A key from any list of parts.
    ///
    /// ```
    /// use redis_caches::key::Key;
    /// assert_eq!(Key::from_parts(["a", "b"]).render("", None)?, "a.b");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn from_parts<I, P>(parts: I) -> Key
    where
        I: IntoIterator<Item = P>,
        P: Into<KeyPart>,
    {
        Key {
            parts: parts.into_iter().map(Into::into).collect(),
            hash_tag: false,
        }
    }

    /// The parts, in order.
    ///
    /// ```
    /// use redis_caches::key::{IntoKey, KeyPart};
    /// assert_eq!(("a", 1).into_key().parts(), &[KeyPart::from("a"), KeyPart::Int(1)]);
    /// ```
    pub fn parts(&self) -> &[KeyPart] {
        &self.parts
    }

    /// This key with one more part at the end.
    ///
    /// ```
    /// use redis_caches::key::IntoKey;
    /// assert_eq!("a".into_key().child("b").render("", None)?, "a.b");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn child(mut self, part: impl Into<KeyPart>) -> Key {
        self.parts.push(part.into());
        self
    }

    /// This key with its first element wrapped in a Redis Cluster hash tag (`{first}.rest`).
    ///
    /// ```
    /// use redis_caches::key::IntoKey;
    /// assert_eq!(["a", "b"].into_key().with_hash_tag().render("", None)?, "{a}.b");
    /// assert_eq!(["a", "b"].into_key().with_hash_tag().render("", Some("p"))?, "{p}.a.b");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn with_hash_tag(mut self) -> Key {
        self.hash_tag = true;
        self
    }

    /// Whether [`with_hash_tag`](Key::with_hash_tag) was applied.
    ///
    /// ```
    /// use redis_caches::key::IntoKey;
    /// assert!(!"a".into_key().has_hash_tag());
    /// ```
    pub fn has_hash_tag(&self) -> bool {
        self.hash_tag
    }

    /// Renders the full Redis key: connection prefix, collection prefix, escaped parts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when there is neither a part nor a collection prefix, when a
    /// string part is empty, or when the collection prefix is empty or contains `{` or `}`.
    ///
    /// ```
    /// use redis_caches::key::{IntoKey, Key};
    /// assert_eq!(("a", 0).into_key().render("", None)?, "a.0");
    /// assert!(Key::default().render("", None).is_err());
    /// assert_eq!(Key::default().render("", Some("only"))?, "only");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn render(&self, connection_prefix: &str, prefix: Option<&str>) -> Result<String> {
        if let Some(p) = prefix
            && (p.is_empty() || p.contains(['{', '}']))
        {
            return Err(Error::InvalidKey {
                reason: format!("the prefix {p:?} must be non-empty and free of '{{' and '}}'"),
            });
        }
        if self.parts.is_empty() && prefix.is_none() {
            return Err(Error::InvalidKey {
                reason: "a key needs at least one part".into(),
            });
        }
        let mut out = String::with_capacity(connection_prefix.len() + 16 * (self.parts.len() + 1));
        out.push_str(connection_prefix);
        let mut first = true;
        let mut push = |out: &mut String, write: &dyn Fn(&mut String)| {
            if !first {
                out.push('.');
            }
            if first && self.hash_tag {
                out.push('{');
                write(out);
                out.push('}');
            } else {
                write(out);
            }
            first = false;
        };
        if let Some(p) = prefix {
            push(&mut out, &|o: &mut String| o.push_str(p));
        }
        for part in &self.parts {
            match part {
                KeyPart::Str(s) if s.is_empty() => {
                    return Err(Error::InvalidKey {
                        reason: "a key part is an empty string".into(),
                    });
                }
                KeyPart::Str(s) => push(&mut out, &|o: &mut String| escape_part(s, o)),
                KeyPart::Int(n) => push(&mut out, &|o: &mut String| o.push_str(&n.to_string())),
            }
        }
        Ok(out)
    }
}

fn escape_part(s: &str, out: &mut String) {
    for c in s.chars() {
        if c == '.' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Escapes `s` for use inside a `SCAN ... MATCH` glob pattern, so that it matches only itself.
///
/// ```
/// use redis_caches::key::glob_escape;
/// assert_eq!(glob_escape("a*b?[c]\\"), r"a\*b\?\[c\]\\");
/// ```
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Anything that names a key: a string, an integer, an array, slice, `Vec` or tuple of parts.
///
/// ```
/// use redis_caches::key::IntoKey;
/// assert_eq!("foo".into_key().render("", None)?, "foo");
/// assert_eq!(42u32.into_key().render("", None)?, "42");
/// assert_eq!(["a", "b"].into_key().render("", None)?, "a.b");
/// assert_eq!(vec![1, 2].into_key().render("", None)?, "1.2");
/// assert_eq!(("user", 7, "cart").into_key().render("", None)?, "user.7.cart");
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub trait IntoKey {
    /// Converts into the key's parts.
    fn into_key(self) -> Key;
}

impl IntoKey for Key {
    fn into_key(self) -> Key {
        self
    }
}

impl IntoKey for &Key {
    fn into_key(self) -> Key {
        self.clone()
    }
}

impl IntoKey for KeyPart {
    fn into_key(self) -> Key {
        Key::from_parts([self])
    }
}

macro_rules! single_part_keys {
    ($($t:ty),*) => {$(
        impl IntoKey for $t {
            fn into_key(self) -> Key {
                Key::from_parts([KeyPart::from(self)])
            }
        }
    )*};
}
single_part_keys!(
    &str, String, &String, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize
);

impl<P: Into<KeyPart>, const N: usize> IntoKey for [P; N] {
    fn into_key(self) -> Key {
        Key::from_parts(self)
    }
}

impl<P: Into<KeyPart>> IntoKey for Vec<P> {
    fn into_key(self) -> Key {
        Key::from_parts(self)
    }
}

impl<P: Into<KeyPart> + Clone> IntoKey for &[P] {
    fn into_key(self) -> Key {
        Key::from_parts(self.iter().cloned())
    }
}

macro_rules! tuple_keys {
    ($(($($name:ident),+)),*) => {$(
        impl<$($name: Into<KeyPart>),+> IntoKey for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_key(self) -> Key {
                let ($($name,)+) = self;
                Key { parts: vec![$($name.into()),+], hash_tag: false }
            }
        }
    )*};
}
tuple_keys!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden tests: a change here orphans users' data, so the layout is pinned.
    #[test]
    fn golden_layout() {
        let cases: Vec<(Key, &str, Option<&str>, &str)> = vec![
            (["foo", "bar", "che"].into_key(), "", None, "foo.bar.che"),
            ("foo".into_key(), "", None, "foo"),
            (("user", 42).into_key(), "", None, "user.42"),
            (("a", 0, "b").into_key(), "", None, "a.0.b"),
            (0.into_key(), "", None, "0"),
            ((-5i64).into_key(), "", None, "-5"),
            (u64::MAX.into_key(), "", None, "18446744073709551615"),
            ("foo".into_key(), "app:", None, "app:foo"),
            ("foo".into_key(), "", Some("Cache"), "Cache.foo"),
            (["a", "b"].into_key(), "app:", Some("p"), "app:p.a.b"),
            ("a.b".into_key(), "", None, r"a\.b"),
            (r"a\b".into_key(), "", None, r"a\\b"),
            (r"a\.b".into_key(), "", None, r"a\\\.b"),
            ("sp ace ünï*?[]".into_key(), "", None, "sp ace ünï*?[]"),
            (
                ["tree", "leaf"].into_key().with_hash_tag(),
                "",
                None,
                "{tree}.leaf",
            ),
            (
                ["tree"].into_key().with_hash_tag(),
                "app:",
                Some("r"),
                "app:{r}.tree",
            ),
            (Key::default(), "", Some("only"), "only"),
        ];
        for (key, cp, p, expected) in cases {
            assert_eq!(key.render(cp, p).unwrap(), expected, "{key:?}");
        }
    }

    #[test]
    fn escaping_keeps_keys_apart() {
        let a = ["a.b"].into_key().render("", None).unwrap();
        let b = ["a", "b"].into_key().render("", None).unwrap();
        assert_ne!(a, b);
        let c = [r"a\", "b"].into_key().render("", None).unwrap();
        let d = [r"a\.b"].into_key().render("", None).unwrap();
        assert_ne!(c, d);
    }

    #[test]
    fn invalid_keys() {
        assert!(Key::default().render("", None).is_err());
        assert!(Vec::<&str>::new().into_key().render("", None).is_err());
        assert!(["a", ""].into_key().render("", None).is_err());
        assert!("a".into_key().render("", Some("")).is_err());
        assert!("a".into_key().render("", Some("{x}")).is_err());
    }

    #[test]
    fn parts_convert_and_display_as_written() {
        let owned = String::from("b");
        assert_eq!(KeyPart::from("a"), KeyPart::Str("a".into()));
        assert_eq!(KeyPart::from(owned.clone()), KeyPart::Str("b".into()));
        assert_eq!(KeyPart::from(&owned), KeyPart::Str("b".into()));
        assert_eq!(KeyPart::from(-7i8), KeyPart::Int(-7));
        assert_eq!(KeyPart::from(u64::MAX), KeyPart::Int(u64::MAX as i128));
        assert_eq!(KeyPart::Str("a.b".into()).to_string(), "a.b");
        assert_eq!(KeyPart::Int(-3).to_string(), "-3");
        assert_eq!(KeyPart::Int(0).to_string(), "0");
    }

    #[test]
    fn keys_are_built_from_every_kind_of_list() {
        let expected = [KeyPart::from("a"), KeyPart::Int(1)];
        let key = Key::from_parts([KeyPart::from("a"), KeyPart::Int(1)]);
        assert_eq!(key.parts(), &expected[..]);
        assert!(!key.has_hash_tag());
        assert_eq!(key.clone().into_key(), key);
        assert_eq!((&key).into_key(), key);
        assert_eq!(("a", 1).into_key(), key);
        assert_eq!(KeyPart::Int(1).into_key().parts(), &[KeyPart::Int(1)]);
        assert_eq!(["a", "b"].into_key().parts().len(), 2);
        assert_eq!(vec!["a", "b", "c"].into_key().parts().len(), 3);
        let slice: &[&str] = &["x", "y"];
        assert_eq!(
            slice.into_key().parts(),
            &[KeyPart::from("x"), KeyPart::from("y")]
        );
        assert_eq!(String::from("s").into_key().parts(), &[KeyPart::from("s")]);
        assert_eq!(7u8.into_key().parts(), &[KeyPart::Int(7)]);
        assert_eq!(
            ("a", 1, "b", 2, "c", 3)
                .into_key()
                .render("", None)
                .unwrap(),
            "a.1.b.2.c.3"
        );
    }

    #[test]
    fn children_and_hash_tags() {
        let key = "a".into_key().child("b").child(3);
        assert_eq!(
            key.parts(),
            &[KeyPart::from("a"), KeyPart::from("b"), KeyPart::Int(3)]
        );
        assert_eq!(key.render("", None).unwrap(), "a.b.3");
        let tagged = key.with_hash_tag();
        assert!(tagged.has_hash_tag());
        assert_eq!(tagged.parts().len(), 3);
        assert_eq!(tagged.render("cp:", None).unwrap(), "cp:{a}.b.3");
        assert_eq!(tagged.child("c").render("", None).unwrap(), "{a}.b.3.c");
    }

    #[test]
    fn render_checks_prefix_and_parts_in_order() {
        let err = |key: Key, prefix: Option<&str>| match key.render("", prefix).unwrap_err() {
            Error::InvalidKey { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert!(err("a".into_key(), Some("")).contains("non-empty"));
        assert!(err("a".into_key(), Some("p{")).contains("'{' and '}'"));
        assert!(err("a".into_key(), Some("p}")).contains("'{' and '}'"));
        assert!(err(Key::default(), None).contains("at least one part"));
        assert!(err(["a", ""].into_key(), Some("p")).contains("empty string"));
        assert!(err(Key::default(), Some("")).contains("non-empty"));
        // A non-empty prefix without braces is joined like a part, dots unescaped.
        assert_eq!("a".into_key().render("", Some("p.q")).unwrap(), "p.q.a");
        // The connection prefix is prepended as given, braces and all.
        assert_eq!("a".into_key().render("{c}", None).unwrap(), "{c}a");
    }

    #[test]
    fn glob_escaping() {
        assert_eq!(glob_escape("plain.key"), "plain.key");
        assert_eq!(glob_escape("a*"), r"a\*");
        assert_eq!(glob_escape("[x-y]"), r"\[x\-y\]");
        assert_eq!(glob_escape(r"^\?"), r"\^\\\?");
        assert_eq!(glob_escape(""), "");
    }
}
