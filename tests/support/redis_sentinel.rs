//! A real Sentinel-managed group on loopback ports: a master, one replica and three
//! sentinels (`<server> <conf> --sentinel`), started by the test, killed when dropped.
//!
//! ```ignore
//! let group = SentinelHarness::start();
//! let conn = group.connection();          // a crate Connection on redis+sentinel://.../mymaster/0
//! let old = group.kill_master();          // SIGKILL the current master
//! group.wait_for_failover(old, limit);    // the sentinels promoted the replica
//! ```

use std::time::{Duration, Instant};

use redis_caches::Connection;

use super::{RedisServer, eventually, free_port, unique};

/// The service name the sentinels monitor.
pub const SERVICE: &str = "mymaster";

/// How long the master may be unreachable before a sentinel considers it down
/// (`down-after-milliseconds`).
pub const DOWN_AFTER: Duration = Duration::from_millis(500);

/// One sentinel: a [`RedisServer`] started in sentinel mode (`<server> <conf> --sentinel`), so
/// `port()`, `pause()` and `resume()` work on it as on any server.
pub type SentinelProcess = RedisServer;

/// Sends `cmd` to the sentinel on `port` (short timeouts: a sentinel may be paused).
fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
        .get_connection_with_timeout(Duration::from_millis(500))?;
    con.set_read_timeout(Some(Duration::from_secs(1)))?;
    cmd.query(&mut con)
}

/// A master, a replica and three sentinels (quorum 2).
pub struct SentinelHarness {
    servers: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

impl SentinelHarness {
    /// Starts the master and its replica, waits until the replica is in sync, starts three
    /// sentinels and waits until each knows the replica and the two other sentinels (which
    /// a failover needs).
    pub fn start() -> SentinelHarness {
        // No 5 s wait for more replicas before a full sync.
        let no_delay = ["--repl-diskless-sync-delay", "0"];
        let master = RedisServer::start_with(&no_delay);
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(&[
            no_delay[0],
            no_delay[1],
            "--replicaof",
            "127.0.0.1",
            &master_port,
        ]);
        let synced = eventually(Duration::from_secs(10), || {
            redis::cmd("INFO")
                .arg("replication")
                .query::<String>(&mut replica.raw())
                .is_ok_and(|i| i.contains("master_link_status:up"))
        });
        assert!(synced, "the replica did not sync with the master");
        let sentinels = start_sentinels(master.port(), replica.port());
        let harness = SentinelHarness {
            servers: vec![master, replica],
            sentinels,
        };
        let ready = eventually(Duration::from_secs(30), || {
            harness.sentinels.iter().all(|s| {
                let info: redis::RedisResult<Vec<String>> =
                    query(s.port(), redis::cmd("SENTINEL").arg("MASTER").arg(SERVICE));
                info.is_ok_and(|fields| {
                    let field = |name: &str| {
                        fields
                            .chunks(2)
                            .find(|kv| kv[0] == name)
                            .map(|kv| kv[1].clone())
                    };
                    field("num-slaves").as_deref() == Some("1")
                        && field("num-other-sentinels").as_deref() == Some("2")
                })
            })
        });
        assert!(
            ready,
            "the sentinels did not discover each other and the replica"
        );
        harness
    }

    /// The sentinels.
    pub fn sentinels(&self) -> &[SentinelProcess] {
        &self.sentinels
    }

    /// `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster/0`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}/0", hosts.join(","))
    }

    /// `url()` with a query string appended (`"timeout=200ms"`).
    pub fn url_with(&self, query: &str) -> String {
        format!("{}?{query}", self.url())
    }

    /// A crate connection to the group under a unique name.
    pub fn connection(&self) -> Connection {
        Connection::open(&unique("sentinel"), &self.url()).expect("open a sentinel connection")
    }

    /// A crate connection with DSN query options.
    pub fn connection_with(&self, query: &str) -> Connection {
        Connection::open(&unique("sentinel"), &self.url_with(query))
            .expect("open a sentinel connection")
    }

    /// The port of the master as the first answering sentinel names it.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|s| {
                query::<(String, u16)>(
                    s.port(),
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(SERVICE),
                )
                .ok()
            })
            .map(|(_, port)| port)
            .expect("a sentinel names the master")
    }

    /// A plain connection to the current master.
    pub fn raw_master(&self) -> redis::Connection {
        self.server(self.master_port()).raw()
    }

    fn server(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|s| s.port() == port)
            .expect("a server of this group")
    }

    /// Makes sure every write the master acknowledged so far reached the replica: a plain
    /// client writes a marker, then `WAIT 1` for it (writes replicate in order).
    pub fn wait_replicated(&self) {
        let mut con = self.raw_master();
        redis::cmd("SET")
            .arg("replicated-marker")
            .arg(1)
            .exec(&mut con)
            .expect("write the marker");
        let acked: u32 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut con)
            .expect("WAIT");
        assert_eq!(acked, 1, "the replica did not acknowledge the writes");
    }

    /// A graceful failover (`SENTINEL FAILOVER`, no agreement needed): waits until the replica
    /// has every write (`WAIT`), then until the sentinels name it master, turns the old master
    /// (still running) into its replica as the sentinels would, and waits until it is in sync.
    /// Returns the old master's port.
    pub fn failover(&self, limit: Duration) -> u16 {
        // SENTINEL FAILOVER promotes the replica as it is: writes it has not received yet
        // would be lost, so the graceful failover starts from a replica in sync.
        self.wait_replicated();
        let old = self.master_port();
        query::<()>(
            self.sentinels[0].port(),
            redis::cmd("SENTINEL").arg("FAILOVER").arg(SERVICE),
        )
        .expect("SENTINEL FAILOVER");
        self.wait_for_failover(old, limit);
        // The sentinels reconfigure a surviving old master only at their next INFO round
        // (every 10 s); do what they would do now.
        redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(self.master_port())
            .exec(&mut self.server(old).raw())
            .expect("REPLICAOF on the old master");
        let demoted = eventually(limit, || {
            redis::cmd("INFO")
                .arg("replication")
                .query::<String>(&mut self.server(old).raw())
                .is_ok_and(|i| i.contains("role:slave") && i.contains("master_link_status:up"))
        });
        assert!(demoted, "the old master did not become a replica");
        old
    }

    /// Kills (SIGKILL) the current master; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.servers
            .iter_mut()
            .find(|s| s.port() == port)
            .expect("a server of this group")
            .stop();
        port
    }

    /// Kills (SIGKILL) the master and the replica: the sentinels keep naming a master no
    /// one can reach.
    pub fn kill_servers(&mut self) {
        for server in &mut self.servers {
            server.stop();
        }
    }

    /// Waits until every sentinel names a master other than `old` and that server says it
    /// is a master. Returns how long it took.
    pub fn wait_for_failover(&self, old: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        let done = eventually(limit, || {
            let named: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|s| {
                    query::<(String, u16)>(
                        s.port(),
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(SERVICE),
                    )
                    .ok()
                    .map(|(_, p)| p)
                })
                .collect();
            let Some(Some(new)) = named.first().copied() else {
                return false;
            };
            new != old
                && named.iter().all(|p| *p == Some(new))
                && redis::cmd("ROLE")
                    .query::<redis::Role>(&mut self.server(new).raw())
                    .is_ok_and(|r| matches!(r, redis::Role::Primary { .. }))
        });
        assert!(done, "no failover within {limit:?}");
        started.elapsed()
    }
}

/// Starts three sentinels that know the master, its replica and each other from their
/// configuration (fixed `myid`s and `known-sentinel` lines), so that they can fail over
/// at once instead of after discovering each other through hello messages.
fn start_sentinels(master_port: u16, replica_port: u16) -> Vec<SentinelProcess> {
    let down_after = DOWN_AFTER.as_millis();
    let mut last = String::new();
    for attempt in 0..5u128 {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let ids: Vec<String> = (0..3u128)
            .map(|i| {
                let seed = (u128::from(std::process::id()) << 64) | (attempt << 8) | i;
                format!("{seed:040x}")
            })
            .collect();
        let mut started = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let mut conf = format!(
                "sentinel myid {id}\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {SERVICE} {down_after}\n\
                 sentinel failover-timeout {SERVICE} 2000\n\
                 sentinel parallel-syncs {SERVICE} 1\n\
                 sentinel known-replica {SERVICE} 127.0.0.1 {replica_port}\n",
                id = ids[i]
            );
            for (j, &other) in ports.iter().enumerate() {
                if j != i {
                    conf.push_str(&format!(
                        "sentinel known-sentinel {SERVICE} 127.0.0.1 {other} {}\n",
                        ids[j]
                    ));
                }
            }
            match RedisServer::launch().port(port).sentinel(&conf).try_start() {
                Ok(s) => started.push(s),
                // Most likely another process took one of the ports: start over on new ones.
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
        }
        if started.len() == 3 {
            return started;
        }
    }
    panic!("three sentinels did not start after 5 attempts: {last}");
}
