//! The connections an r2d2 pool holds, and how the pool makes them.
//!
//! The pool's `connect` does no I/O: it hands out an unconnected [`RedisConn`], which the
//! caller connects itself, under its own deadline, when it first needs it. So a refused or
//! rejected connection (wrong password, bad certificate) is reported to the caller at once,
//! with its real cause, instead of r2d2 retrying it in the background until `pool_timeout`
//! runs out (and hammering the server with failing `AUTH`s meanwhile).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::{RedisError, Value};

use super::cluster::{ClusterConn, ClusterTopology};
use super::node::{Failure, NodeConn, NodeSettings, Packed, ServerInfo};
use super::redis_sentinel::SentinelMaster;
use crate::deadline::Deadline;

/// What a pool connects to.
pub(crate) enum Topology {
    /// One server (TCP, TLS or Unix socket).
    Single {
        client: redis::Client,
        settings: NodeSettings,
    },
    /// The master of a Sentinel-managed group, looked up at each new connection.
    Sentinel(SentinelMaster),
    /// A Redis Cluster.
    Cluster(Arc<ClusterTopology>),
}

impl Topology {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Topology::Single { .. } => "single",
            Topology::Sentinel(_) => "sentinel",
            Topology::Cluster(_) => "cluster",
        }
    }
}

/// Makes connections for a pool. Public only because it appears in
/// [`Pooled`](super::Pooled)'s and [`Connection::pool`](super::Connection::pool)'s types.
pub struct Manager {
    pub(crate) topology: Arc<Topology>,
    pub(crate) generation: Arc<AtomicU64>,
    pub(crate) timeout: Option<std::time::Duration>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("topology", &self.topology.name())
            .finish_non_exhaustive()
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = RedisConn;
    type Error = RedisError;

    fn connect(&self) -> Result<RedisConn, RedisError> {
        Ok(RedisConn {
            state: State::Unconnected,
            generation: self.generation.load(Ordering::Acquire),
            topology: self.topology.clone(),
            timeout: self.timeout,
        })
    }

    fn is_valid(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        if conn.usable() {
            Ok(())
        } else {
            Err(RedisError::from((
                redis::ErrorKind::Io,
                "the connection is unusable",
            )))
        }
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        !conn.usable() || conn.generation < self.generation.load(Ordering::Acquire)
    }
}

enum State {
    /// Handed out by the pool, not connected yet.
    Unconnected,
    /// One server, or the master a sentinel named.
    Node(NodeConn),
    Cluster(ClusterConn),
    /// A connection attempt failed, or the connection was discarded: the pool drops it.
    Discarded,
}

/// One connection of a pool: to one server, to the current master of a Sentinel-managed
/// group, or to the nodes of a cluster. Implements [`redis::ConnectionLike`], so raw `redis`
/// commands can run on it (on a cluster, a command is sent to the node serving its first
/// key).
pub struct RedisConn {
    state: State,
    pub(crate) generation: u64,
    topology: Arc<Topology>,
    timeout: Option<std::time::Duration>,
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unconnected => "unconnected",
            State::Node(_) | State::Cluster(_) => "connected",
            State::Discarded => "discarded",
        };
        f.debug_struct("RedisConn")
            .field("topology", &self.topology.name())
            .field("state", &state)
            .field("generation", &self.generation)
            .finish()
    }
}

impl RedisConn {
    /// Whether [`connect`](RedisConn::connect) has succeeded.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.state, State::Node(_) | State::Cluster(_))
    }

    /// Whether the connection may be handed out again.
    pub(crate) fn usable(&self) -> bool {
        match &self.state {
            State::Unconnected => true,
            State::Node(n) => n.usable(),
            State::Cluster(c) => c.usable(),
            State::Discarded => false,
        }
    }

    /// The server a connection to one server (not a cluster) reaches, once connected.
    pub(crate) fn server(&self) -> Option<&Arc<ServerInfo>> {
        match &self.state {
            State::Node(n) => Some(n.info()),
            _ => None,
        }
    }

    /// Makes the pool drop this connection when it comes back.
    pub(crate) fn discard(&mut self) {
        self.state = State::Discarded;
    }

    /// Connects (the pool handed it out unconnected). `deadline` bounds the whole attempt;
    /// each connection opened is also bounded by `connect_timeout`.
    pub(crate) fn connect(&mut self, deadline: &Deadline) -> Result<(), RedisError> {
        let state = match &*self.topology {
            Topology::Single { client, settings } => {
                State::Node(NodeConn::open(client, settings, deadline)?)
            }
            Topology::Sentinel(master) => State::Node(master.connect(deadline)?),
            Topology::Cluster(topology) => {
                let mut conn = ClusterConn::new(topology.clone());
                conn.connect(deadline)?;
                State::Cluster(conn)
            }
        };
        self.state = state;
        Ok(())
    }

    /// Sends one request about `key` and reads its `replies` replies: one command or a
    /// script (`replies` 1, its reply as it is), or a pipeline of commands on `key`'s slot
    /// (its replies in a [`Value::Array`]; on a cluster, redirections inside it come back as
    /// error replies, not followed).
    pub(crate) fn request(
        &mut self,
        key: &[u8],
        packed: &Packed<'_>,
        replies: usize,
        deadline: &Deadline,
    ) -> Result<Value, Failure> {
        match &mut self.state {
            State::Node(node) => {
                let bytes = packed.bytes(node.info());
                if replies == 1 {
                    node.request_one(&bytes, deadline)
                } else {
                    node.request(&bytes, replies, deadline).map(Value::Array)
                }
            }
            State::Cluster(cluster) if replies == 1 => cluster.request(key, packed, deadline),
            State::Cluster(cluster) => cluster
                .request_many(key, packed, replies, deadline)
                .map(Value::Array),
            State::Unconnected | State::Discarded => Err(Failure::NotSent(RedisError::from((
                redis::ErrorKind::Io,
                "the connection is not connected",
            )))),
        }
    }

    /// The cluster's shared topology, on a cluster.
    pub(crate) fn cluster(&self) -> Option<&Arc<ClusterTopology>> {
        match &self.state {
            State::Cluster(c) => Some(c.topology()),
            _ => None,
        }
    }

    pub(crate) fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Sends raw packed commands, for [`redis::ConnectionLike`]: routed by the first key of
    /// the first command that has one.
    ///
    /// A request must ask for one reply per command it holds: a reply left unread would be
    /// read by the next caller of this pooled connection as the answer to its own command
    /// (another key's value). Bytes that are not commands get a protocol error from the
    /// server, which then closes the connection: it is discarded after the request.
    fn raw(&mut self, packed: &[u8], replies: usize) -> Result<Vec<Value>, RedisError> {
        match super::raw::command_count(packed) {
            Some(n) if n == replies => {}
            Some(n) => {
                return Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "a request must read one reply per command",
                    format!("{n} commands sent, {replies} replies asked for; nothing was sent"),
                )));
            }
            None => {
                let result = self.raw_unchecked(packed, replies);
                self.discard();
                return result;
            }
        }
        self.raw_unchecked(packed, replies)
    }

    fn raw_unchecked(&mut self, packed: &[u8], replies: usize) -> Result<Vec<Value>, RedisError> {
        let deadline = Deadline::after(self.timeout);
        let result = match &mut self.state {
            State::Node(node) => node.request(packed, replies, &deadline),
            State::Cluster(cluster) => {
                let key = super::raw::one_slot_key(packed)?.unwrap_or_default();
                if replies == 1 {
                    cluster
                        .request(&key, &Packed::Fixed(packed), &deadline)
                        .map(|v| vec![v])
                } else {
                    cluster.request_many(&key, &Packed::Fixed(packed), replies, &deadline)
                }
            }
            State::Unconnected | State::Discarded => {
                return Err(RedisError::from((
                    redis::ErrorKind::Io,
                    "the connection is not connected",
                )));
            }
        };
        result.map_err(Failure::into_error)
    }
}

impl redis::ConnectionLike for RedisConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        self.raw(cmd, 1)?
            .pop()
            .ok_or_else(|| RedisError::from((redis::ErrorKind::Parse, "no reply")))
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        let mut replies = self.raw(cmd, offset + count)?;
        Ok(replies.split_off(offset.min(replies.len())))
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        self.req_packed_command(&redis::cmd("PING").get_packed_command())
            .is_ok()
    }

    fn is_open(&self) -> bool {
        self.usable()
    }
}
