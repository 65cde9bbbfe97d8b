"""restate_invocation's run() against a fake server: the empty-selection refusal, refusals by a concurrent run,
pending requests and the diff."""

from __future__ import annotations

import pytest
from fake_restate import Done, FakeClient, FakeTask, completed_rows, make_id, refused

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
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
