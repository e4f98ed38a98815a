//! Bad input against real servers, for every type: awkward fields, members and memo
//! arguments; memoized functions whose names are globs of each other; values at the size
//! limit and one byte over; keys of another Redis type; a key deleted or expiring while an
//! iterator runs. (`tests/faults.rs` covers awkward key names and `RedisCache`'s limits.)

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::memo::Memo;
use redis_caches::sorted_set::{InsertMode, Limit};
use redis_caches::{Connection, DictCache, Error, Region, SentinelCache, SetCache, SortedSetCache};
use support::{RedisServer, eventually};

/// Strings that mean something to Redis globs, to our key escaping, or to a terminal.
const AWKWARD: &[&str] = &[
    "with space",
    "ünïcödé ✓ 鍵",
    "dot.ted",
    "star*",
    "question?",
    "[bracket]",
    "back\\slash",
    "back\\.both",
    "^caret-dash",
    "*",
    "?",
    "[",
    "]",
    "\\",
    ".",
    "",
    "tab\tnew\nline",
    "nul\0byte",
    "%07 looks escaped",
];

fn dict<K, V>(conn: &Connection, key: &str) -> DictCache<K, V> {
    DictCache::builder(key).connection(conn).build()
}

#[test]
fn awkward_fields_members_and_memo_arguments_round_trip_exactly() {
    let server = RedisServer::start();
    let conn = server.connection();

    let d: DictCache<String, String> = dict(&conn, "awk-dict");
    let s: SetCache<String> = SetCache::builder("awk-set").connection(&conn).build();
    let z: SortedSetCache<String> = SortedSetCache::builder("awk-zset")
        .connection(&conn)
        .build();
    for (i, a) in AWKWARD.iter().enumerate() {
        assert_eq!(
            d.insert(*a, &format!("value of {a}")).unwrap(),
            None,
            "{a:?}"
        );
        assert!(s.insert(*a).unwrap(), "{a:?}");
        assert!(z.insert(*a, i as f64).unwrap(), "{a:?}");
    }
    for (i, a) in AWKWARD.iter().enumerate() {
        assert_eq!(d.get(*a).unwrap(), Some(format!("value of {a}")), "{a:?}");
        assert!(s.contains(*a).unwrap(), "{a:?}");
        assert_eq!(z.score(*a).unwrap(), Some(i as f64), "{a:?}");
    }
    // Each is its own field or member, and iteration gives every one back exactly.
    let expected: HashSet<String> = AWKWARD.iter().map(|a| a.to_string()).collect();
    assert_eq!(d.len().unwrap(), AWKWARD.len());
    let keys: HashSet<String> = d.keys().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, expected);
    assert_eq!(s.to_hash_set().unwrap(), expected);
    let members: Vec<String> = z.iter().map(|e| e.unwrap().0).collect();
    assert_eq!(
        members,
        AWKWARD.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    );
    // Prefixes and globs of one another do not match: removing one leaves the others.
    assert_eq!(d.remove("*").unwrap(), Some("value of *".to_string()));
    assert!(s.remove("[").unwrap());
    assert!(z.remove("\\").unwrap());
    assert_eq!(d.len().unwrap(), AWKWARD.len() - 1);
    assert_eq!(s.len().unwrap(), AWKWARD.len() - 1);
    assert_eq!(z.len().unwrap(), AWKWARD.len() - 1);
    assert_eq!(d.get("star*").unwrap(), Some("value of star*".to_string()));

    // Memo arguments: each its own entry, computed once, read back exactly.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let echo = Memo::builder("echo", move |a: String| {
        c.fetch_add(1, Ordering::SeqCst);
        format!("<{a}>")
    })
    .connection(&conn)
    .build();
    for round in 0..2 {
        for a in AWKWARD {
            assert_eq!(echo.call(a.to_string()).unwrap(), format!("<{a}>"), "{a:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), AWKWARD.len(), "round {round}");
    }
    assert!(echo.forget("*".to_string()).unwrap());
    assert_eq!(echo.call("star*".to_string()).unwrap(), "<star*>");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        AWKWARD.len(),
        "forget(*) left star*"
    );
    // Tuple and struct-like arguments with awkward parts stay apart too.
    let pair = Memo::builder("pair", |(a, b): (String, String)| format!("{a}|{b}"))
        .connection(&conn)
        .build();
    assert_eq!(pair.call(("a.b".into(), "c".into())).unwrap(), "a.b|c");
    assert_eq!(pair.call(("a".into(), "b.c".into())).unwrap(), "a|b.c");
}

/// Every key on the server.
fn all_keys(server: &RedisServer) -> HashSet<String> {
    let mut raw = server.raw();
    let iter: redis::Iter<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut raw)
        .unwrap();
    iter.collect::<Result<_, _>>().unwrap()
}

#[test]
fn clearing_a_memoized_function_never_touches_a_neighbour_with_a_glob_like_name() {
    let server = RedisServer::start();
    let conn = server.connection();
    // Names that are globs (or prefixes, or escapes) of each other.
    let names = [
        "a*", "ab", "a", "a?", "a[b]", "a[", "a\\", "a\\*", "a.b", "a-b", "a^b", "*", "?",
    ];
    let memo = |name: &str| {
        Memo::builder(name, |x: u32| x + 1)
            .connection(&conn)
            .build()
    };
    for cleared in names {
        for name in names {
            let m = memo(name);
            for x in 0..3 {
                m.call(x).unwrap();
            }
        }
        let before = all_keys(&server);
        // 3 values per function, and its statistics.
        assert_eq!(before.len(), names.len() * 4, "{before:?}");
        assert_eq!(memo(cleared).clear().unwrap(), 3, "clear of {cleared:?}");
        let after = all_keys(&server);
        let gone: HashSet<&String> = before.difference(&after).collect();
        assert_eq!(gone.len(), 3, "clear of {cleared:?} removed {gone:?}");
        for key in &gone {
            assert!(
                key.contains(&format!(
                    "{{memo:{}}}.v.",
                    cleared.replace('\\', "\\\\").replace('.', "\\.")
                )),
                "clear of {cleared:?} removed {key:?}"
            );
        }
        // The neighbours still hit.
        for name in names.iter().filter(|n| **n != cleared) {
            let m = memo(name);
            let hits = m.stats().unwrap().hits;
            m.call(0).unwrap();
            assert_eq!(
                m.stats().unwrap().hits,
                hits + 1,
                "{name:?} after clearing {cleared:?}"
            );
        }
        redis::cmd("FLUSHDB").exec(&mut server.raw()).unwrap();
    }
}

#[test]
fn regions_with_glob_like_names_keep_to_themselves() {
    let server = RedisServer::start();
    let conn = server.connection();
    let names = [
        "x*", "xy", "x", "x?", "x[y]", "x\\", "x-y", "*", "x*.y", "xy.z",
    ];
    let region = |name: &str| Region::builder(name).connection(&conn).build();
    for invalidated in names {
        for name in names {
            let r = region(name);
            for a in AWKWARD {
                r.set(a, &format!("{name}/{a}")).unwrap();
            }
        }
        region(invalidated).invalidate().unwrap();
        for name in names {
            let r = region(name);
            // Invalidating a region takes its descendants: `x*` takes `x*.y`, nothing else.
            let gone = name == invalidated || name.starts_with(&format!("{invalidated}."));
            for a in AWKWARD {
                let got = r.get::<String>(a).unwrap();
                if gone {
                    assert_eq!(got, None, "{name:?} after invalidating {invalidated:?}");
                } else {
                    assert_eq!(
                        got,
                        Some(format!("{name}/{a}")),
                        "{name:?}[{a:?}] after invalidating {invalidated:?}"
                    );
                }
            }
        }
        redis::cmd("FLUSHDB").exec(&mut server.raw()).unwrap();
    }
}

/// Size limit of the collections of the size tests.
const LIMIT: usize = 1024;

/// A `String` whose postcard encoding is exactly `size` bytes.
fn encoded_string(size: usize) -> String {
    let tag = TypeTag::of::<String>();
    let overhead = Postcard.encode("x", &tag).unwrap().len() - 1;
    // The length prefix is a varint: 2 bytes from 128 on, which LIMIT is well over.
    let s = "s".repeat(size - overhead - 1);
    let len = Postcard.encode(&s, &tag).unwrap().len();
    let s = "s".repeat(size - (len - s.len()));
    assert_eq!(Postcard.encode(&s, &tag).unwrap().len(), size);
    s
}

/// Asserts that `f` fails with `ValueTooLarge` for `key`, `LIMIT + 1` bytes, sending nothing.
fn too_large(server: &RedisServer, what: &str, key: &str, f: impl FnOnce() -> Result<(), Error>) {
    let sent = server.count_commands(|| match f() {
        Err(Error::ValueTooLarge {
            key: k,
            size,
            limit,
        }) => {
            assert_eq!((k.as_str(), size, limit), (key, LIMIT + 1, LIMIT), "{what}");
        }
        other => panic!("{what}: expected ValueTooLarge, got {other:?}"),
    });
    assert!(
        sent.is_empty(),
        "{what}: a refused value reached Redis: {sent:?}"
    );
}

#[test]
fn every_collection_takes_values_at_the_size_limit_and_refuses_one_byte_more_before_sending() {
    let server = RedisServer::start();
    let conn = server.connection();
    let fits = encoded_string(LIMIT);
    let over = encoded_string(LIMIT + 1);
    // Fields and members of strings are plain text: the limit counts their UTF-8 bytes.
    let fits_plain = "f".repeat(LIMIT);
    let over_plain = "f".repeat(LIMIT + 1);

    let d: DictCache<String, String> = DictCache::builder("lim-dict")
        .connection(&conn)
        .max_value_size(LIMIT)
        .build();
    // Both the field (the encoded key) and the value count.
    d.set(&fits, &fits).unwrap();
    assert_eq!(d.get(&fits).unwrap().as_deref(), Some(fits.as_str()));
    d.extend([(fits.clone(), fits.clone())]).unwrap();
    d.set(&fits_plain, "v").unwrap();
    assert!(d.remove(&fits_plain).unwrap().is_some());
    too_large(&server, "dict value", "lim-dict", || {
        d.set("k", &over).map(drop)
    });
    too_large(&server, "dict field", "lim-dict", || {
        d.set(&over_plain, "v").map(drop)
    });
    too_large(&server, "dict insert", "lim-dict", || {
        d.insert("k", &over).map(drop)
    });
    too_large(&server, "dict get", "lim-dict", || {
        d.get(&over_plain).map(drop)
    });
    too_large(&server, "dict extend", "lim-dict", || {
        d.extend([
            ("a".to_string(), fits.clone()),
            ("b".to_string(), over.clone()),
        ])
        .map(drop)
    });
    assert_eq!(d.len().unwrap(), 1, "nothing of a refused extend is stored");

    let s: SetCache<String> = SetCache::builder("lim-set")
        .connection(&conn)
        .max_value_size(LIMIT)
        .build();
    assert!(s.insert(&fits_plain).unwrap());
    assert!(s.contains(&fits_plain).unwrap());
    too_large(&server, "set insert", "lim-set", || {
        s.insert(&over_plain).map(drop)
    });
    too_large(&server, "set remove", "lim-set", || {
        s.remove(&over_plain).map(drop)
    });
    too_large(&server, "set extend", "lim-set", || {
        s.extend([fits_plain.clone(), over_plain.clone()]).map(drop)
    });
    assert_eq!(s.len().unwrap(), 1);

    let z: SortedSetCache<String> = SortedSetCache::builder("lim-zset")
        .connection(&conn)
        .max_value_size(LIMIT)
        .build();
    assert!(z.insert(&fits_plain, 1.0).unwrap());
    assert_eq!(z.incr_score(&fits_plain, 1.0).unwrap(), 2.0);
    too_large(&server, "zset insert", "lim-zset", || {
        z.insert(&over_plain, 1.0).map(drop)
    });
    too_large(&server, "zset incr_score", "lim-zset", || {
        z.incr_score(&over_plain, 1.0).map(drop)
    });
    too_large(&server, "zset insert_with", "lim-zset", || {
        z.insert_with(&over_plain, 1.0, InsertMode::NewOrGreater)
            .map(drop)
    });
    too_large(&server, "zset extend", "lim-zset", || {
        z.extend([(fits_plain.clone(), 5.0), (over_plain.clone(), 6.0)])
            .map(drop)
    });
    assert_eq!(z.range(..).unwrap(), vec![(fits_plain.clone(), 2.0)]);
}

/// Asserts a `WrongType` error for `key`, expecting `expected` and finding `found`.
fn wrong_type<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Error>,
    key: &str,
    expected: &str,
    found: &str,
) {
    match result {
        Err(Error::WrongType {
            key: k,
            expected: e,
            found: f,
        }) => assert_eq!(
            (k.as_str(), e, f.as_str()),
            (key, expected, found),
            "{what}"
        ),
        other => panic!("{what}: expected WrongType, got {other:?}"),
    }
}

#[test]
fn keys_of_another_redis_type_give_wrong_type_on_the_paths_not_covered_elsewhere() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    redis::cmd("SET")
        .arg("str")
        .arg("x")
        .exec(&mut raw)
        .unwrap();
    redis::cmd("HSET")
        .arg("hash")
        .arg("f")
        .arg("v")
        .exec(&mut raw)
        .unwrap();
    let ttl = Duration::from_secs(60);

    // SetCache: remove, and every write with a TTL (MULTI/EXEC).
    let s: SetCache<u32> = SetCache::builder("str").connection(&conn).build();
    let s_ttl: SetCache<u32> = SetCache::builder("str").connection(&conn).ttl(ttl).build();
    wrong_type("set remove", s.remove(&1), "str", "set", "string");
    wrong_type("set insert, ttl", s_ttl.insert(&1), "str", "set", "string");
    wrong_type("set remove, ttl", s_ttl.remove(&1), "str", "set", "string");
    wrong_type("set pop, ttl", s_ttl.pop(), "str", "set", "string");
    wrong_type("set extend, ttl", s_ttl.extend([1]), "str", "set", "string");
    wrong_type("set to_hash_set", s.to_hash_set(), "str", "set", "string");
    wrong_type(
        "set difference",
        s.difference([&s_ttl]),
        "str",
        "set",
        "string",
    );

    // SortedSetCache: the operations the type's own test leaves out, and writes with a TTL.
    let z: SortedSetCache<u32> = SortedSetCache::builder("hash").connection(&conn).build();
    let z_ttl: SortedSetCache<u32> = SortedSetCache::builder("hash")
        .connection(&conn)
        .ttl(ttl)
        .build();
    wrong_type(
        "zset incr_score",
        z.incr_score(&1, 1.0),
        "hash",
        "zset",
        "hash",
    );
    wrong_type("zset remove", z.remove(&1), "hash", "zset", "hash");
    wrong_type(
        "zset insert_with",
        z.insert_with(&1, 1.0, InsertMode::OnlyNew),
        "hash",
        "zset",
        "hash",
    );
    wrong_type("zset contains", z.contains(&1), "hash", "zset", "hash");
    wrong_type("zset rank_rev", z.rank_rev(&1), "hash", "zset", "hash");
    wrong_type("zset pop_max", z.pop_max(), "hash", "zset", "hash");
    wrong_type("zset range_rev", z.range_rev(..), "hash", "zset", "hash");
    wrong_type(
        "zset range_by_score_rev",
        z.range_by_score_rev(.., Limit::first(3)),
        "hash",
        "zset",
        "hash",
    );
    let mut it = z.iter();
    wrong_type("zset iter", it.next().unwrap(), "hash", "zset", "hash");
    assert!(it.next().is_none(), "the iteration ends after the error");
    wrong_type(
        "zset insert, ttl",
        z_ttl.insert(&1, 1.0),
        "hash",
        "zset",
        "hash",
    );
    wrong_type(
        "zset incr_score, ttl",
        z_ttl.incr_score(&1, 1.0),
        "hash",
        "zset",
        "hash",
    );
    wrong_type("zset remove, ttl", z_ttl.remove(&1), "hash", "zset", "hash");
    wrong_type("zset pop_min, ttl", z_ttl.pop_min(), "hash", "zset", "hash");
    wrong_type(
        "zset extend, ttl",
        z_ttl.extend([(1, 1.0)]),
        "hash",
        "zset",
        "hash",
    );

    // SentinelCache: a claim with a TTL (SET NX GET PX) on a hash.
    let gate = SentinelCache::builder("hash")
        .connection(&conn)
        .ttl(ttl)
        .build();
    wrong_type(
        "sentinel claim, ttl",
        gate.claim(),
        "hash",
        "string",
        "hash",
    );

    // Nothing was written over the foreign values.
    let kind: String = redis::cmd("TYPE").arg("str").query(&mut raw).unwrap();
    assert_eq!(kind, "string");
    let v: HashMap<String, String> = redis::cmd("HGETALL").arg("hash").query(&mut raw).unwrap();
    assert_eq!(v, HashMap::from([("f".to_string(), "v".to_string())]));

    // A set store refuses a destination of another type, and leaves it alone.
    let src: SetCache<u32> = SetCache::builder("src").connection(&conn).build();
    src.insert(&7).unwrap();
    let dest: SetCache<u32> = SetCache::builder("str").connection(&conn).build();
    match src.union_store([], &dest).unwrap_err() {
        Error::WrongType { key, found, .. } => {
            assert_eq!(key, "str");
            assert_eq!(found, "string");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    let kind: String = redis::cmd("TYPE").arg("str").query(&mut raw).unwrap();
    assert_eq!(kind, "string");
}

#[test]
fn a_failed_write_with_a_ttl_leaves_a_key_of_another_type_without_a_ttl() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    redis::cmd("SET")
        .arg("str")
        .arg("x")
        .exec(&mut raw)
        .unwrap();
    let ttl = Duration::from_secs(60);
    let d: DictCache<String, u32> = DictCache::builder("str").connection(&conn).ttl(ttl).build();
    let s: SetCache<u32> = SetCache::builder("str").connection(&conn).ttl(ttl).build();
    let z: SortedSetCache<u32> = SortedSetCache::builder("str")
        .connection(&conn)
        .ttl(ttl)
        .build();
    wrong_type("dict set", d.set("a", &1), "str", "hash", "string");
    wrong_type("set insert", s.insert(&1), "str", "set", "string");
    wrong_type("zset insert", z.insert(&1, 1.0), "str", "zset", "string");
    let pttl: i64 = redis::cmd("PTTL").arg("str").query(&mut raw).unwrap();
    assert_eq!(
        pttl, -1,
        "a failed write set a TTL on a key of another type"
    );
}

#[test]
fn a_memo_entry_of_another_redis_type_is_an_error_naming_the_key_not_a_panic() {
    let server = RedisServer::start();
    let conn = server.connection();
    let m = Memo::builder("typed", |x: u32| x * 2)
        .connection(&conn)
        .key(|x: &u32| *x)
        .build();
    redis::cmd("HSET")
        .arg("{memo:typed}.v.1")
        .arg("f")
        .arg("v")
        .exec(&mut server.raw())
        .unwrap();
    let err = m.call(1).unwrap_err();
    assert!(!err.is_connection(), "{err:?}");
    assert!(err.to_string().contains("{memo:typed}.v.1"), "{err}");
    // Other arguments are unaffected.
    assert_eq!(m.call(2).unwrap(), 4);
}

/// Enough entries for several scan pages (Redis' compact encodings come back in one).
const MANY: u32 = 3000;

/// Runs `iter` for one item, then `interrupt`s, then drains it: the iteration ends early,
/// without an error, with fewer items than the collection had.
fn ends_early_without_error<T, I>(what: &str, mut iter: I, interrupt: impl FnOnce())
where
    I: Iterator<Item = Result<T, Error>>,
{
    let first = iter.next();
    assert!(
        matches!(first, Some(Ok(_))),
        "{what}: first item: {:?}",
        first.map(|r| r.err())
    );
    interrupt();
    let mut n = 1usize;
    for item in iter.by_ref() {
        assert!(item.is_ok(), "{what}: {:?}", item.err());
        n += 1;
    }
    assert!(
        n < MANY as usize,
        "{what}: {n} items after the key was gone"
    );
    assert!(iter.next().is_none(), "{what}: fused");
}

#[test]
fn a_key_deleted_or_expiring_mid_iteration_ends_the_iteration_early_without_an_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let d: DictCache<u32, u32> = dict(&conn, "it-dict");
    let s: SetCache<u32> = SetCache::builder("it-set").connection(&conn).build();
    let z: SortedSetCache<u32> = SortedSetCache::builder("it-zset").connection(&conn).build();
    let fill = || {
        d.extend((0..MANY).map(|i| (i, i))).unwrap();
        s.extend(0..MANY).unwrap();
        z.extend((0..MANY).map(|i| (i, f64::from(i)))).unwrap();
    };
    let mut delete = |key: &str| {
        redis::cmd("DEL").arg(key).exec(&mut raw).unwrap();
    };

    fill();
    ends_early_without_error("dict iter, deleted", d.iter(), || delete("it-dict"));
    ends_early_without_error("set iter, deleted", s.iter(), || delete("it-set"));
    ends_early_without_error("zset iter, deleted", z.iter(), || delete("it-zset"));
    z.extend((0..MANY).map(|i| (i, f64::from(i)))).unwrap();
    ends_early_without_error("zset iter_rev, deleted", z.iter_rev(), || delete("it-zset"));

    fill();
    let expire = |key: &str, exists: &dyn Fn() -> bool| {
        redis::cmd("PEXPIRE")
            .arg(key)
            .arg(20)
            .exec(&mut server.raw())
            .unwrap();
        assert!(
            eventually(Duration::from_secs(2), || !exists()),
            "{key} expired"
        );
    };
    ends_early_without_error("dict keys, expired", d.keys(), || {
        expire("it-dict", &|| d.exists().unwrap())
    });
    ends_early_without_error("set iter, expired", s.iter(), || {
        expire("it-set", &|| s.exists().unwrap())
    });
    ends_early_without_error("zset iter, expired", z.iter(), || {
        expire("it-zset", &|| z.exists().unwrap())
    });
}
