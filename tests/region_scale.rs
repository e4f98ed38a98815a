//! Invalidating large region trees: constant time, no stall for other clients, and the retired
//! keys reclaimed in the background, by this process or by one that starts later (issue
//! "Region invalidation in constant time that never stalls Redis"). `benches/RESULTS.md` has
//! the same measurements at 10,000, 200,000 and 1,000,000 regions
//! (`cargo run --release --example region_invalidation`).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis_caches::region::Reclaim;
use redis_caches::{Connection, Region};
use support::regions::{base, dbsize, queue, write_flat_tree};
use support::{RedisServer, child_process, eventually, is_child, unique, wait_child};

/// The tree: 200,000 regions with one entry each.
const REGIONS: u64 = 200_000;

/// `invalidate()` returns within this.
const INVALIDATE_WITHIN: Duration = Duration::from_millis(20);

/// No command runs this long, during the invalidation or the reclamation that follows (the
/// server's `SLOWLOG`), and no other client waits this much longer for a reply than a client
/// of an idle server on the same machine waits meanwhile (the machine's own scheduling delays
/// reach every client alike; what this server's work adds is the crate's).
const LONGEST_WAIT: Duration = Duration::from_millis(5);

/// Fewer than 1% of the keys remain after this.
const RECLAIMED_WITHIN: Duration = Duration::from_secs(120);

/// The server time one reclamation step may take, on average ("well under a millisecond").
const STEP_TIME: Duration = Duration::from_millis(1);

/// One test at a time: each measures latencies, which the other's work would disturb.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Another client sending `PING` in a loop, recording the longest wait for a reply.
struct Pinger {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Duration, u64)>,
}

impl Pinger {
    fn start(server: &RedisServer) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let mut raw = server.raw();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut longest, mut pings) = (Duration::ZERO, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    redis::cmd("PING").exec(&mut raw).unwrap();
                    longest = longest.max(sent.elapsed());
                    pings += 1;
                    // Often enough to catch any wait of LONGEST_WAIT, seldom enough that the
                    // server's CPU time is the reclamation's.
                    std::thread::sleep(Duration::from_micros(200));
                }
                (longest, pings)
            })
        };
        Pinger { stop, thread }
    }

    /// The longest wait, and how many pings were answered.
    fn stop(self) -> (Duration, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// How many scripts the server ran (`EVALSHA`) since its statistics were reset, and the
/// mean time each took.
fn scripts_run(raw: &mut redis::Connection) -> (u64, Duration) {
    let info: String = redis::cmd("INFO").arg("commandstats").query(raw).unwrap();
    let stat = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
            .and_then(|rest| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (
        stat("calls") as u64,
        Duration::from_secs_f64(stat("usec_per_call") / 1e6),
    )
}

/// The server logs every command that runs `LONGEST_WAIT` or more from now on.
fn slowlog_from_now(raw: &mut redis::Connection) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(LONGEST_WAIT.as_micros() as u64)
        .exec(raw)
        .unwrap();
    redis::cmd("SLOWLOG").arg("RESET").exec(raw).unwrap();
}

/// The commands that ran `LONGEST_WAIT` or more since [`slowlog_from_now`]: `(µs, command)`.
fn slow_commands(raw: &mut redis::Connection) -> Vec<(u64, String)> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100)
        .query(raw)
        .unwrap();
    entries
        .into_iter()
        .map(|e| match e {
            redis::Value::Array(fields) => {
                let micros = match &fields[2] {
                    redis::Value::Int(n) => *n as u64,
                    _ => 0,
                };
                (micros, format!("{:?}", fields[3]))
            }
            other => (0, format!("{other:?}")),
        })
        .collect()
}

/// How many times the 200,000-region measurement may run before a wait counts against the
/// crate. A stall the crate causes (a step that does too much, a script that walks the tree)
/// comes back in every run; the kernel preempting the busy server in the middle of one step of
/// thousands, on a shared 2-core machine, does not (the CI run that added this saw one step of
/// 4,023 stretched to 6.4 ms, the steps' mean at 0.78 ms, while the idle control server's client
/// waited nothing). Every other bound is asserted on every run.
const ATTEMPTS: u32 = 3;

#[test]
fn invalidating_200k_regions_is_constant_time_and_never_stalls_redis() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut waits = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match invalidate_200k_regions() {
            None => return,
            Some(wait) => {
                eprintln!("run {attempt} of {ATTEMPTS}: {wait}");
                waits.push(wait);
            }
        }
    }
    panic!("every run made another client wait: {waits:#?}");
}

/// One run of the measurement: panics when a bound other than the waits fails, and returns the
/// waits of `LONGEST_WAIT` or more (or a mean step over `STEP_TIME`) that it saw, if any.
fn invalidate_200k_regions() -> Option<String> {
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("scale");
    let mut raw = server.raw();
    write_flat_tree(&mut raw, &root, "users", REGIONS);
    let keys_before = dbsize(&mut raw);
    assert_eq!(
        keys_before,
        REGIONS + 3,
        "the tree's hash, two maps, the hashes"
    );
    let region = |name: &str| Region::builder(name).root(&root).connection(&conn).build();
    let users = region("users");
    for i in [0, 1, REGIONS / 2, REGIONS - 1] {
        let user = users.region(&format!("r{i}"));
        assert_eq!(
            user.get::<u64>("k").unwrap(),
            Some(i),
            "read as the crate wrote it"
        );
    }
    // The scripts loaded, on another region of the tree.
    let other = region("other");
    other.set("k", &1u8).unwrap();
    assert!(other.invalidate().unwrap());
    other.reclaim().unwrap();

    // A control: another server on the same machine, idle, pinged the same way meanwhile. A
    // wait there is the machine's doing (a shared CI runner, a laptop compiling), and would
    // hit this server's clients as well, whatever the crate does.
    let control = RedisServer::start();
    let mut control_raw = control.raw();
    slowlog_from_now(&mut control_raw);
    let control_pinger = Pinger::start(&control);

    slowlog_from_now(&mut raw);
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec(&mut raw)
        .unwrap();
    let pinger = Pinger::start(&server);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    assert!(users.invalidate().unwrap());
    let invalidate_took = started.elapsed();

    // Nothing below is readable any more, by any handle.
    for i in [0, 1, 7, REGIONS / 2, REGIONS - 1] {
        let fresh = region(&format!("users.r{i}"));
        assert_eq!(fresh.get::<u64>("k").unwrap(), None, "users.r{i}");
        assert!(!fresh.exists().unwrap());
        assert_eq!(fresh.key().unwrap(), None);
    }
    assert!(users.children().next().is_none());
    assert!(users.is_empty().unwrap());

    // The background thread reclaims the keys (no call here does).
    let reclaimed = eventually(RECLAIMED_WITHIN, || dbsize(&mut raw) * 100 < keys_before);
    let reclaim_took = started.elapsed();
    assert!(eventually(Duration::from_secs(30), || queue(
        &mut raw,
        &base(&root)
    )
    .is_empty()));
    let all_done = started.elapsed();
    let (longest, pings) = pinger.stop();
    let (control_longest, _) = control_pinger.stop();
    let control_slow = slow_commands(&mut control_raw);
    let (steps, per_step) = scripts_run(&mut raw);
    let slow = slow_commands(&mut raw);
    let left = dbsize(&mut raw);
    println!(
        "{REGIONS} regions: invalidate {invalidate_took:?}; reclaimed to {left} keys in \
         {reclaim_took:?} by {steps} scripts of {per_step:?} each on average; \
         longest PING {longest:?} over {pings} pings (idle server: {control_longest:?}); \
         commands over {LONGEST_WAIT:?}: {slow:?} (idle server: {control_slow:?})"
    );
    assert!(
        invalidate_took < INVALIDATE_WITHIN,
        "invalidate took {invalidate_took:?}"
    );
    assert!(
        reclaimed,
        "{left} of {keys_before} keys left after {reclaim_took:?}"
    );
    assert!(
        steps >= REGIONS / 25,
        "reclaimed in steps of at most 25 regions: {steps} scripts"
    );
    assert!(
        all_done >= Duration::from_millis(2) * steps as u32,
        "the thread pauses at least 2 ms between steps: {steps} steps in {all_done:?}"
    );
    assert!(pings > 1000, "the other client kept asking: {pings}");
    let wait = if control_longest >= LONGEST_WAIT || !control_slow.is_empty() {
        // The machine alone made a client of an idle server wait that long: waits and
        // durations here cannot be told apart from it, so they say nothing about the crate.
        eprintln!(
            "not checking waits of {LONGEST_WAIT:?} nor the time of a step: a PING to an idle \
             server on this machine waited {control_longest:?} meanwhile"
        );
        None
    } else if per_step >= STEP_TIME {
        Some(format!(
            "a reclamation step held the server {per_step:?} on average"
        ))
    } else if !slow.is_empty() {
        Some(format!(
            "commands that held Redis {LONGEST_WAIT:?} or more: {slow:?}"
        ))
    } else if longest >= control_longest + LONGEST_WAIT {
        Some(format!(
            "a PING waited {longest:?}, {LONGEST_WAIT:?} or more beyond the longest wait of \
             one to an idle server ({control_longest:?})"
        ))
    } else {
        None
    };

    // Writes after the invalidation are visible, and go with the next one.
    let user = users.region("r1");
    user.set("k", &2u64).unwrap();
    assert_eq!(user.get::<u64>("k").unwrap(), Some(2));
    assert!(users.invalidate().unwrap());
    assert_eq!(user.get::<u64>("k").unwrap(), None);
    wait
}

/// A process that invalidated a tree and stopped before reclaiming it leaves the work queued
/// in Redis; another process that uses the tree picks it up by itself.
#[test]
fn a_process_that_starts_later_picks_up_reclamation() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    let root = unique("pickup");
    let mut raw = server.raw();
    write_flat_tree(&mut raw, &root, "users", 20_000);
    wait_child(child_process(
        "child_invalidates_without_reclaiming",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    assert_eq!(
        queue(&mut raw, &base(&root)).len(),
        1,
        "queued, not reclaimed"
    );
    let keys_before = dbsize(&mut raw);
    assert!(keys_before > 20_000);

    // This process only reads, in another part of the tree; two of its threads also
    // reclaim by hand, alongside the background thread: every hash is deleted once.
    let conn = server.connection();
    let elsewhere = Region::builder("elsewhere")
        .root(&root)
        .connection(&conn)
        .build();
    assert_eq!(elsewhere.get::<u8>("k").unwrap(), None);
    let by_hand: Vec<_> = (0..2)
        .map(|_| {
            let r = elsewhere.clone();
            std::thread::spawn(move || r.reclaim().unwrap())
        })
        .collect();
    let by_hand: u64 = by_hand.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(by_hand <= 20_000);
    assert!(
        eventually(Duration::from_secs(60), || dbsize(&mut raw) <= 1),
        "{} keys left",
        dbsize(&mut raw)
    );
    assert!(queue(&mut raw, &base(&root)).is_empty());
}

/// A process that keeps using a tree looks at its queue again every minute, so work that
/// another process queued and left is done even if this process never invalidates anything.
#[test]
fn a_process_that_keeps_using_a_tree_finds_work_queued_later() {
    // No latency measured here, and the minute is mostly waiting: alongside the others.
    let server = RedisServer::start();
    let conn = server.connection();
    let root = unique("recheck");
    let reader = Region::builder("reader")
        .root(&root)
        .connection(&conn)
        .build();
    assert_eq!(reader.get::<u8>("k").unwrap(), None); // watched from here on
    std::thread::sleep(Duration::from_secs(1));
    // Then another process writes a tree, invalidates it and stops before reclaiming.
    let mut raw = server.raw();
    write_flat_tree(&mut raw, &root, "users", 1000);
    wait_child(child_process(
        "child_invalidates_without_reclaiming",
        &[("REGION_URL", server.url()), ("REGION_ROOT", root.clone())],
    ));
    let queued = Instant::now();
    assert!(
        eventually(Duration::from_secs(75), || dbsize(&mut raw) <= 1),
        "{} keys left",
        dbsize(&mut raw)
    );
    println!("reclaimed {:?} after it was queued", queued.elapsed());
}

#[test]
#[ignore = "child process entry point: run by a_process_that_starts_later_picks_up_reclamation"]
fn child_invalidates_without_reclaiming() {
    if !is_child() {
        return;
    }
    let conn = Connection::open("child", &std::env::var("REGION_URL").unwrap()).unwrap();
    let root = std::env::var("REGION_ROOT").unwrap();
    let users = Region::builder("users")
        .root(&root)
        .connection(&conn)
        .reclaim(Reclaim::Manual)
        .build();
    assert!(users.invalidate().unwrap());
}

/// While a tree's server is gone, the reclamation thread gives up on it after a few failed
/// steps instead of retrying forever; the next operation on the tree, through a handle that
/// existed all along, has it watched again.
#[test]
fn a_tree_whose_server_was_gone_is_watched_again_at_its_next_use() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = support::free_port();
    let conn = Connection::open(
        &unique("gone"),
        &format!(
            "redis://127.0.0.1:{port}/0?connect_timeout=100ms&pool_timeout=100ms&timeout=500ms"
        ),
    )
    .unwrap();
    let root = unique("gone");
    let users = Region::builder("users")
        .root(&root)
        .connection(&conn)
        .build();
    assert!(users.get::<u8>("k").unwrap_err().is_connection());
    // Six failed steps, 0.1, 0.2, 0.4, 0.8 and 1.6 s apart: then the tree is dropped.
    std::thread::sleep(Duration::from_secs(5));

    // The server comes up, with work another process queued.
    let server = RedisServer::start_on(port, &[]);
    let mut raw = server.raw();
    write_flat_tree(&mut raw, &root, "users", 500);
    redis::cmd("HDEL")
        .arg(format!("{}@1#children", base(&root)))
        .arg("users")
        .exec(&mut raw)
        .unwrap();
    redis::cmd("RPUSH")
        .arg(format!("{}#gc", base(&root)))
        .arg("@2.users")
        .exec(&mut raw)
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        queue(&mut raw, &base(&root)).len(),
        1,
        "nobody watches the tree"
    );
    assert!(dbsize(&mut raw) > 500);

    assert_eq!(users.get::<u8>("k").unwrap(), None);
    assert!(
        eventually(Duration::from_secs(10), || dbsize(&mut raw) <= 1),
        "{} keys left",
        dbsize(&mut raw)
    );
}
