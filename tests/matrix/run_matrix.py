"""The compatibility matrix (make matrix): every pinned ansible-core and every pinned Restate server.

Cells: each ansible-core of tests/matrix/ansible-core-*.txt and the default one (requirements-dev.txt), with the
default server, runs unit tests, ansible-test sanity and the integration suite; each server of
tests/npm/server-*/ runs the integration suite with the default ansible-core. The volume tests (marker ``slow``)
stay in ``make test`` only, unless MATRIX_SLOW=1. MATRIX_ANSIBLE / MATRIX_SERVERS (space-separated versions) pick a
subset. Writes docs/compatibility.md; exits 1 if any cell failed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output" / "matrix"


def pinned(path: Path, pattern: str) -> str:
    return re.search(pattern, path.read_text()).group(1)


DEFAULT_CORE = pinned(ROOT / "requirements-dev.txt", r"ansible-core==(\d+\.\d+)\.")
DEFAULT_SERVER = json.loads((ROOT / "tests/npm/package.json").read_text())["dependencies"]["@restatedev/restate-server"]
CORES = sorted([p.stem.removeprefix("ansible-core-") for p in (ROOT / "tests/matrix").glob("ansible-core-*.txt")]
               + [DEFAULT_CORE], key=lambda v: tuple(map(int, v.split("."))))
SERVERS = sorted([p.name.removeprefix("server-") for p in (ROOT / "tests/npm").glob("server-*")] + [DEFAULT_SERVER],
                 key=lambda v: tuple(map(int, v.split("."))))


class Cell:
    def __init__(self, core: str, server: str, steps: list):
        self.core, self.server, self.steps = core, server, steps
        self.results = {}  # step -> (passed, text)
        self.env = dict(os.environ)
        self.env.pop("ANSIBLE_CORE", None)
        self.env.pop("RESTATE_SERVER_VERSION", None)
        if core != DEFAULT_CORE:
            self.env["ANSIBLE_CORE"] = core
        if server != DEFAULT_SERVER:
            self.env["RESTATE_SERVER_VERSION"] = server
        self.name = f"core-{core}_server-{server}"

    def run(self, step: str, args: list, junit: Path | None = None):
        log = OUTPUT / f"{self.name}_{step}.log"
        start = time.monotonic()
        with log.open("w") as out:
            rc = subprocess.call(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        minutes = (time.monotonic() - start) / 60
        text = f"{'pass' if rc == 0 else 'FAIL'}"
        if junit and junit.exists():
            suite = ET.parse(junit).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            total = int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
            text = f"{'pass' if rc == 0 else 'FAIL'} {total - failed}/{total}"
        elif step == "sanity":
            ran = re.findall(r'Running sanity test "', log.read_text())
            text += f" ({len(ran)} tests)"
        self.results[step] = (rc == 0, f"{text}, {minutes:.1f} min")
        print(f"  {step}: {self.results[step][1]}  ({log.relative_to(ROOT)})", flush=True)
        return rc == 0

    def execute(self, slow: bool):
        print(f"{self.name}:", flush=True)
        if not self.run("setup", ["scripts/setup.sh"]):
            return
        for step in self.steps:
            junit = OUTPUT / f"{self.name}_{step}.xml"
            if step == "units":
                self.run(step, ["scripts/pytest.sh", "tests/unit", "-q", f"--junitxml={junit}"], junit)
            elif step == "sanity":
                self.run(step, ["scripts/ansible_test.sh", "sanity", "--local", "--color", "no"])
            elif step == "integration":
                marker = "not load" if slow else "not slow and not load"
                self.run(step, ["scripts/pytest.sh", "tests/integration", "-q", "-m", marker, f"--junitxml={junit}"],
                         junit)

    @property
    def passed(self):
        return all(ok for ok, unused_text in self.results.values()) and len(self.results) == len(self.steps) + 1


def machine() -> str:
    cpus = os.cpu_count()
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    return (f"{platform.system()} {platform.machine()}, {cpus} CPUs, {int(memory) // 1024 // 1024} GiB, "
            f"Python {platform.python_version()}")


HEADER = ("| ansible-core | Restate server | setup | unit tests | sanity | integration tests | commit | run on |",
          "|---|---|---|---|---|---|---|---|")


def row_of(cell, commit: str) -> str:
    steps = [cell.results.get(step, (False, "not run"))[1] if step in cell.steps or step == "setup" else "—"
             for step in ("setup", "units", "sanity", "integration")]
    return f"| {cell.core} | {cell.server} | " + " | ".join(steps) + f" | {commit} | {time.strftime('%Y-%m-%d')} |"


def write_report(rows: dict, machine_text: str, minutes: float, slow: bool) -> Path:
    """docs/compatibility.md with this run's rows; a subset run (MATRIX_ANSIBLE / MATRIX_SERVERS) keeps the rows of
    the cells it did not run, each saying which commit it measured."""
    path = ROOT / "docs" / "compatibility.md"
    kept = {}
    for line in (path.read_text().splitlines() if path.exists() else []):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 6 and re.match(r"\d+\.\d+$", cells[0]):
            cells += ["not recorded", "not recorded"][len(cells) - 6:]
            kept[(cells[0], cells[1])] = "| " + " | ".join(cells[:8]) + " |"
    kept.update(rows)
    ordered = sorted(kept.items(), key=lambda item: (item[0][1] != DEFAULT_SERVER,
                                                     tuple(map(int, item[0][0].split("."))),
                                                     tuple(map(int, item[0][1].split(".")))))
    scope = ("all but the 100,000-invocation load run." if slow else
             "all but the volume tests (marker `slow`, run by `make test` on the default cell) and the load run.")
    lines = ["# Compatibility matrix", "",
             "Written by `make matrix` (tests/matrix/run_matrix.py): each row is what the run on the commit it names",
             "measured. `MATRIX_ANSIBLE=\"2.20 2.21\" MATRIX_SERVERS= make matrix` reruns those cells and keeps the other",
             "rows.",
             f"Last run: {machine_text}, {minutes:.0f} min for {len(rows)} cell(s). Integration tests: {scope}",
             "", *HEADER, *(row for unused_key, row in ordered)]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    cores = os.environ.get("MATRIX_ANSIBLE", " ".join(CORES)).split()
    servers = os.environ.get("MATRIX_SERVERS", " ".join(SERVERS)).split()
    slow = os.environ.get("MATRIX_SLOW") == "1"
    cells = [Cell(core, DEFAULT_SERVER, ["units", "sanity", "integration"]) for core in cores]
    cells += [Cell(DEFAULT_CORE, server, ["integration"]) for server in servers if server != DEFAULT_SERVER]
    start = time.monotonic()
    for cell in cells:
        cell.execute(slow)
    minutes = (time.monotonic() - start) / 60

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    rows = {(cell.core, cell.server): row_of(cell, commit) for cell in cells}
    print("\n" + "\n".join(rows.values()))
    report = write_report(rows, machine(), minutes, slow)
    print(f"\n{report.relative_to(ROOT)} written")
    return 0 if all(cell.passed for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
