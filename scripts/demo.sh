#!/usr/bin/env bash
# The main job: synthetic motion videos -> train a small 3T network -> explanation report (installs first).
# Extra arguments go to `conv3t demo`. CONV3T_VENV chooses the virtual environment (default .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
VENV=${CONV3T_VENV:-.venv}
exec "$VENV/bin/conv3t" demo --out runs/demo "$@"
