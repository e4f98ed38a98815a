//! [`EncodesAs`]: the borrowed forms a collection accepts wherever it takes items by value.

use serde::Serialize;

/// Values that serde writes exactly as it writes a `T`, so a collection of `T` can take them
/// without an owned `T`: `T` itself, `&T`, `&str` (and `str`) for `String`, `&[U]` for
/// `Vec<U>` (not arrays: serde writes `[U; N]` as a tuple, without the length a `Vec` has).
///
/// Bulk writes take their items through it, so that
/// `SetCache<String>::extend(["a", "b"])` and `DictCache<String, u64>::extend([("a", 1)])`
/// need no allocation per item. (Lookups such as `get("a")` use [`std::borrow::Borrow`], as
/// `HashMap` does.)
///
/// ```
/// fn takes<T, Q: redis_caches::EncodesAs<T>>(_: Q) {}
/// takes::<String, _>("abc");
/// takes::<String, _>(&"abc".to_string());
/// takes::<Vec<u8>, _>(&[1u8, 2][..]);
/// takes::<u64, _>(7);
/// ```
pub trait EncodesAs<T: ?Sized>: Serialize {}

impl<T: Serialize> EncodesAs<T> for T {}
impl<T: Serialize> EncodesAs<T> for &T {}
impl EncodesAs<String> for &str {}
impl EncodesAs<String> for &&str {}
impl EncodesAs<String> for Box<str> {}
impl<U: Serialize> EncodesAs<Vec<U>> for &[U] {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Postcard, TypeTag};

    fn bytes<T: Serialize + ?Sized>(v: &T, tag: &TypeTag) -> Vec<u8> {
        Postcard.encode(v, tag).unwrap()
    }

    fn same<T: Serialize + serde::de::DeserializeOwned + 'static, Q: EncodesAs<T>>(owned: T, q: Q) {
        let tag = TypeTag::of::<T>();
        assert_eq!(bytes(&owned, &tag), bytes(&q, &tag));
    }

    #[test]
    fn borrowed_forms_encode_like_the_owned_type() {
        same::<String, _>("abc".to_string(), "abc");
        same::<String, _>("abc".to_string(), &"abc");
        same::<String, _>("abc".to_string(), Box::<str>::from("abc"));
        same::<Vec<u8>, _>(vec![1, 2], &[1u8, 2][..]);
        same::<u64, _>(7, 7);
        same::<u64, _>(7, &7);
    }
}
