"""docs/cron.md's crontab line, run as cron would run it (its command through /bin/sh with the crontab's
environment lines), with the guide's paths moved into a temporary directory: quiet when the job succeeds, one
line naming the exit code when it fails, and no second run while one holds the lock."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest
from harness import cron_guide
from harness.server import free_port

BIN = Path(sys.executable).parent


@pytest.fixture()
def cron(tmp_path, collections_path):
    """Runs the guide's job line with its files in tmp_path; returns a function(admin_url) -> (rc, mail, log)."""
    env_lines, unused_schedule, unused_user, command = cron_guide.crontab_job()
    moved = {
        "/etc/restate-admin/": f"{tmp_path}/etc/",
        "/var/log/restate-admin/": f"{tmp_path}/log/",
        "/run/lock/": f"{tmp_path}/lock/",
        "/opt/restate-admin/venv/bin/": f"{BIN}/",
        "/opt/restate-admin/collections": str(collections_path),
    }

    def move(text):
        for old, new in moved.items():
            text = text.replace(old, new)
        return text

    for directory in ("etc", "log", "lock"):
        (tmp_path / directory).mkdir()
    (tmp_path / "etc" / "inventory.ini").write_text(cron_guide.files()[cron_guide.INVENTORY])
    env = {name: move(value) for name, value in env_lines.items()}
    env["HOME"] = str(tmp_path)  # cron sets HOME, LOGNAME and SHELL; nothing else of the caller's environment
    assert "|| echo" in command and ">>" in command, "the guide's line keeps output in the log and mails failures"
    command = move(command)
    log = tmp_path / "log" / "retention_cleanup.log"

    def run(admin_url):
        connection = cron_guide.files()[cron_guide.CONNECTION].replace("https://restate.example.com:9070", admin_url)
        (tmp_path / "etc" / "connection.yml").write_text(connection)
        proc = subprocess.run([env["SHELL"], "-c", command], env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        return proc.returncode, proc.stdout + proc.stderr, log.read_text() if log.exists() else ""

    run.lock = tmp_path / "lock" / "restate-retention_cleanup.lock"
    return run


def test_the_guides_line_is_quiet_when_the_job_succeeds(cron, restate):
    # the session server holds nothing completed 7 days ago: the job runs for real and finds nothing to purge
    rc, mail, log = cron(restate.admin_url)
    assert (rc, mail) == (0, ""), f"cron would mail: {mail}\n{log[-4000:]}"
    assert "PLAY RECAP" in log and "failed=0" in log
    assert "WARNING" not in log and "[DEPRECATION" not in log, log


def test_the_guides_line_mails_one_line_naming_the_exit_code_on_failure(cron):
    rc, mail, log = cron(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert rc == 0  # echo's; cron only mails output
    assert mail.splitlines() == [f"restate.admin.retention_cleanup failed with exit code 2; see "
                                 f"{cron.lock.parent.parent}/log/retention_cleanup.log"], mail
    assert "failed=1" in log and "127.0.0.1" in log


def test_the_guides_line_runs_nothing_while_a_run_holds_the_lock(cron):
    with open(cron.lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        rc, mail, log = cron("http://127.0.0.1:9")
    assert mail.strip().startswith("restate.admin.retention_cleanup failed with exit code 75;"), mail
    assert rc == 0 and log == "", "ansible-playbook did not run"
