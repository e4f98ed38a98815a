#!/usr/bin/env python3
"""The Python peers: the same workloads as examples/compare.rs, through `caches` 3.0.0 and
`pottery` 3.0.1, so the README can show the crate beside what a Python user would pick.

    python3 benches/python_peers.py                 # starts its own redis-server
    python3 benches/python_peers.py --port 6400     # or uses a running one (it is FLUSHed!)
    cargo run --release --example compare -- --python   # same server, same run as the crate

It creates a virtual environment (default: target/python-peers-venv, or --venv), pip-installs
the two packages from PyPI into it, and re-runs itself inside it. It prints one Markdown table
per workload (library, ops/s, Redis commands per operation from INFO commandstats deltas with
CONFIG RESETSTAT before each run, round trips per operation from total_reads_processed), and
with --tsv FILE also writes `workload<TAB>library<TAB>ops/s<TAB>commands/op` lines for
compare.rs. Python runs one thread (the GIL makes threads moot for this).

Workloads a library has no counterpart for are left out of its rows. Each one names the call
it makes, so the table says what was compared.
"""

import argparse
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PACKAGES = ["caches==3.0.0", "pottery==3.0.1"]
if sys.version_info < (3, 12):
    # caches 3.0.0 does not pin `datatypes`, whose releases from 0.32 on use Python 3.12's
    # `type` statement; 0.31 is the last one that imports on 3.10 and 3.11.
    PACKAGES.append("datatypes<0.32")
VALUE = "a 24-byte cached value!!"
TTL = 600  # seconds: never expires during a run


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(here, "..", "target")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, help="use the redis-server on 127.0.0.1:PORT (it gets FLUSHDB)")
    p.add_argument("--venv", default=os.path.join(target, "python-peers-venv"))
    p.add_argument("--ops", type=int, default=5000, help="calls per single-element run")
    p.add_argument("--rounds", type=int, default=3, help="runs per workload (the fastest shown)")
    p.add_argument("--quick", action="store_true", help="short run: 1 round, 1,000 calls, 10,000 bulk entries")
    p.add_argument("--tsv", help="also write the results as TSV lines to this file")
    p.add_argument("filters", nargs="*", help="only workloads whose name contains one of these")
    p.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.quick:
        a.ops, a.rounds = min(a.ops, 1000), 1
    a.entries = 10_000 if a.quick else 100_000
    return a


def ensure_venv(a):
    """Creates the venv with the packages (once) and re-executes this script inside it."""
    python = os.path.join(a.venv, "bin", "python")
    stamp = os.path.join(a.venv, "installed-" + "-".join(PACKAGES))
    if not os.path.exists(stamp):
        print(f"creating {a.venv} with {' '.join(PACKAGES)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", a.venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES], check=True)
        open(stamp, "w").close()
    argv = [python, os.path.abspath(__file__), *sys.argv[1:], "--in-venv"]
    sys.stdout.flush()
    os.execv(python, argv)


class Server:
    """A throwaway redis-server on a free loopback port."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            sys.exit("redis-server is not on PATH: install it with `sudo apt-get install -y redis-server`")
        self.dir = tempfile.mkdtemp(prefix="redis-caches-peers-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        self.stop()
        sys.exit("redis-server did not start")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the workloads -------------------------------------------------------------------------
# Each prepare(ctx) sets up its data (untimed) and returns op(i), called ctx.calls times.

WORKLOADS = []  # (name, library, bulk, what, prepare)


def workload(name, library, what, bulk=False):
    def register(prepare):
        WORKLOADS.append((name, library, bulk, what, prepare))
        return prepare
    return register


class Ctx:
    def __init__(self, redis, key, calls, entries):
        self.redis, self.key, self.calls, self.entries = redis, key, calls, entries


def define_workloads():
    import caches
    import pottery
    from caches import Cache, DictCache, SentinelCache, SetCache, SortedSetCache
    from caches.decorators import cached

    # RedisCache
    @workload("RedisCache::get", "caches", "Cache(key).data (a fresh object: Cache memoizes its value)")
    def _(cx):
        Cache(cx.key).set(VALUE)
        return lambda i: Cache(cx.key).data

    @workload("RedisCache::set", "caches", "Cache.set(v): SET")
    def _(cx):
        c = Cache(cx.key)
        return lambda i: c.set(VALUE)

    @workload("RedisCache::set with TTL", "caches", "Cache(ttl=600).set(v): SETEX")
    def _(cx):
        c = Cache(cx.key, ttl=TTL)
        return lambda i: c.set(VALUE)

    @workload("RedisCache::incr", "caches", "Cache(serialize=False).increment(1): MULTI/INCRBY/EXEC")
    def _(cx):
        c = Cache(cx.key, serialize=False)
        return lambda i: c.increment(1)

    @workload("RedisCache::incr with TTL", "caches", "increment(1) with ttl: MULTI/INCRBY/EXPIRE/EXEC")
    def _(cx):
        c = Cache(cx.key, serialize=False, ttl=TTL)
        return lambda i: c.increment(1)

    # DictCache
    @workload("DictCache::get", "caches", "d[field] (HGET) on 1,000 fields")
    def _(cx):
        d = DictCache(cx.key)
        d.update({f"field:{j}": VALUE for j in range(1000)})
        return lambda i: d[f"field:{i % 1000}"]

    @workload("DictCache::get", "pottery", "RedisDict[field] (HGET) on 1,000 fields")
    def _(cx):
        d = pottery.RedisDict({f"field:{j}": VALUE for j in range(1000)}, redis=cx.redis, key=cx.key)
        return lambda i: d[f"field:{i % 1000}"]

    @workload("DictCache::set", "caches", "d[field] = v: MULTI/HSET/EXEC")
    def _(cx):
        d = DictCache(cx.key)

        def op(i):
            d[f"field:{i}"] = VALUE
        return op

    @workload("DictCache::set", "pottery", "RedisDict[field] = v: HSET")
    def _(cx):
        d = pottery.RedisDict(redis=cx.redis, key=cx.key)

        def op(i):
            d[f"field:{i}"] = VALUE
        return op

    @workload("DictCache::iterate", "caches", "for k, v in d.items(): HGETALL", bulk=True)
    def _(cx):
        d = DictCache(cx.key)
        fill(cx, d.key)

        def op(i):
            for _ in d.items():
                pass
        return op

    @workload("DictCache::iterate", "pottery", "RedisDict.to_dict(): HGETALL (items() would HGET each key)", bulk=True)
    def _(cx):
        d = pottery.RedisDict(redis=cx.redis, key=cx.key)
        d.update({f"field:{j}": VALUE for j in range(cx.entries)})

        def op(i):
            for _ in d.to_dict().items():
                pass
        return op

    @workload("DictCache::extend", "caches", "d.update(mapping): one MULTI/HSET/EXEC per entry", bulk=True)
    def _(cx):
        d = DictCache(cx.key)
        data = {f"field:{j}": VALUE for j in range(cx.entries)}
        return lambda i: d.update(data)

    @workload("DictCache::extend", "pottery", "RedisDict.update(mapping): WATCH, MULTI/HSET all/EXEC", bulk=True)
    def _(cx):
        d = pottery.RedisDict(redis=cx.redis, key=cx.key)
        data = {f"field:{j}": VALUE for j in range(cx.entries)}
        return lambda i: d.update(data)

    # SetCache
    @workload("SetCache::insert", "caches", "s.add(m): MULTI/SADD/EXEC")
    def _(cx):
        s = SetCache(cx.key)
        return lambda i: s.add(f"member:{i}")

    @workload("SetCache::insert", "pottery", "RedisSet.add(m): SADD")
    def _(cx):
        s = pottery.RedisSet(redis=cx.redis, key=cx.key)
        return lambda i: s.add(f"member:{i}")

    @workload("SetCache::contains", "caches", "m in s: SISMEMBER, half of them present")
    def _(cx):
        s = SetCache(cx.key)
        s.update([f"member:{j}" for j in range(1000)])
        return lambda i: f"member:{i % 2000}" in s

    @workload("SetCache::contains", "pottery", "m in RedisSet: SISMEMBER, half of them present")
    def _(cx):
        s = pottery.RedisSet([f"member:{j}" for j in range(1000)], redis=cx.redis, key=cx.key)
        return lambda i: f"member:{i % 2000}" in s

    # SortedSetCache (pottery has no sorted set)
    @workload("SortedSetCache::insert", "caches", "z.add((score, m)): MULTI/ZADD/EXEC")
    def _(cx):
        z = SortedSetCache(cx.key)
        return lambda i: z.add((i, f"member:{i}"))

    @workload("SortedSetCache::pop_min", "caches", "z.pop(): ZPOPMIN")
    def _(cx):
        z = SortedSetCache(cx.key)
        z.update([(j, f"member:{j}") for j in range(cx.calls + 1)])
        return lambda i: z.pop()

    @workload("SortedSetCache::range", "caches", "first 10 of 1,000: islice(z.chunk(chunk=10), 10): ZRANGE "
              "(chunk(limit=10) reads all 1,000: its limit is checked between pages only)")
    def _(cx):
        z = SortedSetCache(cx.key)
        z.update([(j, f"member:{j}") for j in range(1000)])

        def op(i):
            for _ in itertools.islice(z.chunk(chunk=10), 10):
                pass
        return op

    # SentinelCache
    @workload("SentinelCache::claim", "caches", "bool(SentinelCache(key, ttl=600)) on a closed gate: EXISTS "
              "(an open one adds MULTI/INCRBY/EXPIRE/EXEC, not atomic)")
    def _(cx):
        gate = SentinelCache(cx.key, ttl=TTL)
        bool(gate)
        return lambda i: bool(gate)

    # memoized function, fresh hit
    @workload("Memo::call fresh hit", "caches", "@cached(Cache, key=...) hit: GET")
    def _(cx):
        @cached(Cache, key=lambda n: [cx.key, n], ttl=TTL)
        def square(n):
            return n * n
        square(7)
        return lambda i: square(7)

    @workload("Memo::call fresh hit", "pottery", "@redis_cache(timeout=600) hit: HGET, then EXPIRE")
    def _(cx):
        @pottery.redis_cache(redis=cx.redis, key=cx.key, timeout=TTL)
        def square(n):
            return n * n
        square(7)
        return lambda i: square(7)

    # region write with TTL refresh
    @workload("Region::set with TTL", "caches", "DictCache(ttl=600)[field] = v: MULTI/HSET/EXPIRE/EXEC")
    def _(cx):
        d = DictCache(cx.key, ttl=TTL)

        def op(i):
            d[f"field:{i % 1000}"] = VALUE
        return op

    return caches, pottery


def fill(cx, key):
    """A hash of cx.entries fields as caches writes them, in batches of 1,000 (caches' own
    update() would take one transaction per entry)."""
    import pickle
    value = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)
    pipe = cx.redis.pipeline(transaction=False)
    for start in range(0, cx.entries, 1000):
        pipe.hset(key, mapping={f"field:{j}": value for j in range(start, min(start + 1000, cx.entries))})
    pipe.execute()


# --- measuring -----------------------------------------------------------------------------

def stats(r):
    info = r.execute_command("INFO", "stats", "commandstats")
    commands = {}
    for k, v in info.items():
        if k.startswith("cmdstat_"):
            name = k[len("cmdstat_"):]
            if name == "info" or name.startswith("config") or name.startswith("client"):
                continue
            commands[name] = v["calls"]
    return commands, max(int(info.get("total_reads_processed", 1)) - 1, 0)


def fmt_count(v):
    s = f"{v:.0f}" if v >= 100 else f"{v:.2f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def per_call(commands, calls):
    total = sum(commands.values())
    parts = sorted(commands.items(), key=lambda kv: (-kv[1], kv[0]))
    detail = ", ".join(f"{k.replace('|', ' ').upper()} "
                       f"{'<0.01' if n / calls < 0.005 else fmt_count(n / calls)}" for k, n in parts)
    return f"{fmt_count(total / calls)} ({detail})"


def run(a, r, caches, bulk, prepare, counter):
    calls = 1 if bulk else a.ops
    speeds, all_commands, reads, total_calls = [], {}, 0, 0
    for _ in range(1 if bulk else a.rounds):
        r.flushdb()
        counter[0] += 1
        cx = Ctx(r, f"bench-py-{counter[0]}", calls, a.entries)
        op = prepare(cx)
        caches.get_interface().ping()  # caches connects lazily: not in the timed part
        r.config_resetstat()
        start = time.perf_counter()
        for i in range(calls):
            op(i)
        elapsed = time.perf_counter() - start
        commands, n_reads = stats(r)
        speeds.append(calls * (a.entries if bulk else 1) / elapsed)
        for k, n in commands.items():
            all_commands[k] = all_commands.get(k, 0) + n
        reads += n_reads
        total_calls += calls
    return max(speeds), per_call(all_commands, total_calls), fmt_count(reads / total_calls)


def main():
    a = parse_args()
    if not a.in_venv:
        ensure_venv(a)
    server = None
    if a.port is None:
        server = Server()
        a.port = server.port
    os.environ["CACHES_DSN"] = f"redis://127.0.0.1:{a.port}/0"
    try:
        import redis
        caches, pottery = define_workloads()
        r = redis.Redis(host="127.0.0.1", port=a.port)
        import importlib.metadata as md
        print("\n## Python peers\n")
        print(f"- caches {md.version('caches')}, pottery {md.version('pottery')}, redis-py "
              f"{md.version('redis')}, hiredis {'yes' if _has('hiredis') else 'no'}, "
              f"Python {sys.version.split()[0]}; one thread")
        print(f"- {a.ops} calls per single-element run, best of {a.rounds} runs; bulk: "
              f"{a.entries} entries, one call")
        print("- load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        import warnings
        warnings.simplefilter("ignore")
        tsv = open(a.tsv, "w") if a.tsv else None
        counter = [0]
        current = None
        for name, library, bulk, what, prepare in WORKLOADS:
            if a.filters and not any(f in name for f in a.filters):
                continue
            if name != current:
                current = name
                unit = "entries/s" if bulk else "ops/s"
                print(f"\n### {name}\n")
                print(f"| library | {unit} | commands/{'call' if bulk else 'op'} | round trips/op | call |")
                print("|---|---:|---|---:|---|")
            speed, commands, trips = run(a, r, caches, bulk, prepare, counter)
            print(f"| {library} | {speed:,.0f} | {commands} | {trips if not bulk else '-'} | {what} |")
            sys.stdout.flush()
            if tsv:
                tsv.write(f"{name}\t{library}\t{speed:.1f}\t{commands}\n")
        if tsv:
            tsv.close()
        r.flushdb()
    finally:
        if server:
            server.stop()


def _has(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
