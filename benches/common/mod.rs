//! What the criterion benches (`benches/collections.rs`) and the comparison program
//! (`examples/compare.rs`) share: a throwaway server, the two connection pools (the
//! crate's, and a plain r2d2 pool of `redis::Client` connections for the raw side), the
//! server's counters, and the workloads (in `workloads.rs`), each written twice: through the
//! crate and through raw `redis` commands doing the same work.
//!
//! Adding a workload is one [`Workload`] value in `workloads.rs`; both programs pick it up.
#![allow(dead_code)]

#[path = "../../tests/support/server.rs"]
pub mod server;
pub mod workloads;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_caches::Connection;

/// Any error of a bench run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The result of a bench step.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// One timed operation; its argument is the call's index (`0..calls`, split among threads).
pub type Op = Box<dyn Fn(u64) -> Result<()> + Send + Sync>;

/// Builds the timed operation of one side of a workload: sets up its data under `cx.key`
/// (untimed) and returns the closure the timer runs `cx.calls` times.
pub type Prepare = fn(&Ctx<'_>) -> Result<Op>;

/// The raw side's pool: plain `redis::Client` connections, no check on checkout (the crate's
/// pool does none either, so both send the same commands).
pub type RawPool = r2d2::Pool<redis::Client>;

/// How much one call does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// One element per call; run with 1, 2, 4 and 8 threads.
    Single,
    /// `entries` elements per call (an `extend`, a full iteration); run on one thread and
    /// compared with `redis-benchmark -P 64` running `peer`.
    Bulk { entries: u64, peer: Peer },
}

/// The `redis-benchmark -P 64` command a bulk workload's throughput is held against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    /// `HSET key field:__rand_int__ value`: one field per request.
    Hset,
    /// `HSCAN key 0 COUNT 1000` over a 100,000-field hash: entries per request measured.
    Hscan,
    /// `SADD key member:__rand_int__`.
    Sadd,
    /// `ZADD key __rand_int__ member:__rand_int__`.
    Zadd,
}

/// One workload, written through the crate (`ours`) and through raw commands (`raw`).
pub struct Workload {
    /// `Type::operation`, as the tables show it.
    pub name: &'static str,
    pub size: Size,
    pub ours: Prepare,
    pub raw: Prepare,
}

/// Which implementation of a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Crate,
    Raw,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Crate => "crate",
            Side::Raw => "raw",
        }
    }
}

/// What a workload's preparation gets.
pub struct Ctx<'a> {
    /// The crate's connection (hand it to builders with `.connection(cx.conn)`).
    pub conn: &'a Connection,
    /// The raw side's pool.
    pub pool: &'a RawPool,
    /// A key no earlier run used, without `.` so the crate renders it unchanged.
    pub key: &'a str,
    /// How many times the returned operation will be called.
    pub calls: u64,
}

impl Ctx<'_> {
    /// The pool and key, owned, for a raw operation's closure.
    pub fn raw(&self) -> RawKey {
        RawKey {
            pool: self.pool.clone(),
            key: self.key.to_string(),
        }
    }
}

/// A raw side's pool and key, to move into its closure.
#[derive(Clone)]
pub struct RawKey {
    pub pool: RawPool,
    pub key: String,
}

impl RawKey {
    /// A pooled plain connection.
    pub fn conn(&self) -> Result<r2d2::PooledConnection<redis::Client>> {
        Ok(self.pool.get()?)
    }
}

/// The server the benches run against: the tests' launcher (`REDIS_CACHES_SERVER` picks the
/// binary), persistence off, on a free loopback port, killed when dropped.
pub type Server = server::RedisServer;

/// What the server counted between [`Env::reset_stats`] and [`Env::stats`]: calls per
/// command (from `INFO commandstats`) and read events (`total_reads_processed`, one per
/// round trip of a small request), without the reading connection's own `INFO`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub commands: BTreeMap<String, u64>,
    pub reads: u64,
}

impl Stats {
    /// All commands counted.
    pub fn total(&self) -> u64 {
        self.commands.values().sum()
    }

    /// `3.00 (multi 1.00, incrby 1.00, ...)` per call.
    pub fn per_call(&self, calls: u64) -> String {
        let calls = calls.max(1) as f64;
        let mut parts: Vec<_> = self.commands.iter().collect();
        parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let detail: Vec<String> = parts
            .iter()
            .map(|(name, n)| {
                // `script|load` -> `SCRIPT LOAD` (a `|` would split a Markdown cell).
                let name = name.replace('|', " ").to_uppercase();
                let per_call = **n as f64 / calls;
                if per_call < 0.005 {
                    format!("{name} <0.01")
                } else {
                    format!("{name} {}", fmt_count(per_call))
                }
            })
            .collect();
        format!(
            "{} ({})",
            fmt_count(self.total() as f64 / calls),
            detail.join(", ")
        )
    }
}

/// `1`, `2.5`, `0.01`: as few digits as the value needs.
pub fn fmt_count(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A server, the crate's connection to it, and the raw pool.
pub struct Env {
    pub server: Server,
    pub conn: Connection,
    pub pool: RawPool,
    admin: Mutex<redis::Connection>,
    next_key: AtomicU64,
}

impl Env {
    /// Starts a server and opens both pools (16 connections at most each, opened lazily).
    pub fn start() -> Result<Env> {
        let server = Server::launch().try_start()?;
        let url = server.url();
        let conn = Connection::open("bench", &url)?;
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build_unchecked(redis::Client::open(url.as_str())?);
        let admin = redis::Client::open(url.as_str())?.get_connection()?;
        Ok(Env {
            server,
            conn,
            pool,
            admin: Mutex::new(admin),
            next_key: AtomicU64::new(0),
        })
    }

    /// A key no earlier preparation used.
    pub fn fresh_key(&self) -> String {
        format!("bench-{}", self.next_key.fetch_add(1, Ordering::Relaxed))
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, redis::Connection> {
        self.admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Empties the database, so each run starts from the same state.
    pub fn flush(&self) -> Result<()> {
        redis::cmd("FLUSHDB").exec(&mut *self.admin())?;
        Ok(())
    }

    /// Prepares one side of `w` for `calls` calls on an empty database.
    pub fn prepare(&self, w: &Workload, side: Side, calls: u64) -> Result<Op> {
        self.flush()?;
        let key = self.fresh_key();
        let cx = Ctx {
            conn: &self.conn,
            pool: &self.pool,
            key: &key,
            calls,
        };
        let prepare = match side {
            Side::Crate => w.ours,
            Side::Raw => w.raw,
        };
        prepare(&cx).map_err(|e| format!("preparing {} ({}): {e}", w.name, side.name()).into())
    }

    /// Opens `n` connections in each pool (held at once, then returned), so a timed run
    /// does not pay for connecting.
    pub fn warm(&self, n: usize) -> Result<()> {
        let ours = (0..n)
            .map(|_| self.conn.get())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let raw = (0..n)
            .map(|_| self.pool.get())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        drop((ours, raw));
        Ok(())
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset_stats(&self) -> Result<()> {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .exec(&mut *self.admin())?;
        Ok(())
    }

    /// The counters since the last [`reset_stats`](Env::reset_stats), without the commands
    /// of the measurement itself (`INFO`, `CONFIG`) and connection setup (`CLIENT`).
    pub fn stats(&self) -> Result<Stats> {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .arg("commandstats")
            .query(&mut *self.admin())?;
        let mut stats = Stats::default();
        for line in info.lines() {
            if let Some(n) = line.strip_prefix("total_reads_processed:") {
                // Minus the read that brought this INFO.
                stats.reads = n.trim().parse::<u64>()?.saturating_sub(1);
            }
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, fields)) = rest.split_once(':') else {
                continue;
            };
            if name == "info" || name.starts_with("config") || name.starts_with("client") {
                continue;
            }
            let calls = fields
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .ok_or("commandstats without calls=")?
                .parse()?;
            stats.commands.insert(name.to_string(), calls);
        }
        Ok(stats)
    }

    /// Runs `op` `calls` times on `threads` threads (each takes a contiguous share of the
    /// indexes) and returns the wall time.
    pub fn time(op: &Op, calls: u64, threads: usize) -> Result<Duration> {
        let threads = threads.max(1) as u64;
        let start = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (from, to) = (calls * t / threads, calls * (t + 1) / threads);
                    s.spawn(move || (from..to).try_for_each(op))
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .map_err(|_| BoxError::from("a bench thread panicked"))?
            })
        })?;
        Ok(start.elapsed())
    }

    /// One measured run: prepare, warm the pools, reset the counters, time `calls` calls on
    /// `threads` threads, read the counters.
    pub fn run(&self, w: &Workload, side: Side, calls: u64, threads: usize) -> Result<Measured> {
        let op = self.prepare(w, side, calls)?;
        self.warm(threads)?;
        self.reset_stats()?;
        let elapsed = Env::time(&op, calls, threads)
            .map_err(|e| format!("{} ({}): {e}", w.name, side.name()))?;
        let stats = self.stats()?;
        drop(op);
        Ok(Measured {
            elapsed,
            calls,
            stats,
        })
    }
}

/// The outcome of [`Env::run`].
#[derive(Clone, Debug)]
pub struct Measured {
    pub elapsed: Duration,
    pub calls: u64,
    pub stats: Stats,
}

impl Measured {
    /// Calls per second.
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}
