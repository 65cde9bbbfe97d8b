"""restate_invocation_info against a real server, through ansible-playbook; the official CLI is the oracle."""

from __future__ import annotations

import re
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import pytest
from harness.server import STATUSES, Restate

MODULE = "restate.admin.restate_invocation_info"
ACTIVE = ["scheduled", "pending", "ready", "running", "suspended", "backing-off", "paused"]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """A server of its own holding two invocations in every status, so whole-server answers are stable."""
    server = Restate(tmp_path_factory.mktemp("info")).start()
    try:
        for status in STATUSES:
            server.make(status, 2)
        yield server
    finally:
        server.stop()


def cli_ids(server, *args) -> list:
    limit = () if "--limit" in args else ("--limit", "1000")
    out = server.cli("invocations", "list", *limit, *args)
    return re.findall(r"\] (inv_[0-9A-Za-z]+)", out.stdout)


def module_ids(ansible, server, **args) -> list:
    result = ansible.run(MODULE, dict(args, admin_url=server.admin_url, fields=["id"]))
    assert not result["failed"], result["msg"]
    return [row["id"] for row in result["invocations"]]


def python_ids(server, keep) -> set:
    return {row["id"] for row in server.query("SELECT * FROM sys_invocation") if keep(row)}


# (CLI arguments, module filters, Python-side predicate over a full sys_invocation row)
QUESTIONS = [
    (["--all"], {}, lambda r: True),
    ([], {"status": ACTIVE}, lambda r: r["status"] != "completed"),
    (["--status", "suspended"], {"status": ["suspended"]}, lambda r: r["status"] == "suspended"),
    (["--status", "paused,backing-off"], {"status": ["paused", "backing-off"]},
     lambda r: r["status"] in ("paused", "backing-off")),
    (["--status", "scheduled"], {"status": "scheduled"}, lambda r: r["status"] == "scheduled"),
    (["--status", "pending"], {"status": "pending"}, lambda r: r["status"] == "pending"),
    (["--completion-result", "failure"], {"completion_result": "failure"},
     lambda r: r["status"] == "completed" and r.get("completion_result") == "failure"),
    (["--completion-result", "success"], {"status": "completed", "completion_result": "success"},
     lambda r: r.get("completion_result") == "success"),
    (["--all", "--service", "Tester"], {"service": "Tester"}, lambda r: r["target_service_name"] == "Tester"),
    (["--all", "--service", "Tester", "--handler", "ok"], {"service": "Tester", "handler": "ok"},
     lambda r: r["target"] == "Tester/ok"),
    (["--service", "Holder"], {"service": "Holder", "status": ACTIVE},
     lambda r: r["target_service_name"] == "Holder" and r["status"] != "completed"),
    (["--service", "Tester", "--status", "running"], {"target": "Tester", "status": "running"},
     lambda r: r["target_service_name"] == "Tester" and r["status"] == "running"),
]


@pytest.mark.parametrize("cli_args, filters, keep", QUESTIONS, ids=[" ".join(q[0]) or "default" for q in QUESTIONS])
def test_lists_what_the_official_cli_lists(quiet, ansible, cli_args, filters, keep):
    ours = module_ids(ansible, quiet, filters=filters)
    assert len(ours) == len(set(ours))
    assert set(ours) == set(cli_ids(quiet, *cli_args)) == python_ids(quiet, keep)
    assert ours, "a question with no answer proves nothing"


def test_key_and_deployment_match_the_cli(quiet, ansible):
    key = quiet.query("SELECT target_service_key FROM sys_invocation WHERE target_service_name = 'Holder' LIMIT 1")[0][
        "target_service_key"]
    ours = module_ids(ansible, quiet, filters={"service": "Holder", "key": key})
    assert set(ours) == set(cli_ids(quiet, "--all", "--service", "Holder", "--key", key))
    assert set(ours) == python_ids(quiet, lambda r: r.get("target_service_key") == key) and len(ours) == 2
    deployment = quiet.deployment_id
    ours = module_ids(ansible, quiet, filters={"deployment": deployment})
    assert set(ours) == set(cli_ids(quiet, "--all", "--deployment", deployment))
    assert set(ours) == python_ids(quiet, lambda r: r.get("pinned_deployment_id", r.get("last_attempt_deployment_id"))
                                   == deployment) and ours


def test_order_and_limit_match_the_cli(quiet, ansible):
    assert module_ids(ansible, quiet, filters={"status": ACTIVE}, order="oldest_first", limit=3) == \
        cli_ids(quiet, "--oldest-first", "--limit", "3")[:3]

    def newest_active():
        rows = [r for r in quiet.query("SELECT id, created_at, status FROM sys_invocation") if r["status"] != "completed"]
        return [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)[:4]]

    # The quiet server's invocations are not frozen (the retrying ones run again): compare on a module run during
    # which the SQL answer did not change.
    for unused_attempt in range(3):
        before = newest_active()
        newest = module_ids(ansible, quiet, filters={"status": ACTIVE}, limit=4)
        if newest_active() == before:
            break
    assert newest == before


def test_matched_truncated_and_summary(quiet, ansible):
    result = ansible.run(MODULE, {"admin_url": quiet.admin_url, "filters": {"service": "Tester"}, "limit": 3})
    everything = python_ids(quiet, lambda r: r["target_service_name"] == "Tester")
    assert result["count"] == 3 and len(result["invocations"]) == 3
    assert result["matched"] == len(everything) > 3 and result["truncated"] is True
    by_status = {}
    for row in quiet.query("SELECT status FROM sys_invocation WHERE target_service_name = 'Tester'"):
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    assert result["summary"] == by_status
    whole = ansible.run(MODULE, {"admin_url": quiet.admin_url, "filters": {"service": "Tester"}, "limit": 1000})
    assert whole["truncated"] is False and whole["count"] == whole["matched"]
    counted = ansible.run(MODULE, {"admin_url": quiet.admin_url, "filters": {"service": "Tester"}, "limit": 0})
    assert counted["invocations"] == [] and counted["count"] == 0 and counted["summary"] == by_status
    assert counted["matched"] == len(everything)


def test_time_windows_split_at_the_boundary(restate, ansible):
    before = restate.send_many("Tester/sleep", [7300] * 3)
    restate.wait_statuses(before, "suspended")
    time.sleep(1.5)
    boundary = datetime.now(timezone.utc)
    time.sleep(1.5)
    after = restate.send_many("Tester/sleep", [7300] * 3)
    restate.wait_statuses(after, "suspended")
    stamp = boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    window = {"target": "Tester/sleep", "created_after": "10m"}
    older = set(module_ids(ansible, restate, filters=dict(window, created_before=stamp)))
    newer = set(module_ids(ansible, restate, filters=dict(window, created_after=stamp)))
    assert set(before) <= older and not older & set(after)
    assert set(after) <= newer and not newer & set(before)
    # the same boundary as an age: everything created in the last 2 seconds is on the "after" side
    recent = set(module_ids(ansible, restate, filters={"target": "Tester/sleep", "created_after": "2s"}))
    assert not recent & set(before)
    offset = boundary.astimezone().isoformat()
    assert set(module_ids(ansible, restate, filters=dict(window, created_after=offset))) == newer


def test_completed_windows(restate, ansible):
    done = restate.make("completed-success")[0]
    row = restate.row(done)
    completed_at = row["completed_at"]
    assert done in module_ids(ansible, restate, filters={"completed_after": completed_at, "target": "Tester/ok"})
    assert done not in module_ids(ansible, restate, filters={"completed_before": completed_at, "target": "Tester/ok"})


HOSTILE = ["it's", "a'; DELETE FROM sys_invocation; --", "100%", "_", "%_%", "back\\slash\\'", "ünï☃😀", "x" * 2000,
           "semi;colon", "--", "/* c */", "tab\tand space", "'", "''"]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_match_literally(restate, ansible, hostile):
    # A prefix of this run's own: other tests make Holder keys of the same strings (test_reliability's TRICKY_KEYS),
    # which matched too when they ran first.
    key = uuid.uuid4().hex[:6] + hostile
    by_key = restate.send(f"Holder/{urllib.parse.quote(key, safe='')}/hold", 0)
    # the ingress takes only visible ASCII in a header; other keys cannot exist, so they must match nothing
    by_idem = restate.send("Tester/ok", "hostile", idempotency_key=hostile) if hostile.isascii() else None
    restate.wait_statuses([i for i in (by_key, by_idem) if i], "completed")
    # near misses: what a LIKE wildcard or a broken quote would also match
    restate.send(f"Holder/{urllib.parse.quote(key + 'x', safe='')}/hold", 0)
    assert module_ids(ansible, restate, filters={"service": "Holder", "key": key}) == [by_key]
    assert module_ids(ansible, restate, filters={"target": f"Holder/{key}/hold"} if "/" not in key else
                      {"service": "Holder", "key": key, "handler": "hold"}) == [by_key]
    assert module_ids(ansible, restate, filters={"idempotency_key": hostile}) == ([by_idem] if by_idem else [])
    for option in ("service", "handler"):
        assert module_ids(ansible, restate, filters={option: hostile}) == []
    assert restate.query("SELECT COUNT(*) AS n FROM sys_invocation")[0]["n"] > 0


def test_describe_with_journal_and_unknown_and_malformed_ids(restate, ansible):
    invocation = restate.make("suspended")[0]
    tasks = [
        {MODULE: {"id": invocation, "journal": True}},
        {MODULE: {"id": invocation}, "check_mode": True},
        {MODULE: {"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ"}},
        {MODULE: {"id": "inv_1foAirY4KKzi6oY45'; --"}},
        {MODULE: {"filters": {"status": ["sleeping"]}}},
        {MODULE: {"filters": {"nope": 1}}},
        {MODULE: {"filters": {"created_after": "yesterday"}}},
        {MODULE: {"limit": -1}},
        {MODULE: {"fields": ["id", "password"]}},
    ]
    described, checked, unknown, malformed, status, key, when, limit, fields = ansible.run_tasks(tasks)
    item = described["invocations"][0]
    assert item["id"] == invocation and item["status"] == "suspended" and item["target"] == "Tester/sleep"
    assert item["created_at"].endswith("Z") and "retry_count" in item and "last_failure" in item
    entries = item["journal"]
    assert [e["index"] for e in entries] == list(range(len(entries))) and entries[0]["entry_type"] == "Command: Input"
    assert any(e["entry_type"].endswith("Sleep") for e in entries), entries
    assert checked["invocations"][0]["id"] == invocation and "journal" not in checked["invocations"][0]
    assert not unknown["failed"] and unknown["invocations"] == [] and unknown["matched"] == 0
    assert malformed["failed"] and malformed["msg"].startswith("id: ")
    assert status["failed"] and "sleeping" in status["msg"]
    assert key["failed"] and "filters.nope" in key["msg"]
    assert when["failed"] and "filters.created_after" in when["msg"] and "7d" in when["msg"]
    assert limit["failed"] and "limit must be 0 (count only) or more" in limit["msg"]
    assert fields["failed"] and "password" in fields["msg"]


@pytest.mark.slow
def test_lists_twenty_thousand_in_one_task(restate, ansible):
    marker = restate.send("Holder/listing-20k/hold", 0)
    restate.wait_statuses([marker], "completed")
    start = restate.row(marker)["created_at"]
    ids = restate.send_many("Tester/ok", ["bulk"] * 20_000, threads=16)
    filters = {"target": "Tester/ok", "created_after": start}
    restate.wait_statuses(ids, "completed", timeout=600)
    result = ansible.run(MODULE, {"filters": filters, "limit": 20_000, "fields": ["id", "status"]})
    assert not result["failed"], result.get("msg")
    assert result["count"] == result["matched"] == 20_000 and not result["truncated"]
    assert {row["id"] for row in result["invocations"]} == set(ids)
    # tidy up: these would slow down every later whole-server query
    purge = ansible.run("restate.admin.restate_invocation", {"filters": filters, "state": "purged", "limit": 20_000})
    assert purge["summary"]["changed"] == 20_000
