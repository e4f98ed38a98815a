//! Redis Sentinel, Sentinel-managed high availability: the crate's operations, pipelines,
//! transactions and scripts on the master a real group of three sentinels names (started by
//! the test), a frozen sentinel that must not hang new connections, and a failover after the
//! master is killed. (The `SentinelCache` gate is tested in `sentinel_cache.rs`.)

mod support;

use std::time::{Duration, Instant};

use redis_caches::{Connection, RedisCache, Ttl, codec::Raw};
use support::eventually;
use support::redis_sentinel::SentinelHarness;

/// How long a graceful failover may take to be usable (not a figure the docs promise).
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// How long after the master is killed operations must work again on the same handles: the
/// crate docs' figure ("Scale: Cluster and Sentinel"), `down-after-milliseconds` + 1.5 s,
/// plus the `timeout` of a call already waiting (500 ms here), plus 25%.
fn resume_after_kill() -> Duration {
    let documented = support::redis_sentinel::DOWN_AFTER
        + Duration::from_millis(1500)
        + Duration::from_millis(500);
    documented + documented / 4
}

fn query<T: redis::FromRedisValue>(
    conn: &Connection,
    f: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    let mut pooled = conn.get().expect("a pooled connection");
    f(&mut *pooled)
}

#[test]
fn operations_run_on_the_master_and_follow_a_failover() {
    let mut group = SentinelHarness::start();
    let conn = group.connection_with("timeout=500ms&pool_timeout=1s&connect_timeout=200ms");

    let kept: RedisCache<String> = RedisCache::builder("kept").connection(&conn).build();
    let hits: RedisCache<i64, Raw> = RedisCache::builder("hits")
        .connection(&conn)
        .codec(Raw)
        .ttl(Duration::from_secs(600))
        .build();
    kept.set("still here").unwrap();
    assert_eq!(hits.incr(10).unwrap(), 10);
    assert!(matches!(hits.ttl().unwrap(), Ttl::Expires(_)));
    let lazy: RedisCache<String> = RedisCache::builder("lazy").connection(&conn).build();
    assert_eq!(lazy.get_or_insert_with(|| "first".into()).unwrap(), "first");
    assert_eq!(
        lazy.get_or_insert_with(|| "second".into()).unwrap(),
        "first"
    );

    let (a, b): (i64, i64) = query(&conn, |c| {
        redis::pipe()
            .cmd("INCRBY")
            .arg("p.a")
            .arg(2)
            .cmd("INCRBY")
            .arg("p.b")
            .arg(3)
            .query(c)
    })
    .unwrap();
    assert_eq!((a, b), (2, 3));
    let script = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let n: i64 = query(&conn, |c| script.key("s.n").arg(4).invoke(c)).unwrap();
    assert_eq!(n, 4);

    // The writes went to the master the sentinels name.
    let on_master: Option<i64> = redis::cmd("GET")
        .arg("hits")
        .query(&mut group.raw_master())
        .unwrap();
    assert_eq!(on_master, Some(10));

    // A frozen first sentinel costs a new connection one timeout, not a hang.
    group.sentinels()[0].pause();
    let fresh = group.connection_with("timeout=300ms&pool_timeout=3s&connect_timeout=200ms");
    let started = Instant::now();
    let got = RedisCache::<String>::builder("kept")
        .connection(&fresh)
        .build()
        .get();
    let took = started.elapsed();
    group.sentinels()[0].resume();
    assert_eq!(got.unwrap().as_deref(), Some("still here"));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        took >= Duration::from_millis(150),
        "the frozen sentinel was asked first"
    );

    // A graceful failover: the old master lives on as a replica. Pooled connections to it
    // are discarded at their first error (READONLY, or closed by the sentinels), and new
    // ones go to the new master.
    let old = group.failover(Duration::from_secs(20));
    let resumed = eventually(RESUME_WITHIN, || hits.incr(1).is_ok());
    assert!(resumed, "no write succeeded after the graceful failover");
    assert_ne!(group.master_port(), old);
    assert_eq!(hits.get().unwrap(), Some(11));

    // Kill the master once the replica acknowledged every write.
    group.wait_replicated();
    let killed = group.kill_master();
    let started = Instant::now();
    let resumed = eventually(resume_after_kill(), || match hits.incr(1) {
        Ok(_) => true,
        Err(e) => {
            // What the docs promise callers meanwhile.
            assert!(e.is_connection() || e.is_timeout(), "{e:?}");
            false
        }
    });
    let took = started.elapsed();
    assert!(
        resumed,
        "no operation succeeded within {:?} of the kill",
        resume_after_kill()
    );
    eprintln!("operations resumed {took:?} after the master was killed");
    group.wait_for_failover(killed, Duration::from_secs(10));
    assert_ne!(group.master_port(), killed);

    assert_eq!(hits.get().unwrap(), Some(12), "replicated writes survive");
    assert_eq!(kept.get().unwrap().as_deref(), Some("still here"));
    assert_eq!(lazy.get().unwrap().as_deref(), Some("first"));
    let on_new_master: Option<i64> = redis::cmd("GET")
        .arg("hits")
        .query(&mut group.raw_master())
        .unwrap();
    assert_eq!(on_new_master, Some(12));
}
