#!/usr/bin/env bash
# Server instructions per call of one Lua script, load-independent (benches/RESULTS.md,
# "Server instructions per call"): runs redis-server under `valgrind --tool=callgrind`, loads
# SCRIPT (a file with the whole text the crate sends: the prelude of src/engine/script.rs, then
# the script's body), runs SETUP (redis-cli arguments, optional) and the script once, then
# N EVALSHA calls through redis-benchmark -P 16 with ARGS (numkeys, keys, arguments), and
# prints the program's total instructions. Run it with N=2000 and with N=0 and divide the
# difference by 2000. HZ=1 runs the server at --hz 1: its timer's work, which grows with the
# (slow, load-dependent) run time under valgrind, then moves the result by less.
#
#   SETUP="set v x" benches/server_callgrind.sh read.lua 2000 3 v l st s '' tok 1000 -1 1 0 0 60000 '' keep
set -euo pipefail
script=$1; n=$2; shift 2
port=${PORT:-7997}
dir=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
  redis-server --port "$port" --save '' ${HZ:+--hz "$HZ"} --dir "$dir" >/dev/null 2>"$dir/valgrind.err" &
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
sha=$(redis-cli -p "$port" script load "$(cat "$script")")
if [ -n "${SETUP:-}" ]; then eval "redis-cli -p $port $SETUP" >/dev/null; fi
redis-cli -p "$port" evalsha "$sha" "$@" >/dev/null
if [ "$n" -gt 0 ]; then
  redis-benchmark -p "$port" -n "$n" -P 16 -c 1 -q evalsha "$sha" "$@" >/dev/null 2>&1
fi
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait
grep -h "^summary:\|^totals:" "$dir/cg.out" | awk '{print $2}' | head -1
rm -rf "$dir"
