//! The client side of a [placed](super::Placed) handle's requests: which keys a script
//! declares, so that Redis Cluster routes it, and refuses it whole, by every key it reads or
//! writes.
//!
//! A placed handle's data (a region's hash) lives at a key named by the generations of the
//! region and of every level above it (see the region module's "Key layout"). Redis Cluster
//! decides where a script runs, and whether it runs at all while its slot migrates, by the
//! keys the script *declares*: on the migrating node it runs when all of them are there, is
//! refused with `TRYAGAIN` when some are missing and redirected (`ASK`) when all are; the
//! importing node refuses (`TRYAGAIN`) a script of several keys when one is missing. A script
//! that declares every key it touches and reads before it writes therefore runs whole on the
//! node that holds all of its keys, or not at all.
//!
//! So a handle keeps a [`Path`]: the generations it last found (the tree's root, then each
//! level down to the region's own), and the tree's last generation number handed out. From
//! it each request names every key the script will touch: the tree's hash, the map of each
//! level, and the handle's own keys in the region's generation. The script checks that the
//! generations it finds in those maps are the ones the names came from (a read pipelines the
//! maps' `HGET`s before it and compares on the client, the script deciding on a mismatch:
//! `Engine::read_placed_plain`); when they are not
//! (first use, another process invalidated or created something), it changes nothing and
//! answers `STALEPATH <generations found> <next>`, and the request is sent again with the
//! names of the path found: one round trip in the steady state, a second after a change.
//!
//! A region without a generation: reads name its hash in generation `0`, which is never
//! handed out (a key that reads as missing). Writes propose the generations the script
//! would create, `next + 1` and up, and name the new maps and hash with them; the script
//! creates them only when the tree's counter is still `next` (so nobody took those numbers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;

use redis::Value;

use super::Placed;

/// The generations a handle last found on its way down its tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path {
    /// The root region's generation, then one per level; as many as exist (a region without
    /// a generation has fewer than its depth + 1).
    pub(crate) ids: Vec<u64>,
    /// The tree's last generation number handed out (`0` for a tree that has none).
    pub(crate) next: u64,
    /// Read from Redis (or created there), as opposed to guessed.
    pub(crate) known: bool,
}

/// A region's [`Path`], shared by its handles in the process (see [`path_of`]).
pub(crate) type PathCell = Arc<Mutex<Arc<Path>>>;

/// The names a handle last computed: for which path, in which form.
pub(crate) type NamesCell = Arc<Mutex<Option<(Arc<Path>, bool, Arc<Names>)>>>;

/// How many regions' paths [`path_of`] keeps; past that it forgets them all (each is found
/// again by its next request: one round trip more).
const PATHS_KEPT: usize = 100_000;

/// The generations last found on the way to each region's hash, by server and name key
/// (which starts with the connection's prefix), shared by every handle of the region in the
/// process, so that a handle built per call (`Region::new("users.42")`) names the right keys
/// at once. A path found for a region is recorded for its ancestors too (their generations
/// are a prefix of it). The scripts check every generation a request names, so a path that
/// is out of date costs a round trip, never a wrong key.
static PATHS: Lazy<Mutex<HashMap<String, PathCell>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// The shared path of the region whose name key is `key` on `server`, below the tree's base
/// key `base` by the escaped name `parts`. A region the process has not met yet starts from
/// its nearest ancestor's path, if the process knows one (the region then has no generation
/// of its own, or the ancestor's generations are out of date: the script says which).
pub(crate) fn path_of(server: &str, key: &str, base: &str, parts: &[String]) -> PathCell {
    let mut paths = PATHS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cell = cell_in(&mut paths, server, key);
    let unknown = !lock(&cell).known;
    if unknown {
        let mut ancestor = base.to_string();
        let mut keys = vec![ancestor.clone()];
        for p in parts.iter().take(parts.len().saturating_sub(1)) {
            ancestor.push('.');
            ancestor.push_str(p);
            keys.push(ancestor.clone());
        }
        if parts.is_empty() {
            keys.clear();
        }
        let seed = keys.iter().rev().find_map(|k| {
            let found = paths.get(&format!("{server}\n{k}"))?;
            let path = lock(found);
            path.known.then(|| (**path).clone())
        });
        if let Some(mut seed) = seed {
            seed.known = false;
            *lock(&cell) = Arc::new(seed);
        }
    }
    cell
}

fn lock(cell: &PathCell) -> std::sync::MutexGuard<'_, Arc<Path>> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cell_in(paths: &mut HashMap<String, PathCell>, server: &str, key: &str) -> PathCell {
    let id = format!("{server}\n{key}");
    if let Some(cell) = paths.get(&id) {
        return cell.clone();
    }
    if paths.len() >= PATHS_KEPT {
        paths.clear();
    }
    paths.entry(id).or_default().clone()
}

fn set(cell: &PathCell, path: Path) {
    *cell
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(path);
}

/// What a script answered when the path it was sent with is not the one in Redis.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stale {
    pub(crate) path: Path,
    /// The script had to create generations, and was sent in the form that reads only.
    pub(crate) create: bool,
}

impl Stale {
    /// Reads a `STALEPATH <ids,...> <next>[ create]` error reply (as Redis 7.0 gives it, or
    /// inside Redis 6.2's wrapping of an error raised by a script).
    pub(crate) fn of(reply: &Value) -> Option<Stale> {
        let Value::ServerError(e) = reply else {
            return None;
        };
        let text = format!("{} {}", e.code(), e.details().unwrap_or_default());
        let at = text.find("STALEPATH ")?;
        let rest = &text[at + "STALEPATH ".len()..];
        let (ids, rest) = rest.split_once(' ')?;
        let next: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let ids = if ids.is_empty() {
            Vec::new()
        } else {
            ids.split(',')
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()
                .ok()?
        };
        Some(Stale {
            path: Path {
                ids,
                next: next.parse().ok()?,
                known: true,
            },
            create: rest[next.len()..].contains("create"),
        })
    }
}

/// The escaped name parts of `name` (`a\.b.c` -> `a\.b`, `c`): the fields of the maps.
pub(crate) fn escaped_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    if name.is_empty() {
        return parts;
    }
    let mut current = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            '.' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

impl Placed {
    /// The tree's hash, which the script of every read of an entry of the tree reads: every
    /// near-cache copy of an entry of the tree depends on it.
    pub(crate) fn tree_key(&self) -> String {
        format!("{}#tree", self.base)
    }

    /// The path this handle last found.
    pub(crate) fn path(&self) -> Arc<Path> {
        self.path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the path a script found (or created), for the region and its ancestors.
    pub(crate) fn found(&self, path: Path) {
        let mut paths = PATHS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = self.base.clone();
        for level in 0..self.parts.len() {
            let known = path.ids.len().min(level + 1);
            let ancestor = Path {
                ids: path.ids[..known].to_vec(),
                next: path.next,
                known: true,
            };
            set(&cell_in(&mut paths, &self.server, &key), ancestor);
            key.push('.');
            key.push_str(&self.parts[level]);
        }
        drop(paths);
        set(
            &self.path,
            Path {
                known: true,
                ..path
            },
        );
    }

    /// After a request that may have created the region's generations from `path` (a write
    /// that found them missing and proposed `path.next + 1` and up): the path it created,
    /// which the next request checks like any other.
    pub(crate) fn created(&self, path: &Path) {
        let depth = self.parts.len();
        let found = path.ids.len().min(depth + 1);
        if found == depth + 1 {
            return;
        }
        let mut ids = path.ids[..found].to_vec();
        ids.extend((found..=depth).map(|i| path.next + (i - found) as u64 + 1));
        let next = path.next + (depth + 1 - found) as u64;
        self.found(Path {
            ids,
            next,
            known: true,
        });
    }

    /// `B@<id>` followed by the names of the first `level` parts.
    fn stem(&self, id: u64, level: usize) -> String {
        let mut s = format!("{}@{id}", self.base);
        for p in &self.parts[..level] {
            s.push('.');
            s.push_str(p);
        }
        s
    }

    /// The names a request on `path` declares, in the form that may create generations
    /// (`write`) or not, computed once per path and form (the steady state reuses them).
    fn names(&self, path: &Arc<Path>, write: bool) -> Arc<Names> {
        let depth = self.parts.len();
        let found = path.ids.len().min(depth + 1);
        let full = found == depth + 1;
        let write = write && !full;
        let mut last = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((p, w, names)) = &*last
            && *w == write
            && p == path
        {
            return names.clone();
        }
        let mut ids: Vec<u64> = path.ids[..found].to_vec();
        if write {
            ids.extend((found..=depth).map(|i| path.next + (i - found) as u64 + 1));
        }
        let hash = if full || write {
            self.stem(ids[depth], depth)
        } else {
            self.stem(0, depth)
        };
        let maps = if full || write { depth } else { found };
        let mut path_keys = Vec::with_capacity(maps + 1);
        path_keys.push(self.tree_key());
        for (level, id) in ids.iter().enumerate().take(maps) {
            path_keys.push(format!("{}#children", self.stem(*id, level)));
        }
        let known: Vec<String> = path.ids[..found].iter().map(u64::to_string).collect();
        let next = if write {
            path.next.to_string()
        } else {
            String::new()
        };
        let names = Arc::new(Names {
            hash: hash.into_bytes(),
            path_keys,
            // `=`: the generations named are the whole path (`_place`'s steady state).
            place_tail: format!(
                ":{next}:{}{}:{}",
                if full { "=" } else { "" },
                known.join(","),
                self.place
            ),
        });
        *last = Some((path.clone(), write, names.clone()));
        names
    }

    /// Whether a request on `path` in the form that may create generations (`write`) would
    /// create some: the region has none yet.
    pub(crate) fn creates_on(&self, path: &Path, write: bool) -> bool {
        write && path.ids.len() < self.parts.len() + 1
    }

    /// The arguments of the script request `cmd` (`EVALSHA sha numkeys keys... args...`),
    /// its number of keys and the position of this handle's placement among the arguments
    /// after the keys; `None` for a request that does not carry the placement.
    fn split_request<'a>(&self, cmd: &'a redis::Cmd) -> Option<(Vec<&'a [u8]>, usize, usize)> {
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
        args.get(3..3 + numkeys)?;
        let place = args[3 + numkeys..]
            .iter()
            .position(|a| *a == self.place.as_bytes())?;
        Some((args, numkeys, place))
    }

    /// The keys the request `cmd` on `path` declares, as [`declare`](Placed::declare) names
    /// them: its own keys in the region's generation, then, with `with_path`, the tree's hash
    /// and the maps. `None` for a request that does not carry this handle's placement.
    pub(crate) fn declared_keys(
        &self,
        cmd: &redis::Cmd,
        path: &Arc<Path>,
        write: bool,
        with_path: bool,
    ) -> Option<Vec<Vec<u8>>> {
        let (args, numkeys, _) = self.split_request(cmd)?;
        let keys = &args[3..3 + numkeys];
        let names = self.names(path, write);
        let mut out: Vec<Vec<u8>> = keys
            .iter()
            .map(|key| match key.strip_prefix(self.placeholder.as_bytes()) {
                Some(suffix) => [&names.hash[..], suffix].concat(),
                None => key.to_vec(),
            })
            .collect();
        if with_path {
            out.extend(names.path_keys.iter().map(|k| k.clone().into_bytes()));
        }
        Some(out)
    }

    /// The script request `cmd` (`EVALSHA sha numkeys keys... args...`) with the keys of
    /// `path` declared: the keys named with the placeholder renamed to the region's
    /// generation, the tree's hash and the maps appended to the keys, and the placement
    /// argument replaced by what the prelude's `_place` checks. `write`: a script that may
    /// create the region's generations (proposed from `path.next` when it has none).
    /// Returns the request and its number of keys; `None` for a request that does not carry
    /// this handle's placement.
    pub(crate) fn declare(
        &self,
        cmd: &redis::Cmd,
        path: &Arc<Path>,
        write: bool,
    ) -> Option<(Vec<u8>, usize)> {
        let (args, numkeys, place) = self.split_request(cmd)?;
        let (keys, argv) = (&args[3..3 + numkeys], &args[3 + numkeys..]);
        let names = self.names(path, write);
        let total = numkeys + names.path_keys.len();
        // Packed as Redis' protocol directly: the request is one array of bulk strings.
        let mut out = Vec::with_capacity(
            args.iter().map(|a| a.len() + 16).sum::<usize>()
                + names.path_keys.iter().map(|k| k.len() + 16).sum::<usize>()
                + names.hash.len() * numkeys
                + names.place_tail.len()
                + 32,
        );
        let count = 3 + numkeys + names.path_keys.len() + argv.len();
        out.extend_from_slice(format!("*{count}\r\n").as_bytes());
        bulk(&mut out, &[args[0]]);
        bulk(&mut out, &[args[1]]);
        bulk(&mut out, &[total.to_string().as_bytes()]);
        for key in keys {
            match key.strip_prefix(self.placeholder.as_bytes()) {
                Some(suffix) => bulk(&mut out, &[&names.hash, suffix]),
                None => bulk(&mut out, &[key]),
            }
        }
        for key in &names.path_keys {
            bulk(&mut out, &[key.as_bytes()]);
        }
        for (i, a) in argv.iter().enumerate() {
            if i == place {
                let f = (numkeys + 1).to_string();
                bulk(&mut out, &[f.as_bytes(), names.place_tail.as_bytes()]);
            } else {
                bulk(&mut out, &[a]);
            }
        }
        Some((out, total))
    }
}

impl Placed {
    /// The names a read with plain commands on `path` uses (see
    /// [`Engine::read_placed_plain`](super::Engine)): those of a read script's request;
    /// `None` unless `path` holds every generation down to the region (a region without one
    /// is read by the script, which also checks the tree's layout).
    pub(crate) fn plain_names(&self, path: &Arc<Path>) -> Option<Arc<Names>> {
        (path.ids.len() == self.parts.len() + 1).then(|| self.names(path, false))
    }
}

/// The request made of `args`, packed in Redis' protocol (an array of bulk strings).
pub(crate) fn pack(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(args.iter().map(|a| a.len() + 16).sum::<usize>() + 16);
    out.push(b'*');
    decimal(&mut out, args.len());
    out.extend_from_slice(b"\r\n");
    for a in args {
        bulk(&mut out, &[a]);
    }
    out
}

/// Appends one bulk string made of `parts` to a request packed in Redis' protocol.
fn bulk(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(b'$');
    decimal(out, len);
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without the allocation of `to_string` (which cost more than the
/// rest of packing a request).
fn decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The keys a request on one path declares, and its placement argument after `<f>`.
#[derive(Debug)]
pub(crate) struct Names {
    /// The region's hash (the handle's own keys are it followed by a suffix).
    hash: Vec<u8>,
    /// `B#tree`, then the maps.
    path_keys: Vec<String>,
    /// `:<next>:<generations>:<place>`, the generations after `=` when they are the whole path.
    place_tail: String,
}

impl Names {
    /// The region's hash.
    pub(crate) fn hash(&self) -> &[u8] {
        &self.hash
    }

    /// `B#tree`, then the map of each level, the root's first.
    pub(crate) fn path_keys(&self) -> &[String] {
        &self.path_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(parts: &[&str]) -> Placed {
        placed_on("", parts)
    }

    /// A handle on `server`: the paths the process records are kept per server, so each test
    /// that records some names its own.
    fn placed_on(server: &str, parts: &[&str]) -> Placed {
        let name = parts.join(".");
        Placed {
            placeholder: "{r}@?".into(),
            place: format!("3:{{r}}{name}"),
            base: "{r}".into(),
            parts: parts.iter().map(|p| p.to_string()).collect(),
            path: PathCell::default(),
            server: server.into(),
            names: NamesCell::default(),
        }
    }

    #[test]
    fn pack_writes_what_redis_cmd_writes() {
        let long = "0123456789".repeat(12);
        let args: [&[u8]; 5] = [b"EVALSHA", b"abc", b"", b"x\r\ny", long.as_bytes()];
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("abc").arg("").arg("x\r\ny").arg(&long);
        assert_eq!(pack(&args), cmd.get_packed_command());
    }

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    /// A path of generations `ids`, proposing `next`, `known` from a script's answer or not.
    fn path(ids: Vec<u64>, next: u64, known: bool) -> Arc<Path> {
        Arc::new(Path { ids, next, known })
    }

    /// The bulk strings of a packed request.
    fn words(packed: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(packed);
        let mut lines = text.split("\r\n");
        let n: usize = lines.next().unwrap()[1..].parse().unwrap();
        let words: Vec<String> = (0..n)
            .map(|_| {
                let len: usize = lines.next().unwrap()[1..].parse().unwrap();
                let w = lines.next().unwrap().to_string();
                assert_eq!(w.len(), len);
                w
            })
            .collect();
        assert_eq!(lines.collect::<Vec<_>>(), [""]);
        words
    }

    fn request() -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("sha").arg(2).arg("{r}@?").arg("{r}.other");
        cmd.arg("x").arg("3:{r}a.b").arg("v");
        cmd
    }

    #[test]
    fn a_full_path_declares_the_tree_every_map_and_the_hash() {
        let p = placed(&["a", "b"]);
        let path = path(vec![1, 4, 7], 9, true);
        let (cmd, n) = p.declare(&request(), &path, true).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            words(&cmd),
            [
                "EVALSHA",
                "sha",
                "5",
                "{r}@7.a.b",
                "{r}.other",
                "{r}#tree",
                "{r}@1#children",
                "{r}@4.a#children",
                "x",
                "3::=1,4,7:3:{r}a.b",
                "v"
            ]
        );
    }

    #[test]
    fn the_declared_keys_are_those_the_request_names() {
        let p = placed(&["a", "b"]);
        for (path, write) in [
            (
                Path {
                    ids: vec![1, 4, 7],
                    next: 9,
                    known: true,
                },
                false,
            ),
            (
                Path {
                    ids: vec![1],
                    next: 9,
                    known: true,
                },
                true,
            ),
            (
                Path {
                    ids: vec![1],
                    next: 9,
                    known: true,
                },
                false,
            ),
        ] {
            let path = Arc::new(path);
            let (cmd, n) = p.declare(&request(), &path, write).unwrap();
            let named = words(&cmd)[3..3 + n].to_vec();
            let keys: Vec<String> = p
                .declared_keys(&request(), &path, write, true)
                .unwrap()
                .into_iter()
                .map(|k| String::from_utf8(k).unwrap())
                .collect();
            assert_eq!(keys, named);
            let own = p.declared_keys(&request(), &path, write, false).unwrap();
            assert_eq!(own.len(), 2, "the request's own keys");
            assert_eq!(
                p.creates_on(&path, write),
                write && path.ids.len() < 3,
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_region_without_generation_reads_generation_0_and_writes_proposed_ones() {
        let p = placed(&["a", "b"]);
        let path = path(vec![1], 9, true);
        let (read, n) = p.declare(&request(), &path, false).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            words(&read)[2..7],
            ["4", "{r}@0.a.b", "{r}.other", "{r}#tree", "{r}@1#children"]
        );
        assert_eq!(words(&read)[8], "3::1:3:{r}a.b");
        let (write, n) = p.declare(&request(), &path, true).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            words(&write)[2..8],
            [
                "5",
                "{r}@11.a.b",
                "{r}.other",
                "{r}#tree",
                "{r}@1#children",
                "{r}@10.a#children"
            ]
        );
        assert_eq!(words(&write)[9], "3:9:1:3:{r}a.b");
        let empty = Arc::new(Path::default());
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("sha").arg(1).arg("{r}@?").arg("3:{r}");
        let (root, n) = placed(&[]).declare(&cmd, &empty, true).unwrap();
        assert_eq!(n, 2);
        assert_eq!(words(&root)[2..], ["2", "{r}@1", "{r}#tree", "2:0::3:{r}"]);
    }

    #[test]
    fn a_region_met_first_starts_from_its_nearest_known_ancestor() {
        let parts = strings;
        let a = path_of("seed", "{s}.a", "{s}", &parts(&["a"]));
        *lock(&a) = path(vec![1, 2], 5, true);
        let deep = path_of("seed", "{s}.a.b.c", "{s}", &parts(&["a", "b", "c"]));
        let seeded = lock(&deep).clone();
        assert_eq!((seeded.ids.clone(), seeded.next), (vec![1, 2], 5));
        assert!(!seeded.known, "a guess, until a script answers");
        let other = path_of("other", "{s}.a.b", "{s}", &parts(&["a", "b"]));
        assert_eq!(
            **lock(&other),
            Path::default(),
            "another server's paths are apart"
        );
    }

    #[test]
    fn a_region_with_its_generations_is_named_alike_by_reads_and_writes() {
        let p = placed(&["a", "b"]);
        let full = path(vec![1, 4, 7], 9, true);
        let (read, n) = p.declare(&request(), &full, false).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            words(&read)[2..],
            [
                "5",
                "{r}@7.a.b",
                "{r}.other",
                "{r}#tree",
                "{r}@1#children",
                "{r}@4.a#children",
                "x",
                "3::=1,4,7:3:{r}a.b",
                "v"
            ]
        );
        assert_eq!(p.declare(&request(), &full, true).unwrap().0, read);
    }

    #[test]
    fn each_request_is_named_from_the_path_it_is_sent_with() {
        let p = placed(&["a", "b"]);
        let first = path(vec![1, 4, 7], 9, true);
        let (before, _) = p.declare(&request(), &first, false).unwrap();
        // Another process moved the region: the same handle names the new generations.
        let moved = path(vec![1, 5, 8], 9, true);
        let (after, _) = p.declare(&request(), &moved, false).unwrap();
        assert_eq!(
            words(&after)[3..9],
            [
                "{r}@8.a.b",
                "{r}.other",
                "{r}#tree",
                "{r}@1#children",
                "{r}@5.a#children",
                "x"
            ]
        );
        assert_eq!(words(&after)[9], "3::=1,5,8:3:{r}a.b");
        // An equal path, however it was built, names the same keys.
        let copy = Arc::new((*first).clone());
        assert_eq!(p.declare(&request(), &copy, false).unwrap().0, before);
    }

    #[test]
    fn a_found_path_is_recorded_for_the_region_and_its_ancestors() {
        let p = placed_on("found", &["a", "b"]);
        p.found(Path {
            ids: vec![1, 4, 7],
            next: 9,
            known: false,
        });
        let known = |ids: Vec<u64>, next| Path {
            ids,
            next,
            known: true,
        };
        assert_eq!(*p.path(), known(vec![1, 4, 7], 9), "a script's answer");
        let root = path_of("found", "{r}", "{r}", &[]);
        assert_eq!(**lock(&root), known(vec![1], 9));
        let a = path_of("found", "{r}.a", "{r}", &strings(&["a"]));
        assert_eq!(**lock(&a), known(vec![1, 4], 9));
        // A region below one without a generation: its ancestors have what was found.
        let q = placed_on("found-short", &["a", "b"]);
        q.found(known(vec![1], 3));
        let a = path_of("found-short", "{r}.a", "{r}", &strings(&["a"]));
        assert_eq!(**lock(&a), known(vec![1], 3));
        assert_eq!(*q.path(), known(vec![1], 3));
    }

    #[test]
    fn a_write_creates_the_generations_its_names_proposed() {
        let p = placed_on("created", &["a", "b"]);
        let missing = path(vec![1], 9, true);
        let (write, _) = p.declare(&request(), &missing, true).unwrap();
        p.created(&missing);
        let path = p.path();
        assert_eq!((path.ids.clone(), path.next), (vec![1, 10, 11], 11));
        assert!(path.known);
        let (read, _) = p.declare(&request(), &path, false).unwrap();
        assert_eq!(words(&read)[3..7], words(&write)[3..7]);
        let a = path_of("created", "{r}.a", "{r}", &strings(&["a"]));
        assert_eq!(lock(&a).ids, [1, 10]);

        let root = placed_on("created-root", &[]);
        root.created(&Arc::new(Path::default()));
        assert_eq!((root.path().ids.clone(), root.path().next), (vec![1], 1));

        // A region that has its generations creates nothing.
        let whole = placed_on("created-whole", &["a"]);
        whole.created(&Path {
            ids: vec![2, 3],
            next: 3,
            known: true,
        });
        assert_eq!(*whole.path(), Path::default());
    }

    #[test]
    fn requests_without_the_placement_are_left_alone() {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("sha").arg(1).arg("{r}#gc").arg("x");
        assert!(
            placed(&["a"])
                .declare(&cmd, &Arc::new(Path::default()), true)
                .is_none()
        );
    }

    #[test]
    fn stale_replies_carry_the_path_found() {
        let parse = |text: &str| {
            Stale::of(&redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap())
        };
        assert_eq!(
            parse("STALEPATH 1,4 9"),
            Some(Stale {
                path: Path {
                    ids: vec![1, 4],
                    next: 9,
                    known: true
                },
                create: false
            })
        );
        assert_eq!(parse("STALEPATH  0").unwrap().path.ids, Vec::<u64>::new());
        assert!(
            parse("ERR user_script:9: STALEPATH 1 3 create")
                .unwrap()
                .create
        );
        assert_eq!(parse("STALEPATH x"), None);
        assert_eq!(escaped_parts(r"a\.b.c"), [r"a\.b", "c"]);
        assert_eq!(escaped_parts(""), Vec::<String>::new());
    }
}
