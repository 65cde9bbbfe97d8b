#!/usr/bin/env bash
# ansible-lint (production profile, see .ansible-lint) on the playbooks and roles, from its own venv.
# The collection is made resolvable through a collections path that links to this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/collections/ansible_collections/restate
ln -sfn "$PWD" .cache/collections/ansible_collections/restate/admin
ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" exec .cache/lint/bin/ansible-lint playbooks roles
