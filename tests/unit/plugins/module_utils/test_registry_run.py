"""restate_deployment(_info) and restate_service(_info)'s run() against fake deployment and service routes
(fake_registry.py): registration, rollback, header rotation, removal when drained, settings by value, with check mode,
diff and a second run for each. The integration tests run the same paths against a real server."""

from __future__ import annotations

import pytest
from fake_admin import FakeAdmin
from fake_registry import FakeClient, FakeRegistry
from fake_task import FakeTask, run_task

from ansible_collections.restate.admin.plugins.module_utils import (
    _deployment_info_task,
    _deployment_task,
    _service_info_task,
    _service_task,
)

V1, V2, V3 = "http://checkout-v1:9080", "http://checkout-v2:9080", "http://checkout-v3:9080"
CHECKOUT_ONLY = "http://checkout-alone:9080"


@pytest.fixture
def registry():
    fake = FakeRegistry()
    same = {"Checkout": "Service", "Cart": "VirtualObject"}
    fake.endpoints = {V1: dict(same), V2: dict(same), V3: {"Checkout": "VirtualObject"},
                      CHECKOUT_ONLY: {"Checkout": "Service"}}
    return fake


@pytest.fixture
def admin():
    return FakeAdmin()


def run(code, registry, admin, **options):
    task = FakeTask(code, FakeClient(registry, admin), **options)
    result = run_task(task)
    result["warnings"] = task._warnings
    return result


def deploy(registry, admin, uri, **options):
    return run(_deployment_task, registry, admin, uri=uri, **options)


def runs_on(registry) -> dict:
    return {name: (s["deployment_id"], s["revision"]) for name, s in registry.services.items()}


# -- restate_deployment: present ------------------------------------------------------------------------------

def test_check_mode_registers_nothing_and_predicts_the_registration(registry, admin):
    result = deploy(registry, admin, V1, check_mode=True, diff=True)
    assert result["changed"] and result["deployment"]["created"] and result["deployment"]["dry_run"]
    assert registry.deployments == {} and registry.writes() == []
    assert "Checkout: None revision None" in result["diff"]["before"]
    assert f"Checkout: {result['deployment']['id']} revision 1" in result["diff"]["after"]


def test_a_new_endpoint_is_registered_once_and_a_second_run_changes_nothing(registry, admin):
    first = deploy(registry, admin, V1, diff=True)
    assert first["changed"] and first["deployment"]["created"] and first["latest"]
    new_id = first["deployment"]["id"]
    assert runs_on(registry) == {"Cart": (new_id, 1), "Checkout": (new_id, 1)}
    writes = len(registry.writes())
    again = deploy(registry, admin, V1 + "/", diff=True)  # the server stores it with a trailing '/'
    assert not again["changed"] and not again["deployment"]["created"]
    assert len(registry.writes()) == writes and runs_on(registry) == {"Cart": (new_id, 1), "Checkout": (new_id, 1)}
    assert again["diff"]["before"] == again["diff"]["after"]


def test_a_release_names_the_deployment_it_replaces_and_its_pins(registry, admin):
    old = deploy(registry, admin, V1)["deployment"]["id"]
    admin.add("suspended", 2, pinned_deployment_id=old)
    admin.add("completed", 3, pinned_deployment_id=old)
    result = deploy(registry, admin, V2)
    assert result["latest"] and [d["id"] for d in result["replaces"]] == [old]
    assert result["replaces"][0]["status"] == "draining" and result["replaces"][0]["pinned"] == {"suspended": 2}


def test_a_deployment_still_the_latest_of_another_service_is_never_replaced(registry, admin):
    both = deploy(registry, admin, V1)["deployment"]["id"]
    result = deploy(registry, admin, CHECKOUT_ONLY)
    assert result["latest"] and result["replaces"] == [] and registry.services["Cart"]["deployment_id"] == both


def test_a_rolled_back_endpoint_is_kept_without_force_and_made_the_latest_with_force(registry, admin):
    v1 = deploy(registry, admin, V1)["deployment"]["id"]
    v2 = deploy(registry, admin, V2)["deployment"]["id"]
    kept = deploy(registry, admin, V1)
    assert not kept["changed"] and not kept["latest"] and kept["replaces"] == []
    assert kept["behind"] == {"Cart": v2, "Checkout": v2}
    assert any("force: true" in warning for warning in kept["warnings"])
    assert runs_on(registry) == {"Cart": (v2, 2), "Checkout": (v2, 2)}
    rolled_back = deploy(registry, admin, V1, force=True)
    assert rolled_back["changed"] and rolled_back["latest"] and runs_on(registry) == {"Cart": (v1, 3),
                                                                                      "Checkout": (v1, 3)}
    # The release's endpoint v2 is now the latest of nothing: replaced by the rollback, never the other way round.
    assert [d["id"] for d in rolled_back["replaces"]] == [v2]
    again = deploy(registry, admin, V2)
    assert not again["changed"] and not again["latest"] and again["replaces"] == []


def test_an_incompatible_endpoint_is_refused_naming_breaking_and_nothing_is_registered(registry, admin):
    deploy(registry, admin, V1)
    before = dict(registry.deployments)
    result = deploy(registry, admin, V3)
    assert result["failed"] and "[META0006]" in result["msg"] and "breaking: true" in result["msg"]
    assert registry.deployments == before
    allowed = deploy(registry, admin, V3, breaking=True)
    assert allowed["changed"] and registry.services["Checkout"]["ty"] == "VirtualObject"


def test_headers_are_rotated_in_place_without_new_revisions_and_their_values_never_shown(registry, admin):
    first = deploy(registry, admin, V1, additional_headers={"Authorization": "Bearer old-secret"})
    revisions = runs_on(registry)
    check = deploy(registry, admin, V1, additional_headers={"Authorization": "Bearer new-secret"}, check_mode=True,
                   diff=True)
    assert check["changed"] and registry.deployments[first["deployment"]["id"]]["additional_headers"] == {
        "Authorization": "Bearer old-secret"}
    rotated = deploy(registry, admin, V1, additional_headers={"Authorization": "Bearer new-secret"}, diff=True)
    assert rotated["changed"] and runs_on(registry) == revisions
    assert registry.deployments[first["deployment"]["id"]]["additional_headers"] == {
        "Authorization": "Bearer new-secret"}
    assert "header Authorization: (hidden, new value)" in rotated["diff"]["after"]
    # (the options echoed under 'invocation' are masked by the action plugin: test_deployment_secrets.py)
    assert all("secret" not in repr({k: v for k, v in r.items() if k != "invocation"}) for r in (rotated, check))
    assert not deploy(registry, admin, V1, additional_headers={"Authorization": "Bearer new-secret"})["changed"]


def test_metadata_the_server_does_not_update_is_warned_of_and_not_reported_changed(registry, admin):
    deploy(registry, admin, V1, metadata={"team": "a"})
    result = deploy(registry, admin, V1, metadata={"team": "b"})
    assert not result["changed"] and any("metadata" in warning for warning in result["warnings"])


def test_an_unreachable_endpoint_fails_naming_it(registry, admin):
    result = deploy(registry, admin, "http://nowhere:9080")
    assert result["failed"] and "nowhere:9080" in result["msg"] and registry.deployments == {}


# -- restate_deployment: absent -------------------------------------------------------------------------------

def test_a_drained_deployment_is_removed_once_with_check_mode_and_diff(registry, admin):
    old = deploy(registry, admin, V1)["deployment"]["id"]
    deploy(registry, admin, V2)
    check = run(_deployment_task, registry, admin, id=old, state="absent", check_mode=True, diff=True)
    assert check["changed"] and not check["removed"] and old in registry.deployments
    assert check["diff"] == {"before": f"{old}: drained\n", "after": "", "before_header": f"deployment {old}",
                             "after_header": f"deployment {old}"}
    removed = run(_deployment_task, registry, admin, id=old, state="absent")
    assert removed["changed"] and removed["removed"] and old not in registry.deployments
    again = run(_deployment_task, registry, admin, id=old, state="absent")
    assert not again["changed"] and again["gone"]


def test_a_deployment_with_pins_or_still_the_latest_is_refused_naming_why(registry, admin):
    old = deploy(registry, admin, V1)["deployment"]["id"]
    live = deploy(registry, admin, V2)["deployment"]["id"]
    admin.add("suspended", 1, pinned_deployment_id=old)
    admin.add("running", 1, last_attempt_deployment_id=old)  # running before its first journal entry: not pinned
    pinned = run(_deployment_task, registry, admin, id=old, state="absent")
    assert pinned["failed"] and pinned["blocked_by"] == ["pinned"] and "2 invocations not completed" in pinned["msg"]
    latest = run(_deployment_task, registry, admin, uri=V2, state="absent")
    assert latest["failed"] and latest["blocked_by"] == ["latest"] and "latest deployment of Cart, Checkout" in \
        latest["msg"]
    assert {old, live} <= set(registry.deployments) and registry.writes() == [("POST", "/deployments")] * 2
    forced = run(_deployment_task, registry, admin, id=old, state="absent", force=True)
    assert forced["removed"] and old not in registry.deployments


def test_a_deployment_waited_for_is_removed_once_drained(registry, admin):
    old = deploy(registry, admin, V1)["deployment"]["id"]
    deploy(registry, admin, V2)
    (pinned,) = admin.add("suspended", 1, pinned_deployment_id=old)
    original = registry.request

    def completes_at_the_second_look(method, path, *args, **kwargs):
        if method == "GET" and path == f"/deployments/{old}":
            admin.set(pinned, status="completed")
        return original(method, path, *args, **kwargs)

    registry.request = completes_at_the_second_look
    result = run(_deployment_task, registry, admin, id=old, state="absent", wait=True, wait_timeout=5)
    assert result["removed"] and old not in registry.deployments


def test_options_of_the_other_state_are_refused_before_any_call(registry, admin):
    result = run(_deployment_task, registry, admin, uri=V1, wait=True)
    assert result["failed"] and "wait applies only to state=absent" in result["msg"] and registry.calls == []


# -- restate_deployment_info ----------------------------------------------------------------------------------

def test_deployment_info_judges_every_deployment(registry, admin):
    old = deploy(registry, admin, V1)["deployment"]["id"]
    gone_by = deploy(registry, admin, V2)["deployment"]["id"]
    admin.add("backing-off", 1, pinned_deployment_id=old)
    result = run(_deployment_info_task, registry, admin)
    assert [(d["id"], d["status"]) for d in result["deployments"]] == [(old, "draining"), (gone_by, "active")]
    assert result["summary"] == {"draining": 1, "active": 1} and not result["changed"]
    assert run(_deployment_info_task, registry, admin, status=["drained"])["count"] == 0
    typo = run(_deployment_info_task, registry, admin, service="Chekout")
    assert typo["failed"] and "did you mean 'Checkout'?" in typo["msg"]


# -- restate_service(_info) -----------------------------------------------------------------------------------

def test_settings_are_patched_by_value_once_with_check_mode_and_diff(registry, admin):
    deploy(registry, admin, V1)
    check = run(_service_task, registry, admin, name="Checkout", journal_retention="2d", check_mode=True, diff=True)
    assert check["changed"] and check["changes"] == ["journal_retention"]
    assert registry.services["Checkout"]["journal_retention"] == "1d" and ("PATCH", "/services/Checkout") not in \
        registry.writes()
    assert "journal_retention: 1d" in check["diff"]["before"] and "journal_retention: 2d" in check["diff"]["after"]
    done = run(_service_task, registry, admin, name="Checkout", journal_retention="2d")
    assert done["changed"] and registry.services["Checkout"]["journal_retention"] == "2d"
    same_value = run(_service_task, registry, admin, name="Checkout", journal_retention="48h")
    assert not same_value["changed"] and registry.writes().count(("PATCH", "/services/Checkout")) == 1


def test_check_mode_compares_with_what_a_registration_earlier_in_the_run_would_leave(registry, admin):
    deploy(registry, admin, V1)
    run(_service_task, registry, admin, name="Checkout", journal_retention="2d")
    base = {"journal_retention": "1d"}  # restate_deployment's service_settings of a check run
    result = run(_service_task, registry, admin, name="Checkout", journal_retention="2d", check_mode=True,
                 check_mode_base=base)
    assert result["changed"] and result["changes"] == ["journal_retention"]


def test_bad_service_input_names_the_option_and_the_fix(registry, admin):
    deploy(registry, admin, V1)
    unknown = run(_service_task, registry, admin, name="Chekout", public=False)
    assert unknown["failed"] and "no service 'Chekout'" in unknown["msg"] and "restate_deployment" in unknown["msg"]
    workflow_only = run(_service_task, registry, admin, name="Checkout", workflow_completion_retention="1d")
    assert workflow_only["failed"] and "applies only to workflows" in workflow_only["msg"]
    typo = run(_service_task, registry, admin, name="Checkout", settings={"journal_retension": "2d"})
    assert typo["failed"] and "did you mean 'journal_retention'?" in typo["msg"]
    assert ("PATCH", "/services/Checkout") not in registry.writes()


def test_service_info_lists_every_service_or_the_one_named(registry, admin):
    deploy(registry, admin, V1)
    listed = run(_service_info_task, registry, admin)
    assert [s["name"] for s in listed["services"]] == ["Cart", "Checkout"] and listed["count"] == 2
    assert all("handlers" not in s for s in listed["services"])
    one = run(_service_info_task, registry, admin, name="Cart")
    assert one["services"][0]["ty"] == "VirtualObject"
    assert run(_service_info_task, registry, admin, name="Nope")["count"] == 0
