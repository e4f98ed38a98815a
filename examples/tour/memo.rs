//! Memo: memoized functions with stale-while-revalidate and statistics in Redis.

use std::error::Error;
use std::time::{Duration, Instant};

use redis_caches::memo::Memo;

pub fn run() -> Result<(), Box<dyn Error>> {
    let square = Memo::builder("tour-square", |x: u64| {
        std::thread::sleep(Duration::from_millis(100)); // a slow computation
        x * x
    })
    .ttl(Duration::from_secs(60))
    .refresh(Duration::from_secs(10))
    .build();
    square.clear()?;
    square.reset_stats()?;

    let t = Instant::now();
    println!(
        "square(12) = {} (computed, {:?})",
        square.call(12)?,
        t.elapsed()
    );
    let t = Instant::now();
    println!(
        "square(12) = {} (cached, {:?})",
        square.call(12)?,
        t.elapsed()
    );
    println!("bypassing the cache: {}", square.call_uncached(3)?);
    square.forget(12)?;
    println!("after forget: {}", square.call(12)?);
    let s = square.stats()?;
    println!(
        "hits {}, misses {}, refreshes {}",
        s.hits, s.misses, s.refreshes
    );
    println!("handle: {square:?}");

    square.clear()?;
    square.reset_stats()?;
    Ok(())
}
