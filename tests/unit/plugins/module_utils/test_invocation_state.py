"""The decision for one invocation, per wanted state and current status."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task, _invocations_api
from ansible_collections.restate.admin.plugins.module_utils._invocation_state import ACTIVE, STATES, plan, settled


def row(status, **extra):
    return {"status": status, "journal_size": 3, "target_service_ty": "service", **extra}


@pytest.mark.parametrize("status", ACTIVE)
def test_cancel_and_kill_act_on_every_active_status(status):
    assert plan("cancelled", row(status)).action == "cancel"
    assert plan("killed", row(status)).action == "kill"


@pytest.mark.parametrize("status, expected", [("scheduled", "absent"), ("pending", "absent"), ("suspended", "completed")])
def test_cancel_expects_removal_before_start_and_completion_after(status, expected):
    assert plan("cancelled", row(status)).expected == expected


def test_pending_cancel_is_not_sent_again():
    decision = plan("cancelled", row("running"), cancel_pending=True)
    assert decision.action is None and decision.error is None and "already pending" in decision.note


def test_kill_is_sent_even_when_a_cancel_is_pending():
    assert plan("killed", row("running"), cancel_pending=True).action == "kill"


@pytest.mark.parametrize("state", ["cancelled", "killed"])
def test_completed_and_absent_are_already_cancelled_or_killed(state):
    for current in (row("completed"), None):
        decision = plan(state, current)
        assert decision.action is None and decision.error is None


@pytest.mark.parametrize("status, action, error", [
    ("running", "pause", None), ("backing-off", "pause", None), ("paused", None, None),
    ("suspended", None, "suspended"), ("scheduled", None, "not started"), ("completed", None, "already completed"),
])
def test_pause(status, action, error):
    decision = plan("paused", row(status))
    assert decision.action == action
    assert (decision.error is None) if error is None else (error in decision.error)


def test_pause_and_resume_of_unknown_ids_fail():
    assert "does not exist" in plan("paused", None).error
    assert "does not exist" in plan("resumed", None).error


@pytest.mark.parametrize("status", ["scheduled", "pending", "running", "suspended", "backing-off"])
def test_resume_leaves_what_is_not_paused(status):
    decision = plan("resumed", row(status))
    assert decision.action is None and decision.error is None


def test_resume_of_paused_and_completed():
    assert plan("resumed", row("paused")).action == "resume"
    assert "restarted" in plan("resumed", row("completed")).error


@pytest.mark.parametrize("status", ACTIVE)
def test_purge_of_active_invocations_says_to_cancel_first(status):
    decision = plan("purged", row(status))
    assert decision.action is None and status in decision.error and "Cancel or kill it first" in decision.error


def test_purge_of_completed_and_absent():
    assert plan("purged", row("completed")).action == "purge"
    assert plan("purged", None).error is None and plan("purged", None).action is None


def test_journal_purge():
    assert plan("journal_purged", row("completed")).action == "purge-journal"
    assert plan("journal_purged", row("completed", journal_size=0)).action is None
    assert plan("journal_purged", row("completed", journal_size=None)).error is None
    assert "does not exist" in plan("journal_purged", None).error
    assert "not completed" in plan("journal_purged", row("running")).error


def test_restart():
    assert plan("restarted", row("completed")).action == "restart-as-new"
    existing = plan("restarted", row("completed"), restarted_as="inv_new")
    assert existing.action is None and "inv_new" in existing.note
    assert "workflow" in plan("restarted", row("completed", target_service_ty="workflow")).error
    assert "purged" in plan("restarted", row("completed", journal_size=0)).error
    assert "only completed" in plan("restarted", row("suspended")).error
    assert "does not exist" in plan("restarted", None).error


def test_settled():
    assert settled("cancelled", row("suspended"), None)
    assert settled("cancelled", row("suspended"), row("completed"))
    assert not settled("cancelled", row("suspended"), row("suspended"))
    assert settled("paused", row("running"), row("paused"))
    assert not settled("paused", row("running"), row("running"))
    before = row("paused", modified_at="t1")
    assert not settled("resumed", before, row("paused", modified_at="t1"))
    assert settled("resumed", before, row("paused", modified_at="t2"))
    assert settled("resumed", before, row("running", modified_at="t1"))


def test_every_state_is_one_whole_record_the_module_and_the_api_agree_with():
    # a record with an operation the API area does not send, or an option the module does not take, fails here
    spec = _invocation_task.SPEC["argument_spec"]
    assert spec["state"]["choices"] == list(STATES)
    for name, wanted in STATES.items():
        assert wanted.name == name and wanted.action in _invocations_api.ACTIONS
        assert wanted.option is None or wanted.option in spec
        assert wanted.sent_as is None or wanted.option is not None
        assert wanted.reached_at is None or wanted.waitable
        assert set(wanted.columns) <= set(_invocation_task.AFTER_COLUMNS) | {"journal_size", "target_service_ty"}
        decision = plan(name, row("completed" if wanted.selectable.startswith("status = 'completed'") else "running"))
        assert decision.action in (None, wanted.action), (name, decision)


def test_a_decision_shared_between_invocations_is_the_one_their_own_planning_makes():
    # Decisions are made once per (state, status, cancel pending) where the planner reads no more of the row: each
    # must be what planning that very invocation gives, whichever was planned first.
    statuses = [*ACTIVE, "completed", "a-status-restate-does-not-have", None]
    for first_pending in (True, False):
        for state, wanted in STATES.items():
            for status in statuses:
                for pending in (first_pending, not first_pending):
                    current = None if status is None else row(status, journal_size=0 if pending else 3)
                    own = wanted.planner(status or "absent", current or {}, pending, None)
                    assert plan(state, current, cancel_pending=pending) == own, (state, status, pending)


def test_decisions_that_read_more_of_the_row_than_its_status_are_made_for_each_row():
    assert plan("journal_purged", row("completed", journal_size=0)).action is None
    assert plan("journal_purged", row("completed", journal_size=4)).action == "purge-journal"
    assert plan("restarted", row("completed", target_service_ty="workflow")).error
    assert plan("restarted", row("completed")).action == "restart-as-new"
