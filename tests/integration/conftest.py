"""Session fixtures: one real restate-server with the SDK test service, and the installed collection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.deployments import DeploymentLab  # noqa: E402
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    """A server of its own per test module, with versions of the test service on further ports (deployments)."""
    instance = DeploymentLab(tmp_path_factory.mktemp(request.module.__name__)).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def play(collections_path, lab, workdir) -> Ansible:
    """ansible-playbook against the lab's server."""
    return Ansible(collections_path, lab.server.admin_url, workdir)
