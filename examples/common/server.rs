//! The default connection for the examples: `CACHES_DSN` when it is set, otherwise a throwaway
//! `redis-server` on a free loopback port, so that every example runs on a fresh machine with
//! nothing configured. Included by the examples with `#[path]`.

use std::error::Error;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_caches::connection;

/// A `redis-server` an example started, stopped when dropped.
pub struct ThrowawayServer(Child);

impl Drop for ThrowawayServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Uses `CACHES_DSN` when set; otherwise starts a `redis-server` and registers it as the
/// default connection.
pub fn ensure_default_connection() -> Result<Option<ThrowawayServer>, Box<dyn Error>> {
    if std::env::var("CACHES_DSN").is_ok_and(|v| !v.trim().is_empty()) {
        println!("using CACHES_DSN = {}", connection::get("default")?.dsn());
        return Ok(None);
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "CACHES_DSN is not set and redis-server could not be started ({e}); \
                 install it with `sudo apt-get install -y redis-server` or set CACHES_DSN"
            )
        })?;
    let server = ThrowawayServer(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("redis-server did not start listening on port {port}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/0");
    connection::register(connection::DEFAULT_CONNECTION, &url)?;
    println!("CACHES_DSN is not set: started a throwaway redis-server at {url}");
    Ok(Some(server))
}
