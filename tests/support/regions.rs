//! The region layout read with plain commands, the way an operator would in `redis-cli`
//! (see the region module's "Key layout"): a tree's base key `{root}`, its hash `{root}#tree`,
//! a region's hash `{root}@<generation>.<name>` and its map of children
//! `{root}@<generation>.<name>#children`.

use std::collections::BTreeMap;

use redis::ConnectionLike;

/// `{root}`, the base key of a tree without prefixes.
pub fn base(root: &str) -> String {
    format!("{{{root}}}")
}

/// A dotted name with each part escaped as the crate escapes key parts (`\` as `\\`; parts
/// of dotted names never hold a `.`).
fn escaped_parts(name: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    name.split('.').map(|p| p.replace('\\', "\\\\")).collect()
}

/// The stem (`@<generation>[.<escaped name>]`) of the current generation of the region
/// `name` under `base`, following the maps from the tree's hash; `None` when it has none.
pub fn stem(raw: &mut impl ConnectionLike, base: &str, name: &str) -> Option<String> {
    let root: Option<String> = redis::cmd("HGET")
        .arg(format!("{base}#tree"))
        .arg("root")
        .query(raw)
        .unwrap();
    let mut stem = format!("@{}", root?);
    let mut names = String::new();
    for part in escaped_parts(name) {
        let child: Option<String> = redis::cmd("HGET")
            .arg(format!("{base}{stem}#children"))
            .arg(&part)
            .query(raw)
            .unwrap();
        names.push('.');
        names.push_str(&part);
        stem = format!("@{}{names}", child?);
    }
    Some(stem)
}

/// The key of the region's hash in its current generation (it may not exist: a region whose
/// generation only holds children has none).
pub fn hash_key(raw: &mut impl ConnectionLike, base: &str, name: &str) -> Option<String> {
    stem(raw, base, name).map(|s| format!("{base}{s}"))
}

/// Every region reachable from the tree's hash: escaped name -> hash key (whether or not the
/// hash exists).
pub fn reachable(raw: &mut impl ConnectionLike, base: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let root: Option<String> = redis::cmd("HGET")
        .arg(format!("{base}#tree"))
        .arg("root")
        .query(raw)
        .unwrap();
    let Some(root) = root else {
        return out;
    };
    let mut stack = vec![(String::new(), format!("@{root}"))];
    while let Some((name, stem)) = stack.pop() {
        let children: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(format!("{base}{stem}#children"))
            .query(raw)
            .unwrap();
        for (part, generation) in children {
            let child = if name.is_empty() {
                part.clone()
            } else {
                format!("{name}.{part}")
            };
            stack.push((child.clone(), format!("@{generation}.{child}")));
        }
        out.insert(name, format!("{base}{stem}"));
    }
    out
}

/// The entries of the reclamation queue.
pub fn queue(raw: &mut impl ConnectionLike, base: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(format!("{base}#gc"))
        .arg(0)
        .arg(-1)
        .query(raw)
        .unwrap()
}

/// Writes, with pipelined plain commands, what the crate writes for `n` regions
/// `<parent>.r<i>` (one entry each: `"k"` -> `i as u64`, postcard) in a fresh tree `root`:
/// the root in generation 1, `parent` in 2, `parent.r<i>` in `3 + i`. Far faster than `n`
/// scripts, for tests and measurements of large trees; `key_layout_in_redis` pins the
/// layout it copies.
pub fn write_flat_tree(raw: &mut redis::Connection, root: &str, parent: &str, n: u64) {
    use redis_caches::codec::{Codec, Postcard, TypeTag};
    let base = base(root);
    let field = Postcard
        .encode_field("k", &TypeTag::of::<String>())
        .unwrap();
    redis::cmd("HSET")
        .arg(format!("{base}#tree"))
        .arg("root")
        .arg(1)
        .arg("next")
        .arg(n + 2)
        .exec(raw)
        .unwrap();
    redis::cmd("HSET")
        .arg(format!("{base}@1#children"))
        .arg(parent)
        .arg(2)
        .exec(raw)
        .unwrap();
    for start in (0..n).step_by(10_000) {
        let end = (start + 10_000).min(n);
        let mut pipe = redis::pipe();
        let map = pipe.cmd("HSET").arg(format!("{base}@2.{parent}#children"));
        for i in start..end {
            map.arg(format!("r{i}")).arg(3 + i);
        }
        map.ignore();
        for i in start..end {
            let value = Postcard.encode(&i, &TypeTag::of::<u64>()).unwrap();
            pipe.cmd("HSET")
                .arg(format!("{base}@{}.{parent}.r{i}", 3 + i))
                .arg(&field)
                .arg(value)
                .ignore();
        }
        pipe.exec(raw).unwrap();
    }
}

/// The number of keys in the server's current database.
pub fn dbsize(raw: &mut impl ConnectionLike) -> u64 {
    redis::cmd("DBSIZE").query(raw).unwrap()
}
