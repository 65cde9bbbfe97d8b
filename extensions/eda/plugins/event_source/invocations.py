# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""restate.admin.invocations: an Event-Driven Ansible event source for a Restate server (see DOCUMENTATION)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
short_description: Events for Restate invocations that get stuck and deployments that drain.
description:
  - Watches a Restate server through its Admin API's SQL (C(POST /query)) and puts one event on the queue for each
    invocation that newly meets a condition, and for each deployment that became drained.
  - "Conditions (O(conditions)): V(backing_off), backing-off with at least O(min_retry_count) retries; V(paused);
    V(running_too_long), running (its current attempt) for longer than O(running_longer_than);
    V(suspended_too_long), suspended for longer than O(suspended_longer_than); V(outdated_deployment), not completed
    and pinned to a deployment that is no longer the latest of its service; V(drained_deployment), a deployment
    that is the latest of no service and has no invocation that is not completed pinned to it (a candidate for
    C(restate.admin.deployment_cleanup))."
  - An invocation is reported once each time it enters a condition, not at every poll. The first poll reports what
    already meets a condition. Each condition is read with one SQL query per poll with C(WHERE) and C(LIMIT), paged
    by the time the invocation entered the condition; what the source keeps between polls does not grow with the
    number of invocations (a cursor per condition, the latest deployment of each service, and at most O(memory)
    remembered ids). An invocation is read once it has been in its condition for 2 seconds by the server's clock
    (the durations too are measured by the server's clock), so that none that the server's partitions show a moment
    late is passed over.
  - A backing-off invocation changes at every retry; it is remembered by id and reported once while remembered (at
    most O(memory) ids, the oldest forgotten first), and reported anew after it was reported in another condition
    (paused, for example). V(outdated_deployment) reports an invocation once per change
    of its service's latest deployment; V(drained_deployment) a deployment once while remembered.
  - "Each event is a dictionary under the key C(restate): C(condition), C(kind) (V(invocation), V(deployment) or
    V(server)), C(admin_url), and for an invocation C(id), C(target), C(service), C(handler), C(key), C(status),
    C(retry_count), C(last_failure), C(last_failure_error_code), C(deployment) (pinned, or of its last attempt),
    C(pinned), C(created_at), C(modified_at), C(last_start_at) (and C(latest_deployment) for
    V(outdated_deployment)); for a deployment C(id), C(endpoint), C(created_at), C(services)."
  - When the server cannot be reached (or refuses a call), one event with C(condition=server_unreachable) and the
    error (which names the option to check, never a secret) is put on the queue per outage, and the source keeps
    polling; the first poll that succeeds puts C(condition=server_reachable) with C(unreachable_for) (seconds) and
    goes on from where it was, reporting what entered a condition meanwhile.
  - The token and header values are never part of an event or a log line. Give the token through the environment
    (E(RESTATE_AUTH_TOKEN), as a credential of the EDA controller injects it) rather than in the rulebook.
  - The Admin API calls are blocking HTTP calls run in a thread, one poll at a time.
  - Needs the Python library C(requests) in the decision environment.
options:
  admin_url:
    description:
      - Base URL of the Restate Admin API (the admin port, 9070 by default), or a list of the nodes of a cluster
        (or one comma-separated string), as the modules take it.
      - If not set, the environment variable E(RESTATE_ADMIN_URL) is used, else V(http://localhost:9070).
    type: list
    elements: str
  token:
    description:
      - Bearer token for the Admin API; if not set, the environment variable E(RESTATE_AUTH_TOKEN) is used.
      - Checked as the modules check it (no line break, space or control character inside it, not starting with
        C(Bearer)); never logged nor part of an event.
    type: str
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file (or directory of hashed certificates) of the certificate authority of the server.
    type: path
  client_cert:
    description: PEM client certificate for mutual TLS.
    type: path
  client_key:
    description: PEM private key of O(client_cert).
    type: path
  timeout:
    description: Seconds to wait for each HTTP answer, from V(0) (forever) to V(86400).
    type: float
    default: 30
  retries:
    description:
      - How often a call that failed in a way that is safe to repeat is repeated within a poll (half a second of
        back-off, doubling), from V(0) to V(10). When they run out the poll reports C(server_unreachable).
    type: int
    default: 4
  headers:
    description: Extra HTTP headers sent with every call; their values are secrets, like the token.
    type: dict
  conditions:
    description: The conditions to watch.
    type: list
    elements: str
    choices: [backing_off, paused, running_too_long, suspended_too_long, outdated_deployment, drained_deployment]
    default: [backing_off, paused, running_too_long, suspended_too_long, outdated_deployment, drained_deployment]
  filters:
    description:
      - Only invocations that match these filters, as in C(restate.admin.restate_invocation_info) (C(service),
        C(handler), C(key), C(target), C(deployment), C(invoked_by), C(idempotency_key), C(pinned), C(zombie),
        C(min_retry_count), and the times, an age counting from each poll). C(status) is refused, as the conditions
        choose the statuses.
      - For V(drained_deployment), only C(service) applies (deployments that served it).
    type: dict
    default: {}
  min_retry_count:
    description: A backing-off invocation is reported once it was retried at least this many times.
    type: int
    default: 10
  running_longer_than:
    description: Age of the current attempt after which a running invocation is reported (V(90s), V(15m), V(2h)).
    type: str
    default: 1h
  suspended_longer_than:
    description: Time in the suspended status after which an invocation is reported (V(12h), V(1d)).
    type: str
    default: 1d
  interval:
    description: Seconds between the end of a poll and the start of the next, from V(0.1) to V(86400).
    type: float
    default: 30
  max_events:
    description:
      - At most this many events per poll (server events aside), from V(1) to V(10000). What is left is reported
        by the next polls, the conditions taking turns to go first.
    type: int
    default: 100
  memory:
    description: How many reported backing-off invocations and drained deployments are remembered, 1 or more.
    type: int
    default: 10000
"""

EXAMPLES = r"""
- name: Recover stuck Restate invocations as they get stuck
  hosts: localhost
  sources:
    - restate.admin.invocations:
        admin_url: http://restate.example.com:9070  # the token: RESTATE_AUTH_TOKEN in the environment
        conditions: [paused, backing_off]
        min_retry_count: 20
        filters:
          service: Checkout
        interval: 30
  rules:
    - name: Resume a paused invocation
      condition: event.restate.condition == "paused"
      action:
        run_module:
          name: restate.admin.restate_invocation
          module_args:
            id: "{{ event.restate.id }}"
            state: resumed
"""

import asyncio
import logging
import sys
from pathlib import Path

try:
    from ansible_collections.restate.admin.plugins.plugin_utils._event_watch import Watch, watch_options
except ImportError:
    # ansible-rulebook runs this file by its path: the collections directory it sits in may not be on sys.path.
    sys.path.append(str(Path(__file__).resolve().parents[7]))  # the directory holding ansible_collections
    from ansible_collections.restate.admin.plugins.plugin_utils._event_watch import Watch, watch_options

logger = logging.getLogger(__name__)


async def main(queue: asyncio.Queue, args: dict):
    """Poll every ``interval`` seconds and put each poll's events on ``queue``, until cancelled."""
    options = watch_options(args)  # an InputError (a ValueError) names the option; no secret in it
    watch = Watch(options, on_retry=logger.warning)
    try:
        while True:
            events = await asyncio.to_thread(watch.poll)
            for event in events:
                if event["restate"]["kind"] == "server":
                    (logger.warning if event["restate"]["condition"] == "server_unreachable" else logger.info)(
                        "restate.admin.invocations: %s", event["restate"].get("error") or
                        f"{event['restate']['condition']} at {event['restate']['admin_url']}")
                await queue.put(event)
            await asyncio.sleep(options["interval"])
    finally:
        watch.close()


if __name__ == "__main__":
    # A look at the events without ansible-rulebook: python invocations.py (RESTATE_ADMIN_URL, RESTATE_AUTH_TOKEN).
    class _PrintQueue:
        async def put(self, event):
            print(event)

    asyncio.run(main(_PrintQueue(), {"interval": 5}))
