"""End to end: ansible-rulebook (.cache/eda, scripts/setup.sh) runs the example rulebook restate.admin.recover_stuck
from the built and installed collection against a real server, and SQL shows the stuck invocations recovered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from datetime import datetime, timezone

import pytest
import yaml

from harness.server import ROOT, wait_until

EDA = ROOT / ".cache" / "eda"
INTERVAL = 5  # seconds between the source's polls
TOKEN = "eda-test-token-7f3c"


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


@pytest.fixture
def rulebook(collections_path, lab, tmp_path):
    """Start ansible-rulebook on an example rulebook of the installed collection; stopped by its process group."""
    if not (EDA / "bin" / "ansible-rulebook").exists():
        pytest.fail(f"ansible-rulebook is not installed in {EDA}: run scripts/setup.sh (requirements-eda.txt)")
    if not shutil.which("java"):
        pytest.fail("java is not on PATH: ansible-rulebook needs a Java 17 runtime (Debian: openjdk-17-jre-headless)")
    started = []

    def start(name: str, variables: dict):
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": str(EDA / "bin" / "python")}}}}))
        variables_file = tmp_path / "vars.yml"
        variables_file.write_text(yaml.safe_dump(variables))
        env = dict(os.environ, PATH=f"{EDA / 'bin'}:{os.environ['PATH']}",
                   ANSIBLE_COLLECTIONS_PATH=str(collections_path), RESTATE_ADMIN_URL=lab.server.admin_url,
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1", HOME=str(tmp_path))
        env["RESTATE_AUTH_TOKEN"] = TOKEN  # the test server takes no token: sent and ignored, never to be shown
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
        log = tmp_path / f"{name}.log"
        process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped below, by process group
            [str(EDA / "bin" / "ansible-rulebook"), "-r", f"restate.admin.{name}", "-i", str(inventory),
             "--vars", str(variables_file), "-v"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
            cwd=tmp_path, start_new_session=True)
        started.append((process, log))
        return process, log
    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
        print(log.read_text(errors="replace")[-3000:])


def test_recover_stuck_rulebook_resumes_a_paused_invocation_within_two_polls_and_kills_a_retrying_one(lab, rulebook):
    server = lab.server
    process, log = rulebook("recover_stuck", {"interval": INTERVAL, "max_retries": 1, "kill_older_than": "0s"})

    def running():
        assert process.poll() is None, f"ansible-rulebook exited: {log.read_text(errors='replace')[-3000:]}"
        return True

    # A first paused invocation shows the rulebook is up (its Java VM, the source's first poll): then the clock starts.
    canary = server.make("paused")
    wait_until(lambda: running() and server.statuses(canary)[canary[0]] != "paused", timeout=120,
               what="the rulebook to resume a first paused invocation")

    stuck = server.make("paused")[0]  # pause_then_sleep: resumed, it sleeps (suspended)
    paused_at = _parse_time(server.row(stuck)["modified_at"])
    wait_until(lambda: running() and server.statuses([stuck])[stuck] != "paused", timeout=4 * INTERVAL,
               what="the rulebook to resume the paused invocation")
    row = server.row(stuck)
    assert row["status"] in ("suspended", "running")
    took = _parse_time(row["modified_at"]) - paused_at
    assert took <= 2 * INTERVAL, f"resumed {took:.1f}s after it paused, more than two poll intervals"
    print(f"\nresumed {took:.1f}s after it paused (poll interval {INTERVAL}s)")

    # A backing-off invocation retried max_retries times: the playbook restate.admin.recover_stuck kills it.
    retrying = server.make("backing-off")[0]
    server.wait_statuses([retrying], "completed", timeout=120)
    assert server.row(retrying)["completion_failure"] == "[409] killed"
    assert server.statuses([stuck])[stuck] in ("suspended", "running")  # no longer stuck: left alone
    assert running()
    assert TOKEN not in log.read_text(errors="replace")


def test_deployment_cleanup_rulebook_removes_a_deployment_once_it_drains(lab, rulebook):
    server = lab.server
    old_id = lab.latest()["Tester"]
    pinned = server.send("Tester/sleep", 7200)
    server.wait_statuses([pinned], "suspended")
    lab.wait_pinned(pinned, old_id)
    new_id = lab.register(lab.version().url)
    process, log = rulebook("deployment_cleanup", {"interval": 2, "older_than": "0s"})
    time.sleep(8)  # polls while the old deployment is draining: nothing removed
    assert process.poll() is None, log.read_text(errors="replace")[-3000:]
    assert old_id in lab.deployment_ids()
    for row in server.query("SELECT id FROM sys_invocation WHERE status <> 'completed' AND "
                            f"pinned_deployment_id = '{old_id}'"):
        lab.kill(row["id"])
    wait_until(lambda: old_id not in lab.deployment_ids(), timeout=90, what="the drained deployment removed")
    assert new_id in lab.deployment_ids()
    assert TOKEN not in log.read_text(errors="replace")
