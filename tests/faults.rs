//! Faults against real servers: a server killed or stalled mid-workload of every type, an
//! exhausted pool, awkward key names, values at the size limit. Each new type joins the
//! workload in `workload_ops`.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use redis_caches::OutagePolicy;
use redis_caches::codec::{Codec, Postcard, Raw, TypeTag};
use redis_caches::key::{IntoKey, glob_escape};
use redis_caches::memo::Memo;
use redis_caches::{
    Connection, DictCache, Error, RedisCache, Region, Result, SentinelCache, SetCache,
    SortedSetCache,
};
use support::{RedisServer, eventually};

/// Operation timeout of the fault tests' connections.
const TIMEOUT: Duration = Duration::from_millis(200);
/// Pool wait of the fault tests' connections.
const POOL_TIMEOUT: Duration = Duration::from_millis(300);
/// Connection attempt bound of the fault tests' connections.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// The longest one call may take, as the crate docs ("How long a call may take") state it:
/// waiting for a pooled connection (`pool_timeout`), opening one (`connect_timeout`), then
/// its replies (`timeout`); plus 25% of that for scheduling.
fn call_bound() -> Duration {
    let documented = POOL_TIMEOUT + CONNECT_TIMEOUT + TIMEOUT;
    documented + documented / 4
}

/// The tests of this file measure how long calls take, so they run one at a time: in
/// parallel, their own threads and servers would compete for the machine's two cores and turn
/// scheduling delays into false timeouts.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fault_connection(server: &RedisServer) -> Connection {
    server.connection_with(&format!(
        "timeout={}ms&pool_timeout={}ms&connect_timeout={}ms&pool_size=8",
        TIMEOUT.as_millis(),
        POOL_TIMEOUT.as_millis(),
        CONNECT_TIMEOUT.as_millis()
    ))
}

/// Threads of the fault workloads.
const THREADS: usize = 3;

/// One operation of the workload: its name, how many calls it makes (each bounded by
/// [`call_bound`]), and whether it may fail at all (a memoized function with
/// `OutagePolicy::Miss` never does: it computes without caching).
struct Op {
    name: &'static str,
    round_trips: u32,
    may_fail: bool,
    run: Box<dyn Fn(u64) -> Result<()> + Send + Sync>,
}

fn op(
    name: &'static str,
    round_trips: u32,
    run: impl Fn(u64) -> Result<()> + Send + Sync + 'static,
) -> Op {
    Op {
        name,
        round_trips,
        may_fail: true,
        run: Box::new(run),
    }
}

/// The longest `op` may take.
fn op_bound(op: &Op) -> Duration {
    call_bound() * op.round_trips
}

/// One thread's operations, on handles built once: the single-element operations of every
/// type. The argument is the iteration number, so that values and memo arguments vary.
fn workload_ops(conn: &Connection, thread: usize) -> Vec<Op> {
    let value: RedisCache<String> = RedisCache::builder(("faults", "value", thread))
        .connection(conn)
        .build();
    let counter = RedisCache::<i64>::builder(("faults", "counter", thread))
        .connection(conn)
        .codec(Raw)
        .build();
    let dict: DictCache<String, u64> = DictCache::builder(("faults", "dict", thread))
        .connection(conn)
        .ttl(Duration::from_secs(60))
        .build();
    let set: SetCache<u64> = SetCache::builder(("faults", "set", thread))
        .connection(conn)
        .build();
    let zset: SortedSetCache<String> = SortedSetCache::builder(("faults", "zset", thread))
        .connection(conn)
        .ttl(Duration::from_secs(60))
        .build();
    let gate: SentinelCache = SentinelCache::builder(("faults", "gate", thread))
        .connection(conn)
        .build();
    let memo_error = Memo::builder(format!("faults-error-{thread}"), |x: u64| x * 2)
        .connection(conn)
        .ttl(Duration::from_millis(50))
        .on_outage(OutagePolicy::Fail)
        .build();
    let memo_compute = Memo::builder(format!("faults-compute-{thread}"), |x: u64| x * 3)
        .connection(conn)
        .ttl(Duration::from_millis(50))
        .on_outage(OutagePolicy::Miss)
        .build();

    let (v1, v2) = (value.clone(), value);
    let (d1, d2, d3, d4) = (dict.clone(), dict.clone(), dict.clone(), dict);
    let (s1, s2, s3) = (set.clone(), set.clone(), set);
    let (z1, z2, z3, z4) = (zset.clone(), zset.clone(), zset.clone(), zset);
    let (g1, g2) = (gate.clone(), gate);
    let region = Region::builder(&format!("faults.region-{thread}"))
        .connection(conn)
        .ttl(Duration::from_secs(60))
        .build();
    let (r1, r2) = (region.clone(), region);
    vec![
        op("RedisCache::set", 1, move |i| {
            v1.set(&format!("payload {i}"))
        }),
        op("RedisCache::get", 1, move |_| v2.get().map(drop)),
        op("RedisCache::incr", 1, move |_| counter.incr(1).map(drop)),
        op("DictCache::insert", 1, move |i| {
            d1.insert(&format!("k{}", i % 8), &i).map(drop)
        }),
        op("DictCache::get", 1, move |i| {
            d2.get(&format!("k{}", i % 8)).map(drop)
        }),
        op("DictCache::set", 1, move |i| {
            d3.set(&format!("k{}", i % 5), &i).map(drop)
        }),
        op("DictCache::remove", 1, move |i| {
            d4.remove(&format!("k{}", i % 3)).map(drop)
        }),
        op("SetCache::insert", 1, move |i| {
            s1.insert(&(i % 16)).map(drop)
        }),
        op("SetCache::contains", 1, move |i| {
            s2.contains(&(i % 16)).map(drop)
        }),
        op("SetCache::remove", 1, move |i| {
            s3.remove(&(i % 7)).map(drop)
        }),
        op("SortedSetCache::insert", 1, move |i| {
            z1.insert(&format!("m{}", i % 8), i as f64).map(drop)
        }),
        op("SortedSetCache::incr_score", 1, move |i| {
            z2.incr_score(&format!("m{}", i % 8), 1.0).map(drop)
        }),
        op("SortedSetCache::score", 1, move |i| {
            z3.score(&format!("m{}", i % 8)).map(drop)
        }),
        op("SortedSetCache::remove", 1, move |i| {
            z4.remove(&format!("m{}", i % 5)).map(drop)
        }),
        op("SentinelCache::claim", 1, move |_| g1.claim().map(drop)),
        op("SentinelCache::reset", 1, move |_| g2.clear().map(drop)),
        op("Region::set", 1, move |i| r1.set("k", &i).map(drop)),
        op("Region::get", 1, move |_| r2.get::<u64>("k").map(drop)),
        // A miss costs two round trips: the read, then storing the result.
        op("Memo::call (ReturnError)", 2, move |i| {
            let x = i % 4;
            let got = memo_error.call(x)?;
            assert_eq!(got, x * 2, "memoized result");
            Ok(())
        }),
        Op {
            may_fail: false,
            ..op("Memo::call (Compute)", 2, move |i| {
                let x = i % 4;
                let got = memo_compute.call(x)?;
                assert_eq!(got, x * 3, "memoized or computed result");
                Ok(())
            })
        },
    ]
}

/// Per operation name: calls that succeeded and failed, and the slowest call, since the
/// phase began.
#[derive(Default, Clone, Copy, Debug)]
struct OpTally {
    ok: usize,
    errors: usize,
    /// Errors of the kind a server that refuses connections gives: `Error::Connect`.
    connect_errors: usize,
    slowest: Duration,
}

type PerOp = HashMap<(usize, &'static str), OpTally>;

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    errors: AtomicUsize,
    per_op: Mutex<HashMap<(usize, &'static str), OpTally>>,
    /// Calls over their bound, and errors that are neither connection errors nor timeouts
    /// (or any error of an operation that must not fail).
    bad: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, thread: usize, op: &Op, took: Duration, result: Result<()>) {
        let mut per_op = self.per_op.lock().unwrap();
        let t = per_op.entry((thread, op.name)).or_default();
        t.slowest = t.slowest.max(took);
        if took > op_bound(op) {
            self.bad
                .lock()
                .unwrap()
                .push(format!("{} took {took:?}", op.name));
        }
        match result {
            Ok(()) => {
                t.ok += 1;
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                t.errors += 1;
                if matches!(e, Error::Connect { .. }) {
                    t.connect_errors += 1;
                }
                self.errors.fetch_add(1, Ordering::Relaxed);
                if !op.may_fail || !(e.is_connection() || e.is_timeout()) {
                    self.bad.lock().unwrap().push(format!("{}: {e:?}", op.name));
                }
            }
        }
    }

    /// Whether every operation succeeded at least once on every thread since the phase
    /// began.
    fn all_succeeded(&self, threads: usize, names: &[&'static str]) -> bool {
        let per_op = self.per_op.lock().unwrap();
        (0..threads).all(|t| {
            names
                .iter()
                .all(|n| per_op.get(&(t, *n)).is_some_and(|o| o.ok > 0))
        })
    }

    /// Whether `name` succeeded at least once, on one thread or another.
    fn any_succeeded(&self, threads: usize, name: &'static str) -> bool {
        let per_op = self.per_op.lock().unwrap();
        (0..threads).any(|t| per_op.get(&(t, name)).is_some_and(|o| o.ok > 0))
    }

    /// Whether every operation in `names` failed at least once (with `Error::Connect` when
    /// `connect` is true), on one thread or another.
    fn all_failed(&self, threads: usize, names: &[&'static str], connect: bool) -> bool {
        let per_op = self.per_op.lock().unwrap();
        names.iter().all(|name| {
            (0..threads).any(|t| {
                per_op.get(&(t, *name)).is_some_and(|o| {
                    if connect {
                        o.connect_errors > 0
                    } else {
                        o.errors > 0
                    }
                })
            })
        })
    }
}

/// A running workload: its stop switch, tally, threads, and operation names.
type Workload = (
    Arc<AtomicBool>,
    Arc<Tally>,
    Vec<thread::JoinHandle<()>>,
    Vec<&'static str>,
);

/// Runs the workload on `threads` threads until told to stop.
fn run_workload(conn: &Connection, threads: usize) -> Workload {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let names = workload_ops(conn, usize::MAX)
        .iter()
        .map(|o| o.name)
        .collect();
    let handles = (0..threads)
        .map(|t| {
            // Each thread starts elsewhere in the list, so that together they go through
            // every operation soon after a fault begins.
            let mut ops = workload_ops(conn, t);
            let len = ops.len();
            ops.rotate_left(t * len / threads);
            let (stop, tally) = (stop.clone(), tally.clone());
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for op in &ops {
                        // Bounded without the time the thread waited for a CPU (see
                        // support::timing): on a shared machine that wait is not the crate's.
                        let (result, took) = support::timing::timed(|| (op.run)(i));
                        tally.record(t, op, took.own, result);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    (stop, tally, handles, names)
}

/// Stops the workload; fails (instead of hanging) when a thread does not finish in time, and
/// when one panicked.
fn stop_workload(stop: &AtomicBool, handles: Vec<thread::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(30), || handles
            .iter()
            .all(|h| h.is_finished())),
        "a workload thread hangs"
    );
    for h in handles {
        assert!(h.join().is_ok(), "a workload thread panicked");
    }
}

/// Takes the counts of the phase that ends now: (ok, errors, per operation, bad calls).
fn phase(tally: &Tally) -> (usize, usize, PerOp, Vec<String>) {
    let per_op = std::mem::take(&mut *tally.per_op.lock().unwrap());
    let bad = std::mem::take(&mut *tally.bad.lock().unwrap());
    (
        tally.ok.swap(0, Ordering::Relaxed),
        tally.errors.swap(0, Ordering::Relaxed),
        per_op,
        bad,
    )
}

/// Asserts that the phase had no untyped error and no call over its bound, and that the
/// operations that must not fail did not.
fn assert_phase_clean(what: &str, per_op: &PerOp, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}: {bad:#?}\nper operation: {per_op:#?}"
    );
}

#[test]
fn server_killed_mid_workload_gives_typed_errors_in_time_then_recovers_on_the_same_handles() {
    let _serial = one_at_a_time();
    let mut server = RedisServer::start();
    let conn = fault_connection(&server);
    let (stop, tally, handles, names) = run_workload(&conn, THREADS);

    assert!(
        eventually(Duration::from_secs(10), || tally
            .all_succeeded(THREADS, &names)),
        "not every operation succeeded before the kill: {:#?}",
        tally.per_op.lock().unwrap()
    );
    let (ok, errors, per_op, bad) = phase(&tally);
    assert!(
        ok > 0 && errors == 0,
        "before the kill: {ok} ok, {errors} errors"
    );
    assert_phase_clean("before the kill", &per_op, &bad);

    server.stop();
    // Calls now fail; keep the server down until every operation that can fail has failed
    // with the documented error of a server that refuses connections, `Error::Connect`
    // (calls in flight at the kill may see a connection error of the call instead).
    let failing: Vec<&str> = workload_ops(&conn, usize::MAX)
        .iter()
        .filter(|o| o.may_fail)
        .map(|o| o.name)
        .collect();
    assert!(
        eventually(Duration::from_secs(20), || tally
            .all_failed(THREADS, &failing, true)
            && tally.any_succeeded(THREADS, "Memo::call (Compute)")),
        "not every operation failed with Error::Connect while the server was down: {:#?}",
        tally.per_op.lock().unwrap()
    );
    let (_, errors, per_op, bad) = phase(&tally);
    assert!(errors > 0);
    assert_phase_clean("while down", &per_op, &bad);
    // The memoized function that computes when Redis is unavailable kept answering (an
    // error of it would be in `bad`).
    assert!(
        per_op
            .iter()
            .any(|((_, name), t)| *name == "Memo::call (Compute)" && t.ok > 0),
        "{per_op:#?}"
    );

    server.restart();
    // The same handles, on the same pool, work again without rebuilding anything.
    assert!(
        eventually(Duration::from_secs(10), || tally
            .all_succeeded(THREADS, &names)),
        "not every operation recovered after the restart: {:#?}",
        tally.per_op.lock().unwrap()
    );
    stop_workload(&stop, handles);
    let (ok, _, per_op, bad) = phase(&tally);
    assert!(ok > 0);
    assert_phase_clean("around the restart", &per_op, &bad);
    // Writes after the restart reached the new server.
    let exists: u32 = redis::cmd("EXISTS")
        .arg("faults.value.0")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(exists, 1);
}

#[test]
fn stalled_server_times_out_calls_in_flight_then_they_succeed_after_sigcont() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let conn = fault_connection(&server);
    let (stop, tally, handles, names) = run_workload(&conn, THREADS);
    assert!(
        eventually(Duration::from_secs(10), || tally
            .all_succeeded(THREADS, &names)),
        "{:#?}",
        tally.per_op.lock().unwrap()
    );
    let (_, _, per_op, bad) = phase(&tally);
    assert_phase_clean("before the stall", &per_op, &bad);

    server.pause();
    // Stalled until every operation that can fail has failed, each within its bound.
    let failing: Vec<&str> = workload_ops(&conn, usize::MAX)
        .iter()
        .filter(|o| o.may_fail)
        .map(|o| o.name)
        .collect();
    let stalled = eventually(Duration::from_secs(20), || {
        tally.all_failed(THREADS, &failing, false)
            && tally.any_succeeded(THREADS, "Memo::call (Compute)")
    });
    let (_, errors, per_op, bad) = phase(&tally);
    assert!(
        stalled,
        "not every operation failed during the stall: {per_op:#?}"
    );
    assert!(errors >= failing.len(), "{errors} errors");
    assert_phase_clean("while stalled", &per_op, &bad);

    server.resume();
    assert!(
        eventually(Duration::from_secs(10), || tally
            .all_succeeded(THREADS, &names)),
        "not every operation recovered after SIGCONT: {:#?}",
        tally.per_op.lock().unwrap()
    );
    stop_workload(&stop, handles);
    let (_, _, per_op, bad) = phase(&tally);
    assert_phase_clean("after SIGCONT", &per_op, &bad);
}

#[test]
fn a_single_call_on_a_stalled_server_fails_within_the_operation_timeout() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let conn = fault_connection(&server);
    let c: RedisCache<String> = RedisCache::builder("k").connection(&conn).build();
    c.set("v").unwrap(); // the pool now holds an open connection: no connect needed
    server.pause();
    let (err, took) = support::timing::timed(|| c.get().unwrap_err());
    server.resume();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    assert!(took.wall >= TIMEOUT - Duration::from_millis(20), "{took:?}");
    assert!(took.own <= TIMEOUT + TIMEOUT / 4, "{took:?}");
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
}

#[test]
fn exhausted_pool_gives_a_typed_error_after_the_pool_timeout() {
    let _serial = one_at_a_time();
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

    let (err, took) = support::timing::timed(|| c.get().unwrap_err());
    assert!(matches!(err, Error::Pool { .. }), "{err:?}");
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("in use"), "{err}");
    assert!(took.wall >= Duration::from_millis(240), "{took:?}");
    let pool_timeout = Duration::from_millis(250);
    assert!(took.own <= pool_timeout + pool_timeout / 4, "{took:?}");

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
    let _serial = one_at_a_time();
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
    let _serial = one_at_a_time();
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
    let _serial = one_at_a_time();
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
    let _serial = one_at_a_time();
    // The server's own limit (proto-max-bulk-len, at least 1 MiB) is below the crate's.
    let server = RedisServer::start_with(&["--proto-max-bulk-len", "1mb"]);
    let conn = fault_connection(&server);
    let c = RedisCache::<String>::builder("big")
        .connection(&conn)
        .codec(Raw)
        .build();
    let counter = RedisCache::<i64>::counter("big-counter")
        .connection(&conn)
        .build();
    for _ in 0..3 {
        let err = c.set(&"z".repeat(1024 * 1024 + 1)).unwrap_err();
        assert!(matches!(err, Error::Redis { .. }), "{err:?}");
        assert!(err.to_string().contains("big"), "{err}");
        // The server closed the connection after its protocol error: the next call, a
        // write that is never sent twice, gets a fresh connection and succeeds at once.
        counter.incr(1).unwrap();
        c.set("small").unwrap();
        assert_eq!(c.get().unwrap().as_deref(), Some("small"));
    }
    assert_eq!(counter.get().unwrap(), Some(3));
}
