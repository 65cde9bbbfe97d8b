"""The result a restate_invocation task reports: what it lists and what it counts."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._invocation_report import Item, Tally
from ansible_collections.restate.admin.plugins.module_utils._invocation_task import check_deployment_registered


def report(task, items, matched):
    """The result Tally gives for these items, all of a task's items at once."""
    tally = Tally(task)
    tally.matched = matched
    tally.add([Item(item) for item in items])
    return tally.outcome()


class Task:
    diff_mode = False

    def __init__(self, report_option, kill_after=None, check_mode=False, state="purged"):
        self.params = {"report": report_option, "kill_after": kill_after, "state": state, "limit": 1000}
        self.check_mode = check_mode


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
                                  "done": 3, "already": 1, "left": 0, "check_mode": False,
                                  "changed_by_service": {"Checkout": 2, "Cart": 1}}


def test_each_invocation_is_counted_once_as_done_pending_already_or_failed():
    """A cancel accepted but not applied (changed, pending), one pending from an earlier run (unchanged, pending), one
    refused and one done: pending is never counted as done, nor as already done."""
    listed = [
        {"id": "inv_a", "target": "Checkout/pay", "before": "suspended", "after": "completed", "changed": True},
        {"id": "inv_b", "target": "Checkout/pay", "before": "paused", "after": "paused", "changed": True,
         "pending": "cancel requested, not applied yet"},
        {"id": "inv_c", "target": "Checkout/pay", "before": "paused", "after": "paused", "changed": False,
         "pending": "cancel requested, not applied yet"},
        {"id": "inv_d", "target": "Checkout/pay", "before": "completed", "after": "completed", "changed": False},
        {"id": "inv_e", "target": "Checkout/pay", "before": "running", "after": "running", "changed": True,
         "pending": "x", "error": "inv_e did not reach state=cancelled within wait_timeout=1s"},
    ]
    summary = report(Task("failed", state="cancelled"), listed, matched=7)["summary"]
    assert (summary["done"], summary["pending"], summary["already"], summary["failed"], summary["left"]) == (1, 2, 1, 1, 2)
    assert summary["done"] + summary["pending"] + summary["already"] + summary["failed"] + summary["left"] == 7


@pytest.mark.parametrize("check_mode, words", [
    (False, "Cancelled 1 of 7 matching invocations (Checkout: 1); 2 still pending (cancel accepted, not applied yet: "
            "see each invocation's pending), 1 needed no change, 1 failed, 2 left for the next run (limit 1000)."),
    (True, "Would cancel 1 of 7 matching invocations (Checkout: 1); 2 would stay pending (cancel accepted, not "
           "applied yet: see each invocation's pending), 1 needed no change, 1 failed, 2 left for the next run "
           "(limit 1000)."),
])
def test_the_summary_line_reads_the_same_in_check_mode_and_for_real(check_mode, words):
    tally = Tally(Task("failed", state="cancelled", check_mode=check_mode))
    tally.matched = 7
    tally.add([Item(item) for item in [
        {"id": "inv_a", "target": "Checkout/pay", "before": "suspended", "after": "completed", "changed": True},
        {"id": "inv_b", "target": "Cart/pay", "before": "paused", "after": "paused", "changed": False, "pending": "x"},
        {"id": "inv_c", "target": "Cart/pay", "before": "paused", "after": "paused", "changed": False, "pending": "x"},
        {"id": "inv_d", "target": "Cart/pay", "before": "completed", "after": "completed", "changed": False},
        {"id": "inv_e", "target": "Cart/pay", "before": "running", "after": "running", "changed": False, "error": "x"},
    ]])
    assert tally.line() == words


def test_the_summary_line_says_given_for_named_invocations_and_counts_in_the_singular():
    task = Task("all", state="purged")
    task.params["ids"] = ["inv_a"]
    tally = Tally(task)
    tally.matched = 1
    tally.add([Item({"id": "inv_a", "target": "Checkout/pay", "before": "completed", "after": "absent", "changed": True})])
    assert tally.line() == "Purged 1 of 1 given invocation (Checkout: 1)."


def test_nothing_changed_counts_no_service():
    unchanged = [item for item in items() if not item["changed"]]
    assert report(Task("all"), unchanged, matched=2)["summary"]["changed_by_service"] == {}


def test_kill_after_counts_the_invocations_it_killed():
    listed = items()
    listed[0]["killed_after_cancel"] = True
    assert report(Task("failed", kill_after=5), listed, matched=5)["summary"]["killed_after_cancel"] == 1
    assert "killed_after_cancel" not in report(Task("failed"), items(), matched=5)["summary"]


def test_items_added_page_by_page_are_each_counted_once_under_what_they_came_to():
    shapes = []
    for changed in (True, False):
        for error in (None, "it failed"):
            for before in ("completed", "absent"):
                for pending in (None, "not applied yet"):
                    for killed in (False, True):
                        shape = {"target": f"Svc{len(shapes) % 3}/run", "before": before, "changed": changed}
                        shape.update({key: value for key, value in (("error", error), ("pending", pending),
                                                                    ("killed_after_cancel", killed)) if value})
                        shapes.append(shape)
    made = [dict(shape, id=f"inv_{n}") for n, shape in enumerate(shapes * 3)]
    for item in made:
        if "error" in item:
            item["error"] = f"{item['id']} failed"
    tally = Tally(Task("failed", state="cancelled"))
    tally.matched = len(made)
    for start in range(0, len(made), 7):  # pages that cut through the shapes
        page = [Item(dict(item)) for item in made[start:start + 7]]
        page[0].dropped = True
        tally.add(page)
    # What each item counts for, one by one.
    ok = [item for item in made if "error" not in item]
    expected = {"inspected": len(made), "changed": sum(item["changed"] for item in made),
                "unchanged": len(ok) - sum(item["changed"] for item in ok),
                "failed": len(made) - len(ok), "missing": sum(item["before"] == "absent" for item in made),
                "pending": sum("pending" in item for item in ok),
                "done": sum(item["changed"] and "pending" not in item for item in ok),
                "already": sum(not item["changed"] and "pending" not in item for item in ok),
                "killed_after_cancel": sum("killed_after_cancel" in item for item in made),
                "dropped_by_old_server": len(range(0, len(made), 7))}
    assert {key: tally.counts[key] for key in expected} == expected
    by_service = {}
    for item in made:
        if item["changed"]:
            service = item["target"].split("/")[0]
            by_service[service] = by_service.get(service, 0) + 1
    assert dict(tally.by_service) == by_service
    assert tally.first_errors == [item["error"] for item in made if "error" in item][:5]
    assert tally.missing_named == [item["id"] for item in ok if item["before"] == "absent"][:21]
    assert [item["id"] for item in tally.listed] == [item["id"] for item in made if "error" in item]


class Deployments:
    """A client whose sys_deployment holds ``known``; records the SQL it is asked."""

    def __init__(self, *known):
        self.known = known
        self.sql = []

    def query(self, sql, columns=None, required=None):
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
