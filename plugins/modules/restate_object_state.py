#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_object_state
short_description: Set or clear the state of one Virtual Object or Workflow key
version_added: 1.1.0
description:
  - Sets the whole K/V state of one key of a Virtual Object or a Workflow through the Admin API
    (C(POST /services/{service}/state)), or clears it, as the official CLI's C(restate kv edit) and C(restate kv clear) do.
  - The state is read first (SQL, table C(state)) and compared with O(state) by value; only when it differs is the
    new state sent, so a second run changes nothing.
  - The change carries the version of the state the module read. A state changed by anything else in between (a
    handler, another task) is not overwritten - the server drops the change - and the task fails saying so.
  - The server applies a change after it answers; the module reads the state back until it shows the change.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  service:
    description:
      - The Virtual Object or Workflow (for example V(Cart)). A plain service has no state; naming one, or a service
        the server does not know, is refused.
    type: str
    required: true
  key:
    description:
      - The object's (or workflow's) key, for example V(customer-42).
    type: str
    required: true
  state:
    description:
      - The key's whole state, a mapping of state key to value; state keys left out are cleared.
      - V(absent) (or an empty mapping) clears the whole state of the key.
      - Each value is given in O(encoding).
    type: raw
    required: true
  encoding:
    description:
      - How the values of O(state) are given and returned.
      - V(json) writes each value as compact JSON (what the SDKs' default serializers read); a stored value that
        holds the same JSON in another spelling (spacing, key order) is the same value and is left as it is.
      - V(text) writes each value, a string, as its UTF-8 bytes; V(base64) writes the bytes the base64 string
        holds (any bytes, for values that are not text). Both compare byte for byte.
    type: str
    choices: [json, text, base64]
    default: json
  version:
    description:
      - The version the state must still have, as RV(restate.admin.restate_object_state_info#module:version)
        returned it after an inspection; a state at another version is refused before anything is sent.
      - Without it the module uses the version of the state it reads itself.
    type: str
  queue:
    description:
      - While an invocation holds the key (it runs, is suspended, backs off or is paused), the server applies a
        change only after that invocation ends, and after the invocations already waiting for the key.
      - V(false) refuses to send the change then, naming the invocation. V(true) sends it to wait behind it; the task
        then reports RV(applied=false) with a warning, and the change is dropped when the state is changed by
        the time it comes to be applied.
    type: bool
    default: false
  show_values:
    description:
      - V(false) shows, in the diff and in RV(state), each value's size and SHA-256 digest instead of the value,
        for values that must not reach the logs. The options themselves, O(state) too, are part of the task's
        result as for every module; the task's C(no_log) hides the whole result.
    type: bool
    default: true
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.action_group
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - restate.admin.controller_run
attributes:
  check_mode:
    support: full
    details: Reads the state (and which invocation holds the key) and reports what would change, sending nothing.
  diff_mode:
    support: full
    details:
      - One line per state key, the key, a colon and the value as the server stores it (its UTF-8 text, or
        C(base64:...) when it is not UTF-8; longer than 1000 characters, cut and followed by its size and digest).
  platform:
    platforms: posix
notes:
  - Measured on Restate 1.7.12. The server answers a change before it applies it (on a free key within about
    10 ms), and drops a change whose version no longer matches without an error; the read-back after the change is
    what tells. The version is a SHA-256 digest of the sorted entries, as the server computes it.
  - A handler that read a state key journals what it read; resuming an invocation replays that, and does not see a
    state changed since. See the collection's docs/object-state.md for fixing a stuck object.
seealso:
  - module: restate.admin.restate_object_state_info
  - module: restate.admin.restate_invocation
"""

EXAMPLES = r"""
- name: Give cart customer-42 its items back
  restate.admin.restate_object_state:
    service: Cart
    key: customer-42
    state:
      items: [{sku: A-1, count: 2}]
      status: open

- name: Only if nothing changed since it was inspected
  restate.admin.restate_object_state:
    service: Cart
    key: customer-42
    state: {status: open}
    version: "{{ inspected.version }}"

- name: A value that is not JSON, as bytes
  restate.admin.restate_object_state:
    service: Cart
    key: customer-42
    encoding: base64
    state:
      blob: /wBh

- name: Clear the key's whole state
  restate.admin.restate_object_state:
    service: Cart
    key: customer-42
    state: absent
"""

RETURN = r"""
service:
  description: The service.
  returned: success
  type: str
  sample: Cart
key:
  description: The object's key.
  returned: success
  type: str
  sample: customer-42
state:
  description:
    - The key's state after the task (in check mode, as it would be), in O(encoding); with O(show_values=false),
      each value's size and digest.
  returned: success
  type: dict
  sample: {items: [{sku: A-1, count: 2}], status: open}
sizes:
  description: The size in bytes of each stored value.
  returned: success
  type: dict
  sample: {items: 24, status: 6}
version:
  description: The version of the state after the task (in check mode, of the state it would set).
  returned: success
  type: str
  sample: tDqA04Lj3_qJ-PgNPTecXDGZgpwy6jm2Ni2BYqJIthM
changes:
  description: The state keys added, changed and removed (or that would be, in check mode).
  returned: success
  type: dict
  contains:
    added:
      description: State keys that had no value.
      type: list
      elements: str
    changed:
      description: State keys whose value differs.
      type: list
      elements: str
    removed:
      description: State keys cleared.
      type: list
      elements: str
  sample: {added: [items], changed: [status], removed: []}
applied:
  description:
    - Whether the server shows the wanted state. V(false) in check mode when something would change, and when the
      change waits behind the invocation that holds the key (O(queue=true)).
  returned: success
  type: bool
held_by:
  description: The invocation that holds the key, when a change was to be made while one did; otherwise V(null).
  returned: success
  type: str
  sample: inv_15JxsQ90JREG61YxxaZrJjdGOwcHOT58Pb
"""

from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule
from ansible_collections.restate.admin.plugins.module_utils._object_state_task import SPEC, run


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
