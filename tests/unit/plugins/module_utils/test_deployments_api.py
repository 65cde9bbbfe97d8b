"""Judging a deployment's drain, finding it by endpoint, and the restate_deployment option checks."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils._deployment_task import SPEC, blocked_by, check_options
from ansible_collections.restate.admin.plugins.module_utils._deployments_api import (
    RUNNING_UNPINNED,
    DeploymentsApi,
    behind,
    find_deployment,
    judge,
    latest_of,
    replaced,
)
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

OLD = {"id": "dp_11y34lPUiDu9cYkItxmdc2Z", "uri": "http://127.0.0.1:9080/", "services": [{"name": "Tester"}]}
NEW = {"id": "dp_13Y3cpJNa6AEVXDV5aRcNbz", "uri": "http://127.0.0.1:9081/", "services": [{"name": "Tester"}]}


def test_status():
    latest = latest_of([{"name": "Tester", "deployment_id": NEW["id"]}])
    assert judge(NEW, latest, {})["status"] == "active"
    assert judge(NEW, latest, {})["latest_of"] == ["Tester"]
    draining = judge(OLD, latest, {OLD["id"]: {"suspended": 2, "running": 1}})
    assert draining == {"status": "draining", "latest_of": [], "pinned": {"running": 1, "suspended": 2},
                        "pinned_total": 3}
    assert judge(OLD, latest, {OLD["id"]: {}})["status"] == "drained"


def test_find_by_uri_with_or_without_slash():
    assert find_deployment([OLD, NEW], uri="http://127.0.0.1:9081") is NEW
    assert find_deployment([OLD, NEW], uri="http://127.0.0.1:9080/") is OLD
    assert find_deployment([OLD, NEW], deployment_id=NEW["id"]) is NEW
    assert find_deployment([OLD, NEW], uri="http://127.0.0.1:9082") is None


def params(**given):
    values = {name: spec.get("default") for name, spec in SPEC["argument_spec"].items()}
    values.update(given)
    return values


@pytest.mark.parametrize("given, option", [
    ({"uri": "ftp://x"}, "uri"),
    ({"uri": "checkout:9080"}, "uri"),
    ({"arn": "lambda-checkout"}, "arn"),
    ({"id": "dp_11y34lPUiDu9cYkItxmdc2Z"}, "id"),
    ({"uri": "http://x:9080", "wait": True}, "wait"),
    ({"id": "nonsense", "state": "absent"}, "id"),
    ({"id": "dp_11y34lPUiDu9cYkItxmdc2Z", "state": "absent", "breaking": True}, "breaking"),
    ({"uri": "http://x:9080", "assume_role_arn": "arn:aws:iam::1:role/r"}, "assume_role_arn"),
    ({"uri": "http://x:9080", "wait_timeout": -1}, "wait_timeout"),
])
def test_bad_options_named(given, option):
    with pytest.raises(InputError) as error:
        check_options(params(**given))
    assert str(error.value).startswith(option)


def test_good_options():
    check_options(params(uri="http://x:9080", use_http_11=True, breaking=True))
    check_options(params(arn="arn:aws:lambda:eu-central-1:1:function:f:1", assume_role_arn="arn:aws:iam::1:role/r"))
    check_options(params(id="dp_11y34lPUiDu9cYkItxmdc2Z", state="absent", wait=True, force=True))


def test_created_before_names_the_option():
    from ansible_collections.restate.admin.plugins.module_utils._deployment_info_task import _created_before

    assert _created_before("2026-01-31T12:00:00Z") == "2026-01-31T12:00:00"
    assert _created_before(None) is None
    assert len(_created_before("7d")) == 19
    with pytest.raises(InputError, match="^created_before: 'soon'"):
        _created_before("soon")


ROLLED_BACK = {"id": "dp_14kKZRSv3ZaBbgGXytVk2xX", "uri": "http://127.0.0.1:9082/",
               "services": [{"name": "Tester"}, {"name": "Other"}]}


def test_replaced_never_includes_a_live_deployment():
    # After a rollback OLD is the latest again: releasing NEW (behind) replaces nothing, and OLD is never replaced.
    rolled_back = latest_of([{"name": "Tester", "deployment_id": OLD["id"]}])
    assert behind(NEW["id"], ["Tester"], rolled_back) == {"Tester": OLD["id"]}
    assert replaced([OLD, NEW], rolled_back, NEW["id"], ["Tester"]) == []
    released = latest_of([{"name": "Tester", "deployment_id": NEW["id"]}])
    assert behind(NEW["id"], ["Tester"], released) == {}
    assert replaced([OLD, NEW], released, NEW["id"], ["Tester"]) == [OLD]
    # still the latest of a service the new deployment does not serve: live, kept
    partly = latest_of([{"name": "Tester", "deployment_id": NEW["id"]}, {"name": "Other", "deployment_id": ROLLED_BACK["id"]}])
    assert replaced([OLD, NEW, ROLLED_BACK], partly, NEW["id"], ["Tester"]) == [OLD]


def test_blocked_by_names_why():
    latest = latest_of([{"name": "Tester", "deployment_id": NEW["id"]}])
    assert blocked_by(judge(NEW, latest, {NEW["id"]: {"running": 1}})) == ["latest", "pinned"]
    assert blocked_by(judge(OLD, latest, {OLD["id"]: {"suspended": 1}})) == ["pinned"]
    assert blocked_by(judge(OLD, latest, {})) == []


class _Queries:
    def __init__(self, rows):
        self.rows, self.sql = rows, None

    def query(self, sql, required=None):
        self.sql = sql
        return self.rows


def test_pinned_counts_include_unpinned_running_attempts():
    queries = _Queries([
        {"pinned_deployment_id": OLD["id"], "last_attempt_deployment_id": OLD["id"], "status": "suspended", "count": 2},
        {"pinned_deployment_id": OLD["id"], "last_attempt_deployment_id": None, "status": "suspended", "count": 1},
        {"pinned_deployment_id": None, "last_attempt_deployment_id": OLD["id"], "status": "running", "count": 3},
    ])
    counts = DeploymentsApi(None, queries, None).pinned_counts([OLD["id"], NEW["id"]])
    assert counts == {OLD["id"]: {"suspended": 3, RUNNING_UNPINNED: 3}, NEW["id"]: {}}
    assert "last_attempt_deployment_id" in queries.sql and "status = 'running'" in queries.sql
    latest = latest_of([{"name": "Tester", "deployment_id": NEW["id"]}])
    assert judge(OLD, latest, counts)["status"] == "draining"


@pytest.mark.parametrize("given, option", [
    ({"id": "dp_11y34lPUiDu9cYkItxmdc2Z", "state": "absent", "drain_delay": -1}, "drain_delay"),
    ({"uri": "http://x:9080", "drain_delay": 5}, "drain_delay"),
])
def test_drain_delay_checked(given, option):
    with pytest.raises(InputError) as error:
        check_options(params(**given))
    assert str(error.value).startswith(option)


def test_header_diff_names_headers_and_hides_values():
    from ansible_collections.restate.admin.plugins.module_utils._deployment_task import _headers_text

    text = _headers_text({"x-token": "s3cr3t-value", "x-keep": "other-value"}, changed={"x-token"})
    assert text == "header x-keep: (hidden)\nheader x-token: (hidden, new value)\n"
    assert "s3cr3t" not in text and "other-value" not in text
