//! The default connection for the examples: `CACHES_DSN` when it is set, otherwise a throwaway
//! server on a free loopback port (started by the tests' launcher, so `REDIS_CACHES_SERVER`
//! picks the binary here too), so that every example runs on a fresh machine with nothing
//! configured. Included by the examples with `#[path]`.

use std::error::Error;

use redis_caches::connection;

#[path = "../../tests/support/server.rs"]
mod launcher;

pub use launcher::RedisServer;

/// Uses `CACHES_DSN` when set; otherwise starts a server and registers it as the default
/// connection. The server is stopped when the returned value is dropped.
pub fn ensure_default_connection() -> Result<Option<RedisServer>, Box<dyn Error>> {
    if std::env::var("CACHES_DSN").is_ok_and(|v| !v.trim().is_empty()) {
        println!("using CACHES_DSN = {}", connection::get("default")?.dsn());
        return Ok(None);
    }
    let server = RedisServer::launch()
        .try_start()
        .map_err(|e| format!("CACHES_DSN is not set and no server could be started: {e}"))?;
    let url = server.url();
    connection::register(connection::DEFAULT_CONNECTION, &url)?;
    println!(
        "CACHES_DSN is not set: started a throwaway {} at {url}",
        server.version()
    );
    Ok(Some(server))
}
