"""The scheduled jobs as an operator runs them unattended: a typo never widens what they touch, a limited run
makes progress, a move to another deployment never strands what it paused, and the reports add up.

Each test runs the collection's playbooks unchanged through ansible-playbook against a real server of its own;
SQL on the server is the judge. The extra variables are given as strings where a person would type them
(`-e max_retries=abc`): JSON strings stay strings, as `-e key=value` does.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from harness import server as harness_server
from harness.fault_proxy import FaultProxy
from harness.server import Restate, wait_until


@pytest.fixture()
def server(tmp_path):
    """A server per test: the playbooks act on whole-server selections, so no other test's invocations may be in it."""
    instance = Restate(tmp_path).start()
    try:
        yield instance
    finally:
        instance.stop()


def snapshot(server) -> dict:
    """Everything a job could change, per invocation."""
    return {row["id"]: (row["status"], row.get("completion_failure"), row.get("journal_size"),
                        row.get("pinned_deployment_id"), row.get("retry_count"))
            for row in server.query("SELECT id, status, completion_failure, journal_size, pinned_deployment_id, "
                                    "retry_count FROM sys_invocation")}


def statuses(server, ids) -> dict:
    return dict(server.statuses(ids))


def pinned(server, ids) -> dict:
    rows = server.query("SELECT id, pinned_deployment_id FROM sys_invocation WHERE id IN ("
                        + ", ".join(f"'{i}'" for i in ids) + ")")
    return {row["id"]: row.get("pinned_deployment_id") for row in rows}


def make_pinned(server, status, count):
    """Invocations pinned to the current deployment (a journaled ctx.run first) that settle backing-off or paused."""
    handler = {"backing-off": "Tester/pinned_backoff", "paused": "Tester/pinned_pause"}[status]
    ids = server.send_many(handler, [f"p{n}-{time.monotonic_ns()}" for n in range(count)])
    server.wait_statuses(ids, status)
    return ids


@pytest.fixture()
def second_deployment(server):
    """Registers the test service, served again on another port, as a second deployment (then the latest); returns
    a function that does it and gives its id, so invocations made before are on the first one."""
    services = []

    def register():
        (server.workdir / "v2").mkdir()
        services.append(harness_server.TestService(server.workdir / "v2").start())
        response = server.http.post(server.admin_url + "/deployments",
                                    json={"uri": services[0].url, "use_http_11": True, "force": True}, timeout=30)
        response.raise_for_status()
        return response.json()["id"]
    try:
        yield register
    finally:
        for service in services:
            service.stop()


# -- 1. a journal-only cleanup with a limit makes progress -------------------------------------------------------------

def test_journal_only_cleanup_with_a_limit_goes_on_with_the_next_batch(server, ansible):
    done = server.make("completed-success", 5)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"retention": "1s", "journal_only": "true", "limit": "2"}
    time.sleep(1.5)

    def with_journal():
        return sum(1 for row in server.query("SELECT journal_size FROM sys_invocation") if row.get("journal_size"))

    report, changed, output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", check=True,
                                               env=env)
    assert (report["matched"], report["purged"], report["left_for_next_run"]) == (5, 2, 3) and with_journal() == 5
    for purged, left in ((2, 3), (2, 1), (1, 0)):
        report, changed, output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", env=env)
        assert (report["purged"], report["left_for_next_run"]) == (purged, left), output[-2000:]
        assert with_journal() == left, "left for the next run is exactly what still has a journal"
        total = purged + left
        assert f"Purged the journals of {purged} of {total} matching invocation" in output
        assert (f"{left} left for the next run (limit 2)" in output) == (left > 0)
    report, changed, output = ansible.playbook("retention_cleanup", job, "invocation_cleanup_report", env=env)
    assert changed == 0 and report["purged"] == 0 and report["matched"] == 0
    rows = server.query("SELECT id, status, completion_result FROM sys_invocation")
    assert {r["id"] for r in rows} == set(done) and all(r["completion_result"] == "success" for r in rows)


# -- 2. a typo stops the run before anything happens -------------------------------------------------------------------

@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    """A server of its own with a small mix of every status a job acts on, old enough for any age given below; the
    tests that use it must leave it as it is."""
    server = Restate(tmp_path_factory.mktemp("mix")).start()
    try:
        server.make("completed-success", 2)
        server.make("suspended", 2)
        server.make("backing-off", 2)
        server.make("paused", 1)
        time.sleep(1.2)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("job, extravars, message, value", [
    ("recover_stuck", {"max_retries": "abc", "kill_older_than": "1s"}, "max_retries=abc is not a whole number", "abc"),
    ("recover_stuck", {"limit": "abc"}, "limit=abc is not a whole number", "abc"),
    ("recover_stuck", {"limit": "0"}, "stuck_invocations_limit must be 1 or more, got 0", "0"),
    ("recover_stuck", {"kill_older_than": "yesterday"}, "stuck_invocations_kill_older_than", "yesterday"),
    ("recover_stuck", {"deployment": "dp_doesnotexist"}, "stuck_invocations_deployment", "dp_doesnotexist"),
    ("retention_cleanup", {"retention": "1s", "journal_only": "maybe"}, "invocation_cleanup_journal_only", "maybe"),
    ("retention_cleanup", {"retention": "1s", "limit": "abc"}, "limit=abc is not a whole number", "abc"),
    ("retention_cleanup", {"retention": "1 day"}, "invocation_cleanup_retention", "1 day"),
    ("bulk_cancel", {"filters": {"service": "Tester"}, "kill_after": "1m"}, "kill_after=1m is not a whole number", "1m"),
    ("bulk_cancel", {"filters": {"service": "Tester"}, "max_invocations": "abc"}, "max_invocations=abc is not a whole number", "abc"),
    ("bulk_cancel", {"filters": {"service": "Tester"}, "max_invocations": "0"}, "bulk_cancel_max_invocations must be 1 or more, got 0", "0"),
    ("bulk_cancel", {"filters": {"service": "Tester"}, "wait": "maybe"}, "bulk_cancel_wait", "maybe"),
])
def test_a_typo_is_refused_before_anything_runs(mix, ansible, job, extravars, message, value):
    """The message names the variable (as typed, or the role's) and the value, on ansible-core 2.16 as on 2.19."""
    before = snapshot(mix)
    report_fact = {"recover_stuck": "stuck_invocations_report", "retention_cleanup": "invocation_cleanup_report",
                   "bulk_cancel": "bulk_cancel_report"}[job]
    for check in (True, False):
        report, unused_changed, output = ansible.playbook(job, extravars, report_fact, check=check,
                                                          env={"RESTATE_ADMIN_URL": mix.admin_url}, expect_rc=2)
        assert report is None, "no report: nothing ran"
        assert message in output and value in output, output[-3000:]
        assert "Would" not in output and "Purged" not in output and "Killed" not in output
        assert snapshot(mix) == before


def test_bulk_cancel_without_filters_names_the_variable(mix, ansible):
    before = snapshot(mix)
    unused_report, unused_changed, output = ansible.playbook("bulk_cancel", {}, "bulk_cancel_report",
                                                             env={"RESTATE_ADMIN_URL": mix.admin_url}, expect_rc=2)
    assert "filters is required" in output and "is undefined" not in output
    assert snapshot(mix) == before


def test_bulk_cancel_reads_filters_given_as_json_text(server, ansible):
    targets = server.make("suspended", 3)  # Tester/sleep
    others = server.make("paused", 1)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"filters": '{"target": "Tester/sleep", "status": ["suspended"]}', "wait": "yes"}
    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", check=True, env=env)
    assert report["changed"] == 3 and "Would cancel 3 of 3 matching invocations" in output
    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", env=env)
    assert report["changed"] == 3 and report["failed"] == 0
    assert set(statuses(server, targets).values()) == {"completed-failure"}
    assert statuses(server, others) == {others[0]: "paused"}

    unused_report, unused_changed, output = ansible.playbook(
        "bulk_cancel", {"filters": "service=Tester"}, "bulk_cancel_report", env=env, expect_rc=2)
    assert "bulk_cancel_filters must be a dictionary" in output and "service=Tester" in output
    assert statuses(server, others) == {others[0]: "paused"}


def test_bulk_cancel_max_invocations_at_the_count_still_passes(server, ansible):
    targets = server.make("suspended", 2)
    job = {"filters": {"target": "Tester/sleep"}, "max_invocations": "2", "kill_after": "0", "wait": "false"}
    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report",
                                               env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["changed"] == 2 and "Cancelled 2 of 2 matching invocations" in output
    server.wait_statuses(targets, "completed")


# -- 3. recover_stuck counts each invocation once; --check predicts the real run ---------------------------------------

def comparable(report):
    return {key: value for key, value in report.items() if key not in ("retrying", "check_mode", "msg")} | {
        "retrying": sorted(item["id"] for item in report["retrying"])}


def test_recover_stuck_on_latest_counts_each_invocation_once(server, ansible, second_deployment):
    paused = server.make("paused", 2)
    retrying = server.make("backing-off", 3)  # retry_count 1; not pinned: latest can take them
    untouched = server.make("suspended", 1)
    latest = second_deployment()
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"max_retries": "1", "deployment": "latest"}
    before = snapshot(server)
    modified = {row["id"]: row["modified_at"] for row in server.query("SELECT id, modified_at FROM sys_invocation")}

    predicted, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", check=True,
                                                  env=env)
    assert snapshot(server) == before
    assert (predicted["resumed"], predicted["moved_to_deployment"], predicted["still_retrying"]) == (2, 3, 0)
    assert "would resume 2 paused, would move 3 retrying to latest, 0 still retrying" in output, output[-3000:]
    assert predicted["check_mode"] is True

    report, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", env=env)
    assert comparable(report) == comparable(predicted), "--check predicts the real run, counts included"
    assert "resumed 2 paused, moved 3 retrying to latest, 0 still retrying" in output
    # resumed: each paused one ran again (on the latest deployment, whose process fails it twice and pauses it again)
    wait_until(lambda: all(row["modified_at"] != modified[row["id"]] for row in server.query(
        "SELECT id, modified_at FROM sys_invocation WHERE id IN (" + ", ".join(f"'{i}'" for i in paused) + ")")),
        what="the resumed invocations to run again")
    # moved: each ran again (retry_count went up) on the latest deployment, and backs off again there
    rows = {r["id"]: r for r in server.query("SELECT id, status, retry_count, last_attempt_deployment_id "
                                             "FROM sys_invocation")}
    assert all(rows[i]["retry_count"] > before[i][4] and rows[i]["last_attempt_deployment_id"] == latest
               for i in retrying)
    assert rows[untouched[0]]["status"] == "suspended"


# -- 4. a move to a named deployment never strands what it pauses ------------------------------------------------------

def test_recover_stuck_moves_only_what_can_move_to_a_deployment_id(server, ansible, second_deployment):
    unpinned_retrying = server.make("backing-off", 2)
    pinned_retrying = make_pinned(server, "backing-off", 2)
    unpinned_paused = server.make("paused", 1)
    pinned_paused = make_pinned(server, "paused", 1)
    assert set(pinned(server, pinned_retrying + pinned_paused).values()) == {server.deployment_id}
    target = second_deployment()
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"max_retries": "1", "deployment": target}
    before = snapshot(server)

    predicted, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", check=True,
                                                  env=env)
    assert snapshot(server) == before
    assert (predicted["resumed"], predicted["moved_to_deployment"], predicted["left_paused_unpinned"],
            predicted["still_retrying"], predicted["move_failed"]) == (1, 2, 1, 2, 0)
    assert sorted(item["id"] for item in predicted["retrying"]) == sorted(unpinned_retrying)
    assert "1 paused left paused: not pinned to a deployment" in output

    report, changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", env=env)
    assert comparable(report) == comparable(predicted), "--check predicts the real run, counts included"
    after = snapshot(server)
    assert set(pinned(server, pinned_retrying + pinned_paused).values()) == {target}
    # what cannot move was never paused: still retrying on its own, or paused as it was
    assert all(after[i] == before[i] for i in unpinned_retrying + unpinned_paused)


def test_recover_stuck_puts_back_what_it_paused_and_could_not_move(server, ansible, second_deployment):
    """The server refusing the resume on the new deployment cannot be arranged after it accepted the pause, so a proxy
    answers 503 (after the client's retries) to every resume on it; the put-back resume (keep) goes through."""
    retrying = make_pinned(server, "backing-off", 2)
    target = second_deployment()
    before = snapshot(server)
    proxy = FaultProxy(server.admin_url)
    try:
        proxy.add("status503", 100, match=f"deployment={target}")
        report, changed, output = ansible.playbook("recover_stuck", {"max_retries": "1", "deployment": target},
                                                   "stuck_invocations_report", env={"RESTATE_ADMIN_URL": proxy.url},
                                                   expect_rc=2)
    finally:
        proxy.close()
    assert any(f"{i}/resume?deployment={target}" in line for line in proxy.requests for i in retrying)
    assert report is None, "the role fails after its report"
    assert "moved 0 retrying to" in output and "2 could not be moved; 2 put back on their own deployment" in output
    assert "2 invocation(s) could not be moved to" in output and "2 were put back" in output
    # not stranded: each ran again on its own deployment (retry_count went up) and is not paused
    server.wait_statuses(retrying, ("backing-off", "running"))
    after = snapshot(server)
    assert all(after[i][3] == server.deployment_id and after[i][4] > before[i][4] for i in retrying)


def test_recover_stuck_refuses_an_unknown_deployment_before_anything_changes(server, ansible, second_deployment):
    server.make("backing-off", 2)
    make_pinned(server, "backing-off", 1)
    make_pinned(server, "paused", 1)
    old_paused = server.make("paused", 1)
    registered = second_deployment()
    time.sleep(1.2)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    # well formed, but not registered: one letter of a real id changed
    unknown = registered[:-1] + ("a" if registered[-1] != "a" else "b")
    before = snapshot(server)
    for check in (True, False):
        report, unused_changed, output = ansible.playbook(
            "recover_stuck", {"max_retries": "1", "deployment": unknown, "kill_older_than": "1s"},
            "stuck_invocations_report", check=check, env=env, expect_rc=2)
        assert report is None and f"deployment: '{unknown}' is not a deployment registered on the server" in output
        assert snapshot(server) == before, "nothing killed, paused or resumed"
    assert statuses(server, old_paused) == {old_paused[0]: "paused"}


# -- 5. still_retrying agrees with its own list, and never counts what the run killed ----------------------------------

def test_still_retrying_is_the_length_of_its_list(server, ansible):
    old = server.make("backing-off", 4)
    time.sleep(1.2)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.2)
    new = server.make("backing-off", 3)
    env = {"RESTATE_ADMIN_URL": server.admin_url}

    report, changed, output = ansible.playbook("recover_stuck", {"max_retries": "1", "kill_older_than": stamp},
                                               "stuck_invocations_report", env=env)
    assert report["killed"] == 4
    assert report["still_retrying"] == len(report["retrying"]) == 3
    assert sorted(item["id"] for item in report["retrying"]) == sorted(new) and not report["retrying_truncated"]
    assert set(statuses(server, old).values()) == {"completed-failure"}

    report, changed, output = ansible.playbook("recover_stuck", {"max_retries": "1", "limit": "2"},
                                               "stuck_invocations_report", env=env)
    assert report["still_retrying"] == len(report["retrying"]) == 2 and report["retrying_truncated"]
    assert "at least 2 still retrying (retry count 1 or more), list truncated at the limit" in output


# -- 6. messages read right for every accepted value -------------------------------------------------------------------

def test_retention_given_as_a_timestamp_reads_as_one(server, ansible):
    server.make("completed-success", 1)
    time.sleep(1.2)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    report, changed, output = ansible.playbook("retention_cleanup", {"retention": stamp},
                                               "invocation_cleanup_report",
                                               env={"RESTATE_ADMIN_URL": server.admin_url})
    assert report["purged"] == 1
    assert "Purged 1 of 1 matching invocation (Tester: 1)." in output
    assert f"Report the cleanup (retention {stamp})" in output


# -- what held: keep it --------------------------------------------------------------------------------------------------

def test_recover_stuck_keeps_to_its_limit_and_to_known_services(server, ansible):
    paused = server.make("paused", 3)
    retrying = server.make("backing-off", 1)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    before = snapshot(server)

    report, changed, output = ansible.playbook("recover_stuck", {"service": "NoSuchService", "max_retries": 1},
                                               "stuck_invocations_report", env=env)
    assert changed == 0 and (report["killed"], report["resumed"], report["still_retrying"]) == (0, 0, 0)
    assert snapshot(server) == before

    predicted, changed, output = ansible.playbook("recover_stuck", {"limit": 1, "max_retries": 1},
                                                  "stuck_invocations_report", check=True, env=env)
    assert snapshot(server) == before
    report, changed, output = ansible.playbook("recover_stuck", {"limit": 1, "max_retries": 1},
                                               "stuck_invocations_report", env=env)
    assert comparable(report) == comparable(predicted)
    assert report["resumed"] == 1 and report["still_retrying"] == 1
    assert [item["id"] for item in report["retrying"]] == retrying
    # the one resumed (on the same process, its third attempt) succeeds and sleeps; the limit kept the others paused
    wait_until(lambda: sorted(statuses(server, paused).values()) == ["paused", "paused", "suspended"],
               what="one resumed invocation to sleep, two to stay paused")


# -- 7. issue 28: a null filter never selects everything; pending is never done; --check is the real run ---------------

EMPTY_FILTERS = [
    {}, {"service": None}, {"service": None, "status": None}, {"service": ""}, {"status": []}, None, "", "{}",
    '{"service": null}', {"service": "{{ lookup('env', 'RESTATE_ADMIN_TEST_UNSET') }}"},
]


@pytest.mark.parametrize("filters", EMPTY_FILTERS, ids=[repr(f) for f in EMPTY_FILTERS])
def test_bulk_cancel_with_filters_that_name_nothing_touches_nothing(mix, ansible, filters):
    """Every "empty" form of the filters, given or templated to nothing, is refused before any change: in --check
    and for real, on both modes."""
    before = snapshot(mix)
    for check, mode in ((True, "cancel"), (False, "cancel"), (False, "kill")):
        report, unused_changed, output = ansible.playbook("bulk_cancel", {"filters": filters, "mode": mode},
                                                          "bulk_cancel_report", check=check,
                                                          env={"RESTATE_ADMIN_URL": mix.admin_url}, expect_rc=2)
        assert report is None, output[-3000:]
        # Refused by the module (empty, or an empty value), by Ansible's check of the option (a null status), or by
        # the role's argument spec (null, or text that is no dictionary): each names the filters.
        assert any(words in output for words in (
            "filters is empty (no filter has a value)", "filters.service: must not be empty",
            "filters.status: give at least one status", "value of status must be one of",
            "bulk_cancel_filters must be a dictionary", "cannot be converted to a dict",
            "dictionary requested, could not parse JSON")), output[-3000:]
        assert snapshot(mix) == before


@pytest.mark.parametrize("job, extravars, report_fact", [
    ("retention_cleanup", {"retention": "1s"}, "invocation_cleanup_report"),
    ("recover_stuck", {"max_retries": "1"}, "stuck_invocations_report"),
])
@pytest.mark.parametrize("empty", [None, ""])
def test_a_job_whose_service_or_handler_is_empty_selects_what_its_default_selects(
        mix, ansible, job, extravars, report_fact, empty):
    """retention_cleanup and recover_stuck always select by age or status; an empty service or handler means "all",
    exactly as when it is not given: never something wider (a null read as a filter value, say)."""
    env = {"RESTATE_ADMIN_URL": mix.admin_url}
    before = snapshot(mix)
    default, unused_changed, unused_output = ansible.playbook(job, extravars, report_fact, check=True, env=env)
    given, unused_changed, unused_output = ansible.playbook(job, dict(extravars, service=empty, handler=empty),
                                                            report_fact, check=True, env=env)
    assert given == default and snapshot(mix) == before


@pytest.mark.skipif(harness_server.server_version() < (1, 7, 0),
                    reason="Restate 1.6 resumes a paused invocation it is asked to cancel and drops the cancel "
                           "(test_invocation_reports covers what the task says of it)")
def test_bulk_cancel_counts_a_cancel_the_server_holds_as_pending_not_as_done(server, ansible):
    """Restate 1.7 runs a paused invocation again to deliver a cancel; one that fails before an await point pauses
    again with the cancel pending. The report says pending, in --check as for real, and a re-run still says pending,
    never "already done"."""
    paused = server.send_many("Tester/fail_pause", [f"never-stops-{n}" for n in range(3)])
    server.wait_statuses(paused, "paused")
    suspended = server.make("suspended", 2)
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"filters": {"service": "Tester"}}
    counted = ("matched", "done", "pending", "already", "failed", "left", "changed", "unchanged")
    predicted, unused_changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", check=True, env=env)
    assert "Would cancel 2 of 5 matching invocations (Tester: 5); 3 would stay pending" in output, output[-3000:]
    report, unused_changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", env=env)
    assert "Cancelled 2 of 5 matching invocations (Tester: 5); 3 still pending" in output, output[-3000:]
    assert {k: report[k] for k in counted} == {k: predicted[k] for k in counted}, "--check predicts the real run"
    assert (report["done"], report["pending"], report["already"]) == (2, 3, 0)
    assert set(statuses(server, paused).values()) == {"paused"}
    assert set(statuses(server, suspended).values()) == {"completed-failure"}

    report, changed, output = ansible.playbook("bulk_cancel", job, "bulk_cancel_report", env=env)
    assert changed == 0 and (report["matched"], report["done"], report["pending"], report["already"]) == (3, 0, 3, 0)
    assert "Cancelled 0 of 3 matching invocations; 3 still pending" in output and "already" not in output


def test_recover_stuck_never_counts_what_it_resumed_as_still_retrying(server, ansible):
    """Paused invocations that back off again once resumed (they fail at once) are counted once, as resumed; --check
    (where they are still paused) predicts the same numbers."""
    backing_off = server.make("backing-off", 3)  # Tester/fail_backoff: fails again at once when resumed
    for invocation_id in backing_off:
        server.http.patch(f"{server.admin_url}/invocations/{invocation_id}/pause", timeout=30).raise_for_status()
    server.wait_statuses(backing_off, "paused")
    others = server.make("paused", 3)  # Tester/pause_then_sleep: succeeds and sleeps once resumed
    env = {"RESTATE_ADMIN_URL": server.admin_url}
    job = {"max_retries": "1"}
    predicted, unused_changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", check=True,
                                                         env=env)
    assert (predicted["resumed"], predicted["still_retrying"]) == (6, 0), output[-3000:]
    report, unused_changed, output = ansible.playbook("recover_stuck", job, "stuck_invocations_report", env=env)
    server.wait_statuses(backing_off, "backing-off")  # resumed, failed again: retrying with retry count >= 1
    assert comparable(report) == comparable(predicted), "--check predicts the real run, counts included"
    assert (report["resumed"], report["still_retrying"]) == (6, 0), output[-3000:]
    assert "Killed 0, resumed 6 paused, 0 still retrying (retry count 1 or more)." in output
    server.wait_statuses(others, "suspended")
