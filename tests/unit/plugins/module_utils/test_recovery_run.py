"""restate_invocation_recovery's run() against the fake Admin API: what the stuck_invocations job decides - what to
kill, resume and move, what counts once under what, what is still retrying - and that --check predicts the real run."""

from __future__ import annotations

import pytest
from fake_admin import ACCEPTED, FakeAdmin, refused
from fake_task import FakeTask, run_task

from ansible_collections.restate.admin.plugins.module_utils import _recovery_task

DEPLOYMENT = "dp_13puM96j0yI6Wh3QjADKUsp"


def run(admin, **options) -> dict:
    return run_task(FakeTask(_recovery_task, admin, **options))


def counts(result) -> dict:
    return {key: value for key, value in result["summary"].items() if key != "check_mode"}


@pytest.fixture
def admin():
    return FakeAdmin()


def stuck(admin, paused=2, retrying=3, retry_count=5):
    return admin.add("paused", paused), admin.add("backing-off", retrying, retry_count=retry_count)


def test_check_mode_predicts_the_real_run_and_sends_nothing(admin):
    paused, retrying = stuck(admin)
    admin.add("backing-off", 2, retry_count=0)  # below max_retries: not stuck
    admin.add("suspended", 2)
    predicted = run(admin, max_retries=1, check_mode=True)
    assert admin.calls == []
    real = run(admin, max_retries=1)
    assert counts(predicted) == counts(real)
    assert (real["summary"]["resumed"], real["summary"]["still_retrying"], real["summary"]["killed"]) == (2, 3, 0)
    assert sorted(item["id"] for item in real["summary"]["retrying"]) == sorted(retrying)
    assert admin.calls == [("resume", i) for i in paused]
    assert predicted["msg"] == "Would kill 0, would resume 2 paused, 3 still retrying (retry count 1 or more)."
    assert real["msg"] == "Killed 0, resumed 2 paused, 3 still retrying (retry count 1 or more)."
    assert real["changed"] and not predicted.get("failed")


def test_a_resumed_invocation_that_fails_again_is_counted_once_as_resumed(admin):
    """Issue 28, case 3: resumed invocations that back off again at once were counted again as still retrying,
    so the real run's numbers differed from --check's."""
    paused, retrying = stuck(admin, paused=4, retrying=2)

    def fails_again(fake, invocation_id, action):
        if action == "resume":
            fake.set(invocation_id, status="backing-off", retry_count=9, modified_at="2026-12-01T00:00:09.000000Z")
            return ACCEPTED
        return None

    admin.intercept = fails_again
    predicted = run(admin, max_retries=1, check_mode=True)
    real = run(admin, max_retries=1)
    assert counts(predicted) == counts(real)
    assert (real["summary"]["resumed"], real["summary"]["resume_pending"], real["summary"]["still_retrying"]) == (4, 0, 2)
    assert sorted(item["id"] for item in real["summary"]["retrying"]) == sorted(retrying)


def test_kill_older_than_kills_the_old_stuck_and_leaves_the_rest_to_resume(admin):
    old_paused, old_retrying = stuck(admin, paused=2, retrying=1)
    new_paused = admin.add("paused", 1, created_at="2026-11-02T00:00:00.000Z")
    predicted = run(admin, max_retries=1, kill_older_than="2026-11-01T12:00:00Z", check_mode=True)
    real = run(admin, max_retries=1, kill_older_than="2026-11-01T12:00:00Z")
    assert counts(predicted) == counts(real)
    assert (real["summary"]["killed"], real["summary"]["resumed"], real["summary"]["still_retrying"]) == (3, 1, 0)
    assert {admin.status(i) for i in old_paused + old_retrying} == {"completed"}
    assert admin.status(new_paused[0]) == "running"


def test_latest_moves_the_retrying_to_it_and_counts_them_as_moved(admin):
    paused, retrying = stuck(admin, paused=1, retrying=3)
    predicted = run(admin, max_retries=1, deployment="latest", check_mode=True)
    real = run(admin, max_retries=1, deployment="latest")
    assert counts(predicted) == counts(real)
    assert (real["summary"]["moved_to_deployment"], real["summary"]["resumed"], real["summary"]["still_retrying"]) == (
        3, 1, 0)
    assert [call[0] for call in admin.calls].count("pause") == 3
    assert "moved 3 retrying to latest" in real["msg"]


def test_what_could_not_be_moved_is_put_back_and_the_task_fails_after_its_report(admin):
    unused_paused, retrying = stuck(admin, paused=0, retrying=2)
    resumes = []

    def refuse_the_move(fake, invocation_id, action):
        if action == "resume":
            resumes.append(invocation_id)
            if resumes.count(invocation_id) == 1:  # the move; the put-back goes through
                return refused(503, "unavailable", invocation_id, action)
        return None

    admin.intercept = refuse_the_move
    result = run(admin, max_retries=1, deployment="latest")
    assert result["failed"] and "2 invocation(s) could not be moved to latest" in result["msg"]
    assert "2 were put back" in result["msg"] and "2 could not be moved; 2 put back" in result["msg"]
    assert (result["summary"]["moved_to_deployment"], result["summary"]["put_back"]) == (0, 2)
    assert {admin.status(i) for i in retrying} == {"running"}, "nothing this task paused stays paused"


def test_an_unknown_deployment_is_refused_before_anything_changes(admin):
    stuck(admin)
    admin.db.execute("CREATE TABLE sys_deployment (id)")
    result = run(admin, max_retries=1, deployment=DEPLOYMENT, kill_older_than="1s")
    assert result["failed"] and f"deployment: '{DEPLOYMENT}' is not a deployment registered" in result["msg"]
    assert admin.calls == [] and "summary" not in result


@pytest.mark.parametrize("filters, message", [
    ({"status": ["paused"]}, "filters: status cannot be given"),
    ({"min_retry_count": 3}, "filters: min_retry_count cannot be given"),
    ({"service": ""}, "filters.service: must not be empty"),
])
def test_a_scope_that_would_decide_what_is_stuck_is_refused(admin, filters, message):
    stuck(admin)
    result = run(admin, filters=filters)
    assert result["failed"] and message in result["msg"] and admin.calls == []


@pytest.mark.parametrize("option, value, message", [
    ("max_retries", -1, "max_retries must be 0 or more, got -1"),
    ("limit", 0, "limit must be 1 or more, got 0"),
    ("kill_older_than", "yesterday", "kill_older_than: 'yesterday' is neither an RFC 3339 timestamp nor an age"),
    ("deployment", "newest", "deployment: 'newest' is neither latest, keep nor a deployment id"),
])
def test_bad_options_are_refused_by_name_before_any_call(admin, option, value, message):
    stuck(admin)
    result = run(admin, **{option: value})
    assert result["failed"] and result["msg"].startswith(message) and admin.calls == []


def test_an_empty_scope_means_every_service_but_only_stuck_invocations(admin):
    paused, retrying = stuck(admin)
    suspended = admin.add("suspended", 2)
    completed = admin.add("completed", 2)
    result = run(admin, filters={"service": None, "handler": None}, max_retries=1)
    assert result["summary"]["resumed"] == 2
    assert {admin.status(i) for i in suspended} == {"suspended"} and {admin.status(i) for i in completed} == {
        "completed"}
    assert {call[1] for call in admin.calls} == set(paused)


@pytest.mark.parametrize("scope, resumed", [
    ({"target": "Tester/pause_then_sleep"}, 2), ({"target": "Tester/run"}, 0), ({"target": "Tester"}, 2),
    ({"service": "Tester", "created_before": "1h"}, 2), ({"key": "k", "modified_before": "1s"}, 0),
    ({"created_after": "2026-10-31T23:00:00Z"}, 2), ({"created_after": "2026-11-02T00:00:00Z"}, 0)])
def test_every_scope_filter_reaches_each_step_as_given(admin, scope, resumed):
    # The scope is checked once, then combined with each step's own filters: a normalized value (a target split
    # into its parts, a time resolved) must not be read again as if the user had given it.
    stuck(admin)
    result = run(admin, max_retries=1, filters=scope)
    assert not result.get("failed"), result.get("msg")
    assert result["summary"]["resumed"] == resumed
