//! Tracing a type's shape through its `Deserialize` impl, and writing it as canonical text.
//!
//! The tracer is a [`Deserializer`](de::Deserializer) that answers every request with a
//! sample value and records what was asked for. It drives the type the way postcard does (a
//! struct as a sequence of its fields, an enum variant by its index, not human-readable), so
//! the shape it sees is the shape postcard stores. One run sees one variant of each enum, so
//! the type is traced again until every variant of every enum it reaches has been seen.
//! Containers (structs, enums, newtype and tuple structs) are identified by the Rust type
//! their visitor builds, never by name, and kept in a registry, which is how recursion is
//! recognised: a container met again inside itself is not descended into but answered with
//! the smallest value (`None`, an empty sequence or map, a variant known to terminate).

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use super::FieldForm;

/// Deeper values than this fail the trace: only types without finite values (or with very
/// deep nesting) get there.
const MAX_DEPTH: usize = 128;
/// Total `deserialize_*` calls over all runs, against runaway tracing of huge types.
const MAX_CALLS: usize = 1 << 20;
/// The longest canonical shape text: inlining a container at each use can grow a
/// many-times-shared type exponentially.
const MAX_SHAPE_LEN: usize = 1 << 20;

/// A traced type: its canonical shape text and how fields and members of it are stored.
#[derive(Debug)]
pub(crate) struct Traced {
    pub(crate) shape: String,
    pub(crate) field: FieldForm,
}

/// Traces `T`, or says why its shape cannot be seen.
pub(crate) fn trace<T: DeserializeOwned>() -> Result<Traced, String> {
    let mut tracer = Tracer::default();
    let mut root = Shape::Unknown;
    loop {
        let before = (root.clone(), tracer.entries.clone());
        tracer.stack.clear();
        tracer.in_progress.clear();
        tracer.last_leaf = None;
        tracer.dead_end = None;
        let mut shape = Shape::Unknown;
        let run = T::deserialize(TraceDe {
            tracer: &mut tracer,
            out: &mut shape,
            cut: false,
            depth: 0,
        });
        if let Err(e) = run {
            // A dead end: the next run takes another variant where this one went wrong.
            if let Some(choice) = tracer.dead_end.take() {
                tracer.avoid.insert(choice);
                continue;
            }
            // The type refused what it read, most likely the last primitive (a string that
            // must parse as a version, bytes that must be 16 long): offer that primitive
            // its next sample.
            match tracer.last_leaf.take() {
                Some((leaf, true)) if e.refused => {
                    *tracer.samples.entry(leaf).or_default() += 1;
                    continue;
                }
                _ => return Err(e.to_string()),
            }
        }
        merge(&mut root, shape)?;
        if tracer.shape_complete(&root, &mut vec![false; tracer.entries.len()]) {
            break;
        }
        if (&root, &tracer.entries) == (&before.0, &before.1) {
            // Nothing more to learn: writing the shape out says what is missing.
            break;
        }
    }
    let mut out = String::new();
    tracer.write_shape(&root, &mut Vec::new(), &mut out)?;
    Ok(Traced {
        field: tracer.field_form(&root),
        shape: out,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Prim {
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    Unit,
}

impl Prim {
    fn name(self) -> &'static str {
        match self {
            Prim::Bool => "bool",
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::I32 => "i32",
            Prim::I64 => "i64",
            Prim::I128 => "i128",
            Prim::U8 => "u8",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::U64 => "u64",
            Prim::U128 => "u128",
            Prim::F32 => "f32",
            Prim::F64 => "f64",
            Prim::Char => "char",
            Prim::Str => "str",
            Prim::Bytes => "bytes",
            Prim::Unit => "unit",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Shape {
    /// Not seen yet (a sequence whose visitor asked for no element, say).
    Unknown,
    Prim(Prim),
    Option(Box<Shape>),
    Seq(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    Tuple(Vec<Shape>),
    UnitStruct,
    /// A struct, enum, newtype or tuple struct: an index into the registry.
    Container(usize),
}

/// The contents of a struct-like container or of an enum variant.
#[derive(Clone, Debug, PartialEq)]
enum Body {
    Unit,
    Newtype(Shape),
    Tuple(Vec<Shape>),
    Struct(&'static [&'static str], Vec<Shape>),
}

#[derive(Clone, Debug, PartialEq)]
enum Def {
    /// A struct-like container met but not traced to the end yet.
    Pending,
    Data(Body),
    /// Variant names, and the body of each variant seen so far.
    Enum(&'static [&'static str], Vec<Option<Body>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Newtype,
    TupleStruct(usize),
    Struct,
    Enum,
}

/// What identifies a container: the type its visitor builds (lifetimes erased), plus what
/// serde was told about it, since a hand-written `Deserialize` may reuse one visitor.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    id: TypeId,
    name: &'static str,
    kind: Kind,
    names: &'static [&'static str],
}

#[derive(Default)]
struct Tracer {
    entries: Vec<Def>,
    keys: HashMap<Key, usize>,
    /// Containers being traced (not cut) on the current path.
    stack: Vec<usize>,
    /// (enum, variant) chosen on the current path.
    in_progress: Vec<(usize, usize)>,
    calls: usize,
    /// Which sample each leaf (the visitor asking, and for what) gets: the index into the
    /// primitive's samples, raised each time the leaf refuses one.
    samples: HashMap<(TypeId, Prim), usize>,
    /// [`compute_depths`](Tracer::compute_depths), until the registry changes.
    depths: std::cell::OnceCell<Vec<Option<usize>>>,
    /// The last primitive read in this run, and whether it has samples left.
    last_leaf: Option<((TypeId, Prim), bool)>,
    /// (enum, variant) choices that led into a dead end (see [`Tracer::dead_end`]): later
    /// runs choose another unseen variant there first.
    avoid: HashSet<(usize, usize)>,
    /// The choice this run blamed for a dead end, for the next run to avoid.
    dead_end: Option<(usize, usize)>,
}

#[derive(Debug)]
struct TraceError {
    message: String,
    /// Raised by the type's own code (it refused what it read), not by the tracer.
    refused: bool,
}

/// An error of the tracer's own: the type cannot be traced whatever the samples.
fn untraceable(message: String) -> TraceError {
    TraceError {
        message,
        refused: false,
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError {
            message: format!("its Deserialize refused the tracer's sample: {msg}"),
            refused: true,
        }
    }
}

type Result<T, E = TraceError> = std::result::Result<T, E>;

/// Merges what one run saw into what earlier runs saw: unknown parts are filled in, known
/// parts must agree.
fn merge(into: &mut Shape, new: Shape) -> Result<(), String> {
    match (into, new) {
        (_, Shape::Unknown) => Ok(()),
        (into @ Shape::Unknown, new) => {
            *into = new;
            Ok(())
        }
        (Shape::Option(a), Shape::Option(b)) | (Shape::Seq(a), Shape::Seq(b)) => merge(a, *b),
        (Shape::Map(ak, av), Shape::Map(bk, bv)) => {
            merge(ak, *bk)?;
            merge(av, *bv)
        }
        (Shape::Tuple(a), Shape::Tuple(b)) if a.len() == b.len() => merge_all(a, b),
        (a, b) if *a == b => Ok(()),
        _ => Err(inconsistent()),
    }
}

fn merge_all(into: &mut [Shape], new: Vec<Shape>) -> Result<(), String> {
    into.iter_mut().zip(new).try_for_each(|(a, b)| merge(a, b))
}

fn merge_body(into: &mut Body, new: Body) -> Result<(), String> {
    match (into, new) {
        (Body::Unit, Body::Unit) => Ok(()),
        (Body::Newtype(a), Body::Newtype(b)) => merge(a, b),
        (Body::Tuple(a), Body::Tuple(b)) if a.len() == b.len() => merge_all(a, b),
        (Body::Struct(an, a), Body::Struct(bn, b)) if *an == bn && a.len() == b.len() => {
            merge_all(a, b)
        }
        _ => Err(inconsistent()),
    }
}

fn inconsistent() -> String {
    "its Deserialize asked for different shapes on different runs".into()
}

fn shape_depth(shape: &Shape, depths: &[Option<usize>]) -> Option<usize> {
    match shape {
        Shape::Unknown => None,
        Shape::Prim(_) | Shape::UnitStruct | Shape::Option(_) | Shape::Seq(_) | Shape::Map(..) => {
            Some(0)
        }
        Shape::Tuple(shapes) => all_depth(shapes, depths),
        Shape::Container(i) => depths[*i],
    }
}

fn body_depth(body: &Body, depths: &[Option<usize>]) -> Option<usize> {
    match body {
        Body::Unit => Some(0),
        Body::Newtype(s) => shape_depth(s, depths),
        Body::Tuple(shapes) | Body::Struct(_, shapes) => all_depth(shapes, depths),
    }
}

/// The deepest of the parts, `None` if any cannot be built.
fn all_depth(shapes: &[Shape], depths: &[Option<usize>]) -> Option<usize> {
    shapes
        .iter()
        .try_fold(0, |deepest, s| Some(deepest.max(shape_depth(s, depths)?)))
}

impl Tracer {
    fn container(&mut self, key: Key) -> usize {
        let next = self.entries.len();
        *self.keys.entry(key).or_insert(next)
    }

    fn container_or_enum(&mut self, key: Key) -> usize {
        let variants = (key.kind == Kind::Enum).then_some(key.names);
        let index = self.container(key);
        if index == self.entries.len() {
            self.depths.take();
            self.entries.push(match variants {
                Some(names) => Def::Enum(names, vec![None; names.len()]),
                None => Def::Pending,
            });
        }
        index
    }

    /// Whether a container met now is answered without descending: it is already on the
    /// path (recursion), or everything below it is known.
    fn cut_at(&self, index: usize) -> bool {
        self.stack.contains(&index) || self.complete(index)
    }

    fn record(&mut self, index: usize, body: Body) -> Result<()> {
        self.depths.take();
        match &mut self.entries[index] {
            def @ Def::Pending => *def = Def::Data(body),
            Def::Data(known) => merge_body(known, body).map_err(untraceable)?,
            Def::Enum(..) => return Err(untraceable(inconsistent())),
        }
        Ok(())
    }

    fn record_variant(&mut self, index: usize, variant: usize, body: Body) -> Result<()> {
        self.depths.take();
        let Def::Enum(_, variants) = &mut self.entries[index] else {
            return Err(untraceable(inconsistent()));
        };
        match &mut variants[variant] {
            slot @ None => *slot = Some(body),
            Some(known) => merge_body(known, body).map_err(untraceable)?,
        }
        Ok(())
    }

    fn variant_unseen(&self, index: usize, variant: usize) -> bool {
        matches!(&self.entries[index], Def::Enum(_, variants) if variants[variant].is_none())
    }

    /// Everything reachable from the container is known.
    fn complete(&self, index: usize) -> bool {
        self.complete_from(index, &mut vec![false; self.entries.len()])
    }

    /// `seen` containers count as complete: they are being checked further up, or are
    /// deliberately left out.
    fn complete_from(&self, index: usize, seen: &mut [bool]) -> bool {
        if seen[index] {
            return true;
        }
        seen[index] = true;
        match &self.entries[index] {
            Def::Pending => false,
            Def::Data(body) => self.body_complete(body, seen),
            Def::Enum(_, variants) => variants
                .iter()
                .all(|v| v.as_ref().is_some_and(|b| self.body_complete(b, seen))),
        }
    }

    fn body_complete(&self, body: &Body, seen: &mut [bool]) -> bool {
        match body {
            Body::Unit => true,
            Body::Newtype(s) => self.shape_complete(s, seen),
            Body::Tuple(shapes) | Body::Struct(_, shapes) => {
                shapes.iter().all(|s| self.shape_complete(s, seen))
            }
        }
    }

    fn shape_complete(&self, shape: &Shape, seen: &mut [bool]) -> bool {
        match shape {
            Shape::Unknown => false,
            Shape::Prim(_) | Shape::UnitStruct => true,
            Shape::Option(s) | Shape::Seq(s) => self.shape_complete(s, seen),
            Shape::Map(k, v) => self.shape_complete(k, seen) && self.shape_complete(v, seen),
            Shape::Tuple(shapes) => shapes.iter().all(|s| self.shape_complete(s, seen)),
            Shape::Container(i) => self.complete_from(*i, seen),
        }
    }

    /// The depth of the smallest value of each container that cutting builds (options as
    /// `None`, sequences and maps empty, each enum as its shallowest variant), `None` where
    /// what is known builds none. A least fixpoint: depths only fall as the loop runs.
    fn compute_depths(&self) -> Vec<Option<usize>> {
        let mut depths: Vec<Option<usize>> = vec![None; self.entries.len()];
        loop {
            let mut lower = false;
            for (i, def) in self.entries.iter().enumerate() {
                let depth = match def {
                    Def::Pending => None,
                    Def::Data(body) => body_depth(body, &depths),
                    Def::Enum(_, variants) => variants
                        .iter()
                        .flatten()
                        .filter_map(|b| body_depth(b, &depths))
                        .min(),
                };
                if let Some(d) = depth.map(|d| d + 1)
                    && depths[i].is_none_or(|old| d < old)
                {
                    depths[i] = Some(d);
                    lower = true;
                }
            }
            if !lower {
                return depths;
            }
        }
    }

    /// The variant to take at enum `index`. Tracing takes, in order: a variant not seen yet;
    /// one leading to something not fully known (not through a container on the path, which
    /// would be cut there); then as when cutting. Cutting takes a seen variant that can be
    /// built; else one not seen yet (exploring); else anything not already taken on the path.
    /// Among variants not seen yet, one that led into a dead end before comes last. `None`:
    /// a dead end, every variant is taken on the path and none is known to build.
    fn choose_variant(&self, index: usize, cut: bool) -> Option<usize> {
        let Def::Enum(_, variants) = &self.entries[index] else {
            return Some(0);
        };
        let taken = |v: usize| self.in_progress.contains(&(index, v));
        let unseen = || {
            let fresh = |avoiding: bool| {
                (0..variants.len()).find(|&v| {
                    variants[v].is_none()
                        && !taken(v)
                        && !(avoiding && self.avoid.contains(&(index, v)))
                })
            };
            fresh(true).or_else(|| fresh(false))
        };
        if !cut {
            if let Some(v) = unseen() {
                return Some(v);
            }
            let mut on_path = vec![false; self.entries.len()];
            for &i in self.stack.iter().chain([&index]) {
                on_path[i] = true;
            }
            let incomplete = (0..variants.len()).find(|&v| {
                variants[v]
                    .as_ref()
                    .is_some_and(|b| !self.body_complete(b, &mut on_path.clone()))
            });
            if let Some(v) = incomplete {
                return Some(v);
            }
        }
        // The shallowest variant known to build: its contents are shallower than the enum,
        // so cutting always ends, and builds small values.
        let depths = self.depths.get_or_init(|| self.compute_depths());
        let shallowest = (0..variants.len())
            .filter_map(|v| Some((body_depth(variants[v].as_ref()?, depths)?, v)))
            .min();
        shallowest
            .map(|(_, v)| v)
            .or_else(unseen)
            .or_else(|| (0..variants.len()).find(|&v| !taken(v)))
    }

    /// At a dead end (an enum met again with every variant taken on the path and none known
    /// to build: `E::A(Box<E>)` then `E::B(F)`, `F::P(Box<E>)` while `F::Q` was never
    /// tried), the innermost choice on the path not blamed before is blamed, and the run
    /// ends so that the next one chooses differently there. When every choice has been
    /// blamed, the first variant is taken: a type without finite values then nests until
    /// the depth limit stops it.
    fn dead_end(&mut self) -> Result<usize> {
        let Some(&choice) = self
            .in_progress
            .iter()
            .rev()
            .find(|c| !self.avoid.contains(c))
        else {
            return Ok(0);
        };
        self.dead_end = Some(choice);
        Err(untraceable(
            "a dead end: every variant of an enum was already taken on the path".into(),
        ))
    }

    /// Canonical text of `shape`: containers inlined without their names, `^n` for the
    /// container `n` levels up when one recurs.
    fn write_shape(
        &self,
        shape: &Shape,
        path: &mut Vec<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        if out.len() > MAX_SHAPE_LEN {
            return Err(format!(
                "its shape is longer than {MAX_SHAPE_LEN} bytes written out"
            ));
        }
        match shape {
            Shape::Unknown => return Err("a part of its shape was never asked for".into()),
            Shape::Prim(p) => out.push_str(p.name()),
            Shape::Option(s) => self.write_wrapped("option<", s, path, out)?,
            Shape::Seq(s) => self.write_wrapped("seq<", s, path, out)?,
            Shape::Map(k, v) => {
                out.push_str("map<");
                self.write_shape(k, path, out)?;
                out.push(',');
                self.write_shape(v, path, out)?;
                out.push('>');
            }
            Shape::Tuple(shapes) => self.write_list("tuple<", shapes, path, out)?,
            Shape::UnitStruct => out.push_str("unit_struct"),
            Shape::Container(i) => {
                if let Some(pos) = path.iter().rposition(|p| p == i) {
                    let _ = write!(out, "^{}", path.len() - 1 - pos);
                    return Ok(());
                }
                path.push(*i);
                match &self.entries[*i] {
                    Def::Pending => return Err("a part of its shape was never traced".into()),
                    Def::Data(Body::Tuple(shapes)) => {
                        self.write_list("tuple_struct<", shapes, path, out)?
                    }
                    Def::Data(body) => self.write_body(body, path, out)?,
                    Def::Enum(names, variants) => {
                        out.push_str("enum{");
                        for (n, (name, body)) in names.iter().zip(variants).enumerate() {
                            if n > 0 {
                                out.push(',');
                            }
                            write_name(name, out);
                            out.push(':');
                            let body = body
                                .as_ref()
                                .ok_or_else(|| format!("its variant {name:?} was never seen"))?;
                            self.write_body(body, path, out)?;
                        }
                        out.push('}');
                    }
                }
                path.pop();
            }
        }
        Ok(())
    }

    fn write_wrapped(
        &self,
        open: &str,
        shape: &Shape,
        path: &mut Vec<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        out.push_str(open);
        self.write_shape(shape, path, out)?;
        out.push('>');
        Ok(())
    }

    fn write_list(
        &self,
        open: &str,
        shapes: &[Shape],
        path: &mut Vec<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        out.push_str(open);
        for (n, s) in shapes.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            self.write_shape(s, path, out)?;
        }
        out.push('>');
        Ok(())
    }

    fn write_body(
        &self,
        body: &Body,
        path: &mut Vec<usize>,
        out: &mut String,
    ) -> Result<(), String> {
        match body {
            Body::Unit => out.push_str("unit"),
            Body::Newtype(s) => self.write_wrapped("newtype<", s, path, out)?,
            Body::Tuple(shapes) => self.write_list("tuple<", shapes, path, out)?,
            Body::Struct(names, shapes) => {
                out.push_str("struct{");
                for (n, (name, s)) in names.iter().zip(shapes).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_name(name, out);
                    out.push(':');
                    self.write_shape(s, path, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }

    /// Strings and chars are stored as text, integers as decimal text, through any number of
    /// newtype structs; everything else is encoded.
    fn field_form(&self, shape: &Shape) -> FieldForm {
        let mut shape = shape;
        // A newtype chain longer than the registry would be a cycle: encoded.
        for _ in 0..=self.entries.len() {
            match shape {
                Shape::Prim(Prim::Str | Prim::Char) => return FieldForm::Text,
                Shape::Prim(
                    Prim::I8
                    | Prim::I16
                    | Prim::I32
                    | Prim::I64
                    | Prim::I128
                    | Prim::U8
                    | Prim::U16
                    | Prim::U32
                    | Prim::U64
                    | Prim::U128,
                ) => return FieldForm::Integer,
                Shape::Container(i) => match &self.entries[*i] {
                    Def::Data(Body::Newtype(inner)) => shape = inner,
                    _ => return FieldForm::Encoded,
                },
                _ => return FieldForm::Encoded,
            }
        }
        FieldForm::Encoded
    }
}

/// Field and variant names are quoted, `"` and `\` escaped, so that no name can imitate the
/// punctuation around it.
fn write_name(name: &str, out: &mut String) {
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The deserializer of a value inside one at depth `parent`: the one place depth grows.
fn nested<'a>(tracer: &'a mut Tracer, out: &'a mut Shape, cut: bool, parent: usize) -> TraceDe<'a> {
    TraceDe {
        tracer,
        out,
        cut,
        depth: parent + 1,
    }
}

/// Deserializes one value, writing its shape to `out`. When `cut`, it builds the smallest
/// value and what it writes is ignored.
struct TraceDe<'a> {
    tracer: &'a mut Tracer,
    out: &'a mut Shape,
    cut: bool,
    depth: usize,
}

impl<'a> TraceDe<'a> {
    fn enter(&mut self) -> Result<()> {
        self.tracer.calls += 1;
        if self.tracer.calls > MAX_CALLS {
            return Err(untraceable(format!(
                "tracing it took more than {MAX_CALLS} steps"
            )));
        }
        if self.depth > MAX_DEPTH {
            return Err(untraceable(format!(
                "its values nest deeper than {MAX_DEPTH} levels (a type without finite values?)"
            )));
        }
        Ok(())
    }

    /// A primitive: `visit` gets the current sample of this leaf (the visitor asking, and
    /// for what), and the leaf is noted as the last one read.
    fn leaf<'de, V: Visitor<'de>, S: Copy>(
        mut self,
        prim: Prim,
        samples: &[S],
        visit: impl FnOnce(S) -> Result<V::Value>,
    ) -> Result<V::Value> {
        self.enter()?;
        *self.out = Shape::Prim(prim);
        let leaf = (typeid::of::<V>(), prim);
        let index = self.tracer.samples.get(&leaf).copied().unwrap_or(0);
        let last = samples.len().saturating_sub(1);
        let Some(&sample) = samples.get(index.min(last)) else {
            return Err(untraceable("no sample for a primitive".into()));
        };
        self.tracer.last_leaf = Some((leaf, index < last));
        visit(sample)
    }

    /// Runs `visit` over a sequence access with one slot per element, and returns the slots.
    fn elements<V, F>(
        tracer: &mut Tracer,
        len: usize,
        cut: bool,
        depth: usize,
        visit: F,
    ) -> Result<(V, Vec<Shape>)>
    where
        F: FnOnce(Elements<'_>) -> Result<V>,
    {
        let mut slots = vec![Shape::Unknown; len];
        let value = visit(Elements {
            tracer,
            slots: slots.iter_mut(),
            cut,
            depth,
        })?;
        Ok((value, slots))
    }

    /// A struct-like container: `visit` reads it from a sequence of `len` elements (one for a
    /// newtype struct, read through `visit_newtype_struct` instead).
    fn container<V, F>(mut self, key: Key, len: usize, visit: F) -> Result<V>
    where
        F: FnOnce(&mut Tracer, bool, usize, &mut Vec<Shape>) -> Result<V>,
    {
        self.enter()?;
        let kind = key.kind;
        let names = key.names;
        let index = self.tracer.container_or_enum(key);
        *self.out = Shape::Container(index);
        let cut = self.cut || self.tracer.cut_at(index);
        let mut slots = vec![Shape::Unknown; len];
        if !cut {
            self.tracer.stack.push(index);
        }
        let value = visit(self.tracer, cut, self.depth, &mut slots)?;
        if !cut {
            self.tracer.stack.pop();
        }
        // A cut value leaves option, sequence and map contents unknown; what it saw still
        // counts for a container seen for the first time, and later runs fill in the rest.
        if !cut || matches!(self.tracer.entries[index], Def::Pending) {
            let body = match kind {
                Kind::Newtype => Body::Newtype(slots.pop().unwrap_or(Shape::Unknown)),
                Kind::TupleStruct(_) => Body::Tuple(slots),
                Kind::Struct | Kind::Enum => Body::Struct(names, slots),
            };
            self.tracer.record(index, body)?;
        }
        Ok(value)
    }
}

/// The samples offered to primitives, first to last: 1 rather than 0 and non-empty strings
/// first, so that common validation (`NonZeroU32`) accepts them; then values that types
/// parsing what they read commonly accept (16 bytes for a UUID, a version, a date...).
const BOOLS: &[bool] = &[false, true];
const INTEGERS: &[u8] = &[1, 0, 2];
const FLOATS: &[f32] = &[1.0, 0.0];
const CHARS: &[char] = &['a', '0'];
const STRS: &[&str] = &[
    "a",
    "0",
    "1",
    "",
    "1.0.0",
    "00000000-0000-0000-0000-000000000000",
    "1970-01-01T00:00:00Z",
    "1970-01-01",
    "00:00:00",
    "127.0.0.1",
    "127.0.0.1:1",
    "http://localhost/",
    "a@example.com",
];
const BYTE_LENGTHS: &[usize] = &[1, 16, 0, 32, 20, 8, 4, 12, 64, 2];
const ZEROS: [u8; 64] = [0; 64];

macro_rules! trace_leaves {
    ($($method:ident: $prim:ident, $samples:ident => |$s:ident| $visit:ident($arg:expr)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.leaf::<V, _>(Prim::$prim, $samples, |$s| visitor.$visit($arg))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TraceDe<'_> {
    type Error = TraceError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(untraceable(
            "its Deserialize asks the data for its own type (deserialize_any), which \
             postcard cannot answer either"
                .into(),
        ))
    }

    trace_leaves!(
        deserialize_bool: Bool, BOOLS => |s| visit_bool(s),
        deserialize_i8: I8, INTEGERS => |s| visit_i8(s as i8),
        deserialize_i16: I16, INTEGERS => |s| visit_i16(s.into()),
        deserialize_i32: I32, INTEGERS => |s| visit_i32(s.into()),
        deserialize_i64: I64, INTEGERS => |s| visit_i64(s.into()),
        deserialize_i128: I128, INTEGERS => |s| visit_i128(s.into()),
        deserialize_u8: U8, INTEGERS => |s| visit_u8(s),
        deserialize_u16: U16, INTEGERS => |s| visit_u16(s.into()),
        deserialize_u32: U32, INTEGERS => |s| visit_u32(s.into()),
        deserialize_u64: U64, INTEGERS => |s| visit_u64(s.into()),
        deserialize_u128: U128, INTEGERS => |s| visit_u128(s.into()),
        deserialize_f32: F32, FLOATS => |s| visit_f32(s),
        deserialize_f64: F64, FLOATS => |s| visit_f64(s.into()),
        deserialize_char: Char, CHARS => |s| visit_char(s),
        deserialize_str: Str, STRS => |s| visit_str(s),
        deserialize_string: Str, STRS => |s| visit_string(s.to_string()),
        deserialize_bytes: Bytes, BYTE_LENGTHS => |s| visit_bytes(&ZEROS[..s]),
        deserialize_byte_buf: Bytes, BYTE_LENGTHS => |s| visit_byte_buf(ZEROS[..s].to_vec()),
    );

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.leaf::<V, _>(Prim::Unit, &[()], |()| visitor.visit_unit())
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        if self.cut {
            *self.out = Shape::Option(Box::new(Shape::Unknown));
            return visitor.visit_none();
        }
        let mut inner = Shape::Unknown;
        let value = visitor.visit_some(nested(self.tracer, &mut inner, false, self.depth))?;
        *self.out = Shape::Option(Box::new(inner));
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.enter()?;
        *self.out = Shape::UnitStruct;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let key = Key {
            id: typeid::of::<V::Value>(),
            name,
            kind: Kind::Newtype,
            names: &[],
        };
        self.container(key, 1, |tracer, cut, depth, slots| {
            visitor.visit_newtype_struct(nested(tracer, &mut slots[0], cut, depth))
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        // One element while tracing, none when cutting.
        let len = usize::from(!self.cut);
        let (value, mut slots) = Self::elements(self.tracer, len, self.cut, self.depth, |e| {
            visitor.visit_seq(e)
        })?;
        *self.out = Shape::Seq(Box::new(slots.pop().unwrap_or(Shape::Unknown)));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(mut self, len: usize, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let (value, slots) = Self::elements(self.tracer, len, self.cut, self.depth, |e| {
            visitor.visit_seq(e)
        })?;
        *self.out = Shape::Tuple(slots);
        Ok(value)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        let key = Key {
            id: typeid::of::<V::Value>(),
            name,
            kind: Kind::TupleStruct(len),
            names: &[],
        };
        self.container(key, len, |tracer, cut, depth, slots| {
            visitor.visit_seq(Elements {
                tracer,
                slots: slots.iter_mut(),
                cut,
                depth,
            })
        })
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let (mut key, mut value) = (Shape::Unknown, Shape::Unknown);
        let cut = self.cut;
        let result = visitor.visit_map(Entries {
            tracer: self.tracer,
            key: (!cut).then_some(&mut key),
            value: Some(&mut value),
            cut,
            depth: self.depth,
        })?;
        *self.out = Shape::Map(Box::new(key), Box::new(value));
        Ok(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let key = Key {
            id: typeid::of::<V::Value>(),
            name,
            kind: Kind::Struct,
            names: fields,
        };
        self.container(key, fields.len(), |tracer, cut, depth, slots| {
            visitor.visit_seq(Elements {
                tracer,
                slots: slots.iter_mut(),
                cut,
                depth,
            })
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.enter()?;
        if variants.is_empty() {
            return Err(untraceable("an enum without variants has no values".into()));
        }
        let index = self.tracer.container_or_enum(Key {
            id: typeid::of::<V::Value>(),
            name,
            kind: Kind::Enum,
            names: variants,
        });
        *self.out = Shape::Container(index);
        let cut = self.cut || self.tracer.cut_at(index);
        let variant = match self.tracer.choose_variant(index, cut) {
            Some(variant) => variant,
            None => self.tracer.dead_end()?,
        };
        self.tracer.in_progress.push((index, variant));
        if !cut {
            self.tracer.stack.push(index);
        }
        let mut body = None;
        let value = visitor.visit_enum(Variant {
            tracer: self.tracer,
            index: variant,
            out: &mut body,
            cut,
            depth: self.depth,
        })?;
        self.tracer.in_progress.pop();
        if !cut {
            self.tracer.stack.pop();
        }
        // As for containers: a variant first seen while cutting is recorded, so that a base
        // case (`Leaf`) is known, and chosen, as soon as it has been met once.
        if !cut || self.tracer.variant_unseen(index, variant) {
            let body = body.ok_or_else(|| untraceable("it read no variant contents".into()))?;
            self.tracer.record_variant(index, variant, body)?;
        }
        Ok(value)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(untraceable(
            "its Deserialize asks for an identifier outside an enum".into(),
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        // As postcard: types such as `IpAddr` then ask for their compact form.
        false
    }
}

struct Elements<'a> {
    tracer: &'a mut Tracer,
    slots: std::slice::IterMut<'a, Shape>,
    cut: bool,
    /// The depth of the value these belong to.
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = TraceError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        match self.slots.next() {
            Some(out) => seed
                .deserialize(nested(self.tracer, out, self.cut, self.depth))
                .map(Some),
            None => Ok(None),
        }
    }
}

/// A map of one entry while tracing, of none when cutting.
struct Entries<'a> {
    tracer: &'a mut Tracer,
    key: Option<&'a mut Shape>,
    value: Option<&'a mut Shape>,
    cut: bool,
    /// The depth of the value these belong to.
    depth: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = TraceError;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        match self.key.take() {
            Some(out) => seed
                .deserialize(nested(self.tracer, out, self.cut, self.depth))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let out = self
            .value
            .take()
            .ok_or_else(|| untraceable("its Deserialize read a map value twice".into()))?;
        seed.deserialize(nested(self.tracer, out, self.cut, self.depth))
    }
}

/// The chosen variant of an enum, named by its index as postcard names it.
struct Variant<'a> {
    tracer: &'a mut Tracer,
    index: usize,
    out: &'a mut Option<Body>,
    cut: bool,
    /// The depth of the value these belong to.
    depth: usize,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = TraceError;
    type Variant = Variant<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        let index = u32::try_from(self.index)
            .map_err(|_| untraceable("an enum with more than 2^32 variants".into()))?;
        // A refused variant index is no primitive's fault: no other sample would help.
        self.tracer.last_leaf = None;
        let value = seed.deserialize(de::value::U32Deserializer::<TraceError>::new(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<()> {
        *self.out = Some(Body::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        let mut inner = Shape::Unknown;
        let value = seed.deserialize(nested(self.tracer, &mut inner, self.cut, self.depth))?;
        *self.out = Some(Body::Newtype(inner));
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        let (value, slots) = TraceDe::elements(self.tracer, len, self.cut, self.depth, |e| {
            visitor.visit_seq(e)
        })?;
        *self.out = Some(Body::Tuple(slots));
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let (value, slots) =
            TraceDe::elements(self.tracer, fields.len(), self.cut, self.depth, |e| {
                visitor.visit_seq(e)
            })?;
        *self.out = Some(Body::Struct(fields, slots));
        Ok(value)
    }
}
