# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs restate_object_state's work in the controller's process when the task runs on the controller (see ControllerAction)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils import _object_state_task
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import ControllerAction


class ActionModule(ControllerAction):
    task_code = _object_state_task
