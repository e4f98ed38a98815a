//! Redis Cluster: the crate's operations, raw pipelines, transactions and scripts on a real
//! cluster of three masters with one replica each (started by the tests), the typed error for
//! keys in several slots, and failovers (manual, and a killed master). (Every collection type
//! on a cluster: `every_type_on_cluster_and_sentinel.rs`.)

mod support;

use std::time::{Duration, Instant};

use redis_caches::{Connection, RedisCache, Ttl, codec::Raw};
use support::cluster::ClusterHarness;
use support::eventually;

/// How long after a master is killed operations must work again on the same handles: the
/// crate docs' figure ("Scale: Cluster and Sentinel"), `cluster-node-timeout` + 2.5 s,
/// plus the `timeout` of a call already waiting (500 ms here), plus 25%.
fn resume_within() -> Duration {
    let documented =
        support::cluster::NODE_TIMEOUT + Duration::from_millis(2500) + Duration::from_millis(500);
    documented + documented / 4
}

fn text(conn: &Connection, key: &str) -> RedisCache<String> {
    RedisCache::builder(key).connection(conn).build()
}

fn counter(conn: &Connection, key: &str) -> RedisCache<i64, Raw> {
    RedisCache::builder(key)
        .connection(conn)
        .codec(Raw)
        .ttl(Duration::from_secs(600))
        .build()
}

fn query<T: redis::FromRedisValue>(
    conn: &Connection,
    f: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    let mut pooled = conn.get().expect("a pooled connection");
    f(&mut *pooled)
}

#[test]
fn operations_pipelines_and_scripts_run_on_a_cluster() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection();

    // Plain values on keys spread over the three masters.
    let keys: Vec<String> = (0..24).map(|i| format!("cluster-value-{i}")).collect();
    let masters: std::collections::HashSet<u16> =
        keys.iter().map(|k| cluster.master_of(k)).collect();
    assert_eq!(masters.len(), 3, "the keys cover every master");
    for (i, key) in keys.iter().enumerate() {
        text(&conn, key).set(&format!("v{i}")).unwrap();
    }
    let mut raw = cluster.raw();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(text(&conn, key).get().unwrap(), Some(format!("v{i}")));
        let stored: Vec<u8> = redis::cmd("GET").arg(key).query(&mut raw).unwrap();
        assert_eq!(&stored[..2], &[0xCA, 0x02], "postcard header at {key}");
    }

    // Counters with a TTL: INCRBY + PEXPIRE in one script, on every master.
    for i in 0..6 {
        let c = counter(&conn, &format!("cluster-counter-{i}"));
        assert_eq!(c.incr(5).unwrap(), 5);
        assert_eq!(c.decr(2).unwrap(), 3);
        assert!(matches!(c.ttl().unwrap(), Ttl::Expires(d) if d > Duration::from_secs(590)));
    }

    // get_or_insert_with, delete, exists, expire.
    let lazy = text(&conn, "cluster-lazy");
    assert_eq!(lazy.get_or_insert_with(|| "first".into()).unwrap(), "first");
    assert_eq!(
        lazy.get_or_insert_with(|| "second".into()).unwrap(),
        "first"
    );
    assert!(lazy.exists().unwrap());
    assert!(lazy.expire(Duration::from_secs(30)).unwrap());
    assert!(lazy.clear().unwrap());
    assert!(!lazy.exists().unwrap());

    // A plain pipeline in one slot, and one whose first command has no key.
    let (a, b): (i64, i64) = query(&conn, |c| {
        redis::pipe()
            .cmd("INCRBY")
            .arg("{cluster.p}.a")
            .arg(2)
            .cmd("INCRBY")
            .arg("{cluster.p}.b")
            .arg(3)
            .query(c)
    })
    .unwrap();
    assert_eq!((a, b), (2, 3));
    let (pong, n): (String, i64) = query(&conn, |c| {
        redis::pipe()
            .cmd("PING")
            .cmd("INCRBY")
            .arg("{cluster.p}.a")
            .arg(1)
            .query(c)
    })
    .unwrap();
    assert_eq!((pong.as_str(), n), ("PONG", 3));

    // A raw MULTI/EXEC transaction in one slot, on a pooled connection.
    let (x, y): (i64, i64) = query(&conn, |c| {
        redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg("{cluster.t}.x")
            .arg(1)
            .cmd("INCRBY")
            .arg("{cluster.t}.x")
            .arg(1)
            .query(c)
    })
    .unwrap();
    assert_eq!((x, y), (1, 2));

    // A Lua script: EVALSHA, NOSCRIPT, SCRIPT LOAD (on every node), EVALSHA.
    let script = redis::Script::new(
        "redis.call('SET', KEYS[2], ARGV[1]) return redis.call('INCRBY', KEYS[1], ARGV[1])",
    );
    for expected in [4, 8] {
        let got: i64 = query(&conn, |c| {
            script
                .key("{cluster.s}.n")
                .key("{cluster.s}.last")
                .arg(4)
                .invoke(c)
        })
        .unwrap();
        assert_eq!(got, expected);
    }

    // Timeouts apply to every node: a frozen master costs a timeout error, not a hang. Kept
    // short: a node frozen for longer than cluster-node-timeout would be failed over.
    let quick = cluster.connection_with("timeout=100ms&connect_timeout=100ms");
    let frozen = text(&quick, "cluster-frozen");
    // Set-up, not what is tested: on a loaded machine the first request (connection and slot
    // map) can take longer than these 100 ms, so it is tried a few times.
    assert!(
        (0..5).any(|_| frozen.set("x").is_ok()),
        "the set-up write never succeeded"
    );
    let port = cluster.master_of("cluster-frozen");
    cluster.pause(port);
    let started = Instant::now();
    let err = frozen.get().unwrap_err();
    let took = started.elapsed();
    cluster.resume(port);
    assert!(err.is_timeout(), "{err}");
    assert!(took < Duration::from_millis(900), "took {took:?}");
    let back = eventually(Duration::from_secs(5), || {
        frozen.get().ok() == Some(Some("x".into()))
    });
    assert!(back, "the pool recovered after the node came back");
}

#[test]
fn keys_in_several_slots_give_a_typed_error_and_write_nothing() {
    let cluster = ClusterHarness::start();
    let conn = cluster.connection();
    assert_ne!(cluster.slot_of("spread.a"), cluster.slot_of("spread.b"));

    for atomic in [false, true] {
        let err = query(&conn, |c| {
            let mut pipe = redis::pipe();
            if atomic {
                pipe.atomic();
            }
            pipe.cmd("SET")
                .arg("spread.a")
                .arg(1)
                .cmd("SET")
                .arg("spread.b")
                .arg(2)
                .query::<()>(c)
        })
        .unwrap_err();
        assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
        assert!(
            err.to_string()
                .contains("a multi-key operation across slots"),
            "{err}"
        );
        assert!(err.to_string().contains("spread.b"), "{err}");
    }
    let mut raw = cluster.raw();
    for key in ["spread.a", "spread.b"] {
        let stored: Option<i64> = redis::cmd("GET").arg(key).query(&mut raw).unwrap();
        assert_eq!(stored, None, "nothing was written at {key}");
    }

    // One command or script whose keys span slots: Redis' CROSSSLOT, recognised as well.
    let err = query(&conn, |c| {
        redis::cmd("SUNIONSTORE")
            .arg("spread.a")
            .arg("spread.b")
            .query::<i64>(c)
    })
    .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");

    // The same keys with a common hash tag work.
    let (one, two): (String, String) = query(&conn, |c| {
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("{spread}.a")
            .arg(1)
            .cmd("SET")
            .arg("{spread}.b")
            .arg(2)
            .query(c)
    })
    .unwrap();
    assert_eq!((one.as_str(), two.as_str()), ("OK", "OK"));
}

#[test]
fn operations_resume_on_the_same_handles_after_failovers() {
    let mut cluster = ClusterHarness::start();
    let conn = cluster.connection_with("timeout=500ms&pool_timeout=500ms&connect_timeout=200ms");
    let hits = counter(&conn, "failover-hits");
    let kept = text(&conn, "failover-kept");
    hits.incr(10).unwrap();
    kept.set("still here").unwrap();

    // A manual failover (CLUSTER FAILOVER on the replica): the pooled connections' slot maps
    // are stale, yet the next write (INCRBY + PEXPIRE in one script) and read succeed at
    // the first attempt: the MOVED refreshes the map and the script is sent to the new
    // master.
    let old = cluster.master_of("failover-hits");
    let replica = cluster.replica_of(old);
    redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .exec(&mut cluster.node(replica))
        .unwrap();
    let swapped = eventually(Duration::from_secs(10), || {
        cluster.master_of("failover-hits") == replica
    });
    assert!(swapped, "the manual failover did not complete");
    cluster.wait_stable(Duration::from_secs(10));
    assert_eq!(hits.incr(1).unwrap(), 11);
    assert_eq!(kept.get().unwrap().as_deref(), Some("still here"));

    // Kill the master outright, after its replica acknowledged every write.
    cluster.wait_replicated("failover-hits");
    cluster.wait_replicated("failover-kept");
    let killed = cluster.kill_master_of("failover-hits");
    let started = Instant::now();
    let resumed = eventually(resume_within(), || match hits.incr(1) {
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
        resume_within()
    );
    eprintln!("operations resumed {took:?} after the master was killed");
    cluster.wait_for_failover(killed, Duration::from_secs(10));
    assert_ne!(cluster.master_of("failover-hits"), killed);

    assert_eq!(hits.get().unwrap(), Some(12), "replicated writes survive");
    assert_eq!(kept.get().unwrap().as_deref(), Some("still here"));
    let fresh = counter(&conn, "failover-fresh");
    assert_eq!(fresh.incr(3).unwrap(), 3);
}
