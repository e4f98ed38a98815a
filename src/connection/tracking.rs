//! Server-assisted invalidation for the near cache: one tracking connection per server, read
//! by the callers waiting for their replies, or by a background thread when none is.
//!
//! # The design
//!
//! The crate opens, per Redis server (each master of a cluster, the current master under
//! Sentinel), one RESP3 connection of its own with `CLIENT TRACKING ON` in the default mode.
//! That connection does two things: it sends every read that fills the near cache, and it
//! receives the `invalidate` push messages for the keys those reads touched. The server
//! tracks keys per connection, so the state that matters lives on the one connection whose
//! death the crate sees at once (it is read all the time); pooled data
//! connections carry no tracking state, so a pooled connection that is closed, reaped or
//! killed (`CLIENT KILL TYPE normal`) loses nothing.
//!
//! Because reads and invalidations share one connection, Redis orders them: the invalidation
//! of a write is delivered before the reply of any read that ran after the write. A read whose
//! reply comes back stale can only be one that ran before the write, and its invalidation
//! follows it on the same connection. So the race that the `REDIRECT` design must guard with
//! placeholders (an invalidation overtaking the reply of the read it concerns) cannot happen
//! here; what remains is the window between reading a reply and storing its copy (other
//! threads may read invalidations meanwhile), closed with a clock:
//!
//! - every request sent on a tracking connection takes a number from one clock, and the
//!   thread that reads its first reply notes the clock's time then;
//! - an invalidation of key `k`, when read, stamps `k`'s slot in a table of stamps
//!   with a later number; a copy is used only while its reply was read after that stamp (a
//!   reply read after the invalidation ran after the write, since Redis sends them in order);
//! - a write through the crate stamps its key in a second table as soon as its reply arrives
//!   (see [`Tracking::fence`]); a copy is used only while its request was sent after that
//!   stamp (a read sent before the write's reply arrived may have run before the write), so
//!   this process reads its own writes at once;
//! - a full flush (the connection dies, a `FLUSHALL`, a slot move) stamps everything;
//! - a read that goes to the pool instead (no tracking connection yet, a redirection) stamps
//!   its key in the second table too when its reply arrives, as a write does: a copy filled
//!   meanwhile through a new tracking connection may be older than what the pool returned,
//!   its invalidation still on its way, and the next read must not go back to it.
//!
//! A copy whose read ran before a write can therefore never be served once the write is
//! known here, however late it was stored. Each table has [`BUCKETS`] slots indexed by a hash
//! of the key: two keys sharing a slot only cost each other a few refills.
//!
//! # Gaps
//!
//! Whenever the invalidation stream may have missed something, everything is dropped (one
//! stamp) and reads go to Redis until a new tracking connection is up: the connection closes
//! or breaks (server restart, `CLIENT KILL`, failover: Sentinel kills the clients of a
//! demoted master), it stays silent past [`SILENCE`] despite a `PING` every [`HEARTBEAT`],
//! the server sends a null invalidation (`FLUSHALL`, `FLUSHDB`), or a read on it is redirected
//! with `MOVED` (the slot moved; an `ASK`, for a key already migrated, only sends that read
//! to the pool). Under Sentinel the heartbeat is `ROLE`, sent every [`HEARTBEAT`], and a
//! server that is no longer the master is a gap too. The server's `tracking-table-max-keys` needs nothing
//! special: when it forgets a key it sends its invalidation.
//!
//! A new tracking connection is opened by the next near-cache read that needs one (not by a
//! background loop: an idle process opens nothing), at most once per
//! [`CONNECT_BACKOFF`](super::CONNECT_BACKOFF) after a failure.

mod wire;

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{PushKind, RedisError, Value};

use super::cluster::{ClusterTopology, slot_of};
use super::node::{NodeSettings, timeout_error};
use super::pool::Topology;
use crate::deadline::{Call, Deadline};
use crate::error::{Error, Result};
use wire::{Stream, Wire};

/// Slots in the table of invalidation stamps.
pub(crate) const BUCKETS: usize = 1 << 14;

/// How long a tracking connection may be silent before its reader sends a `PING`.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);

/// How long a tracking connection may stay silent (no invalidation, no reply, no `PONG`)
/// before it is taken for dead and the near cache is dropped: the longest a network partition
/// that leaves the socket open can keep invalidations from arriving.
pub(crate) const SILENCE: Duration = Duration::from_millis(1500);

/// How often a blocked reader wakes up to check the heartbeat (it never spins: it sleeps in
/// `read` for this long when nothing arrives).
const WAKE_EVERY: Duration = Duration::from_millis(250);

/// The client name of tracking connections, so that operators (and tests) can find them in
/// `CLIENT LIST`.
pub const TRACKING_CLIENT_NAME: &str = "redis-caches-near";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What the copies in a near cache are checked against: the clock and the stamps of one
/// connection's tracking. Shared by the tracking connections of every server of that
/// connection, and by every copy they filled.
pub(crate) struct Stamps {
    /// Distinguishes the copies of different connections in one near cache.
    pub(crate) id: u64,
    clock: AtomicU64,
    flushed_at: AtomicU64,
    /// Stamps of writes through the crate, compared with when a read was sent.
    fences: Box<[AtomicU64]>,
    /// Stamps of the servers' invalidations, compared with when a read's reply was read.
    invals: Box<[AtomicU64]>,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

impl Stamps {
    pub(crate) fn new() -> Stamps {
        Stamps {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            // Starts above every stamp, so that the first request is valid.
            clock: AtomicU64::new(1),
            flushed_at: AtomicU64::new(0),
            fences: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            invals: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// The slot of `key` in the table of stamps.
    pub(crate) fn bucket(key: &[u8]) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() as usize) & (BUCKETS - 1)
    }

    /// The next number of the clock.
    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// The clock now, without moving it: when a reply was read.
    pub(crate) fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Whether a copy of a key in `bucket`, read by a request sent at `sent` whose reply was
    /// read at `replied`, may still be used: no flush and no write through the crate since it
    /// was sent, no invalidation since its reply was read (an invalidation read before the
    /// reply concerns a write that the read already saw: Redis sends them in order).
    pub(crate) fn valid(&self, sent: u64, replied: u64, bucket: usize) -> bool {
        let (Some(fence), Some(inval)) = (self.fences.get(bucket), self.invals.get(bucket)) else {
            return false;
        };
        sent > self.flushed_at.load(Ordering::SeqCst)
            && sent > fence.load(Ordering::SeqCst)
            && replied > inval.load(Ordering::SeqCst)
    }

    /// After a write through the crate: every copy of `key` read by a request sent so far is
    /// unusable.
    pub(crate) fn stamp(&self, key: &[u8]) {
        let now = self.tick();
        if let Some(b) = self.fences.get(Self::bucket(key)) {
            b.fetch_max(now, Ordering::SeqCst);
        }
    }

    /// After an invalidation of `key`, read by the tracking connection's reader: every copy
    /// whose reply was read before it is unusable.
    fn invalidate(&self, key: &[u8]) {
        let now = self.tick();
        if let Some(b) = self.invals.get(Self::bucket(key)) {
            b.fetch_max(now, Ordering::SeqCst);
        }
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes every copy read so far unusable.
    pub(crate) fn flush(&self) {
        let now = self.tick();
        self.flushed_at.fetch_max(now, Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Keys invalidated by the servers so far.
    pub(crate) fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }

    /// Full flushes so far.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

/// How the tracking connections find their servers.
pub(crate) enum Addressing {
    Tcp {
        host: String,
        port: u16,
    },
    #[cfg(unix)]
    Unix(std::path::PathBuf),
    Cluster(Arc<ClusterTopology>),
    /// The pool's topology, which holds the sentinels.
    Sentinel(Arc<Topology>),
}

/// The replies of a read sent on a tracking connection, with the number its copies are
/// checked with.
pub(crate) struct Tracked {
    /// When the request was sent.
    pub(crate) ticket: u64,
    /// When its first reply was read.
    pub(crate) replied: u64,
    pub(crate) replies: Vec<Value>,
}

/// The tracking of one connection (pool): a tracking connection per server, opened on demand.
pub(crate) struct Tracking {
    name: String,
    addressing: Addressing,
    settings: NodeSettings,
    stamps: Arc<Stamps>,
    nodes: Mutex<HashMap<Arc<str>, Arc<NodeLink>>>,
}

/// The tracking connection to one server, when it is up, and when the last attempt failed.
struct NodeLink {
    link: Mutex<Option<Arc<Link>>>,
    /// Held while connecting: other callers read from the pool meanwhile.
    connecting: Mutex<Option<Instant>>,
}

impl Tracking {
    pub(crate) fn new(name: &str, addressing: Addressing, settings: NodeSettings) -> Tracking {
        Tracking {
            name: name.to_string(),
            addressing,
            settings,
            stamps: Arc::new(Stamps::new()),
            nodes: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn stamps(&self) -> &Arc<Stamps> {
        &self.stamps
    }

    /// Stamps `key` after a write through the crate: copies read before the write are never
    /// used again, in this process, from the moment the write's reply arrived.
    pub(crate) fn fence(&self, key: &[u8]) {
        self.stamps.stamp(key);
    }

    /// Drops every copy (a write whose effects are not known key by key, such as a memo's
    /// removal of the results a scan found, or a change of topology).
    pub(crate) fn flush(&self) {
        self.stamps.flush();
    }

    /// Closes every tracking connection (their readers drop every copy): the pool saw the
    /// master demoted (`READONLY`), so they may be reading from a replica now.
    pub(crate) fn reset(&self) {
        for node in lock(&self.nodes).values() {
            if let Some(link) = lock(&node.link).take() {
                link.close();
            }
        }
        self.stamps.flush();
    }

    /// Sends `packed` (`replies` commands about `key`) on the tracking connection of the
    /// server that serves `key`, and waits for the replies within the call's deadline.
    ///
    /// `Ok(None)` when no tracking connection can serve it now (none could be opened, it died
    /// meanwhile, the slot moved): the caller reads from the pool instead and stores nothing.
    ///
    /// # Errors
    ///
    /// A timeout when the call's deadline passes.
    pub(crate) fn read(
        &self,
        call: &mut Call,
        key: &[u8],
        packed: &[u8],
        replies: usize,
    ) -> Result<Option<Tracked>> {
        let deadline = call.deadline();
        let Some(link) = self.link_for(key, &deadline) else {
            return Ok(None);
        };
        let Ok((ticket, rx)) = link.send(&self.stamps, packed, replies) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(replies);
        let mut replied = None;
        for _ in 0..replies {
            match link.wait_reply(&rx, &deadline, key)? {
                Some((value, at)) => {
                    replied.get_or_insert(at);
                    out.push(value);
                }
                // The connection died: its copies are flushed; read from the pool.
                None => return Ok(None),
            }
        }
        if out.iter().any(|r| redirected(r, "MOVED")) {
            // The slot moved: what this server said about its keys is no longer the
            // whole story. Start again from a fresh slot map.
            if let Addressing::Cluster(topology) = &self.addressing {
                topology.mark_stale();
            }
            self.stamps.flush();
            return Ok(None);
        }
        if out.iter().any(|r| redirected(r, "ASK")) {
            // A slot being migrated, the key already gone from this server (whose deletion
            // invalidated any copy of it): read it from the pool, which follows the ASK, and
            // keep nothing. Flushing here would empty the cache at every read of a migrated
            // key while a resharding runs.
            return Ok(None);
        }
        Ok(Some(Tracked {
            ticket,
            replied: replied.unwrap_or(0),
            replies: out,
        }))
    }

    /// The live tracking connection of the server serving `key`, opening one when there is
    /// none (at most once per back-off window, and by one caller at a time).
    fn link_for(&self, key: &[u8], deadline: &Deadline) -> Option<Arc<Link>> {
        static ONE_SERVER: once_cell::sync::Lazy<Arc<str>> =
            once_cell::sync::Lazy::new(|| Arc::from(""));
        let node_key: Arc<str> = match &self.addressing {
            Addressing::Cluster(topology) => topology.owner_of(slot_of(key), deadline).ok()?,
            _ => ONE_SERVER.clone(),
        };
        let node = {
            let mut nodes = lock(&self.nodes);
            nodes
                .entry(node_key.clone())
                .or_insert_with(|| {
                    Arc::new(NodeLink {
                        link: Mutex::new(None),
                        connecting: Mutex::new(None),
                    })
                })
                .clone()
        };
        if let Some(link) = lock(&node.link).as_ref().filter(|l| l.alive()) {
            return Some(link.clone());
        }
        // One caller connects; the others read from the pool meanwhile.
        let Ok(mut last_failure) = node.connecting.try_lock() else {
            return None;
        };
        if let Some(link) = lock(&node.link).as_ref().filter(|l| l.alive()) {
            return Some(link.clone());
        }
        if last_failure.is_some_and(|at| at.elapsed() < super::CONNECT_BACKOFF) {
            return None;
        }
        let deadline = deadline.capped(self.settings.connect_timeout);
        match self.open(&node_key, &deadline) {
            Ok(link) => {
                *last_failure = None;
                *lock(&node.link) = Some(link.clone());
                Some(link)
            }
            Err(_) => {
                *last_failure = Some(Instant::now());
                None
            }
        }
    }

    /// Opens a tracking connection to the server `node` names (for a cluster; the others
    /// have one server), and starts its reader.
    fn open(&self, node: &str, deadline: &Deadline) -> io::Result<Arc<Link>> {
        let stream = match &self.addressing {
            Addressing::Tcp { host, port } => Stream::tcp(host, *port, deadline)?,
            #[cfg(unix)]
            Addressing::Unix(path) => Stream::unix(path, deadline)?,
            Addressing::Cluster(_) => {
                let (host, port) = super::cluster::split_addr(node).map_err(to_io)?;
                Stream::tcp(&host, port, deadline)?
            }
            Addressing::Sentinel(topology) => {
                let Topology::Sentinel(master) = &**topology else {
                    return Err(io::Error::other("not a sentinel topology"));
                };
                let (host, port) = master.master_addr(deadline).map_err(to_io)?;
                Stream::tcp(&host, port, deadline)?
            }
        };
        let check_role = matches!(self.addressing, Addressing::Sentinel(_));
        let mut wire = Wire {
            stream,
            parser: redis::Parser::new(),
        };
        wire.handshake(&self.settings, check_role, deadline)?;
        let writer = wire.stream.try_clone()?;
        writer.set_write_timeout(Some(self.settings.connect_timeout))?;
        let link = Arc::new(Link {
            writer: Mutex::new(Writer {
                stream: writer,
                pending: VecDeque::new(),
                dead: false,
            }),
            reader: Mutex::new(ReadHalf {
                wire,
                timeout: None,
                last_heard: Instant::now(),
                ping_sent: None,
                last_probe: Instant::now(),
            }),
            alive: AtomicBool::new(true),
            died: AtomicBool::new(false),
            stamps: self.stamps.clone(),
            check_role,
            born: Instant::now(),
            last_caller: AtomicU64::new(0),
        });
        let background = link.clone();
        std::thread::Builder::new()
            .name(format!("redis-caches-near:{}", self.name))
            .spawn(move || background.background())?;
        Ok(link)
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        self.reset();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_io(e: RedisError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Whether a reply is a cluster redirection of this kind (`MOVED` or `ASK`).
fn redirected(reply: &Value, kind: &str) -> bool {
    matches!(reply, Value::ServerError(e) if e.code() == kind)
}

/// A live tracking connection: the writing half with the replies it waits for, in order, and
/// the reading half.
///
/// The reading half is read by whoever holds its lock: a caller waiting for its reply (so
/// that a miss costs one round trip and no hand-over between threads), or the connection's
/// background thread when no caller has been reading for [`GRACE`] (so that invalidations
/// are read promptly when the process only hits). Whoever reads handles everything that
/// arrives, in order: invalidations, other callers' replies (sent to them), heartbeats.
struct Link {
    writer: Mutex<Writer>,
    reader: Mutex<ReadHalf>,
    alive: AtomicBool,
    /// Set once, by whoever saw the connection die first.
    died: AtomicBool,
    stamps: Arc<Stamps>,
    check_role: bool,
    born: Instant,
    /// When a caller last read or waited (microseconds since `born`).
    last_caller: AtomicU64,
}

/// The reading half: the socket, its parser, and the heartbeat's state.
struct ReadHalf {
    wire: Wire,
    /// The socket's read timeout now.
    timeout: Option<Duration>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    last_probe: Instant,
}

/// How long the background thread stays off the socket after a caller read it: callers that
/// miss one after another read their own replies.
const GRACE: Duration = Duration::from_millis(2);

struct Writer {
    stream: Stream,
    pending: VecDeque<Slot>,
    dead: bool,
}

/// What to do with the next reply.
enum Slot {
    /// The reply of the reader's own `PING` (or `ROLE`, which must say `master`).
    Heartbeat { role: bool },
    /// A caller's reply, sent with the clock's time when it was read.
    Caller(mpsc::Sender<(Value, u64)>),
}

impl Link {
    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Writes a request and queues the slots of its replies; returns its number and where its
    /// replies will arrive. The number is taken under the writer's lock, so numbers follow
    /// the order of the requests on the wire.
    fn send(
        &self,
        stamps: &Stamps,
        packed: &[u8],
        replies: usize,
    ) -> io::Result<(u64, mpsc::Receiver<(Value, u64)>)> {
        let mut w = lock(&self.writer);
        if w.dead {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        }
        let ticket = stamps.tick();
        let (tx, rx) = mpsc::channel();
        if let Err(e) = w.stream.write_all(packed) {
            w.dead = true;
            self.alive.store(false, Ordering::Release);
            w.stream.shutdown();
            return Err(e);
        }
        for _ in 0..replies {
            w.pending.push_back(Slot::Caller(tx.clone()));
        }
        Ok((ticket, rx))
    }

    /// Sends the heartbeat: `PING`, or `ROLE` when the server must still be the master (under
    /// Sentinel, a demoted master keeps serving reads, behind the new one).
    fn ping(&self, role: bool) -> io::Result<()> {
        let mut w = lock(&self.writer);
        if w.dead {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        }
        let cmd: &[u8] = if role {
            b"*1\r\n$4\r\nROLE\r\n"
        } else {
            b"*1\r\n$4\r\nPING\r\n"
        };
        w.stream.write_all(cmd)?;
        w.pending.push_back(Slot::Heartbeat { role });
        Ok(())
    }

    fn next_slot(&self) -> Option<Slot> {
        lock(&self.writer).pending.pop_front()
    }

    /// Marks the connection dead and wakes its reader (which then fails the callers still
    /// waiting).
    fn close(&self) {
        self.alive.store(false, Ordering::Release);
        let mut w = lock(&self.writer);
        w.dead = true;
        w.stream.shutdown();
    }

    /// The connection is dead (closed, broken, silent, demoted): the stream of invalidations
    /// has a gap from here on, so every copy goes, and every waiting caller is told. Once.
    fn die(&self) {
        self.alive.store(false, Ordering::Release);
        if self.died.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stamps.flush();
        let mut w = lock(&self.writer);
        w.dead = true;
        w.pending.clear();
        w.stream.shutdown();
    }

    fn note_caller(&self) {
        let now = u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_caller.fetch_max(now, Ordering::Relaxed);
    }

    fn caller_within(&self, d: Duration) -> bool {
        let last = Duration::from_micros(self.last_caller.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last) < d
    }

    /// The background thread: reads the connection while no caller does, until it dies.
    fn background(self: Arc<Self>) {
        while self.alive() {
            if self.caller_within(GRACE) {
                std::thread::sleep(GRACE);
                continue;
            }
            let mut half = lock(&self.reader);
            if self.pump(&mut half, WAKE_EVERY).is_err() {
                drop(half);
                self.die();
                return;
            }
        }
        self.die();
    }

    /// Reads one value (or waits up to `wait` for one) and handles it; on a wait, checks the
    /// heartbeat. An error means the connection is dead.
    fn pump(&self, half: &mut ReadHalf, wait: Duration) -> io::Result<()> {
        let wait = wait.max(Duration::from_millis(1));
        if half.timeout != Some(wait) {
            half.wire.stream.set_read_timeout(Some(wait))?;
            half.timeout = Some(wait);
        }
        let value = match half.wire.next() {
            Ok(v) => v,
            Err(e) if is_wait(&e) => {
                if !self.alive() {
                    return Err(io::Error::from(io::ErrorKind::NotConnected));
                }
                return self.idle(half);
            }
            Err(e) => return Err(e),
        };
        half.last_heard = Instant::now();
        half.ping_sent = None;
        match value {
            Value::Push { kind, data } => self.push(kind, data),
            reply => match self.next_slot() {
                Some(Slot::Caller(tx)) => {
                    // A caller that gave up has dropped its receiver: nothing to do.
                    let _ = tx.send((reply, self.stamps.now()));
                }
                Some(Slot::Heartbeat { role: false }) => {}
                Some(Slot::Heartbeat { role: true }) => {
                    let master = matches!(&reply, Value::Array(r)
                        if matches!(r.first(), Some(Value::BulkString(b)) if b == b"master"));
                    if !master {
                        return Err(io::Error::other("the server is no longer the master"));
                    }
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a reply nobody asked for",
                    ));
                }
            },
        }
        if self.check_role {
            self.probe(half)?;
        }
        Ok(())
    }

    /// Nothing arrived for a while: check the heartbeat.
    fn idle(&self, half: &mut ReadHalf) -> io::Result<()> {
        if half.last_heard.elapsed() >= SILENCE {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the tracking connection went silent",
            ));
        }
        self.probe(half)
    }

    /// Sends the heartbeat when the connection has been silent for [`HEARTBEAT`], and under
    /// Sentinel every [`HEARTBEAT`] however busy it is (the role check).
    fn probe(&self, half: &mut ReadHalf) -> io::Result<()> {
        let due = half.last_heard.elapsed() >= HEARTBEAT
            || (self.check_role && half.last_probe.elapsed() >= HEARTBEAT);
        if half.ping_sent.is_none() && due {
            self.ping(self.check_role)?;
            half.ping_sent = Some(Instant::now());
            half.last_probe = Instant::now();
        }
        Ok(())
    }

    fn push(&self, kind: PushKind, data: Vec<Value>) {
        if kind != PushKind::Invalidate {
            return;
        }
        match data.into_iter().next() {
            Some(Value::Array(keys)) => {
                for key in keys {
                    if let Value::BulkString(k) = key {
                        self.stamps.invalidate(&k);
                    } else {
                        self.stamps.flush();
                    }
                }
            }
            // A null invalidation: FLUSHALL or FLUSHDB.
            _ => self.stamps.flush(),
        }
    }

    /// Waits for one reply of a caller's request, reading the connection itself when no one
    /// else does. `Ok(None)` when the connection died; a timeout error at the deadline.
    fn wait_reply(
        &self,
        rx: &mpsc::Receiver<(Value, u64)>,
        deadline: &Deadline,
        key: &[u8],
    ) -> Result<Option<(Value, u64)>> {
        let timeout = || Error::redis(String::from_utf8_lossy(key).into_owned(), timeout_error());
        loop {
            self.note_caller();
            match rx.try_recv() {
                Ok(reply) => return Ok(Some(reply)),
                Err(mpsc::TryRecvError::Disconnected) => return Ok(None),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let left = match deadline.remaining() {
                Some(left) if left.is_zero() => return Err(timeout()),
                Some(left) => left,
                None => WAKE_EVERY,
            };
            let half = match self.reader.try_lock() {
                Ok(half) => Some(half),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            match half {
                Some(mut half) => {
                    if self.pump(&mut half, left.min(WAKE_EVERY)).is_err() {
                        drop(half);
                        self.die();
                        return Ok(None);
                    }
                }
                // Someone else reads: our reply comes through the channel (waking up now and
                // then, in case they stop reading before it arrives).
                None => match rx.recv_timeout(left.min(Duration::from_millis(1))) {
                    Ok(reply) => return Ok(Some(reply)),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                },
            }
        }
    }
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_copy_is_valid_until_its_key_or_everything_is_stamped() {
        let s = Stamps::new();
        let b = Stamps::bucket(b"k");
        let sent = s.tick();
        let replied = s.now();
        assert!(s.valid(sent, replied, b));
        s.stamp(b"k");
        assert!(
            !s.valid(sent, replied, b),
            "sent before a write through the crate"
        );
        let sent = s.tick();
        assert!(s.valid(sent, s.now(), b), "sent after it");
        // Sent before an invalidation, but its reply read after it: it saw the write.
        let sent = s.tick();
        s.invalidate(b"k");
        assert!(s.valid(sent, s.now(), b));
        let replied = s.now();
        s.invalidate(b"k");
        assert!(
            !s.valid(sent, replied, b),
            "reply read before the invalidation"
        );
        s.flush();
        assert!(!s.valid(sent, s.now(), b));
        assert!(s.valid(s.tick(), s.now(), b));
        assert_eq!(s.flushes(), 1);
        assert_eq!(s.invalidations(), 2);
    }

    /// A reader that hands out chunks, timing out where a chunk is `None`.
    struct Chunks(VecDeque<Option<&'static [u8]>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(Some(chunk)) => {
                    buf[..chunk.len()].copy_from_slice(chunk);
                    Ok(chunk.len())
                }
                Some(None) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
                None => Ok(0),
            }
        }
    }

    #[test]
    fn a_read_that_times_out_mid_value_loses_nothing() {
        // The reader wakes up every WAKE_EVERY; a value split across a timeout must still
        // parse whole, and the next one after it.
        let mut chunks = Chunks(VecDeque::from([
            Some(&b"$5\r\nhel"[..]),
            None,
            Some(&b"lo\r\n>2\r\n$10\r\ninvali"[..]),
            None,
            None,
            Some(&b"date\r\n*1\r\n$1\r\nk\r\n"[..]),
        ]));
        let mut parser = redis::Parser::new();
        let mut values = Vec::new();
        let mut timeouts = 0;
        for _ in 0..10 {
            match parser.parse_value(&mut chunks) {
                Ok(v) => values.push(v),
                Err(e) if e.is_timeout() || e.kind() == redis::ErrorKind::Io => timeouts += 1,
                Err(e) => panic!("{e}"),
            }
            if values.len() == 2 {
                break;
            }
        }
        assert_eq!(timeouts, 3);
        assert_eq!(values[0], Value::BulkString(b"hello".to_vec()));
        assert!(
            matches!(&values[1], Value::Push { kind: PushKind::Invalidate, data }
                if data == &vec![Value::Array(vec![Value::BulkString(b"k".to_vec())])]),
            "{:?}",
            values[1]
        );
    }

    #[test]
    fn out_of_range_buckets_are_never_valid() {
        let s = Stamps::new();
        assert!(!s.valid(s.tick(), s.now(), BUCKETS));
    }
}
