"""Durations of service settings: every accepted form, compared by value; what the server refuses, refused first."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils._durations import (
    parse_duration,
    same_duration,
    to_server,
)
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._services_api import setting_changes, wanted_settings

DAY = 86400000


@pytest.mark.parametrize("text, ms", [
    ("90s", 90000), ("12h", 12 * 3600000), ("7d", 7 * DAY), ("2w", 14 * DAY), ("1d12h", DAY + 12 * 3600000),
    ("PT3H", 3 * 3600000), ("P1D", DAY), ("P1W", 7 * DAY), ("P1DT12H", DAY + 12 * 3600000), ("PT1.5S", 1500),
    ("pt90m", 90 * 60000),
    ("5 hours", 5 * 3600000), ("1d 2h", DAY + 2 * 3600000), ("1 day", DAY), ("1 d", DAY), ("500ms", 500),
    ("1h 30m", 90 * 60000), ("1.5h", 90 * 60000), ("2 days 3 hours", 2 * DAY + 3 * 3600000),
    ("1 hour 30 minutes", 90 * 60000), ("1m 30s", 90000), ("0s", 0), ("1 week", 7 * DAY), ("1s 500ms", 1500),
])
def test_forms(text, ms):
    assert parse_duration(text, "journal_retention") == ms


def test_equal_by_value():
    for text in ("1d", "24h", "P1D", "1 day", "PT24H", "1440m", "86400s"):
        assert same_duration("1d", text), text
    assert not same_duration("1d", "25h")
    assert not same_duration("1d", "not a duration")


@pytest.mark.parametrize("ms, text", [(0, "0s"), (90000, "1m 30s"), (DAY + 12 * 3600000, "1d 12h"),
                                      (7 * DAY, "7d"), (1500, "1s 500ms"), (500, "500ms")])
def test_server_form(ms, text):
    # the forms a 1.7.12 server answered (docs/deployments-and-services.md), and they read back to the same value
    assert to_server(ms) == text
    assert parse_duration(text, "x") == ms


@pytest.mark.parametrize("text, words", [
    ("1y", "years or months"), ("P1M", "years or months"), ("P1Y", "years or months"), ("2 months", "years or months"),
    ("abc", "not a duration"), ("3600", "no unit"), ("-1s", "negative"), ("", "empty"), ("1x", "unknown unit"),
    ("P", "ISO 8601"), ("PT", "ISO 8601"), ("P1DT", "ISO 8601"), ("0.0001s", "millisecond"),
    ("100000d", "too long"),
])
def test_refused_naming_the_option(text, words):
    with pytest.raises(InputError) as error:
        parse_duration(text, "idempotency_retention")
    assert str(error.value).startswith("idempotency_retention: ")
    assert words in str(error.value)


def test_setting_changes_by_value():
    service = {"name": "Tester", "ty": "Service", "public": True, "journal_retention": "1d",
               "idempotency_retention": "1d 12h", "abort_timeout": "10m"}
    wanted = wanted_settings({"public": True, "journal_retention": "24h", "idempotency_retention": "PT36H",
                              "abort_timeout": "15 minutes", "inactivity_timeout": None})
    assert setting_changes(service, wanted) == {"abort_timeout": "15m"}


def test_workflow_only_setting_refused_for_a_service():
    with pytest.raises(InputError, match="^workflow_completion_retention applies only to workflows"):
        setting_changes({"name": "Tester", "ty": "Service"}, wanted_settings({"workflow_completion_retention": "1d"}))
    assert setting_changes({"name": "Flow", "ty": "Workflow", "workflow_completion_retention": "1d"},
                           wanted_settings({"workflow_completion_retention": "2d"})) == {
        "workflow_completion_retention": "2d"}


def test_a_setting_kept_but_not_applied_is_compared_with_its_configured_value():
    from ansible_collections.restate.admin.plugins.module_utils._services_api import setting_changes, wanted_settings

    notice = {"code": "RT0021", "message": "The configured inactivity_timeout 5m will not be applied because the "
                                           "service is exposed in Request/Response mode."}
    service = {"name": "Holder", "ty": "VirtualObject", "inactivity_timeout": "0s", "info": [notice]}
    assert setting_changes(service, wanted_settings({"inactivity_timeout": "300s"})) == {}
    assert setting_changes(service, wanted_settings({"inactivity_timeout": "6m"})) == {"inactivity_timeout": "6m"}
    assert setting_changes(dict(service, info=[]), wanted_settings({"inactivity_timeout": "5m"})) == {
        "inactivity_timeout": "5m"}


@pytest.mark.parametrize("text", ["5M", "1D", "2W", "5 Hours", "5H", "1 DAY"])
def test_upper_case_units_refused_as_the_server_refuses_them(text):
    # a 1.7.12 server answers 422 to each of these; read as 5m, "5M" (5 months?) became 5 minutes of retention
    with pytest.raises(InputError) as error:
        parse_duration(text, "journal_retention")
    assert str(error.value).startswith("journal_retention: ") and "upper-case unit" in str(error.value)


@pytest.mark.parametrize("text, ms", [("5m", 300000), ("p1d", 86400000), ("PT5m", 300000), ("P1D", 86400000)])
def test_lower_case_units_and_iso_in_either_case_taken(text, ms):
    assert parse_duration(text, "x") == ms


def test_settings_dict_refuses_unknown_keys():
    with pytest.raises(InputError) as error:
        wanted_settings({"settings": {"journal_retension": "3d"}})
    assert str(error.value).startswith("settings: unknown key 'journal_retension' (did you mean 'journal_retention'?)")
    with pytest.raises(InputError, match="^settings: public must be true or false"):
        wanted_settings({"settings": {"public": "nope"}})
    assert wanted_settings({"settings": {"journal_retention": "3d", "public": False}}) == {
        "journal_retention": 3 * 86400000, "public": False}
