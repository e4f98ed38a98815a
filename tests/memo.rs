//! Memoized functions against real servers: single flight across threads and processes,
//! stale-while-revalidate, failures, switches, statistics, strategies, round trips.

mod support;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use redis_caches::OutagePolicy;
use redis_caches::memo::{self, Memo, MemoStats, RefreshPool};
use redis_caches::{Connection, Error};
use support::{RedisServer, eventually, unique};

const DEADLINE: Duration = Duration::from_secs(5);

/// A call counter shared with the memoized closure.
fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn exists(server: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query(&mut server.raw())
        .unwrap()
}

/// Waits until the value for `key` is older than `age` (read from its PTTL, as the memo does).
fn wait_until_stale(server: &RedisServer, key: &str, ttl: Duration, refresh: Duration) {
    let threshold = (ttl - refresh).as_millis() as i64;
    assert!(
        eventually(DEADLINE, || {
            let pttl: i64 = redis::cmd("PTTL")
                .arg(key)
                .query(&mut server.raw())
                .unwrap();
            pttl >= 0 && pttl <= threshold
        }),
        "{key} never became stale"
    );
}

fn stats_tuple(s: &MemoStats) -> [u64; 8] {
    [
        s.hits,
        s.misses,
        s.stale_hits,
        s.refreshes,
        s.waits,
        s.failures,
        s.defaults,
        s.dropped,
    ]
}

#[test]
fn handles_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Memo<u64, String>>();
    check::<Memo<(String, u8), Vec<u8>, Box<dyn std::error::Error + Send + Sync>>>();
    check::<redis_caches::memo::MemoCounter<u64>>();
    check::<redis_caches::memo::MemoList<u64, String>>();
    check::<RefreshPool>();
}

#[test]
fn computes_once_then_reads_from_redis() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let price = Memo::builder("price", move |id: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        format!("price of {id}")
    })
    .connection(server.connection())
    .build();
    assert_eq!(price.call(7).unwrap(), "price of 7");
    assert_eq!(price.call(7).unwrap(), "price of 7");
    assert_eq!(price.call(8).unwrap(), "price of 8");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Golden key layout: the function's hash tag, then the escaped postcard arguments.
    assert!(exists(&server, "{memo:price}.v.%07"));
    assert!(exists(&server, "{memo:price}.v.%08"));
    assert!(!exists(&server, "{memo:price}.lock.%07"), "lock released");
    assert!(format!("{price:?}").contains("price"));
}

#[test]
fn results_expire_after_the_ttl() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("short", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(server.connection())
    .ttl(Duration::from_millis(50))
    .build();
    m.call(1).unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("{memo:short}.v.%01")
        .query(&mut server.raw())
        .unwrap();
    assert!(pttl > 0 && pttl <= 50, "{pttl}");
    assert!(eventually(DEADLINE, || !exists(
        &server,
        "{memo:short}.v.%01"
    )));
    m.call(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn sixteen_threads_missing_one_key_call_the_function_once() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let slow = Memo::builder("slow", move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        x * 2
    })
    .connection(server.connection_with("pool_size=16"))
    .build();
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let slow = slow.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                slow.call(21).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = slow.stats().unwrap();
    assert_eq!((s.misses, s.waits, s.refreshes), (16, 15, 1), "{s:?}");
}

/// The entry point the cross-process test runs in a child process.
#[test]
#[ignore = "child process entry point: run by two_processes_missing_one_key_call_the_function_once"]
fn child_calls_the_shared_function() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("MEMO_TEST_URL").unwrap();
    shared_function_call(&url);
}

/// Both processes: wait until both are ready, then call a slow function that counts its
/// calls in Redis.
fn shared_function_call(url: &str) {
    let conn = Connection::open(&unique("proc"), url).unwrap();
    let counting = conn.clone();
    let m = Memo::builder("cross-process", move |x: u64| {
        let mut c = counting.get().unwrap();
        redis::cmd("INCR").arg("calls").exec(&mut *c).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        x + 1
    })
    .connection(&conn)
    .build();
    let mut raw = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("INCR").arg("ready").exec(&mut raw).unwrap();
    assert!(eventually(Duration::from_secs(30), || {
        redis::cmd("GET")
            .arg("ready")
            .query::<Option<u32>>(&mut raw)
            .unwrap()
            == Some(2)
    }));
    assert_eq!(m.call(41).unwrap(), 42);
}

#[test]
fn two_processes_missing_one_key_call_the_function_once() {
    let server = RedisServer::start();
    let child = support::child_process(
        "child_calls_the_shared_function",
        &[("MEMO_TEST_URL", server.url())],
    );
    shared_function_call(&server.url());
    support::wait_child(child);
    let calls: u32 = redis::cmd("GET")
        .arg("calls")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(calls, 1);
    let m = Memo::builder("cross-process", |x: u64| x + 1)
        .connection(server.connection())
        .build();
    let s = m.stats().unwrap();
    assert_eq!((s.misses, s.waits, s.refreshes), (2, 1, 1), "{s:?}");
}

/// A gate that a memoized function can be held at.
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn open(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    /// Waits until the gate opens. A gate still closed after [`DEADLINE`] is a test that
    /// lost track of it: that fails (the panic reaches the caller, or counts as a failed
    /// background refresh in the statistics the tests check), never passes silently.
    fn pass(&self) {
        let deadline = Instant::now() + DEADLINE;
        while self.0.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the gate was never opened");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn stale_values_are_served_while_a_slow_refresh_runs() {
    let server = RedisServer::start();
    let (ttl, refresh) = (Duration::from_secs(10), Duration::from_millis(100));
    let version = Arc::new(AtomicI64::new(0));
    let gate = Gate::default();
    let (v, g) = (version.clone(), gate.clone());
    let m = Memo::builder("swr", move |_: ()| {
        g.pass();
        v.fetch_add(1, Ordering::SeqCst) + 1
    })
    .connection(server.connection())
    .ttl(ttl)
    .refresh(refresh)
    .refresh_pool(&RefreshPool::new(1, 4))
    .build();
    assert_eq!(m.call(()).unwrap(), 1);
    wait_until_stale(&server, "{memo:swr}.v", ttl, refresh);
    gate.close();
    let started = Instant::now();
    assert_eq!(m.call(()).unwrap(), 1, "stale value served");
    assert_eq!(m.call(()).unwrap(), 1, "still stale while the refresh runs");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        exists(&server, "{memo:swr}.lock"),
        "one refresh holds the lock"
    );
    gate.open();
    assert!(eventually(DEADLINE, || m.call(()).unwrap() == 2));
    assert_eq!(version.load(Ordering::SeqCst), 2, "one refresh only");
    let s = m.stats().unwrap();
    assert_eq!((s.misses, s.refreshes), (1, 2), "{s:?}");
    assert!(s.stale_hits >= 2, "{s:?}");
}

#[test]
fn a_failed_refresh_keeps_serving_the_stale_value_and_is_counted() {
    let server = RedisServer::start();
    let (ttl, refresh) = (Duration::from_millis(2000), Duration::from_millis(50));
    let failing = Arc::new(AtomicBool::new(false));
    let calls = counter();
    let (f, c) = (failing.clone(), calls.clone());
    let m = Memo::try_builder("flaky", move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        if f.load(Ordering::SeqCst) {
            Err(Error::InvalidKey {
                reason: "backend down".into(),
            })
        } else {
            Ok(x)
        }
    })
    .connection(server.connection())
    .ttl(ttl)
    .refresh(refresh)
    .lock_timeout(Duration::from_millis(100))
    .refresh_pool(&RefreshPool::new(1, 4))
    .build();
    assert_eq!(m.call(5).unwrap(), 5);
    failing.store(true, Ordering::SeqCst);
    wait_until_stale(&server, "{memo:flaky}.v.%05", ttl, refresh);
    assert_eq!(m.call(5).unwrap(), 5, "stale value served");
    assert!(eventually(DEADLINE, || m.stats().unwrap().failures == 1));
    // The failed refresh keeps its lock until the lock timeout: no retry storm meanwhile.
    assert_eq!(m.call(5).unwrap(), 5);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // After the lock timeout another refresh is tried, and fails too; the value survives.
    assert!(eventually(DEADLINE, || {
        assert_eq!(m.call(5).unwrap(), 5);
        m.stats().unwrap().failures >= 2
    }));
    let s = m.stats().unwrap();
    assert_eq!(s.defaults, 0);
    // Once the TTL is over the error reaches the caller, and is not cached.
    assert!(eventually(DEADLINE, || !exists(
        &server,
        "{memo:flaky}.v.%05"
    )));
    // (A background refresh may still hold the lock: the call then waits for it first.)
    let err = m.call(5).unwrap_err();
    assert!(err.to_string().contains("backend down"), "{err}");
    failing.store(false, Ordering::SeqCst);
    assert_eq!(m.call(5).unwrap(), 5);
    assert_eq!(m.call(5).unwrap(), 5);
}

#[test]
fn errors_are_returned_and_not_cached() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    #[derive(Debug, PartialEq)]
    enum AppError {
        NotYet,
        Cache(String),
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Cache(e.to_string())
        }
    }
    let m = Memo::try_builder("fallible", move |x: u32| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(AppError::NotYet)
        } else {
            Ok(x)
        }
    })
    .connection(server.connection())
    .build();
    assert_eq!(m.call(1), Err(AppError::NotYet));
    assert!(!exists(&server, "{memo:fallible}.v.%01"));
    assert!(
        !exists(&server, "{memo:fallible}.lock.%01"),
        "lock released"
    );
    assert_eq!(m.call(1), Ok(1));
    assert_eq!(m.call(1), Ok(1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let s = m.stats().unwrap();
    assert_eq!((s.misses, s.hits, s.failures, s.refreshes), (2, 1, 1, 2));
}

#[test]
fn none_is_cached_unless_skipped() {
    let server = RedisServer::start();
    let conn = server.connection();
    let calls = counter();
    let c = calls.clone();
    let cached = Memo::builder("find-cached", move |_: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        None::<String>
    })
    .connection(&conn)
    .build();
    assert_eq!(cached.call(1).unwrap(), None);
    assert_eq!(cached.call(1).unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let calls = counter();
    let c = calls.clone();
    let skipping = Memo::builder("find-skipping", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        (x > 1).then(|| x.to_string())
    })
    .connection(&conn)
    .skip_none()
    .build();
    assert_eq!(skipping.call(1).unwrap(), None);
    assert_eq!(skipping.call(1).unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(skipping.call(2).unwrap().as_deref(), Some("2"));
    assert_eq!(skipping.call(2).unwrap().as_deref(), Some("2"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!exists(&server, "{memo:find-skipping}.lock.%01"));
}

#[test]
fn the_per_function_switch_turns_the_cache_off() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("switched", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(server.connection())
    .disabled()
    .build();
    let clone = m.clone();
    assert!(!m.is_enabled());
    let sent = server.count_commands(|| {
        assert_eq!(m.call(1).unwrap(), 1);
        assert_eq!(m.call(1).unwrap(), 1);
    });
    assert!(sent.is_empty(), "no Redis command while disabled: {sent:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    m.enable();
    assert!(clone.is_enabled(), "clones share the switch");
    clone.call(1).unwrap();
    clone.call(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    clone.disable();
    m.call(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
#[ignore = "child process entry point: run by the_global_switch_turns_every_cache_off (it flips a process-wide switch)"]
fn child_global_switch() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("MEMO_TEST_URL").unwrap();
    let conn = Connection::open(&unique("global"), &url).unwrap();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("global", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(&conn)
    .build();
    memo::disable_all();
    assert!(!m.is_enabled());
    m.call(1).unwrap();
    m.call(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    memo::enable_all();
    m.call(1).unwrap();
    m.call(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn the_global_switch_turns_every_cache_off() {
    let server = RedisServer::start();
    let child = support::child_process("child_global_switch", &[("MEMO_TEST_URL", server.url())]);
    support::wait_child(child);
    // Only the calls made while enabled reached Redis: one miss, one hit.
    let m = Memo::builder("global", |x: u8| x)
        .connection(server.connection())
        .build();
    let s = m.stats().unwrap();
    assert_eq!((s.misses, s.hits), (1, 1), "{s:?}");
}

#[test]
fn forget_removes_one_entry() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("forgetful", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(server.connection())
    .build();
    m.call(1).unwrap();
    m.call(2).unwrap();
    assert!(m.forget(1).unwrap());
    assert!(!m.forget(1).unwrap());
    m.call(1).unwrap();
    m.call(2).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "only 1 was computed again");
    assert_eq!(m.clear().unwrap(), 2);
    assert!(!exists(&server, "{memo:forgetful}.v.%02"));
    assert!(
        exists(&server, "{memo:forgetful}.stats"),
        "clear keeps stats"
    );
}

#[test]
fn call_uncached_bypasses_the_cache() {
    let server = RedisServer::start();
    let version = Arc::new(AtomicI64::new(0));
    let v = version.clone();
    let m = Memo::builder("bypass", move |_: ()| v.fetch_add(1, Ordering::SeqCst))
        .connection(server.connection())
        .build();
    assert_eq!(m.call(()).unwrap(), 0);
    let sent = server.count_commands(|| assert_eq!(m.call_uncached(()).unwrap(), 1));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(m.call(()).unwrap(), 0, "the cached value stays");
}

#[test]
fn exact_statistics_over_a_scripted_sequence() {
    let server = RedisServer::start();
    let conn = server.connection();
    let (ttl, refresh) = (Duration::from_secs(10), Duration::from_millis(60));
    let m = Memo::builder("scripted", |x: u8| x)
        .connection(&conn)
        .ttl(ttl)
        .refresh(refresh)
        .refresh_pool(&RefreshPool::new(1, 4))
        .build();
    let expect = |hits, misses, stale_hits, refreshes| {
        let s = m.stats().unwrap();
        assert_eq!(
            stats_tuple(&s),
            [hits, misses, stale_hits, refreshes, 0, 0, 0, 0],
            "{s:?}"
        );
    };
    expect(0, 0, 0, 0);
    m.call(1).unwrap(); // miss, computed
    expect(0, 1, 0, 1);
    m.call(1).unwrap(); // hit
    m.call(1).unwrap(); // hit
    expect(2, 1, 0, 1);
    m.call(2).unwrap(); // miss
    expect(2, 2, 0, 2);
    wait_until_stale(&server, "{memo:scripted}.v.%01", ttl, refresh);
    m.call(1).unwrap(); // stale hit, refreshed in the background
    assert!(eventually(DEADLINE, || m.stats().unwrap().refreshes == 3));
    expect(2, 2, 1, 3);
    m.call(1).unwrap(); // fresh again
    expect(3, 2, 1, 3);
    m.forget(2).unwrap();
    m.call(2).unwrap(); // miss after forget
    expect(3, 3, 1, 4);
    let before = m.reset_stats().unwrap();
    assert_eq!(stats_tuple(&before), [3, 3, 1, 4, 0, 0, 0, 0]);
    assert_eq!(before.calls(), 7);
    expect(0, 0, 0, 0);

    // Defaults and failures: a function that fails, behind a default value.
    let d = Memo::try_builder("scripted-default", |x: u8| {
        if x == 0 {
            Err(Error::InvalidKey {
                reason: "zero".into(),
            })
        } else {
            Ok(x)
        }
    })
    .connection(&conn)
    .default_value(100)
    .lock_timeout(Duration::from_millis(50))
    .refresh_pool(&RefreshPool::new(1, 4))
    .build();
    assert_eq!(d.call(0).unwrap(), 100); // miss, default, background failure
    assert!(eventually(DEADLINE, || d.stats().unwrap().failures == 1));
    assert!(
        !exists(&server, "{memo:scripted-default}.v.%00"),
        "the default is not cached"
    );
    assert_eq!(d.call(3).unwrap(), 100); // miss, default, background success
    assert!(eventually(DEADLINE, || d.stats().unwrap().refreshes == 2));
    assert_eq!(d.call(3).unwrap(), 3); // hit
    let s = d.stats().unwrap();
    assert_eq!(
        (s.misses, s.defaults, s.failures, s.refreshes),
        (2, 2, 1, 2),
        "{s:?}"
    );
    assert_eq!(s.hits, 1);
}

#[test]
fn a_fresh_hit_and_a_stale_hit_cost_one_round_trip() {
    let server = RedisServer::start();
    let (ttl, refresh) = (Duration::from_secs(10), Duration::from_millis(60));
    let gate = Gate::default();
    let g = gate.clone();
    let m = Memo::builder("cost", move |x: u8| {
        g.pass();
        x
    })
    .connection(server.connection())
    .ttl(ttl)
    .refresh(refresh)
    .refresh_pool(&RefreshPool::new(1, 4))
    .build();
    m.call(1).unwrap(); // loads the scripts, stores the value
    let fresh = server.count_commands(|| {
        m.call(1).unwrap();
    });
    // One EVALSHA sent by the client; the rest ran inside the script.
    let expected: std::collections::HashMap<String, u64> =
        [("evalsha", 1), ("get", 1), ("pttl", 1), ("hincrby", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(fresh, expected);

    wait_until_stale(&server, "{memo:cost}.v.%01", ttl, refresh);
    gate.close(); // the background refresh starts and waits here, sending nothing yet
    let stale = server.count_commands(|| {
        m.call(1).unwrap();
    });
    let mut expected = expected;
    expected.insert("set".into(), 1); // the lock, taken in the same script
    expected.insert("get".into(), 2); // the value, and the lock's owner (not this call)
    assert_eq!(stale, expected);
    gate.open();
    assert!(eventually(DEADLINE, || m.stats().unwrap().refreshes == 2));

    // Without a refresh duration a result is never stale: a fresh hit is a pipelined GET and
    // HINCRBY, no script, no PTTL, still one round trip.
    let plain = Memo::builder("cost-plain", |x: u8| x)
        .connection(server.connection())
        .build();
    plain.call(1).unwrap();
    let sent = server.count_commands(|| {
        plain.call(1).unwrap();
    });
    let expected: std::collections::HashMap<String, u64> = [("get", 1), ("hincrby", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(sent, expected);
    assert_eq!(
        server.count_round_trips(|| assert_eq!(plain.call(1).unwrap(), 1)),
        1
    );
    // A miss (its hit taken back), then two hits.
    assert_eq!(plain.stats().unwrap().hits, 2);
}

#[test]
fn a_miss_after_a_plain_read_takes_its_hit_back() {
    // The plain read counts a hit before it knows; the read script that follows a miss takes
    // it back atomically with counting the miss: the statistics end exact, and a function
    // that never had a hit has no `hits` field at all.
    let server = RedisServer::start();
    let m = Memo::builder("uncounted-hit", |x: u8| x)
        .connection(server.connection())
        .build();
    // A handle's first call reads with the script, which proves its user may run it (a user
    // who may not gets the refusal before anything is counted): no plain read yet.
    let first = server.count_commands(|| assert_eq!(m.call(0).unwrap(), 0));
    assert_eq!(first.get("get"), Some(&3), "no plain read yet: {first:?}");
    let sent = server.count_commands(|| assert_eq!(m.call(1).unwrap(), 1));
    // GET: the plain read's, the read script's (the value, the lock), the store's (the lock).
    assert_eq!(sent.get("get"), Some(&4), "{sent:?}");
    // HINCRBY: the plain read's hit, taken back, the miss, the store's refresh.
    assert_eq!(sent.get("hincrby"), Some(&4), "{sent:?}");
    assert_eq!(
        sent.get("hdel"),
        Some(&1),
        "the hit field at 0 goes: {sent:?}"
    );
    let fields: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg("{memo:uncounted-hit}.stats")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(fields.get("hits"), None, "{fields:?}");
    assert_eq!(fields.get("misses"), Some(&2), "{fields:?}");
    // Three round trips: the plain read, the read script (the lock), the store.
    assert_eq!(
        server.count_round_trips(|| assert_eq!(m.call(2).unwrap(), 2)),
        3
    );
    m.call(1).unwrap();
    m.call(2).unwrap();
    let s = m.stats().unwrap();
    assert_eq!((s.hits, s.misses), (2, 3), "{s:?}");
}

#[test]
fn many_threads_hitting_and_missing_count_every_call_once() {
    // Plain reads racing misses of the same keys: every call ends counted exactly once, as
    // a hit or as a miss, whichever it was.
    let server = RedisServer::start();
    let computed = counter();
    let c = computed.clone();
    let m = Memo::builder("racing-counts", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(server.connection())
    .build();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let x = ((i * 7 + t) % 20) as u8;
                    assert_eq!(m.call(x).unwrap(), x);
                    if i % 50 == 0 {
                        m.forget(x).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = m.stats().unwrap();
    assert_eq!(s.hits + s.misses, 800, "{s:?}");
    // Every computation is a call that missed; a miss that did not compute waited for
    // another caller's computation (one that waited may still compute: a takeover).
    let computed = computed.load(Ordering::SeqCst) as u64;
    assert!(computed <= s.misses, "{computed} computed: {s:?}");
    assert!(s.misses <= computed + s.waits, "{computed} computed: {s:?}");
}

#[test]
fn statistics_never_go_below_zero_while_resets_race_calls() {
    // A reset between a plain read's counted hit and the read script that takes it back
    // would leave `hits` at -1 if the script only decremented: it removes the field at 1 or
    // less instead.
    let server = RedisServer::start();
    let m = Memo::builder("reset-race", |x: u8| x)
        .connection(server.connection())
        .build();
    m.call(0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let resetter = {
        let (m, stop) = (m.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                m.reset_stats().unwrap();
            }
        })
    };
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let x = ((i + t) % 5) as u8;
                    m.call(x).unwrap();
                    if i % 3 == 0 {
                        m.forget(x).unwrap();
                    }
                }
            })
        })
        .collect();
    let mut raw = server.raw();
    let mut lowest = 0i64;
    while threads.iter().any(|t| !t.is_finished()) {
        let hits: Option<i64> = redis::cmd("HGET")
            .arg("{memo:reset-race}.stats")
            .arg("hits")
            .query(&mut raw)
            .unwrap();
        lowest = lowest.min(hits.unwrap_or(0));
    }
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    resetter.join().unwrap();
    let hits: Option<i64> = redis::cmd("HGET")
        .arg("{memo:reset-race}.stats")
        .arg("hits")
        .query(&mut raw)
        .unwrap();
    assert!(lowest >= 0 && hits.unwrap_or(0) >= 0, "{lowest}, {hits:?}");
}

#[test]
fn a_stalled_plain_read_leaves_no_lock() {
    // A plain read whose reply is lost took no lock: nothing is orphaned, and the next call
    // computes and stores as usual.
    let server = RedisServer::start();
    let conn = server.connection_with("timeout=100ms&pool_size=1");
    let m = Memo::builder("plain-stall", |x: u8| x)
        .connection(&conn)
        .lock_timeout(Duration::from_secs(60))
        .build();
    assert_eq!(m.call(9).unwrap(), 9);
    server.pause();
    let err = m.call(1).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    server.resume();
    // The stalled pipeline ran once the server woke up (its hit is counted: a lost reply may
    // count a statistic it should not, documented), and took no lock.
    assert!(eventually(DEADLINE, || m.stats().unwrap().hits == 1));
    assert!(!exists(&server, "{memo:plain-stall}.lock.%01"));
    assert_eq!(m.call(1).unwrap(), 1);
    assert!(exists(&server, "{memo:plain-stall}.v.%01"));
    assert!(!exists(&server, "{memo:plain-stall}.lock.%01"));
}

#[test]
fn a_full_refresh_queue_drops_and_counts_refreshes() {
    let server = RedisServer::start();
    let gate = Gate::default();
    gate.close();
    let entered = counter();
    let (g, e) = (gate.clone(), entered.clone());
    let pool = RefreshPool::new(1, 0);
    let m = Memo::builder("dropping", move |x: u8| {
        e.fetch_add(1, Ordering::SeqCst);
        g.pass();
        x
    })
    .connection(server.connection())
    .default_value(0)
    .refresh_pool(&pool)
    .build();
    // Occupy the only thread (a refresh handed over before the thread waits is dropped too,
    // so try until one runs).
    assert!(eventually(DEADLINE, || {
        assert_eq!(m.call(1).unwrap(), 0);
        entered.load(Ordering::SeqCst) == 1
    }));
    m.reset_stats().unwrap();
    assert_eq!(m.call(2).unwrap(), 0);
    let s = m.stats().unwrap();
    assert_eq!(
        (s.misses, s.defaults, s.dropped, s.refreshes),
        (1, 1, 1, 0),
        "{s:?}"
    );
    assert!(
        !exists(&server, "{memo:dropping}.lock.%02"),
        "a dropped refresh releases its lock"
    );
    gate.open();
    assert!(eventually(DEADLINE, || m.call(1).unwrap() == 1));
    assert!(eventually(DEADLINE, || m.call(2).unwrap() == 2));
}

#[test]
fn waiters_take_over_when_the_computing_caller_fails() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::try_builder("takeover", move |x: u8| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        if n == 0 {
            Err(Error::InvalidKey {
                reason: "first attempt fails".into(),
            })
        } else {
            Ok(x)
        }
    })
    .connection(server.connection_with("pool_size=8"))
    .build();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (m, b) = (m.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                m.call(9)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(9))).count(), 3);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one failure, then one success"
    );
}

#[test]
fn a_waiter_computes_itself_after_the_wait_timeout() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("impatient", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(server.connection())
    .wait_timeout(Duration::from_millis(50))
    .build();
    // Another process holds the lock and never finishes.
    redis::cmd("SET")
        .arg("{memo:impatient}.lock.%01")
        .arg("someone-else")
        .arg("PX")
        .arg(60_000)
        .exec(&mut server.raw())
        .unwrap();
    let started = Instant::now();
    assert_eq!(m.call(1).unwrap(), 1);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        !exists(&server, "{memo:impatient}.v.%01"),
        "not stored without the lock"
    );
    assert_eq!(m.stats().unwrap().waits, 1);
}

#[test]
fn keys_from_projections_templates_functions_and_hashes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let calls = counter();
    let c = calls.clone();
    let projected = Memo::builder("projected", move |(user, _req): (u32, String)| {
        c.fetch_add(1, Ordering::SeqCst);
        user
    })
    .connection(&conn)
    .key_args(|(user, _): &(u32, String)| *user)
    .build();
    projected.call((1, "a".into())).unwrap();
    projected.call((1, "b".into())).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the request id takes no part"
    );
    assert!(exists(&server, "{memo:projected}.v.%01"));

    #[derive(serde::Serialize)]
    struct Item {
        id: u64,
        lang: String,
    }
    let templated = Memo::builder("title", |i: Item| format!("{}-{}", i.id, i.lang))
        .connection(&conn)
        .key_template("item:{id}:{lang}")
        .build();
    templated
        .call(Item {
            id: 7,
            lang: "en gb".into(),
        })
        .unwrap();
    assert!(exists(&server, "{memo:title}.v.item:7:en%20gb"));

    let custom = Memo::builder("custom", |(a, b): (String, u8)| format!("{a}{b}"))
        .connection(&conn)
        .key(|(a, b): &(String, u8)| (a.to_lowercase(), *b))
        .build();
    custom.call(("X.Y".into(), 0)).unwrap();
    assert!(exists(&server, r"{memo:custom}.v.x\.y.0"));
    assert_eq!(custom.call(("x.y".into(), 0)).unwrap(), "X.Y0", "same key");

    let hashed = Memo::builder("hashed", |s: String| s.len())
        .connection(&conn)
        .hashed_keys()
        .build();
    hashed.call("abc".into()).unwrap();
    assert!(exists(
        &server,
        "{memo:hashed}.v.44ba8821161c91a7b3855dbbde12f44799c21a77"
    ));

    // Two functions never share entries, even with equal arguments.
    let a = Memo::builder("fa", |x: u8| x).connection(&conn).build();
    let b = Memo::builder("fb", |x: u8| x + 100)
        .connection(&conn)
        .build();
    assert_eq!(a.call(1).unwrap(), 1);
    assert_eq!(b.call(1).unwrap(), 101);
}

#[test]
fn the_connection_prefix_goes_before_the_hash_tag() {
    let server = RedisServer::start();
    let m = Memo::builder("prefixed", |x: u8| x)
        .connection(server.connection_with("prefix=app:"))
        .build();
    m.call(1).unwrap();
    assert!(exists(&server, "app:{memo:prefixed}.v.%01"));
    assert!(exists(&server, "app:{memo:prefixed}.stats"));
}

#[test]
fn invalid_settings_are_config_errors_at_the_first_call() {
    let bad = [
        Memo::builder("r", |x: u8| x)
            .refresh(Duration::from_secs(1))
            .build(),
        Memo::builder("r", |x: u8| x)
            .ttl(Duration::from_secs(1))
            .refresh(Duration::from_secs(2))
            .build(),
        Memo::builder("", |x: u8| x).build(),
        Memo::builder("a{b}", |x: u8| x).build(),
        Memo::builder("t", |x: u8| x)
            .key_template("{unclosed")
            .build(),
        Memo::builder("h", |x: u8| x)
            .ttl(Duration::from_secs(2))
            .refresh(Duration::from_secs(1))
            .build_hash_field(),
    ];
    for m in bad {
        let err = m.call(1).unwrap_err();
        assert!(err.is_config(), "{err}");
    }
}

/// A result an older build stored for another result type is a miss: computed once and
/// written over, so the next call is a hit (see `Memo`'s "Results of another shape").
#[test]
fn a_result_of_another_type_is_computed_again_and_written_over() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("retyped", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        u64::from(x) * 10
    })
    .connection(server.connection())
    .build();
    // Written by an older build whose result type was a String.
    let old = Memo::builder("retyped", |x: u8| x.to_string())
        .connection(server.connection())
        .build();
    old.call(1).unwrap();
    assert_eq!(m.call(1).unwrap(), 10);
    assert_eq!(m.call(1).unwrap(), 10);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "written over by the first call"
    );
    assert_eq!(m.peek(1).unwrap(), Some(10));
    // The old build's miss; the read of its value, a miss too (computed again); the hit.
    let stats = m.stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (2, 1));
}

#[test]
fn when_redis_is_down_the_policy_decides() {
    let port = support::free_port();
    let conn = Connection::open(
        &unique("down"),
        &format!("redis://127.0.0.1:{port}/0?pool_timeout=200ms&connect_timeout=100ms"),
    )
    .unwrap();
    let calls = counter();
    let c = calls.clone();
    let strict = Memo::builder("down", move |x: u8| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .connection(&conn)
    .build();
    let err = strict.call(1).unwrap_err();
    assert!(err.is_connection(), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let lenient = Memo::builder("down", move |x: u8| x + 1)
        .connection(&conn)
        .on_outage(OutagePolicy::Miss)
        .build();
    assert_eq!(lenient.call(1).unwrap(), 2);
    assert!(lenient.stats().unwrap_err().is_connection());

    // Once the server is up (and the connection back-off window over), the same handles
    // cache again.
    let server = RedisServer::start_on(port, &[]);
    std::thread::sleep(redis_caches::connection::CONNECT_BACKOFF);
    lenient.call(1).unwrap();
    assert!(exists(&server, "{memo:down}.v.%01"));
}

#[test]
fn a_cached_counter_changes_in_place() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let views = Memo::builder("views", move |page: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        i64::from(page) * 10
    })
    .connection(server.connection())
    .ttl(Duration::from_secs(60))
    .build_counter();
    assert_eq!(
        views.incr(1, 1).unwrap(),
        None,
        "not cached: nothing to change"
    );
    assert!(!exists(&server, "{memo:views}.v.%01"));
    assert_eq!(views.call(1).unwrap(), 10);
    let raw: String = redis::cmd("GET")
        .arg("{memo:views}.v.%01")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(raw, "10", "a plain Redis integer");
    assert_eq!(views.incr(1, 5).unwrap(), Some(15));
    assert_eq!(views.decr(1, 10).unwrap(), Some(5));
    assert_eq!(views.call(1).unwrap(), 5);
    views.set(1, 0).unwrap();
    assert_eq!(views.call(1).unwrap(), 0);
    let pttl: i64 = redis::cmd("PTTL")
        .arg("{memo:views}.v.%01")
        .query(&mut server.raw())
        .unwrap();
    assert!(pttl > 0, "set keeps a TTL: {pttl}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(views.forget(1).unwrap());
    assert_eq!(views.call(1).unwrap(), 10);
    assert_eq!(views.stats().unwrap().misses, 2);
}

#[test]
fn a_cached_list_is_a_redis_list_in_order_with_its_ttl() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let recent = Memo::builder("recent", move |n: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        (0..n)
            .rev()
            .map(|i| format!("item {i}"))
            .collect::<Vec<_>>()
    })
    .connection(server.connection())
    .ttl(Duration::from_millis(300))
    .build_list_with(redis_caches::codec::Raw);
    let expected = vec!["item 2", "item 1", "item 0", "item 1"];
    let got = recent.call(3).unwrap();
    assert_eq!(got, &expected[..3]);
    assert_eq!(recent.call(3).unwrap(), got);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut raw = server.raw();
    let kind: String = redis::cmd("TYPE")
        .arg("{memo:recent}.v.%03")
        .query(&mut raw)
        .unwrap();
    assert_eq!(kind, "list");
    let stored: Vec<String> = redis::cmd("LRANGE")
        .arg("{memo:recent}.v.%03")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(stored, &expected[..3], "order kept");
    assert_eq!(recent.push(3, &"item 1".to_string()).unwrap(), Some(4));
    assert_eq!(recent.call(3).unwrap(), expected, "duplicates kept");
    assert_eq!(recent.cached_len(3).unwrap(), Some(4));
    assert_eq!(recent.push(9, &"x".to_string()).unwrap(), None);
    assert_eq!(recent.cached_len(9).unwrap(), None);
    assert!(
        eventually(DEADLINE, || recent.cached_len(3).unwrap().is_none()),
        "TTL honoured"
    );

    // An empty result is returned but not cached.
    assert_eq!(recent.call(0).unwrap(), Vec::<String>::new());
    assert_eq!(recent.call(0).unwrap(), Vec::<String>::new());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!exists(&server, "{memo:recent}.lock.%00"));
}

#[test]
fn a_cached_hash_field_lives_in_the_functions_hash() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let title = Memo::builder("item", move |id: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        format!("title {id}")
    })
    .connection(server.connection())
    .key_template("{0}")
    .ttl(Duration::from_secs(60))
    .build_hash_field();
    assert_eq!(title.call(1).unwrap(), "title 1");
    assert_eq!(title.call(2).unwrap(), "title 2");
    assert_eq!(title.call(1).unwrap(), "title 1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let mut raw = server.raw();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg("{memo:item}.h")
        .query(&mut raw)
        .unwrap();
    assert_eq!(fields.len(), 2);
    assert!(fields.contains(&"1".to_string()) && fields.contains(&"2".to_string()));
    let pttl: i64 = redis::cmd("PTTL")
        .arg("{memo:item}.h")
        .query(&mut raw)
        .unwrap();
    assert!(pttl > 0);
    assert!(title.forget(1).unwrap());
    assert!(exists(&server, "{memo:item}.h"), "the other field stays");
    assert_eq!(title.call(1).unwrap(), "title 1");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn forget_after_deletes_what_a_mutation_changed() {
    let server = RedisServer::start();
    let db = Arc::new(AtomicI64::new(5));
    let d = db.clone();
    let stock = Memo::builder("stock", move |_item: u32| d.load(Ordering::SeqCst))
        .connection(server.connection())
        .build();
    assert_eq!(stock.call(1).unwrap(), 5);
    let failed: Result<(), Error> = stock.forget_after(1, || {
        Err(Error::InvalidKey {
            reason: "rejected".into(),
        })
    });
    assert!(failed.is_err());
    assert!(
        exists(&server, "{memo:stock}.v.%01"),
        "kept when the mutation fails"
    );
    stock
        .forget_after(1, || -> Result<(), Error> {
            db.store(4, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    assert_eq!(stock.call(1).unwrap(), 4);
}

redis_caches::memoize! {
    /// A macro-declared memoized function.
    #[memo(DOUBLE, ttl(Duration::from_secs(60)), connection("memo-macro-test"))]
    fn double(x: u64, label: String) -> String {
        format!("{label}: {}", x * 2)
    }
}

redis_caches::memoize! {
    #[memo(try HALF, connection("memo-macro-test"))]
    fn half(x: u64) -> Result<u64, Error> {
        if x % 2 == 0 { Ok(x / 2) } else { Err(Error::InvalidKey { reason: "odd".into() }) }
    }
}

#[test]
fn the_macro_declares_a_memoized_function() {
    let server = RedisServer::start();
    redis_caches::connection::register("memo-macro-test", &server.url()).unwrap();
    assert_eq!(double(21, "x".into()).unwrap(), "x: 42");
    assert_eq!(double(21, "x".into()).unwrap(), "x: 42");
    assert_eq!(DOUBLE.stats().unwrap().hits, 1);
    assert!(DOUBLE.name().ends_with("::double"), "{}", DOUBLE.name());
    assert_eq!(half(4).unwrap(), 2);
    assert!(half(3).is_err());
}

#[test]
fn a_panicking_function_releases_its_lock() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("panicky", move |x: u8| {
        assert!(c.fetch_add(1, Ordering::SeqCst) > 0, "first call panics");
        x
    })
    .connection(server.connection())
    .build();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.call(1)));
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert!(!exists(&server, "{memo:panicky}.lock.%01"), "lock released");
    assert_eq!(m.call(1).unwrap(), 1);
    assert_eq!(m.stats().unwrap().failures, 1);
}

#[test]
fn a_result_computed_after_its_lock_expired_is_returned_not_stored() {
    let server = RedisServer::start();
    let m = Memo::builder("overtime", |x: u8| {
        std::thread::sleep(Duration::from_millis(150));
        x
    })
    .connection(server.connection())
    .lock_timeout(Duration::from_millis(30))
    .build();
    assert_eq!(m.call(1).unwrap(), 1);
    assert!(
        !exists(&server, "{memo:overtime}.v.%01"),
        "another caller may have taken over: the late result is not stored"
    );
    assert_eq!(m.stats().unwrap().refreshes, 1);
}

#[test]
fn forget_during_a_computation_keeps_the_old_result_out() {
    let server = RedisServer::start();
    let gate = Gate::default();
    gate.close();
    let g = gate.clone();
    let m = Memo::builder("invalidated", move |x: u8| {
        g.pass();
        x
    })
    .connection(server.connection())
    .build();
    let computing = {
        let m = m.clone();
        std::thread::spawn(move || m.call(1).unwrap())
    };
    assert!(eventually(DEADLINE, || exists(
        &server,
        "{memo:invalidated}.lock.%01"
    )));
    m.forget(1).unwrap(); // the data changed while the function was reading it
    gate.open();
    assert_eq!(computing.join().unwrap(), 1);
    assert!(!exists(&server, "{memo:invalidated}.v.%01"));
}

#[test]
fn without_stats_a_hit_sends_no_hincrby() {
    let server = RedisServer::start();
    let m = Memo::builder("uncounted", |x: u8| x)
        .connection(server.connection())
        .without_stats()
        .build();
    m.call(1).unwrap();
    let sent = server.count_commands(|| {
        m.call(1).unwrap();
    });
    assert_eq!(sent.get("hincrby"), None, "{sent:?}");
    assert_eq!(sent.get("get"), Some(&1), "a plain GET: {sent:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!exists(&server, "{memo:uncounted}.stats"));
    assert_eq!(m.stats().unwrap(), MemoStats::default());
}

#[test]
fn peek_reads_without_computing_counting_or_locking() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let price = Memo::builder("peek", move |id: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        id * 100
    })
    .connection(server.connection())
    .build();
    assert_eq!(price.peek(7).unwrap(), None);
    assert!(
        !exists(&server, "{memo:peek}.lock.%07"),
        "peek takes no lock"
    );
    assert_eq!(price.call(7).unwrap(), 700);
    let before = stats_tuple(&price.stats().unwrap());
    let sent = server.count_commands(|| {
        assert_eq!(price.peek(7).unwrap(), Some(700));
    });
    assert_eq!(sent.get("get"), Some(&1), "one GET: {sent:?}");
    assert_eq!(sent.len(), 1, "nothing else: {sent:?}");
    assert_eq!(stats_tuple(&price.stats().unwrap()), before, "no statistic");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "peek never computes");

    // A stored value of another type is a decode error, not a silent miss.
    redis::cmd("SET")
        .arg("{memo:peek}.v.%08")
        .arg("not a u64")
        .query::<()>(&mut server.raw())
        .unwrap();
    assert!(matches!(price.peek(8), Err(Error::Decode { .. })));
}

#[test]
fn set_stores_a_fresh_result_with_the_ttl_and_no_statistic() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let (ttl, refresh) = (Duration::from_secs(60), Duration::from_secs(30));
    let price = Memo::builder("prime", move |id: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        id * 100
    })
    .connection(server.connection())
    .ttl(ttl)
    .refresh(refresh)
    .build();
    price.set(7, &650).unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("{memo:prime}.v.%07")
        .query(&mut server.raw())
        .unwrap();
    let ttl_ms = ttl.as_millis() as i64;
    assert!(pttl > ttl_ms - 1_000 && pttl <= ttl_ms, "PTTL {pttl}");
    assert_eq!(price.call(7).unwrap(), 650, "served as a fresh hit");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let s = price.stats().unwrap();
    assert_eq!((s.hits, s.stale_hits, s.refreshes, s.misses), (1, 0, 0, 0));

    // Overwrites a cached result, and a lock held by someone else stays theirs.
    redis::cmd("SET")
        .arg("{memo:prime}.lock.%07")
        .arg("someone")
        .query::<()>(&mut server.raw())
        .unwrap();
    price.set(7, &660).unwrap();
    assert_eq!(price.peek(7).unwrap(), Some(660));
    let owner: String = redis::cmd("GET")
        .arg("{memo:prime}.lock.%07")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(owner, "someone");
}

#[test]
fn set_and_peek_on_a_cached_list_and_a_hash_field() {
    let server = RedisServer::start();
    let recent = Memo::builder("recent-set", |n: u32| {
        (0..n).map(|i| format!("item {i}")).collect::<Vec<_>>()
    })
    .connection(server.connection())
    .ttl(Duration::from_secs(60))
    .build_list_with(redis_caches::codec::Raw);
    assert_eq!(recent.peek(2).unwrap(), None);
    let primed = vec!["a".to_string(), "b".to_string()];
    recent.set(2, &primed).unwrap();
    recent.set(2, &primed).unwrap(); // replaces, does not append
    assert_eq!(recent.peek(2).unwrap(), Some(primed.clone()));
    assert_eq!(recent.call(2).unwrap(), primed);
    let len: i64 = redis::cmd("LLEN")
        .arg("{memo:recent-set}.v.%02")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(len, 2);
    recent.set(2, &Vec::new()).unwrap();
    assert_eq!(
        recent.peek(2).unwrap(),
        None,
        "an empty list leaves nothing cached"
    );

    let views = Memo::builder("views-set", |id: u64| id as i64)
        .connection(server.connection())
        .build_counter();
    assert_eq!(views.peek(4).unwrap(), None);
    views.set(4, 40).unwrap();
    assert_eq!(views.incr(4, 2).unwrap(), Some(42));
    assert_eq!(views.peek(4).unwrap(), Some(42));

    let title = Memo::builder("item-set", |id: u64| format!("title {id}"))
        .connection(server.connection())
        .key_template("{0}")
        .ttl(Duration::from_secs(60))
        .build_hash_field();
    title.call(1).unwrap();
    title.set(2, &"primed".to_string()).unwrap();
    assert_eq!(title.peek(2).unwrap().as_deref(), Some("primed"));
    assert_eq!(title.peek(1).unwrap().as_deref(), Some("title 1"));
    assert_eq!(title.peek(3).unwrap(), None);
    assert_eq!(title.call(2).unwrap(), "primed");
    let fields: i64 = redis::cmd("HLEN")
        .arg("{memo:item-set}.h")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(fields, 2);
}

#[test]
fn refresh_recomputes_stores_and_counts_a_refresh() {
    let server = RedisServer::start();
    let source = Arc::new(AtomicI64::new(1));
    let fail = Arc::new(AtomicBool::new(false));
    let (s, f) = (source.clone(), fail.clone());
    let price = Memo::try_builder("refresh-now", move |id: u64| {
        if f.load(Ordering::SeqCst) {
            return Err("the source is down".into());
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(id as i64 * s.load(Ordering::SeqCst))
    })
    .connection(server.connection())
    .ttl(Duration::from_secs(60))
    .build();
    assert_eq!(price.call(7).unwrap(), 7);
    source.store(2, Ordering::SeqCst);
    assert_eq!(price.call(7).unwrap(), 7, "still cached");
    assert_eq!(price.refresh(7).unwrap(), 14);
    assert_eq!(price.call(7).unwrap(), 14, "the refreshed result is served");
    let s = price.stats().unwrap();
    assert_eq!((s.misses, s.hits, s.refreshes), (1, 2, 2), "{s:?}");

    // A failure is returned and the cached result stays.
    fail.store(true, Ordering::SeqCst);
    source.store(3, Ordering::SeqCst);
    assert!(price.refresh(7).is_err());
    assert_eq!(price.peek(7).unwrap(), Some(14));
    // An uncached argument is computed and stored.
    fail.store(false, Ordering::SeqCst);
    assert_eq!(price.refresh(8).unwrap(), 24);
    assert_eq!(price.peek(8).unwrap(), Some(24));
}

/// The value of `key` as a string, on a plain connection.
fn get_string(server: &RedisServer, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(&mut server.raw()).unwrap()
}

#[test]
fn finishing_a_computation_never_releases_another_holders_lock() {
    // The caller's lock expired during a slow computation and another process took it: the
    // late caller's release (a token comparison inside the script) leaves it alone.
    let server = RedisServer::start();
    let gate = Gate::default();
    gate.close();
    let g = gate.clone();
    let m = Memo::builder("owned", move |x: u8| {
        g.pass();
        x
    })
    .connection(server.connection())
    .lock_timeout(Duration::from_millis(50))
    .build();
    let lock = "{memo:owned}.lock.%01";
    let computing = {
        let m = m.clone();
        std::thread::spawn(move || m.call(1).unwrap())
    };
    assert!(eventually(DEADLINE, || exists(&server, lock)));
    assert!(
        eventually(DEADLINE, || !exists(&server, lock)),
        "the lock expires"
    );
    redis::cmd("SET")
        .arg(lock)
        .arg("another-process")
        .arg("PX")
        .arg(60_000)
        .exec(&mut server.raw())
        .unwrap();
    gate.open();
    assert_eq!(computing.join().unwrap(), 1, "the late result is returned");
    assert_eq!(
        get_string(&server, lock).as_deref(),
        Some("another-process"),
        "another holder's lock survives the release"
    );
    assert!(
        !exists(&server, "{memo:owned}.v.%01"),
        "and is not stored over"
    );
}

#[test]
fn releasing_orphaned_locks_never_frees_another_holders_lock() {
    // A call whose reply is lost (here: a stalled server) may hold its lock without knowing;
    // the next call releases it, but only while that call's token still holds it.
    let server = RedisServer::start();
    let conn = server.connection_with("timeout=100ms&pool_size=1");
    // With a refresh every read is the read script (a plain read takes no lock to orphan:
    // `a_stalled_plain_read_leaves_no_lock`); results never go stale here.
    let m = Memo::builder("orphans", |x: u8| x)
        .connection(&conn)
        .lock_timeout(Duration::from_secs(60))
        .ttl(Duration::from_secs(600))
        .refresh(Duration::from_secs(300))
        .build();
    for (x, other_holder) in [(1u8, true), (2, false)] {
        let lock = format!("{{memo:orphans}}.lock.%0{x}");
        // An open connection and a loaded script: the stalled call sends its read.
        assert_eq!(m.call(9).unwrap(), 9);
        server.pause();
        let err = m.call(x).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        server.resume();
        // The stalled read ran once the server woke up: the lock is this call's.
        assert!(eventually(DEADLINE, || exists(&server, &lock)));
        if other_holder {
            // It expired and another process took it before the next call.
            redis::cmd("SET")
                .arg(&lock)
                .arg("another-process")
                .exec(&mut server.raw())
                .unwrap();
        }
        // The next call (for other arguments) releases the orphan first.
        assert_eq!(m.call(9).unwrap(), 9);
        if other_holder {
            assert_eq!(
                get_string(&server, &lock).as_deref(),
                Some("another-process"),
                "another holder's lock survives"
            );
        } else {
            assert!(!exists(&server, &lock), "the orphan was released");
        }
    }
}

#[test]
fn call_many_reads_every_cached_result_in_one_round_trip_and_computes_the_rest_once() {
    let server = RedisServer::start();
    let calls = counter();
    let c = calls.clone();
    let m = Memo::builder("many", move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        x * 10
    })
    .connection(server.connection())
    .build();
    m.call(1).unwrap();
    m.call(2).unwrap();
    m.call(3).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Every result cached: one script for the batch, no function call.
    let sent = server.count_commands(|| {
        assert_eq!(m.call_many([3, 1, 2, 1]).unwrap(), [30, 10, 20, 10]);
    });
    assert_eq!(sent.get("evalsha"), Some(&1), "{sent:?}");
    assert_eq!(sent.get("get"), Some(&4), "{sent:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Two missing results, one of them asked for twice: each computed once, in order.
    assert_eq!(m.call_many([4, 1, 5, 4]).unwrap(), [40, 10, 50, 40]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(m.peek(4).unwrap(), Some(40));
    assert_eq!(m.peek(5).unwrap(), Some(50));
    // The statistics of that many calls: 1 a hit; 4 and 5 misses; 4 again a hit.
    let stats = m.stats().unwrap();
    assert_eq!(stats.hits, 4 + 2);
    assert_eq!(stats.misses, 3 + 2);
    assert_eq!(stats.waits, 0);

    // An empty batch sends nothing; a disabled memo calls the function for each.
    let sent = server.count_commands(|| assert!(m.call_many([]).unwrap().is_empty()));
    assert!(sent.is_empty(), "{sent:?}");
    m.disable();
    assert_eq!(m.call_many([1, 1]).unwrap(), [10, 10]);
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

#[test]
fn call_many_splits_a_large_batch_into_scripts_of_batch_arguments() {
    let server = RedisServer::start();
    let m = Memo::builder("large", |x: u32| u64::from(x) + 1)
        .connection(server.connection())
        .build();
    let n = Memo::<u32, u64>::BATCH as u32 * 2 + 3;
    let all: Vec<u32> = (0..n).collect();
    let first = m.call_many(all.clone()).unwrap();
    assert_eq!(
        first,
        all.iter().map(|&x| u64::from(x) + 1).collect::<Vec<_>>()
    );
    let sent = server.count_commands(|| {
        assert_eq!(m.call_many(all.clone()).unwrap(), first);
    });
    assert_eq!(sent.get("evalsha"), Some(&3), "{sent:?}");
    assert_eq!(m.stats().unwrap().hits, u64::from(n));
}

/// The locks of a batch are taken one by one, right before each computation: a failing or
/// panicking function leaves none behind, and a slow one never outlives the locks of the
/// results computed after it (they are all stored).
#[test]
fn call_many_takes_each_lock_right_before_its_computation() {
    let server = RedisServer::start();
    let failing = Memo::try_builder("many-fail", |x: u32| {
        if x == 1 {
            Err(Error::InvalidKey {
                reason: "boom".into(),
            })
        } else {
            Ok(x)
        }
    })
    .connection(server.connection())
    .build();
    assert!(failing.call_many([1, 2, 3]).is_err());
    let locks: Vec<String> = redis::cmd("KEYS")
        .arg("*many-fail*lock*")
        .query(&mut server.raw())
        .unwrap();
    assert!(locks.is_empty(), "locks left behind: {locks:?}");
    let started = Instant::now();
    assert_eq!(failing.call(2).unwrap(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "call(2) waited for a lock"
    );

    let panicking = Memo::builder("many-panic", |x: u32| {
        assert_ne!(x, 1, "a panicking function");
        x
    })
    .connection(server.connection())
    .build();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        panicking.call_many([1, 2, 3])
    }));
    assert!(caught.is_err());
    let locks: Vec<String> = redis::cmd("KEYS")
        .arg("*many-panic*lock*")
        .query(&mut server.raw())
        .unwrap();
    assert!(locks.is_empty(), "locks left behind: {locks:?}");

    let slow = Memo::builder("many-slow", |x: u32| {
        std::thread::sleep(Duration::from_millis(150));
        x
    })
    .connection(server.connection())
    .lock_timeout(Duration::from_millis(300))
    .build();
    assert_eq!(slow.call_many([1, 2, 3, 4]).unwrap(), [1, 2, 3, 4]);
    let stored: Vec<Option<u32>> = (1..=4).map(|x| slow.peek(x).unwrap()).collect();
    assert_eq!(stored, [Some(1), Some(2), Some(3), Some(4)]);
}

/// With a cold near cache, a batch of results cached in Redis is still one script: the near
/// cache is consulted, not filled, by `call_many`.
#[test]
fn call_many_with_a_near_cache_reads_redis_in_one_round_trip() {
    let server = RedisServer::start();
    let warm = Memo::builder("many-near", |x: u32| x + 1)
        .connection(server.connection())
        .build();
    let all: Vec<u32> = (0..50).collect();
    warm.call_many(all.clone()).unwrap();
    let near = redis_caches::NearCache::with_capacity(1_000);
    let m = Memo::builder("many-near", |x: u32| x + 1)
        .connection(server.connection())
        .near_cache(near.clone())
        .build();
    let sent = server.count_commands(|| {
        assert_eq!(
            m.call_many(all.clone()).unwrap(),
            warm.call_many(all.clone()).unwrap()
        );
    });
    assert_eq!(
        sent.get("evalsha"),
        Some(&2),
        "one script per batch: {sent:?}"
    );
    assert_eq!(sent.get("pttl"), None, "no near-cache fill: {sent:?}");
    // Filled by call: then call_many answers from memory.
    m.call(7).unwrap();
    let sent = server.count_commands(|| assert_eq!(m.call_many([7]).unwrap(), [8]));
    assert!(sent.is_empty(), "{sent:?}");
}

/// A memo in a region: a batch reads the region's current generation (the engine declares
/// the tree's keys once for the whole batch), and the region's invalidation empties it.
#[test]
fn call_many_in_a_region_follows_its_generations() {
    let server = RedisServer::start();
    let conn = server.connection();
    let calls = counter();
    let c = calls.clone();
    let region = redis_caches::Region::builder("shop.books")
        .root(unique("many-tree"))
        .connection(&conn)
        .reclaim(redis_caches::region::Reclaim::Manual)
        .build();
    let m = region
        .memo("price", move |x: u32| {
            c.fetch_add(1, Ordering::SeqCst);
            x * 2
        })
        .build();
    assert_eq!(m.call_many([1, 2, 3, 2]).unwrap(), [2, 4, 6, 4]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let sent = server.count_commands(|| {
        assert_eq!(m.call_many([3, 2, 1]).unwrap(), [6, 4, 2]);
    });
    assert_eq!(sent.get("evalsha"), Some(&1), "{sent:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The region is invalidated: the batch finds the new generation.
    assert!(region.invalidate().unwrap());
    assert_eq!(m.call_many([1, 2]).unwrap(), [2, 4]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(m.call_many([1, 2]).unwrap(), [2, 4]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}
