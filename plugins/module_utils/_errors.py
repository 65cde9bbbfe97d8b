# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The one error for bad input, shared by every module: raised before any request, reported as the task's failure."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. The message names the option (e.g. ``filters.service``) and says how to fix it."""
