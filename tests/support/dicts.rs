//! Helpers of the `DictCache` tests (`tests/dict.rs`, `tests/dict_wire.rs`).

use std::time::Duration;

use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::{Connection, DictCache, TtlPolicy};

use super::unique;

/// A `DictCache` named `key` on `conn`, with the default options.
pub fn dict<K, V>(conn: &Connection, key: &str) -> DictCache<K, V> {
    DictCache::builder(key).connection(conn).build()
}

/// A `DictCache` named `key` on `conn` with `ttl` and `policy`.
pub fn with_ttl<K, V>(
    conn: &Connection,
    key: &str,
    ttl: Duration,
    policy: TtlPolicy,
) -> DictCache<K, V> {
    DictCache::builder(key)
        .connection(conn)
        .ttl(ttl)
        .ttl_policy(policy)
        .build()
}

/// The bytes the crate stores for `value` of type `T` with the default codec.
pub fn encoded<T: serde::Serialize + ?Sized>(value: &T, tag: TypeTag) -> Vec<u8> {
    Postcard.encode(value, &tag).unwrap()
}

/// A field name not used before in this process.
pub fn fresh_field() -> String {
    unique("field")
}
