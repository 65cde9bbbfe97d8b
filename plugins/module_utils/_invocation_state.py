# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What it takes to bring one invocation to a wanted state: pure decisions, no I/O.

Measured against restate-server 1.7 (see tests/integration/test_invocation.py):
- cancel and kill of a scheduled or inboxed (pending) invocation remove it: no row remains;
- cancel is a request: it completes only when the handler reaches an await point, and the journal
  then holds the built-in cancel signal (a 'Notification: Signal' entry with signal index 1);
- pause is accepted for a suspended invocation but leaves it suspended; resume of a running or
  suspended one is a no-op, of a backing-off one a retry now;
- purge-journal leaves a completed invocation with journal_size 0; restart-as-new then answers 410,
  and 422 for workflows; restart-as-new is not idempotent: every call creates a new invocation.
"""

from __future__ import annotations

from collections import namedtuple

ACTIVE = ("scheduled", "pending", "ready", "running", "suspended", "backing-off", "paused")
NOT_STARTED = ("scheduled", "pending")
ABSENT = "absent"

# What shows that an invocation ran again after a resume: 1.7 does not always move modified_at when a resumed
# invocation fails again at once and pauses, but its attempt start and retry count move.
RAN_AGAIN_COLUMNS = ("modified_at", "last_start_at", "retry_count")


class Plan(namedtuple("Plan", ("action", "expected", "error", "note"), defaults=(None, None, None, None))):
    """The decision for one invocation: which call (if any), what to expect, or why it cannot be done. A tuple: the
    same decision is shared by every invocation it is made for (see plan())."""

    __slots__ = ()

    @property
    def changes(self) -> bool:
        return self.action is not None


# The decisions already made, by (state, status, cancel pending), for the states whose planner reads nothing else:
# a bulk run of a million makes a handful of decisions, not a million. Only for the statuses Restate has, so that a
# server answering others cannot grow it.
_DECIDED = {}
_KNOWN_STATUSES = frozenset(ACTIVE + ("completed", ABSENT))


def plan(state: str, row: dict | None, cancel_pending=False, restarted_as=None) -> Plan:
    """Decide for one invocation.

    ``row`` is its sys_invocation row (None when the server does not know it); ``cancel_pending`` tells whether
    its journal holds a cancel signal; ``restarted_as`` is the id of an existing restart of it, if any.
    """
    status = row["status"] if row else ABSENT
    wanted = STATES[state]
    if wanted.planner_reads_row or status not in _KNOWN_STATUSES:
        return wanted.planner(status, row or {}, cancel_pending, restarted_as)
    key = (state, status, cancel_pending)
    decision = _DECIDED.get(key)
    if decision is None:
        decision = _DECIDED[key] = wanted.planner(status, {}, cancel_pending, None)
    return decision


def _gone_or_completed(status):
    return ABSENT if status in NOT_STARTED else "completed"


def _cancelled(status, row, cancel_pending, restarted_as):
    if status == "completed":
        return Plan(expected=status, note="already completed")
    if status == ABSENT:
        return Plan(expected=ABSENT, note="not on the server: cancelled or killed before it started, purged, "
                                          "or never existed")
    if cancel_pending:
        return Plan(expected=status, note="a cancel is already pending; it takes effect at the next await point "
                                          "(use kill_after or state=killed for handlers that never get there)")
    if status == "paused":
        # Restate 1.7 runs a paused invocation again to deliver the cancel: one that reaches an await point ends
        # cancelled, one that fails first pauses again with the cancel pending. Which, only its handler tells; the
        # prediction is the one that never counts as done what may not be.
        return Plan("cancel", expected="paused")
    return Plan("cancel", expected=_gone_or_completed(status))


def _killed(status, row, cancel_pending, restarted_as):
    if status == "completed":
        return Plan(expected=status, note="already completed")
    if status == ABSENT:
        return Plan(expected=ABSENT, note="not on the server: cancelled or killed before it started, purged, "
                                          "or never existed")
    return Plan("kill", expected=_gone_or_completed(status))


def _paused(status, row, cancel_pending, restarted_as):
    if status == "paused":
        return Plan(expected=status, note="already paused")
    if status in ("ready", "running", "backing-off"):
        return Plan("pause", expected="paused")
    if status == "suspended":
        return Plan(error="is suspended (waiting for a timer, call or promise), not executing; Restate pauses only "
                          "running or retrying invocations. Cancel or kill it instead")
    if status in NOT_STARTED:
        return Plan(error=f"is {status} and has not started yet; only running or retrying invocations can be "
                          "paused. Cancel or kill it instead")
    if status == "completed":
        return Plan(error="is already completed; there is nothing to pause")
    return Plan(error="does not exist on the server; there is nothing to pause")


def _resumed(status, row, cancel_pending, restarted_as):
    if status == "paused":
        return Plan("resume", expected="running")
    if status in ACTIVE:
        return Plan(expected=status, note=f"not paused ({status}); nothing to resume")
    if status == "completed":
        return Plan(error="is already completed; nothing to resume. Use state=restarted to run it again as a new "
                          "invocation")
    return Plan(error="does not exist on the server; there is nothing to resume")


def _purged(status, row, cancel_pending, restarted_as):
    if status == ABSENT:
        return Plan(expected=ABSENT, note="not on the server (already purged, or never existed)")
    if status == "completed":
        return Plan("purge", expected=ABSENT)
    return Plan(error=f"is {status}, not completed; only completed invocations can be purged. Cancel or kill it "
                      "first (state=cancelled or state=killed), then purge it")


def _journal_purged(status, row, cancel_pending, restarted_as):
    if status == "completed":
        if not row.get("journal_size"):
            return Plan(expected=status, note="journal already purged")
        return Plan("purge-journal", expected="completed")
    if status == ABSENT:
        return Plan(error="does not exist on the server; there is no journal to purge")
    return Plan(error=f"is {status}, not completed; the journal of a running invocation cannot be purged. Cancel "
                      "or kill it first")


def _restarted(status, row, cancel_pending, restarted_as):
    if status == ABSENT:
        return Plan(error="does not exist on the server; there is nothing to restart")
    if status != "completed":
        return Plan(error=f"is {status}; only completed invocations can be restarted as new. Cancel or kill it "
                          "first, or wait for it to complete")
    if restarted_as:
        return Plan(expected="completed", note=f"already restarted as {restarted_as}")
    if row.get("target_service_ty") == "workflow":
        return Plan(error="is a workflow run; Restate does not restart workflows")
    if not row.get("journal_size"):
        return Plan(error="has no journal (it was purged), so its input is gone and it cannot be restarted")
    return Plan("restart-as-new", expected="completed")


class WantedState:
    """All the collection knows of one value of restate_invocation's ``state``, read where the code once branched
    on the name: a new state is one record here and its planner above."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, name, action, selectable, planner, columns=(), waitable=False, keeps_row=False, option=None,
                 sent_as=None, reached_at=None, planner_reads_row=False):
        self.name = name
        # The Admin API operation that gets there: PATCH /invocations/{id}/{action}.
        self.action = action
        # Which invocations a filters selection takes (SQL): those in the state or able to reach it, no others.
        self.selectable = selectable
        self.planner = planner
        # The planner looks at more of the row than its status (and at an earlier restart): each row is planned
        # afresh; the others' decisions are made once per status (see plan()).
        self.planner_reads_row = planner_reads_row
        # What the planner and the read-back look at of a row besides id, target and status: a selection reads only
        # these, so that thousands of rows are parsed and held with no column nobody looks at.
        self.columns = columns
        # Asynchronous: the server applies the call later, so wait can follow it; the others finish with the call
        # (SQL right after a purge's answer shows the invocation gone, after a journal purge its journal empty).
        self.waitable = waitable
        # The row read before is compared with what is read after (a resume's read-back) or shown (a journal's size).
        self.keeps_row = keeps_row
        # The option only this state takes, and the query parameter of the call it is sent as, if it is.
        self.option = option
        self.sent_as = sent_as
        # The statuses that end a wait (ABSENT: gone); None: reached once the call is answered.
        self.reached_at = reached_at


_ENDED = ("completed", ABSENT)
STATES = {wanted.name: wanted for wanted in (
    # A completed invocation needs no cancel or kill: selecting it would only spend the limit on it.
    WantedState("cancelled", "cancel", "status <> 'completed'", _cancelled, waitable=True, option="kill_after",
                reached_at=_ENDED),
    WantedState("killed", "kill", "status <> 'completed'", _killed, waitable=True, reached_at=_ENDED),
    WantedState("paused", "pause", "status IN ('ready', 'running', 'backing-off', 'paused')", _paused,
                waitable=True, reached_at=("paused",) + _ENDED),
    # reached: see settled(), an always-failing handler pauses again at once
    WantedState("resumed", "resume", "status <> 'completed'", _resumed, columns=RAN_AGAIN_COLUMNS, waitable=True,
                keeps_row=True, option="deployment", sent_as="deployment"),
    WantedState("purged", "purge", "status = 'completed'", _purged),
    # Only those that still have a journal: a journal-only run with a limit then moves on to the next batch.
    WantedState("journal_purged", "purge-journal", "status = 'completed' AND journal_size > 0", _journal_purged,
                columns=("journal_size",), keeps_row=True, planner_reads_row=True),
    WantedState("restarted", "restart-as-new",
                "status = 'completed' AND target_service_ty <> 'workflow' AND restarted_from IS NULL AND "
                "journal_size > 0", _restarted, columns=("journal_size", "target_service_ty"), option="from_entry",
                sent_as="from", planner_reads_row=True),
)}


def dropped_cancel_reason(version: str, before: str, now: dict | None) -> str | None:
    """Restate before 1.7 accepts some cancels and drops them: of a paused invocation (it resumes it instead) and of
    one suspended on an awakeable or a workflow promise. Why this cancel, as read back, was dropped; None if not."""
    status = now["status"] if now else ABSENT
    if status in ("completed", ABSENT):
        return None
    if before == "paused":
        dropped = "resumes a paused invocation it is asked to cancel, and drops the cancel"
    elif status == "suspended":
        dropped = "drops a cancel of an invocation suspended on an awakeable or a workflow promise"
    else:
        return None
    return (f"cancel dropped: Restate {version} {dropped}; the invocation is {status}. Kill it (state: killed), or "
            "upgrade the server to 1.7 or later")


def settled(state: str, before: dict, now: dict | None) -> bool:
    """Whether an acted-on invocation has reached the end state of ``state`` (for wait)."""
    status = now["status"] if now else ABSENT
    if state == "resumed":
        # An always-failing handler pauses again at once, so 'paused' having run again also counts.
        return status != "paused" or ran_again(before, now)
    reached_at = STATES[state].reached_at
    return reached_at is None or status in reached_at


def ran_again(before: dict, now: dict | None) -> bool:
    """Whether the invocation read back (``now``) has run since ``before`` was read."""
    return any((now or {}).get(column) != before.get(column) for column in RAN_AGAIN_COLUMNS)


def looked_at(state: str, before: dict, now: dict | None) -> bool:
    """Whether a read-back right after the call can stop looking: the call's effect (or its failure) shows.

    Like settled(), except that a resumed invocation still running may yet fail again and pause: for a resume, only
    a status the handler got to by itself (suspended, completed, retrying or paused again) ends the look."""
    if state != "resumed":
        return settled(state, before, now)
    status = now["status"] if now else ABSENT
    return status not in ("running", "ready", "paused") or (status == "paused" and ran_again(before, now))


def pending_reason(state: str, before: dict, now: dict | None) -> str | None:
    """For an invocation the server accepted the call for: why, as read back, it is not (yet) in the wanted state,
    and what to do about it; None when it is there."""
    status = now["status"] if now else ABSENT
    if state == "cancelled" and status not in ("completed", ABSENT):
        where = {"paused": "a paused invocation sees it only once it runs again (one that fails before an await point "
                           "pauses again)",
                 "running": "it is inside a step (a long ctx.run, say) and sees the cancel at its next await point",
                 "backing-off": "it sees the cancel at its next attempt",
                 "suspended": "it sees the cancel when it wakes up"}.get(
                     status, "it sees the cancel at its next await point")
        return (f"cancel requested, not applied yet: the invocation is still {status}; {where}. Use wait: true to "
                "wait for it, kill_after to kill it if it does not stop in time, or state: killed")
    if state == "killed" and status not in ("completed", ABSENT):
        return (f"kill requested, not applied yet: the invocation is still {status}. Use wait: true to wait for it")
    if state == "paused" and status not in ("paused", "completed", ABSENT):
        return (f"pause requested, not applied yet: the invocation is still {status}; the server pauses it when its "
                "current attempt ends (a long ctx.run runs to its end first). Use wait: true to wait for it. The "
                "server shows no trace of a requested pause, so a re-run sends it again (harmless)")
    if state == "resumed" and status == "paused" and not ran_again(before, now):
        return "resume requested, not applied yet: the invocation is still paused. Use wait: true to wait for it"
    return None


def failed_again_note(state: str, before: dict, now: dict | None) -> str | None:
    """For a resume the server applied: a note when the invocation failed again at once (it ran: the resume is
    done, but it is not out of trouble); None otherwise."""
    status = now["status"] if now else ABSENT
    if state != "resumed" or not (status == "backing-off" or (status == "paused" and ran_again(before, now))):
        return None
    return (f"resumed, but it failed again and is {status}: fix what makes it fail (see last_failure with "
            "restate_invocation_info) and resume it again, possibly on another deployment (deployment: latest), "
            "or give it up with state: killed")
