//! The near-cache workloads of `examples/compare.rs`: a hit against a raw redis-rs `GET`
//! round trip, hits on 1, 2 and 4 threads, a Zipf workload (hit ratio and memory per copy),
//! and what `BCAST` tracking would cost the server instead.

use std::time::{Duration, Instant};

use redis_caches::{Connection, NearCache, RedisCache};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A small deterministic generator (xorshift64*): the same sequence in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn with probability proportional to `1 / rank^s` over `n` ranks (inverse CDF).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn ns(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// Prints the near-cache section (Markdown).
pub fn run(url: &str, quick: bool) -> Result<()> {
    let conn = Connection::open("near-bench", url)?;
    let mut raw = redis::Client::open(url)?.get_connection()?;
    println!("\n## Near cache\n");

    // A hit against a raw GET round trip.
    let near = NearCache::with_capacity(1_000);
    let cache: RedisCache<String> = RedisCache::builder("near.bench.hit")
        .connection(&conn)
        .near_cache(near.clone())
        .build();
    cache.set(&"x".repeat(64))?;
    cache.get()?;
    // The fastest of several short runs, interleaved: other processes on the machine can only
    // slow a run down, and a hit (all CPU) suffers more from sharing a core than a round trip
    // (mostly waiting).
    let raw_n: u64 = if quick { 2_000 } else { 5_000 };
    let mut best_raw = f64::MAX;
    let mut best_hit = f64::MAX;
    let hits_n: u64 = if quick { 100_000 } else { 500_000 };
    for _ in 0..if quick { 5 } else { 15 } {
        let t = Instant::now();
        for _ in 0..raw_n {
            let _: Option<Vec<u8>> = redis::cmd("GET").arg("near.bench.hit").query(&mut raw)?;
        }
        best_raw = best_raw.min(ns(t.elapsed(), raw_n));
        let t = Instant::now();
        for _ in 0..hits_n {
            std::hint::black_box(cache.get()?);
        }
        best_hit = best_hit.min(ns(t.elapsed(), hits_n));
    }
    println!("| read | time per read | reads/s |");
    println!("|---|---:|---:|");
    println!(
        "| raw redis-rs `GET` round trip | {:.0} ns | {:.0} |",
        best_raw,
        1e9 / best_raw
    );
    println!(
        "| `RedisCache::get`, near-cache hit (64-byte string) | {:.0} ns | {:.0} |",
        best_hit,
        1e9 / best_hit
    );
    // A miss: the copy is dropped before each read, which then goes to Redis through the
    // tracking connection (PTTL and GET, one round trip) and keeps a copy.
    let miss_n = raw_n / 2;
    let mut best_miss = f64::MAX;
    let mut best_plain = f64::MAX;
    let plain: RedisCache<String> = RedisCache::builder("near.bench.hit")
        .connection(&conn)
        .build();
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..miss_n {
            near.clear();
            std::hint::black_box(cache.get()?);
        }
        best_miss = best_miss.min(ns(t.elapsed(), miss_n));
        let t = Instant::now();
        for _ in 0..miss_n {
            std::hint::black_box(plain.get()?);
        }
        best_plain = best_plain.min(ns(t.elapsed(), miss_n));
    }
    println!(
        "| `RedisCache::get` without a near cache (pool) | {:.0} ns | {:.0} |",
        best_plain,
        1e9 / best_plain
    );
    println!(
        "| `RedisCache::get`, near-cache miss (tracking connection, PTTL + GET) | {:.0} ns | {:.0} |",
        best_miss,
        1e9 / best_miss
    );
    let speedup = best_raw / best_hit;
    println!(
        "\n- a hit is {speedup:.0}x faster than a raw GET round trip (target at least 100x): {}",
        if speedup >= 100.0 { "met" } else { "MISSED" }
    );

    // Hits on several threads, one shared near cache, 1,024 hot keys.
    let near = NearCache::with_capacity(10_000);
    let hot: Vec<RedisCache<String>> = (0..1024)
        .map(|i| {
            RedisCache::builder(["near", "bench", "hot", &i.to_string()])
                .connection(&conn)
                .near_cache(near.clone())
                .build()
        })
        .collect();
    for h in &hot {
        h.set(&"x".repeat(64))?;
        h.get()?;
    }
    println!(
        "\n1,024 hot keys read in turn by every thread (each from its own offset), one shared near cache.\n"
    );
    println!("| threads | hits/s (all threads) | x 1 thread |");
    println!("|---:|---:|---:|");
    let mut one = 0.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut four = 0.0;
    for threads in [1usize, 2, 4] {
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            let t = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let hot = &hot;
                    s.spawn(move || {
                        for i in 0..hits_n as usize / 2 {
                            let h = &hot[(i + t * 257) % hot.len()];
                            std::hint::black_box(h.get().ok());
                        }
                    });
                }
            });
            best = best.max((threads as u64 * hits_n / 2) as f64 / t.elapsed().as_secs_f64());
        }
        if threads == 1 {
            one = best;
        }
        if threads == 4 {
            four = best;
        }
        println!("| {threads} | {best:.0} | {:.2} |", best / one);
    }
    let scaling = four / one;
    println!(
        "\n- 4 threads {scaling:.2}x 1 thread (target at least 3x) on {cores} cores: {}",
        if scaling >= 3.0 {
            "met".to_string()
        } else if cores < 4 {
            format!("MISSED: this machine has {cores} cores, so at most {cores}x is possible")
        } else {
            "MISSED".to_string()
        }
    );
    let stats = near.stats();
    println!("- near-cache statistics: {stats:?}");

    zipf(&conn, &mut raw, quick)?;
    bcast_cost(url, quick)
}

/// Zipf-distributed reads over 100,000 keys with 1% writes: hit ratio, throughput against
/// raw GETs, and memory per copy.
fn zipf(conn: &Connection, raw: &mut redis::Connection, quick: bool) -> Result<()> {
    const KEYS: usize = 100_000;
    let ops: usize = if quick { 100_000 } else { 1_000_000 };
    let value = "v".repeat(100);
    // Encoded as the crate's default codec would (postcard: a length, then the bytes).
    let handle = |near: Option<&NearCache>, i: usize| {
        let b = RedisCache::<String>::builder(["near", "zipf", &i.to_string()]).connection(conn);
        match near {
            Some(n) => b.near_cache(n.clone()).build(),
            None => b.build(),
        }
    };
    {
        let plain: Vec<RedisCache<String>> = (0..KEYS).map(|i| handle(None, i)).collect();
        for h in &plain {
            h.set(&value)?;
        }
    }
    let zipf = Zipf::new(KEYS, 1.0);
    println!("\n### Zipf reads (s = 1.0) over 100,000 keys, 1% writes, one thread\n");
    println!(
        "{ops} operations; values are 100-byte strings; keys `near.zipf.<n>`; writes through the crate (`set`).\n"
    );
    println!(
        "| near cache capacity | hit ratio | ops/s | raw GET/SET ops/s | copies held | memory per copy (`NearCacheStats::memory`) | memory per copy (process RSS) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let raw_speed = {
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET")
                .arg(format!("near.zipfraw.{i}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(raw)?;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let n = ops.min(100_000);
        let t = Instant::now();
        for _ in 0..n {
            let k = format!("near.zipfraw.{}", zipf.sample(&mut rng));
            if rng.next().is_multiple_of(100) {
                let _: () = redis::cmd("SET").arg(&k).arg(&value).query(raw)?;
            } else {
                let _: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query(raw)?;
            }
        }
        n as f64 / t.elapsed().as_secs_f64()
    };
    for capacity in [1_000u64, 10_000, 100_000] {
        let near = NearCache::with_capacity(capacity);
        let handles: Vec<RedisCache<String>> = (0..KEYS).map(|i| handle(Some(&near), i)).collect();
        for h in &handles {
            // Resolves the handle (its key, its connection) without I/O: a TTL of zero is
            // refused before anything is sent. So the memory measured below is the copies'.
            let _ = h.expire(Duration::ZERO);
        }
        let rss_before = rss_bytes();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let t = Instant::now();
        for _ in 0..ops {
            let h = &handles[zipf.sample(&mut rng)];
            if rng.next().is_multiple_of(100) {
                h.set(&value)?;
            } else {
                std::hint::black_box(h.get()?);
            }
        }
        let speed = ops as f64 / t.elapsed().as_secs_f64();
        let s = near.stats();
        let rss_after = rss_bytes();
        let ratio = s.hits as f64 / (s.hits + s.misses).max(1) as f64;
        let own = s.memory as f64 / s.entries.max(1) as f64;
        let rss = rss_after.saturating_sub(rss_before) as f64 / s.entries.max(1) as f64;
        println!(
            "| {capacity} | {:.1}% | {speed:.0} | {raw_speed:.0} | {} | {own:.0} B | {rss:.0} B |",
            100.0 * ratio,
            s.entries
        );
    }
    Ok(())
}

/// What the alternative, `BCAST` tracking by key prefix, costs the server: a writer's
/// throughput with N clients subscribed to broadcast prefixes that never match its keys.
fn bcast_cost(url: &str, quick: bool) -> Result<()> {
    let n: u64 = if quick { 10_000 } else { 50_000 };
    println!("\n### The cost of BCAST tracking on the server\n");
    println!(
        "`SET` throughput of one client while other clients have `CLIENT TRACKING ON BCAST` with \
         N prefixes each that none of its keys match (Redis checks every registered prefix on \
         every write), against default-mode tracking (what the crate uses), whose cost is per \
         key read.\n"
    );
    println!("| tracking clients x prefixes | SET/s |");
    println!("|---|---:|");
    for (clients, prefixes) in [(0usize, 0usize), (4, 10), (4, 1_000), (16, 1_000)] {
        let mut trackers = Vec::new();
        for c in 0..clients {
            let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
            let mut con = client.get_connection()?;
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("TRACKING").arg("ON").arg("BCAST");
            for p in 0..prefixes {
                cmd.arg("PREFIX").arg(format!("other{c}:{p}:"));
            }
            let _: () = cmd.query(&mut con)?;
            trackers.push(con);
        }
        let mut writer = redis::Client::open(url)?.get_connection()?;
        let t = Instant::now();
        let mut done = 0u64;
        // At most `n` writes or 3 seconds, whichever comes first: the slow rows are very slow.
        while done < n && t.elapsed() < Duration::from_secs(3) {
            let _: () = redis::cmd("SET")
                .arg(format!("bcast.bench.{}", done % 1000))
                .arg(done)
                .query(&mut writer)?;
            done += 1;
        }
        let speed = done as f64 / t.elapsed().as_secs_f64();
        println!("| {clients} x {prefixes} | {speed:.0} |");
    }
    Ok(())
}
