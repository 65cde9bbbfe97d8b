"""The playbooks as AWX runs them: ansible-runner with a private data dir (project, inventory, env files)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import ansible_runner
import pytest
import yaml
from harness.server import Restate

TOKEN = "awx-secret-9f3c1e"  # the server does not check it; the test checks it never shows up


@pytest.fixture()
def server(tmp_path):
    instance = Restate(tmp_path / "server").start()
    try:
        yield instance
    finally:
        instance.stop()


def private_data_dir(base: Path, server, collections_path, extravars, check=False) -> Path:
    """What AWX writes for a job template run: the project's playbook, inventory, env files."""
    data = base / "runner"
    (data / "project").mkdir(parents=True)
    (data / "inventory").mkdir()
    (data / "env").mkdir()
    # A project repository's playbook, importing the collection's job (AWX installs collections/requirements.yml).
    (data / "project" / "retention.yml").write_text(yaml.safe_dump(
        [{"import_playbook": "restate.admin.retention_cleanup"}]))
    (data / "inventory" / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    # A custom credential type injects the connection as environment variables.
    (data / "env" / "envvars").write_text(yaml.safe_dump({
        "RESTATE_ADMIN_URL": server.admin_url, "RESTATE_AUTH_TOKEN": TOKEN,
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_LOCALHOST_WARNING": "false"}))
    (data / "env" / "extravars").write_text(yaml.safe_dump(extravars))  # survey answers
    (data / "env" / "passwords").write_text(yaml.safe_dump({"^Vault password:\\s*?$": ""}))
    (data / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 900, "suppress_ansible_output": True}))
    if check:
        (data / "env" / "cmdline").write_text("--check")
    return data


def run_job(tmp_path, name, server, collections_path, extravars, check=False):
    base = tmp_path / name
    data = private_data_dir(base, server, collections_path, extravars, check)
    runner = ansible_runner.run(private_data_dir=str(data), playbook="retention.yml", quiet=True)
    stdout = runner.stdout.read()
    events = list(runner.events)
    return runner, stdout, events, data


def module_result(events) -> dict:
    for event in events:
        data = event.get("event_data", {})
        if event["event"] == "runner_on_ok" and data.get("task_action") == "restate.admin.restate_invocation":
            return data["res"]
    raise AssertionError("no restate_invocation result among the job events")


def test_retention_job_through_ansible_runner(tmp_path, server, collections_path, monkeypatch):
    # ansible-runner finds ansible-playbook on PATH, as in an execution environment
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    old = server.make("completed-success", 3)
    time.sleep(1.2)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.2)
    kept = server.make("completed-success", 2) + server.make("suspended", 1)
    survey = {"retention": stamp}

    runner, stdout, events, unused_data = run_job(tmp_path, "dry", server, collections_path, survey, check=True)
    assert runner.status == "successful" and runner.rc == 0, stdout
    dry = module_result(events)  # the role lists only failures (report: failed) and counts the rest
    assert dry["invocations"] == [] and dry["summary"]["changed"] == len(old)
    assert dry["summary"]["changed_by_service"] == {"Tester": len(old)}
    assert set(old) <= {r["id"] for r in server.query("SELECT id FROM sys_invocation")}, "the dry run purged"

    runner, stdout, events, data = run_job(tmp_path, "real", server, collections_path, survey)
    assert runner.status == "successful" and runner.rc == 0, stdout
    remaining = {r["id"] for r in server.query("SELECT id FROM sys_invocation")}
    assert not set(old) & remaining and set(kept) <= remaining
    assert "Purged" in stdout

    # The token went in through the environment; nothing Ansible produced may hold it (the runner's own
    # "command" record of the launch environment is where it was injected, as in AWX).
    artifacts = "".join(p.read_text(errors="replace") for p in (data / "artifacts").rglob("*") if p.is_file()
                        and p.name != "command")
    assert artifacts.count("Purged") >= 1
    for text in (stdout, json.dumps(events), artifacts):
        assert TOKEN not in text
    shutil.rmtree(data / "env")
