# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_invocation_recovery task does: the recovery of stuck invocations (the stuck_invocations role's job)
as steps of restate_invocation's own work, each invocation counted once under what was done to it."""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._invocation_report import Tally
from ansible_collections.restate.admin.plugins.module_utils._invocation_task import (
    check_deployment_registered,
    drive,
)
from ansible_collections.restate.admin.plugins.module_utils._queries_api import ID
from ansible_collections.restate.admin.plugins.module_utils._restate_module import FILTERS_ARGSPEC
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    deployment_to_resume_on,
    normalize_filters,
    parse_time,
    select_sql,
    where_conditions,
    where_sql,
)
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "filters": FILTERS_ARGSPEC,
        "max_retries": {"type": "int", "default": 10},
        "deployment": {"type": "str", "default": "keep"},
        "kill_older_than": {"type": "str"},
        "limit": {"type": "int", "default": 1000},
        "wait_timeout": {"type": "int", "default": 120},
        "concurrency": {"type": "int", "default": 32},
    },
}
# What makes an invocation stuck is the recovery's to decide: these filters are refused in its scope.
DECIDED_FILTERS = ("status", "min_retry_count", "pinned")
RETRYING_COLUMNS = ["id", "target", "retry_count", "pinned_deployment_id", "last_failure"]


class KillFailed(InputError):
    """A kill step left stuck invocations it could not kill: the recovery stops there."""


def check_options(params) -> tuple:
    """(the scope's filters, normalized; the kill threshold or None), or InputError naming the option."""
    for option, minimum in (("max_retries", 0), ("limit", 1), ("wait_timeout", 0), ("concurrency", 1)):
        if params[option] < minimum:
            raise InputError(f"{option} must be {minimum} or more, got {params[option]}")
    params["deployment"] = deployment_to_resume_on(params["deployment"])
    decided = [key for key in DECIDED_FILTERS if (params["filters"] or {}).get(key) is not None]
    if decided:
        raise InputError(f"filters: {', '.join(decided)} cannot be given; the recovery selects the paused "
                         "invocations and the backing-off ones with at least max_retries retries itself. Use "
                         "filters for the scope (service, handler, deployment, ...) only")
    scope = normalize_filters({k: v for k, v in (params["filters"] or {}).items() if k not in DECIDED_FILTERS})
    kill_before = None
    if params["kill_older_than"] is not None and str(params["kill_older_than"]).strip():
        kill_before = parse_time(params["kill_older_than"], "kill_older_than", datetime.now(timezone.utc), prefix="")
    return scope, kill_before


class Step:
    """One restate_invocation run inside the recovery: options of its own, the recovery task's mode and messages."""

    diff_mode = False

    def __init__(self, task, **options):
        self.params = {"id": None, "ids": None, "filters": None, "limit": task.params["limit"], "wait": False,
                       "wait_timeout": task.params["wait_timeout"], "kill_after": None, "deployment": None,
                       "from_entry": None, "concurrency": task.params["concurrency"], "batch_calls": True,
                       "report": "all", "all_invocations": None, "audit_log": None, "max_matched": None}
        self.params.update(options)
        self.check_mode = task.check_mode
        self.server_version = task.server_version
        self.warn = task.warn
        self.progress = task.progress


class Outcome:
    """The ids each step did something to, and the errors; the report is made of these alone."""

    def __init__(self):
        self.killed, self.resumed, self.resume_pending, self.resume_failed = [], [], [], []
        self.paused, self.to_move, self.unsettled, self.moved, self.move_failed = [], [], [], [], []
        self.put_back, self.put_back_failed = [], []
        self.pause_error = None
        self.unmovable = 0
        self.retrying, self.retrying_truncated = [], False

    def acted(self) -> set:
        """What this run did something to: never counted again as still retrying."""
        return set(self.killed + self.resumed + self.resume_pending + self.moved + self.put_back + self.to_move)


class Recovery:
    """The steps, in the order that keeps each invocation in one of them: kill the old, list the paused to resume
    (before the move pauses anything), move the backing-off (pause, resume elsewhere, put back what fails), resume
    the listed, then read what still retries. Every step's filters are normalized ones: the scope (check_options)
    with the step's own conditions, written in normalized form (status lists, counts, booleans, datetimes)."""

    def __init__(self, task, client, scope, kill_before):
        self.task, self.client, self.scope, self.kill_before = task, client, scope, kill_before
        params = task.params
        self.max_retries = params["max_retries"]
        self.deployment = params["deployment"]
        self.limit = params["limit"]
        self.move = self.deployment != "keep"
        # The server moves only a pinned invocation to a named deployment (it answers 409 for the others); latest
        # and keep take every paused invocation.
        self.movable = {"pinned": True} if self.deployment not in ("keep", "latest") else {}
        # What the kill step leaves (created at or after its threshold), so that a dry run predicts the rest exactly.
        self.survivors = dict(scope, created_after=kill_before) if kill_before else dict(scope)
        self.outcome = Outcome()

    def run(self) -> Outcome:
        if self.kill_before:
            self.kill()
        to_resume = self.ids(dict(self.survivors, status=["paused"], **self.movable))
        if self.movable:
            self.outcome.unmovable = self.count(dict(self.survivors, status=["paused"], pinned=False))
        if self.move:
            self.move_retrying()
        if to_resume:
            self.resume(to_resume)
        self.read_retrying()
        return self.outcome

    # -- the steps ---------------------------------------------------------------------------------------------------
    def step(self, **options) -> tuple:
        """restate_invocation's work for these options: (its items, None), or (the items done before it stopped,
        the client or input error that stopped it)."""
        step = Step(self.task, **options)
        tally = Tally(step)
        try:
            drive(step, self.client, tally, options.get("filters") or {}, named=options.get("ids"))
        except (InputError, RestateApiError) as error:
            return tally.listed, error
        return tally.listed, None

    def kill(self):
        stuck = ({"status": ["paused"]}, {"status": ["backing-off"], "min_retry_count": self.max_retries})
        for selection in stuck:
            items, error = self.step(state="killed", wait=True, filters=dict(
                self.scope, created_before=self.kill_before, **selection))
            self.outcome.killed += [item["id"] for item in items if item["changed"] and "error" not in item]
            errors = [item["error"] for item in items if "error" in item] + ([str(error)] if error else [])
            if errors:
                # Stop before anything is paused or resumed: what could not be killed is as it was.
                raise KillFailed(f"{len(errors)} stuck invocation(s) could not be killed: {'; '.join(errors[:5])}")

    def move_retrying(self):
        """Pause the backing-off invocations past max_retries, resume them on the deployment, and put back (resume
        on their own deployment) what could not be moved, so that nothing this run paused stays paused."""
        outcome = self.outcome
        paused, error = self.step(state="paused", wait=True, filters=dict(
            self.survivors, status=["backing-off"], min_retry_count=self.max_retries, **self.movable))
        sent = [item for item in paused if item["changed"]]
        # Paused and settled: to move. Sent a pause but not seen paused in time (or not confirmed): put back.
        outcome.to_move = [item["id"] for item in sent if "error" not in item]
        outcome.unsettled = [item["id"] for item in sent if "error" in item]
        errors = [item["error"] for item in paused if "error" in item] + ([str(error)] if error else [])
        if errors:
            outcome.pause_error = "; ".join(errors[:5])
        if self.task.check_mode:
            outcome.moved = list(outcome.to_move)
            return
        failed_to_move = []
        if outcome.to_move:
            moved, error = self.step(state="resumed", ids=outcome.to_move, deployment=self.deployment)
            outcome.moved = [item["id"] for item in moved if item["changed"] and "error" not in item]
            outcome.move_failed = [item["error"] for item in moved if "error" in item]
            done = set(outcome.moved)
            failed_to_move = [i for i in outcome.to_move if i not in done]
            if error:
                outcome.move_failed.append(str(error))
        back = outcome.unsettled + failed_to_move
        if back:
            put_back, error = self.step(state="resumed", ids=back, deployment="keep")
            outcome.put_back = [item["id"] for item in put_back if "error" not in item]
            outcome.put_back_failed = [item["error"] for item in put_back if "error" in item]
            if error:
                outcome.put_back_failed.append(str(error))
        outcome.move_failed = [f"{item_id}: pause not settled in time" for item_id in outcome.unsettled] + \
            outcome.move_failed
        moved_ids = set(outcome.moved)
        outcome.to_move = [i for i in outcome.to_move if i in moved_ids]

    def resume(self, ids):
        items, error = self.step(state="resumed", ids=ids, deployment=self.deployment)
        done = [item for item in items if item["changed"] and "error" not in item]
        self.outcome.resumed = [item["id"] for item in done if "pending" not in item]
        self.outcome.resume_pending = [item["id"] for item in done if "pending" in item]
        self.outcome.resume_failed = [item["error"] for item in items if "error" in item] + (
            [str(error)] if error else [])

    def read_retrying(self):
        """What still retries past max_retries, read after every change and without what this run acted on."""
        acted = self.outcome.acted()
        conditions = where_conditions(dict(self.scope, status=["backing-off"], min_retry_count=self.max_retries))
        rows = self.client.query(select_sql(RETRYING_COLUMNS, conditions, "newest_first", self.limit + len(acted)),
                                 columns=RETRYING_COLUMNS, required=ID)
        left = [row for row in rows if row["id"] not in acted]
        self.outcome.retrying = left[:self.limit]
        self.outcome.retrying_truncated = len(left) > self.limit or len(rows) >= self.limit + len(acted)

    # -- reading -----------------------------------------------------------------------------------------------------
    def ids(self, filters) -> list:
        sql = select_sql(["id"], where_conditions(filters), "oldest_first", self.limit)
        return [row["id"] for row in self.client.query(sql, required=ID)]

    def count(self, filters) -> int:
        sql = f"SELECT COUNT(*) AS n FROM sys_invocation{where_sql(where_conditions(filters))}"
        return min(self.client.count(sql), self.limit)


def report(outcome, check_mode) -> dict:
    """The report: each invocation counted once, under what was done to it."""
    return {
        "killed": len(outcome.killed),
        "resumed": len(outcome.resumed),
        "resume_pending": len(outcome.resume_pending),
        "resume_failed": len(outcome.resume_failed),
        "moved_to_deployment": len(outcome.moved),
        "move_failed": len(outcome.move_failed),
        "move_errors": outcome.move_failed,
        "put_back": len(outcome.put_back),
        "left_paused_unpinned": outcome.unmovable,
        "still_retrying": len(outcome.retrying),
        "retrying": outcome.retrying,
        "retrying_truncated": outcome.retrying_truncated,
        "check_mode": bool(check_mode),
    }


def summary_line(summary, deployment, max_retries) -> str:
    """One sentence, the same words in check mode (Would ...) as in the real run."""
    would = summary["check_mode"]
    parts = [f"{'Would kill' if would else 'Killed'} {summary['killed']},",
             f"{'would resume' if would else 'resumed'} {summary['resumed']} paused,"]
    if summary["resume_pending"]:
        parts.append(f"{summary['resume_pending']} resume(s) accepted and still pending,")
    if deployment != "keep":
        parts.append(f"{'would move' if would else 'moved'} {summary['moved_to_deployment']} retrying to {deployment},")
    truncated = summary["retrying_truncated"]
    parts.append(f"{'at least ' if truncated else ''}{summary['still_retrying']} still retrying (retry count "
                 f"{max_retries} or more){', list truncated at the limit' if truncated else ''}.")
    if summary["left_paused_unpinned"]:
        parts.append(f"{summary['left_paused_unpinned']} paused left paused: not pinned to a deployment, the server "
                     f"cannot move them to {deployment} (resume them with deployment=latest or keep).")
    if summary["move_failed"]:
        parts.append(f"{summary['move_failed']} could not be moved; {summary['put_back']} put back on their own "
                     "deployment.")
    return " ".join(parts)


def failure_line(outcome, deployment) -> str:
    """What went wrong, first five errors of each kind; empty when nothing did."""
    parts = []
    if outcome.pause_error:
        parts.append(f"Pausing the backing-off invocations to move failed: {outcome.pause_error}.")
    if outcome.resume_failed:
        parts.append(f"{len(outcome.resume_failed)} paused invocation(s) could not be resumed and stay paused: "
                     f"{'; '.join(outcome.resume_failed[:5])}.")
    if outcome.move_failed:
        parts.append(f"{len(outcome.move_failed)} invocation(s) could not be moved to {deployment} "
                     f"({'; '.join(outcome.move_failed[:5])}); {len(outcome.put_back)} were put back: resumed on "
                     "their own deployment.")
    if outcome.put_back_failed:
        parts.append(f"{len(outcome.put_back_failed)} could not be put back and may still be paused: "
                     f"{'; '.join(outcome.put_back_failed[:5])}")
    return " ".join(parts)


def run(task):
    """Recover, then report; ends with ``task.exit_json`` or ``task.fail_json`` (after the report, when a step failed)."""
    params = task.params
    recovery = None
    try:
        scope, kill_before = check_options(params)
        client = task.connect(pool_size=min(params["concurrency"], 64))
        # A mistyped deployment id stops the run before anything is killed or paused.
        check_deployment_registered(client, params["deployment"])
        recovery = Recovery(task, client, scope, kill_before)
        outcome = recovery.run()
    except Exception as error:  # pylint: disable=broad-exception-caught
        if recovery is None or not isinstance(error, (InputError, RestateApiError)):
            task.fail_on(error)
        summary = report(recovery.outcome, task.check_mode)
        line = summary_line(summary, params["deployment"], params["max_retries"])
        task.fail_json(msg=f"{error}. Before it stopped: {line}", changed=bool(recovery.outcome.acted()),
                       summary=summary)
    summary = report(outcome, task.check_mode)
    line = summary_line(summary, params["deployment"], params["max_retries"])
    changed = bool(outcome.acted() or outcome.unsettled)
    failure = failure_line(outcome, params["deployment"])
    if failure:
        task.fail_json(msg=f"{failure} {line}", changed=changed, summary=summary)
    task.exit_json(msg=line, changed=changed, summary=summary)
