#!/usr/bin/python
# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restate_invocation
short_description: Cancel, kill, pause, resume, purge or restart Restate invocations
version_added: 1.0.0
description:
  - Drives one invocation (O(id)), a list (O(ids)) or a server-side selection (O(filters)) of invocations of a
    Restate server to a O(state), through the server's Admin API.
  - Reads the current state of every invocation first (one C(POST /query) for all of them), acts only where the
    state must change, and reports per invocation what it found, what it did and what it found afterwards.
    An invocation already in the wanted state is left alone and reported unchanged.
  - Acts on thousands of invocations in one task, 1,000 per request where the server takes them in batches
    (O(batch_calls)), else O(concurrency) requests at a time over a few kept-alive connections. One invocation's
    failure does not stop the others; the task fails at the end if any failed, and the
    result lists every invocation.
author:
  - restate.admin maintainers (!UNKNOWN)
options:
  id:
    description: One invocation id (V(inv_...)).
    type: str
  ids:
    description: A list of invocation ids.
    type: list
    elements: str
  state:
    description:
      - The state to bring the invocations to.
      - V(cancelled) asks the invocation to stop at its next await point, where its handler can run compensation
        (C(PATCH /invocations/{id}/cancel)). The request is asynchronous; use O(wait) or O(kill_after) to see it
        through. Done already for completed invocations and for those whose journal already holds a cancel
        request.
      - V(killed) stops it at once, without compensation. Done already for completed invocations.
      - V(paused) pauses a running or retrying (backing-off) invocation. Done already when paused.
      - V(resumed) resumes a paused invocation, optionally on another O(deployment). Done already for every
        other invocation that has not completed.
      - V(purged) removes a completed invocation (result and journal) from the server. Done already when the
        server does not know the id.
      - V(journal_purged) removes the journal of a completed invocation and keeps its result. Done already when
        its journal is empty; a O(filters) selection selects only completed invocations that still have a journal,
        so a run with O(limit) goes on with the next ones.
      - V(restarted) starts a completed invocation again, as a new invocation with the same input (restart as
        new). Done already when a restart of it exists; RV(invocations[].new_invocation_id) then names it, so
        running the task again never creates a second one.
      - Scheduled and pending (inboxed) invocations that are cancelled or killed are removed by the server; an id
        the server does not know is therefore already cancelled or killed, and reported with C(after=absent) and
        a warning rather than as a failure, so re-runs stay idempotent.
      - Where the state cannot be reached (purging a running invocation, resuming a completed one, pausing a
        suspended or unknown one, restarting a workflow), a named invocation fails with a message that says its
        status and what to do; a O(filters) selection selects only the invocations the state applies to.
    type: str
    required: true
    choices: [cancelled, killed, paused, resumed, purged, journal_purged, restarted]
  limit:
    description:
      - With O(filters), act on at most this many invocations (oldest first). RV(summary.matched) reports how many
        matched in all, and a warning says when some were left for a later run.
    type: int
    default: 1000
  max_matched:
    description:
      - With O(filters) (or O(all_invocations)), a count guard for unattended runs - when more invocations match the
        selection than this, the task fails before any change and says how many match. One C(COUNT) query over the
        same selection the task acts on (only the invocations O(state) applies to).
      - Unlike O(limit), which acts on the first ones and leaves the rest for a later run, this refuses the whole run,
        for jobs where an unexpectedly large selection means a wrong filter.
    type: int
    version_added: 1.1.0
  wait:
    description:
      - Wait until every invocation acted on has reached its end state, checking all of them with one query per
        round.
      - V(cancelled) and V(killed) end when the invocation has completed (or was removed); V(paused) when it is
        paused; V(resumed) when it is no longer paused or has run again (a handler that keeps failing pauses
        again).
      - Invocations that do not get there within O(wait_timeout) are reported as failed.
      - Has no effect for V(purged), V(journal_purged) and V(restarted), which finish with the call.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait) or O(kill_after).
    type: int
    default: 120
  kill_after:
    description:
      - With O(state=cancelled), kill the invocations that have not completed this many seconds after the cancel
        was sent. A paused handler, or one that always fails before an await point, never observes a cancel.
      - Implies O(wait).
    type: float
  deployment:
    description:
      - With O(state=resumed), the deployment to resume on, V(latest) for the newest one, or V(keep) for the one
        it is pinned to (the server's default).
      - Resuming on another deployment risks non-determinism errors if the handler code changed.
      - Only an invocation pinned to a deployment can be resumed on a named one (V(dp_...)); the server refuses one
        that is not pinned yet (HTTP 409), which runs its next attempt on the latest deployment anyway. Select
        them with O(filters.pinned). V(latest) and V(keep) work for both.
      - A deployment id is C(dp_) followed by letters and digits (the C(id) column of C(sys_deployment)); anything
        else but V(latest) and V(keep) is refused before any request.
    type: str
  from_entry:
    description:
      - With O(state=restarted), keep the journal up to this entry index and re-run from there, instead of from
        the start.
    type: int
  concurrency:
    description:
      - How many requests are in flight at once when invocations are acted on one request each.
      - Calls that are safe to repeat go out HTTP/1.1-pipelined, 4 per connection over up to 128 connections;
        restart-as-new, and calls through an HTTP proxy from the environment, take one thread per request (at
        most 64).
    type: int
    default: 512
  batch_calls:
    description:
      - Act on up to 1,000 invocations per request through the batch route of the Admin API
        (C(POST /internal/invocations_batch_operations/<action>), which Restate 1.6 and 1.7 have and their web UI
        uses), for cancel, kill, pause, resume (without O(deployment)), purge and journal purge of two or more
        invocations. The server does the same per invocation as for one C(PATCH /invocations/{id}/<action>) call.
      - What a batch reports as not done is sent again one C(PATCH) per invocation, so every failure is reported
        with the server's own status and message. A server without the route (its answer is 404 or 405, or not
        the batch answer) is driven one C(PATCH) per invocation, as with V(false).
      - V(false) sends one C(PATCH) per invocation, only the operations the server's OpenAPI documents. With
        batches, a task on 10,000 invocations ran 1.3 to 1.4 times as fast and cost the server about half the CPU
        (see the collection's docs/benchmarks.md).
    type: bool
    default: true
  report:
    description:
      - Which invocations RV(invocations) lists. RV(summary) counts all of them either way (changes also per
        service), and the diff shows every change.
      - V(all) lists every invocation inspected.
      - V(failed) lists only those that could not be brought to the state, so that a task on thousands of
        invocations returns a small result. With O(filters), the selection is then read with one query whose answer
        is parsed as it arrives, and acted on page by page (10,000 invocations a page), keeping only the counts and
        the failures, so memory does not grow with the number of invocations; the next page is read while one is
        acted on, its calls follow those of the page before without a pause, and each part of the answer must
        arrive within O(timeout). When O(limit) takes all that match,
        pages go in invocation id order, so that the calls of a page meet few of the server's partitions (a large
        purge takes the server about half the time); when it takes only part, oldest first. Invocations that come to
        match after the query was answered are left for the next run (if the answer breaks off, it is asked again
        after the last invocation read, which may take in some); O(wait) and O(kill_after) apply to each page before
        the next is acted on, each with the whole O(wait_timeout).
        (Ansible copies a task's result several times on its way to the callbacks and to C(register), about 0.1 s
        per 10,000 listed invocations; see the collection's docs/benchmarks.md).
    type: str
    choices: [all, failed]
    default: all
  all_invocations:
    description:
      - V(true) lets an empty O(filters) selection (no filter given a value, for instance every value templated to
        nothing) act on every invocation of the server, up to O(limit); without O(filters), V(true) selects every
        invocation too.
      - Without it, an empty selection is refused before any call is made, because every state of this module changes
        or removes invocations; the same rule as the P(restate.admin.bulk_cancel#role) role's.
      - Cannot be combined with O(id) or O(ids).
    type: bool
  audit_log:
    description:
      - A file on the host that runs the module (the controller, when the task runs there) to append a record of the
        task to, as JSON Lines, written as the task goes so that a task that fails half-way leaves what it did.
      - "A C(start) line with the time (UTC), the module, whether in check mode, and the task's options (never
        O(token), and only the names of O(headers)); an C(accepted) line as each call's answer arrives, with the
        C(action) and the C(ids) the server accepted (what it was asked to do, before the task reads back what it
        did); one C(invocation) line per invocation changed (or that would be, in check mode) or failed, with
        C(id), C(target), C(before), C(after), C(changed) and, where set, C(pending), C(note), C(error),
        C(new_invocation_id); an C(end) line with RV(summary), C(failed) and the message of a failure."
      - A task stopped by SIGTERM (what AWX's cancel sends) or SIGINT writes its C(end) line with C(interrupted)
        and, as C(unconfirmed), the invocations whose calls had no answer yet, then ends as the signal would.
      - Unchanged invocations are only counted, in the C(end) line. The file is created with mode C(0600) and
        appended to; the task fails before any call when it cannot be opened.
    type: path
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
      - Reads the state and reports exactly which invocations would change and which call each would get, without
        sending any call that changes something. RV(invocations[].after) is then the status expected afterwards.
      - A cancel of a paused invocation is predicted to stay pending - Restate 1.7 runs the invocation again to
        deliver it, and one whose handler fails before an await point pauses again with the cancel pending; one that
        reaches an await point ends cancelled, which the real run then counts as done.
  diff_mode:
    support: full
    details:
      - "One C(id: status) line per changed invocation, before and after, and they always differ: a journal purge
        shows the journal's size before and after, a restart names the new invocation, and a request the server has
        not applied yet says C((<action> requested, pending))."
  platform:
    platforms: posix
notes:
  - Exactly one of O(id), O(ids) and O(filters) is required (or O(all_invocations=true)). An empty O(filters)
    selection is refused unless O(all_invocations=true).
  - RV(invocations[].after) is what the server shows. Cancel, kill, pause and resume take effect asynchronously;
    without O(wait) the task reads the invocations back while the server applies the calls (a page of a
    O(report=failed) selection while the calls of the page after next are sent, the last one for up to a second), and
    an invocation not in the wanted state by then is reported with that status and RV(invocations[].pending), which
    says why and what to do (O(wait), O(kill_after), O(state=killed)). The server answers a purge or a journal purge
    once it is done, and a restart with the new id. In check mode, RV(invocations[].after) is the prediction.
  - A request already pending from an earlier run is detected for O(state=cancelled) (the journal holds the cancel);
    the re-run changes nothing. A pause sent to an invocation inside a long step leaves no trace on the server
    (Restate 1.7 shows no journal entry or event, and no change of C(modified_at)) until its attempt ends, so a re-run sends
    it again (the server takes the repeat as one) and reports it pending again.
  - A call refused because the invocation is already in the wanted state (purge 404, kill or cancel 409 already
    completed) is unchanged, with a note that another run or client got there first, so that the counts of
    concurrent runs add up. Only when the client repeated calls after a lost answer in this task (it warns about
    each retry) is such an invocation counted as changed, with a note, since the first call may have done it.
  - Restate 1.6 accepts a cancel of an invocation suspended on an awakeable or a workflow promise and drops it, and
    takes a cancel of a paused invocation as a resume and drops the cancel; such items say so in C(pending)
    (C(cancel dropped)), and the task warns with the server version, the count and the remedy (O(state=killed)).
seealso:
  - module: restate.admin.restate_invocation_info
"""

EXAMPLES = r"""
- name: Cancel one invocation and wait until it has completed
  restate.admin.restate_invocation:
    id: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    state: cancelled
    wait: true

- name: Kill a list of invocations
  restate.admin.restate_invocation:
    ids: "{{ stuck_ids }}"
    state: killed

- name: Cancel every suspended, paused or backing-off Checkout invocation older than an hour, killing those that ignore it
  restate.admin.restate_invocation:
    filters:
      service: Checkout
      status: [suspended, paused, backing-off]
      created_before: 1h
    state: cancelled
    kill_after: 30
    wait_timeout: 300
    limit: 10000

- name: Resume paused invocations on the latest deployment
  restate.admin.restate_invocation:
    filters:
      status: paused
    state: resumed
    deployment: latest

- name: Dry run of a retention cleanup - which completed invocations would be purged
  restate.admin.restate_invocation:
    filters:
      completed_before: 7d
    state: purged
    limit: 50000
  check_mode: true
  register: would_purge

- name: Retention cleanup of up to 100,000 invocations, returning counts and failures only
  restate.admin.restate_invocation:
    filters:
      completed_before: 30d
    state: purged
    limit: 100000
    report: failed
  register: cleanup

- name: Say what the cleanup purged, per service
  ansible.builtin.debug:
    msg: "Purged {{ cleanup.summary.changed }}: {{ cleanup.summary.changed_by_service }}"

- name: Restart a failed invocation as a new one (re-running the task does not restart it again)
  restate.admin.restate_invocation:
    id: inv_19h5ZhSVORkU04GKmYBOchcPSbdJ1gbf8N
    state: restarted
  register: restarted

- name: Show the new invocation id
  ansible.builtin.debug:
    msg: "{{ restarted.invocations[0].new_invocation_id }}"
"""

RETURN = r"""
msg:
  description:
    - One sentence for a log or a mail - what was done (C(Would ...) in check mode) of how many, per service, then
      how many are still pending, needed no change, failed and were left beyond O(limit); each invocation is counted
      once, with the same words in check mode as in the real run. On failure, the failures first, then this sentence.
  returned: always
  type: str
  sample: "Cancelled 47 of 50 matching invocations (Checkout: 47); 3 still pending (cancel accepted, not applied yet:
    see each invocation's pending)."
invocations:
  description:
    - One entry per invocation inspected, in the order of O(ids); for O(filters) oldest first, or with
      O(report=failed) in the order of its pages (see O(report)).
    - With O(report=failed), only the invocations that failed.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Invocation id.
      type: str
      sample: inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz
    target:
      description: C(Service/handler) or C(Object/key/handler); V(null) when the server does not know the id.
      type: str
      sample: Checkout/process
    before:
      description: Status before the task, or V(absent) when the server does not know the id.
      type: str
      sample: suspended
    after:
      description:
        - Status after the task as read back from the server, or V(absent); in check mode, the status the call is
          expected to lead to. For V(purged), V(journal_purged) and V(restarted), the server's answer that the call
          is done (V(absent) or V(completed)).
      type: str
      sample: completed
    pending:
      description:
        - The server accepted the call but the invocation is not in the wanted state as read back (or, for
          V(cancelled), a cancel sent earlier is still pending) - why, and what to do about it (O(wait), O(kill_after),
          O(state=killed); for a resume that failed again, fix the handler or resume on another deployment).
      type: str
      returned: when the state is not reached yet
      sample: "cancel requested, not applied yet: the invocation is still paused; a paused invocation sees it only
        once it runs again (one that fails before an await point pauses again). Use wait: true to wait for it,
        kill_after to kill it if it does not stop in time, or state: killed"
    changed:
      description:
        - Whether the Admin API call of O(state) was sent (would be sent, in check mode) for this invocation
          (C(cancel) for V(cancelled), C(kill), C(pause), C(resume), C(purge), C(purge-journal) for V(journal_purged),
          C(restart-as-new) for V(restarted)).
      type: bool
    killed_after_cancel:
      description: Whether O(kill_after) killed it because the cancel had no effect in time.
      type: bool
      returned: when O(kill_after) killed it
    note:
      description: Why nothing needed to be done, or what the server answered, when that is not obvious.
      type: str
      returned: when there is something to say
      sample: a cancel is already pending
    error:
      description: Why the invocation could not be brought to the state.
      type: str
      returned: when it failed
      sample: "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz is running, not completed; only completed invocations can be purged."
    new_invocation_id:
      description: With O(state=restarted), the id of the new invocation (created now or by an earlier run).
      type: str
      returned: when O(state=restarted) and a restart exists (not in check mode for a new restart)
      sample: inv_1cRWGxA7011C26SIV7VpYSQNwIiuEyalTb
summary:
  description: Counts over every invocation inspected, whichever of them RV(invocations) lists (O(report)).
  returned: always
  type: dict
  contains:
    matched:
      description: Invocations named, or matching O(filters) (even beyond O(limit)).
      type: int
    changed:
      description:
        - Invocations the call was sent to (would be sent to, in check mode), whether or not the server has applied it
          yet; see RV(summary.done) and RV(summary.pending).
      type: int
    unchanged:
      description: Invocations no call was sent to (already in the state, a cancel already pending, or failed before).
      type: int
    failed:
      description: Invocations that could not be brought to the state.
      type: int
    missing:
      description: Named invocations the server does not know.
      type: int
    pending:
      description:
        - Invocations with RV(invocations[].pending) set and no error, listed or not - the call was accepted (or an
          earlier run's cancel is still pending) but the state is not reached. Never counted in RV(summary.done).
      type: int
    done:
      description:
        - Invocations this task brought to the state (would bring, in check mode) - changed, not pending, not
          failed. RV(summary.done) + RV(summary.pending) + RV(summary.already) + RV(summary.failed) +
          RV(summary.left) = RV(summary.matched).
      type: int
      version_added: 1.1.0
    already:
      description: Invocations that needed no change (already in the state) and have nothing pending.
      type: int
      version_added: 1.1.0
    left:
      description: Invocations that matched O(filters) beyond O(limit), left for a later run.
      type: int
      version_added: 1.1.0
    check_mode:
      description: Whether these are the predictions of a check-mode run.
      type: bool
      version_added: 1.1.0
    changed_by_service:
      description:
        - How many invocations changed (would change, in check mode) per target service, virtual object or
          workflow name.
        - With O(report=failed), the numbers a report of a bulk run needs without every invocation listed.
      type: dict
    killed_after_cancel:
      description: How many invocations O(kill_after) killed because their cancel had no effect in time.
      type: int
      returned: when O(kill_after) is set
  sample: {matched: 1200, changed: 1150, unchanged: 50, failed: 0, missing: 0, pending: 0, done: 1150, already: 50,
           left: 0, check_mode: false, changed_by_service: {Checkout: 1000, Billing: 150}}
"""


from ansible_collections.restate.admin.plugins.module_utils._invocation_task import SPEC, run
from ansible_collections.restate.admin.plugins.module_utils._restate_module import RestateModule


def main():
    run(RestateModule(SPEC))


if __name__ == "__main__":
    main()
