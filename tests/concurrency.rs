//! Exactness under contention, 8 threads in each of 2 processes on one server: every
//! `DictCache::insert` returns exactly the value it replaced, every value goes to exactly one
//! `DictCache::remove`, and `SortedSetCache::incr_score` loses no increment and returns each
//! intermediate score once. (Counters, `SentinelCache` and memo single flight have their own
//! tests in `tests/cache.rs`, `tests/sentinel_cache.rs` and `tests/memo.rs`.)

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use redis_caches::{Connection, DictCache, SortedSetCache};
use support::RedisServer;

const THREADS: usize = 8;
/// Inserts per thread on the one shared field.
const INSERTS: usize = 150;
/// Fields every thread tries to remove.
const FIELDS: u32 = 600;
/// Score increments per thread.
const INCRS: usize = 200;
/// Members the increments are spread over.
const MEMBERS: usize = 4;

fn dict(conn: &Connection, run: &str) -> DictCache<String, String> {
    DictCache::builder(("race", run, "dict"))
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build()
}

fn board(conn: &Connection, run: &str) -> SortedSetCache<String> {
    SortedSetCache::builder(("race", run, "board"))
        .connection(conn)
        .ttl(Duration::from_secs(600))
        .build()
}

/// What one process's threads saw.
#[derive(Default)]
struct Seen {
    /// Values `insert` returned as replaced.
    replaced: Vec<String>,
    /// Fields whose value `remove` returned.
    removed: Vec<String>,
    /// Scores `incr_score` returned, per member.
    scores: HashMap<String, Vec<i64>>,
}

/// One process's share of the race: 8 threads insert on one field, then remove every field,
/// then increment scores, all started together.
fn race(conn: &Connection, run: &str, process: &str) -> Seen {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (d, b, barrier) = (dict(conn, run), board(conn, run), barrier.clone());
            let me = format!("{process}-{t}");
            thread::spawn(move || {
                let mut seen = Seen::default();
                barrier.wait();
                for n in 0..INSERTS {
                    if let Some(old) = d.insert("chain", &format!("{me}-{n}")).unwrap() {
                        seen.replaced.push(old);
                    }
                }
                barrier.wait();
                for f in 0..FIELDS {
                    let field = format!("f{f}");
                    if d.remove(&field).unwrap().is_some() {
                        seen.removed.push(field);
                    }
                }
                barrier.wait();
                for n in 0..INCRS {
                    let member = format!("m{}", n % MEMBERS);
                    let score = b.incr_score(&member, 1.0).unwrap();
                    seen.scores.entry(member).or_default().push(score as i64);
                }
                seen
            })
        })
        .collect();
    let mut all = Seen::default();
    for h in handles {
        let seen = h.join().expect("a racing thread panicked");
        all.replaced.extend(seen.replaced);
        all.removed.extend(seen.removed);
        for (m, s) in seen.scores {
            all.scores.entry(m).or_default().extend(s);
        }
    }
    all
}

/// Sends what a process saw to the parent through Redis lists under `run`.
fn report(raw: &mut redis::Connection, run: &str, seen: &Seen) {
    let mut pipe = redis::pipe();
    pipe.cmd("RPUSH")
        .arg(format!("{run}.replaced"))
        .arg("-")
        .arg(&seen.replaced)
        .ignore();
    pipe.cmd("RPUSH")
        .arg(format!("{run}.removed"))
        .arg("-")
        .arg(&seen.removed)
        .ignore();
    for (m, s) in &seen.scores {
        pipe.cmd("RPUSH")
            .arg(format!("{run}.scores.{m}"))
            .arg(s)
            .ignore();
    }
    pipe.exec(raw).expect("report");
}

fn list(raw: &mut redis::Connection, key: &str) -> Vec<String> {
    let mut items: Vec<String> = redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(raw)
        .unwrap();
    items.retain(|i| i != "-");
    items
}

#[test]
fn insert_remove_and_incr_score_are_exact_across_threads_and_processes() {
    let server = RedisServer::start();
    let conn = server.connection();
    let mut raw = server.raw();
    let run = support::unique("run");
    dict(&conn, &run)
        .extend((0..FIELDS).map(|f| (format!("f{f}"), format!("v{f}"))))
        .unwrap();

    let child = support::child_process(
        "child_races",
        &[("RACE_URL", server.url()), ("RACE_RUN", run.clone())],
    );
    let ready: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(format!("{run}.ready"))
        .arg(30)
        .query(&mut raw)
        .unwrap();
    assert!(ready.is_some(), "the child never became ready");
    redis::cmd("RPUSH")
        .arg(format!("{run}.go"))
        .arg(1)
        .exec(&mut raw)
        .unwrap();
    let mine = race(&conn, &run, "parent");
    support::wait_child(child);
    let mut theirs = Seen {
        replaced: list(&mut raw, &format!("{run}.replaced")),
        removed: list(&mut raw, &format!("{run}.removed")),
        scores: HashMap::new(),
    };
    for m in 0..MEMBERS {
        let member = format!("m{m}");
        let scores = list(&mut raw, &format!("{run}.scores.{member}"))
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        theirs.scores.insert(member, scores);
    }

    // insert: every value written was replaced exactly once, except the one left standing.
    let d = dict(&conn, &run);
    let last = d.get("chain").unwrap().expect("the chain field");
    let mut replaced: Vec<String> = mine
        .replaced
        .iter()
        .chain(&theirs.replaced)
        .cloned()
        .collect();
    replaced.push(last);
    replaced.sort();
    let mut written: Vec<String> = ["parent", "child"]
        .iter()
        .flat_map(|p| {
            (0..THREADS).flat_map(move |t| (0..INSERTS).map(move |n| format!("{p}-{t}-{n}")))
        })
        .collect();
    written.sort();
    assert_eq!(
        replaced.len(),
        written.len(),
        "one replaced value per insert but the first"
    );
    assert_eq!(replaced, written);

    // remove: each field went to exactly one caller, in either process.
    let mut removed: Vec<String> = mine
        .removed
        .iter()
        .chain(&theirs.removed)
        .cloned()
        .collect();
    removed.sort();
    let mut fields: Vec<String> = (0..FIELDS).map(|f| format!("f{f}")).collect();
    fields.sort();
    assert_eq!(removed, fields, "every field removed exactly once");
    assert_eq!(d.len().unwrap(), 1, "only the chain field is left");

    // incr_score: no increment lost, each intermediate score returned once.
    let b = board(&conn, &run);
    let per_member = (2 * THREADS * INCRS / MEMBERS) as i64;
    for m in 0..MEMBERS {
        let member = format!("m{m}");
        assert_eq!(
            b.score(&member).unwrap(),
            Some(per_member as f64),
            "{member}"
        );
        let mut scores: Vec<i64> = mine.scores[&member]
            .iter()
            .chain(&theirs.scores[&member])
            .copied()
            .collect();
        scores.sort_unstable();
        assert_eq!(scores, (1..=per_member).collect::<Vec<_>>(), "{member}");
    }
}

#[test]
#[ignore = "child process entry point: run by insert_remove_and_incr_score_are_exact_across_threads_and_processes"]
fn child_races() {
    if !support::is_child() {
        return;
    }
    let url = std::env::var("RACE_URL").expect("RACE_URL");
    let run = std::env::var("RACE_RUN").expect("RACE_RUN");
    let conn = Connection::open(&support::unique("child"), &url).expect("connection");
    let mut raw = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    redis::cmd("RPUSH")
        .arg(format!("{run}.ready"))
        .arg(1)
        .exec(&mut raw)
        .expect("RPUSH ready");
    let go: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(format!("{run}.go"))
        .arg(30)
        .query(&mut raw)
        .expect("BLPOP go");
    assert!(go.is_some(), "the parent never said go");
    let seen = race(&conn, &run, "child");
    report(&mut raw, &run, &seen);
}
