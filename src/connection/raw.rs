//! Reading the commands inside packed request bytes, for raw commands run on a pooled
//! cluster connection: it must know a command's key to find the node that serves it.

/// The first key of the first command in `packed` that has one.
#[cfg(test)]
fn first_key(packed: &[u8]) -> Option<Vec<u8>> {
    split_packed(packed)?
        .iter()
        .find_map(|command| command_keys(command).first().map(|k| k.to_vec()))
}

/// The first key of `packed` (one command or a pipeline), checked to share a hash slot with
/// every other key it names: a cluster can run it on one node only then. `None` when it names
/// no key.
pub(crate) fn one_slot_key(packed: &[u8]) -> redis::RedisResult<Option<Vec<u8>>> {
    let Some(commands) = split_packed(packed) else {
        return Ok(None);
    };
    let mut first: Option<(&[u8], u16)> = None;
    for command in &commands {
        for key in command_keys(command) {
            let slot = super::cluster::slot_of(key);
            match first {
                None => first = Some((key, slot)),
                Some((k, s)) if s != slot => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot),
                        "a multi-key operation across slots",
                        format!(
                            "the keys {:?} and {:?} hash to different cluster slots; give them a common hash tag",
                            String::from_utf8_lossy(k),
                            String::from_utf8_lossy(key)
                        ),
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(first.map(|(k, _)| k.to_vec()))
}

/// The name of the first command in packed bytes (`EVALSHA`, `HGET`), as sent.
pub(crate) fn command_name(packed: &[u8]) -> Option<&[u8]> {
    split_packed(packed)?.first()?.first().copied()
}

/// How many commands `packed` holds; `None` when the bytes are not commands in the form
/// `redis` packs them (the server would answer with a protocol error and close).
pub(crate) fn command_count(packed: &[u8]) -> Option<usize> {
    split_packed(packed).map(|commands| commands.len())
}

/// Splits a packed pipeline (`*N\r\n$len\r\narg\r\n...` repeated) into its commands'
/// arguments. `None` when the bytes are not in that form.
fn split_packed(mut bytes: &[u8]) -> Option<Vec<Vec<&[u8]>>> {
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
fn command_keys<'a>(args: &[&'a [u8]]) -> Vec<&'a [u8]> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ConnectionLike, RedisResult, Value};

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
    fn raw_pipelines_must_stay_in_one_slot() {
        let mut same = redis::pipe();
        same.cmd("SET")
            .arg("{u}.a")
            .arg(1)
            .cmd("SADD")
            .arg("{u}.b")
            .arg(2);
        assert_eq!(
            one_slot_key(&packed(&same)).unwrap(),
            Some(b"{u}.a".to_vec())
        );
        let mut spread = redis::pipe();
        spread.cmd("SET").arg("a").arg(1).cmd("SET").arg("b").arg(2);
        let e = one_slot_key(&packed(&spread)).unwrap_err();
        assert_eq!(e.code(), Some("CROSSSLOT"));
        let mut keyless = redis::pipe();
        keyless.cmd("PING").cmd("PING");
        assert_eq!(one_slot_key(&packed(&keyless)).unwrap(), None);
    }

    #[test]
    fn the_first_key_routes_raw_commands() {
        let get = redis::cmd("GET").arg("k1").get_packed_command();
        assert_eq!(first_key(&get), Some(b"k1".to_vec()));
        assert_eq!(first_key(&redis::cmd("PING").get_packed_command()), None);
        let mut pipe = redis::pipe();
        pipe.cmd("PING").cmd("SET").arg("k2").arg(1);
        assert_eq!(first_key(&packed(&pipe)), Some(b"k2".to_vec()));
        assert_eq!(first_key(b"garbage"), None);
    }
}
