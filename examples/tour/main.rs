//! A tour of redis-caches.
//!
//! Run it with `cargo run --example tour`. It uses `CACHES_DSN` when that is set; otherwise it
//! starts a throwaway `redis-server` on a free loopback port and stops it at the end, so it
//! runs on a fresh machine with nothing configured.
//!
//! Each topic lives in its own file next to this one.

use std::error::Error;

#[path = "../common/server.rs"]
mod server;

mod cache;
mod dict;
mod memo;
mod regions;
mod sentinel;
mod sets;

fn main() -> Result<(), Box<dyn Error>> {
    let _server = server::ensure_default_connection()?;

    section("RedisCache: one typed value");
    cache::run()?;

    section("DictCache: a typed map in a Redis hash");
    dict::run()?;

    section("SetCache and SortedSetCache: sets and a leaderboard");
    sets::run()?;

    section("SentinelCache: a set-once gate for batch jobs");
    sentinel::run()?;

    section("Memo: memoized functions");
    memo::run()?;

    section("Region: nested namespaces, invalidated from the top");
    regions::run()?;

    section("done");
    println!("the tour cleaned up after itself");
    Ok(())
}

/// Prints the heading of one part of the tour.
pub fn section(title: &str) {
    println!("\n== {title} ==");
}
