# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_invocation task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.restate.admin.plugins.module_utils._audit_log import AuditLog
from ansible_collections.restate.admin.plugins.module_utils._bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._invocation_report import (
    Item,
    Tally,
    version_tuple,
    warn_about_server,
)
from ansible_collections.restate.admin.plugins.module_utils._invocation_state import (
    STATES,
    dropped_cancel_reason,
    failed_again_note,
    looked_at,
    pending_reason,
    plan,
    settled,
)
from ansible_collections.restate.admin.plugins.module_utils._invocations_api import new_invocation_id
from ansible_collections.restate.admin.plugins.module_utils._poll import Poll
from ansible_collections.restate.admin.plugins.module_utils._queries_api import ID
from ansible_collections.restate.admin.plugins.module_utils._restate_module import FILTERS_ARGSPEC
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    ORDERS,
    after_condition,
    after_id_condition,
    between_condition,
    deployment_to_resume_on,
    ids_condition,
    lifelong_conditions,
    normalize_filters,
    select_sql,
    sql_literal,
    validate_invocation_id,
    where_conditions,
    where_sql,
)
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

# What the read-back after acting and the polling of wait need: the status, and what plan() and settled() look at.
AFTER_COLUMNS = ["id", "status", "journal_size", "modified_at", "last_start_at", "retry_count"]
# The columns of sys_invocation that are never NULL and that the decisions and the report rely on, when read (see
# QueriesApi.query): a row without one is an answer of the wrong shape.
NEVER_NULL = ("id", "status", "target", "created_at")
# Ids per query: an IN list of 20,000 ids is under a megabyte of SQL; 12,000 took 0.25 s on a 1.7 server, so one
# query per polling round covers a whole bulk task.
IDS_PER_QUERY = 20000
# A filters selection is read as one query whose answer is parsed as it arrives, and acted on in pages of this many
# rows: only a page is held at a time, and the server reads the selection once (a query per page read everything it
# holds each time: 20 pages of a 200,000 cancel took 17 s of selection queries beside the calls).
PAGE_ROWS = 10000
# A selection whose answer breaks off (a dropped connection, a node restarting) is read again after its last row
# read, at most this many times in a row without a row read in between.
SELECTION_RESUMES = 4
# report=all lists every item, and Ansible copies a task's result several times: 100,000 listed took 128 MB peak
# (make bench), growing with the count. Above this many, the task warns and names report=failed.
REPORT_ALL_CEILING = 100000
# Values repeated in every row, shared as one string each (100,000 rows: about 15 MB less).
REPEATED_COLUMNS = ("status", "target", "target_service_ty")
IDS_PER_JOURNAL_QUERY = 500
# How a delivered cancel shows in sys_journal on 1.7 (the built-in cancel signal has index 1).
CANCEL_SIGNAL_TYPE = "'Notification: Signal'"
CANCEL_SIGNAL_LIKE = "'%{\"SignalIndex\":1}%'"
# Without wait, how long the read-back after the calls looks for the server applying them (a cancel of a suspended
# invocation shows within milliseconds; one the server applies later does not, and is reported as pending).
READBACK_SECONDS = 1.0
# From this many ids, a page is read back by its range rather than by an IN list of its ids: parsing the list is
# most of such a query's cost (10,000 ids: 0.33 s against 0.10 s for their range on a 1.7 server holding 30,000
# invocations). A range is read by scanning every invocation the server holds (0.19 s for 10,000 ids when it holds
# 200,000), an IN list costs the same whatever it holds: ranges only while it holds at most this many per id read.
RANGE_READ_MIN = 500
RANGE_READ_HELD_PER_ID = 30


SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "id": {"type": "str"},
        "ids": {"type": "list", "elements": "str"},
        "filters": FILTERS_ARGSPEC,
        "state": {"type": "str", "required": True, "choices": list(STATES)},
        "limit": {"type": "int", "default": 1000},
        "max_matched": {"type": "int"},
        "wait": {"type": "bool", "default": False},
        "wait_timeout": {"type": "int", "default": 120},
        "kill_after": {"type": "float"},
        "deployment": {"type": "str"},
        "from_entry": {"type": "int"},
        "concurrency": {"type": "int", "default": 512},
        "batch_calls": {"type": "bool", "default": True},
        "report": {"type": "str", "default": "all", "choices": ["all", "failed"]},
        # No default: required_one_of counts an option with a default as given.
        "all_invocations": {"type": "bool"},
        "audit_log": {"type": "path"},
    },
    "mutually_exclusive": [["id", "ids", "filters"]],
    "required_one_of": [["id", "ids", "filters", "all_invocations"]],
}


def check_options(params) -> dict:
    """InputError naming the option, before any request; returns the filters normalized ({} when none are given)."""
    state = params["state"]
    for option, minimum in (("limit", 1), ("concurrency", 1), ("wait_timeout", 0)):
        if params[option] < minimum:
            raise InputError(f"{option} must be {minimum} or more, got {params[option]}")
    for wanted in STATES.values():
        if wanted.option and params[wanted.option] is not None and state != wanted.name:
            raise InputError(f"{wanted.option} applies only to state={wanted.name}, not state={state}; remove it")
    if params["max_matched"] is not None:
        if params["max_matched"] < 0:
            raise InputError(f"max_matched must be 0 or more, got {params['max_matched']}")
        if params["filters"] is None and not params["all_invocations"]:
            raise InputError("max_matched guards a filters selection; with id or ids the invocations are named "
                             "already: remove max_matched")
    if params["kill_after"] is not None and not 0 <= params["kill_after"] < math.inf:
        raise InputError(f"kill_after must be 0 or more seconds, got {params['kill_after']}")
    if params["from_entry"] is not None and params["from_entry"] < 0:
        raise InputError(f"from_entry must be a journal index (0 or more), got {params['from_entry']}")
    if params["deployment"] is not None:
        params["deployment"] = deployment_to_resume_on(params["deployment"])
    # Everything the work reads from the options is checked here, before task.connect(): a bad value is reported
    # as such even when no server answers.
    for invocation_id in params["ids"] or ([params["id"]] if params["id"] is not None else []):
        validate_invocation_id(invocation_id, "ids" if params["ids"] is not None else "id")
    return normalize_filters(params["filters"])


def check_selection(params, filters):
    """Refuse a filters selection that names nothing (every invocation of the server) unless all_invocations says so
    (``filters``: params' filters, normalized).

    The same rule as the bulk_cancel role's: a task that changes invocations must name what it changes."""
    if params["all_invocations"]:
        if params["id"] is not None or params["ids"] is not None:
            raise InputError("all_invocations: true selects every invocation; it cannot go with id or ids. Remove "
                             "all_invocations, or use filters instead of id/ids")
        return
    if params["filters"] is not None and not filters:
        raise InputError(f"filters is empty (no filter has a value), which selects every invocation on the server; "
                         f"nothing was {params['state']}. Name at least one filter, e.g. filters: {{service: "
                         "Checkout, status: [suspended]}, or set all_invocations: true to act on every invocation "
                         "(up to limit) on purpose")
    if params["id"] is None and params["ids"] is None and params["filters"] is None:
        raise InputError("all_invocations: false selects nothing; give id, ids or filters, or set "
                         "all_invocations: true to act on every invocation (up to limit) on purpose")


def selection_conditions(filters, state) -> list:
    """The SQL conditions of a filters selection (normalized) for a state: the filters, and the invocations the state
    applies to."""
    conditions = where_conditions(filters)
    conditions.append(STATES[state].selectable)
    return conditions


def check_matched(client, params, filters):
    """The count guard: refuse, before any change, a selection that matches more than max_matched; returns the
    count, which the pages then need not read again."""
    conditions = selection_conditions(filters, params["state"])
    matched = client.count(f"SELECT COUNT(*) AS n FROM sys_invocation{where_sql(conditions)}")
    if matched > params["max_matched"]:
        raise InputError(f"{matched} invocations match the selection for state={params['state']}, more than "
                         f"max_matched={params['max_matched']} allows; nothing was {params['state']}. Narrow the "
                         "filters, or raise max_matched if that many is intended")
    return matched


def check_deployment_registered(client, deployment):
    """Refuse, before any change, to resume on a deployment id the server does not know (it would fail every call)."""
    if deployment in (None, "keep", "latest"):
        return
    if not client.query(f"SELECT id FROM sys_deployment WHERE id = {sql_literal(deployment)}", columns=["id"]):
        raise InputError(f"deployment: {str(deployment)[:80]!r} is not a deployment registered on the server; "
                         "give the id of a registered one (dp_...), latest, or keep")


def required_of(columns) -> dict:
    return {column: str for column in columns if column in NEVER_NULL}


def state_columns(state) -> list:
    """The columns read before acting: what the result shows, and what plan() and settled() read for the state."""
    return ["id", "target", "status", *STATES[state].columns]


def read_rows(client, ids, columns) -> dict:
    """{id: sys_invocation row} for the ids the server knows."""
    rows, values = {}, {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        for row in client.query(select_sql(columns, [ids_condition(chunk)], "oldest_first"), columns=columns,
                                required=required_of(columns)):
            rows[row["id"]] = shared(row, values)
    return rows


def select_rows(client, filters, state, limit):
    """(rows oldest first, at most limit; how many match in all) for a filters selection, read in pages."""
    pages = Pages(client, filters, state, limit, PAGE_ROWS, id_order=False)  # listed oldest first
    rows = [row for page in pages for row in page.values()]
    return rows, len(rows) + pages.beyond


def shared(row, values):
    """The row, with its repeated values as one shared string each: ``values`` holds the first of each, and is the
    caller's (a page's: what a server answers cannot grow it beyond three values a row of the page)."""
    for column in REPEATED_COLUMNS:
        value = row.get(column)
        if type(value) is str:  # pylint: disable=unidiomatic-typecheck
            row[column] = values.setdefault(value, value)
    return row


def cancel_pending(client, ids, span=None) -> set:
    """Ids whose journal holds the built-in cancel signal (signal index 1): a cancel was already delivered.
    ``span``: (column, first, last), the range of a page's ids in the order it was read (created_at or id), which
    bounds the join below to about the page."""
    if len(ids) > IDS_PER_JOURNAL_QUERY:
        # For thousands of ids, one join over the active invocations is several times faster than an IN list
        # (10,000 ids: 0.09 s against 0.53 s on a 1.7 server). Unbounded, it would also return every invocation
        # cancelled by the pages before and not ended yet: a 200,000 cancel read up to a hundred thousand per page.
        within = ""
        if span:
            within = f" AND {between_condition(*span, alias='i')}"
        sql = ("SELECT DISTINCT j.id FROM sys_journal j JOIN sys_invocation i ON j.id = i.id WHERE i.status <> "
               f"'completed'{within} AND j.entry_type = {CANCEL_SIGNAL_TYPE} AND j.entry_lite_json LIKE "
               f"{CANCEL_SIGNAL_LIKE}")
        wanted = set(ids)
        return {row["id"] for row in client.query(sql, required=ID) if row["id"] in wanted}
    sql = (f"SELECT DISTINCT id FROM sys_journal WHERE {ids_condition(ids)} AND entry_type = {CANCEL_SIGNAL_TYPE} "
           f"AND entry_lite_json LIKE {CANCEL_SIGNAL_LIKE}")
    return {row["id"] for row in client.query(sql, required=ID)}


def existing_restarts(client, ids) -> dict:
    """{original id: newest invocation restarted from it}."""
    restarts = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        restarted_from = ids_condition(chunk, column="restarted_from")
        for row in client.query(f"SELECT id, restarted_from FROM sys_invocation WHERE {restarted_from} "
                                "ORDER BY created_at",
                                required={"id": str, "restarted_from": str}):
            restarts[row["restarted_from"]] = row["id"]
    return restarts


def act(client, items, state, params):
    """Send the state's call for every item that needs one; record errors and new ids on the items."""
    start_act(client, items, state, params)()


def start_act(client, items, state, params):
    """act(), begun: returns the function that records the errors on the items once every call is answered (batch
    calls queue behind those started before, see InvocationsApi.start_actions; other calls are made at once)."""
    wanted = STATES[state]
    action = wanted.action
    value = params[wanted.option] if wanted.sent_as else None
    query = {wanted.sent_as: value} if value not in (None, "") else None

    if state != "restarted":
        answered = client.invocations.start_actions([item["id"] for item in items], action, params=query,
                                                    concurrency=params["concurrency"])

        def record():
            for item, error in zip(items, answered()):
                if error is not None:
                    item["error"] = f"{item['id']}: {action} failed: {error}"
                    item.refused = getattr(error, "status", None) is not None
                    item["changed"] = False
        return record

    def restart(item):
        return client.invocations.action(item["id"], action, params=query)

    outcomes = run_each(restart, items, min(params["concurrency"], 64))
    # An answer lost on the way back (dropped connection, time-out, gateway error) may hide a restart the
    # server did make; restarted_from tells, so the task reports it instead of a failure a re-run would repeat.
    unanswered = [item["id"] for item, unused_response, error in outcomes
                  if error is not None and getattr(error, "status", None) in (None, 502, 503, 504)]
    made = existing_restarts(client, unanswered) if unanswered else {}
    for item, response, error in outcomes:
        if error is not None and item["id"] in made:
            item["new_invocation_id"] = made[item["id"]]
            item["note"] = "the answer to restart-as-new was lost; the restart was found by its restarted_from"
        elif error is not None:
            item["error"] = f"{item['id']}: {action} failed: {error}"
            item["changed"] = False
        else:
            try:
                item["new_invocation_id"] = new_invocation_id(response, item["id"], client.admin_url)
            except ValueError as error:
                item["error"] = f"{item['id']}: restart-as-new: {error}"
    return lambda: None


def wait_for(client, items, state, params, progress=None):
    """Poll all acted-on invocations with one query per round until settled; kill_after kills cancel-resistant ones.
    ``progress`` is told how many have settled after each round."""
    befores = {item["id"]: item.row for item in items}
    waiting = {item["id"]: item for item in items}
    poll = Poll(params["wait_timeout"])
    for unused_round in poll.rounds():
        rows = read_rows(client, list(waiting), AFTER_COLUMNS)
        for invocation_id in [i for i in waiting if settled(state, befores[i], rows.get(i))]:
            del waiting[invocation_id]
        if progress:
            progress(f"waiting: {len(items) - len(waiting)} of {len(items)} reached state={state} "
                     f"({poll.elapsed():.0f}s of wait_timeout={params['wait_timeout']}s)")
        if not waiting:
            poll.done()
        elif poll.at(params["kill_after"]):
            poll.again()
            to_kill = list(waiting.values())
            errors = client.invocations.actions([item["id"] for item in to_kill], "kill",
                                                concurrency=params["concurrency"])
            for item, error in zip(to_kill, errors):
                item["killed_after_cancel"] = error is None
                if error is not None:
                    item["error"] = f"{item['id']}: kill after cancel failed: {error}"
                    waiting.pop(item["id"], None)
    for item in waiting.values():
        item.setdefault("error", f"{item['id']} did not reach state={state} within wait_timeout={params['wait_timeout']}s")


def run(task):
    """Read, plan, act, wait and report, page by page for a filters selection with report=failed; ends with
    ``task.exit_json`` or ``task.fail_json``."""
    params = task.params
    tally = Tally(task)
    started = time.monotonic()
    audit = None
    try:
        filters = check_options(params)
        check_selection(params, filters)
        if params["audit_log"]:
            audit = AuditLog(params["audit_log"], "restate.admin.restate_invocation", params, task.check_mode,
                             warn=task.warn, summary=tally.summary)
        named = params["ids"] if params["ids"] is not None else ([params["id"]] if params["id"] else None)
        client = task.connect(pool_size=min(params["concurrency"], 64), batch_calls=params["batch_calls"])
        if audit is not None:
            client.invocations.on_accepted = audit.accepted
        matched = check_server_side(client, params, named, filters)
        drive(task, client, tally, filters, audit, named, started, matched)
    except Exception as error:  # pylint: disable=broad-exception-caught
        fail_stopped(task, tally, audit, error)
    report_run(task, tally, audit, named)


def check_server_side(client, params, named, filters):
    """The checks that need the server, before any change: the deployment to resume on exists; a selection is not
    larger than max_matched (its count returned, so that the pages need not read it again; else None)."""
    if params["state"] == "resumed":
        check_deployment_registered(client, params["deployment"])
    if named is None and params["max_matched"] is not None:
        return check_matched(client, params, filters)
    return None


def fail_stopped(task, tally, audit, error):
    """Fail the task with what was done before ``error`` stopped it, in the result and the audit file."""
    outcome = tally.outcome()
    if audit is not None:
        audit.end(outcome["summary"], True, str(error))
    if tally.counts["inspected"] and isinstance(error, (InputError, RestateApiError)):
        task.fail_json(msg=f"{error}. Before it stopped: {tally.line()}", **outcome)
    task.fail_on(error, **outcome)


def report_run(task, tally, audit, named):
    """End the task with the run's result: its warnings, the failures first in the message, the audit file's end."""
    state = task.params["state"]
    inspected = tally.counts["inspected"]
    if named is None and tally.matched > inspected:
        task.warn(f"{tally.matched} invocations match the filters; this run acts on the first {inspected} (limit). "
                  "Run again, or raise limit, for the rest.")
    warn_about_server(task, tally)
    if tally.list_all and inspected > REPORT_ALL_CEILING:
        task.warn(f"report: all lists {inspected} invocations, more than {REPORT_ALL_CEILING}: Ansible "
                  "holds several copies of such a result on the controller (100,000 listed: about 130 MB). Use "
                  "report: failed, which works page by page and lists only failures (with audit_log for a record of "
                  "every invocation)")
    outcome = tally.outcome()
    if tally.missing_named and named is not None:
        missing = tally.missing_named
        task.warn(f"{tally.counts['missing']} invocation(s) not found on the server, reported as already {state}: "
                  f"{', '.join(missing[:20])}{' ...' if tally.counts['missing'] > 20 else ''}")
    failed = tally.counts["failed"]
    msg = tally.line()
    if failed:
        errors = "; ".join(tally.first_errors)
        more = f" (and {failed - 5} more, see invocations)" if failed > 5 else ""
        msg = f"{failed} of {inspected} invocations could not be brought to state={state}: {errors}{more}. {msg}"
    if audit is not None:
        audit.end(outcome["summary"], bool(failed), msg if failed else None)
    if failed:
        task.fail_json(msg=msg, **outcome)
    task.exit_json(msg=msg, **outcome)


def drive(task, client, tally, filters, audit=None, named=None, started=None, matched=None):
    """Bring the invocations of ``task.params`` (``named`` ids, or the selection of ``filters``, normalized once by
    the caller so that a relative time means the same moment in every query of the run) to its state, batch by
    batch, adding every item to ``tally`` (and ``audit``); raises on a client error after adding what was done.
    ``matched``: the selection's count, when check_matched read it.

    The server is kept busy with calls: while one page's calls are sent, the next page is read and planned (see
    Pages), then its calls are queued behind them (see start_act), so that the server is not left with one call at
    a time at the end of each page; the page sent two before is read back, its calls having had a page's worth of
    time to be applied; the last pages are read back at the end, the last for up to READBACK_SECONDS. With wait,
    each page is sent and waited for in turn instead."""
    params = task.params
    state = params["state"]
    started = time.monotonic() if started is None else started
    out = []  # batches whose calls were started, answers not taken yet: ((items, acted, range), record or None)
    sent = []  # batches whose calls were all answered and that are not read back yet: (items, acted, range)
    reading = None
    # Waiting polls and tells progress for long: it stays in this thread, after the next page's calls.
    beside = not (params["wait"] or params["kill_after"] is not None)
    looks = beside and STATES[state].waitable and not task.check_mode  # else nothing is read back by range
    with ThreadPoolExecutor(1) as confirmer:

        def land():
            """Takes the answers of the oldest batch out (the calls of the one after it go meanwhile); the batch
            sent two before it is read back beside them."""
            nonlocal reading
            if beside and len(sent) == 2:
                reading = confirmer.submit(confirm, task, client, *sent[0], params, settle=False)
            batch, record = out.pop(0)
            try:
                record()
            except Exception:
                out.insert(0, (batch, None))  # what its calls did is not known
                raise
            sent.append(batch)
            if reading is not None:
                reading, done = None, reading
                done.result()
                add_batch(task, tally, sent.pop(0)[0], audit, started)
            elif not beside and len(sent) == 2:
                confirm(task, client, *sent[0], params, settle=False)
                add_batch(task, tally, sent.pop(0)[0], audit, started)

        try:
            for items, where in batches(client, params, tally, named, filters, matched, looks):
                if audit is not None:
                    audit.acting(items)
                batch = (items, [item for item in items if item["changed"]], where)
                out.append((batch, None))
                out[-1] = (batch, start_send(task, client, batch[1], state, params))
                if len(out) == 2 or not beside:
                    land()
            while out:
                land()
            while sent:
                confirm(task, client, *sent[0], params, settle=len(sent) == 1)
                add_batch(task, tally, sent.pop(0)[0], audit, started)
        except Exception as error:  # pylint: disable=broad-exception-caught
            if reading is not None and reading.exception() is None:
                tally.add(sent.pop(0)[0], audit)  # read back beside the calls that failed
            stopped(task, client, tally, audit, sent, out, error)
            raise


def stopped(task, client, tally, audit, sent, out, error):
    """What a run stopped by ``error`` did: the answers of the batches whose calls were started are taken, and the
    batches sent in full are read back if the server still answers; the calls of a batch whose sending failed (its
    record None) may or may not have arrived."""
    sending = []
    for batch, record in out:
        try:
            if record is not None:
                record()
                sent.append(batch)
                continue
        except Exception:  # pylint: disable=broad-exception-caught
            pass
        sending.append(batch[0])
    for items, acted, where in sent:
        try:
            confirm(task, client, items, acted, where, task.params, settle=False)
        except Exception:  # pylint: disable=broad-exception-caught
            unconfirmed(items, error)
        tally.add(items, audit)
    for items in sending:
        unconfirmed(items, error)
        tally.add(items, audit)


def add_batch(task, tally, items, audit, started):
    tally.add(items, audit)
    task.progress(tally.progress(started))


def unconfirmed(items, error):
    """Say for each item whose call may have been sent that its outcome was not confirmed: ``error`` stopped the run."""
    for item in items:
        if item["changed"] and item["after"] is None and "error" not in item:
            item["error"] = f"{item['id']}: outcome not confirmed ({error}); run the task again to finish"
        elif item["after"] is None:
            item["after"] = item["before"]


def batches(client, params, tally, named, filters, matched, looks=False):
    """The invocations to act on, a batch at a time: (planned items, the SQL conditions of the batch's range, which
    every one of its invocations keeps matching, or None). ``tally.matched`` counts what the selection matches as it
    is read; ``looks``: whether the batches will be read back by look() (only it reads by range)."""
    state = params["state"]
    if named is not None:
        ids = list(dict.fromkeys(validate_invocation_id(i, "ids" if params["ids"] else "id") for i in named))
        tally.matched = len(ids)
        yield plan_batch(client, state, ids, read_rows(client, ids, state_columns(state))), None
    elif params["report"] == "failed":
        # Page by page: only the counts and the failures outlive a page, so memory stays flat. A page is planned
        # as it is read, beside the calls of the page before (another page's ids: those calls cannot change it).
        lifelong = lifelong_conditions(filters)

        def prepare(rows, span, pending):
            ranged = pages.held is not None and pages.held <= RANGE_READ_HELD_PER_ID * len(rows)
            return plan_batch(client, state, list(rows), rows, span, pending), (
                lifelong + [between_condition(*span)] if ranged else None)

        pages = Pages(client, filters, state, params["limit"], page_rows(), matched=matched, prepare=prepare,
                      count_held=looks, pending_cancels=state == "cancelled")
        for items, where in pages:
            tally.matched += len(items)
            tally.total = pages.total
            yield items, where
        tally.matched += pages.beyond
    else:
        selected, tally.matched = select_rows(client, filters, state, params["limit"])
        rows = {row["id"]: row for row in selected}
        del selected
        yield plan_batch(client, state, list(rows), rows), None


def page_rows() -> int:
    """Rows per page of a page-by-page selection: PAGE_ROWS, or RESTATE_ADMIN_TEST_PAGE_ROWS from the environment
    (for tests that want several pages of a few invocations)."""
    try:
        return max(1, int(os.environ.get("RESTATE_ADMIN_TEST_PAGE_ROWS", PAGE_ROWS)))
    except ValueError:
        return PAGE_ROWS


class Pages:
    """The rows of a filters selection, one page ({id: row}) at a time, from one query read as its answer arrives
    (QueriesApi.rows): oldest first when the limit takes only part of what matches; in id order when it takes all of
    it, so that each page is one range of partition keys and every batch call meets few partitions (1.7: a purge in
    id order takes the server about half the time of one in creation order); ``id_order=False`` keeps creation order,
    and ``matched``, when the caller counted the selection already, spares counting it again. The next page is read
    while the one given is acted on: it comes after the last row of this one, so acting on this one cannot change
    it. An answer that breaks off is asked again after the last row read (keyset on created_at, id).

    ``prepare(rows, span, pending)``, when given, turns a page into what is given, in the same thread as its read;
    with ``pending_cancels`` the query also reads which invocations hold a cancel not applied yet (the journal once
    for the whole selection, not once a page), given as ``pending`` (a set of ids; else None). ``beyond`` is set at
    the end: how many more match after the last row read (the limit was reached), 0 otherwise; ``total``: how many
    the pages will give, once counted (id order); ``held``: with ``count_held``, how many invocations the server
    holds in all. A page's span: its range, as (column, first, last)."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, client, filters, state, limit, rows_per_page, id_order=True, matched=None, prepare=None,
                 count_held=False, pending_cancels=False):
        self.client = client
        self.prepare = prepare
        self.count_held = count_held
        self.pending_cancels = pending_cancels
        self.held = None
        self.id_order = id_order
        self.matched = matched
        self.conditions = selection_conditions(filters, state)
        self.columns = state_columns(state) + ["created_at"]
        self.limit = limit
        self.rows_per_page = rows_per_page
        self.beyond = 0
        self.total = None
        self.order = "oldest_first"
        self.seen = 0
        self.last = None  # the keyset of the last row read
        self.stream = None

    def __iter__(self):
        if self.id_order:
            matched = self._count() if self.matched is None else self.matched
            self.total = min(matched, self.limit)
            if matched <= self.limit:
                self.order = "id_order"
        if self.count_held:
            self.held = self.client.count("SELECT COUNT(*) AS n FROM sys_invocation")
        try:
            with ThreadPoolExecutor(1) as reader:
                upcoming = reader.submit(self._read)
                while True:
                    page, size = upcoming.result()
                    if not size:
                        return
                    more = size == self.rows_per_page and self.seen < self.limit
                    if more:
                        upcoming = reader.submit(self._read)
                    yield page
                    if not more:
                        break
        finally:
            if self.stream is not None:
                self.stream.close()
        if self.seen >= self.limit:
            self.beyond = self._count(self.last)

    def _after(self, last) -> list:
        if last is None:
            return self.conditions
        return self.conditions + [after_id_condition(last) if self.order == "id_order" else after_condition(last)]

    def _count(self, last=None) -> int:
        return self.client.count(f"SELECT COUNT(*) AS n FROM sys_invocation{where_sql(self._after(last))}")

    def _sql(self) -> str:
        """The query of the rows after the last one read, up to the limit."""
        left = self.limit - self.seen
        if not self.pending_cancels:
            return select_sql(self.columns, self._after(self.last), self.order, left)
        order = ", ".join(f"s.{key}" for key in ORDERS[self.order].split(", "))
        return (f"SELECT s.*, c.signalled_id FROM ({select_sql(self.columns, self._after(self.last), self.order)}) s "
                f"LEFT JOIN (SELECT DISTINCT id AS signalled_id FROM sys_journal WHERE entry_type = "
                f"{CANCEL_SIGNAL_TYPE} AND entry_lite_json LIKE {CANCEL_SIGNAL_LIKE}) c ON s.id = c.signalled_id "
                f"ORDER BY {order} LIMIT {left}")

    def _next_row(self):
        """The next row of the selection, or None at its end; an answer that broke off is asked for again."""
        failures = 0
        while True:
            if self.stream is None:
                self.stream = self.client.rows(self._sql(), columns=self.columns, required=required_of(self.columns))
            try:
                return next(self.stream, None)
            except RestateApiError as error:
                self.stream = None
                failures += 1
                resumable = error.status is None and error.reason in ("connection", "timeout")
                if not resumable or failures > SELECTION_RESUMES:
                    raise

    def _read(self):
        """(the next page as {id: row}, or as prepared; its size)."""
        rows, pending = {}, (set() if self.pending_cancels else None)
        first, values = None, {}
        while len(rows) < self.rows_per_page and self.seen < self.limit:
            row = self._next_row()
            if row is None:
                break
            self.seen += 1
            self.last = {"created_at": row.pop("created_at"), "id": row["id"]}
            if self.pending_cancels and row.pop("signalled_id", None) is not None:
                pending.add(row["id"])
            first = first or dict(self.last)
            rows[row["id"]] = shared(row, values)
        if not rows:
            return {}, 0
        column = "id" if self.order == "id_order" else "created_at"
        span = (column, first[column], self.last[column])
        return (self.prepare(rows, span, pending) if self.prepare else rows), len(rows)


def plan_batch(client, state, ids, rows, span=None, pending=None) -> list:
    """The planned items of a batch of ids, with what planning needs to read (pending cancels, earlier restarts);
    ``span``: the page's range (column, first, last), when it is a page; ``pending``: the ids holding a cancel not
    applied yet, when read with the page (else they are read here)."""
    active_ids = [i for i in ids if i in rows and rows[i]["status"] != "completed"]
    if pending is None:
        pending = cancel_pending(client, active_ids, span) if state == "cancelled" and active_ids else set()
    completed_ids = [i for i in ids if i in rows and rows[i]["status"] == "completed"]
    restarts = existing_restarts(client, completed_ids) if state == "restarted" and completed_ids else {}
    return [plan_item(state, invocation_id, rows.get(invocation_id), invocation_id in pending,
                      restarts.get(invocation_id)) for invocation_id in ids]


def plan_item(state, invocation_id, row, cancel_is_pending, restarted_as) -> Item:
    """One item, planned."""
    decision = plan(state, row, cancel_pending=cancel_is_pending, restarted_as=restarted_as)
    changed = decision.changes and not decision.error
    # Five keys for a plain change: Ansible copies and converts every listed item, and its copy of a dict of
    # up to five keys is a third smaller than of six (100,000 listed: 128 MB peak instead of 151).
    report = {"id": invocation_id, "target": row["target"] if row else None,
              "before": row["status"] if row else "absent", "after": None, "changed": changed}
    if decision.note:
        report["note"] = decision.note
    if cancel_is_pending and not decision.changes and row and row["status"] != "completed":
        report["pending"] = pending_reason(state, row, row)
    if decision.error:
        report["error"] = f"{invocation_id} {decision.error}."
    if restarted_as:
        report["new_invocation_id"] = restarted_as
    # What is read back is compared with the row before only for these states.
    return Item(report, row=row if changed and STATES[state].keeps_row else None, expected=decision.expected)


def start_send(task, client, acted, state, params):
    """Start the calls of the items to act on (none in check mode); returns what records their answers."""
    if acted and not task.check_mode:
        return start_act(client, acted, state, params)
    return lambda: None


def confirm(task, client, items, acted, where, params, settle=True):
    """Set every item's after (and pending) from the server once the calls for ``acted`` are answered: wait, or
    look (for up to READBACK_SECONDS when ``settle``, else once: the calls sent since gave the server that time).
    ``where``: the batch's range (see read_after), or None."""
    state = params["state"]
    if acted and not task.check_mode:
        answered = [item for item in acted if "error" not in item]
        if answered and STATES[state].waitable and (params["wait"] or params["kill_after"] is not None):
            wait_for(client, answered, state, params, task.progress)
        elif answered and STATES[state].waitable:
            look(client, answered, state, READBACK_SECONDS if settle else 0, where)
        else:
            # The server answers a purge or a journal purge once it is done, and a restart with the new id; the
            # invocation itself is then absent, or completed.
            for item in answered:
                item["after"] = item.expected
        # A call refused although the invocation is in the wanted state was either repeated after its first answer
        # was lost (the first one did the work: changed), or was the only one and another run got there first
        # (unchanged): without a repeat in this run, it can only be the latter.
        read_back(client, [item for item in acted if item["after"] is None], state, client.repeats > 0)
    if STATES[state].waitable:
        mark_pending(task, [item for item in acted if "error" not in item and item["changed"]], state, params)
    for item in items:
        if item["after"] is None:
            item["after"] = item.expected if item["changed"] else item["before"]


def mark_pending(task, items, state, params):
    """Say of each acted-on item what is left to happen: a request the server has not applied (pending), or a note
    that a resumed invocation failed again. In check mode, from the expected status, so that --check counts what
    the real run will count: a cancel of a paused invocation stays pending until something resumes it."""
    drops_cancels = state == "cancelled" and (version_tuple(task.server_version) or (1, 7)) < (1, 7)
    for item in items:
        now = {"status": item.expected} if task.check_mode else item.now
        dropped = drops_cancels and dropped_cancel_reason(task.server_version, item["before"], now)
        reason = None if task.check_mode and state == "resumed" else pending_reason(state, item.row, now)
        note = None if task.check_mode else failed_again_note(state, item.row, now)
        if task.check_mode and reason and params["kill_after"] is not None:
            # kill_after would kill what the cancel leaves pending.
            item.expected, item["killed_after_cancel"] = "completed", True
        elif dropped:
            item["pending"], item.dropped = dropped, True
        elif reason:
            item["pending"] = reason
        elif note:
            item["note"] = note


def look(client, items, state, seconds, where=None):
    """Without wait: read the acted-on invocations back, for up to ``seconds`` while the server is seen to apply
    the calls (once at least), so that after is what the server shows, not what the call was expected to lead to.
    ``where``: their batch's range (see read_after), or None."""
    waiting = {item["id"]: item for item in items}
    poll = Poll(timeout=seconds, interval=0.2)
    for unused_round in poll.rounds():
        rows = read_after(client, list(waiting), where)
        for invocation_id, item in list(waiting.items()):
            row = rows.get(invocation_id)
            item["after"] = row["status"] if row else "absent"
            item.now = row
            if looked_at(state, item.row, row):
                del waiting[invocation_id]
        if not waiting:
            poll.done()


def read_after(client, ids, where=None) -> dict:
    """{id: row of AFTER_COLUMNS} for the ids the server knows. ``where``: SQL conditions every one of the ids
    matches whatever was done to it (its page's range, the filters on what an invocation keeps for life); from
    RANGE_READ_MIN ids on, the rows are read by them, up to twice as many as the ids, and only what such a bound
    leaves unseen is read by id. Without ``where``, by id."""
    if where is None or len(ids) < RANGE_READ_MIN:
        return read_rows(client, ids, AFTER_COLUMNS)
    bound = 2 * len(ids)
    wanted = set(ids)
    found = client.query(f"SELECT {', '.join(AFTER_COLUMNS)} FROM sys_invocation{where_sql(where)} LIMIT {bound}",
                         columns=AFTER_COLUMNS, required=required_of(AFTER_COLUMNS))
    rows = {row["id"]: row for row in found if row["id"] in wanted}
    if len(found) >= bound:  # the range holds more than the bound: what it did not show is read by id
        rows.update(read_rows(client, [i for i in ids if i not in rows], AFTER_COLUMNS))
    return rows


def read_back(client, items, state, repeated):
    """Read back the items whose after is not known yet: waited for, refused by the server, or left without an answer."""
    for start in range(0, len(items), IDS_PER_QUERY):
        chunk = items[start:start + IDS_PER_QUERY]
        after_rows = read_rows(client, [item["id"] for item in chunk], AFTER_COLUMNS)
        for item in chunk:
            row = after_rows.get(item["id"])
            item["after"] = row["status"] if row else "absent"
            item.now = row
            if "error" in item and not item.refused and reached(state, row):
                # No answer came (the retries ran out on dropped connections or time-outs), yet the state is
                # reached: a call that arrived did the work, its answer was lost.
                item["note"] = (f"no answer came ({item.pop('error')}), yet the invocation is {item['after']} now: "
                                "a call that reached the server did it")
                item["changed"] = True
            elif item.refused and reached(state, row):
                answer = item.pop("error")
                if repeated:
                    item["changed"] = True
                    # A call repeated after a lost answer is refused (purge: 404, kill: 409 already completed), yet
                    # the first one did its work: the state is what counts.
                    item["note"] = (f"the server answered: {answer}; the invocation is {item['after']} now (this "
                                    "run repeated calls whose answer was lost, so the first may have done it)")
                else:
                    # The first and only call was refused: someone else (another run, another client) got there
                    # first. Nothing was changed by this task.
                    item["changed"] = False
                    item["note"] = (f"already {item['after']}: another run or client got there first (the server "
                                    f"answered: {answer})")


def reached(state, row) -> bool:
    """Whether an invocation (row None: absent) is in the wanted state, so nothing is left to do."""
    if state == "restarted":
        return False  # only restarted_from tells, checked in act()
    decision = plan(state, row)
    return decision.action is None and not decision.error
