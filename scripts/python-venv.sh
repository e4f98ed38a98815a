#!/usr/bin/env bash
# Creates the Python virtual environment the cross-language tests use (tests/python_interop.rs)
# and installs the pinned Python libraries into it (tests/python/requirements.txt).
#
#   bash scripts/python-venv.sh            # creates ./.venv
#   PYTHON_INTEROP_VENV=/path bash scripts/python-venv.sh
#
# The tests look for the interpreter at $PYTHON_INTEROP_VENV/bin/python (default ./.venv).
# Needs Python 3.10 or later (caches 3.0.0) with venv and pip, and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${PYTHON_INTEROP_VENV:-.venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "scripts/python-venv.sh: $python is missing or older than 3.10 (caches 3.0.0 needs 3.10)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 ships venv separately.
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r tests/python/requirements.txt
"$venv/bin/python" -m pip check
# Importing is the real check: caches configures itself (and fails) at import time.
"$venv/bin/python" -c 'import caches, pottery, region_cache; print("python venv ready:", caches.__version__)'
