//! Round trips, not commands: what each public operation of every type costs, counted on the
//! server (`total_reads_processed`: one read per request that fits in one socket read), and
//! compared with what the crate docs and each method's documentation say. A script is one
//! round trip however many commands it runs inside Redis.
//!
//! Bulk operations whose requests are too large for one socket read (`extend` of thousands
//! of items) are counted by their top-level commands instead: one request, one command, one
//! reply, since the crate never pipelines.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use redis_caches::memo::Memo;
use redis_caches::region::Reclaim;
use redis_caches::sorted_set::{InsertMode, Limit};
use redis_caches::{
    Connection, DictCache, RedisCache, Region, SentinelCache, SetCache, SortedSetCache, TtlPolicy,
};
use support::RedisServer;

/// One handle of each type, with and without a TTL.
struct Handles {
    text: RedisCache<String>,
    text_ttl: RedisCache<String>,
    text_keep: RedisCache<String>,
    counter: RedisCache<i64, redis_caches::codec::Raw>,
    counter_ttl: RedisCache<i64, redis_caches::codec::Raw>,
    dict: DictCache<String, u64>,
    dict_ttl: DictCache<String, u64>,
    dict_counter: DictCache<String, i64, redis_caches::codec::Raw>,
    dict_counter_ttl: DictCache<String, i64, redis_caches::codec::Raw>,
    set: SetCache<u64>,
    set_ttl: SetCache<u64>,
    other_set: SetCache<u64>,
    zset: SortedSetCache<String>,
    zset_ttl: SortedSetCache<String>,
    gate: SentinelCache,
    gate_ttl: SentinelCache,
    region: Region,
    region_ttl: Region,
    memo: Memo<u64, u64>,
    memo_counter: redis_caches::memo::MemoCounter<u64>,
    memo_list: redis_caches::memo::MemoList<u64, u64>,
}

impl Handles {
    fn new(conn: &Connection) -> Handles {
        let ttl = Duration::from_secs(600);
        Handles {
            text: RedisCache::builder("rt-text").connection(conn).build(),
            text_ttl: RedisCache::builder("rt-text-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            text_keep: RedisCache::builder("rt-text-keep")
                .connection(conn)
                .ttl(ttl)
                .ttl_policy(TtlPolicy::Keep)
                .build(),
            counter: RedisCache::<i64>::counter("rt-counter")
                .connection(conn)
                .build(),
            counter_ttl: RedisCache::<i64>::counter("rt-counter-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            dict: DictCache::builder("rt-dict").connection(conn).build(),
            dict_ttl: DictCache::builder("rt-dict-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            dict_counter: DictCache::builder("rt-dict-counter")
                .connection(conn)
                .codec(redis_caches::codec::Raw)
                .build(),
            dict_counter_ttl: DictCache::builder("rt-dict-counter-ttl")
                .connection(conn)
                .ttl(ttl)
                .codec(redis_caches::codec::Raw)
                .build(),
            set: SetCache::builder("{rt}-set").connection(conn).build(),
            set_ttl: SetCache::builder("{rt}-set-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            other_set: SetCache::builder("{rt}-other").connection(conn).build(),
            zset: SortedSetCache::builder("rt-zset").connection(conn).build(),
            zset_ttl: SortedSetCache::builder("rt-zset-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            gate: SentinelCache::builder("rt-gate").connection(conn).build(),
            gate_ttl: SentinelCache::builder("rt-gate-ttl")
                .connection(conn)
                .ttl(ttl)
                .build(),
            // Manual reclamation: a background step (at a tree's first use, after an
            // invalidation) is a request to the same server, which the counts would include
            // whenever it lands in the counted window.
            region: Region::builder("a.b.c")
                .root("rt")
                .connection(conn)
                .reclaim(Reclaim::Manual)
                .build(),
            region_ttl: Region::builder("a.b.t")
                .root("rt")
                .connection(conn)
                .ttl(ttl)
                .reclaim(Reclaim::Manual)
                .build(),
            memo: Memo::builder("rt-memo", |x: u64| x + 1)
                .connection(conn)
                .ttl(ttl)
                .build(),
            memo_counter: Memo::builder("rt-counter", |x: u64| x as i64)
                .connection(conn)
                .build_counter(),
            memo_list: Memo::builder("rt-list", |x: u64| vec![x])
                .connection(conn)
                .ttl(ttl)
                .build_list(),
        }
    }
}

/// An operation, the round trips its documentation promises, and what it needs first (run
/// before each measurement: a hit needs a value, a miss needs none).
type Case = (&'static str, u64, fn(&Handles), fn(&Handles));

fn nothing(_: &Handles) {}

/// Asserts success and drops the value.
fn ok<T>(result: redis_caches::Result<T>) {
    result.unwrap();
}

/// Every type's operations, the multi-command ones (scripts) above all.
const CASES: &[Case] = &[
    ("RedisCache::get", 1, |h| ok(h.text.get()), nothing),
    ("RedisCache::set", 1, |h| h.text.set("v").unwrap(), nothing),
    (
        "RedisCache::set with TTL",
        1,
        |h| h.text_ttl.set("v").unwrap(),
        nothing,
    ),
    (
        "RedisCache::set with TTL, Keep (script)",
        1,
        |h| h.text_keep.set("v").unwrap(),
        nothing,
    ),
    (
        "RedisCache::get_or_insert_with, hit",
        1,
        |h| ok(h.text.get_or_insert_with(|| "x".into())),
        |h| h.text.set("v").unwrap(),
    ),
    (
        "RedisCache::get_or_insert_with, miss (GET, then a script)",
        2,
        |h| ok(h.text.get_or_insert_with(|| "x".into())),
        |h| ok(h.text.clear()),
    ),
    (
        "RedisCache::get_many",
        1,
        |h| ok(RedisCache::get_many([&h.text, &h.text_ttl])),
        nothing,
    ),
    ("RedisCache::incr", 1, |h| ok(h.counter.incr(1)), nothing),
    (
        "RedisCache::incr with TTL (script)",
        1,
        |h| ok(h.counter_ttl.incr(1)),
        nothing,
    ),
    (
        "DictCache::incr",
        1,
        |h| ok(h.dict_counter.incr("f", 1)),
        nothing,
    ),
    (
        "DictCache::incr with TTL (script)",
        1,
        |h| ok(h.dict_counter_ttl.incr("f", 1)),
        nothing,
    ),
    ("RedisCache::clear", 1, |h| ok(h.text.clear()), nothing),
    ("RedisCache::ttl", 1, |h| ok(h.text_ttl.ttl()), nothing),
    (
        "RedisCache::expire",
        1,
        |h| ok(h.text.expire(Duration::from_secs(9))),
        nothing,
    ),
    ("DictCache::get", 1, |h| ok(h.dict.get("f")), nothing),
    ("DictCache::set", 1, |h| ok(h.dict.set("f", &1)), nothing),
    (
        "DictCache::set with TTL (script)",
        1,
        |h| ok(h.dict_ttl.set("f", &1)),
        nothing,
    ),
    (
        "DictCache::insert (script)",
        1,
        |h| ok(h.dict.insert("f", &2)),
        nothing,
    ),
    (
        "DictCache::insert with TTL",
        1,
        |h| ok(h.dict_ttl.insert("f", &2)),
        nothing,
    ),
    (
        "DictCache::remove (script)",
        1,
        |h| ok(h.dict_ttl.remove("f")),
        nothing,
    ),
    ("DictCache::delete", 1, |h| ok(h.dict.delete("f")), nothing),
    (
        "DictCache::contains_key",
        1,
        |h| ok(h.dict.contains_key("f")),
        nothing,
    ),
    ("DictCache::len", 1, |h| ok(h.dict.len()), nothing),
    (
        "DictCache::get_many",
        1,
        |h| ok(h.dict.get_many(["a", "b", "c"])),
        nothing,
    ),
    (
        "DictCache::pop_item with TTL (script)",
        1,
        |h| ok(h.dict_ttl.pop_item()),
        |h| ok(h.dict_ttl.set("p", &1)),
    ),
    (
        "DictCache::get_or_insert_with, miss (HGET, then a script)",
        2,
        |h| ok(h.dict_ttl.get_or_insert_with("g", || 1)),
        |h| ok(h.dict_ttl.delete("g")),
    ),
    (
        "DictCache::extend with TTL, one batch (script)",
        1,
        |h| ok(h.dict_ttl.extend([("a", 1), ("b", 2)])),
        nothing,
    ),
    (
        "DictCache::to_hash_map",
        1,
        |h| ok(h.dict.to_hash_map()),
        nothing,
    ),
    (
        "DictCache::iter of a small hash",
        1,
        |h| drop(h.dict_ttl.iter().collect::<Vec<_>>()),
        nothing,
    ),
    ("SetCache::insert", 1, |h| ok(h.set.insert(&1)), nothing),
    (
        "SetCache::insert with TTL (script)",
        1,
        |h| ok(h.set_ttl.insert(&1)),
        nothing,
    ),
    (
        "SetCache::remove with TTL (script)",
        1,
        |h| ok(h.set_ttl.remove(&1)),
        nothing,
    ),
    ("SetCache::contains", 1, |h| ok(h.set.contains(&1)), nothing),
    ("SetCache::len", 1, |h| ok(h.set.len()), nothing),
    (
        "SetCache::pop with TTL (script)",
        1,
        |h| ok(h.set_ttl.pop()),
        |h| ok(h.set_ttl.insert(&5)),
    ),
    (
        "SetCache::extend with TTL, one batch (script)",
        1,
        |h| ok(h.set_ttl.extend([1, 2, 3])),
        nothing,
    ),
    (
        "SetCache::union",
        1,
        |h| ok(h.set.union([&h.other_set])),
        nothing,
    ),
    (
        "SetCache::intersection",
        1,
        |h| ok(h.set.intersection([&h.other_set])),
        nothing,
    ),
    (
        "SetCache::difference_store with TTL (script)",
        1,
        |h| ok(h.set.difference_store([&h.other_set], &h.set_ttl)),
        nothing,
    ),
    (
        "SetCache::symmetric_difference (script)",
        1,
        |h| ok(h.set.symmetric_difference(&h.other_set)),
        nothing,
    ),
    (
        "SetCache::is_subset (script)",
        1,
        |h| ok(h.set.is_subset(&h.other_set)),
        |h| ok(h.set.insert(&1)),
    ),
    (
        "SortedSetCache::insert",
        1,
        |h| ok(h.zset.insert("m", 1.0)),
        nothing,
    ),
    (
        "SortedSetCache::insert with TTL (script)",
        1,
        |h| ok(h.zset_ttl.insert("m", 1.0)),
        nothing,
    ),
    (
        "SortedSetCache::insert_with",
        1,
        |h| ok(h.zset.insert_with("m", 2.0, InsertMode::NewOrGreater)),
        nothing,
    ),
    (
        "SortedSetCache::incr_score with TTL (script)",
        1,
        |h| ok(h.zset_ttl.incr_score("m", 1.0)),
        nothing,
    ),
    (
        "SortedSetCache::score",
        1,
        |h| ok(h.zset.score("m")),
        nothing,
    ),
    ("SortedSetCache::rank", 1, |h| ok(h.zset.rank("m")), nothing),
    (
        "SortedSetCache::remove with TTL (script)",
        1,
        |h| ok(h.zset_ttl.remove("m")),
        nothing,
    ),
    (
        "SortedSetCache::remove_range with TTL (script)",
        1,
        |h| ok(h.zset_ttl.remove_range(0..2)),
        nothing,
    ),
    (
        "SortedSetCache::pop_min with TTL (script)",
        1,
        |h| ok(h.zset_ttl.pop_min()),
        |h| ok(h.zset_ttl.insert("p", 1.0)),
    ),
    (
        "SortedSetCache::range",
        1,
        |h| ok(h.zset.range(..)),
        nothing,
    ),
    (
        "SortedSetCache::range_by_score",
        1,
        |h| ok(h.zset.range_by_score(.., Limit::first(5))),
        nothing,
    ),
    (
        "SortedSetCache::count",
        1,
        |h| ok(h.zset.count(..)),
        nothing,
    ),
    (
        "SortedSetCache::extend with TTL, one batch (script)",
        1,
        |h| ok(h.zset_ttl.extend([("a", 1.0), ("b", 2.0)])),
        nothing,
    ),
    (
        "SentinelCache::claim",
        1,
        |h| ok(h.gate.claim()),
        |h| ok(h.gate.clear()),
    ),
    (
        "SentinelCache::claim with TTL",
        1,
        |h| ok(h.gate_ttl.claim()),
        |h| ok(h.gate_ttl.clear()),
    ),
    ("SentinelCache::clear", 1, |h| ok(h.gate.clear()), nothing),
    ("Region::get", 1, |h| ok(h.region.get::<u64>("k")), nothing),
    (
        "Region::set, with its links (script)",
        1,
        |h| ok(h.region.set("k", &1u64)),
        nothing,
    ),
    (
        "Region::set with TTL (script)",
        1,
        |h| ok(h.region_ttl.set("k", &1u64)),
        nothing,
    ),
    (
        "Region::insert (script)",
        1,
        |h| ok(h.region.insert("k", &2u64)),
        nothing,
    ),
    (
        "Region::remove (script)",
        1,
        |h| ok(h.region.remove::<u64>("k")),
        nothing,
    ),
    ("Region::delete", 1, |h| ok(h.region.delete("k")), nothing),
    (
        "Region::transaction of writes (script)",
        1,
        |h| {
            h.region
                .transaction(|tx| {
                    tx.set("a", &1u64)?;
                    tx.set("b", &2u64)?;
                    tx.delete("c")
                })
                .unwrap()
        },
        nothing,
    ),
    (
        "Region::transaction reading once (HGET, then the script)",
        2,
        |h| {
            h.region
                .transaction(|tx| {
                    let n = tx.get::<u64>("a")?.unwrap_or(0);
                    tx.set("a", &(n + 1))
                })
                .unwrap()
        },
        nothing,
    ),
    (
        "Region::get_or_insert_with, miss (HGET, then a script)",
        2,
        |h| ok(h.region.get_or_insert_with("g", || 1u64)),
        |h| ok(h.region.delete("g")),
    ),
    (
        "Region memoized call, hit",
        1,
        |h| ok(h.region.memo("m", |x: u64| x + 1).build().call(1)),
        |h| ok(h.region.memo("m", |x: u64| x + 1).build().call(1)),
    ),
    (
        "Region::invalidate (script)",
        1,
        |h| ok(h.region.invalidate()),
        |h| ok(h.region.set("k", &1u64)),
    ),
    (
        "Memo::call, fresh hit (GET and HINCRBY, pipelined)",
        1,
        |h| ok(h.memo.call(1)),
        |h| ok(h.memo.call(1)),
    ),
    (
        "Memo::call_many, every result cached (script)",
        1,
        |h| ok(h.memo.call_many([1, 2, 3])),
        |h| ok(h.memo.call_many([1, 2, 3])),
    ),
    (
        // The plain read (GET, HINCRBY), the read script (it takes the hit back, counts
        // the miss, takes the lock), then the store.
        "Memo::call, miss computed here (plain read, read, then finish)",
        3,
        |h| ok(h.memo.call(2)),
        |h| ok(h.memo.forget(2)),
    ),
    ("Memo::forget", 1, |h| ok(h.memo.forget(1)), nothing),
    ("Memo::stats", 1, |h| ok(h.memo.stats()), nothing),
    (
        "Memo::reset_stats (script)",
        1,
        |h| ok(h.memo.reset_stats()),
        nothing,
    ),
    (
        "MemoCounter::incr (script)",
        1,
        |h| ok(h.memo_counter.incr(1, 1)),
        |h| ok(h.memo_counter.call(1)),
    ),
    (
        "MemoList::push (script)",
        1,
        |h| ok(h.memo_list.push(1, &2)),
        |h| ok(h.memo_list.call(1)),
    ),
    (
        "MemoList::cached_len",
        1,
        |h| ok(h.memo_list.cached_len(1)),
        nothing,
    ),
];

#[test]
fn every_operation_costs_the_round_trips_its_documentation_promises() {
    let server = RedisServer::start();
    // One connection, opened before counting: a connection's handshake costs reads too.
    let conn = server.connection_with("pool_size=1");
    let h = Handles::new(&conn);
    h.text.get().unwrap();
    let mut wrong = Vec::new();
    for &(name, want, op, setup) in CASES {
        // Twice to load its scripts (a server that does not know a script costs one more
        // round trip, once; a region's write that creates the region and the same write
        // once it exists are two scripts), then counted.
        setup(&h);
        op(&h);
        setup(&h);
        op(&h);
        setup(&h);
        let got = server.count_round_trips(|| op(&h));
        if got != want {
            wrong.push(format!("{name}: {got} round trips, {want} promised"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The top-level commands of `counted` (a [`RedisServer::count_commands`] map): the
/// requests, leaving out the commands scripts ran inside Redis.
fn requests(counted: &HashMap<String, u64>, top_level: &[&str]) -> u64 {
    top_level
        .iter()
        .map(|c| counted.get(*c).copied().unwrap_or(0))
        .sum()
}

#[test]
fn bulk_operations_cost_one_round_trip_per_batch() {
    let server = RedisServer::start();
    let conn = server.connection_with("pool_size=1");
    let h = Handles::new(&conn);
    // Load every script once.
    h.dict_ttl.extend([("w", 0)]).unwrap();
    h.set_ttl.extend([0]).unwrap();
    h.zset_ttl.extend([("w", 0.0)]).unwrap();
    h.region.transaction(|tx| tx.set("w", &0u64)).unwrap();
    type Bulk<'a> = (&'a str, u64, &'a [&'a str], Box<dyn Fn() + 'a>);
    let cases: Vec<Bulk> = vec![
        (
            "DictCache::extend of 10,000 entries (4,096 per batch)",
            3,
            &["hset"],
            Box::new(|| ok(h.dict.extend((0..10_000u64).map(|i| (i.to_string(), i))))),
        ),
        (
            "DictCache::extend with TTL of 10,000 entries",
            3,
            &["evalsha", "eval"],
            Box::new(|| {
                ok(h.dict_ttl
                    .extend((0..10_000u64).map(|i| (i.to_string(), i))))
            }),
        ),
        (
            "SetCache::extend of 2,500 members (1,000 per batch)",
            3,
            &["sadd"],
            Box::new(|| ok(h.set.extend(0..2_500u64))),
        ),
        (
            "SetCache::extend with TTL of 2,500 members",
            3,
            &["evalsha", "eval"],
            Box::new(|| ok(h.set_ttl.extend(0..2_500u64))),
        ),
        (
            "SortedSetCache::extend with TTL of 2,500 members",
            3,
            &["evalsha", "eval"],
            Box::new(|| {
                ok(h.zset_ttl
                    .extend((0..2_500).map(|i| (format!("m{i}"), f64::from(i)))))
            }),
        ),
        (
            "Region::transaction of 5,000 writes (one script)",
            1,
            &["evalsha", "eval"],
            Box::new(|| {
                h.region
                    .transaction(|tx| {
                        for i in 0..5_000u64 {
                            tx.set(&format!("k{i}"), &i)?;
                        }
                        Ok::<_, redis_caches::Error>(())
                    })
                    .unwrap()
            }),
        ),
        (
            "DictCache::get_many of 20,000 fields (one HMGET)",
            1,
            &["hmget"],
            Box::new(|| {
                let fields: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
                ok(h.dict.get_many(fields.iter()))
            }),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, want, top_level, op) in cases {
        let counted = server.count_commands(op);
        let got = requests(&counted, top_level);
        if got != want {
            wrong.push(format!(
                "{name}: {got} requests, {want} promised: {counted:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
