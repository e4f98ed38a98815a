//! All or nothing: every multi-command operation of the crate is applied whole or not at all,
//! whether other clients look at the data while it runs, or the server is killed in the
//! middle of it (checked from a fresh connection after a restart with persistence on).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::memo::Memo;
use redis_caches::{Connection, DictCache, Region, SetCache};
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

/// The multi-command operations of the kill test, each on keys of its own (thread, iteration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// `DictCache::insert` with a TTL: `MULTI`, `HGET`, `HSET`, `PEXPIRE`, `EXEC`.
    DictInsert,
    /// `DictCache::remove` with a TTL: `MULTI`, `HGET`, `HDEL`, `PEXPIRE`, `EXEC`.
    DictRemove,
    /// `DictCache::extend` of two round trips with a TTL, each `MULTI`, 8 `HSET`s,
    /// `PEXPIRE`, `EXEC`.
    DictExtendTtl,
    /// `DictCache::extend` of two round trips without a TTL, each `MULTI`, 8 `HSET`s, `EXEC`.
    DictExtend,
    /// `SetCache::union_store` into a destination with a TTL: `MULTI`, `SUNIONSTORE`,
    /// `PEXPIRE`, `EXEC`.
    SetStore,
    /// A memo miss: the read script (takes the lock), the function, the finish script
    /// (stores the value with its TTL, releases the lock, counts).
    Memo,
    /// `Region::transaction` writing a marker and 8 entries into a region with a TTL: the
    /// commit is `MULTI`, `SADD` (the link), `HSET`, `PEXPIRE`, `EXEC`.
    RegionTx,
    /// `Region::invalidate` of a region and its child, both written first: one Lua script.
    RegionInvalidate,
}

const KINDS: [Kind; 8] = [
    Kind::DictInsert,
    Kind::DictRemove,
    Kind::DictExtendTtl,
    Kind::DictExtend,
    Kind::SetStore,
    Kind::Memo,
    Kind::RegionTx,
    Kind::RegionInvalidate,
];

fn key(kind: Kind, thread: usize, i: u64) -> String {
    format!("aon-{kind:?}-{thread}-{i}")
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
    /// Part of one transaction or script: what must never happen.
    Torn,
}

fn pttl(raw: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(raw).unwrap()
}

fn exists(raw: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(raw).unwrap()
}

fn is_member(raw: &mut redis::Connection, set: &str, member: &str) -> bool {
    redis::cmd("SISMEMBER")
        .arg(set)
        .arg(member)
        .query(raw)
        .unwrap()
}

fn hlen(raw: &mut redis::Connection, key: &str) -> usize {
    redis::cmd("HLEN").arg(key).query(raw).unwrap()
}

const MEMO: &str = "aon";

fn memo_key(kind: &str, thread: usize, i: u64) -> String {
    format!("{{memo:{MEMO}}}.{kind}.{thread}.{i}")
}

/// A field of the test's `DictCache<String, u64>`, as stored.
fn field(name: &str) -> Vec<u8> {
    Postcard.encode(name, &TypeTag::of::<String>()).unwrap()
}

/// Checks one operation from a fresh connection.
fn found(raw: &mut redis::Connection, kind: Kind, thread: usize, i: u64) -> Found {
    let k = key(kind, thread, i);
    let ttl = pttl(raw, &k) > 0;
    match kind {
        Kind::DictInsert => match (exists(raw, &k), ttl) {
            (false, _) => Found::Nothing,
            (true, true) if hlen(raw, &k) == 1 => Found::All,
            _ => Found::Torn, // the HSET without its PEXPIRE
        },
        Kind::DictRemove => {
            // Set up as {keep, gone} without a TTL, then `remove("gone")` with one.
            let gone: bool = redis::cmd("HEXISTS")
                .arg(&k)
                .arg(field("gone"))
                .query(raw)
                .unwrap();
            match (exists(raw, &k), gone, ttl) {
                (false, _, _) | (true, true, false) => Found::Nothing,
                (true, false, true) if hlen(raw, &k) == 1 => Found::All,
                _ => Found::Torn,
            }
        }
        Kind::DictExtendTtl | Kind::DictExtend => {
            let n = hlen(raw, &k);
            // Each round trip whole, with its PEXPIRE when there is a TTL.
            if !n.is_multiple_of(EXTEND_ROUND_TRIP)
                || (n > 0 && (kind == Kind::DictExtendTtl) != ttl)
            {
                return Found::Torn;
            }
            // Round trips go in order: the first n fields.
            let fields: Vec<u32> = (0..n as u32).collect();
            if n > 0 {
                let got: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                    .arg(&k)
                    .arg(
                        fields
                            .iter()
                            .map(|f| Postcard.encode(f, &TypeTag::of::<u32>()).unwrap())
                            .collect::<Vec<_>>(),
                    )
                    .query(raw)
                    .unwrap();
                if got.iter().any(Option::is_none) {
                    return Found::Torn;
                }
            }
            match n / EXTEND_ROUND_TRIP {
                0 => Found::Nothing,
                1 => Found::Prefix,
                _ => Found::All,
            }
        }
        Kind::SetStore => match (exists(raw, &k), ttl) {
            (false, _) => Found::Nothing,
            (true, true) => {
                let n: usize = redis::cmd("SCARD").arg(&k).query(raw).unwrap();
                if n == 3 { Found::All } else { Found::Torn }
            }
            (true, false) => Found::Torn, // the SUNIONSTORE without its PEXPIRE
        },
        Kind::RegionTx => {
            // The region `RegionTx-t-i` under the root `aon`.
            let linked = is_member(raw, "{aon}#children", &format!("{{aon}}.{k}"));
            match (exists(raw, &format!("{{aon}}.{k}")), linked) {
                (false, false) => Found::Nothing,
                (true, true)
                    if hlen(raw, &format!("{{aon}}.{k}")) == 9 && {
                        pttl(raw, &format!("{{aon}}.{k}")) > 0
                    } =>
                {
                    Found::All
                }
                _ => Found::Torn,
            }
        }
        Kind::RegionInvalidate => {
            // `RegionInvalidate-t-i` and its child `c`, both written before the invalidation
            // started.
            let parent = format!("{{aon}}.{k}");
            let child = format!("{{aon}}.{k}.c");
            let parent_linked = is_member(raw, "{aon}#children", &parent);
            let child_linked = is_member(raw, &format!("{{aon}}#children.{k}"), &child);
            match [
                exists(raw, &parent),
                exists(raw, &child),
                parent_linked,
                child_linked,
            ] {
                [true, true, true, true] => Found::Nothing,
                [false, false, false, false] => Found::All,
                _ => Found::Torn,
            }
        }
        Kind::Memo => {
            let value = memo_key("v", thread, i);
            let lock = memo_key("lock", thread, i);
            match (exists(raw, &value), exists(raw, &lock)) {
                // A lock alone: the read script ran, the kill came before the finish.
                (false, _) => Found::Nothing,
                (true, false) if pttl(raw, &value) > 0 => Found::All,
                _ => Found::Torn, // stored, but the lock not released (or no TTL)
            }
        }
    }
}

/// What the threads did: the operations they started, and those acknowledged.
#[derive(Default)]
struct Done {
    started: Vec<(Kind, usize, u64)>,
    acked: HashSet<(Kind, usize, u64)>,
}

#[test]
fn operations_in_flight_when_the_server_is_killed_are_applied_whole_or_not_at_all() {
    const THREADS: usize = 4;
    let mut server = persistent_server();
    let conn = fault_connection(&server);
    // The sources of the set stores: their union has 3 members.
    let a: SetCache<u8> = SetCache::builder("aon.src.a").connection(&conn).build();
    let b: SetCache<u8> = SetCache::builder("aon.src.b").connection(&conn).build();
    a.extend([1, 2]).unwrap();
    b.extend([2, 3]).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(Mutex::new(Done::default()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (conn, stop, done) = (conn.clone(), stop.clone(), done.clone());
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let memo = Memo::builder(MEMO, |(t, i): (usize, u64)| format!("{t}/{i}"))
                    .connection(&conn)
                    .key(|&(t, i): &(usize, u64)| (t, i))
                    .ttl(Duration::from_secs(3600))
                    .lock_timeout(Duration::from_secs(3600))
                    .build();
                let hour = Duration::from_secs(3600);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for kind in KINDS {
                        let k = key(kind, t, i);
                        let dict = |ttl: Option<Duration>| {
                            let b = DictCache::<String, u64>::builder(k.clone()).connection(&conn);
                            match ttl {
                                Some(ttl) => b.ttl(ttl).build(),
                                None => b.build(),
                            }
                        };
                        let numbered = |ttl: Option<Duration>| {
                            let b = DictCache::<u32, u32>::builder(k.clone()).connection(&conn);
                            match ttl {
                                Some(ttl) => b.ttl(ttl).build(),
                                None => b.build(),
                            }
                        };
                        let region = |name: &str| {
                            Region::builder(name)
                                .root("aon")
                                .connection(&conn)
                                .ttl(hour)
                                .build()
                        };
                        if kind == Kind::RegionInvalidate {
                            // Set up first; the invalidation starts once both are written.
                            let set_up = region(&format!("{k}.c"))
                                .set("v", &1u8)
                                .and_then(|_| region(&k).set("v", &1u8));
                            if set_up.is_err() {
                                continue;
                            }
                        }
                        done.lock().unwrap().started.push((kind, t, i));
                        let result = match kind {
                            Kind::DictInsert => dict(Some(hour)).insert("f", &i).map(drop),
                            Kind::DictRemove => dict(None)
                                .extend([("keep".to_string(), 1), ("gone".to_string(), 2)])
                                .and_then(|()| dict(Some(hour)).remove("gone"))
                                .map(drop),
                            Kind::DictExtendTtl | Kind::DictExtend => {
                                let ttl = (kind == Kind::DictExtendTtl).then_some(hour);
                                let n = 2 * EXTEND_ROUND_TRIP as u32;
                                numbered(ttl).extend((0..n).map(|f| (f, f)))
                            }
                            Kind::SetStore => {
                                let dest: SetCache<u8> = SetCache::builder(k.clone())
                                    .connection(&conn)
                                    .ttl(hour)
                                    .build();
                                a.union_store([&b], &dest).map(drop)
                            }
                            Kind::Memo => memo.call((t, i)).map(drop),
                            Kind::RegionTx => region(&k).transaction(|tx| {
                                tx.set("marker", &i)?;
                                for f in 0..8u8 {
                                    tx.set(&format!("f{f}"), &f)?;
                                }
                                Ok::<_, redis_caches::Error>(())
                            }),
                            Kind::RegionInvalidate => region(&k).invalidate().map(drop),
                        };
                        match result {
                            Ok(()) => {
                                done.lock().unwrap().acked.insert((kind, t, i));
                            }
                            Err(e) => assert!(e.is_connection(), "{kind:?}: {e:?}"),
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();

    // Kill the server while the threads are busy, once they have done a few rounds each.
    assert!(eventually(Duration::from_secs(30), || done
        .lock()
        .unwrap()
        .acked
        .len()
        >= THREADS * KINDS.len() * 3));
    server.stop();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a thread panicked");
    }

    let mut raw = restart_and_wait(&mut server);
    let done = done.lock().unwrap();
    let mut seen: HashMap<(Kind, Found), usize> = HashMap::new();
    for &(kind, t, i) in &done.started {
        let found = found(&mut raw, kind, t, i);
        *seen.entry((kind, found)).or_default() += 1;
        assert_ne!(found, Found::Torn, "{kind:?} of thread {t}, iteration {i}");
        if done.acked.contains(&(kind, t, i)) {
            assert_eq!(
                found,
                Found::All,
                "acknowledged {kind:?} of thread {t}, iteration {i}"
            );
        }
    }
    // The memo's statistics agree with the values and locks: each read script counted one
    // miss (and took one lock), each finish script one refresh (and turned its lock into a
    // value).
    let count = |pattern: &str, raw: &mut redis::Connection| -> usize {
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
    let values = count("{memo:aon}.v.*", &mut raw);
    let locks = count("{memo:aon}.lock.*", &mut raw);
    let stats: HashMap<String, usize> = redis::cmd("HGETALL")
        .arg("{memo:aon}.stats")
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
    // The kill came while operations were in flight, and some completed before it.
    assert!(done.started.len() > done.acked.len(), "{seen:?}");
    assert!(seen.keys().any(|(_, f)| *f == Found::All), "{seen:?}");
}
