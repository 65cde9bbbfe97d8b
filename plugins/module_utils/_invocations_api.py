# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The invocations area of the Admin API: ``PATCH /invocations/{id}/{action}`` for one invocation or thousands.

Thousands go through the batch route where the server has it, else pipelined (``_pipelined_http``), else one call
per thread; servers without the PATCH form of an operation get the older ``DELETE /invocations/{id}?mode=...``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.restate.admin.plugins.module_utils._bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils._transport import (
    RestateApiError,
    answer_json,
    server_message,
)

ACTIONS = ("cancel", "kill", "pause", "resume", "purge", "purge-journal", "restart-as-new")
# Servers before the PATCH operations had DELETE /invocations/{id}?mode=... for these (and still list it, deprecated).
DELETE_MODES = frozenset(("cancel", "kill", "purge"))
# restart-as-new creates a new invocation each time it is accepted: never repeat it blindly.
NON_IDEMPOTENT_ACTIONS = frozenset(("restart-as-new",))
# Bulk calls are pipelined this many per connection over concurrency / PIPELINE_WINDOW connections. The server
# answers a connection's pipelined requests one after the other, so connections bring the parallelism and the
# window hides the round trips (make bench measured 128 x 4 best on a local 1.7 server).
PIPELINE_WINDOW = 4
MAX_CONNECTIONS = 128
# Restate 1.6 and 1.7 also take these actions for many invocations in one call (the route their web UI uses; not in
# the OpenAPI): POST {"invocation_ids": [...]} answers {"succeeded": [...], "failed": [{"invocation_id", "error"}]}.
# On a local 1.7 server 10,000 purges took 0.34 s this way (server CPU 0.56 s), and 1.1 s (0.93 s) for the official
# CLI's one PATCH each.
BATCH_PATH = "/internal/invocations_batch_operations/"
BATCH_ACTIONS = frozenset(("cancel", "kill", "pause", "resume", "purge", "purge-journal"))
BATCH_SIZE = 1000  # the server's limit per call
BATCHES_IN_FLIGHT = 2


class InvocationsApi:
    """Invocation actions over one ``Transport``; ``server_version`` gives the server's GET /version answer."""

    def __init__(self, transport, server_version, batch_calls=True):
        self.transport = transport
        self.server_version = server_version
        self._openapi_paths = None
        self._batch_route = None if batch_calls else False  # None: not known yet whether the server has it
        # Told (action, ids) as each answer of actions() arrives with the ids the server accepted (the audit log).
        self.on_accepted = None
        self._lanes = None  # the batch calls' threads, made on the first batch call (see start_actions)
        self._lanes_lock = threading.Lock()

    def action(self, invocation_id: str, action: str, params=None, ok_statuses=()):
        """PATCH /invocations/{id}/{action}; returns the response (JSON body, if any, via .json())."""
        if action not in ACTIONS:
            raise ValueError(f"unknown invocation action {action!r}")
        try:
            return self.transport.request("PATCH", f"/invocations/{invocation_id}/{action}", params=params,
                                          idempotent=action not in NON_IDEMPOTENT_ACTIONS, ok_statuses=ok_statuses)
        except RestateApiError as error:
            if not _no_such_route(error) or self._operation_form(action) == "PATCH":
                raise
        return self.transport.request("DELETE", f"/invocations/{invocation_id}", params={"mode": action},
                                      ok_statuses=ok_statuses)

    def actions(self, invocation_ids, action: str, params=None, concurrency=256):
        """The same action for many invocations; returns one RestateApiError or None per id, in order.

        Where the server takes the action in batches (Restate 1.6+), 1,000 invocations go in one call and only
        what a batch could not do is sent again one PATCH per invocation, which gives each failure its own HTTP
        status and message. Otherwise, idempotent actions are pipelined over a few keep-alive connections (see
        pipelined_http); restart-as-new, and calls that must go through an HTTP proxy from the environment, take
        one thread per request over the session instead.
        """
        return self.start_actions(invocation_ids, action, params, concurrency)()

    def start_actions(self, invocation_ids, action: str, params=None, concurrency=256):
        """actions(), begun: returns the function that gives its errors once every call is answered.

        Batch calls queue on this client's BATCHES_IN_FLIGHT threads in the order they are started, so that a caller
        who starts its next batch before taking the answers of this one keeps the server as busy across the two as
        within one (without, the last call of each batch would go alone). Other calls are made before it returns.
        """
        invocation_ids = list(invocation_ids)
        if action not in ACTIONS:
            raise ValueError(f"unknown invocation action {action!r}")
        if not invocation_ids:
            return list
        if self.transport.stopped is not None:  # a redirect: the pipelined sender must not send either
            raise self.transport.stopped
        if action in NON_IDEMPOTENT_ACTIONS:
            made = self._threaded_actions(invocation_ids, action, params, concurrency)
            return lambda: made
        # Sent in id order: an id begins with its partition key, so calls in flight together meet few partitions,
        # which take them in larger batches (measured on a 1.7 server: 10,000 purges in creation order cost it 2.2
        # CPU-seconds, in id order 1.5). The answers go back in the caller's order.
        order = sorted(range(len(invocation_ids)), key=invocation_ids.__getitem__)
        ordered_ids = [invocation_ids[i] for i in order]
        if len(ordered_ids) > 1 and action in BATCH_ACTIONS and not params and self._batch_route is not False:
            answered = self._batched_actions(ordered_ids, action, concurrency)
        else:
            done = self._one_call_each(ordered_ids, action, params, concurrency)
            self._tell(action, [i for i, error in zip(ordered_ids, done) if error is None])

            def answered():
                return done

        def errors():
            in_order = [None] * len(invocation_ids)
            for position, error in zip(order, answered()):
                in_order[position] = error
            return in_order
        return errors

    def _batched_actions(self, invocation_ids, action, concurrency):
        """actions() through the batch route, begun: returns the function that gives the errors once the calls are
        answered; what the route did not do then goes one PATCH per invocation."""
        chunks = [invocation_ids[start:start + BATCH_SIZE] for start in range(0, len(invocation_ids), BATCH_SIZE)]
        # The first batches go together, without waiting to learn whether the server has the route: if it has not,
        # each of them, and every later one, comes back None and its ids go one by one.
        lanes = self._batch_lanes()
        calls = [lanes.submit(self._batch_call_told, chunk, action) for chunk in chunks]
        return lambda: self._batch_answers(invocation_ids, action, concurrency, chunks, calls)

    def _batch_lanes(self):
        with self._lanes_lock:
            if self._lanes is None:
                self._lanes = ThreadPoolExecutor(BATCHES_IN_FLIGHT, thread_name_prefix="restate-batch")
            return self._lanes

    def close(self):
        """Lets the batch calls' threads end once the calls started are made."""
        with self._lanes_lock:
            lanes, self._lanes = self._lanes, None
        if lanes is not None:
            lanes.shutdown(wait=True)

    def _batch_answers(self, invocation_ids, action, concurrency, chunks, calls):
        # A call that raised (its retries ran out) is that chunk's outcome: nothing is known of its ids.
        outcomes = [call.exception() or call.result() for call in calls]
        errors = []
        again = []  # positions of the ids to send one by one
        for chunk, outcome in zip(chunks, outcomes):
            for invocation_id in chunk:
                if isinstance(outcome, Exception):
                    errors.append(outcome)  # the batch call itself failed after its retries: nothing is known
                else:
                    errors.append(None)
                    if outcome is None or invocation_id in outcome:
                        again.append(len(errors) - 1)
        if again:
            for position, error in zip(again, self._one_call_each([invocation_ids[i] for i in again], action, None,
                                                                  concurrency)):
                errors[position] = error
            self._tell(action, [invocation_ids[i] for i in again if errors[i] is None])
        return errors

    def _batch_call_told(self, invocation_ids, action):
        failed = self._batch_call(invocation_ids, action)
        if failed is not None:
            self._tell(action, [i for i in invocation_ids if i not in failed])
        return failed

    def _tell(self, action, accepted_ids):
        if self.on_accepted is not None and accepted_ids:
            self.on_accepted(action, accepted_ids)

    def _batch_call(self, invocation_ids, action):
        """One batch call: the set of ids it reported as failed, or None when its answer cannot be used.

        A 404/405 or an answer of another shape means no usable batch route on this server: it is remembered, and
        this client goes on one PATCH per invocation.
        """
        if self._batch_route is False:
            return None  # found missing by another batch meanwhile
        path = BATCH_PATH + action
        try:
            response = self.transport.request("POST", path, json_body={"invocation_ids": invocation_ids})
            answer = response.json()
            failed = {entry["invocation_id"] for entry in answer["failed"]}
            if len(answer["succeeded"]) + len(failed) != len(invocation_ids):
                raise ValueError("an answer for other invocations")
        except RestateApiError as error:
            if error.status in (404, 405):
                self._batch_route = False
                return None
            if error.status is not None:
                return None  # refused as a batch (too large, a body it does not read...): one by one instead
            raise  # no answer after the retries
        except (ValueError, KeyError, TypeError, AttributeError):
            self._batch_route = False
            return None
        self._batch_route = True
        return failed

    def _one_call_each(self, invocation_ids, action, params, concurrency):
        """One PATCH per invocation: pipelined, or over the session's threads when an HTTP proxy from the
        environment must carry them (the pipelined sender speaks to the server directly)."""
        if self.transport.proxied():
            return self._threaded_actions(invocation_ids, action, params, concurrency)
        return self._pipelined_actions(invocation_ids, action, params, concurrency)

    def _pipelined_actions(self, invocation_ids, action, params, concurrency):
        """One PATCH per invocation, pipelined by the transport (which sends again what a node did not take); on a
        server without the PATCH form of ``action``, the older DELETE form."""
        paths = [f"/invocations/{invocation_id}/{action}" for invocation_id in invocation_ids]
        answers = self._pipelined("PATCH", paths, params, concurrency)
        errors = [self._answer_error(path, answer) for path, answer in zip(paths, answers)]
        no_route = [i for i, error in enumerate(errors) if _no_such_route(error)]
        if no_route and self._operation_form(action) == "DELETE":
            paths = [f"/invocations/{invocation_ids[i]}" for i in no_route]
            for i, path, answer in zip(no_route, paths, self._pipelined("DELETE", paths, {"mode": action},
                                                                        concurrency)):
                errors[i] = self._answer_error(path, answer, "DELETE")
        return errors

    def _pipelined(self, method, paths, params, concurrency):
        return self.transport.pipelined(method, paths, params,
                                        connections=min(MAX_CONNECTIONS, -(-concurrency // PIPELINE_WINDOW)),
                                        window=min(PIPELINE_WINDOW, concurrency))

    def _answer_error(self, path, answer, method="PATCH"):
        if answer.error is not None:
            error = RestateApiError(method, path, message=answer.error, admin_url=self.transport.admin_url,
                                    reason=answer.reason)
            if answer.reason == "redirect":
                self.transport.stopped = self.transport.stopped or error  # nothing more is sent
            return error
        if answer.status >= 400:
            return RestateApiError(method, path, status=answer.status, message=server_message(answer.body),
                                   admin_url=self.transport.admin_url, bodiless=not answer.body.strip())
        return None

    def _operation_form(self, action):
        """After a 404 without a body (no such route): how this server does ``action``, from its GET /openapi.

        "PATCH" when the server has the operation after all (the 404 stands), "DELETE" for the older
        DELETE /invocations/{id}?mode=... form; raises a clear error when it has neither.
        """
        if self._openapi_paths is None:
            try:
                paths = self.transport.request("GET", "/openapi").json().get("paths", {})
            except (RestateApiError, ValueError, AttributeError):
                paths = {}
            # Only what has the shape of an OpenAPI document counts: anything else lists no operation.
            self._openapi_paths = {path: operations for path, operations in paths.items()
                                   if isinstance(operations, dict)} if isinstance(paths, dict) else {}
        if "patch" in self._openapi_paths.get(f"/invocations/{{invocation_id}}/{action}", {}):
            return "PATCH"
        if action in DELETE_MODES and "delete" in self._openapi_paths.get("/invocations/{invocation_id}", {}):
            return "DELETE"
        version = (self.server_version() or {}).get("version", "of unknown version")
        raise RestateApiError("PATCH", f"/invocations/{{invocation_id}}/{action}", status=404,
                              admin_url=self.transport.admin_url,
                              message=(f"Restate server {version} does not have the {action} operation (its GET "
                                       "/openapi does not list it); it needs a newer Restate server"))

    def _threaded_actions(self, invocation_ids, action, params, concurrency):
        outcomes = run_each(lambda invocation_id: self.action(invocation_id, action, params=params),
                            invocation_ids, min(concurrency, 64))
        return [error for unused_id, unused_response, error in outcomes]


def _no_such_route(error) -> bool:
    """A 404 without a body comes from the router (no such operation); an unknown invocation's 404 says so."""
    return error is not None and error.status == 404 and error.bodiless


def new_invocation_id(response, invocation_id: str, admin_url: str) -> str:
    """The id of the invocation a restart-as-new made, from its answer; an UnexpectedAnswer (a ValueError) naming the
    call when the answer does not carry one."""
    path = f"/invocations/{invocation_id}/restart-as-new"
    answer = answer_json(response, "PATCH", path, admin_url, "an object with the 'new_invocation_id' it made",
                         lambda value: isinstance(value, dict) and isinstance(value.get("new_invocation_id"), str))
    return answer["new_invocation_id"]
