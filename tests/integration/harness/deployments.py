"""A server of its own with the SDK test service served on more ports: each port a deployment of the same services.

The session's server is left alone (registering another deployment there would move every other test's invocations
onto it); a test module makes a DeploymentLab, starts versions and registers them with the Admin API.
"""

from __future__ import annotations

from pathlib import Path

import sys

from harness.server import HARNESS_DIR, Process, Restate, TestService, wait_until


class ChangedService(TestService):
    """service_app_changed.py (Tester as a virtual object), served like the test service."""

    def start(self):
        hypercorn = Path(sys.executable).with_name("hypercorn")
        self.process = Process([str(hypercorn), "service_app_changed:app", "--bind", f"127.0.0.1:{self.port}",
                                "--workers", "1"], self.workdir / "service.log", cwd=str(HARNESS_DIR))
        wait_until(self._listening, timeout=30, what="changed test service")
        return self


class DeploymentLab:
    """``server``: a Restate with the test service registered (its first deployment); ``version()`` serves the same
    app on a new port (not registered)."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.server = Restate(self.workdir / "server")
        self.extra = []

    def start(self):
        self.server.start()
        return self

    def version(self, changed: bool = False) -> TestService:
        """The test service on another free port, with its own log directory; stopped with the lab. ``changed``:
        the incompatible variant of service_app_changed.py."""
        directory = self.workdir / f"version-{len(self.extra) + 2}"
        directory.mkdir(parents=True, exist_ok=True)
        service = (ChangedService if changed else TestService)(directory).start()
        self.extra.append(service)
        return service

    def register(self, url: str, force: bool = False) -> str:
        response = self.server.http.post(self.server.admin_url + "/deployments",
                                         json={"uri": url, "use_http_11": True, "force": force}, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()["id"]

    def deployments(self) -> list:
        return self.server.http.get(self.server.admin_url + "/deployments", timeout=30).json()["deployments"]

    def deployment_ids(self) -> set:
        return {d["id"] for d in self.deployments()}

    def services(self) -> dict:
        """{name: service} as GET /services shows them."""
        answer = self.server.http.get(self.server.admin_url + "/services", timeout=30).json()["services"]
        return {s["name"]: s for s in answer}

    def latest(self) -> dict:
        return {name: s["deployment_id"] for name, s in self.services().items()}

    def pinned(self, invocation_id: str):
        return self.server.row(invocation_id).get("pinned_deployment_id")

    def wait_pinned(self, invocation_id: str, deployment_id: str, timeout=30.0):
        wait_until(lambda: self.pinned(invocation_id) == deployment_id, timeout=timeout,
                   what=f"{invocation_id} pinned to {deployment_id}")

    def kill(self, invocation_id: str):
        response = self.server.http.patch(f"{self.server.admin_url}/invocations/{invocation_id}/kill", timeout=30)
        assert response.status_code in (200, 202), response.text

    def stop(self):
        for service in self.extra:
            service.stop()
        self.server.stop()
