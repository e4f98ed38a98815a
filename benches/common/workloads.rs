//! The workloads, each written twice: through the crate (`ours`) and through raw `redis`
//! commands doing the same work on the same server (`raw`), with the same commands per call
//! (a TTL'd write is `MULTI`/.../`PEXPIRE`/`EXEC` on both sides). Raw sides send values as
//! plain bytes of the same length; the crate's sides also pay for key building, encoding and
//! decoding, which is the overhead being measured.
//!
//! To add a type: write a function returning its `Vec<Workload>` and list it in [`all`].

use std::hint::black_box;
use std::time::Duration;

use redis_caches::RedisCache;
use redis_caches::codec::Raw;

use super::{Ctx, Op, Result, Size, Workload};

/// A 24-byte value, the size of a small cached record.
pub const VALUE: &str = "a 24-byte cached value!!";

/// The TTL of the TTL'd workloads: long enough never to expire during a run.
pub const TTL: Duration = Duration::from_secs(600);

/// Every workload, in the order the tables show them.
pub fn all() -> Vec<Workload> {
    let mut all = Vec::new();
    all.extend(redis_cache());
    all
}

fn op(f: impl Fn(u64) -> Result<()> + Send + Sync + 'static) -> Result<Op> {
    Ok(Box::new(f))
}

fn redis_cache() -> Vec<Workload> {
    vec![
        Workload {
            name: "RedisCache::get",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let c = RedisCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                c.set(VALUE)?;
                op(move |_| {
                    black_box(c.get()?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                redis::cmd("SET")
                    .arg(&r.key)
                    .arg(VALUE)
                    .exec(&mut *r.conn()?)?;
                op(move |_| {
                    let v: Option<Vec<u8>> =
                        redis::cmd("GET").arg(&r.key).query(&mut *r.conn()?)?;
                    black_box(v);
                    Ok(())
                })
            },
        },
        Workload {
            name: "RedisCache::set",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let c = RedisCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                op(move |_| Ok(c.set(VALUE)?))
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |_| {
                    Ok(redis::cmd("SET")
                        .arg(&r.key)
                        .arg(VALUE)
                        .exec(&mut *r.conn()?)?)
                })
            },
        },
        Workload {
            name: "RedisCache::set with TTL",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let c = RedisCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .ttl(TTL)
                    .build();
                op(move |_| Ok(c.set(VALUE)?))
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let ms = TTL.as_millis() as u64;
                op(move |_| {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&r.key).arg(VALUE).arg("PX").arg(ms);
                    Ok(cmd.exec(&mut *r.conn()?)?)
                })
            },
        },
        Workload {
            name: "RedisCache::incr",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let c = RedisCache::<i64>::builder(cx.key)
                    .connection(cx.conn)
                    .codec(Raw)
                    .build();
                op(move |_| {
                    black_box(c.incr(1)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |_| {
                    let n: i64 = redis::cmd("INCRBY")
                        .arg(&r.key)
                        .arg(1)
                        .query(&mut *r.conn()?)?;
                    black_box(n);
                    Ok(())
                })
            },
        },
        Workload {
            name: "RedisCache::incr with TTL",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let c = RedisCache::<i64>::builder(cx.key)
                    .connection(cx.conn)
                    .codec(Raw)
                    .ttl(TTL)
                    .build();
                op(move |_| {
                    black_box(c.incr(1)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let ms = TTL.as_millis() as u64;
                op(move |_| {
                    let (n,): (i64,) = redis::pipe()
                        .atomic()
                        .cmd("INCRBY")
                        .arg(&r.key)
                        .arg(1)
                        .cmd("PEXPIRE")
                        .arg(&r.key)
                        .arg(ms)
                        .ignore()
                        .query(&mut *r.conn()?)?;
                    black_box(n);
                    Ok(())
                })
            },
        },
    ]
}
