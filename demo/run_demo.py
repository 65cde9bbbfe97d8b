# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo: a local Restate server with a small shop, a realistic mix of invocations, the three playbooks, then a
release of the shop's version 2 while checkouts are still suspended on version 1.

    make demo                                   # embedded server on free ports (DEMO_ADMIN_PORT, DEMO_INGRESS_PORT,
                                                # DEMO_SERVICE_PORT, DEMO_SERVICE_V2_PORT)
    RESTATE_ADMIN_URL=http://host:9070 make demo   # an existing server: dry runs only (DEMO_APPLY=1 to act), no release

Everything it starts is stopped again, also on Ctrl-C, and its temporary folder is removed (kept, with the server's
and the service's logs, only when the demo failed). The jobs run as docs/cron.md shows: the guide's inventory and
connection file (-i inventory.ini -e @connection.yml), no environment variable that silences a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import cron_guide  # noqa: E402
from harness.playbook import build_and_install  # noqa: E402
from harness.server import Process, RestateServer, free_port, wait_until  # noqa: E402

BIN = Path(sys.executable).parent
MIX = {"suspended": 1000, "paused": 200, "backing-off": 200, "old completed": 3000, "recent completed": 200}
RETENTION = "45s"  # the demo's "7 days": the old completed invocations are older than this when the cleanup runs
RELEASE_CHECKOUTS = 100  # checkouts suspended on (and pinned to) version 1 when version 2 is released
DRAIN_TIMEOUT = 10  # the release's drain_timeout: how long it waits for version 1 to drain (the default is 300)
# The release's drain_delay: how long version 1 must be seen drained before it is removed. The role's default, 300
# as in the Restate Kubernetes operator, gives an invocation started just before the drain time to be seen; a demo
# would sit waiting five minutes.
DRAIN_DELAY = 5


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


class Shop:
    """restate-server plus the shop service, both on loopback, in one temporary directory."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.server = RestateServer(workdir)
        if os.environ.get("DEMO_ADMIN_PORT"):
            self.server.admin_port = int(os.environ["DEMO_ADMIN_PORT"])
            self.server.admin_url = f"http://127.0.0.1:{self.server.admin_port}"
        if os.environ.get("DEMO_INGRESS_PORT"):
            self.server.ingress_port = int(os.environ["DEMO_INGRESS_PORT"])
            self.server.ingress_url = f"http://127.0.0.1:{self.server.ingress_port}"
        self.service_port = int(os.environ.get("DEMO_SERVICE_PORT") or free_port())
        self.v2_port = int(os.environ.get("DEMO_SERVICE_V2_PORT") or free_port())
        self.service = None
        self.v2 = None
        self.v1_id = None
        self.http = requests.Session()
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def start(self) -> None:
        self.server.start()
        self.service = self._serve(self.service_port, "1", "shop.log")
        response = self.http.post(self.server.admin_url + "/deployments", timeout=30, json={
            "uri": f"http://127.0.0.1:{self.service_port}", "use_http_11": True, "force": True})
        response.raise_for_status()
        self.v1_id = response.json()["id"]

    def start_v2(self) -> None:
        """Version 2 of the shop on its own port; registering it is the release's job."""
        self.v2 = self._serve(self.v2_port, "2", "shop-v2.log")

    def _serve(self, port: int, version: str, log: str) -> Process:
        hypercorn = BIN / "hypercorn"
        process = Process([str(hypercorn), "shop_service:app", "--bind", f"127.0.0.1:{port}"], self.workdir / log,
                          env=dict(os.environ, SHOP_VERSION=version), cwd=str(Path(__file__).parent))
        wait_until(lambda: self._service_up(process, port, log), timeout=30, what=f"the shop service v{version}")
        return process

    def _service_up(self, process: Process, port: int, log: str) -> bool:
        if not process.alive():
            raise RuntimeError(f"the shop service exited; see {self.workdir / log}")
        try:
            return self.http.get(f"http://127.0.0.1:{port}/discover", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    def version_of(self, deployment: dict) -> str:
        uri = (deployment.get("uri") or "").rstrip("/")
        return {f"http://127.0.0.1:{self.service_port}": "v1", f"http://127.0.0.1:{self.v2_port}": "v2"}.get(uri, "")

    def stop(self) -> None:
        for process in (self.v2, self.service):
            if process:
                process.stop()
        self.server.stop()

    def send(self, target: str, order_ids) -> list:
        def one(order_id):
            response = self.http.post(f"{self.server.ingress_url}/{target}/send", json=order_id, timeout=30)
            response.raise_for_status()
            return response.json()["invocationId"]

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, order_ids))


def query(admin_url: str, sql: str, token: str | None = None) -> list:
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = requests.post(admin_url + "/query", json={"query": sql}, headers=headers, timeout=60)
    response.raise_for_status()
    return response.json()["rows"]


def wait_for(admin_url: str, ids: list, statuses: tuple, what: str, timeout: float = 120) -> None:
    wanted = set(ids)

    def settled():
        rows = query(admin_url, "SELECT id, status FROM sys_invocation")
        return sum(1 for r in rows if r["id"] in wanted and r["status"] in statuses) == len(wanted)

    wait_until(settled, timeout=timeout, interval=0.5, what=what)


def seed(shop: Shop) -> str:
    """Create the mix; returns a timestamp between the older and the newer stuck invocations."""
    admin = shop.server.admin_url
    say(f"Creating {MIX['old completed']} completed orders, the ones the retention cleanup will purge")
    old = shop.send("Orders/status", [f"o-{n}" for n in range(MIX["old completed"])])
    wait_for(admin, old, ("completed",), "completed orders")
    old_done = time.monotonic()
    say(f"Creating {MIX['backing-off']} payments that keep failing (backing-off)")
    charges = shop.send("Payments/charge", [f"p-{n}" for n in range(MIX["backing-off"])])
    wait_for(admin, charges, ("backing-off",), "backing-off payments")
    time.sleep(1.5)
    boundary = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.5)
    say(f"Creating {MIX['paused']} stock reservations that pause after three failures")
    reservations = shop.send("Inventory/reserve", [f"r-{n}" for n in range(MIX["paused"])])
    say(f"Creating {MIX['suspended']} checkouts waiting for a payment confirmation (suspended)")
    checkouts = shop.send("Orders/checkout", [f"c-{n}" for n in range(MIX["suspended"])])
    wait_for(admin, reservations, ("paused",), "paused reservations")
    wait_for(admin, checkouts, ("suspended",), "suspended checkouts")
    remaining = int(RETENTION[:-1]) + 2 - (time.monotonic() - old_done)
    if remaining > 0:
        say(f"Waiting {remaining:.0f}s so the first completed orders are older than the retention of {RETENTION}")
        time.sleep(remaining)
    say(f"Creating {MIX['recent completed']} recent completed orders, which the cleanup must keep")
    recent = shop.send("Orders/status", [f"n-{n}" for n in range(MIX["recent completed"])])
    wait_for(admin, recent, ("completed",), "recent orders")
    return boundary


def show_counts(admin_url: str, title: str, token: str | None = None) -> None:
    rows = query(admin_url, "SELECT target, status, completion_result, COUNT(*) AS n FROM sys_invocation "
                            "GROUP BY target, status, completion_result ORDER BY target, status", token)
    say(title)
    print(f"  {'target':<22} {'status':<12} {'result':<8} {'count':>6}")
    for row in rows:
        print(f"  {row['target']:<22} {row['status']:<12} {row.get('completion_result') or '':<8} {row['n']:>6}")
    if not rows:
        print("  (no invocations)")


class Jobs:
    """ansible-playbook as docs/cron.md runs it: the guide's inventory, the connection as an extra-vars file."""

    def __init__(self, workdir: Path, collections: Path, admin_url: str):
        self.workdir = workdir
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
        (workdir / "inventory.ini").write_text(cron_guide.inventory())
        # the guide's connection.yml without a token (an existing server's RESTATE_AUTH_TOKEN stays in the environment)
        (workdir / "connection.yml").write_text(json.dumps({"restate_admin_url": admin_url}))
        self.options = [word.replace(cron_guide.INVENTORY, str(workdir / "inventory.ini")).replace(
            cron_guide.CONNECTION, str(workdir / "connection.yml")) for word in cron_guide.playbook_options()]

    def args(self, playbook: str) -> list:
        return [str(BIN / "ansible-playbook"), *self.options, playbook]


def playbook(jobs: Jobs, name: str, extravars: dict, check: bool) -> float:
    """Runs the playbook restate.admin.NAME with its output shown; returns how long it took (seconds)."""
    say(f"ansible-playbook -i inventory.ini -e @connection.yml restate.admin.{name} {'--check ' if check else ''}"
        f"-e '{json.dumps(extravars)}'")
    args = jobs.args(f"restate.admin.{name}") + ["-e", json.dumps(extravars)]
    if check:
        args.append("--check")
    started = time.monotonic()
    result = subprocess.run(args, env=jobs.env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: restate.admin.{name} failed (exit {result.returncode})")
    return time.monotonic() - started


def module(jobs: Jobs, name: str, args: dict) -> dict:
    """One task of restate.admin.NAME in a playbook of its own (output kept quiet); returns its result."""
    with tempfile.TemporaryDirectory(prefix="task-", dir=jobs.workdir) as scratch:
        result_file = Path(scratch) / "result.json"
        play = [{"name": f"restate.admin.{name}", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "module_defaults": {"group/restate.admin.all": {"admin_url": "{{ restate_admin_url }}"}},
                 "tasks": [{"name": name, f"restate.admin.{name}": args, "register": "result"},
                           {"name": "Keep the result", "ansible.builtin.copy": {
                               "content": "{{ result | to_json }}", "dest": str(result_file)}}]}]
        (Path(scratch) / "task.yml").write_text(json.dumps(play))
        proc = subprocess.run(jobs.args(str(Path(scratch) / "task.yml")), env=jobs.env, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
            raise SystemExit(f"demo: restate.admin.{name} failed (exit {proc.returncode})")
        return json.loads(result_file.read_text())


def show_deployments(jobs: Jobs, title: str, version_of=lambda deployment: "") -> list:
    """The deployments as restate.admin.restate_deployment_info reports them: status, latest of what, pinned."""
    deployments = module(jobs, "restate_deployment_info", {})["deployments"]
    say(f"{title} (restate.admin.restate_deployment_info)")
    print(f"  {'deployment':<27} {'':<3} {'status':<9} {'latest of':<28} pinned, not completed")
    for deployment in deployments:
        pinned = ", ".join(f"{n} {status}" for status, n in sorted(deployment["pinned"].items())) or "none"
        latest = ", ".join(deployment["latest_of"]) or "-"
        print(f"  {deployment['id']:<27} {version_of(deployment):<3} {deployment['status']:<9} {latest:<28} {pinned}")
    if not deployments:
        print("  (no deployments)")
    return deployments


def run_jobs(jobs: Jobs, runs: list, apply: bool) -> None:
    for name, extravars in runs:
        playbook(jobs, name, extravars, check=True)
        if apply:
            playbook(jobs, name, extravars, check=False)


def release(shop: Shop, jobs: Jobs) -> None:
    """Version 2 released while checkouts are suspended on version 1: v1 draining, kept; then drained and removed."""
    admin = shop.server.admin_url
    v1 = shop.v1_id
    say(f"Release: {RELEASE_CHECKOUTS} new checkouts on v1 ({v1}), each reserving the cart (a ctx.run) "
        "before it waits for the payment")
    checkouts = shop.send("Orders/checkout", [f"c-v1-{n}" for n in range(RELEASE_CHECKOUTS)])
    wait_for(admin, checkouts, ("suspended",), "suspended checkouts")
    wanted = set(checkouts)
    rows = query(admin, "SELECT id, pinned_deployment_id FROM sys_invocation WHERE target = 'Orders/checkout'")
    pinned = sum(1 for row in rows if row["id"] in wanted and row.get("pinned_deployment_id") == v1)
    print(f"  {pinned} of {len(checkouts)} suspended checkouts pinned to v1: they resume on v1 whatever is "
          "registered after")

    say(f"Starting v2 of the shop service on port {shop.v2_port} (Orders/track added), not registered yet")
    shop.start_v2()
    show_deployments(jobs, "Deployments before the release", shop.version_of)

    v2_uri = f"http://127.0.0.1:{shop.v2_port}"
    extravars = {"uri": v2_uri, "use_http_11": True, "drain_timeout": DRAIN_TIMEOUT,
                 "drain_delay": DRAIN_DELAY, "service_settings": {"Orders": {"journal_retention": "7d"}}}
    playbook(jobs, "deployment_release", extravars, check=True)
    took = playbook(jobs, "deployment_release", extravars, check=False)
    print(f"  the release took {took:.1f}s, {DRAIN_TIMEOUT}s of it waiting for v1 to drain")
    show_deployments(jobs, "Deployments after the release: v1 kept, draining", shop.version_of)
    answer = shop.http.post(f"{shop.server.ingress_url}/Orders/track", json="c-v1-0", timeout=30)
    answer.raise_for_status()
    print(f"  new calls go to v2: Orders/track answers {answer.json()!r}")

    cancel = {"filters": {"deployment": v1, "status": ["suspended"]}, "state": "cancelled", "wait": True,
              "report": "failed"}
    say(f"Finishing the checkouts pinned to v1: restate.admin.restate_invocation {json.dumps(cancel)}")
    started = time.monotonic()
    summary = module(jobs, "restate_invocation", cancel)["summary"]
    print(f"  matched {summary['matched']}, cancelled {summary['changed']}, failed {summary['failed']}, "
          f"still pending {summary.get('pending', 0)}, in {time.monotonic() - started:.1f}s")
    show_deployments(jobs, "Deployments now: v1 drained", shop.version_of)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    playbook(jobs, "deployment_cleanup", {"older_than": now}, check=True)
    took = playbook(jobs, "deployment_release", extravars, check=False)
    print(f"  the second release run took {took:.1f}s: v2 already registered, v1 seen drained for {DRAIN_DELAY}s "
          "and removed")
    show_deployments(jobs, "Deployments after the second release run: v1 removed", shop.version_of)
    say("Stopping the shop service v1: no deployment points at it any more")
    shop.service.stop()


def interrupted(*unused_signal):
    """SIGTERM stops the demo like Ctrl-C, so everything it started is stopped too."""
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="restate-demo-"))
    ok = False
    try:
        ok = demo(workdir) == 0
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    finally:
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"demo: kept {workdir} (the server's and the services' logs)", file=sys.stderr)


def demo(workdir: Path) -> int:
    say("Building and installing the collection")
    collections = build_and_install(workdir / "galaxy")
    existing = os.environ.get("RESTATE_ADMIN_URL")
    if existing:
        jobs = Jobs(workdir, collections, existing)
        token = os.environ.get("RESTATE_AUTH_TOKEN")
        apply = os.environ.get("DEMO_APPLY") == "1"
        mode = "running the jobs for real" if apply else "dry runs only (DEMO_APPLY=1 to act)"
        say(f"Using the server at {existing}; {mode}")
        show_counts(existing, "Invocations before", token)
        run_jobs(jobs, [
            ("retention_cleanup", {}),
            ("recover_stuck", {}),
        ], apply)
        show_counts(existing, "Invocations after", token)
        show_deployments(jobs, "Deployments")
        say("No release on an existing server; only a dry run of the drained deployments' cleanup")
        playbook(jobs, "deployment_cleanup", {}, check=True)
        return 0

    shop = Shop(workdir)
    try:
        say(f"Starting restate-server and the shop service (logs in {workdir})")
        shop.start()
        admin = shop.server.admin_url
        jobs = Jobs(workdir, collections, admin)
        print(f"  admin API {admin}, ingress {shop.server.ingress_url}")
        boundary = seed(shop)
        show_counts(admin, "Invocations before")
        run_jobs(jobs, [
            ("retention_cleanup", {"retention": RETENTION}),
            ("bulk_cancel", {"filters": {"target": "Orders/checkout", "status": ["suspended"]},
                             "max_invocations": 5000, "wait": True}),
            ("recover_stuck", {"max_retries": 3, "kill_older_than": boundary}),
        ], apply=True)
        time.sleep(2)  # let the resumed reservations finish
        show_counts(admin, "Invocations after")
        release(shop, jobs)
        show_counts(admin, "Invocations at the end")
        return 0
    finally:
        say("Stopping restate-server and the shop services")
        shop.stop()


if __name__ == "__main__":
    sys.exit(main())
