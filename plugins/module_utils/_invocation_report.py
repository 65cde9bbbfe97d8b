# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""restate_invocation's result: the counts, the listed items, the diff and the warnings about a server's known
limits, kept as the items are done (page by page, so that only counts and failures outlive a page)."""

from __future__ import annotations

import time
from collections import Counter
from types import MappingProxyType

from ansible_collections.restate.admin.plugins.module_utils._invocation_state import STATES


# The row of an item that keeps none: one, shared, and read-only.
NO_ROW = MappingProxyType({})


class Item:
    """One invocation on its way through a run. ``report`` is what the result lists for it (id, target, before, after,
    changed, and error, pending, note, new_invocation_id, killed_after_cancel when they apply), read and written as
    the item's own keys; the attributes are the run's working state, never reported: ``row`` (the row read before,
    kept where the state compares it with the row after), ``expected`` (the status the call leads to), ``now`` (the
    row read after), ``refused`` (the server answered the call with an error), ``dropped`` (an old server dropped the
    cancel)."""

    __slots__ = ("report", "row", "expected", "now", "refused", "dropped")

    def __init__(self, report: dict, row=None, expected=None):
        self.report = report
        self.row = row or NO_ROW
        self.expected = expected
        self.now = None
        self.refused = False
        self.dropped = False

    def __getitem__(self, key):
        return self.report[key]

    def __setitem__(self, key, value):
        self.report[key] = value

    def __contains__(self, key):
        return key in self.report

    def get(self, key, default=None):
        return self.report.get(key, default)

    def pop(self, key, *default):
        return self.report.pop(key, *default)

    def setdefault(self, key, default=None):
        return self.report.setdefault(key, default)


class Tally:
    """What the result keeps of the items as they are done: counts, the listed items (all, or only the failed with
    report=failed), the diff lines, and the audit lines written as it goes."""

    def __init__(self, task):
        self.task = task
        self.state = task.params["state"]
        self.list_all = task.params["report"] == "all"
        self.kill_after = task.params.get("kill_after") is not None
        self.matched = 0
        self.total = None  # how many the run will inspect, once known: the progress lines' "of"
        self.counts = Counter(inspected=0, changed=0, unchanged=0, failed=0, missing=0, pending=0, done=0,
                              already=0, killed_after_cancel=0, dropped_by_old_server=0)
        self.by_service = Counter()
        self.listed = []
        self.first_errors = []
        self.missing_named = []
        self.named = task.params.get("id") is not None or task.params.get("ids") is not None
        self.diff_before, self.diff_after = [], []

    def add(self, items, audit=None):
        if audit is not None:
            audit.items(items)
        if self.task.diff_mode:
            diff = diff_lines(self.state, [item for item in items if item["changed"]])
            self.diff_before.append(diff["before"])
            self.diff_after.append(diff["after"])
        # Each outcome counted once per kind of item and once per target, then folded into the counts: a page of
        # 10,000 items makes a handful of kinds.
        kinds, targets = Counter(), Counter()
        for item in items:
            report = item.report
            changed, failed, missing = report["changed"], "error" in report, report["before"] == "absent"
            kinds[changed, failed, missing, "pending" in report, bool(report.get("killed_after_cancel")),
                  item.dropped] += 1
            if changed:
                targets[report["target"]] += 1
            # The first errors, and the first ids named and not found, which the result shows.
            if failed and len(self.first_errors) < 5:
                self.first_errors.append(report["error"])
            elif missing and not failed and len(self.missing_named) < 21:
                self.missing_named.append(report["id"])
            if self.list_all or failed:
                self.listed.append(report)
        for kind, times in kinds.items():
            self._count(kind, times)
        for target, times in targets.items():
            self.by_service[target.split("/", 1)[0]] += times

    def _count(self, kind, times):
        changed, failed, missing, pending, killed_after_cancel, dropped = kind
        counts = self.counts
        counts["inspected"] += times
        if changed:
            counts["changed"] += times
        elif not failed:
            counts["unchanged"] += times
        if failed:
            counts["failed"] += times
        if missing:
            counts["missing"] += times
        # Each item counted once under what it came to: failed, pending (asked, not applied), done, or already in the
        # state (nothing to do).
        if not failed:
            counts["pending" if pending else "done" if changed else "already"] += times
        counts["killed_after_cancel"] += times * killed_after_cancel
        counts["dropped_by_old_server"] += times * dropped

    def progress(self, started) -> str:
        """A line on how far the task is: done so far, the rate, and of how many when known."""
        seconds = max(time.monotonic() - started, 1e-6)
        done = self.counts["inspected"]
        of = f" of {self.total}" if self.total and self.total > done else ""
        return (f"{done}{of} invocations done ({self.counts['changed']} changed, {self.counts['failed']} failed), "
                f"{done / seconds:.0f}/s")

    def summary(self) -> dict:
        counts = self.counts
        summary = {"matched": self.matched, "changed": counts["changed"], "unchanged": counts["unchanged"],
                   "failed": counts["failed"], "missing": counts["missing"],
                   # Accepted, but not (yet) in the wanted state as read back: a request the server applies later.
                   "pending": counts["pending"],
                   # done + pending + already + failed = the invocations inspected, each counted once.
                   "done": counts["done"], "already": counts["already"],
                   # Matched, but beyond limit: left for a later run.
                   "left": max(self.matched - counts["inspected"], 0),
                   "check_mode": bool(self.task.check_mode),
                   # What a report of a bulk run needs per service, without listing (and Ansible copying) every
                   # invocation.
                   "changed_by_service": dict(self.by_service)}
        if self.kill_after:
            summary["killed_after_cancel"] = counts["killed_after_cancel"]
        return summary

    def line(self) -> str:
        """The summary as one sentence (summary_line)."""
        return summary_line(self.state, self.summary(), self.task.params.get("limit"), self.named)

    def outcome(self) -> dict:
        """The task result: listed items, summary, and diff when asked."""
        summary = self.summary()
        outcome = {"changed": self.counts["changed"] > 0, "invocations": self.listed, "summary": summary}
        if self.task.diff_mode:
            outcome["diff"] = {"before": "".join(self.diff_before), "after": "".join(self.diff_after)}
        return outcome


# The verb of the summary line, as done and as predicted in check mode.
VERBS = {
    "cancelled": ("Cancelled", "Would cancel"),
    "killed": ("Killed", "Would kill"),
    "paused": ("Paused", "Would pause"),
    "resumed": ("Resumed", "Would resume"),
    "purged": ("Purged", "Would purge"),
    "journal_purged": ("Purged the journals of", "Would purge the journals of"),
    "restarted": ("Restarted", "Would restart"),
}


def plural(count, noun) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_line(state, summary, limit=None, named=False) -> str:
    """One sentence for a log or a mail: what was done (or would be, in check mode) of how many, then what is
    pending, needed nothing, failed and is left, each invocation counted once, the same words in both modes."""
    check = summary["check_mode"]
    verb = VERBS[state][1 if check else 0]
    of = "given" if named else "matching"
    line = f"{verb} {summary['done']} of {plural(summary['matched'], f'{of} invocation')}"
    by_service = sorted(summary["changed_by_service"].items())
    if by_service and summary["done"]:
        shown = ", ".join(f"{name}: {count}" for name, count in by_service[:5])
        line += f" ({shown}{', ...' if len(by_service) > 5 else ''})"
    parts = []
    if summary.get("killed_after_cancel"):
        parts.append(f"{summary['killed_after_cancel']} {'would be ' if check else ''}killed after the cancel")
    if summary["pending"]:
        action = STATES[state].action
        parts.append(f"{summary['pending']} {'would stay' if check else 'still'} pending ({action} accepted, not "
                     "applied yet: see each invocation's pending)")
    if summary["already"]:
        parts.append(f"{summary['already']} needed no change")
    if summary["failed"]:
        parts.append(f"{summary['failed']} failed")
    if summary["left"]:
        parts.append(f"{summary['left']} left for the next run (limit {limit})")
    return line + ("; " + ", ".join(parts) if parts else "") + "."


def warn_about_server(task, tally):
    """Say so when an older server is known to accept a call and drop it (Restate 1.6: a cancel of a paused
    invocation, or of one suspended on an awakeable or a workflow promise), with the version, the count and the
    remedy. confirm marks such items only on a server before 1.7."""
    dropped = tally.counts["dropped_by_old_server"]
    if dropped:
        task.warn(f"Restate {task.server_version} accepts a cancel of a paused invocation (and resumes it instead) or "
                  "of one suspended on an awakeable or a workflow promise, and drops it: "
                  f"{dropped} invocation(s) were not cancelled (their items say pending: cancel dropped). Kill them "
                  "(state: killed), or upgrade the server to 1.7 or later")


def version_tuple(version):
    """(major, minor) of a version string such as '1.6.2', or None."""
    try:
        major, minor = str(version).split(".")[:2]
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


def diff_lines(state, changed) -> dict:
    """One line per change before and after, never the same: a restart names the new invocation, a journal purge
    the journal's size, a request the server applies later says so."""
    before, after = [], []
    for item in changed:
        was, now = item["before"], item["after"]
        if state == "journal_purged":
            was += f" (journal: {item.row.get('journal_size') or 0} entries)"
            now += " (journal: 0 entries)"
        elif state == "restarted":
            now += f" (restarted as {item.get('new_invocation_id') or 'a new invocation'})"
        if item.get("pending"):
            now += f" ({STATES[state].action} requested, pending)"
        before.append(f"{item['id']}: {was}\n")
        after.append(f"{item['id']}: {now}\n")
    return {"before": "".join(before), "after": "".join(after)}
