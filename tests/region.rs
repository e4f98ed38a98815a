//! Regions against real servers: nesting, key layout, generations, invalidation under
//! concurrency and across processes, reclamation, TTL inheritance and policies, transactions,
//! signals, memoization, outages, and what each operation costs.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::region::{OutagePolicy, Reclaim};
use redis_caches::{Connection, DictCache, Error, Memo, Region, Signal, Ttl, TtlPolicy};
use support::regions::{base, hash_key, queue, reachable};
use support::{RedisServer, child_process, eventually, is_child, unique, wait_child};

/// A region `name` under a fresh root on `conn`, reclaimed only when the test says so (the
/// background thread would change the keys and the command counts the tests look at).
fn region(conn: &Connection, root: &str, name: &str) -> Region {
    Region::builder(name)
        .root(root)
        .connection(conn)
        .reclaim(Reclaim::Manual)
        .build()
}

fn exists(raw: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(raw).unwrap()
}

fn pttl(raw: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(raw).unwrap()
}

/// The keys matching a glob pattern, from a plain connection (`SCAN`, tests only).
fn scan_keys(raw: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(raw)
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Every key of the tree under `root` (no connection prefix), sorted. Checks on the way that
/// no key was ever written at the placeholder (`{root}@?`), which names a region's hash in
/// requests and must only ever be read.
fn tree_keys(raw: &mut redis::Connection, root: &str) -> Vec<String> {
    let pattern = format!(
        "{}*",
        redis_caches::key::glob_escape(&format!("{{{root}}}"))
    );
    let mut keys = scan_keys(raw, &pattern);
    keys.sort();
    assert!(
        keys.iter().all(|k| !k.contains("@?")),
        "a key at the placeholder: {keys:?}"
    );
    keys
}

/// The key of the region's current hash, read as an operator would.
fn hash_of(raw: &mut redis::Connection, root: &str, name: &str) -> String {
    hash_key(raw, &base(root), name).unwrap_or_else(|| panic!("{name} has no generation"))
}

/// What Redis Cluster hashes for `key`: the text between the first `{` and the next `}`.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = open + 1 + key[open + 1..].find('}')?;
    Some(&key[open + 1..close]).filter(|t| !t.is_empty())
}

/// An entry key from its hash field: plain text (the field rule for `String`).
fn decode_field(bytes: &[u8]) -> String {
    Postcard
        .decode_field::<String>(bytes, &TypeTag::of::<String>())
        .expect("an entry key field")
}

#[test]
fn handles_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Region>();
    check::<Region<redis_caches::codec::Raw>>();
    check::<Signal>();
}

#[test]
fn debug_shows_key_and_connection_only() {
    let r = Region::builder("a.b")
        .root("app")
        .connection("somewhere")
        .build();
    let shown = format!("{r:?}");
    assert!(shown.contains("{app}.a.b"), "{shown}");
    assert!(shown.contains("somewhere"), "{shown}");
}

#[test]
fn key_layout_in_redis() {
    let server = RedisServer::start();
    let conn = server.connection_with("prefix=p:");
    let root = unique("layout");
    let leaf = region(&conn, &root, "abc.xyz");
    leaf.set("k", "v").unwrap();
    region(&conn, &root, "").set("top", &1u8).unwrap();
    let mut raw = server.raw();
    let b = format!("p:{{{root}}}");
    // The leaf's write gave the root, `abc` and `abc.xyz` generations 1, 2 and 3.
    let expected = vec![
        format!("{b}#tree"),
        format!("{b}@1"),
        format!("{b}@1#children"),
        format!("{b}@2.abc#children"),
        format!("{b}@3.abc.xyz"),
    ];
    // Nothing outside the connection prefix, and exactly these keys inside it.
    let mut all = scan_keys(&mut raw, "*");
    all.sort();
    assert_eq!(all, expected);
    let tree: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{b}#tree"))
        .query(&mut raw)
        .unwrap();
    assert_eq!(
        tree,
        HashMap::from([
            ("root".to_string(), "1".to_string()),
            ("next".to_string(), "3".to_string())
        ])
    );
    let maps: Vec<HashMap<String, String>> =
        [format!("{b}@1#children"), format!("{b}@2.abc#children")]
            .iter()
            .map(|m| redis::cmd("HGETALL").arg(m).query(&mut raw).unwrap())
            .collect();
    assert_eq!(
        maps[0],
        HashMap::from([("abc".to_string(), "2".to_string())])
    );
    assert_eq!(
        maps[1],
        HashMap::from([("xyz".to_string(), "3".to_string())])
    );
    for key in &all {
        let kind: String = redis::cmd("TYPE").arg(key).query(&mut raw).unwrap();
        assert_eq!(kind, "hash", "{key}");
    }
    assert_eq!(leaf.key().unwrap(), Some(format!("{b}@3.abc.xyz")));
    assert_eq!(
        region(&conn, &root, "abc").key().unwrap(),
        Some(format!("{b}@2.abc"))
    );
    assert_eq!(region(&conn, &root, "nothing").key().unwrap(), None);
    // The intermediate region "abc" got a generation only: no hash.
    assert!(!exists(&mut raw, &format!("{b}@2.abc")));
    // Fields are the entry keys as plain text; values carry the value type's header.
    let fields: Vec<Vec<u8>> = redis::cmd("HKEYS")
        .arg(format!("{b}@3.abc.xyz"))
        .query(&mut raw)
        .unwrap();
    assert_eq!(fields, vec![b"k".to_vec()]);
    assert_eq!(decode_field(&fields[0]), "k");
    // Every key of the tree hashes to one cluster slot.
    let tags: HashSet<Option<&str>> = all.iter().map(|k| hash_tag(k)).collect();
    assert_eq!(tags, HashSet::from([Some(root.as_str())]), "{all:?}");
    // Names are escaped in keys as in every key part, so no two regions share a hash.
    let odd = region(&conn, &root, r"a\b.x");
    odd.set("k", &1u8).unwrap();
    let odd_key = odd.key().unwrap().unwrap();
    assert!(odd_key.ends_with(r".a\\b.x"), "{odd_key}");
    assert_eq!(odd.get::<u8>("k").unwrap(), Some(1));
    assert_eq!(region(&conn, &root, "a").children().count(), 0);
}

#[test]
fn three_levels_invalidated_from_the_top() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("nest");
    let a = region(&conn, &root, "a");
    let b = a.region("b");
    let c = b.region("c");
    let sibling = region(&conn, &root, "other");
    assert_eq!(c.name(), "a.b.c");
    for (i, r) in [&a, &b, &c, &sibling].into_iter().enumerate() {
        r.set("k", &(i as u32)).unwrap();
    }
    assert_eq!(c.get::<u32>("k").unwrap(), Some(2));
    let names: Vec<String> = a.children().map(|r| r.unwrap().name()).collect();
    assert_eq!(names, vec!["a.b"]);
    let mut raw = server.raw();
    let retired = [&a, &b, &c].map(|r| r.key().unwrap().unwrap());

    assert!(a.invalidate().unwrap());
    for r in [&a, &b, &c] {
        assert_eq!(r.get::<u32>("k").unwrap(), None, "{r:?}");
        assert_eq!(r.key().unwrap(), None);
    }
    assert_eq!(sibling.get::<u32>("k").unwrap(), Some(3));
    assert!(a.children().next().is_none());
    // Unreachable, not deleted yet: the retired generation waits in the queue.
    assert!(retired.iter().all(|k| exists(&mut raw, k)));
    assert_eq!(
        queue(&mut raw, &base(&root)),
        vec![retired[0][base(&root).len()..].to_string()]
    );
    assert!(!a.invalidate().unwrap(), "nothing left to invalidate");

    assert_eq!(sibling.reclaim().unwrap(), 3, "three hashes");
    assert_eq!(
        tree_keys(&mut raw, &root),
        vec![
            format!("{{{root}}}#tree"),
            format!("{{{root}}}@1#children"),
            hash_of(&mut raw, &root, "other"),
        ]
    );
    // Writing again brings the tree back, in new generations.
    c.set("k", &9u32).unwrap();
    assert!(a.children().any(|r| r.unwrap().name() == "a.b"));
    assert!(!retired.contains(&c.key().unwrap().unwrap()));
    assert_eq!(c.get::<u32>("k").unwrap(), Some(9));
    assert_eq!(b.get::<u32>("k").unwrap(), None, "only c was written");
    // The root region invalidates everything.
    assert!(region(&conn, &root, "").invalidate().unwrap());
    assert_eq!(sibling.get::<u32>("k").unwrap(), None);
    assert_eq!(a.reclaim().unwrap(), 2);
    assert_eq!(tree_keys(&mut raw, &root), vec![format!("{{{root}}}#tree")]);
}

#[test]
fn entries_are_typed_per_call() {
    let server = RedisServer::start();
    let conn = server.connection();
    let r = region(&conn, &unique("typed"), "t");
    assert!(r.is_empty().unwrap());
    assert!(r.set("name", "Alice").unwrap());
    assert!(!r.set("name", &"Alicia".to_string()).unwrap());
    r.set("age", &31u8).unwrap();
    r.set("tags", &["a".to_string(), "b".to_string()][..])
        .unwrap();
    assert_eq!(r.get::<String>("name").unwrap().as_deref(), Some("Alicia"));
    assert_eq!(r.get::<u8>("age").unwrap(), Some(31));
    assert_eq!(
        r.get::<Vec<String>>("tags").unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    let err = r.get::<u32>("name").unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(err.to_string().contains("[name]"), "{err}");
    assert!(r.contains_key("age").unwrap());
    assert_eq!(r.insert("age", &32u8).unwrap(), Some(31));
    assert_eq!(r.insert("age", &31u8).unwrap(), Some(32));
    let err = r.insert("name", &7u8).unwrap_err();
    assert!(err.is_decode(), "the old value was a String: {err}");
    assert_eq!(r.get::<u8>("name").unwrap(), Some(7), "stored even then");
    r.set("name", "Alicia").unwrap();
    assert_eq!(r.len().unwrap(), 3);
    let mut keys: Vec<String> = r.keys().map(Result::unwrap).collect();
    keys.sort();
    assert_eq!(keys, ["age", "name", "tags"]);
    assert_eq!(r.remove::<u8>("age").unwrap(), Some(31));
    assert_eq!(r.remove::<u8>("age").unwrap(), None);
    assert!(r.delete("tags").unwrap());
    assert!(!r.delete("tags").unwrap());
    let entries: Vec<(String, String)> = r.iter::<String>().map(Result::unwrap).collect();
    assert_eq!(entries, vec![("name".to_string(), "Alicia".to_string())]);
    assert!(r.clear().unwrap());
    assert!(!r.exists().unwrap());
}

#[test]
fn a_dict_view_shares_the_entries_and_keeps_the_tree_linked() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("view");
    let people = region(&conn, &root, "people");
    let ages = people
        .region_builder("ages")
        .ttl(Duration::from_secs(60))
        .build();
    ages.set("ada", &36u32).unwrap();
    let view: DictCache<String, u32> = ages.dict();
    assert_eq!(view.get("ada").unwrap(), Some(36));
    assert_eq!(view.insert("alan", &41).unwrap(), None);
    assert_eq!(ages.get::<u32>("alan").unwrap(), Some(41));
    assert_eq!(
        view.to_hash_map().unwrap(),
        HashMap::from([("ada".to_string(), 36), ("alan".to_string(), 41)])
    );
    assert!(
        view.ttl().unwrap().remaining().is_some(),
        "the region's TTL"
    );

    assert_eq!(
        view.get_many(["ada", "nobody", "alan"]).unwrap(),
        vec![Some(36), None, Some(41)]
    );
    assert_eq!(view.keys().count(), 2);

    // Another handle (as another process would) invalidates the parent: the view sees it.
    assert!(region(&conn, &root, "people").invalidate().unwrap());
    assert!(view.is_empty().unwrap());
    assert_eq!(view.get("ada").unwrap(), None);
    assert_eq!(view.to_hash_map().unwrap(), HashMap::new());
    let counted = server.count_commands(|| {
        view.set("grace", &85).unwrap();
    });
    // One script (the view found the path when it read): the maps read (the root's, then
    // `people` is missing) and the tree's counter checked, two generations created
    // (`people`, `people.ages`: two map entries and the counter), the type checked, HSET,
    // the TTL.
    let expected: HashMap<String, u64> = [
        ("evalsha", 1),
        ("hget", 3),
        ("type", 1),
        ("hset", 4),
        ("pexpire", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counted, expected, "the view's writes find their generation");
    let mut raw = server.raw();
    assert_eq!(view.get("grace").unwrap(), Some(85));
    assert!({
        let k = hash_of(&mut raw, &root, "people.ages");
        exists(&mut raw, &k)
    });
    // Without a TTL the view's write is still one script.
    let plain: DictCache<String, u32> = region(&conn, &root, "plain.ages").dict();
    let counted = server.count_commands(|| {
        plain.set("x", &1).unwrap();
    });
    // The process has not met `plain.ages` yet: its request starts from the path of the
    // nearest region it knows (the root's), which is right (`plain` has no generation), so
    // the generations are created in the one script.
    assert_eq!(counted.get("evalsha"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("hset"), Some(&4), "{counted:?}");
    // And the next write finds them.
    let counted = server.count_commands(|| {
        plain.set("y", &1).unwrap();
    });
    assert_eq!(counted.get("evalsha"), Some(&1), "{counted:?}");

    people.invalidate().unwrap();
    assert_eq!(view.get("grace").unwrap(), None);
    people.reclaim().unwrap();
    assert!(
        tree_keys(&mut raw, &root)
            .iter()
            .all(|k| !k.contains("people"))
    );
}

#[test]
fn iteration_streams_in_batches() {
    let server = RedisServer::start();
    let conn = server.connection();
    let r = region(&conn, &unique("iter"), "many");
    r.transaction(|tx| {
        for i in 0..1000u32 {
            tx.set(&format!("k{i}"), &i)?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    let counted = server.count_commands(|| {
        let mut seen: HashMap<String, u32> = HashMap::new();
        for entry in r.iter::<u32>() {
            let (k, v) = entry.unwrap();
            seen.insert(k, v);
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.iter().all(|(k, v)| *k == format!("k{v}")));
    });
    assert!(
        counted.get("hscan").copied().unwrap_or(0) >= 5,
        "{counted:?}"
    );
}

#[test]
fn a_key_of_another_type_is_a_typed_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("wrong");
    let r = region(&conn, &root, "w");
    r.set("k", &1u8).unwrap();
    let hash = r.key().unwrap().unwrap();
    let mut raw = server.raw();
    redis::cmd("DEL").arg(&hash).exec(&mut raw).unwrap();
    redis::cmd("SET")
        .arg(&hash)
        .arg("x")
        .exec(&mut raw)
        .unwrap();
    // Errors name the region by its name key, and say what the hash's key holds.
    match r.get::<u8>("k").unwrap_err() {
        Error::WrongType { key, found, .. } => {
            assert_eq!(key, format!("{{{root}}}.w"));
            assert_eq!(found, "string");
        }
        other => panic!("expected WrongType, got {other}"),
    }
    let err = r.set("k", &2u8).unwrap_err();
    assert!(err.is_wrong_type(), "{err}");
    let kept: String = redis::cmd("GET").arg(&hash).query(&mut raw).unwrap();
    assert_eq!(kept, "x", "nothing written over it");
    // A map of the tree holding another type: refused before anything is written.
    let tree_before = tree_keys(&mut raw, &root);
    redis::cmd("DEL")
        .arg(format!("{{{root}}}@1#children"))
        .exec(&mut raw)
        .unwrap();
    redis::cmd("SET")
        .arg(format!("{{{root}}}@1#children"))
        .arg("x")
        .exec(&mut raw)
        .unwrap();
    assert!(region(&conn, &root, "fresh").set("k", &1u8).is_err());
    assert_eq!(tree_keys(&mut raw, &root), tree_before);
}

#[test]
fn write_costs_one_round_trip_and_creation_at_most_one_then_none() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("cost");
    let r = region(&conn, &root, "a.b");
    r.set("warm", &0u8).unwrap(); // opens the pooled connection, creates the region
    r.set("warm", &0u8).unwrap(); // loads the script of a write to a region that exists
    r.get::<u8>("warm").unwrap();

    let write = server.count_commands(|| {
        r.set("k", &1u8).unwrap();
    });
    let expected: HashMap<String, u64> = [("evalsha", 1), ("hget", 3), ("type", 1), ("hset", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(
        write, expected,
        "one script: the maps, the type checked, HSET"
    );
    let trips = server.count_round_trips(|| {
        r.set("k", &2u8).unwrap();
    });
    assert_eq!(trips, 1);

    let with_ttl = Region::builder("a.b")
        .root(&root)
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .reclaim(Reclaim::Manual)
        .build();
    let write = server.count_commands(|| {
        with_ttl.set("k", &1u8).unwrap();
    });
    assert_eq!(write.get("pexpire"), Some(&1), "{write:?}");
    assert_eq!(write.get("evalsha"), Some(&1), "{write:?}");

    let top = region(&conn, &root, "");
    // The process learned the root's generation with `a.b`'s path: no round trip to learn
    // it (see the module docs' "Redis Cluster").
    let first = server.count_round_trips(|| {
        top.get::<u8>("k").unwrap();
    });
    assert_eq!(first, 1, "the root's path is known from its descendant's");
    let write = server.count_commands(|| {
        top.set("k", &1u8).unwrap();
    });
    let expected: HashMap<String, u64> = [("evalsha", 1), ("hget", 1), ("type", 1), ("hset", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(write, expected, "the root region: only the tree's hash");

    let read = server.count_commands(|| {
        r.get::<u8>("k").unwrap();
    });
    let expected: HashMap<String, u64> = [("hget", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(
        read, expected,
        "plain commands: the generations in the tree's hash and the maps, then the entry"
    );
    let trips = server.count_round_trips(|| {
        r.get::<u8>("k").unwrap();
    });
    assert_eq!(trips, 1);

    let fresh = region(&conn, &root, "c.d.e");
    region(&conn, &root, "warm.up").create().unwrap(); // loads the script
    assert_eq!(fresh.key().unwrap(), None); // learns the path: `c` has no generation
    // One script: the root's generation and its map read, the tree's counter checked, three
    // generations created (three map entries, the counter).
    let create = server.count_commands(|| fresh.create().unwrap());
    let expected: HashMap<String, u64> = [("evalsha", 1), ("hget", 3), ("hset", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(create, expected);
    assert!(
        region(&conn, &root, "c.d")
            .children()
            .any(|c| c.unwrap().name() == "c.d.e")
    );
    // Known to the process: nothing is sent again, even through a new handle.
    let again = server.count_commands(|| {
        fresh.create().unwrap();
        region(&conn, &root, "c.d.e").create().unwrap();
    });
    assert!(again.is_empty(), "{again:?}");
    // A region this process already wrote to is known as well.
    let written = server.count_commands(|| region(&conn, &root, "a.b").create().unwrap());
    assert!(written.is_empty(), "{written:?}");

    // Invalidation: a constant number of commands, whatever lies below.
    region(&conn, &root, "warm").invalidate().unwrap(); // loads the script
    let small = region(&conn, &root, "small.one");
    small.set("k", &1u8).unwrap();
    let big = region(&conn, &root, "big");
    big.transaction(|tx| tx.set("k", &1u8)).unwrap();
    for i in 0..300 {
        big.region(&format!("r{i}"))
            .region("deeper")
            .set("k", &i)
            .unwrap();
    }
    let invalidate_small = server.count_commands(|| {
        assert!(region(&conn, &root, "small").invalidate().unwrap());
    });
    let invalidate_big = server.count_commands(|| {
        assert!(big.invalidate().unwrap());
    });
    let expected: HashMap<String, u64> = [("evalsha", 1), ("hget", 2), ("hdel", 1), ("rpush", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(invalidate_small, expected);
    assert_eq!(invalidate_big, expected, "the same for 601 regions below");
    let invalidate_root = server.count_commands(|| {
        assert!(top.invalidate().unwrap());
    });
    let expected: HashMap<String, u64> = [
        ("evalsha", 1),
        ("hget", 1),
        ("rpush", 1),
        ("hincrby", 1),
        ("hset", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        invalidate_root, expected,
        "the root region gets a new generation"
    );
}

/// The Python original's pitfall: a process that knows a child region writes to it after
/// another process invalidated the parent. The write must land where the parent's next
/// invalidation finds it, and nothing written before the invalidation may show.
#[test]
fn writes_relink_a_child_after_another_process_invalidated_the_parent() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("stale");
    let parent = region(&conn, &root, "parent");
    let kid = parent.region("kid");
    kid.create().unwrap();
    kid.set("a", &1u8).unwrap();

    wait_child(child_process(
        "child_invalidates_the_parent",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    let mut raw = server.raw();
    assert_eq!(
        kid.get::<u8>("a").unwrap(),
        None,
        "invalidated by the other process"
    );
    assert!(parent.children().next().is_none());
    assert_eq!(
        tree_keys(&mut raw, &root).len(),
        4,
        "#tree, #gc and the retired pair"
    );

    // This process still knows "parent.kid" (create sends nothing), and writes again.
    let sent = server.count_commands(|| kid.create().unwrap());
    assert!(sent.is_empty(), "{sent:?}");
    kid.set("b", &2u8).unwrap();
    assert!(parent.children().any(|c| c.unwrap().name() == "parent.kid"));
    assert_eq!(
        kid.get::<u8>("a").unwrap(),
        None,
        "the old generation stays out of sight"
    );

    // A fresh handle (as another process would have) invalidates the parent: the kid goes.
    assert!(region(&conn, &root, "parent").invalidate().unwrap());
    assert_eq!(kid.get::<u8>("b").unwrap(), None);
    assert_eq!(
        parent.reclaim().unwrap(),
        2,
        "both generations of the kid's hash"
    );
    assert_eq!(tree_keys(&mut raw, &root), vec![format!("{{{root}}}#tree")]);
}

/// A read with plain commands checks every generation it names: after another process
/// invalidated the parent, the read finds another generation and goes to the script, which
/// finds the new path; nothing invalidated shows. A region without a generation is read by
/// the script; once written again, reads are plain commands again.
#[test]
fn a_plain_read_on_an_outdated_path_goes_to_the_script_and_shows_nothing_invalidated() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("plain");
    let parent = region(&conn, &root, "parent");
    let kid = parent.region("kid");
    kid.set("a", &1u8).unwrap();
    let plain: HashMap<String, u64> = [("hget".to_string(), 4)].into_iter().collect();
    let sent = server.count_commands(|| assert_eq!(kid.get::<u8>("a").unwrap(), Some(1)));
    assert_eq!(sent, plain, "the tree's hash, two maps, the entry");

    wait_child(child_process(
        "child_invalidates_the_parent",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    // The plain read, then the script twice: the first answers with the path it found.
    let sent = server.count_commands(|| assert_eq!(kid.get::<u8>("a").unwrap(), None));
    assert_eq!(sent.get("evalsha"), Some(&2), "{sent:?}");
    assert!(sent.get("hget").is_some_and(|n| *n >= 4 + 2), "{sent:?}");
    // The kid has no generation now: its reads are the script's (which reads it as empty).
    let sent = server.count_commands(|| assert_eq!(kid.get::<u8>("a").unwrap(), None));
    assert_eq!(sent.get("evalsha"), Some(&1), "{sent:?}");

    kid.set("b", &2u8).unwrap();
    let sent = server.count_commands(|| assert_eq!(kid.get::<u8>("b").unwrap(), Some(2)));
    assert_eq!(sent, plain);
    assert_eq!(kid.get::<u8>("a").unwrap(), None);
}

/// A write to a region whose generations the process knows is a short script that checks
/// them; after another process invalidated the parent it finds another generation, changes
/// nothing, and the general write script finds the path and creates the kid's generation:
/// the write shows, what the other process invalidated does not.
#[test]
fn a_short_write_on_an_outdated_path_changes_nothing_and_the_general_write_follows() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("short");
    let parent = region(&conn, &root, "parent");
    let kid = parent.region("kid");
    kid.set("a", &1u8).unwrap(); // creates the kid (the general script)
    kid.set("a", &1u8).unwrap(); // loads the short one
    let short = server.count_commands(|| assert!(!kid.set("a", &1u8).unwrap()));
    let expected: HashMap<String, u64> = [("evalsha", 1), ("hget", 3), ("type", 1), ("hset", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(short, expected);

    wait_child(child_process(
        "child_invalidates_the_parent",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    // The short script (refused: another generation), the general one (it answers with the
    // path found), the general one again (it creates the kid's generations and writes).
    let sent = server.count_commands(|| assert!(kid.set("b", &2u8).unwrap()));
    assert_eq!(sent.get("evalsha"), Some(&3), "{sent:?}");
    assert_eq!(sent.get("hset").copied().unwrap_or(0), 1 + 3, "{sent:?}");
    assert_eq!(kid.get::<u8>("b").unwrap(), Some(2));
    assert_eq!(kid.get::<u8>("a").unwrap(), None);
    assert!(parent.children().any(|c| c.unwrap().name() == "parent.kid"));
    let sent = server.count_commands(|| assert!(kid.set("c", &3u8).unwrap()));
    assert_eq!(
        sent.get("evalsha"),
        Some(&1),
        "the short one again: {sent:?}"
    );
}

#[test]
#[ignore = "child process entry point: run by writes_relink_a_child_after_another_process_invalidated_the_parent"]
fn child_invalidates_the_parent() {
    if !is_child() {
        return;
    }
    let conn = Connection::open("child", &std::env::var("REGION_URL").unwrap()).unwrap();
    let root = std::env::var("REGION_ROOT").unwrap();
    let parent = region(&conn, &root, "parent");
    assert_eq!(parent.region("kid").get::<u8>("a").unwrap(), Some(1));
    assert!(parent.invalidate().unwrap());
}

/// Checks, with a plain connection, that no entry the writers had finished before
/// `snapshot` is reachable from the tree's hash (what every reader sees). Returns how many
/// reachable entries there are.
fn check_tree(raw: &mut redis::Connection, root: &str, snapshot: &HashMap<String, u64>) -> usize {
    let mut survivors = 0;
    for (name, key) in reachable(raw, &base(root)) {
        let fields: Vec<Vec<u8>> = redis::cmd("HKEYS").arg(&key).query(raw).unwrap();
        for field in fields {
            let entry = decode_field(&field);
            let (writer, seq) = entry.split_once('-').unwrap();
            let seq: u64 = seq.parse().unwrap();
            let done_before = snapshot.get(writer).copied().unwrap_or(0);
            assert!(
                seq > done_before,
                "{name}[{entry}] was written before the invalidation began (writer {writer} had finished {done_before})"
            );
            survivors += 1;
        }
    }
    survivors
}

#[test]
fn invalidation_racing_writer_threads_and_another_process() {
    let server = RedisServer::start();
    let conn = server.connection_with("pool_size=12");
    let root = unique("race");
    let progress_key = unique("progress");
    let stop_key = unique("stop");
    let top = region(&conn, &root, "top");
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..8).map(|_| AtomicU64::new(0)).collect());

    let child = child_process(
        "child_writes_until_told_to_stop",
        &[
            ("REGION_URL", server.url()),
            ("REGION_ROOT", root.clone()),
            ("REGION_PROGRESS", progress_key.clone()),
            ("REGION_STOP", stop_key.clone()),
        ],
    );
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let top = top.clone();
            let stop = stop.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    // New regions two levels down, created while the top is invalidated.
                    let target = if seq.is_multiple_of(5) {
                        top.clone()
                    } else {
                        top.region(&format!("t{t}.r{}", seq % 7))
                    };
                    target.set(&format!("t{t}-{seq}"), &seq).unwrap();
                    done[t].store(seq, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let mut raw = server.raw();
    let progress = |raw: &mut redis::Connection| -> u64 {
        redis::cmd("GET")
            .arg(&progress_key)
            .query::<Option<u64>>(raw)
            .unwrap()
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(20), || progress(&mut raw) > 10),
        "the child process did not start writing"
    );
    let mut removed = 0;
    let mut survived = 0;
    for round in 0..15 {
        std::thread::sleep(Duration::from_millis(20));
        let mut snapshot: HashMap<String, u64> = (0..8)
            .map(|t| (format!("t{t}"), done[t].load(Ordering::SeqCst)))
            .collect();
        snapshot.insert("p".to_string(), progress(&mut raw));
        removed += u32::from(top.invalidate().unwrap());
        survived += check_tree(&mut raw, &root, &snapshot);
        if round % 4 == 0 {
            // Reclamation racing the writers deletes only what nobody reaches.
            top.reclaim().unwrap();
            survived += check_tree(&mut raw, &root, &snapshot);
        }
    }
    stop.store(true, Ordering::Relaxed);
    redis::cmd("SET")
        .arg(&stop_key)
        .arg(1)
        .exec(&mut raw)
        .unwrap();
    for w in writers {
        w.join().unwrap();
    }
    wait_child(child);
    assert!(removed > 0, "the invalidations found something to remove");
    assert!(
        survived > 0,
        "writes raced the invalidations (the test is not vacuous)"
    );
    // Quiet now: one more invalidation and reclamation leave nothing of the top behind.
    top.invalidate().unwrap();
    assert!(top.reclaim().unwrap() > 0);
    assert_eq!(tree_keys(&mut raw, &root), vec![format!("{{{root}}}#tree")]);
}

#[test]
#[ignore = "child process entry point: run by invalidation_racing_writer_threads_and_another_process"]
fn child_writes_until_told_to_stop() {
    if !is_child() {
        return;
    }
    let url = std::env::var("REGION_URL").unwrap();
    let conn = Connection::open("child", &url).unwrap();
    let root = std::env::var("REGION_ROOT").unwrap();
    let progress_key = std::env::var("REGION_PROGRESS").unwrap();
    let stop_key = std::env::var("REGION_STOP").unwrap();
    let mut raw = redis::Client::open(url).unwrap().get_connection().unwrap();
    let top = region(&conn, &root, "top");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        top.region(&format!("p.r{}", seq % 3))
            .set(&format!("p-{seq}"), &seq)
            .unwrap();
        // Published only once the write returned.
        redis::cmd("SET")
            .arg(&progress_key)
            .arg(seq)
            .exec(&mut raw)
            .unwrap();
        if seq.is_multiple_of(10) && exists(&mut raw, &stop_key) {
            return;
        }
    }
    panic!("never told to stop");
}

#[test]
fn two_processes_share_a_region() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("shared");
    let shared = region(&conn, &root, "shared");
    shared.set("from-parent", &1u32).unwrap();
    wait_child(child_process(
        "child_uses_the_shared_region",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    assert_eq!(shared.get::<u32>("from-child").unwrap(), Some(2));
    let kids: Vec<String> = shared.children().map(|c| c.unwrap().name()).collect();
    assert_eq!(kids, vec!["shared.sub"]);
    assert!(shared.invalidate().unwrap());
    assert_eq!(shared.get::<u32>("from-child").unwrap(), None);
    assert_eq!(shared.reclaim().unwrap(), 2);
    assert_eq!(
        tree_keys(&mut server.raw(), &root),
        vec![format!("{{{root}}}#tree")]
    );
}

#[test]
#[ignore = "child process entry point: run by two_processes_share_a_region"]
fn child_uses_the_shared_region() {
    if !is_child() {
        return;
    }
    let conn = Connection::open("child", &std::env::var("REGION_URL").unwrap()).unwrap();
    let root = std::env::var("REGION_ROOT").unwrap();
    let shared = region(&conn, &root, "shared");
    assert_eq!(shared.get::<u32>("from-parent").unwrap(), Some(1));
    shared.set("from-child", &2u32).unwrap();
    shared.region("sub").set("x", "y").unwrap();
}

#[test]
fn ttl_is_inherited_by_children_and_not_leaked_to_parents() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("ttl");
    let mut raw = server.raw();
    let minute = Duration::from_secs(60);

    let parent = Region::builder("p")
        .root(&root)
        .connection(&conn)
        .ttl(minute)
        .build();
    let child = parent.region("c");
    let grandchild = child.region("g");
    let forever = parent.region_builder("forever").no_ttl().build();
    let short = parent
        .region_builder("short")
        .ttl(Duration::from_secs(5))
        .build();
    for r in [&parent, &child, &grandchild, &forever, &short] {
        r.set("k", &1u8).unwrap();
    }
    let key = |r: &Region| r.key().unwrap().unwrap();
    for r in [&parent, &child, &grandchild] {
        let ms = pttl(&mut raw, &key(r));
        assert!(ms > 50_000 && ms <= 60_000, "{}: {ms}", r.name());
    }
    assert_eq!(pttl(&mut raw, &key(&forever)), -1);
    assert!(pttl(&mut raw, &key(&short)) <= 5_000);
    // The child's options stayed with the child.
    assert!(pttl(&mut raw, &key(&parent)) > 50_000);
    // The tree's own keys never expire.
    for k in tree_keys(&mut raw, &root) {
        if k.ends_with("#tree") || k.ends_with("#children") {
            assert_eq!(pttl(&mut raw, &k), -1, "{k}");
        }
    }

    // Intermediate parents get generations only: no hash, so no TTL of the leaf.
    let leaf = Region::builder("x.y.z")
        .root(&root)
        .connection(&conn)
        .ttl(minute)
        .build();
    leaf.set("k", &1u8).unwrap();
    assert_eq!(
        {
            let k = hash_of(&mut raw, &root, "x");
            pttl(&mut raw, &k)
        },
        -2
    );
    assert_eq!(
        {
            let k = hash_of(&mut raw, &root, "x.y");
            pttl(&mut raw, &k)
        },
        -2
    );
    let x = region(&conn, &root, "x");
    x.set("k", &1u8).unwrap();
    assert_eq!(
        x.ttl().unwrap(),
        Ttl::Persistent,
        "defaults for a region built by name"
    );

    // A parent expiring does not expire its children.
    let brief = Region::builder("brief")
        .root(&root)
        .connection(&conn)
        .ttl(Duration::from_millis(30))
        .build();
    let lasting = brief.region_builder("lasting").no_ttl().build();
    brief.set("k", &1u8).unwrap();
    lasting.set("k", &1u8).unwrap();
    assert!(eventually(Duration::from_secs(2), || !brief
        .exists()
        .unwrap()));
    assert_eq!(lasting.get::<u8>("k").unwrap(), Some(1));
}

/// Writes at once and again `gap` later; returns the hash's PTTL right after the second
/// write.
fn pttl_after_second_write(r: &Region, gap: Duration) -> Duration {
    r.set("first", &1u8).unwrap();
    std::thread::sleep(gap);
    r.set("second", &2u8).unwrap();
    r.ttl().unwrap().remaining().expect("a TTL")
}

#[test]
fn ttl_policies_and_their_inheritance() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("policy");
    let ttl = Duration::from_millis(400);
    let gap = Duration::from_millis(200);
    let refresh = Region::builder("refresh")
        .root(&root)
        .connection(&conn)
        .ttl(ttl)
        .build();
    let keep = Region::builder("keep")
        .root(&root)
        .connection(&conn)
        .ttl(ttl)
        .ttl_policy(TtlPolicy::Keep)
        .build();
    // Children inherit the policy (the Python original loses it on children).
    let cases = [
        (refresh.clone(), true),
        (refresh.region("child"), true),
        (keep.clone(), false),
        (keep.region("child"), false),
        (
            keep.region_builder("own")
                .ttl_policy(TtlPolicy::Refresh)
                .build(),
            true,
        ),
    ];
    for (r, refreshes) in cases {
        // The server set the TTL at the first write, at least `gap` before the PTTL read: under
        // Keep at most ttl - gap is left. Refresh set it again at the second write, just
        // before the read.
        let left = pttl_after_second_write(&r, gap);
        if refreshes {
            assert!(left > ttl - gap, "{}: {left:?}", r.name());
        } else {
            assert!(left <= ttl - gap, "{}: {left:?}", r.name());
        }
        // Either way the region expires by itself, entries and all.
        assert!(
            eventually(Duration::from_secs(3), || !r.exists().unwrap()),
            "{} never expired",
            r.name()
        );
        assert_eq!(r.get::<u8>("second").unwrap(), None);
    }
}

#[test]
fn transaction_is_invisible_until_exec_and_sent_in_one_round_trip() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("tx");
    let r = Region::builder("cart")
        .root(&root)
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .reclaim(Reclaim::Manual)
        .build();
    r.set("old", &1u32).unwrap();
    // The first commit on a server also sends the script's text.
    region(&conn, &root, "warm")
        .transaction(|tx| tx.set("w", &1u8))
        .unwrap();
    let key = r.key().unwrap().unwrap();
    r.get::<u32>("old").unwrap(); // a read before the count, as every other
    let mut observer = server.raw();
    let counted = server.count_commands(|| {
        let total = r
            .transaction(|tx| {
                tx.set("apples", &3u32)?;
                tx.set("pears", &2u32)?;
                assert_eq!(tx.remove::<u32>("old")?, Some(1));
                // Reads see the pending writes...
                assert_eq!(tx.get::<u32>("apples")?, Some(3));
                assert!(!tx.contains_key("old")?);
                // ...and nobody else does.
                let len: usize = redis::cmd("HLEN").arg(&key).query(&mut observer).unwrap();
                assert_eq!(len, 1, "nothing visible before EXEC");
                Ok::<_, Error>(5)
            })
            .unwrap();
        assert_eq!(total, 5);
    });
    assert_eq!(
        counted.get("evalsha"),
        Some(&1),
        "the read of `old` (the only one: the others see pending writes; plain commands), \
         then one script commits: {counted:?}"
    );
    assert!(!counted.contains_key("eval"), "{counted:?}");
    // The commit's first write is an HSET of the first pair (so that a server out of memory
    // refuses it before the HDEL), then one HSET of them all.
    assert_eq!(counted.get("hset"), Some(&2), "{counted:?}");
    assert_eq!(
        counted.get("pexpire"),
        Some(&1),
        "TTL in the same script: {counted:?}"
    );
    assert_eq!(r.get::<u32>("apples").unwrap(), Some(3));
    assert_eq!(r.get::<u32>("old").unwrap(), None);
    assert_eq!(r.len().unwrap(), 2);

    // clear() inside a transaction.
    r.transaction(|tx| {
        tx.clear();
        assert_eq!(tx.get::<u32>("apples")?, None);
        tx.set("only", &1u32)
    })
    .unwrap();
    assert_eq!(r.keys().map(Result::unwrap).collect::<Vec<_>>(), ["only"]);

    // A transaction that writes nothing sends nothing.
    let nothing = server.count_commands(|| r.transaction(|_| Ok::<_, Error>(())).unwrap());
    assert!(nothing.is_empty(), "{nothing:?}");
}

#[derive(Debug)]
enum AppError {
    Cache(Error),
    Refused,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Cache(e)
    }
}

#[test]
fn transaction_discards_everything_on_error_and_on_panic() {
    let server = RedisServer::start();
    let conn = server.connection();
    let r = region(&conn, &unique("discard"), "d");
    let sent = server.count_commands(|| {
        let out = r.transaction(|tx| {
            tx.set("a", &1u8)?;
            tx.set("b", &2u8)?;
            Err::<(), _>(AppError::Refused)
        });
        assert!(matches!(out, Err(AppError::Refused)));
    });
    assert!(sent.is_empty(), "nothing sent: {sent:?}");
    assert!(!r.exists().unwrap());

    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = r.transaction(|tx| {
            tx.set("a", &1u8)?;
            if tx.contains_key("a")? {
                panic!("boom");
            }
            Ok::<_, AppError>(())
        });
    }));
    assert!(caught.is_err());
    assert!(!r.exists().unwrap());
    assert!(
        tree_keys(&mut server.raw(), r.root()).is_empty(),
        "not even a generation"
    );

    // Errors of the crate convert into the caller's error type.
    let bad = region(&conn, r.root(), "a..b");
    let out = bad.transaction(|tx| tx.set("k", &1u8).map_err(AppError::from));
    assert!(matches!(
        out,
        Err(AppError::Cache(Error::InvalidKey { .. }))
    ));
}

#[test]
fn transactions_from_many_threads_are_each_atomic() {
    let server = RedisServer::start();
    let conn = server.connection_with("pool_size=10");
    let r = region(&conn, &unique("txmany"), "pair");
    r.transaction(|tx| {
        tx.set("a", &(0u32, 0u32))?;
        tx.set("b", &(0u32, 0u32))
    })
    .unwrap();
    let key = r.key().unwrap().unwrap();
    let (a, b) = {
        let mut tx_fields = Vec::new();
        for name in ["a", "b"] {
            tx_fields.push(
                Postcard
                    .encode_field(name, &TypeTag::of::<String>())
                    .unwrap(),
            );
        }
        (tx_fields[0].clone(), tx_fields[1].clone())
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut raw = server.raw();
        std::thread::spawn(move || {
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) {
                let (x, y): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
                    .atomic()
                    .cmd("HGET")
                    .arg(&key)
                    .arg(&a)
                    .cmd("HGET")
                    .arg(&key)
                    .arg(&b)
                    .query(&mut raw)
                    .unwrap();
                assert_eq!(x, y, "a transaction was seen half-applied");
                checks += 1;
            }
            checks
        })
    };
    let writers: Vec<_> = (0..8u32)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                for n in 0..50u32 {
                    r.transaction(|tx| {
                        tx.set("a", &(t, n))?;
                        tx.set("b", &(t, n))
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(
        r.get::<(u32, u32)>("a").unwrap(),
        r.get::<(u32, u32)>("b").unwrap()
    );
}

#[test]
fn signals_invalidate_every_connected_region_and_report_errors() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("signals");
    let profiles = region(&conn, &root, "profiles");
    let avatars = region(&conn, &root, "avatars");
    let avatar_sizes = avatars.region("sizes");
    let name = unique("user-updated");
    let signal = Signal::named(&name);
    profiles.invalidate_on(&signal);
    let sub = avatars.invalidate_on(&Signal::named(&name));
    for r in [&profiles, &avatars, &avatar_sizes] {
        r.set("k", &1u8).unwrap();
    }
    assert_eq!(Signal::named(&name).send().unwrap(), 2);
    for r in [&profiles, &avatars, &avatar_sizes] {
        assert!(!r.exists().unwrap(), "{}", r.name());
    }

    assert!(signal.disconnect(sub));
    profiles.set("k", &1u8).unwrap();
    avatars.set("k", &1u8).unwrap();
    assert_eq!(signal.send().unwrap(), 1);
    assert!(!profiles.exists().unwrap());
    assert!(avatars.exists().unwrap());

    // A region that cannot be reached: the error comes back, the others are still invalidated.
    let dead = Connection::open(
        &unique("dead"),
        &format!(
            "redis://127.0.0.1:{}/0?pool_timeout=200ms&connect_timeout=100ms",
            support::free_port()
        ),
    )
    .unwrap();
    let unreachable = region(&dead, &root, "unreachable");
    unreachable.invalidate_on(&signal);
    avatars.invalidate_on(&signal);
    profiles.set("k", &1u8).unwrap();
    let err = signal.send().unwrap_err();
    assert!(err.is_connection(), "{err}");
    assert!(!profiles.exists().unwrap());
    assert!(!avatars.exists().unwrap());
}

#[test]
fn get_or_insert_with_and_memoized_functions() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("memo");
    let r = region(&conn, &root, "m");
    let calls = AtomicU64::new(0);
    let compute = || {
        calls.fetch_add(1, Ordering::SeqCst);
        42u64
    };
    assert_eq!(r.get_or_insert_with("answer", compute).unwrap(), 42);
    assert_eq!(r.get_or_insert_with("answer", compute).unwrap(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The first value stored wins.
    r.set("taken", &7u64).unwrap();
    assert_eq!(r.get_or_insert_with("taken", || 8u64).unwrap(), 7);

    let square_calls = Arc::new(AtomicU64::new(0));
    let counter = square_calls.clone();
    #[allow(deprecated)]
    let square = r.memoize("square", move |n: &u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        n * n
    });
    let hits = server.count_commands(|| {
        assert_eq!(square.call(&12).unwrap(), 144);
        assert_eq!(square.call(&12).unwrap(), 144);
    });
    assert_eq!(square_calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        hits.get("evalsha"),
        Some(&1),
        "miss and hit read with plain commands, the store a script: {hits:?}"
    );
    assert_eq!(hits.get("hsetnx"), Some(&1), "{hits:?}");
    assert_eq!(square.call(&3).unwrap(), 9);
    assert_eq!(square_calls.load(Ordering::SeqCst), 2);
    // Another function with the same arguments does not collide.
    #[allow(deprecated)]
    let cube = r.memoize("cube", |n: &u64| n * n * n);
    assert_eq!(cube.call(&12).unwrap(), 1728);
    // `None` is cached too.
    let nothing_calls = AtomicU64::new(0);
    #[allow(deprecated)]
    let nothing = r.memoize("nothing", |_: &str| {
        nothing_calls.fetch_add(1, Ordering::SeqCst);
        None::<u8>
    });
    assert_eq!(nothing.call("x").unwrap(), None);
    assert_eq!(nothing.call("x").unwrap(), None);
    assert_eq!(nothing_calls.load(Ordering::SeqCst), 1);

    // Memoized results are entries of the region, but not among its keys.
    assert_eq!(r.len().unwrap(), 2 + 4);
    let mut keys: Vec<String> = r.keys().map(Result::unwrap).collect();
    keys.sort();
    assert_eq!(keys, ["answer", "taken"]);
    assert!(square.forget(&12).unwrap());
    assert!(!square.forget(&12).unwrap());
    assert_eq!(square.call(&12).unwrap(), 144);
    assert_eq!(square_calls.load(Ordering::SeqCst), 3);
    assert_eq!(square.call_uncached(&12), 144);
    assert_eq!(
        square_calls.load(Ordering::SeqCst),
        4,
        "uncached calls always run"
    );

    // Invalidation drops them with the region.
    r.invalidate().unwrap();
    assert_eq!(square.call(&12).unwrap(), 144);
    assert_eq!(square_calls.load(Ordering::SeqCst), 5);
}

#[test]
fn outage_policies_with_a_server_stopped_and_restarted() {
    let mut server = RedisServer::start();
    let conn = server.connection_with("pool_timeout=300ms&connect_timeout=200ms&timeout=300ms");
    let root = unique("outage");
    let fail = region(&conn, &root, "fail");
    let miss = Region::builder("miss")
        .root(&root)
        .connection(&conn)
        .on_outage(OutagePolicy::Miss)
        .build();
    fail.set("k", &1u8).unwrap();
    miss.set("k", &1u8).unwrap();

    server.stop();
    let err = fail.get::<u8>("k").unwrap_err();
    assert!(err.is_connection(), "{err}");
    assert!(fail.set("k", &2u8).unwrap_err().is_connection());
    assert!(
        fail.transaction(|tx| tx.set("k", &2u8))
            .unwrap_err()
            .is_connection()
    );

    assert_eq!(miss.get::<u8>("k").unwrap(), None);
    assert!(!miss.contains_key("k").unwrap());
    assert!(!miss.set("k", &2u8).unwrap());
    assert_eq!(miss.insert("k", &2u8).unwrap(), None);
    assert_eq!(miss.remove::<u8>("k").unwrap(), None);
    assert!(!miss.delete("k").unwrap());
    assert_eq!(miss.get_or_insert_with("computed", || 7u8).unwrap(), 7);
    miss.transaction(|tx| {
        tx.set("a", &1u8)?;
        tx.set("b", &1u8)
    })
    .unwrap();
    let stats = miss.outage_stats();
    assert_eq!(stats.missed_reads, 3, "{stats:?}");
    assert_eq!(stats.skipped_writes, 1 + 1 + 1 + 1 + 1 + 2, "{stats:?}");
    assert_eq!(fail.outage_stats(), Default::default());
    // Invalidation, and everything off the cache path, never pretends.
    assert!(miss.invalidate().unwrap_err().is_connection());
    assert!(miss.len().is_err());

    server.restart();
    // Once the back-off window of the last failed attempt is over, the next calls succeed.
    std::thread::sleep(redis_caches::connection::CONNECT_BACKOFF);
    fail.set("k", &3u8).unwrap();
    miss.set("k", &3u8).unwrap();
    assert_eq!(miss.get::<u8>("k").unwrap(), Some(3));
    assert_eq!(fail.get::<u8>("k").unwrap(), Some(3));
    // The restarted server lost everything; the writes created the regions again.
    let mut raw = server.raw();
    assert!({
        let k = hash_of(&mut raw, &root, "miss");
        exists(&mut raw, &k)
    });
    let before = miss.outage_stats();
    miss.get::<u8>("k").unwrap();
    assert_eq!(
        miss.outage_stats(),
        before,
        "nothing skipped once the server is back"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32),
    Set(u8, u32),
    Remove(u8),
    Delete(u8),
    Get(u8),
    Contains(u8),
    Len,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        (0u8..8, any::<u32>()).prop_map(|(k, v)| Op::Set(k, v)),
        (0u8..8).prop_map(Op::Remove),
        (0u8..8).prop_map(Op::Delete),
        (0u8..8).prop_map(Op::Get),
        (0u8..8).prop_map(Op::Contains),
        Just(Op::Len),
    ]
}

#[test]
fn behaves_like_a_hash_map() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("model");
    let config = ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    };
    let case = AtomicU64::new(0);
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let r = region(&conn, &root, &format!("case{}", case.fetch_add(1, Ordering::Relaxed)));
        let mut model: HashMap<String, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let old = r.insert(&k.to_string(), &v).unwrap();
                    prop_assert_eq!(old, model.insert(k.to_string(), v));
                }
                Op::Set(k, v) => {
                    let new = r.set(&k.to_string(), &v).unwrap();
                    prop_assert_eq!(new, model.insert(k.to_string(), v).is_none());
                }
                Op::Remove(k) => {
                    prop_assert_eq!(r.remove::<u32>(&k.to_string()).unwrap(), model.remove(&k.to_string()));
                }
                Op::Delete(k) => {
                    prop_assert_eq!(r.delete(&k.to_string()).unwrap(), model.remove(&k.to_string()).is_some());
                }
                Op::Get(k) => {
                    prop_assert_eq!(r.get::<u32>(&k.to_string()).unwrap(), model.get(&k.to_string()).copied());
                }
                Op::Contains(k) => {
                    prop_assert_eq!(r.contains_key(&k.to_string()).unwrap(), model.contains_key(&k.to_string()));
                }
                Op::Len => prop_assert_eq!(r.len().unwrap(), model.len()),
            }
        }
        let mut entries: Vec<(String, u32)> = r.iter::<u32>().map(Result::unwrap).collect();
        entries.sort();
        let mut expected: Vec<(String, u32)> = model.into_iter().collect();
        expected.sort();
        prop_assert_eq!(entries, expected);
    });
}

/// Writes a tree in the layout of redis-caches 0.1: `{root}` (the root's hash),
/// `{root}.a`, `{root}.a.b` (hashes), `{root}#children` and `{root}#children.a` (link sets of
/// the children's keys).
fn write_old_layout(raw: &mut redis::Connection, root: &str) {
    let b = base(root);
    for hash in [b.clone(), format!("{b}.a"), format!("{b}.a.b")] {
        redis::cmd("HSET")
            .arg(&hash)
            .arg("f")
            .arg("v")
            .exec(raw)
            .unwrap();
    }
    redis::cmd("SADD")
        .arg(format!("{b}#children"))
        .arg(format!("{b}.a"))
        .exec(raw)
        .unwrap();
    redis::cmd("SADD")
        .arg(format!("{b}#children.a"))
        .arg(format!("{b}.a.b"))
        // Not a child's key: followed by neither layout.
        .arg("elsewhere")
        .exec(raw)
        .unwrap();
}

#[test]
fn the_old_layout_is_refused_until_the_root_is_invalidated() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("old");
    let mut raw = server.raw();
    write_old_layout(&mut raw, &root);
    redis::cmd("SET")
        .arg("elsewhere")
        .arg("kept")
        .exec(&mut raw)
        .unwrap();
    let before = tree_keys(&mut raw, &root);
    let a = region(&conn, &root, "a");
    let b = a.region("b");
    let refused = |e: Error, what: &str| {
        assert!(matches!(e, Error::OldLayout { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("invalidate its root region"), "{e}");
        assert!(
            support::redis_helpers::chain(&e).contains("OLDLAYOUT"),
            "the script's refusal is the source: {e:?}"
        );
    };
    refused(a.get::<String>("f").unwrap_err(), "get");
    refused(b.set("f", "w").unwrap_err(), "set");
    refused(a.insert("f", &"w".to_string()).unwrap_err(), "insert");
    refused(
        a.transaction(|tx| tx.set("f", "w")).unwrap_err(),
        "transaction",
    );
    refused(a.create().unwrap_err(), "create");
    refused(a.invalidate().unwrap_err(), "invalidate below the root");
    refused(a.dict::<String, String>().get("f").unwrap_err(), "the view");
    refused(
        a.memo("m", |x: u8| x).build().call(1).unwrap_err(),
        "a memo",
    );
    assert_eq!(tree_keys(&mut raw, &root), before, "nothing written");

    // Invalidating the root discards the old data, reclaimed like any retired generation.
    let top = region(&conn, &root, "");
    assert!(top.invalidate().unwrap());
    assert_eq!(a.get::<String>("f").unwrap(), None);
    b.set("f", "new").unwrap();
    assert_eq!(b.get::<String>("f").unwrap().as_deref(), Some("new"));
    assert_eq!(top.reclaim().unwrap(), 3, "the old hashes");
    let left = tree_keys(&mut raw, &root);
    assert!(
        left.iter()
            .all(|k| !k.contains("#children.") && k != &base(&root)),
        "{left:?}"
    );
    assert!(!exists(&mut raw, &format!("{}#children", base(&root))));
    let kept: String = redis::cmd("GET").arg("elsewhere").query(&mut raw).unwrap();
    assert_eq!(
        kept, "kept",
        "a set member that is not a region's key is not followed"
    );
    assert_eq!(b.get::<String>("f").unwrap().as_deref(), Some("new"));
}

#[test]
fn reclamation_deletes_only_the_keys_of_retired_regions() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("safe");
    let b = base(&root);
    let mut raw = server.raw();
    let top = region(&conn, &root, "top");
    for name in ["x", "y", "y.z"] {
        top.region(name).set("k", &1u8).unwrap();
    }
    // Someone else's keys where reclamation looks: a string at a retired region's hash name,
    // and keys that merely look like the tree's.
    let x = hash_of(&mut raw, &root, "top.x");
    redis::cmd("DEL").arg(&x).exec(&mut raw).unwrap();
    redis::cmd("SET")
        .arg(&x)
        .arg("foreign")
        .exec(&mut raw)
        .unwrap();
    let lookalikes = [
        format!("{b}.top.x"),
        format!("{b}@999.top"),
        format!("{b}#children"),
        format!("{b}top"),
    ];
    for k in &lookalikes {
        redis::cmd("SET")
            .arg(k)
            .arg("foreign")
            .exec(&mut raw)
            .unwrap();
    }
    // Queue entries that are not a generation's stem are dropped, nothing else.
    redis::cmd("RPUSH")
        .arg(format!("{b}#gc"))
        .arg("garbage")
        .arg("@12abc")
        .arg(".top.x")
        .arg("!x")
        .exec(&mut raw)
        .unwrap();
    let sibling = region(&conn, &root, "sibling");
    sibling.set("k", &1u8).unwrap();

    assert!(top.invalidate().unwrap());
    assert_eq!(
        top.reclaim().unwrap(),
        2,
        "top.y and top.y.z (top itself never had a hash, top.x's is someone else's)"
    );
    assert!(queue(&mut raw, &b).is_empty());
    for k in lookalikes.iter().chain([&x]) {
        let v: String = redis::cmd("GET").arg(k).query(&mut raw).unwrap();
        assert_eq!(v, "foreign", "{k}");
    }
    assert_eq!(sibling.get::<u8>("k").unwrap(), Some(1));
    let mut left = tree_keys(&mut raw, &root);
    left.retain(|k| !lookalikes.contains(k) && k != &x);
    assert_eq!(
        left,
        vec![
            format!("{b}#tree"),
            format!("{b}@1#children"),
            hash_of(&mut raw, &root, "sibling"),
        ]
    );
}

#[test]
fn deep_trees_are_reclaimed_depth_first_in_bounded_steps() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("deep");
    let mut raw = server.raw();
    let top = region(&conn, &root, "top");
    // 3 levels of 6 children below `top`, a hash at every level but the middle one.
    let mut hashes = 1;
    top.set("k", &0u8).unwrap();
    for i in 0..6 {
        for j in 0..6 {
            top.region(&format!("a{i}.b{j}")).set("k", &1u8).unwrap();
            hashes += 1;
            for k in 0..6 {
                top.region(&format!("a{i}.b{j}.c{k}"))
                    .set("k", &2u8)
                    .unwrap();
                hashes += 1;
            }
        }
    }
    let regions = reachable(&mut raw, &base(&root)).len();
    assert_eq!(regions, 1 + 1 + 6 + 36 + 216, "the root, top and below");
    assert!(top.invalidate().unwrap());
    assert!(top.region("a3.b3.c3").key().unwrap().is_none());
    let before = server.commandstats().get("evalsha").copied().unwrap_or(0);
    let mut steps = 0;
    let mut deleted = 0;
    // Step by step, as the background thread does: the queue stays short (depth first).
    loop {
        let (n, left, _changed): (u64, u64, u64) = redis::cmd("EVALSHA")
            .arg(reclaim_sha(&server))
            .arg(1)
            .arg(format!("{}#gc", base(&root)))
            .arg(base(&root))
            .arg(50)
            .query(&mut raw)
            .unwrap();
        deleted += n;
        steps += 1;
        assert!(left <= 3 * 50, "the queue stays short: {left}");
        if left == 0 {
            break;
        }
    }
    assert_eq!(deleted, hashes);
    assert!(steps >= (1 + 6 + 36 + 216) / 50, "bounded steps: {steps}");
    assert!(server.commandstats().get("evalsha").copied().unwrap_or(0) > before);
    assert_eq!(
        tree_keys(&mut raw, &root),
        vec![format!("{{{root}}}#tree")],
        "everything of top is gone"
    );
}

/// The SHA of the reclamation script, as the crate sends it: read from the slow log (every
/// command logged) around one `reclaim` call.
fn reclaim_sha(server: &RedisServer) -> String {
    let mut raw = server.raw();
    let config = |raw: &mut redis::Connection, us: i64| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(us)
            .exec(raw)
            .unwrap();
    };
    config(&mut raw, 0);
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut raw).unwrap();
    let conn = server.connection();
    region(&conn, &unique("probe"), "p").reclaim().unwrap();
    let entries: Vec<(i64, i64, i64, Vec<String>)> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100)
        .query::<Vec<redis::Value>>(&mut raw)
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            redis::from_redis_value::<(i64, i64, i64, Vec<String>)>(e.clone())
                .ok()
                .or_else(|| {
                    redis::from_redis_value::<(i64, i64, i64, Vec<String>, String, String)>(e)
                        .ok()
                        .map(|(a, b, c, d, _, _)| (a, b, c, d))
                })
        })
        .collect();
    config(&mut raw, 10_000);
    entries
        .into_iter()
        .find_map(|(_, _, _, args)| {
            (args[0].eq_ignore_ascii_case("evalsha") && args.iter().any(|a| a.ends_with("#gc")))
                .then(|| args[1].clone())
        })
        .expect("the reclamation script in the slow log")
}

#[test]
fn a_memo_in_a_region_lives_and_dies_with_the_region() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("memo-in");
    let b = base(&root);
    let mut raw = server.raw();
    let reports = Region::builder("reports")
        .root(&root)
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .reclaim(Reclaim::Manual)
        .build();
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let total = reports
        .memo("total", move |(year, month): (u16, u8)| {
            counter.fetch_add(1, Ordering::SeqCst);
            u64::from(year) * 100 + u64::from(month)
        })
        .build();
    assert_eq!(total.call((2024, 5)).unwrap(), 202405);
    assert_eq!(total.call((2024, 5)).unwrap(), 202405);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = total.stats().unwrap();
    assert_eq!(
        (stats.hits, stats.misses, stats.refreshes),
        (1, 1, 1),
        "{stats:?}"
    );

    // The result is a field of the region's hash, which the memo's store gave the region's
    // TTL; it is not one of the region's keys.
    let hash = reports.key().unwrap().unwrap();
    let fields: Vec<Vec<u8>> = redis::cmd("HKEYS").arg(&hash).query(&mut raw).unwrap();
    assert_eq!(fields.len(), 1);
    assert!(
        std::str::from_utf8(&fields[0]).is_err(),
        "behind the memo header"
    );
    assert!(
        fields[0].ends_with(b"total.%E8%0F%05"),
        "{:?}",
        String::from_utf8_lossy(&fields[0])
    );
    let ms = pttl(&mut raw, &hash);
    assert!(ms > 50_000 && ms <= 60_000, "{ms}");
    reports.set("entry", &1u8).unwrap();
    assert_eq!(reports.len().unwrap(), 2);
    assert_eq!(
        reports.keys().map(Result::unwrap).collect::<Vec<_>>(),
        ["entry"]
    );
    // Every key of the memo is in the tree, one slot: the statistics next to the tree's hash.
    let keys = tree_keys(&mut raw, &root);
    assert!(keys.contains(&format!("{b}#memo:total.stats")), "{keys:?}");
    assert!(scan_keys(&mut raw, "*").iter().all(|k| k.starts_with(&b)));

    // Invalidated with the region: computed again, into the new generation.
    assert!(reports.invalidate().unwrap());
    assert_eq!(total.call((2024, 5)).unwrap(), 202405);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_ne!(reports.key().unwrap().unwrap(), hash);
    assert_eq!(reports.get::<u8>("entry").unwrap(), None);
    // Statistics belong to the function: they outlive the invalidation, and the memos of one
    // name in a tree share them.
    assert_eq!(total.stats().unwrap().misses, 2);
    let elsewhere = region(&conn, &root, "archive")
        .memo("total", |(y, m): (u16, u8)| u64::from(y) + u64::from(m))
        .build();
    assert_eq!(elsewhere.call((1, 2)).unwrap(), 3);
    assert_eq!(total.stats().unwrap().misses, 3);

    // forget, clear, and the arguments that take part in the key.
    assert!(total.forget((2024, 5)).unwrap());
    assert!(!total.forget((2024, 5)).unwrap());
    for m in 1..=3 {
        total.call((2025, m)).unwrap();
    }
    reports.set("entry", &2u8).unwrap();
    let other = reports.memo("other", |x: u8| x).build();
    other.call(1).unwrap();
    assert_eq!(total.clear().unwrap(), 3);
    assert_eq!(
        reports.len().unwrap(),
        2,
        "the entry and the other memo's result"
    );
    assert_eq!(other.call(1).unwrap(), 1);
    assert_eq!(reports.get::<u8>("entry").unwrap(), Some(2));

    // The memo's TTL is the region's, under its policy.
    let kept = Region::builder("kept")
        .root(&root)
        .connection(&conn)
        .ttl(Duration::from_millis(1500))
        .ttl_policy(TtlPolicy::Keep)
        .reclaim(Reclaim::Manual)
        .build();
    kept.set("first", &1u8).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let square = kept.memo("square", |x: u64| x * x).build();
    assert_eq!(square.call(4).unwrap(), 16);
    let left = pttl(&mut raw, &kept.key().unwrap().unwrap());
    assert!(
        left <= 1200,
        "the store kept the TTL set by the first write: {left}"
    );
    assert!(eventually(Duration::from_secs(3), || !kept
        .exists()
        .unwrap()));
}

#[test]
fn a_memo_in_a_region_computes_once_and_never_stores_across_an_invalidation() {
    let server = RedisServer::start();
    let conn = server.connection_with("pool_size=12");
    let root = unique("memo-flight");
    let mut raw = server.raw();
    let user = region(&conn, &root, "users.7");
    let calls = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(AtomicBool::new(false));
    let (counter, wait) = (calls.clone(), gate.clone());
    let orders = user
        .memo("orders", move |page: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            while !wait.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            vec![page; 3]
        })
        .lock_timeout(Duration::from_secs(30))
        .wait_timeout(Duration::from_secs(30))
        .build();

    // Eight callers miss at once: one computes, under a lock beside the region's hash; the
    // others wait for its result.
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let orders = orders.clone();
            std::thread::spawn(move || orders.call(1).unwrap())
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || {
        tree_keys(&mut raw, &root)
            .iter()
            .any(|k| k.contains("#lock:orders."))
    }));
    let lock = tree_keys(&mut raw, &root)
        .into_iter()
        .find(|k| k.contains("#lock:orders."))
        .unwrap();
    assert!(
        lock.starts_with(&hash_of(&mut raw, &root, "users.7")),
        "{lock}"
    );
    assert!(pttl(&mut raw, &lock) > 0, "the lock expires by itself");
    gate.store(true, Ordering::SeqCst);
    for c in callers {
        assert_eq!(c.join().unwrap(), vec![1, 1, 1]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "single flight");
    assert!(orders.stats().unwrap().waits >= 1);

    // A computation that started before an invalidation does not store its result after it:
    // its lock was in the retired generation.
    gate.store(false, Ordering::SeqCst);
    let slow = {
        let orders = orders.clone();
        std::thread::spawn(move || orders.call(2).unwrap())
    };
    assert!(eventually(Duration::from_secs(5), || calls
        .load(Ordering::SeqCst)
        == 2));
    assert!(region(&conn, &root, "users").invalidate().unwrap());
    gate.store(true, Ordering::SeqCst);
    assert_eq!(
        slow.join().unwrap(),
        vec![2, 2, 2],
        "returned to its caller"
    );
    assert_eq!(
        user.len().unwrap(),
        0,
        "but not stored in the new generation"
    );
    assert_eq!(orders.call(2).unwrap(), vec![2, 2, 2]);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "computed again");
    assert_eq!(user.len().unwrap(), 1);
}

#[test]
fn what_a_region_cannot_hold_for_a_memo_is_a_config_error() {
    let conn = Connection::open(&unique("unused"), "redis://127.0.0.1:1/0").unwrap();
    let r = region(&conn, "never", "r");
    let with_ttl = r.memo("f", |x: u8| x).ttl(Duration::from_secs(1)).build();
    let counter = Memo::builder("c", |x: u8| i64::from(x))
        .region(&r)
        .build_counter();
    let list = Memo::builder("l", |x: u8| vec![x]).region(&r).build_list();
    for err in [
        with_ttl.call(1).unwrap_err(),
        counter.call(1).unwrap_err(),
        list.call(1).unwrap_err(),
    ] {
        assert!(err.is_config(), "{err}");
    }
    assert!(
        with_ttl
            .call(1)
            .unwrap_err()
            .to_string()
            .contains("TTL on the region")
    );
}

#[test]
fn a_dict_view_reads_many_fields_and_pages_through_the_current_generation() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("many");
    let r = region(&conn, &root, "big");
    let view: DictCache<String, u32> = r.dict();
    view.extend((0..2500u32).map(|i| (format!("k{i}"), i)))
        .unwrap();
    // More fields than one command of the script takes: read in commands of 1,000.
    let keys: Vec<String> = (0..2600u32).map(|i| format!("k{i}")).collect();
    let got = view.get_many(keys.iter()).unwrap();
    assert_eq!(got.len(), 2600);
    assert!(
        got[..2500]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == Some(i as u32))
    );
    assert!(got[2500..].iter().all(Option::is_none));
    assert_eq!(view.iter().count(), 2500);
    assert!(view.pop_item().unwrap().is_some());
    assert_eq!(view.len().unwrap(), 2499);
    r.invalidate().unwrap();
    assert!(
        view.get_many(keys.iter())
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(view.iter().count(), 0);
    assert_eq!(view.pop_item().unwrap(), None);
    assert!(!view.clear().unwrap());
    assert_eq!(view.ttl().unwrap(), Ttl::Missing);
}

#[test]
fn out_of_memory_an_invalidation_is_refused_whole_and_reclamation_still_frees_memory() {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("oom");
    let b = base(&root);
    let mut raw = server.raw();
    let top = region(&conn, &root, "top");
    for i in 0..20 {
        top.region(&format!("l{i}")).set("k", &i).unwrap();
    }
    for i in 0..5 {
        top.region(&format!("c{i}.x")).set("k", &i).unwrap();
    }
    // A region whose children all have children of their own: reclaiming it starts with
    // growing the queue, and deletes nothing before.
    let deep = region(&conn, &root, "deep");
    for i in 0..3 {
        deep.region(&format!("c{i}.x")).set("k", &i).unwrap();
    }
    let kept = region(&conn, &root, "kept");
    kept.set("k", &1u8).unwrap();
    assert!(deep.invalidate().unwrap());
    let memory = |raw: &mut redis::Connection, bytes: u64| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .exec(raw)
            .unwrap();
    };
    memory(&mut raw, 1); // every write refused (noeviction)

    let err = kept.invalidate().unwrap_err();
    assert!(err.is_write_refused(), "{err:?}");
    assert_eq!(kept.get::<u8>("k").unwrap(), Some(1), "nothing changed");
    assert_eq!(queue(&mut raw, &b).len(), 1);
    assert!(kept.set("k", &2u8).unwrap_err().is_write_refused());

    // Nothing to delete before the queue must grow: the step changes nothing, and reclaim
    // returns instead of trying again and again.
    assert_eq!(deep.reclaim().unwrap(), 0);
    assert_eq!(queue(&mut raw, &b).len(), 1);

    // Memory back: the work goes on where it stopped.
    memory(&mut raw, 0);
    assert!(top.invalidate().unwrap());
    assert_eq!(top.reclaim().unwrap(), 3 + 25);
    assert!(queue(&mut raw, &b).is_empty());

    // A step that deletes hashes frees memory, and Redis then lets it queue what it found too
    // (it refuses only a script's first write): out of memory, reclamation still finishes.
    for i in 0..20 {
        top.region(&format!("l{i}")).set("k", &i).unwrap();
    }
    for i in 0..5 {
        top.region(&format!("c{i}.x")).set("k", &i).unwrap();
    }
    assert!(top.invalidate().unwrap());
    memory(&mut raw, 1);
    assert_eq!(top.reclaim().unwrap(), 25);
    assert!(queue(&mut raw, &b).is_empty());
    memory(&mut raw, 0);
    assert!(kept.invalidate().unwrap());
}
