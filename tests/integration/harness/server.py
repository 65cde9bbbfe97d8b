"""Start a real restate-server and the SDK test service, and make invocations in every status.

Binaries come from the project's own install (scripts/setup.sh puts them under .cache/npm);
RESTATE_SERVER_BIN / RESTATE_CLI_BIN point elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = ROOT / ".cache" / "npm" / "node_modules" / "@restatedev"
# RESTATE_SERVER_VERSION picks another pinned server of the matrix (scripts/setup.sh installs it beside the default).
SERVER_MODULES = (ROOT / ".cache" / f"npm-server-{os.environ['RESTATE_SERVER_VERSION']}" / "node_modules" / "@restatedev"
                  if os.environ.get("RESTATE_SERVER_VERSION") else NODE_MODULES)
SERVER_BIN = Path(os.environ.get("RESTATE_SERVER_BIN", SERVER_MODULES / "restate-server-linux-x64/bin/restate-server"))
CLI_BIN = Path(os.environ.get("RESTATE_CLI_BIN", NODE_MODULES / "restate-linux-x64/bin/restate"))


def server_version() -> tuple:
    """(major, minor, patch) of the restate-server the tests start."""
    output = subprocess.run([str(SERVER_BIN), "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in re.search(r"(\d+)\.(\d+)\.(\d+)", output).groups())


HARNESS_DIR = Path(__file__).resolve().parent

# Every status the harness can produce, with the handler that produces it.
STATUSES = ("scheduled", "pending", "running", "suspended", "backing-off", "paused", "completed-success",
            "completed-failure")


_HANDED_OUT = set()  # every port free_port gave, bound yet or not


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so an outgoing connection cannot take it before the server binds,
    and never one given before: the nodes of a cluster bind theirs only when they start, and two nodes given the same
    port made one of them fail to start."""
    for unused_attempt in range(200):
        port = random.randint(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port in 20000-32000")


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def sql_ids(ids) -> str:
    """``ids`` as a SQL list, for ``id IN (...)`` (invocation ids need no escaping)."""
    return ", ".join(f"'{i}'" for i in ids)


def _status_matches(status, wanted):
    return status in wanted or (status.startswith("completed-") and "completed" in wanted)


class Process:
    """A child process in its own process group, stopped by pid."""

    def __init__(self, args, log_path, env=None, cwd=None):
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        self.log.close()


class PortTaken(RuntimeError):
    """Another process bound one of the server's ports first."""


class RestateServer:
    """restate-server on free loopback ports with its own base dir."""

    def __init__(self, workdir: Path, binary: Path = SERVER_BIN):
        self.workdir = workdir
        self.binary = binary
        self.admin_port = free_port()
        self.ingress_port = free_port()
        self.node_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.ingress_url = f"http://127.0.0.1:{self.ingress_port}"
        self.process = None

    def start(self, attempts: int = 3):
        for attempt in range(attempts):
            try:
                return self._start()
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.process.stop()
                self.admin_port, self.ingress_port, self.node_port = free_port(), free_port(), free_port()
                self.admin_url = f"http://127.0.0.1:{self.admin_port}"
                self.ingress_url = f"http://127.0.0.1:{self.ingress_port}"
        return self

    def restart(self):
        """Start again on the same ports and base dir, after a stop (or a SIGKILL)."""
        self._start()
        return self

    def _start(self):
        self.launch()
        wait_until(self._healthy, timeout=60, what="restate-server /health")
        return self

    def launch(self):
        """Start the process without waiting for it to be healthy."""
        config = self.workdir / "restate.toml"
        config.write_text(self.config())
        env = dict(os.environ, RESTATE_BIND_ADDRESS=f"127.0.0.1:{self.node_port}", RESTATE_LOG_FORMAT="compact")
        env.pop("RESTATE_ADMIN_URL", None)
        self.process = Process([str(self.binary), "--config-file", str(config), "--base-dir",
                                str(self.workdir / "data")], self.workdir / "server.log", env=env)

    def config(self) -> str:
        return (f'[admin]\nbind-address = "127.0.0.1:{self.admin_port}"\n'
                f'[ingress]\nbind-address = "127.0.0.1:{self.ingress_port}"\n')

    def _healthy(self):
        if not self.process.alive():
            log = self.workdir / "server.log"
            if "Address in use" in log.read_text(errors="replace"):
                raise PortTaken(str(log))
            raise RuntimeError(f"restate-server exited; see {log}")
        try:
            return requests.get(self.admin_url + "/health", timeout=1).status_code == 200 and \
                requests.get(self.ingress_url + "/restate/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.process:
            self.process.stop(sig)


class TestService:
    """The SDK service of service_app.py, served by hypercorn over HTTP/1.1."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.process = None

    def start(self):
        hypercorn = Path(sys.executable).with_name("hypercorn")
        self.process = Process([str(hypercorn), "service_app:app", "--bind", f"127.0.0.1:{self.port}",
                                "--workers", "1"], self.workdir / "service.log", cwd=str(HARNESS_DIR))
        wait_until(self._listening, timeout=30, what="test service")
        return self

    def _listening(self):
        if not self.process.alive():
            raise RuntimeError(f"test service exited; see {self.workdir / 'service.log'}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        if self.process:
            self.process.stop()


class Restate:
    """A running server with the test service registered, and helpers to make invocations."""

    def __init__(self, workdir: Path | None = None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="restate-it-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server = RestateServer(self.workdir)
        self.service = TestService(self.workdir)
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
        self.http.mount("http://", adapter)

    @property
    def admin_url(self):
        return self.server.admin_url

    @property
    def ingress_url(self):
        return self.server.ingress_url

    def start(self):
        self.server.start()
        self.service.start()
        self.register()
        return self

    def wait_healthy(self, timeout=60):
        wait_until(self.server._healthy, timeout=timeout, what="restate-server /health")

    def register(self):
        response = self.http.post(self.admin_url + "/deployments",
                                  json={"uri": self.service.url, "use_http_11": True, "force": True}, timeout=30)
        response.raise_for_status()
        self.deployment_id = response.json()["id"]
        return self.deployment_id

    def stop(self):
        self.http.close()
        self.service.stop()
        self.server.stop()

    # -- reading ---------------------------------------------------------------------------------
    def query(self, sql: str) -> list:
        response = self.http.post(self.admin_url + "/query", json={"query": sql},
                                  headers={"accept": "application/json"}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["rows"]

    def statuses(self, ids) -> dict:
        """{id: status} for the ids still on the server; 'completed' carries its result: completed-success."""
        found = {}
        ids = list(ids)
        for start in range(0, len(ids), 2000):
            chunk = sql_ids(ids[start:start + 2000])
            for row in self.query(f"SELECT id, status, completion_result FROM sys_invocation WHERE id IN ({chunk})"):
                status = row["status"]
                if status == "completed":
                    status = f"completed-{row.get('completion_result')}"
                found[row["id"]] = status
        return found

    def row(self, invocation_id: str) -> dict | None:
        rows = self.query(f"SELECT * FROM sys_invocation WHERE id = '{invocation_id}'")
        return rows[0] if rows else None

    def wait_statuses(self, ids, wanted, timeout=30.0):
        """Wait until every id is in a status of ``wanted``: STATUSES names, 'completed' or 'absent'."""
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        ids = list(ids)

        seen = {}

        def settled():
            current = self.statuses(ids)
            seen["statuses"] = {i: current.get(i, "absent") for i in ids}
            return all(_status_matches(status, wanted) for status in seen["statuses"].values())
        try:
            wait_until(settled, timeout=timeout, what=f"{len(ids)} invocations to reach {wanted}")
        except TimeoutError as error:  # say where they stand, so a slow server can be told from a stuck service
            last_seen = seen.get("statuses", {})
            raise TimeoutError(f"{error}; last seen: {dict(Counter(last_seen.values()))}; "
                               f"{self._why_unsettled(last_seen, wanted)}") from None

    def _why_unsettled(self, statuses, wanted, shown=3) -> str:
        """The server's last failure for a few of the ids not in ``wanted``, and the end of the service's log."""
        unsettled = [i for i, status in statuses.items() if not _status_matches(status, wanted)][:shown]
        rows = self.query("SELECT id, status, retry_count, last_failure, last_failure_error_code FROM sys_invocation "
                          f"WHERE id IN ({sql_ids(unsettled)})") if unsettled else []
        log = self.service.workdir / "service.log"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        return f"unsettled: {rows}; service log ends: " + "\n".join(tail)

    # -- making invocations ---------------------------------------------------------------------
    def send(self, target: str, body, delay: str | None = None, idempotency_key: str | None = None) -> str:
        headers = {"content-type": "application/json"}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key.encode()  # raw UTF-8: http.client would insist on latin-1
        params = {"delay": delay} if delay else None
        response = self.http.post(f"{self.ingress_url}/{target}/send", data=json.dumps(body), params=params,
                                  headers=headers, timeout=30)
        assert response.status_code in (200, 202), response.text
        return response.json()["invocationId"]

    def send_many(self, target: str, bodies, threads: int = 16, delay: str | None = None) -> list:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda body: self.send(target, body, delay=delay), bodies))

    def make(self, status: str, count: int = 1, wait: bool = True) -> list:
        """Create ``count`` invocations that settle in ``status`` (one of STATUSES) and return their ids."""
        tag = uuid.uuid4().hex[:8]
        if status == "scheduled":
            ids = self.send_many("Tester/ok", [f"{tag}-{n}" for n in range(count)], delay="1h")
        elif status == "pending":
            ids = []
            for n in range(count):
                key = f"busy-{tag}-{n}"
                self.send(f"Holder/{key}/hold", 7200)
                ids.append(self.send(f"Holder/{key}/hold", 7200))
        elif status == "running":
            ids = self.send_many("Tester/run_long", [7200] * count)
        elif status == "suspended":
            ids = self.send_many("Tester/sleep", [7200] * count)
        elif status == "backing-off":
            ids = self.send_many("Tester/fail_backoff", [f"{tag}-{n}" for n in range(count)])
        elif status == "paused":
            ids = self.send_many("Tester/pause_then_sleep", [7200] * count)
        elif status == "completed-success":
            ids = self.send_many("Tester/ok", [f"{tag}-{n}" for n in range(count)])
        elif status == "completed-failure":
            ids = self.send_many("Tester/fail_terminal", [f"{tag}-{n}" for n in range(count)])
        else:
            raise ValueError(f"unknown status {status}")
        if wait:
            self.wait_statuses(ids, status, timeout=max(30.0, count / 50))
        return ids

    def cli(self, *args, check=True) -> subprocess.CompletedProcess:
        """Run the official CLI against this server."""
        env = dict(os.environ, RESTATE_ADMIN_URL=self.admin_url, RESTATE_HOST="127.0.0.1", NO_COLOR="1",
                   CLICOLOR="0", RESTATE_NO_TELEMETRY="1")
        result = subprocess.run([str(CLI_BIN), *args], capture_output=True, text=True, env=env, timeout=300, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"restate {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result
