//! The near cache: hits cost no command, writes are seen at once in this process and within
//! 100 ms in others, copies go with `FLUSHALL`, the TTL and the tracking connection, capacity
//! bounds them. Readers under faults are in `tests/near_cache_faults.rs`, regions in
//! `tests/near_cache_regions.rs`.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis_caches::memo::Memo;
use redis_caches::{
    Connection, CounterCache, DictCache, NearCache, RedisCache, Region, SetCache, SortedSetCache,
};
use support::near::{
    SEEN_WITHIN, assert_flushall_drops_every_copy, assert_the_copy_goes_at_the_ttl, kill_tracking,
    near, server_without_active_expiry, tracking_ids,
};
use support::{RedisServer, eventually, unique};

#[test]
fn a_hit_sends_no_command_for_any_cached_read() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let p = unique("hits");
    let cache: RedisCache<String> = RedisCache::builder([&p, "v"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let dict: DictCache<String, u32> = DictCache::builder([&p, "d"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let set: SetCache<String> = SetCache::builder([&p, "s"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let board: SortedSetCache<String> = SortedSetCache::builder([&p, "z"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let region: Region = Region::builder(&p)
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    cache.set("hello").unwrap();
    dict.set("ada", &36).unwrap();
    set.insert("x").unwrap();
    board.insert("ada", 1.5).unwrap();
    region.set("name", "Ada").unwrap();

    let read_all = || {
        assert_eq!(cache.get().unwrap().as_deref(), Some("hello"));
        assert_eq!(dict.get("ada").unwrap(), Some(36));
        assert_eq!(dict.get("nobody").unwrap(), None);
        assert!(dict.contains_key("ada").unwrap());
        assert_eq!(
            dict.get_many(["ada", "nobody"]).unwrap(),
            vec![Some(36), None]
        );
        assert!(set.contains("x").unwrap());
        assert!(!set.contains("y").unwrap());
        assert_eq!(board.score("ada").unwrap(), Some(1.5));
        assert_eq!(board.score("bob").unwrap(), None);
    };
    read_all(); // fills
    let before = near.stats();
    let sent = server.count_commands(read_all);
    assert!(sent.is_empty(), "hits sent commands: {sent:?}");
    let after = near.stats();
    assert_eq!(after.hits - before.hits, 10, "{after:?}");
    assert_eq!(after.misses, before.misses);

    // A region's entries, and a child region's, whatever the depth.
    let child = region.region("a.b");
    child.set("name", "Bob").unwrap();
    let region_read = || {
        assert_eq!(
            region.get::<String>("name").unwrap().as_deref(),
            Some("Ada")
        );
        assert!(region.contains_key("name").unwrap());
        assert_eq!(region.get::<String>("nobody").unwrap(), None);
        assert_eq!(child.get::<String>("name").unwrap().as_deref(), Some("Bob"));
        assert_eq!(region.region("a").get::<String>("name").unwrap(), None);
    };
    region_read();
    let before = near.stats();
    let sent = server.count_commands(region_read);
    assert!(sent.is_empty(), "region hits sent commands: {sent:?}");
    let after = near.stats();
    assert_eq!(after.hits - before.hits, 5, "{after:?}");
    assert_eq!(after.misses, before.misses);
    // Reads that go to Redis (counts, iteration, a read without the near cache) drop no copy.
    assert_eq!(region.len().unwrap(), 1);
    assert_eq!(region.keys().count(), 1);
    assert!(region.exists().unwrap());
    let bare = Region::builder(&p).connection(&conn).build();
    assert_eq!(bare.get::<String>("name").unwrap().as_deref(), Some("Ada"));
    let sent = server.count_commands(region_read);
    assert!(sent.is_empty(), "region hits sent commands: {sent:?}");
    // Nor does a write to another region once it has a generation: the tree is unchanged.
    let sibling = region.region("sibling");
    sibling.set("x", &1u8).unwrap();
    region_read();
    sibling.set("x", &2u8).unwrap();
    sibling.remove::<u8>("x").unwrap();
    let sent = server.count_commands(region_read);
    assert!(sent.is_empty(), "region hits sent commands: {sent:?}");
}

#[test]
fn memo_fresh_hits_send_no_command_and_stale_ones_go_to_redis() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let computed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = computed.clone();
    let square = Memo::builder(unique("square"), move |x: u64| {
        counter.fetch_add(1, Ordering::Relaxed);
        x * x
    })
    .connection(&conn)
    .ttl(Duration::from_millis(1500))
    .refresh(Duration::from_millis(500))
    .near_cache(near.clone())
    .build();
    assert_eq!(square.call(3).unwrap(), 9); // computed and stored
    let started = Instant::now();
    assert_eq!(square.call(3).unwrap(), 9); // read into the near cache
    let sent = server.count_commands(|| assert_eq!(square.call(3).unwrap(), 9));
    assert!(sent.is_empty(), "a fresh hit sent {sent:?}");
    assert_eq!(computed.load(Ordering::Relaxed), 1);
    assert!(square.stats().unwrap().hits >= 2);
    // Forgetting is seen at once.
    square.forget(3).unwrap();
    assert_eq!(square.call(3).unwrap(), 9);
    assert_eq!(computed.load(Ordering::Relaxed), 2);
    // Once stale (older than `refresh`), a call goes to Redis, which starts the refresh.
    let fresh_again = Instant::now();
    square.call(3).unwrap();
    std::thread::sleep(Duration::from_millis(600).saturating_sub(fresh_again.elapsed()));
    let sent = server.count_commands(|| assert_eq!(square.call(3).unwrap(), 9));
    assert!(sent.contains_key("evalsha"), "a stale call sent {sent:?}");
    assert!(
        eventually(Duration::from_secs(2), || computed.load(Ordering::Relaxed)
            == 3),
        "refreshed in the background"
    );
    let _ = started;
}

#[test]
fn without_a_near_cache_every_read_goes_to_redis() {
    let server = RedisServer::start();
    let conn = server.connection();
    let p = unique("plain");
    let cache: RedisCache<String> = RedisCache::builder([&p, "v"]).connection(&conn).build();
    let dict: DictCache<String, u32> = DictCache::builder([&p, "d"]).connection(&conn).build();
    cache.set("x").unwrap();
    cache.get().unwrap();
    dict.contains_key("a").unwrap();
    let sent = server.count_commands(|| {
        cache.get().unwrap();
        dict.contains_key("a").unwrap();
    });
    assert_eq!(sent.get("get"), Some(&1), "{sent:?}");
    assert_eq!(sent.get("hexists"), Some(&1), "{sent:?}");
    assert!(tracking_ids(&mut server.raw()).is_empty());
}

#[test]
fn a_write_through_the_crate_is_read_back_at_once() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let p = unique("rw");
    let cache: RedisCache<u64> = RedisCache::builder([&p, "v"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let dict: DictCache<String, u32> = DictCache::builder([&p, "d"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let set: SetCache<u8> = SetCache::builder([&p, "s"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let board: SortedSetCache<String> = SortedSetCache::builder([&p, "z"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let root: Region = Region::builder(&p)
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let child = root.region("child");
    // Another handle on the same connection, without a near cache, writes too.
    let other: DictCache<String, u32> = DictCache::builder([&p, "d"]).connection(&conn).build();
    for i in 0..20u32 {
        cache.set(&u64::from(i)).unwrap();
        assert_eq!(cache.get().unwrap(), Some(u64::from(i)));
        dict.insert("k", &i).unwrap();
        assert_eq!(dict.get("k").unwrap(), Some(i));
        other.set("k", &(i + 100)).unwrap();
        assert_eq!(dict.get("k").unwrap(), Some(i + 100));
        assert_eq!(dict.get_many(["k"]).unwrap(), vec![Some(i + 100)]);
        dict.remove("k").unwrap();
        assert!(!dict.contains_key("k").unwrap());
        set.insert(&1).unwrap();
        assert!(set.contains(&1).unwrap());
        set.remove(&1).unwrap();
        assert!(!set.contains(&1).unwrap());
        board.insert("a", f64::from(i)).unwrap();
        assert_eq!(board.score("a").unwrap(), Some(f64::from(i)));
        board.incr_score("a", 0.5).unwrap();
        assert_eq!(board.score("a").unwrap(), Some(f64::from(i) + 0.5));
        child.set("n", &i).unwrap();
        assert_eq!(child.get::<u32>("n").unwrap(), Some(i));
        assert_eq!(child.remove::<u32>("n").unwrap(), Some(i));
        assert_eq!(child.get::<u32>("n").unwrap(), None);
        child.transaction(|tx| tx.set("n", &(i + 1))).unwrap();
        assert_eq!(child.get::<u32>("n").unwrap(), Some(i + 1));
        assert!(child.contains_key("n").unwrap());
        root.invalidate().unwrap();
        assert_eq!(
            child.get::<u32>("n").unwrap(),
            None,
            "the subtree is gone at once"
        );
        child.set("n", &i).unwrap();
        assert_eq!(child.get::<u32>("n").unwrap(), Some(i));
        child.invalidate().unwrap();
        assert_eq!(child.get::<u32>("n").unwrap(), None);
        child.set("n", &i).unwrap();
        assert_eq!(child.get::<u32>("n").unwrap(), Some(i));
        assert!(child.clear().unwrap());
        assert_eq!(child.get::<u32>("n").unwrap(), None);
        cache.clear().unwrap();
        assert_eq!(cache.get().unwrap(), None);
    }
    // A script writing a key other than the one it is routed by (a set algebra's
    // destination).
    let a: SetCache<u8> = SetCache::builder([&p, "a"]).connection(&conn).build();
    let dest: SetCache<u8> = SetCache::builder([&p, "dest"])
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    for i in 0..20u8 {
        assert!(!dest.contains(&i).unwrap());
        a.insert(&i).unwrap();
        a.union_store([], &dest).unwrap();
        assert!(
            dest.contains(&i).unwrap(),
            "the destination's copy was dropped at once"
        );
    }
}

#[test]
fn a_write_by_another_client_is_seen_within_100_ms() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let key = unique("other");
    let cache: CounterCache<u64> = RedisCache::counter(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let mut raw = server.raw();
    for i in 1..=20u64 {
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut raw).unwrap();
        let written = Instant::now();
        assert!(
            eventually(SEEN_WITHIN, || cache.get().unwrap() == Some(i)),
            "write {i} not seen within 100 ms"
        );
        assert!(written.elapsed() <= SEEN_WITHIN);
        // Now cached: the next read is a hit.
        assert_eq!(cache.get().unwrap(), Some(i));
    }
    let s = near.stats();
    assert!(s.invalidations >= 19, "{s:?}");
    assert!(s.hits >= 20, "{s:?}");
}

#[test]
fn flushall_drops_every_copy() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let p = unique("flush");
    let handles: Vec<RedisCache<u32>> = (0..10)
        .map(|i| {
            RedisCache::builder([p.as_str(), &i.to_string()])
                .connection(&conn)
                .near_cache(near.clone())
                .build()
        })
        .collect();
    for (i, h) in handles.iter().enumerate() {
        h.set(&(i as u32)).unwrap();
        assert_eq!(h.get().unwrap(), Some(i as u32));
    }
    assert_flushall_drops_every_copy(&server, &near, || {
        handles.iter().all(|h| h.get().unwrap().is_none())
    });
}

#[test]
fn copies_never_outlive_the_ttl() {
    // The server's active expiry is off, so that it invalidates the expired key only when a
    // read touches it: the copy must go at the key's TTL by itself.
    let server = server_without_active_expiry();
    let conn = server.connection();
    let near = near();
    let key = unique("ttl");
    let cache: CounterCache<u64> = RedisCache::counter(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(7)
        .arg("PX")
        .arg(300)
        .query(&mut server.raw())
        .unwrap();
    let set_at = Instant::now();
    assert_eq!(cache.get().unwrap(), Some(7));
    assert_eq!(cache.get().unwrap(), Some(7));
    assert!(near.stats().hits >= 1);
    // The key expires at most 300 ms after `set_at` (the server set it before).
    assert_the_copy_goes_at_the_ttl(&near, set_at + Duration::from_millis(300), || {
        cache.get().unwrap()
    });
}

#[test]
fn the_dsn_option_gives_every_handle_a_near_cache() {
    let server = RedisServer::start();
    let conn = server.connection_with("near_cache=100");
    let near = conn
        .near_cache()
        .cloned()
        .expect("a near cache from the DSN");
    let cache: RedisCache<u8> = RedisCache::builder(unique("dsn").as_str())
        .connection(&conn)
        .build();
    cache.set(&1).unwrap();
    cache.get().unwrap();
    let sent = server.count_commands(|| assert_eq!(cache.get().unwrap(), Some(1)));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(near.stats().hits, 1);
    // A handle's own near cache wins over the connection's.
    let own = NearCache::with_capacity(10);
    let other: RedisCache<u8> = RedisCache::builder(unique("dsn").as_str())
        .connection(&conn)
        .near_cache(own.clone())
        .build();
    other.get().unwrap();
    other.get().unwrap();
    assert_eq!(own.stats().hits, 1);
    assert_eq!(near.stats().hits, 1);
}

#[test]
fn a_near_cache_over_tls_is_refused_before_anything_is_sent() {
    // The tracking connection is a plain socket: TLS is refused with a clear error, at
    // `Connection::open` for the DSN option.
    let e = Connection::open(&unique("tls"), "rediss://127.0.0.1:1/0?near_cache=100").unwrap_err();
    assert!(e.is_config(), "{e}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

/// A builder's near cache on a TLS connection: refused at the first read, before any I/O.
#[cfg(feature = "tls")]
#[test]
fn a_builders_near_cache_over_tls_is_refused_at_the_first_read() {
    let conn =
        Connection::open(&unique("tls"), "rediss://127.0.0.1:1/0?tls_insecure=true").unwrap();
    let cache: RedisCache<u8> = RedisCache::builder("k")
        .connection(&conn)
        .near_cache(near())
        .build();
    let e = cache.get().unwrap_err();
    assert!(e.is_config(), "{e}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[test]
fn without_client_tracking_reads_go_to_redis() {
    // A server that refuses the tracking connection's handshake (as Redis 5 would refuse
    // `HELLO 3` and `CLIENT TRACKING`): reads are still right, and none is served locally.
    let server = RedisServer::start_with(&["--rename-command", "CLIENT", ""]);
    let conn = server.connection();
    let near = near();
    let key = unique("old");
    let cache: CounterCache<u64> = RedisCache::counter(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let mut raw = server.raw();
    for i in 1..=5u64 {
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut raw).unwrap();
        assert_eq!(cache.get().unwrap(), Some(i));
        assert_eq!(cache.get().unwrap(), Some(i));
    }
    let s = near.stats();
    assert_eq!(s.hits, 0, "{s:?}");
    assert_eq!(s.entries, 0, "{s:?}");
}

#[test]
fn capacity_bounds_the_copies_and_evictions_are_counted() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = NearCache::with_capacity(100);
    let dict: DictCache<u32, u32> = DictCache::builder(unique("cap").as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    for i in 0..1000 {
        dict.get(&i).unwrap();
    }
    let s = near.stats();
    assert!(s.entries <= 110, "{s:?}");
    assert!(s.evictions >= 890, "{s:?}");
}

#[test]
fn killing_the_tracking_connection_drops_every_copy_until_tracking_is_back() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = near();
    let key = unique("kill");
    let cache: CounterCache<u64> = RedisCache::counter(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let mut raw = server.raw();
    let _: () = redis::cmd("SET").arg(&key).arg(1).query(&mut raw).unwrap();
    assert_eq!(cache.get().unwrap(), Some(1));
    assert_eq!(cache.get().unwrap(), Some(1));
    let flushes = near.stats().flushes;
    for round in 2..=4u64 {
        assert_eq!(kill_tracking(&mut raw), 1);
        // Written while no tracking connection is up: nobody is told.
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(round)
            .query(&mut raw)
            .unwrap();
        assert!(
            eventually(SEEN_WITHIN, || cache.get().unwrap() == Some(round)),
            "a copy survived the death of its tracking connection"
        );
        // The next read reopened tracking, and hits again.
        let hits = near.stats().hits;
        assert!(eventually(Duration::from_millis(500), || {
            cache.get().unwrap();
            near.stats().hits > hits
        }));
    }
    assert!(near.stats().flushes >= flushes + 3);
}

#[test]
fn redirect_tracking_dies_with_the_data_connection_that_read() {
    // Why the crate does not use REDIRECT from pooled connections: once the connection that
    // read a key is gone, its writes are never invalidated, even though the connection the
    // invalidations were redirected to is alive.
    let server = RedisServer::start();
    let mut listener = server.raw();
    let id: u64 = redis::cmd("CLIENT").arg("ID").query(&mut listener).unwrap();
    let mut pubsub = listener.as_pubsub();
    pubsub.subscribe("__redis__:invalidate").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut data = server.raw();
    let _: () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("REDIRECT")
        .arg(id)
        .query(&mut data)
        .unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut data).unwrap();
    let mut writer = server.raw();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg(1)
        .query(&mut writer)
        .unwrap();
    assert!(
        pubsub.get_message().is_ok(),
        "invalidated while the reader lives"
    );
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut data).unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut writer)
        .unwrap();
    let mut writer = server.raw();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg(2)
        .query(&mut writer)
        .unwrap();
    assert!(
        pubsub.get_message().is_err(),
        "no invalidation once the reading connection is gone"
    );
}

#[test]
fn a_byte_capacity_bounds_the_copies() {
    let server = RedisServer::start();
    let conn = server.connection();
    let near = NearCache::with_max_bytes(50_000);
    let dict: DictCache<u32, String> = DictCache::builder(unique("bytes").as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let value = "v".repeat(1000);
    dict.extend((0..500u32).map(|i| (i, value.as_str())))
        .unwrap();
    for i in 0..500u32 {
        assert_eq!(dict.get(&i).unwrap().as_deref(), Some(value.as_str()));
    }
    let s = near.stats();
    // Each copy weighs its 1 KB value, its key and a fixed overhead.
    assert!(s.entries <= 50, "{s:?}");
    assert!(s.evictions >= 450, "{s:?}");
    assert!(s.memory <= 2 * 50_000, "{s:?}");
}
