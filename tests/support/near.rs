//! Helpers of the near-cache tests (`tests/near_cache.rs`, `tests/near_cache_regions.rs`).

use std::time::{Duration, Instant};

use redis_caches::connection::TRACKING_CLIENT_NAME;
use redis_caches::{Connection, NearCache, Region};

use super::{RedisServer, eventually};

/// How soon another process' write must be seen (100 ms), with the 25% margin the project
/// allows time-bound tests on a shared machine.
pub const SEEN_WITHIN: Duration = Duration::from_millis(125);

/// A near cache of 10,000 entries.
pub fn near() -> NearCache {
    NearCache::with_capacity(10_000)
}

/// After `FLUSHALL`, `all_gone` holds within `SEEN_WITHIN`, and the near cache counted a flush.
pub fn assert_flushall_drops_every_copy(
    server: &RedisServer,
    near: &NearCache,
    mut all_gone: impl FnMut() -> bool,
) {
    let flushes = near.stats().flushes;
    let _: () = redis::cmd("FLUSHALL").query(&mut server.raw()).unwrap();
    assert!(
        eventually(SEEN_WITHIN, &mut all_gone),
        "copies survived FLUSHALL"
    );
    assert!(near.stats().flushes > flushes);
}

/// A server that expires keys only when a command touches them (`DEBUG SET-ACTIVE-EXPIRE 0`),
/// so that it sends no invalidation for an expired key nobody reads.
pub fn server_without_active_expiry() -> RedisServer {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut server.raw())
        .unwrap();
    server
}

/// Reads with `read` until 20 reads have started after `expires` (when the key is gone from
/// Redis at the latest): every one of those must miss, though the server (active expiry off)
/// has sent no invalidation, and the copy must have gone by itself: nothing had invalidated it
/// when it stopped being served (the read that found it gone made the server expire the key,
/// and invalidate it then). 2 ms more than `expires`: Redis keeps a key until its clock, in
/// whole milliseconds, has passed the expiry, and a read that misses asks it.
pub fn assert_the_copy_goes_at_the_ttl<T: PartialEq + std::fmt::Debug>(
    near: &NearCache,
    expires: Instant,
    mut read: impl FnMut() -> Option<T>,
) {
    let expired = expires + Duration::from_millis(2);
    let mut reads_after = 0;
    let mut invalidated_before_first_miss = None;
    while reads_after < 20 {
        let invalidations = near.stats().invalidations;
        let started = Instant::now();
        let value = read();
        if value.is_none() && invalidated_before_first_miss.is_none() {
            invalidated_before_first_miss = Some(invalidations);
        }
        if started >= expired {
            assert_eq!(
                value,
                None,
                "a read {:?} after the TTL returned the copy",
                started - expired
            );
            reads_after += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(invalidated_before_first_miss, Some(0));
}

/// A region of the tree `root`, on `conn`, reclaimed only on request (a reclamation thread
/// would send commands of its own), with `near` when given.
pub fn tree_region(root: &str, name: &str, conn: &Connection, near: Option<&NearCache>) -> Region {
    let b = Region::builder(name)
        .root(root)
        .connection(conn)
        .reclaim(redis_caches::region::Reclaim::Manual);
    match near {
        Some(near) => b.near_cache(near.clone()),
        None => b,
    }
    .build()
}

/// The client ids of the near cache's tracking connections on one server.
pub fn tracking_ids(raw: &mut redis::Connection) -> Vec<u64> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(raw)
        .unwrap_or_default();
    list.lines()
        .filter(|l| l.contains(&format!(" name={TRACKING_CLIENT_NAME} ")))
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Kills the near cache's tracking connections on one server; how many it killed.
pub fn kill_tracking(raw: &mut redis::Connection) -> usize {
    let ids = tracking_ids(raw);
    for id in &ids {
        let _: redis::RedisResult<()> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query(raw);
    }
    ids.len()
}
