#!/usr/bin/env bash
# Build the collection tarball as a release would (ansible-galaxy collection build) and run Galaxy's importer
# (galaxy-importer, pinned in requirements-importer.txt, its own venv .cache/importer) on it, configured by
# scripts/galaxy-importer.cfg. Fails on any error AND any warning the importer logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.cache/build
rm -rf "$OUT"
mkdir -p "$OUT"
.cache/venv/bin/ansible-galaxy collection build --force --output-path "$OUT" . >/dev/null
tarball=$(ls "$OUT"/restate-admin-*.tar.gz)
echo "importer: ${tarball#"$ROOT"/}: $(tar -tzf "$tarball" | grep -vc '/$') files"

export GALAXY_IMPORTER_CONFIG=$ROOT/scripts/galaxy-importer.cfg
export PATH=$ROOT/.cache/importer/bin:$PATH  # its ansible-lint, flake8 and ansible-doc
export HOME=$ROOT/.cache/importer-home       # ansible's local tmp and ansible-lint's cache stay in .cache
mkdir -p "$HOME"
log=$OUT/importer.log
status=0
(cd "$OUT" && python -m galaxy_importer.main "$tarball") >"$log" 2>&1 || status=$?
cat "$log"
if [ "$status" -ne 0 ]; then
  echo "importer: FAILED (exit $status)" >&2
  exit 1
fi
# The importer exits 0 on warnings; a warning is a finding here, so is an error it only logged.
if grep -E '^(WARNING|ERROR|CRITICAL)|\b(WARNING|ERROR):' "$log" >/dev/null; then
  echo "importer: FAILED: the importer reported the warnings or errors above" >&2
  exit 1
fi
echo "importer: passed, no warning and no error"
