//! [`Pickle`]: reading plain data that a Python service pickled (crate feature `pickle`).
//!
//! The Python libraries this crate replaces pickle by default: `caches` writes
//! `pickle.dumps(value, HIGHEST_PROTOCOL)` (protocol 5 on Python 3.8 and later), `region-cache`
//! writes `pickle.dumps(value)` (protocol 4), and Python 2 services wrote protocol 2. While a
//! Python service and a Rust service share data, [`Pickle`] lets the Rust side read those
//! values.
//!
//! # What it decodes
//!
//! Pickles of protocol 2 to 5 that hold only plain data, into any serde type of the same shape:
//!
//! | Python | Rust |
//! |---|---|
//! | `None` | `()`, `Option::None` |
//! | `bool` | `bool` |
//! | `int` (within `i64`) | any integer type it fits |
//! | `float` | `f64`, `f32` |
//! | `str` | `String` |
//! | `bytes`, `bytearray` (and a Python 2 `str`) | `serde_bytes::ByteBuf` (any type that accepts serde's bytes) |
//! | `list`, `tuple`, `set`, `frozenset` | `Vec<T>`, tuples, `HashSet<T>`, ... |
//! | `dict` | `HashMap<K, V>`, `BTreeMap<K, V>`, a struct (string keys named as its fields) |
//!
//! # What it refuses
//!
//! Anything else is a [`CodecError`] (an [`Error::Decode`](crate::Error::Decode) from a
//! collection), decided by a scan of the whole pickle *before* anything is decoded:
//!
//! - **Python objects**: a pickle that names a Python global (a class, a function such as
//!   `os.system`, with `GLOBAL` or `STACK_GLOBAL`) or builds an object (`BUILD`, `INST`,
//!   `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `PERSID`, `BINPERSID`, `EXT1/2/4`, out-of-band buffers).
//!   The only globals accepted, and so the only ones `REDUCE` can call, are those that
//!   protocols 2 to 4 use to spell plain data: `builtins.set`, `builtins.frozenset`,
//!   `builtins.bytearray` (or their Python 2 `__builtin__` names) and `_codecs.encode` (how
//!   protocol 2 writes `bytes`). So a `datetime`, a `Decimal`, a dataclass or an
//!   `OrderedDict` is refused, not turned into something that looks like data.
//! - **Protocols 0 and 1** (text pickles), and opcodes Python's pickler never writes for
//!   plain data (`DUP`).
//! - **Integers beyond `i64`**, **recursive structures** (a list that contains itself), and
//!   values nested more than [`MAX_DEPTH`] deep.
//! - **Expansion bombs**: a pickle may refer to one object many times (a memo reference), so
//!   a few hundred bytes can describe a value of gigabytes. The decoded size, counted as one
//!   unit per value plus one per byte of text, may exceed the pickle's own length by at most
//!   [`MAX_EXPANSION`] units plus 8 units per byte of the pickle.
//! - A length that runs past the end, trailing bytes after `STOP`, or a truncated pickle.
//!
//! Decoding never runs code: serde-pickle is a pure Rust reader that interprets the pickle
//! opcodes as data and never imports or calls anything, and the scan above refuses the
//! opcodes that would make Python do so, so a hostile pickle (one that calls `os.system`
//! when Python loads it) is refused with an error and has no effect.
//!
//! # Read-only
//!
//! [`Codec::encode`] always fails. Python finds hash fields and set members by their exact
//! bytes, and CPython's pickle bytes depend on object identity, not just on the value: the
//! list `["abc", "abc"]` pickles to a memo reference for the second string when both are the
//! same object and to a second copy when they are not. No encoder can reproduce that, so a
//! Rust-pickled member would silently miss the Python-pickled one. Write shared data with
//! [`Raw`](super::Raw) or `Json`, which both languages write byte for byte alike, and keep
//! this codec for reading what Python already stored.
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use redis_caches::codec::{Codec, Pickle, TypeTag};
//!
//! // What `caches.Cache('foo').data = {"a": 1}` stores (Python's pickle, protocol 5).
//! let stored = b"\x80\x05\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.";
//! let tag = TypeTag::of::<HashMap<String, i64>>();
//! let value: HashMap<String, i64> = Pickle.decode(stored, &tag)?;
//! assert_eq!(value["a"], 1);
//! assert!(Pickle.encode(&value, &tag).is_err()); // read-only
//! # Ok::<(), redis_caches::codec::CodecError>(())
//! ```

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Codec, CodecError, TypeTag};

/// Reads plain data pickled by Python (protocols 2 to 5); never writes. See the
/// [module docs](self) for what it decodes and what it refuses.
///
/// Use it on a collection whose values Python pickled, with the key layout the Python library
/// uses (for `caches`, the class name as the prefix):
///
/// ```no_run
/// use redis_caches::{RedisCache, codec::Pickle};
///
/// // Python: caches.Cache("greeting").data = "hello"   (key `Cache.greeting`)
/// let greeting: RedisCache<String, Pickle> =
///     RedisCache::builder("greeting").prefix("Cache").codec(Pickle).build();
/// assert_eq!(greeting.get()?.as_deref(), Some("hello"));
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pickle;

/// How deeply containers may nest in a decoded pickle (as in serde_json).
pub const MAX_DEPTH: usize = 128;

/// How many units (values, plus bytes of text) shared references may add to a decoded pickle
/// beyond its own length and 8 units per byte of it: 8 Mi units.
pub const MAX_EXPANSION: u64 = 8 << 20;

impl Codec for Pickle {
    fn encode<T: Serialize + ?Sized>(&self, _: &T, tag: &TypeTag) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::new(format!(
            "the pickle codec is read-only: it cannot write {} (write shared data with the raw \
             or json codec)",
            tag.name()
        )))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        vet(bytes).map_err(|e| CodecError::new(format!("pickle for {}: {e}", tag.name())))?;
        serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new())
            .map_err(|e| CodecError::new(format!("pickle for {}: {e}", tag.name())))
    }

    /// Pickles, as values: Python's `caches` pickles set and sorted-set members, which the
    /// plain-text field rule would not read. (Its hash fields are plain text; reading them
    /// belongs to a layout for that library, not to this codec.)
    const FIELDS_AS_VALUES: bool = true;
}

// The opcodes, as CPython's `pickletools` names them.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINFLOAT: u8 = b'G';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE: u8 = b'X';
    pub const BINUNICODE8: u8 = 0x8d;
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const BINBYTES: u8 = b'B';
    pub const BINBYTES8: u8 = 0x8e;
    pub const BYTEARRAY8: u8 = 0x96;
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const GLOBAL: u8 = b'c';
    pub const REDUCE: u8 = b'R';
    // Refused: they build or reference Python objects.
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const BUILD: u8 = b'b';
    pub const INST: u8 = b'i';
    pub const OBJ: u8 = b'o';
    pub const NEWOBJ: u8 = 0x81;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

/// The globals that protocol 2 uses to spell plain data, and nothing else.
fn allowed_global(module: &[u8], name: &[u8]) -> bool {
    matches!(
        (module, name),
        (
            b"builtins" | b"__builtin__",
            b"set" | b"frozenset" | b"bytearray"
        ) | (b"_codecs", b"encode")
    )
}

/// A Python identifier path (`os.system`) as it may appear in an error message; anything
/// else is not echoed.
fn shown_name(module: &[u8], name: &[u8]) -> String {
    let ok = |s: &[u8]| {
        !s.is_empty()
            && s.len() <= 64
            && s.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
    };
    if ok(module) && ok(name) {
        format!(
            "{}.{}",
            String::from_utf8_lossy(module),
            String::from_utf8_lossy(name)
        )
    } else {
        "a global with an unusual name".to_string()
    }
}

/// One value of the pickle as the scan sees it: its own size, and the values it contains.
/// Memo references share nodes, so the graph is what Python would build, without the data.
struct Node {
    /// 1, plus the length of a string, bytes or long integer.
    own: u64,
    /// Where the text of a `str` lies in the input (for `STACK_GLOBAL`'s names).
    text: Option<(usize, usize)>,
    container: bool,
    global: bool,
    children: Vec<usize>,
}

/// Checks, without decoding anything, that `bytes` is a pickle of protocol 2 to 5 holding only
/// plain data, within the depth and expansion limits.
fn vet(bytes: &[u8]) -> Result<(), String> {
    Scan {
        bytes,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Scan<'a> {
    bytes: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
}

impl<'a> Scan<'a> {
    fn run(mut self) -> Result<(), String> {
        match (self.bytes.first(), self.bytes.get(1)) {
            (Some(&op::PROTO), Some(2..=5)) => self.pos = 2,
            (Some(&op::PROTO), Some(v)) => return Err(format!("unsupported protocol {v}")),
            (None, _) => return Err("empty value".into()),
            _ => {
                return Err(
                    "not a pickle of protocol 2 or later (protocols 0 and 1 are not supported)"
                        .into(),
                );
            }
        }
        loop {
            let at = self.pos;
            let code = self.take(1)?[0];
            match code {
                op::STOP => {
                    let result = self.pop()?;
                    if self.pos != self.bytes.len() {
                        return Err(format!(
                            "{} trailing bytes after the end of the pickle",
                            self.bytes.len() - self.pos
                        ));
                    }
                    return self.measure(result);
                }
                op::FRAME => {
                    self.take(8)?;
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::NONE | op::NEWTRUE | op::NEWFALSE => self.leaf(0),
                op::BININT1 => self.fixed(1)?,
                op::BININT2 => self.fixed(2)?,
                op::BININT => self.fixed(4)?,
                op::BINFLOAT => self.fixed(8)?,
                op::LONG1 | op::SHORT_BINSTRING | op::SHORT_BINBYTES => {
                    let len = self.length(1)?;
                    self.payload(len)?;
                }
                op::SHORT_BINUNICODE => {
                    let len = self.length(1)?;
                    self.payload(len)?;
                    self.mark_text(len);
                }
                op::LONG4 | op::BINSTRING => {
                    let len = self.length(4)?;
                    // Signed 32-bit lengths: a negative one is malformed.
                    if len > i32::MAX as u64 {
                        return Err(format!("negative length at byte {at}"));
                    }
                    self.payload(len)?;
                }
                op::BINUNICODE => {
                    let len = self.length(4)?;
                    self.payload(len)?;
                    self.mark_text(len);
                }
                op::BINBYTES => {
                    let len = self.length(4)?;
                    self.payload(len)?;
                }
                op::BINUNICODE8 | op::BINBYTES8 | op::BYTEARRAY8 => {
                    let len = self.length(8)?;
                    self.payload(len)?;
                }
                op::EMPTY_LIST | op::EMPTY_DICT | op::EMPTY_SET | op::EMPTY_TUPLE => {
                    self.container(Vec::new())
                }
                op::APPEND => {
                    let item = self.pop()?;
                    self.extend_top(vec![item], at)?;
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_top(vec![key, value], at)?;
                }
                op::APPENDS | op::SETITEMS | op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, at)?;
                }
                op::TUPLE | op::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.container(items);
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.container(items);
                }
                op::BINPUT => {
                    let id = self.length(1)?;
                    self.put(id)?;
                }
                op::LONG_BINPUT => {
                    let id = self.length(4)?;
                    self.put(id)?;
                }
                op::MEMOIZE => {
                    let id = self.memo.len() as u64;
                    self.put(id)?;
                }
                op::BINGET | op::LONG_BINGET => {
                    let id = self.length(if code == op::BINGET { 1 } else { 4 })?;
                    let node = *self
                        .memo
                        .get(&id)
                        .ok_or_else(|| format!("memo reference {id} at byte {at} was never set"))?;
                    self.stack.push(node);
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.text(module, at)?, self.text(name, at)?);
                    self.global(module, name)?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    if !self.nodes[callable].global {
                        return Err(format!("REDUCE at byte {at} calls something not callable"));
                    }
                    self.container(vec![args]);
                }
                op::BUILD
                | op::INST
                | op::OBJ
                | op::NEWOBJ
                | op::NEWOBJ_EX
                | op::PERSID
                | op::BINPERSID
                | op::EXT1
                | op::EXT2
                | op::EXT4
                | op::NEXT_BUFFER
                | op::READONLY_BUFFER => {
                    return Err(format!(
                        "refused: the pickle builds a Python object (opcode {}), not plain data",
                        opcode_name(code)
                    ));
                }
                op::PROTO => return Err(format!("a second PROTO opcode at byte {at}")),
                op::DUP => return Err(format!("unsupported opcode DUP at byte {at}")),
                other => {
                    return Err(format!(
                        "unsupported opcode {:#04x} at byte {at} (protocols 0 and 1 are not \
                         supported)",
                        other
                    ));
                }
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let bytes = self.bytes;
        let end = self.pos.checked_add(n).filter(|end| *end <= bytes.len());
        match end {
            Some(end) => {
                let taken = &bytes[self.pos..end];
                self.pos = end;
                Ok(taken)
            }
            None => Err("truncated pickle (no STOP before the end)".into()),
        }
    }

    /// A little-endian unsigned integer of `n` bytes (1, 2, 4 or 8).
    fn length(&mut self, n: usize) -> Result<u64, String> {
        let raw = self.take(n)?;
        let mut le = [0u8; 8];
        le[..n].copy_from_slice(raw);
        Ok(u64::from_le_bytes(le))
    }

    /// A newline-terminated argument of `GLOBAL`.
    fn line(&mut self) -> Result<&'a [u8], String> {
        let bytes = self.bytes;
        let rest = &bytes[self.pos..];
        match rest.iter().position(|b| *b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err("truncated pickle (a GLOBAL without its name)".into()),
        }
    }

    /// Pushes a global, refusing every one but the plain-data builtins.
    fn global(&mut self, module: &[u8], name: &[u8]) -> Result<(), String> {
        if !allowed_global(module, name) {
            return Err(format!(
                "refused: the pickle references the Python global {} (only plain data is \
                 decoded, never Python objects)",
                shown_name(module, name)
            ));
        }
        self.nodes.push(Node {
            own: 1,
            text: None,
            container: false,
            global: true,
            children: Vec::new(),
        });
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    /// Records that the leaf just pushed is a `str` of `len` bytes ending at `self.pos`.
    fn mark_text(&mut self, len: u64) {
        if let Some(node) = self.nodes.last_mut() {
            node.text = Some((self.pos - len as usize, self.pos));
        }
    }

    /// The text of a `str` node (a `STACK_GLOBAL` operand).
    fn text(&self, node: usize, at: usize) -> Result<&'a [u8], String> {
        let bytes = self.bytes;
        match self.nodes[node].text {
            Some((start, end)) => Ok(&bytes[start..end]),
            None => Err(format!(
                "malformed pickle (STACK_GLOBAL at byte {at} without names)"
            )),
        }
    }

    fn leaf(&mut self, payload: u64) {
        self.nodes.push(Node {
            own: 1 + payload,
            text: None,
            container: false,
            global: false,
            children: Vec::new(),
        });
        self.stack.push(self.nodes.len() - 1);
    }

    fn fixed(&mut self, n: usize) -> Result<(), String> {
        self.take(n)?;
        self.leaf(0);
        Ok(())
    }

    fn payload(&mut self, len: u64) -> Result<(), String> {
        let n = usize::try_from(len).map_err(|_| "a length beyond memory".to_string())?;
        self.take(n)?;
        self.leaf(len);
        Ok(())
    }

    fn container(&mut self, children: Vec<usize>) {
        self.nodes.push(Node {
            own: 1,
            text: None,
            container: true,
            global: false,
            children,
        });
        self.stack.push(self.nodes.len() - 1);
    }

    fn pop(&mut self) -> Result<usize, String> {
        if self.marks.last() == Some(&self.stack.len()) {
            return Err("malformed pickle (a value missing after MARK)".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "malformed pickle (stack underflow)".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| "malformed pickle (no MARK)".to_string())?;
        Ok(self.stack.split_off(mark))
    }

    fn extend_top(&mut self, items: Vec<usize>, at: usize) -> Result<(), String> {
        let top = match self.stack.last() {
            Some(top) if self.marks.last() != Some(&self.stack.len()) => *top,
            _ => return Err(format!("malformed pickle (nothing to add to at byte {at})")),
        };
        let node = &mut self.nodes[top];
        if !node.container {
            return Err(format!(
                "malformed pickle (adding to a scalar at byte {at})"
            ));
        }
        node.children.extend(items);
        Ok(())
    }

    fn put(&mut self, id: u64) -> Result<(), String> {
        let top = match self.stack.last() {
            Some(top) if self.marks.last() != Some(&self.stack.len()) => *top,
            _ => return Err("malformed pickle (memoizing nothing)".into()),
        };
        self.memo.insert(id, top);
        Ok(())
    }

    /// The decoded size and depth of `root`, following shared references as often as they
    /// occur, without recursion (the input may nest deeper than any stack allows).
    fn measure(&self, root: usize) -> Result<(), String> {
        const NEW: u8 = 0;
        const ACTIVE: u8 = 1;
        const DONE: u8 = 2;
        let limit = (self.bytes.len() as u64)
            .saturating_mul(9)
            .saturating_add(MAX_EXPANSION);
        let mut state = vec![NEW; self.nodes.len()];
        let mut size = vec![0u64; self.nodes.len()];
        let mut depth = vec![0usize; self.nodes.len()];
        // (node, index of the next child to visit)
        let mut walk: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = ACTIVE;
        while let Some(&(node, next)) = walk.last() {
            let n = &self.nodes[node];
            if let Some(&child) = n.children.get(next) {
                if let Some(top) = walk.last_mut() {
                    top.1 += 1;
                }
                match state[child] {
                    NEW => {
                        state[child] = ACTIVE;
                        walk.push((child, 0));
                    }
                    ACTIVE => return Err("a recursive structure (a value contains itself)".into()),
                    _ => {}
                }
                continue;
            }
            walk.pop();
            let mut total = n.own;
            let mut deepest = 0;
            for &child in &n.children {
                total = total.saturating_add(size[child]);
                deepest = deepest.max(depth[child]);
            }
            let d = deepest + usize::from(n.container);
            if d > MAX_DEPTH {
                return Err(format!("values nested more than {MAX_DEPTH} deep"));
            }
            if total > limit {
                return Err(format!(
                    "refused: shared references expand the pickle's {} bytes past {limit} units",
                    self.bytes.len()
                ));
            }
            size[node] = total;
            depth[node] = d;
            state[node] = DONE;
        }
        Ok(())
    }
}

fn opcode_name(code: u8) -> &'static str {
    match code {
        op::BUILD => "BUILD",
        op::INST => "INST",
        op::OBJ => "OBJ",
        op::NEWOBJ => "NEWOBJ",
        op::NEWOBJ_EX => "NEWOBJ_EX",
        op::PERSID => "PERSID",
        op::BINPERSID => "BINPERSID",
        op::EXT1 => "EXT1",
        op::EXT2 => "EXT2",
        op::EXT4 => "EXT4",
        op::NEXT_BUFFER => "NEXT_BUFFER",
        op::READONLY_BUFFER => "READONLY_BUFFER",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde::Deserialize;

    use super::*;

    /// Golden pickles written by CPython (`tests/python/gen_pickle_fixtures.py`).
    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!("../../tests/fixtures/pickle/", $name, ".pickle"))[..]
        };
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        Pickle.decode(bytes, &TypeTag::of::<T>())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Doc {
        int: i64,
        neg: i32,
        big: u64,
        float: f64,
        text: String,
        none: Option<i64>,
        yes: bool,
        no: bool,
        list: Vec<u8>,
        pair: (i64, String),
        nested: HashMap<String, Vec<HashMap<String, i64>>>,
    }

    /// Python `bytes` arrive as serde bytes, which `Vec<u8>` does not accept (it wants a
    /// sequence); this is what `serde_bytes::ByteBuf` does.
    #[derive(Debug, PartialEq)]
    struct Bytes(Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    fn expected_doc() -> Doc {
        Doc {
            int: 42,
            neg: -300,
            big: 1 << 40,
            float: 1.5,
            text: "h\u{e9}llo \u{1F600}".into(),
            none: None,
            yes: true,
            no: false,
            list: vec![1, 2, 3],
            pair: (7, "seven".into()),
            nested: HashMap::from([("k".into(), vec![HashMap::from([("x".into(), 1)])])]),
        }
    }

    #[test]
    fn documents_of_protocols_2_to_5_decode_into_a_struct() {
        for bytes in [
            fixture!("doc_p2"),
            fixture!("doc_p3"),
            fixture!("doc_p4"),
            fixture!("doc_p5"),
        ] {
            assert_eq!(decode::<Doc>(bytes).unwrap(), expected_doc());
        }
    }

    #[test]
    fn bytes_sets_and_bytearrays_of_every_protocol() {
        for (bytes, set, frozen, array) in [
            (
                fixture!("bytes_p2"),
                fixture!("set_p2"),
                fixture!("frozenset_p2"),
                fixture!("bytearray_p2"),
            ),
            (
                fixture!("bytes_p3"),
                fixture!("set_p3"),
                fixture!("frozenset_p3"),
                fixture!("bytearray_p3"),
            ),
            (
                fixture!("bytes_p4"),
                fixture!("set_p4"),
                fixture!("frozenset_p4"),
                fixture!("bytearray_p4"),
            ),
            (
                fixture!("bytes_p5"),
                fixture!("set_p5"),
                fixture!("frozenset_p5"),
                fixture!("bytearray_p5"),
            ),
        ] {
            assert_eq!(
                decode::<Bytes>(bytes).unwrap(),
                Bytes(vec![0, 0xff, b'a', b'b'])
            );
            assert_eq!(
                decode::<HashSet<i64>>(set).unwrap(),
                HashSet::from([1, 2, 3])
            );
            assert_eq!(
                decode::<HashSet<String>>(frozen).unwrap(),
                HashSet::from(["a".to_string()])
            );
            assert_eq!(decode::<Bytes>(array).unwrap(), Bytes(b"ba".to_vec()));
        }
    }

    #[test]
    fn shared_references_decode_as_copies() {
        assert_eq!(
            decode::<Vec<String>>(fixture!("shared_str_p5")).unwrap(),
            ["abcabc", "abcabc"]
        );
        assert_eq!(
            decode::<Vec<Vec<i64>>>(fixture!("shared_list_p5")).unwrap(),
            [[1, 2], [1, 2]]
        );
    }

    #[test]
    fn the_documented_example_is_what_python_writes() {
        assert_eq!(decode::<String>(fixture!("str_p5")).unwrap(), "hello");
        let stored = b"\x80\x05\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.";
        assert_eq!(
            decode::<HashMap<String, i64>>(stored).unwrap(),
            HashMap::from([("a".to_string(), 1)])
        );
    }

    #[test]
    fn a_value_of_another_shape_is_a_decode_error() {
        let e = decode::<i64>(fixture!("str_p5")).unwrap_err();
        assert!(e.to_string().starts_with("pickle for i64: "), "{e}");
        let e = decode::<i64>(fixture!("big_int_p5")).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }

    #[test]
    fn encoding_is_refused_as_read_only() {
        let e = Pickle
            .encode(&1u8, &TypeTag::of::<u8>())
            .unwrap_err()
            .to_string();
        assert!(e.contains("read-only") && e.contains("u8"), "{e}");
        // Members and fields are pickles too: as read-only as values.
        let e = Pickle
            .encode_field("a", &TypeTag::of::<String>())
            .unwrap_err()
            .to_string();
        assert!(e.contains("read-only") && e.contains("String"), "{e}");
        let tag = TypeTag::of::<String>();
        assert_eq!(
            Pickle
                .decode_field::<String>(fixture!("str_p5"), &tag)
                .unwrap(),
            "hello"
        );
        assert!(
            Pickle
                .decode_field::<String>(fixture!("os_system_p5"), &tag)
                .is_err()
        );
    }

    fn refused(bytes: &[u8], expected: &str) {
        let e = decode::<HashMap<String, i64>>(bytes)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "expected {expected:?} in {e:?}");
    }

    #[test]
    fn code_and_objects_are_refused_before_decoding() {
        // Protocols 2 and 3 name the function with GLOBAL, 4 and 5 with STACK_GLOBAL.
        refused(fixture!("os_system_p2"), "the Python global posix.system");
        refused(fixture!("os_system_p3"), "the Python global posix.system");
        refused(fixture!("os_system_p4"), "the Python global posix.system");
        refused(fixture!("os_system_p5"), "the Python global posix.system");
        // Protocol 2 writes Python 3's `builtins` under its Python 2 name.
        refused(fixture!("eval_p2"), "the Python global __builtin__.eval");
        refused(fixture!("point_p2"), "the Python global __main__.Point");
        refused(fixture!("point_p5"), "the Python global __main__.Point");
        refused(
            fixture!("ordered_dict_p5"),
            "the Python global collections.OrderedDict",
        );
        refused(
            fixture!("datetime_p2"),
            "the Python global datetime.datetime",
        );
        refused(
            fixture!("datetime_p5"),
            "the Python global datetime.datetime",
        );
        refused(fixture!("persistent_p5"), "BINPERSID");
        refused(fixture!("ext1_p2"), "EXT1");
        refused(fixture!("dup_p5"), "DUP");
    }

    #[test]
    fn serde_pickle_alone_would_turn_an_object_into_data() {
        // Why the scan exists: without it, a class instance decodes as its attribute dict.
        let point: HashMap<String, i64> =
            serde_pickle::from_slice(fixture!("point_p5"), serde_pickle::DeOptions::new()).unwrap();
        assert_eq!(point, HashMap::from([("x".into(), 1), ("y".into(), 2)]));
    }

    #[test]
    fn a_hostile_pickle_has_no_effect() {
        let marker = std::path::Path::new("/tmp/redis-caches-pickle-pwned");
        let _ = std::fs::remove_file(marker);
        for bytes in [
            fixture!("os_system_p2"),
            fixture!("os_system_p3"),
            fixture!("os_system_p4"),
            fixture!("os_system_p5"),
            fixture!("eval_p2"),
        ] {
            assert!(decode::<String>(bytes).is_err());
            assert!(decode::<HashMap<String, String>>(bytes).is_err());
        }
        assert!(
            !marker.exists(),
            "a refused pickle created {}",
            marker.display()
        );
    }

    #[test]
    fn malformed_and_oversized_pickles_are_refused() {
        refused(fixture!("protocol0"), "protocols 0 and 1");
        refused(b"", "empty");
        refused(b"\x80\x06N.", "unsupported protocol 6");
        refused(fixture!("recursive_p5"), "recursive");
        refused(fixture!("bomb_p5"), "expand");
        refused(fixture!("deep_200_p5"), "nested more than 128");
        refused(fixture!("huge_len_p5"), "truncated");
        let doc = fixture!("doc_p5");
        refused(&doc[..doc.len() - 1], "truncated");
        let mut trailing = doc.to_vec();
        trailing.push(b'N');
        refused(&trailing, "1 trailing bytes");
        refused(b"\x80\x05h\x00.", "never set");
        refused(b"\x80\x05NNa.", "adding to a scalar");
        refused(b"\x80\x05(Na.", "nothing to add to");
        refused(b"\x80\x05K\x01K\x02\x93.", "without names");
        refused(b"\x80\x05.", "stack underflow");
        refused(b"\x80\x05(.", "missing after MARK");
        refused(b"\x80\x05\x80\x05N.", "second PROTO");
        refused(b"\x80\x05K\x01K\x02R.", "not callable");
    }

    #[test]
    fn nesting_up_to_the_limit_decodes() {
        #[derive(Deserialize)]
        struct Any(#[allow(dead_code)] serde::de::IgnoredAny);
        assert!(decode::<Any>(fixture!("deep_100_p5")).is_ok());
        // `None` in `depth` one-element tuples (TUPLE1): `depth` containers deep.
        let tuples = |depth: usize| {
            let mut p = b"\x80\x04N".to_vec();
            p.extend(std::iter::repeat_n(op::TUPLE1, depth));
            p.push(op::STOP);
            p
        };
        assert!(decode::<Any>(&tuples(MAX_DEPTH)).is_ok());
        let e = decode::<Any>(&tuples(MAX_DEPTH + 1))
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("nested more than 128"), "{e}");
    }

    #[test]
    fn shared_references_expand_up_to_the_allowance_and_no_further() {
        #[derive(Deserialize)]
        struct Any(#[allow(dead_code)] serde::de::IgnoredAny);
        // A list of a `t`-character string, `r - 1` more references to it and `nones` `None`s:
        // 1 + r * (1 + t) + nones units decoded, against 9 units a byte plus MAX_EXPANSION.
        let list = |t: usize, r: usize, nones: usize| {
            let mut p = vec![op::PROTO, 4, op::EMPTY_LIST, op::MARK, op::BINUNICODE];
            p.extend((t as u32).to_le_bytes());
            p.extend(std::iter::repeat_n(b'a', t));
            p.push(op::MEMOIZE);
            for _ in 1..r {
                p.extend([op::BINGET, 0]);
            }
            p.extend(std::iter::repeat_n(op::NONE, nones));
            p.extend([op::APPENDS, op::STOP]);
            let units = 1 + r as u64 * (1 + t as u64) + nones as u64;
            (units, 9 * p.len() as u64 + MAX_EXPANSION, p)
        };
        let (units, limit, at_limit) = list(1075, 7938, 4);
        assert_eq!(units, limit);
        assert!(decode::<Any>(&at_limit).is_ok());
        let (units, limit, over) = list(1392, 6110, 3);
        assert_eq!(units, limit + 1);
        refused(&over, "expand");
    }

    #[test]
    fn refused_objects_are_named_by_their_opcode() {
        for (code, name) in [
            (op::BUILD, "BUILD"),
            (op::INST, "INST"),
            (op::OBJ, "OBJ"),
            (op::NEWOBJ, "NEWOBJ"),
            (op::NEWOBJ_EX, "NEWOBJ_EX"),
            (op::PERSID, "PERSID"),
            (op::BINPERSID, "BINPERSID"),
            (op::EXT1, "EXT1"),
            (op::EXT2, "EXT2"),
            (op::EXT4, "EXT4"),
            (op::NEXT_BUFFER, "NEXT_BUFFER"),
            (op::READONLY_BUFFER, "READONLY_BUFFER"),
        ] {
            refused(&[op::PROTO, 5, code], &format!("(opcode {name})"));
        }
    }

    #[test]
    fn refused_globals_are_named_only_when_they_read_as_python_names() {
        let global = |module: &str, name: &str| {
            let mut p = vec![op::PROTO, 2, op::GLOBAL];
            p.extend(format!("{module}\n{name}\n.").bytes());
            p
        };
        refused(
            &global("my_pkg.sub", "do_it"),
            "the Python global my_pkg.sub.do_it (",
        );
        let longest = "m".repeat(64);
        refused(&global(&longest, "f"), &format!("global {longest}.f ("));
        for (module, name) in [
            ("", "system"),
            ("os", ""),
            ("o s", "system"),
            ("os", "sys-tem"),
            (&"m".repeat(65), "f"),
            ("os", &"n".repeat(65)),
        ] {
            refused(
                &global(module, name),
                "the Python global a global with an unusual name",
            );
        }
    }

    #[test]
    fn stack_and_mark_rules_follow_python() {
        // POP right after a MARK drops the mark, as in CPython.
        assert_eq!(decode::<Option<i64>>(b"\x80\x05(0N.").unwrap(), None);
        assert_eq!(decode::<i64>(b"\x80\x05K\x01K\x020.").unwrap(), 1);
        // Adding to or memoizing a value below an open MARK is malformed.
        refused(b"\x80\x05](Na.", "nothing to add to");
        refused(b"\x80\x05](\x94.", "memoizing nothing");
        // 32-bit lengths are signed: 2**31 is negative, 2**31 - 1 merely longer than the data.
        refused(b"\x80\x02T\x00\x00\x00\x80.", "negative length");
        refused(b"\x80\x02T\xff\xff\xff\x7f.", "truncated");
    }
}
