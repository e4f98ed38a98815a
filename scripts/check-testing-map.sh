#!/usr/bin/env bash
# Checks that every test named in TESTING.md exists: `path.rs::name` (and `fm::name`, short
# for tests/failure_modes.rs) must be a `fn name` in that file. Run by .ci/run, so the map
# cannot drift from the tests when files or tests are renamed.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
while IFS= read -r ref; do
    path=${ref%%::*}
    name=${ref##*::}
    [[ $path == fm ]] && path=tests/failure_modes.rs
    if [[ ! -f $path ]]; then
        echo "TESTING.md names $ref, but $path does not exist" >&2
        missing=1
    elif ! grep -Eq "fn ${name}\b" "$path" "${path%.rs}"/*.rs 2>/dev/null; then
        echo "TESTING.md names $ref, but $path has no fn $name" >&2
        missing=1
    fi
done < <(grep -oE '`(fm|[a-z_/]+\.rs)::[a-z0-9_]+`' TESTING.md | tr -d '`' | sort -u)
exit $missing
