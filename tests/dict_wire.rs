//! What DictCache sends and stores, pinned: the commands and round trips of each operation,
//! the bytes of fields and values (plain text for strings and integers, so that other
//! clients can read them), and data of an older format read as typed errors.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use redis_caches::codec::{Raw, TypeTag};
use redis_caches::{DictCache, Error, TtlPolicy};
use support::RedisServer;
use support::dicts::{dict, encoded, fresh_field, with_ttl};
use support::redis_helpers::commands;

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
    // Warm up: open the pooled connection and load every script on the server (the first
    // call of a script sends its text once), on keys of their own.
    let warm: [DictCache<String, u32>; 2] = [
        dict(&conn, "warm"),
        with_ttl(
            &conn,
            "warm-ttl",
            Duration::from_secs(60),
            TtlPolicy::Refresh,
        ),
    ];
    for w in &warm {
        w.insert("w", &1).unwrap();
        w.remove("w").unwrap();
        w.get_or_insert_with("w", || 1).unwrap();
        w.pop_item().unwrap();
        w.extend([("w", 1)]).unwrap();
    }
    for c in [&plain, &ttl, &keep] {
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
    // A script checks the key's type first (TYPE), then writes; with a TTL it ends with
    // PEXPIRE (under the Keep policy: PTTL, and PEXPIRE only when the key has no TTL).
    let cases: Vec<Case> = vec![
        (
            "get",
            &plain,
            |c| {
                let _ = c.get("a").unwrap();
            },
            commands(&[("hget", 1)]),
            1,
        ),
        (
            "set",
            &plain,
            |c| {
                let _ = c.set("a", &1).unwrap();
            },
            commands(&[("hset", 1)]),
            1,
        ),
        (
            "set with TTL",
            &ttl,
            |c| {
                let _ = c.set("a", &1).unwrap();
            },
            commands(&[("evalsha", 1), ("type", 1), ("hset", 1), ("pexpire", 1)]),
            1,
        ),
        (
            "insert",
            &plain,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            commands(&[("evalsha", 1), ("type", 1), ("hget", 1), ("hset", 1)]),
            1,
        ),
        (
            "insert with TTL",
            &ttl,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            commands(&[
                ("evalsha", 1),
                ("type", 1),
                ("hget", 1),
                ("hset", 1),
                ("pexpire", 1),
            ]),
            1,
        ),
        (
            "insert with TTL kept",
            &keep,
            |c| {
                let _ = c.insert("a", &1).unwrap();
            },
            commands(&[
                ("evalsha", 1),
                ("type", 1),
                ("hget", 1),
                ("hset", 1),
                ("pttl", 1),
            ]),
            1,
        ),
        (
            "remove",
            &plain,
            |c| {
                let _ = c.remove("b").unwrap();
            },
            commands(&[("evalsha", 1), ("type", 1), ("hget", 1), ("hdel", 1)]),
            1,
        ),
        (
            "remove with TTL",
            &ttl,
            |c| {
                let _ = c.remove("b").unwrap();
            },
            commands(&[
                ("evalsha", 1),
                ("type", 1),
                ("hget", 1),
                ("hdel", 1),
                ("pexpire", 1),
            ]),
            1,
        ),
        (
            "delete",
            &plain,
            |c| {
                let _ = c.delete("nothing").unwrap();
            },
            commands(&[("hdel", 1)]),
            1,
        ),
        (
            "contains_key",
            &plain,
            |c| {
                let _ = c.contains_key("a").unwrap();
            },
            commands(&[("hexists", 1)]),
            1,
        ),
        (
            "len",
            &plain,
            |c| {
                let _ = c.len().unwrap();
            },
            commands(&[("hlen", 1)]),
            1,
        ),
        (
            "is_empty",
            &plain,
            |c| {
                let _ = c.is_empty().unwrap();
            },
            commands(&[("hlen", 1)]),
            1,
        ),
        (
            "get_many",
            &plain,
            |c| {
                let _ = c.get_many(["a", "b", "c"]).unwrap();
            },
            commands(&[("hmget", 1)]),
            1,
        ),
        (
            "extend",
            &plain,
            |c| {
                c.extend([("x".to_string(), 1), ("y".to_string(), 2)])
                    .unwrap();
            },
            commands(&[("hset", 1)]),
            1,
        ),
        (
            "extend with TTL",
            &ttl,
            |c| {
                c.extend([("x".to_string(), 1), ("y".to_string(), 2)])
                    .unwrap();
            },
            commands(&[("evalsha", 1), ("type", 1), ("hset", 1), ("pexpire", 1)]),
            1,
        ),
        (
            "get_or_insert_with hit",
            &plain,
            |c| {
                let _ = c.get_or_insert_with("a", || 9).unwrap();
            },
            commands(&[("hget", 1)]),
            1,
        ),
        (
            "get_or_insert_with miss",
            &plain,
            |c| {
                let _ = c.get_or_insert_with(&fresh_field(), || 9).unwrap();
            },
            commands(&[("hget", 2), ("evalsha", 1), ("type", 1), ("hsetnx", 1)]),
            2,
        ),
        (
            "get_or_insert_with miss with TTL",
            &ttl,
            |c| {
                let _ = c.get_or_insert_with(&fresh_field(), || 9).unwrap();
            },
            commands(&[
                ("hget", 2),
                ("evalsha", 1),
                ("type", 1),
                ("hsetnx", 1),
                ("pexpire", 1),
            ]),
            2,
        ),
        (
            "pop_item",
            &plain,
            |c| {
                let _ = c.pop_item().unwrap();
            },
            commands(&[
                ("evalsha", 1),
                ("type", 1),
                ("hrandfield", 1),
                ("hget", 1),
                ("hdel", 1),
            ]),
            1,
        ),
        (
            "pop_item with TTL",
            &ttl,
            |c| {
                let _ = c.pop_item().unwrap();
            },
            commands(&[
                ("evalsha", 1),
                ("type", 1),
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
            commands(&[("hgetall", 1)]),
            1,
        ),
        (
            "iter (small)",
            &plain,
            |c| assert!(c.iter().count() > 0),
            commands(&[("hscan", 1)]),
            1,
        ),
        (
            "exists",
            &plain,
            |c| {
                let _ = c.exists().unwrap();
            },
            commands(&[("exists", 1)]),
            1,
        ),
        (
            "ttl",
            &plain,
            |c| {
                let _ = c.ttl().unwrap();
            },
            commands(&[("pttl", 1)]),
            1,
        ),
        (
            "expire",
            &plain,
            |c| {
                let _ = c.expire(Duration::from_secs(60)).unwrap();
            },
            commands(&[("pexpire", 1)]),
            1,
        ),
        (
            "clear",
            &plain,
            |c| {
                let _ = c.clear().unwrap();
            },
            commands(&[("del", 1)]),
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

/// Pins the stored layout: changing it would orphan every hash users already have. Fields of
/// strings and integers are plain text whatever the codec (JSON text for `Json`), other
/// fields and every value keep the codec's encoding.
#[test]
fn golden_layout_of_fields_and_values() {
    let server = RedisServer::start();
    let conn = server.connection_with("prefix=app:");
    let hgetall = |key: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        redis::cmd("HGETALL")
            .arg(key)
            .query(&mut server.raw())
            .unwrap()
    };
    // Postcard values: magic 0xCA, format 2, the shape fingerprint, then postcard.
    let c: DictCache<String, u32> = DictCache::builder(["users", "ages"])
        .connection(&conn)
        .prefix("v1")
        .build();
    c.insert("a", &300).unwrap();
    let value = vec![0xCA, 0x02, 0xBF, 0x0E, 0xA7, 0xBD, 0xAC, 0x02]; // "u32", 300
    assert_eq!(hgetall("app:v1.users.ages"), vec![(b"a".to_vec(), value)]);

    let ids: DictCache<i64, String> = dict(&conn, "golden_ids");
    ids.insert(&-42, "x").unwrap();
    let value = vec![0xCA, 0x02, 0x05, 0xEC, 0x99, 0x3A, 1, b'x']; // "str", "x"
    assert_eq!(hgetall("app:golden_ids"), vec![(b"-42".to_vec(), value)]);

    // A key that is neither a string nor an integer: the codec's encoding, header included.
    let pairs: DictCache<(u8, u8), bool> = dict(&conn, "golden_pairs");
    pairs.insert(&(1, 2), &true).unwrap();
    let field = vec![0xCA, 0x02, 0xEB, 0x28, 0xDB, 0xF2, 1, 2]; // "tuple<u8,u8>"
    let value = vec![0xCA, 0x02, 0x40, 0x99, 0xD2, 0x64, 1]; // "bool"
    assert_eq!(hgetall("app:golden_pairs"), vec![(field, value)]);

    let raw: DictCache<u64, f32, Raw> = DictCache::builder("golden_raw")
        .connection(&conn)
        .codec(Raw)
        .build();
    raw.insert(&7, &0.1).unwrap();
    assert_eq!(
        hgetall("app:golden_raw"),
        vec![(b"7".to_vec(), b"0.1".to_vec())]
    );

    #[cfg(feature = "json")]
    {
        let json: DictCache<String, Option<u8>, redis_caches::codec::Json> =
            DictCache::builder("golden_json")
                .connection(&conn)
                .codec(redis_caches::codec::Json)
                .build();
        json.insert("a", &Some(1)).unwrap();
        assert_eq!(
            hgetall("app:golden_json"),
            vec![(b"\"a\"".to_vec(), b"1".to_vec())]
        );
    }

    // And bytes in these forms written by another client read back.
    redis::cmd("HSET")
        .arg("app:golden_ids")
        .arg("7")
        .arg(&[0xCAu8, 0x02, 0x05, 0xEC, 0x99, 0x3A, 1, b'y'][..])
        .exec(&mut server.raw())
        .unwrap();
    assert_eq!(ids.get(&7).unwrap().as_deref(), Some("y"));
}

fn hget(server: &RedisServer, key: &str, field: &[u8]) -> Option<Vec<u8>> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query(&mut server.raw())
        .unwrap()
}

/// Fields of strings and integers are their plain text: `HGET foo.bar ada` finds what
/// `insert("ada", ..)` wrote, and a field another client wrote as plain text is read back.
#[test]
fn string_and_integer_fields_are_plain_text_for_other_clients() {
    let server = RedisServer::start();
    let conn = server.connection();
    let ages: DictCache<String, u32> = DictCache::builder(["foo", "bar"]).connection(&conn).build();
    ages.insert("ada", &36).unwrap();
    let u32_tag = TypeTag::of::<u32>();
    assert_eq!(
        hget(&server, "foo.bar", b"ada"),
        Some(encoded(&36u32, u32_tag))
    );
    redis::cmd("HSET")
        .arg("foo.bar")
        .arg("alan")
        .arg(encoded(&41u32, u32_tag))
        .exec(&mut server.raw())
        .unwrap();
    assert_eq!(ages.get("alan").unwrap(), Some(41));
    let mut keys: Vec<String> = ages.keys().collect::<Result<_, _>>().unwrap();
    keys.sort();
    assert_eq!(keys, ["ada", "alan"]);
    // A borrowed lookup is still one round trip.
    assert_eq!(
        server.count_round_trips(|| assert!(ages.contains_key("ada").unwrap())),
        1
    );

    let names: DictCache<i64, String> = dict(&conn, "names");
    names.insert(&-7, "minus seven").unwrap();
    names.insert(&42, "forty-two").unwrap();
    let str_tag = TypeTag::of::<String>();
    assert_eq!(
        hget(&server, "names", b"42"),
        Some(encoded("forty-two", str_tag))
    );
    assert!(hget(&server, "names", b"-7").is_some());
    // Only the canonical decimal is a field of an integer key: `007` is another field, and
    // iterating reports it rather than reading it as 7.
    redis::cmd("HSET")
        .arg("names")
        .arg("007")
        .arg(encoded("bond", str_tag))
        .exec(&mut server.raw())
        .unwrap();
    assert_eq!(names.get(&7).unwrap(), None);
    let bad: Vec<Error> = names.keys().filter_map(Result::err).collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].is_decode(), "{:?}", bad[0]);
    assert!(bad[0].to_string().contains("names[\"007\"]"), "{}", bad[0]);
}

/// Fields and values written by redis-caches 0.1 (stored-data format v1) are never misread:
/// a collection reports them as `Error::Decode` whose source says "format v1".
#[test]
fn format_v1_fields_and_values_are_typed_decode_errors() {
    use redis_caches::codec::CodecErrorKind;
    use std::error::Error as _;
    let server = RedisServer::start();
    let conn = server.connection();
    // The v1 header: magic, version 1, a fingerprint of the type's name, then postcard.
    let v1_field: [u8; 10] = [0xCA, 0x01, 0x58, 0x48, 0x4F, 0x60, 3, b'a', b'd', b'a']; // "ada"
    let v1_value: [u8; 7] = [0xCA, 0x01, 0xB1, 0x74, 0xF3, 0x05, 36]; // 36u32
    redis::cmd("HSET")
        .arg("old")
        .arg(&v1_field[..])
        .arg(&v1_value[..])
        .arg("alan")
        .arg(&v1_value[..])
        .exec(&mut server.raw())
        .unwrap();
    let d: DictCache<String, u32> = dict(&conn, "old");
    let old_format = |e: &Error| match e {
        Error::Decode { source, .. } => {
            source.kind() == CodecErrorKind::OldFormat { version: 1 }
                && source.to_string().contains("format v1 (redis-caches 0.1)")
        }
        _ => false,
    };
    let err = d.get("alan").unwrap_err();
    assert!(old_format(&err), "{err:?}");
    assert!(err.to_string().contains("old[\"alan\"]"), "{err}");
    assert!(err.source().is_some());
    // The v1 field of "ada" is not the field of "ada" now: a miss for a lookup...
    assert_eq!(d.get("ada").unwrap(), None);
    // ...and an error naming the field when iterating.
    let errors: Vec<Error> = d.iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(old_format), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("old[\"\\xca\\x01XHO`\\x03ada\"]")),
        "{errors:?}"
    );
}
