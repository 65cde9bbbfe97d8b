"""The three playbooks, run unchanged through ansible-playbook against a real server of their own.

For each: the dry run changes nothing and reports what would change, the real run does exactly that, a second
run changes nothing; SQL on the server is the judge.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from harness.server import Restate


@pytest.fixture()
def server(tmp_path):
    """A server per test: the playbooks act on whole-server selections, so no other test's invocations may be in it."""
    instance = Restate(tmp_path).start()
    try:
        yield instance
    finally:
        instance.stop()


def boundary_between(earlier, later):
    """Run ``earlier``, take a timestamp, run ``later``; returns (earlier's result, stamp, later's result)."""
    first = earlier()
    time.sleep(1.2)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.2)
    return first, stamp, later()


def states(server) -> dict:
    return {row["id"]: (row["status"], row.get("completion_failure")) for row in
            server.query("SELECT id, status, completion_failure FROM sys_invocation")}


def test_retention_cleanup_purges_exactly_the_old_completed_invocations(server, ansible):
    old_ok, stamp, new_ok = boundary_between(lambda: server.make("completed-success", 4) + server.make(
        "completed-failure", 3), lambda: server.make("completed-success", 3) + server.make("completed-failure", 2))
    old_failures = old_ok[4:]
    active = server.make("suspended", 2) + server.make("paused", 1) + server.make("scheduled", 1)
    job = {"retention": stamp}
    before = states(server)

    report, changed, output = ansible.playbook("retention_cleanup", dict(job, result="failure"),
                                               "invocation_cleanup_report", check=True, env={"RESTATE_ADMIN_URL": server.admin_url})
    assert states(server) == before and changed == 1
    assert report["purged"] == 3 and report["per_service"] == {"Tester": 3}
    assert "Would purge 3 of 3 matching invocations (Tester: 3)." in output
    assert f"Report the cleanup (retention {stamp})" in output  # a time, not an age

    report, changed, unused_output = ansible.playbook("retention_cleanup", dict(job, result="failure"),
                                                      "invocation_cleanup_report", env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["purged"] == 3 and changed == 1
    assert set(before) - set(states(server)) == set(old_failures)

    report, changed, unused_output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", check=True,
                                                      env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["purged"] == 4 and len(states(server)) == len(before) - 3
    report, changed, output = ansible.playbook("retention_cleanup", dict(job, limit=3), "invocation_cleanup_report",
                                               check=True, env={"RESTATE_ADMIN_URL": server.admin_url})
    assert (report["matched"], report["purged"], report["left_for_next_run"]) == (4, 3, 1)
    assert report["per_service"] == {"Tester": 3} and "1 left for the next run" in output
    report, changed, unused_output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report",
                                                      env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["purged"] == 4 and report["left_for_next_run"] == 0
    after = states(server)
    assert set(after) == set(new_ok) | set(active), "only the old completed invocations are gone"
    assert all(after[i] == before[i] for i in after), "nothing that was kept changed"

    report, changed, unused_output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report",
                                                      env={"RESTATE_ADMIN_URL": server.admin_url})
    assert changed == 0 and report["purged"] == 0 and states(server) == after


def test_retention_cleanup_journal_only_keeps_the_results(server, ansible):
    done = server.make("completed-success", 3)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"retention": "1s", "journal_only": True}
    time.sleep(1.5)
    report, changed, unused_output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", env=env)
    assert report["purged"] == 3 and changed == 1
    rows = server.query("SELECT id, status, journal_size FROM sys_invocation")
    assert {r["id"] for r in rows} == set(done) and all(not r.get("journal_size") for r in rows)
    report, changed, unused_output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", env=env)
    assert report["purged"] == 0 and changed == 0


def test_bulk_cancel_guards_then_cancels_exactly_the_selection(server, ansible):
    targets = server.make("suspended", 5)  # Tester/sleep
    others = server.send_many("Tester/wait_awakeable", ["never"] * 2) + server.make("paused", 1)
    server.wait_statuses(others[:2], "suspended")
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"filters": {"target": "Tester/sleep", "status": ["suspended"]}, "wait": True}
    before = states(server)

    unused_report, unused_changed, output = ansible.playbook("bulk_cancel", dict(job, max_invocations=4),
                                                             "bulk_cancel_report", env=env, expect_rc=2)
    assert "5 invocations match the selection for state=cancelled, more than max_matched=4" in output
    assert "nothing was cancelled" in output
    assert states(server) == before

    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", check=True, env=env)
    assert states(server) == before and report["changed"] == 5 and changed == 1
    assert "Would cancel 5 of 5 matching invocations" in output

    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", env=env)
    assert report["changed"] == 5 and report["failed"] == 0 and "Cancelled 5 of 5 matching invocations" in output
    assert (report["done"], report["pending"], report["check_mode"]) == (5, 0, False)
    after = states(server)
    assert all(after[i] == ("completed", "[409] cancelled") for i in targets)
    assert all(after[i] == before[i] for i in others)

    report, changed, unused_output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", env=env)
    assert changed == 0 and report["changed"] == 0 and states(server) == after


def test_bulk_cancel_kill_after_reports_what_it_killed(server, ansible):
    ignores_cancel = server.send("Tester/fail_pause", "ignores-cancel")  # fails at once whenever it runs
    server.wait_statuses([ignores_cancel], "paused")
    job = {"filters": {"target": "Tester/fail_pause"}, "kill_after": 2}
    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report",
                                               env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["changed"] == 1 and report["killed_after_cancel"] == 1 and changed == 1
    assert "1 killed after the cancel" in output
    assert server.row(ignores_cancel)["completion_failure"] == "[409] killed"


def test_bulk_cancel_refuses_empty_filters(server, ansible):
    unused_report, unused_changed, output = ansible.playbook(
        "bulk_cancel", {"filters": {}}, "bulk_cancel_report", env={"RESTATE_ADMIN_URL": server.admin_url}, expect_rc=2)
    assert "filters is empty (no filter has a value)" in output


def test_recover_stuck_kills_the_old_and_resumes_the_rest(server, ansible):
    old_paused, stamp, new_paused = boundary_between(lambda: server.make("paused", 3),
                                                     lambda: server.make("paused", 2))
    retrying = server.make("backing-off", 2)
    untouched = server.make("suspended", 2)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"kill_older_than": stamp, "max_retries": 1}
    before = states(server)

    report, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", check=True, env=env)
    assert states(server) == before and changed == 1  # one restate_invocation_recovery task
    assert report["killed"] == 3 and report["resumed"] == 2
    assert "Would kill 3, would resume 2 paused" in output

    report, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", env=env)
    assert report["killed"] == 3 and report["resumed"] == 2 and report["still_retrying"] == 2
    assert sorted(r["id"] for r in report["retrying"]) == sorted(retrying)
    server.wait_statuses(new_paused, "suspended")  # resumed: pause_then_sleep succeeds and sleeps
    after = states(server)
    assert all(after[i] == ("completed", "[409] killed") for i in old_paused)
    assert all(after[i] == before[i] for i in retrying + untouched)

    report, changed, unused_output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", env=env)
    assert changed == 0 and report["killed"] == 0 and report["resumed"] == 0
