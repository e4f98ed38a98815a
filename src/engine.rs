//! The engine: the one place where a handle's operation becomes a request to Redis and its
//! reply becomes a value or a typed error.
//!
//! Every collection handle, [`Region`](crate::Region) and [`Memo`](crate::Memo) goes through
//! it. Data flows one way: a handle builds the key once ([`Engine::resolved`]), encodes its
//! values with its codec, asks the engine to send one command or one script, and the engine
//!
//! 1. takes a pooled connection ([`Connection::request`], which also routes on a cluster,
//!    applies one deadline to the whole call and resends only what Redis certainly did not
//!    run, or what is idempotent);
//! 2. turns a write's extras into data for the script that runs it: the TTL policy (one
//!    `PEXPIRE` rule for every type, see [`script`]) and, for a handle whose key is found at
//!    run time (a region's hash, see [`Placed`]), where to find it: the keys the script
//!    declares and checks;
//! 3. maps server errors to the same typed errors for every type: `WRONGTYPE` to
//!    [`Error::WrongType`] (naming the type found), `CROSSSLOT` to [`Error::CrossSlot`],
//!    `NOPERM` to [`Error::Permission`], `NOSCRIPT` to one retry with the script's text, and
//!    everything else to [`Error::Redis`] with its kind intact (`OOM`, `READONLY`, ...).
//!
//! The engine knows no collection: what differs between them (commands, scripts, codecs,
//! placement) reaches it as data.

mod pages;
pub(crate) mod path;
pub(crate) mod script;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::OnceCell;
use redis::{FromRedisValue, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, TypeTag};
use crate::connection::tracking::{Tracked, Tracking};
use crate::connection::{Connection, Retry, ServerInfo};
use crate::deadline::Call;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::layout::{Layout, Slot};
use crate::near::{Buckets, Bytes, Entry, NearCache, Point, Scope, normalize};
use crate::options::{Options, Ttl, TtlPolicy, ttl_millis};

pub(crate) use pages::{Pages, scan_page, scan_page_of};
pub(crate) use script::Script;

/// How many times one call sends a placed request again after its script found other
/// generations than the request named (each time, another process changed the tree between
/// the two: a retry is refused only when that keeps happening).
const MAX_STALE_REPLIES: u32 = 64;

/// Where a handle's data lives when its key is not simply its [`Key`] rendered: a region's
/// hash, whose key is found at run time in its tree. Computed from the connection's key prefix
/// and a name of the connection's server (which keeps apart what the process learns about
/// keys of the same names on different servers; empty when there is no connection yet) when
/// the handle resolves its connection.
pub(crate) type PlacementFn = dyn Fn(&str, &str) -> Result<Placement> + Send + Sync;

/// The key a handle is known by, and how its scripts find the key its data is at.
pub(crate) struct Placement {
    /// Routes the handle's requests and is named in its errors and `Debug`.
    pub(crate) key: String,
    /// How scripts find the data's real key; `None`: the data is at `key`.
    pub(crate) placed: Option<Placed>,
}

/// A handle whose data lives at a key that only the server can tell, at the moment a script
/// runs (a region's hash, whose name carries the current generation of the region and of
/// every level above it: see the region module's "Key layout"). Requests name the handle's
/// keys with `placeholder` in place of the handle's key (followed by the same suffix) and
/// pass `place` as an argument; the engine renames those keys from the generations the
/// handle last found ([`path`]), declares the tree's keys the script checks them against,
/// and replaces `place` with what the scripts' prelude (`_place`, `_at`, see [`script`])
/// checks. A script that finds other generations changes nothing and says which it found;
/// the engine then sends the request again.
#[derive(Clone, Debug)]
pub(crate) struct Placed {
    /// Named in requests in place of the handle's key, followed by the same suffix.
    pub(crate) placeholder: String,
    /// The script argument that says where the real key is (`<length of base>:<base><name>`).
    pub(crate) place: String,
    /// The tree's base key (`P{root}`).
    pub(crate) base: String,
    /// The escaped name parts below the root: the fields of the tree's maps.
    pub(crate) parts: Vec<String>,
    /// The generations last found, shared by the region's handles on this server.
    pub(crate) path: path::PathCell,
    /// Names the server in the process's record of paths.
    pub(crate) server: String,
    /// The names last computed from a path (see [`Placed::declare`]).
    pub(crate) names: path::NamesCell,
}

/// What every handle holds: its key, options and, after the first operation, its resolved
/// connection and rendered key. Shared behind an `Arc`, so handles clone cheaply. Public only
/// because the sealed [`Collection`](crate::Collection) trait names it.
#[doc(hidden)]
pub struct Engine<C> {
    pub(crate) key: Key,
    pub(crate) options: Options<C>,
    /// The Redis type kept under the key (`string`, `hash`, ...).
    pub(crate) redis_type: &'static str,
    placement: Option<Arc<PlacementFn>>,
    resolved: OnceCell<Resolved>,
}

/// The connection and keys of a handle, resolved at its first operation.
pub(crate) struct Resolved {
    pub(crate) connection: Connection,
    pub(crate) key: String,
    /// For a handle whose key is found at run time (a region's hash).
    pub(crate) placed: Option<Placed>,
}

impl Resolved {
    /// The key a request names for `key` (the handle's key, or its key followed by a suffix):
    /// for a placed handle, the placeholder with the same suffix.
    pub(crate) fn named<'k>(&self, key: &'k str) -> Cow<'k, str> {
        match (&self.placed, key.strip_prefix(self.key.as_str())) {
            (Some(placed), Some(suffix)) => {
                let mut named = String::with_capacity(placed.placeholder.len() + suffix.len());
                named.push_str(&placed.placeholder);
                named.push_str(suffix);
                Cow::Owned(named)
            }
            _ => Cow::Borrowed(key),
        }
    }

    /// The placement argument of the scripts that take one: empty for a handle that is not
    /// placed.
    pub(crate) fn place(&self) -> &str {
        self.placed.as_ref().map_or("", |p| p.place.as_str())
    }
}

impl<C: Codec> Engine<C> {
    pub(crate) fn new(
        key: Key,
        options: Options<C>,
        redis_type: &'static str,
        placement: Option<Arc<PlacementFn>>,
    ) -> Engine<C> {
        Engine {
            key,
            options,
            redis_type,
            placement,
            resolved: OnceCell::new(),
        }
    }

    /// The same engine with its data placed by `placement` (a region's hash).
    pub(crate) fn with_placement(mut self, placement: Arc<PlacementFn>) -> Engine<C> {
        self.placement = Some(placement);
        self
    }

    /// The connection and full key, resolved once; the options are checked first, so that a
    /// handle with invalid options sends nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an option out of range or a connection that cannot be resolved,
    /// [`Error::InvalidKey`].
    pub(crate) fn resolved(&self) -> Result<&Resolved> {
        self.resolved.get_or_try_init(|| {
            self.options.check(&self.key)?;
            let connection = self.options.connection.resolve()?;
            let (key, placed) = match &self.placement {
                Some(_) if self.options.layout != Layout::Native => {
                    let name: Vec<String> =
                        self.key.parts().iter().map(|p| p.to_string()).collect();
                    return Err(Error::config(
                        format!("the region {:?}", name.join(".")),
                        "compatibility layouts apply to collections, not to regions \
                         (read region-cache's regions with a DictCache and \
                         Layout::PythonRegionCache)",
                    ));
                }
                Some(place) => {
                    let server = format!("{}\n{}", connection.name(), connection.dsn());
                    let placement = place(connection.prefix(), &server)?;
                    (placement.key, placement.placed)
                }
                None => (
                    self.options.render_key(&self.key, connection.prefix())?,
                    None,
                ),
            };
            Ok(Resolved {
                connection,
                key,
                placed,
            })
        })
    }

    /// A short description for `Debug`: the key and connection, never a value, no I/O.
    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>, type_name: &str) -> fmt::Result {
        let shown = self
            .resolved
            .get()
            .map(|r| r.key.clone())
            .or_else(|| match &self.placement {
                Some(place) => place("", "").ok().map(|p| p.key),
                None => self.options.render_key(&self.key, "").ok(),
            })
            .unwrap_or_else(|| "<invalid key>".to_string());
        f.debug_struct(type_name)
            .field("key", &shown)
            .field("connection", &self.options.connection.name())
            .finish()
    }

    /// Encodes `value` as a value of the type `tag` describes, checking the size limit.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
        key: &str,
    ) -> Result<Vec<u8>> {
        self.encode_in(Slot::Value, tag, value, key)
    }

    /// Encodes `value` for `slot` (a value, a hash field or a set member) as the layout says
    /// ([`Layout::encode`]), checking the size limit. Every value, field and member goes
    /// through here.
    pub(crate) fn encode_in<T: Serialize + ?Sized>(
        &self,
        slot: Slot,
        tag: &TypeTag,
        value: &T,
        key: &str,
    ) -> Result<Vec<u8>> {
        let bytes = self
            .options
            .layout
            .encode(&self.options.codec, slot, value, &self.versioned(tag))
            .map_err(|source| Error::Encode {
                key: key.to_string(),
                source,
            })?;
        self.check_size(bytes.len(), key)?;
        Ok(bytes)
    }

    /// [`Error::ValueTooLarge`] for `size` bytes over the limit.
    pub(crate) fn check_size(&self, size: usize, key: &str) -> Result<()> {
        if size > self.options.max_value_size {
            return Err(Error::ValueTooLarge {
                key: key.to_string(),
                size,
                limit: self.options.max_value_size,
            });
        }
        Ok(())
    }

    /// The full key, for error messages; empty when it cannot be rendered (the error that
    /// stopped rendering it is reported by the operation that needed it).
    pub(crate) fn key_for_errors(&self) -> String {
        self.resolved().map(|r| r.key.clone()).unwrap_or_default()
    }

    /// Encodes an item (a value, member, field...) of the collection at this key, naming the
    /// key in errors.
    pub(crate) fn encode_item<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
    ) -> Result<Vec<u8>> {
        let key = &self.resolved()?.key;
        self.encode(tag, value, key)
    }

    /// Decodes bytes read from `what` (a key, or `key["field"]`).
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.decode_in(Slot::Value, tag, bytes, what)
    }

    /// Decodes bytes written for `slot` as the layout says ([`Layout::decode`]), read from
    /// `what`. Every value, field and member read goes through here.
    pub(crate) fn decode_in<T: DeserializeOwned>(
        &self,
        slot: Slot,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.options
            .layout
            .decode(&self.options.codec, slot, bytes, &self.versioned(tag))
            .map_err(|source| Error::Decode {
                key: what(),
                source,
            })
    }

    /// `tag` with the handle's schema version, if it has one (a tag that already carries it,
    /// as a collection's cached tags do, is returned as is: no hashing per operation).
    pub(crate) fn versioned(&self, tag: &TypeTag) -> TypeTag {
        match self.options.schema_version {
            Some(v) if tag.schema_version() != Some(v) => tag.with_schema_version(v),
            _ => *tag,
        }
    }

    /// Decodes a stored value as [`decode`](Engine::decode) does, a value of another shape
    /// being `None` under [`OtherShape::Miss`](crate::OtherShape::Miss).
    pub(crate) fn decode_or_miss<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Option<T>> {
        match self.decode(tag, bytes, what) {
            Err(e) if e.is_stale_decode() && self.misses_other_shapes() => Ok(None),
            decoded => decoded.map(Some),
        }
    }

    /// Whether reads take values of another shape as missing.
    pub(crate) fn misses_other_shapes(&self) -> bool {
        self.options.other_shape == crate::options::OtherShape::Miss
    }

    /// The handle's schema version, for the tags a collection caches.
    pub(crate) fn schema_version(&self) -> Option<u32> {
        self.options.schema_version
    }

    /// Encodes a hash field of the type `tag` describes, by the layout's field rule (for the
    /// native layout [`Codec::encode_field`]: plain text for strings and integers), checking
    /// the size limit and naming the key in errors.
    pub(crate) fn encode_field<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
    ) -> Result<Vec<u8>> {
        self.encode_field_at(tag, value, &self.resolved()?.key)
    }

    /// As [`encode_field`](Engine::encode_field), naming `key` in errors.
    pub(crate) fn encode_field_at<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
        key: &str,
    ) -> Result<Vec<u8>> {
        self.encode_in(Slot::Field, tag, value, key)
    }

    /// Encodes a set or sorted-set member, as [`encode_field`](Engine::encode_field) does a
    /// hash field (the layout may encode them differently).
    pub(crate) fn encode_member<T: Serialize + ?Sized>(
        &self,
        tag: &TypeTag,
        value: &T,
    ) -> Result<Vec<u8>> {
        self.encode_in(Slot::Member, tag, value, &self.resolved()?.key)
    }

    /// Decodes a hash field read from `what` (the layout's field rule, by default
    /// [`Codec::decode_field`]).
    pub(crate) fn decode_field<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.decode_in(Slot::Field, tag, bytes, what)
    }

    /// Decodes a set or sorted-set member read from `what`.
    pub(crate) fn decode_member<T: DeserializeOwned>(
        &self,
        tag: &TypeTag,
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.decode_in(Slot::Member, tag, bytes, what)
    }

    /// Whether writes carry a TTL or a placement, and so go through a script.
    pub(crate) fn has_extras(&self) -> Result<bool> {
        Ok(self.options.ttl.is_some() || self.resolved()?.placed.is_some())
    }

    /// The TTL policy as script data: `ARGV[1..=3]` of every write script (type, TTL in
    /// milliseconds or empty, `keep` or empty). See [`script`].
    pub(crate) fn ttl_args(&self, cmd: &mut redis::Cmd) {
        cmd.arg(self.redis_type);
        match self.options.ttl {
            Some(ttl) => cmd.arg(ttl_millis(ttl)),
            None => cmd.arg(""),
        };
        cmd.arg(match self.options.ttl_policy {
            TtlPolicy::Keep => "keep",
            _ => "",
        });
    }

    /// A fresh call, with the connection's `timeout` as its budget.
    pub(crate) fn call(&self) -> Result<Call> {
        Ok(Call::new(self.resolved()?.connection.dsn().timeout()))
    }

    /// Sends one command and converts its reply. One round trip, its own deadline.
    pub(crate) fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd, retry: Retry) -> Result<T> {
        let mut call = self.call()?;
        self.query_in(&mut call, cmd, retry)
    }

    /// Sends one command about the handle's own key (its first argument: the key, or the key
    /// followed by a suffix) as part of `call` (sharing its deadline) and converts its reply.
    /// For a placed handle the command runs on the key of the region's generation: a read
    /// pipelined after the path's checks ([`read_placed_plain`](Engine::read_placed_plain)),
    /// or inside the [`PROXY`](script::PROXY) script: still one request, one round trip.
    pub(crate) fn query_in<T: FromRedisValue>(
        &self,
        call: &mut Call,
        cmd: &redis::Cmd,
        retry: Retry,
    ) -> Result<T> {
        let resolved = self.resolved()?;
        if resolved.placed.is_none() {
            return self.query_at(call, &resolved.key, cmd, retry);
        }
        let reply = self.send_placed(call, cmd, retry)?;
        self.reply_at(call, &resolved.key, reply)
    }

    /// Sends `cmd` (about the handle's own key) of a placed handle, as a read with plain
    /// commands when it can be, else through the [`PROXY`](script::PROXY) script, and returns
    /// its raw reply.
    fn send_placed(&self, call: &mut Call, cmd: &redis::Cmd, retry: Retry) -> Result<Value> {
        let resolved = self.resolved()?;
        let args = || {
            cmd.args_iter().filter_map(|a| match a {
                redis::Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
        };
        let mut head = args();
        let (Some(name), Some(key)) = (head.next(), head.next()) else {
            return Err(Error::config(
                resolved.key.clone(),
                "a command without a key cannot be placed",
            ));
        };
        if let Some(reply) = self.read_placed_plain(call, cmd, retry)? {
            return Ok(reply);
        }
        let key = String::from_utf8_lossy(key);
        let named = resolved.named(&key);
        self.eval_raw(
            call,
            &resolved.key,
            &script::PROXY,
            1,
            |c| {
                c.arg(named.as_ref()).arg(resolved.place()).arg(name);
                for a in args().skip(2) {
                    c.arg(a);
                }
            },
            retry,
        )
    }

    /// A read of a placed handle's data with plain commands instead of the
    /// [`PROXY`](script::PROXY) script, when its handle knows every generation down to the
    /// region: `HGET` of the root's generation in the tree's hash and of each level's in its
    /// parent's map, then the read on the region's hash named from them, pipelined (one round
    /// trip; for the server less work than the script). The reply is the read's when every
    /// generation is the one the names came from; `None` otherwise (another process
    /// invalidated or created something, an error or a redirection among the replies), and
    /// the script decides, which also records the path found.
    ///
    /// The read is not atomic with the checks, and needs not be: the generations were the
    /// region's when they were read, so the read took effect then, or after an invalidation
    /// in between made the hash unreachable (its data reads as it was, or as reclaimed:
    /// missing); nobody writes a generation that is no longer reachable (every write checks
    /// its path inside its script). Only single-key reads of the hash ([`PLAIN_READS`]).
    fn read_placed_plain(
        &self,
        call: &mut Call,
        cmd: &redis::Cmd,
        retry: Retry,
    ) -> Result<Option<Value>> {
        let resolved = self.resolved()?;
        let Some(placed) = &resolved.placed else {
            return Ok(None);
        };
        let mut args = cmd.args_iter().filter_map(|a| match a {
            redis::Arg::Simple(bytes) => Some(bytes),
            _ => None,
        });
        let (Some(name), Some(key)) = (args.next(), args.next()) else {
            return Ok(None);
        };
        if !PLAIN_READS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Ok(None);
        }
        let Some(suffix) = key.strip_prefix(resolved.key.as_bytes()) else {
            return Ok(None);
        };
        let path = placed.path();
        let Some(names) = placed.plain_names(&path) else {
            return Ok(None);
        };
        // Packed directly (see `path::pack`): through `redis::Pipeline` packing cost more
        // than the rest of the call.
        let path_keys = names.path_keys();
        let mut packed = path::pack(&[b"HGET", path_keys[0].as_bytes(), b"root"]);
        for (map, part) in path_keys[1..].iter().zip(&placed.parts) {
            packed.extend(path::pack(&[b"HGET", map.as_bytes(), part.as_bytes()]));
        }
        let key = [names.hash(), suffix].concat();
        let mut read: Vec<&[u8]> = vec![name, &key];
        read.extend(args);
        packed.extend(path::pack(&read));
        let mut replies = resolved.connection.request_many(
            call,
            resolved.key.as_bytes(),
            &packed,
            path_keys.len() + 1,
            retry,
        )?;
        let Some(reply) = replies.pop() else {
            return Ok(None);
        };
        let same = replies.len() == path.ids.len()
            && replies.iter().zip(&path.ids).all(|(found, id)| {
                matches!(found, Value::BulkString(b) if std::str::from_utf8(b).ok()
                    .and_then(|s| s.parse::<u64>().ok()) == Some(*id))
            });
        Ok((same && !matches!(reply, Value::ServerError(_))).then_some(reply))
    }

    /// Sends one command about `key` (routed by it, named in errors): a key of this handle
    /// other than its own, in the same hash slot (a memo's value or lock key).
    pub(crate) fn query_at<T: FromRedisValue>(
        &self,
        call: &mut Call,
        key: &str,
        cmd: &redis::Cmd,
        retry: Retry,
    ) -> Result<T> {
        let resolved = self.resolved()?;
        let reply =
            resolved
                .connection
                .request(call, key.as_bytes(), &cmd.get_packed_command(), retry);
        if !is_read(cmd) {
            fence(resolved, key);
        }
        self.reply_at(call, key, reply?)
    }

    /// Sends `pipe`, commands on keys of this handle in `key`'s hash slot (a memo's value and
    /// statistics), as one request in `call`: one round trip. The replies come back as
    /// they are, error replies included, for the caller to classify (or to send what they
    /// name again another way); the connection fails as [`query_at`](Engine::query_at)'s
    /// does. Like any command that is not a read, it fences `key` in the near cache.
    pub(crate) fn pipeline_at(
        &self,
        call: &mut Call,
        key: &str,
        pipe: &redis::Pipeline,
        retry: Retry,
    ) -> Result<Vec<Value>> {
        let resolved = self.resolved()?;
        let replies = resolved.connection.request_many(
            call,
            key.as_bytes(),
            &pipe.get_packed_pipeline(),
            pipe.len(),
            retry,
        );
        fence(resolved, key);
        replies
    }

    /// Whether this handle reads through a near cache (its own, or its connection's).
    pub(crate) fn has_near_cache(&self) -> Result<bool> {
        Ok(self.near_cache(self.resolved()?).is_some())
    }

    /// Sends one command whose form depends on the server's version: `build` makes it for
    /// the server that runs it (known from the connection's handshake: no extra round trip).
    pub(crate) fn query_for<T: FromRedisValue>(
        &self,
        build: impl Fn(&ServerInfo) -> redis::Cmd,
        retry: Retry,
    ) -> Result<T> {
        let mut call = self.call()?;
        let resolved = self.resolved()?;
        let reply = resolved.connection.request_for(
            &mut call,
            resolved.key.as_bytes(),
            &|server| build(server).get_packed_command(),
            retry,
        );
        fence(resolved, &resolved.key);
        self.reply_at(&mut call, &resolved.key, reply?)
    }

    /// Runs `script` (`EVALSHA`; `EVAL` once if the server does not know it) with the keys
    /// and arguments `fill` adds after `numkeys`, routed by the collection's key. One round
    /// trip, two the first time a server sees the script.
    pub(crate) fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        numkeys: usize,
        fill: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<T> {
        let mut call = self.call()?;
        self.eval_in(&mut call, script, numkeys, fill, retry)
    }

    /// [`eval`](Engine::eval) as part of `call`.
    pub(crate) fn eval_in<T: FromRedisValue>(
        &self,
        call: &mut Call,
        script: &Script,
        numkeys: usize,
        fill: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<T> {
        let key = &self.resolved()?.key;
        self.eval_at(call, key, script, numkeys, fill, retry)
    }

    /// [`eval`](Engine::eval) routed by `key` (which the script's keys share a slot with),
    /// naming it in errors.
    pub(crate) fn eval_at<T: FromRedisValue>(
        &self,
        call: &mut Call,
        key: &str,
        script: &Script,
        numkeys: usize,
        fill: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<T> {
        let reply = self.eval_raw(call, key, script, numkeys, fill, retry)?;
        self.reply_at(call, key, reply)
    }

    /// [`eval_at`](Engine::eval_at) without converting the reply. For a placed handle, the
    /// request declares the keys of the path its handle last found ([`Placed::declare`]);
    /// when the script finds another path it changes nothing and says so, and the request is
    /// sent again with the path found (see [`path`]), within the call's deadline.
    fn eval_raw(
        &self,
        call: &mut Call,
        key: &str,
        script: &Script,
        numkeys: usize,
        fill: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<Value> {
        let resolved = self.resolved()?;
        let route = key.as_bytes();
        let mut write = script.creates();
        let mut stale_replies = 0;
        loop {
            let path = resolved.placed.as_ref().map(Placed::path);
            let build = |head: &str, body: &str| {
                let mut cmd = redis::cmd(head);
                cmd.arg(body).arg(numkeys);
                fill(&mut cmd);
                let declared = match (&resolved.placed, &path) {
                    (Some(placed), Some(path)) => placed.declare(&cmd, path, write),
                    _ => None,
                };
                match declared {
                    Some((packed, _)) => (packed, cmd, true),
                    None => (cmd.get_packed_command(), cmd, false),
                }
            };
            let (packed, cmd, declared) = build("EVALSHA", script.sha());
            let reply = resolved.connection.request(call, route, &packed, retry);
            // Scripts may write any key they declare (a set algebra's destination, a memo's
            // value, a region's hash or the maps of its tree): copies read before now that
            // depend on them are not used again. Not after a read through the proxy (a
            // region's `len`, `keys`, a read without a near cache): it would drop the copies
            // of every region of the tree, whose hash every request declares.
            let proxy = std::ptr::eq(script, &*script::PROXY);
            let fence = |cmd: &redis::Cmd| match (&resolved.placed, &path, declared) {
                _ if proxy && proxies_read(cmd, numkeys) => {}
                // It neither writes nor reads the handle's data (a lookup of the region's
                // key): only the generations it may create change what copies depend on.
                (Some(placed), Some(path), true) if !script.writes_data() => {
                    if placed.creates_on(path, write) {
                        fence_declared(resolved, placed, cmd, path, write, true)
                    }
                }
                (Some(placed), Some(path), true)
                    if script.unlinks() && !placed.creates_on(path, write) =>
                {
                    // An invalidation writes its own keys (the queue) and the entry that names
                    // the region: the last of the path's keys (the tree's hash for the root).
                    if let Some(tracking) = resolved.connection.tracking_started() {
                        let keys = placed
                            .declared_keys(cmd, path, write, true)
                            .unwrap_or_default();
                        for key in keys.iter().take(numkeys).chain(keys.last()) {
                            tracking.fence(key);
                        }
                    }
                }
                (Some(placed), Some(path), true) => {
                    let with_path = placed.creates_on(path, write);
                    fence_declared(resolved, placed, cmd, path, write, with_path)
                }
                _ => fence_script_keys(resolved, cmd, numkeys),
            };
            fence(&cmd);
            let reply = match reply? {
                Value::ServerError(e) if e.code() == "NOSCRIPT" => {
                    // Nothing ran: send the text, which the server also keeps for next time.
                    let (packed, cmd, _) = build("EVAL", script.text());
                    let reply = resolved.connection.request(call, route, &packed, retry);
                    fence(&cmd);
                    reply?
                }
                reply => reply,
            };
            let (Some(placed), Some(path), true) = (&resolved.placed, &path, declared) else {
                return Ok(reply);
            };
            let Some(stale) = path::Stale::of(&reply) else {
                if write && !matches!(reply, Value::ServerError(_)) {
                    placed.created(path);
                }
                return Ok(reply);
            };
            // Nothing ran: the script found other generations than the request named. Copies
            // read on the old path (its generations are gone, or moved) are not used again:
            // a write that follows names the new hash only.
            fence_declared(resolved, placed, &cmd, path, write, true);
            placed.found(stale.path);
            write |= stale.create;
            stale_replies += 1;
            if stale_replies >= MAX_STALE_REPLIES || call.deadline().expired() {
                return Err(Error::redis(
                    key,
                    redis::make_extension_error(
                        "TRYAGAIN".to_string(),
                        Some("the region tree kept changing while its keys were looked up".into()),
                    ),
                ));
            }
        }
    }

    /// One write command on the collection's key, with its extras: alone when the collection
    /// has neither a TTL nor a placement (Redis itself refuses it on a key of another type),
    /// else in the [`WRITE`](script::WRITE) script with its type guard, placement and TTL
    /// policy. One round trip.
    pub(crate) fn write<T: FromRedisValue>(
        &self,
        call: &mut Call,
        command: &str,
        args: impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<T> {
        let resolved = self.resolved()?;
        if !self.has_extras()? {
            let mut cmd = redis::cmd(command);
            cmd.arg(&resolved.key);
            args(&mut cmd);
            return self.query_in(call, &cmd, retry);
        }
        if command == "HSET"
            && let Some(reply) = self.set_placed(call, &args, retry)?
        {
            return self.reply_at(call, &resolved.key, reply);
        }
        let named = resolved.named(&resolved.key);
        self.eval_in(
            call,
            &script::WRITE,
            1,
            |cmd| {
                cmd.arg(named.as_ref());
                self.ttl_args(cmd);
                cmd.arg(resolved.place());
                cmd.arg(command);
                args(cmd);
            },
            retry,
        )
    }

    /// `HSET` of one field of a placed handle whose every generation it knows (a region's
    /// `set` in the steady state), through [`SET_PLACED`](script::SET_PLACED): the general
    /// write script's work without its arguments and branches, one round trip. `None` when
    /// it does not apply (not placed, not one pair, a generation missing) or when the
    /// script found another path (it changed nothing): the caller sends the general script,
    /// which finds the path (one round trip more, only after another process changed it).
    fn set_placed(
        &self,
        call: &mut Call,
        args: &impl Fn(&mut redis::Cmd),
        retry: Retry,
    ) -> Result<Option<Value>> {
        let resolved = self.resolved()?;
        let Some(placed) = &resolved.placed else {
            return Ok(None);
        };
        let path = placed.path();
        let Some(names) = placed.plain_names(&path) else {
            return Ok(None);
        };
        let mut pair = redis::cmd("HSET");
        args(&mut pair);
        let pair: Vec<&[u8]> = pair
            .args_iter()
            .skip(1)
            .filter_map(|a| match a {
                redis::Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        let [field, value] = pair[..] else {
            return Ok(None);
        };
        let ids = path
            .ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ms = self.options.ttl.map(|t| ttl_millis(t).to_string());
        let policy: &[u8] = match self.options.ttl_policy {
            TtlPolicy::Keep => b"keep",
            _ => b"",
        };
        // Packed in Redis' protocol directly, into one buffer sized beforehand: through
        // `redis::Cmd` its dozen arguments cost more instructions than the rest of the call.
        let build = |head: &[u8], body: &[u8]| {
            let path_keys = names.path_keys();
            let numkeys = (path_keys.len() + 1).to_string();
            let mut args: Vec<&[u8]> =
                Vec::with_capacity(path_keys.len() + placed.parts.len() + 10);
            args.extend([head, body, numkeys.as_bytes(), names.hash()]);
            args.extend(path_keys.iter().map(|k| k.as_bytes()));
            args.push(ids.as_bytes());
            args.extend(placed.parts.iter().map(|p| p.as_bytes()));
            args.extend([field, value, ms.as_deref().unwrap_or("").as_bytes(), policy]);
            path::pack(&args)
        };
        let script = &*script::SET_PLACED;
        let route = resolved.key.as_bytes();
        let fence = || {
            if let Some(tracking) = resolved.connection.tracking_started() {
                tracking.fence(names.hash());
            }
        };
        let reply = resolved.connection.request(
            call,
            route,
            &build(b"EVALSHA", script.sha().as_bytes()),
            retry,
        );
        fence();
        let reply = match reply? {
            Value::ServerError(e) if e.code() == "NOSCRIPT" => {
                let reply = resolved.connection.request(
                    call,
                    route,
                    &build(b"EVAL", script.text().as_bytes()),
                    retry,
                );
                fence();
                reply?
            }
            reply => reply,
        };
        match reply {
            Value::ServerError(e) if e.code() == "STALEPATH" => Ok(None),
            reply => Ok(Some(reply)),
        }
    }

    /// After a read of this handle's data through the pool that a near-cache copy could
    /// also answer (a `RedisCache`'s `get_many`, a memo's `peek`, a region's `get_many`):
    /// copies read before its reply are not used again, so that none older than what it
    /// returned is read after it (see [`fence_fallback`]). Nothing without a near cache or
    /// before any copy was read.
    pub(crate) fn fence_pool_read(&self) -> Result<()> {
        let resolved = self.resolved()?;
        self.fence_read_of(resolved, &resolved.key);
        Ok(())
    }

    /// [`fence_pool_read`](Engine::fence_pool_read) after a read of `key`, a key of this
    /// handle (a memo's result).
    pub(crate) fn fence_pool_read_at(&self, key: &str) -> Result<()> {
        self.fence_read_of(self.resolved()?, key);
        Ok(())
    }

    fn fence_read_of(&self, resolved: &Resolved, key: &str) {
        if self.near_cache(resolved).is_some()
            && let Some(tracking) = resolved.connection.tracking_started()
        {
            fence_fallback(tracking, key, resolved.placed.as_ref());
        }
    }

    /// The near cache this handle reads through: its own, else its connection's.
    fn near_cache<'r>(&'r self, resolved: &'r Resolved) -> Option<&'r NearCache> {
        self.options
            .near
            .as_ref()
            .or_else(|| resolved.connection.near_cache())
    }

    /// The near cache this handle reads through (see [`near_cache`](Engine::near_cache)) and
    /// the tracking that keeps it correct; `None` without one.
    fn near<'r>(
        &'r self,
        resolved: &'r Resolved,
    ) -> Result<Option<(&'r NearCache, &'r Arc<Tracking>)>> {
        match self.near_cache(resolved) {
            Some(near) => Ok(Some((near, resolved.connection.tracking()?))),
            None => Ok(None),
        }
    }

    /// The one read path of point reads (a value, a field, a member, a score): answered by
    /// the near cache when it holds a usable copy (no command), else read from Redis, through
    /// the tracking connection when there is a near cache (`PTTL` and the read, one round
    /// trip; the copy is kept; for a placed handle, the [`NEAR_READ`](script::NEAR_READ)
    /// script, see [`read_placed_near`](Engine::read_placed_near)), or through the pool (the
    /// read, one round trip).
    ///
    /// # Errors
    ///
    /// The read's errors, typed as every other reply's.
    pub(crate) fn read_point(&self, point: Point<'_>) -> Result<Option<Bytes>> {
        let resolved = self.resolved()?;
        let key = &resolved.key;
        let mut call = self.call()?;
        let near = self.near(resolved)?;
        if let (Some((near, tracking)), Some(placed)) = (near, &resolved.placed) {
            if let Some(found) = self.read_placed_near(&mut call, placed, near, tracking, point)? {
                return Ok(found);
            }
        } else if let Some((near, tracking)) = near {
            let id = tracking.stamps().id;
            if let Some(hit) = point.with_entry_key(id, Scope::Key, key, |k| near.lookup(k)) {
                return Ok(hit);
            }
            let entry_key = point.entry_key(id, Scope::Key, key);
            let sent_at = std::time::Instant::now();
            let mut packed = pttl(key);
            packed.extend_from_slice(&point.command(key, true).get_packed_command());
            if let Some(tracked) = tracking.read(&mut call, key.as_bytes(), &packed, 2)? {
                let mut replies = tracked.replies.into_iter();
                let ttl = replies.next().unwrap_or(Value::Nil);
                let value = self.point_reply(&mut call, key, replies.next())?;
                near.install(
                    entry_key,
                    Entry {
                        value: value.clone(),
                        ticket: tracked.ticket,
                        replied: tracked.replied,
                        buckets: Buckets::of(key.as_bytes()),
                        expires: expiry(sent_at, &ttl),
                        stamps: tracking.stamps().clone(),
                    },
                );
                return Ok(value.map(Bytes::read));
            }
        }
        let reply = if resolved.placed.is_some() {
            self.send_placed(&mut call, &point.command(key, false), Retry::Idempotent)?
        } else {
            resolved.connection.request(
                &mut call,
                key.as_bytes(),
                &point.command(key, false).get_packed_command(),
                Retry::Idempotent,
            )?
        };
        self.fence_read_of(resolved, key);
        Ok(self
            .point_reply(&mut call, key, Some(reply))?
            .map(Bytes::read))
    }

    /// A point read of a placed handle (a region's entry) through the near cache: the copy
    /// when it holds a usable one, else the [`NEAR_READ`](script::NEAR_READ) script on the
    /// tracking connection (one round trip; a second when the path changed), whose copy is
    /// kept. The server tracks every key the script reads for the tracking connection, and
    /// the copy depends on every key the request declares (the region's hash, the tree's
    /// hash, the map of each level), so that a write to the entry, an invalidation of the
    /// region or of an ancestor, or a new generation anywhere on the way drops it. Expires
    /// with the hash's `PTTL`, read in the same script.
    ///
    /// `Ok(None)` when the tracking connection cannot serve it now: the caller reads from
    /// the pool and keeps nothing.
    fn read_placed_near(
        &self,
        call: &mut Call,
        placed: &Placed,
        near: &NearCache,
        tracking: &Tracking,
        point: Point<'_>,
    ) -> Result<Option<Option<Bytes>>> {
        let resolved = self.resolved()?;
        let key = &resolved.key;
        let id = tracking.stamps().id;
        if let Some(hit) = point.with_entry_key(id, Scope::Region, key, |k| near.lookup(k)) {
            return Ok(Some(hit));
        }
        let named = resolved.named(key);
        let (name, item) = point.name_and_item(true);
        let build = |head: &str, body: &str| {
            let mut cmd = redis::cmd(head);
            cmd.arg(body)
                .arg(1)
                .arg(named.as_ref())
                .arg(resolved.place())
                .arg(name);
            if let Some(item) = item {
                cmd.arg(item);
            }
            cmd
        };
        for _ in 0..MAX_STALE_REPLIES {
            if call.deadline().expired() {
                break;
            }
            let path = placed.path();
            let send =
                |call: &mut Call, cmd: &redis::Cmd| -> Result<Option<(Tracked, Vec<Vec<u8>>)>> {
                    let (Some((packed, _)), Some(keys)) = (
                        placed.declare(cmd, &path, false),
                        placed.declared_keys(cmd, &path, false, true),
                    ) else {
                        return Ok(None);
                    };
                    Ok(tracking
                        .read(call, key.as_bytes(), &packed, 1)?
                        .map(|t| (t, keys)))
                };
            let sent_at = std::time::Instant::now();
            let Some(mut sent) = send(call, &build("EVALSHA", script::NEAR_READ.sha()))? else {
                return Ok(None);
            };
            if matches!(sent.0.replies.first(), Some(Value::ServerError(e)) if e.code() == "NOSCRIPT")
            {
                // Nothing ran: send the text, which the server also keeps for next time.
                let Some(again) = send(call, &build("EVAL", script::NEAR_READ.text()))? else {
                    return Ok(None);
                };
                sent = again;
            }
            let (tracked, keys) = sent;
            let reply = tracked.replies.into_iter().next().unwrap_or(Value::Nil);
            if let Some(stale) = path::Stale::of(&reply) {
                // Nothing ran: the path changed; send it again with the keys of the new one.
                placed.found(stale.path);
                continue;
            }
            let (ttl, value) = match reply {
                // A slot migrating: the pool's read waits for it.
                Value::ServerError(e) if e.code() == "TRYAGAIN" => return Ok(None),
                Value::ServerError(e) => return Err(self.server_error(call, key, e.into())),
                Value::Array(items) if items.len() == 2 => {
                    let mut items = items.into_iter();
                    (items.next().unwrap_or(Value::Nil), items.next())
                }
                _ => {
                    return Err(Error::decode(
                        key,
                        "unexpected reply from redis to a point read",
                    ));
                }
            };
            let value = self.point_reply(call, key, value)?;
            near.install(
                point.entry_key(id, Scope::Region, key),
                Entry {
                    value: value.clone(),
                    ticket: tracked.ticket,
                    replied: tracked.replied,
                    buckets: Buckets::of_all(&keys),
                    expires: expiry(sent_at, &ttl),
                    stamps: tracking.stamps().clone(),
                },
            );
            return Ok(Some(value.map(Bytes::read)));
        }
        // The path kept changing: the pool's read gives up as usual.
        Ok(None)
    }

    /// The field `field` of a placed handle's hash (a memo's result in a region) through the
    /// near cache only: its usable copy, or, with `fill`, read into it (see
    /// [`read_placed_near`](Engine::read_placed_near)); `None` without a near cache, for a
    /// handle that is not placed, without a copy (and `fill` false), or when the tracking
    /// connection cannot serve it now.
    ///
    /// # Errors
    ///
    /// As [`read_point`](Engine::read_point).
    pub(crate) fn read_near_field(&self, field: &[u8], fill: bool) -> Result<Option<Bytes>> {
        let resolved = self.resolved()?;
        let (Some((near, tracking)), Some(placed)) = (self.near(resolved)?, &resolved.placed)
        else {
            return Ok(None);
        };
        let point = Point::Field(field);
        if !fill {
            let id = tracking.stamps().id;
            return Ok(point
                .with_entry_key(id, Scope::Region, &resolved.key, |k| near.lookup(k))
                .flatten());
        }
        let mut call = self.call()?;
        Ok(self
            .read_placed_near(&mut call, placed, near, tracking, point)?
            .flatten())
    }

    /// The near cache's usable copy of the value at `key`, without reading Redis (`None`
    /// without a near cache, or without a copy, and for a placed handle, whose results are
    /// fields of a region's hash).
    pub(crate) fn near_copy(&self, key: &str) -> Result<Option<Bytes>> {
        let resolved = self.resolved()?;
        let (Some((near, tracking)), None) = (self.near(resolved)?, &resolved.placed) else {
            return Ok(None);
        };
        let id = tracking.stamps().id;
        Ok(Point::Value
            .with_entry_key(id, Scope::Key, key, |k| near.lookup(k))
            .flatten())
    }

    /// The value at `key` (a key of this handle, such as a memo's value) through the near
    /// cache, only while it is fresh: `None` without a near cache (or for a placed handle),
    /// when the key is missing, or when its remaining TTL is at most `stale_after` (so is its
    /// copy's life). A hit costs no command; a miss one round trip (`PTTL` and `GET` on the
    /// tracking connection).
    ///
    /// # Errors
    ///
    /// As [`read_point`](Engine::read_point).
    pub(crate) fn read_fresh(
        &self,
        key: &str,
        stale_after: Option<Duration>,
    ) -> Result<Option<Bytes>> {
        let resolved = self.resolved()?;
        let (Some((near, tracking)), None) = (self.near(resolved)?, &resolved.placed) else {
            return Ok(None);
        };
        let id = tracking.stamps().id;
        if let Some(hit) = Point::Value.with_entry_key(id, Scope::Key, key, |k| near.lookup(k)) {
            return Ok(hit);
        }
        let mut call = self.call()?;
        let sent_at = std::time::Instant::now();
        let mut packed = pttl(key);
        packed.extend_from_slice(&Point::Value.command(key, true).get_packed_command());
        let Some(tracked) = tracking.read(&mut call, key.as_bytes(), &packed, 2)? else {
            return Ok(None);
        };
        let mut replies = tracked.replies.into_iter();
        let ttl = replies.next().unwrap_or(Value::Nil);
        let Some(value) = self.point_reply(&mut call, key, replies.next())? else {
            return Ok(None);
        };
        let fresh_until = match (&ttl, stale_after) {
            (Value::Int(ms), Some(stale)) if *ms >= 0 => {
                let left = Duration::from_millis(u64::try_from(*ms).unwrap_or(0).saturating_sub(1));
                Some(sent_at + left.saturating_sub(stale))
            }
            _ => expiry(sent_at, &ttl),
        };
        if fresh_until.is_some_and(|at| at <= sent_at) {
            return Ok(None);
        }
        near.install(
            Point::Value.entry_key(id, Scope::Key, key),
            Entry {
                value: Some(value.clone()),
                ticket: tracked.ticket,
                replied: tracked.replied,
                buckets: Buckets::of(key.as_bytes()),
                expires: fresh_until,
                stamps: tracking.stamps().clone(),
            },
        );
        Ok(Some(Bytes::read(value)))
    }

    /// `HMGET` of `fields` of the handle's hash through the near cache (see
    /// [`read_point`](Engine::read_point)): fields with a usable copy are answered from
    /// memory, the others read in one `HMGET` (with `PTTL`, on the tracking connection). A
    /// placed handle (a region's [`dict`](crate::Region::dict) view) reads them all from
    /// Redis.
    ///
    /// # Errors
    ///
    /// As [`read_point`](Engine::read_point).
    pub(crate) fn read_fields(&self, fields: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        let resolved = self.resolved()?;
        let key = &resolved.key;
        let mut call = self.call()?;
        let near = match resolved.placed {
            Some(_) => None,
            None => self.near(resolved)?,
        };
        let mut out: Vec<Option<Option<Bytes>>> = (0..fields.len()).map(|_| None).collect();
        let mut missing = Vec::new();
        if let Some((near, tracking)) = &near {
            for (i, field) in fields.iter().enumerate() {
                let found = Point::Field(field).with_entry_key(
                    tracking.stamps().id,
                    Scope::Key,
                    key,
                    |k| near.lookup(k),
                );
                match found {
                    Some(hit) => out[i] = Some(hit),
                    None => missing.push(i),
                }
            }
            if missing.is_empty() {
                return Ok(out.into_iter().flatten().collect());
            }
            let sent_at = std::time::Instant::now();
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(key);
            for &i in &missing {
                hmget.arg(&fields[i]);
            }
            let mut packed = pttl(key);
            packed.extend_from_slice(&hmget.get_packed_command());
            if let Some(tracked) = tracking.read(&mut call, key.as_bytes(), &packed, 2)? {
                let mut replies = tracked.replies.into_iter();
                let ttl = replies.next().unwrap_or(Value::Nil);
                let values = self.fields_reply(&mut call, key, replies.next(), missing.len())?;
                let expires = expiry(sent_at, &ttl);
                for (&i, value) in missing.iter().zip(values) {
                    near.install(
                        Point::Field(&fields[i]).entry_key(tracking.stamps().id, Scope::Key, key),
                        Entry {
                            value: value.clone(),
                            ticket: tracked.ticket,
                            replied: tracked.replied,
                            buckets: Buckets::of(key.as_bytes()),
                            expires,
                            stamps: tracking.stamps().clone(),
                        },
                    );
                    out[i] = Some(value.map(Bytes::read));
                }
                return Ok(out.into_iter().flatten().collect());
            }
        } else {
            missing = (0..fields.len()).collect();
        }
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(key);
        for &i in &missing {
            hmget.arg(&fields[i]);
        }
        let reply = if resolved.placed.is_some() {
            self.send_placed(&mut call, &hmget, Retry::Idempotent)?
        } else {
            resolved.connection.request(
                &mut call,
                key.as_bytes(),
                &hmget.get_packed_command(),
                Retry::Idempotent,
            )?
        };
        // Through the pool: a copy older than this reply is not read after it.
        self.fence_read_of(resolved, key);
        let values = self.fields_reply(&mut call, key, Some(reply), missing.len())?;
        for (&i, value) in missing.iter().zip(values) {
            out[i] = Some(value.map(Bytes::read));
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// A point read's reply as what a copy holds, or the typed error.
    fn point_reply(
        &self,
        call: &mut Call,
        key: &str,
        reply: Option<Value>,
    ) -> Result<Option<Arc<[u8]>>> {
        match reply {
            Some(Value::ServerError(e)) => Err(self.server_error(call, key, e.into())),
            Some(reply) => normalize(reply)
                .map_err(|_| Error::decode(key, "unexpected reply from redis to a point read")),
            None => Err(Error::decode(key, "no reply from redis to a point read")),
        }
    }

    /// An `HMGET` reply of `n` values, or the typed error.
    fn fields_reply(
        &self,
        call: &mut Call,
        key: &str,
        reply: Option<Value>,
        n: usize,
    ) -> Result<Vec<Option<Arc<[u8]>>>> {
        match reply {
            Some(Value::ServerError(e)) => Err(self.server_error(call, key, e.into())),
            Some(Value::Array(items)) if items.len() == n => items
                .into_iter()
                .map(|v| {
                    normalize(v)
                        .map_err(|_| Error::decode(key, "unexpected reply from redis to HMGET"))
                })
                .collect(),
            _ => Err(Error::decode(key, "unexpected reply from redis to HMGET")),
        }
    }

    /// Drops every near-cache copy read through this handle's connection (after a write
    /// whose keys are not known one by one: a memo's `clear`).
    pub(crate) fn flush_near(&self) -> Result<()> {
        if let Some(tracking) = self.resolved()?.connection.tracking_started() {
            tracking.flush();
        }
        Ok(())
    }

    /// Converts a reply about `key`: an error reply becomes the typed error, anything else a
    /// `T` (or [`Error::Decode`] for a reply of an unexpected shape).
    pub(crate) fn reply_at<T: FromRedisValue>(
        &self,
        call: &mut Call,
        key: &str,
        reply: Value,
    ) -> Result<T> {
        match reply {
            Value::ServerError(e) => Err(self.server_error(call, key, e.into())),
            reply => T::from_redis_value(reply)
                .map_err(|e| Error::decode(key, format_args!("unexpected reply from redis: {e}"))),
        }
    }

    /// The typed error for an error reply about `key`.
    pub(crate) fn server_error(&self, call: &mut Call, key: &str, e: redis::RedisError) -> Error {
        let e = crate::error::unwrap_script_error(e);
        match e.code() {
            Some("WRONGTYPE") => {
                // One more round trip, on this error path only, to say what the key holds.
                let found = self
                    .resolved()
                    .ok()
                    .and_then(|r| {
                        let mut cmd = redis::cmd("TYPE");
                        cmd.arg(key);
                        match &r.placed {
                            Some(_) if key.starts_with(r.key.as_str()) => {
                                self.send_placed(call, &cmd, Retry::Idempotent).ok()
                            }
                            _ => r
                                .connection
                                .request(
                                    call,
                                    key.as_bytes(),
                                    &cmd.get_packed_command(),
                                    Retry::Idempotent,
                                )
                                .ok(),
                        }
                    })
                    .and_then(|v| String::from_redis_value(v).ok())
                    .unwrap_or_else(|| "value of another type".to_string());
                Error::WrongType {
                    key: key.to_string(),
                    expected: self.redis_type,
                    found,
                }
            }
            Some("CROSSSLOT") => Error::CrossSlot {
                key: key.to_string(),
                source: e,
            },
            Some("NOPERM") => Error::Permission {
                target: key.to_string(),
                source: e,
            },
            Some("OLDLAYOUT") => Error::OldLayout {
                key: key.to_string(),
                source: e,
            },
            _ => Error::redis(key, e),
        }
    }

    /// `EXISTS key`.
    pub(crate) fn exists(&self) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&self.resolved()?.key);
        self.query(&cmd, Retry::Idempotent)
    }

    /// `DEL key`; true when something was deleted.
    pub(crate) fn clear(&self) -> Result<bool> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.resolved()?.key);
        self.query::<u32>(&cmd, Retry::Idempotent).map(|n| n > 0)
    }

    /// `PTTL key`, as a [`Ttl`].
    pub(crate) fn ttl(&self) -> Result<Ttl> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(&self.resolved()?.key);
        let ms: i64 = self.query(&cmd, Retry::Idempotent)?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    /// `PEXPIRE key ms`; true when the key exists.
    pub(crate) fn expire(&self, ttl: Duration) -> Result<bool> {
        let key = &self.resolved()?.key;
        crate::options::check_ttl(ttl).map_err(|problem| Error::config(key.clone(), problem))?;
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(key).arg(ttl_millis(ttl));
        self.query(&cmd, Retry::Idempotent)
    }
}

/// The reads of a placed handle's hash that [`Engine::read_placed_plain`] sends as plain
/// commands: single-key reads of a hash.
const PLAIN_READS: &[&[u8]] = &[
    b"HGET", b"HMGET", b"HEXISTS", b"HLEN", b"HGETALL", b"HKEYS", b"HVALS", b"HSCAN", b"HSTRLEN",
    b"EXISTS", b"TYPE", b"PTTL", b"TTL",
];

/// Commands that change nothing: every other command sent about a key stamps it in the near
/// cache's tracking (see [`fence`]).
const READS: &[&[u8]] = &[
    b"GET",
    b"MGET",
    b"STRLEN",
    b"EXISTS",
    b"TYPE",
    b"PTTL",
    b"TTL",
    b"HGET",
    b"HMGET",
    b"HEXISTS",
    b"HLEN",
    b"HGETALL",
    b"HKEYS",
    b"HVALS",
    b"HSCAN",
    b"HSTRLEN",
    b"SISMEMBER",
    b"SMISMEMBER",
    b"SCARD",
    b"SMEMBERS",
    b"SSCAN",
    b"SRANDMEMBER",
    b"SINTER",
    b"SUNION",
    b"SDIFF",
    b"ZSCORE",
    b"ZMSCORE",
    b"ZRANK",
    b"ZREVRANK",
    b"ZCARD",
    b"ZCOUNT",
    b"ZRANGE",
    b"ZRANGEBYSCORE",
    b"ZREVRANGE",
    b"ZREVRANGEBYSCORE",
    b"ZSCAN",
    b"LRANGE",
    b"LLEN",
    b"LINDEX",
    b"SCAN",
];

fn is_read(cmd: &redis::Cmd) -> bool {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => READS.iter().any(|r| r.eq_ignore_ascii_case(name)),
        _ => false,
    }
}

/// Whether a request of the [`PROXY`](script::PROXY) script (`EVALSHA sha numkeys keys...
/// place command args...`) runs a command of [`READS`].
fn proxies_read(cmd: &redis::Cmd, numkeys: usize) -> bool {
    match cmd.args_iter().nth(3 + numkeys + 1) {
        Some(redis::Arg::Simple(name)) => READS.iter().any(|r| r.eq_ignore_ascii_case(name)),
        _ => false,
    }
}

/// After a request that may have written `key`: copies of it read by requests sent before
/// the write's reply arrived are never used again in this process, so a process reads its
/// own writes at once (other processes learn of it from Redis' invalidation). Done whatever
/// the outcome: a write whose reply was lost may have run.
fn fence(resolved: &Resolved, key: &str) {
    if let Some(tracking) = resolved.connection.tracking_started() {
        tracking.fence(key.as_bytes());
    }
}

/// After a read of `key` that a handle with a near cache sent through the pool (its tracking
/// connection could not serve it: down, reconnecting, a redirection): copies of the key read
/// by requests sent before this reply arrived are never used again, as after a write.
///
/// Such a copy may be older than what the pool just returned while its invalidation is still
/// on its way: a read that found no tracking connection goes to the pool, a new tracking
/// connection comes up meanwhile and another thread fills a copy through it, the key changes,
/// and the pool's read returns the newer value before the invalidation of the copy is read.
/// Without the fence the next read, in this thread, would go back to the copy. A read sent
/// after this reply arrived ran after the pool's read, so it is at least as new.
///
/// For a placed handle (a region's entry), the tree's hash: every copy in the tree depends on
/// it, whichever generation the pool's read found (it may be newer than the copy's).
fn fence_fallback(tracking: &Tracking, key: &str, placed: Option<&Placed>) {
    match placed {
        Some(placed) => tracking.fence(placed.tree_key().as_bytes()),
        None => tracking.fence(key.as_bytes()),
    }
}

/// [`fence`] for every key a script declares (`KEYS`, after the script and `numkeys`).
fn fence_script_keys(resolved: &Resolved, cmd: &redis::Cmd, numkeys: usize) {
    if let Some(tracking) = resolved.connection.tracking_started() {
        for arg in cmd.args_iter().skip(3).take(numkeys) {
            if let redis::Arg::Simple(key) = arg {
                tracking.fence(key);
            }
        }
    }
}

/// [`fence`] for the keys a placed handle's request declares (see
/// [`Placed::declared_keys`]): its own (the region's hash), and, `with_path`, the tree's hash
/// and the maps, on which the near cache's copies of every entry below them depend: only for
/// a request that may change them (one that creates generations, an invalidation), so that
/// a write to one region leaves the copies of the others usable.
fn fence_declared(
    resolved: &Resolved,
    placed: &Placed,
    cmd: &redis::Cmd,
    path: &Arc<path::Path>,
    write: bool,
    with_path: bool,
) {
    if let Some(tracking) = resolved.connection.tracking_started() {
        for key in placed
            .declared_keys(cmd, path, write, with_path)
            .unwrap_or_default()
        {
            tracking.fence(&key);
        }
    }
}

/// `PTTL key`, packed: sent before a read that fills the near cache, so that the copy never
/// outlives the key.
fn pttl(key: &str) -> Vec<u8> {
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(key);
    cmd.get_packed_command()
}

/// When a copy must be dropped, from the `PTTL` reply read with it (measured from before it
/// was sent, so never later than the key's own expiry): `None` for a key without a TTL (or
/// missing: a later write is invalidated anyway).
fn expiry(sent_at: std::time::Instant, pttl: &Value) -> Option<std::time::Instant> {
    match pttl {
        // Redis counts whole milliseconds from a clock it reads in whole milliseconds: the
        // key may go up to 1 ms before `sent_at + pttl`.
        Value::Int(ms) if *ms >= 0 => {
            Some(sent_at + Duration::from_millis(u64::try_from(*ms).unwrap_or(0).saturating_sub(1)))
        }
        Value::Int(_) => None,
        // Anything else (an error): expire at once, keeping nothing.
        _ => Some(sent_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{CodecErrorKind, Postcard};
    use crate::options::OtherShape;

    /// An engine for a hash at `k`; building it does no I/O.
    fn engine(options: Options<Postcard>) -> Engine<Postcard> {
        Engine::new(Key::from_parts(["k"]), options, "hash", None)
    }

    fn error_reply(text: &str) -> redis::RedisError {
        error_reply_value(text).into()
    }

    fn args(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a plain argument: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn error_replies_become_typed_errors_by_their_code() {
        let e = engine(Options::default());
        let mut call = Call::new(None);
        let mut classify = |text: &str| e.server_error(&mut call, "k:1", error_reply(text));
        let err = classify("CROSSSLOT Keys in request don't hash to the same slot");
        assert!(
            matches!(&err, Error::CrossSlot { key, .. } if key == "k:1"),
            "{err:?}"
        );
        let err = classify("NOPERM this user has no permissions to run the 'hset' command");
        assert!(
            matches!(&err, Error::Permission { target, .. } if target == "k:1"),
            "{err:?}"
        );
        let err = classify("OLDLAYOUT the key was written by an older layout");
        assert!(
            matches!(&err, Error::OldLayout { key, .. } if key == "k:1"),
            "{err:?}"
        );
        let err = classify("ERR something else");
        assert!(
            matches!(&err, Error::Redis { target, .. } if target == "k:1"),
            "{err:?}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_expected_type_even_when_the_found_one_cannot_be_read() {
        // Options the engine refuses: it sends nothing, so the key's type stays unknown.
        let refused = Options {
            ttl: Some(Duration::ZERO),
            ..Options::default()
        };
        let e = engine(refused);
        let err = e.server_error(
            &mut Call::new(None),
            "k",
            error_reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
        );
        match err {
            Error::WrongType {
                key,
                expected,
                found,
            } => {
                assert_eq!((key.as_str(), expected), ("k", "hash"));
                assert_eq!(found, "value of another type");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_over_the_size_limit_are_refused() {
        let e = engine(Options {
            max_value_size: 10,
            ..Options::default()
        });
        assert!(e.check_size(10, "k").is_ok());
        match e.check_size(11, "k") {
            Err(Error::ValueTooLarge { key, size, limit }) => {
                assert_eq!((key.as_str(), size, limit), ("k", 11, 10));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_schema_version_goes_into_every_tag() {
        let tag = TypeTag::of::<u32>();
        let plain = engine(Options::default());
        assert_eq!(plain.schema_version(), None);
        assert_eq!(plain.versioned(&tag), tag);
        let v3 = engine(Options {
            schema_version: Some(3),
            ..Options::default()
        });
        assert_eq!(v3.schema_version(), Some(3));
        let versioned = v3.versioned(&tag);
        assert_eq!(versioned.schema_version(), Some(3));
        assert_ne!(versioned, tag);
        assert_eq!(v3.versioned(&versioned), versioned);
        assert_eq!(
            v3.versioned(&tag.with_schema_version(2)).schema_version(),
            Some(3)
        );
        // A value written without the version is another shape to the versioned handle.
        let bytes = plain.encode(&tag, &7u32, "k").unwrap();
        let err = v3.decode::<u32>(&tag, &bytes, || "k".into()).unwrap_err();
        assert!(
            matches!(&err, Error::Decode { source, .. } if matches!(source.kind(), CodecErrorKind::OtherShape { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn fields_follow_the_field_rule_and_the_size_limit() {
        let e = engine(Options {
            max_value_size: 5,
            ..Options::default()
        });
        let s = TypeTag::of::<String>();
        assert_eq!(e.encode_field_at(&s, "ada", "k").unwrap(), b"ada");
        assert_eq!(
            e.encode_field_at(&TypeTag::of::<u64>(), &42u64, "k")
                .unwrap(),
            b"42"
        );
        assert_eq!(
            e.decode_field::<String>(&s, b"ada", || "k".into()).unwrap(),
            "ada"
        );
        assert!(matches!(
            e.encode_field_at(&s, "lovelace", "k"),
            Err(Error::ValueTooLarge { size: 8, .. })
        ));
    }

    #[test]
    fn other_shapes_read_as_missing_only_when_asked() {
        let tag = TypeTag::of::<u32>();
        let bytes = engine(Options::default())
            .encode(&TypeTag::of::<String>(), "seven", "k")
            .unwrap();
        let strict = engine(Options::default());
        assert!(!strict.misses_other_shapes());
        assert!(
            strict
                .decode_or_miss::<u32>(&tag, &bytes, || "k".into())
                .is_err()
        );
        let missing = engine(Options {
            other_shape: OtherShape::Miss,
            ..Options::default()
        });
        assert!(missing.misses_other_shapes());
        assert_eq!(
            missing
                .decode_or_miss::<u32>(&tag, &bytes, || "k".into())
                .unwrap(),
            None
        );
        let own = missing.encode(&tag, &7u32, "k").unwrap();
        assert_eq!(
            missing
                .decode_or_miss::<u32>(&tag, &own, || "k".into())
                .unwrap(),
            Some(7)
        );
        // Bytes that are no value at all stay an error.
        assert!(
            missing
                .decode_or_miss::<u32>(&tag, b"junk", || "k".into())
                .is_err()
        );
    }

    #[test]
    fn write_scripts_get_the_ttl_policy_as_data() {
        let mut cmd = redis::cmd("EVALSHA");
        engine(Options::default()).ttl_args(&mut cmd);
        assert_eq!(args(&cmd), ["EVALSHA", "hash", "", ""]);
        let mut cmd = redis::cmd("EVALSHA");
        engine(Options {
            ttl: Some(Duration::from_secs(2)),
            ttl_policy: TtlPolicy::Keep,
            ..Options::default()
        })
        .ttl_args(&mut cmd);
        assert_eq!(args(&cmd), ["EVALSHA", "hash", "2000", "keep"]);
        let mut cmd = redis::cmd("EVALSHA");
        engine(Options {
            ttl: Some(Duration::from_millis(1500)),
            ttl_policy: TtlPolicy::Refresh,
            ..Options::default()
        })
        .ttl_args(&mut cmd);
        assert_eq!(args(&cmd), ["EVALSHA", "hash", "1500", ""]);
    }

    #[test]
    fn read_replies_of_an_unexpected_shape_are_decode_errors() {
        let e = engine(Options::default());
        let mut call = Call::new(None);
        let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
        assert_eq!(
            e.point_reply(&mut call, "k", Some(bulk(b"v")))
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(
            e.point_reply(&mut call, "k", Some(Value::Nil)).unwrap(),
            None
        );
        for reply in [None, Some(Value::Array(vec![]))] {
            assert!(matches!(
                e.point_reply(&mut call, "k", reply),
                Err(Error::Decode { .. })
            ));
        }
        let err = e
            .point_reply(
                &mut call,
                "k",
                Some(Value::ServerError(error_reply_value("NOPERM no"))),
            )
            .unwrap_err();
        assert!(err.is_permission(), "{err:?}");

        let two = Value::Array(vec![bulk(b"a"), Value::Nil]);
        let fields = e
            .fields_reply(&mut call, "k", Some(two.clone()), 2)
            .unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].as_deref(), Some(&b"a"[..]));
        assert_eq!(fields[1], None);
        for (reply, n) in [
            (Some(two.clone()), 3),
            (Some(two), 1),
            (None, 0),
            (Some(Value::Array(vec![Value::Array(vec![])])), 1),
        ] {
            assert!(matches!(
                e.fields_reply(&mut call, "k", reply, n),
                Err(Error::Decode { .. })
            ));
        }
        let err = e
            .fields_reply(
                &mut call,
                "k",
                Some(Value::ServerError(error_reply_value("CROSSSLOT x"))),
                1,
            )
            .unwrap_err();
        assert!(err.is_cross_slot(), "{err:?}");
    }

    fn error_reply_value(text: &str) -> redis::ServerError {
        match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap() {
            Value::ServerError(e) => e,
            other => panic!("not an error reply: {other:?}"),
        }
    }

    #[test]
    fn the_near_cache_reads_the_ttl_with_pttl() {
        assert_eq!(pttl("k:1"), b"*2\r\n$4\r\nPTTL\r\n$3\r\nk:1\r\n");
    }

    #[test]
    fn a_copy_expires_with_its_key_counted_from_before_the_read() {
        let sent = std::time::Instant::now();
        assert_eq!(
            expiry(sent, &Value::Int(250)),
            Some(sent + Duration::from_millis(249))
        );
        assert_eq!(expiry(sent, &Value::Int(0)), Some(sent));
        assert_eq!(expiry(sent, &Value::Int(-1)), None, "no TTL");
        assert_eq!(expiry(sent, &Value::Int(-2)), None, "missing");
        assert_eq!(
            expiry(sent, &Value::Nil),
            Some(sent),
            "anything else keeps nothing"
        );
    }

    #[test]
    fn only_writes_stamp_their_key() {
        assert!(is_read(&redis::cmd("HGET")));
        assert!(is_read(&redis::cmd("zscore")));
        assert!(!is_read(&redis::cmd("SET")));
        assert!(!is_read(&redis::cmd("EVALSHA")));
        assert!(!is_read(&redis::cmd("DEL")));
        let proxied = |name: &str| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg("sha")
                .arg(1)
                .arg("{r}@?")
                .arg("3:{r}a")
                .arg(name)
                .arg("f");
            proxies_read(&cmd, 1)
        };
        assert!(proxied("HLEN"));
        assert!(proxied("hscan"));
        assert!(!proxied("DEL"));
        assert!(!proxied("HDEL"));
    }
}
