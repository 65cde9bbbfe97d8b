"""A task as the worker path makes one, for unit tests of a module's run(): the defaults of its SPEC (connection
options included) with the test's options over them, and connect() handing out the test's fake client."""

from __future__ import annotations

import pytest

from ansible_collections.restate.admin.plugins.module_utils._restate_module import with_connection
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import ControllerTask, TaskDone


class FakeTask(ControllerTask):
    def __init__(self, code, client, check_mode=False, diff=False, **options):
        spec = with_connection(code.SPEC)["argument_spec"]
        params = {name: option.get("default") for name, option in spec.items()}
        params.update(options)
        super().__init__(params, check_mode=check_mode, diff=diff)
        self._client = client  # what connect() hands out
        self.code = code


def run_task(task) -> dict:
    """The result ``task``'s module work ends with (run() always ends with exit_json or fail_json)."""
    with pytest.raises(TaskDone) as done:
        task.code.run(task)
    return done.value.result
