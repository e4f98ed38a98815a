//! The Lua scripts of memoized functions. Each runs as one `EVALSHA` (one round trip) and
//! touches only keys of one function, which share a Redis Cluster hash tag.

use once_cell::sync::Lazy;

/// Reads an entry, classifies it, counts the outcome and takes the refresh lock when needed.
///
/// `KEYS`: value key (or hash key), lock key, statistics hash.
/// `ARGV`: mode (`s` string, `l` list, `h` hash field), field, lock token, lock ms,
/// stale threshold ms (`-1`: no stale state), statistics (`1`/`0`), default configured
/// (`1`/`0`), poll (`1`: a waiter polling: no statistics, no stale state).
///
/// Returns `{state, value}`:
/// 0 fresh; 1 stale, refreshed elsewhere; 2 stale, lock taken (refresh it);
/// 3 missing, computed elsewhere; 4 missing, lock taken (compute it).
pub(crate) static READ: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r#"
local mode = ARGV[1]
local poll = ARGV[8] == '1'
local stats = ARGV[6] == '1' and not poll
local function count(field)
  if stats then redis.call('HINCRBY', KEYS[3], field, 1) end
end
local function lock()
  if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
  return 0
end
local v
if mode == 's' then
  v = redis.call('GET', KEYS[1])
elseif mode == 'l' then
  if redis.call('EXISTS', KEYS[1]) == 1 then v = redis.call('LRANGE', KEYS[1], 0, -1) else v = false end
else
  v = redis.call('HGET', KEYS[1], ARGV[2])
end
if v then
  if ARGV[5] ~= '-1' and not poll then
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl >= 0 and ttl <= tonumber(ARGV[5]) then
      count('stale_hits')
      return {1 + lock(), v}
    end
  end
  count('hits')
  return {0, v}
end
count('misses')
if ARGV[7] == '1' then
  count('defaults')
end
local got = lock()
if got == 0 and ARGV[7] ~= '1' then count('waits') end
return {3 + got}
"#,
    )
});

/// Ends a computation the caller owned the lock for.
///
/// `KEYS`: value key (or hash key), lock key, statistics hash.
/// `ARGV`: mode, field, lock token, ttl ms (`0`: none), statistics (`1`/`0`), action,
/// values... Actions: `store` (store the values if the lock is still ours, release it),
/// `skip` (computed but not cacheable: release), `fail` (failed: release), `fail_keep`
/// (failed in the background: keep the lock until it expires, so retries back off),
/// `drop` (never ran, the refresh queue was full: release).
///
/// Returns 1 when the lock was still ours (and, for `store`, the value was stored).
pub(crate) static FINISH: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r#"
local mode = ARGV[1]
local action = ARGV[6]
local owned = redis.call('GET', KEYS[2]) == ARGV[3]
local function count(field)
  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], field, 1) end
end
if action == 'drop' then
  count('dropped')
else
  count('refreshes')
end
if action == 'fail' or action == 'fail_keep' then count('failures') end
if not owned then return 0 end
if action ~= 'fail_keep' then redis.call('DEL', KEYS[2]) end
if action ~= 'store' then return 1 end
if mode == 's' then
  if ARGV[4] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[4])
  else
    redis.call('SET', KEYS[1], ARGV[7])
  end
elseif mode == 'l' then
  redis.call('DEL', KEYS[1])
  for i = 7, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if ARGV[4] ~= '0' and #ARGV >= 7 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[7])
  if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4], 'NX') end
end
return 1
"#,
    )
});

/// `INCRBY` only when the key exists (a counter that is not cached stays uncached, so the
/// next call computes it from the source). `KEYS`: counter. `ARGV`: delta.
pub(crate) static INCR_IF_CACHED: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"#,
    )
});

/// `RPUSH` only when the list exists, returning the new length. `KEYS`: list. `ARGV`: item.
pub(crate) static PUSH_IF_CACHED: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('RPUSH', KEYS[1], ARGV[1])
end
return false
"#,
    )
});
