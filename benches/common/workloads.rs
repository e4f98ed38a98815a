//! The workloads, each written twice: through the crate (`ours`) and through raw `redis`
//! commands doing the same work on the same server (`raw`), with the same commands per call
//! (a TTL'd write is `MULTI`/.../`PEXPIRE`/`EXEC` on both sides). Raw sides send values as
//! plain bytes of the same length; the crate's sides also pay for key building, encoding and
//! decoding, which is the overhead being measured.
//!
//! To add a type: write a function returning its `Vec<Workload>` and list it in [`all`].

use std::hint::black_box;
use std::time::Duration;

use redis_caches::codec::Raw;
use redis_caches::memo::Memo;
use redis_caches::{DictCache, RedisCache, Region, SentinelCache, SetCache, SortedSetCache};

use super::{Ctx, Op, Peer, RawKey, Result, Size, Workload};

/// A 24-byte value, the size of a small cached record.
pub const VALUE: &str = "a 24-byte cached value!!";

/// The TTL of the TTL'd workloads: long enough never to expire during a run.
pub const TTL: Duration = Duration::from_secs(600);

/// Every workload, in the order the tables show them.
pub fn all() -> Vec<Workload> {
    let mut all = Vec::new();
    all.extend(redis_cache());
    all.extend(dicts());
    all.extend(sets());
    all.extend(sorted_sets());
    all.extend(sentinel());
    all.extend(memo());
    all.extend(region());
    all
}

/// Entries per call of the bulk workloads.
pub const BULK: u64 = 100_000;

/// `member:<i>`, the members and fields of the workloads.
pub fn member(i: u64) -> String {
    format!("member:{i}")
}

/// Sends `cmd key <args of 0..n>` in commands of 1,000 items each, one after the other (as
/// the collections' `extend` does).
fn batches(r: &RawKey, cmd: &str, n: u64, args: impl Fn(&mut redis::Cmd, u64)) -> Result<()> {
    let mut conn = r.conn()?;
    for start in (0..n).step_by(1000) {
        let mut c = redis::cmd(cmd);
        c.arg(&r.key);
        for i in start..(start + 1000).min(n) {
            args(&mut c, i);
        }
        c.exec(&mut *conn)?;
    }
    Ok(())
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
            // The crate runs INCRBY and PEXPIRE in a Lua script (EVALSHA), so that a failed
            // INCRBY leaves the TTL alone; the raw side sends the same script.
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let ms = TTL.as_millis() as u64;
                let script = redis::Script::new(
                    "local n = redis.call('INCRBY', KEYS[1], ARGV[1])\n\
                     redis.call('PEXPIRE', KEYS[1], ARGV[2])\n\
                     return n",
                );
                op(move |_| {
                    let n: i64 = script.key(&r.key).arg(1).arg(ms).invoke(&mut *r.conn()?)?;
                    black_box(n);
                    Ok(())
                })
            },
        },
    ]
}

fn sets() -> Vec<Workload> {
    vec![
        Workload {
            name: "SetCache::insert",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let s = SetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                op(move |i| {
                    black_box(s.insert(&member(i))?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |i| {
                    let added: bool = redis::cmd("SADD")
                        .arg(&r.key)
                        .arg(member(i))
                        .query(&mut *r.conn()?)?;
                    black_box(added);
                    Ok(())
                })
            },
        },
        Workload {
            name: "SetCache::contains",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let s = SetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                s.extend((0..1000).map(member))?;
                op(move |i| {
                    // Half of the lookups hit.
                    black_box(s.contains(member(i % 2000).as_str())?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                batches(&r, "SADD", 1000, |c, i| {
                    c.arg(member(i));
                })?;
                op(move |i| {
                    let found: bool = redis::cmd("SISMEMBER")
                        .arg(&r.key)
                        .arg(member(i % 2000))
                        .query(&mut *r.conn()?)?;
                    black_box(found);
                    Ok(())
                })
            },
        },
        Workload {
            name: "SetCache::extend",
            size: Size::Bulk {
                entries: BULK,
                peer: Peer::Sadd,
            },
            ours: |cx: &Ctx| {
                let s = SetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                let members: Vec<String> = (0..BULK).map(member).collect();
                op(move |_| {
                    black_box(s.extend(&members)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let members: Vec<String> = (0..BULK).map(member).collect();
                op(move |_| {
                    batches(&r, "SADD", BULK, |c, i| {
                        c.arg(&members[i as usize]);
                    })
                })
            },
        },
    ]
}

fn sorted_sets() -> Vec<Workload> {
    vec![
        Workload {
            name: "SortedSetCache::insert",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let z = SortedSetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                op(move |i| {
                    black_box(z.insert(&member(i), i as f64)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |i| {
                    let added: bool = redis::cmd("ZADD")
                        .arg(&r.key)
                        .arg(i as f64)
                        .arg(member(i))
                        .query(&mut *r.conn()?)?;
                    black_box(added);
                    Ok(())
                })
            },
        },
        Workload {
            name: "SortedSetCache::pop_min",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let z = SortedSetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                z.extend((0..cx.calls).map(|i| (member(i), i as f64)))?;
                op(move |_| {
                    black_box(z.pop_min()?.ok_or("the sorted set ran out")?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                batches(&r, "ZADD", cx.calls, |c, i| {
                    c.arg(i as f64).arg(member(i));
                })?;
                op(move |_| {
                    let popped: Vec<(Vec<u8>, f64)> =
                        redis::cmd("ZPOPMIN").arg(&r.key).query(&mut *r.conn()?)?;
                    black_box(popped.first().ok_or("the sorted set ran out")?);
                    Ok(())
                })
            },
        },
        Workload {
            name: "SortedSetCache::range",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let z = SortedSetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                z.extend((0..1000).map(|i| (member(i), i as f64)))?;
                op(move |_| {
                    // The first 10 of 1,000.
                    black_box(z.range(0..10)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                batches(&r, "ZADD", 1000, |c, i| {
                    c.arg(i as f64).arg(member(i));
                })?;
                op(move |_| {
                    let page: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
                        .arg(&r.key)
                        .arg(0)
                        .arg(9)
                        .arg("WITHSCORES")
                        .query(&mut *r.conn()?)?;
                    black_box(page);
                    Ok(())
                })
            },
        },
        Workload {
            name: "SortedSetCache::extend",
            size: Size::Bulk {
                entries: BULK,
                peer: Peer::Zadd,
            },
            ours: |cx: &Ctx| {
                let z = SortedSetCache::<String>::builder(cx.key)
                    .connection(cx.conn)
                    .build();
                let members: Vec<(String, f64)> =
                    (0..BULK).map(|i| (member(i), i as f64)).collect();
                op(move |_| {
                    black_box(z.extend(members.iter().map(|(m, s)| (m, *s)))?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let members: Vec<String> = (0..BULK).map(member).collect();
                op(move |_| {
                    batches(&r, "ZADD", BULK, |c, i| {
                        c.arg(i as f64).arg(&members[i as usize]);
                    })
                })
            },
        },
    ]
}

fn sentinel() -> Vec<Workload> {
    vec![Workload {
        // The hot path: many callers ask, the gate is already closed.
        name: "SentinelCache::claim",
        size: Size::Single,
        ours: |cx: &Ctx| {
            let gate = SentinelCache::builder(cx.key)
                .connection(cx.conn)
                .ttl(TTL)
                .build();
            gate.claim()?;
            op(move |_| {
                black_box(gate.claim()?);
                Ok(())
            })
        },
        raw: |cx: &Ctx| {
            let r = cx.raw();
            let ms = TTL.as_millis() as u64;
            let claim = move |r: &RawKey| -> Result<Option<Vec<u8>>> {
                Ok(redis::cmd("SET")
                    .arg(&r.key)
                    .arg(1)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(ms)
                    .query(&mut *r.conn()?)?)
            };
            claim(&r)?;
            op(move |_| {
                black_box(claim(&r)?);
                Ok(())
            })
        },
    }]
}

/// A `DictCache<String, String>` of `member:<i>` -> [`VALUE`] for `i` in `0..n`.
fn dict(cx: &Ctx, n: u64) -> Result<DictCache<String, String>> {
    let d = DictCache::builder(cx.key).connection(cx.conn).build();
    d.extend((0..n).map(|i| (member(i), VALUE.to_string())))?;
    Ok(d)
}

/// The raw side of [`dict`]: `HSET key member:<i> VALUE ...`, 1,000 pairs a command.
fn raw_dict(r: &RawKey, n: u64) -> Result<()> {
    batches(r, "HSET", n, |c, i| {
        c.arg(member(i)).arg(VALUE);
    })
}

fn dicts() -> Vec<Workload> {
    vec![
        Workload {
            name: "DictCache::get",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let d = dict(cx, 1000)?;
                op(move |i| {
                    black_box(d.get(member(i % 1000).as_str())?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                raw_dict(&r, 1000)?;
                op(move |i| {
                    let v: Option<Vec<u8>> = redis::cmd("HGET")
                        .arg(&r.key)
                        .arg(member(i % 1000))
                        .query(&mut *r.conn()?)?;
                    black_box(v);
                    Ok(())
                })
            },
        },
        Workload {
            // insert returns the replaced value, like HashMap::insert: MULTI/HGET/HSET/EXEC.
            name: "DictCache::insert",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let d = dict(cx, 0)?;
                op(move |i| {
                    black_box(d.insert(member(i).as_str(), VALUE)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |i| {
                    let field = member(i);
                    let (old,): (Option<Vec<u8>>,) = redis::pipe()
                        .atomic()
                        .cmd("HGET")
                        .arg(&r.key)
                        .arg(&field)
                        .cmd("HSET")
                        .arg(&r.key)
                        .arg(&field)
                        .arg(VALUE)
                        .ignore()
                        .query(&mut *r.conn()?)?;
                    black_box(old);
                    Ok(())
                })
            },
        },
        Workload {
            // set does not read the old value: a plain HSET.
            name: "DictCache::set",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let d = dict(cx, 0)?;
                op(move |i| {
                    black_box(d.set(member(i).as_str(), VALUE)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |i| {
                    let added: u32 = redis::cmd("HSET")
                        .arg(&r.key)
                        .arg(member(i))
                        .arg(VALUE)
                        .query(&mut *r.conn()?)?;
                    black_box(added);
                    Ok(())
                })
            },
        },
        Workload {
            name: "DictCache::iterate",
            size: Size::Bulk {
                entries: BULK,
                peer: Peer::Hscan,
            },
            ours: |cx: &Ctx| {
                let d = dict(cx, BULK)?;
                op(move |_| {
                    let mut n = 0;
                    for entry in d.iter() {
                        black_box(entry?);
                        n += 1;
                    }
                    check_count(n)
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                raw_dict(&r, BULK)?;
                op(move |_| {
                    let mut conn = r.conn()?;
                    let (mut cursor, mut n) = (0u64, 0);
                    loop {
                        let (next, items): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                            .arg(&r.key)
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(1000)
                            .query(&mut *conn)?;
                        n += items.len() as u64 / 2;
                        black_box(items);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                    check_count(n)
                })
            },
        },
        Workload {
            name: "DictCache::extend",
            size: Size::Bulk {
                entries: BULK,
                peer: Peer::Hset,
            },
            ours: |cx: &Ctx| {
                let d = dict(cx, 0)?;
                op(move |_| {
                    d.extend((0..BULK).map(|i| (member(i), VALUE.to_string())))?;
                    Ok(())
                })
            },
            // As the crate does: 8 HSETs of 512 pairs per round trip.
            raw: |cx: &Ctx| {
                let r = cx.raw();
                op(move |_| {
                    let mut conn = r.conn()?;
                    for start in (0..BULK).step_by(4096) {
                        let mut pipe = redis::pipe();
                        for from in (start..(start + 4096).min(BULK)).step_by(512) {
                            let cmd = pipe.cmd("HSET").arg(&r.key);
                            for i in from..(from + 512).min(BULK) {
                                cmd.arg(member(i)).arg(VALUE);
                            }
                            cmd.ignore();
                        }
                        pipe.exec(&mut *conn)?;
                    }
                    Ok(())
                })
            },
        },
    ]
}

/// An iteration must see every entry (HSCAN may repeat some, never miss one).
fn check_count(n: u64) -> Result<()> {
    if n < BULK {
        return Err(format!("iterated {n} entries, expected {BULK}").into());
    }
    Ok(())
}

fn memo() -> Vec<Workload> {
    vec![Workload {
        // A memoized function's fresh hit, statistics on (the default): the crate's read
        // script (EVALSHA: GET, HINCRBY hits). The raw side does the same work with plain
        // commands: GET and HINCRBY, pipelined in one round trip.
        name: "Memo::call fresh hit",
        size: Size::Single,
        ours: |cx: &Ctx| {
            let square = Memo::builder(cx.key, |n: u64| n * n)
                .connection(cx.conn)
                .ttl(TTL)
                .build();
            square.call(7)?;
            op(move |_| {
                black_box(square.call(7)?);
                Ok(())
            })
        },
        raw: |cx: &Ctx| {
            let r = cx.raw();
            let value = format!("{{memo:{}}}.v.%07", r.key);
            let stats = format!("{{memo:{}}}.stats", r.key);
            redis::cmd("SET")
                .arg(&value)
                .arg(&49u64.to_le_bytes()[..])
                .arg("PX")
                .arg(TTL.as_millis() as u64)
                .exec(&mut *r.conn()?)?;
            op(move |_| {
                let (v,): (Option<Vec<u8>>,) = redis::pipe()
                    .cmd("GET")
                    .arg(&value)
                    .cmd("HINCRBY")
                    .arg(&stats)
                    .arg("hits")
                    .arg(1)
                    .ignore()
                    .query(&mut *r.conn()?)?;
                black_box(v.ok_or("the memoized value is missing")?);
                Ok(())
            })
        },
    }]
}

/// What the crate's region scripts do, written plainly for the raw side: follow the tree's
/// maps from `{root}#tree` down to the region's current generation (creating what is missing
/// on a write), then the command. `KEYS[1]`: the tree's base key; `ARGV`: the number of name
/// parts `n`, the parts, then the command's own arguments. The server's work is the crate's
/// (one `HGET` per level); the crate's scripts also declare those keys, named on the client
/// from the generations it last found, which the raw side does not (safe on one server, not
/// while a Redis Cluster slot migrates: see the region module's "Redis Cluster").
const RAW_REGION_GET: &str = r"
local base, n = KEYS[1], tonumber(ARGV[1])
local id = redis.call('HGET', base .. '#tree', 'root')
if not id then return false end
local names = ''
for i = 2, n + 1 do
  local child = redis.call('HGET', base .. '@' .. id .. names .. '#children', ARGV[i])
  if not child then return false end
  id, names = child, names .. '.' .. ARGV[i]
end
return redis.call('HGET', base .. '@' .. id .. names, ARGV[n + 2])
";

/// The write: `ARGV` after the parts: field, value, TTL in milliseconds or empty.
const RAW_REGION_SET: &str = r"
local base, n = KEYS[1], tonumber(ARGV[1])
local meta = base .. '#tree'
local id = redis.call('HGET', meta, 'root')
if not id then
  id = redis.call('HINCRBY', meta, 'next', 1)
  redis.call('HSET', meta, 'root', id)
end
local names = ''
for i = 2, n + 1 do
  local map = base .. '@' .. id .. names .. '#children'
  local child = redis.call('HGET', map, ARGV[i])
  if not child then
    child = redis.call('HINCRBY', meta, 'next', 1)
    redis.call('HSET', map, ARGV[i], child)
  end
  id, names = child, names .. '.' .. ARGV[i]
end
local key = base .. '@' .. id .. names
local t = redis.call('TYPE', key)['ok']
if t ~= 'none' and t ~= 'hash' then return redis.error_reply('WRONGTYPE') end
local r = redis.call('HSET', key, ARGV[n + 2], ARGV[n + 3])
if ARGV[n + 4] ~= '' then redis.call('PEXPIRE', key, ARGV[n + 4]) end
return r
";

/// A region two levels down (`<key>.user`, as `users.42`), under the default root.
fn user_region(cx: &Ctx, ttl: Option<Duration>) -> Region {
    let b = Region::builder(&format!("{}.user", cx.key)).connection(cx.conn);
    match ttl {
        Some(ttl) => b.ttl(ttl).build(),
        None => b.build(),
    }
}

/// The raw side's region write, as one script call.
fn raw_region_set(
    script: &redis::Script,
    r: &RawKey,
    field: &str,
    ttl: Option<Duration>,
) -> Result<u32> {
    let ms = ttl.map(|t| t.as_millis().to_string()).unwrap_or_default();
    Ok(script
        .key("{root}")
        .arg(2)
        .arg(&r.key)
        .arg("user")
        .arg(field)
        .arg(VALUE)
        .arg(ms)
        .invoke(&mut *r.conn()?)?)
}

fn region() -> Vec<Workload> {
    vec![
        Workload {
            // A read in a region two levels down: one script (the tree's maps, HGET).
            name: "Region::get",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let region = user_region(cx, None);
                for i in 0..1000 {
                    region.set(&member(i), VALUE)?;
                }
                op(move |i| {
                    black_box(region.get::<String>(&member(i % 1000))?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let set = redis::Script::new(RAW_REGION_SET);
                for i in 0..1000 {
                    raw_region_set(&set, &r, &member(i), None)?;
                }
                let get = redis::Script::new(RAW_REGION_GET);
                op(move |i| {
                    let v: Option<Vec<u8>> = get
                        .key("{root}")
                        .arg(2)
                        .arg(&r.key)
                        .arg("user")
                        .arg(member(i % 1000))
                        .invoke(&mut *r.conn()?)?;
                    black_box(v.ok_or("the region's entry is missing")?);
                    Ok(())
                })
            },
        },
        Workload {
            // A write in a region two levels down: one script (the maps, TYPE, HSET).
            name: "Region::set",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let region = user_region(cx, None);
                op(move |i| {
                    black_box(region.set(&member(i % 1000), VALUE)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let set = redis::Script::new(RAW_REGION_SET);
                op(move |i| {
                    black_box(raw_region_set(&set, &r, &member(i % 1000), None)?);
                    Ok(())
                })
            },
        },
        Workload {
            // The same write to a region with a TTL: PEXPIRE in the same script.
            name: "Region::set with TTL",
            size: Size::Single,
            ours: |cx: &Ctx| {
                let region = user_region(cx, Some(TTL));
                op(move |i| {
                    black_box(region.set(&member(i % 1000), VALUE)?);
                    Ok(())
                })
            },
            raw: |cx: &Ctx| {
                let r = cx.raw();
                let set = redis::Script::new(RAW_REGION_SET);
                op(move |i| {
                    black_box(raw_region_set(&set, &r, &member(i % 1000), Some(TTL))?);
                    Ok(())
                })
            },
        },
    ]
}
