"""Writes the golden pickle fixtures that `src/codec/pickle.rs` tests decode.

Run from the repository root with any Python 3.8 or later (the bytes do not depend on the
version for these values):

    .venv/bin/python tests/python/gen_pickle_fixtures.py

The plain-data fixtures are what `caches` (protocol 5, `pickle.HIGHEST_PROTOCOL`) and
`region-cache` (protocol 4, the default) store, plus protocols 2 and 3 as older Python
services wrote them. The hostile fixtures would run code or build objects if Python loaded
them; the Rust codec must refuse every one. Nothing here is ever unpickled.
"""
import collections
import datetime
import io
import os
import pickle
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pickle")

# The file a hostile pickle would create if it ran; the Rust test checks that it never appears.
MARKER = "/tmp/redis-caches-pickle-pwned"

DOC = {
    "int": 42,
    "neg": -300,
    "big": 2**40,
    "float": 1.5,
    "text": "h\u00e9llo \U0001F600",
    "none": None,
    "yes": True,
    "no": False,
    "list": [1, 2, 3],
    "pair": (7, "seven"),
    "nested": {"k": [{"x": 1}]},
}


class RunsCode:
    """Pickles to a call of os.system: what an attacker would store."""

    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch %s')" % MARKER,))


class Point:
    """A plain class instance: NEWOBJ + BUILD (serde-pickle alone would decode its __dict__)."""

    def __init__(self, x, y):
        self.x = x
        self.y = y


class PersistentPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return "ref-1" if obj == "external" else None


def write(name, data):
    with open(os.path.join(OUT, name + ".pickle"), "wb") as f:
        f.write(data)


def bomb():
    """Nine levels of ten references each to the level below: 10**9 copies of a 64-byte string
    once expanded, in a few hundred bytes."""
    out = bytearray(b"\x80\x05")
    text = b"x" * 64
    out += b"\x8c" + bytes([len(text)]) + text + b"\x94"  # SHORT_BINUNICODE, MEMOIZE (id 0)
    for level in range(1, 10):
        out += b"](" + (b"h" + bytes([level - 1])) * 10 + b"e\x94"  # EMPTY_LIST MARK BINGET*10 APPENDS MEMOIZE
    out += b"."
    return bytes(out)


def deep(levels):
    """`levels` lists, each inside the previous one."""
    return b"\x80\x05" + b"]" * levels + b"a" * (levels - 1) + b"."


def main():
    os.makedirs(OUT, exist_ok=True)
    for proto in (2, 3, 4, 5):
        write("doc_p%d" % proto, pickle.dumps(DOC, proto))
        write("bytes_p%d" % proto, pickle.dumps(b"\x00\xffab", proto))
        write("set_p%d" % proto, pickle.dumps({1, 2, 3}, proto))
        write("frozenset_p%d" % proto, pickle.dumps(frozenset({"a"}), proto))
        write("bytearray_p%d" % proto, pickle.dumps(bytearray(b"ba"), proto))
        write("os_system_p%d" % proto, pickle.dumps(RunsCode(), proto))
        write("datetime_p%d" % proto, pickle.dumps(datetime.datetime(2024, 5, 1, 12, 0), proto))
    # One string object referenced twice (a memo reference), and one list object twice.
    same = "abc" * 2
    write("shared_str_p5", pickle.dumps([same, same], 5))
    shared = [1, 2]
    write("shared_list_p5", pickle.dumps([shared, shared], 5))
    write("big_int_p5", pickle.dumps(2**70, 5))
    write("str_p5", pickle.dumps("hello", 5))
    write("eval_p2", pickle.dumps(CallsEval(), 2))
    write("point_p5", pickle.dumps(Point(1, 2), 5))
    write("point_p2", pickle.dumps(Point(1, 2), 2))
    write("ordered_dict_p5", pickle.dumps(collections.OrderedDict(a=1), 5))
    recursive = []
    recursive.append(recursive)
    write("recursive_p5", pickle.dumps(recursive, 5))
    buf = io.BytesIO()
    PersistentPickler(buf, 5).dump(["external"])
    write("persistent_p5", buf.getvalue())
    write("protocol0", pickle.dumps({"a": 1}, 0))
    write("bomb_p5", bomb())
    write("deep_200_p5", deep(200))
    write("deep_100_p5", deep(100))
    # EXT1: an object registered with copyreg.add_extension, code 1.
    write("ext1_p2", b"\x80\x02\x82\x01.")
    # DUP: never written by CPython's pickler.
    write("dup_p5", b"\x80\x05]\x94\x32\x86.")
    # BINUNICODE8 claiming 2**62 bytes.
    write("huge_len_p5", b"\x80\x05\x8d" + struct.pack("<Q", 2**62) + b"abc.")


if __name__ == "__main__":
    main()
