//! All or nothing: every multi-command operation of the crate is applied whole or not at all,
//! whether other clients look at the data while it runs, or the server is killed in the
//! middle of it (checked from a fresh connection after a restart with persistence on).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::memo::Memo;
use redis_caches::region::Reclaim;
use redis_caches::{Connection, DictCache, RedisCache, Region, SetCache, SortedSetCache};
use support::regions::{queue, stem};
use support::{RedisServer, eventually};

/// `DictCache::extend` sends 4,096 entries per round trip.
const EXTEND_ROUND_TRIP: usize = 4096;

#[test]
fn each_extend_round_trip_is_atomic_for_concurrent_readers() {
    let server = RedisServer::start();
    let conn = server.connection();
    let dict: DictCache<u32, String> = DictCache::builder("extend-atomic")
        .connection(&conn)
        .build();
    // Values large enough that one round trip spans many socket reads on the server, which
    // would let a reader in between the HSETs of a round trip that is not one transaction.
    let value = "v".repeat(200);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut raw = server.raw();
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let n: usize = redis::cmd("HLEN")
                    .arg("extend-atomic")
                    .query(&mut raw)
                    .unwrap();
                seen.insert(n);
            }
            seen
        })
    };
    for _ in 0..20 {
        dict.extend((0..3 * EXTEND_ROUND_TRIP as u32).map(|i| (i, value.clone())))
            .unwrap();
        assert!(dict.clear().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let torn: Vec<usize> = seen
        .iter()
        .copied()
        .filter(|n| !n.is_multiple_of(EXTEND_ROUND_TRIP))
        .collect();
    assert!(
        torn.is_empty(),
        "a reader saw part of a round trip: {torn:?}"
    );
}

/// The server of the kill tests: every write is in the append-only file before its reply, so
/// what a client saw acknowledged survives the kill, and what the file holds is all that
/// comes back.
fn persistent_server() -> RedisServer {
    RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
}

/// A connection with short timeouts, so that calls in flight at the kill end quickly.
fn fault_connection(server: &RedisServer) -> Connection {
    server.connection_with("timeout=500ms&pool_timeout=300ms&connect_timeout=300ms&pool_size=8")
}

/// Restarts the killed server on its directory and waits until it has loaded its data.
fn restart_and_wait(server: &mut RedisServer) -> redis::Connection {
    server.restart();
    let mut raw = server.raw();
    assert!(
        eventually(Duration::from_secs(10), || redis::cmd("PING")
            .query::<String>(&mut raw)
            .is_ok()),
        "the server did not load its data"
    );
    raw
}

/// The multi-command operations of the kill test, each on keys of its own (round, thread,
/// iteration). Each is one script per round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// `DictCache::insert` with a TTL: `HGET`, `HSET`, `PEXPIRE`.
    DictInsert,
    /// `DictCache::remove` with a TTL: `HGET`, `HDEL`, `PEXPIRE`.
    DictRemove,
    /// `DictCache::pop_item` with a TTL: `HRANDFIELD`, `HGET`, `HDEL`, `PEXPIRE`.
    DictPopItem,
    /// `DictCache::extend` of two round trips with a TTL, each `HSET` and `PEXPIRE`.
    DictExtendTtl,
    /// `DictCache::extend` of two round trips without a TTL, each one `HSET`.
    DictExtend,
    /// `RedisCache::incr` with a TTL: `INCRBY`, `PEXPIRE`.
    CounterTtl,
    /// `SetCache::insert` with a TTL: `SADD`, `PEXPIRE`.
    SetInsertTtl,
    /// `SetCache::extend` of two round trips with a TTL, each `SADD` and `PEXPIRE`.
    SetExtendTtl,
    /// `SetCache::union_store` into a destination with a TTL: `SUNIONSTORE`, `PEXPIRE`.
    SetStore,
    /// `SortedSetCache::insert` with a TTL: `ZADD`, `PEXPIRE`.
    ZsetInsertTtl,
    /// `SortedSetCache::pop_min` with a TTL: `ZPOPMIN`, `PEXPIRE`.
    ZsetPopTtl,
    /// A memo miss: the read script (takes the lock), the function, the finish script
    /// (stores the value with its TTL, releases the lock, counts).
    Memo,
    /// `Region::transaction` writing a marker and 8 entries into a region with a TTL: the
    /// commit is one script (the region's generation created, `HSET`, `PEXPIRE`).
    RegionTx,
    /// `Region::invalidate` of a region and its child, both written first: one script (the
    /// entry naming the generation deleted, the generation queued for reclamation).
    RegionInvalidate,
}

const KINDS: [Kind; 14] = [
    Kind::DictInsert,
    Kind::DictRemove,
    Kind::DictPopItem,
    Kind::DictExtendTtl,
    Kind::DictExtend,
    Kind::CounterTtl,
    Kind::SetInsertTtl,
    Kind::SetExtendTtl,
    Kind::SetStore,
    Kind::ZsetInsertTtl,
    Kind::ZsetPopTtl,
    Kind::Memo,
    Kind::RegionTx,
    Kind::RegionInvalidate,
];

/// `SetCache::extend` sends 1,000 members per round trip.
const SET_ROUND_TRIP: usize = 1000;

/// One operation of the kill test: its kind, the kill round, the thread, the iteration.
type OpId = (Kind, usize, usize, u64);

fn key((kind, round, thread, i): OpId) -> String {
    format!("aon-{kind:?}-{round}-{thread}-{i}")
}

/// What a check from a fresh connection found of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Found {
    /// None of its effects.
    Nothing,
    /// Its first round trips, each whole (operations of several round trips only).
    Prefix,
    /// All of its effects.
    All,
    /// Part of one script: what must never happen.
    Torn,
}

fn pttl(raw: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(raw).unwrap()
}

fn exists(raw: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(raw).unwrap()
}

fn hlen(raw: &mut redis::Connection, key: &str) -> usize {
    redis::cmd("HLEN").arg(key).query(raw).unwrap()
}

fn card(raw: &mut redis::Connection, command: &str, key: &str) -> usize {
    redis::cmd(command).arg(key).query(raw).unwrap()
}

/// The memoized function of a round.
fn memo_name(round: usize) -> String {
    format!("aon{round}")
}

fn memo_key(kind: &str, (_, round, thread, i): OpId) -> String {
    format!("{{memo:{}}}.{kind}.{thread}.{i}", memo_name(round))
}

/// A field of the test's `DictCache<String, u64>`, as stored.
fn field(name: &str) -> Vec<u8> {
    Postcard
        .encode_field(name, &TypeTag::of::<String>())
        .unwrap()
}

/// A whole number of round trips of `per_round_trip` items out of two: what it found, or
/// `Torn` for part of one, or the TTL missing from a round trip that had one.
fn batches(n: usize, per_round_trip: usize, ttl_wanted: bool, ttl: bool) -> Found {
    if !n.is_multiple_of(per_round_trip) || (n > 0 && ttl_wanted != ttl) {
        return Found::Torn;
    }
    match n / per_round_trip {
        0 => Found::Nothing,
        1 => Found::Prefix,
        _ => Found::All,
    }
}

/// An item written with its TTL in one script: nothing, or the item with the TTL.
fn with_ttl(present: bool, ttl: bool) -> Found {
    match (present, ttl) {
        (false, _) => Found::Nothing,
        (true, true) => Found::All,
        (true, false) => Found::Torn,
    }
}

/// Checks one operation from a fresh connection.
fn found(raw: &mut redis::Connection, op: OpId) -> Found {
    let kind = op.0;
    let k = key(op);
    let ttl = pttl(raw, &k) > 0;
    match kind {
        Kind::DictInsert => match (exists(raw, &k), ttl) {
            (false, _) => Found::Nothing,
            (true, true) if hlen(raw, &k) == 1 => Found::All,
            _ => Found::Torn, // the HSET without its PEXPIRE
        },
        Kind::DictRemove | Kind::DictPopItem => {
            // Set up as {keep, gone} without a TTL, then `remove("gone")` (or a pop) with
            // one.
            let n = hlen(raw, &k);
            let gone: bool = redis::cmd("HEXISTS")
                .arg(&k)
                .arg(field("gone"))
                .query(raw)
                .unwrap();
            match (n, ttl) {
                (0, _) => Found::Nothing, // the set-up never ran
                (2, false) => Found::Nothing,
                (1, true) if kind == Kind::DictPopItem || !gone => Found::All,
                _ => Found::Torn,
            }
        }
        Kind::DictExtendTtl | Kind::DictExtend => {
            let n = hlen(raw, &k);
            let whole = batches(n, EXTEND_ROUND_TRIP, kind == Kind::DictExtendTtl, ttl);
            // Round trips go in order: the first n fields.
            if n > 0 && whole != Found::Torn {
                let fields: Vec<Vec<u8>> = (0..n as u32)
                    .map(|f| Postcard.encode_field(&f, &TypeTag::of::<u32>()).unwrap())
                    .collect();
                let got: Vec<Option<Vec<u8>>> =
                    redis::cmd("HMGET").arg(&k).arg(fields).query(raw).unwrap();
                if got.iter().any(Option::is_none) {
                    return Found::Torn;
                }
            }
            whole
        }
        Kind::CounterTtl => {
            let v: Option<i64> = redis::cmd("GET").arg(&k).query(raw).unwrap();
            match v {
                Some(1) | None => with_ttl(v.is_some(), ttl),
                Some(_) => Found::Torn,
            }
        }
        Kind::SetInsertTtl => with_ttl(exists(raw, &k), ttl),
        Kind::SetExtendTtl => batches(card(raw, "SCARD", &k), SET_ROUND_TRIP, true, ttl),
        Kind::SetStore => match (exists(raw, &k), ttl) {
            (false, _) => Found::Nothing,
            (true, true) if card(raw, "SCARD", &k) == 3 => Found::All,
            _ => Found::Torn, // the SUNIONSTORE without its PEXPIRE
        },
        Kind::ZsetInsertTtl => with_ttl(exists(raw, &k), ttl),
        Kind::ZsetPopTtl => {
            // Set up as {a, b} without a TTL, then a pop with one.
            match (card(raw, "ZCARD", &k), ttl) {
                (0, _) | (2, false) => Found::Nothing,
                (1, true) => Found::All,
                _ => Found::Torn,
            }
        }
        Kind::RegionTx => {
            // The region `RegionTx-t-i` under the root `aon`: its generation and its hash come
            // in one script.
            match stem(raw, "{aon}", &k) {
                None => Found::Nothing,
                Some(stem) => {
                    let hash = format!("{{aon}}{stem}");
                    if hlen(raw, &hash) == 9 && pttl(raw, &hash) > 0 {
                        Found::All
                    } else {
                        Found::Torn
                    }
                }
            }
        }
        Kind::RegionInvalidate => {
            // `RegionInvalidate-t-i` and its child `c`, both written before the invalidation
            // started. Reclamation is manual here, so a retired generation stays queued with
            // its keys.
            let live = (
                stem(raw, "{aon}", &k),
                stem(raw, "{aon}", &format!("{k}.c")),
            );
            let suffix = format!(".{k}");
            let queued: Vec<String> = queue(raw, "{aon}")
                .into_iter()
                .filter(|e| {
                    e.strip_suffix(&suffix)
                        .and_then(|id| id.strip_prefix('@'))
                        .is_some_and(|id| id.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect();
            match (live, queued.as_slice()) {
                ((Some(parent), Some(child)), []) => {
                    let kept = exists(raw, &format!("{{aon}}{parent}"))
                        && exists(raw, &format!("{{aon}}{child}"));
                    if kept { Found::Nothing } else { Found::Torn }
                }
                ((None, None), [retired]) => {
                    let hash = format!("{{aon}}{retired}");
                    let kid: Option<String> = redis::cmd("HGET")
                        .arg(format!("{hash}#children"))
                        .arg("c")
                        .query(raw)
                        .unwrap();
                    if exists(raw, &hash) && kid.is_some() {
                        Found::All
                    } else {
                        Found::Torn
                    }
                }
                _ => Found::Torn,
            }
        }
        Kind::Memo => {
            let value = memo_key("v", op);
            let lock = memo_key("lock", op);
            match (exists(raw, &value), exists(raw, &lock)) {
                // A lock alone: the read script ran, the kill came before the finish.
                (false, _) => Found::Nothing,
                (true, false) if pttl(raw, &value) > 0 => Found::All,
                _ => Found::Torn, // stored, but the lock not released (or no TTL)
            }
        }
    }
}

/// What the threads did: the operations they started (and when), those acknowledged, and
/// those that failed.
#[derive(Default)]
struct Done {
    started: Vec<(OpId, Instant)>,
    acked: HashSet<OpId>,
    failed: HashSet<OpId>,
}

/// Runs one operation of the kill test (after its set-up, which is not part of it).
fn run(
    conn: &Connection,
    op: OpId,
    sources: &(SetCache<u8>, SetCache<u8>),
) -> redis_caches::Result<()> {
    let (kind, round, t, i) = op;
    let k = key(op);
    let hour = Duration::from_secs(3600);
    let dict = |ttl: Option<Duration>| {
        let b = DictCache::<String, u64>::builder(k.clone()).connection(conn);
        match ttl {
            Some(ttl) => b.ttl(ttl).build(),
            None => b.build(),
        }
    };
    let numbered = |ttl: Option<Duration>| {
        let b = DictCache::<u32, u32>::builder(k.clone()).connection(conn);
        match ttl {
            Some(ttl) => b.ttl(ttl).build(),
            None => b.build(),
        }
    };
    let set = || {
        SetCache::<u32>::builder(k.clone())
            .connection(conn)
            .ttl(hour)
            .build()
    };
    let zset = || {
        SortedSetCache::<String>::builder(k.clone())
            .connection(conn)
            .ttl(hour)
            .build()
    };
    let region = |name: &str| {
        Region::builder(name)
            .root("aon")
            .connection(conn)
            .ttl(hour)
            .reclaim(Reclaim::Manual)
            .build()
    };
    match kind {
        Kind::DictInsert => dict(Some(hour)).insert("f", &i).map(drop),
        Kind::DictRemove => dict(Some(hour)).remove("gone").map(drop),
        Kind::DictPopItem => dict(Some(hour)).pop_item().map(drop),
        Kind::DictExtendTtl | Kind::DictExtend => {
            let ttl = (kind == Kind::DictExtendTtl).then_some(hour);
            let n = 2 * EXTEND_ROUND_TRIP as u32;
            numbered(ttl).extend((0..n).map(|f| (f, f))).map(drop)
        }
        Kind::CounterTtl => RedisCache::<i64>::counter(k.clone())
            .connection(conn)
            .ttl(hour)
            .build()
            .incr(1)
            .map(drop),
        Kind::SetInsertTtl => set().insert(&7).map(drop),
        Kind::SetExtendTtl => set().extend(0..2 * SET_ROUND_TRIP as u32).map(drop),
        Kind::SetStore => {
            let dest: SetCache<u8> = SetCache::builder(k.clone())
                .connection(conn)
                .ttl(hour)
                .build();
            sources.0.union_store([&sources.1], &dest).map(drop)
        }
        Kind::ZsetInsertTtl => zset().insert("m", 1.0).map(drop),
        Kind::ZsetPopTtl => zset().pop_min().map(drop),
        Kind::Memo => Memo::builder(memo_name(round), |(t, i): (usize, u64)| format!("{t}/{i}"))
            .connection(conn)
            .key(|&(t, i): &(usize, u64)| (t, i))
            .ttl(hour)
            .lock_timeout(hour)
            .build()
            .call((t, i))
            .map(drop),
        Kind::RegionTx => region(&k).transaction(|tx| {
            tx.set("marker", &i)?;
            for f in 0..8u8 {
                tx.set(&format!("f{f}"), &f)?;
            }
            Ok::<_, redis_caches::Error>(())
        }),
        Kind::RegionInvalidate => region(&k).invalidate().map(drop),
    }
}

/// The state an operation starts from, written before it starts (not part of it).
fn set_up(conn: &Connection, op: OpId) -> redis_caches::Result<()> {
    let k = key(op);
    match op.0 {
        Kind::DictRemove | Kind::DictPopItem => DictCache::<String, u64>::builder(k)
            .connection(conn)
            .build()
            .extend([("keep".to_string(), 1), ("gone".to_string(), 2)])
            .map(drop),
        Kind::ZsetPopTtl => SortedSetCache::<String>::builder(k)
            .connection(conn)
            .build()
            .extend([("a", 1.0), ("b", 2.0)])
            .map(drop),
        Kind::RegionInvalidate => {
            let region = |name: &str| {
                Region::builder(name)
                    .root("aon")
                    .connection(conn)
                    .ttl(Duration::from_secs(3600))
                    .reclaim(Reclaim::Manual)
                    .build()
            };
            region(&format!("{k}.c"))
                .set("v", &1u8)
                .and_then(|_| region(&k).set("v", &1u8))
                .map(drop)
        }
        _ => Ok(()),
    }
}

/// How many times the kill test kills the server: at least `KILLS.start`, and more (up to
/// `KILLS.end`) until every kind of operation has been running at a kill.
const KILLS: std::ops::Range<usize> = 3..12;

/// Threads per kind of operation: two, so that a kill rarely finds both preparing the state
/// their next operation starts from (which is not part of it).
const THREADS_PER_KIND: usize = 2;

/// Threads for `kind`: an invalidation is one short script after a long set-up (a region and
/// its child written), so a kill rarely finds one in flight; it gets three times as many
/// threads (a CI run once killed seven times without catching one).
fn threads_for(kind: Kind) -> usize {
    match kind {
        Kind::RegionInvalidate => 3 * THREADS_PER_KIND,
        _ => THREADS_PER_KIND,
    }
}

#[test]
fn operations_in_flight_when_the_server_is_killed_are_applied_whole_or_not_at_all() {
    let mut server = persistent_server();
    let mut in_flight_kinds: HashMap<Kind, usize> = HashMap::new();
    let mut seen: HashMap<(Kind, Found), usize> = HashMap::new();
    for round in 0..KILLS.end {
        let covered = KINDS.iter().all(|k| in_flight_kinds.contains_key(k));
        if round >= KILLS.start && covered {
            break;
        }
        let conn = fault_connection(&server);
        // The sources of the set stores: their union has 3 members.
        let a: SetCache<u8> = SetCache::builder("aon.src.a").connection(&conn).build();
        let b: SetCache<u8> = SetCache::builder("aon.src.b").connection(&conn).build();
        a.extend([1, 2]).unwrap();
        b.extend([2, 3]).unwrap();
        let sources = Arc::new((a, b));

        // Threads of their own for each kind, so that every kind is running when the kill
        // comes.
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Done::default()));
        let threads: Vec<_> = KINDS
            .iter()
            .flat_map(|&kind| std::iter::repeat_n(kind, threads_for(kind)))
            .enumerate()
            .map(|(t, kind)| {
                let (conn, stop, done, sources) =
                    (conn.clone(), stop.clone(), done.clone(), sources.clone());
                thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let op = (kind, round, t, i);
                        i += 1;
                        if set_up(&conn, op).is_err() {
                            continue;
                        }
                        done.lock().unwrap().started.push((op, Instant::now()));
                        match run(&conn, op, &sources) {
                            Ok(()) => {
                                done.lock().unwrap().acked.insert(op);
                            }
                            Err(e) => {
                                assert!(e.is_connection(), "{kind:?}: {e:?}");
                                done.lock().unwrap().failed.insert(op);
                            }
                        }
                    }
                })
            })
            .collect();

        // Kill the server while every thread is busy, once each kind has been acknowledged
        // a few times.
        assert!(eventually(Duration::from_secs(30), || {
            let done = done.lock().unwrap();
            KINDS
                .iter()
                .all(|k| done.acked.iter().filter(|op| op.0 == *k).count() >= 2)
        }));
        let killed_at = Instant::now();
        server.stop();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("a thread panicked");
        }

        let mut raw = restart_and_wait(&mut server);
        let done = done.lock().unwrap();
        for &(op, started) in &done.started {
            // Running when the server died, and never acknowledged: in flight at the kill.
            if started < killed_at && done.failed.contains(&op) {
                *in_flight_kinds.entry(op.0).or_default() += 1;
            }
            let found = found(&mut raw, op);
            *seen.entry((op.0, found)).or_default() += 1;
            assert_ne!(found, Found::Torn, "{op:?}");
            if done.acked.contains(&op) {
                assert_eq!(found, Found::All, "acknowledged {op:?}");
            }
        }
        // The memo's statistics agree with the values and locks: each read script counted
        // one miss (and took one lock), each finish script one refresh (and turned its lock
        // into a value).
        let count = |pattern: String, raw: &mut redis::Connection| -> usize {
            let keys: redis::Iter<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(raw)
                .unwrap();
            keys.count()
        };
        let name = memo_name(round);
        let values = count(format!("{{memo:{name}}}.v.*"), &mut raw);
        let locks = count(format!("{{memo:{name}}}.lock.*"), &mut raw);
        let stats: HashMap<String, usize> = redis::cmd("HGETALL")
            .arg(format!("{{memo:{name}}}.stats"))
            .query(&mut raw)
            .unwrap();
        assert_eq!(
            stats.get("misses").copied().unwrap_or(0),
            values + locks,
            "{stats:?}"
        );
        assert_eq!(
            stats.get("refreshes").copied().unwrap_or(0),
            values,
            "{stats:?}"
        );
    }
    // Over the kills, every kind of operation was running when the server died, and was
    // found whole or absent.
    let missing: Vec<&Kind> = KINDS
        .iter()
        .filter(|k| !in_flight_kinds.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "never in flight at a kill: {missing:?} (in flight: {in_flight_kinds:?}; found: {seen:?})"
    );
}
