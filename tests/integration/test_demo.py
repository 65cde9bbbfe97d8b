"""The demo (`make demo` after its set-up) runs to the end as the README promises: the jobs, a release that keeps the
draining version 1, then a second release run that removes it once drained, and nothing left in the temp folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_the_jobs_and_a_release_and_leaves_nothing_behind(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("RESTATE_", "DEMO_"))}
    env["TMPDIR"] = str(tmp_path)
    demo = subprocess.run([sys.executable, "demo/run_demo.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-4000:]
    for job in ("retention_cleanup", "bulk_cancel", "recover_stuck", "deployment_release", "deployment_cleanup"):
        assert f"restate.admin.{job}" in output, f"the demo runs {job}"
    after = output.split("=== Deployments after the second release run")[1].split("\n=== ")[0]
    listed = re.findall(r"^\s+(dp_\w+)\s+(v\d)\s", after, re.MULTILINE)
    assert [version for unused_id, version in listed] == ["v2"], f"only v2 is left:\n{after}"
    # Not the role's default drain_delay of 300 s: the demo passes its own short one.
    took = float(re.search(r"the second release run took ([\d.]+)s", output).group(1))
    assert took < 120, f"the second release run waited {took:.0f}s"
    assert not list(tmp_path.glob("restate-demo-*")), "the demo removes its temporary folder"
