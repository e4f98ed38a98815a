//! The tree of regions in Redis: the keys of a region, the generations that make a whole
//! subtree unreachable in one step, and the scripts that create, invalidate and reclaim them.
//! The [module docs](super) describe the layout; the scripts' prelude (`_place`, `_at`, see
//! [`script`](crate::engine::script)) follows it to find a region's hash.

use std::collections::HashSet;
use std::sync::Mutex;

use once_cell::sync::Lazy;

use crate::engine::path::{escaped_parts, path_of};
use crate::engine::{Placed, Script};
use crate::error::Result;
use crate::key::Key;

/// How many regions (hashes deleted, or children moved to the queue) one reclamation step
/// handles at most: a few hundred microseconds of server time (see `benches/RESULTS.md`; 50
/// took 1.1 to 1.3 ms on Redis 6.2 on the CI machine of 2026-11-30).
pub(crate) const STEP_BUDGET: u32 = 25;

/// The rendered keys of a region, computed once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `P{root}`: the start of every key of the tree.
    pub(crate) base: String,
    /// `P{root}.abc.xyz` (`P{root}` for the root region): the region's name as a key. It
    /// routes the region's requests (its hash tag is the tree's) and is named in errors and
    /// `Debug`; no key of the layout has this name.
    pub(crate) key: String,
    /// The escaped dotted name below the root (`abc.xyz`; empty for the root region).
    pub(crate) name: String,
    /// `P{root}@?`: what requests name in place of the region's hash.
    pub(crate) placeholder: String,
    /// The placement argument of the scripts (`<length of base>:<base><name>`).
    pub(crate) place: String,
    /// `P{root}#gc`: the queue of generations waiting to be reclaimed.
    pub(crate) queue: String,
}

impl Layout {
    /// The layout of the region `parts` under `root`, after the connection's prefix and the
    /// region's own `prefix` (`P` is `<connection prefix><prefix>.`, or just the connection
    /// prefix).
    pub(crate) fn new(
        connection_prefix: &str,
        prefix: Option<&str>,
        root: &str,
        parts: &[String],
    ) -> Result<Layout> {
        let mut before = connection_prefix.to_string();
        if let Some(p) = prefix {
            // Checked like any collection prefix: non-empty, no braces.
            Key::default().render("", Some(p))?;
            before.push_str(p);
            before.push('.');
        }
        let base = Key::default().with_hash_tag().render(&before, Some(root))?;
        let key = Key::from_parts(parts)
            .with_hash_tag()
            .render(&before, Some(root))?;
        let name = key
            .get(base.len() + 1..)
            .map(str::to_string)
            .unwrap_or_default();
        Ok(Layout {
            placeholder: format!("{base}@?"),
            place: format!("{}:{base}{name}", base.len()),
            queue: format!("{base}#gc"),
            key,
            name,
            base,
        })
    }

    /// The placement the engine passes to scripts, with the region's path shared in the
    /// process by the handles of the region on `server` (see [`path_of`]).
    pub(crate) fn placed(&self, server: &str) -> Placed {
        let parts = escaped_parts(&self.name);
        Placed {
            placeholder: self.placeholder.clone(),
            place: self.place.clone(),
            base: self.base.clone(),
            path: path_of(server, &self.key, &self.base, &parts),
            parts,
            server: server.to_string(),
            names: Default::default(),
        }
    }

    /// The region's hash in generation `id` (what an operator sees in `redis-cli`).
    #[cfg(test)]
    fn hash_in(&self, id: u64) -> String {
        let dot = if self.name.is_empty() { "" } else { "." };
        format!("{}@{id}{dot}{}", self.base, self.name)
    }
}

/// Undoes the key module's escaping of one part (`a\\b` -> `a\b`); `None` for a part that
/// holds an unescaped `.` or a dangling `\`.
pub(crate) fn unescape_part(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '.' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `"a.b"` -> `["a", "b"]`; `""` -> `[]` (the root region).
pub(crate) fn split_name(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        name.split('.').map(str::to_string).collect()
    }
}

/// Regions this process has created, by connection name, server and name key.
static KNOWN: Lazy<Mutex<HashSet<String>>> = Lazy::new(|| Mutex::new(HashSet::new()));

/// The process-wide registry of regions already created (by a write or `create`).
pub(crate) fn known() -> std::sync::MutexGuard<'static, HashSet<String>> {
    KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gives a region a generation (and its ancestors one, where they have none) without writing
/// to its hash. `KEYS[1]`: the region's hash (named with the placeholder). `ARGV[1]`: the
/// placement.
pub(crate) static CREATE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local e = _place(ARGV[1]) or _may_place()
if e then return e end
_at(KEYS[1], true)
return true
",
    )
});

/// The key of the region's hash in its current generation, or nil when it has none.
/// `KEYS[1]`: the region's hash (named with the placeholder). `ARGV[1]`: the placement.
pub(crate) static LOCATE: Lazy<Script> = Lazy::new(|| {
    Script::reader(
        r"
local e = _place(ARGV[1])
if e then return e end
if not _p.found then return false end
return KEYS[1]
",
    )
    .keeping_data()
});

/// Retires the region's current generation, and with it everything below it, in a constant
/// number of commands: the entry naming it in its parent's map is deleted (the root region's
/// generation is replaced in the tree's hash), so no script finds it again, and its stem is
/// queued for reclamation. Returns 1 when there was a generation to retire, else 0.
///
/// A tree in the layout of redis-caches 0.1 can only have its root invalidated: its old keys
/// are queued (as `!`) and the tree gets a generation of the current layout, which ends the
/// refusal.
///
/// The queue is written first: a server that refuses writes (out of memory) refuses the
/// `RPUSH`, and then nothing has changed.
///
/// Every key it touches is declared: the queue, the tree's hash and the maps down to the
/// region's parent (whose entry is deleted), so that on Redis Cluster it runs on the node
/// that holds them all, or is refused before anything changed.
///
/// `KEYS[1]`: the queue. `ARGV[1]`: the placement.
pub(crate) static INVALIDATE: Lazy<Script> = Lazy::new(|| {
    Script::unlinker(
        r"
local e = _place(ARGV[1])
local root = #_p.parts == 0
if e and not (_p.old and root) then return e end
local gc = KEYS[1]
e = _may('RPUSH', gc, 'x')
if root then
  e = e or _may('HINCRBY', _p.meta, 'next', '1') or _may('HSET', _p.meta, 'root', '1')
  if e then return e end
  if _p.old then redis.call('RPUSH', gc, '!') end
  if _p.id then redis.call('RPUSH', gc, '@' .. _p.id) end
  redis.call('HSET', _p.meta, 'root', redis.call('HINCRBY', _p.meta, 'next', '1'))
  if _p.old or _p.id then return 1 end
  return 0
end
if not _p.found then return 0 end
e = e or _may('HDEL', _p.map, 'f')
if e then return e end
redis.call('RPUSH', gc, '@' .. _p.id .. '.' .. table.concat(_p.parts, '.'))
redis.call('HDEL', _p.map, _p.parts[#_p.parts])
return 1
",
    )
});

/// One bounded step of reclamation, depth first: looks at the entry at the head of the queue;
/// when its generation still has children, scans the next page of its map (`HSCAN` from the
/// cursor kept in the entry, so each page costs about the same however empty the map got),
/// deletes the hashes of the children that have no children themselves and queues the others
/// at the head, and removes them from the map; when the map is gone, deletes the
/// generation's own hash and drops the entry. Stops after `ARGV[2]` regions. Only a hash at a
/// retired region's hash name, and entries of a hash (a set, for the old layout) at its map
/// name, are deleted; a queue entry of any other shape is dropped. Deletions come first: out
/// of memory, Redis refuses a script's first write that could use memory but not the ones
/// after a deletion, so a page with children to delete is done whole; when the queue may not
/// grow, the children that have children stay in their parent's map for a later pass.
/// Returns `{hashes deleted, entries left, 1 if anything changed else 0}` (nothing changes
/// when the queue is empty, or, out of memory, when the page at hand holds only children with
/// children).
///
/// Entries: an optional scan cursor, then `@<id>[.<name>]` (a retired generation: hash
/// `base .. stem`, map `base .. stem .. '#children'`, whose fields are the children's escaped
/// name parts and values their generations), or `!` followed by an old-layout region key
/// without the base (`!`, `!.a.b`: hash `base .. rest`, link set
/// `base .. '#children' .. rest`, whose members are the children's full keys).
///
/// A step reads keys it cannot declare beforehand (the maps and hashes of retired
/// generations, found as it goes). While the tree's slot is being migrated on Redis Cluster
/// (the step may run on the migrating node, which may lack some of them, or on the importing
/// node, which lacks the others and would take them for missing), it changes nothing: a
/// first command naming the queue and a key that never exists (generation `0`) fails on a
/// node whose slot is migrating or importing, and the step then returns `{0, entries left,
/// 0}`, so reclamation waits and tries again later.
///
/// `KEYS[1]`: the queue. `ARGV`: the base, the budget.
pub(crate) static RECLAIM: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local gc, base, budget = KEYS[1], ARGV[1], tonumber(ARGV[2])
if type(redis.pcall('EXISTS', gc, base .. '@0')) ~= 'number' then
  return {0, redis.call('LLEN', gc), 0}
end
local e = _may('UNLINK', base .. '@1') or _may('HDEL', base .. '@1#children', 'f')
  or _may('LPUSH', gc, 'x') or _may('LSET', gc, '0', 'x') or _may('LPOP', gc)
  or _may('SREM', base .. '#children', 'x')
if e then return e end
local deleted, changed = 0, 0
local function keys_of(stem)
  if string.sub(stem, 1, 1) == '!' then
    local rest = string.sub(stem, 2)
    if rest == '' or string.sub(rest, 1, 1) == '.' then
      return base .. rest, base .. '#children' .. rest, 'set'
    end
  elseif string.match(stem, '^@%d+$') or string.match(stem, '^@%d+%.') then
    return base .. stem, base .. stem .. '#children', 'hash'
  end
  return nil
end
while budget > 0 do
  local entry = redis.call('LINDEX', gc, 0)
  if not entry then break end
  local cursor, stem = string.match(entry, '^(%d*)([@!].*)$')
  local hash, links, kind
  if stem then hash, links, kind = keys_of(stem) end
  if hash and redis.call('TYPE', links)['ok'] == kind then
    local n = math.min(budget, 100)
    if cursor == '' then cursor = '0' end
    local page = redis.call(kind == 'set' and 'SSCAN' or 'HSCAN', links, cursor, 'COUNT', n)
    local items = page[2]
    -- A page may hold more than asked (a small map comes whole): beyond `n`, children are
    -- left in the map, and the next page starts where this one did.
    local width = kind == 'set' and 1 or 2
    local next_cursor = page[1]
    if #items > n * width then
      next_cursor = cursor
      local cut = {}
      for i = 1, n * width do cut[i] = items[i] end
      items = cut
    end
    -- The children on this page: their map field (or set member) and stem.
    local taken = {}
    if kind == 'set' then
      local prefix = hash .. '.'
      for _, member in ipairs(items) do
        local child
        if #member > #prefix and string.sub(member, 1, #prefix) == prefix then
          child = '!' .. string.sub(member, #base + 1)
        end
        taken[#taken + 1] = {member, child}
      end
    else
      local names = string.match(stem, '^@%d+(.*)$')
      for i = 1, #items, 2 do
        local child
        if string.match(items[i + 1], '^%d+$') then
          child = '@' .. items[i + 1] .. names .. '.' .. items[i]
        end
        taken[#taken + 1] = {items[i], child}
      end
    end
    -- Children with children of their own are queued, the others' hashes deleted; a child
    -- leaves its parent's map once it is queued or deleted.
    local later, unlink, gone = {}, {}, {}
    for _, t in ipairs(taken) do
      local h, l, k
      if t[2] then h, l, k = keys_of(t[2]) end
      if not h then
        gone[#gone + 1] = t[1]
      elseif redis.call('TYPE', l)['ok'] == k then
        later[#later + 1] = t
      else
        if redis.call('TYPE', h)['ok'] == 'hash' then unlink[#unlink + 1] = h end
        gone[#gone + 1] = t[1]
      end
    end
    local remove = kind == 'set' and 'SREM' or 'HDEL'
    if #unlink > 0 then deleted = deleted + redis.call('UNLINK', unpack(unlink)) end
    if #gone > 0 then
      redis.call(remove, links, unpack(gone))
      changed = 1
    end
    -- Where the next page starts (0: the pass is over, the next one starts again).
    if next_cursor == '0' then next_cursor = '' end
    if next_cursor .. stem ~= entry then
      local set = redis.pcall('LSET', gc, 0, next_cursor .. stem)
      if type(set) ~= 'table' then changed = 1 end
    end
    if #later > 0 then
      local stems, fields = {}, {}
      for _, t in ipairs(later) do
        stems[#stems + 1] = t[2]
        fields[#fields + 1] = t[1]
      end
      local pushed = redis.pcall('LPUSH', gc, unpack(stems))
      if type(pushed) ~= 'table' then
        redis.call(remove, links, unpack(fields))
        changed = 1
      end
    end
    budget = budget - n
  else
    if hash and redis.call('TYPE', hash)['ok'] == 'hash' then
      deleted = deleted + redis.call('UNLINK', hash)
    end
    redis.call('LPOP', gc)
    changed = 1
    budget = budget - 1
  end
end
return {deleted, redis.call('LLEN', gc), changed}
",
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> Vec<String> {
        split_name(name)
    }

    /// Golden tests: a change here orphans users' data, so the layout is pinned.
    #[test]
    fn golden_layout() {
        let l = Layout::new("", None, "root", &parts("abc.xyz")).unwrap();
        assert_eq!(l.base, "{root}");
        assert_eq!(l.key, "{root}.abc.xyz");
        assert_eq!(l.name, "abc.xyz");
        assert_eq!(l.placeholder, "{root}@?");
        assert_eq!(l.place, "6:{root}abc.xyz");
        assert_eq!(l.queue, "{root}#gc");
        assert_eq!(l.hash_in(7), "{root}@7.abc.xyz");

        let root = Layout::new("app:", None, "r", &[]).unwrap();
        assert_eq!(root.base, "app:{r}");
        assert_eq!(root.key, "app:{r}");
        assert_eq!(root.name, "");
        assert_eq!(root.place, "7:app:{r}");
        assert_eq!(root.hash_in(1), "app:{r}@1");

        let odd = Layout::new(
            "",
            None,
            "root",
            &[
                r"a\b".to_string(),
                "#children".to_string(),
                "x.y".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(odd.name, r"a\\b.#children.x\.y");
        assert_eq!(odd.key, r"{root}.a\\b.#children.x\.y");

        let prefixed = Layout::new("app:", Some("v2"), "r", &parts("a")).unwrap();
        assert_eq!(prefixed.base, "app:v2.{r}");
        assert_eq!(prefixed.key, "app:v2.{r}.a");
        assert_eq!(prefixed.place, "10:app:v2.{r}a");
        assert_eq!(prefixed.queue, "app:v2.{r}#gc");
    }

    #[test]
    fn invalid_names_roots_and_prefixes_fail_at_layout() {
        assert!(Layout::new("", None, "root", &parts("a..b")).is_err());
        assert!(Layout::new("", None, "ro{o}t", &parts("a")).is_err());
        assert!(Layout::new("", None, "", &parts("a")).is_err());
        assert!(Layout::new("", Some(""), "root", &parts("a")).is_err());
        assert!(Layout::new("", Some("p{x}"), "root", &parts("a")).is_err());
    }

    #[test]
    fn unescaping_undoes_the_key_escaping() {
        assert_eq!(unescape_part(r"a\\b").as_deref(), Some(r"a\b"));
        assert_eq!(unescape_part(r"x\.y").as_deref(), Some("x.y"));
        assert_eq!(unescape_part("plain").as_deref(), Some("plain"));
        assert_eq!(unescape_part("a.b"), None);
        assert_eq!(unescape_part("dangling\\"), None);
        assert_eq!(split_name(""), Vec::<String>::new());
        assert_eq!(split_name("a.b"), ["a", "b"]);
    }
}
