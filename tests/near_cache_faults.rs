//! The near cache under faults: a writer process against reader threads reading through one
//! near cache, and no reader ever sees a value go backwards (every reader sees the last write
//! within 100 ms), while the tracking or data connections are killed, the server restarts,
//! `FLUSHALL` runs or the tracking table is tiny; on Redis Cluster (failover, slot moves) and
//! Sentinel (failover) too. The races behind them, replayed step by step through a proxy.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_caches::{Connection, CounterCache, NearCache, RedisCache, Region};
use support::cluster::ClusterHarness;
use support::near::{SEEN_WITHIN, kill_tracking, near};
use support::proxy::Proxy;
use support::redis_sentinel::SentinelHarness;
use support::{RedisServer, child_process, eventually, is_child, unique, wait_child};

/// The child entry point: writes increasing numbers to `NC_KEYS` keys as fast as it can for
/// `NC_MS` milliseconds, then the time of its last write to `<prefix>.done`.
#[test]
#[ignore = "child process entry point: the writer of the near-cache stress tests"]
fn writer_process() {
    if !is_child() {
        return;
    }
    let var = |name: &str| std::env::var(name).expect(name);
    let conn = Connection::open(&unique("writer"), &var("NC_URL")).unwrap();
    let prefix = var("NC_PREFIX");
    let keys: usize = var("NC_KEYS").parse().unwrap();
    let run = Duration::from_millis(var("NC_MS").parse().unwrap());
    let flush_at = std::env::var("NC_FLUSH_AT_MS")
        .ok()
        .map(|ms| Duration::from_millis(ms.parse().unwrap()));
    let handles: Vec<CounterCache<u64>> = (0..keys)
        .map(|i| {
            RedisCache::counter([prefix.as_str(), &i.to_string()])
                .connection(&conn)
                .build()
        })
        .collect();
    // With NC_REGION: entries of the region `p.c` of the tree rooted at the prefix instead,
    // `p` invalidated every 200 writes.
    let region = std::env::var("NC_REGION").is_ok();
    let parent: Region = Region::builder("p").root(&prefix).connection(&conn).build();
    let child = parent.region("c");
    let write = |i: usize, n: u64| {
        if region {
            child.set(&i.to_string(), &n).map(|_| ())
        } else {
            handles[i].set(&n)
        }
    };
    let start = Instant::now();
    let give_up = run + Duration::from_secs(20);
    let mut flushed = false;
    let mut n = 0u64;
    let retry = |f: &dyn Fn() -> redis_caches::Result<()>| {
        while let Err(e) = f() {
            assert!(start.elapsed() < give_up, "the writer gave up: {e}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    while start.elapsed() < run {
        n += 1;
        retry(&|| write(n as usize % keys, n));
        if region && n.is_multiple_of(200) {
            retry(&|| parent.invalidate().map(|_| ()));
        }
        if !flushed && flush_at.is_some_and(|at| start.elapsed() >= at) {
            flushed = true;
            retry(&|| {
                let mut c = conn.get()?;
                redis::cmd("FLUSHALL")
                    .exec(&mut *c)
                    .map_err(|e| redis_caches::Error::Redis {
                        target: "flushall".into(),
                        source: e,
                    })
            });
        }
    }
    // Every key's final value is written after the last invalidation.
    for i in 0..keys {
        n += 1;
        retry(&|| write(i, n));
    }
    let done_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let done: CounterCache<u64> = RedisCache::counter([prefix.as_str(), "done"])
        .connection(&conn)
        .build();
    retry(&|| done.set(&done_ms));
    eprintln!("writer: {n} writes");
}

/// One reader thread's view of a key: the highest value seen, and when it first saw it.
#[derive(Clone, Copy, Default)]
struct Seen {
    value: u64,
    at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Stress {
    url: String,
    keys: usize,
    run: Duration,
    flush_at: Option<Duration>,
    /// Entries of a region whose parent the writer invalidates now and then, instead of keys.
    region: bool,
}

/// Reads one key of a stress test.
type Reader = Arc<dyn Fn() -> redis_caches::Result<Option<u64>> + Send + Sync>;

/// Runs the writer process against 4 reader threads reading through one near cache, calling
/// `fault(elapsed)` about every 10 ms meanwhile; then checks that no reader ever saw a value
/// go backwards and every reader saw every key's final value within 100 ms of the last
/// write. Returns the near cache's statistics.
fn stress(s: Stress, mut fault: impl FnMut(Duration)) -> redis_caches::NearCacheStats {
    // One at a time: each runs a writer process and four readers, and the 100 ms bound is
    // about the near cache, not about how many of them share two cores.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let prefix = unique("stress");
    let conn = Connection::open(&unique("readers"), &s.url).unwrap();
    let near = NearCache::with_capacity(10_000);
    let child: Region = Region::builder("p.c")
        .root(&prefix)
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    let handles: Vec<Reader> = (0..s.keys)
        .map(|i| -> Reader {
            if s.region {
                let child = child.clone();
                Arc::new(move || child.get(&i.to_string()))
            } else {
                let h: CounterCache<u64> = RedisCache::counter([prefix.as_str(), &i.to_string()])
                    .connection(&conn)
                    .near_cache(near.clone())
                    .build();
                Arc::new(move || h.get())
            }
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let handles = handles.clone();
            let stop = stop.clone();
            let violations = violations.clone();
            std::thread::spawn(move || {
                let mut seen = vec![Seen::default(); handles.len()];
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (k, h) in handles.iter().enumerate() {
                        match h() {
                            Ok(Some(v)) if v < seen[k].value => {
                                violations.lock().unwrap().push(format!(
                                    "reader {r}: key {k} went back from {} to {v}",
                                    seen[k].value
                                ));
                            }
                            Ok(Some(v)) if v > seen[k].value => {
                                seen[k] = Seen {
                                    value: v,
                                    at_ms: now_ms(),
                                }
                            }
                            Ok(_) => {}
                            Err(_) => {
                                errors += 1;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    // A short pause between rounds: readers that spin would starve the
                    // writer and the tracking connection's reader on a small machine.
                    std::thread::sleep(Duration::from_micros(200));
                }
                (seen, errors)
            })
        })
        .collect();
    let mut env = vec![
        ("NC_URL", s.url.clone()),
        ("NC_PREFIX", prefix.clone()),
        ("NC_KEYS", s.keys.to_string()),
        ("NC_MS", s.run.as_millis().to_string()),
    ];
    if let Some(at) = s.flush_at {
        env.push(("NC_FLUSH_AT_MS", at.as_millis().to_string()));
    }
    if s.region {
        env.push(("NC_REGION", "1".into()));
    }
    let mut writer = child_process("writer_process", &env);
    let start = Instant::now();
    loop {
        if writer.try_wait().unwrap().is_some() {
            break;
        }
        fault(start.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_child(writer);
    // The final values and the time of the last write, read without a near cache.
    let plain = Connection::open(&unique("check"), &s.url).unwrap();
    let read = |part: &str| -> u64 {
        let h: CounterCache<u64> = RedisCache::counter([prefix.as_str(), part])
            .connection(&plain)
            .build();
        h.get().unwrap().unwrap_or(0)
    };
    let plain_child: Region = Region::builder("p.c")
        .root(&prefix)
        .connection(&plain)
        .build();
    let done_ms = read("done");
    let finals: Vec<u64> = (0..s.keys)
        .map(|k| match s.region {
            true => plain_child.get(&k.to_string()).unwrap().unwrap_or(0),
            false => read(&k.to_string()),
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let views: Vec<(Vec<Seen>, u64)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{:?}",
        &violations[..violations.len().min(10)]
    );
    for (r, (seen, _errors)) in views.iter().enumerate() {
        for (k, final_value) in finals.iter().enumerate() {
            assert_eq!(
                seen[k].value, *final_value,
                "reader {r} never saw key {k}'s final value"
            );
            let late = seen[k].at_ms.saturating_sub(done_ms);
            assert!(
                late <= SEEN_WITHIN.as_millis() as u64,
                "reader {r} saw key {k}'s final value {late} ms after the last write"
            );
        }
    }
    let stats = near.stats();
    eprintln!("{stats:?}");
    assert!(stats.hits > 0, "{stats:?}");
    stats
}

fn run(url: String) -> Stress {
    Stress {
        url,
        keys: 16,
        run: Duration::from_millis(1500),
        flush_at: None,
        region: false,
    }
}

#[test]
fn readers_never_go_backwards_while_another_process_writes() {
    let server = RedisServer::start();
    let stats = stress(run(server.url()), |_| {});
    assert!(stats.invalidations > 0, "{stats:?}");
}

#[test]
fn region_readers_never_go_backwards_while_another_process_writes_and_invalidates() {
    let server = RedisServer::start();
    let stats = stress(
        Stress {
            region: true,
            ..run(server.url())
        },
        |_| {},
    );
    assert!(stats.invalidations > 0, "{stats:?}");
}

#[test]
fn readers_never_go_backwards_while_the_tracking_connection_is_killed() {
    let server = RedisServer::start();
    let mut raw = server.raw();
    let mut killed = 0;
    let mut next = Duration::from_millis(200);
    let stats = stress(run(server.url()), |t| {
        if t >= next && killed < 5 {
            killed += kill_tracking(&mut raw);
            next += Duration::from_millis(200);
        }
    });
    assert!(killed >= 3, "killed {killed} tracking connections");
    assert!(stats.flushes >= 3, "{stats:?}");
}

#[test]
fn readers_never_go_backwards_while_data_connections_are_killed() {
    let server = RedisServer::start();
    let mut raw = server.raw();
    let mut kills = 0;
    let mut next = Duration::from_millis(200);
    let stats = stress(run(server.url()), |t| {
        if t >= next && kills < 5 {
            let _: redis::RedisResult<u64> = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query(&mut raw);
            kills += 1;
            next += Duration::from_millis(200);
        }
    });
    assert!(kills >= 3);
    // The tracking connection is a normal client too: it died with the others.
    assert!(stats.flushes >= 3, "{stats:?}");
}

/// The race behind `readers_never_go_backwards_while_data_connections_are_killed`'s rare
/// failures, in order, through a proxy that holds traffic: a read finds no tracking
/// connection and goes to the pool; a new tracking connection comes up and another read fills
/// a copy through it; the key changes; the pool's read returns the new value while the copy's
/// invalidation is still on its way. The next read must not go back to the copy.
///
/// `reader` builds the handle that reads through the near cache on a connection; `write`
/// sets the value through another connection (straight to the server).
fn pool_read_then_older_copy<R>(
    reader: impl Fn(&Connection, &NearCache, &str) -> R,
    read: impl Fn(&R) -> Option<u64> + Send + Sync + 'static,
    write: impl Fn(&Connection, &str, u64),
) where
    R: Send + Sync + 'static,
{
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port());
    let conn = Connection::open(
        &unique("proxied"),
        &proxy.url_with("timeout=5s&connect_timeout=5s"),
    )
    .unwrap();
    let direct = server.connection();
    let near = near();
    let key = unique("fallback");
    let read = Arc::new(read);
    let handle = Arc::new(reader(&conn, &near, &key));
    write(&direct, &key, 1);

    // No tracking connection can open: the read goes to the pool, and the proxy holds it.
    proxy.refuse_tracking(true);
    proxy.hold_data_requests(true);
    let pooled = {
        let (handle, read) = (handle.clone(), read.clone());
        std::thread::spawn(move || read(&handle))
    };
    assert!(
        eventually(Duration::from_secs(5), || proxy.held_requests() > 0),
        "the read reached the pool"
    );
    // Past the back-off, a tracking connection opens and a read fills a copy through it.
    std::thread::sleep(redis_caches::connection::CONNECT_BACKOFF + Duration::from_millis(50));
    proxy.refuse_tracking(false);
    assert_eq!(read(&handle), Some(1));
    let hits = near.stats().hits;
    assert_eq!(read(&handle), Some(1));
    assert_eq!(near.stats().hits, hits + 1, "the copy is used");

    // The key changes; its invalidation waits in the proxy, the pool's read runs now.
    proxy.hold_tracking_pushes(true);
    write(&direct, &key, 2);
    proxy.hold_data_requests(false);
    assert_eq!(pooled.join().unwrap(), Some(2));

    // Let the invalidation through a little later, so that a read that waits for the
    // tracking connection ends.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        proxy.hold_tracking_pushes(false);
    });
    assert_eq!(
        read(&handle),
        Some(2),
        "a copy older than the pool's read was used after it"
    );
    release.join().unwrap();
}

#[test]
fn a_read_through_the_pool_is_never_followed_by_an_older_copy() {
    pool_read_then_older_copy(
        |conn, near, key| -> CounterCache<u64> {
            RedisCache::counter(key)
                .connection(conn)
                .near_cache(near.clone())
                .build()
        },
        |cache| cache.get().unwrap(),
        |conn, key, v| {
            let cache: CounterCache<u64> = RedisCache::counter(key).connection(conn).build();
            cache.set(&v).unwrap();
        },
    );
}

#[test]
fn a_region_read_through_the_pool_is_never_followed_by_an_older_copy() {
    pool_read_then_older_copy(
        |conn, near, root| {
            Region::builder("p.c")
                .root(root)
                .connection(conn)
                .near_cache(near.clone())
                .build()
        },
        |region| region.get::<u64>("k").unwrap(),
        |conn, root, v| {
            let region = Region::builder("p.c").root(root).connection(conn).build();
            region.set("k", &v).unwrap();
        },
    );
}

#[test]
fn readers_never_go_backwards_across_a_server_restart() {
    // Every write is on disk before it is acknowledged, so the restarted server has them all.
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = server.url();
    let mut restarted = false;
    let stats = stress(run(url), |t| {
        if !restarted && t >= Duration::from_millis(600) {
            server.restart();
            restarted = true;
        }
    });
    assert!(restarted);
    assert!(stats.flushes >= 1, "{stats:?}");
}

#[test]
fn readers_never_go_backwards_across_flushall() {
    let server = RedisServer::start();
    let stats = stress(
        Stress {
            flush_at: Some(Duration::from_millis(700)),
            ..run(server.url())
        },
        |_| {},
    );
    assert!(stats.flushes >= 1, "{stats:?}");
}

#[test]
fn readers_never_go_backwards_with_a_tracking_table_of_10_keys() {
    let server = RedisServer::start_with(&["--tracking-table-max-keys", "10"]);
    let stats = stress(
        Stress {
            keys: 32,
            ..run(server.url())
        },
        |_| {},
    );
    assert!(stats.invalidations > 0, "{stats:?}");
}

#[test]
fn cluster_readers_never_go_backwards_while_tracking_connections_are_killed() {
    let cluster = ClusterHarness::start();
    let mut nodes: Vec<redis::Connection> =
        cluster.ports().iter().map(|&p| cluster.node(p)).collect();
    let mut killed = 0;
    let mut next = Duration::from_millis(300);
    let stats = stress(run(cluster.url()), |t| {
        if t >= next && next <= Duration::from_millis(900) {
            for node in &mut nodes {
                killed += kill_tracking(node);
            }
            next += Duration::from_millis(300);
        }
    });
    assert!(killed >= 3, "killed {killed}");
    assert!(stats.flushes >= 1, "{stats:?}");
}

#[test]
fn cluster_copies_are_dropped_on_failover() {
    let mut cluster = ClusterHarness::start();
    let conn = cluster.connection_with("timeout=2s");
    let near = near();
    let key = unique("failover");
    let cache: RedisCache<u32> = RedisCache::builder(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    cache.set(&1).unwrap();
    assert_eq!(cache.get().unwrap(), Some(1));
    assert_eq!(cache.get().unwrap(), Some(1));
    cluster.wait_replicated(&key);
    let flushes = near.stats().flushes;
    let killed = cluster.kill_master_of(&key);
    cluster.wait_for_failover(killed, Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(5), || cache.set(&2).is_ok()),
        "the new master takes writes"
    );
    assert_eq!(cache.get().unwrap(), Some(2));
    assert!(near.stats().flushes > flushes);
}

#[test]
fn cluster_copies_follow_a_slot_that_moves() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection_with("timeout=2s");
    let near = near();
    let key = unique("moving");
    let cache: CounterCache<u64> = RedisCache::counter(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    cache.set(&1).unwrap();
    assert_eq!(cache.get().unwrap(), Some(1));
    assert_eq!(cache.get().unwrap(), Some(1));
    // Move the key's slot to another master, the way `redis-cli --cluster reshard` does.
    let slot = cluster.slot_of(&key);
    let from = cluster.master_of(&key);
    let nodes = cluster.nodes_info();
    let id_of = |port: u16| nodes.iter().find(|n| n.port == port).unwrap().id.clone();
    let to = nodes
        .iter()
        .find(|n| n.is_live_master() && n.port != from)
        .unwrap()
        .port;
    let (from_id, to_id) = (id_of(from), id_of(to));
    let setslot = |port: u16, args: &[&str]| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(args)
            .query(&mut cluster.node(port))
            .unwrap();
    };
    setslot(to, &["IMPORTING", &from_id]);
    setslot(from, &["MIGRATING", &to_id]);
    let _: () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&key)
        .query(&mut cluster.node(from))
        .unwrap();
    for n in nodes.iter().filter(|n| n.is_live_master()) {
        setslot(n.port, &["NODE", &to_id]);
    }
    // The moved key is read where it now lives, and later writes there are seen.
    assert!(
        eventually(Duration::from_secs(2), || cache.get().ok() == Some(Some(1))),
        "the key is readable after the move"
    );
    let mut new_owner = cluster.node(to);
    for i in 2..=5u64 {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query(&mut new_owner)
            .unwrap();
        assert!(
            eventually(SEEN_WITHIN, || cache.get().ok() == Some(Some(i))),
            "write {i} on the new owner not seen within 100 ms"
        );
    }
    assert!(near.stats().flushes >= 1, "{:?}", near.stats());
    let hits = near.stats().hits;
    cache.get().unwrap();
    assert!(near.stats().hits > hits, "cached again from the new owner");
}

#[test]
fn sentinel_readers_never_go_backwards_and_copies_are_dropped_on_failover() {
    let harness = SentinelHarness::start();
    let mut master = harness.raw_master();
    let mut killed = 0;
    let mut next = Duration::from_millis(300);
    let stats = stress(run(harness.url()), |t| {
        if t >= next && next <= Duration::from_millis(900) {
            killed += kill_tracking(&mut master);
            next += Duration::from_millis(300);
        }
    });
    assert!(killed >= 2, "killed {killed}");
    assert!(stats.flushes >= 2, "{stats:?}");

    let conn = harness.connection_with("timeout=2s");
    let near = near();
    let key = unique("failover");
    let cache: RedisCache<u32> = RedisCache::builder(key.as_str())
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    cache.set(&1).unwrap();
    assert_eq!(cache.get().unwrap(), Some(1));
    assert_eq!(cache.get().unwrap(), Some(1));
    let flushes = near.stats().flushes;
    harness.failover(Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(10), || cache.set(&2).is_ok()),
        "the new master takes writes"
    );
    assert_eq!(cache.get().unwrap(), Some(2));
    assert!(
        near.stats().flushes > flushes,
        "the demoted master's tracking was dropped"
    );
}

/// A connection through a proxy that can hold what the server sends to tracking
/// connections, and one straight to the server (another process's writes).
fn proxied(server: &RedisServer) -> (Proxy, Connection, Connection) {
    let proxy = Proxy::start(server.port());
    let conn = Connection::open(
        &unique("proxied"),
        &proxy.url_with("timeout=5s&connect_timeout=5s"),
    )
    .unwrap();
    (proxy, conn, server.connection())
}

/// Reads that the near cache does not answer but that read what a copy holds (a
/// `RedisCache::get_many`, a region `dict` view's `get_many`, a memo's `peek`) go through the
/// pool, and may see a write whose invalidation has not arrived yet: a copy older than what
/// they returned is not read after them. Each check: a copy of 1, another process writes 2
/// while the invalidation is held back, the pool read returns 2, the next near read too.
#[test]
fn other_pool_reads_are_never_followed_by_an_older_copy() {
    let server = RedisServer::start();

    let (proxy, conn, direct) = proxied(&server);
    let cache = near();
    let key = unique("get-many");
    let c: RedisCache<u64> = RedisCache::builder(key.as_str())
        .connection(&conn)
        .near_cache(cache.clone())
        .build();
    let w: RedisCache<u64> = RedisCache::builder(key.as_str())
        .connection(&direct)
        .build();
    w.set(&1).unwrap();
    assert_eq!(c.get().unwrap(), Some(1));
    let hits = cache.stats().hits;
    assert_eq!(c.get().unwrap(), Some(1));
    assert_eq!(cache.stats().hits, hits + 1, "a copy");
    proxy.hold_tracking_pushes(true);
    w.set(&2).unwrap();
    let many = RedisCache::get_many([&c]).unwrap();
    let after = c.get().unwrap();
    proxy.hold_tracking_pushes(false);
    assert_eq!(
        (many, after),
        (vec![Some(2)], Some(2)),
        "RedisCache::get_many"
    );

    let (proxy, conn, direct) = proxied(&server);
    let cache = near();
    let root = unique("gm");
    let region = Region::builder("p.c")
        .root(&root)
        .connection(&conn)
        .near_cache(cache.clone())
        .build();
    let writer = Region::builder("p.c")
        .root(&root)
        .connection(&direct)
        .build();
    writer.set("k", &1u64).unwrap();
    assert_eq!(region.get::<u64>("k").unwrap(), Some(1));
    let hits = cache.stats().hits;
    assert_eq!(region.get::<u64>("k").unwrap(), Some(1));
    assert_eq!(cache.stats().hits, hits + 1, "a copy");
    proxy.hold_tracking_pushes(true);
    writer.set("k", &2u64).unwrap();
    let dict: redis_caches::DictCache<String, u64> = region.dict();
    let many = dict.get_many(["k"]).unwrap();
    let after = region.get::<u64>("k").unwrap();
    proxy.hold_tracking_pushes(false);
    assert_eq!(
        (many, after),
        (vec![Some(2)], Some(2)),
        "a region's get_many"
    );

    let (proxy, conn, direct) = proxied(&server);
    let cache = near();
    let name = unique("peek");
    let m = redis_caches::Memo::builder(name.as_str(), |x: u64| x)
        .connection(&conn)
        .near_cache(cache.clone())
        .build();
    let w = redis_caches::Memo::builder(name.as_str(), |x: u64| x)
        .connection(&direct)
        .build();
    w.set(1, &10).unwrap();
    assert_eq!(m.call(1).unwrap(), 10);
    let hits = cache.stats().hits;
    assert_eq!(m.call(1).unwrap(), 10);
    assert_eq!(cache.stats().hits, hits + 1, "a copy");
    proxy.hold_tracking_pushes(true);
    w.set(1, &20).unwrap();
    let peeked = m.peek(1).unwrap();
    let after = m.call(1).unwrap();
    proxy.hold_tracking_pushes(false);
    assert_eq!((peeked, after), (Some(20), 20), "Memo::peek");
}
