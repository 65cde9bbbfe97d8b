"""The harness itself: the pinned restate-server with the SDK service, one invocation in each status."""

import json
import os

import pytest

from harness.server import ROOT, STATUSES, free_port, sql_ids


def test_free_ports_are_never_handed_out_twice():
    """A cluster's nodes bind their ports only when they start: two given the same port, one could not start (CI)."""
    ports = [free_port() for unused in range(500)]
    assert len(set(ports)) == len(ports)


def test_server_is_the_pinned_release(client):
    pinned = json.loads((ROOT / "tests/npm/package.json").read_text())["dependencies"]["@restatedev/restate-server"]
    assert client.check_compatible()["version"] == os.environ.get("RESTATE_SERVER_VERSION", pinned)


def test_one_invocation_in_each_status_read_back_through_the_client(restate, client):
    made = {status: restate.make(status)[0] for status in STATUSES}
    rows = client.query(f"SELECT id, status, completion_result FROM sys_invocation WHERE id IN ({sql_ids(made.values())})",
                        columns=["id", "status", "completion_result"])
    seen = {row["id"]: row for row in rows}
    for wanted, invocation_id in made.items():
        status, unused_dash, result = wanted.partition("-")
        if wanted == "backing-off":
            status, result = "backing-off", ""
        assert seen[invocation_id]["status"] == status, (wanted, seen[invocation_id])
        assert seen[invocation_id]["completion_result"] == (result or None)


def test_a_wait_that_times_out_says_why_the_invocations_are_stuck(restate):
    """A set-up that times out names the server's last failure, so a flaky service can be told from a slow server."""
    stuck = restate.make("backing-off", 1)  # fails with a one-hour retry interval
    with pytest.raises(TimeoutError) as caught:
        restate.wait_statuses(stuck, "completed", timeout=1)
    message = str(caught.value)
    assert "last seen: {'backing-off': 1}" in message
    assert "retryable failure for" in message and stuck[0] in message and "service log ends:" in message
