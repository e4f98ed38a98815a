//! Timing a call the way a time bound means it: the time the call waited and worked, without
//! the time its thread sat runnable, waiting for a CPU that other processes held. On a
//! machine shared with builds, that wait can exceed any margin a bound allows, and it is not
//! the code under test waiting.

use std::time::{Duration, Instant};

/// How long the current thread has waited on a run queue so far (`run_delay` of
/// `/proc/thread-self/schedstat`), when the system reports it.
fn run_delay() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A call's durations: `wall` as a clock on the wall sees it, and `own` without the time its
/// thread waited for a CPU (equal to `wall` where the system does not report that).
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub wall: Duration,
    pub own: Duration,
}

/// Runs `f` on this thread and times it.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Timed) {
    let delay_before = run_delay();
    let started = Instant::now();
    let out = f();
    let wall = started.elapsed();
    let waited = match (delay_before, run_delay()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    (
        out,
        Timed {
            wall,
            own: wall.saturating_sub(waited),
        },
    )
}
