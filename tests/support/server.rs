//! The one launcher of real servers for the tests, the examples and the benches: a
//! `redis-server` (or `valkey-server`) process on a free loopback port, owned by the caller and
//! killed when dropped. Never a server that happens to be running, never a mock.
//!
//! The binary comes from [`SERVER_ENV`] (`REDIS_CACHES_SERVER`), so the suite runs against any
//! build a user points it at; without it, `redis-server` on `PATH`. A missing binary fails with
//! an install hint.
//!
//! A started server counts only once `INFO server` on its port reports the `process_id` of the
//! process this launcher started: when two launchers were handed the same free port, the
//! loser sees the winner's pid (or its own process exit) and retries on another port, so a
//! caller can never reach, and clear, someone else's server.
//!
//! This file depends on `std` and `redis` only: `tests/support/mod.rs` declares it as a module,
//! and the examples (`examples/common/server.rs`) and benches (`benches/common/mod.rs`) include
//! it with `#[path]`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable naming the server binary: a path to `redis-server` or
/// `valkey-server` (or a name on `PATH`). Unset or empty: `redis-server` on `PATH`.
pub const SERVER_ENV: &str = "REDIS_CACHES_SERVER";

/// The environment variable naming a server binary built with TLS, for the TLS tests. Unset or
/// empty: the binary of [`SERVER_ENV`].
pub const TLS_SERVER_ENV: &str = "REDIS_CACHES_TLS_SERVER";

const INSTALL_HINT: &str = "install one with `sudo apt-get install -y redis-server` \
     (Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_CACHES_SERVER to the path of \
     a redis-server or valkey-server binary";

/// How long a started process may take to answer `INFO`.
const START_WITHIN: Duration = Duration::from_secs(10);

/// How many ports a start tries when another process takes the free port first.
const ATTEMPTS: usize = 5;

/// Why a server could not be started; the message says what to do.
#[derive(Debug, Clone)]
pub struct LaunchError(String);

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LaunchError {}

fn cached_binary(
    var: &str,
    cell: &'static OnceLock<Result<PathBuf, LaunchError>>,
) -> Result<PathBuf, LaunchError> {
    cell.get_or_init(|| find_binary(var)).clone()
}

/// The server binary: [`SERVER_ENV`], or `redis-server` on `PATH`; checked once per process by
/// running it with `--version`.
pub fn server_binary() -> Result<PathBuf, LaunchError> {
    static BINARY: OnceLock<Result<PathBuf, LaunchError>> = OnceLock::new();
    cached_binary(SERVER_ENV, &BINARY)
}

/// The binary for TLS servers: [`TLS_SERVER_ENV`], or else [`server_binary`].
pub fn tls_server_binary() -> Result<PathBuf, LaunchError> {
    static BINARY: OnceLock<Result<PathBuf, LaunchError>> = OnceLock::new();
    match std::env::var_os(TLS_SERVER_ENV).filter(|v| !v.is_empty()) {
        Some(_) => cached_binary(TLS_SERVER_ENV, &BINARY),
        None => server_binary(),
    }
}

fn find_binary(var: &str) -> Result<PathBuf, LaunchError> {
    let (binary, from) = match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), format!("{var}=")),
        None => (
            PathBuf::from("redis-server"),
            format!("{var} is not set and "),
        ),
    };
    let runs = Command::new(&binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        Ok(binary)
    } else {
        Err(LaunchError(format!(
            "{from}{} does not run: the tests, examples and benches start their own servers; \
             {INSTALL_HINT}",
            binary.display()
        )))
    }
}

/// A free TCP port on 127.0.0.1 (free when asked: a start retries on a clash).
pub fn try_free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// [`try_free_port`], panicking when the machine has no free loopback port.
pub fn free_port() -> u16 {
    try_free_port().expect("no free loopback port")
}

/// A directory name no other server of this process uses.
fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "redis-caches-server-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Which server product answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    Redis,
    Valkey,
}

/// A server's product and version, from `INFO server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerVersion {
    /// Redis or Valkey (`server_name:valkey`, or a `valkey_version` field).
    pub product: Product,
    /// The product's own version: `redis_version` for Redis, `valkey_version` for Valkey.
    pub version: (u32, u32, u32),
    /// `redis_version` as reported: Redis' own version, or for Valkey the Redis version whose
    /// commands it offers (Valkey 7.2 and later report 7.2.4).
    pub redis_compat: (u32, u32, u32),
}

impl ServerVersion {
    /// Parses the `redis_version` and `valkey_version`/`server_name` fields of `INFO server`.
    pub fn from_info(info: &str) -> Option<ServerVersion> {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let parse = |v: &str| -> Option<(u32, u32, u32)> {
            let mut parts = v.split('.').map(|p| p.parse::<u32>());
            Some((
                parts.next()?.ok()?,
                parts.next().unwrap_or(Ok(0)).ok()?,
                parts.next().unwrap_or(Ok(0)).ok()?,
            ))
        };
        let redis_compat = parse(field("redis_version")?)?;
        let valkey = field("valkey_version").or_else(|| {
            (field("server_name") == Some("valkey")).then(|| field("redis_version"))?
        });
        Some(match valkey {
            Some(v) => ServerVersion {
                product: Product::Valkey,
                version: parse(v)?,
                redis_compat,
            },
            None => ServerVersion {
                product: Product::Redis,
                version: redis_compat,
                redis_compat,
            },
        })
    }

    /// True when the server offers the commands of Redis `major.minor` (Valkey counts as the
    /// Redis version it reports in `redis_version`).
    pub fn redis_at_least(&self, major: u32, minor: u32) -> bool {
        self.redis_compat >= (major, minor, 0)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        match self.product {
            Product::Redis => write!(f, "Redis {a}.{b}.{c}"),
            Product::Valkey => {
                let (x, y, z) = self.redis_compat;
                write!(f, "Valkey {a}.{b}.{c} (redis_version {x}.{y}.{z})")
            }
        }
    }
}

/// The version of the server binary the suite runs against ([`server_binary`]), read once per
/// process from `INFO server` of a throwaway server. For tests whose expectation depends on
/// the version: state it with `if support::server_version().redis_at_least(7, 0) { .. }`.
pub fn server_version() -> ServerVersion {
    static VERSION: OnceLock<ServerVersion> = OnceLock::new();
    *VERSION.get_or_init(|| RedisServer::start().version())
}

/// What to start: built with [`RedisServer::launch`], started with [`Launch::start`].
#[derive(Clone, Debug, Default)]
pub struct Launch {
    binary: Option<PathBuf>,
    args: Vec<String>,
    port: Option<u16>,
    sentinel: Option<String>,
}

impl Launch {
    /// Extra command-line arguments (`["--requirepass", "pw"]`, `["--appendonly", "yes"]`).
    /// Persistence is off unless they name `--save` or `--appendonly`.
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Launch {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Listen on this port (one the caller reserved) instead of a free one; no retry on
    /// another port.
    pub fn port(mut self, port: u16) -> Launch {
        self.port = Some(port);
        self
    }

    /// Run this binary instead of [`server_binary`].
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Launch {
        self.binary = Some(binary.into());
        self
    }

    /// Start a sentinel (`<server> <conf> --sentinel`) whose configuration file holds
    /// `config` after the `port`, `bind`, `dir` and `logfile` lines the launcher writes.
    pub fn sentinel(mut self, config: &str) -> Launch {
        self.sentinel = Some(config.to_string());
        self
    }

    /// Starts the server and waits until `INFO server` on its port reports its pid.
    pub fn try_start(self) -> Result<RedisServer, LaunchError> {
        let binary = match self.binary {
            Some(b) => b,
            None => server_binary()?,
        };
        let mut args = self.args;
        // `DEBUG` is off by default from Redis 7.0, and the option that turns it on does not
        // exist before (the server refuses to start): on older servers it is always on.
        if let Some(i) = args.iter().position(|a| a == "--enable-debug-command")
            && binary == server_binary()?
            && !server_version().redis_at_least(7, 0)
        {
            args.drain(i..(i + 2).min(args.len()));
        }
        let password = args
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1].clone());
        let dir = fresh_dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            LaunchError(format!(
                "cannot create the server's directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut server = RedisServer {
            child: None,
            pid: 0,
            port: 0,
            dir,
            binary,
            args,
            sentinel: self.sentinel,
            password,
            counting: Mutex::new(None),
        };
        let attempts = if self.port.is_some() { 1 } else { ATTEMPTS };
        let mut last = String::new();
        for _ in 0..attempts {
            server.port = match self.port {
                Some(port) => port,
                None => try_free_port()
                    .map_err(|e| LaunchError(format!("no free loopback port: {e}")))?,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(Spawn::Fatal(why)) => return Err(LaunchError(why)),
                Err(Spawn::Clash(why)) => last = why,
            }
        }
        Err(LaunchError(format!(
            "{} did not start after {attempts} attempt(s): {last}",
            server.binary.display()
        )))
    }

    /// [`try_start`](Launch::try_start), panicking with its message (for tests).
    pub fn start(self) -> RedisServer {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Why one spawn failed.
enum Spawn {
    /// The port was someone else's (our process exited, or another pid answered): try another.
    Clash(String),
    /// Nothing to retry: the binary does not run, or the server does not answer.
    Fatal(String),
}

/// One server process owned by the caller, killed (SIGKILL) when dropped, its directory
/// removed.
pub struct RedisServer {
    child: Option<Child>,
    pid: u32,
    port: u16,
    dir: PathBuf,
    binary: PathBuf,
    args: Vec<String>,
    sentinel: Option<String>,
    password: Option<String>,
    /// The connection [`count_commands`](RedisServer::count_commands) and
    /// [`count_round_trips`](RedisServer::count_round_trips) read `INFO` on, kept between
    /// counts (see `count_round_trips`).
    counting: Mutex<Option<redis::Connection>>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("pid", &self.pid)
            .field("running", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// What to start, to set options on: `RedisServer::launch().args(&[..]).start()`.
    pub fn launch() -> Launch {
        Launch::default()
    }

    /// A server with persistence off on a free loopback port (panics when it cannot start).
    pub fn start() -> RedisServer {
        RedisServer::launch().start()
    }

    /// A server with extra command-line arguments (`["--requirepass", "pw"]`, ...).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::launch().args(extra).start()
    }

    /// A server on a given port (one a test reserved, e.g. to start a server a client already
    /// points at).
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        RedisServer::launch().port(port).args(extra).start()
    }

    fn log_file(&self) -> PathBuf {
        let name = if self.sentinel.is_some() {
            "sentinel.log"
        } else {
            "redis.log"
        };
        self.dir.join(name)
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    fn spawn(&mut self) -> Result<(), Spawn> {
        let mut cmd = Command::new(&self.binary);
        if let Some(config) = &self.sentinel {
            let path = self.dir.join("sentinel.conf");
            let text = format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {log}\n{config}",
                port = self.port,
                dir = self.dir.display(),
                log = self.log_file().display(),
            );
            std::fs::write(&path, text)
                .map_err(|e| Spawn::Fatal(format!("cannot write {}: {e}", path.display())))?;
            cmd.arg(&path).arg("--sentinel");
        } else {
            let persistence = self
                .args
                .iter()
                .any(|a| a == "--save" || a == "--appendonly");
            cmd.arg("--port")
                .arg(self.port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--dir")
                .arg(&self.dir)
                .arg("--logfile")
                .arg(self.log_file())
                .arg("--daemonize")
                .arg("no");
            if !persistence {
                cmd.args(["--save", "", "--appendonly", "no"]);
            }
            cmd.args(&self.args);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| {
            Spawn::Fatal(format!(
                "cannot run {} ({e}); {INSTALL_HINT}",
                self.binary.display()
            ))
        })?;
        let pid = child.id();
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Most likely the port was taken between `free_port` and the bind.
                return Err(Spawn::Clash(format!(
                    "the server on port {} exited ({status}); its log ends with:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            match self
                .info_on_port("server")
                .ok()
                .and_then(|i| process_id(&i))
            {
                Some(answered) if answered == pid => {
                    self.child = Some(child);
                    self.pid = pid;
                    return Ok(());
                }
                Some(other) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Spawn::Clash(format!(
                        "port {} is served by process {other}, not by the one started \
                         (pid {pid}): another server took the port, or the binary is a \
                         wrapper that does not `exec` the server",
                        self.port
                    )));
                }
                None => {}
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Spawn::Fatal(format!(
                    "{} did not answer INFO on port {} within {START_WITHIN:?}; its log ends \
                     with:\n{}",
                    self.binary.display(),
                    self.port,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `INFO <section>` on a fresh connection to this port (authenticated when the server was
    /// started with `--requirepass`).
    fn info_on_port(&self, section: &str) -> redis::RedisResult<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        let mut con = client.get_connection_with_timeout(Duration::from_millis(500))?;
        con.set_read_timeout(Some(Duration::from_secs(2)))?;
        if let Some(password) = &self.password {
            redis::cmd("AUTH").arg(password).exec(&mut con)?;
        }
        redis::cmd("INFO").arg(section).query(&mut con)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (the last one started, after a restart).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The binary this server runs.
    pub fn binary(&self) -> &Path {
        &self.binary
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

    /// A plain `redis` connection (not authenticated), to check what the crate wrote.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("plain redis connection")
    }

    /// `INFO <section>` (authenticated when started with `--requirepass`).
    pub fn info(&self, section: &str) -> String {
        self.info_on_port(section)
            .unwrap_or_else(|e| panic!("INFO {section} on port {}: {e}", self.port))
    }

    /// The product and version this server reports in `INFO server`.
    pub fn version(&self) -> ServerVersion {
        let info = self.info("server");
        ServerVersion::from_info(&info)
            .unwrap_or_else(|| panic!("no redis_version in INFO server: {info}"))
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same options and directory (so
    /// with its RDB/AOF files). Panics when another process took the port meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_WITHIN;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(Spawn::Clash(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(Spawn::Clash(why) | Spawn::Fatal(why)) => {
                    panic!("the server did not restart on port {}: {why}", self.port)
                }
            }
        }
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
        assert!(
            self.child.is_some(),
            "the server on port {} is not running",
            self.port
        );
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {} failed", self.pid);
    }

    /// `INFO commandstats` as command name -> calls, e.g. `"hset" -> 3`.
    pub fn commandstats(&self) -> HashMap<String, u64> {
        parse_commandstats(&self.info("commandstats"))
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
    /// left out too, since it is not part of an operation (`client|setinfo` from Redis 7.0 on;
    /// Redis 6.2 counts subcommands under their command, `client`, and answers the unknown
    /// `SETINFO` with an error that it counts all the same).
    pub fn count_commands(&self, f: impl FnOnce()) -> HashMap<String, u64> {
        let mut raw = self.counting_connection();
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
        self.keep_counting_connection(raw);
        let mut diff = HashMap::new();
        for (cmd, n) in after {
            let delta = n - before.get(&cmd).copied().unwrap_or(0);
            let ignored = cmd == "info" || cmd == "client" || cmd.starts_with("client|");
            if delta > 0 && !ignored {
                diff.insert(cmd, delta);
            }
        }
        diff
    }

    /// Runs `f` and returns how many times the server read from a client socket meanwhile
    /// (`total_reads_processed` in `INFO stats`), without the reads of this helper's own
    /// `INFO`. A command or pipeline sent in one write and answered before the next is one
    /// read: this counts round trips. Warm the pool up first, since opening a connection
    /// costs reads of its own.
    ///
    /// The server also counts a read when it notices that a client closed its socket. So
    /// `INFO` is read on one connection kept between counts: a helper's connection closed
    /// just before a count (a socket's close can reach the server late, for example while
    /// another thread's fork still holds its descriptor) counted as a round trip of the
    /// operation under load (seen about once in 20 runs of `dict_wire` on a busy machine).
    pub fn count_round_trips(&self, f: impl FnOnce()) -> u64 {
        let mut raw = self.counting_connection();
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
        self.keep_counting_connection(raw);
        // `after` counts the read of the second INFO itself.
        after - before - 1
    }

    /// The connection the counting helpers read `INFO` on: the one kept from the last count
    /// when it still answers (the server may have been restarted since), else a new one. Its
    /// reads time out after 30 s, so that a count taken while the server is stopped
    /// (`SIGSTOP`) fails the test instead of hanging it.
    fn counting_connection(&self) -> redis::Connection {
        let kept = self
            .counting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let conn = match kept {
            Some(mut conn) => {
                if redis::cmd("PING").exec(&mut conn).is_ok() {
                    conn
                } else {
                    self.raw()
                }
            }
            None => self.raw(),
        };
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout on the counting connection");
        conn
    }

    fn keep_counting_connection(&self, conn: redis::Connection) {
        *self.counting.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `process_id` from `INFO server`.
fn process_id(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// `INFO commandstats` as command name -> calls.
pub fn parse_commandstats(info: &str) -> HashMap<String, u64> {
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
