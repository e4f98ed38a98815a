//! Faults against real servers: a server killed or stalled mid-workload, an exhausted pool,
//! awkward key names, values at the size limit. Collections other than `RedisCache` join this
//! suite as they land: each fault test takes its workload from `workload_ops`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use redis_caches::codec::{Codec, Postcard, Raw, TypeTag};
use redis_caches::key::{IntoKey, glob_escape};
use redis_caches::{Connection, Error, RedisCache, Result};
use support::{RedisServer, eventually};

/// Operation timeout of the fault tests' connections.
const TIMEOUT: Duration = Duration::from_millis(200);
/// Pool wait of the fault tests' connections.
const POOL_TIMEOUT: Duration = Duration::from_millis(300);
/// Slack for scheduling on a loaded 2-core CI machine.
const MARGIN: Duration = Duration::from_millis(700);

fn fault_connection(server: &RedisServer) -> Connection {
    server.connection_with(&format!(
        "timeout={}ms&pool_timeout={}ms&connect_timeout={}ms&pool_size=8",
        TIMEOUT.as_millis(),
        POOL_TIMEOUT.as_millis(),
        TIMEOUT.as_millis()
    ))
}

/// The longest one call may take: waiting for the pool (which keeps trying to connect), then
/// waiting for the reply.
fn call_bound() -> Duration {
    POOL_TIMEOUT + TIMEOUT + MARGIN
}

type Op = Box<dyn Fn() -> Result<()> + Send + Sync>;

/// One thread's operations: get, set and incr on `RedisCache` handles built once.
fn workload_ops(conn: &Connection, thread: usize) -> Vec<Op> {
    let value: RedisCache<String> = RedisCache::builder(("faults", "value", thread))
        .connection(conn)
        .build();
    let counter = RedisCache::<i64>::builder(("faults", "counter", thread))
        .connection(conn)
        .codec(Raw)
        .build();
    let v2 = value.clone();
    vec![
        Box::new(move || value.set("payload")),
        Box::new(move || v2.get().map(drop)),
        Box::new(move || counter.incr(1).map(drop)),
    ]
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    errors: AtomicUsize,
    slowest: Mutex<Duration>,
    bad_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, took: Duration, result: Result<()>) {
        {
            let mut slowest = self.slowest.lock().unwrap();
            *slowest = (*slowest).max(took);
        }
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if !(e.is_connection() || e.is_timeout()) {
                    self.bad_errors.lock().unwrap().push(format!("{e:?}"));
                }
            }
        }
    }
}

/// Runs the workload on `threads` threads until told to stop; returns the stop switch, the
/// tally, and the threads.
fn run_workload(
    conn: &Connection,
    threads: usize,
) -> (Arc<AtomicBool>, Arc<Tally>, Vec<thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let handles = (0..threads)
        .map(|t| {
            let ops = workload_ops(conn, t);
            let (stop, tally) = (stop.clone(), tally.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for op in &ops {
                        let started = Instant::now();
                        let result = op();
                        tally.record(started.elapsed(), result);
                    }
                }
            })
        })
        .collect();
    (stop, tally, handles)
}

/// Stops the workload; fails (instead of hanging) when a thread does not finish in time, and
/// when one panicked.
fn stop_workload(stop: &AtomicBool, handles: Vec<thread::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    assert!(
        eventually(call_bound() * 4, || handles.iter().all(|h| h.is_finished())),
        "a workload thread hangs"
    );
    for h in handles {
        assert!(h.join().is_ok(), "a workload thread panicked");
    }
}

/// Takes the counts of the phase that ends now: (ok, errors, slowest call, untyped errors).
fn phase(tally: &Tally) -> (usize, usize, Duration, Vec<String>) {
    let slowest = std::mem::take(&mut *tally.slowest.lock().unwrap());
    let bad = std::mem::take(&mut *tally.bad_errors.lock().unwrap());
    (
        tally.ok.swap(0, Ordering::Relaxed),
        tally.errors.swap(0, Ordering::Relaxed),
        slowest,
        bad,
    )
}

#[test]
fn server_killed_mid_workload_gives_typed_errors_in_time_then_recovers_on_the_same_handles() {
    let mut server = RedisServer::start();
    let conn = fault_connection(&server);
    let (stop, tally, handles) = run_workload(&conn, 4);

    assert!(eventually(Duration::from_secs(5), || tally
        .ok
        .load(Ordering::Relaxed)
        > 200));
    let (ok, errors, _, _) = phase(&tally);
    assert!(
        ok > 0 && errors == 0,
        "before the kill: {ok} ok, {errors} errors"
    );

    server.stop();
    // Calls now fail; keep the server down long enough for every thread to go through the
    // pool's wait a few times.
    assert!(eventually(Duration::from_secs(5), || tally
        .errors
        .load(Ordering::Relaxed)
        > 20));
    thread::sleep(POOL_TIMEOUT * 2);
    let (_, errors, slowest, bad) = phase(&tally);
    assert!(errors > 0);
    assert!(bad.is_empty(), "untyped errors while down: {bad:?}");
    assert!(
        slowest <= call_bound(),
        "a call took {slowest:?} while the server was down"
    );

    server.restart();
    // The same handles, on the same pool, work again without rebuilding anything.
    assert!(
        eventually(Duration::from_secs(5), || tally.ok.load(Ordering::Relaxed)
            > 200),
        "no recovery after the restart"
    );
    stop_workload(&stop, handles);
    let (ok, _, slowest, bad) = phase(&tally);
    assert!(ok > 0);
    assert!(bad.is_empty(), "untyped errors around the restart: {bad:?}");
    assert!(
        slowest <= call_bound(),
        "a call took {slowest:?} around the restart"
    );
    // Writes after the restart reached the new server.
    assert!(eventually(Duration::from_secs(2), || {
        redis::cmd("EXISTS")
            .arg("faults.value.0")
            .query::<u32>(&mut server.raw())
            .is_ok_and(|n| n == 1)
    }));
}

#[test]
fn stalled_server_times_out_calls_in_flight_then_they_succeed_after_sigcont() {
    let server = RedisServer::start();
    let conn = fault_connection(&server);
    let (stop, tally, handles) = run_workload(&conn, 3);
    assert!(eventually(Duration::from_secs(5), || tally
        .ok
        .load(Ordering::Relaxed)
        > 100));
    phase(&tally);

    server.pause();
    assert!(eventually(Duration::from_secs(5), || tally
        .errors
        .load(Ordering::Relaxed)
        >= 6));
    let (ok, errors, slowest, bad) = phase(&tally);
    assert!(errors >= 6, "{ok} ok, {errors} errors");
    assert!(bad.is_empty(), "untyped errors while stalled: {bad:?}");
    assert!(
        slowest <= call_bound(),
        "a call took {slowest:?} while stalled"
    );

    server.resume();
    assert!(
        eventually(Duration::from_secs(5), || tally.ok.load(Ordering::Relaxed)
            > 100),
        "no recovery after SIGCONT"
    );
    stop_workload(&stop, handles);
    let (_, _, _, bad) = phase(&tally);
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn a_single_call_on_a_stalled_server_fails_within_the_operation_timeout() {
    let server = RedisServer::start();
    let conn = fault_connection(&server);
    let c: RedisCache<String> = RedisCache::builder("k").connection(&conn).build();
    c.set("v").unwrap(); // the pool now holds an open connection: no connect needed
    server.pause();
    let started = Instant::now();
    let err = c.get().unwrap_err();
    let took = started.elapsed();
    server.resume();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    assert!(took >= TIMEOUT - Duration::from_millis(20), "{took:?}");
    assert!(took <= TIMEOUT + MARGIN, "{took:?}");
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
}

#[test]
fn exhausted_pool_gives_a_typed_error_after_the_pool_timeout() {
    let server = RedisServer::start();
    let conn = server.connection_with("pool_size=2&pool_timeout=250ms");
    let c: RedisCache<String> = RedisCache::builder("k").connection(&conn).build();
    c.set("v").unwrap();

    let held = Arc::new(Barrier::new(3));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (conn, held, release_rx) = (conn.clone(), held.clone(), release_rx.clone());
            thread::spawn(move || {
                let pooled = conn.get().unwrap();
                held.wait();
                let _ = release_rx.lock().unwrap().recv();
                drop(pooled);
            })
        })
        .collect();
    held.wait();

    let started = Instant::now();
    let err = c.get().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Pool { .. }), "{err:?}");
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("in use"), "{err}");
    assert!(took >= Duration::from_millis(240), "{took:?}");
    assert!(took <= Duration::from_millis(250) + MARGIN, "{took:?}");

    for _ in 0..2 {
        release_tx.send(()).unwrap();
    }
    for h in holders {
        h.join().unwrap();
    }
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
}

/// Key parts that mean something to Redis globs, to our escaping, or to a terminal.
const AWKWARD: &[&str] = &[
    "with space",
    "ünïcödé ✓ 鍵",
    "dot.ted",
    "star*",
    "question?",
    "[bracket]",
    "back\\slash",
    "back\\.both",
    "^caret-dash",
    "*",
    "?",
    "[",
    "]",
    "\\",
    ".",
    "tab\tnew\nline",
];

#[test]
fn awkward_key_names_are_stored_and_read_back_exactly() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    for (i, part) in AWKWARD.iter().enumerate() {
        let c: RedisCache<String> = RedisCache::builder(("awk", *part))
            .connection(&conn)
            .build();
        let value = format!("value of {part}");
        c.set(&value).unwrap();
        assert_eq!(c.get().unwrap(), Some(value.clone()), "{part:?}");
        // The key in Redis is exactly the documented rendering.
        let expected = ("awk", *part).into_key().render("", None).unwrap();
        let escaped = part.replace('\\', "\\\\").replace('.', "\\.");
        assert_eq!(expected, format!("awk.{escaped}"));
        let stored: Vec<u8> = redis::cmd("GET").arg(&expected).query(&mut raw).unwrap();
        let decoded: String = Postcard.decode(&stored, &TypeTag::of::<String>()).unwrap();
        assert_eq!(decoded, value, "{part:?} (#{i})");
    }
    // Every key is distinct: as many keys as parts, plus nothing else.
    let n: usize = redis::cmd("DBSIZE").query(&mut raw).unwrap();
    assert_eq!(n, AWKWARD.len());
}

#[test]
fn glob_escaped_patterns_match_only_their_own_keys() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    // Neighbours whose names are globs of each other.
    let names = ["a*", "ab", "a?", "a[b]", "a\\", "a", "[ab]", "a-b", "a^b"];
    for name in names {
        RedisCache::<u8>::builder(name)
            .connection(&conn)
            .build()
            .set(&1)
            .unwrap();
    }
    for name in names {
        let key = name.into_key().render("", None).unwrap();
        let pattern = glob_escape(&key);
        let mut found: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(100)
                .query(&mut raw)
                .unwrap();
            found.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(found, vec![key.clone()], "pattern {pattern:?} for {name:?}");
        // And as a prefix pattern: the key itself and nothing of its neighbours.
        let prefix_pattern = format!("{}*", glob_escape(&key));
        let (_, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(&prefix_pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut raw)
            .unwrap();
        for k in &batch {
            assert!(k.starts_with(&key), "{prefix_pattern:?} matched {k:?}");
        }
    }
}

#[test]
fn values_at_the_size_limit_pass_and_one_byte_over_fails_before_sending() {
    let server = RedisServer::start();
    let conn = server.connection();
    const LIMIT: usize = 64 * 1024;

    // Raw: the encoded size is the string's length.
    let raw_cache = RedisCache::<String>::builder("raw-limit")
        .connection(&conn)
        .codec(Raw)
        .max_value_size(LIMIT)
        .build();
    let at_limit = "x".repeat(LIMIT);
    raw_cache.set(&at_limit).unwrap();
    assert_eq!(raw_cache.get().unwrap().as_deref(), Some(at_limit.as_str()));
    let over = "y".repeat(LIMIT + 1);
    let sent = server.count_commands(|| {
        let err = raw_cache.set(&over).unwrap_err();
        match &err {
            Error::ValueTooLarge { key, size, limit } => {
                assert_eq!(
                    (key.as_str(), *size, *limit),
                    ("raw-limit", LIMIT + 1, LIMIT)
                );
            }
            other => panic!("expected ValueTooLarge, got {other:?}"),
        }
        assert!(err.to_string().contains("raw-limit"), "{err}");
    });
    assert!(
        sent.is_empty(),
        "a refused value must not reach Redis: {sent:?}"
    );
    assert_eq!(
        raw_cache.get().unwrap().as_deref(),
        Some(at_limit.as_str()),
        "old value kept"
    );

    // Postcard: the limit counts the header and length prefix too.
    let pc = RedisCache::<Vec<u8>>::builder("pc-limit")
        .connection(&conn)
        .max_value_size(LIMIT)
        .build();
    let tag = TypeTag::of::<Vec<u8>>();
    let overhead = Postcard.encode(&vec![0u8; LIMIT], &tag).unwrap().len() - LIMIT;
    let fits = vec![7u8; LIMIT - overhead];
    assert_eq!(Postcard.encode(&fits, &tag).unwrap().len(), LIMIT);
    pc.set(&fits).unwrap();
    assert_eq!(pc.get().unwrap(), Some(fits.clone()));
    let too_big = vec![7u8; LIMIT - overhead + 1];
    assert!(matches!(
        pc.set(&too_big).unwrap_err(),
        Error::ValueTooLarge { size, .. } if size == LIMIT + 1
    ));
}

#[test]
fn a_value_over_the_servers_bulk_limit_is_a_typed_error_and_the_pool_recovers() {
    // The server's own limit (proto-max-bulk-len, at least 1 MiB) is below the crate's.
    let server = RedisServer::start_with(&["--proto-max-bulk-len", "1mb"]);
    let conn = fault_connection(&server);
    let c = RedisCache::<String>::builder("big")
        .connection(&conn)
        .codec(Raw)
        .build();
    let err = c.set(&"z".repeat(1024 * 1024 + 1)).unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    assert!(err.to_string().contains("big"), "{err}");
    // The same handle works on the next calls.
    assert!(eventually(Duration::from_secs(2), || c
        .set("small")
        .is_ok()));
    assert_eq!(c.get().unwrap().as_deref(), Some("small"));
}
