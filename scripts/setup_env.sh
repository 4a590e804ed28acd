#!/usr/bin/env bash
# Create the virtual environment (.venv, or $MMSSR_VENV) and install the pinned stack into it.
# Idempotent: a second run only checks a stamp; a changed lock file re-installs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MMSSR_VENV:-.venv}"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "setup: Python >= 3.11 is required; none found on PATH (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$(cat requirements/*.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.mmssr-stamp" 2>/dev/null || true)" != "$stamp" ]; then
  echo "setup: installing the pinned stack into $VENV (first time: a few minutes, ~6 GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip==25.3 setuptools==80.9.0 wheel==0.45.1
  "$VENV/bin/python" -m pip install -q -r requirements/lock.txt
  # DeepSpeed ships only an sdist whose build needs the installed torch: no build isolation,
  # and no compiled ops (they are built just in time on GPU machines).
  DS_BUILD_OPS=0 "$VENV/bin/python" -m pip install -q --no-build-isolation -r requirements/deepspeed.txt
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  echo "$stamp" > "$VENV/.mmssr-stamp"
fi

# Debian's Chromium renders the selection report in the browser test (skipped when absent).
if [ ! -x /usr/bin/chromium ] && [ "${MMSSR_SKIP_CHROMIUM:-0}" != "1" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's chromium (report rendering test)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium not found; the report browser test will be skipped" \
         "(install Debian's chromium package to run it)" >&2
  fi
fi
