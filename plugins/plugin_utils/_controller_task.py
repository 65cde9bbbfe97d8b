# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Run a module's work inside the controller's worker process when the module would run on the controller anyway.

A task with ``connection: local`` (or delegated to localhost) would otherwise have its module built into an
AnsiballZ payload, written out and started as a new Python process that imports everything again: about 0.4 s of
every task (make bench). Run here instead, the same ``run(task)`` function gets the same validated options and
returns the same result. Whenever the module would run elsewhere or differently (another host, become, async, a
task ``environment``, no requests on the controller), the module runs as usual.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as ModuleAction

from ansible_collections.restate.admin.plugins.module_utils._client import REQUESTS_IMPORT_ERROR
from ansible_collections.restate.admin.plugins.module_utils._restate_module import (
    RestateTask,
    connection_error,
    shape_error,
    with_connection,
)


class TaskDone(Exception):
    """Ends a task's work with its result, as exit_json and fail_json end a module process."""

    def __init__(self, result: dict):
        super().__init__(result.get("msg", "done"))
        self.result = result


class ControllerTask(RestateTask):
    """The task inside the worker: options validated by the action plugin, the result raised as TaskDone."""

    def __init__(self, params: dict, check_mode: bool, diff: bool):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self._warnings = []

    def warn(self, warning: str):
        self._warnings.append(warning)  # list.append is atomic: the client's threads warn too

    def exit_json(self, **result):
        result.setdefault("invocation", {"module_args": self.params})
        if self._warnings:
            result["warnings"] = list(self._warnings)
        raise TaskDone(result)

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=str(msg))
        self.exit_json(**result)

    def close(self):
        if self._client is not None:
            self._client.close()


class ControllerAction(ModuleAction):
    """The action plugin of a module whose work is ``task_code.run(task)`` with options ``task_code.SPEC``."""

    task_code = None  # the module_utils module of the module's work

    def run(self, tmp=None, task_vars=None):
        if not self.on_controller():
            return super().run(tmp, task_vars)
        result = ActionBase.run(self, tmp, task_vars)  # the checks every action makes, without the module path
        spec = with_connection(self.task_code.SPEC)
        params = {}
        error = shape_error(spec, self._task.args)  # what ArgumentSpecValidator would raise TypeError on
        if not error:
            validation = ArgumentSpecValidator(**spec).validate(self._task.args)
            params = validation.validated_parameters
            error = self.spec_error(validation) or connection_error(params)
        if error:
            # A result, as the module gives, rather than an AnsibleActionFail, which adds an empty 'exception' on
            # some ansible-core versions.
            outcome = {"failed": True, "msg": error}
        else:
            task = ControllerTask(params, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff))
            try:
                self.task_code.run(task)
                raise AssertionError(f"{self._task.action} ended without a result")  # run() always exits or fails
            except TaskDone as done:
                outcome = done.result
            finally:
                task.close()
        secrets = {str(params[name]) for name, option in spec["argument_spec"].items()
                   if option.get("no_log") and params.get(name)}  # the token: no suboption is secret
        if secrets:
            # As AnsibleModule does: no secret in any string of the result, booleans and None kept as they are.
            kept = {key: value for key, value in outcome.items() if value is None or isinstance(value, bool)}
            outcome = remove_values(outcome, secrets)
            outcome.update(kept)
        result.update(outcome)
        return result

    def spec_error(self, validation):
        """AnsibleModule's message for options its spec refuses, or None."""
        if not validation.error_messages:
            return None
        if isinstance(validation.errors[0], UnsupportedError):
            return f"Unsupported parameters for ({self._task.action}) module: {validation.errors.msg}"
        return validation.errors.msg

    def on_controller(self) -> bool:
        """Whether the module would run right here, as this process's user and with its environment."""
        return (getattr(self._connection, "transport", None) == "local"
                and not self._play_context.become
                and not self._task.async_val
                and not any(self._task.environment or ())  # [{}] when none is set
                and REQUESTS_IMPORT_ERROR is None)
