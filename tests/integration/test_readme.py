"""The README's playbook and its ready-made job line, run as written (the server's URL put in) with the inventory of
docs/cron.md: both succeed and print no warning."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from harness import cron_guide

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(args, collections_path, cwd):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(cwd), "ANSIBLE_COLLECTIONS_PATH": str(collections_path)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_the_readmes_playbook_and_job_line_run_quietly(restate, collections_path, tmp_path):
    readme = (ROOT / "README.md").read_text()
    playbook = re.findall(r"^```yaml\n(.*?)^```", readme, flags=re.M | re.S)[0]
    assert "https://restate.example.com:9070" in playbook
    (tmp_path / "housekeeping.yml").write_text(playbook.replace("https://restate.example.com:9070", restate.admin_url))
    (tmp_path / "inventory.ini").write_text(cron_guide.inventory())
    stuck = restate.make("suspended", 2)  # Tester/sleep: not Checkout, so the play leaves them alone

    proc = run(["ansible-playbook", "-i", "inventory.ini", "housekeeping.yml"], collections_path, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "WARNING" not in output, output
    assert all(restate.row(i)["status"] == "suspended" for i in stuck)

    job = next(line for line in readme.splitlines() if line.startswith("ansible-playbook -i inventory.ini "))
    # the connection as an operator gives it: docs/cron.md's connection file holds restate_admin_url
    proc = run(shlex.split(job) + ["-e", f"restate_admin_url={restate.admin_url}"], collections_path, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "WARNING" not in output and "Would purge" in output, output
