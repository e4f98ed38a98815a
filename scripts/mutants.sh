#!/usr/bin/env bash
# Mutation testing of the crate's pure modules, against the unit tests only (no server needed).
#
#   scripts/mutants.sh                      # src/dsn.rs and src/key.rs
#   scripts/mutants.sh src/codec.rs         # ... and more files
#   scripts/mutants.sh --only src/codec/trace.rs   # only the files named
#   scripts/mutants.sh --list               # any argument not ending in .rs goes to cargo mutants
#   scripts/mutants.sh --engine             # only the engine's functions that need no server
#
# The pure modules: src/dsn.rs, src/key.rs, src/codec.rs, src/codec/*.rs (the tests in
# src/codec/*_tests.rs excepted), src/engine/path.rs, src/engine/script.rs, and with
# `--engine` the functions of src/engine.rs that build requests, read replies and classify
# errors (the rest of the engine sends commands; the integration tests cover it, with a server).
#
# Installs cargo-mutants when it is missing. Runs one mutant at a time (`-j 1`, override with
# MUTANTS_JOBS) because the machines it runs on are shared. Builds with every feature, so that
# the codecs behind `json` and `pickle` are compiled and tested. Results land in mutants.out/
# (caught.txt, missed.txt, unviable.txt, timeout.txt); TESTING.md records the last run and
# explains every survivor.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "cargo-mutants not found: installing it (cargo install cargo-mutants --locked)" >&2
    cargo install cargo-mutants --locked
fi

files=(src/dsn.rs src/key.rs)
named=()
only=false
options=()
for arg in "$@"; do
    case "$arg" in
        --only) only=true ;;
        --engine)
            # `-F` and `-E` apply to every file of a run, so the engine runs on its own.
            files=(src/engine.rs src/engine/script.rs)
            options+=(
                -F 'Engine<C>::(server_error|check_size|versioned|schema_version|misses_other_shapes|decode_or_miss|ttl_args|point_reply|fields_reply|encode|encode_in|decode|decode_in|decode_field|decode_member|encode_field_at)( |$)'
                -F '(^| )(is_read|pttl|expiry)( |$)'
                -F 'Script::'
                # WRONGTYPE's extra TYPE round trip, sent to a placed key or not.
                -E 'key.starts_with'
            )
            ;;
        *.rs) named+=("$arg") ;;
        *) options+=("$arg") ;;
    esac
done

if [ "$only" = true ]; then
    files=()
fi
files+=(${named[@]+"${named[@]}"})
if [ "${#files[@]}" -eq 0 ]; then
    echo "--only needs at least one file" >&2
    exit 2
fi
args=()
for file in "${files[@]}"; do
    args+=(--file "$file")
done

# Debug info makes every mutant's link slower and helps nobody reading a mutants report.
export CARGO_PROFILE_DEV_DEBUG=0
export CARGO_PROFILE_TEST_DEBUG=0

# `--cargo-arg=--lib` (rather than `-- --lib`, which reaches only the test run) also keeps the
# build of each mutant to the library and its unit tests, instead of every integration test
# and bench.
exec cargo mutants "${args[@]}" --all-features --jobs "${MUTANTS_JOBS:-1}" --cargo-arg=--lib \
    ${options[@]+"${options[@]}"}
