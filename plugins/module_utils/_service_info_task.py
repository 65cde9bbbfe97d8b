# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_service_info task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._services_api import summary

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "name": {"type": "str"},
    },
}


def run(task):
    """Every service (or the one named) with its settings and latest deployment; never changes anything."""
    params = task.params
    try:
        name = params["name"].strip() if params["name"] is not None else None
        if name == "":
            raise InputError("name: an empty name names no service; leave name out to list every service")
        client = task.connect()
        if name is not None:
            found = client.services.get(name)
            services = [found] if found else []
        else:
            services = client.services.list()
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    services = sorted((summary(service) for service in services), key=lambda s: s["name"])
    task.exit_json(changed=False, services=services, count=len(services))
