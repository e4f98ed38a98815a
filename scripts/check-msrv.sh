#!/usr/bin/env bash
# Checks that the crate's declared rust-version (Cargo.toml) is true for every locked
# dependency: none may declare a newer rust-version. (Uses of std APIs newer than the MSRV
# are caught by clippy's incompatible_msrv lint, which reads the same rust-version.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys

def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

meta = json.load(sys.stdin)
root = next(p for p in meta["packages"] if p["id"] == meta["resolve"]["root"])
msrv = root.get("rust_version")
if not msrv:
    sys.exit("Cargo.toml declares no rust-version")
too_new = [
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] != root["id"] and p.get("rust_version") and version(p["rust_version"]) > version(msrv)
]
if too_new:
    for name, v, rv in sorted(too_new):
        print(f"{name} {v} needs Rust {rv}, above the declared rust-version {msrv}", file=sys.stderr)
    sys.exit(1)
checked = sum(1 for p in meta["packages"] if p.get("rust_version"))
print(f"rust-version {msrv}: every locked dependency that declares one ({checked}) needs at most {msrv}")
'
