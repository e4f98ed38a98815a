//! Named connections from CACHES_DSN / CACHES_DSN_n, against two real servers.
//!
//! The environment is read once per process, so this binary holds a single test that sets the
//! variables before anything else touches the registry.

mod support;

use redis_caches::{RedisCache, connection};
use support::RedisServer;

#[test]
fn numbered_dsns_name_connections_that_reach_different_servers() {
    let one = RedisServer::start();
    let secret = "env-s3cret-pw";
    let two = RedisServer::start_with(&["--requirepass", secret]);
    // SAFETY: this binary has a single test, and it sets the variables before any thread
    // that could read the environment exists.
    unsafe {
        std::env::set_var("CACHES_DSN", one.url());
        std::env::set_var(
            "CACHES_DSN_1",
            format!("{}#sessions", one.url_with("prefix=s:")),
        );
        std::env::set_var(
            "CACHES_DSN_2",
            format!("redis://:{secret}@127.0.0.1:{}/3", two.port()),
        );
    }

    assert_eq!(connection::names(), ["2", "default", "sessions"]);

    RedisCache::<String>::new("k").set("default").unwrap();
    RedisCache::<String>::builder("k")
        .connection("sessions")
        .build()
        .set("sessions")
        .unwrap();
    let on_two = RedisCache::<String>::builder("k").connection("2").build();
    on_two.set("two").unwrap();

    // Check each server with a plain client.
    let mut raw_one = one.raw();
    let (_, mut keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .query(&mut raw_one)
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["k", "s:k"]);

    let mut raw_two = redis::Client::open(format!("redis://:{secret}@127.0.0.1:{}/3", two.port()))
        .unwrap()
        .get_connection()
        .unwrap();
    let n: u32 = redis::cmd("DBSIZE").query(&mut raw_two).unwrap();
    assert_eq!(n, 1);
    assert_eq!(on_two.get().unwrap().as_deref(), Some("two"));

    let conn = connection::get("2").unwrap();
    for shown in [
        format!("{conn:?}"),
        conn.dsn().to_string(),
        format!("{on_two:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(conn.dsn().to_string().contains("***"));

    let unknown = connection::get("nope").unwrap_err();
    assert!(
        unknown.is_config() && unknown.to_string().contains("nope"),
        "{unknown}"
    );
    let err = RedisCache::<String>::builder("k")
        .connection("nope")
        .build()
        .get()
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
