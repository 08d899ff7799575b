#!/usr/bin/env bash
# The main job: synthetic motion videos -> train a small 3T network -> explanation report (installs first).
# Extra arguments go to `conv3t demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/conv3t demo --out runs/demo "$@"
