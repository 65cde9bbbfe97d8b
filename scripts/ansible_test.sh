#!/usr/bin/env bash
# Run ansible-test (sanity or units) on a copy of the collection laid out as
# ansible_collections/restate/admin, the way ansible-test requires.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.cache/venv${ANSIBLE_CORE:+-core-$ANSIBLE_CORE}  # ANSIBLE_CORE picks a matrix venv (scripts/setup.sh)
mkdir -p "$ROOT/.cache/ansible-test"
RUN_DIR=$(mktemp -d "$ROOT/.cache/ansible-test/run.XXXXXX")  # one tree per run: runs may overlap
trap 'rm -rf "$RUN_DIR"' EXIT
TREE=$RUN_DIR/ansible_collections/restate/admin
mkdir -p "$TREE"
# The files git knows or would add: what a clean checkout has, plus this work tree's edits.
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$TREE/$(dirname "$f")"
  cp -p "$f" "$TREE/$f"
done
(cd "$TREE" && git init -q && git add -A)

# ansible-test bootstraps pip in each of its virtual environments with a get-pip script it downloads
# from a host this machine cannot reach; a stand-in in its cache directory is used instead.
export HOME=$ROOT/.cache/ansible-test-home
mkdir -p "$HOME/.ansible/test/cache"
for pip_version in 25_2 24_2 23_1_2; do  # ansible-core 2.20+ bootstraps pip 25.2, 2.18 and 2.19 pip 24.2, 2.16 and 2.17 pip 23.1.2
  cp scripts/get_pip_standin.py "$HOME/.ansible/test/cache/get_pip_$pip_version.py"
done

export PATH=$VENV/bin:$PATH
cd "$TREE"
# Without --python, the venv's own Python (3.11 by default; 3.12 or 3.13 for ansible-core 2.20 and 2.21).
case " $* " in
  *" --python "*|*" --python="*) ansible-test "$@" ;;
  *) ansible-test "$@" --python "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ;;
esac
