//! Redis Cluster routing: a slot map shared by a pool, and pooled connections that hold one
//! connection per node they have talked to.
//!
//! Every request the crate sends is one command (or a script) about one key, so routing is by
//! that key's hash slot. What the router does by itself, inside one call's deadline:
//!
//! - `MOVED slot host:port`: the command was not run. The slot's owner is updated, the whole
//!   map is refreshed (`CLUSTER SLOTS`, at most once per [`REFRESH_EVERY`]), and the command
//!   is sent to the new owner.
//! - `ASK slot host:port` (a slot being migrated, the key already moved): the command was not
//!   run; it is sent once to that node, preceded by `ASKING`, without changing the map.
//! - A node that cannot be reached: nothing was sent; the map is marked stale so that the
//!   next attempt asks the cluster again.
//!
//! `TRYAGAIN`, `CLUSTERDOWN`, `LOADING` and the like come back to the caller as error replies:
//! whether and how long to retry is the connection's policy, the same for every topology. A
//! command whose reply was lost (timeout, connection dropped after writing) is never resent
//! here.
//!
//! While a slot migrates (`redis-cli --cluster reshard`), the source node runs a request
//! whose keys it all still holds, answers `ASK` when it holds none of them (moved, or not
//! created yet: the importing node serves them), and `TRYAGAIN` when they are split (Redis
//! 6.2 answers `ASK` there too, and the importing node `TRYAGAIN`): a request never runs on a
//! part of its keys. The crate's scripts declare every key they write, and those they read
//! to decide what to write (a region's tree: see the region module's "Redis Cluster"); a
//! script that still names a key its node lacks there fails before its first write
//! ("non local key", read as `TRYAGAIN`).
//! `tests/cluster_resharding.rs` drives every case on a real cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::{RedisError, Value};

use super::endpoint::Endpoints;
use super::node::{Failure, NodeConn, NodeSettings, Packed};
use crate::deadline::Deadline;

/// Number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// The shortest time between two full refreshes of the slot map.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_millis(100);

/// How many `MOVED`/`ASK` redirections one request follows before giving up.
const MAX_REDIRECTS: usize = 5;

/// The hash slot of `key`: CRC16 (XMODEM) of its hash tag (the text between the first `{`
/// and the next `}`, when not empty) or of the whole key, modulo 16384.
pub(crate) fn slot_of(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(tagged) % SLOTS as u16
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Which node serves each slot, as last learnt.
struct SlotMap {
    /// The `host:port` serving each slot; `None` when unknown.
    owners: Vec<Option<Arc<str>>>,
    /// Every master seen, for refreshing.
    nodes: Vec<Arc<str>>,
    /// When the last full refresh ran.
    refreshed: Option<Instant>,
    /// Something suggests the map is out of date: refresh before the next use.
    stale: bool,
}

/// What a pool of cluster connections shares: the seeds, the slot map, clients per node.
pub(crate) struct ClusterTopology {
    seeds: Vec<(String, u16)>,
    endpoints: Endpoints,
    settings: NodeSettings,
    map: RwLock<SlotMap>,
    clients: Mutex<HashMap<Arc<str>, redis::Client>>,
    /// Serializes refreshes, so that a burst of callers asks the cluster once.
    refreshing: Mutex<()>,
}

impl ClusterTopology {
    pub(crate) fn new(
        seeds: Vec<(String, u16)>,
        endpoints: Endpoints,
        settings: NodeSettings,
    ) -> ClusterTopology {
        ClusterTopology {
            seeds,
            endpoints,
            settings,
            map: RwLock::new(SlotMap {
                owners: vec![None; SLOTS],
                nodes: Vec::new(),
                refreshed: None,
                stale: true,
            }),
            clients: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(()),
        }
    }

    /// Marks the map stale: the next request refreshes it first.
    pub(crate) fn mark_stale(&self) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stale = true;
    }

    fn client(&self, addr: &Arc<str>) -> Result<redis::Client, RedisError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let (host, port) = split_addr(addr)?;
        let client = self
            .endpoints
            .client(&host, port, self.settings.redis_info())?;
        clients.insert(addr.clone(), client.clone());
        Ok(client)
    }

    fn open(&self, addr: &Arc<str>, deadline: &Deadline) -> Result<NodeConn, RedisError> {
        let client = self.client(addr)?;
        NodeConn::open(&client, &self.settings, deadline)
    }

    /// The node serving `slot`, refreshing the map first when it is stale or does not know.
    fn owner(&self, slot: u16, deadline: &Deadline) -> Result<Arc<str>, Failure> {
        {
            let map = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !map.stale
                && let Some(owner) = &map.owners[usize::from(slot)]
            {
                return Ok(owner.clone());
            }
        }
        self.refresh(deadline).map_err(Failure::NotSent)?;
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.owners[usize::from(slot)].clone().ok_or_else(|| {
            Failure::NotSent(RedisError::from((
                redis::ErrorKind::ClusterConnectionNotFound,
                "no cluster node serves the key's slot",
                format!("slot {slot}"),
            )))
        })
    }

    /// The node serving `slot`, as [`owner`](ClusterTopology::owner) finds it: for the near
    /// cache's tracking connections, which route by the same map.
    pub(crate) fn owner_of(&self, slot: u16, deadline: &Deadline) -> Result<Arc<str>, RedisError> {
        self.owner(slot, deadline).map_err(Failure::into_error)
    }

    /// Asks the cluster for its slot map (`CLUSTER SLOTS`), from the nodes known so far, then
    /// the seeds; at most once per [`REFRESH_EVERY`] unless the map knows nothing.
    fn refresh(&self, deadline: &Deadline) -> Result<(), RedisError> {
        let _one_at_a_time = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let candidates: Vec<Arc<str>> = {
            let map = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let recent = map.refreshed.is_some_and(|at| at.elapsed() < REFRESH_EVERY);
            if recent && !map.nodes.is_empty() {
                // Another caller just refreshed (or the map is as good as it gets for now).
                return Ok(());
            }
            let mut candidates = map.nodes.clone();
            for (host, port) in &self.seeds {
                let seed: Arc<str> = Arc::from(join_addr(host, *port));
                if !candidates.contains(&seed) {
                    candidates.push(seed);
                }
            }
            candidates
        };
        let mut last_error = None;
        for addr in candidates {
            match self.ask_slots(&addr, deadline) {
                Ok((owners, nodes)) => {
                    let mut map = self
                        .map
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    map.owners = owners;
                    map.nodes = nodes;
                    map.refreshed = Some(Instant::now());
                    map.stale = false;
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
            if deadline.expired() {
                break;
            }
        }
        Err(last_error.unwrap_or_else(|| {
            RedisError::from((
                redis::ErrorKind::ClusterConnectionNotFound,
                "no cluster node answered",
            ))
        }))
    }

    #[allow(clippy::type_complexity)]
    fn ask_slots(
        &self,
        addr: &Arc<str>,
        deadline: &Deadline,
    ) -> Result<(Vec<Option<Arc<str>>>, Vec<Arc<str>>), RedisError> {
        let mut con = self.open(addr, deadline)?;
        let reply = con
            .request_one(
                &redis::cmd("CLUSTER").arg("SLOTS").get_packed_command(),
                &deadline.capped(self.settings.connect_timeout),
            )
            .map_err(Failure::into_error)?
            .extract_error()?;
        let (asked_host, _) = split_addr(addr)?;
        parse_slots(reply, &asked_host)
    }

    /// Learns from a `MOVED` that `slot` is now served by `addr`, and asks for a refresh.
    fn moved(&self, slot: u16, addr: Arc<str>) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.nodes.contains(&addr) {
            map.nodes.push(addr.clone());
        }
        map.owners[usize::from(slot)] = Some(addr);
        map.stale = true;
    }
}

/// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ..], replicas..], ..]`.
/// An empty host (or `?`) means the node that answered.
#[allow(clippy::type_complexity)]
fn parse_slots(
    reply: Value,
    asked_host: &str,
) -> Result<(Vec<Option<Arc<str>>>, Vec<Arc<str>>), RedisError> {
    let bad = || RedisError::from((redis::ErrorKind::Parse, "unexpected CLUSTER SLOTS reply"));
    let Value::Array(ranges) = reply else {
        return Err(bad());
    };
    let mut owners = vec![None; SLOTS];
    let mut nodes: Vec<Arc<str>> = Vec::new();
    for range in ranges {
        let Value::Array(items) = range else {
            return Err(bad());
        };
        let mut items = items.into_iter();
        let start: usize = redis::from_redis_value(items.next().ok_or_else(bad)?)?;
        let end: usize = redis::from_redis_value(items.next().ok_or_else(bad)?)?;
        let Some(Value::Array(master)) = items.next() else {
            return Err(bad());
        };
        let mut master = master.into_iter();
        let host: String = redis::from_redis_value(master.next().ok_or_else(bad)?)?;
        let port: u16 = redis::from_redis_value(master.next().ok_or_else(bad)?)?;
        let host = if host.is_empty() || host == "?" {
            asked_host.to_string()
        } else {
            host
        };
        let addr: Arc<str> = Arc::from(join_addr(&host, port));
        if !nodes.contains(&addr) {
            nodes.push(addr.clone());
        }
        if start > end || end >= SLOTS {
            return Err(bad());
        }
        for owner in &mut owners[start..=end] {
            *owner = Some(addr.clone());
        }
    }
    Ok((owners, nodes))
}

fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) fn split_addr(addr: &str) -> Result<(String, u16), RedisError> {
    let bad = || {
        RedisError::from((
            redis::ErrorKind::Parse,
            "a cluster node address is not host:port",
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port.parse().map_err(|_| bad())?))
}

/// A redirection in an error reply: `MOVED 3999 127.0.0.1:6381` or `ASK ...`.
fn redirect(reply: &Value) -> Option<(bool, u16, Arc<str>)> {
    let Value::ServerError(e) = reply else {
        return None;
    };
    let ask = match e.code() {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let mut words = e.details()?.split_whitespace();
    let slot = words.next()?.parse().ok()?;
    let addr = words.next()?;
    Some((ask, slot, Arc::from(addr)))
}

/// One pooled connection to a cluster: a connection per node, opened when first needed.
pub(crate) struct ClusterConn {
    topology: Arc<ClusterTopology>,
    nodes: HashMap<Arc<str>, NodeConn>,
}

impl ClusterConn {
    pub(crate) fn new(topology: Arc<ClusterTopology>) -> ClusterConn {
        ClusterConn {
            topology,
            nodes: HashMap::new(),
        }
    }

    /// Loads the slot map if it knows nothing yet, so that a connection that cannot reach
    /// the cluster fails when it is opened.
    pub(crate) fn connect(&mut self, deadline: &Deadline) -> Result<(), RedisError> {
        let known = {
            let map = self
                .topology
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            !map.nodes.is_empty()
        };
        if known {
            Ok(())
        } else {
            self.topology.refresh(deadline)
        }
    }

    fn node(&mut self, addr: &Arc<str>, deadline: &Deadline) -> Result<&mut NodeConn, Failure> {
        if self.nodes.get(addr).is_some_and(|n| !n.usable()) {
            self.nodes.remove(addr);
        }
        if !self.nodes.contains_key(addr) {
            let node = self.topology.open(addr, deadline).map_err(|e| {
                // An unreachable node: a failover may have moved its slots.
                self.topology.mark_stale();
                Failure::NotSent(e)
            })?;
            self.nodes.insert(addr.clone(), node);
        }
        self.nodes
            .get_mut(addr)
            .ok_or_else(|| Failure::NotSent(RedisError::from((redis::ErrorKind::Io, "lost"))))
    }

    /// Sends one command about `key` to the node serving its slot, following redirections.
    pub(crate) fn request(
        &mut self,
        key: &[u8],
        packed: &Packed<'_>,
        deadline: &Deadline,
    ) -> Result<Value, Failure> {
        let slot = slot_of(key);
        let mut asking: Option<Arc<str>> = None;
        for _ in 0..=MAX_REDIRECTS {
            let (addr, ask) = match asking.take() {
                Some(addr) => (addr, true),
                None => (self.topology.owner(slot, deadline)?, false),
            };
            let node = self.node(&addr, deadline)?;
            let info = node.info().clone();
            let packed = packed.bytes(&info);
            let reply = if ask {
                let mut with_asking = redis::cmd("ASKING").get_packed_command();
                with_asking.extend_from_slice(&packed);
                let mut replies = node.request(&with_asking, 2, deadline)?;
                replies.pop().unwrap_or(Value::Nil)
            } else {
                node.request_one(&packed, deadline)?
            };
            match redirect(&reply) {
                Some((false, moved_slot, to)) => self.topology.moved(moved_slot, to),
                Some((true, _, to)) => asking = Some(to),
                None => return Ok(reply),
            }
        }
        Err(Failure::NotSent(RedisError::from((
            redis::ErrorKind::ClusterConnectionNotFound,
            "too many cluster redirections",
        ))))
    }

    /// Sends a raw pipeline whose keys share `key`'s slot to the node serving it, and reads
    /// `replies` replies. Redirections inside a pipeline come back as error replies.
    pub(crate) fn request_many(
        &mut self,
        key: &[u8],
        packed: &Packed<'_>,
        replies: usize,
        deadline: &Deadline,
    ) -> Result<Vec<Value>, Failure> {
        let addr = self.topology.owner(slot_of(key), deadline)?;
        let node = self.node(&addr, deadline)?;
        let info = node.info().clone();
        node.request(&packed.bytes(&info), replies, deadline)
    }

    /// Whether every node connection is still usable.
    pub(crate) fn usable(&self) -> bool {
        self.nodes.values().all(NodeConn::usable)
    }

    pub(crate) fn topology(&self) -> &Arc<ClusterTopology> {
        &self.topology
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"{user1000}.followers"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_eq!(crc16(b"123456789"), 0x31C3);
        // An empty tag hashes the whole key.
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(slot_of(b""), 0);
    }

    #[test]
    fn addresses_split_and_join() {
        assert_eq!(join_addr("127.0.0.1", 7000), "127.0.0.1:7000");
        assert_eq!(join_addr("::1", 7000), "[::1]:7000");
        assert_eq!(split_addr("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert_eq!(split_addr("h:1").unwrap(), ("h".into(), 1));
        assert!(split_addr("nope").is_err());
        assert!(split_addr("h:port").is_err());
    }

    #[test]
    fn redirections_are_parsed() {
        let parse = |b: &[u8]| redis::parse_redis_value(b).unwrap();
        assert_eq!(
            redirect(&parse(b"-MOVED 3999 127.0.0.1:6381\r\n")),
            Some((false, 3999, Arc::from("127.0.0.1:6381")))
        );
        assert_eq!(
            redirect(&parse(b"-ASK 12 h:1\r\n")),
            Some((true, 12, Arc::from("h:1")))
        );
        assert_eq!(redirect(&parse(b"-TRYAGAIN later\r\n")), None);
        assert_eq!(redirect(&parse(b"-MOVED garbage\r\n")), None);
        assert_eq!(redirect(&parse(b"+OK\r\n")), None);
    }

    #[test]
    fn slot_maps_are_parsed() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("", 7001),
                node("10.0.0.9", 7009),
            ]),
        ]);
        let (owners, nodes) = parse_slots(reply, "10.0.0.2").unwrap();
        assert_eq!(owners[0].as_deref(), Some("10.0.0.1:7000"));
        assert_eq!(owners[5460].as_deref(), Some("10.0.0.1:7000"));
        assert_eq!(owners[5461].as_deref(), Some("10.0.0.2:7001"));
        assert_eq!(owners[16383].as_deref(), Some("10.0.0.2:7001"));
        assert_eq!(nodes.len(), 2);
        assert!(parse_slots(Value::Int(1), "h").is_err());
        let out_of_range = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(20000),
            node("h", 1),
        ])]);
        assert!(parse_slots(out_of_range, "h").is_err());
    }
}
