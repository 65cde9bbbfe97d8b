# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_invocation task does, in whichever process runs it (see restate_module.py)."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter

from ansible_collections.restate.admin.plugins.module_utils._bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._invocation_state import (
    ACTIONS,
    ROW_COLUMNS,
    SELECTABLE,
    WAITABLE,
    plan,
    settled,
)
from ansible_collections.restate.admin.plugins.module_utils._restate_module import FILTERS_ARGSPEC
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    DEPLOYMENT_ID_PATTERN,
    after_condition,
    ids_condition,
    normalize_filters,
    select_sql,
    validate_invocation_id,
    where_conditions,
    where_sql,
)

# What the read-back after acting and the polling of wait need: the status, and what plan() and settled() look at.
AFTER_COLUMNS = ["id", "status", "journal_size", "modified_at"]
# Ids per query: an IN list of 20,000 ids is under a megabyte of SQL; 12,000 took 0.25 s on a 1.7 server, so one
# query per polling round covers a whole bulk task.
IDS_PER_QUERY = 20000
# A filters selection is read in pages of this many rows (keyset on created_at, id): one page's JSON answer is all
# that is held beside the rows already read, not the answer for 100,000 rows at once.
PAGE_ROWS = 10000
# Values repeated in every row, shared as one string each (100,000 rows: about 15 MB less).
REPEATED_COLUMNS = ("status", "target", "target_service_ty")
IDS_PER_JOURNAL_QUERY = 500
# How a delivered cancel shows in sys_journal on 1.7 (the built-in cancel signal has index 1).
CANCEL_SIGNAL_TYPE = "'Notification: Signal'"
CANCEL_SIGNAL_LIKE = "'%{\"SignalIndex\":1}%'"
POLL_INTERVAL = 0.5


SPEC = {
    "argument_spec": {
        "id": {"type": "str"},
        "ids": {"type": "list", "elements": "str"},
        "filters": FILTERS_ARGSPEC,
        "state": {"type": "str", "required": True, "choices": list(ACTIONS)},
        "limit": {"type": "int", "default": 1000},
        "wait": {"type": "bool", "default": False},
        "wait_timeout": {"type": "int", "default": 120},
        "kill_after": {"type": "float"},
        "deployment": {"type": "str"},
        "from_entry": {"type": "int"},
        "concurrency": {"type": "int", "default": 512},
        "batch_calls": {"type": "bool", "default": True},
        "report": {"type": "str", "default": "all", "choices": ["all", "failed"]},
    },
    "mutually_exclusive": [["id", "ids", "filters"]],
    "required_one_of": [["id", "ids", "filters"]],
}


def check_options(params):
    state = params["state"]
    for option, minimum in (("limit", 1), ("concurrency", 1), ("wait_timeout", 0)):
        if params[option] < minimum:
            raise InputError(f"{option} must be {minimum} or more, got {params[option]}")
    for option, only_for in (("kill_after", "cancelled"), ("deployment", "resumed"), ("from_entry", "restarted")):
        if params[option] is not None and state != only_for:
            raise InputError(f"{option} applies only to state={only_for}, not state={state}; remove it")
    if params["kill_after"] is not None and not 0 <= params["kill_after"] < math.inf:
        raise InputError(f"kill_after must be 0 or more seconds, got {params['kill_after']}")
    if params["from_entry"] is not None and params["from_entry"] < 0:
        raise InputError(f"from_entry must be a journal index (0 or more), got {params['from_entry']}")
    if params["deployment"] is not None:
        params["deployment"] = check_deployment(params["deployment"])
    # Everything the work reads from the options is checked here, before task.connect(): a bad value is reported
    # as such even when no server answers.
    for invocation_id in params["ids"] or ([params["id"]] if params["id"] is not None else []):
        validate_invocation_id(invocation_id, "ids" if params["ids"] is not None else "id")
    normalize_filters(params["filters"])


def check_deployment(value) -> str:
    """deployment of state=resumed: latest, keep or a deployment id (sys_deployment.id), as the server takes it."""
    text = str(value).strip()
    if text.lower() in ("latest", "keep"):
        return text.lower()
    if not DEPLOYMENT_ID_PATTERN.match(text):
        raise InputError(f"deployment: {text[:80]!r} is neither latest, keep nor a deployment id; a deployment id "
                         "is 'dp_' followed by letters and digits, e.g. dp_13puM96j0yI6Wh3QjADKUsp (the id column "
                         "of sys_deployment, or restate deployments list)")
    return text


def state_columns(state) -> list:
    """The columns read before acting: what the result shows, and what plan() and settled() read for the state."""
    return ["id", "target", "status", *ROW_COLUMNS.get(state, ())]


def read_rows(client, ids, columns) -> dict:
    """{id: sys_invocation row} for the ids the server knows."""
    rows = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        for row in client.query(select_sql(columns, [ids_condition(chunk)], "oldest_first"), columns=columns):
            rows[row["id"]] = shared(row)
    return rows


def select_rows(client, filters, state, limit):
    """(rows oldest first, at most limit; how many match in all) for a filters selection."""
    conditions = where_conditions(normalize_filters(filters))
    if SELECTABLE[state]:
        conditions.append(SELECTABLE[state])
    columns = state_columns(state) + ["created_at"]
    rows = []
    page = None
    while True:
        wanted = min(PAGE_ROWS, limit - len(rows))
        last = wanted == limit - len(rows)
        page_conditions = conditions + [after_condition(page[-1])] if page else conditions
        # The last page asks for one row more: whether it comes tells if anything is left beyond the limit.
        page = client.query(select_sql(columns, page_conditions, "oldest_first", wanted + 1 if last else wanted),
                            columns=columns)
        beyond = last and len(page) > wanted
        if beyond:
            page.pop()
        for row in page:
            shared(row)
        rows += page
        if len(page) < wanted or (last and not beyond):
            return rows, len(rows)  # everything that matches is here: no need to count
        if last:
            break
        for row in page[:-1]:  # the last one is the next page's key
            del row["created_at"]
    matched = client.query(f"SELECT COUNT(*) AS n FROM sys_invocation{where_sql(conditions)}")[0]["n"]
    return rows, max(matched, len(rows))


def shared(row):
    """The row, with its repeated values as one shared string each."""
    for column in REPEATED_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = sys.intern(row[column])
    return row


def cancel_pending(client, ids) -> set:
    """Ids whose journal holds the built-in cancel signal (signal index 1): a cancel was already delivered."""
    if len(ids) > IDS_PER_JOURNAL_QUERY:
        # For thousands of ids, one join over the active invocations is several times faster than an IN list
        # (10,000 ids: 0.09 s against 0.53 s on a 1.7 server).
        sql = ("SELECT DISTINCT j.id FROM sys_journal j JOIN sys_invocation i ON j.id = i.id WHERE i.status <> "
               f"'completed' AND j.entry_type = {CANCEL_SIGNAL_TYPE} AND j.entry_lite_json LIKE {CANCEL_SIGNAL_LIKE}")
        wanted = set(ids)
        return {row["id"] for row in client.query(sql) if row["id"] in wanted}
    sql = (f"SELECT DISTINCT id FROM sys_journal WHERE {ids_condition(ids)} AND entry_type = {CANCEL_SIGNAL_TYPE} "
           f"AND entry_lite_json LIKE {CANCEL_SIGNAL_LIKE}")
    return {row["id"] for row in client.query(sql)}


def existing_restarts(client, ids) -> dict:
    """{original id: newest invocation restarted from it}."""
    restarts = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        quoted = ids_condition(chunk).replace("id IN", "restarted_from IN", 1)
        for row in client.query(f"SELECT id, restarted_from FROM sys_invocation WHERE {quoted} ORDER BY created_at"):
            restarts[row["restarted_from"]] = row["id"]
    return restarts


def act(client, items, state, params):
    """Send the state's call for every item that needs one; record errors and new ids on the items."""
    action = ACTIONS[state]
    query = None
    if state == "resumed" and params["deployment"]:
        query = {"deployment": params["deployment"]}
    if state == "restarted" and params["from_entry"] is not None:
        query = {"from": params["from_entry"]}

    if state != "restarted":
        errors = client.invocation_actions([item["id"] for item in items], action, params=query,
                                           concurrency=params["concurrency"])
        for item, error in zip(items, errors):
            if error is not None:
                item["error"] = f"{item['id']}: {action} failed: {error}"
                item["changed"] = False
        return

    def restart(item):
        return client.invocation_action(item["id"], action, params=query)

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
                item["new_invocation_id"] = response.json().get("new_invocation_id")
            except ValueError:
                item["error"] = f"{item['id']}: restart-as-new answered without a new invocation id"


def wait_for(client, items, state, params):
    """Poll all acted-on invocations with one query per round until settled; kill_after kills cancel-resistant ones."""
    befores = {item["id"]: item["_row"] for item in items}
    waiting = {item["id"]: item for item in items}
    started = time.monotonic()
    kill_at = started + params["kill_after"] if params["kill_after"] is not None else None
    deadline = started + params["wait_timeout"]
    while waiting:
        rows = read_rows(client, list(waiting), AFTER_COLUMNS)
        for invocation_id in [i for i in waiting if settled(state, befores[i], rows.get(i))]:
            del waiting[invocation_id]
        if not waiting:
            return
        now = time.monotonic()
        if kill_at is not None and now >= kill_at:
            kill_at = None
            to_kill = list(waiting.values())
            errors = client.invocation_actions([item["id"] for item in to_kill], "kill",
                                               concurrency=params["concurrency"])
            for item, error in zip(to_kill, errors):
                item["killed_after_cancel"] = error is None
                if error is not None:
                    item["error"] = f"{item['id']}: kill after cancel failed: {error}"
                    waiting.pop(item["id"], None)
            continue
        if now >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    for item in waiting.values():
        item.setdefault("error", f"{item['id']} did not reach state={state} within wait_timeout={params['wait_timeout']}s")


def run(task):
    """Read, plan, act, wait and report; ends with ``task.exit_json`` or ``task.fail_json``."""
    params = task.params
    state = params["state"]
    result = {"changed": False, "invocations": [], "summary": summarize([], 0, params)}
    try:
        check_options(params)
        named = params["ids"] if params["ids"] is not None else ([params["id"]] if params["id"] else None)
        client = task.connect(pool_size=min(params["concurrency"], 64), batch_calls=params["batch_calls"])
        if named is not None:
            ids = list(dict.fromkeys(validate_invocation_id(i, "ids" if params["ids"] else "id") for i in named))
            rows = read_rows(client, ids, state_columns(state))
            matched = len(ids)
        else:
            selected, matched = select_rows(client, params["filters"], state, params["limit"])
            rows = {row["id"]: row for row in selected}
            ids = list(rows)
            if matched > len(ids):
                task.warn(f"{matched} invocations match the filters; this run acts on the first {len(ids)} "
                          "(limit). Run again, or raise limit, for the rest.")
        active_ids = [i for i in ids if i in rows and rows[i]["status"] != "completed"]
        pending = cancel_pending(client, active_ids) if state == "cancelled" and active_ids else set()
        completed_ids = [i for i in ids if i in rows and rows[i]["status"] == "completed"]
        restarts = existing_restarts(client, completed_ids) if state == "restarted" and completed_ids else {}
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error, **result)

    items = []
    for invocation_id in ids:
        row = rows.get(invocation_id)
        decision = plan(state, row, cancel_pending=invocation_id in pending, restarted_as=restarts.get(invocation_id))
        # Five keys for a plain change: Ansible copies and converts every listed item, and its copy of a dict of
        # up to five keys is a third smaller than of six (100,000 listed: 128 MB peak instead of 151).
        item = {"id": invocation_id, "target": row["target"] if row else None,
                "before": row["status"] if row else "absent", "after": None, "changed": decision.changes,
                "_row": row or {}, "_expected": decision.expected}
        if decision.note:
            item["note"] = decision.note
        if decision.error:
            item["error"] = f"{invocation_id} {decision.error}."
            item["changed"] = False
        if restarts.get(invocation_id):
            item["new_invocation_id"] = restarts[invocation_id]
        items.append(item)

    # Keep the rows only where waiting compares against them; 100,000 of them are worth freeing.
    waiting = state in WAITABLE and (params["wait"] or params["kill_after"] is not None)
    for item in items:
        if not (item["changed"] and waiting):
            item["_row"] = None
    rows = selected = None  # drop the references
    to_act = [item for item in items if item["changed"]]
    try:
        if to_act and not task.check_mode:
            act(client, to_act, state, params)
            acted = [item for item in to_act if "error" not in item]
            if acted and waiting:
                wait_for(client, acted, state, params)
            else:
                # Not waited for: a success answer reports the status the call leads to, as check mode does. A
                # read-back would only show how far the server has got (10,000 cancels: 0.5 s more, racing the
                # service). Purge and journal purge are done when answered.
                for item in acted:
                    item["after"] = item["_expected"]
            to_read = [item for item in to_act if item["after"] is None]
            for start in range(0, len(to_read), IDS_PER_QUERY):
                chunk = to_read[start:start + IDS_PER_QUERY]
                after_rows = read_rows(client, [item["id"] for item in chunk], AFTER_COLUMNS)
                for item in chunk:
                    row = after_rows.get(item["id"])
                    item["after"] = row["status"] if row else "absent"
                    if "error" in item and reached(state, row):
                        # A call repeated after a lost answer is refused (purge: 404, kill: 409 already
                        # completed), yet the first one did its work: the state is what counts.
                        item["note"] = (f"the server answered: {item.pop('error')}; the invocation is "
                                        f"{item['after']} now")
                        item["changed"] = True
                del after_rows
    except Exception as error:  # pylint: disable=broad-exception-caught
        # The calls may have been sent; say for each invocation that its outcome was not confirmed.
        for item in to_act:
            if item["after"] is None and "error" not in item:
                item["error"] = f"{item['id']}: outcome not confirmed ({error}); run the task again to finish"
        task.fail_on(error, **report(task, items, matched))

    for item in items:
        if item["after"] is None:
            item["after"] = item["_expected"] if item["changed"] else item["before"]
    outcome = report(task, items, matched)
    missing = [item["id"] for item in items if item["before"] == "absent" and "error" not in item]
    if missing and named is not None:
        task.warn(f"{len(missing)} invocation(s) not found on the server, reported as already {state}: "
                  f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
    failed = [item for item in items if "error" in item]
    if failed:
        errors = "; ".join(item["error"] for item in failed[:5])
        more = f" (and {len(failed) - 5} more, see invocations)" if len(failed) > 5 else ""
        task.fail_json(msg=f"{len(failed)} of {len(items)} invocations could not be brought to state={state}: "
                           f"{errors}{more}", **outcome)
    task.exit_json(**outcome)


def reached(state, row) -> bool:
    """Whether an invocation (row None: absent) is in the wanted state, so nothing is left to do."""
    if state == "restarted":
        return False  # only restarted_from tells, checked in act()
    decision = plan(state, row)
    return decision.action is None and not decision.error


def summarize(items, matched, params) -> dict:
    """The counts over every item, whichever of them the result lists."""
    changed = [item for item in items if item["changed"]]
    summary = {
        "matched": matched,
        "changed": len(changed),
        "unchanged": sum(1 for item in items if not item["changed"] and "error" not in item),
        "failed": sum(1 for item in items if "error" in item),
        "missing": sum(1 for item in items if item["before"] == "absent"),
        # What a report of a bulk run needs per service, without listing (and Ansible copying) every invocation.
        "changed_by_service": dict(Counter(item["target"].split("/", 1)[0] for item in changed)),
    }
    if params.get("kill_after") is not None:
        summary["killed_after_cancel"] = sum(1 for item in items if item.get("killed_after_cancel"))
    return summary


def report(task, items, matched):
    """The task result: items without internals, summary, and diff when asked."""
    for item in items:
        item.pop("_row", None)
        item.pop("_expected", None)
    summary = summarize(items, matched, task.params)
    listed = items if task.params["report"] == "all" else [item for item in items if "error" in item]
    outcome = {"changed": summary["changed"] > 0, "invocations": listed, "summary": summary}
    if task.diff_mode:
        changed = [item for item in items if item["changed"]]
        outcome["diff"] = {
            "before": "".join(f"{item['id']}: {item['before']}\n" for item in changed),
            "after": "".join(f"{item['id']}: {item['after']}\n" for item in changed),
        }
    return outcome
