//! RedisCache: one typed value, and atomic counters.

use std::error::Error;
use std::time::Duration;

use redis_caches::{RedisCache, codec::Raw};

pub fn run() -> Result<(), Box<dyn Error>> {
    let motd: RedisCache<String> = RedisCache::new(["tour", "motd"]);
    motd.set("hello from redis-caches")?;
    println!("motd = {:?}", motd.get()?);
    println!("handle: {motd:?}");

    let visits = RedisCache::<u64>::builder(["tour", "visits"])
        .codec(Raw)
        .ttl(Duration::from_secs(60))
        .build();
    visits.clear()?;
    visits.incr(1)?;
    println!("visits after incr(1), incr(41): {}", visits.incr(41)?);
    println!("visits ttl: {:?}", visits.ttl()?);

    let answer: RedisCache<u32> = RedisCache::new(["tour", "answer"]);
    answer.clear()?;
    println!("computed once: {}", answer.get_or_insert_with(|| 42)?);
    println!(
        "then read back: {}",
        answer.get_or_insert_with(|| unreachable!())?
    );

    motd.clear()?;
    visits.clear()?;
    answer.clear()?;
    Ok(())
}
