#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_deployment_info
short_description: List the deployments of a Restate server, and which are drained
version_added: 1.0.0
description:
  - Lists every deployment of a Restate server (or the one given by O(id), O(uri) or O(arn), or those serving
    O(service)) with its services and revisions, the services whose latest deployment it is, and its status.
  - RV(deployments[].status) is V(active) while the deployment is the latest of any service, V(draining) while
    invocations that are not completed are pinned to it, and V(drained) otherwise - safe to remove with
    M(restate.admin.restate_deployment).
  - Reads C(GET /deployments), C(GET /services) and the server's C(sys_invocation) table; it never changes anything.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  id:
    description:
      - Only this deployment (V(dp_...)). One the server does not know gives an empty list.
    type: str
  uri:
    description:
      - Only the deployment of this HTTP endpoint (with or without the trailing C(/)).
    type: str
  arn:
    description:
      - Only the deployment of this Lambda ARN.
    type: str
  service:
    description:
      - Only the deployments that serve this service (at any revision).
      - A name that no deployment serves (a misspelling) fails the task, naming the services there are.
    type: str
  status:
    description:
      - Only deployments in these statuses.
    type: list
    elements: str
    choices: [active, draining, drained]
  created_before:
    description:
      - Only deployments registered before this moment - an RFC 3339 timestamp (V(2026-01-31T12:00:00Z)) or an age
        meaning that long before now (V(90s), V(12h), V(7d), V(2w), V(1d12h)).
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
notes:
  - An invocation is pinned once its deployment journaled something beyond its input; one suspended before that is
    not pinned and does not keep a deployment draining.
seealso:
  - module: restate.admin.restate_deployment
  - module: restate.admin.restate_service_info
"""

EXAMPLES = r"""
- name: Deployments of the Checkout service
  restate.admin.restate_deployment_info:
    service: Checkout
  register: checkout

- name: Which old deployments still have invocations pinned, per status
  ansible.builtin.debug:
    msg: "{{ item.id }} {{ item.status }} {{ item.pinned }}"
  loop: "{{ checkout.deployments | rejectattr('status', 'eq', 'active') }}"

- name: Every drained deployment registered more than a week ago
  restate.admin.restate_deployment_info:
    status: drained
    created_before: 7d
  register: drained
"""

RETURN = r"""
deployments:
  description: The deployments, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The deployment's id.
      type: str
      sample: dp_11y34lPUiDu9cYkItxmdc2Z
    uri:
      description: Its HTTP endpoint, as the server stores it.
      type: str
      sample: http://checkout-v1:9080/
    arn:
      description: Its Lambda ARN.
      type: str
    protocol_type:
      description: C(RequestResponse) or C(BidiStream).
      type: str
    http_version:
      description: HTTP version the server uses with it.
      type: str
    created_at:
      description: When it was registered.
      type: str
    sdk_version:
      description: SDK and version of the endpoint.
      type: str
    metadata:
      description: Metadata given at registration.
      type: dict
    services:
      description: Its services, by name, with the revision each has on it.
      type: list
      elements: dict
      sample: [{name: Checkout, revision: 1}]
    status:
      description: V(active), V(draining) or V(drained).
      type: str
      sample: draining
    latest_of:
      description: The services whose latest deployment it is.
      type: list
      elements: str
    pinned:
      description: Invocations not completed pinned to it, per status.
      type: dict
      sample: {suspended: 3, running: 1}
    pinned_total:
      description: Their number.
      type: int
      sample: 4
count:
  description: Number of deployments returned.
  returned: always
  type: int
summary:
  description: Number of deployments returned per status.
  returned: always
  type: dict
  sample: {active: 1, draining: 1}
"""

from ansible_collections.restate.admin.plugins.module_utils._deployment_info_task import SPEC, run
from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
