# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Where the module's code runs: the action plugin of every module (plugin_utils/_controller_task.py)."""

    DOCUMENTATION = r"""
attributes:
  action:
    support: full
    details:
      - When the task runs through the C(local) connection (C(connection=local), or delegated to the implicit
        localhost), without C(become), C(async) or an C(environment), and the controller's Python has C(requests),
        the module's code runs inside Ansible's own worker process instead of a module process built and started
        for it. Options, checks and result are the same; the task ends about 0.4 s sooner (make bench).
      - There, a task that runs longer than 10 seconds prints a line every 10 seconds on how far it is (AWX job
        output shows it too); a module run as a process of its own cannot print while it runs.
      - An C(ansible_python_interpreter) that names another Python than the controller's makes the module run as a
        process of that Python, as the inventory asks.
      - Otherwise the module runs as usual, on the host the task runs on.
  async:
    support: full
  bypass_host_loop:
    support: none
"""
