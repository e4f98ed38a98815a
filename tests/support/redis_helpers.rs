//! Helpers the collection tests share: reading and writing keys behind the crate's back on a
//! plain `redis` connection, command-count maps, and the compile-time check of a handle's
//! traits.

use std::collections::HashMap;

use redis::ToRedisArgs;

use super::RedisServer;

/// Compile-time check: a collection handle is cheap to share between threads and shows
/// itself in `Debug`.
pub fn assert_handle<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}

/// A map of command name to calls, as [`RedisServer::count_commands`] returns it:
/// `commands(&[("multi", 1), ("hset", 1), ("exec", 1)])`.
pub fn commands(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// An operation's name, the operation, and the commands it must send.
pub type Pinned<'a> = (&'a str, &'a dyn Fn(), &'a [(&'a str, u64)]);

/// Unwraps an operation's result and throws the value away (for tests that check what was
/// sent, not what came back).
pub fn ignore<T>(result: redis_caches::Result<T>) {
    result.unwrap();
}

/// Sends `command args..` on a plain connection and ignores the reply: to put data the crate
/// did not write under a key, e.g. `raw_exec(&server, "HSET", ("h", "f", "v"))`.
pub fn raw_exec(server: &RedisServer, command: &str, args: impl ToRedisArgs) {
    redis::cmd(command)
        .arg(args)
        .exec(&mut server.raw())
        .unwrap();
}

/// `GET key` on a plain connection.
pub fn raw_get(server: &RedisServer, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(&mut server.raw()).unwrap()
}

/// `SET key value` on a plain connection.
pub fn raw_set(server: &RedisServer, key: &str, value: impl ToRedisArgs) {
    raw_exec(server, "SET", (key, value));
}

/// `PTTL key` on a plain connection: milliseconds left, -1 without a TTL, -2 for a missing
/// key.
pub fn raw_pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut server.raw())
        .unwrap()
}

/// An error's message followed by every source's, `: `-separated: what `{:#}` shows with
/// `anyhow`. The crate's `Display` says what failed; the causes are its sources.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
