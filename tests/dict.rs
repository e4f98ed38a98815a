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
use support::{RedisServer, unique};

fn dict<K, V>(conn: &Connection, key: &str) -> DictCache<K, V> {
    DictCache::builder(key).connection(conn).build()
}

fn with_ttl<K, V>(
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
fn encoded<T: serde::Serialize + ?Sized>(value: &T, tag: TypeTag) -> Vec<u8> {
    Postcard.encode(value, &tag).unwrap()
}

/// A field name not used before in this process.
fn fresh_field() -> String {
    unique("field")
}

fn raw_pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut server.raw())
        .unwrap()
}

#[test]
fn handles_are_clone_send_sync_and_debug_shows_key_and_type_only() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
    assert_traits::<DictCache<String, i64>>();
    // Not even the value type needs to be Send or Sync: the handle holds none.
    assert_traits::<DictCache<std::rc::Rc<u8>, std::cell::Cell<u8>>>();
    fn assert_iter_send<T: Send>() {}
    assert_iter_send::<redis_caches::dict::Iter<'static, String, i64>>();

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
    c.extend(Vec::new()).unwrap();

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
        + std::fmt::Debug,
    V: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Clone + std::fmt::Debug,
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
        ("extend", |c| c.extend([("w".to_string(), 3)]).unwrap()),
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
    let field = encoded("bad", TypeTag::of::<String>());
    let mut raw = server.raw();
    redis::cmd("HSET")
        .arg("foreign")
        .arg(&field)
        .arg("written by redis-cli")
        .exec(&mut raw)
        .unwrap();
    // A field the crate did not encode, holding a valid value.
    redis::cmd("HSET")
        .arg("foreign")
        .arg("plain-field")
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
        msg.contains("foreign[\"plain-field\"]") && msg.contains("the field itself"),
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
    redis::cmd("SET")
        .arg("str")
        .arg("x")
        .exec(&mut server.raw())
        .unwrap();
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
    is_wrong_type(c.extend([("a".to_string(), 1)]), "extend");
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
        Some(&10),
        "5,000 pairs in HSETs of 512: {counted:?}"
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
                Postcard.decode(f, &TypeTag::of::<u32>()).unwrap(),
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

fn cmds(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Pins the commands each operation sends, and that single-element operations are one round
/// trip (two for `get_or_insert_with` on a miss).
#[test]
fn each_operation_sends_the_pinned_commands_in_one_round_trip() {
    let server = RedisServer::start();
    let conn = server.connection();
    let plain: DictCache<String, u32> = dict(&conn, "count");
    let ttl: DictCache<String, u32> = with_ttl(
        &conn,
        "count-ttl",
        Duration::from_secs(60),
        TtlPolicy::Refresh,
    );
    let keep: DictCache<String, u32> = with_ttl(
        &conn,
        "count-keep",
        Duration::from_secs(60),
        TtlPolicy::Keep,
    );
    // Warm up: open the pooled connection and load the pop_item script.
    for c in [&plain, &ttl, &keep] {
        c.pop_item().unwrap();
        c.extend([("a".to_string(), 1), ("b".to_string(), 2)])
            .unwrap();
    }

    type Op = fn(&DictCache<String, u32>);
    /// Name, handle, operation, commands, round trips.
    type Case<'a> = (
        &'a str,
        &'a DictCache<String, u32>,
        Op,
        HashMap<String, u64>,
        u64,
    );
    let cases: Vec<Case> = vec![
        (
            "get",
            &plain,
            |c| {
                let _ = c.get("a").unwrap();
            },
            cmds(&[("hget", 1)]),
            1,
        ),
        (
            "set",
            &plain,
            |c| {
                let _ = c.set("a", &1).unwrap();
            },
            cmds(&[("hset", 1)]),
            1,
        ),
        (
            "set with TTL",
            &ttl,
            |c| {
                let _ = c.set("a", &1).unwrap();
            },
            cmds(&[("multi", 1), ("hset", 1), ("pexpire", 1), ("exec", 1)]),
            1,
        ),
        (
            "insert",
            &plain,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            cmds(&[("multi", 1), ("hget", 1), ("hset", 1), ("exec", 1)]),
            1,
        ),
        (
            "insert with TTL",
            &ttl,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            cmds(&[
                ("multi", 1),
                ("hget", 1),
                ("hset", 1),
                ("pexpire", 1),
                ("exec", 1),
            ]),
            1,
        ),
        (
            "insert with TTL kept",
            &keep,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            cmds(&[
                ("multi", 1),
                ("hget", 1),
                ("hset", 1),
                ("pexpire", 1),
                ("exec", 1),
            ]),
            1,
        ),
        (
            "remove",
            &plain,
            |c| {
                let _ = c.remove("b").unwrap();
            },
            cmds(&[("multi", 1), ("hget", 1), ("hdel", 1), ("exec", 1)]),
            1,
        ),
        (
            "remove with TTL",
            &ttl,
            |c| {
                let _ = c.remove("b").unwrap();
            },
            cmds(&[
                ("multi", 1),
                ("hget", 1),
                ("hdel", 1),
                ("pexpire", 1),
                ("exec", 1),
            ]),
            1,
        ),
        (
            "contains_key",
            &plain,
            |c| {
                let _ = c.contains_key("a").unwrap();
            },
            cmds(&[("hexists", 1)]),
            1,
        ),
        (
            "len",
            &plain,
            |c| {
                let _ = c.len().unwrap();
            },
            cmds(&[("hlen", 1)]),
            1,
        ),
        (
            "is_empty",
            &plain,
            |c| {
                let _ = c.is_empty().unwrap();
            },
            cmds(&[("hlen", 1)]),
            1,
        ),
        (
            "get_many",
            &plain,
            |c| {
                let _ = c.get_many(["a", "b", "c"]).unwrap();
            },
            cmds(&[("hmget", 1)]),
            1,
        ),
        (
            "extend",
            &plain,
            |c| {
                c.extend([("x".to_string(), 1), ("y".to_string(), 2)])
                    .unwrap()
            },
            cmds(&[("hset", 1)]),
            1,
        ),
        (
            "extend with TTL",
            &ttl,
            |c| {
                c.extend([("x".to_string(), 1), ("y".to_string(), 2)])
                    .unwrap()
            },
            cmds(&[("multi", 1), ("hset", 1), ("pexpire", 1), ("exec", 1)]),
            1,
        ),
        (
            "get_or_insert_with hit",
            &plain,
            |c| {
                let _ = c.get_or_insert_with("a", || 9).unwrap();
            },
            cmds(&[("hget", 1)]),
            1,
        ),
        (
            "get_or_insert_with miss",
            &plain,
            |c| {
                let _ = c.get_or_insert_with(&fresh_field(), || 9).unwrap();
            },
            cmds(&[("hget", 2), ("multi", 1), ("hsetnx", 1), ("exec", 1)]),
            2,
        ),
        (
            "get_or_insert_with miss with TTL",
            &ttl,
            |c| {
                let _ = c.get_or_insert_with(&fresh_field(), || 9).unwrap();
            },
            cmds(&[
                ("hget", 2),
                ("multi", 1),
                ("hsetnx", 1),
                ("pexpire", 1),
                ("exec", 1),
            ]),
            2,
        ),
        (
            "pop_item",
            &plain,
            |c| {
                let _ = c.pop_item().unwrap();
            },
            cmds(&[("evalsha", 1), ("hrandfield", 1), ("hget", 1), ("hdel", 1)]),
            1,
        ),
        (
            "pop_item with TTL",
            &ttl,
            |c| {
                let _ = c.pop_item().unwrap();
            },
            cmds(&[
                ("evalsha", 1),
                ("hrandfield", 1),
                ("hget", 1),
                ("hdel", 1),
                ("pexpire", 1),
            ]),
            1,
        ),
        (
            "to_hash_map",
            &plain,
            |c| {
                let _ = c.to_hash_map().unwrap();
            },
            cmds(&[("hgetall", 1)]),
            1,
        ),
        (
            "iter (small)",
            &plain,
            |c| assert!(c.iter().count() > 0),
            cmds(&[("hscan", 1)]),
            1,
        ),
        (
            "exists",
            &plain,
            |c| {
                let _ = c.exists().unwrap();
            },
            cmds(&[("exists", 1)]),
            1,
        ),
        (
            "ttl",
            &plain,
            |c| {
                let _ = c.ttl().unwrap();
            },
            cmds(&[("pttl", 1)]),
            1,
        ),
        (
            "expire",
            &plain,
            |c| {
                let _ = c.expire(Duration::from_secs(60)).unwrap();
            },
            cmds(&[("pexpire", 1)]),
            1,
        ),
        (
            "clear",
            &plain,
            |c| {
                let _ = c.clear().unwrap();
            },
            cmds(&[("del", 1)]),
            1,
        ),
    ];
    for (name, c, op, expected, round_trips) in cases {
        let counted = server.count_commands(|| op(c));
        assert_eq!(counted, expected, "{name}");
        let counted_trips = server.count_round_trips(|| op(c));
        assert_eq!(counted_trips, round_trips, "{name}: round trips");
    }
}

/// Pins the stored layout: changing it would orphan every hash users already have.
#[test]
fn golden_layout_of_fields_and_values() {
    let server = RedisServer::start();
    let conn = server.connection_with("prefix=app:");
    let c: DictCache<String, u32> = DictCache::builder(["users", "ages"])
        .connection(&conn)
        .prefix("v1")
        .build();
    c.insert("a", &300).unwrap();
    let stored: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg("app:v1.users.ages")
        .query(&mut server.raw())
        .unwrap();
    // Header: magic 0xCA, version 1, FNV-1a of the type name ("String", "u32"), then postcard.
    let field = vec![0xCA, 0x01, 88, 72, 79, 96, 1, b'a'];
    let value = vec![0xCA, 0x01, 177, 116, 243, 5, 0xAC, 0x02];
    assert_eq!(stored, vec![(field, value)]);
}
