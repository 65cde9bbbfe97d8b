# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The filters vocabulary, the same in restate_invocation_info and restate_invocation."""

    DOCUMENTATION = r"""
options:
  filters:
    description:
      - Select invocations on the server by these conditions, all of which must hold.
      - Values are compared literally (no wildcards); a value that is not valid fails the task before any
        request, naming the key.
      - Time windows take an RFC 3339 timestamp with a time zone (V(2026-01-31T12:00:00Z)) or an age such as
        V(90s), V(15m), V(12h), V(7d), V(2w) or V(1d12h), meaning that long before the task started.
    type: dict
    suboptions:
      service:
        description: Name of the service, virtual object or workflow.
        type: str
      handler:
        description: Name of the handler.
        type: str
      key:
        description: Key of the virtual object or workflow.
        type: str
      target:
        description:
          - The official CLI's target syntax. V(Service), V(Service/handler), V(Object/key),
            V(Object/key/handler) or V(Workflow/key).
          - With two parts, the second is a handler for a plain service and a key for a virtual object or
            workflow.
        type: str
      status:
        description: One status or a list of statuses.
        type: list
        elements: str
        choices: [scheduled, pending, ready, running, suspended, backing-off, paused, completed]
      completion_result:
        description: How a completed invocation ended.
        type: str
        choices: [success, failure]
      deployment:
        description:
          - Id of the deployment the invocation is pinned to (V(dp_...)).
          - An invocation that is not pinned yet (for example backing-off before its first journal entry) counts
            for the deployment of its last attempt, as in C(restate invocations list --deployment).
        type: str
      invoked_by:
        description: Who started the invocation.
        type: str
        choices: [ingress, service, subscription]
      idempotency_key:
        description: The idempotency key the invocation was started with.
        type: str
      zombie:
        description:
          - V(true) selects invocations pinned to a deployment that no longer exists (they cannot make
            progress); V(false) excludes them.
        type: bool
      pinned:
        description:
          - V(true) selects invocations pinned to a deployment (C(pinned_deployment_id) set), V(false) those not pinned
            yet.
          - An invocation is pinned once its deployment has journaled something beyond its input. Only a pinned
            invocation can be resumed on a named deployment (O(restate.admin.restate_invocation#module:deployment=dp_...));
            one that is not pinned runs its next attempt on the latest deployment of its service.
        type: bool
      min_retry_count:
        description:
          - At least this many attempts have failed and been retried (C(retry_count)); with O(filters.status=backing-off)
            it selects invocations stuck retrying.
        type: int
      created_before:
        description: Created before this time or age.
        type: str
      created_after:
        description: Created at or after this time or age.
        type: str
      modified_before:
        description: Last modified before this time or age.
        type: str
      modified_after:
        description: Last modified at or after this time or age.
        type: str
      completed_before:
        description: Completed before this time or age (so only completed invocations).
        type: str
      completed_after:
        description: Completed at or after this time or age (so only completed invocations).
        type: str
"""
