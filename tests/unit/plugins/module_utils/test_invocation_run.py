"""restate_invocation's run() against a fake server: the empty-selection refusal, refusals by a concurrent run,
pending requests and the diff."""

from __future__ import annotations

import json

import pytest
from fake_restate import Done, FakeClient, FakeTask, completed_rows, make_id, refused

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
from ansible_collections.restate.admin.plugins.module_utils._client import RestateApiError
from ansible_collections.restate.admin.plugins.module_utils._invocation_task import run


def outcome(client, **args):
    task = FakeTask(client, **args)
    with pytest.raises(Done) as done:
        run(task)
    return done.value.result


@pytest.mark.parametrize("state", ["cancelled", "killed", "paused", "resumed", "purged", "journal_purged",
                                   "restarted"])
@pytest.mark.parametrize("filters", [{}, {"service": None, "target": None}, {"status": None}])
def test_an_empty_selection_is_refused_before_any_call(state, filters):
    client = FakeClient(completed_rows(3))
    result = outcome(client, state=state, filters=filters)
    assert result["failed"] and "all_invocations: true" in result["msg"] and "filters is empty" in result["msg"]
    assert client.queries == [] and client.calls == []


def test_all_invocations_acts_on_every_invocation_on_purpose():
    client = FakeClient(completed_rows(3))
    result = outcome(client, state="purged", filters={}, all_invocations=True)
    assert not result.get("failed") and result["summary"]["changed"] == 3 and client.rows == {}
    client = FakeClient(completed_rows(2))
    result = outcome(client, state="purged", all_invocations=True)  # without filters at all
    assert result["summary"]["changed"] == 2


@pytest.mark.parametrize("args, message", [
    ({"id": make_id(1), "all_invocations": True}, "cannot go with id or ids"),
    ({"all_invocations": False}, "selects nothing"),
])
def test_all_invocations_misused_is_refused(args, message):
    client = FakeClient(completed_rows(1))
    result = outcome(client, state="killed", **args)
    assert result["failed"] and message in result["msg"] and client.calls == []


@pytest.mark.parametrize("state, action, answer", [
    ("purged", "purge", refused(404, "invocation does not exist")),
    ("killed", "kill", refused(409, "was already completed")),
    ("cancelled", "cancel", refused(409, "was already completed")),
])
def test_a_first_call_refused_because_another_run_got_there_first_is_unchanged(state, action, answer):
    rows = completed_rows(4)
    if state != "purged":
        for row in rows:
            row["status"] = "suspended"
    taken = {rows[0]["id"], rows[1]["id"]}

    def concurrent(invocation_id, unused_action):
        if invocation_id in taken:  # the other run's call came first
            if state == "purged":
                client.rows.pop(invocation_id)
            else:
                client.rows[invocation_id]["status"] = "completed"
            return answer
        return None
    client = FakeClient(rows, answer=concurrent)
    result = outcome(client, state=state, ids=[row["id"] for row in rows])
    assert not result.get("failed"), result
    assert result["summary"]["changed"] == 2 and result["summary"]["unchanged"] == 2
    items = {item["id"]: item for item in result["invocations"]}
    for invocation_id in taken:
        assert items[invocation_id]["changed"] is False
        assert "another run or client got there first" in items[invocation_id]["note"]


def test_a_call_repeated_after_a_lost_answer_keeps_refused_but_reached_as_changed():
    rows = completed_rows(2)

    def lost_then_refused(invocation_id, unused_action):
        if invocation_id == rows[0]["id"]:
            client.on_retry("PATCH ...: timed out; retrying in 0.5s")  # the client repeated the call
            client.rows.pop(invocation_id)  # the first, lost call did the work
            return refused(404, "invocation does not exist")
        return None
    client = FakeClient(rows, answer=lost_then_refused)
    result = outcome(client, state="purged", ids=[row["id"] for row in rows])
    assert result["summary"]["changed"] == 2 and not result.get("failed")
    first = result["invocations"][0]
    assert first["changed"] is True and "the first may have done it" in first["note"]
    assert any("retrying" in warning for warning in result["warnings"])  # still passed on


def test_a_request_not_applied_when_read_back_is_pending_with_its_remedy(monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.3)
    rows = completed_rows(2)
    rows[0]["status"], rows[1]["status"] = "paused", "suspended"
    # The server accepts both cancels; the paused one stays paused (it sees the cancel once it runs again).
    client = FakeClient(rows, apply=lambda c, i, a: c.rows[i].update(status="completed") if i == rows[1]["id"] else None)
    result = outcome(client, state="cancelled", ids=[row["id"] for row in rows], diff=True)
    paused, suspended = result["invocations"]
    assert paused["changed"] and paused["after"] == "paused" and "kill_after" in paused["pending"]
    assert "state: killed" in paused["pending"] and "wait: true" in paused["pending"]
    assert suspended["after"] == "completed" and "pending" not in suspended
    assert result["summary"]["pending"] == 1 and result["summary"]["changed"] == 2
    assert f"{paused['id']}: paused (cancel requested, pending)\n" in result["diff"]["after"]
    # check mode predicts, and reads nothing back
    client = FakeClient(completed_rows(1))
    client.rows[next(iter(client.rows))]["status"] = "suspended"
    predicted = outcome(client, state="cancelled", ids=list(client.rows), check_mode=True)
    assert predicted["invocations"][0]["after"] == "completed" and client.calls == []


def test_a_pause_the_server_applies_later_is_pending(monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    rows = completed_rows(1)
    rows[0]["status"] = "running"
    client = FakeClient(rows, apply=lambda *unused: None)  # accepted (202), still running
    result = outcome(client, state="paused", ids=[rows[0]["id"]])
    item = result["invocations"][0]
    assert item["changed"] and item["after"] == "running" and "pause requested" in item["pending"]


def test_a_resume_that_fails_again_says_so(monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    rows = completed_rows(1)
    rows[0]["status"] = "paused"
    client = FakeClient(rows, apply=lambda c, i, a: c.rows[i].update(modified_at="2026-01-01T00:00:05Z"))
    result = outcome(client, state="resumed", ids=[rows[0]["id"]])
    item = result["invocations"][0]
    assert item["after"] == "paused" and "failed again" in item["pending"] and "state: killed" in item["pending"]


def test_a_cancel_dropped_by_an_older_server_is_warned_about_with_version_count_and_remedy(monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    rows = completed_rows(3)
    for row in rows:
        row["status"] = "suspended"
    client = FakeClient(rows, apply=lambda *unused: None)
    task = FakeTask(client, state="cancelled", ids=[row["id"] for row in rows])
    task.server_version = "1.6.2"
    with pytest.raises(Done) as done:
        run(task)
    warning = [w for w in done.value.result["warnings"] if "1.6.2" in w]
    assert warning and "3 cancelled invocation(s) are still suspended" in warning[0] and "state: killed" in warning[0]


@pytest.mark.parametrize("check_mode", [True, False])
def test_the_diff_of_a_journal_purge_and_a_restart_differs_before_and_after(check_mode):
    rows = completed_rows(1)
    client = FakeClient(rows)
    result = outcome(client, state="journal_purged", ids=[rows[0]["id"]], diff=True, check_mode=check_mode)
    assert result["diff"]["before"] == f"{rows[0]['id']}: completed (journal: 3 entries)\n"
    assert result["diff"]["after"] == f"{rows[0]['id']}: completed (journal: 0 entries)\n"


def test_report_failed_works_page_by_page_acting_on_each_page_before_reading_the_next(monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    client = FakeClient(completed_rows(10))
    log = []
    query, actions = client.query, client.invocation_actions
    monkeypatch.setattr(client, "query", lambda sql, columns=None: log.append("select" if "LIMIT" in sql else "read")
                        or query(sql, columns))
    monkeypatch.setattr(client, "invocation_actions", lambda ids, *a, **k: log.append(len(ids)) or actions(ids, *a, **k))
    result = outcome(client, state="purged", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["changed"] == 10 and result["summary"]["matched"] == 10 and client.rows == {}
    assert result["invocations"] == []
    assert [entry for entry in log if entry != "read"] == ["select", 3, "select", 3, "select", 3, "select", 1]


def test_a_paged_selection_stops_at_the_limit_and_counts_the_rest(monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    rows = completed_rows(10)
    rows[4]["status"] = "running"  # the selection for purged skips it
    client = FakeClient(rows)
    result = outcome(client, state="purged", filters={"service": "Tester"}, report="failed", limit=5)
    assert result["summary"]["changed"] == 5 and result["summary"]["matched"] == 9
    assert any("9 invocations match" in warning for warning in result["warnings"])
    assert len(client.rows) == 5  # four completed left for the next run, and the running one


def read_audit(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_audit_log_lists_every_invocation_acted_on_and_never_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    path = tmp_path / "audit.jsonl"
    rows = completed_rows(5)
    client = FakeClient(rows[:4])  # the fifth is already absent: unchanged, not written
    result = outcome(client, state="purged", ids=[row["id"] for row in rows], audit_log=str(path), token="s3cret",
                     headers={"X-Api-Key": "hidden-value"})
    assert result["summary"]["changed"] == 4
    text = path.read_text()
    assert "s3cret" not in text and "hidden-value" not in text
    start, *invocations, end = read_audit(path)
    assert start["record"] == "start" and start["options"]["state"] == "purged"
    assert start["options"]["headers"] == ["X-Api-Key"] and "token" not in start["options"] and start["time"]
    assert [(i["id"], i["target"], i["before"], i["after"]) for i in invocations] == [
        (row["id"], "Tester/ok", "completed", "absent") for row in rows[:4]]
    assert end["record"] == "end" and end["failed"] is False and end["summary"]["changed"] == 4
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_task_that_fails_half_way_leaves_an_audit_log_of_what_it_did(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    path = tmp_path / "audit.jsonl"
    client = FakeClient(completed_rows(9))
    query = client.query
    selects = []

    def failing_query(sql, columns=None):
        if "LIMIT" in sql:
            selects.append(sql)
            if len(selects) == 3:
                raise RestateApiError("POST", "/query", status=503, message="server going away")
        return query(sql, columns)
    monkeypatch.setattr(client, "query", failing_query)
    result = outcome(client, state="purged", filters={"service": "Tester"}, report="failed", audit_log=str(path))
    assert result["failed"] and "server going away" in result["msg"]
    assert result["summary"]["changed"] == 6  # the result says what was done too
    start, *invocations, end = read_audit(path)
    assert len(invocations) == 6 and all(i["after"] == "absent" for i in invocations)
    assert end["failed"] is True and "server going away" in end["msg"] and end["summary"]["changed"] == 6
    assert len(client.rows) == 3


def test_an_audit_log_that_cannot_be_opened_fails_before_any_call(tmp_path):
    client = FakeClient(completed_rows(1))
    result = outcome(client, state="purged", ids=list(client.rows), audit_log=str(tmp_path / "no" / "such" / "x"))
    assert result["failed"] and result["msg"].startswith("audit_log: cannot open") and client.queries == []


def test_report_all_above_the_ceiling_warns_with_the_number(monkeypatch):
    monkeypatch.setattr(_invocation_task, "REPORT_ALL_CEILING", 3)
    result = outcome(FakeClient(completed_rows(5)), state="purged", filters={"service": "Tester"}, check_mode=True)
    assert any("report: all lists 5 invocations, more than 3" in w for w in result["warnings"])
    quiet = outcome(FakeClient(completed_rows(5)), state="purged", filters={"service": "Tester"}, report="failed",
                    check_mode=True)
    assert not any("report: all" in w for w in quiet["warnings"])
