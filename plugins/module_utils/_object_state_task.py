# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_object_state task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._poll import Poll
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError
from ansible_collections.restate.admin.plugins.module_utils._state_api import (
    ENCODINGS,
    changed_keys,
    check_stateful,
    decode_value,
    diff_text,
    merged_state,
    shown,
    version_of,
    wanted_state,
)

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "service": {"type": "str", "required": True},
        "key": {"type": "str", "required": True, "no_log": False},
        "state": {"type": "raw", "required": True},
        "encoding": {"type": "str", "default": "json", "choices": list(ENCODINGS)},
        "version": {"type": "str"},
        "queue": {"type": "bool", "default": False},
        "show_values": {"type": "bool", "default": True},
    },
}

# How long the read-back looks for the change: a free key shows it within about 10 ms (1.7.12); a held key not until
# the invocation holding it ends, so that read-back is short.
APPLY_WAIT = 15.0
HELD_WAIT = 1.0
POLL_INTERVAL = 0.05


def returned_state(state: dict, encoding: str, show_values: bool) -> dict:
    """The state as the module returns it: values in ``encoding``, or only their size and digest."""
    if not show_values:
        return {key: shown(value, False) for key, value in state.items()}
    return {key: decode_value(value, encoding, f"state.{key}") for key, value in state.items()}


def settle(client, service: str, key: str, before: dict, sent: dict, wait: float) -> bool:
    """True once the server shows ``sent``; InputError when the key's state changed to something else meanwhile, as
    the server then dropped the change; False when it still shows ``before`` after ``wait`` seconds."""
    poll = Poll(wait, interval=POLL_INTERVAL)
    for unused_round in poll.rounds():
        now = client.state.read(service, key)
        if now == sent:
            return True
        if now != before:
            raise InputError(
                f"version: the state of {service}/{key} changed while this task ran (version {version_of(before)} "
                f"when read, {version_of(now)} now); the server dropped this change rather than overwrite that "
                "one. Read the state again and re-run.")
    return False


def apply(task, client, service: str, key: str, before: dict, after: dict, held_by) -> tuple:
    """Send ``after`` with the version of ``before`` and read back whether the server applied it (see settle):
    (applied, the invocation holding the key). A change waiting behind that invocation is not applied yet: a warning."""
    try:
        client.state.replace(service, key, after, version_of(before))
    except RestateApiError as error:
        if error.status != 413:
            raise
        # 1.7.12 takes 2 MiB of JSON a change, and each byte of a value is a number of up to 5 characters
        raise InputError(f"state: the new state of {service}/{key}, {sum(map(len, after.values()))} bytes, is more "
                         "than the server takes in one change (HTTP 413: a 1.7 server takes about 400 KB of values); "
                         "store less in one key") from None
    if settle(client, service, key, before, after, HELD_WAIT if held_by else APPLY_WAIT):
        return True, held_by
    held_by = held_by or client.state.holder(service, key)  # the key may have been taken since it was read
    if not held_by:
        raise InputError(f"the server did not apply the new state of {service}/{key} within {APPLY_WAIT:.0f} s, "
                         "and no invocation holds the key")
    task.warn(f"{service}/{key}: the new state waits behind invocation {held_by}, which holds the key; the server "
              "applies it when that invocation ends, unless the state changed by then")
    return False, held_by


def check_version(given, service, key, before):
    """Refuse a change made for another version of the state than the one read (optimistic concurrency)."""
    version = version_of(before)
    if given is not None and given.strip() != version:
        raise InputError(f"version: the state of {service}/{key} is at version {version}, not {given.strip()}: it "
                         "changed since that version was read; read it again")


def holder_if_queued(client, service, key, queue):
    """The invocation holding the key, or None; refused when one holds it and ``queue`` is off."""
    held_by = client.state.holder(service, key)
    if held_by and not queue:
        raise InputError(
            f"queue: invocation {held_by} holds {service}/{key}, and the server would apply the new state "
            "only after it ends (a paused invocation holds its key until it is resumed to the end, killed "
            "or cancelled): end it first (restate.admin.restate_invocation), or set queue=true to have the "
            "change wait behind it")
    return held_by


def run(task):
    """Read the key's state, replace it when it differs by value, read back that the server applied it."""
    params = task.params
    service, key, encoding = (params["service"] or "").strip(), params["key"], params["encoding"]
    held_by = None
    try:
        if not service:
            raise InputError("service: give the Virtual Object's or Workflow's name, e.g. service: Cart")
        wanted = wanted_state(params["state"], encoding)
        client = task.connect()
        check_stateful(client.services.get(service), service)
        before = client.state.read(service, key)
        check_version(params["version"], service, key, before)
        after = merged_state(before, wanted, encoding)
        changes = changed_keys(before, after)
        applied = not any(changes.values())  # whether the server shows the wanted state
        if not applied:
            held_by = holder_if_queued(client, service, key, params["queue"])
            if not task.check_mode:
                applied, held_by = apply(task, client, service, key, before, after, held_by)
        outcome = {"changed": any(changes.values()), "service": service, "key": key,
                   "state": returned_state(after, encoding, params["show_values"]),
                   "sizes": {name: len(value) for name, value in after.items()},
                   "version": version_of(after), "changes": changes, "applied": applied, "held_by": held_by}
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    if task.diff_mode:
        header = f"state of {service}/{key}"
        outcome["diff"] = {"before": diff_text(before, params["show_values"]),
                           "after": diff_text(after, params["show_values"]),
                           "before_header": header, "after_header": header}
    task.exit_json(**outcome)
