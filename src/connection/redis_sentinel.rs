//! Finding the current master of a group that Redis Sentinel manages.
//!
//! Not `redis::sentinel::SentinelClient`: its sync API opens its connections to the
//! sentinels and to the master (for the `ROLE` check) without a connect or read timeout, so
//! one frozen sentinel would hang every new connection of the pool. This follows the same
//! client protocol (ask each sentinel in turn for the master's address, check with `ROLE`
//! that it is a master, prefer the sentinel that answered last) under the DSN's timeouts.

use std::sync::Mutex;

use redis::RedisError;

use super::endpoint::Endpoints;
use super::node::{NodeConn, NodeSettings};
use crate::deadline::Deadline;

/// The sentinels of one service, and how to reach the master they name.
pub(crate) struct SentinelMaster {
    service: String,
    /// The sentinels in order of preference: the last one that answered comes first.
    sentinels: Mutex<Vec<(String, redis::Client)>>,
    /// How to talk to sentinels: no credentials, no database.
    sentinel_settings: NodeSettings,
    /// Database, credentials and protocol for the master.
    settings: NodeSettings,
    endpoints: Endpoints,
}

impl SentinelMaster {
    pub(crate) fn new(
        service: String,
        sentinels: Vec<(String, redis::Client)>,
        settings: NodeSettings,
        endpoints: Endpoints,
    ) -> SentinelMaster {
        let sentinel_settings = NodeSettings {
            username: None,
            password: None,
            db: 0,
            protocol: crate::dsn::Protocol::Resp2,
            ..settings.clone()
        };
        SentinelMaster {
            service,
            sentinels: Mutex::new(sentinels),
            sentinel_settings,
            settings,
            endpoints,
        }
    }

    /// Opens a connection to the current master.
    pub(crate) fn connect(&self, deadline: &Deadline) -> Result<NodeConn, RedisError> {
        let sentinels = self
            .sentinels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut problems = Vec::new();
        for (addr, sentinel) in &sentinels {
            match self.ask(sentinel, deadline) {
                Ok(con) => {
                    let mut shared = self
                        .sentinels
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(at) = shared.iter().position(|(a, _)| a == addr) {
                        let answered = shared.remove(at);
                        shared.insert(0, answered);
                    }
                    return Ok(con);
                }
                Err(problem) => problems.push(format!("sentinel {addr}: {problem}")),
            }
        }
        Err(RedisError::from((
            redis::ErrorKind::MasterNameNotFoundBySentinel,
            "no sentinel named a reachable master",
            format!("service {:?}: {}", self.service, problems.join("; ")),
        )))
    }

    /// The address of the master, as the first sentinel that answers names it (without
    /// checking its role: the near cache's tracking connection checks it by itself, since it
    /// runs its own handshake).
    pub(crate) fn master_addr(&self, deadline: &Deadline) -> Result<(String, u16), RedisError> {
        let sentinels = self
            .sentinels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut problems = Vec::new();
        for (addr, sentinel) in &sentinels {
            match self.master_addr_from(sentinel, deadline) {
                Ok(found) => return Ok(found),
                Err(problem) => problems.push(format!("sentinel {addr}: {problem}")),
            }
        }
        Err(RedisError::from((
            redis::ErrorKind::MasterNameNotFoundBySentinel,
            "no sentinel named a master",
            format!("service {:?}: {}", self.service, problems.join("; ")),
        )))
    }

    fn master_addr_from(
        &self,
        sentinel: &redis::Client,
        deadline: &Deadline,
    ) -> Result<(String, u16), String> {
        let mut con = NodeConn::open(sentinel, &self.sentinel_settings, deadline)
            .map_err(|e| format!("unreachable ({e})"))?;
        let asked = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.service)
            .get_packed_command();
        let reply = con
            .request_one(&asked, &deadline.capped(self.settings.connect_timeout))
            .map_err(|e| format!("did not answer ({})", e.error()))?;
        let addr: Option<(String, u16)> =
            redis::from_redis_value(reply).map_err(|e| format!("did not answer ({e})"))?;
        addr.ok_or_else(|| "does not know this service".to_string())
    }

    fn ask(&self, sentinel: &redis::Client, deadline: &Deadline) -> Result<NodeConn, String> {
        let (host, port) = self.master_addr_from(sentinel, deadline)?;
        let master = format!("{host}:{port}");
        let client = self
            .endpoints
            .client(&host, port, self.settings.redis_info())
            .map_err(|e| format!("names the master {master}, which is unreachable ({e})"))?;
        let mut con = NodeConn::open(&client, &self.settings, deadline)
            .map_err(|e| format!("names the master {master}, which is unreachable ({e})"))?;
        let role = con
            .request_one(
                &redis::cmd("ROLE").get_packed_command(),
                &deadline.capped(self.settings.connect_timeout),
            )
            .map_err(|e| format!("names {master}, whose role is unknown ({})", e.error()))?;
        match redis::from_redis_value::<redis::Role>(role) {
            Ok(redis::Role::Primary { .. }) => Ok(con),
            Ok(_) => Err(format!("names {master}, which is not a master")),
            Err(e) => Err(format!("names {master}, whose role is unknown ({e})")),
        }
    }
}
