//! TLS (`rediss://`) against a real `redis-server` with certificates the test makes: a CA
//! file, verification on by default, the explicit insecure switch, client certificates.
#![cfg(feature = "tls")]

mod support;

use support::redis_helpers::chain;

use std::time::{Duration, Instant};

use redis_caches::{Connection, Error, RedisCache};
use support::tls::{Certs, ClientAuth, TlsServer};
use support::unique;

/// Short waits: a rejected handshake must fail fast, not after the 2 s default.
const FAST: &str = "pool_timeout=500ms&connect_timeout=1s&timeout=500ms";

fn open(url: &str) -> Connection {
    Connection::open(&unique("tls"), url).expect("the DSN parses")
}

fn cache(conn: &Connection, key: &str) -> RedisCache<String> {
    RedisCache::builder(key).connection(conn).build()
}

/// The `connect_timeout` of [`FAST`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The call fails with a typed connection error at once (a rejected certificate is no
/// timeout: well under `connect_timeout`, the handshake's own time in a debug build
/// included), with the TLS error as its source, and the calls in the back-off window that
/// follows get the same error without a handshake.
fn assert_rejected(conn: &Connection) -> Error {
    let started = Instant::now();
    let err = cache(conn, "k").get().unwrap_err();
    let took = started.elapsed();
    assert!(took < CONNECT_TIMEOUT / 2, "{took:?}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.is_connection() && !err.is_timeout() && !err.is_auth(),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    let started = Instant::now();
    for _ in 0..50 {
        assert!(matches!(
            cache(conn, "k").get().unwrap_err(),
            Error::Connect { .. }
        ));
    }
    assert!(
        started.elapsed() < CONNECT_TIMEOUT / 4,
        "{:?}",
        started.elapsed()
    );
    err
}

#[test]
fn rediss_with_a_ca_file_reads_and_writes() {
    let tls = TlsServer::start(ClientAuth::Off);
    let conn = open(&tls.url(&format!("{}&{FAST}", tls.ca_option())));
    let c = cache(&conn, "over-tls");
    c.set("secret-free").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("secret-free"));
    // It really went to this server (read back over the plain port).
    let n: u32 = redis::cmd("EXISTS")
        .arg("over-tls")
        .query(&mut tls.server.raw())
        .unwrap();
    assert_eq!(n, 1);
    // localhost is in the certificate too.
    let by_name = tls
        .url(&format!("{}&{FAST}", tls.ca_option()))
        .replace("127.0.0.1", "localhost");
    assert_eq!(
        cache(&open(&by_name), "over-tls").get().unwrap().as_deref(),
        Some("secret-free")
    );
}

#[test]
fn verification_is_on_by_default() {
    let tls = TlsServer::start(ClientAuth::Off);
    // No tls_ca: the system roots do not know the test CA.
    let err = assert_rejected(&open(&tls.url(FAST)));
    let shown = chain(&err);
    assert!(
        shown.to_lowercase().contains("certificate") || shown.contains("UnknownIssuer"),
        "{shown}"
    );
    // Explicitly secure is the same.
    assert_rejected(&open(&tls.url(&format!("tls_insecure=false&{FAST}"))));
}

#[test]
fn a_certificate_from_another_ca_is_rejected() {
    let tls = TlsServer::start(ClientAuth::Off);
    let other = std::env::temp_dir().join(unique("other-ca"));
    std::fs::create_dir_all(&other).unwrap();
    let foreign = Certs::generate(&other);
    let url = tls.url(&format!("tls_ca={}&{FAST}", foreign.ca.display()));
    let err = assert_rejected(&open(&url));
    let _ = std::fs::remove_dir_all(&other);
    assert!(
        chain(&err).to_lowercase().contains("certificate"),
        "{}",
        chain(&err)
    );
}

#[test]
fn tls_insecure_turns_verification_off_explicitly() {
    let tls = TlsServer::start(ClientAuth::Off);
    let conn = open(&tls.url(&format!("tls_insecure=true&{FAST}")));
    assert!(conn.dsn().tls().unwrap().insecure);
    let c = cache(&conn, "insecure");
    c.set("ok").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("ok"));
}

#[test]
fn client_certificates_for_mutual_tls() {
    let tls = TlsServer::start(ClientAuth::Required);
    let with_cert = open(&tls.url(&format!(
        "{}&{}&{FAST}",
        tls.ca_option(),
        tls.client_cert_options()
    )));
    let c = cache(&with_cert, "mtls");
    c.set("ok").unwrap();
    assert_eq!(c.get().unwrap().as_deref(), Some("ok"));

    // Without a client certificate the server refuses the connection.
    let without = open(&tls.url(&format!("{}&{FAST}", tls.ca_option())));
    assert_rejected(&without);
}

#[test]
fn unreadable_tls_files_are_config_errors() {
    let err = Connection::open(
        &unique("tls"),
        "rediss://127.0.0.1:1/0?tls_ca=/nonexistent/ca.pem",
    )
    .unwrap_err();
    assert!(err.is_config(), "{err:?}");
    assert!(err.to_string().contains("tls_ca"), "{err}");

    let dir = std::env::temp_dir().join(unique("garbage-pem"));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("ca.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = Connection::open(
        &unique("tls"),
        &format!("rediss://127.0.0.1:1/0?tls_ca={}", garbage.display()),
    )
    .unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.is_config(), "{err:?}");
}
