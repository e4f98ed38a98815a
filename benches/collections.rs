//! Criterion benchmarks of each collection's hot operations, through the crate and through raw
//! `redis` commands doing the same work, against a `redis-server` this bench starts on a free
//! loopback port.
//!
//! ```text
//! cargo bench --bench collections                   # everything
//! cargo bench --bench collections -- RedisCache::get
//! ```
//!
//! The workloads live in `benches/common/workloads.rs`, shared with `examples/compare.rs`
//! (which adds threads, commands per call and the side-by-side table).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

use common::{Env, Side, Size};

fn collections(c: &mut Criterion) {
    let env = match Env::start() {
        Ok(env) => env,
        Err(e) => panic!("cannot start the bench's redis-server: {e}"),
    };
    for w in common::workloads::all() {
        let mut group = c.benchmark_group(w.name);
        match w.size {
            Size::Single => {
                group.throughput(Throughput::Elements(1));
            }
            Size::Bulk { entries, .. } => {
                group.throughput(Throughput::Elements(entries));
                group.sample_size(10);
            }
        }
        for side in [Side::Crate, Side::Raw] {
            group.bench_function(side.name(), |b| {
                b.iter_custom(|calls| {
                    let timed = env.prepare(&w, side, calls).and_then(|op| {
                        env.warm(1)?;
                        Env::time(&op, calls, 1)
                    });
                    match timed {
                        Ok(elapsed) => elapsed,
                        Err(e) => panic!("{} ({}): {e}", w.name, side.name()),
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = collections
}
criterion_main!(benches);
