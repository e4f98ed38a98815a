//! The near cache of regions: `Region::get`/`contains_key`, a region's `dict` view and fresh
//! hits of memos in a region are copies that depend on every key the region read declares
//! (the region's hash, the tree's hash, the maps), dropped by any change to them, by this
//! process or another. The stress tests of regions (readers never go backwards) are with the
//! others in `tests/near_cache.rs`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis_caches::{NearCache, Region};
use support::cluster::ClusterHarness;
use support::near::{
    SEEN_WITHIN, assert_flushall_drops_every_copy, assert_the_copy_goes_at_the_ttl, near,
    server_without_active_expiry, tree_region,
};
use support::{RedisServer, eventually, unique};

/// Runs `f` and returns the commands the server ran meanwhile.
fn commands(server: &RedisServer, f: impl FnOnce()) -> HashMap<String, u64> {
    server.count_commands(f)
}

/// Sends `words` as one command on a raw RESP3 connection.
fn send_words(stream: &mut std::net::TcpStream, words: &[&str]) {
    use std::io::Write;
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    stream.write_all(&out).unwrap();
}

#[test]
fn keys_read_inside_a_script_are_tracked_for_the_client_that_ran_it() {
    // What the near cache of regions relies on: in the default tracking mode, the server
    // remembers the keys a script reads for the client that sent the script, and sends that
    // client their invalidations (on Redis 6.2, 7.0 and Valkey alike: run it with each as
    // REDIS_CACHES_SERVER).
    let server = RedisServer::start();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut parser = redis::Parser::new();
    let mut next = |stream: &mut std::net::TcpStream| parser.parse_value(stream);
    send_words(&mut stream, &["HELLO", "3"]);
    next(&mut stream).unwrap();
    send_words(&mut stream, &["CLIENT", "TRACKING", "ON"]);
    assert_eq!(next(&mut stream).unwrap(), redis::Value::Okay);
    let script = "return {redis.call('HGET', KEYS[1], 'f'), redis.call('GET', KEYS[2]), \
                  redis.call('HGET', KEYS[3], 'g')}";
    send_words(
        &mut stream,
        &["EVAL", script, "3", "{t}map", "{t}tree", "{t}absent"],
    );
    assert!(matches!(next(&mut stream).unwrap(), redis::Value::Array(_)));
    let mut writer = server.raw();
    let invalidated = |stream: &mut std::net::TcpStream,
                       next: &mut dyn FnMut(
        &mut std::net::TcpStream,
    ) -> redis::RedisResult<redis::Value>| {
        match next(stream) {
            Ok(redis::Value::Push { kind, data }) => {
                assert_eq!(kind, redis::PushKind::Invalidate);
                match data.into_iter().next() {
                    Some(redis::Value::Array(keys)) => keys
                        .into_iter()
                        .map(|k| match k {
                            redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
                            other => panic!("{other:?}"),
                        })
                        .collect::<Vec<_>>(),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("no invalidation: {other:?}"),
        }
    };
    for key in ["{t}map", "{t}tree", "{t}absent"] {
        let _: () = redis::cmd("HSET")
            .arg(format!("{key}x"))
            .arg("f")
            .arg(1)
            .query(&mut writer)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(key)
            .arg("f")
            .arg(1)
            .query(&mut writer)
            .unwrap();
        assert_eq!(
            invalidated(&mut stream, &mut next),
            [key],
            "a key the script read, even one missing then"
        );
    }
    // A key the script did not read is not tracked: nothing more arrives.
    assert!(next(&mut stream).is_err(), "only the keys the script read");
}

#[test]
fn region_copies_are_dropped_by_every_change_another_process_makes() {
    let server = RedisServer::start();
    // The reader and, on a connection of its own (its own pool, no near cache), "another
    // process".
    let (conn, other) = (server.connection(), server.connection());
    let near = near();
    let tree = unique("tree");
    let reader = tree_region(&tree, "a.b", &conn, Some(&near));
    let writer = |name: &str| tree_region(&tree, name, &other, None);
    let w = writer("a.b");
    // Once the change's invalidation is in, within 100 ms, the read sees `want`, and the one
    // after is a hit (no command). (Waiting for the invalidation: a change that leaves the
    // entry as it was could otherwise be read from the copy it is about to drop.)
    let invalidations = std::cell::Cell::new(0);
    let sees = |want: Option<u32>, what: &str| {
        let changed = Instant::now();
        assert!(
            eventually(SEEN_WITHIN, || near.stats().invalidations
                > invalidations.get()
                && reader.get::<u32>("k").unwrap() == want),
            "{what}: {want:?} not seen within 100 ms"
        );
        assert!(changed.elapsed() <= SEEN_WITHIN, "{what}");
        let hits = near.stats().hits;
        let sent = commands(&server, || {
            assert_eq!(reader.get::<u32>("k").unwrap(), want, "{what}")
        });
        assert!(sent.is_empty(), "{what}: the next read sent {sent:?}");
        assert_eq!(near.stats().hits, hits + 1, "{what}");
        invalidations.set(near.stats().invalidations);
    };
    assert_eq!(reader.get::<u32>("k").unwrap(), None, "nothing written yet");
    invalidations.set(near.stats().invalidations);
    w.set("k", &1u32).unwrap();
    sees(Some(1), "the region's first write (a new generation)");
    w.set("k", &2u32).unwrap();
    sees(Some(2), "a write to the entry");
    w.set("other", &9u32).unwrap();
    sees(Some(2), "a write to another entry of the region");
    w.invalidate().unwrap();
    sees(None, "the region invalidated");
    w.set("k", &3u32).unwrap();
    sees(Some(3), "written again");
    writer("a").invalidate().unwrap();
    sees(None, "its parent invalidated");
    w.set("k", &4u32).unwrap();
    sees(Some(4), "written again");
    writer("").invalidate().unwrap();
    sees(None, "the root region invalidated");
    w.set("k", &5u32).unwrap();
    sees(Some(5), "written again");
    writer("a.b.c").set("k", &6u32).unwrap();
    sees(Some(5), "a child written");
    // A write by any client, such as redis-cli, to the hash it found.
    let hash = w.key().unwrap().unwrap();
    let _: () = redis::cmd("HDEL")
        .arg(&hash)
        .arg("k")
        .query(&mut server.raw())
        .unwrap();
    sees(None, "the field deleted by another client");
    let s = near.stats();
    assert!(s.invalidations >= 10, "{s:?}");
}

#[test]
fn region_copies_go_with_flushall() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let tree = unique("tree");
    let regions: Vec<Region> = (0..5)
        .map(|i| tree_region(&tree, &format!("r{i}.c"), &conn, Some(&near)))
        .collect();
    for (i, r) in regions.iter().enumerate() {
        r.set("k", &(i as u32)).unwrap();
        assert_eq!(r.get::<u32>("k").unwrap(), Some(i as u32));
        assert_eq!(r.get::<u32>("k").unwrap(), Some(i as u32));
    }
    assert!(near.stats().hits >= 5);
    assert_flushall_drops_every_copy(&server, &near, || {
        regions.iter().all(|r| r.get::<u32>("k").unwrap().is_none())
    });
}

#[test]
fn region_copies_never_outlive_the_regions_ttl() {
    // As `copies_never_outlive_the_ttl`: without active expiry the server invalidates the
    // hash only when a read touches it, so the copy must go at the hash's TTL by itself.
    let server = server_without_active_expiry();
    let (conn, other) = (server.connection(), server.connection());
    let near = near();
    let tree = unique("tree");
    let parent = tree_region(&tree, "a", &conn, Some(&near));
    // A child with a TTL of its own, written by another process.
    let writer = tree_region(&tree, "a", &other, None)
        .region_builder("b")
        .ttl(Duration::from_millis(300))
        .build();
    let child = parent.region("b");
    parent.set("k", &1u32).unwrap();
    writer.set("k", &7u32).unwrap();
    // The TTL ran from when Redis ran the write, before its reply arrived: the hash is gone
    // 300 ms after this at the latest (it may still be there a little before; measured from
    // before the write was sent, a slow reply on a loaded machine failed the test).
    let set_at = Instant::now();
    assert_eq!(child.get::<u32>("k").unwrap(), Some(7));
    assert_eq!(child.get::<u32>("k").unwrap(), Some(7));
    assert!(near.stats().hits >= 1);
    assert_the_copy_goes_at_the_ttl(&near, set_at + Duration::from_millis(300), || {
        child.get::<u32>("k").unwrap()
    });
    // The parent, without a TTL, is still there, and its copy with it.
    assert_eq!(parent.get::<u32>("k").unwrap(), Some(1));
}

#[test]
fn a_regions_dsn_near_cache_and_its_childrens_inherited_one() {
    let server = RedisServer::start();
    let tree = unique("tree");
    // The DSN option applies to regions as to every handle.
    let conn = server.connection_with("near_cache=100");
    let r = tree_region(&tree, "a", &conn, None);
    r.set("k", &1u8).unwrap();
    r.get::<u8>("k").unwrap();
    let sent = commands(&server, || assert_eq!(r.get::<u8>("k").unwrap(), Some(1)));
    assert!(sent.is_empty(), "{sent:?}");
    // A child inherits its parent's near cache.
    let near = near();
    let plain = server.connection();
    let parent = tree_region(&tree, "p", &plain, Some(&near));
    let child = parent.region("c");
    child.set("k", &2u8).unwrap();
    child.get::<u8>("k").unwrap();
    let sent = commands(&server, || {
        assert_eq!(child.get::<u8>("k").unwrap(), Some(2))
    });
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(near.stats().hits, 1);
    // Without one, every read goes to Redis: the generations of the tree, of `p` and of
    // `c`, and the entry, pipelined (a handle that knows the region's path reads with plain
    // commands; this one learned it from the others, in this process).
    let bare = tree_region(&tree, "p.c", &plain, None);
    let sent = commands(&server, || {
        assert_eq!(bare.get::<u8>("k").unwrap(), Some(2))
    });
    assert_eq!(sent.get("hget"), Some(&4), "{sent:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[test]
fn memos_in_a_region_hit_without_a_command_until_the_region_changes() {
    let server = RedisServer::start();
    let (conn, other) = (server.connection(), server.connection());
    let near = near();
    let tree = unique("tree");
    let region = tree_region(&tree, "reports.2024", &conn, Some(&near));
    let computed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = computed.clone();
    // The region's near cache is the memo's.
    let square = region
        .memo("square", move |x: u64| {
            counter.fetch_add(1, Ordering::Relaxed);
            x * x
        })
        .build();
    let computations = || computed.load(Ordering::Relaxed);
    assert_eq!(square.call(3).unwrap(), 9); // computed and stored
    assert_eq!(square.call(3).unwrap(), 9); // read into the near cache
    let sent = commands(&server, || assert_eq!(square.call(3).unwrap(), 9));
    assert!(sent.is_empty(), "a fresh hit sent {sent:?}");
    assert_eq!(computations(), 1);
    assert!(square.stats().unwrap().hits >= 2);
    // Forgetting is seen at once.
    square.forget(3).unwrap();
    assert_eq!(square.call(3).unwrap(), 9);
    assert_eq!(computations(), 2);
    square.call(3).unwrap();
    let sent = commands(&server, || assert_eq!(square.call(3).unwrap(), 9));
    assert!(sent.is_empty(), "a fresh hit sent {sent:?}");
    // Another process invalidates the region's parent: the next calls compute again.
    tree_region(&tree, "reports", &other, None)
        .invalidate()
        .unwrap();
    assert!(
        eventually(SEEN_WITHIN, || {
            square.call(3).unwrap();
            computations() == 3
        }),
        "the invalidation was not seen within 100 ms"
    );
    square.call(3).unwrap();
    let sent = commands(&server, || assert_eq!(square.call(3).unwrap(), 9));
    assert!(sent.is_empty(), "a fresh hit sent {sent:?}");
    assert_eq!(computations(), 3);
    // Without a near cache, every call is a script.
    let plain = tree_region(&tree, "reports.2024", &other, None)
        .memo("square", |x: u64| x * x)
        .build();
    plain.call(3).unwrap();
    let sent = commands(&server, || assert_eq!(plain.call(3).unwrap(), 9));
    assert_eq!(sent.get("evalsha"), Some(&1), "{sent:?}");
}

#[test]
fn region_copies_on_a_cluster_hit_and_are_dropped_by_another_process() {
    let cluster = ClusterHarness::start();
    let (conn, other) = (cluster.connection(), cluster.connection());
    let near = near();
    let tree = unique("tree");
    let reader = tree_region(&tree, "a.b", &conn, Some(&near));
    let writer = |name: &str| tree_region(&tree, name, &other, None);
    writer("a.b").set("k", &1u32).unwrap();
    assert_eq!(reader.get::<u32>("k").unwrap(), Some(1));
    let hits = near.stats().hits;
    assert_eq!(reader.get::<u32>("k").unwrap(), Some(1));
    assert_eq!(near.stats().hits, hits + 1, "a hit on the node of the tree");
    writer("a").invalidate().unwrap();
    assert!(
        eventually(SEEN_WITHIN, || reader.get::<u32>("k").unwrap().is_none()),
        "the parent's invalidation was not seen within 100 ms"
    );
    writer("a.b").set("k", &2u32).unwrap();
    assert!(
        eventually(SEEN_WITHIN, || reader.get::<u32>("k").unwrap() == Some(2)),
        "the new write was not seen within 100 ms"
    );
}

/// This process's write is read back at once even when a read through the pool (`len`, the
/// proxy script) was the first to learn that another process made a new generation of the
/// region: the copy read from the old generation is not used again. (A review found 166 of
/// 200 read-backs stale before the path change fenced the old path's keys.)
#[test]
fn an_own_write_after_a_pool_read_learned_a_new_generation_is_read_back() {
    let server = RedisServer::start();
    let (conn, other) = (server.connection(), server.connection());
    let near = NearCache::with_capacity(10_000);
    let tree = unique("tree");
    let r = tree_region(&tree, "a.b", &conn, Some(&near));
    let w = tree_region(&tree, "a.b", &other, None);
    let m = r.memo("id", |x: u64| x).build();
    for i in 0..50u32 {
        let old = i * 10;
        // Copies of an entry and of a result, read after both writes (each write to the
        // region's hash, the memo's store included, drops every copy of the region).
        w.set("k", &old).unwrap();
        m.set(1, &u64::from(old)).unwrap();
        assert!(eventually(Duration::from_millis(500), || r
            .get::<u32>("k")
            .unwrap()
            == Some(old)));
        assert_eq!(m.call(1).unwrap(), u64::from(old));
        let sent = server.count_commands(|| {
            assert_eq!(r.get::<u32>("k").unwrap(), Some(old));
            assert_eq!(m.call(1).unwrap(), u64::from(old));
        });
        assert!(sent.is_empty(), "both copies: {sent:?}");
        // Another process: a new generation of the region.
        w.invalidate().unwrap();
        w.set("other", &1u32).unwrap();
        // This process: a read through the pool, then writes, then their read-back.
        r.len().unwrap();
        r.set("k", &(old + 1)).unwrap();
        assert_eq!(r.get::<u32>("k").unwrap(), Some(old + 1), "round {i}");
        m.set(1, &u64::from(old + 1)).unwrap();
        assert_eq!(m.call(1).unwrap(), u64::from(old + 1), "memo, round {i}");
    }
}

/// Invalidating a region in this process drops the copies of that subtree only: a copy of
/// another region of the tree stays usable (no command), as it does in other processes.
#[test]
fn an_own_invalidation_keeps_the_copies_of_other_regions() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = NearCache::with_capacity(10_000);
    let tree = unique("tree");
    let x = tree_region(&tree, "x", &conn, Some(&near));
    let yz = tree_region(&tree, "y.z", &conn, Some(&near));
    let yzw = tree_region(&tree, "y.z.w", &conn, Some(&near));
    x.set("k", &1u32).unwrap();
    yz.set("k", &2u32).unwrap();
    yzw.set("k", &3u32).unwrap();
    for r in [&x, &yz, &yzw] {
        r.get::<u32>("k").unwrap();
    }
    let sent = server.count_commands(|| {
        assert_eq!(x.get::<u32>("k").unwrap(), Some(1));
        assert_eq!(yzw.get::<u32>("k").unwrap(), Some(3));
    });
    assert!(sent.is_empty(), "copies: {sent:?}");
    assert!(yz.invalidate().unwrap());
    let sent = server.count_commands(|| assert_eq!(x.get::<u32>("k").unwrap(), Some(1)));
    assert!(sent.is_empty(), "x is not below y.z: {sent:?}");
    // The invalidated region and the one below it are read from Redis at once: gone.
    assert_eq!(yz.get::<u32>("k").unwrap(), None);
    assert_eq!(yzw.get::<u32>("k").unwrap(), None);
}

/// A region's `dict` view shares the region's near cache: `get` and `contains_key` are
/// copies, and a write through the view or the region is read back at once.
#[test]
fn a_regions_dict_view_reads_from_the_near_cache() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = NearCache::with_capacity(1_000);
    let r = tree_region(&unique("tree"), "users.ada", &conn, Some(&near));
    r.set("age", &36u32).unwrap();
    let ages: redis_caches::DictCache<String, u32> = r.dict();
    assert_eq!(ages.get("age").unwrap(), Some(36));
    assert!(ages.contains_key("age").unwrap());
    assert!(!ages.contains_key("height").unwrap());
    let sent = server.count_commands(|| {
        assert_eq!(ages.get("age").unwrap(), Some(36));
        assert!(ages.contains_key("age").unwrap());
        assert!(!ages.contains_key("height").unwrap());
    });
    assert!(sent.is_empty(), "copies: {sent:?}");
    ages.insert("age", &37).unwrap();
    assert_eq!(ages.get("age").unwrap(), Some(37));
    r.set("age", &38u32).unwrap();
    assert_eq!(ages.get("age").unwrap(), Some(38));
}

/// A lookup of a region's key (`Region::key`) reads none of its entries and writes none:
/// this process's copies stay usable. A memo's read through the pool (`call_many`) reads the
/// region's hash, so copies read before it are not used after it (none of them can be older
/// than what it returned), and a memo's store writes the hash.
#[test]
fn a_region_lookup_keeps_the_copies_a_memos_pool_read_and_store_drop_them() {
    let server = RedisServer::start();
    let (conn, other) = (server.connection(), server.connection());
    let near = NearCache::with_capacity(10_000);
    let tree = unique("tree");
    let r = tree_region(&tree, "a", &conn, Some(&near));
    r.set("k", &1u32).unwrap();
    // Results stored by another process: fresh in Redis, no copy here yet.
    let o = tree_region(&tree, "a", &other, None)
        .memo("sq", |x: u64| x * x)
        .build();
    o.call_many([1, 2, 3]).unwrap();
    let m = r.memo("sq", |x: u64| x * x).without_stats().build();
    r.get::<u32>("k").unwrap();
    let read_k = || server.count_commands(|| assert_eq!(r.get::<u32>("k").unwrap(), Some(1)));
    assert!(read_k().is_empty(), "a copy");
    r.key().unwrap();
    let sent = read_k();
    assert!(sent.is_empty(), "after key(): {sent:?}");
    assert_eq!(m.call_many([1, 2, 3]).unwrap(), [1, 4, 9]);
    assert_eq!(
        read_k().get("evalsha"),
        Some(&1),
        "read again after call_many"
    );
    assert!(read_k().is_empty(), "a copy again");
    m.set(4, &16).unwrap();
    assert_eq!(
        read_k().get("evalsha"),
        Some(&1),
        "read again after a store"
    );
}
