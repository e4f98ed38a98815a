//! Memoized functions: a slow lookup cached in Redis, stale-while-revalidate, single flight
//! across threads, statistics, and a cached counter.
//!
//! Run it with `cargo run --example memoize`. It uses `CACHES_DSN` when that is set;
//! otherwise it starts a throwaway `redis-server` on a free loopback port.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis_caches::memo::Memo;

#[path = "common/server.rs"]
mod server;

/// A lookup that takes a while, as a database or an HTTP call would.
fn fetch_price(id: u64) -> f64 {
    std::thread::sleep(Duration::from_millis(200));
    id as f64 * 1.25
}

fn main() -> Result<(), Box<dyn Error>> {
    let _server = server::ensure_default_connection()?;

    // One statement declares the memoized function.
    let price = Memo::builder("example-price", fetch_price)
        .ttl(Duration::from_secs(10))
        .refresh(Duration::from_millis(300))
        .build();
    price.clear()?;
    price.reset_stats()?;

    let t = Instant::now();
    println!(
        "price(7) = {} (computed in {:?})",
        price.call(7)?,
        t.elapsed()
    );
    let t = Instant::now();
    println!(
        "price(7) = {} (from Redis in {:?})",
        price.call(7)?,
        t.elapsed()
    );

    // After `refresh` the value is stale: served at once, recomputed in the background.
    std::thread::sleep(Duration::from_millis(350));
    let t = Instant::now();
    println!(
        "price(7) = {} (stale, served in {:?})",
        price.call(7)?,
        t.elapsed()
    );

    // Sixteen threads missing the same key: the function runs once.
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let report = Memo::builder("example-report", move |day: u32| {
        r.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        format!("report for day {day}")
    })
    .ttl(Duration::from_secs(10))
    .build();
    report.clear()?;
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let report = report.clone();
            std::thread::spawn(move || report.call(1))
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a thread panicked")??;
    }
    println!(
        "16 threads, the report was computed {} time(s)",
        runs.load(Ordering::SeqCst)
    );

    // A cached counter, kept in step with the database instead of recounted.
    let likes = Memo::builder("example-likes", |_post: u64| 41i64)
        .ttl(Duration::from_secs(60))
        .build_counter();
    likes.forget(1)?;
    println!("likes(1) = {}", likes.call(1)?);
    println!("after a new like: {:?}", likes.incr(1, 1)?);

    println!("price stats: {:?}", price.stats()?);
    println!("report stats: {:?}", report.stats()?);

    price.clear()?;
    report.clear()?;
    likes.forget(1)?;
    for m in [
        price.reset_stats(),
        report.reset_stats(),
        likes.memo().reset_stats(),
    ] {
        m?;
    }
    Ok(())
}
