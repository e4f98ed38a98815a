//! The operations on a hash's raw fields and values that [`DictCache`](super::DictCache)
//! and [`Region`](crate::Region) share: one implementation of each command and script, with
//! the engine's TTL and placement as data.

use once_cell::sync::Lazy;

use crate::codec::Codec;
use crate::connection::Retry;
use crate::deadline::Call;
use crate::engine::{Engine, Script};
use crate::error::Result;
use crate::near::{Bytes, Point};

/// The scripts' common start: the placement of `KEYS[1]` (a region's hash, see
/// [`Placed`](crate::engine::Placed)), and the type guard and ACL checks of a hash write on
/// it. `ARGV`: type, ttl, policy, the placement; the script's own arguments follow at
/// `ARGV[at]` (`at` = 5). `link()` creates the hash's place in its tree when it has none yet
/// (a region written for the first time, or again after an invalidation): scripts call it
/// right before their first write that adds something. No command names the hash after one
/// that may have deleted it (the TTL is set before an `HDEL`): on Redis Cluster, while the
/// slot migrates, that command would fail the script after the deletion.
macro_rules! hash_script {
    ($commands:literal, $body:literal) => {
        concat!(
            r"
local e = _place(ARGV[4])
if e then return e end
local key = _at(KEYS[1])
local at = 5
e = _wrongtype(key, 'hash')
if e then return e end
for _, c in ipairs({",
            $commands,
            r"}) do
  e = _may(c[1], key, unpack(c, 2))
  if e then return e end
end
e = _may_expire(key, ARGV[2], ARGV[3])
if e then return e end
e = _may_place()
if e then return e end
local function link()
  key = _at(KEYS[1], true)
end
",
            $body
        )
    };
}

/// Stores `ARGV[at + 1]` under the field `ARGV[at]` and returns the value it replaces.
pub(crate) static INSERT: Lazy<Script> = Lazy::new(|| {
    Script::new(hash_script!(
        "{'HGET', 'f'}, {'HSET', 'f', 'v'}",
        r"
local old = redis.call('HGET', key, ARGV[at])
link()
redis.call('HSET', key, ARGV[at], ARGV[at + 1])
_expire(key, ARGV[2], ARGV[3])
return old
"
    ))
});

/// Removes the field `ARGV[at]` and returns its value.
pub(crate) static REMOVE: Lazy<Script> = Lazy::new(|| {
    Script::new(hash_script!(
        "{'HGET', 'f'}, {'HDEL', 'f'}",
        r"
local old = redis.call('HGET', key, ARGV[at])
if old then
  -- The TTL first: the HDEL may delete the hash, which no command may name after.
  _expire(key, ARGV[2], ARGV[3])
  redis.call('HDEL', key, ARGV[at])
end
return old
"
    ))
});

/// Stores `ARGV[at + 1]` under the field `ARGV[at]` unless it has a value, and returns the
/// value the field holds then.
pub(crate) static GET_OR_INSERT: Lazy<Script> = Lazy::new(|| {
    Script::new(hash_script!(
        "{'HSETNX', 'f', 'v'}, {'HGET', 'f'}",
        r"
link()
redis.call('HSETNX', key, ARGV[at], ARGV[at + 1])
_expire(key, ARGV[2], ARGV[3])
return redis.call('HGET', key, ARGV[at])
"
    ))
});

/// Removes a random field and returns it with its value. `ARGV[at]`, when given: a field to
/// leave alone (a layout's bookkeeping, never an entry).
pub(crate) static POP_ITEM: Lazy<Script> = Lazy::new(|| {
    Script::new(hash_script!(
        "{'HRANDFIELD'}, {'HGET', 'f'}, {'HDEL', 'f'}",
        r"
local field
if ARGV[at] then
  local two = redis.call('HRANDFIELD', key, 2)
  field = two[1]
  if field == ARGV[at] then field = two[2] end
else
  field = redis.call('HRANDFIELD', key)
end
if not field then
  return false
end
local value = redis.call('HGET', key, field)
_expire(key, ARGV[2], ARGV[3])
redis.call('HDEL', key, field)
return {field, value}
"
    ))
});

pub(crate) use hash_script;

/// Runs a hash script on the engine's hash: `KEYS` the hash (named with its placeholder when
/// placed), `ARGV` the TTL data, the placement, then `args`.
pub(crate) fn script<C: Codec, T: redis::FromRedisValue>(
    engine: &Engine<C>,
    call: &mut Call,
    script: &Script,
    args: &[&[u8]],
    retry: Retry,
) -> Result<T> {
    let resolved = engine.resolved()?;
    let named = resolved.named(&resolved.key);
    engine.eval_in(
        call,
        script,
        1,
        |cmd| {
            cmd.arg(named.as_ref());
            engine.ttl_args(cmd);
            cmd.arg(resolved.place());
            for a in args {
                cmd.arg(*a);
            }
        },
        retry,
    )
}

/// `HGET key field`, through the near cache when the handle has one.
pub(crate) fn get<C: Codec>(engine: &Engine<C>, field: &[u8]) -> Result<Option<Bytes>> {
    engine.read_point(Point::Field(field))
}

/// `HEXISTS key field` (through the near cache when the handle has one: the copy `get` uses).
pub(crate) fn contains<C: Codec>(engine: &Engine<C>, field: &[u8]) -> Result<bool> {
    engine
        .read_point(Point::FieldExists(field))
        .map(|v| v.is_some())
}

/// `HLEN key`.
pub(crate) fn len<C: Codec>(engine: &Engine<C>) -> Result<usize> {
    let mut cmd = redis::cmd("HLEN");
    cmd.arg(&engine.resolved()?.key);
    engine.query(&cmd, Retry::Idempotent)
}

/// `HSET key field value` with the TTL and placement; true when the field was new.
pub(crate) fn set<C: Codec>(engine: &Engine<C>, field: &[u8], value: &[u8]) -> Result<bool> {
    let added: u32 = engine.write(
        &mut engine.call()?,
        "HSET",
        |cmd| {
            cmd.arg(field).arg(value);
        },
        Retry::Idempotent,
    )?;
    Ok(added > 0)
}

/// `HDEL key field` with the TTL; true when the field was there.
pub(crate) fn delete<C: Codec>(engine: &Engine<C>, field: &[u8]) -> Result<bool> {
    let removed: u32 = engine.write(
        &mut engine.call()?,
        "HDEL",
        |cmd| {
            cmd.arg(field);
        },
        Retry::Idempotent,
    )?;
    Ok(removed > 0)
}

/// Stores `value` under `field` and returns the value it replaces.
pub(crate) fn insert<C: Codec>(
    engine: &Engine<C>,
    field: &[u8],
    value: &[u8],
) -> Result<Option<Vec<u8>>> {
    script(
        engine,
        &mut engine.call()?,
        &INSERT,
        &[field, value],
        Retry::Once,
    )
}

/// Removes `field` and returns its value.
pub(crate) fn remove<C: Codec>(engine: &Engine<C>, field: &[u8]) -> Result<Option<Vec<u8>>> {
    script(engine, &mut engine.call()?, &REMOVE, &[field], Retry::Once)
}

/// Stores `value` under `field` unless it has one; returns the value the field holds then.
pub(crate) fn get_or_insert<C: Codec>(
    engine: &Engine<C>,
    field: &[u8],
    value: &[u8],
) -> Result<Option<Vec<u8>>> {
    script(
        engine,
        &mut engine.call()?,
        &GET_OR_INSERT,
        &[field, value],
        Retry::Idempotent,
    )
}

/// Removes a random field and returns it with its value.
pub(crate) fn pop<C: Codec>(engine: &Engine<C>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let hidden = engine.options.layout.hidden_field();
    script(
        engine,
        &mut engine.call()?,
        &POP_ITEM,
        hidden.as_slice(),
        Retry::Once,
    )
}
