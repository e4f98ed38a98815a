//! Side by side: every workload through this crate and through raw `redis` commands doing the
//! same work, on the same throwaway server, in the same run.
//!
//! ```text
//! cargo run --release --example compare                 # the full table (a few minutes)
//! cargo run --release --example compare -- --quick      # a short run (or COMPARE_QUICK=1)
//! cargo run --release --example compare -- --python     # also the Python peers, same server
//! cargo run --release --example compare -- RedisCache   # only workloads whose name contains it
//! cargo run --release --example compare -- SetCache::extend   # exactly this one
//! cargo run --release --example compare -- NearCache    # only the near-cache section
//! ```
//!
//! Other options: `--ops N` (calls per single-element run), `--bulk-calls N` (calls per bulk
//! run), `--rounds N` (runs per side, interleaved; the fastest is shown), `--threads 1,4`, `--side crate|raw` (one side only, e.g. under
//! `valgrind --tool=callgrind`), `--no-redis-benchmark`.
//!
//! For each workload it prints, ratios first: crate time / raw time, operations per second of
//! both, Redis commands per operation (from `INFO commandstats` deltas, `CONFIG RESETSTAT`
//! before each run) and round trips per operation (read events the server processed,
//! `total_reads_processed`). Single-element workloads run with 1, 2, 4 and 8 threads sharing
//! one pool. Bulk workloads are held against `redis-benchmark -P 64` running the same command.
//! The output is Markdown, ready for `benches/RESULTS.md`.

use std::collections::BTreeMap;
use std::process::Command;

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "common/near.rs"]
mod near;

use common::{Env, Measured, Peer, Result, Side, Size, Stats, Workload, fmt_count};

struct Args {
    quick: bool,
    python: bool,
    ops: u64,
    bulk_calls: u64,
    rounds: usize,
    threads: Vec<usize>,
    sides: Vec<Side>,
    redis_benchmark: bool,
    filters: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut quick = std::env::var("COMPARE_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut a = Args {
        quick: false,
        python: false,
        ops: 0,
        bulk_calls: 0,
        rounds: 0,
        threads: vec![1, 2, 4, 8],
        sides: vec![Side::Crate, Side::Raw],
        redis_benchmark: true,
        filters: Vec::new(),
    };
    let (mut ops, mut rounds, mut bulk_calls) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--python" => a.python = true,
            "--no-redis-benchmark" => a.redis_benchmark = false,
            "--ops" => ops = Some(value()?.parse()?),
            "--rounds" => rounds = Some(value()?.parse()?),
            "--bulk-calls" => bulk_calls = Some(value()?.parse()?),
            "--threads" => {
                a.threads = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?
            }
            "--side" => {
                a.sides = match value()?.as_str() {
                    "crate" => vec![Side::Crate],
                    "raw" => vec![Side::Raw],
                    other => return Err(format!("--side crate|raw, not {other}").into()),
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: compare [--quick] [--python] [--ops N] [--bulk-calls N] [--rounds N] [--threads 1,2,4,8] \
                     [--side crate|raw] [--no-redis-benchmark] [NAME-FILTER...]"
                );
                std::process::exit(0);
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}").into()),
            s => a.filters.push(s.to_string()),
        }
    }
    a.quick = quick;
    a.ops = ops.unwrap_or(if quick { 2_000 } else { 5_000 });
    a.rounds = rounds.unwrap_or(if quick { 1 } else { 7 });
    a.bulk_calls = bulk_calls.unwrap_or(if quick { 1 } else { 3 });
    Ok(a)
}

/// The fastest run of one side, with the counters summed over all its runs.
struct Summary {
    per_second: f64,
    calls: u64,
    stats: Stats,
}

impl Summary {
    fn of(runs: &[Measured]) -> Option<Summary> {
        // The fastest run: other processes on the machine can only slow a run down, so the
        // best of several is the steadiest estimate of what the code itself costs.
        let per_second = runs
            .iter()
            .map(Measured::per_second)
            .max_by(f64::total_cmp)?;
        let mut stats = Stats::default();
        for r in runs {
            for (name, n) in &r.stats.commands {
                *stats.commands.entry(name.clone()).or_default() += n;
            }
            stats.reads += r.stats.reads;
        }
        Some(Summary {
            per_second,
            calls: runs.iter().map(|r| r.calls).sum(),
            stats,
        })
    }

    fn commands(&self) -> String {
        self.stats.per_call(self.calls)
    }

    fn round_trips(&self) -> String {
        fmt_count(self.stats.reads as f64 / self.calls.max(1) as f64)
    }
}

struct Row {
    threads: usize,
    ours: Option<Summary>,
    raw: Option<Summary>,
    /// crate time / raw time, of each side's fastest run.
    ratio: Option<f64>,
}

impl Row {
    /// crate time / raw time.
    fn ratio(&self) -> Option<f64> {
        self.ratio
    }
}

fn measure(env: &Env, a: &Args, w: &Workload, calls: u64, threads: usize) -> Result<Row> {
    let mut runs: BTreeMap<&str, Vec<Measured>> = BTreeMap::new();
    for round in 0..a.rounds {
        // Alternate which side goes first, so a drift in the machine's load hits both.
        let mut sides = a.sides.clone();
        if round % 2 == 1 {
            sides.reverse();
        }
        for side in sides {
            let m = env.run(w, side, calls, threads)?;
            runs.entry(side.name()).or_default().push(m);
        }
    }
    let ours = runs.get("crate").and_then(|r| Summary::of(r));
    let raw = runs.get("raw").and_then(|r| Summary::of(r));
    let ratio = ours
        .as_ref()
        .zip(raw.as_ref())
        .map(|(o, r)| r.per_second / o.per_second);
    Ok(Row {
        threads,
        ours,
        raw,
        ratio,
    })
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".to_string())
}

fn rate(v: f64) -> String {
    // 12345.6 -> "12,346"
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_single(w: &Workload, rows: &[Row], ops: u64, rounds: usize) {
    println!("\n### {}\n", w.name);
    println!("{ops} calls per run, best of {rounds} runs per side (interleaved).\n");
    println!(
        "| threads | crate/raw time | crate ops/s | raw ops/s | crate commands/op | raw commands/op | crate round trips/op | raw round trips/op |"
    );
    println!("|---:|---:|---:|---:|---|---|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.threads,
            opt(r.ratio().map(|x| format!("{x:.2}"))),
            opt(r.ours.as_ref().map(|s| rate(s.per_second))),
            opt(r.raw.as_ref().map(|s| rate(s.per_second))),
            opt(r.ours.as_ref().map(Summary::commands)),
            opt(r.raw.as_ref().map(Summary::commands)),
            opt(r.ours.as_ref().map(Summary::round_trips)),
            opt(r.raw.as_ref().map(Summary::round_trips)),
        );
    }
}

fn print_bulk(w: &Workload, row: &Row, a: &Args, entries: u64, peer: Option<(Peer, f64)>) {
    println!("\n### {}\n", w.name);
    println!(
        "{entries} entries per call, {} calls per run, best of {} runs per side (interleaved).\n",
        a.bulk_calls, a.rounds
    );
    println!(
        "| crate/raw time | crate entries/s | raw entries/s | crate vs redis-benchmark -P 64 | crate commands/call | raw commands/call |"
    );
    println!("|---:|---:|---:|---:|---|---|");
    let per_entry = |s: &Summary| s.per_second * entries as f64;
    println!(
        "| {} | {} | {} | {} | {} | {} |",
        opt(row.ratio().map(|x| format!("{x:.2}"))),
        opt(row.ours.as_ref().map(|s| rate(per_entry(s)))),
        opt(row.raw.as_ref().map(|s| rate(per_entry(s)))),
        opt(row.ours.as_ref().zip(peer).map(|(s, (p, rps))| format!(
            "{:.0}% of {}",
            100.0 * per_entry(s) / rps,
            peer_name(p)
        ))),
        opt(row.ours.as_ref().map(Summary::commands)),
        opt(row.raw.as_ref().map(Summary::commands)),
    );
}

/// One line per workload: the README's table.
fn print_summary(singles: &[(&Workload, Vec<Row>)], bulks: &[Bulk]) {
    let ratio = |r: Option<&Row>| opt(r.and_then(Row::ratio).map(|x| format!("{x:.2}")));
    let speed = |s: Option<&Summary>| opt(s.map(|s| rate(s.per_second)));
    if !singles.is_empty() {
        println!("\n### Summary: single-element operations\n");
        println!(
            "| operation | crate/raw time, 1 thread | crate/raw time, 4 threads | crate ops/s, 1 thread | raw ops/s, 1 thread | crate ops/s, 4 threads | commands/op | round trips/op |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|---:|");
        for (w, rows) in singles {
            let at = |t: usize| rows.iter().find(|r| r.threads == t);
            let one = at(1);
            let ours = one.and_then(|r| r.ours.as_ref());
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                ratio(one),
                ratio(at(4)),
                speed(ours),
                speed(one.and_then(|r| r.raw.as_ref())),
                speed(at(4).and_then(|r| r.ours.as_ref())),
                opt(ours.map(Summary::commands)),
                opt(ours.map(Summary::round_trips)),
            );
        }
    }
    if !bulks.is_empty() {
        println!("\n### Summary: bulk operations, 100,000 entries a call\n");
        println!(
            "| operation | crate/raw time | crate entries/s | raw entries/s | crate vs redis-benchmark -P 64 | commands/call |"
        );
        println!("|---|---:|---:|---:|---:|---|");
        for b in bulks {
            let per_entry =
                |s: Option<&Summary>| opt(s.map(|s| rate(s.per_second * b.entries as f64)));
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                b.workload.name,
                ratio(Some(&b.row)),
                per_entry(b.row.ours.as_ref()),
                per_entry(b.row.raw.as_ref()),
                opt(b.row.ours.as_ref().zip(b.peer).map(|(s, (p, rps))| format!(
                    "{:.0}% of {}",
                    100.0 * s.per_second * b.entries as f64 / rps,
                    peer_name(p)
                ))),
                opt(b.row.ours.as_ref().map(Summary::commands)),
            );
        }
    }
}

fn peer_name(p: Peer) -> &'static str {
    match p {
        Peer::Hset => "HSET",
        Peer::Hscan => "HSCAN",
        Peer::Sadd => "SADD",
        Peer::Zadd => "ZADD",
    }
}

/// `redis-benchmark --csv` against the server: requests per second, or None when the tool is
/// not installed.
fn redis_benchmark(env: &Env, args: &[&str]) -> Result<Option<f64>> {
    let out = match Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &env.server.port().to_string(),
            "--csv",
        ])
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(_) => return Ok(None),
    };
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    // "test","rps",...\n"HSET ...","123456.78",...
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .nth(1)
        .and_then(|l| l.split("\",\"").nth(1))
        .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
        .ok_or_else(|| format!("cannot read redis-benchmark's output: {text}"))?;
    Ok(Some(rps))
}

/// Entries per second of `redis-benchmark -P 64` for each peer command, plus unpipelined GET
/// with 1 and 4 clients for reference. Missing tool: empty.
fn redis_benchmarks(env: &Env, a: &Args) -> Result<Baselines> {
    let mut peers = BTreeMap::new();
    let mut lines = Vec::new();
    let n = if a.quick { 200_000 } else { 1_000_000 };
    let n_s = n.to_string();
    let value = common::workloads::VALUE.replace(' ', "_");
    env.flush()?;
    let simple: [(Peer, Vec<&str>); 3] = [
        (
            Peer::Hset,
            vec!["HSET", "rb:hash", "field:__rand_int__", &value],
        ),
        (Peer::Sadd, vec!["SADD", "rb:set", "member:__rand_int__"]),
        (
            Peer::Zadd,
            vec!["ZADD", "rb:zset", "__rand_int__", "member:__rand_int__"],
        ),
    ];
    for (peer, cmd) in simple {
        let mut args = vec!["-P", "64", "-n", &n_s, "-r", "100000"];
        args.extend(&cmd);
        let Some(rps) = redis_benchmark(env, &args)? else {
            return Ok(Baselines {
                peers,
                lines,
                get_scaling: None,
            });
        };
        peers.insert(peer, rps);
        lines.push((format!("`{}` -P 64, 50 clients", cmd.join(" ")), rps));
    }
    // HSCAN over a 100,000-field hash, in replies of ~1000 entries.
    let mut conn = env.pool.get()?;
    for batch in 0..100u64 {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("rb:scan");
        for i in 0..1000 {
            cmd.arg(format!("field:{}", batch * 1000 + i)).arg(&value);
        }
        cmd.exec(&mut *conn)?;
    }
    let (_, fields): (String, Vec<Vec<u8>>) = redis::cmd("HSCAN")
        .arg("rb:scan")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .query(&mut *conn)?;
    let per_reply = (fields.len() / 2) as f64;
    let scans = if a.quick { "500" } else { "3000" };
    let args = [
        "-P", "64", "-n", scans, "HSCAN", "rb:scan", "0", "COUNT", "1000",
    ];
    if let Some(rps) = redis_benchmark(env, &args)? {
        peers.insert(Peer::Hscan, rps * per_reply);
        lines.push((
            format!("`HSCAN rb:scan 0 COUNT 1000` -P 64, 50 clients ({per_reply} entries per reply), entries/s"),
            rps * per_reply,
        ));
    }
    let unpipelined = (n / 10).to_string();
    let mut get = Vec::new();
    for clients in ["1", "4"] {
        let args = ["-c", clients, "-n", &unpipelined, "-t", "get"];
        if let Some(rps) = redis_benchmark(env, &args)? {
            lines.push((format!("`GET`, {clients} client(s), no pipelining"), rps));
            get.push(rps);
        }
    }
    env.flush()?;
    let get_scaling = match get[..] {
        [c1, c4] => Some(c4 / c1),
        _ => None,
    };
    Ok(Baselines {
        peers,
        lines,
        get_scaling,
    })
}

/// What `redis-benchmark` measured: entries/s per peer command, and every line to print.
#[derive(Default)]
struct Baselines {
    peers: BTreeMap<Peer, f64>,
    lines: Vec<(String, f64)>,
    /// `redis-benchmark -c 4` / `-c 1` for unpipelined GET: what 4 clients can gain here.
    get_scaling: Option<f64>,
}

/// A bulk workload's row and the redis-benchmark figure it is held against.
struct Bulk<'a> {
    workload: &'a Workload,
    row: Row,
    entries: u64,
    peer: Option<(Peer, f64)>,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<()> {
    let a = parse_args()?;
    let env = Env::start()?;
    let all = common::workloads::all();
    // A filter equal to a workload's name picks that one only; otherwise it matches names that
    // contain it ("SetCache::extend" is also inside "SortedSetCache::extend").
    let picks = |f: &str, w: &Workload| {
        if all.iter().any(|w| w.name == f) {
            w.name == f
        } else {
            w.name.contains(f)
        }
    };
    let chosen: Vec<&Workload> = all
        .iter()
        .filter(|w| a.filters.is_empty() || a.filters.iter().any(|f| picks(f, w)))
        .collect();

    println!("## Comparison run\n");
    println!(
        "- date: {}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    println!(
        "- server: {} ({})",
        env.server.version(),
        env.server.binary().display()
    );
    println!(
        "- machine: {} cores ({}), load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output("uname", &["-sm"]),
        loadavg()
    );
    println!(
        "- settings: {} calls per single-element run, {} runs per side, interleaved (the fastest shown){}",
        a.ops,
        a.rounds,
        if a.quick { ", --quick" } else { "" }
    );

    let baselines = if a.redis_benchmark {
        redis_benchmarks(&env, &a)?
    } else {
        Baselines::default()
    };

    let mut singles: Vec<(&Workload, Vec<Row>)> = Vec::new();
    let mut bulks: Vec<Bulk> = Vec::new();
    for w in &chosen {
        match w.size {
            Size::Single => {
                let rows = a
                    .threads
                    .iter()
                    .map(|&t| measure(&env, &a, w, a.ops, t))
                    .collect::<Result<Vec<_>>>()?;
                print_single(w, &rows, a.ops, a.rounds);
                singles.push((w, rows));
            }
            Size::Bulk { entries, peer } => {
                let row = measure(&env, &a, w, a.bulk_calls, 1)?;
                let peer = baselines.peers.get(&peer).map(|&rps| (peer, rps));
                print_bulk(w, &row, &a, entries, peer);
                bulks.push(Bulk {
                    workload: w,
                    row,
                    entries,
                    peer,
                });
            }
        }
    }

    if !baselines.lines.is_empty() {
        println!("\n### redis-benchmark on the same server\n");
        println!("| command | requests/s |");
        println!("|---|---:|");
        for (what, rps) in &baselines.lines {
            println!("| {what} | {} |", rate(*rps));
        }
    }

    print_summary(&singles, &bulks);

    // The near-cache section: hits against round trips, thread scaling, a Zipf workload.
    if a.filters.is_empty() || a.filters.iter().any(|f| "NearCache".contains(f.as_str())) {
        near::run(&env.server.url(), a.quick)?;
    }

    println!("\n### Targets\n");
    let one = |rows: &[Row], t: usize| rows.iter().find(|r| r.threads == t).and_then(Row::ratio);
    let worst = singles
        .iter()
        .filter_map(|(w, rows)| Some((w.name, one(rows, 1)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, ratio)) = worst {
        println!(
            "- single-element crate/raw time at most 1.10 (1 thread): worst {ratio:.2} ({name}): {}",
            if ratio <= 1.10 { "met" } else { "MISSED" }
        );
        for (w, rows) in &singles {
            let ratios: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{}t {}",
                        r.threads,
                        opt(r.ratio().map(|x| format!("{x:.2}")))
                    )
                })
                .collect();
            println!("  - {}: {}", w.name, ratios.join(", "));
        }
    }
    if let Some(x) = baselines.get_scaling {
        println!("- for scale: redis-benchmark GET with 4 clients does {x:.2}x 1 client here");
    }
    for (w, rows) in &singles {
        let speed = |t, raw: bool| {
            rows.iter()
                .find(|r| r.threads == t)
                .and_then(|r| if raw { r.raw.as_ref() } else { r.ours.as_ref() })
                .map(|s| s.per_second)
        };
        if let (Some(s1), Some(s4)) = (speed(1, false), speed(4, false)) {
            let x = s4 / s1;
            let raw = speed(1, true)
                .zip(speed(4, true))
                .map(|(r1, r4)| format!(" (raw: {:.2}x)", r4 / r1));
            println!(
                "- {}: 4 threads {x:.2}x 1 thread{} (target at least 2x): {}",
                w.name,
                raw.unwrap_or_default(),
                if x >= 2.0 { "met" } else { "MISSED" }
            );
        }
    }
    for b in &bulks {
        let w = b.workload;
        if let (Some(s), Some((p, rps))) = (&b.row.ours, b.peer) {
            let share = s.per_second * b.entries as f64 / rps;
            println!(
                "- {}: {:.0}% of redis-benchmark -P 64 {} (target at least 30%): {}",
                w.name,
                100.0 * share,
                peer_name(p),
                if share >= 0.30 { "met" } else { "MISSED" }
            );
        }
    }
    for (w, rows) in singles.iter().filter(|(w, _)| w.name.contains("fresh hit")) {
        if let Some(s) = rows
            .iter()
            .find(|r| r.threads == 1)
            .and_then(|r| r.ours.as_ref())
        {
            let trips = s.stats.reads as f64 / s.calls.max(1) as f64;
            println!(
                "- {}: {} round trips per call (target 1): {}",
                w.name,
                fmt_count(trips),
                if trips < 1.05 { "met" } else { "MISSED" }
            );
        }
    }
    println!("\nload average at the end: {}", loadavg());

    if a.python {
        let mut ours: Vec<(&str, Option<f64>, Option<f64>)> = Vec::new();
        for (w, rows) in &singles {
            let row = rows.iter().find(|r| r.threads == 1);
            let speed = |s: Option<&Summary>| s.map(|s| s.per_second);
            ours.push((
                w.name,
                speed(row.and_then(|r| r.ours.as_ref())),
                speed(row.and_then(|r| r.raw.as_ref())),
            ));
        }
        for b in &bulks {
            let speed = |s: Option<&Summary>| s.map(|s| s.per_second * b.entries as f64);
            ours.push((
                b.workload.name,
                speed(b.row.ours.as_ref()),
                speed(b.row.raw.as_ref()),
            ));
        }
        python_peers(&env, &a, &ours)?;
    }
    Ok(())
}

/// Runs `benches/python_peers.py` against the same server (its venv goes in the target dir),
/// then prints the crate's one-thread figures beside the peers'.
fn python_peers(env: &Env, a: &Args, ours: &[(&str, Option<f64>, Option<f64>)]) -> Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_peers.py");
    let target = std::env::current_exe()?
        .ancestors()
        .nth(3)
        .map(|p| p.to_path_buf())
        .ok_or("cannot find the target directory")?;
    let tsv = target.join(format!("python-peers-{}.tsv", std::process::id()));
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg("--tsv")
        .arg(&tsv)
        .args(["--rounds", &a.rounds.min(3).to_string()])
        .args(&a.filters)
        .args(["--port", &env.server.port().to_string()])
        .arg("--venv")
        .arg(target.join("python-peers-venv"))
        .args(["--ops", &a.ops.to_string()]);
    if a.quick {
        cmd.arg("--quick");
    }
    env.flush()?;
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("{script} failed: {status}").into());
    }
    let text = std::fs::read_to_string(&tsv)?;
    let _ = std::fs::remove_file(&tsv);
    // workload -> library -> ops/s
    let mut peers: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        if let (Some(name), Some(lib), Some(speed)) = (f.next(), f.next(), f.next()) {
            peers.entry(name).or_default().insert(lib, speed.parse()?);
        }
    }
    println!("\n## Beside the Python peers (one thread, ops/s; entries/s for bulk)\n");
    println!("| workload | this crate | raw redis-rs | caches | pottery |");
    println!("|---|---:|---:|---:|---:|");
    for (name, crate_speed, raw_speed) in ours {
        let peer = |lib: &str| opt(peers.get(name).and_then(|m| m.get(lib)).map(|v| rate(*v)));
        println!(
            "| {name} | {} | {} | {} | {} |",
            opt(crate_speed.map(rate)),
            opt(raw_speed.map(rate)),
            peer("caches"),
            peer("pottery")
        );
    }
    Ok(())
}
