//! `SortedSetCache` against real Redis servers: a sorted-vector model ordered like Redis
//! (score, then encoded member bytes), TTL policies, exact limits, paging, bad data, and the
//! commands each operation sends.

mod support;

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use proptest::prelude::*;
use redis_caches::codec::{Codec, Postcard, TypeTag};
use redis_caches::sorted_set::{InsertMode, Limit};
use redis_caches::{Connection, Error, SortedSetCache, Ttl, TtlPolicy};
use support::redis_helpers::{Pinned, assert_handle, commands, ignore, raw_exec};
use support::{RedisServer, eventually, unique};

fn zset<T>(conn: &Connection, key: &str) -> SortedSetCache<T> {
    SortedSetCache::builder(key).connection(conn).build()
}

#[test]
fn handles_are_clone_send_sync_and_debug_shows_the_key_only() {
    assert_handle::<SortedSetCache<String>>();
    let s: SortedSetCache<String> = SortedSetCache::new(["game", "board"]);
    let shown = format!("{s:?}");
    assert!(shown.contains("SortedSetCache"), "{shown}");
    assert!(shown.contains("game.board"), "{shown}");
}

/// The model: members with scores, ordered as Redis orders them.
#[derive(Default)]
struct Model {
    scores: HashMap<String, f64>,
}

impl Model {
    fn bytes(member: &str) -> Vec<u8> {
        Postcard
            .encode_field(member, &TypeTag::of::<String>())
            .expect("encode")
    }

    /// Ascending: by score, then by the encoded member bytes (what Redis compares).
    fn sorted(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self.scores.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| {
            a.1.partial_cmp(&b.1)
                .expect("no NaN in the model")
                .then_with(|| Model::bytes(&a.0).cmp(&Model::bytes(&b.0)))
        });
        v
    }

    fn sorted_rev(&self) -> Vec<(String, f64)> {
        let mut v = self.sorted();
        v.reverse();
        v
    }

    fn rank(&self, member: &str) -> Option<usize> {
        self.sorted().iter().position(|(m, _)| m == member)
    }

    /// `ZADD` with a mode and `CH`: whether something changed.
    fn insert_with(&mut self, member: &str, score: f64, mode: InsertMode) -> bool {
        let old = self.scores.get(member).copied();
        let (may_add, may_update): (bool, fn(f64, f64) -> bool) = match mode {
            InsertMode::Always => (true, |_, _| true),
            InsertMode::OnlyNew => (true, |_, _| false),
            InsertMode::OnlyExisting => (false, |_, _| true),
            InsertMode::NewOrGreater => (true, |old, new| new > old),
            InsertMode::NewOrLess => (true, |old, new| new < old),
            InsertMode::ExistingIfGreater => (false, |old, new| new > old),
            InsertMode::ExistingIfLess => (false, |old, new| new < old),
            _ => unreachable!("a mode this test does not know"),
        };
        match old {
            None if may_add => {
                self.scores.insert(member.to_string(), score);
                true
            }
            None => false,
            Some(old) if may_update(old, score) && old != score => {
                self.scores.insert(member.to_string(), score);
                true
            }
            Some(_) => false,
        }
    }
}

fn in_bounds(score: f64, lo: Bound<f64>, hi: Bound<f64>) -> bool {
    let above = match lo {
        Bound::Included(l) => score >= l,
        Bound::Excluded(l) => score > l,
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => score <= h,
        Bound::Excluded(h) => score < h,
        Bound::Unbounded => true,
    };
    above && below
}

fn window<T: Clone>(items: &[T], offset: usize, count: Option<usize>) -> Vec<T> {
    items
        .iter()
        .skip(offset)
        .take(count.unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Insert(String, f64),
    InsertWith(String, f64, InsertMode),
    IncrScore(String, f64),
    Remove(String),
    Score(String),
    Rank(String),
    RankRev(String),
    Contains(String),
    Len,
    PopMin,
    PopMax,
    Range(usize, usize),
    RangeRev(usize, usize),
    RangeByScore(Bound<f64>, Bound<f64>, usize, Option<usize>, bool),
    Extend(Vec<(String, f64)>),
    Clear,
}

fn member() -> impl Strategy<Value = String> {
    // Short and long names, so that the encoded bytes (length first) order differently from
    // the strings.
    proptest::sample::select(vec![
        "a", "b", "ab", "ba", "abc", "z", "zz", "", "bob", "ada",
    ])
    .prop_map(str::to_string)
}

fn score() -> impl Strategy<Value = f64> {
    proptest::sample::select(vec![
        -2.0,
        -0.5,
        0.0,
        1.0,
        1.5,
        1.7,
        3.25,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ])
}

fn finite_score() -> impl Strategy<Value = f64> {
    proptest::sample::select(vec![-2.0, -0.5, 0.0, 0.25, 1.0, 7.5])
}

fn bound() -> impl Strategy<Value = Bound<f64>> {
    prop_oneof![
        score().prop_map(Bound::Included),
        score().prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn mode() -> impl Strategy<Value = InsertMode> {
    proptest::sample::select(vec![
        InsertMode::Always,
        InsertMode::OnlyNew,
        InsertMode::OnlyExisting,
        InsertMode::NewOrGreater,
        InsertMode::NewOrLess,
        InsertMode::ExistingIfGreater,
        InsertMode::ExistingIfLess,
    ])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (member(), score()).prop_map(|(m, s)| Op::Insert(m, s)),
        2 => (member(), score(), mode()).prop_map(|(m, s, md)| Op::InsertWith(m, s, md)),
        2 => (member(), finite_score()).prop_map(|(m, s)| Op::IncrScore(m, s)),
        2 => member().prop_map(Op::Remove),
        1 => member().prop_map(Op::Score),
        1 => member().prop_map(Op::Rank),
        1 => member().prop_map(Op::RankRev),
        1 => member().prop_map(Op::Contains),
        1 => Just(Op::Len),
        1 => Just(Op::PopMin),
        1 => Just(Op::PopMax),
        1 => (0usize..12, 0usize..12).prop_map(|(a, n)| Op::Range(a, n)),
        1 => (0usize..12, 0usize..12).prop_map(|(a, n)| Op::RangeRev(a, n)),
        2 => (bound(), bound(), 0usize..5, proptest::option::of(0usize..6), any::<bool>())
            .prop_map(|(lo, hi, off, n, rev)| Op::RangeByScore(lo, hi, off, n, rev)),
        1 => proptest::collection::vec((member(), score()), 0..8).prop_map(Op::Extend),
        1 => Just(Op::Clear),
    ]
}

#[test]
fn behaves_like_a_model_ordered_by_score_then_member_bytes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let s: SortedSetCache<String> = zset(&conn, &unique("model"));
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert(m, score) => {
                    let new = !model.scores.contains_key(&m);
                    model.scores.insert(m.clone(), score);
                    prop_assert_eq!(s.insert(&m, score).unwrap(), new);
                }
                Op::InsertWith(m, score, mode) => {
                    let changed = model.insert_with(&m, score, mode);
                    prop_assert_eq!(s.insert_with(&m, score, mode).unwrap(), changed, "{:?}", mode);
                }
                Op::IncrScore(m, by) => {
                    let new = model.scores.get(&m).copied().unwrap_or(0.0) + by;
                    model.scores.insert(m.clone(), new);
                    prop_assert_eq!(s.incr_score(&m, by).unwrap(), new);
                }
                Op::Remove(m) => {
                    prop_assert_eq!(s.remove(&m).unwrap(), model.scores.remove(&m).is_some());
                }
                Op::Score(m) => prop_assert_eq!(s.score(&m).unwrap(), model.scores.get(&m).copied()),
                Op::Rank(m) => prop_assert_eq!(s.rank(&m).unwrap(), model.rank(&m)),
                Op::RankRev(m) => {
                    let expected = model.rank(&m).map(|r| model.scores.len() - 1 - r);
                    prop_assert_eq!(s.rank_rev(&m).unwrap(), expected);
                }
                Op::Contains(m) => prop_assert_eq!(s.contains(&m).unwrap(), model.scores.contains_key(&m)),
                Op::Len => prop_assert_eq!(s.len().unwrap(), model.scores.len()),
                Op::PopMin => {
                    let expected = model.sorted().into_iter().next();
                    if let Some((m, _)) = &expected { model.scores.remove(m); }
                    prop_assert_eq!(s.pop_min().unwrap(), expected);
                }
                Op::PopMax => {
                    let expected = model.sorted_rev().into_iter().next();
                    if let Some((m, _)) = &expected { model.scores.remove(m); }
                    prop_assert_eq!(s.pop_max().unwrap(), expected);
                }
                Op::Range(start, n) => {
                    prop_assert_eq!(s.range(start..start + n).unwrap(), window(&model.sorted(), start, Some(n)));
                    prop_assert_eq!(s.range(start..).unwrap(), window(&model.sorted(), start, None));
                }
                Op::RangeRev(start, n) => {
                    prop_assert_eq!(s.range_rev(start..start + n).unwrap(), window(&model.sorted_rev(), start, Some(n)));
                    if n > 0 {
                        prop_assert_eq!(s.range_rev(start..=start + n - 1).unwrap(), window(&model.sorted_rev(), start, Some(n)));
                    }
                }
                Op::RangeByScore(lo, hi, offset, count, rev) => {
                    let limit = match count { Some(n) => Limit::new(offset, n), None => Limit::skip(offset) };
                    let (got, all) = if rev {
                        (s.range_by_score_rev((lo, hi), limit).unwrap(), model.sorted_rev())
                    } else {
                        (s.range_by_score((lo, hi), limit).unwrap(), model.sorted())
                    };
                    let matching: Vec<_> = all.into_iter().filter(|(_, sc)| in_bounds(*sc, lo, hi)).collect();
                    prop_assert_eq!(got, window(&matching, offset, count), "{:?}..{:?} {:?}", lo, hi, limit);
                }
                Op::Extend(pairs) => {
                    let before = model.scores.len();
                    for (m, sc) in &pairs { model.scores.insert(m.clone(), *sc); }
                    prop_assert_eq!(s.extend(pairs).unwrap(), model.scores.len() - before);
                }
                Op::Clear => {
                    prop_assert_eq!(s.clear().unwrap(), !model.scores.is_empty());
                    model.scores.clear();
                }
            }
        }
        let asc: Vec<(String, f64)> = s.iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(asc, model.sorted());
        let desc: Vec<(String, f64)> = s.iter_rev().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(desc, model.sorted_rev());
        prop_assert_eq!(s.is_empty().unwrap(), model.scores.is_empty());
    });
}

#[test]
fn scores_are_stored_as_given() {
    let server = RedisServer::start();
    let s: SortedSetCache<String> = zset(&server.connection(), "scores");
    for (m, score) in [
        ("a", 1.7),
        ("b", -0.1),
        ("c", 1e-300),
        ("d", 123_456_789.123_456_79),
        ("h", 0.1 + 0.2),
        ("e", f64::INFINITY),
        ("f", f64::NEG_INFINITY),
        ("g", f64::MAX),
    ] {
        s.insert(m, score).unwrap();
        assert_eq!(s.score(m).unwrap(), Some(score), "{m}");
    }
    assert_eq!(
        s.pop_min().unwrap(),
        Some(("f".to_string(), f64::NEG_INFINITY))
    );
    assert_eq!(s.pop_max().unwrap(), Some(("e".to_string(), f64::INFINITY)));
    assert_eq!(s.range(..1).unwrap(), vec![("b".to_string(), -0.1)]);
}

#[test]
fn nan_is_refused_before_anything_is_sent() {
    let server = RedisServer::start();
    let s: SortedSetCache<String> = zset(&server.connection(), "nan");
    s.insert("a", 1.0).unwrap();
    let sent = server.count_commands(|| {
        let errors = [
            s.insert("a", f64::NAN).unwrap_err(),
            s.insert_with("a", f64::NAN, InsertMode::NewOrGreater)
                .unwrap_err(),
            s.incr_score("a", f64::NAN).unwrap_err(),
            s.extend([("b".to_string(), f64::NAN)]).unwrap_err(),
            s.range_by_score(f64::NAN.., Limit::ALL).unwrap_err(),
            s.range_by_score_rev(..=f64::NAN, Limit::ALL).unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::InvalidScore { .. }), "{err:?}");
            assert!(err.to_string().contains("nan"), "{err}");
        }
    });
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(s.score("a").unwrap(), Some(1.0));
}

#[test]
fn limits_are_exact() {
    let server = RedisServer::start();
    let s: SortedSetCache<u32> = zset(&server.connection(), "limits");
    s.extend((0..10u32).map(|i| (i, f64::from(i)))).unwrap();
    let members = |v: Vec<(u32, f64)>| v.into_iter().map(|(m, _)| m).collect::<Vec<_>>();
    assert_eq!(
        members(s.range_by_score(.., Limit::first(3)).unwrap()),
        [0, 1, 2]
    );
    assert_eq!(
        members(s.range_by_score_rev(.., Limit::first(3)).unwrap()),
        [9, 8, 7]
    );
    assert_eq!(
        members(s.range_by_score(.., Limit::new(8, 5)).unwrap()),
        [8, 9]
    );
    assert_eq!(
        members(s.range_by_score(2.0..5.0, Limit::ALL).unwrap()),
        [2, 3, 4]
    );
    assert_eq!(
        members(
            s.range_by_score((Bound::Excluded(2.0), Bound::Included(5.0)), Limit::skip(1))
                .unwrap()
        ),
        [4, 5]
    );
    assert_eq!(
        members(s.range_by_score(.., Limit::first(0)).unwrap()),
        Vec::<u32>::new()
    );
    assert_eq!(members(s.range(..3).unwrap()), [0, 1, 2]);
    assert_eq!(members(s.range(2..=3).unwrap()), [2, 3]);
    assert_eq!(members(s.range(3..3).unwrap()), Vec::<u32>::new());
    assert_eq!(members(s.range(..0).unwrap()), Vec::<u32>::new());
    assert_eq!(members(s.range(8..100).unwrap()), [8, 9]);
    assert_eq!(members(s.range_rev(..3).unwrap()), [9, 8, 7]);
    assert_eq!(s.range(..).unwrap().len(), 10);
    // Iteration stops exactly where asked.
    let first: Vec<_> = s.iter().take(4).collect::<Result<_, _>>().unwrap();
    assert_eq!(members(first), [0, 1, 2, 3]);
}

#[test]
fn pages_through_3000_members_in_both_directions() {
    let server = RedisServer::start();
    let s: SortedSetCache<u32> = zset(&server.connection(), "big");
    // Ties every ten members, broken by the member bytes.
    let sent = server.count_commands(|| {
        let added = s
            .extend((0..3000u32).map(|i| (i, f64::from(i / 10))))
            .unwrap();
        assert_eq!(added, 3000);
    });
    assert_eq!(sent, commands(&[("zadd", 3)]), "one ZADD per 1,000 members");
    let encoded = |m: u32| Postcard.encode_field(&m, &TypeTag::of::<u32>()).unwrap();
    let mut expected: Vec<u32> = (0..3000).collect();
    expected.sort_by_key(|&m| (m / 10, encoded(m)));

    let sent = server.count_commands(|| {
        let asc: Vec<u32> = s
            .iter()
            .map(|r| {
                r.map(|(m, score)| {
                    assert_eq!(score, f64::from(m / 10));
                    m
                })
            })
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(asc, expected);
    });
    assert_eq!(
        sent,
        commands(&[("zrange", 4)]),
        "three full pages and an empty one"
    );

    let desc: Vec<u32> = s
        .iter_rev()
        .map(|r| r.map(|(m, _)| m))
        .collect::<Result<_, _>>()
        .unwrap();
    expected.reverse();
    assert_eq!(desc, expected);
    let mut n = 0;
    for entry in &s {
        entry.unwrap();
        n += 1;
    }
    assert_eq!(n, 3000);
}

#[test]
fn insert_modes() {
    let server = RedisServer::start();
    let s: SortedSetCache<String> = zset(&server.connection(), "modes");
    assert!(!s.insert_with("a", 5.0, InsertMode::OnlyExisting).unwrap());
    assert!(!s.contains("a").unwrap());
    assert!(s.insert_with("a", 5.0, InsertMode::OnlyNew).unwrap());
    assert!(!s.insert_with("a", 9.0, InsertMode::OnlyNew).unwrap());
    assert!(!s.insert_with("a", 4.0, InsertMode::NewOrGreater).unwrap());
    assert!(s.insert_with("a", 6.0, InsertMode::NewOrGreater).unwrap());
    assert!(s.insert_with("a", 2.0, InsertMode::NewOrLess).unwrap());
    assert!(!s.insert_with("b", 2.0, InsertMode::ExistingIfLess).unwrap());
    assert!(s.insert_with("b", 2.0, InsertMode::NewOrLess).unwrap());
    assert!(
        s.insert_with("b", 3.0, InsertMode::ExistingIfGreater)
            .unwrap()
    );
    assert!(!s.insert_with("b", 3.0, InsertMode::Always).unwrap());
    assert_eq!(s.score("a").unwrap(), Some(2.0));
    assert_eq!(s.score("b").unwrap(), Some(3.0));
}

#[test]
fn every_write_refreshes_the_ttl_under_refresh() {
    let server = RedisServer::start();
    let s: SortedSetCache<u32> = SortedSetCache::builder("refresh")
        .connection(server.connection())
        .ttl(Duration::from_secs(60))
        .build();
    type Write = fn(&SortedSetCache<u32>);
    let writes: [(&str, Write); 7] = [
        ("insert", |s| ignore(s.insert(&1, 1.0))),
        ("insert_with", |s| {
            ignore(s.insert_with(&1, 0.0, InsertMode::OnlyNew))
        }),
        ("incr_score", |s| ignore(s.incr_score(&2, 1.0))),
        ("remove", |s| ignore(s.remove(&99))),
        ("extend", |s| ignore(s.extend([(3, 3.0)]))),
        ("pop_min", |s| ignore(s.pop_min())),
        ("pop_max", |s| ignore(s.pop_max())),
    ];
    s.extend((10..20).map(|i| (i, 0.0))).unwrap();
    for (name, write) in writes {
        assert!(s.expire(Duration::from_secs(1)).unwrap());
        write(&s);
        let left = s.ttl().unwrap().remaining().unwrap();
        assert!(
            left > Duration::from_secs(50),
            "{name} did not refresh: {left:?}"
        );
    }
}

#[test]
fn keep_policy_sets_the_ttl_once_and_millisecond_ttls_expire() {
    let server = RedisServer::start();
    let conn = server.connection();
    let s: SortedSetCache<u32> = SortedSetCache::builder("keep")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .ttl_policy(TtlPolicy::Keep)
        .build();
    s.insert(&1, 1.0).unwrap();
    assert!(s.ttl().unwrap().remaining().unwrap() > Duration::from_secs(50));
    assert!(s.expire(Duration::from_secs(1)).unwrap());
    s.insert(&2, 2.0).unwrap();
    s.incr_score(&1, 1.0).unwrap();
    s.extend([(3, 3.0)]).unwrap();
    let left = s.ttl().unwrap().remaining().unwrap();
    assert!(
        left <= Duration::from_secs(1),
        "keep policy refreshed: {left:?}"
    );

    let short: SortedSetCache<u32> = SortedSetCache::builder("short")
        .connection(&conn)
        .ttl(Duration::from_millis(40))
        .build();
    short.insert(&1, 1.0).unwrap();
    assert!(matches!(short.ttl().unwrap(), Ttl::Expires(_)));
    assert!(eventually(Duration::from_secs(5), || !short
        .exists()
        .unwrap()));
    assert_eq!(short.len().unwrap(), 0);
}

#[test]
fn foreign_bytes_give_a_decode_error_naming_the_key() {
    let server = RedisServer::start();
    let s: SortedSetCache<String> = zset(&server.connection(), "foreign");
    raw_exec(&server, "ZADD", ("foreign", 1, b"\xff\x00 not postcard"));
    for err in [
        s.range(..).unwrap_err(),
        s.range_by_score(.., Limit::ALL).unwrap_err(),
        s.iter().next().unwrap().unwrap_err(),
        s.pop_max().unwrap_err(),
    ] {
        assert!(err.is_decode(), "{err:?}");
        assert!(err.to_string().contains("foreign"), "{err}");
    }
    assert!(!s.exists().unwrap(), "pop removed the member all the same");
}

#[test]
fn another_redis_type_gives_wrong_type() {
    let server = RedisServer::start();
    raw_exec(&server, "SADD", ("set", "x"));
    let s: SortedSetCache<u32> = zset(&server.connection(), "set");
    let errors = [
        s.insert(&1, 1.0).unwrap_err(),
        s.score(&1).unwrap_err(),
        s.rank(&1).unwrap_err(),
        s.len().unwrap_err(),
        s.pop_min().unwrap_err(),
        s.range(..).unwrap_err(),
        s.range_by_score(.., Limit::ALL).unwrap_err(),
        s.iter_rev().next().unwrap().unwrap_err(),
        s.extend([(1, 1.0)]).unwrap_err(),
    ];
    for err in errors {
        match err {
            Error::WrongType {
                key,
                expected,
                found,
            } => {
                assert_eq!(key, "set");
                assert_eq!(expected, "zset");
                assert_eq!(found, "set");
            }
            other => panic!("expected WrongType, got {other:?}"),
        }
    }
}

#[test]
fn single_element_operations_send_one_command_or_one_transaction() {
    let server = RedisServer::start();
    let conn = server.connection();
    let plain: SortedSetCache<u32> = zset(&conn, "plain");
    let ttl: SortedSetCache<u32> = SortedSetCache::builder("ttl")
        .connection(&conn)
        .ttl(Duration::from_secs(60))
        .build();
    plain.len().unwrap(); // warm the pool
    // The TTL'd set never empties below (an empty sorted set is no key, and a missing key
    // gets no PEXPIRE), so every write's TTL command runs.
    ttl.extend([(100, 100.0), (101, 101.0), (102, 102.0)])
        .unwrap();
    let with_ttl = |cmd: &'static str| -> Vec<(&'static str, u64)> {
        vec![("evalsha", 1), ("type", 1), (cmd, 1), ("pexpire", 1)]
    };
    let pinned: [Pinned; 12] = [
        ("insert", &|| ignore(plain.insert(&1, 1.0)), &[("zadd", 1)]),
        (
            "insert_with",
            &|| ignore(plain.insert_with(&1, 2.0, InsertMode::NewOrGreater)),
            &[("zadd", 1)],
        ),
        (
            "incr_score",
            &|| ignore(plain.incr_score(&1, 1.0)),
            &[("zincrby", 1)],
        ),
        ("score", &|| ignore(plain.score(&1)), &[("zscore", 1)]),
        ("contains", &|| ignore(plain.contains(&1)), &[("zscore", 1)]),
        ("rank", &|| ignore(plain.rank(&1)), &[("zrank", 1)]),
        (
            "rank_rev",
            &|| ignore(plain.rank_rev(&1)),
            &[("zrevrank", 1)],
        ),
        ("len", &|| ignore(plain.len()), &[("zcard", 1)]),
        ("remove", &|| ignore(plain.remove(&1)), &[("zrem", 1)]),
        ("pop_min", &|| ignore(plain.pop_min()), &[("zpopmin", 1)]),
        ("pop_max", &|| ignore(plain.pop_max()), &[("zpopmax", 1)]),
        (
            "range_by_score",
            &|| ignore(plain.range_by_score(1.0..2.0, Limit::first(3))),
            &[("zrange", 1)],
        ),
    ];
    for (name, op, expected) in pinned {
        assert_eq!(server.count_commands(op), commands(expected), "{name}");
    }
    type Ttled<'a> = (&'a str, &'a dyn Fn(), &'static str);
    let ttled: [Ttled; 5] = [
        ("insert", &|| ignore(ttl.insert(&1, 1.0)), "zadd"),
        ("incr_score", &|| ignore(ttl.incr_score(&1, 1.0)), "zincrby"),
        ("remove", &|| ignore(ttl.remove(&1)), "zrem"),
        ("pop_min", &|| ignore(ttl.pop_min()), "zpopmin"),
        ("pop_max", &|| ignore(ttl.pop_max()), "zpopmax"),
    ];
    for (name, op, cmd) in ttled {
        assert_eq!(
            server.count_commands(op),
            commands(&with_ttl(cmd)),
            "{name} with ttl"
        );
    }
}

fn zrange(server: &RedisServer, key: &str) -> Vec<(Vec<u8>, f64)> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut server.raw())
        .unwrap()
}

/// Pins the stored members: changing them would orphan every sorted set users already have.
/// Strings and integers are plain text whatever the codec (JSON text for `Json`); other
/// members keep the codec's encoding, the postcard header included.
#[test]
fn golden_stored_members() {
    let server = RedisServer::start();
    let conn = server.connection();
    let names: SortedSetCache<String> = zset(&conn, "golden_names");
    names.insert("ada", 1.5).unwrap();
    assert_eq!(zrange(&server, "golden_names"), [(b"ada".to_vec(), 1.5)]);

    let ids: SortedSetCache<i64> = zset(&conn, "golden_ids");
    ids.extend([(-7, 1.0), (42, 2.0)]).unwrap();
    assert_eq!(
        zrange(&server, "golden_ids"),
        [(b"-7".to_vec(), 1.0), (b"42".to_vec(), 2.0)]
    );

    // Magic 0xCA, format 2, the fingerprint of "tuple<u8,u8>", then postcard.
    let pairs: SortedSetCache<(u8, u8)> = zset(&conn, "golden_pairs");
    pairs.insert(&(1, 2), 3.0).unwrap();
    assert_eq!(
        zrange(&server, "golden_pairs"),
        [(vec![0xCA, 0x02, 0xEB, 0x28, 0xDB, 0xF2, 1, 2], 3.0)]
    );

    let floats: SortedSetCache<f64, redis_caches::codec::Raw> =
        SortedSetCache::builder("golden_raw")
            .connection(&conn)
            .codec(redis_caches::codec::Raw)
            .build();
    floats.insert(&-0.0, 0.0).unwrap();
    assert_eq!(zrange(&server, "golden_raw"), [(b"-0".to_vec(), 0.0)]);

    #[cfg(feature = "json")]
    {
        let json: SortedSetCache<String, redis_caches::codec::Json> =
            SortedSetCache::builder("golden_json")
                .connection(&conn)
                .codec(redis_caches::codec::Json)
                .build();
        json.insert("ada", 1.0).unwrap();
        assert_eq!(zrange(&server, "golden_json"), [(b"\"ada\"".to_vec(), 1.0)]);
    }
}

/// `ZSCORE scores ada` works from any client after `insert("ada", ..)`, and members other
/// clients add as plain text are the handle's; a member written by redis-caches 0.1 (format
/// v1) is reported, never misread.
#[test]
fn string_and_integer_members_are_plain_text_for_other_clients() {
    use redis_caches::codec::CodecErrorKind;
    let server = RedisServer::start();
    let conn = server.connection();
    let scores: SortedSetCache<String> = zset(&conn, "scores");
    scores.insert("ada", 36.5).unwrap();
    let zscore = |key: &str, member: &[u8]| -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg(key)
            .arg(member)
            .query(&mut server.raw())
            .unwrap()
    };
    assert_eq!(zscore("scores", b"ada"), Some(36.5));
    raw_exec(&server, "ZADD", ("scores", 41, "alan"));
    assert_eq!(scores.score("alan").unwrap(), Some(41.0));
    assert_eq!(
        scores.range(..).unwrap(),
        [("ada".to_string(), 36.5), ("alan".to_string(), 41.0)]
    );

    let ids: SortedSetCache<u64> = zset(&conn, "ids");
    ids.insert(&42, 1.0).unwrap();
    assert_eq!(zscore("ids", b"42"), Some(1.0));
    assert_eq!(ids.rank(&42).unwrap(), Some(0));

    let v1: [u8; 10] = [0xCA, 0x01, 0x58, 0x48, 0x4F, 0x60, 3, b'a', b'd', b'a'];
    redis::cmd("ZADD")
        .arg("old")
        .arg(1)
        .arg(&v1[..])
        .exec(&mut server.raw())
        .unwrap();
    let old: SortedSetCache<String> = zset(&conn, "old");
    assert_eq!(old.score("ada").unwrap(), None);
    match old.range(..) {
        Err(Error::Decode { key, source }) => {
            assert_eq!(key, "old");
            assert_eq!(source.kind(), CodecErrorKind::OldFormat { version: 1 });
        }
        other => panic!("{other:?}"),
    }
}
