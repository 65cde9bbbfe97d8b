"""Run modules the way users do: ansible-playbook against the built and installed collection."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def build_and_install(dest: Path) -> Path:
    """ansible-galaxy collection build + install into ``dest``; returns the collections path."""
    build_dir = dest / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path",
                    str(build_dir), "--force"], check=True, capture_output=True, text=True)
    tarball = next(build_dir.glob("restate-admin-*.tar.gz"))
    collections = dest / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(collections),
                    "--force"], check=True, capture_output=True, text=True)
    return collections


# Runs a command and prints, on its stderr's last line, the peak RSS (KB) of the largest process the command ran
# (itself or any descendant it waited for: an ansible-playbook's workers and module processes).
_PEAK_RSS_PROBE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                   "sys.exit(p.returncode)")


def run_with_peak_rss(args, env, stdin=None, timeout=3600) -> tuple:
    """Run ``args``; (the completed process, seconds, peak RSS in MB of its largest process)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS_PROBE, *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    stderr, unused_newline, peak_kb = proc.stderr.rstrip("\n").rpartition("\n")
    proc.stderr = stderr
    return proc, seconds, int(peak_kb) / 1024


class Ansible:
    """Runs tasks in one ansible-playbook process and returns each task's registered result."""

    def __init__(self, collections_path: Path, admin_url: str, workdir: Path):
        self.collections_path = collections_path
        self.admin_url = admin_url
        self.workdir = workdir

    def env(self, extra=None):
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections_path),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "RESTATE_ADMIN_URL": self.admin_url,
        })
        env.pop("RESTATE_AUTH_TOKEN", None)
        env.update(extra or {})
        return env

    def run_tasks(self, tasks, check=False, diff=False, env=None, extra_args=(), expect_rc=0):
        """Run ``tasks`` (module invocations as dicts); every task is registered and its result returned.

        Each task runs with ignore_errors so a failing task's result comes back too; ``failed`` tells.
        """
        tmp = Path(tempfile.mkdtemp(dir=self.workdir, prefix="play-"))
        results_file = tmp / "results.json"
        play_tasks = []
        for n, task in enumerate(tasks):
            task = dict(task)
            task.setdefault("name", f"task {n}")
            task["register"] = f"result_{n}"
            task["ignore_errors"] = True
            play_tasks.append(task)
        names = ", ".join(f"result_{n}" for n in range(len(tasks)))
        play_tasks.append({
            "name": "write results",
            "ansible.builtin.copy": {"content": "{{ [" + names + "] | to_json }}", "dest": str(results_file)},
            "check_mode": False,
            "diff": False,
        })
        playbook = tmp / "play.yml"
        playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                             "tasks": play_tasks}], sort_keys=False))
        args = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), *extra_args]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        proc, unused_seconds, self.last_peak_mb = run_with_peak_rss(args, self.env(env), timeout=1800)
        self.last_output = proc.stdout + proc.stderr
        assert proc.returncode == expect_rc, f"ansible-playbook exited {proc.returncode}:\n{self.last_output[-6000:]}"
        return json.loads(results_file.read_text())

    def run(self, module: str, args: dict, **kwargs) -> dict:
        """One module task; returns its result."""
        return self.run_tasks([{module: args}], **kwargs)[0]

    def run_measured(self, module: str, args: dict, env=None) -> tuple:
        """Run the installed module's file directly, as AnsiballZ would; returns (result, its peak RSS in MB,
        seconds).

        Only the module process is measured: a probe process runs it and reads its children's peak RSS.
        """
        name = module.rsplit(".", 1)[-1]
        path = self.collections_path / "ansible_collections" / "restate" / "admin" / "plugins" / "modules" / f"{name}.py"
        args_file = Path(tempfile.mkstemp(dir=self.workdir, suffix=".json")[1])
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        run_env = self.env(env)
        run_env["PYTHONPATH"] = str(self.collections_path)
        proc, seconds, peak_mb = run_with_peak_rss([sys.executable, str(path), str(args_file)], run_env)
        result = next((json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")), None)
        assert result is not None, f"{module} printed no result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return result, peak_mb, seconds

    def adhoc(self, module: str, args: str, env=None, extra_args=()):
        """`ansible localhost -m MODULE -a ARGS`, as a person would type it."""
        cmd = [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", module, "-a", args,
               *extra_args]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env(env), timeout=600, check=False)

    def playbook(self, name: str, extravars: dict, report: str, check=False, env=None, expect_rc=0):
        """Run the collection's playbook ``name`` unchanged, then read back the fact ``report`` it set.

        Returns (report or None, changed tasks from the recap, output).
        """
        tmp = Path(tempfile.mkdtemp(dir=self.workdir, prefix="job-"))
        results_file = tmp / "report.json"
        wrapper = tmp / "job.yml"
        wrapper.write_text(yaml.safe_dump([
            {"import_playbook": f"restate.admin.{name}"},
            {"name": "write the report", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": [{"ansible.builtin.copy": {"content": "{{ " + report + " | default(None) | to_json }}",
                                                 "dest": str(results_file)}, "check_mode": False}]},
        ], sort_keys=False))
        args = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(wrapper), "-e", json.dumps(extravars)]
        if check:
            args.append("--check")
        proc = subprocess.run(args, capture_output=True, text=True, env=self.env(env), timeout=1800, check=False)
        output = proc.stdout + proc.stderr
        # expect_rc may be a tuple of the codes a racing run may end with
        assert proc.returncode in (expect_rc if isinstance(expect_rc, tuple) else (expect_rc,)), \
            f"{name} exited {proc.returncode}:\n{output[-6000:]}"
        changed = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", output)
        result = json.loads(results_file.read_text()) if results_file.exists() else None
        # the wrapper's own copy task is one change on the first write
        return result, int(changed.group(1)) - 1 if changed else None, output
