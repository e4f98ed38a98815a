//! A real Redis Cluster on loopback ports: three masters with one replica each, started by
//! the test (six `redis-server --cluster-enabled yes` processes joined with
//! `redis-cli --cluster create`), killed when dropped.
//!
//! ```ignore
//! let cluster = ClusterHarness::start();
//! let conn = cluster.connection();              // a crate Connection on redis+cluster://...
//! let killed = cluster.kill_master_of("key");   // SIGKILL the master owning the key's slot
//! cluster.wait_for_failover(killed);            // its replica is promoted, cluster_state:ok
//! ```

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_caches::Connection;

use super::{RedisServer, eventually, unique};

/// How long a node may be unreachable before the cluster marks it failed
/// (`cluster-node-timeout`): failovers take a few times this.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// One node as `CLUSTER NODES` shows it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node id.
    pub id: String,
    /// The client port.
    pub port: u16,
    /// `master` or `slave`, `myself`, `fail`, ...
    pub flags: Vec<String>,
    /// The id of its master, for a replica.
    pub master_id: Option<String>,
    /// The slot ranges it serves, for a master.
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    /// True for a master that is not failed.
    pub fn is_live_master(&self) -> bool {
        self.flags.iter().any(|f| f == "master") && !self.is_failed()
    }

    /// True when the cluster marks it failed (or possibly failed).
    pub fn is_failed(&self) -> bool {
        self.flags.iter().any(|f| f == "fail" || f == "fail?")
    }
}

/// One node in one node's view: its port, slots, and its master's port for a replica.
type NodeView = (u16, Vec<(u16, u16)>, Option<u16>);

/// A cluster of three masters with one replica each.
pub struct ClusterHarness {
    nodes: Vec<RedisServer>,
}

impl ClusterHarness {
    /// Starts six nodes, creates the cluster, and waits until every node reports
    /// `cluster_state:ok`, knows all six nodes, and every replica is in sync.
    pub fn start() -> ClusterHarness {
        let node_timeout = NODE_TIMEOUT.as_millis().to_string();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    &node_timeout,
                    // A replica may take over however long it was cut off from its master.
                    "--cluster-replica-validity-factor",
                    "0",
                    // No 5 s wait for more replicas before a full sync.
                    "--repl-diskless-sync-delay",
                    "0",
                ])
            })
            .collect();
        let harness = ClusterHarness { nodes };
        let addrs: Vec<String> = harness
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create (install redis-tools if redis-cli is missing)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ready = eventually(Duration::from_secs(30), || harness.is_ready());
        assert!(
            ready,
            "the cluster did not become ready: {:?}",
            harness.nodes_info()
        );
        harness
    }

    fn is_ready(&self) -> bool {
        self.ports().iter().all(|&port| {
            let Some(info) = self.try_info(port, "CLUSTER", Some("INFO")) else {
                return false;
            };
            let nodes = self.try_nodes_info(port).unwrap_or_default();
            let replicas_synced = nodes.iter().filter(|n| n.master_id.is_some()).all(|n| {
                self.try_info(n.port, "INFO", Some("replication"))
                    .is_some_and(|i| i.contains("master_link_status:up"))
            });
            info.contains("cluster_state:ok")
                && info.contains("cluster_known_nodes:6")
                && info.contains("cluster_slots_ok:16384")
                && nodes.iter().filter(|n| n.master_id.is_some()).count() == 3
                && replicas_synced
        })
    }

    /// The client ports of the six nodes (killed ones included).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// `redis+cluster://127.0.0.1:p1,...,127.0.0.1:p6`: every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `url()` with a query string appended (`"timeout=200ms"`).
    pub fn url_with(&self, query: &str) -> String {
        format!("{}/?{query}", self.url())
    }

    /// A crate connection to the cluster under a unique name.
    pub fn connection(&self) -> Connection {
        Connection::open(&unique("cluster"), &self.url()).expect("open a cluster connection")
    }

    /// A crate connection with DSN query options.
    pub fn connection_with(&self, query: &str) -> Connection {
        Connection::open(&unique("cluster"), &self.url_with(query))
            .expect("open a cluster connection")
    }

    /// A plain `redis` cluster connection, to check what the crate wrote.
    pub fn raw(&self) -> redis::cluster::ClusterConnection {
        let live: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::url)
            .collect();
        redis::cluster::ClusterClient::new(live)
            .and_then(|c| c.get_connection())
            .expect("plain redis cluster connection")
    }

    /// A plain connection to the node on `port`.
    pub fn node(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("plain connection to a cluster node")
    }

    fn try_info(&self, port: u16, cmd: &str, arg: Option<&str>) -> Option<String> {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .ok()?
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        con.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut c = redis::cmd(cmd);
        if let Some(arg) = arg {
            c.arg(arg);
        }
        c.query(&mut con).ok()
    }

    fn try_nodes_info(&self, port: u16) -> Option<Vec<NodeInfo>> {
        let text = self.try_info(port, "CLUSTER", Some("NODES"))?;
        Some(parse_cluster_nodes(&text))
    }

    /// `CLUSTER NODES` as seen by the first live node.
    pub fn nodes_info(&self) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .find_map(|n| self.try_nodes_info(n.port()))
            .unwrap_or_default()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.live_port();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.node(port))
            .expect("CLUSTER KEYSLOT")
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .map(RedisServer::port)
            .expect("a live node")
    }

    /// The port of the live master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        self.nodes_info()
            .into_iter()
            .find(|n| n.is_live_master() && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no live master serves slot {slot}"))
    }

    /// The port of a replica of the master on `master_port`.
    pub fn replica_of(&self, master_port: u16) -> u16 {
        let nodes = self.nodes_info();
        let id = nodes
            .iter()
            .find(|n| n.port == master_port)
            .map(|n| n.id.clone())
            .expect("the master is known");
        nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(id.as_str()) && !n.is_failed())
            .map(|n| n.port)
            .expect("the master has a replica")
    }

    /// Makes sure every write the master of `key` acknowledged so far reached its replica: a
    /// plain client writes a marker in the same slot, then `WAIT 1` for it (writes replicate
    /// in order, so everything before the marker is on the replica too).
    pub fn wait_replicated(&self, key: &str) {
        let marker = same_slot_marker(key);
        let mut con = self.node(self.master_of(key));
        redis::cmd("SET")
            .arg(&marker)
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

    /// Waits until every live node has the same view of who serves which slots and who
    /// replicates whom, reports `cluster_state:ok`, and every replica is in sync: after a
    /// manual failover, before killing anything.
    pub fn wait_stable(&self, limit: Duration) {
        let view = |port: u16| -> Option<Vec<NodeView>> {
            let nodes = self.try_nodes_info(port)?;
            let port_of = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.port);
            let mut v: Vec<_> = nodes
                .iter()
                .filter(|n| !n.is_failed())
                .map(|n| {
                    let master = n.master_id.as_deref().and_then(port_of);
                    (n.port, n.slots.clone(), master)
                })
                .collect();
            v.sort();
            Some(v)
        };
        let stable = eventually(limit, || {
            let live: Vec<u16> = self
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .map(RedisServer::port)
                .collect();
            let views: Vec<_> = live.iter().map(|&p| view(p)).collect();
            let Some(Some(first)) = views.first() else {
                return false;
            };
            views.iter().all(|v| v.as_ref() == Some(first))
                && live.iter().all(|&p| {
                    self.try_info(p, "CLUSTER", Some("INFO"))
                        .is_some_and(|i| i.contains("cluster_state:ok"))
                })
                && first.iter().filter(|n| n.2.is_some()).all(|n| {
                    self.try_info(n.0, "INFO", Some("replication"))
                        .is_some_and(|i| i.contains("master_link_status:up"))
                })
        });
        assert!(
            stable,
            "the cluster did not settle: {:?}",
            self.nodes_info()
        );
    }

    /// Kills (SIGKILL) the master serving `key`'s slot; returns its port.
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_of(key);
        self.kill(port);
        port
    }

    /// Freezes (SIGSTOP) the node on `port`: connections stay open, nothing answers. Resume
    /// it within `NODE_TIMEOUT`, or the cluster fails it over.
    pub fn pause(&self, port: u16) {
        self.server(port).pause();
    }

    /// Unfreezes (SIGCONT) a paused node.
    pub fn resume(&self, port: u16) {
        self.server(port).resume();
    }

    fn server(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
            .stop();
    }

    /// Waits until the node on `killed` is marked failed, one of its replicas serves its
    /// slots, and the live nodes report `cluster_state:ok`. Returns how long it took.
    pub fn wait_for_failover(&self, killed: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        let done = eventually(limit, || {
            let nodes = self.nodes_info();
            let old = nodes.iter().find(|n| n.port == killed);
            let failed = old.is_some_and(|n| n.is_failed() && n.slots.is_empty());
            failed
                && self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                    self.try_info(n.port(), "CLUSTER", Some("INFO"))
                        .is_some_and(|i| i.contains("cluster_state:ok"))
                })
        });
        assert!(
            done,
            "no failover within {limit:?}: {:?}",
            self.nodes_info()
        );
        started.elapsed()
    }
}

/// A key in the same slot as `key`, for markers.
fn same_slot_marker(key: &str) -> String {
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').map(|len| len > 0))
        .unwrap_or(false);
    if tagged {
        format!("{key}.replicated-marker")
    } else {
        format!("{{{key}}}.replicated-marker")
    }
}

/// Parses `CLUSTER NODES`.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let addr = fields[1].split('@').next()?;
            let port = addr.rsplit(':').next()?.parse().ok()?;
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_string(),
                port,
                flags: fields[2].split(',').map(str::to_string).collect(),
                master_id: (fields[3] != "-").then(|| fields[3].to_string()),
                slots,
            })
        })
        .collect()
}

/// Counts of the nodes' roles, for assertions and messages.
pub fn roles(nodes: &[NodeInfo]) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for n in nodes {
        let role = if n.is_failed() {
            "failed"
        } else if n.master_id.is_some() {
            "replica"
        } else {
            "master"
        };
        *counts.entry(role).or_insert(0) += 1;
    }
    counts
}
