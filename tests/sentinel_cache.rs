//! The `SentinelCache` gate (a set-once claim under one key) against a real server: exactly
//! one claim per key across threads and processes, TTL re-opening, reset, wrong types, and the
//! commands a claim costs. (Redis Sentinel, the high-availability setup, is tested in
//! `redis_sentinel.rs`.)

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use redis_caches::{Connection, Error, SentinelCache, Ttl};
use support::RedisServer;
use support::redis_helpers::{raw_pttl, raw_set};

const KEYS: usize = 1_000;
const THREADS: usize = 8;

fn gate(conn: &Connection, key: impl redis_caches::key::IntoKey) -> SentinelCache {
    SentinelCache::builder(key).connection(conn).build()
}

/// Races `THREADS` threads over the `KEYS` gates of `run`, each thread starting at a different
/// key (shifted by `offset`, so that the two processes start on different gates); returns the
/// keys this process won, checking that no key was won twice in it.
///
/// The threads first open their pooled connections and build their handles, then `start` runs
/// (the cross-process handshake), and only then do they claim: both processes set off at the
/// same moment, ready to go.
fn race(conn: &Connection, run: &str, offset: usize, start: impl FnOnce()) -> Vec<usize> {
    let ready = Arc::new(Barrier::new(THREADS + 1));
    let go = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let gates: Vec<SentinelCache> =
                (0..KEYS).map(|i| gate(conn, (run, "gate", i))).collect();
            let warm = gate(conn, (run, "warm-up", offset + t));
            let (ready, go) = (ready.clone(), go.clone());
            thread::spawn(move || {
                warm.claim().expect("warm-up claim");
                ready.wait();
                go.wait();
                let mut won = Vec::new();
                for n in 0..KEYS {
                    let i = (n + t * KEYS / THREADS + offset) % KEYS;
                    if gates[i].claim().expect("claim") {
                        won.push(i);
                    }
                }
                won
            })
        })
        .collect();
    ready.wait();
    start();
    go.wait();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("racing thread"));
    }
    let distinct: HashSet<usize> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a key was won twice in one process"
    );
    all
}

/// Records `won` in the Redis set `<run>.wins.<who>`, in one pipeline.
fn record(raw: &mut redis::Connection, run: &str, who: &str, won: &[usize]) {
    let mut cmd = redis::cmd("SADD");
    cmd.arg(format!("{run}.wins.{who}"));
    for i in won {
        cmd.arg(*i);
    }
    if !won.is_empty() {
        cmd.exec(raw).expect("record the wins");
    }
}

#[test]
fn exactly_one_claim_per_key_across_threads_and_processes() {
    let server = RedisServer::start();
    // Exclusivity is checked on every run. On a loaded machine one process can, rarely, win
    // every gate before the other gets going; such a run proves exclusivity but not under
    // contention, so the race runs again on fresh gates (at most 5 times) until both
    // processes have won some.
    for attempt in 1..=5 {
        let (mine, theirs) = race_two_processes(&server);
        if !mine.is_empty() && !theirs.is_empty() {
            return;
        }
        eprintln!(
            "attempt {attempt}: parent won {}, child {}: no contention, racing again",
            mine.len(),
            theirs.len()
        );
    }
    panic!("in 5 runs, one process always won every gate: the race never had contention");
}

/// One race of this process and a child over fresh gates; checks that every gate was won
/// exactly once, and returns the gates each process won.
fn race_two_processes(server: &RedisServer) -> (HashSet<usize>, HashSet<usize>) {
    let run = support::unique("race");
    let child = support::child_process(
        "child_races_on_the_gates",
        &[("RACE_URL", server.url()), ("RACE_RUN", run.clone())],
    );
    // Start together: once both are ready, the child says so, the parent says go, and both
    // race.
    let mut raw = server.raw();
    let conn = server.connection();
    let mine = race(&conn, &run, 0, || {
        let ready: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(format!("{run}.ready"))
            .arg(30)
            .query(&mut raw)
            .expect("BLPOP ready");
        assert!(ready.is_some(), "the child never became ready");
        redis::cmd("RPUSH")
            .arg(format!("{run}.go"))
            .arg(1)
            .exec(&mut raw)
            .expect("RPUSH go");
    });
    record(&mut raw, &run, "parent", &mine);
    support::wait_child(child);

    let theirs: HashSet<usize> = redis::cmd("SMEMBERS")
        .arg(format!("{run}.wins.child"))
        .query(&mut raw)
        .expect("SMEMBERS");
    let mine: HashSet<usize> = mine.into_iter().collect();
    assert!(
        mine.is_disjoint(&theirs),
        "keys won by both processes: {:?}",
        mine.intersection(&theirs).take(10).collect::<Vec<_>>()
    );
    let all: HashSet<usize> = mine.union(&theirs).copied().collect();
    assert_eq!(all.len(), KEYS, "every gate is won by someone");
    // Every gate is now closed.
    assert!(gate(&conn, (run.as_str(), "gate", 0)).exists().unwrap());
    assert!(
        !gate(&conn, (run.as_str(), "gate", KEYS - 1))
            .claim()
            .unwrap()
    );
    (mine, theirs)
}

#[test]
#[ignore = "child process entry point: run by exactly_one_claim_per_key_across_threads_and_processes"]
fn child_races_on_the_gates() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("RACE_URL").expect("RACE_URL");
    let run = std::env::var("RACE_RUN").expect("RACE_RUN");
    let conn = Connection::open(&support::unique("child"), &url).expect("connection");
    let mut raw = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let won = race(&conn, &run, KEYS / (2 * THREADS), || {
        redis::cmd("RPUSH")
            .arg(format!("{run}.ready"))
            .arg(1)
            .exec(&mut raw)
            .expect("RPUSH ready");
        let go: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(format!("{run}.go"))
            .arg(30)
            .query(&mut raw)
            .expect("BLPOP go");
        assert!(go.is_some(), "the parent never said go");
    });
    record(&mut raw, &run, "child", &won);
}

#[test]
fn claim_once_then_reset_reopens() {
    let server = RedisServer::start();
    let conn = server.connection();
    let g = gate(&conn, ["jobs", "nightly"]);
    assert!(!g.exists().unwrap());
    assert_eq!(g.ttl().unwrap(), Ttl::Missing);
    assert!(g.claim().unwrap());
    assert!(!g.claim().unwrap());
    assert!(!g.clone().claim().unwrap(), "a clone sees the same gate");
    assert!(!gate(&conn, ["jobs", "nightly"]).claim().unwrap());
    assert!(g.exists().unwrap());
    assert!(g.exists().unwrap());
    assert_eq!(g.ttl().unwrap(), Ttl::Persistent, "no TTL: closed for good");

    let stored: Vec<u8> = redis::cmd("GET")
        .arg("jobs.nightly")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(stored, b"1", "the gate stores the Redis string 1");

    assert!(g.clear().unwrap());
    assert!(!g.clear().unwrap(), "resetting an open gate is a no-op");
    assert!(!g.exists().unwrap());
    assert!(g.claim().unwrap());
    assert!(g.clear().unwrap());
    assert!(!g.exists().unwrap());
}

#[test]
fn a_ttl_reopens_the_gate() {
    let server = RedisServer::start();
    let conn = server.connection();
    let g = SentinelCache::builder("hourly")
        .connection(&conn)
        .ttl(Duration::from_millis(400))
        .build();
    assert!(g.claim().unwrap());
    match g.ttl().unwrap() {
        Ttl::Expires(left) => assert!(left <= Duration::from_millis(400), "{left:?}"),
        // A very slow machine may have let it expire already; the poll below still checks.
        Ttl::Missing => {}
        other => panic!("a claimed gate with a TTL must expire: {other:?}"),
    }
    // Reopens by itself: some later claim succeeds, and then the gate is closed again.
    assert!(
        support::eventually(Duration::from_secs(5), || g.claim().unwrap()),
        "the gate never re-opened"
    );
    assert!(g.exists().unwrap());

    // A claim on a closed gate does not push its expiry.
    let long = SentinelCache::builder("daily")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    assert!(long.claim().unwrap());
    let first = long.ttl().unwrap().remaining().expect("a TTL");
    thread::sleep(Duration::from_millis(20));
    assert!(!long.claim().unwrap());
    let second = long.ttl().unwrap().remaining().expect("a TTL");
    assert!(
        second < first,
        "a failed claim refreshed the TTL: {first:?} -> {second:?}"
    );
}

#[test]
fn expire_closes_a_gate_for_a_while() {
    let server = RedisServer::start();
    let conn = server.connection();
    let g = gate(&conn, "manual");
    assert!(
        !g.expire(Duration::from_millis(20)).unwrap(),
        "open gate: nothing to expire"
    );
    assert!(g.claim().unwrap());
    assert!(g.expire(Duration::from_millis(20)).unwrap());
    assert!(support::eventually(Duration::from_secs(5), || !g
        .exists()
        .unwrap()));
    assert!(g.claim().unwrap());
}

#[test]
fn another_redis_type_under_the_key_is_a_typed_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    redis::cmd("HSET")
        .arg("busy")
        .arg("f")
        .arg("v")
        .exec(&mut raw)
        .unwrap();
    let g = gate(&conn, "busy");
    match g.claim() {
        Err(Error::WrongType {
            key,
            expected,
            found,
        }) => {
            assert_eq!(key, "busy");
            assert_eq!(expected, "string");
            assert_eq!(found, "hash");
        }
        other => panic!("expected a WrongType error, got {other:?}"),
    }
    let kind: String = redis::cmd("TYPE").arg("busy").query(&mut raw).unwrap();
    assert_eq!(kind, "hash", "a failed claim writes nothing");
    assert!(g.exists().unwrap(), "documented: any key counts as set");
    assert!(g.clear().unwrap());
    assert!(g.claim().unwrap());
}

#[test]
fn a_foreign_string_counts_as_claimed() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_set(&server, "taken", "");
    assert!(!gate(&conn, "taken").claim().unwrap());
}

#[test]
fn each_claim_is_one_set_command() {
    let server = RedisServer::start();
    let conn = server.connection();
    let plain = gate(&conn, "counted");
    let with_ttl = SentinelCache::builder("counted-ttl")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    plain.exists().unwrap(); // opens the pooled connection
    let counted = server.count_commands(|| {
        assert!(plain.claim().unwrap());
        assert!(!plain.claim().unwrap());
        assert!(with_ttl.claim().unwrap());
        assert!(!with_ttl.claim().unwrap());
    });
    if server.version().redis_at_least(7, 0) {
        assert_eq!(counted.get("set"), Some(&4), "{counted:?}");
        assert_eq!(counted.len(), 1, "nothing but SET: {counted:?}");
    } else {
        // Redis 6.2 has no SET NX GET: one EVAL per claim runs SET NX, and TYPE and GET when
        // the gate was already closed (to tell a closed gate from a key of another type).
        assert_eq!(counted.get("eval"), Some(&4), "{counted:?}");
        assert_eq!(counted.get("set"), Some(&4), "{counted:?}");
        assert_eq!(counted.get("type"), Some(&2), "{counted:?}");
        assert_eq!(counted.get("get"), Some(&2), "{counted:?}");
        assert_eq!(counted.len(), 4, "{counted:?}");
    }

    let counted = server.count_commands(|| {
        plain.exists().unwrap();
        plain.clear().unwrap();
        plain.ttl().unwrap();
        plain.expire(Duration::from_secs(1)).unwrap();
    });
    let expected = [("exists", 1), ("del", 1), ("pttl", 1), ("pexpire", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(counted, expected);
}

#[test]
fn ttl_and_prefix_are_applied_by_the_claim() {
    let server = RedisServer::start();
    let conn = server.connection();
    let g = SentinelCache::builder(["a", "b"])
        .connection(&conn)
        .prefix("gates")
        .ttl(Duration::from_secs(100))
        .build();
    assert!(g.claim().unwrap());
    let pttl = raw_pttl(&server, "gates.a.b");
    assert!((1..=100_000).contains(&pttl), "{pttl}");
}

#[test]
fn debug_shows_key_and_type_only() {
    let server = RedisServer::start();
    let conn = server.connection();
    let g = gate(&conn, ["jobs", "x"]);
    let shown = format!("{g:?}");
    assert!(shown.contains("SentinelCache"), "{shown}");
    assert!(shown.contains("jobs.x"), "{shown}");
    assert!(!shown.contains("redis://"), "{shown}");
}
