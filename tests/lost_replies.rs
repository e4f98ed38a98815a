//! No silent double apply: a connection dropped after a write was sent and before its reply
//! came back. A write that is not idempotent (counters, `insert`/`remove` returning the old
//! value, pops, claims, score increments, a memoized counter's increment) fails with `Error::OutcomeUnknown` and is never
//! sent again by the crate; an idempotent one (`SET`, `HSET` of a value, `SADD`, a region
//! transaction's writes) is sent again within the call's timeout and succeeds. The same rule
//! on one server, on a Redis Cluster and on a Sentinel-managed master.
//!
//! How a reply is lost, deterministically: the server holds writes (`CLIENT PAUSE ms WRITE`),
//! the operation's command arrives and waits, the test kills that client (`CLIENT KILL ID`)
//! and lifts the pause. The killed command never ran; a client that sent it again would see
//! it run once the pause is lifted, which the test would read back.

mod support;

use std::time::Duration;

use redis_caches::codec::Raw;
use redis_caches::key::Key;
use redis_caches::memo::{Memo, MemoCounter};
use redis_caches::{
    Connection, DictCache, RedisCache, Region, Result, SentinelCache, SetCache, SortedSetCache,
};
use support::cluster::ClusterHarness;
use support::redis_helpers::chain;
use support::redis_sentinel::SentinelHarness;
use support::{RedisServer, eventually, unique};

/// Calls wait this long for a reply: far longer than the test takes to kill the client, so
/// a resend, had there been one, would have had time to run.
const QUERY: &str = "timeout=3s&pool_timeout=3s";

fn admin(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .expect("an admin connection")
}

/// Runs `op` while the server on `port` holds writes, kills the client whose write is held
/// (the one the operation sent), lifts the pause, and returns what the operation returned.
fn lose_the_reply<T: Send + 'static>(
    port: u16,
    op: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let mut admin = admin(port);
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("WRITE")
        .exec(&mut admin)
        .expect("CLIENT PAUSE");
    let thread = std::thread::spawn(op);
    let mut held = None;
    let found = eventually(Duration::from_millis(1500), || {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut admin)
            .expect("CLIENT LIST");
        held = list.lines().find_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            };
            let flags = field("flags")?;
            (flags.contains('b') && !flags.contains('S'))
                .then(|| field("id").map(str::to_string))?
        });
        held.is_some()
    });
    if let Some(id) = &held {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .exec(&mut admin)
            .expect("CLIENT KILL");
    }
    redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .exec(&mut admin)
        .expect("CLIENT UNPAUSE");
    let result = thread.join().expect("the operation panicked");
    assert!(found, "the operation sent no write to the server on {port}");
    result
}

/// One write, what it does, and whether the crate may send it again after a lost reply.
struct Case {
    name: &'static str,
    idempotent: bool,
    /// Writes the state the operation starts from.
    setup: fn(&Connection, &str),
    /// The operation.
    op: fn(&Connection, &str) -> Result<()>,
    /// Whether the state shows the operation applied.
    applied: fn(&Connection, &str) -> bool,
    /// The key the operation is routed by (its hash slot), for a tag.
    route: fn(&str) -> String,
}

fn tagged(tag: &str) -> String {
    format!("{{{tag}}}")
}

fn k(tag: &str, part: &str) -> Key {
    Key::from_parts([tag, part]).with_hash_tag()
}
fn counter(c: &Connection, tag: &str) -> RedisCache<i64, Raw> {
    RedisCache::builder(k(tag, "n"))
        .connection(c)
        .codec(Raw)
        .build()
}
fn counter_ttl(c: &Connection, tag: &str) -> RedisCache<i64, Raw> {
    RedisCache::builder(k(tag, "nt"))
        .connection(c)
        .codec(Raw)
        .ttl(Duration::from_secs(600))
        .build()
}
fn dict_counter(c: &Connection, tag: &str) -> DictCache<String, i64, Raw> {
    DictCache::builder(k(tag, "dict-counter"))
        .connection(c)
        .codec(Raw)
        .build()
}
fn text(c: &Connection, tag: &str) -> RedisCache<String> {
    RedisCache::builder(k(tag, "text")).connection(c).build()
}
fn dict(c: &Connection, tag: &str) -> DictCache<String, u32> {
    DictCache::builder(k(tag, "dict"))
        .connection(c)
        .ttl(Duration::from_secs(600))
        .build()
}
fn set(c: &Connection, tag: &str) -> SetCache<u32> {
    SetCache::builder(k(tag, "set")).connection(c).build()
}
fn zset(c: &Connection, tag: &str) -> SortedSetCache<u32> {
    SortedSetCache::builder(k(tag, "zset"))
        .connection(c)
        .build()
}
fn gate(c: &Connection, tag: &str) -> SentinelCache {
    SentinelCache::builder(k(tag, "gate")).connection(c).build()
}
/// Reclaimed by hand: the background thread's first step on the tree would be a second
/// paused client, and the one whose reply is lost must be the operation's.
fn region(c: &Connection, tag: &str) -> Region {
    Region::builder("r")
        .root(tag)
        .connection(c)
        .ttl(Duration::from_secs(600))
        .reclaim(redis_caches::region::Reclaim::Manual)
        .build()
}

fn views(c: &Connection, tag: &str) -> MemoCounter<u32> {
    Memo::builder(tag, |page: u32| i64::from(page) * 10)
        .connection(c)
        .ttl(Duration::from_secs(600))
        .build_counter()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "RedisCache::incr (INCRBY)",
            idempotent: false,
            setup: |c, t| {
                counter(c, t).incr(10).unwrap();
            },
            op: |c, t| counter(c, t).incr(1).map(drop),
            applied: |c, t| counter(c, t).get().unwrap() == Some(11),
            route: tagged,
        },
        Case {
            name: "RedisCache::incr with a TTL (script)",
            idempotent: false,
            setup: |c, t| {
                counter_ttl(c, t).incr(10).unwrap();
            },
            op: |c, t| counter_ttl(c, t).incr(1).map(drop),
            applied: |c, t| counter_ttl(c, t).get().unwrap() == Some(11),
            route: tagged,
        },
        Case {
            name: "DictCache::incr (HINCRBY)",
            idempotent: false,
            setup: |c, t| {
                dict_counter(c, t).incr("f", 10).unwrap();
            },
            op: |c, t| dict_counter(c, t).incr("f", 1).map(drop),
            applied: |c, t| dict_counter(c, t).get("f").unwrap() == Some(11),
            route: tagged,
        },
        Case {
            name: "DictCache::insert",
            idempotent: false,
            setup: |_, _| {},
            op: |c, t| dict(c, t).insert("f", &1).map(drop),
            applied: |c, t| dict(c, t).get("f").unwrap() == Some(1),
            route: tagged,
        },
        Case {
            name: "DictCache::remove",
            idempotent: false,
            setup: |c, t| {
                dict(c, t).set("g", &1).unwrap();
            },
            op: |c, t| dict(c, t).remove("g").map(drop),
            applied: |c, t| dict(c, t).get("g").unwrap().is_none(),
            route: tagged,
        },
        Case {
            name: "DictCache::pop_item",
            idempotent: false,
            setup: |c, t| {
                dict(c, t).set("only", &1).unwrap();
            },
            op: |c, t| dict(c, t).pop_item().map(drop),
            applied: |c, t| dict(c, t).is_empty().unwrap(),
            route: tagged,
        },
        Case {
            name: "SetCache::pop",
            idempotent: false,
            setup: |c, t| {
                set(c, t).insert(&5).unwrap();
            },
            op: |c, t| set(c, t).pop().map(drop),
            applied: |c, t| !set(c, t).contains(&5).unwrap(),
            route: tagged,
        },
        Case {
            name: "SortedSetCache::pop_min",
            idempotent: false,
            setup: |c, t| {
                zset(c, t).insert(&1, 1.0).unwrap();
            },
            op: |c, t| zset(c, t).pop_min().map(drop),
            applied: |c, t| zset(c, t).is_empty().unwrap(),
            route: tagged,
        },
        Case {
            name: "SortedSetCache::incr_score",
            idempotent: false,
            setup: |c, t| {
                zset(c, t).insert(&2, 1.0).unwrap();
            },
            op: |c, t| zset(c, t).incr_score(&2, 1.0).map(drop),
            applied: |c, t| zset(c, t).score(&2).unwrap() == Some(2.0),
            route: tagged,
        },
        Case {
            name: "SentinelCache::claim",
            idempotent: false,
            setup: |_, _| {},
            op: |c, t| gate(c, t).claim().map(drop),
            applied: |c, t| gate(c, t).exists().unwrap(),
            route: tagged,
        },
        Case {
            name: "Region::insert",
            idempotent: false,
            setup: |_, _| {},
            op: |c, t| region(c, t).insert("k", &1u32).map(drop),
            applied: |c, t| region(c, t).get::<u32>("k").unwrap() == Some(1),
            route: tagged,
        },
        Case {
            name: "MemoCounter::incr",
            idempotent: false,
            setup: |c, t| {
                views(c, t).call(1).unwrap();
            },
            op: |c, t| views(c, t).incr(1, 1).map(drop),
            applied: |c, t| views(c, t).call(1).unwrap() == 11,
            route: |t| format!("{{memo:{t}}}"),
        },
        Case {
            name: "RedisCache::set (SET)",
            idempotent: true,
            setup: |_, _| {},
            op: |c, t| text(c, t).set("v").map(drop),
            applied: |c, t| text(c, t).get().unwrap().as_deref() == Some("v"),
            route: tagged,
        },
        Case {
            name: "DictCache::set",
            idempotent: true,
            setup: |_, _| {},
            op: |c, t| dict(c, t).set("s", &2).map(drop),
            applied: |c, t| dict(c, t).get("s").unwrap() == Some(2),
            route: tagged,
        },
        Case {
            name: "SetCache::insert (SADD)",
            idempotent: true,
            setup: |_, _| {},
            op: |c, t| set(c, t).insert(&7).map(drop),
            applied: |c, t| set(c, t).contains(&7).unwrap(),
            route: tagged,
        },
        Case {
            name: "Region::transaction",
            idempotent: true,
            setup: |_, _| {},
            op: |c, t| region(c, t).transaction(|tx| tx.set("a", &1u32)),
            applied: |c, t| region(c, t).get::<u32>("a").unwrap() == Some(1),
            route: tagged,
        },
    ]
}

/// Every case on `conn`; `server_of(key)` is the port of the server that holds `key`.
fn every_case(conn: &Connection, server_of: &dyn Fn(&str) -> u16) {
    for case in cases() {
        let tag = unique("lost");
        (case.setup)(conn, &tag);
        let port = server_of(&(case.route)(&tag));
        let (c, t, op) = (conn.clone(), tag.clone(), case.op);
        let result = lose_the_reply(port, move || op(&c, &t));
        // Past the time a resend, had there been one, would need to run.
        std::thread::sleep(Duration::from_millis(100));
        let applied = (case.applied)(conn, &tag);
        if case.idempotent {
            result
                .unwrap_or_else(|e| panic!("{}: sent again and applied: {}", case.name, chain(&e)));
            assert!(applied, "{}: applied once sent again", case.name);
        } else {
            let e = result.expect_err(case.name);
            assert!(
                e.is_outcome_unknown() && e.is_connection() && !e.is_timeout(),
                "{}: {}",
                case.name,
                chain(&e)
            );
            assert!(
                !applied,
                "{}: sent again after its reply was lost",
                case.name
            );
        }
    }
}

#[test]
fn one_server_never_resends_a_write_whose_reply_was_lost_unless_idempotent() {
    let server = RedisServer::start();
    let conn = server.connection_with(QUERY);
    let port = server.port();
    every_case(&conn, &|_| port);
}

#[test]
fn a_cluster_never_resends_a_write_whose_reply_was_lost_unless_idempotent() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection_with(QUERY);
    every_case(&conn, &|key| cluster.master_of(key));
}

#[test]
fn a_sentinel_master_never_resends_a_write_whose_reply_was_lost_unless_idempotent() {
    let group = SentinelHarness::start();
    let conn = group.connection_with(QUERY);
    let port = group.master_port();
    every_case(&conn, &|_| port);
}

/// A counter's write that the cluster redirected, then whose reply was lost: to the node the
/// slot moved to (`MOVED`), or to the node importing the key (`ASK`: `ASKING` and the command
/// in one request, read as two replies, the first one received, the second lost). Either way
/// the command reached a second node after the first refused it: `Error::OutcomeUnknown`, and
/// never sent a third time.
#[test]
fn a_cluster_never_resends_a_redirected_write_whose_reply_was_lost() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection_with(QUERY);
    type Counter = fn(&Connection, &str) -> RedisCache<i64, Raw>;
    let counters: [(&str, Counter, &str); 2] = [
        ("INCRBY", counter, "n"),
        ("a script (with a TTL)", counter_ttl, "nt"),
    ];
    for ask in [true, false] {
        for (name, make, part) in counters {
            let what = format!("{name} after {}", if ask { "ASK" } else { "MOVED" });
            let tag = unique("redirected");
            let source = cluster.master_of(&tagged(&tag));
            let target = cluster
                .masters()
                .into_iter()
                .map(|(p, _)| p)
                .find(|&p| p != source)
                .expect("another master");
            // The crate learns that the source serves the slot.
            make(&conn, &tag).incr(10).unwrap();
            let slot = cluster.slot_of(&tagged(&tag));
            let key = format!("{{{tag}}}.{part}");
            cluster.begin_migration(&[slot], source, target);
            cluster.migrate(&[&key], source, target);
            if !ask {
                cluster.finish_migration(&[slot], source, target);
            }
            let seen = cluster.redirections();
            let (c, t) = (conn.clone(), tag.clone());
            let result = lose_the_reply(target, move || make(&c, &t).incr(1).map(drop));
            let redirected = cluster.redirections();
            let kind = if ask { "ASKING" } else { "MOVED" };
            assert!(
                redirected[kind] > seen[kind],
                "{what}: the write was not redirected: {seen:?} then {redirected:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
            let e = result.expect_err(&what);
            assert!(
                e.is_outcome_unknown() && e.is_connection() && !e.is_timeout(),
                "{what}: {}",
                chain(&e)
            );
            assert_eq!(
                make(&conn, &tag).get().unwrap(),
                Some(10),
                "{what}: sent again after its reply was lost"
            );
        }
    }
}
