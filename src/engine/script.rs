//! Lua scripts: every operation of more than one command is one script, so that it is one
//! request with one reply, runs atomically, and is refused whole or applied whole (reads that
//! need none of that are pipelined instead: a memo's fresh hit, a region's read checked
//! against the generations it named, see [`Engine`](super::Engine)).
//!
//! Every script starts with the prelude functions it calls (and those they call), which is
//! where a collection's TTL policy and its type guard become commands. Only those: Redis runs
//! a script's whole text on every call, and each function defined there is a closure the
//! server makes on every call, called or not (about 700 instructions each). The functions:
//!
//! - `_wrongtype(key, type)`: an error reply when `key` holds a Redis type other than `type`
//!   (a missing key is fine). Scripts call it before writing anything, so a write over a
//!   foreign key changes nothing.
//! - `_may(command, key, ...)`: on servers that can tell (Redis 7.0+, `redis.acl_check_cmd`),
//!   a `NOPERM` error reply when the connection's user may not run `command` on `key` (the
//!   arguments after the key are placeholders of the command's shape). Scripts check every
//!   command they run, reads included, before the first write, so a user who lacks a
//!   permission gets a typed error ([`Error::Permission`](crate::Error::Permission)) and
//!   nothing is applied. Redis 6.2 has no `redis.acl_check_cmd`: there a command refused
//!   halfway through a script fails it with what ran before it applied (the error is still
//!   an [`Error::Permission`](crate::Error::Permission), read from 6.2's wording).
//! - `_may_expire(key, ms, policy)`: `_may` for the commands `_expire` runs.
//! - `_text(err)`, `_code(err)`: the text from the error code on (`OOM command not
//!   allowed ...`), and the code (`OOM`), of an error `redis.pcall` returned: Redis 7.0+
//!   gives it as it is, 6.2 prefixes the script's position (`@user_script: 12: -OOM ...`)
//!   and words an ACL refusal without a code (read as `NOPERM`).
//! - `_raise(err)`: fails the script with an error `redis.pcall` returned, keeping its code
//!   (Redis 6.2 cannot raise an error table: it is raised as its text there).
//! - `_expire(key, ms, policy)`: the TTL policy: with `ms` empty nothing; with `policy`
//!   `keep`, `PEXPIRE` only when the key has no TTL (what `PEXPIRE NX` does on Redis 7.0,
//!   written so that Redis 6.2 runs it too); otherwise `PEXPIRE`.
//! - `_place(place)`, `_at(key, create)`, `_may_place()`: the keys of a
//!   [placed](super::Placed) handle (a region's hash). The request names them from the
//!   generations the process last found, and declares the keys those come from after the
//!   script's own keys (the tree's hash `B#tree`, then the map of each level); `place` says
//!   where they start, the generations they were named with, the tree's counter (for a
//!   request that may create generations) and the region's name (see
//!   [`path`](super::path)). `_place` checks every one of them (one `HGET` per level, no
//!   write): when one differs it returns an error reply `STALEPATH <generations found>
//!   <counter>` (the generations read down the maps by name, which it does not declare, with
//!   `redis.pcall`, so that a map that is not on the node ends the walk instead of failing
//!   the script), and the engine sends the request again with the keys of the path found.
//!   It returns an error reply for a tree in the layout of redis-caches 0.1 (code
//!   `OLDLAYOUT`). Since every key is named beforehand, `_at(key)` returns `key`; for a
//!   region without a generation the request named its keys in generation `0` (never handed
//!   out: they read as missing) or, for a script that may create it, in the generations it
//!   would create (the counter + 1 and up, checked to be still unused), and `_at(key, true)`
//!   creates them, so a script calls it right before its first write and after its checks
//!   (`_may_place` checks the ACL for that creation). For a handle that is not placed
//!   (`place` empty) all three change nothing. The steady state, a request that names the
//!   whole path (its generations marked `=` in `place`), costs the fewest server calls:
//!   `_place` reads the root and each map once, joins what it read and compares that with
//!   the generations named as one string (it does not split them); any difference is a
//!   stale path. Only a request that names part of the path (a region without a generation
//!   yet) splits them and walks the path level by level.
//!
//! No script names a key after a command that may have deleted it (a removal's `PEXPIRE`
//! comes before it): on Redis Cluster, while the key's slot migrates, Redis fails a script
//! there ("non local key"), after what ran before it.
//!
//! The TTL reaches scripts as data: `ARGV[1]` the collection's Redis type, `ARGV[2]` the TTL
//! in milliseconds or empty, `ARGV[3]` `keep` or empty (see
//! [`Engine::ttl_args`](super::Engine::ttl_args)).
//!
//! Scripts are sent by hash (`EVALSHA`); a server that does not know one answers `NOSCRIPT`,
//! and the script is sent once with its text (`EVAL`), which also makes the server remember
//! it. Redis refuses a script whole when it would write while over `maxmemory` or without
//! enough replicas: it checks before the first write, never between two.

use std::fmt::Write as _;

use once_cell::sync::Lazy;

/// The functions scripts can call, in the order they are defined (each only calls those
/// before it), by name: a script's text holds those its body names, and those they name.
const PRELUDE: &[(&str, &str)] = &[
    (
        "_may",
        r"local function _may(...)
  if redis.acl_check_cmd and not redis.acl_check_cmd(...) then
    return redis.error_reply('NOPERM this user has no permissions to run the ' .. string.lower((...)) .. ' command on this key')
  end
  return nil
end
",
    ),
    (
        "_types",
        r"local _types = {}
",
    ),
    (
        "_wrongtype",
        r"local function _wrongtype(key, want)
  local e = _may('TYPE', key)
  if e then return e end
  local t = redis.call('TYPE', key)['ok']
  _types[key] = t
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  return nil
end
",
    ),
    (
        "_may_expire",
        r"local function _may_expire(key, ms, policy)
  if ms == '' then return nil end
  return _may('PEXPIRE', key, '1') or (policy == 'keep' and _may('PTTL', key)) or nil
end
",
    ),
    (
        "_text",
        r"local function _text(err)
  if string.find(err, [[The user executing the script can't run this command]], 1, true) then
    return 'NOPERM ' .. string.gsub(err, '^.*: ', '')
  end
  local t = string.match(err, '^%-?(%u+ .*)$') or string.match(err, ': %-(%u+ .*)$') or err
  return (string.gsub(t, '%s+$', ''))
end
",
    ),
    (
        "_code",
        r"local function _code(err)
  return string.match(_text(err), '^(%u+) ')
end
",
    ),
    (
        "_raise",
        r"local function _raise(r)
  if redis.REDIS_VERSION_NUM then error(r) end
  error(r.err)
end
",
    ),
    (
        "_expire",
        r"local function _expire(key, ms, policy)
  if ms == '' then return end
  if policy == 'keep' and redis.call('PTTL', key) ~= -1 then return end
  redis.call('PEXPIRE', key, ms)
end
",
    ),
    (
        "_p",
        r"local _p = {}
",
    ),
    (
        "_stale",
        r"local function _stale(extra)
  local found, names = {}, ''
  local id = redis.pcall('HGET', _p.meta, 'root')
  while type(id) == 'string' and string.match(id, '^%d+$') do
    found[#found + 1] = id
    local i = #found
    if i > #_p.parts then break end
    local map = _p.base .. '@' .. id .. names .. '#children'
    names = names .. '.' .. _p.parts[i]
    id = redis.pcall('HGET', map, _p.parts[i])
  end
  local n = redis.pcall('HGET', _p.meta, 'next')
  if type(n) ~= 'string' then n = '0' end
  return redis.error_reply('STALEPATH ' .. table.concat(found, ',') .. ' ' .. n .. (extra or ''))
end
",
    ),
    (
        "_place",
        r"local function _place(place)
  if place == '' then return nil end
  local f, n, whole, ids, len, rest = string.match(place, '^(%d+):(%d*):(=?)([%d,]*):(%d+):(.*)$')
  f, len = f + 0, len + 0
  local base, name, parts = string.sub(rest, 1, len), string.sub(rest, len + 1), {}
  _p.base, _p.meta, _p.f, _p.next, _p.parts = base, KEYS[f], f, n, parts
  if name == '' then
  elseif not string.find(name, '\\', 1, true) then
    for part in string.gmatch(name, '[^.]+') do parts[#parts + 1] = part end
  else
    local i, from = 1, 1
    while i <= #name do
      local c = string.byte(name, i)
      if c == 92 then
        i = i + 2
      elseif c == 46 then
        parts[#parts + 1] = string.sub(name, from, i - 1)
        i = i + 1
        from = i
      else
        i = i + 1
      end
    end
    parts[#parts + 1] = string.sub(name, from)
  end
  local depth = #parts
  local root = redis.call('HGET', _p.meta, 'root')
  -- A request that names the whole path (`=`, the steady state): the generations read down
  -- the maps must be those named, compared as one string (without splitting `ids`).
  if whole ~= '' then
    local chain, id = root, root
    for i = 1, depth do
      if not id then break end
      id = redis.call('HGET', KEYS[f + i], parts[i])
      chain = id and (chain .. ',' .. id)
    end
    if chain ~= ids then return _stale() end
    _p.found, _p.id = true, id
    if depth > 0 then _p.map = KEYS[f + depth] end
    return nil
  end
  _p.ids = {}
  for id in string.gmatch(ids, '%d+') do _p.ids[#_p.ids + 1] = id end
  local j = #_p.ids
  if j == 0 then
    if root then return _stale() end
    local a, b = redis.pcall('EXISTS', base), redis.pcall('EXISTS', base .. '#children')
    if type(a) ~= 'number' or type(b) ~= 'number' then
      return redis.error_reply('TRYAGAIN the slot of the region tree ' .. base .. ' is migrating')
    end
    if a + b > 0 then
      _p.old = true
      return redis.error_reply('OLDLAYOUT the region tree ' .. base .. ' is in the layout of redis-caches 0.1')
    end
  elseif root ~= _p.ids[1] then
    return _stale()
  end
  for i = 1, j < depth and j or depth do
    local child = redis.call('HGET', KEYS[f + i], _p.parts[i])
    if i < j then
      if child ~= _p.ids[i + 1] then return _stale() end
    elseif child then
      return _stale()
    end
  end
  _p.found = j == depth + 1
  if not _p.found and n ~= '' and (redis.call('HGET', _p.meta, 'next') or '0') ~= n then
    return _stale()
  end
  _p.id = _p.ids[j]
  if _p.found and depth > 0 then _p.map = KEYS[f + depth] end
  return nil
end
",
    ),
    (
        "_may_place",
        r"local function _may_place()
  if not _p.base or _p.found then return nil end
  local e = _may('HSET', _p.meta, 'next', '1')
  for i = math.max(#_p.ids, 1), #_p.parts do
    e = e or _may('HSET', KEYS[_p.f + i], 'f', '1')
  end
  return e
end
",
    ),
    (
        "_at",
        r"local function _at(key, create)
  if not _p.base then return key end
  if create and not _p.found then
    if _p.next == '' then _raise(_stale(' create')) end
    local j, depth, n = #_p.ids, #_p.parts, tonumber(_p.next)
    local ids = {}
    for i = 1, depth + 1 do ids[i] = _p.ids[i] or tostring(n + i - j) end
    if j == 0 then redis.call('HSET', _p.meta, 'root', ids[1]) end
    for i = math.max(j, 1), depth do
      redis.call('HSET', KEYS[_p.f + i], _p.parts[i], ids[i + 1])
    end
    redis.call('HSET', _p.meta, 'next', tostring(n + depth + 1 - j))
    _p.ids, _p.found, _p.id = ids, true, ids[depth + 1]
  end
  return key
end
",
    ),
];

/// Whether `text` names the Lua identifier `name` (not as part of a longer one).
fn names(text: &str, name: &str) -> bool {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = text.as_bytes();
    text.match_indices(name).any(|(at, _)| {
        let end = at + name.len();
        (at == 0 || !ident(bytes[at - 1])) && (end == bytes.len() || !ident(bytes[end]))
    })
}

/// `body` after the prelude's functions it calls, directly or through others: Redis runs a
/// script's whole text on every call, and each function defined costs the server a closure
/// (about 700 instructions), used or not.
fn with_prelude(body: &str) -> String {
    let mut needed = vec![false; PRELUDE.len()];
    // Each piece only names pieces before it: walking back from the last, a piece is needed
    // once the body or a later needed piece names it.
    for i in (0..PRELUDE.len()).rev() {
        let (name, _) = PRELUDE[i];
        needed[i] = names(body, name)
            || PRELUDE[i + 1..]
                .iter()
                .zip(&needed[i + 1..])
                .any(|((_, text), n)| *n && names(text, name));
    }
    let mut text = String::from("\n");
    for ((_, piece), n) in PRELUDE.iter().zip(needed) {
        if n {
            text.push_str(piece);
        }
    }
    text.push_str(body);
    text
}

/// A Lua script with the [prelude](self), sent by its SHA-1.
pub(crate) struct Script {
    text: String,
    sha: String,
    /// Whether the script may create a placed handle's generations (see
    /// [`Placed::declare`](super::Placed::declare)).
    creates: bool,
    /// Whether the script may remove a generation from the tree's maps (an invalidation).
    unlinks: bool,
    /// Whether the script may write or read a placed handle's data (its keys in the
    /// generation); a lookup of the region's key does neither.
    writes_data: bool,
}

impl Script {
    /// The script `body`, after the prelude.
    pub(crate) fn new(body: &str) -> Script {
        let text = with_prelude(body);
        let digest = sha1_smol::Sha1::from(&text).digest().bytes();
        let mut sha = String::with_capacity(40);
        for b in digest {
            let _ = write!(sha, "{b:02x}");
        }
        Script {
            text,
            sha,
            creates: true,
            unlinks: false,
            writes_data: true,
        }
    }

    /// The script `body`, which never creates a placed handle's generations (it reads, or
    /// removes only what exists): for a region without a generation, requests name its hash
    /// in generation `0` (missing) and propose no generations.
    pub(crate) fn reader(body: &str) -> Script {
        Script {
            creates: false,
            ..Script::new(body)
        }
    }

    /// The script `body`, which creates no generation but may remove one from the tree's
    /// maps (or replace the root's): an invalidation.
    pub(crate) fn unlinker(body: &str) -> Script {
        Script {
            unlinks: true,
            ..Script::reader(body)
        }
    }

    /// This script, which neither writes nor reads a placed handle's data (it may still
    /// create its generations): this process's near-cache copies of that data stay usable
    /// after it. A script that reads the data must not be one: a read through the pool
    /// makes older copies unusable, so that none is read after it (the design notes of
    /// `connection/tracking.rs`).
    pub(crate) fn keeping_data(self) -> Script {
        Script {
            writes_data: false,
            ..self
        }
    }

    /// Whether the script may write a placed handle's data.
    pub(crate) fn writes_data(&self) -> bool {
        self.writes_data
    }

    /// Whether the script may create a placed handle's generations.
    pub(crate) fn creates(&self) -> bool {
        self.creates
    }

    /// Whether the script may remove a generation from the tree's maps.
    pub(crate) fn unlinks(&self) -> bool {
        self.unlinks
    }

    /// The hex SHA-1 that `EVALSHA` names the script by.
    pub(crate) fn sha(&self) -> &str {
        &self.sha
    }

    /// The full text, prelude included.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// One write command on the collection's key, its type guard, ACL checks, its placement
/// (a region's hash) and the TTL policy, atomically.
///
/// `KEYS[1]`: the key (named with the placeholder for a placed handle, whose tree's keys the
/// engine declares after it). `ARGV`: type, ttl ms, policy (see
/// the [module docs](self)), the placement (empty unless placed), the command, its arguments
/// after the key. More than 1,000 arguments are sent in several commands of 1,000 (for
/// `HSET`/`SADD`/`ZADD` batches, whose pairs stay whole since 1,000 is even), whose integer
/// replies are summed. A placed handle's data is created (its generations allocated) only
/// for a command that can add something: a removal from data that does not exist changes
/// nothing.
pub(crate) static WRITE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _place(ARGV[4])
if e then return e end
local key, n, at = _at(KEYS[1]), #ARGV, 5
e = _wrongtype(key, ARGV[1]) or _may(ARGV[at], key, unpack(ARGV, at + 1, n < at + 2 and n or at + 2))
  or _may_place()
if e then return e end
e = _may_expire(key, ARGV[2], ARGV[3])
if e then return e end
local removal = string.find(' HDEL SREM ZREM LREM SPOP ZPOPMIN ZPOPMAX LPOP RPOP ',
  ' ' .. string.upper(ARGV[at]) .. ' ', 1, true)
if _p.base and not _p.found and not removal then key = _at(KEYS[1], true) end
-- A removal may delete the key, which no command may name after it is gone (while the slot
-- migrates, Redis Cluster would fail the script there): a key that exists gets its TTL
-- first. Any other command comes first: out of memory, Redis refuses it, the script's first
-- write that may use memory, before anything changed (PEXPIRE would not be refused).
local early = removal and _types[key] ~= 'none'
if early then _expire(key, ARGV[2], ARGV[3]) end
local r
if n - at <= 1000 then
  r = redis.call(ARGV[at], key, unpack(ARGV, at + 1))
else
  r = 0
  for i = at + 1, n, 1000 do
    r = r + redis.call(ARGV[at], key, unpack(ARGV, i, math.min(i + 999, n)))
  end
end
if not early then _expire(key, ARGV[2], ARGV[3]) end
return r
",
    )
});

/// One command on a placed handle's key (see [`Placed`](super::Placed)): checks the key's
/// path, then runs the command there (on the key in generation `0`, which reads as missing,
/// when the data does not exist). For commands that read or remove, never for one that adds:
/// it creates nothing.
///
/// `KEYS[1]`: the key named with the placeholder. `ARGV`: the placement, the command, its
/// arguments after the key. An `HMGET` of more than 1,000 fields runs in commands of 1,000,
/// its replies joined.
pub(crate) static PROXY: Lazy<Script> = Lazy::new(|| {
    Script::reader(
        r"
local e = _place(ARGV[1])
if e then return e end
local key, n = _at(KEYS[1]), #ARGV
if n <= 1002 or string.upper(ARGV[2]) ~= 'HMGET' then
  return redis.call(ARGV[2], key, unpack(ARGV, 3))
end
local out = {}
for i = 3, n, 1000 do
  local got = redis.call(ARGV[2], key, unpack(ARGV, i, math.min(i + 999, n)))
  for j = 1, #got do out[#out + 1] = got[j] end
end
return out
",
    )
});

/// A point read of a placed handle's key for the near cache (see
/// [`Engine::read_point`](super::Engine::read_point)): checks the key's path like
/// [`PROXY`], then returns the key's `PTTL` and the read's reply, from one atomic step, so
/// that the copy never outlives the hash it was read from.
///
/// `KEYS[1]`: the key named with the placeholder. `ARGV`: the placement, the command, its
/// arguments after the key.
pub(crate) static NEAR_READ: Lazy<Script> = Lazy::new(|| {
    Script::reader(
        r"
local e = _place(ARGV[1])
if e then return e end
local key = _at(KEYS[1])
return {redis.call('PTTL', key), redis.call(ARGV[2], key, unpack(ARGV, 3))}
",
    )
});

/// `HSET` of one field in a placed handle's hash (a region's `set`) whose every generation the
/// request names, the steady state of [`WRITE`] with nothing else to carry: the same checks
/// (the path, the key's type, the ACL of what runs after the first write) and the TTL policy,
/// without the general script's arguments and branches (see
/// [`Engine::write`](super::Engine::write)).
///
/// `KEYS`: the region's hash, the tree's hash, the map of each level (the root's first).
/// `ARGV`: the generations the keys were named from (`1,2,3`), the name parts, field, value,
/// TTL in ms or empty, policy (`keep` or empty). When a generation read differs it changes
/// nothing and answers `STALEPATH` (without the path: the engine sends the general script,
/// which finds it).
pub(crate) static SET_PLACED: Lazy<Script> = Lazy::new(|| {
    Script::reader(
        r"
local n = #KEYS - 2
local found = redis.call('HGET', KEYS[2], 'root') or ''
for i = 1, n do
  found = found .. ',' .. (redis.call('HGET', KEYS[2 + i], ARGV[1 + i]) or '')
end
if found ~= ARGV[1] then return redis.error_reply('STALEPATH the region tree changed') end
local key, ms, keep = KEYS[1], ARGV[n + 4], ARGV[n + 5] == 'keep'
local t = redis.call('TYPE', key)['ok']
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
-- HSET is the first write: a user who may not run it is refused there, nothing written. What
-- runs after it is checked before it.
if ms ~= '' and redis.acl_check_cmd then
  local c = (keep and not redis.acl_check_cmd('PTTL', key) and 'pttl')
    or (not redis.acl_check_cmd('PEXPIRE', key, '1') and 'pexpire')
  if c then
    return redis.error_reply('NOPERM this user has no permissions to run the ' .. c .. ' command on this key')
  end
end
local r = redis.call('HSET', key, ARGV[n + 2], ARGV[n + 3])
if ms ~= '' and (not keep or redis.call('PTTL', key) == -1) then
  redis.call('PEXPIRE', key, ms)
end
return r
",
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_named_by_the_sha1_of_their_full_text() {
        let s = Script::new("return 1");
        assert!(s.text().ends_with("return 1"));
        assert_eq!(s.sha().len(), 40);
        assert_eq!(
            s.sha(),
            sha1_smol::Sha1::from(s.text()).digest().to_string()
        );
        assert_ne!(s.sha(), Script::new("return 2").sha());
        // A reader is the same script, marked as one that creates no generations.
        assert!(s.creates());
        let reader = Script::reader("return 1");
        assert!(!reader.creates());
        assert_eq!((reader.text(), reader.sha()), (s.text(), s.sha()));
    }

    #[test]
    fn a_script_holds_the_prelude_functions_it_calls_and_theirs() {
        let defines = |s: &Script, name: &str| {
            s.text().contains(&format!("local function {name}("))
                || s.text().contains(&format!("local {name} = "))
        };
        let plain = Script::new("return 1");
        assert!(PRELUDE.iter().all(|(name, _)| !defines(&plain, name)));
        // `_wrongtype` calls `_may` and fills `_types`; `_may_expire` (a longer name that
        // starts with `_may`) is not named.
        let guard = Script::new("return _wrongtype(KEYS[1], 'hash')");
        for name in ["_may", "_types", "_wrongtype"] {
            assert!(defines(&guard, name), "{name}");
        }
        assert!(!defines(&guard, "_may_expire") && !defines(&guard, "_place"));
        // Every function a script names is defined before it, in the prelude's order.
        let write = &*WRITE;
        let mut at = 0;
        for (name, piece) in PRELUDE {
            if let Some(found) = write.text()[at..].find(piece) {
                at += found + piece.len();
            } else {
                assert!(
                    !names(write.text(), name),
                    "{name} is called but not defined"
                );
            }
        }
    }
}
