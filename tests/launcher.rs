//! The test server launcher itself (`tests/support/server.rs`, shared with the examples and
//! benches): a started server is the process it started, a port another server holds is
//! never taken for ours, and the version it reports is parsed for both products.

mod support;

use support::{Product, RedisServer, ServerVersion, server_version};

#[test]
fn a_started_server_reports_the_pid_of_the_process_started() {
    let server = RedisServer::start();
    let info = server.info("server");
    let reported = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|p| p.trim().parse::<u32>().unwrap());
    assert_eq!(reported, Some(server.pid()));
}

#[test]
fn a_port_held_by_another_server_is_an_error_not_that_server() {
    let theirs = RedisServer::start();
    let err = RedisServer::launch()
        .port(theirs.port())
        .try_start()
        .expect_err("a start on a port another server holds must fail");
    assert!(
        err.to_string().contains(&format!("port {}", theirs.port())),
        "{err}"
    );
    // Their server still answers, as itself.
    assert!(
        theirs
            .info("server")
            .contains(&format!("process_id:{}", theirs.pid()))
    );
}

#[test]
fn a_restart_keeps_the_port_and_reports_the_new_pid() {
    let mut server = RedisServer::start();
    let (port, first) = (server.port(), server.pid());
    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), first);
    assert!(
        server
            .info("server")
            .contains(&format!("process_id:{}", server.pid()))
    );
}

#[test]
fn a_password_protected_server_starts() {
    let server = RedisServer::start_with(&["--requirepass", "launcher-secret"]);
    assert!(server.info("server").contains("process_id:"));
}

#[test]
fn server_version_names_the_product_of_the_binary_under_test() {
    let version = server_version();
    let binary = support::server::server_binary().unwrap();
    let out = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap();
    // `Redis server v=7.0.15 ...` / `Valkey server v=8.1.8 ...`
    let text = String::from_utf8_lossy(&out.stdout);
    let (a, b, c) = version.version;
    assert!(
        text.contains(&format!("v={a}.{b}.{c} ")),
        "{text} vs {version}"
    );
    let product = if text.starts_with("Valkey") {
        Product::Valkey
    } else {
        Product::Redis
    };
    assert_eq!(version.product, product, "{text}");
}

#[test]
fn info_server_is_parsed_for_redis_and_valkey() {
    let redis = "# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:40305114\r\n";
    assert_eq!(
        ServerVersion::from_info(redis),
        Some(ServerVersion {
            product: Product::Redis,
            version: (6, 2, 14),
            redis_compat: (6, 2, 14),
        })
    );
    let valkey =
        "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n";
    let parsed = ServerVersion::from_info(valkey).unwrap();
    assert_eq!(parsed.product, Product::Valkey);
    assert_eq!(parsed.version, (8, 1, 8));
    assert!(parsed.redis_at_least(7, 0));
    assert!(
        !ServerVersion::from_info(redis)
            .unwrap()
            .redis_at_least(7, 0)
    );
    assert_eq!(parsed.to_string(), "Valkey 8.1.8 (redis_version 7.2.4)");
    assert_eq!(ServerVersion::from_info("# Server\r\n"), None);
}
