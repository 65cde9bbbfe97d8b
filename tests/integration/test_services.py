"""restate_service and restate_service_info against a real server: settings compared by value, check and diff mode,
bad input refused before any call, and settings reset by a new registration."""

from __future__ import annotations

import pytest

SERVICE = "restate.admin.restate_service"
INFO = "restate.admin.restate_service_info"


def test_settings_set_by_value_and_idempotent(lab, play):
    planned = play.run(SERVICE, {"name": "Tester", "journal_retention": "2d", "idempotency_retention": "PT36H"},
                       check=True, diff=True)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] is True and planned["changes"] == ["idempotency_retention", "journal_retention"]
    assert lab.services()["Tester"]["journal_retention"] == "1d"  # check mode changed nothing
    assert "journal_retention: 1d\n" in planned["diff"]["before"]
    assert "journal_retention: 2d\n" in planned["diff"]["after"]

    done = play.run(SERVICE, {"name": "Tester", "journal_retention": "2d", "idempotency_retention": "PT36H"},
                    diff=True)
    assert done["changed"] is True
    server = lab.services()["Tester"]
    assert (server["journal_retention"], server["idempotency_retention"]) == ("2d", "1d 12h")
    assert done["service"]["journal_retention"] == "2d" and done["service"]["idempotency_retention"] == "1d 12h"
    assert "idempotency_retention: 1d 12h\n" in done["diff"]["after"]

    # the same values in other words: the age vocabulary, the server's friendly form, ISO 8601
    for words in ({"journal_retention": "48h", "idempotency_retention": "1d12h"},
                  {"journal_retention": "2 days", "idempotency_retention": "1 day 12 hours"},
                  {"journal_retention": "P2D", "idempotency_retention": "P1DT12H"}):
        for check in (False, True):
            again = play.run(SERVICE, dict(words, name="Tester"), check=check, diff=True)
            assert not again["failed"], again["msg"]
            assert again["changed"] is False, (words, again)
            assert again["diff"]["before"] == again["diff"]["after"]


def test_public_and_timeouts(lab, play):
    private = play.run(SERVICE, {"name": "Holder", "public": False, "abort_timeout": "15 minutes"})
    assert private["changed"] is True
    assert lab.services()["Holder"]["public"] is False and lab.services()["Holder"]["abort_timeout"] == "15m"
    assert play.run(SERVICE, {"name": "Holder", "public": False, "abort_timeout": "PT15M"})["changed"] is False
    assert play.run(SERVICE, {"name": "Holder", "public": True})["changed"] is True
    assert lab.services()["Holder"]["public"] is True


def test_workflow_retention_only_for_workflows(lab, play):
    done = play.run(SERVICE, {"name": "Flow", "workflow_completion_retention": "P7D"})
    assert done["changed"] is True and lab.services()["Flow"]["workflow_completion_retention"] == "7d"
    assert play.run(SERVICE, {"name": "Flow", "workflow_completion_retention": "1w"})["changed"] is False

    def settings():  # handlers come in no fixed order
        return {key: value for key, value in lab.services()["Tester"].items() if key != "handlers"}

    before = settings()
    refused = play.run(SERVICE, {"name": "Tester", "workflow_completion_retention": "1d", "journal_retention": "5d"})
    assert refused["failed"]
    assert refused["msg"].startswith("workflow_completion_retention applies only to workflows"), refused["msg"]
    assert settings() == before  # nothing half done


def test_unknown_service_fails_naming_it(play):
    result = play.run(SERVICE, {"name": "NoSuchService", "journal_retention": "1d"})
    assert result["failed"] and "NoSuchService" in result["msg"] and result["msg"].startswith("name")


@pytest.mark.parametrize("value, words", [
    ("1y", "years or months"), ("P1M", "years or months"), ("abc", "not a duration"), ("3600", "no unit"),
    ("-1s", "negative"), ("1x", "unknown unit"),
    # the server refuses upper-case units (422); read as 5m, "5M" (months?) was 5 minutes of retention
    ("5M", "upper-case unit"), ("1D", "upper-case unit"), ("2W", "upper-case unit"), ("5 Hours", "upper-case unit"),
])
def test_bad_durations_refused_before_any_call(play, value, words):
    # admin_url points at a closed port: a request would fail with "Cannot reach"
    result = play.run(SERVICE, {"name": "Tester", "journal_retention": value, "admin_url": "http://127.0.0.1:9",
                                "retries": 0})
    assert result["failed"]
    assert result["msg"].startswith("journal_retention: ") and words in result["msg"], result["msg"]


def test_settings_dict_refuses_a_misspelled_key_before_any_call(lab, play):
    before = lab.services()["Tester"]["journal_retention"]
    result = play.run(SERVICE, {"name": "Tester", "settings": {"journal_retension": "3d"}})
    assert result["failed"], result
    assert result["msg"].startswith("settings: unknown key 'journal_retension' (did you mean 'journal_retention'?)")
    assert lab.services()["Tester"]["journal_retention"] == before
    done = play.run(SERVICE, {"name": "Tester", "settings": {"journal_retention": "4d"}})
    assert done["changed"] is True and lab.services()["Tester"]["journal_retention"] == "4d"
    assert play.run(SERVICE, {"name": "Tester", "settings": {"journal_retention": "96h"}})["changed"] is False


def test_service_info(lab, play):
    listed = play.run(INFO, {})
    assert not listed["failed"], listed["msg"]
    assert [s["name"] for s in listed["services"]] == ["Flow", "Holder", "Keeper", "Tester"] and listed["count"] == 4
    server = lab.services()
    for service in listed["services"]:
        for key in ("deployment_id", "revision", "public", "journal_retention", "idempotency_retention"):
            assert service[key] == server[service["name"]][key]
        assert "handlers" not in service
    one = play.run(INFO, {"name": "Flow"})
    assert one["count"] == 1 and one["services"][0]["ty"] == "Workflow"
    assert "workflow_completion_retention" in one["services"][0]
    assert play.run(INFO, {"name": "NoSuchService"})["count"] == 0


def test_a_new_registration_resets_the_settings(lab, play):
    assert play.run(SERVICE, {"name": "Tester", "journal_retention": "3d"})["changed"] is True
    lab.register(lab.version().url)
    assert lab.services()["Tester"]["journal_retention"] == "1d"  # what the endpoint declares
    assert play.run(SERVICE, {"name": "Tester", "journal_retention": "3d"})["changed"] is True
    assert lab.services()["Tester"]["journal_retention"] == "3d"


def test_an_inactivity_timeout_kept_but_not_applied_is_compared_with_what_was_configured(lab, play):
    # A request/response service shows inactivity_timeout 0s whatever is set; its info notice (RT0021) names the
    # configured value, so a second run with the same value changes nothing.
    first = play.run(SERVICE, {"name": "Holder", "inactivity_timeout": "5m"})
    assert first["changed"] is True and any("RT0021" in warning for warning in first.get("warnings", []))
    assert lab.services()["Holder"]["inactivity_timeout"] == "0s"
    for value in ("5m", "300s", "PT5M"):
        assert play.run(SERVICE, {"name": "Holder", "inactivity_timeout": value})["changed"] is False, value
    assert play.run(SERVICE, {"name": "Holder", "inactivity_timeout": "6m"})["changed"] is True
