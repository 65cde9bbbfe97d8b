#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_service
short_description: Set a Restate service's settings (retention, timeouts, public)
version_added: 1.0.0
description:
  - Sets the settings of one service of a Restate server through the Admin API (C(PATCH /services/{name})) - whether
    it is public, how long it keeps idempotency results, journals and workflow results, and its timeouts.
  - Only the settings given are managed; each is compared with the server's by value (V(1d), V(24h), V(P1D) and
    V(1 day) are equal), and only those that differ are sent. A second run changes nothing.
  - Durations are the collection's age vocabulary (V(90s), V(12h), V(7d), V(2w), V(1d12h)), ISO 8601 without years
    or months (V(PT3H), V(P1D)) or the server's own form (V(5 hours), V(1d 2h), V(1 day), V(500ms)). The server
    takes no years or months; a value it cannot take is refused before any call, naming the option.
  - Registering a new deployment of the service resets these settings to what the endpoint declares; apply them
    again after each registration.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  name:
    description:
      - The service's name, as registered (for example V(Checkout)).
      - A service the server does not know is a failure.
    type: str
    required: true
  public:
    description:
      - Whether the service can be called through the ingress. V(false) leaves it reachable only from other services.
    type: bool
  idempotency_retention:
    description:
      - How long the result of an invocation with an idempotency key is kept.
    type: str
  journal_retention:
    description:
      - How long a completed invocation's journal (and the invocation itself) is kept. V(0s) keeps nothing.
    type: str
  workflow_completion_retention:
    description:
      - How long a workflow's result is kept. Only for workflows; given for another kind of service it is refused.
    type: str
  inactivity_timeout:
    description:
      - How long an invocation may stay idle before the server asks it to suspend.
      - On a service deployed request/response (HTTP/1.1), a 1.7 server keeps the value but does not apply it and
        keeps showing V(0s), with a notice (RT0021) that names the configured value; the module passes the notice on
        as a warning and compares with the configured value, so a second run with the same value changes nothing.
    type: str
  abort_timeout:
    description:
      - How long after the inactivity timeout the server aborts an invocation that did not suspend.
    type: str
  settings:
    description:
      - The settings as one dict (keys V(public), V(idempotency_retention), V(journal_retention),
        V(workflow_completion_retention), V(inactivity_timeout), V(abort_timeout)), instead of the options of the same
        names - for a role or playbook that keeps them per service in a variable. An unknown key (a misspelling) fails
        the task before any call, naming the closest setting.
    type: dict
  check_mode_base:
    description:
      - In check mode, the service's settings to compare with instead of those the server has now - what a
        registration earlier in the same check run would reset them to (the
        RV(restate.admin.restate_deployment#module:service_settings) of that registration), so that C(--check) reports
        the changes the real run will make. Ignored outside check mode.
    type: dict
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.action_group
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - restate.admin.controller_run
attributes:
  check_mode:
    support: full
    details: Reads the service and reports what would change, changing nothing.
  diff_mode:
    support: full
    details: The managed settings before and after, as the server shows them (after, in check mode, as they would be sent).
  platform:
    platforms: posix
notes:
  - Durations are sent in the server's compact form (V(1d 12h)); the server answers in that form too.
seealso:
  - module: restate.admin.restate_service_info
  - module: restate.admin.restate_deployment
"""

EXAMPLES = r"""
- name: Keep completed Checkout invocations for three days, idempotency results for a day
  restate.admin.restate_service:
    name: Checkout
    journal_retention: 3d
    idempotency_retention: 24h

- name: Keep workflow results a week (ISO 8601), and make the workflow private
  restate.admin.restate_service:
    name: Onboarding
    workflow_completion_retention: P7D
    public: false

- name: Timeouts in the server's own form
  restate.admin.restate_service:
    admin_url: https://restate.example.com:9070
    token: "{{ restate_token }}"
    name: Cart
    inactivity_timeout: 1 minute
    abort_timeout: 10 minutes
"""

RETURN = r"""
service:
  description:
    - The service after the task, as the server shows it (in check mode, with the changes it would make).
    - Handlers are left out; M(restate.admin.restate_deployment_info) lists deployments.
  returned: success
  type: dict
  contains:
    name:
      description: The service's name.
      type: str
      sample: Checkout
    ty:
      description: C(Service), C(VirtualObject) or C(Workflow).
      type: str
      sample: Service
    deployment_id:
      description: The service's latest deployment, which new invocations run on.
      type: str
      sample: dp_11y34lPUiDu9cYkItxmdc2Z
    revision:
      description: The service's revision (one more for each registration that includes it).
      type: int
      sample: 2
    public:
      description: Whether the ingress can call it.
      type: bool
    idempotency_retention:
      description: In the server's form.
      type: str
      sample: 1d
    journal_retention:
      description: In the server's form.
      type: str
      sample: 3d
    workflow_completion_retention:
      description: Workflows only.
      type: str
      sample: 7d
    inactivity_timeout:
      description: In the server's form.
      type: str
      sample: 1m
    abort_timeout:
      description: In the server's form.
      type: str
      sample: 10m
    enable_lazy_state:
      description: Whether state is loaded lazily.
      type: bool
    retry_policy:
      description: The service's default retry policy.
      type: dict
changes:
  description: The settings that differed and were set (or would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [journal_retention]
"""

from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule
from ansible_collections.restate.admin.plugins.module_utils._service_task import SPEC, run


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
