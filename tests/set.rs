//! `SetCache` against real Redis servers: a `HashSet` model, TTL policies, set algebra,
//! paging, bad data, and the commands each operation sends.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use redis_caches::{Connection, Error, SetCache, Ttl, TtlPolicy};
use support::redis_helpers::{Pinned, assert_handle, commands, ignore, raw_exec, raw_set};
use support::{RedisServer, eventually, unique};

fn set<T>(conn: &Connection, key: &str) -> SetCache<T> {
    SetCache::builder(key).connection(conn).build()
}

#[test]
fn handles_are_clone_send_sync_and_debug_shows_the_key_only() {
    assert_handle::<SetCache<String>>();
    assert_handle::<SetCache<Vec<u8>>>();
    let s: SetCache<String> = SetCache::new(["tags", "post-1"]);
    let shown = format!("{s:?}");
    assert!(shown.contains("SetCache"), "{shown}");
    assert!(shown.contains("tags.post-1"), "{shown}");
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8),
    Remove(u8),
    Contains(u8),
    Pop,
    Extend(Vec<u8>),
    Len,
    IsEmpty,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let member = 0u8..24;
    prop_oneof![
        4 => member.clone().prop_map(Op::Insert),
        2 => member.clone().prop_map(Op::Remove),
        2 => member.clone().prop_map(Op::Contains),
        1 => Just(Op::Pop),
        1 => proptest::collection::vec(member, 0..12).prop_map(Op::Extend),
        1 => Just(Op::Len),
        1 => Just(Op::IsEmpty),
        1 => Just(Op::Clear),
    ]
}

#[test]
fn behaves_like_a_hash_set() {
    let server = RedisServer::start();
    let conn = server.connection();
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let s: SetCache<u8> = set(&conn, &unique("model"));
        let mut model: HashSet<u8> = HashSet::new();
        for op in ops {
            match op {
                Op::Insert(m) => prop_assert_eq!(s.insert(&m).unwrap(), model.insert(m)),
                Op::Remove(m) => prop_assert_eq!(s.remove(&m).unwrap(), model.remove(&m)),
                Op::Contains(m) => prop_assert_eq!(s.contains(&m).unwrap(), model.contains(&m)),
                Op::Pop => match s.pop().unwrap() {
                    Some(m) => prop_assert!(model.remove(&m), "popped {} not in the model", m),
                    None => prop_assert!(model.is_empty()),
                },
                Op::Extend(ms) => {
                    let before = model.len();
                    model.extend(ms.iter().copied());
                    prop_assert_eq!(s.extend(&ms).unwrap(), model.len() - before);
                }
                Op::Len => prop_assert_eq!(s.len().unwrap(), model.len()),
                Op::IsEmpty => prop_assert_eq!(s.is_empty().unwrap(), model.is_empty()),
                Op::Clear => {
                    prop_assert_eq!(s.clear().unwrap(), !model.is_empty());
                    model.clear();
                }
            }
        }
        prop_assert_eq!(s.to_hash_set().unwrap(), model.clone());
        let iterated: Vec<u8> = s.iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(iterated.len(), model.len());
        prop_assert_eq!(s.exists().unwrap(), !model.is_empty());
    });
}

#[test]
fn lookups_borrow_like_std() {
    let server = RedisServer::start();
    let s: SetCache<String> = set(&server.connection(), "names");
    assert!(s.insert("ada").unwrap());
    assert!(!s.insert(&"ada".to_string()).unwrap());
    assert!(s.contains("ada").unwrap());
    assert!(!s.contains("bob").unwrap());
    assert!(s.remove("ada").unwrap());
    assert!(!s.remove("ada").unwrap());
    assert_eq!(s.pop().unwrap(), None);
}

#[test]
fn every_write_refreshes_the_ttl_under_refresh() {
    let server = RedisServer::start();
    let s: SetCache<u32> = SetCache::builder("refresh")
        .connection(server.connection())
        .ttl(Duration::from_secs(60))
        .build();
    type Write = fn(&SetCache<u32>);
    let writes: [(&str, Write); 4] = [
        ("insert", |s| ignore(s.insert(&1))),
        ("remove", |s| ignore(s.remove(&99))),
        ("extend", |s| ignore(s.extend([2, 3]))),
        ("pop", |s| ignore(s.pop())),
    ];
    s.extend([10, 11, 12]).unwrap();
    for (name, write) in writes {
        assert!(s.expire(Duration::from_secs(1)).unwrap());
        write(&s);
        let left = s.ttl().unwrap().remaining().unwrap();
        assert!(
            left > Duration::from_secs(50),
            "{name} did not refresh: {left:?}"
        );
    }
}

#[test]
fn keep_policy_sets_the_ttl_once() {
    let server = RedisServer::start();
    let s: SetCache<u32> = SetCache::builder("keep")
        .connection(server.connection())
        .ttl(Duration::from_secs(60))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    s.insert(&1).unwrap();
    assert!(s.ttl().unwrap().remaining().unwrap() > Duration::from_secs(50));
    assert!(s.expire(Duration::from_secs(1)).unwrap());
    s.insert(&2).unwrap();
    s.extend([3, 4]).unwrap();
    s.remove(&1).unwrap();
    let left = s.ttl().unwrap().remaining().unwrap();
    assert!(
        left <= Duration::from_secs(1),
        "keep policy refreshed: {left:?}"
    );
}

#[test]
fn a_millisecond_ttl_expires_the_set() {
    let server = RedisServer::start();
    let s: SetCache<u32> = SetCache::builder("short")
        .connection(server.connection())
        .ttl(Duration::from_millis(40))
        .build();
    s.insert(&1).unwrap();
    assert!(matches!(s.ttl().unwrap(), Ttl::Expires(_)));
    assert!(eventually(Duration::from_secs(5), || !s.exists().unwrap()));
    assert_eq!(s.len().unwrap(), 0);
    assert_eq!(s.ttl().unwrap(), Ttl::Missing);
}

#[test]
fn iterates_3000_members_in_pages_with_bounded_replies() {
    let server = RedisServer::start();
    let s: SetCache<u32> = set(&server.connection(), "big");
    let sent = server.count_commands(|| assert_eq!(s.extend(0..3000u32).unwrap(), 3000));
    assert_eq!(sent, commands(&[("sadd", 3)]), "one SADD per 1,000 members");
    let sent = server.count_commands(|| {
        let seen: HashSet<u32> = s.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(seen, (0..3000).collect());
    });
    assert!(sent["sscan"] >= 2, "expected several SSCAN pages: {sent:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
    // `for x in &set` works too.
    let mut n = 0;
    for member in &s {
        member.unwrap();
        n += 1;
    }
    assert!(n >= 3000);
    assert_eq!(s.to_hash_set().unwrap().len(), 3000);
}

#[test]
fn an_empty_extend_sends_nothing() {
    let server = RedisServer::start();
    let s: SetCache<u32> = set(&server.connection(), "empty");
    let sent = server.count_commands(|| assert_eq!(s.extend(Vec::<u32>::new()).unwrap(), 0));
    assert!(sent.is_empty(), "{sent:?}");
}

#[test]
fn set_algebra_matches_std() {
    let server = RedisServer::start();
    let conn = server.connection();
    let a: SetCache<u32> = set(&conn, "a");
    let b: SetCache<u32> = set(&conn, "b");
    let c: SetCache<u32> = set(&conn, "c");
    let missing: SetCache<u32> = set(&conn, "missing");
    a.extend([1, 2, 3, 4]).unwrap();
    b.extend([3, 4, 5]).unwrap();
    c.extend([4, 6]).unwrap();
    let ha: HashSet<u32> = [1, 2, 3, 4].into();
    let hb: HashSet<u32> = [3, 4, 5].into();
    let hc: HashSet<u32> = [4, 6].into();

    let union: HashSet<u32> = ha.iter().chain(&hb).chain(&hc).copied().collect();
    assert_eq!(a.union([&b, &c]).unwrap(), union);
    let inter: HashSet<u32> = ha
        .iter()
        .filter(|x| hb.contains(x) && hc.contains(x))
        .copied()
        .collect();
    assert_eq!(a.intersection([&b, &c]).unwrap(), inter);
    let diff: HashSet<u32> = ha
        .iter()
        .filter(|x| !hb.contains(x) && !hc.contains(x))
        .copied()
        .collect();
    assert_eq!(a.difference([&b, &c]).unwrap(), diff);

    // No others: the set itself. A missing set is empty.
    assert_eq!(a.union([]).unwrap(), ha);
    assert_eq!(a.intersection([&missing]).unwrap(), HashSet::new());
    assert_eq!(a.difference([&missing]).unwrap(), ha);
    // A slice of handles works as well as an array of references.
    let others = vec![b.clone(), c.clone()];
    assert_eq!(a.union(&others).unwrap(), union);

    // One command, one round trip.
    let sent = server.count_commands(|| ignore(a.union([&b, &c])));
    assert_eq!(sent, commands(&[("sunion", 1)]));
}

#[test]
fn store_forms_write_the_destination_with_its_ttl() {
    let server = RedisServer::start();
    let conn = server.connection();
    let a: SetCache<u32> = set(&conn, "a");
    let b: SetCache<u32> = set(&conn, "b");
    a.extend([1, 2, 3]).unwrap();
    b.extend([2, 3, 4]).unwrap();
    let dest: SetCache<u32> = SetCache::builder("dest")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    dest.insert(&99).unwrap();
    assert!(dest.expire(Duration::from_secs(1)).unwrap());

    let warm: SetCache<u32> = set(&conn, "warm");
    a.union_store([&b], &warm).unwrap(); // the first call on a server sends the script's text
    let sent = server.count_commands(|| assert_eq!(a.union_store([&b], &dest).unwrap(), 4));
    assert_eq!(
        sent,
        commands(&[
            ("evalsha", 1),
            ("type", 1),
            ("sunionstore", 1),
            ("pttl", 1),
            ("pexpire", 1),
        ])
    );
    assert_eq!(dest.to_hash_set().unwrap(), [1, 2, 3, 4].into());
    // The destination was replaced, so even the Keep policy gives it a fresh TTL.
    assert!(dest.ttl().unwrap().remaining().unwrap() > Duration::from_secs(50));

    assert_eq!(a.intersection_store([&b], &dest).unwrap(), 2);
    assert_eq!(dest.to_hash_set().unwrap(), [2, 3].into());
    assert_eq!(a.difference_store([&b], &dest).unwrap(), 1);
    assert_eq!(dest.to_hash_set().unwrap(), [1].into());

    // The destination may be a source; an empty result deletes it.
    assert_eq!(a.difference_store([&a], &a).unwrap(), 0);
    assert!(!a.exists().unwrap());

    // Without a TTL on the destination: the store command and the type guard.
    let plain: SetCache<u32> = set(&conn, "plain");
    let sent = server.count_commands(|| assert_eq!(b.union_store([], &plain).unwrap(), 3));
    assert_eq!(
        sent,
        commands(&[("evalsha", 1), ("type", 1), ("sunionstore", 1)])
    );
    assert_eq!(plain.ttl().unwrap(), Ttl::Persistent);
}

#[test]
fn algebra_across_databases_is_refused_before_sending() {
    let one = RedisServer::start();
    let two = RedisServer::start();
    let a: SetCache<u32> = set(&one.connection(), "a");
    let b: SetCache<u32> = set(&two.connection(), "b");
    a.insert(&1).unwrap();
    b.insert(&1).unwrap();
    let sent = one.count_commands(|| {
        let err = a.union([&b]).unwrap_err();
        assert!(matches!(err, Error::MixedConnections { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("a") && msg.contains("b"), "{msg}");
        let err = a.intersection_store([], &b).unwrap_err();
        assert!(matches!(err, Error::MixedConnections { .. }), "{err:?}");
    });
    assert!(sent.is_empty(), "{sent:?}");

    // Another connection to the same server and database is fine.
    let same: SetCache<u32> = set(&one.connection(), "c");
    same.insert(&2).unwrap();
    assert_eq!(a.union([&same]).unwrap(), [1, 2].into());
}

#[test]
fn foreign_bytes_give_a_decode_error_naming_the_key() {
    let server = RedisServer::start();
    let s: SetCache<String> = set(&server.connection(), "foreign");
    raw_exec(&server, "SADD", ("foreign", b"\xff\x00 not postcard"));
    let items: Vec<_> = s.iter().collect();
    assert_eq!(items.len(), 1);
    let err = items.into_iter().next().unwrap().unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(err.to_string().contains("foreign"), "{err}");
    assert!(s.to_hash_set().unwrap_err().is_decode());
    assert!(s.union([]).unwrap_err().is_decode());
    let err = s.pop().unwrap_err();
    assert!(
        err.is_decode() && err.to_string().contains("foreign"),
        "{err}"
    );
    assert!(!s.exists().unwrap(), "pop removed the member all the same");
}

#[test]
fn another_redis_type_gives_wrong_type() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_set(&server, "str", "x");
    let s: SetCache<u32> = set(&conn, "str");
    let check = |err: Error, key: &str| match err {
        Error::WrongType {
            key: k,
            expected,
            found,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, "set");
            assert_eq!(found, "string");
        }
        other => panic!("expected WrongType, got {other:?}"),
    };
    check(s.insert(&1).unwrap_err(), "str");
    check(s.contains(&1).unwrap_err(), "str");
    check(s.len().unwrap_err(), "str");
    check(s.pop().unwrap_err(), "str");
    check(s.iter().next().unwrap().unwrap_err(), "str");
    check(s.extend([1, 2]).unwrap_err(), "str");
    // In set algebra, the error names the key that is not a set, whichever it is.
    let good: SetCache<u32> = set(&conn, "good");
    good.insert(&1).unwrap();
    check(good.union([&s]).unwrap_err(), "str");
    check(s.union([&good]).unwrap_err(), "str");
    check(good.intersection_store([&s], &good).unwrap_err(), "str");
}

#[test]
fn single_element_operations_send_one_command_or_one_transaction() {
    let server = RedisServer::start();
    let conn = server.connection();
    let plain: SetCache<u32> = set(&conn, "plain");
    let ttl: SetCache<u32> = SetCache::builder("ttl")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    let keep: SetCache<u32> = SetCache::builder("keep")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    // Warm the pool so that connecting is not counted.
    plain.len().unwrap();
    // The TTL'd set never empties below (an empty set is no key, and a missing key gets no
    // PEXPIRE), so every write's TTL command runs.
    ttl.extend([100, 101]).unwrap();

    let pinned: [Pinned; 8] = [
        ("insert", &|| ignore(plain.insert(&1)), &[("sadd", 1)]),
        ("remove", &|| ignore(plain.remove(&1)), &[("srem", 1)]),
        (
            "contains",
            &|| ignore(plain.contains(&1)),
            &[("sismember", 1)],
        ),
        ("len", &|| ignore(plain.len()), &[("scard", 1)]),
        ("is_empty", &|| ignore(plain.is_empty()), &[("scard", 1)]),
        ("pop", &|| ignore(plain.pop()), &[("spop", 1)]),
        (
            "insert with ttl",
            &|| ignore(ttl.insert(&1)),
            &[("evalsha", 1), ("type", 1), ("sadd", 1), ("pexpire", 1)],
        ),
        (
            "pop with ttl",
            &|| ignore(ttl.pop()),
            &[("evalsha", 1), ("type", 1), ("spop", 1), ("pexpire", 1)],
        ),
    ];
    for (name, op, expected) in pinned {
        assert_eq!(server.count_commands(op), commands(expected), "{name}");
    }
    keep.extend([1, 2]).unwrap(); // created with its TTL, which the Keep policy leaves alone
    let sent = server.count_commands(|| ignore(keep.remove(&1)));
    assert_eq!(
        sent,
        commands(&[("evalsha", 1), ("type", 1), ("srem", 1), ("pttl", 1)])
    );
    let sent = server.count_commands(|| {
        plain.exists().unwrap();
        plain.ttl().unwrap();
        plain.expire(Duration::from_secs(5)).unwrap();
        plain.clear().unwrap();
    });
    assert_eq!(
        sent,
        commands(&[("exists", 1), ("pttl", 1), ("pexpire", 1), ("del", 1)])
    );
}

fn smembers(server: &RedisServer, key: &str) -> Vec<Vec<u8>> {
    let mut members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
        .arg(key)
        .query(&mut server.raw())
        .unwrap();
    members.sort();
    members
}

/// Pins the stored members: changing them would orphan every set users already have.
/// Strings and integers are plain text whatever the codec (JSON text for `Json`); other
/// members keep the codec's encoding, the postcard header included.
#[test]
fn golden_stored_members() {
    let server = RedisServer::start();
    let conn = server.connection();
    let tags: SetCache<String> = set(&conn, "golden_tags");
    tags.insert("rust").unwrap();
    assert_eq!(smembers(&server, "golden_tags"), [b"rust".to_vec()]);

    let ids: SetCache<i64> = set(&conn, "golden_ids");
    ids.extend([-7, 42]).unwrap();
    assert_eq!(
        smembers(&server, "golden_ids"),
        [b"-7".to_vec(), b"42".to_vec()]
    );

    // Magic 0xCA, format 2, the fingerprint of "tuple<u8,u8>", then postcard.
    let pairs: SetCache<(u8, u8)> = set(&conn, "golden_pairs");
    pairs.insert(&(1, 2)).unwrap();
    assert_eq!(
        smembers(&server, "golden_pairs"),
        [vec![0xCA, 0x02, 0xEB, 0x28, 0xDB, 0xF2, 1, 2]]
    );

    let floats: SetCache<f32, redis_caches::codec::Raw> = SetCache::builder("golden_raw")
        .connection(&conn)
        .codec(redis_caches::codec::Raw)
        .build();
    floats.insert(&0.1).unwrap();
    assert_eq!(smembers(&server, "golden_raw"), [b"0.1".to_vec()]);

    #[cfg(feature = "json")]
    {
        let json: SetCache<String, redis_caches::codec::Json> = SetCache::builder("golden_json")
            .connection(&conn)
            .codec(redis_caches::codec::Json)
            .build();
        json.insert("rust").unwrap();
        assert_eq!(smembers(&server, "golden_json"), [b"\"rust\"".to_vec()]);
    }
}

/// `SISMEMBER tags rust` is true after `insert("rust")`, and members other clients add as
/// plain text are members for the handle; a member that is not the canonical text of an
/// integer, or was written by redis-caches 0.1 (format v1), is reported, never misread.
#[test]
fn string_and_integer_members_are_plain_text_for_other_clients() {
    use redis_caches::codec::CodecErrorKind;
    let server = RedisServer::start();
    let conn = server.connection();
    let tags: SetCache<String> = set(&conn, "tags");
    tags.insert("rust").unwrap();
    let sismember = |key: &str, member: &[u8]| -> bool {
        redis::cmd("SISMEMBER")
            .arg(key)
            .arg(member)
            .query(&mut server.raw())
            .unwrap()
    };
    assert!(sismember("tags", b"rust"));
    raw_exec(&server, "SADD", ("tags", "go"));
    assert!(tags.contains("go").unwrap());
    let all: HashSet<String> = tags.to_hash_set().unwrap();
    assert_eq!(all, HashSet::from(["rust".to_string(), "go".to_string()]));

    let ids: SetCache<u32> = set(&conn, "ids");
    ids.insert(&42).unwrap();
    assert!(sismember("ids", b"42"));
    raw_exec(&server, "SADD", ("ids", "7", "007"));
    assert!(ids.contains(&7).unwrap());
    let errors: Vec<Error> = ids.iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].is_decode(), "{:?}", errors[0]);
    assert!(errors[0].to_string().contains("ids"), "{}", errors[0]);

    // redis-caches 0.1 wrote "ada" as the v1 header and postcard.
    let v1: [u8; 10] = [0xCA, 0x01, 0x58, 0x48, 0x4F, 0x60, 3, b'a', b'd', b'a'];
    redis::cmd("SADD")
        .arg("old")
        .arg(&v1[..])
        .exec(&mut server.raw())
        .unwrap();
    let old: SetCache<String> = set(&conn, "old");
    assert!(!old.contains("ada").unwrap());
    match old.to_hash_set() {
        Err(Error::Decode { key, source }) => {
            assert_eq!(key, "old");
            assert_eq!(source.kind(), CodecErrorKind::OldFormat { version: 1 });
        }
        other => panic!("{other:?}"),
    }
}
