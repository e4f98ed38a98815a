//! Connections against real servers: pooling, options, recovery, credentials, errors.

mod support;

use std::time::Duration;

use redis_caches::{Connection, Error, RedisCache, codec::Raw};
use support::{RedisServer, unique};

fn cache(conn: &Connection, key: &str) -> RedisCache<String> {
    RedisCache::builder(key).connection(conn).build()
}

#[test]
fn writes_reach_the_server_and_db_in_the_dsn() {
    let server = RedisServer::start();
    let conn = Connection::open(
        &unique("db2"),
        &format!("redis://127.0.0.1:{}/2", server.port()),
    )
    .unwrap();
    cache(&conn, "greeting").set("hello").unwrap();
    let mut raw = server.raw();
    redis::cmd("SELECT").arg(2).exec(&mut raw).unwrap();
    let stored: Vec<u8> = redis::cmd("GET").arg("greeting").query(&mut raw).unwrap();
    assert_eq!(&stored[..2], &[0xCA, 0x02], "postcard header");
    let mut raw0 = server.raw();
    let in_db0: Option<Vec<u8>> = redis::cmd("GET").arg("greeting").query(&mut raw0).unwrap();
    assert_eq!(in_db0, None);
}

#[test]
fn connection_prefix_applies_to_every_key() {
    let server = RedisServer::start();
    let conn = server.connection_with("prefix=app:");
    cache(&conn, "a").set("x").unwrap();
    RedisCache::<String>::builder(["b", "c"])
        .connection(&conn)
        .prefix("v2")
        .build()
        .set("y")
        .unwrap();
    let mut raw = server.raw();
    let exists: (bool, bool) = redis::pipe()
        .cmd("EXISTS")
        .arg("app:a")
        .cmd("EXISTS")
        .arg("app:v2.b.c")
        .query(&mut raw)
        .unwrap();
    assert_eq!(exists, (true, true));
}

#[test]
fn checkout_costs_no_round_trip() {
    let server = RedisServer::start();
    let conn = server.connection();
    let c = cache(&conn, "k");
    c.set("v").unwrap(); // opens the pooled connection
    let counted = server.count_commands(|| {
        for _ in 0..50 {
            c.get().unwrap();
        }
    });
    assert_eq!(counted.get("get"), Some(&50), "{counted:?}");
    assert_eq!(counted.len(), 1, "only GET was sent: {counted:?}");
}

#[test]
fn unreachable_server_gives_a_connection_error_in_time_then_recovers() {
    let port = support::free_port();
    let conn = Connection::open(
        &unique("down"),
        &format!("redis://127.0.0.1:{port}/0?pool_timeout=300ms&connect_timeout=200ms"),
    )
    .unwrap();
    let c = cache(&conn, "k");
    // A refused connection fails at once with its cause, not after pool_timeout.
    let (err, took) = support::timing::timed(|| c.get().unwrap_err());
    assert!(took.own < Duration::from_millis(100), "{took:?}");
    assert!(err.is_connection() && !err.is_timeout(), "{err}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(conn.name()), "{err}");
    // Within the back-off window, the next calls get the same error without trying.
    let (_, took) = support::timing::timed(|| {
        for _ in 0..100 {
            assert!(matches!(c.get().unwrap_err(), Error::Connect { .. }));
        }
    });
    assert!(took.own < Duration::from_millis(100), "{took:?}");

    // Now a server appears on that port: once the back-off window is over, the same handle
    // works without rebuilding anything.
    let _server = RedisServer::start_on(port, &[]);
    std::thread::sleep(redis_caches::connection::CONNECT_BACKOFF);
    c.set("ok").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("ok"));
}

#[test]
fn pool_recovers_after_a_restart() {
    let mut server = RedisServer::start();
    let conn = server.connection_with("pool_timeout=500ms");
    let c = cache(&conn, "k");
    c.set("before").unwrap();
    server.restart();
    // The pooled connection died while idle. A read or an idempotent write finds out on its
    // first attempt and is sent again on a new connection, within the same call: the first
    // calls after the restart succeed.
    assert_eq!(c.get().unwrap(), None, "the restarted server has no data");
    c.set("after").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("after"));
    server.restart();
    c.set("again").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("again"));
}

#[test]
fn operation_timeout_on_a_stalled_server() {
    let server = RedisServer::start();
    let conn = server.connection_with("timeout=200ms&pool_timeout=300ms");
    let c = cache(&conn, "k");
    c.set("v").unwrap();
    server.pause();
    // Timed without the time this thread waited for a CPU (see support::timing).
    let (err, took) = support::timing::timed(|| c.get().unwrap_err());
    server.resume();
    assert!(err.is_timeout(), "{err:?}");
    let timeout = Duration::from_millis(200);
    assert!(took.own <= timeout + timeout / 4, "{took:?}");
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
}

#[test]
fn unix_socket_connections() {
    let dir = std::env::temp_dir().join(unique("sock"));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock");
    let server = RedisServer::start_with(&["--unixsocket", sock.to_str().unwrap()]);
    let conn = Connection::open(
        &unique("unix"),
        &format!("redis+unix://{}?db=1", sock.display()),
    )
    .unwrap();
    cache(&conn, "over-unix").set("yes").unwrap();
    let mut raw = server.raw();
    redis::cmd("SELECT").arg(1).exec(&mut raw).unwrap();
    let n: u32 = redis::cmd("EXISTS")
        .arg("over-unix")
        .query(&mut raw)
        .unwrap();
    assert_eq!(n, 1);
    let conn = Connection::open(&unique("unix"), &format!("unix://{}", sock.display())).unwrap();
    assert_eq!(cache(&conn, "nothing").get().unwrap(), None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resp3_protocol() {
    let server = RedisServer::start();
    let conn = server.connection_with("protocol=resp3");
    let c = cache(&conn, "k");
    c.set("three").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("three"));
    let n = RedisCache::<i64>::builder("n")
        .connection(&conn)
        .codec(Raw)
        .build();
    assert_eq!(n.incr(2).unwrap(), 2);
}

#[test]
fn password_and_acl_user_and_wrong_password() {
    let secret = "correct-horse-battery";
    let server = RedisServer::start_with(&["--requirepass", secret]);
    let url = |cred: &str| {
        format!(
            "redis://{cred}@127.0.0.1:{}/0?pool_timeout=300ms",
            server.port()
        )
    };

    let conn = Connection::open(&unique("pw"), &url(&format!(":{secret}"))).unwrap();
    cache(&conn, "k").set("v").unwrap();

    let mut admin = redis::Client::open(url(&format!(":{secret}")).as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">app-pass-123", "~*", "+@all"][..])
        .exec(&mut admin)
        .unwrap();
    let conn = Connection::open(&unique("acl"), &url("app:app-pass-123")).unwrap();
    assert_eq!(cache(&conn, "k").get().unwrap().as_deref(), Some("v"));

    let wrong = "wrong-pass-456";
    let conn = Connection::open(&unique("bad"), &url(&format!("app:{wrong}"))).unwrap();
    let err = cache(&conn, "k").get().unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{conn:?}"),
        format!("{:?}", cache(&conn, "k")),
    ] {
        assert!(!shown.contains(wrong), "{shown}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn wrong_redis_type_names_both_types() {
    let server = RedisServer::start();
    let conn = server.connection();
    redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .exec(&mut server.raw())
        .unwrap();
    let err = cache(&conn, "h").get().unwrap_err();
    match &err {
        Error::WrongType {
            key,
            expected,
            found,
        } => {
            assert_eq!(key, "h");
            assert_eq!(*expected, "string");
            assert_eq!(found, "hash");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert!(
        err.to_string().contains("hash") && err.to_string().contains("string"),
        "{err}"
    );
}

#[test]
fn foreign_and_corrupt_bytes_give_decode_errors_naming_the_key() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    redis::cmd("SET")
        .arg("foreign")
        .arg("written by redis-cli")
        .exec(&mut raw)
        .unwrap();
    let err = cache(&conn, "foreign").get().unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(err.to_string().contains("foreign"), "{err}");

    RedisCache::<u64>::builder("typed")
        .connection(&conn)
        .build()
        .set(&7)
        .unwrap();
    let err = cache(&conn, "typed").get().unwrap_err();
    assert!(
        err.is_decode() && support::redis_helpers::chain(&err).contains("another type"),
        "{err}"
    );

    let counter = RedisCache::<u8>::builder("small")
        .connection(&conn)
        .codec(Raw)
        .build();
    redis::cmd("SET")
        .arg("small")
        .arg("300")
        .exec(&mut raw)
        .unwrap();
    assert!(counter.get().unwrap_err().is_decode());
}

#[test]
fn two_processes_see_each_others_writes() {
    let server = RedisServer::start();
    let conn = server.connection();
    cache(&conn, "from-parent").set("parent").unwrap();
    let child = support::child_process(
        "child_writes_and_reads",
        &[("TEST_REDIS_URL", server.url())],
    );
    support::wait_child(child);
    assert_eq!(
        cache(&conn, "from-child").get().unwrap().as_deref(),
        Some("child")
    );
}

#[test]
#[ignore = "child process entry point: run by two_processes_see_each_others_writes"]
fn child_writes_and_reads() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("TEST_REDIS_URL").unwrap();
    let conn = Connection::open(&unique("child"), &url).unwrap();
    assert_eq!(
        cache(&conn, "from-parent").get().unwrap().as_deref(),
        Some("parent")
    );
    cache(&conn, "from-child").set("child").unwrap();
}
