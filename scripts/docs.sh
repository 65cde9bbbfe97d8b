#!/usr/bin/env bash
# make docs: the collection's documentation site, as docs.ansible.com renders collections, into .cache/docs-site/html
# (ignored). antsibull-docs writes a page per module and per role entry point, and the collection's index; the
# README, the changelog and the docs/*.md pages (MyST Markdown) are added as pages. Sphinx treats every warning
# as an error. Everything runs from the venv .cache/docs (requirements-docs.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SITE=$ROOT/.cache/docs-site
export PATH=$ROOT/.cache/docs/bin:$PATH
mkdir -p .cache/collections/ansible_collections/restate
ln -sfn "$ROOT" .cache/collections/ansible_collections/restate/admin
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections

rm -rf "$SITE"
mkdir -p "$SITE"
SRC=$SITE/rst
mkdir -m 700 "$SRC"  # antsibull-docs wants its destination writable by its owner only
# The install line of every page pinned to galaxy.yml's major version, as the README pins it.
major=$(sed -n 's/^version: *\([0-9]*\)\..*/\1/p' galaxy.yml)
cat > "$SITE/antsibull-docs.cfg" <<CFG
collection_install = {
  restate.admin = "ansible-galaxy collection install 'restate.admin:>=$major.0.0,<$((major + 1)).0.0'"
}
CFG
antsibull-docs --config-file "$SITE/antsibull-docs.cfg" collection --use-current --squash-hierarchy --fail-on-error \
  --cleanup everything --dest-dir "$SRC" restate.admin
# Each role page gets the report section its README has (scripts/role_readmes.py, from roles/*/meta/report.yml).
python scripts/role_readmes.py --site "$SRC"

# The README and the docs/ pages, at the same relative places, so the README's links to docs/*.md resolve.
cp README.md "$SRC/readme.md"
mkdir -p "$SRC/docs"
cp docs/*.md "$SRC/docs/"
# The changelog: CHANGELOG.rst once a release made it (make changelog); before that, a preview of the next
# release, made from the fragments in a throwaway copy (the fragments stay where they are).
if [ -f CHANGELOG.rst ]; then
  cp CHANGELOG.rst "$SRC/changelog.rst"
else
  preview=$SITE/changelog-preview
  mkdir -p "$preview"
  cp -r galaxy.yml changelogs plugins roles meta "$preview/"
  version=$(sed -n 's/^version: *//p' galaxy.yml)
  (cd "$preview" && "$ROOT/.cache/docs/bin/antsibull-changelog" release --version "$version" >/dev/null)
  { echo ".. note:: Not yet released: a preview of version $version made from changelogs/fragments."; echo
    cat "$preview/CHANGELOG.rst"; } > "$SRC/changelog.rst"
fi
{
  echo
  echo ".. toctree::"
  echo "   :maxdepth: 1"
  echo "   :caption: Guides"
  echo
  echo "   readme"
  for page in docs/*.md; do echo "   docs/$(basename "$page" .md)"; done
  echo "   changelog"
} >> "$SRC/index.rst"

cat > "$SITE/conf.py" <<'CONF'
project = 'restate.admin'
copyright = 'restate.admin contributors'
title = 'restate.admin collection documentation'
html_short_title = 'restate.admin'
extensions = ['sphinx_antsibull_ext', 'myst_parser']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_heading_anchors = 3
pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'
html_theme = 'sphinx_ansible_theme'
html_theme_options = {'collapse_navigation': False}
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = 'any'
nitpicky = True

# The generated pages refer to a few labels of Ansible's own documentation; offline there is no intersphinx
# inventory, so these (and only these) become links to docs.ansible.com. Any other unresolved reference still
# fails the build.
ANSIBLE_DOCS = 'https://docs.ansible.com/ansible/latest/'
EXTERNAL_LABELS = {
    'ansible_configuration_settings': ('reference_appendices/config.html', 'Ansible Configuration Settings'),
    'action_plugins': ('plugins/action.html', 'action plugins'),
    'common_return_values': ('reference_appendices/common_return_values.html', 'Return Values'),
}


def _external_label(app, env, node, contnode):
    from docutils import nodes
    target = EXTERNAL_LABELS.get(node.get('reftarget'))
    if node.get('reftype') != 'ref' or target is None:
        return None
    text = contnode.astext() if contnode is not None and contnode.astext() != node.get('reftarget') else target[1]
    reference = nodes.reference('', '', internal=False, refuri=ANSIBLE_DOCS + target[0])
    reference += nodes.inline(text, text)
    return reference


def setup(app):
    app.connect('missing-reference', _external_label)
CONF
sphinx-build -q -b html -c "$SITE" -W --keep-going "$SRC" "$SITE/html"
echo "docs: .cache/docs-site/html/index.html"
