# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_object_state_info task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._object_state_task import returned_state
from ansible_collections.restate.admin.plugins.module_utils._state_api import ENCODINGS, check_stateful, version_of

MAX_LIMIT = 10000

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "service": {"type": "str", "required": True},
        "key": {"type": "str", "no_log": False},
        "encoding": {"type": "str", "default": "json", "choices": list(ENCODINGS)},
        "show_values": {"type": "bool", "default": True},
        "limit": {"type": "int", "default": 1000},
        "after": {"type": "str", "no_log": False},
    },
}


def run(task):
    """The state of one key, or a page of the service's keys with their sizes; never changes anything."""
    params = task.params
    try:
        service = (params["service"] or "").strip()
        if not service:
            raise InputError("service: give the Virtual Object's or Workflow's name, e.g. service: Cart")
        if not 1 <= params["limit"] <= MAX_LIMIT:
            raise InputError(f"limit: from 1 to {MAX_LIMIT} keys a page, got {params['limit']}; page on with after")
        if params["key"] is not None and params["after"] is not None:
            raise InputError("after: pages the list of keys; leave it out with key")
        client = task.connect()
        check_stateful(client.services.get(service), service)
        if params["key"] is not None:
            key = params["key"]
            state = client.state.read(service, key)
            outcome = {"service": service, "key": key,
                       "state": returned_state(state, params["encoding"], params["show_values"]),
                       "sizes": {name: len(value) for name, value in state.items()},
                       "version": version_of(state), "held_by": client.state.holder(service, key),
                       "count": len(state)}
        else:
            keys = client.state.keys(service, after=params["after"], limit=params["limit"])
            outcome = {"service": service, "objects": keys, "count": len(keys),
                       "next_after": keys[-1]["key"] if len(keys) == params["limit"] else None}
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    task.exit_json(changed=False, **outcome)
