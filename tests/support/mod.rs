//! Test support: real `redis-server` processes on free loopback ports, started by the tests
//! themselves (never a server that happens to be running, never a mock).
//!
//! Each test binary includes this module with `mod support;`; not every binary uses every
//! helper.
#![allow(dead_code)]

pub mod cluster;
pub mod redis_helpers;
pub mod sentinels;
pub mod tls;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_caches::Connection;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test in this process uses (for connections, keys, directories).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Fails loudly, with the install command, when `redis-server` is not on PATH.
pub fn redis_server_binary() -> &'static str {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "redis-server is not on PATH: these tests start their own servers. \
         Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) \
         or `brew install redis` (macOS)."
    );
    "redis-server"
}

/// A free TCP port on 127.0.0.1 (free when asked; the server start retries on a clash).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// One `redis-server` process owned by a test, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// A server with persistence off on a free loopback port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// A server with extra command-line arguments (`["--requirepass", "pw"]`, ...).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        redis_server_binary();
        let dir = std::env::temp_dir().join(unique("redis-caches-test"));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _attempt in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.clone(),
                extra: extra.clone(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "redis-server did not start after 5 attempts; see {}",
            dir.display()
        );
    }

    fn spawn(&mut self) -> bool {
        let log = self.dir.join("redis.log");
        let has_save = self
            .extra
            .iter()
            .any(|a| a == "--save" || a == "--appendonly");
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .arg("--daemonize")
            .arg("no");
        if !has_save {
            cmd.args(["--save", "", "--appendonly", "no"]);
        }
        cmd.args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // exited: most likely the port was taken meanwhile
            }
            // Another test's server may answer on this port (both were handed the same free
            // port; ours then fails to bind and exits): only our own listener counts.
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && listens_on(child.id(), self.port)
            {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// A server on a given port (one a test reserved, e.g. to start a server a client already
    /// points at).
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        redis_server_binary();
        let dir = std::env::temp_dir().join(unique("redis-caches-test"));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        assert!(server.spawn(), "redis-server did not start on port {port}");
        server
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// False once [`stop`](RedisServer::stop) killed it.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's working directory (RDB/AOF files, logs, certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `url()` with a query string appended (`"timeout=200ms"`).
    pub fn url_with(&self, query: &str) -> String {
        format!("{}?{query}", self.url())
    }

    /// A crate connection to this server under a unique name.
    pub fn connection(&self) -> Connection {
        Connection::open(&unique("conn"), &self.url()).expect("open a connection")
    }

    /// A crate connection with DSN query options.
    pub fn connection_with(&self, query: &str) -> Connection {
        Connection::open(&unique("conn"), &self.url_with(query)).expect("open a connection")
    }

    /// A plain `redis` connection, to check what the crate wrote.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("plain redis connection")
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same options and directory.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Unfreezes a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server is running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// `INFO commandstats` as command name -> calls, e.g. `"hset" -> 3`.
    pub fn commandstats(&self) -> HashMap<String, u64> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.raw())
            .expect("INFO commandstats");
        parse_commandstats(&info)
    }

    /// `CONFIG RESETSTAT`: zeroes the command statistics.
    pub fn reset_stats(&self) {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .exec(&mut self.raw())
            .expect("CONFIG RESETSTAT");
    }

    /// Runs `f` and returns the commands it sent (name -> calls), read from
    /// `INFO commandstats` before and after. The plain connection used to read the stats sends
    /// `INFO` itself, which is left out; the crate's own `CLIENT SETINFO` on new connections is
    /// left out too, since it is not part of an operation.
    pub fn count_commands(&self, f: impl FnOnce()) -> HashMap<String, u64> {
        let mut raw = self.raw();
        let read = |raw: &mut redis::Connection| {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(raw)
                .expect("INFO");
            parse_commandstats(&info)
        };
        let before = read(&mut raw);
        f();
        let after = read(&mut raw);
        let mut diff = HashMap::new();
        for (cmd, n) in after {
            let delta = n - before.get(&cmd).copied().unwrap_or(0);
            let ignored = cmd == "info" || cmd.starts_with("client|");
            if delta > 0 && !ignored {
                diff.insert(cmd, delta);
            }
        }
        diff
    }
}

impl RedisServer {
    /// Runs `f` and returns how many times the server read from a client socket meanwhile
    /// (`total_reads_processed` in `INFO stats`), without the reads of this helper's own
    /// `INFO`. A command or pipeline sent in one write and answered before the next is one
    /// read: this counts round trips. Warm the pool up first, since opening a connection
    /// costs reads of its own.
    pub fn count_round_trips(&self, f: impl FnOnce()) -> u64 {
        let mut raw = self.raw();
        let read = |raw: &mut redis::Connection| -> u64 {
            let info: String = redis::cmd("INFO").arg("stats").query(raw).expect("INFO");
            info.lines()
                .find_map(|l| l.strip_prefix("total_reads_processed:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("total_reads_processed in INFO stats (Redis 6.0+)")
        };
        let before = read(&mut raw);
        f();
        let after = read(&mut raw);
        // `after` counts the read of the second INFO itself.
        after - before - 1
    }
}

/// Whether process `pid` holds the listening TCP socket of `port` (read from `/proc`).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true; // no /proc: trust the connection, as before
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols.get(1)?.rsplit(':').next()?;
            let listening = cols.get(3) == Some(&"0A");
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| cols.get(9).map(|inode| format!("socket:[{inode}]")))?
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

fn parse_commandstats(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
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
