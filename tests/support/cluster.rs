//! A real Redis Cluster on loopback ports: three masters with one replica each, started by
//! the test (six `--cluster-enabled yes` server processes joined with `CLUSTER` commands, as
//! `redis-cli --cluster create` would join them, so no `redis-cli` is needed), killed when
//! dropped.
//!
//! ```ignore
//! let cluster = ClusterHarness::start();
//! let conn = cluster.connection();              // a crate Connection on redis+cluster://...
//! let killed = cluster.kill_master_of("key");   // SIGKILL the master owning the key's slot
//! cluster.wait_for_failover(killed);            // its replica is promoted, cluster_state:ok
//! let new = cluster.add_master();                // a fourth master, without slots
//! cluster.move_slots(&slots, from, new, &Reshard::default()); // as `redis-cli --cluster reshard`
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis_caches::Connection;

use super::{RedisServer, eventually, unique};

/// How long a node may be unreachable before the cluster marks it failed
/// (`cluster-node-timeout`): failovers take a few times this.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The number of hash slots.
const SLOTS: u16 = 16384;

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
    /// Extra server arguments every node starts with.
    extra: Vec<String>,
}

/// Starts one cluster node (not joined to anything yet), with `--cluster-node-timeout`
/// [`NODE_TIMEOUT`] unless `extra` names another.
fn start_node(extra: &[String]) -> RedisServer {
    start_node_on(None, extra)
}

/// [`start_node`] on `port` when given (one that was free a moment ago), else on a free one.
fn start_node_on(port: Option<u16>, extra: &[String]) -> RedisServer {
    let node_timeout = NODE_TIMEOUT.as_millis().to_string();
    let own_timeout = extra.iter().any(|a| a == "--cluster-node-timeout");
    let mut args = vec!["--cluster-enabled", "yes"];
    if !own_timeout {
        args.extend(["--cluster-node-timeout", &node_timeout]);
    }
    args.extend([
        // A replica may take over however long it was cut off from its master.
        "--cluster-replica-validity-factor",
        "0",
        // No 5 s wait for more replicas before a full sync.
        "--repl-diskless-sync-delay",
        "0",
    ]);
    args.extend(extra.iter().map(String::as_str));
    let launch = RedisServer::launch().args(&args);
    match port {
        Some(port) => launch.port(port).start(),
        None => launch.start(),
    }
}

/// How [`ClusterHarness::move_slots`] moves the keys of a slot: `batch` keys per `MIGRATE`,
/// with `pause` between two batches (so that a workload meets slots half moved), and slots
/// put in the migrating state `chunk` at a time.
#[derive(Clone, Debug)]
pub struct Reshard {
    /// Keys per `MIGRATE` (`redis-cli --cluster reshard --cluster-pipeline`, 10 by default).
    pub batch: usize,
    /// The pause after each `MIGRATE`.
    pub pause: Duration,
    /// How many slots are `MIGRATING`/`IMPORTING` at once; their `SETSLOT` commands are
    /// pipelined (one config save per chunk rather than per slot).
    pub chunk: usize,
}

impl Default for Reshard {
    fn default() -> Self {
        Reshard {
            batch: 10,
            pause: Duration::ZERO,
            chunk: 256,
        }
    }
}

impl ClusterHarness {
    /// Starts six nodes, creates the cluster, and waits until every node reports
    /// `cluster_state:ok`, knows all six nodes, and every replica is in sync.
    pub fn start() -> ClusterHarness {
        ClusterHarness::start_with(&[])
    }

    /// [`start`](ClusterHarness::start) with extra server arguments for every node (such as
    /// `["--cluster-require-full-coverage", "no"]`); nodes added later get them too.
    pub fn start_with(extra: &[&str]) -> ClusterHarness {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let nodes: Vec<RedisServer> = (0..6).map(|_| start_node(&extra)).collect();
        ClusterHarness::create_from(nodes, extra)
    }

    /// [`start`](ClusterHarness::start) with its first node (a master) on `port`, a port of a
    /// cluster now gone (a free port the launcher picks may be one): that cluster's clients
    /// still running find this one there and, the slots being laid out the same way, follow
    /// its redirections to every other node.
    pub fn start_on_port_of_a_gone_one(port: u16) -> ClusterHarness {
        let extra = Vec::new();
        let mut nodes = vec![start_node_on(Some(port), &extra)];
        nodes.extend((1..6).map(|_| start_node(&extra)));
        ClusterHarness::create_from(nodes, extra)
    }

    fn create_from(nodes: Vec<RedisServer>, extra: Vec<String>) -> ClusterHarness {
        let harness = ClusterHarness { nodes, extra };
        harness.create();
        let ready = eventually(Duration::from_secs(30), || harness.is_ready());
        assert!(
            ready,
            "the cluster did not become ready: {:?}",
            harness.nodes_info()
        );
        harness
    }

    /// Joins the six nodes: three masters with a third of the slots each, and a replica of
    /// each master.
    fn create(&self) {
        let ports = self.ports();
        let run = |port: u16, cmd: &mut redis::Cmd| {
            cmd.exec(&mut self.node(port))
                .unwrap_or_else(|e| panic!("creating the cluster, on port {port}: {e}"));
        };
        // Distinct config epochs before the nodes meet, so no epoch collision has to be
        // resolved first.
        for (epoch, &port) in (1u32..).zip(&ports) {
            run(
                port,
                redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(epoch),
            );
        }
        // `ADDSLOTS` with every slot listed (`ADDSLOTSRANGE` needs Redis 7.0).
        for (i, &port) in ports[..3].iter().enumerate() {
            let slots: Vec<u16> = (SLOTS * i as u16 / 3..SLOTS * (i as u16 + 1) / 3).collect();
            run(port, redis::cmd("CLUSTER").arg("ADDSLOTS").arg(slots));
        }
        for &port in &ports[1..] {
            run(
                ports[0],
                redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(port),
            );
        }
        // A replica must know its master's node id before `CLUSTER REPLICATE`.
        let met = eventually(Duration::from_secs(30), || {
            ports.iter().all(|&p| {
                self.try_info(p, "CLUSTER", Some("INFO"))
                    .is_some_and(|i| i.contains("cluster_known_nodes:6"))
            })
        });
        assert!(
            met,
            "the cluster nodes did not meet: {:?}",
            self.nodes_info()
        );
        for i in 0..3 {
            let master_id: String = redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut self.node(ports[i]))
                .expect("CLUSTER MYID");
            run(
                ports[i + 3],
                redis::cmd("CLUSTER").arg("REPLICATE").arg(master_id),
            );
        }
    }

    fn is_ready(&self) -> bool {
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
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
                && info.contains(&known)
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

    /// The port of the live master serving `key`'s slot. While a failover is under way the
    /// node asked may for a moment name no live master for the slot (Valkey 8 does): this
    /// waits up to `NODE_TIMEOUT` for one.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        let serving = || {
            self.nodes_info()
                .into_iter()
                .find(|n| {
                    n.is_live_master() && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
                })
                .map(|n| n.port)
        };
        let mut port = None;
        eventually(NODE_TIMEOUT, || {
            port = serving();
            port.is_some()
        });
        port.unwrap_or_else(|| panic!("no live master serves slot {slot}: {:?}", self.nodes_info()))
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

    /// Starts one more node and joins it to the cluster as a master without slots
    /// (`redis-cli --cluster add-node`); returns its port once every node knows it.
    pub fn add_master(&mut self) -> u16 {
        let node = start_node(&self.extra);
        let port = node.port();
        let epoch = self.nodes.len() as u32 + 1;
        redis::cmd("CLUSTER")
            .arg("SET-CONFIG-EPOCH")
            .arg(epoch)
            .exec(&mut node.raw())
            .expect("CLUSTER SET-CONFIG-EPOCH on the new node");
        self.nodes.push(node);
        let seed = self.live_port();
        redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(port)
            .exec(&mut self.node(seed))
            .expect("CLUSTER MEET");
        let known = format!("cluster_known_nodes:{}", self.running().len());
        let joined = eventually(Duration::from_secs(30), || {
            self.running().iter().all(|&p| {
                self.try_info(p, "CLUSTER", Some("INFO"))
                    .is_some_and(|i| i.contains(&known) && i.contains("cluster_state:ok"))
            })
        });
        assert!(joined, "the new node did not join: {:?}", self.nodes_info());
        port
    }

    /// The ports of the running nodes.
    pub fn running(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::port)
            .collect()
    }

    /// The ports of the live masters, and the slots each serves, as the first live node sees
    /// them.
    pub fn masters(&self) -> Vec<(u16, Vec<u16>)> {
        self.nodes_info()
            .into_iter()
            .filter(NodeInfo::is_live_master)
            .map(|n| {
                let slots = n.slots.iter().flat_map(|&(a, b)| a..=b).collect();
                (n.port, slots)
            })
            .collect()
    }

    /// The node id of the node on `port` (`CLUSTER MYID`).
    pub fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.node(port))
            .expect("CLUSTER MYID")
    }

    /// Puts `slots` in the migrating state from the master on `from` to the master on `to`
    /// (`SETSLOT IMPORTING` on the target first, then `SETSLOT MIGRATING` on the source, as
    /// redis-cli does), pipelined.
    pub fn begin_migration(&self, slots: &[u16], from: u16, to: u16) {
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        self.setslot(to, slots, "IMPORTING", &from_id)
            .unwrap_or_else(|e| panic!("SETSLOT IMPORTING on {to}: {e}"));
        self.setslot(from, slots, "MIGRATING", &to_id)
            .unwrap_or_else(|e| panic!("SETSLOT MIGRATING on {from}: {e}"));
    }

    /// `CLUSTER SETSLOT slot <state> <id>` for each of `slots` on the node on `port`,
    /// pipelined over several connections at once: Valkey 8 answers each only once the
    /// node's replicas have it, and a client waits for one at a time.
    fn setslot(&self, port: u16, slots: &[u16], state: &str, id: &str) -> redis::RedisResult<()> {
        const LANES: usize = 16;
        let lane = slots.len().div_ceil(LANES).max(1);
        std::thread::scope(|scope| {
            let lanes: Vec<_> = slots
                .chunks(lane)
                .map(|part| {
                    scope.spawn(move || {
                        let mut pipe = redis::pipe();
                        for &slot in part {
                            pipe.cmd("CLUSTER")
                                .arg("SETSLOT")
                                .arg(slot)
                                .arg(state)
                                .arg(id)
                                .ignore();
                        }
                        pipe.exec(&mut self.node(port))
                    })
                })
                .collect();
            lanes
                .into_iter()
                .try_for_each(|l| l.join().expect("a SETSLOT lane panicked"))
        })
    }

    /// Moves up to `count` keys of `slot` from `from` to `to` with one `MIGRATE`; returns how
    /// many it moved (0 once the slot is empty on the source).
    pub fn migrate_keys(&self, slot: u16, count: usize, from: u16, to: u16) -> usize {
        migrate_batch(&mut self.node(from), slot, count, to)
    }

    /// Moves the named keys (all in one migrating slot) from `from` to `to` with one
    /// `MIGRATE`.
    pub fn migrate(&self, keys: &[&str], from: u16, to: u16) {
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys)
            .exec(&mut self.node(from))
            .unwrap_or_else(|e| panic!("MIGRATE {keys:?} from {from} to {to}: {e}"));
    }

    /// Gives `slots` to the master on `to`: `SETSLOT NODE` on the target, then the source,
    /// then every other master (as redis-cli does; replicas learn it from their masters),
    /// pipelined.
    pub fn finish_migration(&self, slots: &[u16], from: u16, to: u16) {
        let to_id = self.node_id(to);
        let masters: Vec<u16> = self.masters().into_iter().map(|(p, _)| p).collect();
        let mut order = vec![to, from];
        order.extend(masters.into_iter().filter(|p| *p != to && *p != from));
        for port in order {
            match self.setslot(port, slots, "NODE", &to_id) {
                Ok(()) => {}
                // A master that gave away its last slot becomes a replica of the node that
                // took it (Redis 7.0+, `cluster-allow-replica-migration`), as soon as it
                // hears of the new owner.
                Err(e) if port == from && e.to_string().contains("only with masters") => {}
                Err(e) => panic!("SETSLOT NODE on {port}: {e}"),
            }
        }
    }

    /// Moves `slots` from the master on `from` to the master on `to` while the cluster
    /// serves traffic, as `redis-cli --cluster reshard` does: per chunk of slots,
    /// `IMPORTING`/`MIGRATING`, then each slot's keys with `MIGRATE` in batches, then
    /// `SETSLOT NODE` everywhere. Returns how many keys moved.
    pub fn move_slots(&self, slots: &[u16], from: u16, to: u16, how: &Reshard) -> usize {
        let mut moved = 0;
        let mut source = self.node(from);
        for chunk in slots.chunks(how.chunk.max(1)) {
            self.begin_migration(chunk, from, to);
            let mut pipe = redis::pipe();
            for &slot in chunk {
                pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot);
            }
            let counts: Vec<usize> = pipe.query(&mut source).expect("COUNTKEYSINSLOT");
            for (&slot, _) in chunk.iter().zip(counts).filter(|(_, n)| *n > 0) {
                loop {
                    let n = migrate_batch(&mut source, slot, how.batch.max(1), to);
                    if n == 0 {
                        break;
                    }
                    moved += n;
                    if !how.pause.is_zero() {
                        std::thread::sleep(how.pause);
                    }
                }
            }
            self.finish_migration(chunk, from, to);
        }
        moved
    }

    /// Summed over the running nodes: how often they answered `MOVED`, `ASK` and
    /// `TRYAGAIN` (`INFO errorstats`), and ran `ASKING` (`INFO commandstats`).
    pub fn redirections(&self) -> HashMap<&'static str, u64> {
        let mut sums = HashMap::new();
        for port in self.running() {
            let text = [
                self.try_info(port, "INFO", Some("errorstats")),
                self.try_info(port, "INFO", Some("commandstats")),
            ]
            .into_iter()
            .flatten()
            .collect::<String>();
            for (name, prefix) in [
                ("MOVED", "errorstat_MOVED:count="),
                ("ASK", "errorstat_ASK:count="),
                ("TRYAGAIN", "errorstat_TRYAGAIN:count="),
                ("ASKING", "cmdstat_asking:calls="),
            ] {
                let n: u64 = text
                    .lines()
                    .filter_map(|l| l.strip_prefix(prefix))
                    .filter_map(|rest| rest.split(',').next()?.trim().parse::<u64>().ok())
                    .sum();
                *sums.entry(name).or_insert(0) += n;
            }
        }
        sums
    }

    /// Waits until every running node agrees that the master on `port` serves `slots`.
    pub fn wait_owner(&self, slots: &[u16], port: u16, limit: Duration) {
        let agreed = eventually(limit, || {
            self.running().iter().all(|&p| {
                self.try_nodes_info(p).is_some_and(|nodes| {
                    nodes.iter().any(|n| {
                        n.port == port
                            && slots
                                .iter()
                                .all(|s| n.slots.iter().any(|&(a, b)| (a..=b).contains(s)))
                    })
                })
            })
        });
        assert!(
            agreed,
            "not every node sees {port} serve the moved slots: {:?}",
            self.nodes_info()
        );
    }
}

/// Moves up to `count` keys of `slot` to the node on port `to` with one `MIGRATE` sent on
/// `source`; returns how many it moved.
fn migrate_batch(source: &mut redis::Connection, slot: u16, count: usize, to: u16) -> usize {
    let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(count)
        .query(source)
        .expect("CLUSTER GETKEYSINSLOT");
    if keys.is_empty() {
        return 0;
    }
    redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&keys)
        .exec(source)
        .unwrap_or_else(|e| panic!("MIGRATE of slot {slot} to {to}: {e}"));
    keys.len()
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
