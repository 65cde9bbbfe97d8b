"""Where a large bulk task spends its time: restate_invocation's work, in this process, against a real local server.

    make profile                            # PROFILE_N=100000 purged
    PROFILE_STATE=killed PROFILE_N=50000 make profile

Makes PROFILE_N invocations (completed `Tester/ok` ones to purge; `Tester/sleep` ones suspended on a two-hour timer
for PROFILE_STATE=cancelled or killed), then runs the module's own run() (report failed, one filters selection, as
`make load` does) with its SQL queries and its batch calls timed, and prints how the run's wall time divides: batch
calls alone, queries (selection pages, planning reads, read-backs) alone, both at once, and neither (this process's
own work between them). Then makes as many again and drives the batch route raw (bench/raw_batches.py), the
physical limit here. With PROFILE_WRITE=1 the table is written into docs/benchmarks.md under the state's section
(PROFILE_LABEL names it: "before", "after"...). Not a test: figures are reported, never asserted.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import conftest as _paths  # noqa: E402,F401  (makes ansible_collections.restate.admin importable)
import raw_batches  # noqa: E402
from harness.load import invocations_of, make_by_fan_out  # noqa: E402
from harness.server import Restate, wait_until  # noqa: E402

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._invocations_api import InvocationsApi  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._restate_module import with_connection  # noqa: E402
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import (  # noqa: E402
    ControllerTask, TaskDone)

N = int(os.environ.get("PROFILE_N", "100000"))
STATE = os.environ.get("PROFILE_STATE", "purged")
LABEL = os.environ.get("PROFILE_LABEL", "this code")
# What each state acts on, the batch route's action for it, and the section of docs/benchmarks.md its table goes in.
WAYS = {"purged": ("ok", "purge", "## Where a large purge spends its time"),
        "cancelled": ("sleep", "cancel", "## Where a cancel or kill of suspended invocations spends its time"),
        "killed": ("sleep", "kill", "## Where a cancel or kill of suspended invocations spends its time")}
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
# The parts of the module's work timed, by the function doing it: (kind, owner, attribute).
TIMED = (("selection", _invocation_task.Pages, "_read"), ("selection", _invocation_task.Pages, "_count"),
         ("planning", _invocation_task, "cancel_pending"), ("read-back", _invocation_task, "read_rows"),
         ("read-back", _invocation_task, "read_after"), ("batch", InvocationsApi, "_batch_call"))
QUERY_KINDS = {"selection": "selection pages and counts", "planning": "planning reads (pending cancels)",
               "read-back": "read-backs of what was acted on"}


class Timeline:
    """Intervals (kind, start, end) recorded from any thread."""

    def __init__(self):
        self.intervals = []
        self.lock = threading.Lock()

    def timed(self, kind, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self.lock:
                    self.intervals.append((kind, started, time.perf_counter()))
        return wrapper

    def covered(self, kinds, start, end) -> float:
        """Seconds of [start, end] during which at least one interval of ``kinds`` ran."""
        spans = sorted((max(a, start), min(b, end)) for kind, a, b in self.intervals if kind in kinds)
        total, reach = 0.0, start
        for a, b in spans:
            if b > reach:
                total += b - max(a, reach)
                reach = b
        return total

    def alone_in_flight(self, kind, start, end) -> float:
        """Seconds of [start, end] during which exactly one interval of ``kind`` ran."""
        events = sorted([(max(a, start), 1) for k, a, b in self.intervals if k == kind and b > start]
                        + [(min(b, end), -1) for k, a, b in self.intervals if k == kind and b > start])
        total, running, since = 0.0, 0, start
        for at, step in events:
            if running == 1:
                total += at - since
            running, since = running + step, at
        return total

    def count(self, kind) -> int:
        return sum(1 for k, unused_a, unused_b in self.intervals if k == kind)


def run_the_module(admin_url, handler, timeline) -> tuple:
    """Runs restate_invocation's run() as the worker does; returns (result, start, wall seconds, CPU seconds)."""
    spec = with_connection(_invocation_task.SPEC)["argument_spec"]
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(admin_url=admin_url, filters={"service": "Tester", "handler": handler}, state=STATE,
                  report="failed", limit=N)
    timed = [(kind, owner, name) for kind, owner, name in TIMED if hasattr(owner, name)]  # older code: fewer
    originals = [(owner, name, getattr(owner, name)) for unused_kind, owner, name in timed]
    for kind, owner, name in timed:
        setattr(owner, name, timeline.timed(kind, getattr(owner, name)))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = None
    try:
        _invocation_task.run(ControllerTask(params, check_mode=False, diff=False))
    except TaskDone as done:
        result = done.result
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return result, started, wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def table(timeline, started, wall, cpu, raw_seconds) -> list:
    end = started + wall

    def alone(kinds):
        """Seconds during which ``kinds`` ran and no batch call did."""
        return timeline.covered(set(kinds) | {"batch"}, started, end) - timeline.covered({"batch"}, started, end)

    batches = timeline.covered({"batch"}, started, end)
    either = timeline.covered(set(QUERY_KINDS) | {"batch"}, started, end)
    queries = timeline.covered(set(QUERY_KINDS), started, end)
    both = queries + batches - either
    rows = [("batch calls, no query at the same time", batches - both,
             f"{timeline.count('batch')} calls of up to 1,000 ids; one call alone in flight "
             f"{timeline.alone_in_flight('batch', started, end):.1f} s of the time any was")]
    rows += [(f"{what}, no batch call at the same time", alone([kind]),
              f"{timeline.count(kind)} {'page reads and counts' if kind == 'selection' else 'queries'}")
             for kind, what in QUERY_KINDS.items() if timeline.count(kind)]
    rows += [("queries and batch calls at once", both, "a query overlapping batch calls"),
             ("neither: this process's own work", wall - either, "planning, tallying, paging between calls")]
    verb = {"purged": "purge", "cancelled": "cancel", "killed": "kill"}[STATE]
    lines = [f"PROFILE_N={N:,}, {verb}: the module's run() {wall:.1f} s ({N / wall:,.0f}/s, {cpu:.1f} s of CPU in "
             f"this process); the batch route driven raw {raw_seconds:.1f} s ({N / raw_seconds:,.0f}/s): "
             f"{raw_seconds / wall:.2f}x of the raw rate.", "",
             "| part of the run | seconds | share | note |", "|---|---:|---:|---|"]
    lines += [f"| {name} | {seconds:.1f} | {seconds / wall:.0%} | {note} |" for name, seconds, note in rows]
    return lines


def write_section(lines, title):
    """Adds (or replaces) this label's table in the section ``title`` of docs/benchmarks.md."""
    text = BENCHMARKS.read_text()
    # The cancel and the kill share a section: each label has a table for each.
    heading = f"### {LABEL}" if STATE == "purged" else f"### {STATE}: {LABEL}"
    block = "\n".join([heading, "", time.strftime("Measured by `make profile` (%Y-%m-%d). ") + lines[0], "",
                       *lines[2:], ""])
    if title not in text:
        text = text.rstrip("\n") + f"\n\n{title}\n\n"
    section_at = text.index(title)
    following = text.find("\n## ", section_at + len(title))
    section = text[section_at:following if following >= 0 else len(text)]
    old = re.search(rf"^{re.escape(heading)}\n.*?(?=^### |\Z)", section, flags=re.S | re.M)
    section = section.replace(old.group(0), block + "\n") if old else section.rstrip("\n") + "\n\n" + block
    BENCHMARKS.write_text(text[:section_at] + section + (text[following:] if following >= 0 else ""))


def make(server, handler, tag):
    seconds = make_by_fan_out(server, N, tag, handler=handler)
    print(f"made {N:,} Tester/{handler} in {seconds:.0f} s", flush=True)


def all_ended(server, handler):
    """Waits until none of the ``handler`` invocations is left to end (a cancel is applied after its call)."""
    if handler == "sleep":
        wait_until(lambda: invocations_of(server, handler, " AND status <> 'completed'") == 0,
                   timeout=max(120, N / 300), interval=1, what=f"the {N:,} Tester/{handler} ended")


def main():
    if STATE not in WAYS:
        raise SystemExit(f"PROFILE_STATE must be one of {', '.join(WAYS)}, got {STATE!r}")
    handler, action, title = WAYS[STATE]
    workdir = Path(tempfile.mkdtemp(prefix="restate-profile-"))
    server = Restate(workdir).start()
    try:
        server.http.post(f"{server.admin_url}/deployments", json={"uri": server.service.url, "use_http_11": False,
                                                                  "force": True}, timeout=30).raise_for_status()
        # As make load: a sleeping invocation suspends after the inactivity timeout (a minute by default).
        server.http.patch(f"{server.admin_url}/services/Tester", json={"inactivity_timeout": "1s"},
                          timeout=30).raise_for_status()
        make(server, handler, "profile")
        timeline = Timeline()
        result, started, wall, cpu = run_the_module(server.admin_url, handler, timeline)
        if result is None or result.get("failed") or result["summary"]["changed"] != N:
            raise SystemExit(f"the module did not act on {N:,}: {result and result.get('msg')}")
        all_ended(server, handler)  # the raw route selects those not completed: the module's must not count
        make(server, handler, "raw")
        raw = raw_batches.main(server.admin_url, action, "Tester", handler)
        if raw["done"] != N:
            raise SystemExit(f"the raw batches did {raw['done']:,} of {N:,}")
        lines = table(timeline, started, wall, cpu, raw["seconds"])
        print(f"{STATE}: {LABEL}", *lines, sep="\n", flush=True)
        if os.environ.get("PROFILE_WRITE") == "1":
            write_section(lines, title)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
