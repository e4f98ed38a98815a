//! [`Region`]: nested, dotted namespaces of typed values, invalidated recursively in one atomic
//! step.
//!
//! A region is a Redis hash named by its dotted name under a root (`"root"` unless the builder
//! says otherwise). `Region::new("users.42")` is the hash `{root}.users.42`, a child of
//! `{root}.users`, itself a child of the root region `{root}`. Each parent keeps the keys of its
//! children in a Redis set, so [`Region::invalidate`] can find and delete a whole subtree, from
//! any process, in one Lua script.
//!
//! # Key layout
//!
//! For the root `root`, a connection `prefix` of `P` (empty by default), and the region
//! `abc.xyz`:
//!
//! | Key | Redis type | Holds |
//! |---|---|---|
//! | `P{root}` | hash | the entries of the root region itself |
//! | `P{root}.abc` | hash | the entries of `abc` |
//! | `P{root}.abc.xyz` | hash | the entries of `abc.xyz` |
//! | `P{root}#children` | set | `P{root}.abc` (the hash keys of the root's children) |
//! | `P{root}#children.abc` | set | `P{root}.abc.xyz` |
//!
//! Every key of a tree starts with the root in a Redis Cluster hash tag (`{root}`), so the whole
//! tree lives in one slot, which the invalidation script and the `MULTI`/`EXEC` of a write need.
//! A region key continues after `}` with `.` or ends there; a link key continues with `#`. Since
//! a root may not contain `{` or `}`, the first `}` always closes the root, and a link key can
//! never equal a region key, whatever the names. Inside a name part, `\` is written `\\` (see
//! [`key`](crate::key)); names are split on `.`, so a part never holds one.
//!
//! The invalidation script declares the region's hash and its parent's link set as its keys
//! and finds the descendants at run time; Redis allows that for keys of the script's own slot,
//! which the shared hash tag guarantees.
//!
//! Fields are the entry keys encoded by the region's codec as a `String` (so the
//! [`DictCache<String, V>`](crate::DictCache) view from [`Region::dict`] reads the same
//! entries); values are encoded per call with the type the call names. Results memoized with
//! [`Region::memoize`] live in the same hash under fields of their own (postcard bytes of `(name, arguments)` behind a
//! header no key field can start with), so they never collide with entry keys and are
//! invalidated with the region.
//!
//! # Links, and why writes carry them
//!
//! Every write to a region sends, in the same `MULTI`/`EXEC`, one `SADD` per level linking the
//! region to the root (`SADD P{root}#children P{root}.abc`, `SADD P{root}#children.abc
//! P{root}.abc.xyz`). It costs no extra round trip, and it closes a gap the Python original
//! has: when another process invalidates a parent, the links go with it; a process that still
//! holds a handle to the child and writes to it again would otherwise create a hash no longer
//! reachable from the parent, which the parent's next invalidation would miss. Here the write
//! and its links land together or not at all, so at every instant every region hash that holds
//! data is reachable from the root.
//!
//! [`Region::create`] links a region without writing to it (so it shows among its parent's
//! [`children`](Region::children)): one round trip, done once per process and region (a
//! process-wide registry keyed by connection name, server and full key).
//!
//! # Options and inheritance
//!
//! A region has a TTL, a TTL policy, a codec, a connection, a root and an
//! [`OutagePolicy`]. A child made with [`Region::region`] or [`Region::region_builder`] starts
//! with a copy of its parent's options; what the child builder changes applies to the child
//! only. `Region::new("a.b.c")` creates no objects for `a` and `a.b`: it only links them on the
//! first write, and writes nothing into their hashes, so none of `a.b.c`'s options (its TTL in
//! particular) leaks onto them. A handle to `a` or `a.b` gets whatever options it is built with
//! (the defaults for `Region::new("a")`). The TTL applies to the region's own hash: a parent
//! expiring does not expire its children (only [`invalidate`](Region::invalidate) cascades).
//!
//! # Costs
//!
//! | Method | Redis commands | Round trips |
//! |---|---|---|
//! | [`get`](Region::get), [`contains_key`](Region::contains_key), [`len`](Region::len) | `HGET`, `HEXISTS`, `HLEN` | 1 |
//! | [`set`](Region::set) | `SADD` per level + `HSET` (+ `PEXPIRE`), in `MULTI`/`EXEC` | 1 |
//! | [`insert`](Region::insert) | `SADD` per level + `HGET` + `HSET` (+ `PEXPIRE`), in `MULTI`/`EXEC` | 1 |
//! | [`remove`](Region::remove), [`delete`](Region::delete) | `HGET` + `HDEL` / `HDEL` (+ `PEXPIRE`) | 1 |
//! | [`get_or_insert_with`](Region::get_or_insert_with), [`Memoized::call`] | `HGET`; on a miss `SADD`s + `HSETNX` + `HGET` (+ `PEXPIRE`) in `MULTI`/`EXEC` | 1 on a hit, 2 on a miss |
//! | [`transaction`](Region::transaction) | reads as above; the commit: `SADD`s, `DEL` or `HDEL`, one `HSET` (+ `PEXPIRE`) in `MULTI`/`EXEC` | 1 for the commit, 0 when nothing was written |
//! | [`keys`](Region::keys), [`iter`](Region::iter) | `HSCAN` | 1 per batch |
//! | [`children`](Region::children) | `SSCAN` | 1 per batch |
//! | [`create`](Region::create) | `SADD` per level in `MULTI`/`EXEC` | 1 the first time, then 0 |
//! | [`invalidate`](Region::invalidate) | one Lua script (`EVALSHA`: `SMEMBERS`, `UNLINK` per region, `SREM`) | 1 (3 the first time a server sees the script: `NOSCRIPT`, `SCRIPT LOAD`, `EVALSHA`) |
//! | [`dict`](Region::dict), [`region`](Region::region), [`new`](Region::new) | none | 0 |
//! | [`clear`](Region::clear), [`exists`](Region::exists), [`ttl`](Region::ttl), [`expire`](Region::expire) | `DEL`, `EXISTS`, `PTTL`, `PEXPIRE` | 1 |
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_caches::Region;
//!
//! let users = Region::builder("users").ttl(Duration::from_secs(600)).build();
//! let alice = users.region("alice"); // inherits the 10 minute TTL
//! alice.set("name", "Alice")?;
//! alice.set("visits", &3u32)?;
//! assert_eq!(alice.get::<String>("name")?.as_deref(), Some("Alice"));
//!
//! users.invalidate()?; // users, users.alice and every other descendant, atomically
//! assert_eq!(alice.get::<u32>("visits")?, None);
//! # Ok::<(), redis_caches::Error>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::{Lazy, OnceCell};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, TypeTag};
use crate::dict::DictCache;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{Builder, Collection, Core, Ttl, private};
use crate::signal::{Signal, Subscription};

/// The root of a region tree unless the builder names another one.
///
/// ```
/// use redis_caches::{Region, region::DEFAULT_ROOT};
/// assert_eq!(Region::new("a").root(), DEFAULT_ROOT);
/// ```
pub const DEFAULT_ROOT: &str = "root";

/// What separates a link key from the region key it belongs to (`{root}#children.abc`).
const LINK_MARK: &str = "#children";

/// How many fields or members one `HSCAN`/`SSCAN` asks for.
const SCAN_BATCH: usize = 100;

/// What a region does when Redis is unreachable or does not answer in time.
///
/// Only the operations of the cache path degrade: [`get`](Region::get),
/// [`contains_key`](Region::contains_key), [`get_or_insert_with`](Region::get_or_insert_with)
/// and [`Memoized::call`] (reads), [`set`](Region::set), [`insert`](Region::insert),
/// [`remove`](Region::remove), [`delete`](Region::delete) and a
/// [`transaction`](Region::transaction)'s commit (writes).
/// Everything else ([`invalidate`](Region::invalidate), [`clear`](Region::clear), `len`,
/// iteration, ...) always returns the error: silently skipping an invalidation would leave
/// stale data behind.
///
/// ```
/// use redis_caches::region::OutagePolicy;
/// assert_eq!(OutagePolicy::default(), OutagePolicy::Fail);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Return the error ([`Error::is_connection`] is true on it). The default.
    #[default]
    Fail,
    /// Behave as if Redis were an empty cache that drops writes: reads miss (`None`, `false`,
    /// a computed value left unstored), writes are skipped and return as if they had
    /// succeeded on nothing (`set` gives `false`, `insert` and `remove` give `None`). Each
    /// is counted in [`Region::outage_stats`]. Errors that are not connection failures or
    /// timeouts are still returned.
    Miss,
}

/// What a region skipped under [`OutagePolicy::Miss`], counted since the handle was built
/// (clones share the counts; every other handle, children included, counts on its own).
///
/// ```
/// let stats = redis_caches::Region::new("r").outage_stats();
/// assert_eq!((stats.missed_reads, stats.skipped_writes), (0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct OutageStats {
    /// Reads answered as misses because Redis was unreachable.
    pub missed_reads: u64,
    /// Writes (entries of a transaction count one each) that were not sent.
    pub skipped_writes: u64,
}

/// Options only regions have; set with the builder.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionExtra {
    outage: OutagePolicy,
}

/// A dotted, nested namespace of typed values: one Redis hash, linked to its parent so that
/// invalidating the parent deletes it. See the [module docs](self) for the key layout, the
/// costs, and how options are inherited.
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`, nothing is cached in the process (apart from knowing which regions it already
/// [created](Region::create)). Building a handle does no I/O.
///
/// # Contents
///
/// - Entries: [`get`](Region::get), [`set`](Region::set), [`insert`](Region::insert),
///   [`remove`](Region::remove),
///   [`delete`](Region::delete), [`contains_key`](Region::contains_key), [`len`](Region::len),
///   [`keys`](Region::keys), [`iter`](Region::iter), [`clear`](Region::clear), a typed
///   [`dict`](Region::dict) view
/// - The tree: [`region`](Region::region), [`region_builder`](Region::region_builder),
///   [`children`](Region::children), [`create`](Region::create),
///   [`invalidate`](Region::invalidate), [`invalidate_on`](Region::invalidate_on)
/// - [`transaction`](Region::transaction), [`get_or_insert_with`](Region::get_or_insert_with),
///   [`memoize`](Region::memoize), [`outage_stats`](Region::outage_stats)
///
/// # Example: a tree invalidated from the top
///
/// ```no_run
/// use redis_caches::Region;
///
/// let catalog = Region::new("catalog");
/// let books = catalog.region("books");
/// let scifi = books.region("scifi"); // catalog.books.scifi
/// scifi.set("dune", &1965u16)?;
/// catalog.invalidate()?;
/// assert!(!scifi.contains_key("dune")?);
/// # Ok::<(), redis_caches::Error>(())
/// ```
///
/// # Example: a transaction
///
/// ```no_run
/// use redis_caches::Region;
///
/// let cart = Region::new("cart.alice");
/// cart.transaction(|tx| {
///     tx.set("apples", &3u32)?;
///     tx.set("pears", &2u32)?;
///     assert_eq!(tx.get::<u32>("apples")?, Some(3)); // sees its own pending writes
///     Ok::<_, redis_caches::Error>(())
/// })?; // both written in one MULTI/EXEC, or neither
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Region<C = Postcard> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    core: Core<C>,
    /// The name parts below the root (`["abc", "xyz"]`).
    parts: Vec<String>,
    outage: OutagePolicy,
    missed_reads: AtomicU64,
    skipped_writes: AtomicU64,
    /// True once this process has linked the region (by a write or `create`).
    known: AtomicBool,
    layout: OnceCell<Layout>,
}

/// The rendered keys of a region, computed once.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    /// `P{root}`: the root region's hash, and the start of every key of the tree.
    root: String,
    /// This region's hash.
    hash: String,
    /// This region's link set (its children).
    children: String,
    /// `(link set, member)` from the root down to this region: the `SADD`s of a write.
    links: Vec<(String, String)>,
}

impl Layout {
    fn new(connection_prefix: &str, root: &str, parts: &[String]) -> Result<Layout> {
        let region_key = |n: usize| {
            Key::from_parts(&parts[..n])
                .with_hash_tag()
                .render(connection_prefix, Some(root))
        };
        let root_key = region_key(0)?;
        let mut links = Vec::with_capacity(parts.len());
        let mut previous = root_key.clone();
        for n in 1..=parts.len() {
            let key = region_key(n)?;
            links.push((link_key(&root_key, &previous), key.clone()));
            previous = key;
        }
        Ok(Layout {
            children: link_key(&root_key, &previous),
            hash: previous,
            root: root_key,
            links,
        })
    }

    /// The set this region is a member of: its parent's link set.
    fn parent_links(&self) -> Option<&str> {
        self.links.last().map(|(set, _)| set.as_str())
    }
}

/// The `(link set, member)` pairs linking the region whose hash is `key` (under the root
/// `root`) to its root: what every write to a region carries.
pub(crate) fn links_to_root(
    connection_prefix: &str,
    root: Option<&str>,
    key: &Key,
) -> Result<Vec<(String, String)>> {
    let parts: Vec<String> = key.parts().iter().map(|p| p.to_string()).collect();
    Ok(Layout::new(connection_prefix, root.unwrap_or(DEFAULT_ROOT), &parts)?.links)
}

/// `P{root}.abc` -> `P{root}#children.abc`.
fn link_key(root_key: &str, region_key: &str) -> String {
    let rest = region_key.get(root_key.len()..).unwrap_or_default();
    let mut out = String::with_capacity(root_key.len() + LINK_MARK.len() + rest.len());
    out.push_str(root_key);
    out.push_str(LINK_MARK);
    out.push_str(rest);
    out
}

/// Undoes the key module's escaping of one part (`a\\b` -> `a\b`); `None` for a part that
/// holds an unescaped `.` or a dangling `\`.
fn unescape_part(s: &str) -> Option<String> {
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

fn split_name(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        name.split('.').map(str::to_string).collect()
    }
}

/// Regions this process has linked, by connection name, server and hash key.
static KNOWN: Lazy<Mutex<HashSet<String>>> = Lazy::new(|| Mutex::new(HashSet::new()));

fn lock_known() -> std::sync::MutexGuard<'static, HashSet<String>> {
    KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Deletes a region, its link set and, recursively, every descendant found through the link
/// sets, then unlinks the region from its parent. Children are followed only when their key
/// extends the parent's key with `.`, so foreign set members cannot make it loop.
static INVALIDATE: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
local root, mark = ARGV[1], ARGV[2]
local removed = 0
local stack = {KEYS[1]}
while #stack > 0 do
  local key = table.remove(stack)
  local links = root .. mark .. string.sub(key, #root + 1)
  local prefix = key .. '.'
  for _, child in ipairs(redis.call('SMEMBERS', links)) do
    if #child > #prefix and string.sub(child, 1, #prefix) == prefix then
      table.insert(stack, child)
    end
  end
  removed = removed + redis.call('UNLINK', key)
  redis.call('UNLINK', links)
end
if KEYS[2] then
  redis.call('SREM', KEYS[2], KEYS[1])
end
return removed
",
    )
});

/// The tag values are encoded with. serde writes a reference as what it points to, `str` as
/// `String` does and a slice `[T]` as `Vec<T>` does, so a region treats them as one type:
/// `&str`, `&String` and `String` read back as `String`, `&[&str]` as `Vec<String>`.
fn value_tag<V: ?Sized>() -> TypeTag {
    let tag = TypeTag::of::<V>();
    let normal = normalize_type_name(tag.name());
    if normal == tag.name() {
        tag
    } else {
        TypeTag::named(normal)
    }
}

fn normalize_type_name(name: &str) -> String {
    let without_refs = name.replace("&mut ", "").replace('&', "");
    let mut out = String::with_capacity(without_refs.len() + 8);
    rewrite_type(&without_refs, &mut out);
    out
}

/// Writes `s` with every `str` as `String` and every slice `[T]` as `Vec<T>` (arrays `[T; N]`
/// stay arrays: serde writes them as tuples).
fn rewrite_type(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_alphanumeric() || c == '_' {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            out.push_str(if word == "str" { "String" } else { word });
            rest = &rest[end..];
        } else if c == '[' {
            let Some(close) = matching_bracket(rest) else {
                out.push_str(rest);
                return;
            };
            let inner = &rest[1..close];
            if has_top_level_semicolon(inner) {
                out.push('[');
                rewrite_type(inner, out);
                out.push(']');
            } else {
                out.push_str("Vec<");
                rewrite_type(inner, out);
                out.push('>');
            }
            rest = &rest[close + 1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// The index of the `]` closing the `[` that `s` starts with.
fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn has_top_level_semicolon(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '[' | '<' | '(' => depth += 1,
            ']' | '>' | ')' => depth -= 1,
            ';' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// The tag of memoized-call fields: no entry key field can start with its header.
fn memo_tag() -> TypeTag {
    TypeTag::named("RegionMemo".to_string())
}

impl<C> Clone for Region<C> {
    fn clone(&self) -> Self {
        Region {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Codec> fmt::Debug for Region<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.core.describe(f, "Region")
    }
}

impl<C> private::Sealed for Region<C> {}

impl<C: Codec> Collection for Region<C> {
    type Codec = C;
    type Extra = RegionExtra;
    type WithCodec<C2: Codec> = Region<C2>;
    const REDIS_TYPE: &'static str = "hash";

    fn from_core(mut core: Core<C>, extra: RegionExtra) -> Self {
        if core.options.prefix.is_none() {
            core.options.prefix = Some(DEFAULT_ROOT.to_string());
        }
        let parts = core.key.parts().iter().map(|p| p.to_string()).collect();
        Region {
            inner: Arc::new(Inner {
                core,
                parts,
                outage: extra.outage,
                missed_reads: AtomicU64::new(0),
                skipped_writes: AtomicU64::new(0),
                known: AtomicBool::new(false),
                layout: OnceCell::new(),
            }),
        }
    }
}

impl Region {
    /// A handle for the region with this dotted name under the root `"root"`, on the default
    /// connection, postcard-encoded, without a TTL. `""` is the root region itself. No I/O.
    ///
    /// ```
    /// let users = redis_caches::Region::new("users.active"); // a child of "users"
    /// assert_eq!(users.name(), "users.active");
    /// ```
    pub fn new(name: &str) -> Self {
        Self::builder(name).build()
    }

    /// A [`Builder`] for the region with this dotted name, to set the root, connection, TTL,
    /// TTL policy, codec or [`OutagePolicy`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use redis_caches::{Region, TtlPolicy, region::OutagePolicy};
    ///
    /// let sessions = Region::builder("sessions")
    ///     .root("myapp")
    ///     .ttl(Duration::from_secs(1800))
    ///     .ttl_policy(TtlPolicy::Keep)
    ///     .on_outage(OutagePolicy::Miss)
    ///     .build();
    /// assert!(format!("{sessions:?}").contains("{myapp}.sessions"));
    /// ```
    pub fn builder(name: &str) -> Builder<Self> {
        Builder::new(Key::from_parts(split_name(name)).with_hash_tag())
    }
}

impl<C: Codec> Builder<Region<C>> {
    /// The root of the region tree (default `"root"`): the hash tag every key of the tree
    /// starts with. The same as [`prefix`](Builder::prefix). Must be non-empty and free of
    /// `{` and `}`, or the first operation fails with [`Error::InvalidKey`].
    ///
    /// ```
    /// let r = redis_caches::Region::builder("a").root("tenant-7").build();
    /// assert_eq!(r.root(), "tenant-7");
    /// ```
    pub fn root(self, root: impl Into<String>) -> Self {
        self.prefix(root)
    }

    /// What the region does when Redis is unreachable: see [`OutagePolicy`].
    ///
    /// ```
    /// use redis_caches::{Region, region::OutagePolicy};
    /// let r = Region::builder("a").on_outage(OutagePolicy::Miss).build();
    /// # let _ = r;
    /// ```
    pub fn on_outage(mut self, policy: OutagePolicy) -> Self {
        self.extra_mut().outage = policy;
        self
    }

    /// Removes the TTL (a child built with [`Region::region_builder`] starts with its
    /// parent's).
    ///
    /// ```
    /// use std::time::Duration;
    /// let parent = redis_caches::Region::builder("a").ttl(Duration::from_secs(5)).build();
    /// let forever = parent.region_builder("b").no_ttl().build();
    /// # let _ = forever;
    /// ```
    pub fn no_ttl(mut self) -> Self {
        self.options_mut().ttl = None;
        self
    }
}

impl<C: Codec> Region<C> {
    /// The dotted name below the root (`"abc.xyz"`; `""` for the root region).
    ///
    /// ```
    /// assert_eq!(redis_caches::Region::new("a").region("b.c").name(), "a.b.c");
    /// ```
    pub fn name(&self) -> String {
        self.inner.parts.join(".")
    }

    /// The root of the tree this region belongs to.
    ///
    /// ```
    /// assert_eq!(redis_caches::Region::new("a").root(), "root");
    /// ```
    pub fn root(&self) -> &str {
        self.inner
            .core
            .options
            .prefix
            .as_deref()
            .unwrap_or(DEFAULT_ROOT)
    }

    /// The Redis key of the region's hash (with the connection's prefix). Resolves the
    /// connection; no I/O.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`] or [`Error::Config`] when the connection cannot be
    /// resolved, [`Error::InvalidKey`] for an empty name part or an invalid root.
    ///
    /// ```no_run
    /// assert_eq!(redis_caches::Region::new("abc.xyz").key()?, "{root}.abc.xyz");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn key(&self) -> Result<String> {
        Ok(self.layout()?.hash.clone())
    }

    /// The child region `name` (dotted names reach further down: `region("b.c")`), with a
    /// copy of this region's options. No I/O.
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = redis_caches::Region::builder("a").ttl(Duration::from_secs(60)).build();
    /// let c = a.region("b.c"); // "a.b.c", TTL 60 s; "a.b" is linked on c's first write
    /// assert_eq!(c.name(), "a.b.c");
    /// ```
    pub fn region(&self, name: &str) -> Region<C> {
        self.region_builder(name).build()
    }

    /// A [`Builder`] for the child region `name`, starting from this region's options; what it
    /// changes applies to the child only.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redis_caches::{Region, codec::Raw};
    ///
    /// let stats = Region::builder("stats").ttl(Duration::from_secs(60)).build();
    /// let daily = stats.region_builder("daily").ttl(Duration::from_secs(86_400)).codec(Raw).build();
    /// # let _ = daily;
    /// ```
    pub fn region_builder(&self, name: &str) -> Builder<Region<C>> {
        let mut parts = self.inner.parts.clone();
        parts.extend(split_name(name));
        self.child_builder(parts)
    }

    fn child_builder(&self, parts: Vec<String>) -> Builder<Region<C>> {
        Builder::from_parts(
            Key::from_parts(parts).with_hash_tag(),
            self.inner.core.options.clone(),
            RegionExtra {
                outage: self.inner.outage,
            },
        )
    }

    fn layout(&self) -> Result<&Layout> {
        self.inner.layout.get_or_try_init(|| {
            let resolved = self.inner.core.resolved()?;
            Layout::new(resolved.connection.prefix(), self.root(), &self.inner.parts)
        })
    }

    /// What this region skipped under [`OutagePolicy::Miss`].
    ///
    /// ```
    /// let r = redis_caches::Region::new("a");
    /// assert_eq!(r.outage_stats().skipped_writes, 0);
    /// ```
    pub fn outage_stats(&self) -> OutageStats {
        OutageStats {
            missed_reads: self.inner.missed_reads.load(Ordering::Relaxed),
            skipped_writes: self.inner.skipped_writes.load(Ordering::Relaxed),
        }
    }

    /// Under [`OutagePolicy::Miss`], turns an outage error of a read into `miss`.
    fn read_outage<T>(&self, result: Result<T>, miss: impl FnOnce() -> T) -> Result<T> {
        match result {
            Err(e) if self.degrades(&e) => {
                self.inner.missed_reads.fetch_add(1, Ordering::Relaxed);
                Ok(miss())
            }
            other => other,
        }
    }

    /// Under [`OutagePolicy::Miss`], turns an outage error of `writes` writes into `skipped`.
    fn write_outage<T>(
        &self,
        result: Result<T>,
        writes: u64,
        skipped: impl FnOnce() -> T,
    ) -> Result<T> {
        match result {
            Err(e) if self.degrades(&e) => {
                self.inner
                    .skipped_writes
                    .fetch_add(writes, Ordering::Relaxed);
                Ok(skipped())
            }
            other => other,
        }
    }

    fn degrades(&self, e: &Error) -> bool {
        self.inner.outage == OutagePolicy::Miss && e.is_connection()
    }

    /// Sends one write: the links to the root first when `links` (in `MULTI`/`EXEC`), then
    /// what `build` adds, then the TTL command. Atomic when links or a TTL ride along, or when
    /// `atomic` asks for it. One round trip.
    fn write<T: redis::FromRedisValue>(
        &self,
        links: bool,
        atomic: bool,
        build: impl FnOnce(&mut redis::Pipeline, &str),
    ) -> Result<T> {
        let layout = self.layout()?;
        let core = &self.inner.core;
        let with_links = links && !layout.links.is_empty();
        let result = core.run(|c, key| {
            let mut pipe = redis::pipe();
            if atomic || with_links || core.has_ttl() {
                pipe.atomic();
            }
            if with_links {
                for (set, member) in &layout.links {
                    pipe.cmd("SADD").arg(set).arg(member).ignore();
                }
            }
            build(&mut pipe, key);
            core.add_ttl(&mut pipe, key);
            pipe.query(c)
        });
        if result.is_ok() && links && !self.inner.known.swap(true, Ordering::Relaxed) {
            lock_known().insert(self.registry_id()?);
        }
        result
    }

    /// How the process-wide registry names this region: connection name, server, hash key.
    fn registry_id(&self) -> Result<String> {
        let resolved = self.inner.core.resolved()?;
        Ok(format!(
            "{}\n{}\n{}",
            resolved.connection.name(),
            resolved.connection.dsn(),
            self.layout()?.hash
        ))
    }

    fn field(&self, key: &str) -> Result<Vec<u8>> {
        let layout = self.layout()?;
        self.inner
            .core
            .encode(&TypeTag::of::<String>(), key, &layout.hash)
    }

    fn decode_value<V: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        key: &str,
    ) -> Result<V> {
        self.inner.core.decode(tag, bytes, || {
            let hash = self.layout().map(|l| l.hash.as_str()).unwrap_or_default();
            format!("{hash}[{key}]")
        })
    }

    fn hget(&self, field: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner
            .core
            .run(|c, k| redis::cmd("HGET").arg(k).arg(field).query(c))
    }

    /// Reads the value at `key` as a `V`, or `None`. `HGET`, one round trip.
    ///
    /// Values are typed per call: read with the type they were written with (`&str`,
    /// `&String` and `String` count as one type, as do `&[T]` and `Vec<T>`).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value was written as another type or by another program;
    /// [`Error::WrongType`] when the key holds something other than a hash; connection errors
    /// (a miss instead under [`OutagePolicy::Miss`]).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// let name: Option<String> = r.get("alice")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>> {
        let field = self.field(key)?;
        let bytes = self.read_outage(self.hget(&field), || None)?;
        match bytes {
            Some(b) => self.decode_value(&value_tag::<V>(), &b, key).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` holds a value. `HEXISTS`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`get`](Region::get) (`false` instead of a connection error under
    /// [`OutagePolicy::Miss`]).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// if !r.contains_key("alice")? { r.set("alice", "Alice")?; }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        let field = self.field(key)?;
        let found = self
            .inner
            .core
            .run(|c, k| redis::cmd("HEXISTS").arg(k).arg(&field).query(c));
        self.read_outage(found, || false)
    }

    /// Stores `value` at `key` without reading what it replaces, links the region to the
    /// root, and applies the TTL policy, in one `MULTI`/`EXEC`: `SADD` per level, `HSET`,
    /// `PEXPIRE` (with `NX` under [`TtlPolicy::Keep`](crate::TtlPolicy::Keep)). One round
    /// trip. `true` when `key` was new.
    ///
    /// Accepts borrowed values (`set("name", "Alice")`, read back as `String`). If several
    /// threads or processes write at once, each write and its links land together; a
    /// concurrent [`invalidate`](Region::invalidate) of an ancestor deletes the write entirely
    /// or leaves it entirely in place.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`], connection errors
    /// (under [`OutagePolicy::Miss`]: skipped, counted, and `Ok(false)`).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// r.set("alice", "Alice")?;
    /// let was_new = r.set("alice.age", &31u8)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<bool> {
        let field = self.field(key)?;
        let bytes = self.encode_value(value)?;
        let written = self
            .write::<(u32,)>(true, false, |pipe, k| {
                pipe.cmd("HSET").arg(k).arg(&field).arg(&bytes);
            })
            .map(|(n,)| n > 0);
        self.write_outage(written, 1, || false)
    }

    /// Stores `value` at `key` and returns the value it replaced, read as a `V`, like
    /// `HashMap::insert`: the links, `HGET`, `HSET` (+ `PEXPIRE`) in one `MULTI`/`EXEC`, one
    /// round trip. [`set`](Region::set) is cheaper when the old value does not matter.
    ///
    /// # Errors
    ///
    /// As [`set`](Region::set) (`Ok(None)` under [`OutagePolicy::Miss`]), plus
    /// [`Error::Decode`] when the replaced value is not a `V` (the new value is stored even
    /// then).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("scores");
    /// assert_eq!(r.insert("ada", &36u32)?, None);
    /// assert_eq!(r.insert("ada", &37u32)?, Some(36));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn insert<V>(&self, key: &str, value: &V) -> Result<Option<V>>
    where
        V: Serialize + DeserializeOwned,
    {
        let field = self.field(key)?;
        let bytes = self.encode_value(value)?;
        let old = self
            .write::<(Option<Vec<u8>>,)>(true, true, |pipe, k| {
                pipe.cmd("HGET").arg(k).arg(&field);
                pipe.cmd("HSET").arg(k).arg(&field).arg(&bytes).ignore();
            })
            .map(|(old,)| old);
        match self.write_outage(old, 1, || None)? {
            Some(b) => self.decode_value(&value_tag::<V>(), &b, key).map(Some),
            None => Ok(None),
        }
    }

    /// A typed [`DictCache`] over this region's hash, with the region's options: it reads and
    /// writes the same entries as [`get`](Region::get) and [`set`](Region::set) (entry keys
    /// are `String` fields). Its writes link the region to the root like the region's own, in
    /// the same `MULTI`/`EXEC`, so an invalidation of an ancestor finds them. No I/O.
    ///
    /// The [`OutagePolicy`] does not apply to the view: it returns every error. Memoized
    /// results stored in the region are not `K` fields, so the view's iterators yield
    /// [`Error::Decode`] items for them; keep memoization in a region of its own when you
    /// iterate through a view.
    ///
    /// ```no_run
    /// use redis_caches::{DictCache, Region};
    ///
    /// let ages = Region::new("people.ages");
    /// ages.set("ada", &36u32)?;
    /// let view: DictCache<String, u32> = ages.dict();
    /// assert_eq!(view.get("ada")?, Some(36));
    /// view.insert("alan", &41)?;
    /// assert_eq!(ages.get::<u32>("alan")?, Some(41));
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn dict<K, V>(&self) -> DictCache<K, V, C> {
        Builder::<DictCache<K, V, C>>::from_parts(
            Key::from_parts(&self.inner.parts).with_hash_tag(),
            self.inner.core.options.clone(),
            (),
        )
        .build_in_region_tree()
    }

    fn encode_value<V: Serialize + ?Sized>(&self, value: &V) -> Result<Vec<u8>> {
        let layout = self.layout()?;
        self.inner
            .core
            .encode(&value_tag::<V>(), value, &layout.hash)
    }

    /// Removes `key` and returns its value, read as a `V`, atomically: `HGET` + `HDEL` (+
    /// `PEXPIRE` under the TTL policy) in one `MULTI`/`EXEC`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`get`](Region::get); the key is removed even when its value does not decode as
    /// `V` (under [`OutagePolicy::Miss`]: skipped, counted, and `Ok(None)`).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// let old: Option<String> = r.remove("alice")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>> {
        let field = self.field(key)?;
        let removed = self
            .write::<(Option<Vec<u8>>,)>(false, true, |pipe, k| {
                pipe.cmd("HGET").arg(k).arg(&field);
                pipe.cmd("HDEL").arg(k).arg(&field).ignore();
            })
            .map(|(old,)| old);
        match self.write_outage(removed, 1, || None)? {
            Some(b) => self.decode_value(&value_tag::<V>(), &b, key).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes `key`; `true` when it was there. `HDEL` (+ `PEXPIRE` under the TTL policy),
    /// one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors (under [`OutagePolicy::Miss`]: skipped, counted, and `Ok(false)`).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// let was_there = r.delete("alice")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn delete(&self, key: &str) -> Result<bool> {
        let field = self.field(key)?;
        let deleted = self
            .write::<(u32,)>(false, false, |pipe, k| {
                pipe.cmd("HDEL").arg(k).arg(&field);
            })
            .map(|(n,)| n > 0);
        self.write_outage(deleted, 1, || false)
    }

    /// The number of entries, memoized results included. `HLEN`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors (under every [`OutagePolicy`]).
    ///
    /// ```no_run
    /// println!("{}", redis_caches::Region::new("profiles").len()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.layout()?;
        self.inner
            .core
            .run(|c, k| redis::cmd("HLEN").arg(k).query(c))
    }

    /// Whether the region holds no entry. `HLEN`, one round trip.
    ///
    /// # Errors
    ///
    /// As [`len`](Region::len).
    ///
    /// ```no_run
    /// assert!(redis_caches::Region::new("never.used").is_empty()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Returns the value at `key`, or computes it with `f`, stores it unless another writer
    /// got there first, and returns whichever value Redis kept. `HGET`; on a miss `SADD` per
    /// level, `HSETNX`, `HGET` (+ `PEXPIRE`) in one `MULTI`/`EXEC`: one round trip on a hit, two
    /// on a miss.
    ///
    /// If several threads or processes miss at once, each runs `f`, and all of them return
    /// the value stored first. Under [`OutagePolicy::Miss`], an outage runs `f` and returns
    /// its value without storing it (counted as a missed read and a skipped write).
    ///
    /// # Errors
    ///
    /// As [`get`](Region::get) and [`insert`](Region::insert).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("reports");
    /// let total: u64 = r.get_or_insert_with("2024", || 42)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get_or_insert_with<V>(&self, key: &str, f: impl FnOnce() -> V) -> Result<V>
    where
        V: Serialize + DeserializeOwned,
    {
        let field = self.field(key)?;
        self.get_or_insert_field(&field, key, f)
    }

    fn get_or_insert_field<V>(&self, field: &[u8], shown: &str, f: impl FnOnce() -> V) -> Result<V>
    where
        V: Serialize + DeserializeOwned,
    {
        let tag = value_tag::<V>();
        match self.hget(field) {
            Ok(Some(b)) => return self.decode_value(&tag, &b, shown),
            Ok(None) => {}
            Err(e) if self.degrades(&e) => {
                self.inner.missed_reads.fetch_add(1, Ordering::Relaxed);
                self.inner.skipped_writes.fetch_add(1, Ordering::Relaxed);
                return Ok(f());
            }
            Err(e) => return Err(e),
        }
        let value = f();
        let bytes = self.encode_value(&value)?;
        let kept = self
            .write::<(Option<Vec<u8>>,)>(true, true, |pipe, k| {
                pipe.cmd("HSETNX").arg(k).arg(field).arg(&bytes).ignore();
                pipe.cmd("HGET").arg(k).arg(field);
            })
            .map(|(kept,)| kept);
        match self.write_outage(kept, 1, || None)? {
            Some(b) if b != bytes => self.decode_value(&tag, &b, shown),
            _ => Ok(value),
        }
    }

    /// The entry keys, streamed with `HSCAN` in batches (one round trip each). Memoized
    /// results are skipped.
    ///
    /// Like every `SCAN`, a key present for the whole iteration is yielded at least once (a
    /// key may come twice if the hash is resized meanwhile); keys added or removed during the
    /// iteration may or may not be.
    ///
    /// # Errors
    ///
    /// Items are `Err` for connection errors and for fields that are neither an entry key nor
    /// a memoized result; iteration stops after a connection error.
    ///
    /// ```no_run
    /// for key in redis_caches::Region::new("profiles").keys() {
    ///     println!("{}", key?);
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn keys(&self) -> Keys<C> {
        Keys {
            scan: Scan::new(self.clone(), ScanOf::Hash),
        }
    }

    /// The entries as `(key, value)`, values read as `V`, streamed with `HSCAN` in batches.
    /// Memoized results are skipped. See [`keys`](Region::keys) for what a `SCAN` guarantees.
    ///
    /// # Errors
    ///
    /// As [`keys`](Region::keys), plus [`Error::Decode`] items for values that are not `V`.
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("ages");
    /// for entry in r.iter::<u8>() {
    ///     let (name, age) = entry?;
    ///     println!("{name}: {age}");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn iter<V: DeserializeOwned>(&self) -> Iter<V, C> {
        Iter {
            scan: Scan::new(self.clone(), ScanOf::Hash),
            _value: PhantomData,
        }
    }

    /// Deletes this region's entries (its hash), but not its descendants: see
    /// [`invalidate`](Region::invalidate) for those. `true` when there were entries. `DEL`,
    /// one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors (under every [`OutagePolicy`]).
    ///
    /// ```no_run
    /// redis_caches::Region::new("profiles").clear()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn clear(&self) -> Result<bool> {
        self.layout()?;
        self.inner.core.clear()
    }

    /// Whether the region holds any entry (its hash exists). `EXISTS`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// let live = redis_caches::Region::new("profiles").exists()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn exists(&self) -> Result<bool> {
        self.layout()?;
        self.inner.core.exists()
    }

    /// The remaining time to live of the region's hash. `PTTL`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// println!("{:?}", redis_caches::Region::new("profiles").ttl()?);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn ttl(&self) -> Result<Ttl> {
        self.layout()?;
        self.inner.core.ttl()
    }

    /// Sets the time to live of the region's hash now (its descendants keep theirs); `false`
    /// when the region holds nothing. `PEXPIRE`, one round trip.
    ///
    /// # Errors
    ///
    /// Connection errors.
    ///
    /// ```no_run
    /// redis_caches::Region::new("profiles").expire(std::time::Duration::from_secs(60))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn expire(&self, ttl: Duration) -> Result<bool> {
        self.layout()?;
        self.inner.core.expire(ttl)
    }

    /// Links this region into its tree without writing to it, so that it shows among its
    /// parent's [`children`](Region::children): `SADD` per level in one `MULTI`/`EXEC`, one
    /// round trip. Nothing is sent when this process already linked the region (by `create`
    /// or a write, through any handle with the same connection name, server and key), nor for
    /// the root region.
    ///
    /// Writes link the region by themselves; call this only to make an empty region visible.
    /// After an invalidation of an ancestor, the region is linked again by its next write
    /// (not by `create`, which remembers it already did its work).
    ///
    /// # Errors
    ///
    /// Connection errors (under every [`OutagePolicy`]).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("projects.apollo");
    /// r.create()?;
    /// r.create()?; // no round trip
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn create(&self) -> Result<()> {
        if self.inner.known.load(Ordering::Relaxed) {
            return Ok(());
        }
        let layout = self.layout()?;
        let id = self.registry_id()?;
        let known = lock_known().contains(&id);
        if !known && !layout.links.is_empty() {
            self.inner.core.run(|c, _| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (set, member) in &layout.links {
                    pipe.cmd("SADD").arg(set).arg(member).ignore();
                }
                pipe.exec(c)
            })?;
        }
        lock_known().insert(id);
        self.inner.known.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The child regions recorded in Redis (by any process), with this region's options,
    /// streamed with `SSCAN` in batches (one round trip each).
    ///
    /// A child shows up once something was written to it or below it, or it was
    /// [created](Region::create), and disappears when it is invalidated (directly or through
    /// an ancestor).
    ///
    /// # Errors
    ///
    /// Items are `Err` for connection errors (iteration stops) and for set members that are
    /// not a child's key (written by something else).
    ///
    /// ```no_run
    /// for child in redis_caches::Region::new("users").children() {
    ///     println!("{}", child?.name());
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn children(&self) -> Children<C> {
        Children {
            scan: Scan::new(self.clone(), ScanOf::Children),
        }
    }

    /// Deletes this region and every descendant, recursively, in one atomic step, and removes
    /// the links it no longer needs (its own, its descendants', and its entry in its parent's
    /// set). Returns how many region hashes held entries. One Lua script (`EVALSHA`), one
    /// round trip; three the first time a server sees the script (`EVALSHA` answers
    /// `NOSCRIPT`, then `SCRIPT LOAD` and `EVALSHA` again).
    ///
    /// Once it returns, no entry written before it began survives in the region or any
    /// descendant, whichever process wrote it: every write is linked to the root in the same
    /// `MULTI`/`EXEC` that stores it, and the script runs atomically, so a concurrent write,
    /// or a region created concurrently, is either deleted entirely or left entirely in place
    /// (and linked). The script's run time grows with the number of regions below; Redis
    /// serves nothing else meanwhile.
    ///
    /// # Errors
    ///
    /// Connection errors, under every [`OutagePolicy`].
    ///
    /// ```no_run
    /// let users = redis_caches::Region::new("users");
    /// let n = users.invalidate()?;
    /// println!("{n} regions dropped");
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn invalidate(&self) -> Result<u64> {
        let layout = self.layout()?;
        self.inner.core.run(|c, key| {
            let mut invocation = INVALIDATE.prepare_invoke();
            invocation.key(key);
            if let Some(parent) = layout.parent_links() {
                invocation.key(parent);
            }
            invocation.arg(&layout.root).arg(LINK_MARK);
            invocation.invoke(c)
        })
    }

    /// Runs `f` with a [`Transaction`]: reads see its pending writes, and when `f` returns
    /// `Ok`, all its writes are sent in one `MULTI`/`EXEC` with the links and the TTL refresh
    /// (one round trip; none when nothing was written). When `f` returns `Err` or panics,
    /// nothing is sent.
    ///
    /// Each call has its own transaction, so any number of threads can run transactions on
    /// the same region at once. The transaction buffers writes and does not `WATCH`: its reads
    /// of keys it has not written see the live region, and its commit overwrites whatever was
    /// written meanwhile.
    ///
    /// # Errors
    ///
    /// The error `f` returns, or the commit's connection error (under
    /// [`OutagePolicy::Miss`], the commit is skipped and its writes counted instead).
    ///
    /// ```no_run
    /// let stock = redis_caches::Region::new("stock");
    /// let left = stock.transaction(|tx| {
    ///     let n = tx.get::<u32>("apples")?.unwrap_or(0);
    ///     tx.set("apples", &(n + 10))?;
    ///     tx.delete("rotten")?;
    ///     Ok::<_, redis_caches::Error>(n + 10)
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn transaction<R, E>(
        &self,
        f: impl FnOnce(&mut Transaction<'_, C>) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<Error>,
    {
        let mut tx = Transaction {
            region: self,
            cleared: false,
            pending: HashMap::new(),
        };
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Invalidates this region whenever `signal` is sent (in this process). The signal keeps
    /// a handle to the region until [`Signal::disconnect`] is called with the returned
    /// subscription.
    ///
    /// ```
    /// use redis_caches::{Region, Signal};
    /// let users = Region::new("users");
    /// let updated = Signal::named("user-updated");
    /// let subscription = users.invalidate_on(&updated);
    /// assert!(updated.disconnect(subscription));
    /// ```
    pub fn invalidate_on(&self, signal: &Signal) -> Subscription {
        let region = self.clone();
        signal.connect(move || region.invalidate().map(|_| ()))
    }

    /// Wraps `f` so that its results are cached in this region, keyed by `name` and the
    /// encoded arguments; they are invalidated with the region and expire with its TTL. See
    /// [`Memoized::call`] for the cost.
    ///
    /// ```no_run
    /// use redis_caches::Region;
    ///
    /// let reports = Region::new("reports");
    /// let total = reports.memoize("total", |(year, month): &(u16, u8)| {
    ///     u64::from(*year) * 100 + u64::from(*month) // stands for an expensive query
    /// });
    /// assert_eq!(total.call(&(2024, 5))?, 202405);
    /// assert_eq!(total.call(&(2024, 5))?, 202405); // from Redis this time
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn memoize<A, R, F>(&self, name: impl Into<String>, f: F) -> Memoized<A, R, F, C>
    where
        A: Serialize + ?Sized,
        R: Serialize + DeserializeOwned,
        F: Fn(&A) -> R,
    {
        Memoized {
            region: self.clone(),
            name: Arc::from(name.into()),
            f,
            _types: PhantomData,
        }
    }
}

/// The writes of one [`Region::transaction`], buffered until it commits. Reads see them.
///
/// ```no_run
/// let r = redis_caches::Region::new("r");
/// r.transaction(|tx| {
///     tx.clear();
///     tx.set("only", &1u8)?;
///     Ok::<_, redis_caches::Error>(())
/// })?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Transaction<'r, C = Postcard> {
    region: &'r Region<C>,
    cleared: bool,
    /// Field -> new value, or `None` for a deletion.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<C: Codec> fmt::Debug for Transaction<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("region", &self.region)
            .field("pending", &self.pending.len())
            .field("cleared", &self.cleared)
            .finish()
    }
}

impl<C: Codec> Transaction<'_, C> {
    /// Reads `key`: its pending write if any, else the live value (`HGET`, one round trip).
    ///
    /// # Errors
    ///
    /// As [`Region::get`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     tx.set("a", &1u8)?;
    ///     assert_eq!(tx.get::<u8>("a")?, Some(1));
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>> {
        let field = self.region.field(key)?;
        match self.pending.get(&field) {
            Some(Some(b)) => self
                .region
                .decode_value(&value_tag::<V>(), b, key)
                .map(Some),
            Some(None) => Ok(None),
            None if self.cleared => Ok(None),
            None => self.region.get(key),
        }
    }

    /// Whether `key` holds a value, pending writes included (`HEXISTS` when it has none).
    ///
    /// # Errors
    ///
    /// As [`Region::contains_key`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     tx.delete("a")?;
    ///     assert!(!tx.contains_key("a")?);
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        let field = self.region.field(key)?;
        match self.pending.get(&field) {
            Some(v) => Ok(v.is_some()),
            None if self.cleared => Ok(false),
            None => self.region.contains_key(key),
        }
    }

    /// Buffers a write of `value` at `key` (like [`Region::set`], without reading the value
    /// it replaces). No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| tx.set("a", "x"))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<V: Serialize + ?Sized>(&mut self, key: &str, value: &V) -> Result<()> {
        let field = self.region.field(key)?;
        let bytes = self.region.encode_value(value)?;
        self.pending.insert(field, Some(bytes));
        Ok(())
    }

    /// Buffers the deletion of `key`, returning its current value (pending, else live:
    /// `HGET`, one round trip).
    ///
    /// # Errors
    ///
    /// As [`Transaction::get`].
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| {
    ///     let old: Option<u8> = tx.remove("a")?;
    ///     Ok::<_, redis_caches::Error>(())
    /// })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<V: DeserializeOwned>(&mut self, key: &str) -> Result<Option<V>> {
        let old = self.get(key)?;
        let field = self.region.field(key)?;
        self.pending.insert(field, None);
        Ok(old)
    }

    /// Buffers the deletion of `key`. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] or connection configuration errors from resolving the region.
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| tx.delete("a"))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn delete(&mut self, key: &str) -> Result<()> {
        let field = self.region.field(key)?;
        self.pending.insert(field, None);
        Ok(())
    }

    /// Buffers the deletion of every entry of the region (`DEL` at commit, before the writes
    /// that follow it). No I/O.
    ///
    /// ```no_run
    /// # let r = redis_caches::Region::new("r");
    /// r.transaction(|tx| { tx.clear(); Ok::<_, redis_caches::Error>(()) })?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn clear(&mut self) {
        self.cleared = true;
        self.pending.clear();
    }

    fn commit(self) -> Result<()> {
        if self.pending.is_empty() && !self.cleared {
            return Ok(());
        }
        let writes = self.pending.len() as u64 + u64::from(self.cleared);
        let (set, del): (Vec<_>, Vec<_>) = self.pending.into_iter().partition(|(_, v)| v.is_some());
        let cleared = self.cleared;
        let sent = self.region.write::<()>(!set.is_empty(), true, |pipe, k| {
            if cleared {
                pipe.cmd("DEL").arg(k).ignore();
            } else if !del.is_empty() {
                let cmd = pipe.cmd("HDEL").arg(k);
                for (field, _) in &del {
                    cmd.arg(field);
                }
                cmd.ignore();
            }
            if !set.is_empty() {
                let cmd = pipe.cmd("HSET").arg(k);
                for (field, value) in &set {
                    cmd.arg(field).arg(value.as_deref().unwrap_or_default());
                }
                cmd.ignore();
            }
        });
        self.region.write_outage(sent, writes, || ())
    }
}

/// A function whose results are cached in a [`Region`], made by [`Region::memoize`].
///
/// `Debug` shows the function's name and the region.
///
/// ```no_run
/// let r = redis_caches::Region::new("geo");
/// let distance = r.memoize("distance", |(a, b): &(String, String)| a.len().abs_diff(b.len()));
/// let d = distance.call(&("Paris".into(), "Rome".into()))?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Memoized<A: ?Sized, R, F, C = Postcard> {
    region: Region<C>,
    name: Arc<str>,
    f: F,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A: ?Sized, R, F: Clone, C> Clone for Memoized<A, R, F, C> {
    fn clone(&self) -> Self {
        Memoized {
            region: self.region.clone(),
            name: self.name.clone(),
            f: self.f.clone(),
            _types: PhantomData,
        }
    }
}

impl<A: ?Sized, R, F, C: Codec> fmt::Debug for Memoized<A, R, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memoized")
            .field("name", &self.name)
            .field("region", &self.region)
            .finish()
    }
}

impl<A, R, F, C> Memoized<A, R, F, C>
where
    A: Serialize + ?Sized,
    R: Serialize + DeserializeOwned,
    F: Fn(&A) -> R,
    C: Codec,
{
    fn field(&self, args: &A) -> Result<Vec<u8>> {
        let layout = self.region.layout()?;
        let bytes = crate::codec::Codec::encode(&Postcard, &(&*self.name, args), &memo_tag())
            .map_err(|e| Error::Encode {
                key: layout.hash.clone(),
                reason: format!("the arguments of {}: {e}", self.name),
            })?;
        let limit = self.region.inner.core.options.max_value_size;
        if bytes.len() > limit {
            return Err(Error::ValueTooLarge {
                key: layout.hash.clone(),
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Returns the cached result for `args`, or calls the function, stores its result and
    /// returns it. The same cost as [`Region::get_or_insert_with`]: one round trip on a hit,
    /// two on a miss. Every result is cached, `None` included. If several callers miss at
    /// once, each calls the function and all return the result stored first.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the arguments cannot be encoded; as
    /// [`Region::get_or_insert_with`] otherwise.
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// assert_eq!(square.call(&12)?, 144);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn call(&self, args: &A) -> Result<R> {
        let field = self.field(args)?;
        self.region
            .get_or_insert_field(&field, &self.name, || (self.f)(args))
    }

    /// Calls the function without the cache (neither read nor written). No I/O.
    ///
    /// ```
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// assert_eq!(square.call_uncached(&3), 9);
    /// ```
    pub fn call_uncached(&self, args: &A) -> R {
        (self.f)(args)
    }

    /// Removes the cached result for `args`; `true` when there was one. `HDEL`, one round
    /// trip.
    ///
    /// # Errors
    ///
    /// As [`Region::delete`].
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("squares");
    /// let square = r.memoize("square", |n: &u64| n * n);
    /// square.forget(&12)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn forget(&self, args: &A) -> Result<bool> {
        let field = self.field(args)?;
        let deleted = self
            .region
            .write::<(u32,)>(false, false, |pipe, k| {
                pipe.cmd("HDEL").arg(k).arg(&field);
            })
            .map(|(n,)| n > 0);
        self.region.write_outage(deleted, 1, || false)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanOf {
    /// `HSCAN` of the region's hash: field, value, field, value, ...
    Hash,
    /// `SSCAN` of the region's link set: child keys.
    Children,
}

/// A cursor over a hash or set, fetching a batch per round trip.
struct Scan<C> {
    region: Region<C>,
    of: ScanOf,
    cursor: u64,
    done: bool,
    buffer: VecDeque<Vec<u8>>,
}

impl<C: Codec> Scan<C> {
    fn new(region: Region<C>, of: ScanOf) -> Self {
        Scan {
            region,
            of,
            cursor: 0,
            done: false,
            buffer: VecDeque::new(),
        }
    }

    /// The next raw item, fetching batches as needed.
    fn next_raw(&mut self) -> Option<Result<Vec<u8>>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                self.buffer.clear();
                return Some(Err(e));
            }
        }
    }

    fn fetch(&mut self) -> Result<()> {
        let layout = self.region.layout()?;
        let (command, key) = match self.of {
            ScanOf::Hash => ("HSCAN", layout.hash.as_str()),
            ScanOf::Children => ("SSCAN", layout.children.as_str()),
        };
        let cursor = self.cursor;
        let (next, items): (u64, Vec<Vec<u8>>) = self.region.inner.core.run(|c, _| {
            redis::cmd(command)
                .arg(key)
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query(c)
        })?;
        self.cursor = next;
        self.done = next == 0;
        self.buffer.extend(items);
        Ok(())
    }

    /// The next field and value of a hash scan.
    fn next_pair(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        let field = match self.next_raw()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        match self.next_raw() {
            Some(Ok(value)) => Some(Ok((field, value))),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        }
    }

    /// The next entry (not memoized) field and value, with the field decoded as a key.
    fn next_entry(&mut self) -> Option<Result<(String, Vec<u8>)>> {
        let memo = memo_header();
        loop {
            let (field, value) = match self.next_pair()? {
                Ok(pair) => pair,
                Err(e) => return Some(Err(e)),
            };
            if field.starts_with(&memo) {
                continue;
            }
            let key =
                self.region
                    .inner
                    .core
                    .decode::<String>(&TypeTag::of::<String>(), &field, || {
                        let hash = self.region.layout().map(|l| l.hash.as_str());
                        format!("a field of {}", hash.unwrap_or_default())
                    });
            return Some(key.map(|k| (k, value)));
        }
    }
}

/// The first bytes of every memoized-call field.
fn memo_header() -> Vec<u8> {
    // Encoding a unit with the postcard codec gives exactly its header.
    Codec::encode(&Postcard, &(), &memo_tag()).unwrap_or_default()
}

/// The entry keys of a [`Region`], from [`Region::keys`]: `HSCAN` in batches.
///
/// ```no_run
/// let keys: Vec<String> = redis_caches::Region::new("r").keys().collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Keys<C = Postcard> {
    scan: Scan<C>,
}

impl<C: Codec> Iterator for Keys<C> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.scan.next_entry()?.map(|(k, _)| k))
    }
}

impl<C: Codec> fmt::Debug for Keys<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}

/// The entries of a [`Region`] with values read as `V`, from [`Region::iter`]: `HSCAN` in
/// batches.
///
/// ```no_run
/// use std::collections::HashMap;
/// let ages: HashMap<String, u8> = redis_caches::Region::new("ages").iter::<u8>().collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Iter<V, C = Postcard> {
    scan: Scan<C>,
    _value: PhantomData<fn() -> V>,
}

impl<V: DeserializeOwned, C: Codec> Iterator for Iter<V, C> {
    type Item = Result<(String, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, bytes) = match self.scan.next_entry()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        let value = self
            .scan
            .region
            .decode_value(&value_tag::<V>(), &bytes, &key);
        Some(value.map(|v| (key, v)))
    }
}

impl<V, C: Codec> fmt::Debug for Iter<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}

/// The child regions of a [`Region`], from [`Region::children`]: `SSCAN` in batches.
///
/// ```no_run
/// let names: Vec<String> = redis_caches::Region::new("users")
///     .children()
///     .map(|child| child.map(|r| r.name()))
///     .collect::<Result<_, _>>()?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Children<C = Postcard> {
    scan: Scan<C>,
}

impl<C: Codec> Iterator for Children<C> {
    type Item = Result<Region<C>>;

    fn next(&mut self) -> Option<Self::Item> {
        let member = match self.scan.next_raw()? {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let region = &self.scan.region;
        let layout = match region.layout() {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let part = std::str::from_utf8(&member)
            .ok()
            .and_then(|m| m.strip_prefix(layout.hash.as_str()))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(unescape_part)
            .filter(|p| !p.is_empty());
        Some(match part {
            Some(part) => {
                let mut parts = region.inner.parts.clone();
                parts.push(part);
                Ok(region.child_builder(parts).build())
            }
            None => Err(Error::Decode {
                key: layout.children.clone(),
                reason: "a member is not the key of a child region".into(),
            }),
        })
    }
}

impl<C: Codec> fmt::Debug for Children<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Children")
            .field("region", &self.scan.region)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> Vec<String> {
        split_name(name)
    }

    /// Golden tests: a change here orphans users' data and breaks invalidation across
    /// versions, so the layout is pinned.
    #[test]
    fn golden_layout() {
        let l = Layout::new("", "root", &parts("abc.xyz")).unwrap();
        assert_eq!(l.root, "{root}");
        assert_eq!(l.hash, "{root}.abc.xyz");
        assert_eq!(l.children, "{root}#children.abc.xyz");
        assert_eq!(
            l.links,
            vec![
                ("{root}#children".to_string(), "{root}.abc".to_string()),
                (
                    "{root}#children.abc".to_string(),
                    "{root}.abc.xyz".to_string()
                ),
            ]
        );
        assert_eq!(l.parent_links(), Some("{root}#children.abc"));

        let root = Layout::new("app:", "r", &[]).unwrap();
        assert_eq!(root.hash, "app:{r}");
        assert_eq!(root.children, "app:{r}#children");
        assert!(root.links.is_empty());
        assert_eq!(root.parent_links(), None);

        let odd = Layout::new("", "root", &[r"a\b".to_string(), "#children".to_string()]).unwrap();
        assert_eq!(odd.hash, r"{root}.a\\b.#children");
        assert_eq!(odd.children, r"{root}#children.a\\b.#children");
    }

    #[test]
    fn link_keys_never_equal_region_keys() {
        let names = [
            "",
            "a",
            "#children",
            "a.#children",
            "children",
            "a.b",
            r"a\",
            "#",
        ];
        let roots = ["root", "r#children", "#", "r.x"];
        let mut regions = HashSet::new();
        let mut links = HashSet::new();
        for root in roots {
            for name in names {
                let l = Layout::new("p:", root, &parts(name)).unwrap();
                regions.insert(l.hash.clone());
                links.insert(l.children.clone());
            }
        }
        assert!(regions.is_disjoint(&links), "{regions:?} {links:?}");
    }

    #[test]
    fn invalid_names_and_roots_fail_at_layout() {
        assert!(Layout::new("", "root", &parts("a..b")).is_err());
        assert!(Layout::new("", "ro{o}t", &parts("a")).is_err());
        assert!(Layout::new("", "", &parts("a")).is_err());
    }

    #[test]
    fn unescaping_undoes_the_key_escaping() {
        assert_eq!(unescape_part(r"a\\b").as_deref(), Some(r"a\b"));
        assert_eq!(unescape_part("plain").as_deref(), Some("plain"));
        assert_eq!(unescape_part("a.b"), None);
        assert_eq!(unescape_part("dangling\\"), None);
    }

    #[test]
    fn borrowed_and_owned_values_share_a_tag() {
        assert_eq!(value_tag::<str>(), value_tag::<String>());
        assert_eq!(value_tag::<&str>(), value_tag::<String>());
        assert_eq!(value_tag::<&String>(), value_tag::<String>());
        assert_eq!(value_tag::<[u8]>(), value_tag::<Vec<u8>>());
        assert_eq!(
            value_tag::<&[(u8, String)]>(),
            value_tag::<Vec<(u8, String)>>()
        );
        assert_ne!(value_tag::<[u8; 4]>(), value_tag::<Vec<u8>>());
        assert_eq!(value_tag::<[u8; 4]>(), TypeTag::of::<[u8; 4]>());
        assert_eq!(value_tag::<u32>(), TypeTag::of::<u32>());
        assert_eq!(value_tag::<[&str]>(), value_tag::<Vec<String>>());
        assert_eq!(
            value_tag::<(&str, Option<&[u8]>)>(),
            value_tag::<(String, Option<Vec<u8>>)>()
        );
        assert_eq!(value_tag::<[&str; 2]>(), TypeTag::of::<[String; 2]>());
        assert_eq!(
            normalize_type_name("HashMap<&str, Vec<[u8; 4]>>"),
            "HashMap<String, Vec<[u8; 4]>>"
        );
        assert_eq!(normalize_type_name("strange_str"), "strange_str");
    }

    #[test]
    fn memo_fields_cannot_be_entry_fields() {
        let header = memo_header();
        assert_eq!(header.len(), 6);
        let entry = Postcard
            .encode("anything", &TypeTag::of::<String>())
            .unwrap();
        assert!(!entry.starts_with(&header));
        // Raw and JSON keys are valid UTF-8; the header is not.
        assert!(std::str::from_utf8(&header).is_err());
    }
}
