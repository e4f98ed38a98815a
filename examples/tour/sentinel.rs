//! SentinelCache: a set-once gate for batch jobs.

use std::error::Error;
use std::time::Duration;

use redis_caches::SentinelCache;

pub fn run() -> Result<(), Box<dyn Error>> {
    // Every worker runs this; only the first claim of the day's gate does the work.
    let gate = SentinelCache::builder(["tour", "jobs", "invoices", "2024-05-01"])
        .ttl(Duration::from_secs(60))
        .build();
    gate.clear()?; // start from an open gate, whatever an earlier run left
    for worker in ["worker-a", "worker-b"] {
        if gate.claim()? {
            println!("{worker}: claimed the gate, sending invoices");
        } else {
            println!("{worker}: gate already claimed, skipping");
        }
    }
    println!("gate set: {}, ttl: {:?}", gate.exists()?, gate.ttl()?);

    gate.clear()?;
    println!("after reset, claim() = {}", gate.claim()?);

    gate.clear()?;
    Ok(())
}
