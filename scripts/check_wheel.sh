#!/usr/bin/env bash
# Build conv3t's wheel, install it into a fresh virtual environment and run `conv3t params` from there, so a
# file missing from the package (module, config, template, stylesheet) fails CI. Fast: no download, no second
# copy of torch. The fresh venv gets only the wheel; the dependencies come from $CONV3T_VENV's site-packages
# through a .pth line (a .pth inside a folder named that way is not run, so the editable install stays out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${CONV3T_VENV:-.venv}
PY="$VENV/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Build from a copy of the source files (tracked or not ignored): a stale build/ folder in the checkout would
# otherwise put modules that no longer exist into the wheel.
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$tmp/src"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$tmp/dist" "$tmp/src"
"$PY" -m venv --without-pip "$tmp/venv"
"$PY" -m pip --python "$tmp/venv/bin/python" install --quiet --no-deps --no-index "$tmp"/dist/conv3t-*.whl
deps=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$site/zz-conv3t-deps.pth"
cd "$tmp"  # not the checkout: src/ must not be importable from here
"$tmp/venv/bin/python" -c 'import conv3t, sys; assert conv3t.__file__.startswith(sys.prefix), conv3t.__file__'
"$tmp/venv/bin/conv3t" params >/dev/null
echo "conv3t: the wheel installs and runs (conv3t params)"
