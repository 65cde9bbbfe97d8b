"""Side-by-side benchmark of bulk invocation management (issue: bulk performance).

Runs against a real local restate-server started by the test harness, alternating the contenders
round by round, and prints (and writes to docs/benchmarks.md) the median rate of each and its ratio
to the official CLI. Not a test: numbers are reported, never asserted.

    make bench                     # N=10000, 3 rounds
    BENCH_N=2000 BENCH_ROUNDS=1 make bench
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))

import conftest as _paths  # noqa: E402,F401  (makes ansible_collections.restate.admin importable)
import urllib3  # noqa: E402
from harness.playbook import Ansible, build_and_install, run_with_peak_rss  # noqa: E402
from harness.server import CLI_BIN, Restate, server_version  # noqa: E402

from ansible_collections.restate.admin.plugins.module_utils._pipelined_http import PipelinedSender  # noqa: E402
from ansible_collections.restate.admin.plugins.module_utils._invocations_api import (  # noqa: E402
    BATCH_PATH, BATCH_SIZE, BATCHES_IN_FLIGHT)

N = int(os.environ.get("BENCH_N", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SAMPLE = int(os.environ.get("BENCH_SAMPLE", "40"))
RSS_N = [int(x) for x in os.environ.get("BENCH_RSS_N", "10000,100000").split(",") if x]
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))
BIN = Path(sys.executable).parent

# (operation, handler that produces the source status, status to wait for, module state, CLI verb, HTTP action)
OPERATIONS = {
    "cancel": ("Tester/sleep", "suspended", "cancelled", "cancel", "cancel"),
    "purge": ("Tester/ok", "completed", "purged", "purge", "purge"),
}


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of one process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of its children that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Bench:
    def __init__(self, restate: Restate, collections: Path, workdir: Path):
        self.restate = restate
        self.collections = collections
        self.workdir = workdir
        self.ansible = Ansible(collections, restate.admin_url, workdir)
        self.env = self.ansible.env()  # the installed collection, this Python, the server's admin URL

    # -- preparing ---------------------------------------------------------------------------------
    def prepare(self, operation: str, count: int) -> list:
        target, status = OPERATIONS[operation][:2]
        service, handler = target.split("/")
        leftovers = self.restate.query(
            f"SELECT COUNT(*) AS n FROM sys_invocation WHERE target_service_name = '{service}' AND "
            f"target_handler_name = '{handler}' AND status = '{status}'")[0]["n"]
        assert leftovers == 0, f"{leftovers} {status} {target} invocations left from an earlier step"
        body = 86400 if operation == "cancel" else "bench"
        ids = self.restate.send_many(target, [body] * count, threads=16)
        self.restate.wait_statuses(ids, status, timeout=max(60, count / 50))
        return ids

    def settle(self, operation: str, ids: list):
        """Untimed: wait until the step's effect is visible, and check nothing was missed."""
        if operation == "purge":
            self.restate.wait_statuses(ids, "absent", timeout=max(60, len(ids) / 50))
            return
        try:
            self.restate.wait_statuses(ids, "completed", timeout=max(30, len(ids) / 300))
        except TimeoutError:
            # Under 10,000 cancels at once the Python SDK service drops some connections, and the server retries
            # those invocations only after its inactivity timeout. A missed cancel would leave one suspended (it
            # sleeps a day); the others are on their way, and a kill ends them for the next contender.
            left = {i: s for i, s in self.restate.statuses(ids).items() if not s.startswith("completed")}
            assert "suspended" not in left.values(), f"{list(left.values()).count('suspended')} were never cancelled"
            self._pipelined("kill", list(left), also_ok=(409,))  # 409: it completed meanwhile
            self.restate.wait_statuses(ids, "completed", timeout=60)
        # Every contender meets the same table: the cancelled invocations go, instead of piling up round by round.
        self._pipelined("purge", ids)

    # -- contenders (each returns seconds for len(ids) invocations) --------------------------------
    def module(self, operation: str, ids: list, task_keywords=None, **options) -> float:
        return self._timed(self._playbook(operation, len(ids), task_keywords, **options))

    @staticmethod
    def _module_args(operation: str, count: int) -> dict:
        """restate_invocation's options that drive ``count`` invocations of the operation's kind."""
        target, status, state = OPERATIONS[operation][:3]
        return {"filters": {"target": target, "status": [status]}, "state": state, "limit": count}

    def _playbook(self, operation: str, count: int, task_keywords=None, **options) -> list:
        """The command of a one-task playbook that drives ``count`` invocations of the operation's kind."""
        return self._one_play(f"bench-{operation}", dict(task_keywords or {}, **{
            "restate.admin.restate_invocation": dict(options, **self._module_args(operation, count))}))

    def _one_play(self, name: str, task: dict) -> list:
        """The command of a playbook ``name`` of one task on localhost through the local connection, as every
        ansible-playbook contender runs."""
        playbook = self.workdir / f"{name}.yml"
        playbook.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                         "tasks": [task]}]))
        return [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]

    def module_one_patch_each(self, operation: str, ids: list) -> float:
        return self.module(operation, ids, batch_calls=False)

    def module_report_failed(self, operation: str, ids: list) -> float:
        return self.module(operation, ids, report="failed")

    def module_as_module(self, operation: str, ids: list) -> float:
        """The module run as a module process (AnsiballZ), as on a remote host: a task environment makes the action
        plugin hand it over."""
        return self.module(operation, ids, task_keywords={"environment": {"BENCH": "module process"}})

    def module_alone(self, operation: str, ids: list) -> float:
        """The module's own process, given its arguments as Ansible would: the module without Ansible around it."""
        return self._run_module(self._module_args(operation, len(ids)))[0]

    def job(self, operation: str, ids: list) -> float:
        """The collection's playbook for the operation, run as operators schedule it: bulk_cancel (its count guard
        included) or retention_cleanup (what completed more than a second ago)."""
        target, status = OPERATIONS[operation][:2]
        service, handler = target.split("/")
        if operation == "cancel":
            name, extravars = "bulk_cancel", {"filters": {"target": target, "status": [status]},
                                              "max_invocations": len(ids)}
        else:
            time.sleep(1.1)  # untimed: the newest of them must have completed more than the retention ago
            name, extravars = "retention_cleanup", {"retention": "1s", "service": service, "handler": handler,
                                                    "limit": len(ids)}
        return self._timed([str(BIN / "ansible-playbook"), "-i", "localhost,", f"restate.admin.{name}",
                            "-e", json.dumps(extravars)])

    def cli(self, operation: str, ids: list) -> float:
        return self._timed(self._cli_command(operation, len(ids)))

    @staticmethod
    def _cli_command(operation: str, count: int) -> list:
        target, verb = OPERATIONS[operation][0], OPERATIONS[operation][3]
        return [str(CLI_BIN), "invocations", verb, target, "--limit", str(count), "--yes"]

    def raw_http(self, operation: str, ids: list) -> float:
        action = OPERATIONS[operation][4]
        pool = urllib3.PoolManager(maxsize=CONCURRENCY)
        url = self.restate.admin_url + "/invocations/{}/" + action
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as executor:
            statuses = list(executor.map(lambda i: pool.request("PATCH", url.format(i)).status, ids))
        elapsed = time.perf_counter() - start
        assert all(s < 300 for s in statuses), sorted(set(statuses))
        return elapsed

    def raw_pipelined(self, operation: str, ids: list) -> float:
        """The module's own bulk sender, called directly: the module's rate without Ansible around it."""
        start = time.perf_counter()
        self._pipelined(OPERATIONS[operation][4], ids)
        return time.perf_counter() - start

    def raw_batches(self, operation: str, ids: list) -> float:
        """The server's batch route alone, as many ids per POST and as many POSTs in flight as the module sends."""
        action = OPERATIONS[operation][4]
        pool = urllib3.PoolManager(maxsize=BATCHES_IN_FLIGHT)
        url = f"{self.restate.admin_url}{BATCH_PATH}{action}"
        chunks = [ids[start:start + BATCH_SIZE] for start in range(0, len(ids), BATCH_SIZE)]
        start = time.perf_counter()
        with ThreadPoolExecutor(BATCHES_IN_FLIGHT) as executor:
            answers = list(executor.map(lambda chunk: pool.request("POST", url, json={"invocation_ids": chunk}), chunks))
        elapsed = time.perf_counter() - start
        assert all(a.status == 200 and not a.json()["failed"] for a in answers), [a.data[:200] for a in answers]
        return elapsed

    def _pipelined(self, action: str, ids: list, also_ok=()):
        """PATCH /invocations/{id}/{action} for every id through the module's sender; every answer must be 2xx (or
        one of ``also_ok``)."""
        sender = PipelinedSender(self.restate.admin_url, {"accept": "application/json"}, connections=128, window=4)
        answers = sender.send("PATCH", [f"/invocations/{i}/{action}" for i in ids])
        assert all(a.status is not None and (a.status < 300 or a.status in also_ok) for a in answers), {
            a.status for a in answers}

    def xargs_cli(self, operation: str, ids: list) -> float:
        """The seed document's shell pipeline: one CLI process per id (on a sample, extrapolated)."""
        verb = OPERATIONS[operation][3]
        sample = ids[:SAMPLE]
        return self._timed(["xargs", "-n1", str(CLI_BIN), "invocations", verb, "--yes"], stdin="\n".join(sample))

    def ansible_loop(self, operation: str, ids: list) -> float:
        """An Ansible `loop:` over ids, one task item per id (on a sample, extrapolated)."""
        state = OPERATIONS[operation][2]
        sample = ids[:SAMPLE]
        return self._timed(self._one_play(f"bench-loop-{operation}", {
            "restate.admin.restate_invocation": {"id": "{{ item }}", "state": state}, "loop": sample}))

    def _timed(self, args, stdin=None) -> float:
        return self._run(args, stdin)[0]

    def _run(self, args, stdin=None) -> tuple:
        """Run a command; (seconds, peak RSS in MB of its largest process, itself or a descendant)."""
        proc, seconds, peak_mb = run_with_peak_rss(args, self.env, stdin=stdin)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:4])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return seconds, peak_mb

    # -- other measurements --------------------------------------------------------------------------
    def _run_module(self, args: dict) -> tuple:
        """Run restate_invocation's file as its own process with ``args``; (seconds, peak RSS in MB)."""
        result, megabytes, seconds = self.ansible.run_measured(
            "restate.admin.restate_invocation", dict(args, admin_url=self.restate.admin_url))
        if result.get("failed"):
            raise RuntimeError(f"the module failed: {result.get('msg')}")
        return seconds, megabytes

    def at_scale(self, count: int) -> dict:
        """Purge ``count`` completed invocations once each way: {way: (seconds, peak RSS in MB of the largest
        process)}. The module process run directly, an ansible-playbook task (the worker that runs the code, or the
        main process that gets the result) with every invocation listed and with only the failed ones, and the CLI
        (its seconds are what the module's are compared with; its memory is not the question)."""
        ways = {
            "module process alone": lambda: self._run_module(self._module_args("purge", count)),
            "ansible-playbook task": lambda: self._run(self._playbook("purge", count)),
            "ansible-playbook task, `report: failed`": lambda: self._run(
                self._playbook("purge", count, report="failed")),
            "official CLI": lambda: self._run(self._cli_command("purge", count)),
        }
        measured = {}
        for way, run in ways.items():
            ids = self.prepare("purge", count)
            measured[way] = run()
            self.settle("purge", ids)
        return measured

    def floor(self, repeats: int = 5) -> float:
        """Median seconds of a playbook of one ``debug`` task run the same way as the module's: what Ansible's own
        start-up and exit take, the part of every module task no module can shorten."""
        command = self._one_play("bench-floor", {"ansible.builtin.debug": {"msg": "nothing else"}})
        return statistics.median(self._timed(command) for unused_round in range(repeats))

    def latency(self, repeats: int = 5) -> tuple:
        ping = [self._timed([str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", "ping"])
                for unused_round in range(repeats)]
        one = []
        for unused_round in range(repeats):
            invocation_id = self.restate.make("suspended")[0]
            one.append(self._timed([str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m",
                                    "restate.admin.restate_invocation", "-a",
                                    f"id={invocation_id} state=cancelled"]))
        return statistics.median(ping), statistics.median(one)


SAMPLED = ("xargs_cli", "ansible_loop")
ALL_CONTENDERS = ("module", "module_report_failed", "job", "module_as_module", "module_alone", "module_one_patch_each",
                  "cli", "raw_http", "raw_pipelined", "raw_batches", "xargs_cli", "ansible_loop")
# BENCH_CONTENDERS=module,cli,... runs some of them (cli always, as the reference).
CONTENDERS = tuple(c for c in ALL_CONTENDERS
                   if c == "cli" or c in os.environ.get("BENCH_CONTENDERS", ",".join(ALL_CONTENDERS)).split(","))
LABELS = {
    "module": "restate_invocation, one ansible-playbook task (start-up included)",
    "module_report_failed": "restate_invocation with `report: failed`, one ansible-playbook task",
    "job": "the collection's playbook, as scheduled (`bulk_cancel` with its count guard, `retention_cleanup`)",
    "module_as_module": "restate_invocation run as a module process (as on a remote host), one ansible-playbook task",
    "module_alone": "restate_invocation's module process alone, without ansible-playbook around it",
    "module_one_patch_each": "restate_invocation with `batch_calls: false`, one ansible-playbook task",
    "cli": "official CLI, one process (`restate invocations VERB TARGET --limit N --yes`)",
    "raw_http": f"raw HTTP reference: urllib3, {CONCURRENCY} threads",
    "raw_pipelined": "raw HTTP reference: the module's pipelined sender alone (128 connections x 4)",
    "raw_batches": (f"raw HTTP reference: the server's batch route alone ({BATCH_SIZE:,} ids per call, "
                    f"{BATCHES_IN_FLIGHT} in flight)"),
    "xargs_cli": f"seed document: one CLI process per id via xargs ({SAMPLE}-id sample, extrapolated)",
    "ansible_loop": f"Ansible `loop:` one item per id ({SAMPLE}-id sample, extrapolated)",
}

WHOLE_RUN = {"cli": "the CLI", "module": "restate_invocation's task",
             "module_report_failed": "with `report: failed`"}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) // 1024 // 1024
    import ansible
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, ansible-core {ansible.__version__}, "
            f"restate-server {'.'.join(map(str, server_version()))} (local)")


def main() -> int:
    # A bench stopped with SIGTERM (a timeout, kill) still stops its server and service in the finally below.
    signal.signal(signal.SIGTERM, lambda *unused: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="restate-bench-"))
    restate = Restate(workdir).start()
    try:
        collections = build_and_install(workdir / "galaxy")
        bench = Bench(restate, collections, workdir)
        rates = {op: {c: [] for c in CONTENDERS} for op in OPERATIONS}
        # CPU seconds each full-size run cost: (the contender's processes, restate-server, the SDK service, wall)
        costs = {op: {c: [] for c in CONTENDERS if c not in SAMPLED} for op in OPERATIONS}
        groups = (restate.server.process.pid, restate.service.process.pid)  # each leads its own process group
        for round_no in range(ROUNDS):
            order = CONTENDERS[round_no % len(CONTENDERS):] + CONTENDERS[:round_no % len(CONTENDERS)]
            for operation in OPERATIONS:
                for contender in order:
                    sampled = contender in SAMPLED
                    # Sample contenders run on SAMPLE invocations; their time is extrapolated to N.
                    ids = bench.prepare(operation, SAMPLE if sampled else N)
                    before = [own_cpu_seconds()] + [group_cpu_seconds(pgid) for pgid in groups]
                    seconds = getattr(bench, contender)(operation, ids)
                    after = [own_cpu_seconds()] + [group_cpu_seconds(pgid) for pgid in groups]
                    if sampled:
                        seconds = seconds * N / len(ids)
                    else:
                        costs[operation][contender].append([b - a for a, b in zip(before, after)] + [seconds])
                    bench.settle(operation, ids)
                    rates[operation][contender].append(N / seconds)
                    print(f"round {round_no + 1} {operation:6} {contender:12} {N / seconds:9.0f}/s", flush=True)
        scale = {count: bench.at_scale(count) for count in RSS_N}
        ping, one = bench.latency()
        floor = bench.floor()
    finally:
        restate.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the server's data: hundreds of MB after a run
    report = render(rates, costs, scale, ping, one, floor)
    print(report)
    (ROOT / "docs").mkdir(exist_ok=True)
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else ""
    path.write_text(report + "".join(kept_section(old, heading) for heading in KEPT_SECTIONS))
    return 0


# The sections other commands write (make load: the purge and the cancel/kill side by side; make profile): a rewrite
# by make bench keeps them.
KEPT_SECTIONS = ("## Purge in one task, beside the raw batch route and the CLI",
                 "## Cancel and kill of suspended invocations in one task",
                 "## Where a large purge spends its time",
                 "## Where a cancel or kill of suspended invocations spends its time")


def kept_section(text: str, heading: str) -> str:
    """The section of ``text`` under ``heading`` (to the next heading of its level), preceded by a blank line; or
    nothing."""
    start = text.find(heading)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(heading))
    return "\n" + (text[start:end + 1] if end >= 0 else text[start:]).rstrip("\n") + "\n"


def commit() -> str:
    """The commit measured (with '+changes' when the working tree differs from it)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+changes" if git("status", "--porcelain",
                                                                                   "--untracked-files=no") else "")


def render(rates, costs, scale, ping, one, floor) -> str:
    lines = ["# Benchmarks", "", f"Measured by `make bench` ({time.strftime('%Y-%m-%d')}, commit {commit()}), N = {N}, "
             f"median of {ROUNDS} alternating round(s).", "", f"Machine: {machine()}.", ""]
    if CONTENDERS != ALL_CONTENDERS:
        lines += [f"Only some contenders ran (BENCH_CONTENDERS): {', '.join(CONTENDERS)}; the last numbers of the "
                  "others are in this file's history.", ""]
    for operation in OPERATIONS:
        cli = statistics.median(rates[operation]["cli"])
        lines += [f"## {operation} {N} invocations", "",
                  "| contender | invocations/s | ratio to CLI | ratio to the CLI of the same round, lowest-highest |",
                  "|---|---:|---:|---:|"]
        for contender in CONTENDERS:
            rate = statistics.median(rates[operation][contender])
            # Rounds alternate the contenders, so a round's CLI run met the same machine: the spread of these
            # paired ratios shows how far one run of the bench can move a median ratio.
            paired = [mine / theirs for mine, theirs in zip(rates[operation][contender], rates[operation]["cli"])]
            lines.append(f"| {LABELS[contender]} | {rate:,.0f} | {rate / cli:.2f}x | "
                         f"{min(paired):.2f}x-{max(paired):.2f}x |")
        seconds = {contender: N / statistics.median(rates[operation][contender])
                   for contender in ("cli", "module", "module_report_failed") if contender in CONTENDERS}
        lines += ["", "Whole run, median: " + "; ".join(
            f"{WHOLE_RUN[contender]} {value:.2f} s" for contender, value in seconds.items()) +
            f". A playbook of one `debug` task, run the same way (Ansible's own start-up and exit): {floor:.2f} s."]
        lines += ["", f"CPU seconds a {operation} of {N} cost (median of the rounds), and how many of the "
                  f"{os.cpu_count()} cores that kept busy:", "",
                  "| contender | its processes | restate-server | SDK service | wall | cores busy |",
                  "|---|---:|---:|---:|---:|---:|"]
        for contender, runs in costs[operation].items():
            own, server, service, wall = (statistics.median(column) for column in zip(*runs))
            lines.append(f"| {contender} | {own:.2f} | {server:.2f} | {service:.2f} | {wall:.2f} | "
                         f"{(own + server + service) / wall:.1f} |")
        lines.append("")
    lines += ["## Purge at scale", "", "One run each way, not alternated rounds: how the rates move with the number of "
              "invocations, Ansible's start-up being the same for any number.", "",
              "| invocations | way | invocations/s | ratio to CLI |", "|---:|---|---:|---:|"]
    for count, ways in scale.items():
        cli_seconds = ways["official CLI"][0]
        for way, (seconds, unused_megabytes) in ways.items():
            lines.append(f"| {count:,} | {way} | {count / seconds:,.0f} | {cli_seconds / seconds:.2f}x |")
    lines += ["", "## Memory and latency", "", "| measurement | value |", "|---|---:|"]
    for count, ways in scale.items():
        for way, (unused_seconds, megabytes) in ways.items():
            if way != "official CLI":
                lines.append(f"| peak RSS purging {count:,} completed invocations: {way} | {megabytes:.0f} MB |")
    lines.append(f"| `ansible-playbook` of one `debug` task (median of 5) | {floor:.2f} s |")
    lines.append(f"| `ansible localhost -m ping` (median of 5) | {ping:.2f} s |")
    lines.append(f"| one-invocation `restate_invocation` task, same way (median of 5) | {one:.2f} s ({one / ping:.2f}x ping) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
