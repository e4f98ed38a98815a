"""One operation of a Python caching library against a test's Redis server, for the
cross-language tests (tests/python_interop.rs): "Python writes, Rust reads" and "Rust writes,
Python reads".

    .venv/bin/python tests/python/interop.py PORT OP [ARGS_JSON]

prints one JSON line on stdout:

    {"ok": true, "result": ...}                 the operation's result
    {"ok": false, "error": "KeyError", "message": "..."}   the library raised

and exits 0 either way (a library refusing something is a result the tests check); it exits 2
on a usage error. Run `interop.py --list` for the operations.

Values cross the process boundary as JSON, with tags for what JSON cannot say:
{"$bytes": "<hex>"}, {"$tuple": [...]}, {"$set": [...]}, {"$float": "inf" | "-inf" | "nan"},
{"$int": "<decimal>"} for integers beyond 64 bits,
and {"$dict": [[key, value], ...]} for a dict whose keys are not all strings.

Nothing here talks to any server but 127.0.0.1:PORT.
"""
import json
import math
import os
import sys
import warnings


def to_py(v):
    """Tagged JSON -> Python value."""
    if isinstance(v, list):
        return [to_py(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            (tag, inner), = v.items()
            if tag == "$bytes":
                return bytes.fromhex(inner)
            if tag == "$tuple":
                return tuple(to_py(x) for x in inner)
            if tag == "$set":
                return {to_py(x) for x in inner}
            if tag == "$float":
                return float(inner)
            if tag == "$int":
                return int(inner)
            if tag == "$dict":
                return {to_py(k): to_py(x) for k, x in inner}
        return {k: to_py(x) for k, x in v.items()}
    return v


def to_json(v):
    """Python value -> tagged JSON."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, tuple):
        return {"$tuple": [to_json(x) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {"$set": sorted((to_json(x) for x in v), key=json.dumps)}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: to_json(x) for k, x in v.items()}
        return {"$dict": [[to_json(k), to_json(x)] for k, x in v.items()]}
    raise TypeError("cannot show a %s as JSON" % type(v).__name__)


# --- caches 3.0.0 -----------------------------------------------------------------------------

def caches_class(name):
    import caches
    return {
        "cache": caches.Cache,
        "dict": caches.DictCache,
        "set": caches.SetCache,
        "zset": caches.SortedSetCache,
        "sentinel": caches.SentinelCache,
    }[name]


def caches_obj(kind, a):
    """The caches object for `a`: {"key": str | [parts], "serialize"?, "ttl"?, "prefix"?}.

    The class is used as it is, so the prefix is its name (`Cache`, `DictCache`, ...) unless
    "prefix" says otherwise.
    """
    opts = {k: a[k] for k in ("serialize", "ttl", "prefix") if k in a}
    return caches_class(kind)(to_py(a["key"]), **opts)


def caches_key(a):
    return caches_obj(a.get("class", "cache"), a).key


def caches_cache_set(a):
    caches_obj("cache", a).data = to_py(a["value"])


def caches_cache_get(a):
    return caches_obj("cache", a).data


def caches_cache_incr(a):
    return caches_obj("cache", dict(a, serialize=False)).increment(a["by"])


def caches_dict_set(a):
    d = caches_obj("dict", a)
    for k, v in to_py(a["items"]):
        d[k] = v


def caches_dict_get(a):
    return caches_obj("dict", a)[to_py(a["field"])]


def caches_dict_items(a):
    return [[k, v] for k, v in caches_obj("dict", a).items()]


def caches_set_add(a):
    caches_obj("set", a).update(to_py(a["members"]))


def caches_set_members(a):
    return caches_obj("set", a).copy()


def caches_set_contains(a):
    return to_py(a["member"]) in caches_obj("set", a)


def caches_zset_add(a):
    z = caches_obj("zset", a)
    for score, member in to_py(a["items"]):
        z.add((score, member))


def caches_zset_items(a):
    return [[score, member] for score, member in caches_obj("zset", a)]


def caches_zset_pop(a):
    return list(caches_obj("zset", a).pop(desc=a.get("desc", False)))


def caches_sentinel_check(a):
    return bool(caches_obj("sentinel", a))


# --- pottery 3.0.1 ----------------------------------------------------------------------------

def pottery_obj(cls_name, a):
    import pottery
    return getattr(pottery, cls_name)(redis=REDIS, key=a["key"])


def pottery_dict_set(a):
    d = pottery_obj("RedisDict", a)
    for k, v in to_py(a["items"]):
        d[k] = v


def pottery_dict_items(a):
    return [[k, v] for k, v in pottery_obj("RedisDict", a).to_dict().items()]


def pottery_set_add(a):
    s = pottery_obj("RedisSet", a)
    for m in to_py(a["members"]):
        s.add(m)


def pottery_set_members(a):
    return [m for m in pottery_obj("RedisSet", a)]


def pottery_counter_update(a):
    pottery_obj("RedisCounter", a).update(to_py(a["counts"]))


def pottery_counter_items(a):
    return [[k, v] for k, v in pottery_obj("RedisCounter", a).to_counter().items()]


def pottery_list_extend(a):
    pottery_obj("RedisList", a).extend(to_py(a["values"]))


def pottery_list_items(a):
    return pottery_obj("RedisList", a).to_list()


# --- region-cache 0.3.8 -----------------------------------------------------------------------

def region(a):
    """The region `a["region"]` of a RegionCache on the test server, built as init_app does."""
    import pickle
    from region_cache import RegionCache
    serializer = json if a.get("serializer") == "json" else pickle
    rc = RegionCache(root=a.get("root", "root"), host="127.0.0.1", port=PORT, db=0,
                     serializer=serializer)
    rc._root = rc.region()
    return rc.region(a["region"], timeout=a.get("timeout"))


def region_set(a):
    r = region(a)
    for k, v in to_py(a["items"]):
        r[k] = v


def region_get(a):
    return region(a)[to_py(a["field"])]


def region_items(a):
    r = region(a)
    return [[k.decode("utf-8"), r[k]] for k in r]


def region_children(a):
    return sorted(c.name for c in region(a).children())


def region_invalidate(a):
    region(a).invalidate()


def caches_dict_keys(a):
    return list(caches_obj("dict", a).keys())


def pottery_dict_get(a):
    return pottery_obj("RedisDict", a)[to_py(a["field"])]


def pottery_set_contains(a):
    return to_py(a["member"]) in pottery_obj("RedisSet", a)


def pottery_counter_incr(a):
    c = pottery_obj("RedisCounter", a)
    c[to_py(a["field"])] += a["by"]
    return c[to_py(a["field"])]


def region_len(a):
    return len(region(a))


def float_repr(a):
    """repr() of each double, given by its IEEE 754 bits (so nothing is lost in transit)."""
    import struct
    return [repr(struct.unpack("<d", struct.pack("<Q", b))[0]) for b in a["bits"]]


def json_dumps(a):
    """json.dumps(v, sort_keys=True) of each value, as pottery writes it."""
    return [json.dumps(to_py(v), sort_keys=True) for v in a["values"]]


def pickle_dumps(a):
    import pickle
    return pickle.dumps(to_py(a["value"]), a.get("protocol", pickle.HIGHEST_PROTOCOL))


OPS = {
    "caches.key": caches_key,
    "caches.cache.set": caches_cache_set,
    "caches.cache.get": caches_cache_get,
    "caches.cache.incr": caches_cache_incr,
    "caches.dict.set": caches_dict_set,
    "caches.dict.get": caches_dict_get,
    "caches.dict.items": caches_dict_items,
    "caches.set.add": caches_set_add,
    "caches.set.members": caches_set_members,
    "caches.set.contains": caches_set_contains,
    "caches.zset.add": caches_zset_add,
    "caches.zset.items": caches_zset_items,
    "caches.zset.pop": caches_zset_pop,
    "caches.sentinel.check": caches_sentinel_check,
    "pottery.dict.set": pottery_dict_set,
    "pottery.dict.items": pottery_dict_items,
    "pottery.set.add": pottery_set_add,
    "pottery.set.members": pottery_set_members,
    "pottery.counter.update": pottery_counter_update,
    "pottery.counter.items": pottery_counter_items,
    "pottery.list.extend": pottery_list_extend,
    "pottery.list.items": pottery_list_items,
    "region.set": region_set,
    "region.get": region_get,
    "region.items": region_items,
    "region.children": region_children,
    "region.invalidate": region_invalidate,
    "pickle.dumps": pickle_dumps,
    "caches.dict.keys": caches_dict_keys,
    "pottery.dict.get": pottery_dict_get,
    "pottery.set.contains": pottery_set_contains,
    "pottery.counter.incr": pottery_counter_incr,
    "region.len": region_len,
    "float.repr": float_repr,
    "json.dumps": json_dumps,
}

PORT = 0
REDIS = None


def main(argv):
    global PORT, REDIS
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(sorted(OPS)))
        return 0
    if len(argv) not in (3, 4) or argv[2] not in OPS or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        print("operations: " + ", ".join(sorted(OPS)), file=sys.stderr)
        return 2
    PORT = int(argv[1])
    args = json.loads(argv[3]) if len(argv) == 4 else {}
    # Both libraries read these at import time; point them at the test's server only.
    os.environ["CACHES_DSN"] = "redis://127.0.0.1:%d/0" % PORT
    os.environ["REDIS_URL"] = "redis://127.0.0.1:%d/0" % PORT
    warnings.simplefilter("ignore")  # pottery's InefficientAccessWarning
    import redis
    REDIS = redis.Redis(host="127.0.0.1", port=PORT, db=0)
    try:
        result = OPS[argv[2]](args)
    except Exception as e:  # a library's refusal is a result the tests check
        print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e)}))
        return 0
    print(json.dumps({"ok": True, "result": to_json(result)}, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
