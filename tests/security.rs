//! Credentials against real servers (`requirepass`, ACL users) and a sweep of every message the
//! crate can produce for a known secret.

mod support;

use std::time::Duration;

use redis_caches::{Connection, Dsn, Error, RedisCache, codec::Raw, connection};
use support::{RedisServer, unique};

/// The password used everywhere in this file; no message may ever contain it.
const SECRET: &str = "Sw33p-s3cret-Zq9";

fn cache(conn: &Connection, key: &str) -> RedisCache<String> {
    RedisCache::builder(key).connection(conn).build()
}

fn url(server: &RedisServer, credentials: &str, query: &str) -> String {
    format!(
        "redis://{credentials}@127.0.0.1:{}/0?pool_timeout=300ms&connect_timeout=300ms&timeout=300ms{query}",
        server.port()
    )
}

/// Every way the secret could show up: as is, percent-encoded, and its distinctive halves.
fn assert_clean(what: &str, shown: &str) {
    for needle in [SECRET, "Sw33p", "s3cret-Zq9"] {
        assert!(
            !shown.contains(needle),
            "{what} shows the password: {shown}"
        );
    }
}

/// `Display`, `Debug`, pretty `Debug` and every `source()` of an error.
fn error_texts(err: &Error) -> Vec<String> {
    let mut texts = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    texts
}

fn assert_clean_error(what: &str, err: &Error) {
    for text in error_texts(err) {
        assert_clean(what, &text);
    }
}

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(url(server, &format!(":{SECRET}"), ""))
        .and_then(|c| c.get_connection())
        .expect("admin connection")
}

#[test]
fn requirepass_password_works_and_missing_or_wrong_ones_are_auth_errors() {
    let server = RedisServer::start_with(&["--requirepass", SECRET]);
    let good = Connection::open(&unique("pw"), &url(&server, &format!(":{SECRET}"), "")).unwrap();
    let c = cache(&good, "k");
    c.set("v").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));

    let none = Connection::open(&unique("nopw"), &url(&server, "", "").replace("@", "")).unwrap();
    let err = cache(&none, "k").get().unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_clean_error("no password", &err);

    let wrong = Connection::open(&unique("wrong"), &url(&server, ":Sw33p-wrong", "")).unwrap();
    let err = cache(&wrong, "k").get().unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!err.to_string().contains("Sw33p-wrong"), "{err}");
    assert_clean_error("wrong password", &err);
}

#[test]
fn acl_user_works_and_wrong_password_or_unknown_user_are_auth_errors() {
    let server = RedisServer::start_with(&["--requirepass", SECRET]);
    redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "app",
                "on",
                &format!(">{SECRET}"),
                "~app:*",
                "+@all",
            ][..],
        )
        .exec(&mut admin(&server))
        .unwrap();
    let app =
        Connection::open(&unique("acl"), &url(&server, &format!("app:{SECRET}"), "")).unwrap();
    let c = cache(&app, "app:k");
    c.set("v").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("v"));
    // The ACL applies: keys outside app:* are refused, with an error that names no secret.
    let denied = cache(&app, "other").set("v").unwrap_err();
    assert!(
        denied.to_string().contains("NOPERM") || denied.to_string().contains("permission"),
        "{denied}"
    );
    assert_clean_error("ACL denial", &denied);

    for creds in ["app:Sw33p-wrong", &format!("nobody:{SECRET}")] {
        let conn = Connection::open(&unique("acl-bad"), &url(&server, creds, "")).unwrap();
        let err = cache(&conn, "app:k").get().unwrap_err();
        assert!(err.is_auth(), "{creds}: {err:?}");
        assert!(!err.to_string().contains("Sw33p-wrong"), "{err}");
        assert_clean_error("ACL auth failure", &err);
        assert_clean("Connection Debug", &format!("{conn:?}"));
    }
}

/// DSNs of many shapes, each carrying the secret: valid ones (checked through Display/Debug)
/// and every kind of invalid one (checked through the error).
fn dsn_cases() -> Vec<String> {
    let encoded = "Sw33p%2Ds3cret%2DZq9";
    let mut cases = Vec::new();
    for creds in [
        format!(":{SECRET}"),
        format!("user:{SECRET}"),
        format!(":{encoded}"),
        format!("user:{encoded}"),
        format!("user:{SECRET}/with-slash"),
        format!("user:a/{SECRET}"),
        format!("user:a?{SECRET}"),
        format!("user:a#{SECRET}"),
        format!("user:{SECRET}@extra-at"),
        // A separator after a numeric "port" once made the password's tail the connection
        // name, an option or the path.
        format!("admin:6380#{SECRET}"),
        format!("admin:6380/{SECRET}"),
        format!("admin:6380?prefix={SECRET}"),
        format!(":1#{SECRET}"),
    ] {
        for tail in [
            "h",
            "h:6380/2#named",
            "h/0?timeout=250ms&prefix=app:",
            "h:notaport",
            "h:99999",
            "h/x",
            "h/-1",
            "h/1?db=2",
            "h?colour=blue",
            "h?pool_size=0",
            "h?pool_size=4294967295",
            "h?pool_timeout=0",
            "h?pool_timeout=1e19",
            "h?timeout=0.0001",
            "h?timeout=soon",
            "h?connect_timeout=0",
            "h?protocol=resp9",
            "h?timeout=1&timeout=2",
            "h?prefix={x}",
            "h?tls_ca=/ca.pem",
            "h#",
            "[::1",
            "h/%ZZ",
            "",
        ] {
            for scheme in [
                "redis",
                "rediss",
                "mysql",
                "redis+cluster",
                "rediss+sentinel",
                "unix",
            ] {
                cases.push(format!("{scheme}://{creds}@{tail}"));
            }
        }
        cases.push(format!("redis+cluster://{creds}@h1:1,,h2/5"));
        cases.push(format!("redis+sentinel://{creds}@s1,s2:x/m/1/2"));
        cases.push(format!("redis+sentinel://{creds}@s1/m?nope=1"));
        cases.push(format!("rediss://{creds}@h?tls_cert=/c.pem"));
        cases.push(format!("redis+unix://{creds}@/run/r.sock?db=x"));
        cases.push(format!("unix://{creds}@"));
        cases.push(format!("redis:{creds}@h"));
        cases.push(format!(" redis://{creds}@h "));
    }
    cases
}

#[test]
fn no_message_of_the_crate_shows_a_password() {
    // DSN parsing: errors, Display and Debug of what parses.
    let mut parsed = 0;
    let mut failed = 0;
    for dsn in dsn_cases() {
        match Dsn::parse(&dsn) {
            Ok(d) => {
                parsed += 1;
                assert_clean(&dsn, &d.to_string());
                assert_clean(&dsn, &format!("{d:?}"));
                assert_clean(&dsn, &format!("{d:#?}"));
                assert_clean(&dsn, &format!("{:?} {:?}", d.target(), d.tls()));
                // Opening a pool from it: Connection Debug, the pool's Debug, any error.
                match Connection::from_dsn(&unique("sweep"), d) {
                    Ok(conn) => {
                        assert_clean(&dsn, &format!("{conn:?}"));
                        assert_clean(&dsn, &format!("{:?}", conn.pool()));
                        assert_clean(&dsn, &format!("{:?}", conn.dsn()));
                    }
                    Err(e) => assert_clean_error(&dsn, &e),
                }
            }
            Err(e) => {
                failed += 1;
                assert!(e.is_config(), "{dsn}: {e:?}");
                assert_clean_error(&dsn, &e);
            }
        }
        // The same DSN through the other entry points that parse.
        if let Err(e) = Connection::open(&unique("sweep"), &dsn) {
            assert_clean_error(&dsn, &e);
        }
        if let Err(e) = connection::register(&unique("sweep"), &dsn) {
            assert_clean_error(&dsn, &e);
        }
    }
    assert!(
        parsed > 10 && failed > 100,
        "parsed {parsed}, failed {failed}"
    );

    // Registering a name twice.
    let name = unique("twice");
    connection::register(&name, &format!("redis://:{SECRET}@h")).unwrap();
    let e = connection::register(&name, &format!("redis://:{SECRET}@h")).unwrap_err();
    assert_clean_error("register twice", &e);
}

#[test]
fn runtime_errors_and_handles_show_no_password() {
    let mut server = RedisServer::start_with(&["--requirepass", SECRET]);
    let conn =
        Connection::open(&unique("rt"), &url(&server, &format!("user:{SECRET}"), "")).unwrap();
    // An ACL user named "user" with the secret.
    redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "user",
                "on",
                &format!(">{SECRET}"),
                "~*",
                "+@all",
            ][..],
        )
        .exec(&mut admin(&server))
        .unwrap();
    let c = cache(&conn, "k");
    assert_clean("RedisCache Debug before use", &format!("{c:?}"));
    c.set("v").unwrap();
    assert_clean("RedisCache Debug after use", &format!("{c:?} {c:#?}"));
    assert_clean(
        "Builder Debug",
        &format!("{:?}", RedisCache::<u8>::builder("b").connection(&conn)),
    );
    assert_clean(
        "pooled connection Debug",
        &format!("{:?}", conn.get().unwrap()),
    );
    assert_clean("pool Debug", &format!("{:?}", conn.pool()));

    let mut errors: Vec<Error> = Vec::new();
    // Wrong type, decode errors, a refused INCRBY.
    redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .exec(&mut admin(&server))
        .unwrap();
    errors.push(cache(&conn, "h").get().unwrap_err());
    redis::cmd("SET")
        .arg("foreign")
        .arg("x")
        .exec(&mut admin(&server))
        .unwrap();
    errors.push(cache(&conn, "foreign").get().unwrap_err());
    let counter = RedisCache::<i64>::builder("foreign")
        .connection(&conn)
        .codec(Raw)
        .build();
    errors.push(counter.incr(1).unwrap_err());
    // Too large a value.
    let small = RedisCache::<String>::builder("small")
        .connection(&conn)
        .max_value_size(4)
        .build();
    errors.push(small.set("too long a value").unwrap_err());
    // Unknown connection name.
    errors.push(
        RedisCache::<u8>::builder("k")
            .connection(unique("missing").as_str())
            .build()
            .get()
            .unwrap_err(),
    );
    // A stalled server: timeouts.
    server.pause();
    errors.push(c.get().unwrap_err());
    server.resume();
    // A dead server: the broken connection, then the pool that cannot connect.
    server.stop();
    for _ in 0..3 {
        if let Err(e) = c.get() {
            errors.push(e);
        }
    }
    assert!(
        errors.iter().any(|e| matches!(e, Error::Connect { .. })),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.is_timeout()), "{errors:?}");
    for e in &errors {
        assert_clean("runtime error", &e.to_string());
        assert_clean_error("runtime error", e);
    }
    assert_clean("Connection Debug", &format!("{conn:?} {conn:#?}"));
}

#[test]
fn auth_errors_are_fast_and_do_not_hang_the_pool() {
    let server = RedisServer::start_with(&["--requirepass", SECRET]);
    let conn = Connection::open(&unique("fast"), &url(&server, ":Sw33p-wrong", "")).unwrap();
    let c = cache(&conn, "k");
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert!(c.get().unwrap_err().is_auth());
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
