#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_invocation
short_description: Cancel, kill, pause, resume, purge or restart Restate invocations
version_added: 0.1.0
description:
  - Drives one invocation (O(id)), a list (O(ids)) or a server-side selection (O(filters)) of invocations of a
    Restate server to a O(state), through the server's Admin API.
  - Reads the current state of every invocation first (one C(POST /query) for all of them), acts only where the
    state must change, and reports per invocation what it found, what it did and what it found afterwards.
    An invocation already in the wanted state is left alone and reported unchanged.
  - Acts on thousands of invocations in one task, 1,000 per request where the server takes them in batches
    (O(batch_calls)), else O(concurrency) requests at a time over a few kept-alive connections. One invocation's
    failure does not stop the others; the task fails at the end if any failed, and the
    result lists every invocation.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  id:
    description: One invocation id (V(inv_...)).
    type: str
  ids:
    description: A list of invocation ids.
    type: list
    elements: str
  state:
    description:
      - The state to bring the invocations to.
      - V(cancelled) asks the invocation to stop at its next await point, where its handler can run compensation
        (C(PATCH /invocations/{id}/cancel)). The request is asynchronous; use O(wait) or O(kill_after) to see it
        through. Done already for completed invocations and for those whose journal already holds a cancel
        request.
      - V(killed) stops it at once, without compensation. Done already for completed invocations.
      - V(paused) pauses a running or retrying (backing-off) invocation. Done already when paused.
      - V(resumed) resumes a paused invocation, optionally on another O(deployment). Done already for every
        other invocation that has not completed.
      - V(purged) removes a completed invocation (result and journal) from the server. Done already when the
        server does not know the id.
      - V(journal_purged) removes the journal of a completed invocation and keeps its result. Done already when
        its journal is empty.
      - V(restarted) starts a completed invocation again, as a new invocation with the same input (restart as
        new). Done already when a restart of it exists; RV(invocations[].new_invocation_id) then names it, so
        running the task again never creates a second one.
      - Scheduled and pending (inboxed) invocations that are cancelled or killed are removed by the server; an id
        the server does not know is therefore already cancelled or killed, and reported with C(after=absent) and
        a warning rather than as a failure, so re-runs stay idempotent.
      - Where the state cannot be reached (purging a running invocation, resuming a completed one, pausing a
        suspended or unknown one, restarting a workflow), a named invocation fails with a message that says its
        status and what to do; a O(filters) selection selects only the invocations the state applies to.
    type: str
    required: true
    choices: [cancelled, killed, paused, resumed, purged, journal_purged, restarted]
  limit:
    description:
      - With O(filters), act on at most this many invocations (oldest first). RV(summary.matched) reports how many
        matched in all, and a warning says when some were left for a later run.
    type: int
    default: 1000
  wait:
    description:
      - Wait until every invocation acted on has reached its end state, checking all of them with one query per
        round.
      - V(cancelled) and V(killed) end when the invocation has completed (or was removed); V(paused) when it is
        paused; V(resumed) when it is no longer paused or has run again (a handler that keeps failing pauses
        again).
      - Invocations that do not get there within O(wait_timeout) are reported as failed.
      - Has no effect for V(purged), V(journal_purged) and V(restarted), which finish with the call.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait) or O(kill_after).
    type: int
    default: 120
  kill_after:
    description:
      - With O(state=cancelled), kill the invocations that have not completed this many seconds after the cancel
        was sent. A paused handler, or one that always fails before an await point, never observes a cancel.
      - Implies O(wait).
    type: float
  deployment:
    description:
      - With O(state=resumed), the deployment to resume on, V(latest) for the newest one, or V(keep) for the one
        it is pinned to (the server's default).
      - Resuming on another deployment risks non-determinism errors if the handler code changed.
    type: str
  from_entry:
    description:
      - With O(state=restarted), keep the journal up to this entry index and re-run from there, instead of from
        the start.
    type: int
  concurrency:
    description:
      - How many requests are in flight at once when invocations are acted on one request each.
      - Calls that are safe to repeat go out HTTP/1.1-pipelined, 4 per connection over up to 128 connections;
        restart-as-new, and calls through an HTTP proxy from the environment, take one thread per request (at
        most 64).
    type: int
    default: 512
  batch_calls:
    description:
      - Act on up to 1,000 invocations per request through the batch route of the Admin API
        (C(POST /internal/invocations_batch_operations/<action>), which Restate 1.6 and 1.7 have and their web UI
        uses), for cancel, kill, pause, resume (without O(deployment)), purge and journal purge of two or more
        invocations. The server does the same per invocation as for one C(PATCH /invocations/{id}/<action>) call.
      - What a batch reports as not done is sent again one C(PATCH) per invocation, so every failure is reported
        with the server's own status and message. A server without the route (its answer is 404 or 405, or not
        the batch answer) is driven one C(PATCH) per invocation, as with V(false).
      - V(false) sends one C(PATCH) per invocation, only the operations the server's OpenAPI documents. With
        batches, a task on 10,000 invocations ran 1.3 to 1.4 times as fast and cost the server about half the CPU
        (see the collection's docs/benchmarks.md).
    type: bool
    default: true
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.filters
  - restate.admin.action_group
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the state and reports exactly which invocations would change and which call each would get, without
        sending any call that changes something. RV(invocations[].after) is then the status expected afterwards.
  diff_mode:
    support: full
    details: "One C(id: status) line per changed invocation, before and after."
  platform:
    platforms: posix
notes:
  - Exactly one of O(id), O(ids) and O(filters) is required.
  - RV(invocations[].after) of an invocation the server accepted the call for is the status the call leads to, as in
    check mode, unless O(wait) (or O(kill_after)) is set; then it is read back from the server once the invocation
    has got there. Cancel, kill, pause and resume take effect asynchronously; the server answers a purge or a
    journal purge once it is done. An invocation whose call failed is read back, because a call repeated after a
    lost answer can be refused although the first one did its work.
seealso:
  - module: restate.admin.restate_invocation_info
"""

EXAMPLES = r"""
- name: Cancel one invocation and wait until it has completed
  restate.admin.restate_invocation:
    id: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    state: cancelled
    wait: true

- name: Kill a list of invocations
  restate.admin.restate_invocation:
    ids: "{{ stuck_ids }}"
    state: killed

- name: Cancel every suspended Checkout invocation older than an hour, killing those that ignore it
  restate.admin.restate_invocation:
    filters:
      service: Checkout
      status: [suspended, paused, backing-off]
      created_before: 1h
    state: cancelled
    kill_after: 30
    wait_timeout: 300
    limit: 10000

- name: Resume paused invocations on the latest deployment
  restate.admin.restate_invocation:
    filters:
      status: paused
    state: resumed
    deployment: latest

- name: Dry run of a retention cleanup - which completed invocations would be purged
  restate.admin.restate_invocation:
    filters:
      completed_before: 7d
    state: purged
    limit: 50000
  check_mode: true
  register: would_purge

- name: Restart a failed invocation as a new one (re-running the task does not restart it again)
  restate.admin.restate_invocation:
    id: inv_19h5ZhSVORkU04GKmYBOchcPSbdJ1gbf8N
    state: restarted
  register: restarted

- name: Show the new invocation id
  ansible.builtin.debug:
    msg: "{{ restarted.invocations[0].new_invocation_id }}"
"""

RETURN = r"""
invocations:
  description: One entry per invocation inspected, in the order of O(ids) or oldest first for O(filters).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Invocation id.
      type: str
      sample: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    target:
      description: C(Service/handler) or C(Object/key/handler); V(null) when the server does not know the id.
      type: str
      sample: Checkout/process
    before:
      description: Status before the task, or V(absent) when the server does not know the id.
      type: str
      sample: suspended
    after:
      description:
        - Status after the task, or V(absent). It is the status the call leads to (in check mode too); it is read
          back from the server with O(wait) or O(kill_after), and for an invocation whose call failed.
      type: str
      sample: completed
    changed:
      description: Whether a call that changes the invocation was sent (would be sent, in check mode).
      type: bool
    action:
      description: The Admin API call sent or that would be sent (C(cancel), C(kill), C(pause), C(resume),
        C(purge), C(purge-journal), C(restart-as-new)); V(null) when none was needed.
      type: str
      sample: cancel
    killed_after_cancel:
      description: Whether O(kill_after) killed it because the cancel had no effect in time.
      type: bool
      returned: when O(kill_after) killed it
    note:
      description: Why nothing needed to be done, when that is not obvious.
      type: str
      returned: when there is something to say
      sample: a cancel is already pending
    error:
      description: Why the invocation could not be brought to the state.
      type: str
      returned: when it failed
      sample: "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz is running, not completed; only completed invocations can be purged."
    new_invocation_id:
      description: With O(state=restarted), the id of the new invocation (created now or by an earlier run).
      type: str
      returned: when O(state=restarted) and a restart exists (not in check mode for a new restart)
      sample: inv_1cRWGxA7011C26SIV7VpYSQNwIiuEyalTb
summary:
  description: Counts over RV(invocations).
  returned: always
  type: dict
  contains:
    matched:
      description: Invocations named, or matching O(filters) (even beyond O(limit)).
      type: int
    changed:
      description: Invocations changed (that would change, in check mode).
      type: int
    unchanged:
      description: Invocations already in the state.
      type: int
    failed:
      description: Invocations that could not be brought to the state.
      type: int
    missing:
      description: Named invocations the server does not know.
      type: int
  sample: {matched: 1200, changed: 1150, unchanged: 50, failed: 0, missing: 0}
"""

import sys
import time

from ansible_collections.restate.admin.plugins.module_utils.bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils.invocation_state import (
    ACTIONS,
    SELECTABLE,
    WAITABLE,
    plan,
    settled,
)
from ansible_collections.restate.admin.plugins.module_utils.restate_module import FILTERS_ARGSPEC, RestateModule
from ansible_collections.restate.admin.plugins.module_utils.selection import (
    SelectionError,
    after_condition,
    ids_condition,
    normalize_filters,
    select_sql,
    validate_invocation_id,
    where_conditions,
    where_sql,
)

STATE_COLUMNS = ["id", "target", "status", "target_service_ty", "journal_size", "modified_at", "restarted_from"]
# What the read-back after acting needs: the status, and what plan() looks at to tell whether the state is reached.
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


class InvocationModule(RestateModule):
    def pool_size(self) -> int:
        return min(self.params["concurrency"], 64)

    def client_options(self) -> dict:
        return {"batch_calls": self.params["batch_calls"]}


def check_options(params):
    state = params["state"]
    for option, minimum in (("limit", 1), ("concurrency", 1), ("wait_timeout", 0)):
        if params[option] < minimum:
            raise SelectionError(f"{option} must be {minimum} or more, got {params[option]}")
    for option, only_for in (("kill_after", "cancelled"), ("deployment", "resumed"), ("from_entry", "restarted")):
        if params[option] is not None and state != only_for:
            raise SelectionError(f"{option} applies only to state={only_for}, not state={state}; remove it")
    if params["kill_after"] is not None and params["kill_after"] < 0:
        raise SelectionError(f"kill_after must be 0 or more seconds, got {params['kill_after']}")
    if params["from_entry"] is not None and params["from_entry"] < 0:
        raise SelectionError(f"from_entry must be a journal index (0 or more), got {params['from_entry']}")


def read_rows(client, ids, columns=None) -> dict:
    """{id: sys_invocation row} for the ids the server knows."""
    columns = columns or STATE_COLUMNS
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
    columns = STATE_COLUMNS + ["created_at"]
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


def wait_for(module, client, items, state, params):
    """Poll all acted-on invocations with one query per round until settled; kill_after kills cancel-resistant ones."""
    befores = {item["id"]: item["_row"] for item in items}
    waiting = {item["id"]: item for item in items}
    started = time.monotonic()
    kill_at = started + params["kill_after"] if params["kill_after"] is not None else None
    deadline = started + params["wait_timeout"]
    while waiting:
        rows = read_rows(client, list(waiting))
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


def main():
    module = InvocationModule(
        argument_spec={
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
        },
        mutually_exclusive=[["id", "ids", "filters"]],
        required_one_of=[["id", "ids", "filters"]],
        supports_check_mode=True,
    )
    params = module.params
    state = params["state"]
    result = {"changed": False, "invocations": [],
              "summary": {"matched": 0, "changed": 0, "unchanged": 0, "failed": 0, "missing": 0}}
    try:
        check_options(params)
        named = params["ids"] if params["ids"] is not None else ([params["id"]] if params["id"] else None)
        client = module.client
        if named is not None:
            ids = list(dict.fromkeys(validate_invocation_id(i, "ids" if params["ids"] else "id") for i in named))
            rows = read_rows(client, ids)
            matched = len(ids)
        else:
            selected, matched = select_rows(client, params["filters"], state, params["limit"])
            rows = {row["id"]: row for row in selected}
            ids = list(rows)
            if matched > len(ids):
                module.warn(f"{matched} invocations match the filters; this run acts on the first {len(ids)} "
                            "(limit). Run again, or raise limit, for the rest.")
        active_ids = [i for i in ids if i in rows and rows[i]["status"] != "completed"]
        pending = cancel_pending(client, active_ids) if state == "cancelled" and active_ids else set()
        completed_ids = [i for i in ids if i in rows and rows[i]["status"] == "completed"]
        restarts = existing_restarts(client, completed_ids) if state == "restarted" and completed_ids else {}
    except Exception as error:  # pylint: disable=broad-exception-caught
        module.fail_on(error, **result)

    items = []
    for invocation_id in ids:
        row = rows.get(invocation_id)
        decision = plan(state, row, cancel_pending=invocation_id in pending, restarted_as=restarts.get(invocation_id))
        item = {"id": invocation_id, "target": row["target"] if row else None,
                "before": row["status"] if row else "absent", "after": None, "changed": decision.changes,
                "action": decision.action, "_row": row or {}, "_expected": decision.expected}
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
        if to_act and not module.check_mode:
            act(client, to_act, state, params)
            acted = [item for item in to_act if "error" not in item]
            if acted and waiting:
                wait_for(module, client, acted, state, params)
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
        module.fail_on(error, **report(module, items, matched))

    for item in items:
        if item["after"] is None:
            item["after"] = item["_expected"] if item["changed"] else item["before"]
    outcome = report(module, items, matched)
    missing = [item["id"] for item in items if item["before"] == "absent" and "error" not in item]
    if missing and named is not None:
        module.warn(f"{len(missing)} invocation(s) not found on the server, reported as already {state}: "
                    f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
    failed = [item for item in items if "error" in item]
    if failed:
        errors = "; ".join(item["error"] for item in failed[:5])
        more = f" (and {len(failed) - 5} more, see invocations)" if len(failed) > 5 else ""
        module.fail_json(msg=f"{len(failed)} of {len(items)} invocations could not be brought to state={state}: "
                             f"{errors}{more}", **outcome)
    module.exit_json(**outcome)


def reached(state, row) -> bool:
    """Whether an invocation (row None: absent) is in the wanted state, so nothing is left to do."""
    if state == "restarted":
        return False  # only restarted_from tells, checked in act()
    decision = plan(state, row)
    return decision.action is None and not decision.error


def report(module, items, matched):
    """The module result: items without internals, summary, and diff when asked."""
    for item in items:
        item.pop("_row", None)
        item.pop("_expected", None)
    changed = [item for item in items if item["changed"]]
    failed = sum(1 for item in items if "error" in item)
    summary = {
        "matched": matched,
        "changed": len(changed),
        "unchanged": sum(1 for item in items if not item["changed"] and "error" not in item),
        "failed": failed,
        "missing": sum(1 for item in items if item["before"] == "absent"),
    }
    outcome = {"changed": bool(changed), "invocations": items, "summary": summary}
    if module._diff:
        outcome["diff"] = {
            "before": "".join(f"{item['id']}: {item['before']}\n" for item in changed),
            "after": "".join(f"{item['id']}: {item['after']}\n" for item in changed),
        }
    return outcome


if __name__ == "__main__":
    main()
