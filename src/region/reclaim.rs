//! The background reclaimer: one thread per process that works off the reclamation queues of
//! the trees this process uses, one bounded step (one script, a few hundred microseconds of
//! server time) at a time.
//!
//! A tree is watched from the first operation on it in this process (a first step at once:
//! a queue another process left behind is picked up), and again each time this process
//! invalidates a region of it. While its queue holds anything, steps follow each other with
//! a pause of at least [`PAUSE`] and three times the step's own round trip, so reclamation
//! takes at most a quarter of the server's time, less when the server is slow to answer;
//! once the queue is empty the tree is looked at again every [`RECHECK`], which catches
//! queues left by a process that stopped halfway.
//! The queue lives in Redis, so any number of processes may work on it at once: each step is
//! atomic.
//!
//! A tree whose steps keep failing (its server is gone) is dropped after [`MAX_FAILURES`]
//! attempts, so that the thread does not wait on it forever; the next operation of any handle
//! of the tree watches it again (see [`drops`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::error::Result;

/// One reclamation step on a tree.
pub(crate) type Step = Arc<dyn Fn() -> Result<Stepped> + Send + Sync>;

/// What a reclamation step did.
pub(crate) struct Stepped {
    /// Region hashes deleted.
    pub(crate) deleted: u64,
    /// Queue entries left.
    pub(crate) left: u64,
    /// Nothing could change although work is left (the server refuses to grow the queue).
    pub(crate) stuck: bool,
}

/// The shortest pause between two steps on a tree whose queue is not empty.
pub(crate) const PAUSE: Duration = Duration::from_millis(2);

/// How often a watched tree with an empty queue is looked at again.
pub(crate) const RECHECK: Duration = Duration::from_secs(60);

/// The wait after a step that could change nothing (the server refuses to grow the queue).
const STUCK: Duration = Duration::from_secs(1);

/// How many steps in a row may fail (connection errors) before the tree is dropped; the wait
/// after each doubles from 100 ms (3.1 s in all).
pub(crate) const MAX_FAILURES: u32 = 6;

/// Counts the trees dropped so far (see [`drops`]).
static DROPS: AtomicU64 = AtomicU64::new(0);

/// How many trees have been dropped after failing steps. A handle that watched its tree when
/// this was lower watches it again (a no-op when the tree is still watched).
pub(crate) fn drops() -> u64 {
    DROPS.load(Ordering::Relaxed)
}

struct Tree {
    step: Step,
    due: Instant,
    failures: u32,
    /// Counts urgent requests, so that a step that was running when one came does not push
    /// the next step back by [`RECHECK`].
    urgent: u64,
}

#[derive(Default)]
struct Watched {
    trees: HashMap<String, Tree>,
    started: bool,
}

static WATCHED: Lazy<(Mutex<Watched>, Condvar)> =
    Lazy::new(|| (Mutex::new(Watched::default()), Condvar::new()));

/// Watches the tree `id` (connection and base key): its first step is due now when it is new
/// or `urgent` (after an invalidation), else it keeps its schedule. `step` is called only
/// for a tree not watched yet.
pub(crate) fn watch(id: &str, urgent: bool, step: impl FnOnce() -> Step) {
    let (lock, wake) = &*WATCHED;
    let mut watched = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    match watched.trees.get_mut(id) {
        Some(tree) if urgent => {
            tree.due = now;
            tree.failures = 0;
            tree.urgent += 1;
        }
        Some(_) => return,
        None => {
            watched.trees.insert(
                id.to_string(),
                Tree {
                    step: step(),
                    due: now,
                    failures: 0,
                    urgent: 0,
                },
            );
        }
    }
    if !watched.started {
        let spawned = std::thread::Builder::new()
            .name("redis-caches-reclaim".into())
            .spawn(work);
        // Without a thread, reclamation is left to `Region::reclaim` and other processes.
        watched.started = spawned.is_ok();
    }
    wake.notify_all();
}

fn work() {
    let (lock, wake) = &*WATCHED;
    loop {
        let (id, step, urgent) = {
            let mut watched = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let now = Instant::now();
                let next = watched
                    .trees
                    .iter()
                    .min_by_key(|(_, t)| t.due)
                    .map(|(id, t)| (id.clone(), t.due, t.step.clone(), t.urgent));
                match next {
                    Some((id, due, step, urgent)) if due <= now => break (id, step, urgent),
                    Some((_, due, _, _)) => {
                        watched = wake
                            .wait_timeout(watched, due - now)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    None => {
                        watched = wake.wait(watched).unwrap_or_else(PoisonError::into_inner);
                    }
                }
            }
        };
        // A panic in a step (there should be none) must not take reclamation down for good.
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step()));
        let pause = PAUSE.max(began.elapsed() * 3);
        let mut watched = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut drop_it = false;
        if let Some(tree) = watched.trees.get_mut(&id) {
            let now = Instant::now();
            match outcome {
                _ if tree.urgent != urgent => tree.due = now,
                Ok(Ok(stepped)) => {
                    tree.failures = 0;
                    tree.due = now
                        + match stepped {
                            Stepped { left: 0, .. } => RECHECK,
                            Stepped { stuck: true, .. } => STUCK,
                            _ => pause,
                        };
                }
                _ => {
                    tree.failures += 1;
                    drop_it = tree.failures >= MAX_FAILURES;
                    tree.due = now + Duration::from_millis(100) * 2u32.pow(tree.failures - 1);
                }
            }
        }
        if drop_it {
            watched.trees.remove(&id);
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
}
