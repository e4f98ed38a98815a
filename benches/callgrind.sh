#!/usr/bin/env bash
# Client-side instructions per operation, crate vs raw, counted by callgrind: reproducible where
# wall times are not (a shared or busy machine). Each workload and side runs twice under
# `valgrind --tool=callgrind`, with N calls and with 0 calls; the difference over N is the cost
# of one call in this process (the server's work is not counted).
#
#   benches/callgrind.sh                       # every workload
#   benches/callgrind.sh RedisCache::get SetCache::extend
#   N=20000 benches/callgrind.sh RedisCache::get
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
N=${N:-5000}       # calls per single-element run
B=${B:-2}          # calls per bulk run
cargo build -q --release --example compare
exe="${CARGO_TARGET_DIR:-target}/release/examples/compare"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ $# -eq 0 ]; then
  mapfile -t names < <(grep -o 'name: "[^"]*"' benches/common/workloads.rs | sed 's/name: "\(.*\)"/\1/')
else
  names=("$@")
fi

instructions() { # side calls name
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$exe" --no-redis-benchmark --rounds 1 \
    --threads 1 --side "$1" --ops "$2" --bulk-calls "$2" "$3" >/dev/null 2>"$out/log"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log"
}

echo "| workload | crate instructions/call | raw instructions/call | crate - raw | crate/raw |"
echo "|---|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  if grep -q "name: \"$name\"," -A3 benches/common/workloads.rs && \
     grep -A3 "name: \"$name\"," benches/common/workloads.rs | grep -q "Size::Bulk"; then
    n=$B
  else
    n=$N
  fi
  declare -A per
  for side in crate raw; do
    full=$(instructions "$side" "$n" "$name")
    base=$(instructions "$side" 0 "$name")
    per[$side]=$(( (full - base) / n ))
  done
  awk -v w="$name" -v c="${per[crate]}" -v r="${per[raw]}" 'BEGIN {
    printf "| %s | %d | %d | %d | %.3f |\n", w, c, r, c - r, c / r }'
done
