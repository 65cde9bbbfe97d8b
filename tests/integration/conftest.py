"""Session fixtures: one real restate-server with the SDK test service, and the installed collection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.playbook import Ansible, build_and_install  # noqa: E402
from harness.server import Restate  # noqa: E402


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("restate")


@pytest.fixture(scope="session")
def restate(workdir):
    instance = Restate(workdir)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def collections_path(workdir) -> Path:
    return build_and_install(workdir / "galaxy")


@pytest.fixture(scope="session")
def ansible(collections_path, restate, workdir) -> Ansible:
    return Ansible(collections_path, restate.admin_url, workdir)


@pytest.fixture(scope="session")
def client(restate):
    """The collection's own AdminClient, imported from the source tree."""
    from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient

    with AdminClient(restate.admin_url) as admin:
        yield admin
