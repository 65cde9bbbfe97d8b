"""A 3-node Restate cluster on loopback: replicated metadata, replicated log, every node with every role.

Each node has its own ports and base dir; node 1 provisions the cluster. The test service is registered once
and every node's ingress and Admin API reach every partition.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import requests

from harness.server import Restate, RestateServer, TestService, free_port, wait_until

CLUSTER_NAME = "restate-admin-it"


class ClusterNode(RestateServer):
    """One node; ``peers`` are the fabric addresses of every node (metadata servers)."""

    def __init__(self, workdir: Path, name: str, provisions: bool):
        super().__init__(workdir)
        self.name = name
        self.provisions = provisions
        self.pgsql_port = free_port()
        self.peers = []  # fabric ports of every node, set by the cluster

    def config(self) -> str:
        peers = ", ".join(f'"http://127.0.0.1:{port}"' for port in self.peers)
        return f"""node-name = "{self.name}"
cluster-name = "{CLUSTER_NAME}"
roles = ["metadata-server", "admin", "worker", "log-server", "http-ingress"]
advertised-address = "http://127.0.0.1:{self.node_port}"
auto-provision = {"true" if self.provisions else "false"}
default-replication = 2

[bifrost]
default-provider = "replicated"

[metadata-server]
type = "replicated"

[metadata-client]
addresses = [{peers}]

[admin]
bind-address = "127.0.0.1:{self.admin_port}"

[admin.query-engine]
pgsql-bind-address = "127.0.0.1:{self.pgsql_port}"

[ingress]
bind-address = "127.0.0.1:{self.ingress_port}"
"""

    def _healthy(self):
        if not self.process.alive():
            raise RuntimeError(f"restate-server {self.name} exited; see {self.workdir / 'server.log'}")
        try:
            return requests.get(self.admin_url + "/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self):
        self.stop(signal.SIGKILL)


class RestateCluster(Restate):
    """Three nodes and the test service; ``admin_url``/``ingress_url`` are node 1's, ``admin_urls`` all of them."""

    def __init__(self, workdir: Path, size: int = 3):
        super().__init__(workdir)
        self.nodes = []
        for n in range(1, size + 1):
            node_dir = self.workdir / f"node{n}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(ClusterNode(node_dir, f"node{n}", provisions=n == 1))
        for node in self.nodes:
            node.peers = [peer.node_port for peer in self.nodes]
        self.server = self.nodes[0]
        self.service = TestService(self.workdir)

    @property
    def admin_urls(self):
        return [node.admin_url for node in self.nodes]

    def start(self):
        for node in self.nodes:  # all at once: the metadata store needs a quorum before any node is healthy
            node.launch()
        for node in self.nodes:
            wait_until(node._healthy, timeout=120, what=f"{node.name} /health")
        wait_until(self._all_partitions_queryable, timeout=120, what="every partition answering queries")
        self.service.start()
        self.register()
        return self

    def query(self, sql: str, node: ClusterNode | None = None) -> list:
        """SQL through ``node`` (node 1 by default), repeated for up to 30 s while it answers 500: a node refuses
        reads while partitions change leaders (after a node died or came back), and the tests' own reads must not
        fail on that."""
        url = (node or self.server).admin_url + "/query"

        def answer():
            response = self.http.post(url, json={"query": sql}, headers={"accept": "application/json"}, timeout=60)
            return [response] if response.status_code < 500 else None  # a list: a 4xx response is falsy

        (response,) = wait_until(answer, timeout=30, what=f"an answer to a query from {url}")
        assert response.status_code == 200, response.text
        return response.json()["rows"]

    def send(self, target: str, body, delay: str | None = None, idempotency_key: str | None = None) -> str:
        """Send as a single server does, but ride out the moments when partitions change leaders (after start-up
        or a node's return): the ingress then refuses with "lost leadership". An idempotency key makes the repeat
        safe: it answers with the invocation the first attempt may have made instead of making a second one."""
        key = idempotency_key if idempotency_key is not None else f"harness-{uuid.uuid4().hex}"
        attempts = 0
        while True:
            try:
                return super().send(target, body, delay=delay, idempotency_key=key)
            except AssertionError as error:
                attempts += 1
                if "lost leadership" not in str(error) or attempts == 20:
                    raise
            time.sleep(0.25)

    def revive(self, node):
        """Restart a stopped or killed node and wait until every node answers queries for every partition again."""
        node.restart()
        wait_until(self._all_partitions_queryable, timeout=120, what="every partition answering queries")

    def _all_partitions_queryable(self):
        try:
            for node in self.nodes:
                response = self.http.post(node.admin_url + "/query",
                                          json={"query": "SELECT COUNT(*) AS n FROM sys_invocation"},
                                          headers={"accept": "application/json"}, timeout=10)
                if response.status_code != 200:
                    return False
            return True
        except requests.RequestException:
            return False

    def stop(self):
        self.http.close()
        self.service.stop()
        for node in self.nodes:
            node.stop()
