# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_service task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._services_api import (
    SETTINGS,
    setting_changes,
    summary,
    wanted_settings,
)

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "name": {"type": "str", "required": True},
        "public": {"type": "bool"},
        "idempotency_retention": {"type": "str"},
        "journal_retention": {"type": "str"},
        "workflow_completion_retention": {"type": "str"},
        "inactivity_timeout": {"type": "str"},
        "abort_timeout": {"type": "str"},
        "settings": {"type": "dict"},
        "check_mode_base": {"type": "dict"},
    },
    "mutually_exclusive": [["settings", "public"], ["settings", "idempotency_retention"],
                           ["settings", "journal_retention"], ["settings", "workflow_completion_retention"],
                           ["settings", "inactivity_timeout"], ["settings", "abort_timeout"]],
}


def _diff_text(service: dict, keys) -> str:
    return "".join(f"{key}: {service.get(key)}\n" for key in keys)


def run(task):
    """Read the service, patch what differs by value, report; ends with ``task.exit_json`` or ``task.fail_json``."""
    params = task.params
    try:
        name = (params["name"] or "").strip()
        if not name:
            raise InputError("name: give the service's name, e.g. name: Checkout")
        wanted = wanted_settings(params)
        client = task.connect()
        service = client.services.get(name)
        if service is None:
            raise InputError(f"name: the server has no service {name!r}; register the deployment that serves it "
                             "first (restate.admin.restate_deployment)")
        if task.check_mode and params["check_mode_base"]:
            # A registration earlier in this check run would reset these; compare with what it would leave.
            service = dict(service, **{k: v for k, v in params["check_mode_base"].items() if k in SETTINGS})
            service.pop("info", None)
        changes = setting_changes(service, wanted)
        before = summary(service)
        after = dict(before, **changes)
        if changes and not task.check_mode:
            answer = client.services.patch(name, changes)
            for info in answer.get("info", []) or []:
                task.warn(f"service {name}: the server says {info.get('code')}: {info.get('message')}")
            after = summary(answer)
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    outcome = {"changed": bool(changes), "service": after, "changes": sorted(changes)}
    if task.diff_mode:
        keys = [key for key in SETTINGS if key in before or key in after]
        outcome["diff"] = {"before": _diff_text(before, keys), "after": _diff_text(after, keys),
                           "before_header": f"service {name}", "after_header": f"service {name}"}
    task.exit_json(**outcome)
