# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Membership of the action group, so module_defaults: group/restate.admin.all reaches every module."""

    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/restate.admin.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - restate.admin.all
"""
