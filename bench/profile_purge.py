"""Where a large purge spends its time: restate_invocation's work, in this process, against a real local server.

    make profile                   # PROFILE_N=100000
    PROFILE_N=20000 make profile

Makes PROFILE_N completed `Tester/ok` invocations, then runs the module's own run() (state purged, report failed,
one filters selection, as `make load` does) with its SQL selections and its batch calls timed, and prints how the
run's wall time divides: selection queries alone, batch calls alone, both at once, and neither (this process's own
work between them). Then makes as many again and purges them with the batch route driven raw (bench/raw_batches.py),
the physical limit here. With PROFILE_WRITE=1 the table is written into docs/benchmarks.md under PROFILE_SECTION
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
from harness.load import make_by_fan_out  # noqa: E402
from harness.server import Restate  # noqa: E402

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._invocations_api import InvocationsApi  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._queries_api import QueriesApi  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._restate_module import with_connection  # noqa: E402
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import (  # noqa: E402
    ControllerTask, TaskDone)

N = int(os.environ.get("PROFILE_N", "100000"))
LABEL = os.environ.get("PROFILE_LABEL", "this code")
PROFILE_SECTION = "## Where a large purge spends its time"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


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

    def count(self, kind) -> int:
        return sum(1 for k, unused_a, unused_b in self.intervals if k == kind)


def purge_with_the_module(admin_url, timeline) -> tuple:
    """Runs restate_invocation's run() as the worker does; returns (result, wall seconds, CPU seconds)."""
    spec = with_connection(_invocation_task.SPEC)["argument_spec"]
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(admin_url=admin_url, filters={"service": "Tester", "handler": "ok"}, state="purged",
                  report="failed", limit=N)
    originals = QueriesApi.query, InvocationsApi._batch_call  # pylint: disable=protected-access
    QueriesApi.query = timeline.timed("query", QueriesApi.query)
    InvocationsApi._batch_call = timeline.timed("batch", InvocationsApi._batch_call)  # pylint: disable=protected-access
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = None
    try:
        _invocation_task.run(ControllerTask(params, check_mode=False, diff=False))
    except TaskDone as done:
        result = done.result
    finally:
        QueriesApi.query, InvocationsApi._batch_call = originals  # pylint: disable=protected-access
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return result, started, wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def table(timeline, started, wall, cpu, raw_seconds) -> list:
    end = started + wall
    queries = timeline.covered({"query"}, started, end)
    batches = timeline.covered({"batch"}, started, end)
    either = timeline.covered({"query", "batch"}, started, end)
    both = queries + batches - either
    rows = [("selection queries only", queries - both, f"{timeline.count('query')} queries"),
            ("batch calls only", batches - both, f"{timeline.count('batch')} calls of up to 1,000 ids"),
            ("both at once", both, "a selection overlapping batch calls"),
            ("neither: this process's own work", wall - either, "planning, tallying, paging between calls")]
    lines = [f"PROFILE_N={N:,}: the module's run() {wall:.1f} s ({N / wall:,.0f}/s, {cpu:.1f} s of CPU in "
             f"this process); the batch route driven raw {raw_seconds:.1f} s ({N / raw_seconds:,.0f}/s): "
             f"{raw_seconds / wall:.2f}x of the raw rate.", "",
             "| part of the run | seconds | share | note |", "|---|---:|---:|---|"]
    lines += [f"| {name} | {seconds:.1f} | {seconds / wall:.0%} | {note} |" for name, seconds, note in rows]
    return lines


def write_section(lines):
    """Adds (or replaces) this label's table in the profile section of docs/benchmarks.md."""
    text = BENCHMARKS.read_text()
    heading = f"### {LABEL}"
    block = "\n".join([heading, "", time.strftime("Measured by `make profile` (%Y-%m-%d). ") + lines[0], "",
                       *lines[2:], ""])
    if PROFILE_SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{PROFILE_SECTION}\n\n"
    section_at = text.index(PROFILE_SECTION)
    following = text.find("\n## ", section_at + len(PROFILE_SECTION))
    section = text[section_at:following if following >= 0 else len(text)]
    old = re.search(rf"^{re.escape(heading)}\n.*?(?=^### |\Z)", section, flags=re.S | re.M)
    section = section.replace(old.group(0), block + "\n") if old else section.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text[:section_at] + section + (text[following:] if following >= 0 else ""))


def main():
    workdir = Path(tempfile.mkdtemp(prefix="restate-profile-"))
    server = Restate(workdir).start()
    try:
        server.http.post(f"{server.admin_url}/deployments", json={"uri": server.service.url, "use_http_11": False,
                                                                  "force": True}, timeout=30).raise_for_status()
        print(f"made {N:,} in {make_by_fan_out(server, N, 'profile'):.0f} s", flush=True)
        timeline = Timeline()
        result, started, wall, cpu = purge_with_the_module(server.admin_url, timeline)
        if result is None or result.get("failed") or result["summary"]["changed"] != N:
            raise SystemExit(f"the module's purge did not purge {N:,}: {result.get('msg')}")
        print(f"made {N:,} again in {make_by_fan_out(server, N, 'raw'):.0f} s", flush=True)
        raw = raw_batches.main(server.admin_url, "purge", "Tester", "ok")
        if raw["done"] != N:
            raise SystemExit(f"the raw batches purged {raw['done']:,} of {N:,}")
        lines = table(timeline, started, wall, cpu, raw["seconds"])
        print(LABEL, *lines, sep="\n", flush=True)
        if os.environ.get("PROFILE_WRITE") == "1":
            write_section(lines)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
