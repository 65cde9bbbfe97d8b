# restate.admin — every target installs what it needs into .cache/ first (scripts/setup.sh).
VENV := .cache/venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: test setup units sanity lint docs importer changelog role-readmes newest integration reliability load matrix demo bench profile clean

## One command for the whole suite: set-up, unit tests, ansible-test sanity, ansible-lint, integration tests.
test: setup
	$(MAKE) units
	$(MAKE) sanity
	$(MAKE) lint
	$(MAKE) newest
	$(MAKE) integration

## The newest pinned ansible-core (tests/matrix/, on the Python its pin file names): unit tests and ansible-test sanity.
NEWEST_CORE := $(shell ls tests/matrix | sed -n 's/^ansible-core-\(.*\)\.txt$$/\1/p' | sort -V | tail -n 1)
newest:
	ANSIBLE_CORE=$(NEWEST_CORE) scripts/setup.sh
	ANSIBLE_CORE=$(NEWEST_CORE) $(MAKE) units sanity

## The demo: a local Restate server with a demo service, the three playbooks (dry run, then for real, each run as
## docs/cron.md shows), and a release of the service's version 2 that retires version 1 once drained. It installs
## only what it uses (the test venv and the Restate server: no lint, importer or docs venvs, no CLI).
demo:
	scripts/setup.sh demo
	$(PY) demo/run_demo.py

## Everything every target uses (scripts/setup.sh all); `scripts/setup.sh demo` is the demo's part alone.
setup:
	scripts/setup.sh all

units:
	scripts/pytest.sh tests/unit

sanity:
	scripts/ansible_test.sh sanity --local --color no

## Static checks: role READMEs in step, ansible-lint, the changelog fragments, antsibull-docs lint, the docs site
## (built and checked) and Galaxy's importer on the built tarball (any warning fails).
lint:
	scripts/lint.sh

## The documentation site (antsibull-docs + Sphinx, warnings are errors) into .cache/docs-site/html, then checked:
## a page per module, role entry point, README, changelog and docs/*.md, every internal link resolving.
docs: setup
	scripts/docs.sh
	$(PY) scripts/docs_check.py

## Galaxy's importer alone, on a freshly built tarball.
importer: setup
	scripts/galaxy_importer.sh

## The roles' README.md files, rewritten from their meta/argument_specs.yml (make lint checks they are in step).
role-readmes: setup
	$(PY) scripts/role_readmes.py

## Release step (once, on the merged branch, before tagging): fragments -> CHANGELOG.rst + changelogs/changelog.yaml
## for galaxy.yml's version.
changelog: setup
	scripts/changelog.sh

## Side-by-side benchmark against the official CLI (BENCH_N, BENCH_ROUNDS, BENCH_RSS_N); writes docs/benchmarks.md.
bench: setup
	$(PY) bench/bench.py

## Where a large bulk task spends its time, beside the raw batch route (PROFILE_N, default 100000; PROFILE_STATE purged,
## cancelled or killed; PROFILE_WRITE=1 and PROFILE_LABEL write its table into docs/benchmarks.md).
profile: setup
	$(PY) bench/profile_bulk.py

integration:
	scripts/pytest.sh tests/integration

## Reliability suite alone, with the load runs that make test leaves out (as make load).
reliability: setup
	scripts/pytest.sh tests/integration/test_reliability.py -m "load or not load"

## The load runs alone, side by side on one server each: a million purged by one task, by the batch route driven raw
## (bench/raw_batches.py) and by the official CLI (LOAD_N, default 1000000), 200,000 suspended cancelled and as many
## killed the same three ways (LOAD_SUSPENDED_N), each writing its section of docs/benchmarks.md; 100,000 listed and
## purged both ways the code runs, a server killed mid 10,000 cancels.
load: setup
	scripts/pytest.sh tests/integration/test_reliability.py -m load

## Compatibility matrix: every pinned ansible-core and Restate server (MATRIX_ANSIBLE, MATRIX_SERVERS, MATRIX_SLOW=1);
## writes docs/compatibility.md. One cell by hand: ANSIBLE_CORE=2.16 or RESTATE_SERVER_VERSION=1.6.2 with any target.
matrix:
	python3 tests/matrix/run_matrix.py

clean:
	rm -rf .cache tests/output
