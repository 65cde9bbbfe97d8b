"""The deployment_release playbook end to end against a real server: --check changes nothing, a release keeps a
pinned older deployment and reports it, a second release changes nothing, on_pinned=kill retires it."""

from __future__ import annotations

import threading
import time

import pytest
from harness.fault_proxy import FaultProxy
from harness.server import wait_until


def server_view(lab):
    """GET /deployments and GET /services without the handlers (which come in no fixed order)."""
    deployments = sorted(({k: v for k, v in d.items() if k != "services"}
                          | {"services": sorted((s["name"], s["revision"]) for s in d["services"])}
                          for d in lab.deployments()), key=lambda d: d["id"])
    services = {name: {k: v for k, v in s.items() if k != "handlers"} for name, s in lab.services().items()}
    return deployments, services


def test_release_check_then_keep_then_idempotent_then_kill(lab, play):
    old_id = lab.server.deployment_id
    pinned = lab.server.send("Tester/sleep", 7200)
    lab.server.wait_statuses([pinned], "suspended")
    lab.wait_pinned(pinned, old_id)
    new = lab.version()
    job = {"uri": new.url, "use_http_11": True, "drain_timeout": 3, "drain_delay": 2,
           "service_settings": {"Tester": {"journal_retention": "3d"}, "Flow": {"workflow_completion_retention": "P2D"}}}

    before = server_view(lab)
    report, changed, output = play.playbook("deployment_release", job, "deployment_release_report", check=True)
    assert server_view(lab) == before, output[-3000:]
    assert report["dry_run"] is True and report["registered"] is True
    assert report["older"] == [old_id]
    assert report["pinned_before"] == {old_id: {"suspended": 1}}
    assert sorted(report["settings_changed"]) == ["Flow", "Tester"]
    assert "Would register a new deployment (the dry run named it dp_" in output and "an id not kept" in output

    report, changed, output = play.playbook("deployment_release", job, "deployment_release_report")
    new_id = report["deployment"]
    assert report["registered"] is True and new_id not in {d["id"] for d in before[0]}
    assert lab.latest() == {"Flow": new_id, "Holder": new_id, "Keeper": new_id, "Tester": new_id}
    services = lab.services()
    assert services["Tester"]["journal_retention"] == "3d" and services["Flow"]["workflow_completion_retention"] == "2d"
    assert report["retired"] == [] and [d["id"] for d in report["kept"]] == [old_id]
    assert report["kept"][0]["pinned"] == {"suspended": 1}
    assert old_id in lab.deployment_ids()
    assert f"Kept {old_id}: 1 invocations still pinned" in output

    report, changed, output = play.playbook("deployment_release", job, "deployment_release_report")
    assert report["registered"] is False and report["deployment"] == new_id
    assert report["settings_changed"] == [] and changed == 0, output[-3000:]
    assert [d["id"] for d in report["kept"]] == [old_id]

    report, changed, output = play.playbook("deployment_release", dict(job, on_pinned="kill"),
                                            "deployment_release_report")
    assert report["retired"] == [old_id], output[-3000:]
    assert old_id not in lab.deployment_ids()
    assert lab.server.statuses([pinned])[pinned] == "completed-failure"
    assert lab.latest() == {"Flow": new_id, "Holder": new_id, "Keeper": new_id, "Tester": new_id}


def test_release_after_a_rollback_touches_nothing_live(lab, play):
    # v2 released over v1, then rolled back to v1 (force): v1 is the live deployment again. Releasing v2 again must
    # stop before touching anything: no pinned invocation cancelled, v1 not removed (it was retired as "older").
    v1, v2 = lab.version(), lab.version()
    v1_id = lab.register(v1.url)
    v2_id = lab.register(v2.url)
    rolled = play.run("restate.admin.restate_deployment", {"uri": v1.url, "use_http_11": True, "force": True})
    assert rolled["changed"] is True and rolled["latest"] is True, rolled
    assert set(lab.latest().values()) == {v1_id}
    live = [lab.server.send("Tester/sleep", 7200) for unused in range(2)]
    lab.server.wait_statuses(live, "suspended")
    for invocation_id in live:
        lab.wait_pinned(invocation_id, v1_id)
    job = {"uri": v2.url, "use_http_11": True, "drain_timeout": 5, "drain_delay": 0, "on_pinned": "cancel"}

    for check in (True, False):
        report, unused_changed, output = play.playbook("deployment_release", job, "deployment_release_report",
                                                       check=check, expect_rc=2)
        assert report is None, output[-3000:]
        assert f"{v2_id} ({v2.url}) is already registered and is not the latest deployment of Flow, Holder, Keeper, " \
               f"Tester (they run on {v1_id}" in output, output[-3000:]
        assert "nothing was changed" in output
        assert lab.server.statuses(live) == {i: "suspended" for i in live}
        assert {v1_id, v2_id} <= lab.deployment_ids()
        assert set(lab.latest().values()) == {v1_id}
        rows = lab.server.query(f"SELECT id, pinned_deployment_id FROM sys_invocation WHERE id IN "
                                f"({', '.join(repr(i) for i in live)})")
        assert {r["pinned_deployment_id"] for r in rows} == {v1_id}
    for invocation_id in live:
        lab.kill(invocation_id)


def test_check_predicts_the_settings_a_registration_resets(lab, play):
    # Tester is at 3d after a first release; a second release's registration resets it to 1d and the settings step
    # sets 3d again: --check must say so too (it compared with the server's 3d and said nothing would change).
    job = {"use_http_11": True, "retire": False, "service_settings": {"Tester": {"journal_retention": "3d"}}}
    play.playbook("deployment_release", dict(job, uri=lab.version().url), "deployment_release_report")
    assert lab.services()["Tester"]["journal_retention"] == "3d"
    second = dict(job, uri=lab.version().url)
    planned, unused_changed, output = play.playbook("deployment_release", second, "deployment_release_report",
                                                    check=True)
    assert planned["settings_changed"] == ["Tester"], output[-3000:]
    assert lab.services()["Tester"]["journal_retention"] == "3d"
    done, unused_changed, output = play.playbook("deployment_release", second, "deployment_release_report")
    assert done["settings_changed"] == ["Tester"] and lab.services()["Tester"]["journal_retention"] == "3d"
    again, unused_changed, output = play.playbook("deployment_release", second, "deployment_release_report",
                                                  check=True)
    assert again["registered"] is False and again["settings_changed"] == [], output[-3000:]


def test_on_pinned_cancel_with_a_paused_invocation_says_the_cancel_is_pending(lab, play):
    old_id = lab.register(lab.version().url)
    paused = lab.server.send("Tester/pinned_pause", "x")
    lab.server.wait_statuses([paused], "paused", timeout=60)
    lab.wait_pinned(paused, old_id)
    job = {"uri": lab.version().url, "use_http_11": True, "drain_timeout": 3, "drain_delay": 0, "on_pinned": "cancel"}
    report, unused_changed, output = play.playbook("deployment_release", job, "deployment_release_report",
                                                   expect_rc=2)
    assert f"on_pinned=cancel: 1 pinned invocations did not end within 3s ({paused} paused). A cancel of a paused " \
           "or backing-off invocation stays pending until it resumes or retries. Their deployments were not " \
           "removed. Use on_pinned=kill, or resume them" in output, output[-4000:]
    assert old_id in lab.deployment_ids()
    lab.kill(paused)


def test_an_error_in_the_drain_wait_fails_the_release(lab, play):
    # The server answering 503 to every read of the older deployment during the wait (as while it restarts): the run
    # fails naming the error; it ended rc 0 with retired: [] and kept: [] while the wait's failures were ignored.
    old_id = lab.register(lab.version().url)
    held = lab.server.send("Tester/sleep", 7200)
    lab.server.wait_statuses([held], "suspended")
    lab.wait_pinned(held, old_id)
    proxy = FaultProxy(lab.server.admin_url)
    try:
        proxy.add("status503", count=100, match=f"GET /deployments/{old_id}")
        report, unused_changed, output = play.playbook(
            "deployment_release", {"uri": lab.version().url, "use_http_11": True, "drain_timeout": 60,
                                   "drain_delay": 0}, "deployment_release_report",
            env={"RESTATE_ADMIN_URL": proxy.url}, expect_rc=2)
    finally:
        proxy.close()
    assert report is None and "503" in output, output[-3000:]
    assert "Wait for each older deployment to drain" in output.split("fatal:")[0].split("TASK [")[-1]
    assert old_id in lab.deployment_ids()
    lab.kill(held)


def test_two_releases_at_once_never_remove_the_live_deployment(lab, play):
    # Not serialised (see docs/deployments-and-services.md): each run either completes or stops saying another
    # registration took its services; neither crashes, and the deployment the services run on at the end stays.
    versions = [lab.version(), lab.version()]
    outcomes = [None, None]

    def release(index):
        outcomes[index] = play.playbook(
            "deployment_release", {"uri": versions[index].url, "use_http_11": True, "drain_timeout": 5,
                                   "drain_delay": 0}, "deployment_release_report", expect_rc=(0, 2))

    runs = [threading.Thread(target=release, args=(index,)) for index in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    live = set(lab.latest().values())
    assert len(live) == 1 and live <= lab.deployment_ids()
    for report, unused_changed, output in outcomes:
        assert "NoneType" not in output, output[-3000:]
        if report is None:
            assert "another run or person registered a deployment meanwhile" in output, output[-3000:]
        else:
            assert not set(report["retired"]) & live and not set(report["older"]) & live, report


def test_release_refuses_without_endpoint(play):
    unused_report, unused_changed, output = play.playbook("deployment_release", {}, "deployment_release_report",
                                                          expect_rc=2)
    assert "Give exactly one of deployment_release_uri" in output


def test_cleanup_removes_drained_older_than_with_a_guard(lab, play):
    drained_id = lab.register(lab.version().url)
    latest_id = lab.register(lab.version().url)
    job = {"older_than": "0s"}

    report, changed, output = play.playbook("deployment_cleanup", dict(job, max_deployments=0),
                                            "deployment_cleanup_report", expect_rc=2)
    assert "nothing was removed" in output and drained_id in lab.deployment_ids()

    report, changed, output = play.playbook("deployment_cleanup", {"older_than": "1d"}, "deployment_cleanup_report")
    assert report["matched"] == 0 and report["removed"] == []  # registered just now: not a day old

    report, changed, output = play.playbook("deployment_cleanup", job, "deployment_cleanup_report", check=True)
    assert drained_id in lab.deployment_ids() and report["dry_run"] is True
    assert report["matched"] >= 1 and "Would remove" in output

    report, changed, output = play.playbook("deployment_cleanup", job, "deployment_cleanup_report")
    assert drained_id in report["removed"] and latest_id not in report["removed"], output[-3000:]
    assert drained_id not in lab.deployment_ids() and latest_id in lab.deployment_ids()

    report, changed, output = play.playbook("deployment_cleanup", job, "deployment_cleanup_report")
    assert report["matched"] == 0 and changed == 0


@pytest.mark.parametrize("extra, named", [
    ({"retire": "maybe"}, "deployment_release_retire"),
    ({"drain_timeout": "5m"}, "deployment_release_drain_timeout"),
    ({"use_http_11": "yes please"}, "deployment_release_use_http_11"),
    ({"drain_timeout": -5}, "deployment_release_drain_timeout and deployment_release_drain_delay are seconds, 0 or"),
    ({"drain_delay": -1}, "got 300 and -1"),
    ({"deployment_release_on_pined": "cancel"}, "Unknown variables deployment_release_on_pined (misspelled?)"),
    ({"service_settings": {"Tester": {"journal_retension": "3d"}}}, "unknown settings journal_retension"),
])
def test_a_typo_stops_the_release_before_anything_is_registered(lab, play, extra, named):
    # Passed as given, the role's argument spec refuses it (| bool or | int in the playbook would have made it false
    # or 0, and the release would have gone on).
    before = server_view(lab)
    report, unused_changed, output = play.playbook("deployment_release", dict({"uri": lab.version().url}, **extra),
                                                   "deployment_release_report", expect_rc=2)
    assert report is None and named in output, output[-2000:]
    assert server_view(lab) == before


@pytest.mark.parametrize("extra, named", [
    ({"max_deployments": -1}, "deployment_cleanup_max_deployments must be 0 or more, got -1"),
    ({"deployment_cleanup_max_deployment": 5}, "Unknown variables deployment_cleanup_max_deployment (misspelled?)"),
    ({"service": "Testr"}, "no deployment serves a service named 'Testr' (did you mean 'Tester'?)"),
])
def test_a_typo_stops_the_cleanup_before_anything_is_removed(lab, play, extra, named):
    lab.register(lab.version().url)
    lab.register(lab.version().url)  # the one before is drained: a cleanup would remove it
    before = lab.deployment_ids()
    report, unused_changed, output = play.playbook("deployment_cleanup", dict({"older_than": "0s"}, **extra),
                                                   "deployment_cleanup_report", expect_rc=2)
    assert report is None and named in output, output[-2000:]
    assert lab.deployment_ids() == before


def test_an_older_deployment_removed_by_someone_else_during_the_wait_is_reported_gone(lab, play):
    old_id = lab.register(lab.version().url)
    held = lab.server.send("Tester/sleep", 7200)
    lab.server.wait_statuses([held], "suspended")
    lab.wait_pinned(held, old_id)
    new = lab.version()

    def remove_during_the_wait():  # once the release registered its deployment, as another run or person would
        wait_until(lambda: new.url.rstrip("/") + "/" in {d.get("uri") for d in lab.deployments()}, timeout=120,
                   what="the release's registration")
        time.sleep(3)
        response = lab.server.http.delete(f"{lab.server.admin_url}/deployments/{old_id}", params={"force": "true"},
                                          timeout=30)
        assert response.status_code == 202, response.text

    remover = threading.Thread(target=remove_during_the_wait)
    remover.start()
    report, unused_changed, output = play.playbook(
        "deployment_release", {"uri": new.url, "use_http_11": True, "drain_timeout": 90, "drain_delay": 0},
        "deployment_release_report")
    remover.join()
    # (the drained deployments the earlier tests left are retired as well)
    assert report["gone"] == [old_id] and report["kept"] == [] and old_id not in report["retired"], output[-3000:]
    assert f"{old_id} was removed meanwhile by another run or person" in output
    assert "still pinned" not in output
    lab.kill(held)
