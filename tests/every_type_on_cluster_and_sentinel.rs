//! The whole API on a Redis Cluster and on a Sentinel-managed master: each collection type's
//! scenarios (DictCache, SetCache, SortedSetCache, SentinelCache, Region) and memoized functions run
//! on a real cluster of three masters with one replica each and on a real group of a master,
//! a replica and three sentinels, started by the tests; set algebra across slots gives
//! `Error::CrossSlot` and writes nothing; then a master is killed during a workload of every
//! type, and operations resume on the same handles while replicated writes survive.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use redis_caches::key::Key;
use redis_caches::memo::{Memo, RefreshPool};
use redis_caches::region::Reclaim;
use redis_caches::sorted_set::{InsertMode, Limit};
use redis_caches::{
    Connection, DictCache, Error, Region, SentinelCache, SetCache, SortedSetCache, Ttl,
};
use support::cluster::ClusterHarness;
use support::eventually;
use support::redis_sentinel::SentinelHarness;

/// How long after a master is killed every type may take to work again before the test
/// gives up waiting (the documented bounds below are asserted on what it measured).
const RESUME_WITHIN: Duration = Duration::from_secs(15);

/// The crate docs' figures ("Scale: Cluster and Sentinel") for these harnesses
/// (`cluster-node-timeout 1000`, `down-after-milliseconds 500`), plus the `timeout` of a
/// call already waiting (`QUICK`), plus 25%.
fn documented_resume(failover: Duration) -> Duration {
    let documented = failover + Duration::from_millis(500);
    documented + documented / 4
}

/// A cluster: `cluster-node-timeout` + 2.5 s.
fn cluster_resume() -> Duration {
    documented_resume(support::cluster::NODE_TIMEOUT + Duration::from_millis(2500))
}

/// Sentinel: `down-after-milliseconds` + 1.5 s.
fn sentinel_resume() -> Duration {
    documented_resume(support::redis_sentinel::DOWN_AFTER + Duration::from_millis(1500))
}

/// Timeouts short enough that a dead master costs little per attempt.
const QUICK: &str = "timeout=500ms&pool_timeout=500ms&connect_timeout=200ms&pool_size=12";

/// A command on a pooled connection of the crate (routed like the crate's own commands).
fn query<T: redis::FromRedisValue>(conn: &Connection, cmd: &mut redis::Cmd) -> T {
    let mut pooled = conn.get().expect("a pooled connection");
    cmd.query(&mut *pooled).expect("a raw command")
}

fn key_exists(conn: &Connection, key: &str) -> bool {
    query(conn, redis::cmd("EXISTS").arg(key))
}

// ---------------------------------------------------------------------------------------
// Scenarios, each on its own keys, run on both deployments.
// ---------------------------------------------------------------------------------------

fn dict_scenario(conn: &Connection) {
    let ages: DictCache<String, u32> = DictCache::builder(["scale", "dict", "ages"])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build();
    assert_eq!(ages.insert("ada", &36).unwrap(), None);
    assert_eq!(ages.insert("ada", &37).unwrap(), Some(36));
    assert_eq!(ages.get("ada").unwrap(), Some(37));
    assert!(ages.set("alan", &41).unwrap());
    assert!(matches!(ages.ttl().unwrap(), Ttl::Expires(d) if d > Duration::from_secs(590)));
    assert_eq!(ages.remove("alan").unwrap(), Some(41));
    assert_eq!(ages.remove("alan").unwrap(), None);
    assert!(ages.contains_key("ada").unwrap());

    // A few thousand entries: several pipelined round trips, HSCAN pages, HMGET.
    let big: DictCache<String, u64> = DictCache::builder(["scale", "dict", "big"])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build();
    let model: HashMap<String, u64> = (0..5000u64).map(|i| (format!("k{i}"), i * 3)).collect();
    big.extend(model.clone()).unwrap();
    assert_eq!(big.len().unwrap(), model.len());
    let scanned: HashMap<String, u64> = big.iter().map(Result::unwrap).collect();
    assert_eq!(scanned, model);
    assert_eq!(big.keys().count(), model.len());
    let wanted = ["k0", "k4999", "missing", "k17"];
    assert_eq!(
        big.get_many(wanted).unwrap(),
        vec![Some(0), Some(4999 * 3), None, Some(51)]
    );

    // pop_item's Lua script (EVALSHA, NOSCRIPT, SCRIPT LOAD on every node, EVALSHA).
    let mut popped = HashMap::new();
    for _ in 0..3 {
        let (k, v) = big.pop_item().unwrap().expect("an entry");
        assert_eq!(model.get(&k), Some(&v));
        popped.insert(k, v);
    }
    assert_eq!(popped.len(), 3);
    assert_eq!(big.len().unwrap(), model.len() - 3);

    let lazy: DictCache<String, String> = DictCache::builder(["scale", "dict", "lazy"])
        .connection(conn)
        .build();
    assert_eq!(
        lazy.get_or_insert_with("x", || "first".into()).unwrap(),
        "first"
    );
    assert_eq!(
        lazy.get_or_insert_with("x", || "second".into()).unwrap(),
        "first"
    );
    assert!(big.clear().unwrap() && lazy.clear().unwrap() && ages.clear().unwrap());
}

fn set_scenario(conn: &Connection) {
    let ids: SetCache<u32> = SetCache::builder(["scale", "set", "ids"])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build();
    assert!(ids.insert(&7).unwrap());
    assert!(!ids.insert(&7).unwrap());
    assert!(ids.contains(&7).unwrap());
    assert!(ids.remove(&7).unwrap());
    assert!(!ids.contains(&7).unwrap());
    assert_eq!(ids.extend(0..2500u32).unwrap(), 2500);
    let scanned: HashSet<u32> = ids.iter().map(Result::unwrap).collect();
    assert_eq!(scanned, (0..2500).collect());
    assert_eq!(ids.len().unwrap(), 2500);

    // Set algebra on operands that share a hash tag: one slot, so it works on a cluster.
    let tagged = |name: &str| -> SetCache<u32> {
        SetCache::builder(Key::from_parts(["scale-teams", name]).with_hash_tag())
            .connection(conn)
            .build()
    };
    let (a, b) = (tagged("a"), tagged("b"));
    a.extend([1, 2, 3]).unwrap();
    b.extend([3, 4]).unwrap();
    assert_eq!(a.union([&b]).unwrap(), HashSet::from([1, 2, 3, 4]));
    assert_eq!(a.intersection([&b]).unwrap(), HashSet::from([3]));
    assert_eq!(a.difference([&b]).unwrap(), HashSet::from([1, 2]));
    let plain_dest = tagged("all");
    assert_eq!(a.union_store([&b], &plain_dest).unwrap(), 4);
    let timed_dest: SetCache<u32> =
        SetCache::builder(Key::from_parts(["scale-teams", "both"]).with_hash_tag())
            .connection(conn)
            .ttl(Duration::from_secs(60))
            .build();
    assert_eq!(a.intersection_store([&b], &timed_dest).unwrap(), 1);
    assert!(matches!(timed_dest.ttl().unwrap(), Ttl::Expires(_)));
    assert_eq!(a.difference_store([&b], &plain_dest).unwrap(), 2);
    assert_eq!(plain_dest.to_hash_set().unwrap(), HashSet::from([1, 2]));
    for s in [&ids, &a, &b, &plain_dest, &timed_dest] {
        s.clear().unwrap();
    }
}

fn sorted_set_scenario(conn: &Connection) {
    let board: SortedSetCache<String> = SortedSetCache::builder(["scale", "zset", "board"])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build();
    assert!(board.insert("ada", 10.0).unwrap());
    assert!(!board.insert_with("ada", 50.0, InsertMode::OnlyNew).unwrap());
    assert_eq!(board.score("ada").unwrap(), Some(10.0));
    assert!(
        !board
            .insert_with("bob", 5.0, InsertMode::OnlyExisting)
            .unwrap()
    );
    assert!(!board.contains("bob").unwrap());
    assert!(
        board
            .insert_with("ada", 30.0, InsertMode::NewOrGreater)
            .unwrap()
    );
    assert!(
        !board
            .insert_with("ada", 20.0, InsertMode::NewOrGreater)
            .unwrap()
    );
    assert!(
        board
            .insert_with("bob", 5.0, InsertMode::NewOrLess)
            .unwrap()
    );
    assert!(
        board
            .insert_with("bob", 4.0, InsertMode::ExistingIfLess)
            .unwrap()
    );
    assert_eq!(board.incr_score("bob", 1.5).unwrap(), 5.5);
    assert!(board.insert("cy", 20.0).unwrap());
    assert_eq!(board.rank("ada").unwrap(), Some(2));
    assert_eq!(board.rank_rev("ada").unwrap(), Some(0));
    assert_eq!(
        board.range(0..2).unwrap(),
        vec![("bob".to_string(), 5.5), ("cy".to_string(), 20.0)]
    );
    assert_eq!(
        board.range_rev(..1).unwrap(),
        vec![("ada".to_string(), 30.0)]
    );
    assert_eq!(
        board.range_by_score(6.0..=30.0, Limit::first(1)).unwrap(),
        vec![("cy".to_string(), 20.0)]
    );
    assert_eq!(board.pop_min().unwrap(), Some(("bob".to_string(), 5.5)));
    assert_eq!(board.pop_max().unwrap(), Some(("ada".to_string(), 30.0)));
    assert_eq!(board.len().unwrap(), 1);

    // Iteration reads pages of 1,000 by rank.
    let many: SortedSetCache<u32> = SortedSetCache::builder(["scale", "zset", "many"])
        .connection(conn)
        .build();
    assert_eq!(
        many.extend((0..2500u32).map(|i| (i, f64::from(i))))
            .unwrap(),
        2500
    );
    let forward: Vec<u32> = many.iter().map(|e| e.unwrap().0).collect();
    assert_eq!(forward, (0..2500).collect::<Vec<_>>());
    let backward: Vec<u32> = many.iter_rev().map(|e| e.unwrap().0).collect();
    assert_eq!(backward, (0..2500).rev().collect::<Vec<_>>());
    assert!(board.clear().unwrap() && many.clear().unwrap());
}

fn sentinel_cache_scenario(conn: &Connection) {
    let gate = SentinelCache::builder(["scale", "gate", "nightly"])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build();
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(8));
        let winners: usize = (0..8)
            .map(|_| {
                let (gate, barrier) = (gate.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    gate.claim().unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        assert_eq!(winners, 1, "round {round}: exactly one claim wins");
        assert!(gate.exists().unwrap());
        assert!(gate.clear().unwrap());
    }
}

fn memo_scenario(conn: &Connection, name: &str) {
    // A fresh hit, stats, forget.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let double = Memo::builder(format!("{name}-double"), move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        x * 2
    })
    .connection(conn)
    .ttl(Duration::from_secs(600))
    .build();
    assert_eq!(double.call(21).unwrap(), 42);
    assert_eq!(double.call(21).unwrap(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the second call was a hit");
    let s = double.stats().unwrap();
    assert_eq!((s.hits, s.misses), (1, 1), "{s:?}");
    assert!(double.forget(21).unwrap());
    assert_eq!(double.call(21).unwrap(), 42);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "forgotten, so computed again"
    );

    // clear() removes every stored result of the function (SCAN on the node serving the
    // function's slot), and keeps the statistics.
    for x in 0..40 {
        double.call(x).unwrap();
    }
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(double.clear().unwrap(), 40);
    for x in 0..40 {
        double.call(x).unwrap();
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 40,
        "every result was cleared"
    );
    // Hits: the second call(21), and call(21) again in the first loop.
    let s = double.reset_stats().unwrap();
    assert_eq!((s.hits, s.misses), (2, 81), "{s:?}");
    assert_eq!(double.stats().unwrap().calls(), 0);

    // Stale-while-revalidate: the stale value is served at once, one refresh runs.
    let (ttl, refresh) = (Duration::from_secs(10), Duration::from_millis(100));
    let version = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Mutex::new(()));
    let (v, g) = (version.clone(), gate.clone());
    let swr = Memo::builder(format!("{name}-swr"), move |_: ()| {
        drop(g.lock().unwrap());
        v.fetch_add(1, Ordering::SeqCst) + 1
    })
    .connection(conn)
    .ttl(ttl)
    .refresh(refresh)
    .refresh_pool(&RefreshPool::new(1, 4))
    .build();
    assert_eq!(swr.call(()).unwrap(), 1);
    let value_key = format!("{{memo:{name}-swr}}.v");
    let threshold = (ttl - refresh).as_millis() as i64;
    assert!(
        eventually(Duration::from_secs(5), || {
            let pttl: i64 = query(conn, redis::cmd("PTTL").arg(&value_key));
            pttl >= 0 && pttl <= threshold
        }),
        "{value_key} never became stale"
    );
    {
        let _held = gate.lock().unwrap();
        let started = Instant::now();
        assert_eq!(swr.call(()).unwrap(), 1, "stale value served");
        assert_eq!(
            swr.call(()).unwrap(),
            1,
            "still stale while the refresh runs"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert!(eventually(Duration::from_secs(5), || swr.call(()).unwrap() == 2));
    assert_eq!(version.load(Ordering::SeqCst), 2, "one refresh only");
    let s = swr.stats().unwrap();
    assert_eq!((s.misses, s.refreshes), (1, 2), "{s:?}");

    // Single flight: eight threads miss the same arguments, the function runs once.
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let c = slow_calls.clone();
    let slow = Memo::builder(format!("{name}-slow"), move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        x + 1
    })
    .connection(conn)
    .ttl(Duration::from_secs(600))
    .build();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (slow, barrier) = (slow.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                slow.call(9).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 10);
    }
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);
    let s = slow.stats().unwrap();
    assert_eq!((s.misses, s.waits), (8, 7), "{s:?}");

    // Flask-CacheOBJ's strategies: a counter and a list changed in place, a hash field.
    let views = Memo::builder(format!("{name}-views"), |page: u32| i64::from(page) * 10)
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build_counter();
    assert_eq!(views.incr(3, 1).unwrap(), None, "not cached yet");
    assert_eq!(views.call(3).unwrap(), 30);
    assert_eq!(views.incr(3, 5).unwrap(), Some(35));
    assert_eq!(views.call(3).unwrap(), 35);
    let recent = Memo::builder(format!("{name}-recent"), |n: u8| vec![n, n + 1])
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build_list();
    assert_eq!(recent.call(1).unwrap(), vec![1, 2]);
    assert_eq!(recent.push(1, &9).unwrap(), Some(3));
    assert_eq!(recent.call(1).unwrap(), vec![1, 2, 9]);
    let title = Memo::builder(format!("{name}-title"), |id: u64| format!("item #{id}"))
        .connection(conn)
        .key_template("{0}")
        .build_hash_field();
    assert_eq!(title.call(4).unwrap(), "item #4");
    assert_eq!(title.call(4).unwrap(), "item #4");
    assert_eq!(title.stats().unwrap().hits, 1);
    assert!(key_exists(conn, &format!("{{memo:{name}-title}}.h")));
    assert_eq!(title.clear().unwrap(), 1, "the function's hash");

    for m in [double.clear(), swr.clear(), slow.clear()] {
        m.unwrap();
    }
}

fn region_scenario(conn: &Connection, root: &str) {
    let region = |name: &str| -> Region {
        Region::builder(name)
            .root(root)
            .connection(conn)
            .ttl(Duration::from_secs(600))
            .reclaim(Reclaim::Manual)
            .build()
    };
    let a = region("a");
    let b = a.region("b");
    let c = b.region("c");
    let sibling = region("other");
    for (i, r) in [&a, &b, &c, &sibling].into_iter().enumerate() {
        assert!(r.set("k", &(i as u32)).unwrap());
    }
    assert_eq!(c.insert("k", &20u32).unwrap(), Some(2));
    assert_eq!(c.get::<u32>("k").unwrap(), Some(20));
    assert!(matches!(c.ttl().unwrap(), Ttl::Expires(_)));
    assert_eq!(
        c.get_or_insert_with("lazy", || "first".to_string())
            .unwrap(),
        "first"
    );
    let names: Vec<String> = a.children().map(|r| r.unwrap().name()).collect();
    assert_eq!(names, vec!["a.b"]);
    let entries: HashSet<String> = c.keys().map(Result::unwrap).collect();
    assert_eq!(
        entries,
        HashSet::from(["k".to_string(), "lazy".to_string()])
    );

    // A transaction: reads see its pending writes; one script at the end.
    let total = b
        .transaction(|tx| {
            let n = tx.get::<u32>("k")?.unwrap_or(0);
            tx.set("k", &(n + 10))?;
            tx.set("extra", "x")?;
            tx.delete("missing")?;
            tx.get::<u32>("k")
        })
        .unwrap();
    assert_eq!(total, Some(11));
    assert_eq!(b.get::<u32>("k").unwrap(), Some(11));
    assert_eq!(b.len().unwrap(), 2);

    // A memo's results and the DictCache view live in the region's hash; the memo's lock and
    // statistics in the tree's slot.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let square = b
        .memo("square", move |x: u32| {
            counted.fetch_add(1, Ordering::SeqCst);
            x * x
        })
        .build();
    assert_eq!(square.call(7).unwrap(), 49);
    assert_eq!(square.call(7).unwrap(), 49);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = square.stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 1), "{stats:?}");
    let view: DictCache<String, u32> = c.dict();
    assert_eq!(view.get("k").unwrap(), Some(20));

    // Invalidation: a constant-time script in the root's slot; reclamation in steps there.
    assert!(a.invalidate().unwrap());
    for r in [&a, &b, &c] {
        assert_eq!(r.get::<u32>("k").unwrap(), None, "{r:?}");
    }
    assert_eq!(view.get("k").unwrap(), None);
    assert_eq!(sibling.get::<u32>("k").unwrap(), Some(3));
    assert_eq!(square.call(7).unwrap(), 49);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "invalidated with the region"
    );
    assert_eq!(a.reclaim().unwrap(), 3, "the three retired hashes");
    assert!(region("").invalidate().unwrap());
    assert_eq!(sibling.get::<u32>("k").unwrap(), None);
    assert_eq!(
        a.reclaim().unwrap(),
        2,
        "other, and a.b holding the memo's result"
    );
}

// ---------------------------------------------------------------------------------------
// Redis Cluster
// ---------------------------------------------------------------------------------------

#[test]
fn every_type_runs_on_a_cluster() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection_with("pool_size=12");
    dict_scenario(&conn);
    set_scenario(&conn);
    sorted_set_scenario(&conn);
    sentinel_cache_scenario(&conn);
    memo_scenario(&conn, "scale");
    // Region trees under a root on each master.
    let mut roots: HashMap<u16, String> = HashMap::new();
    for i in 0..100 {
        let root = format!("scale-root-{i}");
        roots
            .entry(cluster.master_of(&format!("{{{root}}}")))
            .or_insert(root);
        if roots.len() == 3 {
            break;
        }
    }
    assert_eq!(roots.len(), 3, "roots on every master");
    for root in roots.values() {
        region_scenario(&conn, root);
    }

    // The memoized function's keys are spread over slots of every master only through
    // their names: clear() must find the results wherever the function's slot lives.
    let masters: HashSet<u16> = (0..12)
        .map(|i| cluster.master_of(&format!("{{memo:spread-{i}}}.v")))
        .collect();
    assert_eq!(masters.len(), 3, "the names cover every master");
    for i in 0..12 {
        let m = Memo::builder(format!("spread-{i}"), |x: u8| x)
            .connection(&conn)
            .build();
        for x in 0..5 {
            m.call(x).unwrap();
        }
        assert_eq!(m.clear().unwrap(), 5, "spread-{i}");
        assert!(!key_exists(&conn, &format!("{{memo:spread-{i}}}.v.%00")));
    }
}

#[test]
fn set_algebra_across_slots_is_a_cross_slot_error_and_writes_nothing() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection();
    let set = |key: &str, ttl: Option<Duration>| -> SetCache<u32> {
        let b = SetCache::builder(key).connection(&conn);
        match ttl {
            Some(ttl) => b.ttl(ttl).build(),
            None => b.build(),
        }
    };
    assert_ne!(cluster.slot_of("spread.a"), cluster.slot_of("spread.b"));
    let (a, b) = (set("spread.a", None), set("spread.b", None));
    a.extend([1, 2]).unwrap();
    b.extend([2, 3]).unwrap();

    let expect_cross_slot = |what: &str, result: Result<(), Error>| {
        let err = result.expect_err(what);
        assert!(err.is_cross_slot(), "{what}: {err}");
        assert!(err.to_string().contains("hash tag"), "{what}: {err}");
    };
    expect_cross_slot("union", a.union([&b]).map(drop));
    expect_cross_slot("intersection", a.intersection([&b]).map(drop));
    expect_cross_slot("difference", a.difference([&b]).map(drop));

    // The *_store forms, with and without a TTL on the destination (MULTI/EXEC or a plain
    // command), into a destination that already holds something: it is left alone.
    for ttl in [None, Some(Duration::from_secs(60))] {
        let dest = set("{spread.a}.dest", ttl);
        dest.clear().unwrap();
        dest.insert(&99).unwrap();
        expect_cross_slot("union_store", a.union_store([&b], &dest).map(drop));
        expect_cross_slot(
            "intersection_store",
            a.intersection_store([&b], &dest).map(drop),
        );
        expect_cross_slot(
            "difference_store",
            a.difference_store([&b], &dest).map(drop),
        );
        // Operands in one slot, destination in another.
        let same_slot = set("{spread.a}.other", None);
        same_slot.insert(&5).unwrap();
        let other_slot = (0..)
            .map(|i| format!("spread.elsewhere-{i}"))
            .find(|k| cluster.slot_of(k) != cluster.slot_of("{spread.a}.other"))
            .expect("a key in another slot");
        let elsewhere = set(&other_slot, ttl);
        expect_cross_slot(
            "store into another slot",
            same_slot.union_store([&dest], &elsewhere).map(drop),
        );
        assert!(!elsewhere.exists().unwrap(), "nothing was written");
        assert_eq!(dest.to_hash_set().unwrap(), HashSet::from([99]));
    }
    assert_eq!(a.to_hash_set().unwrap(), HashSet::from([1, 2]));
    assert_eq!(b.to_hash_set().unwrap(), HashSet::from([2, 3]));
}

/// The handles of every type used during a failover, all on one hash tag (so one master
/// serves them all) and a memoized function whose own slot is on that master too.
struct Workload {
    dict: DictCache<u64, u64>,
    set: SetCache<u64>,
    zset: SortedSetCache<u64>,
    gate: SentinelCache,
    region: Region,
    memo: Memo<u64, u64>,
    memo_calls: Arc<AtomicUsize>,
}

impl Workload {
    fn new(conn: &Connection, tag: &str, memo_name: &str) -> Workload {
        let key = |part: &str| Key::from_parts([tag, part]).with_hash_tag();
        let memo_calls = Arc::new(AtomicUsize::new(0));
        let c = memo_calls.clone();
        Workload {
            dict: DictCache::builder(key("dict"))
                .connection(conn)
                .ttl(Duration::from_secs(600))
                .build(),
            set: SetCache::builder(key("set")).connection(conn).build(),
            zset: SortedSetCache::builder(key("zset"))
                .connection(conn)
                .ttl(Duration::from_secs(600))
                .build(),
            gate: SentinelCache::builder(key("gate")).connection(conn).build(),
            // {tag}.region, in the same slot as the rest.
            region: Region::builder("region")
                .root(tag)
                .connection(conn)
                .reclaim(Reclaim::Manual)
                .build(),
            memo: Memo::builder(memo_name, move |x: u64| {
                c.fetch_add(1, Ordering::SeqCst);
                x * 10
            })
            .connection(conn)
            .ttl(Duration::from_secs(600))
            .build(),
            memo_calls,
        }
    }

    /// The acknowledged writes the failover must keep (made, then replicated with `WAIT`).
    fn write_baseline(&self) {
        self.dict.extend((0..100).map(|i| (i, i * i))).unwrap();
        assert_eq!(self.set.extend(0..100).unwrap(), 100);
        self.zset
            .extend((0..100u64).map(|i| (i, i as f64)))
            .unwrap();
        assert!(self.gate.claim().unwrap());
        for i in 0..10u64 {
            self.region.region("sub").set(&i.to_string(), &i).unwrap();
        }
        self.region.set("top", "kept").unwrap();
        for x in 0..10 {
            assert_eq!(self.memo.call(x).unwrap(), x * 10);
        }
    }

    /// One operation of each type on fresh data; the errors, named by type.
    fn step(&self, i: u64) -> Vec<(&'static str, Error)> {
        let n = 1000 + i;
        let region = self.region.region("live");
        let results = [
            ("dict", self.dict.set(&n, &i).map(drop)),
            ("set", self.set.insert(&n).map(drop)),
            ("zset", self.zset.insert(&n, n as f64).map(drop)),
            ("gate", self.gate.exists().map(drop)),
            (
                "region",
                region.transaction(|tx| {
                    tx.set(&n.to_string(), &i)?;
                    tx.delete("gone")
                }),
            ),
            ("memo", self.memo.call(n).map(drop)),
        ];
        results
            .into_iter()
            .filter_map(|(what, r)| r.err().map(|e| (what, e)))
            .collect()
    }

    /// Every baseline write is still there, read on the same handles.
    fn check_baseline(&self) {
        let keys: Vec<u64> = (0..100).collect();
        let got = self.dict.get_many(keys.iter()).unwrap();
        assert_eq!(got, keys.iter().map(|i| Some(i * i)).collect::<Vec<_>>());
        let members: BTreeSet<u64> = self.set.iter().map(Result::unwrap).collect();
        assert!(members.is_superset(&(0..100).collect()), "set members kept");
        assert_eq!(
            self.zset.range(0..100).unwrap(),
            (0..100u64).map(|i| (i, i as f64)).collect::<Vec<_>>()
        );
        assert!(!self.gate.claim().unwrap(), "the gate stays closed");
        let sub = self.region.region("sub");
        for i in 0..10u64 {
            assert_eq!(sub.get::<u64>(&i.to_string()).unwrap(), Some(i));
        }
        assert_eq!(
            self.region.get::<String>("top").unwrap().as_deref(),
            Some("kept")
        );
        // Invalidation and reclamation work on the promoted replica.
        assert!(self.region.invalidate().unwrap());
        assert_eq!(sub.get::<u64>("0").unwrap(), None);
        assert!(self.region.reclaim().unwrap() >= 2);
        let before = self.memo_calls.load(Ordering::SeqCst);
        for x in 0..10 {
            assert_eq!(self.memo.call(x).unwrap(), x * 10);
        }
        assert_eq!(
            self.memo_calls.load(Ordering::SeqCst),
            before,
            "memoized results kept"
        );
    }
}

/// Runs the workload in a thread, calls `kill`, and returns how long after the kill every
/// type worked again on the same handles (as seen by the main thread), checking that the
/// workload thread resumed too.
/// Sets its flag when dropped: a workload thread stops even when the test panics, instead of
/// running on against whatever later takes its servers' ports.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn kill_during_workload(workload: &Arc<Workload>, kill: impl FnOnce()) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = StopOnDrop(stop.clone());
    let ok_after_kill = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let thread = {
        let (w, stop, ok, killed) = (
            workload.clone(),
            stop.clone(),
            ok_after_kill.clone(),
            killed.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let was_killed = killed.load(Ordering::SeqCst);
                let failed = w.step(i);
                if failed.is_empty() && was_killed {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                errors.extend(failed);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            errors
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    kill();
    killed.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut i = 100_000;
    let mut errors = Vec::new();
    let resumed = eventually(RESUME_WITHIN, || {
        i += 1;
        let failed = workload.step(i);
        let ok = failed.is_empty();
        errors.extend(failed);
        ok
    });
    let took = started.elapsed();
    assert!(
        resumed,
        "not every type worked within {RESUME_WITHIN:?} of the kill: {:?}",
        errors.last()
    );
    let workload_resumed = eventually(Duration::from_secs(5), || {
        ok_after_kill.load(Ordering::SeqCst) >= 3
    });
    stop.store(true, Ordering::SeqCst);
    errors.extend(thread.join().unwrap());
    assert!(
        workload_resumed,
        "the workload thread did not resume; its last error: {:?}",
        errors.last()
    );
    // What the crate docs promise callers during a failover: connection errors or timeouts.
    let unexpected: Vec<_> = errors
        .iter()
        .filter(|(_, e)| !e.is_connection() && !e.is_timeout())
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let kinds: BTreeSet<&str> = errors.iter().map(|(what, _)| *what).collect();
    eprintln!(
        "every type resumed {took:?} after the kill; {} failed operations ({kinds:?})",
        errors.len()
    );
    took
}

#[test]
fn every_type_resumes_after_a_cluster_master_is_killed() {
    let mut cluster = ClusterHarness::start();
    let conn = cluster.connection_with(QUICK);
    let tag = "scale-failover";
    let master = cluster.master_of(&format!("{{{tag}}}"));
    // A memoized function whose slot is on the same master.
    let memo_name = (0..200)
        .map(|i| format!("failover-{i}"))
        .find(|n| cluster.master_of(&format!("{{memo:{n}}}")) == master)
        .expect("a name on that master");
    let workload = Arc::new(Workload::new(&conn, tag, &memo_name));
    workload.write_baseline();
    cluster.wait_replicated(&format!("{{{tag}}}"));
    cluster.wait_replicated(&format!("{{memo:{memo_name}}}"));

    let took = kill_during_workload(&workload, || {
        let killed = cluster.kill_master_of(&format!("{{{tag}}}"));
        assert_eq!(killed, master);
    });
    assert!(
        took <= cluster_resume(),
        "{took:?}, documented {:?}",
        cluster_resume()
    );
    cluster.wait_for_failover(master, Duration::from_secs(10));
    assert_ne!(cluster.master_of(&format!("{{{tag}}}")), master);
    workload.check_baseline();
}

// ---------------------------------------------------------------------------------------
// Sentinel
// ---------------------------------------------------------------------------------------

#[test]
fn every_type_runs_on_a_sentinel_master_and_resumes_after_a_failover() {
    let mut group = SentinelHarness::start();
    let conn = group.connection_with(QUICK);
    dict_scenario(&conn);
    set_scenario(&conn);
    // One server: set algebra needs no common hash tag there.
    let a: SetCache<u32> = SetCache::builder("untagged.a").connection(&conn).build();
    let b: SetCache<u32> = SetCache::builder("untagged.b").connection(&conn).build();
    a.extend([1, 2]).unwrap();
    b.extend([2, 3]).unwrap();
    assert_eq!(a.union([&b]).unwrap(), HashSet::from([1, 2, 3]));
    sorted_set_scenario(&conn);
    sentinel_cache_scenario(&conn);
    memo_scenario(&conn, "scale");
    region_scenario(&conn, "scale-root");

    let workload = Arc::new(Workload::new(&conn, "scale-failover", "failover"));
    workload.write_baseline();
    group.wait_replicated();
    let old = group.master_port();
    let took = kill_during_workload(&workload, || {
        assert_eq!(group.kill_master(), old);
    });
    assert!(
        took <= sentinel_resume(),
        "{took:?}, documented {:?}",
        sentinel_resume()
    );
    group.wait_for_failover(old, Duration::from_secs(10));
    workload.check_baseline();
}
