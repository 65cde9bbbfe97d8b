#!/usr/bin/env bash
# make changelog: the release step. Turns changelogs/fragments/*.yml into a release section of
# changelogs/changelog.yaml and CHANGELOG.rst for the version in galaxy.yml (antsibull-changelog release;
# the fragments are consumed, as antsibull-changelog does). Run it once, on the merged branch, right before
# tagging the release; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.cache/venv/bin:$PATH  # antsibull-changelog runs ansible-doc to find the plugins
version=$(sed -n 's/^version: *//p' galaxy.yml)
[ -n "$version" ] || { echo "changelog: galaxy.yml has no version" >&2; exit 2; }
if grep -q "^  $version:" changelogs/changelog.yaml; then
  echo "changelog: $version is already released in changelogs/changelog.yaml; raise galaxy.yml's version first" >&2
  exit 2
fi
# A plugin new in this release must say so: antsibull-changelog lists it as new from its version_added.
released=$(.cache/venv/bin/python -c 'import sys, yaml; print(" ".join(str(v) for v in (yaml.safe_load(open("changelogs/changelog.yaml")).get("releases") or {})))')
stale=0
for plugin in plugins/modules/*.py; do
  added=$(sed -n 's/^version_added: *["'"'"']\{0,1\}\([^"'"'"']*\).*/\1/p' "$plugin" | head -n 1)
  case " $released $version " in
    *" $added "*) ;;
    *) echo "changelog: $plugin has version_added: ${added:-(none)}; a module new in this release says $version" >&2
       stale=1 ;;
  esac
done
[ "$stale" -eq 0 ] || exit 2
.cache/venv/bin/antsibull-changelog lint
.cache/venv/bin/antsibull-changelog release --version "$version"
echo "changelog: released $version into CHANGELOG.rst and changelogs/changelog.yaml; commit both (and the removed fragments)"
