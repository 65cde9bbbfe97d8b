"""The audit file: where it may be written, what it may hold, and its end line when the task is stopped."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ansible_collections.restate.admin.plugins.module_utils._audit_log import MASK, AuditLog
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

PARAMS = {"state": "killed", "token": "t0ken-s3cret", "headers": {"X-Api-Key": 'k3y"with-quote'}, "audit_log": "x"}


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_a_new_file_is_created_0600_and_each_line_is_on_disk_when_written(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path), "m", PARAMS, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    audit.items([{"id": "inv_1", "changed": True, "before": "running", "after": "killed"}])
    assert [line["record"] for line in lines(path)] == ["start", "invocation"]  # before end or close
    audit.end({"changed": 1}, False)
    assert lines(path)[-1]["record"] == "end"


def test_an_existing_file_readable_by_others_is_narrowed_with_a_warning(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    warnings = []
    AuditLog(str(path), "m", PARAMS, False, warn=warnings.append).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(warnings) == 1 and "audit_log" in warnings[0] and "0644" in warnings[0]


def test_a_symbolic_link_is_not_followed(tmp_path):
    target = tmp_path / "other"
    target.write_text("kept\n")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(InputError, match="^audit_log: .* symbolic link"):
        AuditLog(str(link), "m", PARAMS, False)
    assert target.read_text() == "kept\n"


def test_a_dangling_link_does_not_create_its_target(tmp_path):
    link = tmp_path / "audit.jsonl"
    link.symlink_to(tmp_path / "made")
    with pytest.raises(InputError, match="^audit_log: .* symbolic link"):
        AuditLog(str(link), "m", PARAMS, False)
    assert not (tmp_path / "made").exists()


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    outcome = []

    def open_it():
        try:
            AuditLog(str(fifo), "m", PARAMS, False)
        except InputError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=open_it, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "opening a FIFO blocked"
    assert outcome and outcome[0].startswith("audit_log:") and "FIFO" in outcome[0]


def test_a_directory_is_refused_naming_audit_log(tmp_path):
    with pytest.raises(InputError, match="^audit_log:"):
        AuditLog(str(tmp_path), "m", PARAMS, False)


def test_a_nul_in_the_path_names_audit_log(tmp_path):
    with pytest.raises(InputError, match="^audit_log: the path contains a NUL"):
        AuditLog(f"{tmp_path}/a\x00b", "m", PARAMS, False)


def test_secrets_echoed_by_the_server_are_masked_in_every_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path), "m", PARAMS, False)
    echoed = 'HTTP 400: bad request; headers: authorization: Bearer t0ken-s3cret, x-api-key: k3y"with-quote'
    audit.items([{"id": "inv_1", "changed": False, "before": "running", "after": "running", "error": echoed}])
    audit.end({"failed": 1}, True, echoed)
    text = path.read_text()
    assert "t0ken-s3cret" not in text and "k3y" not in text and text.count(MASK) == 4


STOPPED_TASK = textwrap.dedent("""
    import os, signal, sys, time
    from ansible_collections.restate.admin.plugins.module_utils._audit_log import AuditLog
    audit = AuditLog(sys.argv[1], "m", {"token": "t0ken-s3cret"}, False, summary=lambda: {"changed": 7})
    audit.items([{"id": "inv_done", "changed": True}])
    audit.acting([{"id": "inv_a", "changed": True}, {"id": "inv_b", "changed": False}, {"id": "inv_c", "changed": True}])
    audit.accepted("cancel", ["inv_a"])
    print("ready", flush=True)
    time.sleep(30)
""")


def default_signal_handling():
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_task_writes_its_end_line_and_exits(tmp_path, number):
    path = tmp_path / "audit.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    # A run started in the background (`make test &`, some CI runners) inherits an ignored SIGINT, which the audit
    # log rightly leaves ignored: the task here gets the default handling, as from a terminal.
    process = subprocess.Popen([sys.executable, "-c", STOPPED_TASK, str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, preexec_fn=default_signal_handling)
    assert process.stdout.readline().strip() == b"ready"
    process.send_signal(number)
    process.wait(10)
    assert process.returncode != 0  # it still ends as the signal ends it
    end = lines(path)[-1]
    assert end["record"] == "end" and end["failed"] is True and end["interrupted"] == signal.Signals(number).name
    assert end["summary"] == {"changed": 7} and end["unconfirmed"] == ["inv_c"], "inv_a's call was answered"
    assert [line["record"] for line in lines(path)] == ["start", "invocation", "accepted", "end"]
    assert lines(path)[2]["action"] == "cancel" and lines(path)[2]["ids"] == ["inv_a"]


def test_calls_of_two_batches_without_an_answer_are_both_unconfirmed_until_their_lines_are_written(tmp_path):
    """A batch is read back (and its invocation lines written) after the next batch's calls are sent: a signal in
    between must name the unanswered calls of both."""
    audit = AuditLog(str(tmp_path / "audit.jsonl"), "m", PARAMS, False)
    first = [{"id": "inv_a", "changed": True}, {"id": "inv_b", "changed": True}, {"id": "inv_n", "changed": False}]
    second = [{"id": "inv_c", "changed": True}, {"id": "inv_d", "changed": True}]
    audit.acting(first)
    audit.accepted("kill", ["inv_a"])
    audit.acting(second)
    audit.accepted("kill", ["inv_c"])
    assert audit.unanswered() == ["inv_b", "inv_d"]
    audit.items(first)
    assert audit.unanswered() == ["inv_d"]
    audit.items(second)
    assert audit.unanswered() == []
    audit.close()
