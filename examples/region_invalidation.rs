//! Invalidating large region trees, measured: how long `Region::invalidate` takes, how long
//! another client waits for a `PING` meanwhile and during the background reclamation that
//! follows, how much server time each reclamation step takes, and how long until the retired
//! keys are gone. Prints Markdown rows for `benches/RESULTS.md`.
//!
//! ```text
//! cargo run --release --example region_invalidation                   # 10,000, 200,000, 1,000,000
//! cargo run --release --example region_invalidation -- 50000 300000   # other sizes
//! ```
//!
//! It starts a throwaway `redis-server` on a free port (never `CACHES_DSN`'s: it writes a
//! million keys). Each tree is `users.r<i>`, one entry per region, written with pipelined
//! plain commands in the layout the crate writes (the region module's "Key layout"), then
//! read back through the crate to check.

use std::error::Error;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::{Connection, Region};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server ({e}); install it first"))?;
    let server = Server(child, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// What the crate writes for `n` regions `users.r<i>` with one entry each (see
/// `tests/support/regions.rs`, which the tests use and `key_layout_in_redis` pins).
fn write_tree(raw: &mut redis::Connection, base: &str, n: u64) -> Result<()> {
    let field = Postcard.encode_field("k", &TypeTag::of::<String>())?;
    redis::cmd("HSET")
        .arg(format!("{base}#tree"))
        .arg("root")
        .arg(1)
        .arg("next")
        .arg(n + 2)
        .exec(raw)?;
    redis::cmd("HSET")
        .arg(format!("{base}@1#children"))
        .arg("users")
        .arg(2)
        .exec(raw)?;
    for start in (0..n).step_by(10_000) {
        let end = (start + 10_000).min(n);
        let mut pipe = redis::pipe();
        let map = pipe.cmd("HSET").arg(format!("{base}@2.users#children"));
        for i in start..end {
            map.arg(format!("r{i}")).arg(3 + i);
        }
        map.ignore();
        for i in start..end {
            pipe.cmd("HSET")
                .arg(format!("{base}@{}.users.r{i}", 3 + i))
                .arg(&field)
                .arg(Postcard.encode(&i, &TypeTag::of::<u64>())?)
                .ignore();
        }
        pipe.exec(raw)?;
    }
    Ok(())
}

/// Latencies of another client's `PING`s, in microseconds.
struct Pings {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u32>>,
}

impl Pings {
    fn start(url: &str) -> Result<Pings> {
        let mut raw = redis::Client::open(url)?.get_connection()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // REGION_NO_PING=1: no pings, so that the server's CPU time is the reclamation's.
        let off = std::env::var("REGION_NO_PING").is_ok_and(|v| v == "1");
        let thread = std::thread::spawn(move || {
            let mut waits = Vec::new();
            while !off && !flag.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if redis::cmd("PING").exec(&mut raw).is_err() {
                    break;
                }
                waits.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                // Often enough to catch any wait of a millisecond, without taking a core.
                std::thread::sleep(Duration::from_micros(100));
            }
            waits
        });
        Ok(Pings { stop, thread })
    }

    fn stop(self) -> Vec<u32> {
        self.stop.store(true, Ordering::Relaxed);
        let mut waits = self.thread.join().unwrap_or_default();
        waits.sort_unstable();
        waits
    }
}

fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn info_field(raw: &mut redis::Connection, section: &str, line: &str, field: &str) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query(raw)
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|rest| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
                .or(if field.is_empty() { Some(rest) } else { None })
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Seconds of CPU the server's main thread has used (user and system): unlike wall time,
/// it does not grow when the machine is busy and the server waits for a core.
fn main_thread_cpu(raw: &mut redis::Connection) -> f64 {
    info_field(raw, "cpu", "used_cpu_user_main_thread:", "")
        + info_field(raw, "cpu", "used_cpu_sys_main_thread:", "")
}

fn dbsize(raw: &mut redis::Connection) -> u64 {
    redis::cmd("DBSIZE").query(raw).unwrap_or(0)
}

fn measure(server: &Server, control: &Server, conn: &Connection, n: u64) -> Result<()> {
    let url = format!("redis://127.0.0.1:{}/0", server.1);
    let mut raw = redis::Client::open(url.as_str())?.get_connection()?;
    redis::cmd("FLUSHALL").exec(&mut raw)?;
    let root = format!("scale-{n}");
    let base = format!("{{{root}}}");
    let written = Instant::now();
    write_tree(&mut raw, &base, n)?;
    let keys_before = dbsize(&mut raw);
    let memory = info_field(&mut raw, "memory", "used_memory:", "");
    eprintln!(
        "{n} regions: {keys_before} keys, {:.0} MB, written in {:?}",
        memory / 1e6,
        written.elapsed()
    );
    let region = |name: &str| Region::builder(name).root(&root).connection(conn).build();
    let users = region("users");
    for i in [0, n / 2, n - 1] {
        let got = users.region(&format!("r{i}")).get::<u64>("k")?;
        if got != Some(i) {
            return Err(format!("users.r{i} reads {got:?}").into());
        }
    }
    let other = region("other");
    other.set("k", &1u8)?;
    other.invalidate()?; // loads the scripts
    other.reclaim()?;

    // The noise floor: a client of another, idle server on the same machine, pinging
    // meanwhile. Its waits are the machine's doing.
    let control_url = format!("redis://127.0.0.1:{}/0", control.1);
    let quiet = Pings::start(&control_url)?;

    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .exec(&mut raw)?;
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut raw)?;
    redis::cmd("CONFIG").arg("RESETSTAT").exec(&mut raw)?;
    let cpu_before = main_thread_cpu(&mut raw);
    let pings = Pings::start(&url)?;
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    users.invalidate()?;
    let invalidate = started.elapsed();
    let mut under_one_percent = None;
    let deadline = started + Duration::from_secs(600);
    let mut left = dbsize(&mut raw);
    while left > 3 && Instant::now() < deadline {
        if under_one_percent.is_none() && left * 100 < keys_before {
            under_one_percent = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
        left = dbsize(&mut raw);
    }
    let all_gone = started.elapsed();
    let pings = pings.stop();
    let quiet = quiet.stop();
    let cpu = main_thread_cpu(&mut raw) - cpu_before;
    let steps = info_field(&mut raw, "commandstats", "cmdstat_evalsha:", "calls");
    let step_usec = info_field(
        &mut raw,
        "commandstats",
        "cmdstat_evalsha:",
        "usec_per_call",
    );
    let slow: Vec<(u64, String)> = {
        let entries: Vec<redis::Value> =
            redis::cmd("SLOWLOG").arg("GET").arg(1000).query(&mut raw)?;
        entries
            .into_iter()
            .filter_map(|e| match e {
                redis::Value::Array(f) => match (&f[2], &f[3]) {
                    (redis::Value::Int(us), redis::Value::Array(args)) => Some((
                        *us as u64,
                        match args.first() {
                            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into(),
                            _ => String::new(),
                        },
                    )),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    let slowest = slow.iter().map(|(us, _)| *us).max().unwrap_or(0);
    println!(
        "| {n} | {:.2} ms | {:.1} ms / {:.1} ms | {:.1} ms / {:.1} ms | {} | {:.0} µs | {:.0} µs | {} (max {:.1} ms) | {} | {:.1} s | {:.1} s | {left} |",
        invalidate.as_secs_f64() * 1e3,
        quantile(&quiet, 0.999) as f64 / 1e3,
        quantile(&quiet, 1.0) as f64 / 1e3,
        quantile(&pings, 0.999) as f64 / 1e3,
        quantile(&pings, 1.0) as f64 / 1e3,
        pings.len(),
        step_usec,
        cpu * 1e6 / steps.max(1.0),
        slow.len(),
        slowest as f64 / 1e3,
        steps as u64,
        under_one_percent.unwrap_or(all_gone).as_secs_f64(),
        all_gone.as_secs_f64(),
    );
    if !slow.is_empty() {
        eprintln!("  commands over 1 ms: {slow:?}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![10_000, 200_000, 1_000_000]
    } else {
        sizes
    };
    let server = start_server()?;
    let control = start_server()?;
    let conn = Connection::open("scale", &format!("redis://127.0.0.1:{}/0", server.1))?;
    println!(
        "| regions | invalidate | PING p99.9 / max, idle server | PING p99.9 / max, this server | PINGs | server time per step (mean) | server CPU per step, PINGs included (mean) | commands ≥ 1 ms (slow log) | steps | < 1% left after | all reclaimed after | keys left |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        measure(&server, &control, &conn, n)?;
    }
    Ok(())
}
