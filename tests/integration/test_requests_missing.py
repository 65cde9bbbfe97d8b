"""Without requests in the Python that runs Ansible, a task fails naming that Python and the command that installs
requests into it: in the worker (the local connection) and as a module process alike."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

MODULE = "restate.admin.restate_invocation_info"
AS_MODULE = {"environment": {"RESTATE_CONTROLLER_RUN_TEST": "1"}}  # any task environment: a module process


@pytest.fixture()
def without_requests(tmp_path):
    """PYTHONPATH with a 'requests' that cannot be imported, for ansible-playbook and the modules it starts."""
    (tmp_path / "requests").mkdir()
    (tmp_path / "requests" / "__init__.py").write_text("raise ImportError('No module named requests (test stand-in)')\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_a_task_without_requests_names_the_python_and_the_install_command(ansible, without_requests):
    in_worker, as_module = ansible.run_tasks([{MODULE: {}}, dict(AS_MODULE, **{MODULE: {}})], env=without_requests,
                                             extra_args=("-vvv",))  # -vvv shows any module file it runs
    for result in (in_worker, as_module):
        # ansible-playbook and the module process (ANSIBLE_PYTHON_INTERPRETER, set by the harness) both run on the
        # test's own Python, the venv's, by one of its names
        python = re.match(r"The Python library requests is not installed in (\S+),", result["msg"])
        assert result["failed"] and python, result
        assert Path(python[1]).resolve() == Path(sys.executable).resolve()
        assert result["msg"] == (
            f"The Python library requests is not installed in {python[1]}, the Python that runs this task; install "
            f"it with: {python[1]} -m pip install 'requests>=2.25' (or set ansible_python_interpreter to a Python that "
            "has it)")
    first_task, second_task = ansible.last_output.split("TASK [task 1]")
    assert "AnsiballZ" not in first_task and "AnsiballZ" in second_task, "the worker fails without a module process"


def test_with_requests_the_same_tasks_run(ansible):
    in_worker, as_module = ansible.run_tasks([{MODULE: {}}, dict(AS_MODULE, **{MODULE: {}})])
    assert not in_worker["failed"] and not as_module["failed"]
