#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_invocation_recovery
short_description: Recover stuck Restate invocations - kill the old, resume the paused, move the retrying
version_added: 1.1.0
description:
  - Recovers the stuck invocations of a Restate server - the paused ones, and the backing-off ones retried at least
    O(max_retries) times - in one task, with each invocation counted once under what was done to it. This is the work
    of the P(restate.admin.stuck_invocations#role) role (playbook C(restate.admin.recover_stuck)).
  - With O(kill_older_than), stuck invocations created before it are killed first, and the kills are waited for.
  - The paused invocations that were not killed are then resumed, on the deployment they are pinned to or on
    O(deployment). They are listed before anything else is paused, so the move below never takes them, nor they it.
  - Backing-off invocations past O(max_retries) retry by themselves; when O(deployment) names another deployment
    (V(latest) or an id), they are paused and resumed on it ("moved"), so they retry at once on the fixed code.
    Otherwise they are only reported. What was paused to be moved but could not be resumed there is resumed on its
    own deployment (put back), so that nothing this task paused stays paused; the task then fails after its report.
  - Only an invocation pinned to a deployment can move to a named one (the server refuses the others), so with an id
    only pinned invocations are paused and resumed; the paused others are left as they were and counted in
    RV(summary.left_paused_unpinned), the backing-off others listed in RV(summary.retrying). V(latest) takes every one.
  - Each step is the work of M(restate.admin.restate_invocation) (the same reading, planning, calls and read-back).
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  max_retries:
    description: A backing-off invocation is stuck once it has been retried this many times (0 or more).
    type: int
    default: 10
  deployment:
    description:
      - Where to resume - V(keep) (the deployment each is pinned to; the backing-off ones are only reported),
        V(latest), or a deployment id (V(dp_...)) the server knows, checked before anything is killed or paused.
    type: str
    default: keep
  kill_older_than:
    description:
      - Kill the stuck invocations created before this - an age (V(12h), V(7d), V(1d12h)) or an RFC 3339 time with a
        time zone (V(2026-01-31T12:00:00Z)). Not given or empty - kill nothing.
    type: str
  limit:
    description: At most this many invocations per step (kill, resume, move), oldest first; and the length of
      RV(summary.retrying) at most. 1 or more.
    type: int
    default: 1000
  wait_timeout:
    description: Seconds to wait for the kills and for the pauses of a move to settle.
    type: int
    default: 120
  concurrency:
    description: Requests in flight at once, 1 or more.
    type: int
    default: 32
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
    details:
      - Reads the invocations and reports the counts the real run would report, without sending any call that
        changes something.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(filters) is the scope the recovery looks at (service, handler, target, deployment, created_before, ...); empty or
    not given, every service. The recovery always selects only stuck invocations, so O(filters.status),
    O(filters.min_retry_count) and O(filters.pinned) are its own to decide and are refused.
seealso:
  - module: restate.admin.restate_invocation
  - module: restate.admin.restate_invocation_info
"""

EXAMPLES = r"""
- name: Resume the paused invocations of Checkout on their own deployment, kill what is stuck for over two days
  restate.admin.restate_invocation_recovery:
    filters:
      service: Checkout
    kill_older_than: 2d
  register: recovery

- name: Say what was done
  ansible.builtin.debug:
    msg: "{{ recovery.msg }}"

- name: After a fix, move what keeps retrying (5 retries or more) to the latest deployment; a dry run first
  restate.admin.restate_invocation_recovery:
    max_retries: 5
    deployment: latest
  check_mode: true
"""

RETURN = r"""
msg:
  description:
    - One sentence on what was done (C(Would ...) in check mode, with the numbers the real run reports); when a step
      failed, what failed first.
  returned: always
  type: str
  sample: "Killed 3, resumed 12 paused, moved 4 retrying to latest, 2 still retrying (retry count 10 or more)."
summary:
  description: The counts; each invocation is counted once, under what was done to it.
  returned: when the recovery ran (not for a refused option)
  type: dict
  contains:
    killed:
      description: Stuck invocations killed (created before O(kill_older_than)).
      type: int
    resumed:
      description: Invocations paused before the task, resumed.
      type: int
    resume_pending:
      description: Resumes the server accepted but had not applied when read back.
      type: int
    resume_failed:
      description: Paused invocations that could not be resumed (they stay paused, as they were).
      type: int
    moved_to_deployment:
      description: Backing-off invocations paused and resumed on O(deployment).
      type: int
    move_failed:
      description: Invocations that could not be moved (pause not settled, or the resume on O(deployment) refused).
      type: int
    move_errors:
      description: The messages of those failures.
      type: list
      elements: str
    put_back:
      description: Invocations paused for a move that could not happen, resumed on their own deployment.
      type: int
    left_paused_unpinned:
      description: With a deployment id, paused invocations not pinned to a deployment, left paused (the server cannot
        move them to a named deployment).
      type: int
    still_retrying:
      description: Backing-off invocations retried at least O(max_retries) times that this task did not act on - the
        length of RV(summary.retrying), read after every change.
      type: int
    retrying:
      description: Those invocations (id, target, retry_count, pinned_deployment_id, last_failure), newest first.
      type: list
      elements: dict
    retrying_truncated:
      description: Whether O(limit) cut RV(summary.retrying).
      type: bool
    check_mode:
      description: Whether these are the predictions of a check-mode run.
      type: bool
  sample: {killed: 3, resumed: 12, resume_pending: 0, resume_failed: 0, moved_to_deployment: 4, move_failed: 0,
           move_errors: [], put_back: 0, left_paused_unpinned: 0, still_retrying: 2, retrying_truncated: false,
           retrying: [{id: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz, target: Checkout/pay, retry_count: 14,
                       pinned_deployment_id: dp_13puM96j0yI6Wh3QjADKUsp, last_failure: "[500] payment gateway down"}],
           check_mode: false}
"""


from ansible_collections.restate.admin.plugins.module_utils._recovery_task import SPEC, run
from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
