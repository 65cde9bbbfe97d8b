#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_object_state_info
short_description: Read the state of a Virtual Object or Workflow key, or list the keys that have state
version_added: 1.1.0
description:
  - With O(key), returns the K/V state of that key of a Virtual Object or a Workflow, its version (for
    M(restate.admin.restate_object_state)'s O(restate.admin.restate_object_state#module:version)) and the invocation
    that holds the key, if one does. Read with SQL from the server's C(state) table.
  - Without O(key), lists the keys of the service that have state, in key order, with the number of entries and
    bytes of each, one page of O(limit) keys a task.
  - It never changes anything.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  service:
    description:
      - The Virtual Object or Workflow. A plain service, or a service the server does not know, is refused.
    type: str
    required: true
  key:
    description:
      - The object's (or workflow's) key. A key without state returns an empty RV(state).
    type: str
  encoding:
    description:
      - How the values of RV(state) are returned. V(json) parses each one as JSON; V(text) returns its UTF-8 text;
        V(base64) its bytes base64-encoded.
      - A value that cannot be read that way fails the task, naming the state key; V(base64) reads any value.
    type: str
    choices: [json, text, base64]
    default: json
  show_values:
    description:
      - V(false) returns each value's size and SHA-256 digest instead of the value.
    type: bool
    default: true
  limit:
    description:
      - Without O(key), how many keys one task lists, from V(1) to V(10000).
    type: int
    default: 1000
  after:
    description:
      - Without O(key), list the keys after this one (RV(next_after) of the page before).
    type: str
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.action_group
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - restate.admin.controller_run
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: restate.admin.restate_object_state
"""

EXAMPLES = r"""
- name: The state of cart customer-42
  restate.admin.restate_object_state_info:
    service: Cart
    key: customer-42
  register: cart

- name: Which invocation holds it
  ansible.builtin.debug:
    msg: "{{ cart.state }} (version {{ cart.version }}), held by {{ cart.held_by }}"

- name: The carts that have state, a page at a time
  restate.admin.restate_object_state_info:
    service: Cart
    limit: 500
  register: carts

- name: The next page
  restate.admin.restate_object_state_info:
    service: Cart
    limit: 500
    after: "{{ carts.next_after }}"
  when: carts.next_after is not none
"""

RETURN = r"""
service:
  description: The service.
  returned: success
  type: str
  sample: Cart
key:
  description: The object's key.
  returned: success and O(key) given
  type: str
  sample: customer-42
state:
  description: The key's state, in O(encoding); with O(show_values=false), each value's size and digest.
  returned: success and O(key) given
  type: dict
  sample: {items: [{sku: A-1, count: 2}], status: open}
sizes:
  description: The size in bytes of each stored value.
  returned: success and O(key) given
  type: dict
  sample: {items: 24, status: 6}
version:
  description: The state's version, as the server computes it.
  returned: success and O(key) given
  type: str
  sample: tDqA04Lj3_qJ-PgNPTecXDGZgpwy6jm2Ni2BYqJIthM
held_by:
  description: The invocation that holds the key (a change of the state waits until it ends), or V(null).
  returned: success and O(key) given
  type: str
  sample: inv_15JxsQ90JREG61YxxaZrJjdGOwcHOT58Pb
objects:
  description: Without O(key), a page of the object keys that have state, in key order.
  returned: success and O(key) not given
  type: list
  elements: dict
  contains:
    key:
      description: The object's key.
      type: str
    entries:
      description: How many state keys it has.
      type: int
    bytes:
      description: The size of its values together.
      type: int
  sample: [{key: customer-42, entries: 2, bytes: 30}]
next_after:
  description: Without O(key), the last key of a full page (give it as O(after) for the next one), or V(null).
  returned: success and O(key) not given
  type: str
count:
  description: With O(key), the number of state keys; without, the number of keys listed.
  returned: success
  type: int
  sample: 2
"""

from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule
from ansible_collections.restate.admin.plugins.module_utils._object_state_info_task import SPEC, run


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
