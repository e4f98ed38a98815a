//! Redis Cluster support: a pooled connection that routes plain pipelines and MULTI/EXEC
//! transactions to the node owning their slot, on top of `redis::cluster::ClusterConnection`.
//!
//! What the `redis` 1.8 sync `ClusterConnection` does by itself, and what this module adds:
//!
//! - Single commands (`req_command`, `req_packed_command`): routed by key, `MOVED` (with a
//!   slot-map refresh) and `ASK` followed, keyless commands sent to a random node or to every
//!   node (`SCRIPT LOAD` goes to all nodes, so `redis::Script`'s `EVALSHA`, `NOSCRIPT`,
//!   `SCRIPT LOAD`, `EVALSHA` dance works), `DEL`/`EXISTS`/`MGET`/`MSET` split per slot.
//!   Used as is.
//! - Pipelines: `ClusterConnection::supports_pipelining()` is false, so `redis::pipe().query`
//!   refuses it outright; its `req_packed_commands` sends the whole packed pipeline to the
//!   node of the *first* command's key (a random node when that command has no key). This
//!   module checks first that every key of the pipeline hashes to one slot (else a typed
//!   cross-slot error, nothing sent), makes sure the routed command carries that slot, and
//!   then lets `ClusterConnection` send it. A `MOVED` reply makes it refresh its slot map
//!   and resend the pipeline to the new owner: safe, since every keyed command of a
//!   one-slot pipeline was refused alike.
//! - MULTI/EXEC: a `MOVED` inside a transaction comes back as an aborted transaction, which
//!   `ClusterConnection` neither retries nor learns from (its slot map stays stale). Here
//!   the slot map is refreshed (one keyed probe that follows the `MOVED`) and the
//!   transaction, which had no effect, is sent once more.
//!
//! Retries are bounded (3 retries, 10 to 100 ms apart) so that an operation fails within
//! about its timeout instead of `ClusterConnection`'s default of 16 retries with waits of up
//! to minutes.

use redis::cluster::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};

/// How many times the cluster client retries a redirected or failed request.
pub(crate) const RETRIES: u32 = 3;
/// Shortest wait between retries, in milliseconds.
pub(crate) const MIN_RETRY_WAIT_MS: u64 = 10;
/// Longest wait between retries, in milliseconds.
pub(crate) const MAX_RETRY_WAIT_MS: u64 = 100;

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";

/// A pooled Redis Cluster connection (one `ClusterConnection`, with a connection per node).
pub(crate) struct ClusterConn {
    inner: ClusterConnection,
}

impl ClusterConn {
    pub(crate) fn new(inner: ClusterConnection) -> Self {
        ClusterConn { inner }
    }

    /// Asks the owner of `key`'s slot, as the current slot map says, whether `key` exists:
    /// a stale map gets a `MOVED`, which makes `ClusterConnection` refresh it.
    fn refresh_slots_for(&mut self, key: &[u8]) {
        let route = Route::with_key(key, SlotAddr::Master);
        let _ = self.inner.route_command(
            redis::cmd("EXISTS").arg(key),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
        );
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner.req_packed_command(cmd)
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        self.inner.req_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let Some(commands) = split_packed(cmd) else {
            // Not the encoding `redis::Pipeline` produces: leave it to the cluster client.
            return self.inner.req_packed_commands(cmd, offset, count);
        };
        let atomic = cmd.starts_with(MULTI);
        let key = one_slot_key(&commands)?;

        // ClusterConnection routes by the first command (after MULTI). When that one has no
        // key but others do, put a read of the slot's key in front, its reply skipped.
        let routed_first = commands
            .iter()
            .find(|c| !c.first().is_some_and(|n| n.eq_ignore_ascii_case(b"MULTI")))
            .is_some_and(|c| !command_keys(c).is_empty());
        let probed;
        let (bytes, offset) = match key {
            Some(key) if !routed_first => {
                let mut with_probe = redis::cmd("EXISTS").arg(key).get_packed_command();
                with_probe.extend_from_slice(cmd);
                probed = with_probe;
                (&probed[..], offset + 1)
            }
            _ => (cmd, offset),
        };

        let mut attempts = 0;
        loop {
            match self.inner.req_packed_commands(bytes, offset, count) {
                Err(e) if atomic && attempts < 2 && aborted_by_stale_slots(&e) => {
                    attempts += 1;
                    if let Some(key) = key {
                        self.refresh_slots_for(key);
                    }
                }
                result => return result,
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}

/// Whether `e` (a transaction aborted with a `MOVED` or `READONLY` among the queued
/// commands) says the slot map is out of date.
fn aborted_by_stale_slots(e: &RedisError) -> bool {
    server_error_kinds(e)
        .iter()
        .any(|k| matches!(k, ServerErrorKind::Moved | ServerErrorKind::ReadOnly))
        && e.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort)
}

/// The kinds of every server error `e` carries: its own, or those of the commands of an
/// aborted transaction or a failed pipeline.
pub(crate) fn server_error_kinds(e: &RedisError) -> Vec<ServerErrorKind> {
    let mut kinds = Vec::new();
    if let ErrorKind::Server(kind) = e.kind() {
        kinds.push(kind);
    }
    if let Some(items) = e.clone().into_server_errors() {
        kinds.extend(items.iter().filter_map(|(_, err)| err.kind()));
    }
    kinds
}

/// True when `e` says the keys of one operation are in several hash slots: the crate's own
/// check before sending, or Redis' `CROSSSLOT` (also inside an aborted transaction).
pub(crate) fn is_cross_slot(e: &RedisError) -> bool {
    server_error_kinds(e).contains(&ServerErrorKind::CrossSlot)
}

/// True when `e` says this connection's view of the cluster (or of the Sentinel-managed
/// master) is out of date, so that the pooled connection is better rebuilt.
pub(crate) fn is_topology_error(e: &RedisError) -> bool {
    let kind = e.kind();
    kind == ErrorKind::ClusterConnectionNotFound
        || (kind == ErrorKind::Client && e.to_string().to_ascii_lowercase().contains("slot"))
        || server_error_kinds(e).iter().any(|k| {
            matches!(
                k,
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        })
}

/// The error for keys of one operation in different slots, before anything is sent.
fn cross_slot_error(a: &[u8], b: &[u8]) -> RedisError {
    RedisError::from((
        ErrorKind::Server(ServerErrorKind::CrossSlot),
        "a multi-key operation across slots",
        format!(
            "the keys {:?} and {:?} hash to different cluster slots; give them a common hash tag",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        ),
    ))
}

/// The first key of the pipeline when all its keys share one slot, `None` when it has no
/// key, or the cross-slot error.
fn one_slot_key<'a>(commands: &[Vec<&'a [u8]>]) -> RedisResult<Option<&'a [u8]>> {
    let mut first: Option<(&[u8], Slot)> = None;
    for command in commands {
        for key in command_keys(command) {
            let slot = Slot::for_key(key);
            match first {
                None => first = Some((key, slot)),
                Some((k, s)) if s != slot => return Err(cross_slot_error(k, key)),
                Some(_) => {}
            }
        }
    }
    Ok(first.map(|(k, _)| k))
}

/// Splits a packed pipeline (`*N\r\n$len\r\narg\r\n...` repeated) into its commands'
/// arguments. `None` when the bytes are not in that form.
pub(crate) fn split_packed(mut bytes: &[u8]) -> Option<Vec<Vec<&[u8]>>> {
    fn number(bytes: &mut &[u8], marker: u8) -> Option<usize> {
        let rest = bytes.strip_prefix(&[marker])?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        *bytes = &rest[end + 2..];
        Some(n)
    }
    let mut commands = Vec::new();
    while !bytes.is_empty() {
        let argc = number(&mut bytes, b'*')?;
        let mut args = Vec::with_capacity(argc.min(64));
        for _ in 0..argc {
            let len = number(&mut bytes, b'$')?;
            let arg = bytes.get(..len)?;
            if bytes.get(len..len + 2)? != b"\r\n" {
                return None;
            }
            args.push(arg);
            bytes = &bytes[len + 2..];
        }
        commands.push(args);
    }
    Some(commands)
}

/// The keys of a command, for the commands whose key positions are known; the first
/// argument otherwise. Keys missed here are still checked by Redis (`CROSSSLOT`).
pub(crate) fn command_keys<'a>(args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let Some(name) = args.first() else {
        return Vec::new();
    };
    let rest = &args[1..];
    let numkeys_at = |i: usize| -> Vec<&'a [u8]> {
        let n = rest
            .get(i)
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        rest.iter().skip(i + 1).take(n).copied().collect()
    };
    let upper = name.to_ascii_uppercase();
    match upper.as_slice() {
        b"PING" | b"ECHO" | b"MULTI" | b"EXEC" | b"DISCARD" | b"UNWATCH" | b"SCRIPT"
        | b"FUNCTION" | b"INFO" | b"WAIT" | b"WAITAOF" | b"CLIENT" | b"CONFIG" | b"CLUSTER"
        | b"COMMAND" | b"DBSIZE" | b"FLUSHDB" | b"FLUSHALL" | b"TIME" | b"KEYS" | b"SCAN"
        | b"RANDOMKEY" | b"SELECT" | b"AUTH" | b"HELLO" | b"READONLY" | b"READWRITE"
        | b"ASKING" | b"PUBLISH" | b"SUBSCRIBE" | b"PSUBSCRIBE" | b"LASTSAVE" | b"ROLE"
        | b"SLOWLOG" | b"LATENCY" | b"ACL" | b"MODULE" | b"DEBUG" => Vec::new(),
        b"OBJECT" | b"MEMORY" | b"XINFO" | b"XGROUP" => rest.get(1).copied().into_iter().collect(),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => numkeys_at(1),
        b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" | b"MGET" | b"WATCH" | b"SUNION" | b"SINTER"
        | b"SDIFF" | b"SUNIONSTORE" | b"SINTERSTORE" | b"SDIFFSTORE" | b"PFCOUNT" | b"PFMERGE" => {
            rest.to_vec()
        }
        b"MSET" | b"MSETNX" => rest.iter().step_by(2).copied().collect(),
        b"RENAME" | b"RENAMENX" | b"SMOVE" | b"LMOVE" | b"BLMOVE" | b"RPOPLPUSH"
        | b"BRPOPLPUSH" | b"COPY" | b"GEOSEARCHSTORE" => rest.iter().take(2).copied().collect(),
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" | b"ZRANGESTORE" => {
            let mut keys: Vec<&[u8]> = rest.first().copied().into_iter().collect();
            if upper.as_slice() == b"ZRANGESTORE" {
                keys.extend(rest.get(1).copied());
            } else {
                keys.extend(numkeys_at(1));
            }
            keys
        }
        b"ZUNION" | b"ZINTER" | b"ZDIFF" | b"SINTERCARD" | b"ZINTERCARD" | b"LMPOP" | b"ZMPOP" => {
            numkeys_at(0)
        }
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" => {
            rest[..rest.len().saturating_sub(1)].to_vec()
        }
        b"BITOP" => rest.iter().skip(1).copied().collect(),
        b"XREAD" | b"XREADGROUP" => {
            let Some(at) = rest.iter().position(|a| a.eq_ignore_ascii_case(b"STREAMS")) else {
                return Vec::new();
            };
            let streams = &rest[at + 1..];
            streams[..streams.len() / 2].to_vec()
        }
        _ => rest.first().copied().into_iter().collect(),
    }
}

/// The distinct slots of `keys` (for tests and diagnostics).
#[cfg(test)]
fn slots(keys: &[&[u8]]) -> std::collections::HashSet<Slot> {
    keys.iter().map(Slot::for_key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(pipe: &redis::Pipeline) -> Vec<u8> {
        // The bytes `Pipeline::query` hands to `req_packed_commands`.
        struct Capture(Vec<u8>);
        impl ConnectionLike for Capture {
            fn req_packed_command(&mut self, _: &[u8]) -> RedisResult<Value> {
                Ok(Value::Nil)
            }
            fn req_packed_commands(
                &mut self,
                cmd: &[u8],
                _: usize,
                count: usize,
            ) -> RedisResult<Vec<Value>> {
                self.0 = cmd.to_vec();
                Ok(vec![Value::Nil; count])
            }
            fn get_db(&self) -> i64 {
                0
            }
            fn check_connection(&mut self) -> bool {
                true
            }
            fn is_open(&self) -> bool {
                true
            }
        }
        let mut capture = Capture(Vec::new());
        let _: RedisResult<Value> = pipe.query(&mut capture);
        capture.0
    }

    #[test]
    fn splits_packed_pipelines() {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg("k")
            .arg(b"v\r\n")
            .cmd("PEXPIRE")
            .arg("k")
            .arg(5);
        let bytes = packed(&pipe);
        let commands = split_packed(&bytes).unwrap();
        let names: Vec<&[u8]> = commands.iter().map(|c| c[0]).collect();
        assert_eq!(names, [&b"MULTI"[..], b"SET", b"PEXPIRE", b"EXEC"]);
        assert_eq!(commands[1], [&b"SET"[..], b"k", b"v\r\n"]);
        assert!(split_packed(b"*1\r\n$4\r\nPIN").is_none());
        assert!(split_packed(b"PING\r\n").is_none());
    }

    #[test]
    fn knows_where_keys_are() {
        let keys = |args: &[&str]| -> Vec<String> {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            command_keys(&args)
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        assert_eq!(keys(&["GET", "a"]), ["a"]);
        assert_eq!(keys(&["hset", "h", "f", "v"]), ["h"]);
        assert_eq!(keys(&["PING"]), Vec::<String>::new());
        assert_eq!(
            keys(&["EVALSHA", "abc", "2", "k1", "k2", "arg"]),
            ["k1", "k2"]
        );
        assert_eq!(
            keys(&["EVAL", "return 1", "0", "arg"]),
            Vec::<String>::new()
        );
        assert_eq!(keys(&["SUNIONSTORE", "d", "a", "b"]), ["d", "a", "b"]);
        assert_eq!(keys(&["MSET", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(
            keys(&["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]),
            ["d", "a", "b"]
        );
        assert_eq!(keys(&["ZINTER", "2", "a", "b", "WITHSCORES"]), ["a", "b"]);
        assert_eq!(keys(&["BLPOP", "a", "b", "0"]), ["a", "b"]);
        assert_eq!(
            keys(&["XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"]),
            ["s1", "s2"]
        );
        assert_eq!(keys(&["SMOVE", "a", "b", "m"]), ["a", "b"]);
        assert_eq!(keys(&["OBJECT", "ENCODING", "k"]), ["k"]);
    }

    #[test]
    fn one_slot_or_a_typed_error() {
        let mut same = redis::pipe();
        same.cmd("SET")
            .arg("{user1}.a")
            .arg(1)
            .cmd("SADD")
            .arg("{user1}.b")
            .arg(2);
        let bytes = packed(&same);
        let commands = split_packed(&bytes).unwrap();
        assert_eq!(one_slot_key(&commands).unwrap(), Some(&b"{user1}.a"[..]));

        let mut spread = redis::pipe();
        spread
            .atomic()
            .cmd("SET")
            .arg("a")
            .arg(1)
            .cmd("SET")
            .arg("b")
            .arg(2);
        assert_ne!(
            slots(&[b"a", b"b"]).len(),
            1,
            "a and b are in different slots"
        );
        let bytes = packed(&spread);
        let e = one_slot_key(&split_packed(&bytes).unwrap()).unwrap_err();
        assert!(is_cross_slot(&e));
        assert_eq!(e.code(), Some("CROSSSLOT"));
        assert!(
            e.to_string().contains("a multi-key operation across slots"),
            "{e}"
        );

        let mut keyless = redis::pipe();
        keyless.cmd("PING").cmd("PING");
        let bytes = packed(&keyless);
        assert_eq!(one_slot_key(&split_packed(&bytes).unwrap()).unwrap(), None);
    }

    #[test]
    fn cross_slot_errors_are_typed_and_name_the_key() {
        let e = crate::Error::CrossSlot {
            key: "teams.a".into(),
            source: cross_slot_error(b"teams.a", b"teams.b"),
        };
        let shown = e.to_string();
        assert!(
            shown.contains("a multi-key operation across slots on teams.a"),
            "{shown}"
        );
        assert!(shown.contains("hash tag"), "{shown}");
        assert!(e.is_cross_slot());
        assert!(!e.is_connection() && !e.is_timeout() && !e.is_config());
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn classifies_errors() {
        let moved = RedisError::from((
            ErrorKind::Server(ServerErrorKind::Moved),
            "moved",
            "3999 127.0.0.1:6381".to_string(),
        ));
        assert!(is_topology_error(&moved));
        assert!(!is_cross_slot(&moved));
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(!is_topology_error(&io));
        let wrongtype = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "WRONGTYPE",
        ));
        assert!(!is_topology_error(&wrongtype));
    }
}
