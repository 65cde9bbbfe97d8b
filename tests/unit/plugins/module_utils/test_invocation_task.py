"""The result a restate_invocation task reports: what it lists and what it counts."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._invocation_report import Tally
from ansible_collections.restate.admin.plugins.module_utils._invocation_task import check_deployment_registered


def report(task, items, matched):
    """The result Tally gives for these items, all of a task's items at once."""
    tally = Tally(task)
    tally.matched = matched
    tally.add(items)
    return tally.outcome()


class Task:
    diff_mode = False

    def __init__(self, report_option, kill_after=None):
        self.params = {"report": report_option, "kill_after": kill_after, "state": "purged"}


def items():
    return [
        {"id": "inv_a", "target": "Checkout/pay", "before": "completed", "after": "absent", "changed": True},
        {"id": "inv_b", "target": "Cart/user-1/add", "before": "completed", "after": "absent", "changed": True},
        {"id": "inv_c", "target": "Checkout/refund", "before": "completed", "after": "absent", "changed": True},
        {"id": "inv_d", "target": "Checkout/pay", "before": "running", "after": "running", "changed": False,
         "error": "inv_d is running, not completed"},
        {"id": "inv_e", "target": None, "before": "absent", "after": "absent", "changed": False},
    ]


@pytest.mark.parametrize("report_option, listed", [("all", 5), ("failed", 1)])
def test_summary_counts_every_invocation_and_changes_per_service_whatever_is_listed(report_option, listed):
    outcome = report(Task(report_option), items(), matched=5)
    assert len(outcome["invocations"]) == listed
    assert outcome["summary"] == {"matched": 5, "changed": 3, "unchanged": 1, "failed": 1, "missing": 1, "pending": 0,
                                  "changed_by_service": {"Checkout": 2, "Cart": 1}}


def test_nothing_changed_counts_no_service():
    unchanged = [item for item in items() if not item["changed"]]
    assert report(Task("all"), unchanged, matched=2)["summary"]["changed_by_service"] == {}


def test_kill_after_counts_the_invocations_it_killed():
    listed = items()
    listed[0]["killed_after_cancel"] = True
    assert report(Task("failed", kill_after=5), listed, matched=5)["summary"]["killed_after_cancel"] == 1
    assert "killed_after_cancel" not in report(Task("failed"), items(), matched=5)["summary"]


class Deployments:
    """A client whose sys_deployment holds ``known``; records the SQL it is asked."""

    def __init__(self, *known):
        self.known = known
        self.sql = []

    def query(self, sql, columns=None):
        self.sql.append(sql)
        return [{"id": d} for d in self.known if f"'{d}'" in sql]


@pytest.mark.parametrize("deployment", [None, "keep", "latest"])
def test_resume_without_a_deployment_id_asks_nothing(deployment):
    client = Deployments()
    check_deployment_registered(client, deployment)
    assert client.sql == []


def test_resume_on_a_deployment_the_server_does_not_know_is_refused():
    client = Deployments("dp_13puM96j0yI6Wh3QjADKUsp")
    check_deployment_registered(client, "dp_13puM96j0yI6Wh3QjADKUsp")
    with pytest.raises(InputError, match=r"deployment: 'dp_13puM96j0yI6Wh3QjADKUspX' is not a deployment registered"):
        check_deployment_registered(client, "dp_13puM96j0yI6Wh3QjADKUspX")
    with pytest.raises(InputError, match="not a deployment registered"):
        check_deployment_registered(client, "dp_x' OR '1'='1")
    assert "'dp_x'' OR ''1''=''1'" in client.sql[-1], "the id reaches SQL only as a quoted literal"
