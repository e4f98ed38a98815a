//! The Lua scripts of memoized functions. Each runs as one `EVALSHA` (one round trip) and
//! touches only keys of one function, which share a Redis Cluster hash tag.
//!
//! A memo placed in a region names the region's hash and its lock with the region's
//! placeholder and passes the region's placement (empty otherwise): the engine names them in
//! the region's current generation and declares the tree's keys, which the scripts check
//! with the prelude's `_place`/`_at` (see [`script`](crate::engine::script)), creating the
//! generation only to take a lock or store a result.

use once_cell::sync::Lazy;

use crate::engine::Script;

/// Reads an entry, classifies it, counts the outcome and takes the refresh lock when needed.
///
/// `KEYS`: value key (or hash key), lock key, statistics hash.
/// `ARGV`: mode (`s` string, `l` list, `h` hash field), field, lock token, lock ms,
/// stale threshold ms (`-1`: no stale state), statistics (`1`/`0`), default configured
/// (`1`/`0`), poll (`1`: a waiter polling: no statistics, no stale state), the TTL a stored
/// result gets in ms (`0`: none), placement, its TTL policy (`keep` or empty), uncount (`1`:
/// the plain read before this script counted a hit for this call, which it takes back;
/// absent in [`READ_MANY`]'s entries).
///
/// Returns `{state, value, refused}`:
/// 0 fresh; 1 stale, refreshed elsewhere; 2 stale, lock taken (refresh it);
/// 3 missing, computed elsewhere; 4 missing, lock taken (compute it);
/// 5 missing, and the server refuses writes (out of memory, too few replicas, read-only):
/// no lock can be taken, compute without storing.
/// `refused` is the server's refusal when it refused a write (the statistics were not
/// counted), else empty. Only those refusals are caught: any other error fails the script.
/// A lock this token already holds counts as taken, so the script can be sent again after a
/// lost reply.
pub(crate) static READ: Lazy<Script> =
    Lazy::new(|| Script::new(&format!("{READ_FRESH}{READ_REST}")));

/// The fresh hits of many entries of one function in one script (one round trip):
/// [`READ`]'s first part ([`READ_FRESH`]: placement, reads, the fresh-hit check, the `hits`
/// statistic) runs once per entry, with that entry's `KEYS` and `ARGV` exactly as `READ` gets
/// them; an entry that is not a fresh hit gets `{6, false, refused}` with nothing counted and
/// no lock taken, for the caller to `call` it on its own.
///
/// `KEYS`: the entries' keys, `ARGV[1]` at a time (for a memo in a region, the tree's keys
/// the engine declares follow them). `ARGV`: keys per entry, arguments per entry, the
/// position of the placement among an entry's arguments, then the entries' arguments,
/// `ARGV[2]` at a time. Every entry gets the first entry's placement, the one the engine
/// rewrote into what `_place` checks (all entries share it). Returns the entries' replies in
/// order, or the first error reply (a permission refused, a changed tree path, a tree of the
/// old layout), which comes before any hit is counted when it is about the placement (checked
/// first, for the first entry).
pub(crate) static READ_MANY: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        r#"
local function _read(KEYS, ARGV)
{READ_FRESH}
return {{6, false, refused or ''}}
end
local k, a, p = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {{}}
for i = 0, (#ARGV - 3) / a - 1 do
  local keys, argv = {{}}, {{}}
  for j = 1, k do keys[j] = KEYS[i * k + j] end
  for j = 1, a do argv[j] = ARGV[3 + i * a + j] end
  argv[p] = ARGV[3 + p]
  for field in pairs(_p) do _p[field] = nil end
  local r = _read(keys, argv)
  if r.err then return r end
  out[#out + 1] = r
end
return out
"#
    ))
});

/// The first part of [`READ`]: it reads the entry and returns when it is a fresh hit.
const READ_FRESH: &str = r#"
local placed = _place(ARGV[10])
if placed then return placed end
local value, lockkey = _at(KEYS[1]), _at(KEYS[2])
local mode = ARGV[1]
local poll = ARGV[8] == '1'
local stats = ARGV[6] == '1' and not poll
local refused = false
local function write(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    local code = _code(r.err)
    if code == 'OOM' or code == 'NOREPLICAS' or code == 'READONLY' or code == 'MISCONF' then
      refused = _text(r.err)
      return nil
    end
    _raise(r)
  end
  return r
end
local function count(field)
  if stats and not refused then write('HINCRBY', KEYS[3], field, '1') end
end
-- A fresh hit read with plain commands (Memo::read_plain) counted a hit that this call was
-- not: taken back first, before a check this user fails ends the script, and the field
-- removed when it gets to 0 or less (where the user may), so that the statistics end as
-- they were, and never stay below zero (after a reset_stats in between).
if ARGV[12] == '1' and stats then
  local left = write('HINCRBY', KEYS[3], 'hits', '-1')
  if left and left <= 0 then redis.pcall('HDEL', KEYS[3], 'hits') end
end
local v
if mode == 's' then
  v = redis.call('GET', value)
elseif mode == 'l' then
  if redis.call('EXISTS', value) == 1 then v = redis.call('LRANGE', value, 0, -1) else v = false end
else
  v = redis.call('HGET', value, ARGV[2])
end
local stale = false
if v and ARGV[5] ~= '-1' and not poll then
  local ttl = redis.call('PTTL', value)
  stale = ttl >= 0 and ttl <= tonumber(ARGV[5])
end
-- Reads come first: one the user may not run fails the script before anything is written
-- (and reads as Error::Permission). A fresh hit writes only its statistic, last, so a user
-- who may not gets the refusal from that write (raised, nothing written) without a check
-- beforehand (a check costs a fifth of the script); the other paths may take the lock, and
-- the FINISH after them will store: a user who may not is refused below, before the lock,
-- not after the computation. Numbers go to Redis as strings: Lua formats a number argument
-- with printf, which costs as much as the command.
if v and not stale then
  count('hits')
  return {0, v, refused or ''}
end
"#;

/// The rest of [`READ`]: stale hits and misses, which may take the lock.
const READ_REST: &str = r#"
local e = _may('GET', lockkey) or _may('SET', lockkey, 'v') or _may('DEL', lockkey)
  or (ARGV[6] == '1' and _may('HINCRBY', KEYS[3], 'f', '1'))
  or (mode == 's' and _may('SET', value, 'v'))
  or (mode == 'l' and (_may('DEL', value) or _may('RPUSH', value, 'v')))
  or (mode == 'h' and _may('HSET', value, 'f', 'v'))
  or (mode == 'l' and ARGV[9] ~= '0' and _may('PEXPIRE', value, '1'))
  or (mode == 'h' and ARGV[9] ~= '0' and _may_expire(value, ARGV[9], ARGV[11]))
  or _may_place()
if e then return e end
local function lock()
  if refused then return 0 end
  if redis.call('GET', lockkey) == ARGV[3] then return 1 end
  lockkey = _at(KEYS[2], true)
  if write('SET', lockkey, ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
  return 0
end
if v then
  count('stale_hits')
  local got = lock()
  return {1 + got, v, refused or ''}
end
count('misses')
if ARGV[7] == '1' then
  count('defaults')
end
local got = lock()
if refused then return {5, false, refused} end
if got == 0 and ARGV[7] ~= '1' then count('waits') end
return {3 + got, false, refused or ''}
"#;

/// Reads and deletes the statistics hash atomically. `KEYS[1]`: the hash.
pub(crate) static RESET_STATS: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local e = _may('HGETALL', KEYS[1]) or _may('DEL', KEYS[1])
if e then return e end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return fields
"#,
    )
});

/// Forgets a hash-field result and its lock. `KEYS`: hash, lock. `ARGV`: field, placement.
/// Returns how many results were removed.
pub(crate) static FORGET_FIELD: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local e = _place(ARGV[2])
if e then return e end
local hash, lock = _at(KEYS[1]), _at(KEYS[2])
e = _may('HDEL', hash, ARGV[1]) or _may('DEL', lock)
if e then return e end
local n = redis.call('HDEL', hash, ARGV[1])
redis.call('DEL', lock)
return n
"#,
    )
});

/// Ends a computation the caller owned the lock for.
///
/// `KEYS`: value key (or hash key), lock key, statistics hash.
/// `ARGV`: mode, field, lock token, ttl ms (`0`: none), statistics (`1`/`0`), action,
/// placement, TTL policy of a hash field (`keep` or empty, see
/// [`script`](crate::engine::script)), values... Actions: `store` (store the values if the lock is still ours, release it),
/// `skip` (computed but not cacheable: release), `fail` (failed: release), `fail_keep`
/// (failed in the background: keep the lock until it expires, so retries back off),
/// `drop` (never ran, the refresh queue was full: release), `prime` and `refresh` (store
/// whoever holds the lock, and leave the lock alone: [`Memo::set`](super::Memo::set), and
/// [`Memo::refresh`](super::Memo::refresh) which counts as a refresh), `replace` (as `refresh`,
/// after a read that found another build's value). Any action may end in `:<field>` (`hits`
/// or `stale_hits`): the read counted the call there, but it found another build's value, so
/// the call is moved to `misses`.
///
/// Returns 1 when the lock was still ours (and, for `store`, the value was stored).
pub(crate) static FINISH: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local placed = _place(ARGV[7])
if placed then return placed end
local mode = ARGV[1]
local action, uncount = ARGV[6], nil
local base, counted = string.match(action, '^([%a_]+):([%a_]+)$')
if base then action, uncount = base, counted end
local lockkey, target = _at(KEYS[2]), _at(KEYS[1])
local e = _may('GET', lockkey) or _may('DEL', lockkey)
  or (ARGV[5] == '1' and _may('HINCRBY', KEYS[3], 'f', '1'))
if not e and (action == 'store' or action == 'prime' or action == 'refresh'
    or action == 'replace') then
  local expire = ARGV[4] ~= '0' and _may('PEXPIRE', target, '1')
  if mode == 's' then
    e = _may('SET', target, 'v')
  elseif mode == 'l' then
    e = _may('DEL', target) or _may('RPUSH', target, 'v') or expire
  else
    e = _may('HSET', target, 'f', 'v') or (ARGV[4] ~= '0' and _may_expire(target, ARGV[4], ARGV[8]))
  end
  e = e or _may_place()
end
if e then return e end
local owned = redis.call('GET', lockkey) == ARGV[3]
local function count(field)
  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], field, '1') end
end
if action == 'drop' then
  count('dropped')
elseif action ~= 'prime' then
  count('refreshes')
end
if action == 'fail' or action == 'fail_keep' then count('failures') end
if uncount and ARGV[5] == '1' then
  redis.call('HINCRBY', KEYS[3], uncount, '-1')
  count('misses')
end
if action ~= 'prime' and action ~= 'refresh' and action ~= 'replace' then
  if not owned then return 0 end
  if action ~= 'fail_keep' then redis.call('DEL', lockkey) end
  if action ~= 'store' then return 1 end
end
local key = _at(KEYS[1], true)
if mode == 's' then
  if ARGV[4] ~= '0' then
    redis.call('SET', key, ARGV[9], 'PX', ARGV[4])
  else
    redis.call('SET', key, ARGV[9])
  end
elseif mode == 'l' then
  -- The new items are pushed after the old ones, which are then trimmed, so that the list
  -- is never deleted before a command names it again (on Redis Cluster, while the slot
  -- migrates, that command would fail the script halfway).
  local old = 0
  local t = redis.call('TYPE', key)['ok']
  if t == 'list' then
    old = redis.call('LLEN', key)
  elseif t ~= 'none' or #ARGV < 9 then
    redis.call('DEL', key)
  end
  for i = 9, #ARGV, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if #ARGV >= 9 then
    if old > 0 then redis.call('LTRIM', key, old, -1) end
    if ARGV[4] ~= '0' then redis.call('PEXPIRE', key, ARGV[4]) end
  elseif old > 0 then
    redis.call('DEL', key)
  end
else
  redis.call('HSET', key, ARGV[2], ARGV[9])
  if ARGV[4] ~= '0' then _expire(key, ARGV[4], ARGV[8]) end
end
return 1
"#,
    )
});

/// `INCRBY` only when the key exists (a counter that is not cached stays uncached, so the
/// next call computes it from the source). `KEYS`: counter. `ARGV`: delta.
pub(crate) static INCR_IF_CACHED: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local e = _may('EXISTS', KEYS[1]) or _may('INCRBY', KEYS[1], ARGV[1])
if e then return e end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"#,
    )
});

/// `RPUSH` only when the list exists, returning the new length. `KEYS`: list. `ARGV`: item.
pub(crate) static PUSH_IF_CACHED: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local e = _may('EXISTS', KEYS[1]) or _may('RPUSH', KEYS[1], ARGV[1])
if e then return e end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('RPUSH', KEYS[1], ARGV[1])
end
return false
"#,
    )
});

/// Releases locks whose reply was lost: `KEYS[i]` is deleted when it still holds the token
/// `ARGV[i]`. The placement follows the tokens (last; for a memo in a region, the engine
/// declares the region's tree keys after the locks). Returns how many were released.
pub(crate) static RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r#"
local e = _place(ARGV[#ARGV])
if e then return e end
local locks = {unpack(KEYS, 1, #ARGV - 1)}
for _, name in ipairs(locks) do
  local key = _at(name)
  e = _may('GET', key) or _may('DEL', key)
  if e then return e end
end
local n = 0
for i, name in ipairs(locks) do
  local key = _at(name)
  if redis.call('GET', key) == ARGV[i] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"#,
    )
});
