"""The task inside Ansible's worker: how it ends, what it reports, which errors end it."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
from ansible_collections.restate.admin.plugins.module_utils._restate_module import connection_error, with_connection
from ansible_collections.restate.admin.plugins.module_utils._selection import InputError
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import ControllerTask, TaskDone


def task_with(**params):
    return ControllerTask(params, check_mode=False, diff=True)


def test_exit_json_ends_the_work_with_the_result_its_warnings_and_its_options():
    task = task_with(state="purged")
    task.warn("first")
    with pytest.raises(TaskDone) as done:
        task.exit_json(changed=True, summary={"changed": 1})
    assert done.value.result == {"changed": True, "summary": {"changed": 1}, "warnings": ["first"],
                                 "invocation": {"module_args": {"state": "purged"}}}


def test_fail_json_marks_the_result_failed_with_its_message():
    with pytest.raises(TaskDone) as done:
        task_with().fail_json("it broke", invocations=[])
    assert done.value.result["failed"] is True and done.value.result["msg"] == "it broke"
    assert done.value.result["invocations"] == []


def test_input_errors_end_the_task_and_other_errors_propagate():
    with pytest.raises(TaskDone) as done:
        task_with().fail_on(InputError("limit must be 1 or more, got 0"), changed=False)
    assert done.value.result["failed"] and done.value.result["msg"] == "limit must be 1 or more, got 0"
    with pytest.raises(KeyError):
        task_with().fail_on(KeyError("a bug"))


def test_the_work_refuses_bad_options_before_connecting():
    spec = with_connection(_invocation_task.SPEC)["argument_spec"]
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(id="inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", state="resumed", kill_after=3.0,
                  admin_url=["http://127.0.0.1:9"])
    task = ControllerTask(params, check_mode=False, diff=False)
    with pytest.raises(TaskDone) as done:
        _invocation_task.run(task)
    assert done.value.result["failed"] and "kill_after applies only to state=cancelled" in done.value.result["msg"]
    assert task._client is None, "nothing was sent"


def test_connection_options_are_added_once_with_their_constraints():
    merged = with_connection({"argument_spec": {"id": {"type": "str"}}, "mutually_exclusive": [["a", "b"]]})
    assert {"id", "admin_url", "token", "timeout"} <= set(merged["argument_spec"])
    assert merged["argument_spec"]["token"]["no_log"] is True
    assert merged["required_together"] == [["client_key", "client_cert"]]
    assert merged["mutually_exclusive"] == [["a", "b"]]
    defaults = {name: option.get("default") for name, option in merged["argument_spec"].items()}
    assert connection_error(dict(defaults, timeout=-1)) == "timeout: must be from 0 to 86400 (0 waits forever), got -1"
    assert connection_error(dict(defaults, timeout=0, retries=0)) is None
