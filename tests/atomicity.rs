//! All or nothing: every multi-command operation of the crate is applied whole or not at all,
//! whether other clients look at the data while it runs, or the server is killed in the
//! middle of it (checked from a fresh connection after a restart with persistence on).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use redis_caches::DictCache;
use support::RedisServer;

/// `DictCache::extend` sends 4,096 entries per round trip.
const EXTEND_ROUND_TRIP: usize = 4096;

#[test]
fn each_extend_round_trip_is_atomic_for_concurrent_readers() {
    let server = RedisServer::start();
    let conn = server.connection();
    let dict: DictCache<u32, String> = DictCache::builder("extend-atomic")
        .connection(&conn)
        .build();
    // Values large enough that one round trip spans many socket reads on the server, which
    // would let a reader in between the HSETs of a round trip that is not one transaction.
    let value = "v".repeat(200);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut raw = server.raw();
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let n: usize = redis::cmd("HLEN")
                    .arg("extend-atomic")
                    .query(&mut raw)
                    .unwrap();
                seen.insert(n);
            }
            seen
        })
    };
    for _ in 0..20 {
        dict.extend((0..3 * EXTEND_ROUND_TRIP as u32).map(|i| (i, value.clone())))
            .unwrap();
        assert!(dict.clear().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let torn: Vec<usize> = seen
        .iter()
        .copied()
        .filter(|n| n % EXTEND_ROUND_TRIP != 0)
        .collect();
    assert!(
        torn.is_empty(),
        "a reader saw part of a round trip: {torn:?}"
    );
}
