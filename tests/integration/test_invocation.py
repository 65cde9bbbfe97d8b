"""restate_invocation against a real server, through ansible-playbook.

For every state and every source (the eight statuses, an unknown id, a malformed id): check mode predicts the
real run, the real run does what the table says, and a second identical run changes nothing.
"""

from __future__ import annotations

import uuid

import pytest
from harness.server import STATUSES, server_version, sql_ids

MODULE = "restate.admin.restate_invocation"
UNKNOWN_ID = "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ"  # well-formed, never created
MALFORMED_ID = "inv_not-an-id"
SOURCES = STATUSES + ("unknown", "malformed")
ACTIVE = ("scheduled", "pending", "running", "suspended", "backing-off", "paused")
COMPLETED = ("completed-success", "completed-failure")

C, U, F = "change", "unchanged", "fail"
# What the first run does, per state and source.
EXPECTED = {
    "cancelled": {**{s: C for s in ACTIVE}, **{s: U for s in COMPLETED}, "unknown": U, "malformed": F},
    "killed": {**{s: C for s in ACTIVE}, **{s: U for s in COMPLETED}, "unknown": U, "malformed": F},
    "paused": {"scheduled": F, "pending": F, "running": C, "suspended": F, "backing-off": C, "paused": U,
               **{s: F for s in COMPLETED}, "unknown": F, "malformed": F},
    "resumed": {"scheduled": U, "pending": U, "running": U, "suspended": U, "backing-off": U, "paused": C,
                **{s: F for s in COMPLETED}, "unknown": F, "malformed": F},
    "purged": {**{s: F for s in ACTIVE}, **{s: C for s in COMPLETED}, "unknown": U, "malformed": F},
    "journal_purged": {**{s: F for s in ACTIVE}, **{s: C for s in COMPLETED}, "unknown": F, "malformed": F},
    "restarted": {**{s: F for s in ACTIVE}, **{s: C for s in COMPLETED}, "unknown": F, "malformed": F},
}
# Status on the server after the real run (and its wait, where the change settles).
CANCELLED = ("completed", "failure", "[409] cancelled")
KILLED = ("completed", "failure", "[409] killed")
AFTER = {
    "cancelled": {"scheduled": "absent", "pending": "absent", "running": ("running",), "suspended": CANCELLED,
                  "backing-off": ("backing-off",), "paused": CANCELLED},
    "killed": {"scheduled": "absent", "pending": "absent", **{s: KILLED for s in ACTIVE[2:]}},
    "paused": {"running": ("running",), "backing-off": ("paused",), "paused": ("paused",)},
    "resumed": {"paused": ("suspended",)},
    "purged": {s: "absent" for s in COMPLETED},
}
# Changes that settle quickly enough to wait for in the real run.
# A cancel resumes a paused invocation so that its handler can observe it (this one then succeeds).
WAIT_FOR = {("cancelled", "suspended"), ("cancelled", "paused"), ("paused", "backing-off"), ("resumed", "paused"),
            *{("killed", s) for s in ACTIVE}}
# The server keeps no trace of a pause sent to a running invocation until its current attempt ends, so a
# re-run cannot see it and sends the pause again (documented limitation).
RERUN_CHANGES = {("paused", "running")}
# Accepted but not applied when read back (the run does not wait): the item says so, with the status read back.
PENDING = {("cancelled", "running"), ("cancelled", "backing-off"), ("paused", "running")}
# Accepted and dropped by the server (pending says so, and what to do).
DROPPED = set()
if server_version() < (1, 7, 0):
    # Restate 1.6 keeps no journal entry for a cancel delivered to a backing-off invocation, so a re-run cannot
    # tell the cancel is on its way and sends it again (harmless: the server takes a repeated cancel as one).
    RERUN_CHANGES.add(("cancelled", "backing-off"))
    # A cancel resumes a paused invocation on 1.6 too, but is then lost: it runs on into its sleep, suspended, so
    # the first run cannot wait for it; the re-run's cancel reaches the now suspended invocation.
    WAIT_FOR.discard(("cancelled", "paused"))
    RERUN_CHANGES.add(("cancelled", "paused"))
    PENDING.add(("cancelled", "paused"))
    DROPPED.add(("cancelled", "paused"))


def make_sources(restate) -> dict:
    made = {status: restate.make(status)[0] for status in STATUSES}
    made["unknown"] = UNKNOWN_ID
    made["malformed"] = MALFORMED_ID
    return made


@pytest.mark.parametrize("state", list(EXPECTED))
def test_every_source_status(restate, ansible, state):
    ids = make_sources(restate)
    tasks = []
    for source in SOURCES:
        args = {"id": ids[source], "state": state}
        real = dict(args, wait=True) if (state, source) in WAIT_FOR else args
        tasks += [{MODULE: args, "check_mode": True, "diff": True}, {MODULE: real, "diff": True}, {MODULE: args}]
    results = ansible.run_tasks(tasks)
    rows = {row["id"]: row for row in restate.query(
        "SELECT id, status, completion_result, completion_failure, journal_size FROM sys_invocation WHERE id IN ("
        + sql_ids(i for i in ids.values() if i.startswith("inv_") and i != MALFORMED_ID) + ")")}

    for n, source in enumerate(SOURCES):
        check, real, rerun = results[3 * n:3 * n + 3]
        expected = EXPECTED[state][source]
        where = f"state={state} source={source}"
        for result in (check, real):
            assert result["failed"] == (expected == F), (where, result)
            assert result["changed"] == (expected == C), (where, result)
        if expected == F:
            if source == "malformed":
                assert "ids" not in check["msg"] and "id:" in check["msg"], check["msg"]
            else:
                item = check["invocations"][0]
                assert ids[source] in item["error"] and item["before"] in item["error"] or "not exist" in item["error"]
            assert rerun["failed"], (where, rerun)
            continue
        item_check, item_real = check["invocations"][0], real["invocations"][0]
        # check mode changed nothing: the real run found what the check run found, and made the predicted call
        assert item_real["before"] == item_check["before"], where
        assert item_real["changed"] == item_check["changed"], where
        assert ("pending" in item_real) == ((state, source) in PENDING), (where, item_real)
        if (state, source) in PENDING:
            if (state, source) in DROPPED:
                # resumed instead: after is wherever the handler got to when read back, and the note says so
                assert "cancel dropped" in item_real["pending"] and "state: killed" in item_real["pending"], item_real
            else:
                # not applied yet: after is the status read back, and the pending note says what to do
                assert item_real["after"] == item_real["before"] and "wait: true" in item_real["pending"], (
                    where, item_real)
            assert real["summary"]["pending"] == 1, where
        elif expected == C and (state, source) not in WAIT_FOR:
            assert item_real["after"] == item_check["after"], (where, "not waited for: read back, as predicted")
        if expected == C:
            assert check["diff"]["before"].startswith(f"{ids[source]}: {item_check['before']}"), where
            assert real["diff"]["after"].startswith(ids[source]), where
            assert real["diff"]["after"] != real["diff"]["before"], (where, real["diff"])
        assert rerun["failed"] is False, (where, rerun)
        assert rerun["changed"] is ((state, source) in RERUN_CHANGES), (where, rerun)
        wanted = AFTER.get(state, {}).get(source)
        if wanted == "absent":
            assert ids[source] not in rows, where
        elif wanted:
            row = rows[ids[source]]
            assert (row["status"], row.get("completion_result"), row.get("completion_failure"))[:len(wanted)] == wanted, (
                where, row)
            if (expected == C and state not in ("paused", "resumed") and wanted[0] != "completed"
                    and (state, source) not in RERUN_CHANGES):
                assert rerun["invocations"][0].get("note"), (where, rerun)
        if state == "journal_purged" and expected == C:
            assert real["diff"]["after"] == f"{ids[source]}: completed (journal: 0 entries)\n", where
            assert rows[ids[source]]["status"] == "completed" and not rows[ids[source]].get("journal_size"), where
        if state == "restarted" and expected == C:
            restarts = restate.query(f"SELECT id FROM sys_invocation WHERE restarted_from = '{ids[source]}'")
            assert len(restarts) == 1, (where, restarts)
            assert item_real["new_invocation_id"] == restarts[0]["id"]
            assert restarts[0]["id"] in real["diff"]["after"], (where, real["diff"])
            assert rerun["invocations"][0]["new_invocation_id"] == restarts[0]["id"]


def test_cancel_with_wait_ends_cancelled(restate, ansible):
    ids = restate.make("suspended", 3)
    result = ansible.run(MODULE, {"ids": ids, "state": "cancelled", "wait": True})
    assert result["changed"] and result["summary"]["changed"] == 3
    assert {item["after"] for item in result["invocations"]} == {"completed"}
    for invocation_id in ids:
        assert restate.row(invocation_id)["completion_failure"] == "[409] cancelled"


@pytest.mark.xfail(server_version() < (1, 7, 0), strict=True,
                   reason="Restate 1.6 accepts the cancel (202) but leaves an invocation suspended on an awakeable")
def test_cancel_with_wait_ends_an_invocation_suspended_on_an_awakeable(restate, ansible):
    ids = restate.send_many("Tester/wait_awakeable", ["never"] * 2)
    restate.wait_statuses(ids, "suspended")
    result = ansible.run(MODULE, {"ids": ids, "state": "cancelled", "wait": True, "wait_timeout": 20})
    assert not result["failed"], result["msg"]
    assert {item["after"] for item in result["invocations"]} == {"completed"}


def test_kill_after_kills_a_paused_invocation_that_ignores_cancel(restate, ansible):
    # fail_pause fails again at once whenever it runs, so the cancel never reaches an await point
    paused = restate.send("Tester/fail_pause", "ignores-cancel")
    suspended = restate.make("suspended")[0]
    restate.wait_statuses([paused], "paused")
    result = ansible.run(MODULE, {"ids": [paused, suspended], "state": "cancelled", "kill_after": 2})
    assert not result["failed"], result
    by_id = {item["id"]: item for item in result["invocations"]}
    assert by_id[paused].get("killed_after_cancel") is True
    assert "killed_after_cancel" not in by_id[suspended]
    assert result["summary"]["killed_after_cancel"] == 1
    assert restate.row(paused)["completion_failure"] == "[409] killed"
    assert restate.row(suspended)["completion_failure"] == "[409] cancelled"


def test_restarted_twice_creates_exactly_one_new_invocation(restate, ansible):
    original = restate.make("completed-success")[0]
    first, second = ansible.run_tasks([{MODULE: {"id": original, "state": "restarted"}}] * 2)
    assert first["changed"] and not second["changed"]
    restarts = restate.query(f"SELECT id FROM sys_invocation WHERE restarted_from = '{original}'")
    assert [r["id"] for r in restarts] == [first["invocations"][0]["new_invocation_id"]]
    assert second["invocations"][0]["new_invocation_id"] == restarts[0]["id"]


def test_list_of_ids_reports_every_item_and_fails_at_the_end(restate, ansible):
    running, completed = restate.make("running")[0], restate.make("completed-success")[0]
    result = ansible.run(MODULE, {"ids": [running, completed, UNKNOWN_ID], "state": "purged"})
    assert result["failed"]
    assert result["summary"] == {"matched": 3, "changed": 1, "unchanged": 1, "failed": 1, "missing": 1, "pending": 0,
                                 "done": 1, "already": 1, "left": 0, "check_mode": False,
                                 "changed_by_service": {"Tester": 1}}
    assert running in result["msg"] and "cancel or kill" in result["msg"].lower()
    items = {item["id"]: item for item in result["invocations"]}
    # Only the documented keys: a bulk task lists thousands of these, and Ansible copies each one.
    assert items[completed] == {"id": completed, "target": "Tester/ok", "before": "completed", "after": "absent",
                                "changed": True}
    assert set(items[running]) == {"id", "target", "before", "after", "changed", "error"}
    assert set(items[UNKNOWN_ID]) == {"id", "target", "before", "after", "changed", "note"}
    assert restate.row(completed) is None  # the failure of one did not stop the others
    assert restate.row(running)["status"] == "running"


def test_filters_select_only_invocations_the_state_applies_to(restate, ansible):
    key = "filters-purge"
    active = restate.send(f"Holder/{key}/hold", 7200)
    restate.wait_statuses([active], "suspended")
    done = restate.send(f"Holder/{key}-done/hold", 0)
    restate.wait_statuses([done], "completed")
    result = ansible.run(MODULE, {"filters": {"service": "Holder", "key": key}, "state": "purged"})
    assert not result["failed"] and not result["changed"], result
    assert result["summary"]["matched"] == 0  # the suspended one is not selected for purging
    result = ansible.run(MODULE, {"filters": {"target": f"Holder/{key}-done"}, "state": "purged", "report": "failed"})
    assert result["changed"] and result["invocations"] == []  # only failures listed; the counts tell the rest
    assert result["summary"]["changed"] == 1 and result["summary"]["changed_by_service"] == {"Holder": 1}
    assert restate.row(done) is None


def test_limit_acts_on_part_of_a_selection_and_reports_the_match(restate, ansible):
    ids = restate.send_many("Tester/sleep", [7201] * 5)
    restate.wait_statuses(ids, "suspended")
    filters = {"target": "Tester/sleep", "status": ["suspended"], "created_after": "2m"}
    result = ansible.run(MODULE, {"filters": filters, "state": "killed", "limit": 2})
    assert result["summary"]["matched"] >= 5 and result["summary"]["changed"] == 2
    assert any("limit" in w for w in result["warnings"])


def test_a_selection_exactly_at_the_limit_is_not_reported_as_cut(restate, ansible):
    key = f"limit-{uuid.uuid4().hex[:8]}"
    ids = [restate.send(f"Holder/{key}/hold", 0) for unused_n in range(3)]
    restate.wait_statuses(ids, "completed")
    filters = {"service": "Holder", "key": key}
    exact = ansible.run(MODULE, {"filters": filters, "state": "purged", "limit": 3}, check=True)
    assert exact["summary"]["matched"] == 3 and exact["summary"]["changed"] == 3
    assert not any("limit" in w for w in exact.get("warnings", []))
    cut = ansible.run(MODULE, {"filters": filters, "state": "purged", "limit": 2}, check=True)
    assert cut["summary"]["matched"] == 3 and cut["summary"]["changed"] == 2
    assert any("3 invocations match" in w for w in cut["warnings"])


@pytest.mark.parametrize("args, message", [
    ({"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", "state": "resumed", "kill_after": 3}, "kill_after applies only"),
    ({"ids": ["inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", "x'; DROP"], "state": "killed"}, "ids: "),
    ({"filters": {"status": ["sleeping"]}, "state": "killed"}, "status"),
    ({"filters": {"created_before": "last week"}, "state": "purged"}, "filters.created_before"),
    ({"filters": {"service": "A"}, "state": "purged", "limit": 0}, "limit must be 1 or more"),
    ({"state": "purged"}, "one of the following is required: id, ids, filters"),
    ({"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", "state": "gone"}, "value of state must be one of"),
])
def test_bad_input_fails_before_any_change_with_a_clear_message(ansible, args, message):
    result = ansible.run(MODULE, args)
    assert result["failed"] and message in result["msg"], result["msg"]


@pytest.mark.slow
def test_filters_cancel_ten_thousand_suspended_in_one_task(restate, ansible):
    ids = restate.send_many("Holder/bulk-10k/hold", [7200])  # marks the batch's start on a key of its own
    count = 10_000
    batch = restate.send_many("Tester/sleep", [7202] * count)
    restate.wait_statuses(batch, "suspended", timeout=300)
    filters = {"target": "Tester/sleep", "created_after": restate.query(
        f"SELECT created_at FROM sys_invocation WHERE id = '{ids[0]}'")[0]["created_at"]}
    first = ansible.run(MODULE, {"filters": filters, "state": "cancelled", "limit": 20_000, "wait": True,
                                 "wait_timeout": 600})
    assert not first["failed"], first.get("msg")
    assert first["summary"]["changed"] == count
    statuses = restate.statuses(batch)
    assert set(statuses.values()) == {"completed-failure"} and len(statuses) == count
    # A cancel selects only invocations not yet completed: the re-run finds none left to cancel.
    second = ansible.run(MODULE, {"filters": filters, "state": "cancelled", "limit": 20_000})
    assert not second["failed"], second.get("msg")
    assert not second["changed"] and second["summary"]["matched"] == 0 and second["summary"]["changed"] == 0


@pytest.mark.parametrize("action, status, refused", [
    ("cancel", "suspended", "completed-success"),
    ("kill", "running", "completed-failure"),
    ("pause", "backing-off", "completed-success"),
    ("resume", "paused", "completed-success"),
    ("purge", "completed-success", "suspended"),
    ("purge-journal", "completed-failure", "running"),
])
def test_batches_and_one_patch_each_answer_alike_on_the_real_server(restate, action, status, refused):
    """The client sends two or more invocations in batches; what a batch refuses is sent again one PATCH each,
    so the caller hears the same as without batches. The proxy shows which calls went out."""
    from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient
    from harness.fault_proxy import FaultProxy

    proxy = FaultProxy(restate.admin_url)
    answers, sent = {}, {}
    try:
        for batch_calls in (True, False):
            ids = restate.make(status, 3) + restate.make(refused, 1) + [UNKNOWN_ID]
            with AdminClient(proxy.url, batch_calls=batch_calls) as client:
                errors = client.invocations.actions(ids, action)
            answers[batch_calls] = [None if error is None else (error.status, error.message.replace(i, "<id>"))
                                    for i, error in zip(ids, errors)]
            sent[batch_calls], proxy.requests[:] = list(proxy.requests), []
    finally:
        proxy.close()
    assert answers[True] == answers[False]
    assert answers[True][:3] == [None] * 3 and None not in answers[True][3:], answers[True]
    assert sent[True][0] == f"POST /internal/invocations_batch_operations/{action} HTTP/1.1" and len(sent[True]) == 3
    assert all(line.startswith("PATCH") and f"/{action} " in line for line in sent[True][1:]), "only the refused two"
    assert len(sent[False]) == 5 and not any("/internal/" in line for line in sent[False])
