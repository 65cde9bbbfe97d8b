"""The task inside Ansible's worker: how it ends, what it reports, which errors end it."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from ansible import constants as C
from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.restate.admin.plugins.module_utils import _invocation_task
from ansible_collections.restate.admin.plugins.module_utils._restate_module import connection_error, with_connection
from ansible_collections.restate.admin.plugins.module_utils._selection import InputError
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import (
    ControllerTask,
    TaskDone,
    hide_secrets,
    inject_invocation,
    no_log_values,
    plain,
)

ROOT = Path(__file__).resolve().parents[4]


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
    assert merged["supports_check_mode"] is False, "a module supports check mode only where its SPEC says so"
    assert with_connection(_invocation_task.SPEC)["supports_check_mode"] is True
    defaults = {name: option.get("default") for name, option in merged["argument_spec"].items()}
    assert connection_error(dict(defaults, timeout=-1)) == "timeout: must be from 0 to 86400 (0 waits forever), got -1"
    assert connection_error(dict(defaults, timeout=0, retries=0)) is None


SECRET_NAME = re.compile(r"token|secret|passw|header|credential|api_?key", re.IGNORECASE)


def secret_values(spec: dict, prefix: str) -> dict:
    """Options of ``spec`` whose names say they hold a secret, each given a value that names it (recursively into
    suboptions)."""
    values = {}
    for name, option in spec.items():
        if option.get("options"):
            inner = secret_values(option["options"], f"{prefix}{name}.")
            if inner:
                values[name] = [inner] if option.get("type") == "list" else inner
        elif SECRET_NAME.search(name):
            sentinel = f"SENTINEL-{prefix}{name}-value"
            values[name] = {"x-api-key": sentinel} if option.get("type") == "dict" else sentinel
    return values


@pytest.mark.parametrize("action_file", sorted((ROOT / "plugins" / "action").glob("*.py")), ids=lambda p: p.stem)
def test_no_secret_option_of_any_module_reaches_the_result(action_file):
    # A module that gains a secret option (a token, headers, a deployment's additional_headers...) without no_log
    # fails here: its value would be printed by the worker path.
    action = importlib.import_module(f"ansible_collections.restate.admin.plugins.action.{action_file.stem}")
    spec = with_connection(action.ActionModule.task_code.SPEC)
    spec.pop("supports_check_mode")
    params = secret_values(spec["argument_spec"], "")
    sentinels = re.findall(r"SENTINEL-[\w.-]+-value", json.dumps(params))
    assert "SENTINEL-token-value" in sentinels and "SENTINEL-headers-value" in sentinels
    validation = ArgumentSpecValidator(**spec).validate(params)
    echoed = " ".join(f"{value} \n{value!r}" for value in sentinels)
    outcome = {"msg": f"failed with {echoed}", "invocation": {"module_args": validation.validated_parameters},
               "changed": False}
    found = no_log_values(spec["argument_spec"], validation.validated_parameters)
    # ansible-core's own collection (protected, read here only as the oracle) finds no secret that ours misses
    assert set(map(str, validation._no_log_values)) <= found  # pylint: disable=protected-access
    hidden = json.dumps(hide_secrets(outcome, found))
    assert not [value for value in sentinels if value in hidden]


def test_secrets_are_found_in_suboptions_lists_and_the_environment(monkeypatch):
    monkeypatch.setenv("RESTATE_AUTH_TOKEN", "from-the-environment")
    spec = {"token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["RESTATE_AUTH_TOKEN"])},
            "keys": {"type": "list", "elements": "str", "no_log": True},
            "backends": {"type": "list", "elements": "dict", "options": {
                "name": {"type": "str"}, "password": {"type": "str", "no_log": True}}},
            "shown": {"type": "str"}}
    validation = ArgumentSpecValidator(spec).validate(
        {"keys": ["k1", "k2"], "backends": [{"name": "a", "password": "p1"}, {"name": "b"}], "shown": "visible"})
    assert no_log_values(spec, validation.validated_parameters) == {"from-the-environment", "k1", "k2", "p1"}


def test_a_token_is_hidden_with_and_without_its_surrounding_whitespace():
    spec = with_connection(_invocation_task.SPEC)
    spec.pop("supports_check_mode")
    validation = ArgumentSpecValidator(**spec).validate({"token": "tok-abc-123\n", "state": "purged", "id": "x"})
    hidden = hide_secrets({"msg": "Bearer tok-abc-123 refused", "failed": True},
                          no_log_values(spec["argument_spec"], validation.validated_parameters))
    assert "tok-abc-123" not in hidden["msg"] and hidden["failed"] is True


class Shown:
    def __init__(self):
        self.lines = []

    def display(self, line):
        self.lines.append(line)


def test_progress_is_shown_only_for_long_tasks_and_at_most_every_ten_seconds():
    now = [0.0]
    shown = Shown()
    task = ControllerTask({}, check_mode=False, diff=False, name="purge", clock=lambda: now[0], display=shown)
    for moment in (1, 9.9, 10, 15, 19.9, 20, 35):
        now[0] = moment
        task.progress(f"at {moment}")
    assert shown.lines == ["purge: at 10", "purge: at 20", "purge: at 35"]


def test_invocation_is_in_the_result_as_ansible_core_decides(monkeypatch):
    # Before 2.21 every module result carries invocation; from 2.21 only when INJECT_INVOCATION says so (default
    # false): the worker path must give what the module process gives (tests/integration/test_controller_run.py).
    monkeypatch.setattr(C.config, "get_configuration_definitions", lambda *unused, **unused_kw: {})
    assert inject_invocation({}) is True
    monkeypatch.setattr(C.config, "get_configuration_definitions",
                        lambda *unused, **unused_kw: {"INJECT_INVOCATION": {"default": False}})
    monkeypatch.setattr(C.config, "get_config_value",
                        lambda name, variables=None: bool((variables or {}).get("ansible_inject_invocation")))
    assert inject_invocation({}) is False and inject_invocation({"ansible_inject_invocation": True}) is True
    quiet = ControllerTask({"token": "t"}, check_mode=False, diff=False, inject_invocation=False)
    with pytest.raises(TaskDone) as done:
        quiet.exit_json(changed=False, invocation={"module_args": {}})
    assert "invocation" not in done.value.result


def test_a_result_is_made_of_plain_dicts_and_lists_without_copying_what_already_is():
    class Row(dict):
        pass

    listed = [{"id": "inv_1", "row": Row(status="completed")}, ("a", Row(b=1))]
    result = {"invocations": listed, "rows": (Row(id="inv_2"),), "changed": True}
    converted = plain(result)
    assert converted == {"invocations": [{"id": "inv_1", "row": {"status": "completed"}}, ["a", {"b": 1}]],
                         "rows": [{"id": "inv_2"}], "changed": True}
    kinds = [type(converted["invocations"][0]["row"]), type(converted["invocations"][1]), type(converted["rows"]),
             type(converted["rows"][0]), type(converted["invocations"][1][1])]
    assert kinds == [dict, list, list, dict, dict]
    assert converted is result and converted["invocations"] is listed, "plain containers are converted in place"
    row = Row(id="inv_3")
    assert type(plain(row)) is dict and type(row) is Row  # pylint: disable=unidiomatic-typecheck
