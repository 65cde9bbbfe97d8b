#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_service_info
short_description: List the services of a Restate server with their settings
version_added: 1.0.0
description:
  - Lists every service of a Restate server, or the one named, with its settings (retention, timeouts, public) and
    its latest deployment and revision, through the Admin API (C(GET /services)). It never changes anything.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  name:
    description:
      - Only this service. A name the server does not know returns an empty RV(services) list; it is not a failure.
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
  - module: restate.admin.restate_service
  - module: restate.admin.restate_deployment_info
"""

EXAMPLES = r"""
- name: Every service with its settings
  restate.admin.restate_service_info:
  register: services

- name: Which deployment Checkout runs on, and how long it keeps journals
  restate.admin.restate_service_info:
    name: Checkout
  register: checkout

- name: Report
  ansible.builtin.debug:
    msg: "{{ checkout.services[0].deployment_id }} keeps journals {{ checkout.services[0].journal_retention }}"
  when: checkout.count == 1
"""

RETURN = r"""
services:
  description:
    - The services, by name. Each is as the server shows it, without handlers; see RV(restate.admin.restate_service#module:service)
      for the keys.
  returned: always
  type: list
  elements: dict
  sample:
    - name: Checkout
      ty: Service
      deployment_id: dp_11y34lPUiDu9cYkItxmdc2Z
      revision: 2
      public: true
      idempotency_retention: 1d
      journal_retention: 1d
      inactivity_timeout: 1m
      abort_timeout: 10m
count:
  description: Number of services returned.
  returned: always
  type: int
  sample: 3
"""

from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule
from ansible_collections.restate.admin.plugins.module_utils._service_info_task import SPEC, run


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
