#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_invocation_info
short_description: List or describe invocations of a Restate server
version_added: 1.0.0
description:
  - Lists the invocations of a Restate server that match O(filters), or describes one invocation given by O(id),
    optionally with its journal.
  - Reads the server's C(sys_invocation) and C(sys_journal) tables through the Admin API (C(POST /query)); it never
    changes anything.
  - Uses the same O(filters) as M(restate.admin.restate_invocation), so a task can show what another one would act on.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  id:
    description:
      - Describe this one invocation (V(inv_...)).
      - An id that the server does not know returns an empty RV(invocations) list; it is not a failure.
      - Mutually exclusive with O(filters).
    type: str
  journal:
    description:
      - With O(id), add the invocation's journal (index, entry type, name, completed, appended at) as C(journal).
      - Only with O(id); V(true) without it is refused.
    type: bool
    default: false
  limit:
    description:
      - Return at most this many invocations. RV(matched) still counts every match and RV(truncated) tells when some
        were left out.
      - V(0) lists none and only counts; RV(summary) and RV(matched) come from one C(GROUP BY status) query that the
        server answers without sending any invocation, however many match.
    type: int
    default: 1000
  order:
    description:
      - Order of RV(invocations), by creation time.
    type: str
    choices: [newest_first, oldest_first]
    default: newest_first
  fields:
    description:
      - Which columns to return for each invocation; C(id) is always included.
      - Default is every column listed under RV(invocations).
    type: list
    elements: str
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.filters
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
notes:
  - Without O(id) and O(filters) every invocation the server holds is matched (up to O(limit) returned).
  - Completed invocations are listed for as long as the server retains them (C(journal_retention), one day by default).
seealso:
  - module: restate.admin.restate_invocation
"""

EXAMPLES = r"""
- name: Describe one invocation with its journal
  restate.admin.restate_invocation_info:
    id: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    journal: true
  register: described

- name: List paused and backing-off invocations of the Checkout service
  restate.admin.restate_invocation_info:
    filters:
      service: Checkout
      status: [paused, backing-off]
  register: stuck

- name: Count completed failures of the last 24 hours, returning only ids
  restate.admin.restate_invocation_info:
    filters:
      status: completed
      completion_result: failure
      completed_after: 24h
    limit: 0
  register: failures

- name: Report
  ansible.builtin.debug:
    msg: "{{ failures.matched }} failed in the last day; stuck by status: {{ stuck.summary }}"

- name: The CLI's target syntax, oldest first, from a server given by URL and token
  restate.admin.restate_invocation_info:
    admin_url: https://restate.example.com:9070
    token: "{{ restate_token }}"
    filters:
      target: Cart/customer-42
    order: oldest_first
"""

RETURN = r"""
invocations:
  description:
    - The invocations, in O(order), at most O(limit). Keys are the columns of the server's C(sys_invocation) table
      (only those in O(fields) when given); a column with no value is V(null).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Invocation id.
      type: str
      sample: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    target:
      description: C(Service/handler) or C(Object/key/handler).
      type: str
      sample: Cart/customer-42/checkout
    target_service_name:
      description: Service, virtual object or workflow name.
      type: str
    target_service_key:
      description: Key, for virtual objects and workflows.
      type: str
    target_handler_name:
      description: Handler name.
      type: str
    target_service_ty:
      description: C(service), C(virtual_object) or C(workflow).
      type: str
    status:
      description: C(scheduled), C(pending), C(ready), C(running), C(suspended), C(backing-off), C(paused) or C(completed).
      type: str
      sample: suspended
    completion_result:
      description: C(success) or C(failure), for completed invocations.
      type: str
    completion_failure:
      description: The failure of a completed invocation, such as C([409] cancelled).
      type: str
    idempotency_key:
      description: Idempotency key the invocation was started with.
      type: str
    invoked_by:
      description: C(ingress), C(service) or C(subscription).
      type: str
    invoked_by_service_name:
      description: Calling service, when invoked by a service.
      type: str
    invoked_by_id:
      description: Calling invocation, when invoked by a service.
      type: str
    invoked_by_target:
      description: Calling target, when invoked by a service.
      type: str
    restarted_from:
      description: The invocation this one was restarted from (restart as new).
      type: str
    pinned_deployment_id:
      description: Deployment the invocation is pinned to.
      type: str
    last_attempt_deployment_id:
      description: Deployment of the last attempt.
      type: str
    trace_id:
      description: Trace id.
      type: str
    journal_size:
      description: Number of journal entries.
      type: int
    created_at:
      description: Creation time, RFC 3339.
      type: str
      sample: "2026-11-24T22:37:23.484Z"
    modified_at:
      description: Last modification time, RFC 3339.
      type: str
    inboxed_at:
      description: When it entered a virtual object's inbox.
      type: str
    scheduled_at:
      description: When it was scheduled.
      type: str
    scheduled_start_at:
      description: When a delayed invocation is due to start.
      type: str
    running_at:
      description: When it first ran.
      type: str
    completed_at:
      description: When it completed.
      type: str
    completion_retention:
      description: How long the completed result is kept.
      type: str
    journal_retention:
      description: How long the journal is kept after completion.
      type: str
    retry_count:
      description: Attempts made so far.
      type: int
    last_start_at:
      description: Start of the last attempt.
      type: str
    next_retry_at:
      description: When the next attempt is due, for backing-off invocations.
      type: str
    last_attempt_server:
      description: SDK and version that served the last attempt.
      type: str
    last_failure:
      description: The last failure, for retrying or paused invocations.
      type: str
    last_failure_error_code:
      description: Error code of the last failure.
      type: str
    journal:
      description: With O(id) and O(journal), the journal entries in order.
      type: list
      elements: dict
      returned: when O(journal=true) and the invocation exists
      sample: [{index: 0, entry_type: "Command: Input", name: "", completed: null, appended_at: "2026-11-24T22:37:23.513Z"}]
count:
  description: Number of invocations returned.
  returned: always
  type: int
  sample: 2
matched:
  description: Number of invocations that match, returned or not.
  returned: always
  type: int
  sample: 1540
truncated:
  description: Whether O(limit) left matching invocations out.
  returned: always
  type: bool
  sample: true
summary:
  description: Number of matching invocations per status (over every match, not only those returned).
  returned: always
  type: dict
  sample: {suspended: 1200, paused: 340}
"""

from ansible_collections.restate.admin.plugins.module_utils._invocation_info_task import SPEC, run
from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
