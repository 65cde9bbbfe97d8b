# Copyright: restate.admin contributors
# Apache License 2.0 (see LICENSE)

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
