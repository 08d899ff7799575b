#!/usr/bin/env bash
# Run the whole test suite (installs what it needs first): ruff, the built wheel in a fresh venv, then pytest.
# Extra arguments go to pytest (e.g. -m 'not slow' for the quick tier, -n 0 for one process). CONV3T_VENV chooses the virtual environment (default .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
VENV=${CONV3T_VENV:-.venv}
# The HTML report is checked in a real headless browser; install Debian's Chromium where we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "conv3t: installing Debian's chromium for the report's browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "conv3t: could not install chromium; the browser test will say so"
fi
"$VENV/bin/ruff" check .
bash scripts/check_wheel.sh
# One worker per core (pytest-xdist; tests/conftest.py gives each worker one thread): the suite is CPU-bound
# and single-threaded torch on many small tensors, so two workers nearly halve it on CI's 2 cores.
exec "$VENV/bin/python" -m pytest -q -n auto --maxprocesses 8 "$@"
