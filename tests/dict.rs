//! DictCache against real servers: std semantics (a HashMap model), TTL policies,
//! visibility across handles and processes, bad input, iteration, and the commands each
//! operation sends.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::{Connection, DictCache, Error, Ttl, TtlPolicy};
use support::dicts::{dict, encoded, fresh_field, with_ttl};
use support::redis_helpers::{assert_handle, raw_pttl, raw_set};
use support::{RedisServer, unique};

#[test]
fn handles_are_clone_send_sync_and_debug_shows_key_and_type_only() {
    assert_handle::<DictCache<String, i64>>();
    // Not even the value type needs to be Send or Sync: the handle holds none.
    assert_handle::<DictCache<std::rc::Rc<u8>, std::cell::Cell<u8>>>();
    fn assert_iter_send<T: Send>() {}
    assert_iter_send::<redis_caches::dict::Iter<String, i64>>();

    let c: DictCache<String, i64> = DictCache::new(["foo", "bar"]);
    let shown = format!("{c:?}");
    assert!(shown.starts_with("DictCache"), "{shown}");
    assert!(shown.contains("foo.bar"), "{shown}");
}

#[test]
fn std_like_operations_with_borrowed_lookups() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: DictCache<String, i64> = dict(&conn, "basic");

    assert!(c.is_empty().unwrap());
    assert!(!c.exists().unwrap());
    assert_eq!(c.get("a").unwrap(), None);
    assert_eq!(c.insert("a", &1).unwrap(), None);
    assert_eq!(c.insert("a", &2).unwrap(), Some(1));
    assert_eq!(c.get("a").unwrap(), Some(2));
    assert_eq!(c.get(&"a".to_string()).unwrap(), Some(2));
    assert!(c.set("b", &3).unwrap(), "b was new");
    assert!(!c.set("b", &4).unwrap(), "b was not new");
    assert!(c.contains_key("b").unwrap());
    assert!(!c.contains_key("z").unwrap());
    assert_eq!(c.len().unwrap(), 2);
    assert_eq!(
        c.get_many(["a", "z", "b"]).unwrap(),
        vec![Some(2), None, Some(4)]
    );
    assert_eq!(c.get_many(Vec::<&str>::new()).unwrap(), vec![]);
    assert_eq!(c.get_or_insert_with("a", || unreachable!()).unwrap(), 2);
    assert_eq!(c.get_or_insert_with("c", || 5).unwrap(), 5);
    assert_eq!(c.get("c").unwrap(), Some(5));
    assert_eq!(c.remove("c").unwrap(), Some(5));
    assert_eq!(c.remove("c").unwrap(), None);
    c.extend([("d".to_string(), 6), ("e".to_string(), 7)])
        .unwrap();
    assert_eq!(c.extend(Vec::<(String, i64)>::new()).unwrap(), 0);

    let expected: HashMap<String, i64> = [("a", 2), ("b", 4), ("d", 6), ("e", 7)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(c.to_hash_map().unwrap(), expected);
    let mut seen = HashMap::new();
    for entry in &c {
        let (k, v) = entry.unwrap();
        seen.insert(k, v);
    }
    assert_eq!(seen, expected);
    let mut keys: Vec<String> = c.keys().collect::<Result<_, _>>().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b", "d", "e"]);
    let mut values: Vec<i64> = c.values().collect::<Result<_, _>>().unwrap();
    values.sort();
    assert_eq!(values, [2, 4, 6, 7]);

    let (k, v) = c.pop_item().unwrap().expect("an entry");
    assert_eq!(expected.get(&k), Some(&v));
    assert_eq!(c.len().unwrap(), 3);
    assert!(!c.contains_key(&k).unwrap());

    assert!(c.clear().unwrap());
    assert!(!c.clear().unwrap());
    assert_eq!(c.pop_item().unwrap(), None);
    assert_eq!(c.iter().count(), 0);
}

#[derive(Clone, Debug)]
enum Op<K, V> {
    Insert(K, V),
    Set(K, V),
    Remove(K),
    Get(K),
    ContainsKey(K),
    Len,
    GetOrInsert(K, V),
    Extend(Vec<(K, V)>),
    GetMany(Vec<K>),
    PopItem,
    Clear,
}

fn ops<K, V>(keys: K, values: V) -> impl Strategy<Value = Vec<Op<K::Value, V::Value>>>
where
    K::Value: Clone + std::fmt::Debug,
    V::Value: Clone + std::fmt::Debug,
    K: Strategy + Clone + 'static,
    V: Strategy + Clone + 'static,
{
    let op = prop_oneof![
        4 => (keys.clone(), values.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (keys.clone(), values.clone()).prop_map(|(k, v)| Op::Set(k, v)),
        3 => keys.clone().prop_map(Op::Remove),
        3 => keys.clone().prop_map(Op::Get),
        1 => keys.clone().prop_map(Op::ContainsKey),
        1 => Just(Op::Len),
        2 => (keys.clone(), values.clone()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        1 => proptest::collection::vec((keys.clone(), values), 0..6).prop_map(Op::Extend),
        1 => proptest::collection::vec(keys, 0..6).prop_map(Op::GetMany),
        1 => Just(Op::PopItem),
        1 => Just(Op::Clear),
    ];
    proptest::collection::vec(op, 1..40)
}

/// Runs `ops` on `c` and on a `HashMap` model, comparing every answer and the final contents.
fn check_against_model<K, V>(c: &DictCache<K, V>, ops: Vec<Op<K, V>>) -> Result<(), TestCaseError>
where
    K: serde::Serialize
        + serde::de::DeserializeOwned
        + Eq
        + std::hash::Hash
        + Clone
        + std::fmt::Debug
        + 'static,
    V: serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + Clone
        + std::fmt::Debug
        + 'static,
{
    let mut model: HashMap<K, V> = HashMap::new();
    for op in ops {
        match op {
            Op::Insert(k, v) => prop_assert_eq!(c.insert(&k, &v).unwrap(), model.insert(k, v)),
            Op::Set(k, v) => prop_assert_eq!(c.set(&k, &v).unwrap(), model.insert(k, v).is_none()),
            Op::Remove(k) => prop_assert_eq!(c.remove(&k).unwrap(), model.remove(&k)),
            Op::Get(k) => prop_assert_eq!(c.get(&k).unwrap(), model.get(&k).cloned()),
            Op::ContainsKey(k) => {
                prop_assert_eq!(c.contains_key(&k).unwrap(), model.contains_key(&k))
            }
            Op::Len => {
                prop_assert_eq!(c.len().unwrap(), model.len());
                prop_assert_eq!(c.is_empty().unwrap(), model.is_empty());
            }
            Op::GetOrInsert(k, v) => {
                let expected = model.entry(k.clone()).or_insert(v.clone()).clone();
                prop_assert_eq!(c.get_or_insert_with(&k, || v).unwrap(), expected);
            }
            Op::Extend(entries) => {
                c.extend(entries.clone()).unwrap();
                model.extend(entries);
            }
            Op::GetMany(keys) => {
                let expected: Vec<Option<V>> = keys.iter().map(|k| model.get(k).cloned()).collect();
                prop_assert_eq!(c.get_many(&keys).unwrap(), expected);
            }
            Op::PopItem => match c.pop_item().unwrap() {
                Some((k, v)) => prop_assert_eq!(model.remove(&k), Some(v)),
                None => prop_assert!(model.is_empty()),
            },
            Op::Clear => {
                prop_assert_eq!(c.clear().unwrap(), !model.is_empty());
                model.clear();
            }
        }
    }
    prop_assert_eq!(c.to_hash_map().unwrap(), model.clone());
    let iterated: HashMap<K, V> = c.iter().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(iterated, model.clone());
    prop_assert_eq!(c.exists().unwrap(), !model.is_empty());
    Ok(())
}

/// 64 cases per model test; failures are shrunk and printed, not written to a file.
fn model_config() -> Config {
    Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn behaves_like_a_hash_map_with_string_keys() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut runner = TestRunner::new(model_config());
    runner
        .run(&ops("[a-e]{0,2}", any::<i64>()), |ops| {
            let c: DictCache<String, i64> = dict(&conn, &unique("model"));
            check_against_model(&c, ops)
        })
        .unwrap();
}

#[test]
fn behaves_like_a_hash_map_with_integer_keys_and_a_ttl() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut runner = TestRunner::new(model_config());
    runner
        .run(&ops(-3i32..4, ".{0,3}"), |ops| {
            // A long TTL: every write goes through MULTI/EXEC with PEXPIRE, nothing expires.
            let c: DictCache<i32, String> = with_ttl(
                &conn,
                &unique("model-int"),
                Duration::from_secs(600),
                TtlPolicy::Refresh,
            );
            check_against_model(&c, ops)
        })
        .unwrap();
}

#[test]
fn refresh_policy_keeps_a_written_hash_alive_and_lets_an_idle_one_expire() {
    let server = RedisServer::start();
    let conn = server.connection();
    let ttl = Duration::from_millis(500);
    let c: DictCache<String, u32> = with_ttl(&conn, "refresh", ttl, TtlPolicy::Refresh);
    c.set("first", &1).unwrap();
    let started = Instant::now();
    let mut last_write = Instant::now();
    let mut largest_gap = Duration::ZERO;
    // Keep writing other fields for over twice the TTL: each write pushes the expiry back,
    // so the first field survives (a write to an expired hash would not bring it back).
    while started.elapsed() < ttl * 2 + ttl / 5 {
        std::thread::sleep(Duration::from_millis(25));
        largest_gap = largest_gap.max(last_write.elapsed());
        c.set("other", &2).unwrap();
        last_write = Instant::now();
        assert_eq!(
            c.get("first").unwrap(),
            Some(1),
            "expired although written within the TTL (largest gap between writes: {largest_gap:?})"
        );
    }
    match c.ttl().unwrap() {
        Ttl::Expires(left) => assert!(left <= ttl, "{left:?}"),
        other => panic!("expected a TTL, got {other:?}"),
    }
    assert!(
        support::eventually(Duration::from_secs(3), || !c.exists().unwrap()),
        "the idle hash did not expire"
    );
    assert_eq!(c.get("first").unwrap(), None);
}

#[test]
fn keep_policy_expires_on_time_despite_writes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let ttl = Duration::from_millis(300);
    let c: DictCache<String, u32> = with_ttl(&conn, "keep", ttl, TtlPolicy::Keep);
    let started = Instant::now();
    c.set("a", &1).unwrap();
    // Writes during the TTL do not extend it: the hash is gone soon after `ttl`.
    let expired = support::eventually(Duration::from_secs(3), || {
        if !c.exists().unwrap() {
            return true;
        }
        if started.elapsed() < ttl / 2 {
            c.set("b", &2).unwrap();
        }
        false
    });
    assert!(expired, "the hash did not expire");
    assert!(
        started.elapsed() < ttl + Duration::from_millis(1500),
        "expired only after {:?}",
        started.elapsed()
    );
    // A write after expiry creates the hash again, with a fresh TTL.
    c.set("c", &3).unwrap();
    assert!(matches!(c.ttl().unwrap(), Ttl::Expires(left) if left <= ttl));
}

/// Each write applies the TTL: `Refresh` sets it again, `Keep` sets it only where none is.
#[test]
fn every_write_applies_the_ttl_policy() {
    let server = RedisServer::start();
    let conn = server.connection();
    let ttl = Duration::from_secs(60);
    let long = Duration::from_secs(1000);
    type Write = fn(&DictCache<String, u32>);
    let writes: [(&str, Write); 6] = [
        ("insert", |c| {
            let _ = c.insert("w", &1).unwrap();
        }),
        ("set", |c| {
            let _ = c.set("w", &2).unwrap();
        }),
        ("remove", |c| {
            let _ = c.remove("w").unwrap();
        }),
        ("extend", |c| {
            c.extend([("w".to_string(), 3)]).unwrap();
        }),
        ("get_or_insert_with (miss)", |c| {
            let _ = c.get_or_insert_with(&fresh_field(), || 4).unwrap();
        }),
        ("pop_item", |c| {
            let _ = c.pop_item().unwrap();
        }),
    ];
    for (name, write) in writes {
        let key = unique("refresh-each");
        let c: DictCache<String, u32> = with_ttl(&conn, &key, ttl, TtlPolicy::Refresh);
        c.extend([
            ("keep".to_string(), 0),
            ("w".to_string(), 0),
            ("x".to_string(), 0),
        ])
        .unwrap();
        assert!(c.expire(long).unwrap());
        write(&c);
        let pttl = raw_pttl(&server, &key);
        assert!(
            pttl > 0 && pttl <= 60_000,
            "{name} under Refresh left PTTL {pttl}"
        );

        let key = unique("keep-each");
        let c: DictCache<String, u32> = with_ttl(&conn, &key, ttl, TtlPolicy::Keep);
        c.extend([
            ("keep".to_string(), 0),
            ("w".to_string(), 0),
            ("x".to_string(), 0),
        ])
        .unwrap();
        redis::cmd("PERSIST")
            .arg(&key)
            .exec(&mut server.raw())
            .unwrap();
        write(&c);
        let pttl = raw_pttl(&server, &key);
        assert!(
            pttl > 0 && pttl <= 60_000,
            "{name} under Keep set no TTL: {pttl}"
        );
        assert!(c.expire(long).unwrap());
        write(&c);
        let pttl = raw_pttl(&server, &key);
        assert!(pttl > 60_000, "{name} under Keep replaced the TTL: {pttl}");
    }
}

#[test]
fn two_handles_see_each_others_writes() {
    let server = RedisServer::start();
    let (c1, c2) = (server.connection(), server.connection());
    let a: DictCache<String, Vec<u8>> = dict(&c1, "shared");
    let b: DictCache<String, Vec<u8>> = dict(&c2, "shared");
    a.insert("x", &vec![1, 2]).unwrap();
    assert_eq!(b.get("x").unwrap(), Some(vec![1, 2]));
    assert_eq!(b.remove("x").unwrap(), Some(vec![1, 2]));
    assert_eq!(a.get("x").unwrap(), None);
    let clone = a.clone();
    clone.set("y", &vec![3]).unwrap();
    assert_eq!(b.to_hash_map().unwrap().len(), 1);
}

#[test]
fn two_processes_see_each_others_writes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let key = unique("cross-process");
    let c: DictCache<String, u64> = dict(&conn, &key);
    c.insert("from-parent", &1).unwrap();
    let child = support::child_process(
        "child_process_entry_dict",
        &[
            ("DICT_TEST_URL", server.url()),
            ("DICT_TEST_KEY", key.clone()),
        ],
    );
    support::wait_child(child);
    assert_eq!(c.get("from-child").unwrap(), Some(2));
    assert_eq!(c.get("from-parent").unwrap(), None, "the child removed it");
}

#[test]
#[ignore = "child process entry point: run by two_processes_see_each_others_writes"]
fn child_process_entry_dict() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("DICT_TEST_URL").unwrap();
    let key = std::env::var("DICT_TEST_KEY").unwrap();
    let conn = Connection::open(&unique("child"), &url).unwrap();
    let c: DictCache<String, u64> = dict(&conn, &key);
    assert_eq!(c.remove("from-parent").unwrap(), Some(1));
    c.insert("from-child", &2).unwrap();
}

#[test]
fn foreign_bytes_give_decode_errors_naming_key_and_field() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: DictCache<String, u32> = dict(&conn, "foreign");
    c.insert("good", &1).unwrap();
    let mut raw = server.raw();
    redis::cmd("HSET")
        .arg("foreign")
        .arg("bad")
        .arg("written by redis-cli")
        .exec(&mut raw)
        .unwrap();
    // A field the crate did not write (not UTF-8, so no `String`), holding a valid value.
    redis::cmd("HSET")
        .arg("foreign")
        .arg(&b"\xffodd"[..])
        .arg(encoded(&7u32, TypeTag::of::<u32>()))
        .exec(&mut raw)
        .unwrap();

    let err = c.get("bad").unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("foreign["), "names the key: {msg}");
    assert!(msg.contains("bad\"]"), "names the field: {msg}");
    assert!(!msg.contains("redis-cli"), "never the value bytes: {msg}");

    assert!(c.remove("bad").unwrap_err().is_decode());
    assert!(
        !c.contains_key("bad").unwrap(),
        "removed even though undecodable"
    );

    // Iteration reports the bad field and goes on with the rest.
    let results: Vec<_> = c.iter().collect();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Ok((k, 1)) if k == "good"))
    );
    let err = results.into_iter().find_map(Result::err).expect("an error");
    let msg = err.to_string();
    assert!(err.is_decode(), "{err:?}");
    assert!(
        msg.contains("foreign[\"\\xffodd\"]") && msg.contains("the field itself"),
        "{msg}"
    );
    assert!(c.to_hash_map().unwrap_err().is_decode());
    assert_eq!(c.keys().filter(Result::is_err).count(), 1);
    assert_eq!(c.values().filter(Result::is_err).count(), 0);
}

#[test]
fn a_key_of_another_redis_type_gives_wrong_type() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_set(&server, "str", "x");
    let c: DictCache<String, u32> = dict(&conn, "str");
    let c_ttl: DictCache<String, u32> =
        with_ttl(&conn, "str", Duration::from_secs(60), TtlPolicy::Refresh);
    let is_wrong_type = |r: Result<(), Error>, what: &str| match r {
        Err(Error::WrongType {
            key,
            expected,
            found,
        }) => {
            assert_eq!(
                (key.as_str(), expected, found.as_str()),
                ("str", "hash", "string"),
                "{what}"
            );
        }
        other => panic!("{what}: expected WrongType, got {other:?}"),
    };
    is_wrong_type(c.get("a").map(drop), "get");
    is_wrong_type(c.insert("a", &1).map(drop), "insert");
    is_wrong_type(c.set("a", &1).map(drop), "set");
    is_wrong_type(c_ttl.set("a", &1).map(drop), "set with a TTL");
    is_wrong_type(c.remove("a").map(drop), "remove");
    is_wrong_type(c.contains_key("a").map(drop), "contains_key");
    is_wrong_type(c.len().map(drop), "len");
    is_wrong_type(c.get_many(["a"]).map(drop), "get_many");
    is_wrong_type(c.extend([("a".to_string(), 1)]).map(drop), "extend");
    is_wrong_type(
        c.get_or_insert_with("a", || 1).map(drop),
        "get_or_insert_with",
    );
    is_wrong_type(c.pop_item().map(drop), "pop_item");
    is_wrong_type(c.to_hash_map().map(drop), "to_hash_map");
    let mut it = c.iter();
    is_wrong_type(it.next().expect("one error").map(drop), "iter");
    assert!(it.next().is_none(), "the iteration ends after the error");
    let s: String = redis::cmd("GET")
        .arg("str")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(s, "x", "the string was left alone");
}

#[test]
fn an_empty_key_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: DictCache<String, u32> = DictCache::builder(Vec::<String>::new())
        .connection(&conn)
        .build();
    assert!(format!("{c:?}").contains("<invalid key>"));
    assert!(matches!(c.get("a"), Err(Error::InvalidKey { .. })));
    assert!(matches!(c.insert("a", &1), Err(Error::InvalidKey { .. })));
    assert!(matches!(c.len(), Err(Error::InvalidKey { .. })));
    let mut it = c.iter();
    assert!(matches!(it.next(), Some(Err(Error::InvalidKey { .. }))));
    assert!(it.next().is_none());
}

#[test]
fn iteration_streams_large_hashes_in_batches_and_matches_hgetall() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: DictCache<u32, String> = dict(&conn, "big");
    let n = 5_000u32;
    let counted = server.count_commands(|| {
        c.extend((0..n).map(|i| (i, format!("value {i}")))).unwrap();
    });
    assert_eq!(
        counted.get("hset"),
        Some(&2),
        "5,000 pairs in HSETs of 4,096: {counted:?}"
    );

    let raw: HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL")
        .arg("big")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(raw.len(), n as usize);

    let mut from_iter = HashMap::new();
    let counted = server.count_commands(|| {
        for entry in &c {
            let (k, v) = entry.unwrap();
            // HSCAN may repeat an entry while Redis rehashes; it must repeat it unchanged.
            if let Some(old) = from_iter.insert(k, v.clone()) {
                assert_eq!(old, v);
            }
        }
    });
    let scans = counted.get("hscan").copied().unwrap_or(0);
    assert!(
        scans >= 3,
        "expected several HSCAN batches, got {counted:?}"
    );
    assert_eq!(counted.len(), 1, "only HSCAN: {counted:?}");

    let expected: HashMap<u32, String> = raw
        .iter()
        .map(|(f, v)| {
            (
                Postcard.decode_field(f, &TypeTag::of::<u32>()).unwrap(),
                Postcard.decode(v, &TypeTag::of::<String>()).unwrap(),
            )
        })
        .collect();
    assert_eq!(from_iter, expected);
    assert_eq!(c.to_hash_map().unwrap(), expected);
    assert_eq!(
        c.keys()
            .filter_map(Result::ok)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        n as usize
    );
    assert!(c.values().count() >= n as usize);
}

#[test]
fn field_counters_count_atomically_and_refuse_what_is_not_a_number() {
    use redis_caches::codec::Raw;
    let server = RedisServer::start();
    let conn = server.connection();
    let counts: DictCache<String, i64, Raw> = DictCache::builder(unique("counts"))
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .codec(Raw)
        .build();
    assert_eq!(
        counts.incr("a", 5).unwrap(),
        5,
        "a missing entry counts as 0"
    );
    assert_eq!(counts.decr("a", 7).unwrap(), -2);
    assert!(
        matches!(counts.ttl().unwrap(), Ttl::Expires(_)),
        "the TTL is applied"
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let counts = counts.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    counts.incr("n", 1).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(counts.get("n").unwrap(), Some(400));
    // Not a number: refused by Redis, the value left as it was.
    let mixed = unique("mixed");
    let texts: DictCache<String, String, Raw> = DictCache::builder(mixed.as_str())
        .connection(&conn)
        .codec(Raw)
        .build();
    texts.set("t", "abc").unwrap();
    let numbers: DictCache<String, u8, Raw> = DictCache::builder(mixed.as_str())
        .connection(&conn)
        .codec(Raw)
        .build();
    assert!(matches!(
        numbers.incr("t", 1).unwrap_err(),
        Error::Redis { .. }
    ));
    assert_eq!(texts.get("t").unwrap().as_deref(), Some("abc"));
    // A count beyond the value type: a decode error naming the field (Redis counts in i64).
    assert_eq!(numbers.incr("u", 200).unwrap(), 200);
    let e = numbers.incr("u", 100).unwrap_err();
    assert!(e.is_decode() && e.to_string().contains("[\"u\"]"), "{e}");
    let floats: DictCache<String, f64, Raw> = DictCache::builder(unique("floats"))
        .connection(&conn)
        .codec(Raw)
        .build();
    assert_eq!(floats.incr("x", 0.25).unwrap(), 0.25);
    assert_eq!(floats.incr("x", 0.5).unwrap(), 0.75);
    assert!(
        floats
            .incr("x", f64::INFINITY)
            .unwrap_err()
            .to_string()
            .contains("cannot encode")
    );
}
