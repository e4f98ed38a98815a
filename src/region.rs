//! [`Region`]: nested, dotted namespaces of typed values, invalidated recursively in one
//! constant-time step.
//!
//! A region is a Redis hash named by its dotted name under a root (`"root"` unless the builder
//! says otherwise). `Region::new("users.42")` is a child of `users`, itself a child of the root
//! region. [`Region::invalidate`] makes a region and everything below it unreachable at once,
//! from any process, with a handful of commands whatever the size of the subtree; the keys it
//! left behind are then deleted in the background, in small steps that never hold Redis up.
//!
//! The code is split along its seams: the tree (layout, generations, invalidation and
//! reclamation), [`Transaction`], the iterators ([`Keys`], [`Iter`], [`Children`]) and the
//! deprecated [`Memoized`].
//!
//! # Generations
//!
//! Each region has a *generation*: a number, unique in its tree, that is part of the name of
//! its hash. A region's generation is recorded in its parent's generation (a map from child
//! name to child generation), and the root region's in the tree's hash. Every request that
//! reads or writes a region first checks those maps from the root down (one `HGET` per
//! level, in the same request: still one round trip; inside the script for a write, pipelined
//! before the read for a read), so it always works on the current generation of every level.
//! The request names the keys of the generations the process last found (see
//! [Redis Cluster](#redis-cluster)); a request that finds others (another process invalidated
//! or created a level since) changes nothing, the script sent next says which it found, and
//! the request is sent again: two round trips more, only then (one for a region the process
//! knew no generation of).
//!
//! Invalidating a region deletes the one map entry that names its generation (or, for the
//! root region, replaces the root's generation) and queues the retired generation for
//! reclamation: two or three commands, in one script. From then on no script reaches the old
//! generation or anything below it: it was only reachable through that entry. The next
//! write to the region (or below it) starts a new generation, linked where the old one was.
//!
//! The retired keys are then *reclaimed*, in bounded steps: a step (one script) takes the
//! retired generation at the head of the tree's queue, scans the next page of its map (the
//! cursor is kept in the queue), `UNLINK`s the hashes of the children that have no children
//! themselves and queues the others (depth first, so the queue stays short), and deletes a
//! generation's own hash once its map is empty: at most 25 regions per step, a few hundred
//! microseconds of server time
//! (`benches/RESULTS.md` has the measurements). The queue lives in Redis, so any process may
//! work on it, and one that restarts picks it up where another stopped. Keys with a TTL also
//! expire by themselves.
//!
//! # Key layout
//!
//! For the root `root`, `B` the tree's base key (the connection `prefix`, the builder's
//! [`prefix`](Builder::prefix) and a `.` if any, then `{root}`), and a region `abc.xyz` in
//! generation 7 whose parent `abc` is in generation 4:
//!
//! | Key | Redis type | Holds |
//! |---|---|---|
//! | `B#tree` | hash | `root`: the root region's generation; `next`: the last generation number handed out |
//! | `B@1` | hash | the entries of the root region (generation 1) |
//! | `B@1#children` | hash | the root region's children: `abc` → `4` |
//! | `B@4.abc` | hash | the entries of `abc` |
//! | `B@4.abc#children` | hash | `xyz` → `7` |
//! | `B@7.abc.xyz` | hash | the entries of `abc.xyz` |
//! | `B@7.abc.xyz#lock:<memo>.<args>` | string | the refresh lock of a [memo in the region](Region::memo) (`PX` its lock timeout) |
//! | `B#memo:<memo>.stats` | hash | the statistics of the memos named `<memo>` in the tree |
//! | `B#gc` | list | retired generations waiting to be reclaimed: `@7.abc.xyz` |
//!
//! A region's hash is `B@<generation>` followed by `.` and its dotted name (name parts escaped
//! as in [`key`](crate::key): `\` as `\\`, `.` as `\.`), so `redis-cli --scan --pattern
//! 'B@*'` lists the regions with their names, one generation each (and any retired one not
//! reclaimed yet). The name is there for operators: the generation alone makes the key
//! unique. Every key of a tree starts with the root in a Redis Cluster hash tag, so a whole
//! tree lives in one slot, which the scripts need.
//!
//! What an operator sees in `redis-cli`, for a tree where `users.alice` was just
//! invalidated and written again:
//!
//! ```text
//! > HGETALL "{root}#tree"          -> root 1, next 9
//! > HGETALL "{root}@1#children"    -> users 2
//! > HGETALL "{root}@2.users#children" -> alice 9, bob 5
//! > LRANGE "{root}#gc" 0 -1        -> @3.users.alice   (the retired generation, still queued)
//! > EXISTS "{root}@3.users.alice"  -> 1 until reclaimed; no script reads it any more
//! ```
//!
//! [`Region::key`] returns a region's current hash key (one round trip). Elsewhere (errors,
//! `Debug`) a region is named by `B.abc.xyz`, its name as a key, which is not a key of the
//! layout.
//!
//! Fields are the entry keys as plain text, the field rule for a `String` (so the
//! [`DictCache<String, V>`](crate::DictCache) view from [`Region::dict`] reads the same
//! entries, and `HGET <hash> alice` works from any client); values are encoded per call with
//! the type the call names. Results of a
//! [memo in the region](Region::memo) live in the same hash under fields of their own (a
//! header no key field can start with, the memo's name, the arguments), so they never collide
//! with entry keys and are invalidated with the region.
//!
//! # Redis Cluster
//!
//! A tree lives in one hash slot. While that slot migrates to another node
//! (`redis-cli --cluster reshard`), its keys move a few at a time, and Redis decides where a
//! script runs by the keys it *declares*: on the node the slot leaves, a script runs when all
//! of them are there, is refused with `TRYAGAIN` when some are missing and redirected
//! (`ASK`) when all are; the node the slot goes to refuses a script of several keys when one
//! is missing. So every region script declares every key it reads or writes, and checks what
//! it reads before its first write: it runs whole on the node that holds all of them, or is
//! refused before anything changed, never on part of a tree.
//!
//! The keys a request declares, for the region `abc.xyz` (generations 1, 4, 7 as in the
//! table above):
//!
//! | Request | Declares |
//! |---|---|
//! | a read or write of entries, `clear`, `ttl`, `expire`, a [`dict`](Region::dict) view, a [memo in the region](Region::memo) | the region's own keys, `B@7.abc.xyz` (a memo: also its lock `B@7.abc.xyz#lock:...` and `B#memo:<name>.stats`), and the path to it: `B#tree`, `B@1#children`, `B@4.abc#children` |
//! | [`children`](Region::children) | the same, with `B@7.abc.xyz#children` |
//! | [`invalidate`](Region::invalidate) | `B#gc`, `B#tree`, `B@1#children`, `B@4.abc#children` (the parent's map, whose entry it deletes) |
//! | [`create`](Region::create), [`key`](Region::key) | as a write, as a read |
//! | a write to a region without a generation | the existing levels, and the maps and hash it creates, named with the generations it will hand out (`next + 1` and up; created only if the tree's counter is still `next`) |
//! | a read of a region without a generation | the existing levels down to the map without its entry, and its hash in generation `0` (never handed out: it reads as missing) |
//!
//! To name those keys before the script runs, the process keeps the generations it last
//! found on the way to each region (per server, shared by every handle of the region, and by
//! its ancestors for the levels they share; a region it has not met yet starts from its
//! nearest known ancestor's; at most 100,000 regions, then it starts over). A
//! script checks each generation it was named with; when one changed, it changes nothing and
//! answers with the generations it found (read from the maps, which it does not declare and
//! only reads), and the request is sent again with their keys. One round trip in the steady
//! state, two for a region the process has not seen yet or after another process changed
//! its path; a write that creates generations races other writers creating some in the same
//! tree, and the loser sends once more.
//!
//! While the slot migrates, a request whose keys are split between the two nodes, or that
//! names a key not created yet (a region without a generation, an empty queue of retired
//! generations), is refused with `TRYAGAIN` and sent again until the call's deadline, then
//! fails with a connection error ([`Error::is_connection`], nothing applied): a migration
//! delays the requests of its slot, as it does any command of several keys.
//!
//! Reclamation cannot declare the retired keys it will find (it reads them as it goes), so a
//! step first checks whether its slot is migrating (a command naming the queue and a key that
//! never exists fails on both nodes then) and changes nothing if so; reclamation resumes once
//! the slot has moved.
//!
//! # Guarantees
//!
//! - Once [`invalidate`](Region::invalidate) returns, no reader in any process sees anything
//!   written below the region before it began: every read follows the maps from the root in
//!   the same request, and keeps what it read only when they named the hash it read; the
//!   retired generation is no longer in them (a generation nobody reaches is never written
//!   again: its data reads as it was at the check, or as reclaimed, missing).
//! - A write concurrent with an invalidation is one script, so it runs entirely before it
//!   (and is invalidated) or entirely after it (and lands in the new generation, visible).
//! - Writes after it are visible, and are invalidated by a later `invalidate`.
//! - Invalidation deletes no data itself (only the map entry that named the generation).
//!   Reclamation deletes only a hash at a retired region's hash name, and entries of a hash
//!   at a retired region's map name, found by following the retired generation's maps, never
//!   by pattern; a key of another type at such a name, or a queue entry of another shape, is
//!   left alone.
//!
//! # Reclamation
//!
//! By default ([`Reclaim::Background`]) a thread of the crate (one per process, started at the
//! first operation on a tree) works off the queues of the trees the process uses: at the
//! first operation on a tree (so a queue that a stopped process left behind is picked up), at
//! once after this process invalidates a region of it, and every minute otherwise (so work
//! another process queued and left is done). Between two steps it pauses at least 2 ms, and
//! three times as long as the step's round trip took, so one process's reclamation never takes
//! more than a quarter of the server's time, and backs off when the server is slow to answer.
//! 200,000
//! invalidated regions are reclaimed in seconds. A tree whose steps fail six times in a row
//! (its server is gone) is dropped after 3.1 s, and watched again at the next operation of
//! any of its handles. [`Region::reclaim`] runs the steps in the caller instead, until the
//! queue is empty; [`Reclaim::Manual`] leaves reclamation to it (and to other processes).
//!
//! Each step takes a connection from the tree's pool for its one round trip, as any call
//! does: with a pool of one connection, a call may wait for a step (up to `pool_timeout`,
//! then [`Error::Pool`]); give such pools [`Reclaim::Manual`] or a second connection.
//!
//! When the server refuses writes (`maxmemory` reached with `noeviction`), an invalidation is
//! refused whole ([`Error::is_write_refused`]; the region stays as it was). Reclamation goes
//! on: Redis refuses only a script's first write that could use memory, so a step that starts
//! by deleting hashes (which frees memory) also queues what it finds; a step whose page of
//! children all have children of their own changes nothing, and reclamation waits (a second
//! between tries) until memory is available.
//!
//! The tree's hash and the maps of live regions never expire; they are a few bytes per
//! region.
//!
//! Garbage that is never queued: with a TTL, a region's hash expires, but the entry naming
//! its generation in its parent's map stays (a few bytes) until the parent is invalidated.
//!
//! # Upgrading from 0.1
//!
//! redis-caches 0.1 kept a region's entries in `B.abc.xyz` and its children in `B#children…`
//! sets. This release neither reads nor writes that layout: an operation on a tree that
//! holds it (and has no generation yet) fails with [`Error::OldLayout`], and changes nothing.
//! Invalidating the tree's root region discards the old data: its keys are queued and
//! reclaimed like any invalidated region (following the old link sets, in bounded steps),
//! and the tree starts afresh. Do not run 0.1 and this release on one tree at once: 0.1
//! does not see this release's invalidations.
//!
//! # Options and inheritance
//!
//! A region has a TTL, a TTL policy, a codec, a connection, a root, a prefix, an
//! [`OutagePolicy`], a [`Reclaim`] mode and a [near cache](crate::NearCache)
//! ([`near_cache`](Builder::near_cache), or the connection's `near_cache` DSN option). A child made with [`Region::region`] or
//! [`Region::region_builder`] starts with a copy of its parent's options; what the child
//! builder changes applies to the child only. `Region::new("a.b.c")` creates no objects for
//! `a` and `a.b`: its first write gives them generations (map entries) and writes nothing into
//! their hashes, so none of `a.b.c`'s options (its TTL in particular) leaks onto them. A
//! handle to `a` or `a.b` gets whatever options it is built with (the defaults for
//! `Region::new("a")`). The TTL applies to the region's own hash: a parent expiring does not
//! expire its children (only [`invalidate`](Region::invalidate) cascades).
//!
//! # Costs
//!
//! Every operation on a region is one request (one round trip) that first checks the tree's
//! maps: one `HGET` per level below the root, plus one for the root. Writes are one script
//! (`set` on a region whose generations the process knows a short one). Reads of a region
//! whose generations the process knows are plain commands, pipelined: the maps' `HGET`s, then
//! the read on the hash they name; the reply counts when every generation read is the one the
//! hash was named from, else the read goes to the script, as does a read of a region without a
//! generation. The first request of the process for a region takes a second round trip, and
//! the first after another process changed the region's path two more (see
//! [Redis Cluster](#redis-cluster)).
//!
//! | Method | Redis commands (inside the script for writes) | Round trips | Lost reply |
//! |---|---|---|---|
//! | [`get`](Region::get), [`contains_key`](Region::contains_key), [`len`](Region::len) | the maps, `HGET`, `HEXISTS`, `HLEN` (pipelined) | 1 | resent |
//! | [`get`](Region::get), [`contains_key`](Region::contains_key) with a [near cache](crate::NearCache) | none on a hit; on a miss the maps, `PTTL`, `HGET` (on the tracking connection) | 0 on a hit, 1 on a miss | resent |
//! | [`set`](Region::set) | the maps, `TYPE`, `HSET` (+ `PEXPIRE`) | 1 | resent |
//! | [`insert`](Region::insert) | the maps, `TYPE`, `HGET`, `HSET` (+ `PEXPIRE`) | 1 | `OutcomeUnknown` |
//! | [`remove`](Region::remove), [`delete`](Region::delete) | the maps, `TYPE`, `HGET` + `HDEL` / `HDEL` (+ `PEXPIRE`) | 1 | `OutcomeUnknown` (`remove`), resent (`delete`) |
//! | [`get_or_insert_with`](Region::get_or_insert_with) | the maps, `HGET`; on a miss a second script: the maps, `HSETNX`, `HGET` (+ `PEXPIRE`) | 1 on a hit (0 from a near cache), 2 on a miss | resent |
//! | [`transaction`](Region::transaction) | reads as above; the commit: an `HSET` of the first pair (refused out of memory before anything else), `DEL` or `HDEL`, one `HSET` (+ `PEXPIRE`) | 1 for the commit, 0 when nothing was written | resent |
//! | [`keys`](Region::keys), [`iter`](Region::iter) | `HSCAN` | 1 per batch | resent |
//! | [`children`](Region::children) | `HSCAN` of the region's map | 1 per batch | resent |
//! | [`create`](Region::create) | the maps | 1 the first time, then 0 | resent |
//! | [`invalidate`](Region::invalidate) | the maps, `HDEL`, `RPUSH` | 1 | resent |
//! | [`reclaim`](Region::reclaim) | per step: `LINDEX`, `TYPE`s, `HSCAN`, `UNLINK`, `HDEL`, `LSET`, `LPUSH`, `LPOP` | 1 per step of at most 25 regions | resent (each step is whole) |
//! | [`key`](Region::key) | the maps | 1 | resent |
//! | [`dict`](Region::dict), [`region`](Region::region), [`new`](Region::new) | none | 0 | — |
//! | [`clear`](Region::clear), [`exists`](Region::exists), [`ttl`](Region::ttl), [`expire`](Region::expire) | the maps, `DEL`, `EXISTS`, `PTTL`, `PEXPIRE` | 1 | resent |
//!
//! With a [near cache](crate::NearCache), [`get`](Region::get) and
//! [`contains_key`](Region::contains_key) are answered from memory, without any command, while
//! the process holds a usable copy; a miss is one round trip on the near cache's tracking
//! connection (a script: the maps, `PTTL`, `HGET`), two when the region's path changed.
//! Writes cost what they cost without one. See [Regions](crate::near#regions) for when a
//! copy stops being used.
//!
//! A write to a region with no generation yet (new, or invalidated) also checks the tree's
//! counter (`HGET`) and allocates the generations it lacks (`HSET` per level, and of the
//! counter), in the same script. On a tree with no root generation yet, the first operation
//! also checks for keys of the 0.1 layout (`EXISTS`).
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
//! users.invalidate()?; // users, users.alice and every other descendant, at once
//! assert_eq!(alice.get::<u32>("visits")?, None);
//! # Ok::<(), redis_caches::Error>(())
//! ```

mod iter;
mod memoize;
mod reclaim;
mod transaction;
mod tree;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use once_cell::sync::{Lazy, OnceCell};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Postcard, TypeTag};
use crate::connection::Retry;
use crate::dict::{DictCache, ops};
use crate::engine::{Engine, Placement};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::memo::{InRegion, MemoBuilder};
use crate::options::{Builder, Collection, Ttl, private};
use crate::signal::{Signal, Subscription};

pub use crate::options::OutagePolicy;
pub use iter::{Children, Iter, Keys};
#[allow(deprecated)]
pub use memoize::Memoized;
pub use transaction::Transaction;
use tree::{Layout, split_name};

/// The root of a region tree unless the builder names another one.
///
/// ```
/// use redis_caches::{Region, region::DEFAULT_ROOT};
/// assert_eq!(Region::new("a").root(), DEFAULT_ROOT);
/// ```
pub const DEFAULT_ROOT: &str = "root";

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

/// Who deletes the keys that invalidation retires (see [Reclamation](self#reclamation)).
///
/// ```
/// use redis_caches::{Region, region::Reclaim};
/// assert_eq!(Reclaim::default(), Reclaim::Background);
/// let r = Region::builder("jobs").reclaim(Reclaim::Manual).build();
/// # let _ = r;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reclaim {
    /// The crate's reclamation thread, in steps of bounded work: at once after this process
    /// invalidates a region of the tree, and every minute for every tree the process uses.
    #[default]
    Background,
    /// Only [`Region::reclaim`] (and other processes' threads). For processes that must not
    /// run a thread of their own, and for tests that count commands.
    Manual,
}

/// Options only regions have; set with the builder.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct RegionExtra {
    root: String,
    outage: OutagePolicy,
    reclaim: Reclaim,
}

impl Default for RegionExtra {
    fn default() -> Self {
        RegionExtra {
            root: DEFAULT_ROOT.to_string(),
            outage: OutagePolicy::Fail,
            reclaim: Reclaim::Background,
        }
    }
}

/// A dotted, nested namespace of typed values: one Redis hash per generation, reached through
/// its parent, so that invalidating the parent makes it unreachable at once. See the
/// [module docs](self) for the key layout, the guarantees, the costs, and how options are
/// inherited.
///
/// The handle is a view of shared remote state: cheap to clone, `Send + Sync`, every method
/// takes `&self`, nothing is cached in the process (apart from knowing which regions it already
/// [created](Region::create), the generations last found on the way to the region's hash,
/// which every request checks: see [Redis Cluster](self#redis-cluster), and, with a
/// [near cache](crate::NearCache), copies of entries that Redis keeps correct). Building a
/// handle does no I/O.
///
/// # Contents
///
/// - Entries: [`get`](Region::get), [`set`](Region::set), [`insert`](Region::insert),
///   [`remove`](Region::remove), [`delete`](Region::delete),
///   [`contains_key`](Region::contains_key), [`len`](Region::len), [`keys`](Region::keys),
///   [`iter`](Region::iter), [`clear`](Region::clear), a typed [`dict`](Region::dict) view
/// - The tree: [`region`](Region::region), [`region_builder`](Region::region_builder),
///   [`children`](Region::children), [`create`](Region::create),
///   [`invalidate`](Region::invalidate), [`invalidate_on`](Region::invalidate_on),
///   [`reclaim`](Region::reclaim), [`key`](Region::key)
/// - [`transaction`](Region::transaction), [`get_or_insert_with`](Region::get_or_insert_with),
///   [`memo`](Region::memo), [`outage_stats`](Region::outage_stats)
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
/// })?; // both written in one script, or neither
/// # Ok::<(), redis_caches::Error>(())
/// ```
pub struct Region<C = Postcard> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    engine: Engine<C>,
    /// The name parts below the root (`["abc", "xyz"]`).
    parts: Vec<String>,
    root: String,
    outage: OutagePolicy,
    reclaim: Reclaim,
    missed_reads: AtomicU64,
    skipped_writes: AtomicU64,
    /// True once this process has created the region (by a write or `create`).
    known: AtomicBool,
    /// [`reclaim::drops`] when this handle last had its tree watched; `u64::MAX` before.
    watched: AtomicU64,
    layout: OnceCell<Layout>,
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
        self.inner.engine.describe(f, "Region")
    }
}

impl<C> private::Sealed for Region<C> {}

/// Where the hash of the region `parts` lives: named by the generations last found on the
/// way to it, which every handle of the region in the process shares and the scripts check.
fn placement(
    prefix: Option<String>,
    root: String,
    parts: Vec<String>,
) -> Arc<crate::engine::PlacementFn> {
    Arc::new(move |connection_prefix: &str, server: &str| {
        let layout = Layout::new(connection_prefix, prefix.as_deref(), &root, &parts)?;
        Ok(Placement {
            placed: Some(layout.placed(server)),
            key: layout.key,
        })
    })
}

impl<C: Codec> Collection for Region<C> {
    type Codec = C;
    type Extra = RegionExtra;
    type WithCodec<C2: Codec> = Region<C2>;
    const REDIS_TYPE: &'static str = "hash";

    #[allow(private_interfaces)]
    fn from_engine(engine: Engine<C>, extra: RegionExtra) -> Self {
        let parts: Vec<String> = engine.key.parts().iter().map(|p| p.to_string()).collect();
        let place = placement(
            engine.options.prefix.clone(),
            extra.root.clone(),
            parts.clone(),
        );
        Region {
            inner: Arc::new(Inner {
                engine: engine.with_placement(place),
                parts,
                root: extra.root,
                outage: extra.outage,
                reclaim: extra.reclaim,
                missed_reads: AtomicU64::new(0),
                skipped_writes: AtomicU64::new(0),
                known: AtomicBool::new(false),
                watched: AtomicU64::new(u64::MAX),
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
    /// use redis_caches::{OutagePolicy, Region, TtlPolicy};
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
        Builder::new(Key::from_parts(split_name(name)))
    }
}

impl<C: Codec> Builder<Region<C>> {
    /// The root of the region tree (default `"root"`): the Redis Cluster hash tag every key
    /// of the tree carries, so that a whole tree lives in one slot. Must be non-empty and free
    /// of `{` and `}`, or the first operation fails with [`Error::InvalidKey`]. (The
    /// builder's [`prefix`](Builder::prefix), as for every collection, comes before the root:
    /// `prefix.{root}.name`.)
    ///
    /// ```
    /// let r = redis_caches::Region::builder("a").root("tenant-7").build();
    /// assert_eq!(r.root(), "tenant-7");
    /// ```
    pub fn root(mut self, root: impl Into<String>) -> Self {
        self.extra_mut().root = root.into();
        self
    }

    /// What the region does when Redis is unreachable or refuses writes: see
    /// [`OutagePolicy`].
    ///
    /// ```
    /// use redis_caches::{OutagePolicy, Region};
    /// let r = Region::builder("a").on_outage(OutagePolicy::Miss).build();
    /// # let _ = r;
    /// ```
    pub fn on_outage(mut self, policy: OutagePolicy) -> Self {
        self.extra_mut().outage = policy;
        self
    }

    /// Who deletes what invalidations of the tree retire: the crate's background thread
    /// ([`Reclaim::Background`], the default) or only [`Region::reclaim`]
    /// ([`Reclaim::Manual`]). See [Reclamation](crate::region#reclamation).
    ///
    /// ```
    /// use redis_caches::{Region, region::Reclaim};
    /// let r = Region::builder("a").reclaim(Reclaim::Manual).build();
    /// # let _ = r;
    /// ```
    pub fn reclaim(mut self, reclaim: Reclaim) -> Self {
        self.extra_mut().reclaim = reclaim;
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
        &self.inner.root
    }

    /// The Redis key of the hash that holds the region's entries now (in its current
    /// generation, see the [key layout](self#key-layout)), or `None` when the region has no
    /// generation (nothing was written to it or below it since it, or an ancestor, was last
    /// invalidated). A script that follows the tree's maps, one round trip. For operators and
    /// tests: the answer is stale as soon as another process invalidates the region.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConnection`] or [`Error::Config`] when the connection cannot be
    /// resolved, [`Error::InvalidKey`] for an empty name part or an invalid root,
    /// [`Error::OldLayout`], connection errors.
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("abc.xyz");
    /// r.set("k", &1u8)?;
    /// println!("{:?}", r.key()?); // Some("{root}@3.abc.xyz")
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn key(&self) -> Result<Option<String>> {
        let layout = self.layout()?;
        self.inner.engine.eval(
            &tree::LOCATE,
            1,
            |cmd| {
                cmd.arg(&layout.placeholder).arg(&layout.place);
            },
            Retry::Idempotent,
        )
    }

    /// The child region `name` (dotted names reach further down: `region("b.c")`), with a
    /// copy of this region's options. No I/O.
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = redis_caches::Region::builder("a").ttl(Duration::from_secs(60)).build();
    /// let c = a.region("b.c"); // "a.b.c", TTL 60 s; "a.b" gets a generation at c's first write
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
            Key::from_parts(parts),
            self.inner.engine.options.clone(),
            RegionExtra {
                root: self.inner.root.clone(),
                outage: self.inner.outage,
                reclaim: self.inner.reclaim,
            },
        )
    }

    /// The region's keys, computed once; also has the reclamation thread watch the tree
    /// (again, if it dropped it after failures: one atomic load per call otherwise).
    fn layout(&self) -> Result<&Layout> {
        let layout = self.inner.layout.get_or_try_init(|| {
            let resolved = self.inner.engine.resolved()?;
            Layout::new(
                resolved.connection.prefix(),
                self.inner.engine.options.prefix.as_deref(),
                &self.inner.root,
                &self.inner.parts,
            )
        })?;
        if self.inner.reclaim == Reclaim::Background {
            let drops = reclaim::drops();
            if self.inner.watched.swap(drops, Ordering::Relaxed) != drops {
                self.watch(layout, false);
            }
        }
        Ok(layout)
    }

    /// Has the process's reclamation thread watch this region's tree (see
    /// [`reclaim::watch`]).
    fn watch(&self, layout: &Layout, urgent: bool) {
        let Ok(resolved) = self.inner.engine.resolved() else {
            return;
        };
        let id = format!(
            "{}\n{}\n{}",
            resolved.connection.name(),
            resolved.connection.dsn(),
            layout.base
        );
        reclaim::watch(&id, urgent, || {
            let region = self.clone();
            let (queue, base) = (layout.queue.clone(), layout.base.clone());
            Arc::new(move || region.reclaim_step(&queue, &base))
        });
    }

    /// One reclamation step on this region's tree, and what it did.
    fn reclaim_step(&self, queue: &str, base: &str) -> Result<reclaim::Stepped> {
        let engine = &self.inner.engine;
        let (deleted, left, changed): (u64, u64, u8) = engine.eval_at(
            &mut engine.call()?,
            queue,
            &tree::RECLAIM,
            1,
            |cmd| {
                cmd.arg(queue).arg(base).arg(tree::STEP_BUDGET);
            },
            Retry::Idempotent,
        )?;
        Ok(reclaim::Stepped {
            deleted,
            left,
            stuck: changed == 0 && left > 0,
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
            Err(e) if self.inner.outage.degrades(&e) => {
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
            Err(e) if self.inner.outage.degrades(&e) => {
                self.inner
                    .skipped_writes
                    .fetch_add(writes, Ordering::Relaxed);
                Ok(skipped())
            }
            other => other,
        }
    }

    /// After a write that created the region: remember it, so `create` sends nothing.
    fn created(&self) -> Result<()> {
        if !self.inner.known.swap(true, Ordering::Relaxed) {
            tree::known().insert(self.registry_id()?);
        }
        Ok(())
    }

    /// How the process-wide registry names this region: connection name, server, name key.
    fn registry_id(&self) -> Result<String> {
        let resolved = self.inner.engine.resolved()?;
        Ok(format!(
            "{}\n{}\n{}",
            resolved.connection.name(),
            resolved.connection.dsn(),
            self.layout()?.key
        ))
    }

    /// Encodes an entry key into its hash field by the field rule: a `String`, so its plain
    /// text, as a [`DictCache<String, _>`](crate::DictCache) view writes it.
    fn field(&self, key: &str) -> Result<Vec<u8>> {
        let layout = self.layout()?;
        self.inner
            .engine
            .encode_field_at(key_tag(), key, &layout.key)
    }

    /// Encodes a value passed by reference (`str`, `[T]` or an owned type), tagged as its
    /// owned form.
    fn encode_value<V>(&self, value: &V) -> Result<Vec<u8>>
    where
        V: Serialize + ToOwned + ?Sized,
        V::Owned: DeserializeOwned,
    {
        self.encode_tagged(&value_tag::<V>(), value)
    }

    /// Encodes a value of a type that is read back as itself.
    fn encode_owned<V: Serialize + DeserializeOwned>(&self, value: &V) -> Result<Vec<u8>> {
        self.encode_tagged(&TypeTag::of::<V>(), value)
    }

    fn encode_tagged<V: Serialize + ?Sized>(&self, tag: &TypeTag, value: &V) -> Result<Vec<u8>> {
        let layout = self.layout()?;
        self.inner.engine.encode(tag, value, &layout.key)
    }

    /// [`decode_value`](Region::decode_value), a value of another shape being `None` under
    /// [`OtherShape::Miss`](crate::OtherShape::Miss).
    pub(crate) fn decode_value_or_miss<V: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        key: &str,
    ) -> Result<Option<V>> {
        self.inner
            .engine
            .decode_or_miss(tag, bytes, || self.value_label(key))
    }

    fn decode_value<V: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        key: &str,
    ) -> Result<V> {
        self.inner
            .engine
            .decode(tag, bytes, || self.value_label(key))
    }

    /// `region[key]`, as errors name a value.
    fn value_label(&self, key: &str) -> String {
        let name = self.layout().map(|l| l.key.as_str()).unwrap_or_default();
        format!("{name}[{key}]")
    }

    /// Reads the value at `key` as a `V`, or `None`. The tree's maps and `HGET`, pipelined
    /// (see [Costs](crate::region#costs)), one round trip. With a [near cache](crate::NearCache): no command while it holds a usable
    /// copy; otherwise one round trip on its tracking connection (the maps, `PTTL`, `HGET`),
    /// and the copy is kept (see [Regions](crate::near#regions)).
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
        let bytes = self.read_outage(ops::get(&self.inner.engine, &field), || None)?;
        match bytes {
            Some(b) => self.decode_value_or_miss(&TypeTag::of::<V>(), &b, key),
            None => Ok(None),
        }
    }

    /// Whether `key` holds a value. The tree's maps and `HEXISTS`, pipelined, one round trip.
    /// With a [near cache](crate::NearCache), as [`get`](Region::get) (whose copy it shares).
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
        self.read_outage(ops::contains(&self.inner.engine, &field), || false)
    }

    /// Stores `value` at `key` without reading what it replaces, and applies the TTL policy,
    /// in one script: the tree's maps (creating the generations the region lacks), `HSET`,
    /// `PEXPIRE` (only when the key has no TTL under
    /// [`TtlPolicy::Keep`](crate::TtlPolicy::Keep)). One round trip. `true` when `key` was
    /// new.
    ///
    /// Accepts borrowed values (`set("name", "Alice")`, read back as `String`). If several
    /// threads or processes write at once, each write is whole; a concurrent
    /// [`invalidate`](Region::invalidate) of the region or an ancestor runs entirely before
    /// the write (which then lands in a new generation, visible) or entirely after it (and
    /// invalidates it).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::ValueTooLarge`], [`Error::WrongType`] (nothing written,
    /// no generation created), [`Error::OldLayout`], connection errors (under
    /// [`OutagePolicy::Miss`]: skipped, counted, and `Ok(false)`).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// r.set("alice", "Alice")?;
    /// let was_new = r.set("alice.age", &31u8)?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn set<V>(&self, key: &str, value: &V) -> Result<bool>
    where
        V: Serialize + ToOwned + ?Sized,
        V::Owned: DeserializeOwned,
    {
        let field = self.field(key)?;
        let bytes = self.encode_value(value)?;
        let written = ops::set(&self.inner.engine, &field, &bytes);
        if written.is_ok() {
            self.created()?;
        }
        self.write_outage(written, 1, || false)
    }

    /// Stores `value` at `key` and returns the value it replaced, read as a `V`, like
    /// `HashMap::insert`: the maps, `HGET`, `HSET` (+ `PEXPIRE`) in one script, one round
    /// trip. [`set`](Region::set) is cheaper when the old value does not matter.
    ///
    /// # Errors
    ///
    /// As [`set`](Region::set) (`Ok(None)` under [`OutagePolicy::Miss`]), plus
    /// [`Error::Decode`] when the replaced value is not a `V` (the new value is stored even
    /// then), and [`Error::OutcomeUnknown`] when the reply was lost (not sent again).
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
        let bytes = self.encode_owned(value)?;
        let old = ops::insert(&self.inner.engine, &field, &bytes);
        if old.is_ok() {
            self.created()?;
        }
        match self.write_outage(old, 1, || None)? {
            Some(b) => self.decode_value_or_miss(&TypeTag::of::<V>(), &b, key),
            None => Ok(None),
        }
    }

    /// A typed [`DictCache`] over this region's hash, with the region's options: it reads and
    /// writes the same entries as [`get`](Region::get) and [`set`](Region::set) (entry keys
    /// are `String` fields). Every command it sends runs in a script that follows the tree's
    /// maps first, as the region's own do, so it always works on the region's current
    /// generation and is invalidated with it. No I/O.
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
        let engine = &self.inner.engine;
        Builder::<DictCache<K, V, C>>::from_parts(
            Key::from_parts(&self.inner.parts),
            engine.options.clone(),
            (),
        )
        .with_placement(placement(
            engine.options.prefix.clone(),
            self.inner.root.clone(),
            self.inner.parts.clone(),
        ))
        .build()
    }

    /// Removes `key` and returns its value, read as a `V`, atomically: the maps, `HGET` +
    /// `HDEL` (+ `PEXPIRE` under the TTL policy) in one script, one round trip.
    ///
    /// # Errors
    ///
    /// As [`get`](Region::get); the key is removed even when its value does not decode as
    /// `V` (under [`OutagePolicy::Miss`]: skipped, counted, and `Ok(None)`);
    /// [`Error::OutcomeUnknown`] when the reply was lost (not sent again).
    ///
    /// ```no_run
    /// let r = redis_caches::Region::new("profiles");
    /// let old: Option<String> = r.remove("alice")?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn remove<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>> {
        let field = self.field(key)?;
        let removed = ops::remove(&self.inner.engine, &field);
        match self.write_outage(removed, 1, || None)? {
            Some(b) => self.decode_value_or_miss(&TypeTag::of::<V>(), &b, key),
            None => Ok(None),
        }
    }

    /// Deletes `key`; `true` when it was there. A script (the maps, `HDEL`, + `PEXPIRE` under
    /// the TTL policy), one round trip.
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
        let deleted = ops::delete(&self.inner.engine, &field);
        self.write_outage(deleted, 1, || false)
    }

    /// The number of entries, memoized results included. The maps and `HLEN`, pipelined, one
    /// round trip.
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
        ops::len(&self.inner.engine)
    }

    /// Whether the region holds no entry. As [`len`](Region::len).
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
    /// got there first, and returns whichever value Redis kept. A read; on a miss one more
    /// script (the maps, `HSETNX`, `HGET` (+ `PEXPIRE`)): one round trip on a hit, two on a
    /// miss.
    ///
    /// If several threads or processes miss at once, each runs `f`, and all of them return
    /// the value stored first.
    ///
    /// A value of another shape or format (stored by another build for a `V` whose fields
    /// changed, under another schema version, or by redis-caches 0.1) is a miss too: `f`
    /// runs and its value is written over the old one (`HSET`, one more script: two round
    /// trips), as [caches](crate::codec#when-a-type-changes) do; [`get`](Region::get)
    /// reports such a value as [`Error::Decode`] (as missing under
    /// [`OtherShape::Miss`](crate::OtherShape::Miss)). Under [`OutagePolicy::Miss`], an outage runs `f` and returns
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
        let tag = &TypeTag::of::<V>();
        let stale = match ops::get(&self.inner.engine, field) {
            Ok(Some(b)) => match self.decode_value(tag, &b, shown) {
                // Another build's value (another shape, schema version or format): a miss.
                Err(e) if e.is_stale_decode() => true,
                decoded => return decoded,
            },
            Ok(None) => false,
            Err(e) if self.inner.outage.degrades(&e) => {
                self.inner.missed_reads.fetch_add(1, Ordering::Relaxed);
                self.inner.skipped_writes.fetch_add(1, Ordering::Relaxed);
                return Ok(f());
            }
            Err(e) => return Err(e),
        };
        let value = f();
        let bytes = self.encode_owned(&value)?;
        if stale {
            // Written over: `HSETNX` would keep the old value.
            let written = ops::set(&self.inner.engine, field, &bytes);
            if written.is_ok() {
                self.created()?;
            }
            self.write_outage(written, 1, || false)?;
            return Ok(value);
        }
        let kept = ops::get_or_insert(&self.inner.engine, field, &bytes);
        if kept.is_ok() {
            self.created()?;
        }
        match self.write_outage(kept, 1, || None)? {
            Some(b) if b != bytes => match self.decode_value(tag, &b, shown) {
                // Another build's value, written in between: a miss, written over.
                Err(e) if e.is_stale_decode() => {
                    let written = ops::set(&self.inner.engine, field, &bytes);
                    self.write_outage(written, 1, || false)?;
                    Ok(value)
                }
                decoded => decoded,
            },
            _ => Ok(value),
        }
    }

    /// The entry keys, streamed with `HSCAN` in batches (one round trip each, the tree's maps
    /// first). Memoized results are skipped.
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
        Keys::new(self.clone())
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
        Iter::new(self.clone())
    }

    /// Deletes this region's entries (its hash), but not its descendants: see
    /// [`invalidate`](Region::invalidate) for those. `true` when there were entries. A script
    /// (the maps, `DEL`), one round trip.
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
        self.inner.engine.clear()
    }

    /// Whether the region holds any entry (its hash exists). The maps and `EXISTS`, pipelined
    /// (a script for a region without a generation), one round trip.
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
        self.inner.engine.exists()
    }

    /// The remaining time to live of the region's hash. The maps and `PTTL`, pipelined (a
    /// script for a region without a generation), one round trip.
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
        self.inner.engine.ttl()
    }

    /// Sets the time to live of the region's hash now (its descendants keep theirs); `false`
    /// when the region holds nothing. A script (the maps, `PEXPIRE`), one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a TTL out of range; connection errors.
    ///
    /// ```no_run
    /// redis_caches::Region::new("profiles").expire(std::time::Duration::from_secs(60))?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn expire(&self, ttl: Duration) -> Result<bool> {
        self.inner.engine.expire(ttl)
    }

    /// Gives this region a generation without writing to it (and its ancestors, where they
    /// have none), so that it shows among its parent's [`children`](Region::children): one
    /// script (the tree's maps), one round trip. Nothing is sent when this process already
    /// created the region (by `create` or a write, through any handle with the same
    /// connection name, server and key), nor for the root region.
    ///
    /// Writes create the region by themselves; call this only to make an empty region
    /// visible. After an invalidation of the region or an ancestor, the region is created
    /// again by its next write (not by `create`, which remembers it already did its work).
    ///
    /// # Errors
    ///
    /// [`Error::OldLayout`], connection errors (under every [`OutagePolicy`]).
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
        let known = tree::known().contains(&id);
        if !known && !self.inner.parts.is_empty() {
            let _: redis::Value = self.inner.engine.eval(
                &tree::CREATE,
                1,
                |cmd| {
                    cmd.arg(&layout.placeholder).arg(&layout.place);
                },
                Retry::Idempotent,
            )?;
        }
        tree::known().insert(id);
        self.inner.known.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The child regions recorded in Redis (by any process), with this region's options,
    /// streamed with `HSCAN` of the region's map of children in batches (one round trip
    /// each).
    ///
    /// A child shows up once something was written to it or below it, or it was
    /// [created](Region::create), and disappears when it or this region is invalidated.
    ///
    /// # Errors
    ///
    /// Items are `Err` for connection errors (iteration stops) and for map fields that are
    /// not a child's escaped name (written by something else).
    ///
    /// ```no_run
    /// for child in redis_caches::Region::new("users").children() {
    ///     println!("{}", child?.name());
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn children(&self) -> Children<C> {
        Children::new(self.clone())
    }

    /// Invalidates this region and every descendant, in one step whose cost does not depend
    /// on how many there are: the region's current generation is retired (one map entry
    /// deleted, the generation queued for reclamation), so from the moment the script ran no
    /// reader in any process reaches anything written below the region before. Returns
    /// whether the region had a generation to retire. One script, one round trip.
    ///
    /// A write running concurrently, in any process, is one script too: it lands entirely
    /// before (and is invalidated) or entirely after (and starts a new generation, visible
    /// and invalidated by the next `invalidate`). The retired keys are deleted afterwards,
    /// in bounded steps, by the process's reclamation thread (see
    /// [Reclamation](self#reclamation) and [`reclaim`](Region::reclaim)); nothing is deleted
    /// by the invalidation itself.
    ///
    /// On a tree in the layout of redis-caches 0.1, invalidating the root region discards the
    /// old data (see [Upgrading from 0.1](self#upgrading-from-01)); any other region fails
    /// with [`Error::OldLayout`].
    ///
    /// # Errors
    ///
    /// Connection errors, under every [`OutagePolicy`]; [`Error::OutcomeUnknown`] never: a
    /// lost reply is sent again (invalidating twice is harmless).
    ///
    /// ```no_run
    /// let users = redis_caches::Region::new("users");
    /// if users.invalidate()? {
    ///     println!("users and everything below it are gone");
    /// }
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn invalidate(&self) -> Result<bool> {
        let layout = self.layout()?;
        let retired: bool = self.inner.engine.eval(
            &tree::INVALIDATE,
            1,
            |cmd| {
                cmd.arg(&layout.queue).arg(&layout.place);
            },
            Retry::Idempotent,
        )?;
        if retired && self.inner.reclaim == Reclaim::Background {
            self.watch(layout, true);
        }
        Ok(retired)
    }

    /// Deletes, now and in the caller, what invalidations of this region's tree retired,
    /// until nothing is left: steps of at most 25 regions each (one script, one round trip,
    /// a few hundred microseconds of server time), so other clients are served between them.
    /// Returns how many region hashes were deleted. Safe to run from several processes at
    /// once, and alongside the background thread: each step is atomic. Returns early, with
    /// work left in the queue, when a step can change nothing: the server refuses to grow the
    /// queue (out of memory) and what is left has children to queue first.
    ///
    /// The crate's reclamation thread does this by itself (see
    /// [Reclamation](self#reclamation)); call it with [`Reclaim::Manual`], before a process
    /// exits, or to measure.
    ///
    /// # Errors
    ///
    /// Connection errors (the work left stays queued in Redis).
    ///
    /// ```no_run
    /// let users = redis_caches::Region::new("users");
    /// users.invalidate()?;
    /// let deleted = users.reclaim()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn reclaim(&self) -> Result<u64> {
        let layout = self.layout()?;
        let mut deleted = 0;
        loop {
            let step = self.reclaim_step(&layout.queue, &layout.base)?;
            deleted += step.deleted;
            if step.left == 0 || step.stuck {
                return Ok(deleted);
            }
        }
    }

    /// Runs `f` with a [`Transaction`]: reads see its pending writes, and when `f` returns
    /// `Ok`, all its writes are sent in one script with the TTL refresh (one round trip; none
    /// when nothing was written). When `f` returns `Err` or panics, nothing
    /// is sent.
    ///
    /// Each call has its own transaction, so any number of threads can run transactions on
    /// the same region at once. The transaction buffers writes and does not `WATCH`: its reads
    /// of keys it has not written see the live region, and its commit overwrites whatever was
    /// written meanwhile.
    ///
    /// # Errors
    ///
    /// The error `f` returns, or the commit's error (under [`OutagePolicy::Miss`], a commit
    /// that meets an outage is skipped and its writes counted instead).
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
        let mut tx = Transaction::new(self);
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

    /// A [`Memo`](crate::Memo) whose results live in this region: [`Memo::builder`] placed
    /// with [`MemoBuilder::region`]. Its results are fields of the region's hash, so they
    /// follow its TTL and are invalidated with it; the memo's lock, statistics and single
    /// flight work as for any memo. Arguments are taken by value, as by every memo. It uses
    /// the region's [near cache](crate::NearCache) for its fresh hits, if any (see
    /// [`MemoBuilder::near_cache`](crate::MemoBuilder::near_cache)).
    ///
    /// ```no_run
    /// use redis_caches::Region;
    ///
    /// let reports = Region::new("reports");
    /// let total = reports
    ///     .memo("total", |(year, month): (u16, u8)| u64::from(year) * 100 + u64::from(month))
    ///     .build();
    /// assert_eq!(total.call((2024, 5))?, 202405);
    /// assert_eq!(total.call((2024, 5))?, 202405); // from Redis this time
    /// reports.invalidate()?; // the result goes with the region
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    ///
    /// [`Memo::builder`]: crate::Memo::builder
    pub fn memo<A, R, F>(&self, name: impl Into<String>, f: F) -> MemoBuilder<A, R>
    where
        A: Serialize + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(A) -> R + Send + Sync + 'static,
    {
        crate::Memo::builder(name, f).region(self)
    }

    /// Wraps `f` so that its results are cached in this region, keyed by `name` and the
    /// encoded arguments; they are invalidated with the region and expire with its TTL. See
    /// [`Memoized::call`] for the cost.
    ///
    /// ```no_run
    /// # #![allow(deprecated)]
    /// use redis_caches::Region;
    ///
    /// let reports = Region::new("reports");
    /// let total = reports.memoize("total", |(year, month): &(u16, u8)| {
    ///     u64::from(*year) * 100 + u64::from(*month) // stands for an expensive query
    /// });
    /// assert_eq!(total.call(&(2024, 5))?, 202405);
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    #[deprecated(
        since = "0.2.0",
        note = "use `Region::memo` (a `Memo` in the region: lock, statistics, single flight; \
                arguments by value)"
    )]
    #[allow(deprecated)]
    pub fn memoize<A, R, F>(&self, name: impl Into<String>, f: F) -> Memoized<A, R, F, C>
    where
        A: Serialize + ?Sized,
        R: Serialize + DeserializeOwned,
        F: Fn(&A) -> R,
    {
        Memoized::new(self.clone(), name.into(), f)
    }
}

impl<A, R, E> MemoBuilder<A, R, E>
where
    A: 'static,
{
    /// Keeps the memo's results in `region`: as fields of the region's hash (of its current
    /// generation), so that they follow the region's TTL and policy and are invalidated with
    /// it. The memo's lock sits beside the hash in the same generation (a computation that
    /// started before an invalidation does not store its result after it), its statistics in
    /// the region's tree (`B#memo:<name>.stats`, shared by the memos of that name in the
    /// tree); every key a call touches shares the tree's hash tag, so a memo in a region works
    /// on a Redis Cluster. The memo uses the region's connection. [`Region::memo`] is the
    /// short form.
    ///
    /// Results are computed once across processes (the lock and single flight as for any
    /// memo), counted in [`stats`](crate::Memo::stats), and removed by
    /// [`forget`](crate::Memo::forget) and [`clear`](crate::Memo::clear) (which scans the
    /// region's hash).
    ///
    /// A TTL or [`refresh`](MemoBuilder::refresh) set on the memo, a counter or a list make
    /// the first call fail with [`Error::Config`]: the region's TTL is the results' TTL.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use redis_caches::{Memo, Region};
    ///
    /// let user = Region::builder("users.42").ttl(Duration::from_secs(300)).build();
    /// let orders = Memo::builder("orders", |page: u32| vec![page; 3]).region(&user).build();
    /// assert_eq!(orders.call(1)?, vec![1, 1, 1]);
    /// user.invalidate()?; // the cached pages go with the user's region
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn region<C: Codec>(self, region: &Region<C>) -> Self {
        let engine = &region.inner.engine;
        self.in_region(InRegion {
            key: Key::from_parts(&region.inner.parts),
            connection: engine.options.connection.clone(),
            prefix: engine.options.prefix.clone(),
            placement: placement(
                engine.options.prefix.clone(),
                region.inner.root.clone(),
                region.inner.parts.clone(),
            ),
            ttl: engine.options.ttl,
            ttl_policy: engine.options.ttl_policy,
            near: engine.options.near.clone(),
        })
    }
}

/// The tag a value passed to `set` is encoded with: a borrowed value (`str`, `[T]`) shares
/// its owned form's (`String`, `Vec<T>`), as serde writes both alike, so `&str`, `&String`
/// and `String` read back as `String`. (`TypeTag::of` keeps its own cache per type.)
fn value_tag<V: ToOwned + ?Sized>() -> TypeTag
where
    V::Owned: DeserializeOwned,
{
    TypeTag::of_owned::<V>()
}

/// The tag of entry keys (`String` fields).
fn key_tag() -> &'static TypeTag {
    static TAG: Lazy<TypeTag> = Lazy::new(TypeTag::of::<String>);
    &TAG
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_and_owned_values_share_a_tag() {
        assert_eq!(value_tag::<str>(), TypeTag::of::<String>());
        assert_eq!(value_tag::<String>(), TypeTag::of::<String>());
        assert_eq!(value_tag::<[u8]>(), TypeTag::of::<Vec<u8>>());
        assert_eq!(
            value_tag::<[(u8, String)]>(),
            TypeTag::of::<Vec<(u8, String)>>()
        );
        assert_eq!(value_tag::<u32>(), TypeTag::of::<u32>());
        assert_ne!(TypeTag::of::<[u8; 4]>(), value_tag::<[u8]>());
    }
}
