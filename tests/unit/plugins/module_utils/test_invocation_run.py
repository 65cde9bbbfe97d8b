"""restate_invocation's run() against a fake Admin API (fake_admin.py): planning, acting, waiting and reporting,
in seconds. The integration tests run the same paths against a real server."""

from __future__ import annotations

import pytest
from fake_admin import FakeAdmin
from fake_task import FakeTask, run_task

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import TaskDone

UNKNOWN = "inv_1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"


def invocation_task(admin, **options) -> FakeTask:
    return FakeTask(_invocation_task, admin, **options)


def run(admin, **options) -> dict:
    return run_task(invocation_task(admin, **options))


@pytest.fixture
def admin():
    return FakeAdmin()


def test_check_mode_predicts_and_sends_nothing(admin):
    suspended = admin.add("suspended", 3)
    result = run(admin, ids=suspended, state="cancelled", check_mode=True)
    assert result["changed"] and result["summary"]["changed"] == 3
    assert [item["after"] for item in result["invocations"]] == ["completed"] * 3
    assert admin.calls == [] and {admin.status(i) for i in suspended} == {"suspended"}


def test_only_what_must_change_is_acted_on_and_the_rest_is_reported(admin):
    completed, running = admin.add("completed", 2), admin.add("running")
    result = run(admin, ids=[*completed, *running, UNKNOWN], state="purged")
    assert admin.calls == [("purge", i) for i in completed]
    assert result["failed"] and "is running, not completed" in result["msg"]
    assert result["summary"] == {"matched": 4, "changed": 2, "unchanged": 1, "failed": 1, "missing": 1, "pending": 0,
                                 "done": 2, "already": 1, "left": 0, "check_mode": False,
                                 "changed_by_service": {"Tester": 2}}
    assert [admin.status(i) for i in completed] == ["absent", "absent"]


def test_a_second_run_changes_nothing(admin):
    paused = admin.add("paused", 2)
    assert run(admin, ids=paused, state="resumed")["changed"]
    again = run(admin, ids=paused, state="resumed")
    assert not again["changed"] and len(admin.calls) == 2


def test_a_filters_selection_takes_the_oldest_up_to_the_limit_and_warns_of_the_rest(admin):
    ids = admin.add("completed", 5)
    admin.add("suspended", 2)
    task = invocation_task(admin, filters={"service": "Tester"}, state="purged", limit=3)
    with pytest.raises(TaskDone) as done:
        _invocation_task.run(task)
    assert [call[1] for call in admin.calls] == ids[:3]
    assert done.value.result["summary"]["matched"] == 5
    assert any("5 invocations match" in warning for warning in task._warnings)


def test_a_pending_cancel_is_not_sent_again(admin):
    backing_off = admin.add("backing-off", 2)
    first = run(admin, ids=backing_off, state="cancelled")
    assert first["changed"] and len(admin.calls) == 2
    second = run(admin, ids=backing_off, state="cancelled")
    assert not second["changed"] and len(admin.calls) == 2
    assert all("already pending" in item["note"] for item in second["invocations"])


def test_wait_with_kill_after_kills_what_the_cancel_did_not_end(admin):
    admin.cancel_ignored = True
    suspended = admin.add("suspended", 2)
    result = run(admin, ids=suspended, state="cancelled", wait=True, wait_timeout=5, kill_after=0)
    assert [call[0] for call in admin.calls] == ["cancel", "cancel", "kill", "kill"]
    assert result["summary"]["killed_after_cancel"] == 2 and not result.get("failed")
    assert {admin.status(i) for i in suspended} == {"completed"}


def test_wait_that_times_out_names_the_invocations_still_waiting(admin):
    admin.cancel_ignored = True
    suspended = admin.add("suspended")
    result = run(admin, ids=suspended, state="cancelled", wait=True, wait_timeout=0)
    assert result["failed"] and f"{suspended[0]} did not reach state=cancelled within wait_timeout=0s" in result["msg"]


def test_a_lost_answer_whose_call_did_its_work_counts_as_changed(admin):
    completed = admin.add("completed")
    admin.lose_answers.add("purge")
    result = run(admin, ids=completed, state="purged", batch_calls=False)
    assert result["changed"] and not result.get("failed")
    assert "the server answered" in result["invocations"][0]["note"]


def test_report_failed_lists_only_failures_and_diff_lists_the_changes(admin):
    completed, running = admin.add("completed", 2), admin.add("running")
    result = run(admin, ids=[*completed, *running], state="purged", report="failed", diff=True)
    assert [item["id"] for item in result["invocations"]] == running
    assert result["diff"]["before"] == "".join(f"{i}: completed\n" for i in completed)
    assert result["diff"]["after"] == "".join(f"{i}: absent\n" for i in completed)


def test_restart_reports_the_new_invocation_and_is_not_repeated(admin):
    completed = admin.add("completed")
    first = run(admin, id=completed[0], state="restarted")
    new_id = first["invocations"][0]["new_invocation_id"]
    assert admin.row(new_id)["restarted_from"] == completed[0]
    second = run(admin, id=completed[0], state="restarted")
    assert not second["changed"] and second["invocations"][0]["new_invocation_id"] == new_id


def run_info(admin, **options) -> dict:
    from ansible_collections.restate.admin.plugins.module_utils import _invocation_info_task

    return run_task(FakeTask(_invocation_info_task, admin, **options))


def test_info_counts_per_status_and_lists_newest_first_up_to_the_limit(admin):
    suspended = admin.add("suspended", 3)
    admin.add("completed", 2)
    result = run_info(admin, filters={"service": "Tester"}, limit=2, fields=["id", "status"])
    assert result["summary"] == {"suspended": 3, "completed": 2} and result["matched"] == 5
    assert result["count"] == 2 and result["truncated"]
    assert result["invocations"][0]["status"] == "completed"
    only_suspended = run_info(admin, filters={"status": ["suspended"]}, order="oldest_first")
    assert [row["id"] for row in only_suspended["invocations"]] == suspended and not admin.calls


# -- what a job relies on: nothing widened, pending never done, --check as the real run ------------------------------

@pytest.mark.parametrize("filters", [{}, {"service": None}, {"service": None, "status": None},
                                     {"handler": None, "created_before": None}])
@pytest.mark.parametrize("state", ["cancelled", "killed", "purged"])
def test_a_filters_selection_that_names_nothing_is_refused_before_any_call(admin, filters, state):
    admin.add("suspended", 2)
    admin.add("completed", 2)
    before = {i: admin.status(i) for i in admin.ids()}
    for check_mode in (True, False):
        result = run(admin, filters=filters, state=state, check_mode=check_mode)
        assert result["failed"] and "filters is empty" in result["msg"] and "all_invocations" in result["msg"]
    assert admin.calls == [] and {i: admin.status(i) for i in admin.ids()} == before
    assert not any("FROM sys_invocation WHERE" in sql or "FROM sys_invocation ORDER" in sql for sql in admin.queries)


def test_a_cancel_selection_never_spends_its_limit_on_completed_invocations(admin):
    admin.add("completed", 3)  # the oldest
    suspended = admin.add("suspended", 2)
    result = run(admin, filters={"service": "Tester"}, state="cancelled", limit=2)
    assert [call[1] for call in admin.calls] == suspended
    assert (result["summary"]["matched"], result["summary"]["done"]) == (2, 2)


@pytest.mark.parametrize("check_mode", [True, False])
def test_the_count_guard_refuses_more_matches_than_max_matched_before_any_call(admin, check_mode):
    suspended = admin.add("suspended", 3)
    admin.add("completed", 5)  # not cancellable: not counted
    result = run(admin, filters={"service": "Tester"}, state="cancelled", max_matched=2, check_mode=check_mode)
    assert result["failed"] and result["msg"].startswith("3 invocations match the selection for state=cancelled, "
                                                         "more than max_matched=2 allows; nothing was cancelled")
    assert admin.calls == [] and {admin.status(i) for i in suspended} == {"suspended"}
    result = run(admin, filters={"service": "Tester"}, state="cancelled", max_matched=3, check_mode=check_mode)
    assert not result.get("failed") and result["summary"]["matched"] == 3


def test_max_matched_with_named_invocations_is_refused(admin):
    suspended = admin.add("suspended")
    result = run(admin, ids=suspended, state="cancelled", max_matched=1)
    assert result["failed"] and "max_matched guards a filters selection" in result["msg"] and admin.calls == []


def test_check_mode_of_a_cancel_of_a_paused_invocation_predicts_it_stays_paused_with_the_cancel_pending(admin):
    """Restate 1.7 accepts the cancel of a paused invocation and leaves it paused until something resumes it: the
    dry run predicts exactly what the real run reports, item by item and in the counts and the message."""
    paused = admin.add("paused", 2)
    suspended = admin.add("suspended", 3)
    predicted = run(admin, filters={"service": "Tester"}, state="cancelled", check_mode=True)
    assert admin.calls == []
    real = run(admin, filters={"service": "Tester"}, state="cancelled")

    def outcome(result):
        return {item["id"]: (item["after"], "pending" in item, item["changed"]) for item in result["invocations"]}
    assert outcome(predicted) == outcome(real)
    assert {i: outcome(real)[i] for i in paused} == {i: ("paused", True, True) for i in paused}
    assert {k: v for k, v in predicted["summary"].items() if k != "check_mode"} == {
        k: v for k, v in real["summary"].items() if k != "check_mode"}
    assert (real["summary"]["done"], real["summary"]["pending"]) == (3, 2)
    assert predicted["msg"] == real["msg"].replace("Cancelled", "Would cancel").replace("still", "would stay")
    assert real["msg"].startswith("Cancelled 3 of 5 matching invocations (Tester: 5); 2 still pending")
    assert {admin.status(i) for i in suspended} == {"completed"}


def test_a_re_run_counts_pending_cancels_as_pending_not_as_done(admin):
    paused = admin.add("paused", 2)
    run(admin, ids=paused, state="cancelled")
    again = run(admin, ids=paused, state="cancelled")
    assert not again["changed"]
    assert (again["summary"]["done"], again["summary"]["pending"], again["summary"]["already"]) == (0, 2, 0)
    assert "2 still pending" in again["msg"] and "needed no change" not in again["msg"]


def test_check_mode_with_kill_after_predicts_the_kill_of_what_the_cancel_leaves_pending(admin):
    paused = admin.add("paused")
    predicted = run(admin, ids=paused, state="cancelled", kill_after=0, wait_timeout=5, check_mode=True)
    real = run(admin, ids=paused, state="cancelled", kill_after=0, wait_timeout=5)
    for result in (predicted, real):
        assert result["summary"]["killed_after_cancel"] == 1 and result["summary"]["done"] == 1
        assert result["invocations"][0]["after"] == "completed"
