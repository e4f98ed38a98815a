//! RedisCache against a real server: round trips, defaults, get-or-insert races, counters
//! across threads and processes, TTL policies, bad stored bytes, size limits, the commands
//! each operation sends, and the exact bytes stored.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use redis_caches::codec::Raw;
use redis_caches::{Connection, Error, RedisCache, SentinelCache, Ttl, TtlPolicy};
use support::RedisServer;
use support::redis_helpers::{
    assert_handle, chain, commands, raw_exec, raw_get, raw_pttl, raw_set,
};

fn string_cache(conn: &Connection, key: &str) -> RedisCache<String> {
    RedisCache::builder(key).connection(conn).build()
}

fn counter(conn: &Connection, key: &str) -> RedisCache<i64, Raw> {
    RedisCache::builder(key).connection(conn).codec(Raw).build()
}

// ---------------------------------------------------------------------------------------
// Handles

/// Compile-time check: handles can be shared between threads and cloned.
#[test]
fn handles_are_clone_send_sync() {
    assert_handle::<RedisCache<String>>();
    assert_handle::<RedisCache<Vec<u8>>>();
    assert_handle::<RedisCache<i64, Raw>>();
    assert_handle::<SentinelCache>();
}

#[test]
fn debug_shows_key_and_type_only() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<String> = RedisCache::builder(["user", "7"])
        .connection(&conn)
        .default_value("default-secret".to_string())
        .build();
    let before = format!("{c:?}");
    c.set("stored-secret").unwrap();
    let after = format!("{c:?}");
    for shown in [before, after] {
        assert!(shown.starts_with("RedisCache"), "{shown}");
        assert!(shown.contains("user.7"), "{shown}");
        assert!(!shown.contains("secret"), "no values in Debug: {shown}");
        assert!(!shown.contains("redis://"), "no DSN in Debug: {shown}");
    }
}

// ---------------------------------------------------------------------------------------
// get / set / delete

#[test]
fn set_get_delete_round_trip_with_borrowed_values() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = string_cache(&conn, "greeting");
    assert_eq!(c.get().unwrap(), None);
    c.set("hello").unwrap(); // &str for a RedisCache<String>
    assert_eq!(c.get().unwrap().as_deref(), Some("hello"));
    let owned = String::from("bonjour");
    c.set(&owned).unwrap();
    assert_eq!(
        string_cache(&conn, "greeting").get().unwrap().as_deref(),
        Some("bonjour"),
        "another handle sees the write"
    );
    assert!(c.clear().unwrap());
    assert!(!c.clear().unwrap(), "nothing left to delete");
    assert_eq!(c.get().unwrap(), None);

    let bytes: RedisCache<Vec<u8>> = RedisCache::builder("blob").connection(&conn).build();
    bytes.set(&[0u8, 1, 255][..]).unwrap(); // &[u8] for a RedisCache<Vec<u8>>
    assert_eq!(bytes.get().unwrap(), Some(vec![0, 1, 255]));
}

#[test]
fn structs_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Cart {
        items: Vec<(String, u32)>,
        coupon: Option<String>,
    }
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<Cart> = RedisCache::builder(("cart", 42)).connection(&conn).build();
    let cart = Cart {
        items: vec![("apple".into(), 3), ("pear".into(), 1)],
        coupon: None,
    };
    c.set(&cart).unwrap();
    assert_eq!(c.get().unwrap(), Some(cart));
}

#[test]
fn default_value_is_returned_for_a_missing_key_and_never_stored() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<u32> = RedisCache::builder("visits")
        .connection(&conn)
        .default_value(0)
        .build();
    assert_eq!(c.get().unwrap(), Some(0));
    assert!(!c.exists().unwrap(), "reading the default writes nothing");
    c.set(&5).unwrap();
    assert_eq!(c.get().unwrap(), Some(5));
    c.clear().unwrap();
    assert_eq!(c.clone().get().unwrap(), Some(0), "clones keep the default");
}

#[test]
fn get_set_delete_cost_one_command_each() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = string_cache(&conn, "k");
    c.exists().unwrap(); // opens the pooled connection
    assert_eq!(
        server.count_commands(|| c.set("v").unwrap()),
        commands(&[("set", 1)])
    );
    assert_eq!(
        server.count_commands(|| assert!(c.get().unwrap().is_some())),
        commands(&[("get", 1)])
    );
    assert_eq!(
        server.count_commands(|| assert!(c.clear().unwrap())),
        commands(&[("del", 1)])
    );

    let refresh: RedisCache<String> = RedisCache::builder("r")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    assert_eq!(
        server.count_commands(|| refresh.set("v").unwrap()),
        commands(&[("set", 1)]),
        "refresh policy: SET PX in one command"
    );
    let keep: RedisCache<String> = RedisCache::builder("kp")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    keep.set("first").unwrap(); // the first call on a server also sends the script's text
    assert_eq!(
        server.count_commands(|| keep.set("v").unwrap()),
        commands(&[("evalsha", 1), ("set", 1), ("pttl", 1)]),
        "keep policy: one script, SET KEEPTTL, and PEXPIRE only when the key has no TTL"
    );
}

// ---------------------------------------------------------------------------------------
// get_or_insert_with

#[test]
fn get_or_insert_with_on_a_hit_is_one_get_and_does_not_compute() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<u64> = RedisCache::builder("answer").connection(&conn).build();
    c.set(&42).unwrap();
    let calls = AtomicUsize::new(0);
    let counted = server.count_commands(|| {
        let v = c
            .get_or_insert_with(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                7
            })
            .unwrap();
        assert_eq!(v, 42);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a hit never computes");
    assert_eq!(counted, commands(&[("get", 1)]));
}

#[test]
fn get_or_insert_with_on_a_miss_stores_the_value() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<u64> = RedisCache::builder("answer")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    c.exists().unwrap(); // opens the pooled connection
    let warm: RedisCache<u64> = RedisCache::builder("warm").connection(&conn).build();
    warm.get_or_insert_with(|| 1).unwrap(); // loads the script on the server
    let counted = server.count_commands(|| assert_eq!(c.get_or_insert_with(|| 42).unwrap(), 42));
    assert_eq!(
        counted,
        commands(&[("get", 1), ("evalsha", 1), ("type", 1), ("set", 1)])
    );
    assert_eq!(c.get().unwrap(), Some(42));
    let left = raw_pttl(&server, "answer");
    assert!((1..=60_000).contains(&left), "the TTL rides along: {left}");
    assert_eq!(c.get_or_insert_with(|| 7).unwrap(), 42);
}

#[test]
fn racing_get_or_insert_with_all_return_the_stored_value() {
    let server = RedisServer::start();
    let conn = server.connection();
    for round in 0..5 {
        let key = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let c: RedisCache<u64> =
                    RedisCache::builder(key.as_str()).connection(&conn).build();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    c.get_or_insert_with(|| {
                        // Widen the window between the GET miss and the SET NX.
                        thread::sleep(Duration::from_millis(5));
                        t
                    })
                    .unwrap()
                })
            })
            .collect();
        let got: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let stored: RedisCache<u64> = RedisCache::builder(key.as_str()).connection(&conn).build();
        let stored = stored.get().unwrap().expect("a value was stored");
        assert!(
            got.iter().all(|v| *v == stored),
            "round {round}: threads got {got:?}, Redis holds {stored}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Counters

#[test]
fn incr_and_decr_return_the_new_value() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = counter(&conn, "hits");
    assert_eq!(c.incr(5).unwrap(), 5, "a missing key counts as 0");
    assert_eq!(c.incr(-2).unwrap(), 3);
    assert_eq!(c.decr(10).unwrap(), -7);
    assert_eq!(c.get().unwrap(), Some(-7));
    assert_eq!(raw_get(&server, "hits").as_deref(), Some(&b"-7"[..]));
    assert_eq!(raw_pttl(&server, "hits"), -1, "no TTL set");

    let small: RedisCache<u8, Raw> = RedisCache::builder("small")
        .connection(&conn)
        .codec(Raw)
        .build();
    assert_eq!(small.incr(200).unwrap(), 200);
    assert_eq!(small.decr(50).unwrap(), 150);
}

#[test]
fn incr_and_decr_cost_one_round_trip() {
    let server = RedisServer::start();
    let conn = server.connection();
    let plain = counter(&conn, "plain");
    plain.exists().unwrap(); // opens the pooled connection
    assert_eq!(
        server.count_commands(|| {
            plain.incr(1).unwrap();
        }),
        commands(&[("incrby", 1)])
    );
    assert_eq!(
        server.count_commands(|| {
            plain.decr(1).unwrap();
        }),
        commands(&[("incrby", 1)])
    );

    let with_ttl: RedisCache<i64, Raw> = RedisCache::builder("ttl")
        .connection(&conn)
        .codec(Raw)
        .ttl(Duration::from_secs(60))
        .build();
    // A script: INCRBY must fail before PEXPIRE runs (see a_failed_incr_leaves_the_keys_ttl_alone).
    // The first call on a server loads the script; count the calls after that.
    with_ttl.incr(1).unwrap();
    let transaction = commands(&[("evalsha", 1), ("type", 1), ("incrby", 1), ("pexpire", 1)]);
    assert_eq!(
        server.count_commands(|| {
            with_ttl.incr(1).unwrap();
        }),
        transaction
    );
    assert_eq!(
        server.count_commands(|| {
            with_ttl.decr(1).unwrap();
        }),
        transaction
    );
    let left = raw_pttl(&server, "ttl");
    assert!((1..=60_000).contains(&left), "{left}");
}

const COUNTER_THREADS: usize = 8;
const INCRS_PER_THREAD: i64 = 500;

/// Each of `COUNTER_THREADS` threads adds 1 `INCRS_PER_THREAD` times and 3 once, and subtracts
/// 2 once: `INCRS_PER_THREAD + 1` per thread.
fn hammer(conn: &Connection, key: &str) {
    let barrier = Arc::new(Barrier::new(COUNTER_THREADS));
    let handles: Vec<_> = (0..COUNTER_THREADS)
        .map(|_| {
            let c: RedisCache<i64, Raw> = RedisCache::builder(key)
                .connection(conn)
                .codec(Raw)
                .ttl(Duration::from_secs(600))
                .build();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..INCRS_PER_THREAD {
                    c.incr(1).expect("incr");
                }
                c.incr(3).expect("incr");
                c.decr(2).expect("decr");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("counting thread");
    }
}

#[test]
fn counters_are_exact_across_threads_and_processes() {
    let server = RedisServer::start();
    let key = support::unique("counter");
    let mut raw = server.raw();
    let child = support::child_process(
        "child_hammers_the_counter",
        &[("COUNTER_URL", server.url()), ("COUNTER_KEY", key.clone())],
    );
    let ready: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(format!("{key}.ready"))
        .arg(30)
        .query(&mut raw)
        .unwrap();
    assert!(ready.is_some(), "the child never became ready");
    redis::cmd("RPUSH")
        .arg(format!("{key}.go"))
        .arg(1)
        .exec(&mut raw)
        .unwrap();
    let conn = server.connection();
    hammer(&conn, &key);
    support::wait_child(child);
    let expected = 2 * COUNTER_THREADS as i64 * (INCRS_PER_THREAD + 1);
    assert_eq!(counter(&conn, &key).get().unwrap(), Some(expected));
}

#[test]
#[ignore = "child process entry point: run by counters_are_exact_across_threads_and_processes"]
fn child_hammers_the_counter() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("COUNTER_URL").expect("COUNTER_URL");
    let key = std::env::var("COUNTER_KEY").expect("COUNTER_KEY");
    let conn = Connection::open(&support::unique("child"), &url).expect("connection");
    let mut raw = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    redis::cmd("RPUSH")
        .arg(format!("{key}.ready"))
        .arg(1)
        .exec(&mut raw)
        .expect("RPUSH ready");
    let go: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(format!("{key}.go"))
        .arg(30)
        .query(&mut raw)
        .expect("BLPOP go");
    assert!(go.is_some(), "the parent never said go");
    hammer(&conn, &key);
}

#[test]
fn counter_overflow_is_a_redis_error_naming_the_key() {
    let server = RedisServer::start();
    let conn = server.connection();
    for ttl in [None, Some(Duration::from_secs(60))] {
        let key = format!("big-{}", ttl.is_some());
        raw_set(&server, &key, i64::MAX.to_string().as_bytes());
        let mut builder = RedisCache::<i64>::builder(key.as_str())
            .connection(&conn)
            .codec(Raw);
        if let Some(ttl) = ttl {
            builder = builder.ttl(ttl);
        }
        let c = builder.build();
        let err = c.incr(1).unwrap_err();
        match &err {
            Error::Redis { target, .. } => assert_eq!(target, &key),
            other => panic!("ttl {ttl:?}: expected Error::Redis, got {other:?}"),
        }
        assert!(chain(&err).contains("overflow"), "{}", chain(&err));
        assert_eq!(c.get().unwrap(), Some(i64::MAX), "the value is unchanged");
    }
}

#[test]
fn incr_on_a_non_integer_is_a_redis_error_naming_the_key() {
    let server = RedisServer::start();
    let conn = server.connection();
    for ttl in [None, Some(Duration::from_secs(60))] {
        let key = format!("text-{}", ttl.is_some());
        raw_set(&server, &key, b"twelve");
        let mut builder = RedisCache::<i64>::builder(key.as_str())
            .connection(&conn)
            .codec(Raw);
        if let Some(ttl) = ttl {
            builder = builder.ttl(ttl);
        }
        let err = builder.build().incr(1).unwrap_err();
        match &err {
            Error::Redis { target, .. } => assert_eq!(target, &key),
            other => panic!("ttl {ttl:?}: expected Error::Redis, got {other:?}"),
        }
        assert!(chain(&err).contains("not an integer"), "{}", chain(&err));
        assert_eq!(raw_get(&server, &key).as_deref(), Some(&b"twelve"[..]));
    }
}

#[test]
fn a_new_value_that_does_not_fit_the_type_is_a_decode_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<u8, Raw> = RedisCache::builder("tiny")
        .connection(&conn)
        .codec(Raw)
        .build();
    c.incr(250).unwrap();
    let err = c.incr(10).unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(err.to_string().contains("tiny"), "{err}");
    assert!(chain(&err).contains("260"), "{}", chain(&err));
    assert_eq!(
        raw_get(&server, "tiny").as_deref(),
        Some(&b"260"[..]),
        "documented: Redis counts in i64 and keeps the new value"
    );

    let unsigned: RedisCache<u64, Raw> = RedisCache::builder("unsigned")
        .connection(&conn)
        .codec(Raw)
        .build();
    let err = unsigned.decr(1).unwrap_err();
    assert!(
        err.is_decode() && chain(&err).contains("-1"),
        "{}",
        chain(&err)
    );

    let big: RedisCache<u64, Raw> = RedisCache::builder("huge")
        .connection(&conn)
        .codec(Raw)
        .build();
    let err = big.incr(u64::MAX).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(!big.exists().unwrap(), "refused before anything is sent");
}

#[test]
fn a_failed_incr_leaves_the_keys_ttl_alone() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_set(&server, "text", b"not a number");
    raw_exec(&server, "SADD", ("members", "a"));
    for key in ["text", "members"] {
        let c: RedisCache<i64, Raw> = RedisCache::builder(key)
            .connection(&conn)
            .codec(Raw)
            .ttl(Duration::from_secs(60))
            .build();
        assert!(c.incr(1).is_err());
        assert_eq!(raw_pttl(&server, key), -1, "{key} must stay persistent");
    }
}

#[test]
fn incr_on_another_redis_type_is_a_wrong_type_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_exec(&server, "SADD", ("members", "a"));
    for ttl in [None, Some(Duration::from_secs(60))] {
        let mut builder = RedisCache::<i64>::builder("members")
            .connection(&conn)
            .codec(Raw);
        if let Some(ttl) = ttl {
            builder = builder.ttl(ttl);
        }
        match builder.build().incr(1) {
            Err(Error::WrongType {
                key,
                expected,
                found,
            }) => {
                assert_eq!(key, "members");
                assert_eq!(expected, "string");
                assert_eq!(found, "set");
            }
            other => panic!("ttl {ttl:?}: expected WrongType, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// TTL

fn ttl_cache(conn: &Connection, key: &str, ttl: Duration, policy: TtlPolicy) -> RedisCache<String> {
    RedisCache::builder(key)
        .connection(conn)
        .ttl(ttl)
        .ttl_policy(policy)
        .build()
}

#[test]
fn refresh_policy_pushes_the_expiry_on_every_write() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = ttl_cache(&conn, "refresh", Duration::from_secs(2), TtlPolicy::Refresh);
    c.set("a").unwrap();
    thread::sleep(Duration::from_millis(300));
    c.set("b").unwrap();
    let left = raw_pttl(&server, "refresh");
    assert!(
        left > 1_700,
        "the second write pushed the expiry: {left} ms left"
    );

    let n: RedisCache<i64, Raw> = RedisCache::builder("refresh-n")
        .connection(&conn)
        .codec(Raw)
        .ttl(Duration::from_secs(2))
        .build();
    n.incr(1).unwrap();
    thread::sleep(Duration::from_millis(300));
    n.incr(1).unwrap();
    let left = raw_pttl(&server, "refresh-n");
    assert!(left > 1_700, "incr pushed the expiry: {left} ms left");

    // And a short TTL does expire once the writes stop.
    let short = ttl_cache(
        &conn,
        "short",
        Duration::from_millis(30),
        TtlPolicy::Refresh,
    );
    short.set("x").unwrap();
    assert!(support::eventually(Duration::from_secs(5), || short
        .get()
        .unwrap()
        .is_none()));
}

#[test]
fn keep_policy_fixes_the_expiry_at_creation() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = ttl_cache(&conn, "keep", Duration::from_secs(2), TtlPolicy::Keep);
    c.set("a").unwrap();
    thread::sleep(Duration::from_millis(300));
    c.set("b").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("b"));
    let left = raw_pttl(&server, "keep");
    assert!(
        (1..=1_700).contains(&left),
        "the second write kept the expiry: {left} ms left"
    );

    let n: RedisCache<i64, Raw> = RedisCache::builder("keep-n")
        .connection(&conn)
        .codec(Raw)
        .ttl(Duration::from_secs(2))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    n.incr(1).unwrap();
    thread::sleep(Duration::from_millis(300));
    n.incr(1).unwrap();
    let left = raw_pttl(&server, "keep-n");
    assert!(
        (1..=1_700).contains(&left),
        "incr kept the expiry: {left} ms left"
    );

    // A key that exists without a TTL gets one on the next write.
    raw_set(&server, "persistent", b"x");
    let p = ttl_cache(&conn, "persistent", Duration::from_secs(2), TtlPolicy::Keep);
    p.set("y").unwrap();
    let left = raw_pttl(&server, "persistent");
    assert!((1..=2_000).contains(&left), "{left}");

    // Writes under Keep do not keep a short-lived key alive: while a write follows every
    // read, some read still finds the key gone, once its creation TTL has run out. (Under
    // Refresh, each write would push the expiry and no read would find it gone.)
    let short = ttl_cache(&conn, "short", Duration::from_millis(100), TtlPolicy::Keep);
    short.set("first").unwrap();
    let expired = support::eventually(Duration::from_secs(5), || {
        let gone = short.get().unwrap().is_none();
        short.set("again").unwrap();
        gone
    });
    assert!(
        expired,
        "the key expired at its creation TTL despite the writes"
    );
}

#[test]
fn ttl_expire_exists_clear() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = string_cache(&conn, "k");
    assert_eq!(c.ttl().unwrap(), Ttl::Missing);
    assert!(!c.exists().unwrap());
    assert!(
        !c.expire(Duration::from_secs(1)).unwrap(),
        "nothing to expire"
    );
    assert!(!c.clear().unwrap());

    c.set("v").unwrap();
    assert!(c.exists().unwrap());
    assert_eq!(c.ttl().unwrap(), Ttl::Persistent);
    assert!(c.expire(Duration::from_secs(100)).unwrap());
    match c.ttl().unwrap() {
        Ttl::Expires(left) => assert!(
            left > Duration::from_secs(90) && left <= Duration::from_secs(100),
            "{left:?}"
        ),
        other => panic!("expected a TTL, got {other:?}"),
    }
    assert!(c.expire(Duration::from_millis(20)).unwrap());
    assert!(support::eventually(Duration::from_secs(5), || !c
        .exists()
        .unwrap()));
    assert_eq!(c.ttl().unwrap(), Ttl::Missing);

    c.set("v").unwrap();
    assert!(c.clear().unwrap());
    assert!(!c.exists().unwrap());

    let counted = server.count_commands(|| {
        c.exists().unwrap();
        c.clear().unwrap();
        c.ttl().unwrap();
        c.expire(Duration::from_secs(1)).unwrap();
    });
    assert_eq!(
        counted,
        commands(&[("exists", 1), ("del", 1), ("pttl", 1), ("pexpire", 1)])
    );
}

// ---------------------------------------------------------------------------------------
// Bad stored data

#[test]
fn foreign_bytes_give_a_decode_error_naming_the_key() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_set(&server, "app.motd", b"written by redis-cli");
    let c: RedisCache<String> = RedisCache::builder(["app", "motd"])
        .connection(&conn)
        .build();
    for err in [
        c.get().unwrap_err(),
        c.get_or_insert_with(|| "x".into()).unwrap_err(),
    ] {
        match &err {
            Error::Decode { key, .. } => assert_eq!(key, "app.motd"),
            other => panic!("expected Error::Decode, got {other:?}"),
        }
        assert!(err.is_decode());
        assert!(err.to_string().contains("app.motd"), "{err}");
        assert!(
            !err.to_string().contains("redis-cli"),
            "no value bytes: {err}"
        );
    }

    // Bytes written for another type.
    let other: RedisCache<u64> = RedisCache::builder("typed").connection(&conn).build();
    other.set(&7).unwrap();
    let as_string: RedisCache<String> = RedisCache::builder("typed").connection(&conn).build();
    let err = as_string.get().unwrap_err();
    assert!(
        err.is_decode() && err.to_string().contains("typed"),
        "{err}"
    );

    // Raw integers that are not integers.
    raw_set(&server, "raw-n", b"4x");
    let err = counter(&conn, "raw-n").get().unwrap_err();
    assert!(
        err.is_decode() && err.to_string().contains("raw-n"),
        "{err}"
    );
}

#[test]
fn another_redis_type_gives_a_wrong_type_error() {
    let server = RedisServer::start();
    let conn = server.connection();
    raw_exec(&server, "HSET", ("h", "f", "v"));
    match string_cache(&conn, "h").get() {
        Err(Error::WrongType {
            key,
            expected,
            found,
        }) => {
            assert_eq!(
                (key.as_str(), expected, found.as_str()),
                ("h", "string", "hash")
            );
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Size limit

#[test]
fn values_up_to_the_size_limit_are_accepted_and_larger_ones_refused_before_sending() {
    let server = RedisServer::start();
    let conn = server.connection();
    // Raw strings are stored as is: the limit counts their bytes.
    let raw: RedisCache<String, Raw> = RedisCache::builder("raw")
        .connection(&conn)
        .codec(Raw)
        .max_value_size(10)
        .build();
    raw.set("0123456789").unwrap();
    assert_eq!(raw.get().unwrap().as_deref(), Some("0123456789"));
    let counted = server.count_commands(|| match raw.set("0123456789A") {
        Err(Error::ValueTooLarge { key, size, limit }) => {
            assert_eq!((key.as_str(), size, limit), ("raw", 11, 10));
        }
        other => panic!("expected ValueTooLarge, got {other:?}"),
    });
    assert!(counted.is_empty(), "nothing was sent: {counted:?}");
    assert_eq!(raw.get().unwrap().as_deref(), Some("0123456789"));

    // Postcard adds a 6-byte header and a 1-byte length for short strings.
    let pc: RedisCache<String> = RedisCache::builder("pc")
        .connection(&conn)
        .max_value_size(16)
        .build();
    pc.set("123456789").unwrap();
    assert_eq!(raw_get(&server, "pc").map(|b| b.len()), Some(16));
    let counted = server.count_commands(|| {
        let err = pc.set("1234567890").unwrap_err();
        assert!(
            matches!(
                err,
                Error::ValueTooLarge {
                    size: 17,
                    limit: 16,
                    ..
                }
            ),
            "{err:?}"
        );
    });
    assert!(counted.is_empty(), "nothing was sent: {counted:?}");
    let miss: RedisCache<String> = RedisCache::builder("pc-miss")
        .connection(&conn)
        .max_value_size(16)
        .build();
    let counted = server.count_commands(|| {
        let err = miss.get_or_insert_with(|| "1234567890".into()).unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    });
    assert_eq!(counted, commands(&[("get", 1)]), "the GET miss, no SET");
    assert!(!miss.exists().unwrap());
}

// ---------------------------------------------------------------------------------------
// Golden bytes: what Redis holds must not change, or users' data is orphaned.

#[test]
fn golden_stored_bytes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let s: RedisCache<String> = RedisCache::builder(["golden", "motd"])
        .connection(&conn)
        .build();
    s.set("hi").unwrap();
    assert_eq!(
        raw_get(&server, "golden.motd"),
        Some(vec![0xCA, 0x02, 0x05, 0xEC, 0x99, 0x3A, 2, b'h', b'i'])
    );

    let n: RedisCache<i64, Raw> = RedisCache::builder(("golden", 42))
        .connection(&conn)
        .codec(Raw)
        .build();
    n.set(&-1234).unwrap();
    assert_eq!(raw_get(&server, "golden.42"), Some(b"-1234".to_vec()));
    n.incr(1235).unwrap();
    assert_eq!(raw_get(&server, "golden.42"), Some(b"1".to_vec()));

    // A schema version goes into the fingerprint: that of "u32" with version 2.
    let versioned: RedisCache<u32> = RedisCache::builder(["golden", "versioned"])
        .connection(&conn)
        .schema_version(2)
        .build();
    versioned.set(&7).unwrap();
    assert_eq!(
        raw_get(&server, "golden.versioned"),
        Some(vec![0xCA, 0x02, 0x08, 0xAF, 0x1C, 0x24, 7])
    );

    // Raw floats in their own shortest form.
    let f: RedisCache<f32, Raw> = RedisCache::builder(["golden", "f32"])
        .connection(&conn)
        .codec(Raw)
        .build();
    f.set(&0.1).unwrap();
    assert_eq!(raw_get(&server, "golden.f32"), Some(b"0.1".to_vec()));

    #[cfg(feature = "json")]
    {
        let j: RedisCache<(u8, Option<String>), redis_caches::codec::Json> =
            RedisCache::builder(["golden", "json"])
                .connection(&conn)
                .codec(redis_caches::codec::Json)
                .build();
        j.set(&(1, Some("a".to_string()))).unwrap();
        assert_eq!(
            raw_get(&server, "golden.json"),
            Some(br#"[1,"a"]"#.to_vec())
        );
    }

    // And bytes written by another client in these forms read back.
    raw_set(
        &server,
        "golden.motd",
        &[0xCA, 0x02, 0x05, 0xEC, 0x99, 0x3A, 3, b'y', b'o', b'u'],
    );
    assert_eq!(s.get().unwrap().as_deref(), Some("you"));
    raw_set(&server, "golden.42", b"-9");
    assert_eq!(n.get().unwrap(), Some(-9));
}

#[test]
fn a_ttl_out_of_range_is_a_config_error_before_anything_is_sent() {
    // A TTL Redis would refuse is refused first, at every operation, so that no write is
    // ever applied without its TTL; the error names the key.
    let server = RedisServer::start();
    let conn = server.connection();
    let c: RedisCache<String> = RedisCache::builder("forever")
        .connection(&conn)
        .ttl(Duration::MAX)
        .build();
    let counted = server.count_commands(|| {
        let err = c.set("v").unwrap_err();
        assert!(err.is_config(), "{err:?}");
        assert!(err.to_string().contains("forever"), "{err}");
        assert!(c.get().unwrap_err().is_config());
    });
    assert!(counted.is_empty(), "nothing sent: {counted:?}");
    assert_eq!(raw_get(&server, "forever"), None);
    let zero = RedisCache::<String>::builder("zero")
        .connection(&conn)
        .ttl(Duration::ZERO);
    assert!(zero.try_build().unwrap_err().is_config());
}
