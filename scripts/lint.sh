#!/usr/bin/env bash
# The project's static checks, each from its own venv (scripts/setup.sh):
#   - the roles' README.md files are what scripts/role_readmes.py writes from their argument specs;
#   - ansible-lint (production profile, see .ansible-lint) on the playbooks, roles and example rulebooks;
#   - antsibull-changelog lint: the changelog fragments;
#   - antsibull-docs lint-collection-docs --plugin-docs: the docs pipeline of docs.ansible.com;
#   - the documentation site (scripts/docs.sh, warnings are errors) and its pages and links (scripts/docs_check.py);
#   - galaxy-importer on the built tarball (scripts/galaxy_importer.sh): what Galaxy checks on upload,
#     failing on any warning.
# The collection is made resolvable through a collections path that links to this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/collections/ansible_collections/restate
ln -sfn "$PWD" .cache/collections/ansible_collections/restate/admin
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"

echo "lint: role READMEs"
.cache/venv/bin/python scripts/role_readmes.py --check

echo "lint: ansible-lint"
.cache/lint/bin/ansible-lint playbooks roles extensions/eda/rulebooks

echo "lint: antsibull-changelog lint"
.cache/venv/bin/antsibull-changelog lint

echo "lint: antsibull-docs lint-collection-docs"
(cd .cache/collections/ansible_collections/restate/admin &&
  PATH="$OLDPWD/.cache/docs/bin:$PATH" antsibull-docs lint-collection-docs --plugin-docs .)

echo "lint: documentation site"
scripts/docs.sh
.cache/venv/bin/python scripts/docs_check.py

echo "lint: galaxy-importer"
scripts/galaxy_importer.sh
