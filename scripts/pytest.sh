#!/usr/bin/env bash
# pytest from the project's venv; "no tests collected" (exit 5) is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
VENV=.cache/venv${ANSIBLE_CORE:+-core-$ANSIBLE_CORE}  # ANSIBLE_CORE picks a matrix venv (scripts/setup.sh)
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests for: $*" >&2
fi
exit "$rc"
