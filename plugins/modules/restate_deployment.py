#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_deployment
short_description: Register a Restate deployment, or remove a drained one
version_added: 1.0.0
description:
  - With O(state=present), registers the service endpoint given by O(uri) (HTTP) or O(arn) (AWS Lambda) with a
    Restate server (C(POST /deployments)); the server discovers its services, and new invocations of those services
    run on it.
  - An endpoint the server already knows is left alone (C(changed=false)) unless O(force=true) and it is not the
    latest deployment of its services (a rollback) or what it serves changed, or O(additional_headers) differ from
    its registered headers (updated in place). The module says so in a warning when
    a known endpoint is not the latest.
  - With O(state=absent), removes the deployment given by O(id), O(uri) or O(arn), but only a drained one - the latest
    deployment of no service, with no invocation that is not completed pinned to it and no attempt running on it
    (an invocation in its first step is not pinned yet, but would be stranded). Otherwise the task fails naming
    the services it still serves and its pinned invocations per status, unless O(force=true). O(wait=true) waits up to
    O(wait_timeout) for the drain, then removes it.
  - With O(state=present), RV(replaces) lists the deployments the endpoint replaces - those that serve one of its
    services and are the latest of no service after the task - read from the server after the registration; the
    deployment_release role retires exactly those.
  - An endpoint given in another form than the registered one (V(https://) for a registered V(http://)) is taken by
    the server as the registered one; the module reports it unchanged, with a warning, unless the registration moved
    or revised its services.
  - A restate-server removes a deployment only when forced (C(DELETE /deployments/{id}?force=true)); the drain check
    is this module's, made just before the removal.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  state:
    description:
      - V(present) registers the endpoint; V(absent) removes the deployment.
    type: str
    choices: [present, absent]
    default: present
  uri:
    description:
      - The HTTP endpoint of the deployment (V(http://checkout:9080)). The server stores it with a trailing C(/);
        either form names the same deployment.
      - A URI with a user name or password (V(http://user:pass@host)) is refused before any request, without
        showing it, as the server would keep and show them with the deployment. Give them in O(additional_headers).
      - Exactly one of O(id), O(uri), O(arn) is given.
    type: str
  arn:
    description:
      - The ARN of an AWS Lambda function version (V(arn:aws:lambda:eu-central-1:123456789012:function:checkout:7)).
    type: str
  id:
    description:
      - With O(state=absent), the deployment's id (V(dp_...)). O(state=present) takes O(uri) or O(arn) instead.
    type: str
  use_http_11:
    description:
      - Talk to the endpoint over HTTP/1.1 (request/response) instead of HTTP/2. O(uri) only.
      - A restate-server 1.7 does not change it on a registered deployment; a value other than registered gives a
        warning and changes nothing.
    type: bool
    default: false
  additional_headers:
    description:
      - Headers the server sends with every request to the endpoint. Never returned or logged.
      - For an endpoint already registered, the headers are brought to exactly these (a rotation) with
        C(PATCH /deployments/{id}), which gives its services no new revision; the diff names the headers and hides
        their values. A server without that call fails the task saying so.
      - A dictionary, or a string of C(name=value) pairs or JSON, read as O(headers) is, with the same checks
        (header names, no line break or control character in a value, each value at least 8 characters, as a
        secret must be) and a message that names C(additional_headers.<name>) and does not show the value.
      - This is where the endpoint's credentials go; a O(uri) with a user name or password in it is refused.
    type: dict
  metadata:
    description:
      - Metadata to attach to the deployment (string keys and values).
      - A restate-server 1.7 does not update the metadata of a registered deployment; other metadata than registered
        gives a warning and changes nothing.
      - A value that is a dictionary, a list or empty, or a name or value with a line break or control character,
        is refused naming C(metadata.<name>).
    type: dict
  assume_role_arn:
    description:
      - The role the server assumes to invoke the Lambda function. O(arn) only.
    type: str
  breaking:
    description:
      - Allow a registration that changes services incompatibly (for example removes a handler). Without it the server
        refuses such a registration, and the task fails with its message.
    type: bool
    default: false
  force:
    description:
      - With O(state=present), register a known endpoint again even if it is registered already, which makes it the
        latest deployment of its services (each gets a new revision). It is sent to the server explicitly either way.
      - With O(state=absent), remove the deployment even if it is not drained. Invocations pinned to it stay pinned to
        an id that no longer exists; removing the latest deployment of a service removes the service.
    type: bool
    default: false
  wait:
    description:
      - With O(state=absent), when the deployment is not drained, wait up to O(wait_timeout) seconds for it to drain,
        then remove it. At the deadline the task fails and removes nothing.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds O(wait) waits.
    type: int
    default: 300
  drain_delay:
    description:
      - With O(state=absent), seconds the deployment must be seen drained, without a break, before it is removed
        (the Restate Kubernetes operator waits 300 by default). The module watches it that long; when it stops being
        drained meanwhile, the wait goes on within O(wait_timeout) with O(wait=true), and the removal is refused
        without it. V(0) removes a drained deployment at once.
    type: int
    default: 0
extends_documentation_fragment:
  - restate.admin.connection
  - restate.admin.action_group
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - restate.admin.controller_run
attributes:
  check_mode:
    support: full
    details:
      - O(state=present) sends the registration with the server's C(dry_run), so the result shows the server's real
        discovery (and its refusal of a breaking change) while nothing is registered. The id of a new deployment in a
        dry run is one the server does not keep (RV(deployment.dry_run)).
      - O(state=absent) reports whether the deployment would be removed; with O(wait) it warns instead of waiting.
  diff_mode:
    support: full
    details:
      - O(state=present), each service of the endpoint with the deployment and revision it runs on, before and after;
        for a registered endpoint given O(additional_headers), the header names (values hidden, changed ones marked).
      - O(state=absent), the deployment and its status before; nothing after.
  platform:
    platforms: posix
notes:
  - Registering a new deployment resets its services' settings (retention, timeouts) to what the endpoint declares;
    apply them again with M(restate.admin.restate_service).
  - An invocation is pinned to a deployment once that deployment journaled something for it beyond its input; an
    invocation suspended before that (for example on an awakeable at once) is not pinned and resumes on the latest.
seealso:
  - module: restate.admin.restate_deployment_info
  - module: restate.admin.restate_service
  - module: restate.admin.restate_invocation
"""

EXAMPLES = r"""
- name: Dry run of the new release's registration (the server discovers it, registers nothing)
  restate.admin.restate_deployment:
    uri: http://checkout-v2:9080
  check_mode: true
  register: planned

- name: Register the new release
  restate.admin.restate_deployment:
    uri: http://checkout-v2:9080
    metadata:
      release: "2.0.0"

- name: Rotate the token the server sends to the endpoint (updated in place, no new revisions)
  restate.admin.restate_deployment:
    uri: http://checkout-v2:9080
    additional_headers:
      Authorization: "Bearer {{ checkout_token }}"

- name: Register a Lambda version
  restate.admin.restate_deployment:
    arn: arn:aws:lambda:eu-central-1:123456789012:function:checkout:7
    assume_role_arn: arn:aws:iam::123456789012:role/restate-invoker

- name: Roll back to the previous release (already registered, so force makes it the latest again)
  restate.admin.restate_deployment:
    uri: http://checkout-v1:9080
    force: true

- name: Retire the old release once nothing is pinned to it, waiting up to ten minutes
  restate.admin.restate_deployment:
    uri: http://checkout-v1:9080
    state: absent
    wait: true
    wait_timeout: 600

- name: Retire an old release once it has stayed drained for five minutes
  restate.admin.restate_deployment:
    uri: http://checkout-v1:9080
    state: absent
    wait: true
    drain_delay: 300

- name: Remove a deployment by id whatever still runs on it
  restate.admin.restate_deployment:
    id: dp_11y34lPUiDu9cYkItxmdc2Z
    state: absent
    force: true
"""

RETURN = r"""
deployment:
  description:
    - The deployment registered, found or removed. V(null) when O(state=absent) found none.
  returned: success, and when a removal was refused
  type: dict
  contains:
    id:
      description: The deployment's id.
      type: str
      sample: dp_11y34lPUiDu9cYkItxmdc2Z
    uri:
      description: Its HTTP endpoint.
      type: str
      sample: http://checkout-v2:9080/
    arn:
      description: Its Lambda ARN.
      type: str
    services:
      description: Its services, by name, with the revision each has on it.
      type: list
      elements: dict
      sample: [{name: Checkout, revision: 2}]
    created:
      description: O(state=present) - whether the server answered that it registered (or in a dry run, would register)
        a new deployment.
      type: bool
    dry_run:
      description: True when RV(deployment.id) comes from the server's dry run and is not kept.
      type: bool
      returned: in check mode, for a new endpoint
    status:
      description: O(state=absent) - V(active), V(draining) or V(drained), as judged before removal.
      type: str
    latest_of:
      description: O(state=absent) - the services whose latest deployment it is.
      type: list
      elements: str
    pinned:
      description: O(state=absent) - invocations not completed pinned to it, per status; under
        C(running (attempt not pinned yet)), attempts running on it that are not pinned yet.
      type: dict
      sample: {suspended: 3, running: 1}
    pinned_total:
      description: O(state=absent) - their number.
      type: int
runs_on:
  description: O(state=present) - each service of the endpoint with the deployment and revision it runs on after the
    task (in check mode, as the dry run answered).
  returned: when O(state=present)
  type: dict
  sample: {Checkout: {deployment_id: dp_11y34lPUiDu9cYkItxmdc2Z, revision: 2}}
latest:
  description: O(state=present) - whether the endpoint is the latest deployment of all its services after the task
    (read from the server after a registration; in check mode, as the dry run predicts).
  returned: when O(state=present)
  type: bool
service_settings:
  description: O(state=present), when the endpoint was registered (in check mode, would be) - each service's settings
    as the registration leaves them (it resets them to what the endpoint declares), as the server answered.
  returned: when O(state=present) registered (or in check mode would register) the endpoint
  type: dict
  sample: {Checkout: {public: true, journal_retention: 1d, idempotency_retention: 1d, abort_timeout: 10m}}
behind:
  description: O(state=present) - the services the endpoint is not the latest deployment of after the task, each with
    the deployment it runs on (after a rollback to another deployment, or another registration meanwhile).
  returned: when O(state=present)
  type: dict
  sample: {Checkout: dp_11y34lPUiDu9cYkItxmdc2Z}
replaces:
  description:
    - O(state=present) - the older deployments this one replaces, oldest first - they serve one of its services and
      are the latest of no service after the task - each with RV(deployment.status), RV(deployment.latest_of),
      RV(deployment.pinned) and RV(deployment.pinned_total). Empty while RV(latest) is false - then the live
      deployment is another one, and none is replaced.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{id: dp_11y34lPUiDu9cYkItxmdc2Z, status: draining, latest_of: [], pinned: {suspended: 1}, pinned_total: 1}]
removed:
  description: O(state=absent) - whether the deployment was removed.
  returned: when O(state=absent)
  type: bool
gone:
  description: O(state=absent) - true when the deployment was not, or no longer, on the server (at the start, during
    the wait or at the removal) - removed by someone else, or never there.
  returned: when O(state=absent)
  type: bool
blocked_by:
  description: O(state=absent) - why the removal was refused - V(latest) (the latest deployment of a service),
    V(pinned) (invocations pinned or attempts running on it), V(drain_delay) (drained for less than O(drain_delay));
    empty when nothing blocked it. A failure without it is an error (the server unreachable, bad input).
  returned: when O(state=absent) found the deployment
  type: list
  elements: str
  sample: [pinned]
waited:
  description: O(state=absent) - seconds spent waiting for the drain.
  returned: when O(state=absent) found the deployment
  type: float
"""

from ansible_collections.restate.admin.plugins.module_utils._deployment_task import SPEC, run
from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
