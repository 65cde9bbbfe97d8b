"""restate_invocation's run() against the fake Admin API, for what a real server cannot be made to do on demand: the
empty-selection refusal, refusals by a concurrent run, requests the server applies later, pages of three, the audit
log of a task that fails half-way."""

from __future__ import annotations

import json
import threading

import fake_task
import pytest
from fake_admin import ACCEPTED, FakeAdmin, refused
from test_invocation_run import invocation_task, run

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError


@pytest.fixture
def admin():
    return FakeAdmin()


def run_task(task) -> dict:
    result = fake_task.run_task(task)
    result.setdefault("warnings", [])
    return result


@pytest.mark.parametrize("state", ["cancelled", "killed", "paused", "resumed", "purged", "journal_purged",
                                   "restarted"])
@pytest.mark.parametrize("filters", [{}, {"service": None, "target": None}, {"status": None}])
def test_an_empty_selection_is_refused_before_any_call(admin, state, filters):
    admin.add("completed", 3)
    result = run(admin, state=state, filters=filters)
    assert result["failed"] and "all_invocations: true" in result["msg"] and "filters is empty" in result["msg"]
    assert admin.queries == [] and admin.calls == []


def test_all_invocations_acts_on_every_invocation_on_purpose(admin):
    admin.add("completed", 3)
    result = run(admin, state="purged", filters={}, all_invocations=True)
    assert not result.get("failed") and result["summary"]["changed"] == 3 and admin.ids() == []
    admin.add("completed", 2)
    assert run(admin, state="purged", all_invocations=True)["summary"]["changed"] == 2  # without filters at all


@pytest.mark.parametrize("options, message", [
    ({"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", "all_invocations": True}, "cannot go with id or ids"),
    ({"all_invocations": False}, "selects nothing"),
])
def test_all_invocations_misused_is_refused(admin, options, message):
    admin.add("completed")
    result = run(admin, state="killed", **options)
    assert result["failed"] and message in result["msg"] and admin.calls == []


@pytest.mark.parametrize("state, source, answer", [
    ("purged", "completed", refused(404, "invocation does not exist")),
    ("killed", "suspended", refused(409, "was already completed")),
    ("cancelled", "suspended", refused(409, "was already completed")),
])
def test_a_first_call_refused_because_another_run_got_there_first_is_unchanged(admin, state, source, answer):
    ids = admin.add(source, 4)
    taken = set(ids[:2])

    def concurrent(fake, invocation_id, unused_action):
        if invocation_id in taken:  # the other run's call came first
            if state == "purged":
                fake.remove(invocation_id)
            else:
                fake.set(invocation_id, status="completed")
            return answer
        return None

    admin.intercept = concurrent
    result = run(admin, state=state, ids=ids)
    assert not result.get("failed"), result
    assert result["summary"]["changed"] == 2 and result["summary"]["unchanged"] == 2
    items = {item["id"]: item for item in result["invocations"]}
    for invocation_id in taken:
        assert items[invocation_id]["changed"] is False
        assert "another run or client got there first" in items[invocation_id]["note"]


def test_a_call_repeated_after_a_lost_answer_keeps_refused_but_reached_as_changed(admin):
    ids = admin.add("completed", 2)

    def lost_then_refused(fake, invocation_id, unused_action):
        if invocation_id == ids[0]:
            fake.repeats += 1  # the transport repeated the call
            fake.remove(invocation_id)  # the first, lost call did the work
            return refused(404, "invocation does not exist")
        return None

    admin.intercept = lost_then_refused
    result = run(admin, state="purged", ids=ids)
    assert result["summary"]["changed"] == 2 and not result.get("failed")
    first = result["invocations"][0]
    assert first["changed"] is True and "the first may have done it" in first["note"]


def test_a_request_not_applied_when_read_back_is_pending_with_its_remedy(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.3)
    paused, suspended = admin.add("paused")[0], admin.add("suspended")[0]
    # The server accepts both cancels; the paused one stays paused (it sees the cancel once it runs again).
    admin.intercept = lambda fake, invocation_id, action: ACCEPTED if invocation_id == paused else None
    result = run(admin, state="cancelled", ids=[paused, suspended], diff=True)
    paused_item, suspended_item = result["invocations"]
    assert paused_item["changed"] and paused_item["after"] == "paused" and "kill_after" in paused_item["pending"]
    assert "state: killed" in paused_item["pending"] and "wait: true" in paused_item["pending"]
    assert suspended_item["after"] == "completed" and "pending" not in suspended_item
    assert result["summary"]["pending"] == 1 and result["summary"]["changed"] == 2
    assert f"{paused}: paused (cancel requested, pending)\n" in result["diff"]["after"]
    # check mode predicts, and reads nothing back
    fresh = FakeAdmin()
    predicted = run(fresh, state="cancelled", ids=fresh.add("suspended"), check_mode=True)
    assert predicted["invocations"][0]["after"] == "completed" and fresh.calls == []


def test_a_pause_the_server_applies_later_is_pending(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    running = admin.add("running")
    admin.intercept = lambda *unused: ACCEPTED  # 202, and still running
    item = run(admin, state="paused", ids=running)["invocations"][0]
    assert item["changed"] and item["after"] == "running" and "pause requested" in item["pending"]


@pytest.mark.parametrize("ran_again", [{"modified_at": "2026-12-01T00:00:05.000000Z"},
                                       {"last_start_at": "2026-12-01T00:00:05.000000Z", "retry_count": 7},
                                       {"status": "backing-off", "retry_count": 7}])
def test_a_resume_applied_that_fails_again_is_done_with_a_note_not_pending(admin, monkeypatch, ran_again):
    """The server applied the resume (the invocation ran: modified_at, or only its last start and retry count,
    moved), then it failed again at once: done, with a note that says what to do, never '(resume requested,
    pending)' in the diff or the pending count."""
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    paused = admin.add("paused")

    def fails_again(fake, invocation_id, unused_action):
        fake.set(invocation_id, **ran_again)  # ran, failed, paused (or backing off) again
        return ACCEPTED

    admin.intercept = fails_again
    result = run(admin, state="resumed", ids=paused, diff=True)
    item = result["invocations"][0]
    assert item["after"] == ran_again.get("status", "paused") and "pending" not in item
    assert "failed again" in item["note"] and "state: killed" in item["note"]
    assert (result["summary"]["done"], result["summary"]["pending"]) == (1, 0)
    assert "pending" not in result["diff"]["after"]


def test_a_resume_not_applied_yet_is_pending(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    paused = admin.add("paused")
    admin.intercept = lambda *unused: ACCEPTED  # 200, and nothing moved yet
    result = run(admin, state="resumed", ids=paused)
    assert "resume requested, not applied yet" in result["invocations"][0]["pending"]
    assert (result["summary"]["done"], result["summary"]["pending"]) == (0, 1)


def test_a_cancel_dropped_by_an_older_server_is_warned_about_with_version_count_and_remedy(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    ids = admin.add("suspended", 3)
    admin.intercept = lambda *unused: ACCEPTED
    task = invocation_task(admin, state="cancelled", ids=ids)
    task.server_version = "1.6.2"
    result = run_task(task)
    warning = [w for w in result["warnings"] if "1.6.2" in w]
    assert warning and "3 invocation(s) were not cancelled" in warning[0] and "state: killed" in warning[0]
    assert all(item["pending"].startswith("cancel dropped: Restate 1.6.2") for item in result["invocations"])
    assert result["summary"]["pending"] == 3


def test_a_cancel_of_a_paused_invocation_on_an_older_server_is_dropped_and_said_so(admin, monkeypatch):
    # Restate 1.6 resumes a paused invocation it is asked to cancel and never delivers the cancel
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    paused, other = admin.add("paused", 2)

    def resumes_instead(fake, invocation_id, unused_action):
        fake.set(invocation_id, status="suspended" if invocation_id == paused else "completed")
        return ACCEPTED

    admin.intercept = resumes_instead
    task = invocation_task(admin, state="cancelled", ids=[paused, other])
    task.server_version = "1.6.2"
    result = run_task(task)
    items = {item["id"]: item for item in result["invocations"]}
    assert items[paused]["changed"] and items[paused]["after"] == "suspended"
    assert "resumes a paused invocation" in items[paused]["pending"] and "state: killed" in items[paused]["pending"]
    assert "pending" not in items[other], "one that completed after all is not flagged"
    assert any("1 invocation(s) were not cancelled" in w for w in result["warnings"]), result["warnings"]


def test_the_same_cancel_on_a_current_server_is_pending_not_dropped(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.2)
    paused = admin.add("paused")
    admin.intercept = lambda *unused: ACCEPTED
    task = invocation_task(admin, state="cancelled", ids=paused)
    task.server_version = "1.7.12"
    result = run_task(task)
    assert result["invocations"][0]["pending"].startswith("cancel requested, not applied yet")
    assert not [w for w in result.get("warnings", []) if "not cancelled" in w]


@pytest.mark.parametrize("check_mode", [True, False])
def test_the_diff_of_a_journal_purge_shows_the_journal_size_before_and_after(admin, check_mode):
    completed = admin.add("completed", journal_size=3)[0]
    result = run(admin, state="journal_purged", ids=[completed], diff=True, check_mode=check_mode)
    assert result["diff"]["before"] == f"{completed}: completed (journal: 3 entries)\n"
    assert result["diff"]["after"] == f"{completed}: completed (journal: 0 entries)\n"


def test_report_failed_works_page_by_page_from_one_query_reading_the_next_page_while_one_is_acted_on(
        admin, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    admin.add("completed", 10)
    selects, acted, overlapped = [], [], []
    rows, actions = admin.rows, admin.actions
    second_page_read = threading.Event()

    def select(sql, columns=None, required=None):
        selects.append(sql)
        for number, row in enumerate(rows(sql, columns, required)):
            if number == 5:  # the second page's last row
                second_page_read.set()
            yield row

    def act(ids, *args, **kwargs):
        if not acted:  # the first page's calls wait for the second page's read, which runs meanwhile
            overlapped.append(second_page_read.wait(5))
        acted.append(len(ids))
        return actions(ids, *args, **kwargs)

    monkeypatch.setattr(admin, "rows", select)
    monkeypatch.setattr(admin, "actions", act)
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["changed"] == 10 and result["summary"]["matched"] == 10 and admin.ids() == []
    assert result["invocations"] == []
    assert acted == [3, 3, 3, 1] and len(selects) == 1, "one query for the whole selection, acted on a page at a time"
    assert overlapped == [True], "the second page is read while the first one is acted on"


@pytest.mark.parametrize("max_matched, counts", [(None, 1), (10, 1)])
def test_the_selection_is_counted_once_even_with_the_max_matched_guard(admin, monkeypatch, max_matched, counts):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    admin.add("completed", 5)
    counted = []
    query = admin.query
    monkeypatch.setattr(admin, "query", lambda sql, columns=None, required=None: (
        counted.append(sql) if "COUNT(*)" in sql else None) or query(sql, columns, required))
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed", max_matched=max_matched)
    assert result["summary"]["changed"] == 5 and len(counted) == counts, counted


@pytest.mark.parametrize("limit, order, left", [(3, "ORDER BY id ASC", []), (2, "ORDER BY created_at ASC", [2])])
def test_a_selection_taken_whole_is_read_in_id_order_and_one_cut_by_the_limit_oldest_first(
        admin, monkeypatch, limit, order, left):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "1")
    # Made oldest first with falling ids: id order and creation order disagree.
    ids = [admin.add("completed", id=f"inv_1{suffix * 34}")[0] for suffix in "zyx"]
    selects = []
    query = admin.query
    monkeypatch.setattr(admin, "query", lambda sql, columns=None, required=None: (
        selects.append(sql) if "LIMIT" in sql else None) or query(sql, columns, required))
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed", limit=limit)
    assert result["summary"]["changed"] == limit and selects and all(order in sql for sql in selects), selects
    assert admin.ids() == [ids[i] for i in left], "a limit takes the oldest"


def test_a_paged_selection_stops_at_the_limit_and_counts_the_rest(admin, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    admin.add("completed", 4)
    running = admin.add("running")  # the selection for purged skips it
    admin.add("completed", 5)
    task = invocation_task(admin, state="purged", filters={"service": "Tester"}, report="failed", limit=5)
    result = run_task(task)
    assert result["summary"]["changed"] == 5 and result["summary"]["matched"] == 9
    assert any("9 invocations match" in warning for warning in task._warnings)
    assert len(admin.ids()) == 5 and running[0] in admin.ids()  # four completed left for the next run


def read_audit(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_audit_log_lists_every_invocation_acted_on_and_never_the_token(admin, tmp_path):
    path = tmp_path / "audit.jsonl"
    ids = admin.add("completed", 5)
    admin.remove(ids[4])  # already absent: unchanged, not written
    result = run(admin, state="purged", ids=ids, audit_log=str(path), token="s3cret",
                 headers={"X-Api-Key": "hidden-value"})
    assert result["summary"]["changed"] == 4
    text = path.read_text()
    assert "s3cret" not in text and "hidden-value" not in text
    start, accepted, *invocations, end = read_audit(path)
    assert accepted["record"] == "accepted" and accepted["action"] == "purge" and accepted["ids"] == ids[:4]
    assert start["record"] == "start" and start["options"]["state"] == "purged"
    assert start["options"]["headers"] == ["X-Api-Key"] and "token" not in start["options"] and start["time"]
    assert [(i["id"], i["target"], i["before"], i["after"]) for i in invocations] == [
        (invocation_id, "Tester/ok", "completed", "absent") for invocation_id in ids[:4]]
    assert end["record"] == "end" and end["failed"] is False and end["summary"]["changed"] == 4
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_task_that_fails_half_way_leaves_an_audit_log_of_what_it_did(admin, tmp_path, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    path = tmp_path / "audit.jsonl"
    admin.add("completed", 9)
    rows = admin.rows

    def failing_rows(sql, columns=None, required=None):
        for number, row in enumerate(rows(sql, columns, required)):
            if number == 6:  # the third page's first row: the server answers no more
                raise RestateApiError("POST", "/query", status=503, message="server going away")
            yield row

    monkeypatch.setattr(admin, "rows", failing_rows)
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed", audit_log=str(path))
    assert result["failed"] and "server going away" in result["msg"]
    assert result["summary"]["changed"] == 6  # the result says what was done too
    start, *records, end = read_audit(path)
    # Each page: the accepted line as the calls are answered, then the invocation lines once read back, after the
    # next page's calls are sent; the second page is read back although reading the third one failed.
    assert [record["record"] for record in records] == ["accepted"] * 2 + ["invocation"] * 6
    invocations = [record for record in records if record["record"] == "invocation"]
    assert [i for record in records if record["record"] == "accepted" for i in record["ids"]] == [
        i["id"] for i in invocations]
    assert start["record"] == "start" and len(invocations) == 6 and all(i["after"] == "absent" for i in invocations)
    assert end["failed"] is True and "server going away" in end["msg"] and end["summary"]["changed"] == 6
    assert len(admin.ids()) == 3


def test_an_audit_log_that_cannot_be_opened_fails_before_any_call(admin, tmp_path):
    ids = admin.add("completed")
    result = run(admin, state="purged", ids=ids, audit_log=str(tmp_path / "no" / "such" / "x"))
    assert result["failed"] and result["msg"].startswith("audit_log: cannot open") and admin.queries == []


def test_report_all_above_the_ceiling_warns_with_the_number(admin, monkeypatch):
    monkeypatch.setattr(_invocation_task, "REPORT_ALL_CEILING", 3)
    admin.add("completed", 5)
    listed = invocation_task(admin, state="purged", filters={"service": "Tester"}, check_mode=True)
    assert any("report: all lists 5 invocations, more than 3" in w for w in run_task(listed)["warnings"])
    quiet = invocation_task(admin, state="purged", filters={"service": "Tester"}, report="failed", check_mode=True)
    assert not any("report: all" in w for w in run_task(quiet)["warnings"])


@pytest.mark.parametrize("limit, said", [
    (1000, ["4 of 10 invocations done", "8 of 10 invocations done", "10 invocations done"]),
    (6, ["4 of 6 invocations done", "6 invocations done"]),
])
def test_a_long_paged_task_says_how_far_it_is_after_each_page(admin, monkeypatch, limit, said):
    """Of how many: what the run will take (the limit, when it cuts the selection), not what was read so far (the
    next page is read before the one before is counted)."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "4")
    admin.add("completed", 10)
    task = invocation_task(admin, state="purged", filters={"service": "Tester"}, report="failed", limit=limit)
    lines = []
    task.progress = lines.append
    run_task(task)
    assert [line.split(" (")[0] for line in lines] == said
    assert "(4 changed, 0 failed)" in lines[0] and lines[0].endswith("/s")


def test_a_call_whose_answers_were_all_lost_but_did_its_work_counts_as_changed(admin):
    ids = admin.add("suspended", 3)

    def lost(fake, invocation_id, action):
        fake.set(invocation_id, status="completed", completion_failure="[409] killed")  # it arrived and was done
        return RestateApiError("PATCH", f"/invocations/{invocation_id}/{action}", reason="connection",
                               message="('Connection aborted.', RemoteDisconnected(...))", admin_url="http://fake")

    admin.intercept = lost
    result = run(admin, state="killed", ids=ids)
    assert not result.get("failed") and result["summary"]["changed"] == 3, result
    assert all("no answer came" in item["note"] for item in result["invocations"])
    admin.intercept = lambda *unused: refused(503, "still no answer")  # and one that never arrived stays a failure
    fresh = admin.add("suspended")
    failed = run(admin, state="killed", ids=fresh)
    assert failed["failed"] and failed["summary"]["failed"] == 1


def test_a_paged_cancel_reads_the_pending_cancels_with_its_selection_in_one_query(admin, monkeypatch):
    # Cancels are requests: the invocations of an earlier run stay running with the signal in their journal, and
    # are not cancelled again (pending). The journal is read with the selection, once, not once a page (a 200,000
    # cancel spent 10 s in twenty joins of the journal, one a page).
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.1)
    ids = admin.add("running", 9)
    first = run(admin, state="cancelled", ids=ids[2:5])
    assert first["changed"] and first["summary"]["pending"] == 3
    admin.queries.clear()
    calls_before = len(admin.calls)
    rerun = run(admin, state="cancelled", filters={"service": "Tester"}, report="failed")
    assert rerun["summary"]["changed"] == 6 and rerun["summary"]["pending"] == 9, rerun["summary"]
    assert sorted(i for unused, i in admin.calls[calls_before:]) == sorted(ids[:2] + ids[5:]), "no cancel sent twice"
    assert [sql for sql in admin.queries if "sys_journal" in sql] == [
        sql for sql in admin.queries if "LEFT JOIN" in sql] and len(admin.queries) >= 1
    assert len([sql for sql in admin.queries if "sys_journal" in sql]) == 1, admin.queries
    again = run(admin, state="cancelled", filters={"service": "Tester"}, report="failed")
    assert again["summary"]["changed"] == 0 and again["summary"]["pending"] == 9, "the re-run sees every one pending"


def test_a_page_is_read_back_beside_the_calls_of_the_page_after_next_and_the_last_ones_at_the_end(
        admin, monkeypatch):
    """The server applies a page's calls while the next page's are sent; that page is read back once, beside the calls
    of the page after next; only the last page waits, for up to READBACK_SECONDS, on calls not applied."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    monkeypatch.setattr(_invocation_task, "READBACK_SECONDS", 0.5)
    ids = admin.add("running", 8)
    pages = [ids[0:2], ids[2:4], ids[4:6], ids[6:8]]
    admin.intercept = lambda *unused: ACCEPTED  # accepted, applied later: the read-back finds them running
    events = []
    query, actions = admin.query, admin.actions
    acting = {number: threading.Event() for number in range(len(pages))}
    overlapped = []

    def read(sql, columns=None, required=None):
        if "LIMIT" not in sql and "sys_journal" not in sql and "COUNT" not in sql:
            number = next(number for number, page in enumerate(pages) if page[0] in sql)
            if ("look", number) not in events and number + 2 < len(pages):
                overlapped.append(acting[number + 2].wait(5))  # this look waits until the calls it goes beside start
            events.append(("look", number))
        return query(sql, columns, required)

    def act(invocation_ids, *args, **kwargs):
        number = pages.index(list(invocation_ids))
        acting[number].set()
        result = actions(invocation_ids, *args, **kwargs)
        events.append(("act", number))
        return result

    monkeypatch.setattr(admin, "query", read)
    monkeypatch.setattr(admin, "actions", act)
    result = run(admin, state="paused", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["pending"] == 8 and result["summary"]["changed"] == 8
    assert overlapped == [True, True], "pages 0 and 1 are read back while the calls of pages 2 and 3 are sent"
    # Each page's calls are started before the answers of the page before are taken (here the fake makes them at
    # once); page 0 is read back once page 2's answers are awaited, page 1 once page 3's are.
    assert events[:4] == [("act", 0), ("act", 1), ("act", 2), ("act", 3)], events
    assert events[4:6] == [("look", 0), ("look", 1)], events
    looks_of_last = events[7:]
    assert events[6] == ("look", 2) and len(looks_of_last) >= 3 and set(looks_of_last) == {("look", 3)}, events


def read_backs(admin):
    """The read-back queries the run sent (they read the columns a read-back needs, in this order)."""
    after = "SELECT " + ", ".join(_invocation_task.AFTER_COLUMNS) + " FROM"
    return [sql for sql in admin.queries if sql.startswith(after)]


@pytest.mark.parametrize("order_by", ["id", "created_at"])
def test_a_page_is_read_back_by_its_range_and_one_gone_meanwhile_is_absent(admin, monkeypatch, order_by):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    monkeypatch.setattr(_invocation_task, "RANGE_READ_MIN", 1)
    ids = admin.add("suspended", 7)
    others = admin.add("suspended", 2, target_service_name="Other")  # in no page's range of ids: created after
    actions = admin.actions

    def act(invocation_ids, *args, **kwargs):
        errors = actions(invocation_ids, *args, **kwargs)
        if ids[4] in invocation_ids:
            admin.remove(ids[4])  # purged by someone else before the read-back
        return errors

    monkeypatch.setattr(admin, "actions", act)
    # A limit below the match reads oldest first, by created_at ranges; one above, in id order.
    limit = 6 if order_by == "created_at" else 100
    result = run(admin, state="killed", filters={"service": "Tester", "status": ["suspended"]}, report="failed",
                 limit=limit)
    limit = min(limit, len(ids))
    assert result["summary"]["changed"] == limit, result.get("msg")
    queries = read_backs(admin)
    assert queries and all(" IN (" not in sql and f"{order_by} >= " in sql and
                           "target_service_name = 'Tester'" in sql and "status" not in sql.split("WHERE")[1]
                           for sql in queries), queries
    assert [admin.status(i) for i in ids[:limit]] == ["completed"] * 4 + ["absent"] + ["completed"] * (limit - 5)
    assert result["summary"]["done"] == limit, result["summary"]
    assert [admin.status(i) for i in others] == ["suspended", "suspended"]


def test_a_range_holding_more_than_twice_its_page_reads_what_it_did_not_show_by_id(admin, monkeypatch):
    """Between the page's invocations lie many others that match the lifelong filters (completed ones, which the
    selection leaves out): the read by range stops at twice the page, and the rest of the page is read by id."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "4")
    monkeypatch.setattr(_invocation_task, "RANGE_READ_MIN", 1)
    running = []
    for unused in range(4):
        admin.add("completed", 3)
        running += admin.add("running")
    admin.intercept = lambda *unused: ACCEPTED  # accepted, not applied yet: each must be read back running
    result = run(admin, state="paused", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["changed"] == 4 and result["summary"]["pending"] == 4, result["summary"]
    queries = read_backs(admin)
    assert any(" IN (" not in sql and "LIMIT 8" in sql for sql in queries), queries
    assert any(" IN (" in sql for sql in queries), "what the bound left unseen was read by id"
    assert [admin.status(i) for i in running] == ["running"] * 4


@pytest.mark.parametrize("others, by_range", [(4, True), (5, False)])
def test_a_server_holding_many_invocations_per_id_read_gets_its_pages_read_back_by_id(admin, monkeypatch, others,
                                                                                      by_range):
    """Reading a range scans everything the server holds; an IN list costs the same whatever it holds."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    monkeypatch.setattr(_invocation_task, "RANGE_READ_MIN", 1)
    monkeypatch.setattr(_invocation_task, "RANGE_READ_HELD_PER_ID", 3)
    ids = admin.add("suspended", 2)
    admin.add("completed", others, target_service_name="Other")  # held: 6 (3 per id read) or 7
    result = run(admin, state="killed", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["done"] == 2 and [admin.status(i) for i in ids] == ["completed"] * 2
    queries = read_backs(admin)
    assert queries and all((" IN (" not in sql) == by_range for sql in queries), queries


def test_a_page_is_planned_while_the_calls_of_the_page_before_are_sent(admin, monkeypatch):
    """The next page is read and planned beside this page's calls (other ids: they cannot change)."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    ids = admin.add("suspended", 4)
    plan_batch, actions = _invocation_task.plan_batch, admin.actions
    second_page_planned = threading.Event()
    overlapped = []

    def planned(client, state, batch_ids, *args):
        items = plan_batch(client, state, batch_ids, *args)
        if ids[2] in batch_ids:
            second_page_planned.set()
        return items

    def act(invocation_ids, *args, **kwargs):
        if list(invocation_ids) == ids[:2]:
            overlapped.append(second_page_planned.wait(5))
        return actions(invocation_ids, *args, **kwargs)

    monkeypatch.setattr(_invocation_task, "plan_batch", planned)
    monkeypatch.setattr(admin, "actions", act)
    result = run(admin, state="cancelled", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["changed"] == 4, result.get("msg")
    assert overlapped == [True], "the second page is read and planned while the first page is cancelled"


@pytest.mark.parametrize("look_fails", [False, True])
def test_a_run_stopped_while_a_page_is_read_back_beside_the_calls_counts_every_item_once(admin, monkeypatch, look_fails):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    ids = admin.add("suspended", 6)
    query, actions = admin.query, admin.actions
    sent = []

    def read(sql, columns=None, required=None):
        if look_fails and "LIMIT" not in sql and "COUNT" not in sql and ids[0] in sql:
            raise RestateApiError("POST", "/query", message="connection reset")
        return query(sql, columns, required)

    def act(invocation_ids, *args, **kwargs):
        sent.append(list(invocation_ids))
        if len(sent) == 3:
            raise RestateApiError("PATCH", "/invocations/batch", message="connection refused")
        return actions(invocation_ids, *args, **kwargs)

    monkeypatch.setattr(admin, "query", read)
    monkeypatch.setattr(admin, "actions", act)
    result = run(admin, state="killed", filters={"service": "Tester"}, report="failed")
    assert result["failed"] and "connection refused" in result["msg"]
    summary = result["summary"]
    assert summary["matched"] == 6 and summary["changed"] == 6, summary
    assert summary["done"] + summary["failed"] + summary["pending"] + summary["already"] == 6, summary
    unconfirmed = {item["id"] for item in result["invocations"] if "outcome not confirmed" in item.get("error", "")}
    assert unconfirmed == set(ids[4:]) | (set(ids[:2]) if look_fails else set()), result["invocations"]
    assert [admin.status(i) for i in ids] == ["completed"] * 4 + ["suspended"] * 2


def test_a_run_stopped_while_the_next_pages_calls_are_out_takes_their_answers_and_reads_them_back(admin, monkeypatch):
    """Page 3's calls are started before page 2's answers are taken; when page 0's read-back fails meanwhile, the
    run still takes page 3's answers and reads it back: every item is reported once, as what the server did."""
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    ids = admin.add("suspended", 8)
    query = admin.query

    def read(sql, columns=None, required=None):
        if "LIMIT" not in sql and "COUNT" not in sql and ids[0] in sql:
            raise RestateApiError("POST", "/query", message="connection reset")
        return query(sql, columns, required)

    monkeypatch.setattr(admin, "query", read)
    result = run(admin, state="killed", filters={"service": "Tester"}, report="failed")
    assert result["failed"] and "connection reset" in result["msg"]
    assert admin.started == [ids[0:2], ids[2:4], ids[4:6], ids[6:8]]
    summary = result["summary"]
    assert summary["matched"] == 8 and summary["changed"] == 8 and summary["done"] == 6, summary
    unconfirmed = {item["id"] for item in result["invocations"] if "outcome not confirmed" in item.get("error", "")}
    assert unconfirmed == set(ids[:2]), result["invocations"]
    assert [admin.status(i) for i in ids] == ["completed"] * 8


def test_a_run_stopped_while_sending_reads_back_the_page_before_and_leaves_this_one_unconfirmed(admin, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    ids = admin.add("suspended", 4)
    actions = admin.actions
    sent = []

    def act(invocation_ids, *args, **kwargs):
        sent.append(list(invocation_ids))
        if len(sent) == 2:
            raise RestateApiError("PATCH", "/invocations/batch", message="connection refused")
        return actions(invocation_ids, *args, **kwargs)

    monkeypatch.setattr(admin, "actions", act)
    result = run(admin, state="killed", filters={"service": "Tester"}, report="failed")
    assert result["failed"] and "connection refused" in result["msg"]
    assert result["summary"]["changed"] == 4 and result["summary"]["done"] == 2 and result["summary"]["failed"] == 2
    assert {item["id"] for item in result["invocations"]} == set(ids[2:])
    assert all("outcome not confirmed" in item["error"] for item in result["invocations"])
    assert [admin.status(i) for i in ids] == ["completed", "completed", "suspended", "suspended"]


@pytest.mark.parametrize("options, counted", [({}, True), ({"check_mode": True}, False), ({"wait": True}, False),
                                              ({"kill_after": 5.0}, False)])
def test_what_the_server_holds_is_counted_only_when_pages_are_read_back_by_look(admin, monkeypatch, options,
                                                                                counted):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "2")
    admin.add("suspended", 3)
    run(admin, state="cancelled", filters={"service": "Tester"}, report="failed", **options)
    assert ("SELECT COUNT(*) AS n FROM sys_invocation" in admin.queries) == counted, admin.queries


def test_a_selection_whose_answer_breaks_off_is_read_again_after_its_last_row(admin, monkeypatch):
    monkeypatch.setenv("RESTATE_ADMIN_TEST_PAGE_ROWS", "3")
    ids = admin.add("completed", 8)
    rows = admin.rows
    selects = []

    def breaking(sql, columns=None, required=None):
        selects.append(sql)
        for number, row in enumerate(rows(sql, columns, required)):
            if len(selects) == 1 and number == 4:  # the first answer breaks off in the second page
                raise RestateApiError("POST", "/query", message="connection reset by peer", reason="connection")
            yield row

    monkeypatch.setattr(admin, "rows", breaking)
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed")
    assert result["summary"]["changed"] == 8 and admin.ids() == []
    assert sorted(i for unused, i in admin.calls) == sorted(ids), "each invocation acted on once"
    assert len(selects) == 2 and f"id > '{sorted(ids)[3]}'" in selects[1], selects


@pytest.mark.parametrize("error", [
    RestateApiError("POST", "/query", message="connection reset by peer", reason="connection"),
    RestateApiError("POST", "/query", status=500, message="query failed"),
])
def test_a_selection_that_breaks_off_with_no_row_read_again_or_is_refused_fails_naming_it(admin, monkeypatch, error):
    admin.add("completed", 3)
    selects = []

    def failing(sql, columns=None, required=None):
        selects.append(sql)
        raise error
        yield  # pylint: disable=unreachable

    monkeypatch.setattr(admin, "rows", failing)
    result = run(admin, state="purged", filters={"service": "Tester"}, report="failed")
    assert result["failed"] and error.message in result["msg"] and len(admin.ids()) == 3
    assert len(selects) == (_invocation_task.SELECTION_RESUMES + 1 if error.status is None else 1), selects
