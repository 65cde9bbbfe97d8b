"""restate_deployment and restate_deployment_info against a real server with the test service on several ports.

What the server does is in docs/deployments-and-services.md: an invocation is pinned once its deployment journaled
something beyond its input (Tester/sleep: yes; Tester/wait_awakeable, suspended at once: no).
"""

from __future__ import annotations

import time

import pytest

DEPLOYMENT = "restate.admin.restate_deployment"
INFO = "restate.admin.restate_deployment_info"
SERVICES = ["Flow", "Holder", "Keeper", "Tester"]


def register(play, url, check=False, diff=False, **args):
    return play.run(DEPLOYMENT, dict({"uri": url, "use_http_11": True}, **args), check=check, diff=diff)


def info(play, **args):
    result = play.run(INFO, args)
    assert not result["failed"], result["msg"]
    return result


def test_register_dry_run_then_for_real_then_idempotent(lab, play):
    version = lab.version()
    before_ids, before_latest = lab.deployment_ids(), lab.latest()

    planned = register(play, version.url, check=True, diff=True)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] is True
    assert planned["deployment"]["dry_run"] is True and planned["deployment"]["created"] is True
    assert [s["name"] for s in planned["deployment"]["services"]] == SERVICES
    assert lab.deployment_ids() == before_ids and lab.latest() == before_latest  # nothing registered
    assert planned["deployment"]["id"] not in before_ids
    assert all(before_latest[name] in planned["diff"]["before"] for name in SERVICES)

    done = register(play, version.url, diff=True)
    assert not done["failed"], done["msg"]
    assert done["changed"] is True and done["deployment"]["created"] is True
    new_id = done["deployment"]["id"]
    assert lab.latest() == {name: new_id for name in SERVICES}
    assert {name: where["deployment_id"] for name, where in done["runs_on"].items()} == lab.latest()
    assert done["latest"] is True
    assert new_id in done["diff"]["after"] and new_id not in done["diff"]["before"]

    for check in (False, True):  # a second run, for real and in check mode, changes nothing
        again = register(play, version.url + "/", check=check, diff=True)
        assert not again["failed"], again["msg"]
        assert again["changed"] is False and again["deployment"]["id"] == new_id
        assert again["diff"]["before"] == again["diff"]["after"]
        assert not again.get("warnings")
    assert lab.latest() == {name: new_id for name in SERVICES}


def test_known_endpoint_not_latest_warns_and_force_rolls_back(lab, play):
    old, new = lab.version(), lab.version()
    old_id = lab.register(old.url)
    new_id = lab.register(new.url)
    revisions = {name: s["revision"] for name, s in lab.services().items()}

    again = register(play, old.url)
    assert not again["failed"], again["msg"]
    assert again["changed"] is False and again["latest"] is False
    assert again["deployment"]["id"] == old_id
    assert any("not the latest" in w and "force: true" in w for w in again["warnings"]), again
    assert lab.latest() == {name: new_id for name in SERVICES}

    planned = register(play, old.url, force=True, check=True)
    assert planned["changed"] is True and planned["deployment"]["id"] == old_id
    assert lab.latest() == {name: new_id for name in SERVICES}

    rolled = register(play, old.url, force=True)
    assert rolled["changed"] is True and rolled["latest"] is True
    assert lab.latest() == {name: old_id for name in SERVICES}
    assert all(lab.services()[name]["revision"] == revisions[name] + 1 for name in SERVICES)

    steady = register(play, old.url, force=True)  # latest and unchanged: force changes nothing more
    assert steady["changed"] is False, steady
    assert all(lab.services()[name]["revision"] == revisions[name] + 1 for name in SERVICES)


def test_the_https_form_of_a_registered_http_endpoint_is_reported_unchanged(lab, play):
    version = lab.version()
    known_id = lab.register(version.url)
    before = {name: s["revision"] for name, s in lab.services().items()}
    for check in (True, False):
        again = register(play, version.url.replace("http://", "https://"), check=check)
        assert not again["failed"], again["msg"]
        assert again["changed"] is False and again["deployment"]["id"] == known_id, again
        assert again["deployment"]["uri"].startswith("http://") and again["latest"] is True
        assert any("the server took it as that one and changed nothing" in w for w in again["warnings"]), again
    assert {name: s["revision"] for name, s in lab.services().items()} == before


def test_headers_of_a_registered_endpoint_rotated_in_place(lab, play):
    version = lab.version()
    known_id = register(play, version.url, additional_headers={"x-token": "token-one-9f3a", "x-keep": "kept-value-77c1"})["deployment"]["id"]
    revisions = {name: s["revision"] for name, s in lab.services().items()}

    def headers():
        response = lab.server.http.get(f"{lab.server.admin_url}/deployments/{known_id}", timeout=30)
        assert response.status_code == 200, (known_id, response.status_code, response.text)
        return response.json().get("additional_headers")

    rotated = {"x-token": "token-two-5b2e", "x-keep": "kept-value-77c1"}
    planned = register(play, version.url, check=True, diff=True, additional_headers=rotated)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] is True and headers() == {"x-token": "token-one-9f3a", "x-keep": "kept-value-77c1"}
    assert "header x-token: (hidden, new value)\n" in planned["diff"]["after"]
    assert "header x-keep: (hidden)\n" in planned["diff"]["after"]
    assert "token-one" not in str(planned) and "token-two" not in str(planned["diff"])

    done = register(play, version.url, diff=True, additional_headers=rotated)
    assert not done["failed"], done["msg"]
    assert done["changed"] is True and done["deployment"]["id"] == known_id and headers() == rotated
    assert "token-two" not in str(done)
    for check in (True, False):
        again = register(play, version.url, check=check, additional_headers=rotated)
        assert again["changed"] is False, again
    assert {name: s["revision"] for name, s in lab.services().items()} == revisions  # no new revisions

    noted = register(play, version.url, additional_headers=rotated, metadata={"release": "9"})
    assert noted["changed"] is False
    assert any("does not update them" in w and "metadata" in w for w in noted["warnings"]), noted


def test_an_attempt_running_unpinned_keeps_the_deployment_from_draining(lab, play):
    # A handler busy before its first journal entry is not pinned yet; removing its deployment would strand it.
    old_id = lab.register(lab.version().url)
    busy = lab.server.send("Tester/idle_first", 600)
    lab.server.wait_statuses([busy], "running")
    lab.register(lab.version().url)
    assert lab.pinned(busy) is None
    listed = info(play, id=old_id)["deployments"][0]
    assert listed["status"] == "draining" and listed["pinned"] == {"running (attempt not pinned yet)": 1}, listed
    refused = play.run(DEPLOYMENT, {"id": old_id, "state": "absent"})
    assert refused["failed"] and refused["blocked_by"] == ["pinned"] and old_id in lab.deployment_ids()
    lab.kill(busy)
    lab.server.wait_statuses([busy], "completed")

    started = time.monotonic()
    removed = play.run(DEPLOYMENT, {"id": old_id, "state": "absent", "drain_delay": 3})
    assert not removed["failed"], removed["msg"]
    assert removed["removed"] is True and removed["waited"] >= 3 and time.monotonic() - started >= 3
    assert old_id not in lab.deployment_ids()


def test_removal_refused_while_pinned_allowed_once_they_end(lab, play):
    old = lab.version()
    old_id = lab.register(old.url)
    pinned = lab.server.send("Tester/sleep", 7200)
    unpinned = lab.server.send("Tester/wait_awakeable", "x")
    lab.server.wait_statuses([pinned, unpinned], "suspended")
    lab.wait_pinned(pinned, old_id)
    assert lab.pinned(unpinned) is None  # suspended at once, nothing journaled beyond its input
    new_id = lab.register(lab.version().url)

    listed = info(play, id=old_id)
    assert listed["count"] == 1
    assert listed["deployments"][0]["status"] == "draining"
    assert listed["deployments"][0]["pinned"] == {"suspended": 1}  # the unpinned one is not counted
    assert info(play, id=new_id)["deployments"][0]["status"] == "active"
    assert info(play, uri=old.url)["deployments"][0]["id"] == old_id
    assert old_id in [d["id"] for d in info(play, status=["draining"])["deployments"]]

    for check in (False, True):
        refused = play.run(DEPLOYMENT, {"uri": old.url, "state": "absent"}, check=check)
        assert refused["failed"] and refused["changed"] is False
        assert old_id in refused["msg"] and "suspended: 1" in refused["msg"], refused["msg"]
        assert refused["deployment"]["pinned"] == {"suspended": 1}
        assert old_id in lab.deployment_ids()

    lab.kill(pinned)
    lab.server.wait_statuses([pinned], "completed")
    assert info(play, id=old_id)["deployments"][0]["status"] == "drained"

    planned = play.run(DEPLOYMENT, {"uri": old.url, "state": "absent"}, check=True, diff=True)
    assert planned["changed"] is True and planned["removed"] is False
    assert old_id in planned["diff"]["before"] and planned["diff"]["after"] == ""
    assert old_id in lab.deployment_ids()

    removed = play.run(DEPLOYMENT, {"id": old_id, "state": "absent"})
    assert not removed["failed"], removed["msg"]
    assert removed["changed"] is True and removed["removed"] is True
    assert old_id not in lab.deployment_ids()
    for check in (False, True):
        again = play.run(DEPLOYMENT, {"id": old_id, "state": "absent"}, check=check)
        assert not again["failed"] and again["changed"] is False and again["deployment"] is None
    assert lab.server.statuses([unpinned])[unpinned] == "suspended"  # it was never in the way
    lab.kill(unpinned)


def test_latest_deployment_refused_naming_its_services(lab, play):
    latest_id = lab.latest()["Tester"]
    refused = play.run(DEPLOYMENT, {"id": latest_id, "state": "absent"})
    assert refused["failed"]
    assert "latest deployment of Flow, Holder, Keeper, Tester" in refused["msg"], refused["msg"]
    assert latest_id in lab.deployment_ids()


def test_wait_waits_for_the_drain(lab, play):
    old = lab.version()
    old_id = lab.register(old.url)
    short = lab.server.send("Tester/sleep", 8)
    lab.server.wait_statuses([short], "suspended")
    lab.wait_pinned(short, old_id)
    lab.register(lab.version().url)

    started = time.monotonic()
    removed = play.run(DEPLOYMENT, {"id": old_id, "state": "absent", "wait": True, "wait_timeout": 120})
    assert not removed["failed"], removed["msg"]
    assert removed["changed"] is True and removed["removed"] is True
    assert removed["waited"] > 0 and time.monotonic() - started >= removed["waited"]
    assert lab.server.statuses([short])[short] == "completed-success"
    assert old_id not in lab.deployment_ids()


def test_wait_times_out_and_removes_nothing_then_force_removes(lab, play):
    old = lab.version()
    old_id = lab.register(old.url)
    held = lab.server.send("Tester/sleep", 7200)
    lab.server.wait_statuses([held], "suspended")
    lab.wait_pinned(held, old_id)
    lab.register(lab.version().url)

    planned = play.run(DEPLOYMENT, {"id": old_id, "state": "absent", "wait": True, "wait_timeout": 3}, check=True)
    assert not planned["failed"] and planned["changed"] is True and planned["removed"] is False
    assert any("would wait up to 3s" in w and "suspended: 1" in w for w in planned["warnings"]), planned

    timed_out = play.run(DEPLOYMENT, {"id": old_id, "state": "absent", "wait": True, "wait_timeout": 3})
    assert timed_out["failed"] and timed_out["changed"] is False
    assert "after waiting" in timed_out["msg"] and "suspended: 1" in timed_out["msg"], timed_out["msg"]
    assert timed_out["waited"] >= 3
    assert old_id in lab.deployment_ids()

    forced = play.run(DEPLOYMENT, {"id": old_id, "state": "absent", "force": True})
    assert not forced["failed"], forced["msg"]
    assert forced["changed"] is True and forced["removed"] is True
    assert forced["deployment"]["status"] == "draining"
    assert old_id not in lab.deployment_ids()
    assert lab.pinned(held) == old_id  # the server keeps it pinned to the removed id
    lab.kill(held)


def test_breaking_change_refused_unless_allowed(lab, play):
    changed = lab.version(changed=True)  # Tester becomes a virtual object
    before_ids, before_latest = lab.deployment_ids(), lab.latest()
    for check in (True, False):
        refused = register(play, changed.url, check=check)
        assert refused["failed"] and "META0006" in refused["msg"], refused["msg"]
        assert "breaking: true" in refused["msg"]
    allowed = register(play, changed.url, breaking=True, check=True)  # the server's dry run: nothing registered
    assert not allowed["failed"], allowed["msg"]
    assert allowed["changed"] is True and [s["name"] for s in allowed["deployment"]["services"]] == ["Tester"]
    assert lab.deployment_ids() == before_ids and lab.latest() == before_latest


@pytest.mark.parametrize("args, option", [
    ({"uri": "ftp://example.com"}, "uri"),
    ({"arn": "checkout"}, "arn"),
    ({"id": "dp_11y34lPUiDu9cYkItxmdc2Z"}, "id"),
    ({"id": "nonsense", "state": "absent"}, "id"),
    ({"uri": "http://127.0.0.1:9", "wait": True}, "wait"),
    ({"id": "dp_11y34lPUiDu9cYkItxmdc2Z", "state": "absent", "breaking": True}, "breaking"),
    ({"uri": "http://127.0.0.1:9", "wait_timeout": -1}, "wait_timeout"),
])
def test_bad_input_refused_before_any_call(play, args, option):
    # admin_url points at a closed port: a request would fail with "Cannot reach", not with the option's name
    result = play.run(DEPLOYMENT, dict(args, admin_url="http://127.0.0.1:9", retries=0))
    assert result["failed"]
    assert result["msg"].startswith(option), result["msg"]
    assert "Cannot reach" not in result["msg"]
