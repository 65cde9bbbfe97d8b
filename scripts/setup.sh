#!/usr/bin/env bash
# Install everything the tests, the demo and the benchmarks need into .cache/ (ignored by git):
# a Python virtual environment with the pinned toolchain, and the pinned Restate server and CLI from npm.
# Re-running reuses both unless their pin files changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
PYTHON=${PYTHON:-python3}
mkdir -p "$CACHE"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# Python toolchain
venv_stamp=$(stamp_of requirements-dev.txt constraints-dev.txt)
if [ "$(cat "$CACHE/venv/.stamp" 2>/dev/null)" != "$venv_stamp" ]; then
  echo "setup: creating .cache/venv"
  rm -rf "$CACHE/venv"
  "$PYTHON" -m venv "$CACHE/venv"
  "$CACHE/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements-dev.txt -c constraints-dev.txt
  echo "$venv_stamp" > "$CACHE/venv/.stamp"
else
  echo "setup: .cache/venv is up to date"
fi

# ansible-lint, in a venv of its own so its dependencies cannot move the test toolchain
lint_stamp=$(stamp_of requirements-lint.txt)
if [ "$(cat "$CACHE/lint/.stamp" 2>/dev/null)" != "$lint_stamp" ]; then
  echo "setup: creating .cache/lint"
  rm -rf "$CACHE/lint"
  "$PYTHON" -m venv "$CACHE/lint"
  "$CACHE/lint/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
  echo "$lint_stamp" > "$CACHE/lint/.stamp"
else
  echo "setup: .cache/lint is up to date"
fi

# Restate server and CLI (the binaries ship inside the npm packages)
npm_stamp=$(stamp_of tests/npm/package.json tests/npm/package-lock.json)
if [ "$(cat "$CACHE/npm/.stamp" 2>/dev/null)" != "$npm_stamp" ]; then
  echo "setup: installing the Restate server and CLI into .cache/npm"
  rm -rf "$CACHE/npm"
  mkdir -p "$CACHE/npm"
  cp tests/npm/package.json tests/npm/package-lock.json "$CACHE/npm/"
  (cd "$CACHE/npm" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_stamp" > "$CACHE/npm/.stamp"
else
  echo "setup: .cache/npm is up to date"
fi
"$CACHE/npm/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server" --version
