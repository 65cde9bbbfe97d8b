"""The deployment_release playbook end to end against a real server: --check changes nothing, a release keeps a
pinned older deployment and reports it, a second release changes nothing, on_pinned=kill retires it."""

from __future__ import annotations

import pytest


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
    job = {"uri": new.url, "use_http_11": True, "drain_timeout": 3,
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
])
def test_a_typo_stops_the_release_before_anything_is_registered(lab, play, extra, named):
    # Passed as given, the role's argument spec refuses it (| bool or | int in the playbook would have made it false
    # or 0, and the release would have gone on).
    before = server_view(lab)
    report, unused_changed, output = play.playbook("deployment_release", dict({"uri": lab.version().url}, **extra),
                                                   "deployment_release_report", expect_rc=2)
    assert report is None and named in output, output[-2000:]
    assert server_view(lab) == before
