# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Run a module's work inside the controller's worker process when the module would run on the controller anyway.

A task with ``connection: local`` (or delegated to localhost) would otherwise have its module built into an
AnsiballZ payload, written out and started as a new Python process that imports everything again: about 0.4 s of
every task (make bench). Run here instead, the same ``run(task)`` function gets the same validated options and
returns the same result. Whenever the module would run elsewhere or differently (another host, become, async, a
task ``environment``, an ``ansible_python_interpreter`` other than the controller's Python), the module runs as usual.
Without requests in the controller's Python, a task that would run here fails naming that Python and the command
that installs requests into it, rather than running the module in whatever Python interpreter discovery finds.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as ModuleAction
from ansible.utils.display import Display

from ansible_collections.restate.admin.plugins.module_utils._transport import REQUESTS_IMPORT_ERROR
from ansible_collections.restate.admin.plugins.module_utils._restate_module import (
    RestateTask,
    connection_error,
    headers_as_dict,
    requests_missing,
    shape_error,
    with_connection,
)


class TaskDone(Exception):
    """Ends a task's work with its result, as exit_json and fail_json end a module process."""

    def __init__(self, result: dict):
        super().__init__(result.get("msg", "done"))
        self.result = result


# A task that runs this long says how far it is, at default verbosity, every PROGRESS_EVERY seconds: AWX job output
# shows it too. Shorter tasks print nothing more than before.
PROGRESS_AFTER = 10.0
PROGRESS_EVERY = 10.0


class ControllerTask(RestateTask):
    """The task inside the worker: options validated by the action plugin, the result raised as TaskDone."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, params: dict, check_mode: bool, diff: bool, name: str = "restate.admin", clock=time.monotonic,
                 display=None, inject_invocation=True):
        self.params = params
        self._inject_invocation = inject_invocation
        self.check_mode = check_mode
        self._diff = diff
        self._warnings = []
        self._name = name
        self._clock = clock
        self._display = display
        self._next_progress = clock() + PROGRESS_AFTER

    def progress(self, message: str):
        """Print ``message`` through Ansible's display (the worker hands it to the main process) once the task has
        run PROGRESS_AFTER seconds, then at most every PROGRESS_EVERY seconds."""
        now = self._clock()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_EVERY
        (self._display or Display()).display(f"{self._name}: {message}")

    def warn(self, warning: str):
        self._warnings.append(warning)  # list.append is atomic: the client's threads warn too

    def exit_json(self, **result):
        if self._inject_invocation:
            result.setdefault("invocation", {"module_args": self.params})
        else:
            result.pop("invocation", None)
        if self._warnings:
            result["warnings"] = list(self._warnings)
        raise TaskDone(plain(result))

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=str(msg))
        self.exit_json(**result)

    def close(self):
        if self._client is not None:
            self._client.close()


def plain(value):
    """The result as a module process's JSON gives it back: every mapping a dict, every sequence a list. The client's
    answers are dict subclasses (``Row``), which ansible-core 2.21 converts with a warning. Only those and tuples
    are copied; plain dicts and lists are converted in place (a result listing 100,000 invocations is not copied)."""
    if isinstance(value, dict):
        value = value if type(value) is dict else dict(value)  # pylint: disable=unidiomatic-typecheck
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple)):
                value[key] = plain(item)  # an existing key: the dict's size does not change while iterating
        return value
    if isinstance(value, (list, tuple)):
        value = value if type(value) is list else list(value)  # pylint: disable=unidiomatic-typecheck
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, tuple)):
                value[index] = plain(item)
        return value
    return value


def no_log_values(argument_spec: dict, params: dict) -> set:
    """The values of the options marked no_log in ``argument_spec``, suboptions included, as validated in ``params``
    (defaults and environment fallbacks applied): each value of a dictionary or list, else the value itself, as
    AnsibleModule collects them, read from the spec so that no protected attribute of the validator is needed."""
    found = set()
    for name, option in argument_spec.items():
        value = params.get(name) if isinstance(params, dict) else None
        if value is None:
            continue
        if option.get("no_log"):
            found.update(_leaves(value))
        if option.get("options"):
            for element in value if isinstance(value, list) else [value]:
                if isinstance(element, dict):
                    found.update(no_log_values(option["options"], element))
    return found


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        return {text for element in value for text in _leaves(element)}
    return {str(value)}


def inject_invocation(task_vars) -> bool:
    """Whether a module's result carries ``invocation`` (its options), as AnsibleModule decides: always before
    ansible-core 2.21, then only when INJECT_INVOCATION (default false) says so."""
    if "INJECT_INVOCATION" not in C.config.get_configuration_definitions():
        return True
    return bool(C.config.get_config_value("INJECT_INVOCATION", variables=task_vars))


def hide_secrets(outcome: dict, no_log_values) -> dict:
    """The result with every no_log value masked, as AnsibleModule masks a module's result (``no_log_values``: what
    no_log_values() found), each value also without surrounding whitespace (the form a token is sent in)."""
    secrets = set()
    for value in no_log_values:
        secrets.update(text for text in (str(value), str(value).strip()) if text)
    if not secrets:
        return outcome
    # No secret in any string of the result; booleans and None kept as they are.
    kept = {key: value for key, value in outcome.items() if value is None or isinstance(value, bool)}
    hidden = remove_values(outcome, secrets)
    hidden.update(kept)
    return hidden


class ControllerAction(ModuleAction):
    """The action plugin of a module whose work is ``task_code.run(task)`` with options ``task_code.SPEC``."""

    task_code = None  # the module_utils module of the module's work

    def run(self, tmp=None, task_vars=None):
        if not self.on_controller(task_vars or {}):
            return super().run(tmp, task_vars)
        result = ActionBase.run(self, tmp, task_vars)  # the checks every action makes, without the module path
        if REQUESTS_IMPORT_ERROR is not None:
            result.update(failed=True, msg=requests_missing(sys.executable))
            return result
        spec = with_connection(self.task_code.SPEC)
        supports_check_mode = spec.pop("supports_check_mode")  # the rest are ArgumentSpecValidator's keywords
        if self._task.check_mode and not supports_check_mode:
            result.update(skipped=True, msg=f"remote module ({self._task.action}) does not support check mode")
            return result
        params = {}
        secrets = set()
        args = headers_as_dict(self._task.args)
        error = shape_error(spec, args)  # what ArgumentSpecValidator would raise TypeError on
        if not error:
            validation = ArgumentSpecValidator(**spec).validate(args)
            params = validation.validated_parameters
            secrets = no_log_values(spec["argument_spec"], params)
            error = self.spec_error(validation) or connection_error(params)
        if error:
            # A result, as the module gives, rather than an AnsibleActionFail, which adds an empty 'exception' on
            # some ansible-core versions.
            outcome = {"failed": True, "msg": error}
        else:
            task = ControllerTask(params, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                                  name=self._task.get_name(), inject_invocation=inject_invocation(task_vars or {}))
            try:
                self.task_code.run(task)
                raise AssertionError(f"{self._task.action} ended without a result")  # run() always exits or fails
            except TaskDone as done:
                outcome = done.result
            finally:
                task.close()
        result.update(hide_secrets(outcome, secrets))
        return result

    def spec_error(self, validation):
        """AnsibleModule's message for options its spec refuses, or None."""
        if not validation.error_messages:
            return None
        if isinstance(validation.errors[0], UnsupportedError):
            return f"Unsupported parameters for ({self._task.action}) module: {validation.errors.msg}"
        return validation.errors.msg

    def on_controller(self, task_vars) -> bool:
        """Whether the module would run right here, as this process's user, with its environment and its Python."""
        return (getattr(self._connection, "transport", None) == "local"
                and not self._play_context.become
                and not self._task.async_val
                and not any(self._task.environment or ())  # [{}] when none is set
                and self.same_python(task_vars.get("ansible_python_interpreter")))

    def same_python(self, interpreter) -> bool:
        """Whether ``ansible_python_interpreter`` names this process's Python (or is unset or discovered): an
        inventory that names another one for localhost gets a module process run by it, as it asked."""
        if interpreter is None:
            return True
        interpreter = str(self._templar.template(interpreter)).strip()
        if not interpreter or interpreter.startswith("auto"):
            return True
        found = shutil.which(interpreter) or interpreter
        return os.path.normpath(os.path.abspath(found)) == os.path.normpath(os.path.abspath(sys.executable))
