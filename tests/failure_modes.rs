//! The crate docs' "Failure modes" chapter, tried the way a sick server or a hostile
//! configuration would: one test (or a few) per line of that chapter and per failure the
//! issues reported, each against a real `redis-server`. TESTING.md maps every promise to the
//! test here that proves it.
//!
//! Time bounds are the documented ones with a margin of at most 25% of the bound, so a timed
//! test runs alone (`one_at_a_time`), and the others only alongside each other (`untimed`):
//! a sibling test's servers and threads would otherwise compete for the machine's cores and
//! turn scheduling delays into failures.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_caches::codec::Raw;
use redis_caches::memo::Memo;
use redis_caches::sorted_set::Limit;
use redis_caches::{
    Connection, DictCache, Error, OutagePolicy, RedisCache, Region, Result, SentinelCache,
    SetCache, SortedSetCache,
};
use support::RedisServer;
use support::redis_helpers::chain;
use support::timing::timed;

/// The `timeout` of the timed tests' connections.
const TIMEOUT: Duration = Duration::from_millis(200);

/// What a timed call may take beyond its bound: 25% of the bound, for scheduling.
fn margin(bound: Duration) -> Duration {
    bound / 4
}

/// Timed tests run alone; the others run alongside each other, never beside a timed one, so
/// that a timed call does not wait for a core behind a sibling test's work.
static TIMED: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// For a timed test: runs alone (see the module docs).
fn one_at_a_time() -> std::sync::RwLockWriteGuard<'static, ()> {
    TIMED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// For the other tests: they run alongside each other, not beside a timed test.
fn untimed() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// A stalled server: one `timeout` per call, however many replies or batches it needs.

/// The handles the stalled calls use, with data that makes each take its longest path.
struct Handles {
    value: RedisCache<String>,
    other: RedisCache<String>,
    counter: RedisCache<i64, Raw>,
    dict: DictCache<String, u64>,
    big: DictCache<String, u64>,
    fields: Vec<String>,
    set: SetCache<u64>,
    set2: SetCache<u64>,
    dest: SetCache<u64>,
    zset: SortedSetCache<String>,
    gate: SentinelCache,
    deep: Region,
    top: Region,
    memo: Memo<u64, u64>,
    memo_counter: redis_caches::memo::MemoCounter<u64>,
    memo_list: redis_caches::memo::MemoList<u64, u64>,
}

impl Handles {
    /// Every type, with TTLs (so writes are scripts), a 12-level region, a 20,000-field
    /// hash and cached memo results.
    fn new(conn: &Connection) -> Handles {
        let ttl = Duration::from_secs(600);
        let h = Handles {
            value: RedisCache::builder("st.value")
                .connection(conn)
                .ttl(ttl)
                .build(),
            other: RedisCache::builder("st.other").connection(conn).build(),
            counter: RedisCache::<i64>::counter("st.counter")
                .connection(conn)
                .ttl(ttl)
                .build(),
            dict: DictCache::builder("st.dict")
                .connection(conn)
                .ttl(ttl)
                .build(),
            big: DictCache::builder("st.big").connection(conn).build(),
            fields: (0..20_000).map(|i| format!("f{i}")).collect(),
            set: SetCache::builder("{st}.set")
                .connection(conn)
                .ttl(ttl)
                .build(),
            set2: SetCache::builder("{st}.set2").connection(conn).build(),
            dest: SetCache::builder("{st}.dest")
                .connection(conn)
                .ttl(ttl)
                .build(),
            zset: SortedSetCache::builder("st.zset")
                .connection(conn)
                .ttl(ttl)
                .build(),
            gate: SentinelCache::builder("st.gate")
                .connection(conn)
                .ttl(ttl)
                .build(),
            // Reclaimed by hand: the background thread's steps take a pooled connection
            // too, and with a pool of one a call would wait for it (`Error::Pool` after
            // `pool_timeout`, as documented), which is not what these tests time.
            deep: Region::builder("a.b.c.d.e.f.g.h.i.j.k.l")
                .root("st")
                .connection(conn)
                .ttl(ttl)
                .reclaim(redis_caches::region::Reclaim::Manual)
                .build(),
            top: Region::builder("a")
                .root("st")
                .connection(conn)
                .reclaim(redis_caches::region::Reclaim::Manual)
                .build(),
            memo: Memo::builder("st-memo", |x: u64| x * 2)
                .connection(conn)
                .ttl(ttl)
                .build(),
            memo_counter: Memo::builder("st-counter", |x: u64| x as i64)
                .connection(conn)
                .build_counter(),
            memo_list: Memo::builder("st-list", |x: u64| vec![x])
                .connection(conn)
                .ttl(ttl)
                .build_list(),
        };
        h.big
            .extend(h.fields.iter().map(|f| (f.as_str(), 1u64)))
            .unwrap();
        h.set.extend([1u64, 2, 3]).unwrap();
        h.set2.extend([2u64, 3, 4]).unwrap();
        h.zset.extend([("a", 1.0), ("b", 2.0)]).unwrap();
        h.dict.extend([("a", 1u64), ("b", 2)]).unwrap();
        h.deep.set("x", &1u64).unwrap();
        h.memo.call(1).unwrap();
        h.memo_list.call(1).unwrap();
        h.memo_counter.call(1).unwrap();
        h
    }
}

/// One public call on a set of handles `H`, by name.
type Case<H = Handles> = (&'static str, fn(&H) -> Result<()>);

fn entries(n: u64) -> Vec<(String, u64)> {
    (0..n).map(|i| (format!("e{i}"), i)).collect()
}

/// Every multi-reply path of every type, and the single-command ones beside them.
const STALLED_CASES: &[Case] = &[
    ("RedisCache::get", |h| h.value.get().map(drop)),
    ("RedisCache::set with TTL", |h| h.value.set("v")),
    ("RedisCache::get_or_insert_with", |h| {
        h.other.get_or_insert_with(|| "x".into()).map(drop)
    }),
    ("RedisCache::get_many", |h| {
        RedisCache::get_many([&h.other, &h.value]).map(drop)
    }),
    ("RedisCache::incr with TTL", |h| h.counter.incr(1).map(drop)),
    ("RedisCache::clear", |h| h.other.clear().map(drop)),
    ("DictCache::insert with TTL", |h| {
        h.dict.insert("a", &1).map(drop)
    }),
    ("DictCache::set with TTL", |h| h.dict.set("a", &1).map(drop)),
    ("DictCache::remove with TTL", |h| {
        h.dict.remove("a").map(drop)
    }),
    ("DictCache::pop_item with TTL", |h| {
        h.dict.pop_item().map(drop)
    }),
    ("DictCache::get_or_insert_with", |h| {
        h.dict.get_or_insert_with("new", || 1).map(drop)
    }),
    ("DictCache::extend of 3 batches, with TTL", |h| {
        h.dict.extend(entries(10_000)).map(drop)
    }),
    ("DictCache::iter next", |h| {
        h.big.iter().next().transpose().map(drop)
    }),
    ("DictCache::len", |h| h.big.len().map(drop)),
    ("SetCache::insert with TTL", |h| h.set.insert(&9).map(drop)),
    ("SetCache::extend of 3 batches, with TTL", |h| {
        h.set.extend(0..10_000u64).map(drop)
    }),
    ("SetCache::pop with TTL", |h| h.set.pop().map(drop)),
    ("SetCache::union", |h| h.set.union([&h.set2]).map(drop)),
    ("SetCache::intersection_store with TTL", |h| {
        h.set.intersection_store([&h.set2], &h.dest).map(drop)
    }),
    ("SetCache::symmetric_difference", |h| {
        h.set.symmetric_difference(&h.set2).map(drop)
    }),
    ("SetCache::is_subset", |h| {
        h.set.is_subset(&h.set2).map(drop)
    }),
    ("SetCache::to_hash_set", |h| h.set.to_hash_set().map(drop)),
    ("SortedSetCache::insert with TTL", |h| {
        h.zset.insert("c", 3.0).map(drop)
    }),
    ("SortedSetCache::incr_score with TTL", |h| {
        h.zset.incr_score("c", 1.0).map(drop)
    }),
    ("SortedSetCache::pop_min with TTL", |h| {
        h.zset.pop_min().map(drop)
    }),
    ("SortedSetCache::extend of 3 batches, with TTL", |h| {
        h.zset
            .extend((0..10_000).map(|i| (format!("m{i}"), f64::from(i))))
            .map(drop)
    }),
    ("SortedSetCache::range_by_score", |h| {
        h.zset.range_by_score(.., Limit::first(10)).map(drop)
    }),
    ("SortedSetCache::remove_range with TTL", |h| {
        h.zset.remove_range(0..1).map(drop)
    }),
    ("SentinelCache::claim with TTL", |h| {
        h.gate.claim().map(drop)
    }),
    ("SentinelCache::clear", |h| h.gate.clear().map(drop)),
    ("Region::set, 12 levels, with TTL", |h| {
        h.deep.set("x", &2u64).map(drop)
    }),
    ("Region::insert, 12 levels, with TTL", |h| {
        h.deep.insert("x", &3u64).map(drop)
    }),
    ("Region::get", |h| h.deep.get::<u64>("x").map(drop)),
    ("Region::transaction commit, 12 levels", |h| {
        h.deep.transaction(|tx| {
            tx.set("x", &4u64)?;
            tx.set("y", &5u64)?;
            tx.delete("z")
        })
    }),
    ("Region::create", |h| h.deep.region("m").create()),
    ("Region::invalidate", |h| h.top.invalidate().map(drop)),
    ("Region memoized call", |h| {
        h.deep
            .memo("double", |x: u64| x * 2)
            .build()
            .call(7)
            .map(drop)
    }),
    ("Region::keys next", |h| {
        h.deep.keys().next().transpose().map(drop)
    }),
    ("Memo::call (hit)", |h| h.memo.call(1).map(drop)),
    ("Memo::call (miss)", |h| h.memo.call(2).map(drop)),
    ("Memo::forget", |h| h.memo.forget(1).map(drop)),
    ("Memo::stats", |h| h.memo.stats().map(drop)),
    ("Memo::reset_stats", |h| h.memo.reset_stats().map(drop)),
    ("Memo::clear", |h| h.memo.clear().map(drop)),
    ("MemoCounter::incr", |h| h.memo_counter.incr(1, 1).map(drop)),
    ("MemoList::push", |h| h.memo_list.push(1, &2).map(drop)),
];

/// The calls that encode or decode 20,000 items: in a debug build that local work takes tens
/// of milliseconds, more than 25% of 200 ms, so they run with the default 1 s `timeout`
/// (the bound the issue measured at 16 s).
const STALLED_BULK_CASES: &[Case] = &[
    ("DictCache::get_many of 20,000 fields", |h| {
        h.big.get_many(h.fields.iter()).map(drop)
    }),
    ("DictCache::to_hash_map of 20,000", |h| {
        h.big.to_hash_map().map(drop)
    }),
];

/// Runs each case on a stalled server, right after a call that leaves an open connection
/// in the pool of one, and returns the cases that were not a timeout, or took longer than
/// `timeout` plus 25%, or less than `timeout`.
fn stall_each(server: &RedisServer, timeout: Duration, cases: &[Case]) -> Vec<String> {
    // One pooled connection, opened before each stall: the call's clock is all it waits for.
    let conn = server.connection_with(&format!(
        "timeout={}ms&connect_timeout={}ms&pool_timeout=1s&pool_size=1",
        timeout.as_millis(),
        timeout.as_millis()
    ));
    let handles = Handles::new(&conn);
    let warm: RedisCache<String> = RedisCache::builder("st.warm").connection(&conn).build();
    let bound = timeout + margin(timeout);
    let mut wrong = Vec::new();
    for &(name, call) in cases {
        // The server may still be working through the last case's stalled request (a bulk
        // one, on a loaded machine, past this connection's timeout): the warm-up, which only
        // leaves an open connection in the pool, may take a few tries.
        let warm_until = Instant::now() + Duration::from_secs(10);
        while let Err(e) = warm.get() {
            assert!(Instant::now() < warm_until, "before {name}: {e:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server.pause();
        let (result, took) = timed(|| call(&handles));
        server.resume();
        match result {
            Ok(()) => wrong.push(format!("{name} succeeded on a stalled server")),
            Err(e) if !e.is_timeout() => wrong.push(format!("{name}: {e:?}")),
            // A connection opened inside the call times out as `Error::Connect` (the pool's
            // one connection may have gone with a background reclamation step that met the
            // stall first): the same bound.
            Err(
                e @ (Error::Redis { .. } | Error::OutcomeUnknown { .. } | Error::Connect { .. }),
            ) => {
                // Not before the timeout (wall time), and within the bound once the time
                // this thread waited for a CPU is left out.
                if took.own > bound || took.wall < timeout - Duration::from_millis(5) {
                    wrong.push(format!("{name}: {took:?} ({e})"));
                }
            }
            Err(e) => wrong.push(format!("{name}: {e:?}")),
        }
    }
    wrong
}

#[test]
fn every_call_on_a_stalled_server_fails_within_one_timeout() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let mut wrong = stall_each(&server, TIMEOUT, STALLED_CASES);
    wrong.extend(stall_each(
        &server,
        Duration::from_secs(1),
        STALLED_BULK_CASES,
    ));
    assert!(
        wrong.is_empty(),
        "not a timeout within the call's timeout + 25%: {wrong:#?}"
    );
    assert!(STALLED_CASES.len() + STALLED_BULK_CASES.len() >= 48);
}

// ---------------------------------------------------------------------------------------
// Options out of range: refused before anything is sent, at build time where possible.

/// Asserts that `err` is the configuration error for a TTL out of range, naming `key`.
fn assert_ttl_refused(what: &str, key: &str, err: &Error) {
    assert!(err.is_config(), "{what}: {err:?}");
    let shown = chain(err);
    assert!(
        shown.contains(key) && shown.contains("TTL"),
        "{what}: {shown}"
    );
}

#[test]
fn a_ttl_out_of_range_is_refused_by_try_build_for_every_type() {
    let _shared = untimed();
    for ttl in [Duration::MAX, Duration::ZERO, redis_caches::MAX_TTL * 2] {
        let errors = [
            (
                "RedisCache",
                RedisCache::<u8>::builder("t-c").ttl(ttl).try_build().err(),
            ),
            (
                "DictCache",
                DictCache::<u8, u8>::builder("t-d")
                    .ttl(ttl)
                    .try_build()
                    .err(),
            ),
            (
                "SetCache",
                SetCache::<u8>::builder("t-s").ttl(ttl).try_build().err(),
            ),
            (
                "SortedSetCache",
                SortedSetCache::<u8>::builder("t-z")
                    .ttl(ttl)
                    .try_build()
                    .err(),
            ),
            (
                "SentinelCache",
                SentinelCache::builder("t-g").ttl(ttl).try_build().err(),
            ),
            ("Region", Region::builder("t-r").ttl(ttl).try_build().err()),
        ];
        for (what, err) in errors {
            let err = err.unwrap_or_else(|| panic!("{what} built with a TTL of {ttl:?}"));
            assert_ttl_refused(what, "t-", &err);
        }
    }
    // The bounds themselves are accepted.
    for ttl in [redis_caches::MIN_TTL, redis_caches::MAX_TTL] {
        assert!(
            DictCache::<u8, u8>::builder("t-d")
                .ttl(ttl)
                .try_build()
                .is_ok()
        );
    }
}

#[test]
fn a_ttl_out_of_range_sends_nothing_and_stores_nothing_from_any_operation() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    // Data already there, which no refused operation may change.
    redis::pipe()
        .cmd("HSET")
        .arg("bad-dict")
        .arg("f")
        .arg("old")
        .cmd("SADD")
        .arg("bad-set")
        .arg("old")
        .cmd("ZADD")
        .arg("bad-zset")
        .arg(1)
        .arg("old")
        .cmd("SET")
        .arg("bad-counter")
        .arg(10)
        .exec(&mut raw)
        .unwrap();
    let before: Vec<Vec<u8>> = ["bad-dict", "bad-set", "bad-zset", "bad-counter"]
        .iter()
        .map(|k| redis::cmd("DUMP").arg(*k).query(&mut raw).unwrap())
        .collect();
    let forever = Duration::MAX;
    let dict: DictCache<String, String, Raw> = DictCache::builder("bad-dict")
        .connection(&conn)
        .codec(Raw)
        .ttl(forever)
        .build();
    let set: SetCache<String, Raw> = SetCache::builder("bad-set")
        .connection(&conn)
        .codec(Raw)
        .ttl(forever)
        .build();
    let zset: SortedSetCache<String, Raw> = SortedSetCache::builder("bad-zset")
        .connection(&conn)
        .codec(Raw)
        .ttl(forever)
        .build();
    let counter = RedisCache::<i64>::counter("bad-counter")
        .connection(&conn)
        .ttl(forever)
        .build();
    let fresh: RedisCache<String> = RedisCache::builder("bad-fresh")
        .connection(&conn)
        .ttl(forever)
        .build();
    let gate = SentinelCache::builder("bad-gate")
        .connection(&conn)
        .ttl(forever)
        .build();
    let region = Region::builder("bad-region")
        .connection(&conn)
        .ttl(forever)
        .build();
    let sent = server.count_commands(|| {
        let results: Vec<(&str, &str, Error)> = vec![
            (
                "DictCache::set",
                "bad-dict",
                dict.set("f", "new").unwrap_err(),
            ),
            (
                "DictCache::insert",
                "bad-dict",
                dict.insert("g", "new").unwrap_err(),
            ),
            (
                "DictCache::pop_item",
                "bad-dict",
                dict.pop_item().unwrap_err(),
            ),
            (
                "DictCache::remove",
                "bad-dict",
                dict.remove("f").unwrap_err(),
            ),
            (
                "DictCache::extend",
                "bad-dict",
                dict.extend([("h", "new")]).unwrap_err(),
            ),
            ("DictCache::get", "bad-dict", dict.get("f").unwrap_err()),
            (
                "SetCache::extend",
                "bad-set",
                set.extend(["a", "b"]).unwrap_err(),
            ),
            ("SetCache::insert", "bad-set", set.insert("a").unwrap_err()),
            ("SetCache::pop", "bad-set", set.pop().unwrap_err()),
            (
                "SortedSetCache::insert",
                "bad-zset",
                zset.insert("a", 1.0).unwrap_err(),
            ),
            (
                "SortedSetCache::incr_score",
                "bad-zset",
                zset.incr_score("old", 1.0).unwrap_err(),
            ),
            (
                "SortedSetCache::pop_min",
                "bad-zset",
                zset.pop_min().unwrap_err(),
            ),
            (
                "RedisCache::incr",
                "bad-counter",
                counter.incr(1).unwrap_err(),
            ),
            ("RedisCache::set", "bad-fresh", fresh.set("v").unwrap_err()),
            (
                "SentinelCache::claim",
                "bad-gate",
                gate.claim().unwrap_err(),
            ),
            (
                "Region::set",
                "bad-region",
                region.set("k", &1u8).unwrap_err(),
            ),
            (
                "Region::transaction",
                "bad-region",
                region.transaction(|tx| tx.set("k", &1u8)).unwrap_err(),
            ),
            ("Region::create", "bad-region", region.create().unwrap_err()),
            (
                "Region::invalidate",
                "bad-region",
                region.invalidate().unwrap_err(),
            ),
        ];
        for (what, key, err) in &results {
            assert_ttl_refused(what, key, err);
        }
        // `expire` checks its own argument the same way.
        let ok: DictCache<String, String> =
            DictCache::builder("bad-dict").connection(&conn).build();
        for ttl in [Duration::MAX, Duration::ZERO] {
            assert_ttl_refused(
                "DictCache::expire",
                "bad-dict",
                &ok.expire(ttl).unwrap_err(),
            );
        }
    });
    assert!(sent.is_empty(), "commands were sent: {sent:?}");
    let after: Vec<Vec<u8>> = ["bad-dict", "bad-set", "bad-zset", "bad-counter"]
        .iter()
        .map(|k| redis::cmd("DUMP").arg(*k).query(&mut raw).unwrap())
        .collect();
    assert_eq!(before, after, "a refused operation changed the data");
    let n: usize = redis::cmd("DBSIZE").query(&mut raw).unwrap();
    assert_eq!(n, 4, "a refused operation created a key");
    for key in ["bad-dict", "bad-set", "bad-zset", "bad-counter"] {
        assert_eq!(support::redis_helpers::raw_pttl(&server, key), -1, "{key}");
    }
}

#[test]
fn memo_options_out_of_range_are_config_errors_and_never_panic() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let calls = Arc::new(AtomicUsize::new(0));
    for (what, memo) in [
        (
            "ttl",
            Memo::builder("bad-ttl", |x: u8| x).ttl(Duration::MAX),
        ),
        (
            "refresh",
            Memo::builder("bad-refresh", |x: u8| x)
                .ttl(Duration::from_secs(1))
                .refresh(Duration::ZERO),
        ),
        (
            "lock timeout",
            Memo::builder("bad-lock", |x: u8| x).lock_timeout(Duration::MAX),
        ),
    ] {
        let memo = memo.connection(&conn).build();
        let sent = server.count_commands(|| {
            let err = memo.call(1).unwrap_err();
            assert!(err.is_config(), "{what}: {err:?}");
            assert!(memo.forget(1).unwrap_err().is_config(), "{what}");
        });
        assert!(sent.is_empty(), "{what}: {sent:?}");
    }

    // A wait without end saturates instead of overflowing `Instant`: the waiter polls until
    // the holder's lock expires, then computes and stores the result itself.
    let counted = calls.clone();
    let memo = Memo::builder("long-wait", move |x: u64| {
        counted.fetch_add(1, Ordering::SeqCst);
        x + 1
    })
    .connection(&conn)
    .wait_timeout(Duration::MAX)
    .build();
    let lock = "{memo:long-wait}.lock.%07";
    redis::cmd("SET")
        .arg(lock)
        .arg("another-holder")
        .arg("PX")
        .arg(300)
        .exec(&mut server.raw())
        .unwrap();
    let (got, took) = timed(|| memo.call(7));
    assert_eq!(got.unwrap(), 8);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        took.wall >= Duration::from_millis(250),
        "waited for the lock: {took:?}"
    );
    assert!(took.wall < Duration::from_secs(5), "{took:?}");
    assert_eq!(memo.call(7).unwrap(), 8);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "stored by the waiter");
}

// ---------------------------------------------------------------------------------------
// Writes over keys of another type, and writes a user may not make: refused whole.

/// One handle of each type, on fixed keys, for the write matrices below.
struct Writers {
    text: RedisCache<String>,
    counter: RedisCache<i64, Raw>,
    dict: DictCache<String, u64>,
    set: SetCache<u64>,
    source: SetCache<u64>,
    zset: SortedSetCache<String>,
    gate: SentinelCache,
    region: Region,
    memo: Memo<u64, u64>,
}

/// The keys of [`Writers`], as Redis names them (the region's hash, named by its generation,
/// is found with [`Region::key`] once the region exists).
const WRITER_KEYS: &[&str] = &[
    "w-text",
    "w-counter",
    "w-dict",
    "{w}-set",
    "w-zset",
    "w-gate",
];

impl Writers {
    /// The handles, with `ttl` (and `policy`) or without a TTL.
    fn new(conn: &Connection, ttl: Option<(Duration, redis_caches::TtlPolicy)>) -> Writers {
        macro_rules! with_ttl {
            ($builder:expr) => {{
                let b = $builder.connection(conn);
                match ttl {
                    Some((ttl, policy)) => b.ttl(ttl).ttl_policy(policy).build(),
                    None => b.build(),
                }
            }};
        }
        Writers {
            text: with_ttl!(RedisCache::builder("w-text")),
            counter: with_ttl!(RedisCache::<i64>::counter("w-counter")),
            dict: with_ttl!(DictCache::builder("w-dict")),
            set: with_ttl!(SetCache::builder("{w}-set")),
            source: SetCache::builder("{w}-source").connection(conn).build(),
            zset: with_ttl!(SortedSetCache::builder("w-zset")),
            gate: with_ttl!(SentinelCache::builder("w-gate")),
            // Reclaimed by hand, so that no background step changes the tree between a
            // test's snapshots.
            region: with_ttl!(
                Region::builder("r")
                    .root("w")
                    .reclaim(redis_caches::region::Reclaim::Manual)
            ),
            memo: Memo::builder("w-memo", |x: u64| x + 1)
                .connection(conn)
                .ttl(Duration::from_secs(60))
                .build(),
        }
    }
}

/// Every write of every type (and the reads that write on a miss).
const WRITES: &[Case<Writers>] = &[
    ("RedisCache::set", |w| w.text.set("new")),
    ("RedisCache::get_or_insert_with", |w| {
        w.text.get_or_insert_with(|| "new".into()).map(drop)
    }),
    ("RedisCache::incr", |w| w.counter.incr(5).map(drop)),
    ("RedisCache::clear", |w| w.text.clear().map(drop)),
    ("DictCache::insert", |w| w.dict.insert("f", &5).map(drop)),
    ("DictCache::set", |w| w.dict.set("f", &5).map(drop)),
    ("DictCache::remove", |w| w.dict.remove("old").map(drop)),
    ("DictCache::delete", |w| w.dict.delete("old").map(drop)),
    ("DictCache::extend", |w| {
        w.dict.extend([("f", 5), ("g", 6)]).map(drop)
    }),
    ("DictCache::pop_item", |w| w.dict.pop_item().map(drop)),
    ("DictCache::get_or_insert_with", |w| {
        w.dict.get_or_insert_with("f", || 5).map(drop)
    }),
    ("SetCache::insert", |w| w.set.insert(&5).map(drop)),
    ("SetCache::remove", |w| w.set.remove(&1).map(drop)),
    ("SetCache::extend", |w| w.set.extend([5, 6]).map(drop)),
    ("SetCache::pop", |w| w.set.pop().map(drop)),
    ("SetCache::union_store", |w| {
        w.source.union_store([], &w.set).map(drop)
    }),
    ("SortedSetCache::insert", |w| {
        w.zset.insert("m", 5.0).map(drop)
    }),
    ("SortedSetCache::insert_with", |w| {
        w.zset
            .insert_with("m", 5.0, redis_caches::sorted_set::InsertMode::NewOrGreater)
            .map(drop)
    }),
    ("SortedSetCache::incr_score", |w| {
        w.zset.incr_score("old", 5.0).map(drop)
    }),
    ("SortedSetCache::remove", |w| w.zset.remove("old").map(drop)),
    ("SortedSetCache::remove_range", |w| {
        w.zset.remove_range(..).map(drop)
    }),
    ("SortedSetCache::remove_range_by_score", |w| {
        w.zset.remove_range_by_score(..).map(drop)
    }),
    ("SortedSetCache::extend", |w| {
        w.zset.extend([("m", 5.0), ("n", 6.0)]).map(drop)
    }),
    ("SortedSetCache::pop_min", |w| w.zset.pop_min().map(drop)),
    ("SentinelCache::claim", |w| w.gate.claim().map(drop)),
    ("Region::set", |w| w.region.set("f", &5u64).map(drop)),
    ("Region::insert", |w| w.region.insert("f", &5u64).map(drop)),
    ("Region::remove", |w| {
        w.region.remove::<u64>("old").map(drop)
    }),
    ("Region::delete", |w| w.region.delete("old").map(drop)),
    ("Region::get_or_insert_with", |w| {
        w.region.get_or_insert_with("f", || 5u64).map(drop)
    }),
    ("Region::transaction", |w| {
        w.region.transaction(|tx| {
            tx.set("f", &5u64)?;
            tx.delete("old")
        })
    }),
    ("Region::transaction with clear", |w| {
        w.region.transaction(|tx| {
            tx.clear();
            tx.set("f", &5u64)
        })
    }),
    ("Region memoized call", |w| {
        w.region.memo("m", |x: u64| x + 1).build().call(1).map(drop)
    }),
    ("Region::create", |w| w.region.region("child").create()),
    ("Region::invalidate", |w| w.region.invalidate().map(drop)),
    ("Memo::call", |w| w.memo.call(1).map(drop)),
    ("Memo::call (miss)", |w| w.memo.call(2).map(drop)),
    ("Memo::forget", |w| w.memo.forget(1).map(drop)),
];

/// Every key of the database with its type and contents (elements sorted, since a set's or
/// hash's order, and so its `DUMP`, may change when nothing else does) and its TTL in
/// milliseconds (0 for none), read in one script.
fn contents(raw: &mut redis::Connection) -> HashMap<String, (Vec<Vec<u8>>, i64)> {
    let rows: Vec<(String, Vec<Vec<u8>>, i64)> = redis::Script::new(
        r"
local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local t = redis.call('TYPE', k)['ok']
  local items
  if t == 'string' then items = {redis.call('GET', k)}
  elseif t == 'hash' then
    items = {}
    local flat = redis.call('HGETALL', k)
    for i = 1, #flat, 2 do items[#items + 1] = flat[i] .. '=' .. flat[i + 1] end
    table.sort(items)
  elseif t == 'set' then items = redis.call('SMEMBERS', k); table.sort(items)
  elseif t == 'zset' then items = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'list' then items = redis.call('LRANGE', k, 0, -1)
  else items = {} end
  table.insert(items, 1, t)
  local ttl = redis.call('PTTL', k)
  if ttl < 0 then ttl = 0 end
  out[#out + 1] = {k, items, ttl}
end
return out
",
    )
    .invoke(raw)
    .unwrap();
    rows.into_iter()
        .map(|(k, items, ttl)| (k, (items, ttl)))
        .collect()
}

/// [`contents`] with TTLs reduced to whether there is one: what a refused operation must
/// leave exactly as it was.
fn snapshot(raw: &mut redis::Connection) -> HashMap<String, (Vec<Vec<u8>>, bool)> {
    contents(raw)
        .into_iter()
        .map(|(k, (items, ttl))| (k, (items, ttl > 0)))
        .collect()
}

#[test]
fn a_write_over_a_key_of_another_type_changes_nothing_except_redis_cache_set() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let ttl = Duration::from_secs(60);
    for options in [
        None,
        Some((ttl, redis_caches::TtlPolicy::Refresh)),
        Some((ttl, redis_caches::TtlPolicy::Keep)),
    ] {
        let w = Writers::new(&conn, options);
        for &(name, write) in WRITES {
            // A list with a TTL at every key (the region's hash included, its tree left as
            // it is): no collection keeps a list there.
            redis::cmd("FLUSHALL").exec(&mut raw).unwrap();
            w.region.set("seed", &0u64).unwrap();
            let region_hash = w
                .region
                .key()
                .unwrap()
                .expect("a created region has a hash");
            let lists = WRITER_KEYS
                .iter()
                .copied()
                .chain(["{memo:w-memo}.v.%01", region_hash.as_str()]);
            for key in lists {
                redis::pipe()
                    .cmd("DEL")
                    .arg(key)
                    .cmd("RPUSH")
                    .arg(key)
                    .arg("foreign")
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(3_600_000)
                    .exec(&mut raw)
                    .unwrap();
            }
            let before = snapshot(&mut raw);
            let result = write(&w);
            let after = snapshot(&mut raw);
            let what = format!("{name} ({options:?})");
            match name {
                // Redis' SET: replaces the list (documented), and nothing else.
                "RedisCache::set" => {
                    result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let kind: String = redis::cmd("TYPE").arg("w-text").query(&mut raw).unwrap();
                    assert_eq!(kind, "string", "{what}");
                    let changed: Vec<_> = after
                        .keys()
                        .filter(|k| after.get(*k) != before.get(*k))
                        .collect();
                    assert_eq!(changed, ["w-text"], "{what}");
                }
                // Deleting a key is no write over its type.
                "RedisCache::clear" => result.unwrap(),
                // A child's place in the tree (its parent's map of children): the foreign
                // keys, the parent's hash included, are left as they are.
                "Region::create" => {
                    assert_eq!(result.map_err(|e| format!("{e:?}")), Ok(()), "{what}");
                    for key in WRITER_KEYS.iter().copied().chain([region_hash.as_str()]) {
                        assert_eq!(after.get(key), before.get(key), "{what}: {key}");
                    }
                }
                // Invalidation retires the region's generation; the list at its hash's name is
                // not a region, so reclaiming the generation leaves it.
                "Region::invalidate" => {
                    assert_eq!(result.map_err(|e| format!("{e:?}")), Ok(()), "{what}");
                    w.region.reclaim().unwrap();
                    let now = snapshot(&mut raw);
                    for key in WRITER_KEYS.iter().copied().chain([region_hash.as_str()]) {
                        assert_eq!(now.get(key), before.get(key), "{what}: {key}");
                    }
                }
                // A memo entry of another type is refused, never read as a value.
                "Memo::call" | "Region memoized call" => {
                    assert!(result.is_err(), "{what}");
                    assert_eq!(after, before, "{what}");
                }
                "Memo::forget" | "Memo::call (miss)" => {
                    assert!(
                        result.is_ok(),
                        "{what}: forgetting deletes whatever is there"
                    );
                }
                _ => {
                    let err = result.expect_err(&what);
                    assert!(err.is_wrong_type(), "{what}: {err:?}");
                    assert_eq!(after, before, "{what}: the refused write changed something");
                }
            }
        }
    }
}

#[test]
fn a_refused_region_write_creates_nothing_and_leaves_the_foreign_key_alone() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let ttl = Duration::from_secs(60);
    let leaf = Region::builder("a.b")
        .root("rw")
        .connection(&conn)
        .ttl(ttl)
        .build();
    let plain = Region::builder("a.b").root("rw").connection(&conn).build();
    // The leaf's hash (named by its generation) replaced by a list without a TTL.
    leaf.set("k", &1u8).unwrap();
    let hash = leaf.key().unwrap().expect("a written region has a hash");
    redis::pipe()
        .cmd("DEL")
        .arg(&hash)
        .cmd("RPUSH")
        .arg(&hash)
        .arg("foreign")
        .exec(&mut raw)
        .unwrap();
    let snapshot = |raw: &mut redis::Connection| {
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(raw).unwrap();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(raw).unwrap();
                (k, dump)
            })
            .collect::<Vec<_>>()
    };
    let before = snapshot(&mut raw);
    let refused: Vec<(&str, Result<()>)> = vec![
        ("set", leaf.set("k", &1u8).map(drop)),
        ("set without TTL", plain.set("k", &1u8).map(drop)),
        ("insert", leaf.insert("k", &1u8).map(drop)),
        (
            "get_or_insert_with",
            leaf.get_or_insert_with("k", || 1u8).map(drop),
        ),
        ("transaction", leaf.transaction(|tx| tx.set("k", &1u8))),
        (
            "transaction without TTL",
            plain.transaction(|tx| {
                tx.clear();
                tx.set("k", &1u8)
            }),
        ),
        (
            "dict view set",
            leaf.dict::<String, u8>().set("k", &1).map(drop),
        ),
        (
            "dict view extend",
            leaf.dict::<String, u8>().extend([("k", 1)]).map(drop),
        ),
    ];
    for (what, result) in refused {
        match result {
            Err(Error::WrongType { found, .. }) => assert_eq!(found, "list", "{what}"),
            other => panic!("{what}: expected WrongType, got {other:?}"),
        }
        assert_eq!(
            snapshot(&mut raw),
            before,
            "{what}: a refused write changed something"
        );
        assert_eq!(
            support::redis_helpers::raw_pttl(&server, &hash),
            -1,
            "{what}"
        );
    }
    // Reclamation after an invalidation deletes only retired regions' hashes and maps:
    // tests/region.rs::reclamation_deletes_only_the_keys_of_retired_regions.
}

// ---------------------------------------------------------------------------------------
// A server that refuses writes: nothing of a refused operation is written, reads work, a
// memoized value already cached is served.

/// `CONFIG SET name value` on a plain connection.
fn config_set(server: &RedisServer, name: &str, value: impl redis::ToRedisArgs) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .exec(&mut server.raw())
        .unwrap();
}

/// The server's `used_memory`.
fn used_memory(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut server.raw())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Makes the server refuse writes: out of memory under `noeviction` (`OOM`), or too few
/// replicas (`NOREPLICAS`). `None` lifts the refusal.
fn refuse_writes(server: &RedisServer, how: Option<&str>) {
    match how {
        Some("OOM") => {
            config_set(server, "maxmemory-policy", "noeviction");
            config_set(server, "maxmemory", 1);
        }
        Some("NOREPLICAS") => config_set(server, "min-replicas-to-write", 1),
        Some(other) => panic!("{other}"),
        None => {
            config_set(server, "maxmemory", 0);
            config_set(server, "min-replicas-to-write", 0);
        }
    }
}

#[test]
fn a_server_refusing_writes_refuses_every_write_whole_and_still_serves_reads() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let ttl = Duration::from_secs(60);
    for how in ["OOM", "NOREPLICAS"] {
        for options in [None, Some((ttl, redis_caches::TtlPolicy::Refresh))] {
            let w = Writers::new(&conn, options);
            for &(name, write) in WRITES {
                refuse_writes(&server, None);
                redis::cmd("FLUSHALL").exec(&mut raw).unwrap();
                // Existing data, so that removals have something to remove.
                w.dict.extend([("old", 1), ("other", 2)]).unwrap();
                w.set.extend([1, 2]).unwrap();
                w.zset.extend([("old", 1.0), ("other", 2.0)]).unwrap();
                w.region.set("old", &1u64).unwrap();
                w.text.set("old").unwrap();
                refuse_writes(&server, Some(how));
                let before = snapshot(&mut raw);
                let result = write(&w);
                let after = snapshot(&mut raw);
                let what = format!("{name} ({how}, {options:?})");
                match result {
                    Err(e) => {
                        assert!(e.is_write_refused(), "{what}: {e:?}");
                        assert_eq!(after, before, "{what}: a refused write changed something");
                    }
                    // A read that found what it needed wrote nothing. Removals free
                    // memory, so Redis lets them run even when out of memory; without
                    // replicas it refuses them too (min-replicas-to-write applies to every
                    // write).
                    Ok(()) if after == before => {}
                    Ok(()) => assert!(
                        how == "OOM"
                            && ["remove", "delete", "pop", "clear", "invalidate", "forget"]
                                .iter()
                                .any(|r| name.to_lowercase().contains(r)),
                        "{what} wrote while refused"
                    ),
                }
                // Reads still work.
                assert_eq!(w.dict.len().unwrap(), w.dict.len().unwrap());
                assert!(w.text.get().is_ok(), "{what}");
            }
        }
    }
    refuse_writes(&server, None);
}

#[test]
fn memo_reads_are_served_when_the_server_refuses_writes() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    for how in ["OOM", "NOREPLICAS"] {
        refuse_writes(&server, None);
        let calls = Arc::new(AtomicUsize::new(0));
        let memo = |policy: OutagePolicy| {
            let calls = calls.clone();
            Memo::builder(format!("refused-{how}"), move |x: u64| {
                calls.fetch_add(1, Ordering::SeqCst);
                x * 10
            })
            .connection(&conn)
            .ttl(Duration::from_secs(60))
            .on_outage(policy)
            .build()
        };
        let fail = memo(OutagePolicy::Fail);
        let miss = memo(OutagePolicy::Miss);
        assert_eq!(fail.call(1).unwrap(), 10);
        let stats_before = fail.stats().unwrap();
        refuse_writes(&server, Some(how));

        // A cached value is served; its hit is not counted in Redis but in the process.
        for _ in 0..3 {
            assert_eq!(fail.call(1).unwrap(), 10, "{how}");
            assert_eq!(miss.call(1).unwrap(), 10, "{how}");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "{how}: served from the cache"
        );
        let stats = fail.stats().unwrap();
        assert_eq!(
            stats.hits, stats_before.hits,
            "{how}: no statistics written"
        );
        assert_eq!(stats.unrecorded, 3, "{how}: {stats:?}");
        assert_eq!(miss.stats().unwrap().unrecorded, 3, "{how}");

        // A miss: Fail returns the typed refusal; Miss computes without storing.
        let err = fail.call(2).unwrap_err();
        assert!(
            err.is_write_refused() && !err.is_connection(),
            "{how}: {err:?}"
        );
        assert!(chain(&err).contains(how), "{how}: {}", chain(&err));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "{how}: Fail does not compute"
        );
        assert_eq!(miss.call(2).unwrap(), 20, "{how}");
        assert_eq!(miss.call(2).unwrap(), 20, "{how}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "{how}: computed each time, unstored"
        );
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{memo:refused-{how}}}.*"))
            .query(&mut server.raw())
            .unwrap();
        assert!(
            !keys
                .iter()
                .any(|k| k.contains(".v.%02") || k.contains(".lock.")),
            "{how}: nothing stored for the miss: {keys:?}"
        );

        // Writes accepted again: the miss is computed and stored as usual.
        refuse_writes(&server, None);
        assert_eq!(fail.call(2).unwrap(), 20);
        assert_eq!(fail.call(2).unwrap(), 20);
        assert_eq!(calls.load(Ordering::SeqCst), 4, "{how}");
    }
}

#[test]
fn extend_under_a_memory_limit_stores_whole_batches_only() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let value = "v".repeat(100);
    let dict: DictCache<u32, String> = DictCache::builder("oom-dict").connection(&conn).build();
    let dict_ttl: DictCache<u32, String> = DictCache::builder("oom-dict-ttl")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    let set: SetCache<String> = SetCache::builder("oom-set")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    type Op<'a> = Box<dyn Fn() -> Result<usize> + 'a>;
    let cases: Vec<(&str, usize, Op, Op)> = vec![
        (
            "DictCache",
            4096,
            Box::new(|| dict.extend((0..40_000u32).map(|i| (i, value.clone())))),
            Box::new(|| dict.len()),
        ),
        (
            "DictCache with TTL",
            4096,
            Box::new(|| dict_ttl.extend((0..40_000u32).map(|i| (i, value.clone())))),
            Box::new(|| dict_ttl.len()),
        ),
        (
            "SetCache with TTL",
            1000,
            Box::new(|| set.extend((0..40_000u32).map(|i| format!("{i:0100}")))),
            Box::new(|| set.len()),
        ),
    ];
    for (what, batch, extend, len) in cases {
        // SYNC: freed before `used_memory` is read (Valkey 8 frees a plain FLUSHALL in the
        // background, so the memory of the case before could count toward this one's limit).
        redis::cmd("FLUSHALL").arg("SYNC").exec(&mut raw).unwrap();
        config_set(&server, "maxmemory-policy", "noeviction");
        // Room for about two batches' worth.
        config_set(&server, "maxmemory", used_memory(&server) + 2 * 1024 * 1024);
        let err = match extend() {
            Err(e) => e,
            Ok(n) => panic!("{what}: all {n} stored under the memory limit"),
        };
        config_set(&server, "maxmemory", 0);
        assert!(err.is_write_refused(), "{what}: {err:?}");
        let n = len().unwrap();
        assert!(n > 0 && n < 40_000, "{what}: {n} stored");
        assert_eq!(n % batch, 0, "{what}: part of a batch was stored ({n})");
    }
}

/// Every key of the database as `(key, dump, ttl ms)`, read in one script: what
/// [`restore_all`] puts back.
fn dump_all(raw: &mut redis::Connection) -> Vec<(String, Vec<u8>, i64)> {
    redis::Script::new(
        r"
local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local ttl = redis.call('PTTL', k)
  if ttl < 0 then ttl = 0 end
  out[#out + 1] = {k, redis.call('DUMP', k), ttl}
end
return out
",
    )
    .invoke(raw)
    .unwrap()
}

/// Whether two [`contents`] hold the same keys, values and TTLs (within a second: the
/// fixture's TTLs are an hour, far from any TTL the crate would set).
fn same_data(
    a: &HashMap<String, (Vec<Vec<u8>>, i64)>,
    b: &HashMap<String, (Vec<Vec<u8>>, i64)>,
) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, (v, t))| {
            b.get(k)
                .is_some_and(|(v2, t2)| v == v2 && (t - t2).abs() < 1000 && (*t == 0) == (*t2 == 0))
        })
}

/// Puts the database back to `fixture` (from [`dump_all`]) in one round trip; keys with a
/// TTL get an hour.
fn restore_all(raw: &mut redis::Connection, fixture: &[(String, Vec<u8>, i64)]) {
    let mut pipe = redis::pipe();
    pipe.cmd("FLUSHALL");
    for (key, dump, ttl) in fixture {
        let ttl = if *ttl > 0 { 3_600_000 } else { 0 };
        pipe.cmd("RESTORE").arg(key).arg(ttl).arg(dump.as_slice());
    }
    pipe.exec(raw).unwrap();
}

/// The commands the crate's operations and scripts run, each of which a user may lack.
const COMMANDS: &[&str] = &[
    "evalsha",
    "eval",
    "get",
    "set",
    "del",
    "unlink",
    "exists",
    "type",
    "pttl",
    "pexpire",
    "incrby",
    "hget",
    "hset",
    "hsetnx",
    "hdel",
    "hrandfield",
    "hincrby",
    "hgetall",
    "sadd",
    "srem",
    "spop",
    "smembers",
    "sunionstore",
    "zadd",
    "zincrby",
    "zrem",
    "zpopmin",
    "zremrangebyrank",
    "zremrangebyscore",
    "lrange",
    "rpush",
];

#[test]
fn a_user_missing_a_permission_gets_a_typed_error_and_nothing_is_written() {
    let _shared = untimed();
    // Redis 6.2 has no `redis.acl_check_cmd`: its scripts cannot check permissions before
    // writing, and a command refused halfway through a script leaves what ran before it (as
    // the crate docs say). There the error is still typed, and nothing-written is not checked.
    let checks_first = support::server_version().redis_at_least(7, 0);
    let server = RedisServer::start();
    let admin_conn = server.connection();
    let mut admin = server.raw();
    let ttl = Duration::from_secs(60);
    let options = [
        None,
        Some((ttl, redis_caches::TtlPolicy::Refresh)),
        Some((ttl, redis_caches::TtlPolicy::Keep)),
    ];
    // The data every operation starts from, written by a user who may do everything.
    let w = Writers::new(&admin_conn, Some((ttl, redis_caches::TtlPolicy::Refresh)));
    w.dict.extend([("old", 1), ("other", 2)]).unwrap();
    w.set.extend([1, 2]).unwrap();
    w.source.extend([3]).unwrap();
    w.zset.extend([("old", 1.0), ("other", 2.0)]).unwrap();
    w.region.set("old", &1u64).unwrap();
    w.text.set("old").unwrap();
    w.counter.incr(1).unwrap();
    w.memo.call(1).unwrap();
    // Results of both memos, so that their calls below are fresh hits.
    w.region.memo("m", |x: u64| x + 1).build().call(1).unwrap();
    let fixture = dump_all(&mut admin);
    restore_all(&mut admin, &fixture);
    let expected = contents(&mut admin);

    let mut wrong = Vec::new();
    let mut refused = 0;
    for command in COMMANDS {
        let user = format!("no-{command}");
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&user)
            .arg("on")
            .arg(">pw")
            .arg("~*")
            .arg("+@all")
            .arg(format!("-{command}"))
            .exec(&mut admin)
            .unwrap();
        let conn = Connection::open(
            &support::unique(&user),
            &format!("redis://{user}:pw@127.0.0.1:{}/0", server.port()),
        )
        .unwrap();
        for option in options {
            let w = Writers::new(&conn, option);
            for &(name, write) in WRITES {
                if name.starts_with("Memo::call") {
                    // A memo handle reads fresh hits with plain commands once its read script
                    // answered: a call first, so that the one checked takes that path when
                    // this user may run the script (its data is restored right after).
                    let _ = write(&w);
                }
                restore_all(&mut admin, &fixture);
                let result = write(&w);
                let after = contents(&mut admin);
                let what = format!("{name} without {command} ({option:?})");
                // A fresh hit's one write is its statistic: without HINCRBY it is refused.
                let fresh_hit = matches!(name, "Memo::call" | "Region memoized call");
                if *command == "hincrby" && fresh_hit && result.is_ok() {
                    wrong.push(format!("{what}: a fresh hit, served without its statistic"));
                }
                if let Err(e) = result {
                    refused += 1;
                    if checks_first && !same_data(&after, &expected) {
                        wrong.push(format!("{what}: refused, yet something was written"));
                    }
                    if !e.is_permission() {
                        wrong.push(format!("{what}: {e:?}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong: {wrong:#?}", wrong.len());
    assert!(
        refused > 100,
        "only {refused} refusals: is the ACL applied?"
    );
}

#[test]
fn a_user_limited_to_the_keys_it_uses_is_never_refused() {
    let _shared = untimed();
    // The scripts check permissions with the keys they touch, never with placeholder
    // arguments that a key pattern would refuse.
    let server = RedisServer::start();
    let mut admin = server.raw();
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "keys",
            "on",
            ">pw",
            "+@all",
            "~w-*",
            "~{w}*",
            "~{memo:w-memo}*",
        ])
        .exec(&mut admin)
        .unwrap();
    let conn = Connection::open(
        &support::unique("keys"),
        &format!("redis://keys:pw@127.0.0.1:{}/0", server.port()),
    )
    .unwrap();
    let ttl = Duration::from_secs(60);
    for option in [
        None,
        Some((ttl, redis_caches::TtlPolicy::Refresh)),
        Some((ttl, redis_caches::TtlPolicy::Keep)),
    ] {
        let w = Writers::new(&conn, option);
        for &(name, write) in WRITES {
            write(&w).unwrap_or_else(|e| panic!("{name} ({option:?}): {e:?}"));
        }
    }
    // A key outside the patterns is refused, typed, before anything is written.
    let outside: DictCache<String, u64> = DictCache::builder("elsewhere")
        .connection(&conn)
        .ttl(ttl)
        .build();
    let err = outside.insert("f", &1).unwrap_err();
    assert!(err.is_permission(), "{err:?}");
    let n: usize = redis::cmd("EXISTS")
        .arg("elsewhere")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn the_issues_minimal_user_is_refused_typed_and_never_sees_another_keys_value() {
    let _shared = untimed();
    // `+get +set +evalsha +eval ~app:*`: may read and write strings, run scripts, and
    // nothing else (no HSET, no TYPE, no PEXPIRE).
    let server = RedisServer::start();
    let mut admin = server.raw();
    redis::cmd("ACL")
        .arg(&[
            "SETUSER", "app", "on", ">pw", "+get", "+set", "+evalsha", "+eval", "~app:*",
        ])
        .exec(&mut admin)
        .unwrap();
    let conn = Connection::open(
        &support::unique("app"),
        &format!("redis://app:pw@127.0.0.1:{}/0?pool_size=1", server.port()),
    )
    .unwrap();
    let a: RedisCache<String> = RedisCache::builder("app:a").connection(&conn).build();
    let b: RedisCache<String> = RedisCache::builder("app:b").connection(&conn).build();
    a.set("A").unwrap();
    b.set("B").unwrap();
    let ttl = Duration::from_secs(60);
    let dict: DictCache<String, u8> = DictCache::builder("app:d").connection(&conn).build();
    let dict_ttl: DictCache<String, u8> = DictCache::builder("app:dt")
        .connection(&conn)
        .ttl(ttl)
        .build();
    let keep: RedisCache<String> = RedisCache::builder("app:k")
        .connection(&conn)
        .ttl(ttl)
        .ttl_policy(redis_caches::TtlPolicy::Keep)
        .build();
    let region = Region::builder("r").root("app:").connection(&conn).build();
    let refused: Vec<(&str, Result<()>)> = vec![
        ("DictCache::set", dict.set("f", &1).map(drop)),
        ("DictCache::insert", dict.insert("f", &1).map(drop)),
        ("DictCache::set with TTL", dict_ttl.set("f", &1).map(drop)),
        ("RedisCache::set, Keep", keep.set("v")),
        ("Region::set", region.set("f", &1u8).map(drop)),
        (
            "Region::transaction",
            region.transaction(|tx| tx.set("f", &1u8)),
        ),
    ];
    for (what, result) in refused {
        let err = result.expect_err(what);
        assert!(err.is_permission(), "{what}: {err:?}");
        assert!(
            chain(&err).contains("NOPERM") || chain(&err).contains("permission"),
            "{what}"
        );
        // The connection that saw the refusal answers the next call with its own value.
        assert_eq!(a.get().unwrap().as_deref(), Some("A"), "after {what}");
        assert_eq!(b.get().unwrap().as_deref(), Some("B"), "after {what}");
    }
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    let mut keys = keys;
    keys.sort();
    if support::server_version().redis_at_least(7, 0) {
        assert_eq!(keys, ["app:a", "app:b"], "nothing else was written");
    } else {
        // Redis 6.2 cannot check a script's permissions before it writes (see the crate
        // docs): a script refused halfway leaves what ran before, always under `app:`.
        assert!(keys.iter().all(|k| k.starts_with("app:")), "{keys:?}");
    }
}

// ---------------------------------------------------------------------------------------
// A pooled connection never hands a reply to the wrong caller.

/// A connection with a pool of one, so that every call reuses the one connection when it is
/// kept, and two caches on it.
fn pool_of_one(
    server: &RedisServer,
    timeout: Duration,
) -> (Connection, RedisCache<String>, RedisCache<String>) {
    let conn = server.connection_with(&format!(
        "timeout={}ms&pool_size=1&pool_timeout=2s",
        timeout.as_millis()
    ));
    let a: RedisCache<String> = RedisCache::builder("a").connection(&conn).build();
    let b: RedisCache<String> = RedisCache::builder("b").connection(&conn).build();
    a.set("A").unwrap();
    b.set("B").unwrap();
    (conn, a, b)
}

/// Blocks the server for `ms` milliseconds from another client, in the background.
fn block_server(
    server: &RedisServer,
    command: &'static [&'static str],
) -> std::thread::JoinHandle<()> {
    let mut raw = server.raw();
    let handle = std::thread::spawn(move || {
        redis::cmd(command[0])
            .arg(&command[1..])
            .exec(&mut raw)
            .unwrap();
    });
    // Let the blocking command reach the server first.
    std::thread::sleep(Duration::from_millis(50));
    handle
}

#[test]
fn a_reply_that_arrives_after_its_timeout_never_reaches_the_next_caller() {
    let _serial = one_at_a_time();
    let server = RedisServer::start_with(&["--enable-debug-command", "local"]);
    let (conn, a, b) = pool_of_one(&server, TIMEOUT);
    for blocking in [
        &["DEBUG", "SLEEP", "0.6"][..],
        &["CLIENT", "PAUSE", "600", "ALL"][..],
    ] {
        let sleeper = block_server(&server, blocking);
        let (result, took) = timed(|| a.get());
        let err = result.expect_err("a read on a blocked server");
        assert!(err.is_timeout(), "{blocking:?}: {err:?}");
        assert!(
            took.own <= TIMEOUT + margin(TIMEOUT),
            "{blocking:?}: {took:?}"
        );
        sleeper.join().unwrap();
        if blocking[0] == "CLIENT" {
            redis::cmd("CLIENT")
                .arg("UNPAUSE")
                .exec(&mut server.raw())
                .unwrap();
        }
        // The late "A" went to the discarded connection: each caller gets its own value.
        for _ in 0..3 {
            assert_eq!(b.get().unwrap().as_deref(), Some("B"), "{blocking:?}");
            assert_eq!(a.get().unwrap().as_deref(), Some("A"), "{blocking:?}");
        }
        // A write whose reply was late is reported as unknown, never as done or not done.
        let counter = RedisCache::<i64>::counter("n").connection(&conn).build();
        let before = counter.get().unwrap().unwrap_or(0);
        let sleeper = block_server(&server, blocking);
        let err = counter.incr(1).unwrap_err();
        assert!(
            err.is_outcome_unknown() && err.is_timeout(),
            "{blocking:?}: {err:?}"
        );
        sleeper.join().unwrap();
        if blocking[0] == "CLIENT" {
            redis::cmd("CLIENT")
                .arg("UNPAUSE")
                .exec(&mut server.raw())
                .unwrap();
        }
        // Applied or not: either is what "unknown" allows (a paused client's command is
        // dropped when it disconnects; a command read before DEBUG SLEEP runs after it).
        let after = counter.get().unwrap().unwrap_or(0);
        assert!(
            after == before || after == before + 1,
            "{blocking:?}: {after}"
        );
        assert_eq!(b.get().unwrap().as_deref(), Some("B"), "{blocking:?}");
    }
}

#[test]
fn a_killed_connection_is_replaced_and_answers_are_never_mixed_up() {
    let _shared = untimed();
    let server = RedisServer::start();
    let (conn, a, b) = pool_of_one(&server, Duration::from_secs(1));
    let mut admin = server.raw();
    let counter = RedisCache::<i64>::counter("n").connection(&conn).build();
    for round in 0..5 {
        let killed: u64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
            .query(&mut admin)
            .unwrap();
        assert_eq!(killed, 1, "round {round}: the pool's one connection");
        // A read is sent again on a new connection.
        assert_eq!(a.get().unwrap().as_deref(), Some("A"), "round {round}");
        assert_eq!(b.get().unwrap().as_deref(), Some("B"), "round {round}");
        redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
            .exec(&mut admin)
            .unwrap();
        // A counter is not sent again when it may have run: applied, or unknown.
        let before = counter.get().ok().flatten();
        match counter.incr(1) {
            Ok(_) => {}
            Err(e) => assert!(e.is_outcome_unknown() || e.is_connection(), "{e:?}"),
        }
        let _ = before;
        assert_eq!(b.get().unwrap().as_deref(), Some("B"), "round {round}");
    }
}

#[test]
fn raw_commands_that_break_the_protocol_never_reach_the_next_caller() {
    let _shared = untimed();
    let server = RedisServer::start();
    let (conn, a, b) = pool_of_one(&server, Duration::from_secs(1));
    // A protocol error: the server answers with an error and closes the connection.
    {
        let mut pooled = conn.get().unwrap();
        let reply = redis::ConnectionLike::req_packed_command(&mut *pooled, b"*x\r\n");
        assert!(
            matches!(reply, Err(_) | Ok(redis::Value::ServerError(_))),
            "{reply:?}"
        );
    }
    // The next call is a write that must not be sent again: it gets a fresh connection,
    // not the one the server closed (where it would be reported as possibly applied).
    let counter = RedisCache::<i64>::counter("n").connection(&conn).build();
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert_eq!(a.get().unwrap().as_deref(), Some("A"));
    assert_eq!(b.get().unwrap().as_deref(), Some("B"));

    // Two commands where one reply is read: the second reply must never be read as the
    // answer to the next caller's command.
    {
        let mut pooled = conn.get().unwrap();
        let two = [
            redis::cmd("GET").arg("a").get_packed_command(),
            redis::cmd("GET").arg("a").get_packed_command(),
        ]
        .concat();
        let refused = redis::ConnectionLike::req_packed_command(&mut *pooled, &two);
        assert!(refused.is_err(), "{refused:?}");
    }
    for _ in 0..3 {
        assert_eq!(b.get().unwrap().as_deref(), Some("B"));
    }
    // A pipeline asking for more replies than it sent is refused too, and a pipeline read
    // whole is fine.
    {
        let mut pooled = conn.get().unwrap();
        let one = redis::cmd("GET").arg("a").get_packed_command();
        let reply = redis::ConnectionLike::req_packed_commands(&mut *pooled, &one, 0, 2);
        assert!(reply.is_err(), "{reply:?}");
        let (x, y): (Vec<u8>, Vec<u8>) = redis::pipe()
            .cmd("GET")
            .arg("a")
            .cmd("GET")
            .arg("b")
            .query(&mut *pooled)
            .unwrap();
        let stored = |k| support::redis_helpers::raw_get(&server, k).unwrap();
        assert_eq!((x, y), (stored("a"), stored("b")));
    }
    assert_eq!(b.get().unwrap().as_deref(), Some("B"));
    assert_eq!(a.get().unwrap().as_deref(), Some("A"));
}

#[test]
fn scripts_are_loaded_again_after_script_flush() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let mut admin = server.raw();
    let ttl = Duration::from_secs(60);
    let w = Writers::new(&conn, Some((ttl, redis_caches::TtlPolicy::Keep)));
    for &(name, write) in WRITES {
        write(&w).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        redis::cmd("SCRIPT").arg("FLUSH").exec(&mut admin).unwrap();
        write(&w).unwrap_or_else(|e| panic!("{name} after SCRIPT FLUSH: {e:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// Connections that cannot be opened: typed at once, retried at most once per back-off
// window, and recovered within the window once the cause is gone.

use redis_caches::connection::CONNECT_BACKOFF;

/// A generous `connect_timeout`, so that "well under it" is a clear margin.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[test]
fn a_refused_connection_fails_at_once_backs_off_and_recovers_within_the_window() {
    let _serial = one_at_a_time();
    let port = support::free_port();
    let conn = Connection::open(
        &support::unique("refused"),
        &format!(
            "redis://127.0.0.1:{port}/0?connect_timeout={}ms&pool_timeout=2s&timeout={}ms",
            CONNECT_TIMEOUT.as_millis(),
            TIMEOUT.as_millis()
        ),
    )
    .unwrap();
    let c: RedisCache<String> = RedisCache::builder("k").connection(&conn).build();
    let fast = CONNECT_TIMEOUT / 10;

    let (result, took) = timed(|| c.get());
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.is_connection() && !err.is_timeout() && !err.is_auth(),
        "{err:?}"
    );
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<redis::RedisError>())
        .expect("the redis error is the source");
    assert!(source.is_connection_refusal(), "{source:?}");
    assert!(took.own < fast, "a refused connection took {took:?}");

    // Within the window: the same error for every caller, without a connection attempt.
    let (errors, took) = timed(|| (0..200).map(|_| c.get().unwrap_err()).collect::<Vec<_>>());
    assert!(errors.iter().all(|e| matches!(e, Error::Connect { .. })));
    assert!(took.own < fast, "200 calls in the window took {took:?}");

    // The outage policies answer as fast: a memo computes, a region misses.
    let memo = Memo::builder("refused-memo", |x: u64| x + 1)
        .connection(&conn)
        .on_outage(OutagePolicy::Miss)
        .build();
    let region = Region::builder("r")
        .connection(&conn)
        .on_outage(OutagePolicy::Miss)
        .build();
    let (answers, took) = timed(|| (memo.call(1).unwrap(), region.get::<u8>("k").unwrap()));
    assert_eq!(answers, (2, None));
    assert!(took.own < fast, "{took:?}");

    // The server comes back: calls succeed at most one window (plus 25%) later.
    let _server = RedisServer::start_on(port, &[]);
    let (attempts, recovered) = timed(|| {
        let mut attempts = 1;
        while c.set("v").is_err() && attempts < 100 {
            attempts += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        attempts
    });
    assert!(attempts < 100, "not recovered after {recovered:?}");
    assert!(
        recovered.own <= CONNECT_BACKOFF + margin(CONNECT_BACKOFF),
        "recovered after {recovered:?}"
    );
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
    assert_eq!(memo.call(1).unwrap(), 2);
}

/// Failed authentications since the start, from the server's ACL log (which groups
/// identical failures into one entry with a `count`).
fn failed_auths(server: &RedisServer, admin_password: &str) -> u64 {
    let mut raw = redis::Client::open(format!(
        "redis://:{admin_password}@127.0.0.1:{}/0",
        server.port()
    ))
    .unwrap()
    .get_connection()
    .unwrap();
    let log: Vec<HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .arg(10_000)
        .query(&mut raw)
        .unwrap();
    log.iter()
        .filter(|entry| entry.get("reason") == Some(&redis::Value::BulkString(b"auth".to_vec())))
        .map(|entry| match entry.get("count") {
            Some(redis::Value::Int(n)) => *n as u64,
            other => panic!("ACL LOG count: {other:?}"),
        })
        .sum()
}

#[test]
fn a_wrong_password_fails_at_once_typed_and_never_hammers_the_server() {
    let _serial = one_at_a_time();
    let secret = "right-horse-battery";
    let server = RedisServer::start_with(&["--requirepass", secret]);
    let url = |password: &str| {
        format!(
            "redis://:{password}@127.0.0.1:{}/0?connect_timeout={}ms&pool_timeout=2s&pool_size=16",
            server.port(),
            CONNECT_TIMEOUT.as_millis()
        )
    };
    let wrong = Connection::open(&support::unique("wrong"), &url("wrong-pass")).unwrap();
    let c: RedisCache<String> = RedisCache::builder("k").connection(&wrong).build();
    let before = failed_auths(&server, secret);

    let (result, took) = timed(|| c.get());
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_auth() && !err.is_timeout(), "{err:?}");
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<redis::RedisError>())
        .expect("the redis error is the source");
    assert_eq!(source.code(), Some("WRONGPASS"), "{source:?}");
    assert!(!chain(&err).contains("wrong-pass"), "{}", chain(&err));
    assert!(took.own < CONNECT_TIMEOUT / 10, "{took:?}");

    // Eight threads calling for a second: at most one attempt per back-off window, each
    // answered at once.
    let started = Instant::now();
    let run_for = Duration::from_secs(1);
    let slowest = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut slowest = Duration::ZERO;
                    while started.elapsed() < run_for {
                        let (result, took) = timed(|| c.get());
                        let e = result.unwrap_err();
                        assert!(e.is_auth() && !e.is_timeout(), "{e:?}");
                        slowest = slowest.max(took.own);
                    }
                    slowest
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .max()
            .unwrap()
    });
    let elapsed = started.elapsed();
    assert!(
        slowest < CONNECT_TIMEOUT / 10,
        "the slowest call took {slowest:?}"
    );
    let attempts = failed_auths(&server, secret) - before;
    // One for the first call, then one per window at most.
    let allowed = 1 + (elapsed.as_millis() / CONNECT_BACKOFF.as_millis()) as u64 + 1;
    assert!(
        attempts >= 2,
        "the server saw {attempts} failed AUTHs: is the log read?"
    );
    assert!(
        attempts <= allowed,
        "{attempts} failed AUTHs in {elapsed:?}, at most {allowed} allowed"
    );
    // Nothing was retried behind the callers' backs after they stopped.
    std::thread::sleep(CONNECT_BACKOFF * 2);
    assert_eq!(failed_auths(&server, secret) - before, attempts);

    // The right password works at once on another connection.
    let right = Connection::open(&support::unique("right"), &url(secret)).unwrap();
    RedisCache::<String>::builder("k")
        .connection(&right)
        .build()
        .set("v")
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Memo keys: distinct arguments never share a key, whatever the template.

#[test]
fn a_key_template_never_gives_none_and_an_empty_string_the_same_key() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let memo = Memo::builder("tpl", move |(name, n): (Option<String>, i64)| {
        counted.fetch_add(1, Ordering::SeqCst);
        format!("{name:?}/{n}")
    })
    .connection(&conn)
    .key_template("user:{0}-{1}")
    .build();
    let cases = [
        (None, 1),
        (Some(String::new()), 1),
        (Some("-".to_string()), 1),
        (Some("%-".to_string()), 1),
        (Some("a-1".to_string()), 1),
        (Some("a".to_string()), -1),
    ];
    for args in cases.clone() {
        assert_eq!(
            memo.call(args.clone()).unwrap(),
            format!("{:?}/{}", args.0, args.1)
        );
    }
    // Each computed once, then each served its own result.
    for args in cases.clone() {
        assert_eq!(
            memo.call(args.clone()).unwrap(),
            format!("{:?}/{}", args.0, args.1)
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), cases.len());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("{memo:tpl}.v.*")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(keys.len(), cases.len(), "{keys:?}");

    // Templates whose values could run together are refused before anything is sent.
    for ambiguous in ["{0}{1}", "item%{0}-{1}"] {
        let m = Memo::builder("tpl-bad", |(a, b): (u8, u8)| a + b)
            .connection(&conn)
            .key_template(ambiguous)
            .build();
        assert!(m.call((1, 2)).unwrap_err().is_config(), "{ambiguous}");
    }
}

#[test]
fn with_timeout_zero_a_call_waits_as_long_as_the_server_does() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let conn = server.connection_with("timeout=0&pool_size=1");
    let c: RedisCache<String> = RedisCache::builder("k").connection(&conn).build();
    c.set("v").unwrap();
    server.pause();
    let stall = Duration::from_millis(1500);
    let (got, took) = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(stall);
            server.resume();
        });
        timed(|| c.get())
    });
    assert_eq!(got.unwrap().as_deref(), Some("v"));
    assert!(took.wall >= stall - Duration::from_millis(20), "{took:?}");
}

#[test]
fn a_read_only_replica_refuses_writes_typed_and_serves_reads() {
    let _shared = untimed();
    let server = RedisServer::start();
    // A refused write is sent again within its timeout (READONLY is also what a demoted
    // master answers during a failover): a short one keeps the test short.
    let conn = server.connection_with("timeout=300ms");
    let w = Writers::new(
        &conn,
        Some((Duration::from_secs(60), redis_caches::TtlPolicy::Refresh)),
    );
    w.dict.set("old", &1).unwrap();
    w.region.set("old", &1u64).unwrap();
    w.memo.call(1).unwrap();
    // A replica of a master that does not answer: read-only, serving its stale data.
    let dead = support::free_port();
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(dead)
        .exec(&mut server.raw())
        .unwrap();
    let mut raw = server.raw();
    let before = snapshot(&mut raw);
    for (what, result) in [
        ("DictCache::set", w.dict.set("f", &2).map(drop)),
        ("Region::set", w.region.set("f", &2u64).map(drop)),
        ("SetCache::insert", w.set.insert(&2).map(drop)),
    ] {
        let err = result.expect_err(what);
        assert!(err.is_write_refused(), "{what}: {err:?}");
        assert!(
            chain(&err).to_lowercase().contains("read only"),
            "{what}: {}",
            chain(&err)
        );
    }
    assert_eq!(snapshot(&mut raw), before);
    assert_eq!(w.dict.get("old").unwrap(), Some(1));
    assert_eq!(w.region.get::<u64>("old").unwrap(), Some(1));
    assert_eq!(w.memo.call(1).unwrap(), 2, "a cached value is served");
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .exec(&mut raw)
        .unwrap();
}

#[test]
fn after_a_restart_nobody_saw_reads_succeed_and_a_lost_write_was_not_applied() {
    let _shared = untimed();
    let mut server = RedisServer::start();
    let (conn, a, _b) = pool_of_one(&server, Duration::from_secs(1));
    let counter = RedisCache::<i64>::counter("n").connection(&conn).build();
    for round in 0..3 {
        // The pool's one idle connection dies with the server; nothing notices.
        server.restart();
        match counter.incr(1) {
            Ok(n) => assert_eq!(n, 1, "round {round}"),
            Err(e) => {
                assert!(e.is_outcome_unknown(), "round {round}: {e:?}");
                assert_eq!(counter.get().unwrap(), None, "round {round}: not applied");
            }
        }
        server.restart();
        // A read finds out on its first attempt and is sent again, within its call.
        assert_eq!(
            a.get().unwrap(),
            None,
            "round {round}: the restart lost the data"
        );
        a.set("A").unwrap();
    }
}

#[test]
fn a_region_that_misses_on_outages_skips_refused_writes_and_counts_them() {
    let _shared = untimed();
    let server = RedisServer::start();
    let conn = server.connection();
    let miss = Region::builder("r")
        .root("oom")
        .connection(&conn)
        .on_outage(OutagePolicy::Miss)
        .build();
    let fail = Region::builder("r").root("oom").connection(&conn).build();
    miss.set("kept", &1u8).unwrap();
    refuse_writes(&server, Some("OOM"));
    let before = snapshot(&mut server.raw());
    assert!(
        !miss.set("k", &2u8).unwrap(),
        "skipped, as on an empty cache"
    );
    assert_eq!(miss.insert("k", &2u8).unwrap(), None);
    miss.transaction(|tx| tx.set("k", &2u8)).unwrap();
    assert_eq!(miss.outage_stats().skipped_writes, 3);
    assert_eq!(miss.get::<u8>("kept").unwrap(), Some(1), "reads still work");
    assert_eq!(miss.outage_stats().missed_reads, 0);
    let err = fail.set("k", &2u8).unwrap_err();
    assert!(err.is_write_refused(), "{err:?}");
    assert_eq!(snapshot(&mut server.raw()), before, "nothing was written");
    refuse_writes(&server, None);
}
