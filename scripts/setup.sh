#!/usr/bin/env bash
# Install what a purpose needs into .cache/ (ignored by git); re-running reuses what is there unless its pin files
# changed. The purpose is the one argument:
#   all (the default; make test, make setup)  the Python toolchain (.cache/venv), the tool venvs of make lint and
#                                             make docs, shellcheck, and the pinned Restate server and CLI from npm
#   demo (make demo)                          .cache/venv and the Restate server alone: none of the tool venvs, and
#                                             no CLI (the demo never runs it); a later `all` adds what is missing
#
# Two variables select another cell of the compatibility matrix (make matrix), each installed beside the default:
#   ANSIBLE_CORE=2.16            .cache/venv-core-2.16 with the ansible-core pinned in tests/matrix/ansible-core-2.16.txt
#                                (a '# python: 3.13' line there picks the Python for that venv, from PATH or pyenv)
#   RESTATE_SERVER_VERSION=1.6.2 .cache/npm-server-1.6.2 with the server pinned in tests/npm/server-1.6.2/
set -euo pipefail
PURPOSE=${1:-all}
case $PURPOSE in
  all|demo) ;;
  *) echo "setup: unknown purpose '$PURPOSE'; use all (the default) or demo" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
PYTHON=${PYTHON:-python3}
mkdir -p "$CACHE"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# Python toolchain
install_venv() {  # install_venv DIR pip-arguments...
  local dir=$1; shift
  echo "setup: creating ${dir#"$ROOT"/}"
  rm -rf "$dir"
  "${VENV_PYTHON:-$PYTHON}" -m venv "$dir"  # VENV_PYTHON: for this call only (a matrix venv's Python)
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
find_python() {  # find_python 3.13: a Python 3.13 interpreter, from PATH or else from pyenv's newest 3.13.x
  local minor=$1 candidate
  if "python$minor" -c '' 2>/dev/null; then
    command -v "python$minor"
    return
  fi
  if command -v pyenv >/dev/null; then
    candidate=$(pyenv versions --bare 2>/dev/null | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1)
    if [ -n "$candidate" ] && [ -x "$(pyenv prefix "$candidate")/bin/python$minor" ]; then
      echo "$(pyenv prefix "$candidate")/bin/python$minor"
      return
    fi
  fi
  return 1
}
if [ -z "${ANSIBLE_CORE:-}" ]; then
  VENV=$CACHE/venv
  venv_stamp=$(stamp_of requirements-dev.txt constraints-dev.txt)
  if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$venv_stamp" ]; then
    install_venv "$VENV" -r requirements-dev.txt -c constraints-dev.txt
    echo "$venv_stamp" > "$VENV/.stamp"
  fi
else
  # The same toolchain with another ansible-core: its pins replace ansible-core's and resolvelib's.
  core_pins=tests/matrix/ansible-core-$ANSIBLE_CORE.txt
  if [ ! -f "$core_pins" ]; then
    echo "setup: ANSIBLE_CORE=$ANSIBLE_CORE has no pin file; choose one of:" \
      "$(cores=(tests/matrix/ansible-core-*.txt); cores=("${cores[@]#tests/matrix/ansible-core-}"); echo "${cores[@]%.txt}")" >&2
    exit 2
  fi
  VENV=$CACHE/venv-core-$ANSIBLE_CORE
  core_python=$(sed -n 's/^# python: \([0-9.]*\).*/\1/p' "$core_pins")
  core_venv_python=$PYTHON
  if [ -n "$core_python" ]; then
    core_venv_python=$(find_python "$core_python") || {
      echo "setup: ansible-core $ANSIBLE_CORE needs Python $core_python ($core_pins); install it" \
        "(e.g. pyenv install $core_python) or put python$core_python on PATH" >&2
      exit 2
    }
  fi
  venv_stamp=$(stamp_of requirements-dev.txt constraints-dev.txt "$core_pins")
  if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$venv_stamp" ]; then
    mkdir -p "$CACHE/tmp"
    grep -v '^ansible-core==' requirements-dev.txt > "$CACHE/tmp/requirements-core.txt"
    grep -v -e '^ansible-core==' -e '^resolvelib==' constraints-dev.txt > "$CACHE/tmp/constraints-core.txt"
    VENV_PYTHON=$core_venv_python install_venv "$VENV" -r "$CACHE/tmp/requirements-core.txt" -r "$core_pins" \
      -c "$CACHE/tmp/constraints-core.txt"
    echo "$venv_stamp" > "$VENV/.stamp"
  fi
fi
echo "setup: ansible-core $("$VENV/bin/python" -c "import ansible.release as r; print(r.__version__)") in ${VENV#"$ROOT"/}"

# Tools in venvs of their own (not for the demo), so their dependencies cannot move the test toolchain:
# ansible-lint (make lint), galaxy-importer (Galaxy's import checks, make lint), antsibull-docs and Sphinx (make docs).
tool_venv() {  # tool_venv DIR REQUIREMENTS
  local dir=$1 requirements=$2 stamp
  stamp=$(stamp_of "$requirements")
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    install_venv "$dir" -r "$requirements"
    echo "$stamp" > "$dir/.stamp"
  fi
}
if [ "$PURPOSE" = all ]; then
  tool_venv "$CACHE/lint" requirements-lint.txt
  tool_venv "$CACHE/importer" requirements-importer.txt
  tool_venv "$CACHE/docs" requirements-docs.txt
fi

# Event-Driven Ansible: ansible-rulebook for the end-to-end test of the example rulebooks (make integration).
# It starts a Java 17 VM (Drools) from its Python wheels; without java the venv installs and that test says why.
if [ "$PURPOSE" = all ]; then
  tool_venv "$CACHE/eda" requirements-eda.txt
fi
[ "$PURPOSE" != all ] || command -v java >/dev/null || echo "setup: java (17 or later) is not on PATH: ansible-rulebook cannot run;" \
  "install a JDK 17 (Debian: openjdk-17-jre-headless)" >&2

# The shellcheck program, for ansible-test sanity's shellcheck test (which skips itself when it is missing)
if [ "$PURPOSE" = all ] && ! command -v shellcheck >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing shellcheck (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }
  else
    echo "setup: shellcheck is not installed and cannot be installed here (needs apt-get and root):" \
      "make sanity will skip its shellcheck test; install shellcheck with your package manager" >&2
  fi
fi

# Restate server and CLI (the binaries ship inside the npm packages)
install_npm() {  # install_npm PIN_DIR DEST [server]: with "server", only the server's packages of the pins
  local pins=$1 dest=$2 only=${3:-} stamp installed
  stamp=$(stamp_of "$pins/package.json" "$pins/package-lock.json")
  installed=$(cat "$dest/.stamp" 2>/dev/null || true)
  # The whole install serves the server-only purpose too; the server-only one is stamped "<stamp> server".
  if [ "$installed" = "$stamp" ] || { [ -n "$only" ] && [ "$installed" = "$stamp $only" ]; }; then
    return
  fi
  echo "setup: installing ${pins#tests/}${only:+ (the server only)} into ${dest#"$ROOT"/}"
  rm -rf "$dest"
  mkdir -p "$dest"
  if [ -n "$only" ]; then
    # The pinned lock file less every package the server does not need (the CLI's): npm ci still checks each
    # remaining package against the lock's integrity hash.
    "$PYTHON" - "$pins" "$dest" <<'PY'
import json, sys
pins, dest = sys.argv[1:]
package = json.load(open(f"{pins}/package.json"))
lock = json.load(open(f"{pins}/package-lock.json"))
keep = {name: version for name, version in package["dependencies"].items() if name.endswith("/restate-server")}
package["dependencies"] = keep
lock["packages"][""]["dependencies"] = keep
lock["packages"] = {path: entry for path, entry in lock["packages"].items()
                    if path == "" or "/restate-server" in path or not path.startswith("node_modules/@restatedev/")}
json.dump(package, open(f"{dest}/package.json", "w"), indent=2)
json.dump(lock, open(f"{dest}/package-lock.json", "w"), indent=2)
PY
  else
    cp "$pins/package.json" "$pins/package-lock.json" "$dest/"
  fi
  (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$stamp${only:+ $only}" > "$dest/.stamp"
}
if [ "$PURPOSE" = demo ]; then
  install_npm tests/npm "$CACHE/npm" server
else
  install_npm tests/npm "$CACHE/npm"
fi
SERVER_ROOT=$CACHE/npm
if [ -n "${RESTATE_SERVER_VERSION:-}" ]; then
  if [ ! -d "tests/npm/server-$RESTATE_SERVER_VERSION" ]; then
    echo "setup: RESTATE_SERVER_VERSION=$RESTATE_SERVER_VERSION is not pinned; leave it unset for the default" \
      "or choose one of: $(servers=(tests/npm/server-*); echo "${servers[@]#tests/npm/server-}")" >&2
    exit 2
  fi
  SERVER_ROOT=$CACHE/npm-server-$RESTATE_SERVER_VERSION
  install_npm "tests/npm/server-$RESTATE_SERVER_VERSION" "$SERVER_ROOT"
fi
echo "setup: $("$SERVER_ROOT/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server" --version) in ${SERVER_ROOT#"$ROOT"/}"
