//! Test support: real server processes on free loopback ports, started by the tests
//! themselves (never a server that happens to be running, never a mock): the launcher
//! ([`server`], shared with the examples and benches), Redis Cluster and Redis Sentinel groups,
//! TLS servers, and cross-process helpers.
//!
//! The server binary comes from `REDIS_CACHES_SERVER` (see [`server::SERVER_ENV`]); tests
//! whose expectation depends on the server's version read [`server_version`].
//!
//! Each test binary includes this module with `mod support;`; not every binary uses every
//! helper.
#![allow(dead_code)]

pub mod cluster;
pub mod dicts;
pub mod near;
pub mod proxy;
pub mod redis_helpers;
pub mod redis_sentinel;
pub mod regions;
pub mod server;
pub mod timing;
pub mod tls;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_caches::Connection;

// Not every test binary uses every name.
#[allow(unused_imports)]
pub use server::{
    Launch, Product, RedisServer, SERVER_ENV, ServerVersion, TLS_SERVER_ENV, free_port,
    server_version,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test in this process uses (for connections, keys, directories).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The crate's connections to a test server (the launcher itself knows only `redis`).
impl RedisServer {
    /// A crate connection to this server under a unique name.
    pub fn connection(&self) -> Connection {
        Connection::open(&unique("conn"), &self.url()).expect("open a connection")
    }

    /// A crate connection with DSN query options.
    pub fn connection_with(&self, query: &str) -> Connection {
        Connection::open(&unique("conn"), &self.url_with(query)).expect("open a connection")
    }
}

/// Polls `f` until it returns true or `limit` passes; returns whether it did.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The environment variable that marks a child process started by [`child_process`].
pub const CHILD_ENV: &str = "REDIS_CACHES_TEST_CHILD";

/// Starts this same test binary in a child process, running only the ignored test
/// `test_name` (an entry point marked `#[ignore = "child process entry point: ..."]`), with
/// extra environment variables. Use it for cross-process tests: the child talks to the server
/// whose URL you pass in `env`, and reports through Redis or its exit status.
pub fn child_process(test_name: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        test_name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the child test process")
}

/// Waits for a child from [`child_process`] and asserts that its test passed.
pub fn wait_child(mut child: Child) {
    let status = child.wait().expect("wait for the child test process");
    assert!(status.success(), "the child test process failed: {status}");
}

/// In a child entry point: true when running as a child of [`child_process`] (so that running
/// the ignored tests by hand does nothing harmful).
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}
