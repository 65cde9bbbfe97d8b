"""Every module's work against an Admin API answering random shapes, sizes, content types and statuses on every
route: each run must end as a task ends (a result or a clean failure, never a Python exception), in bounded time and
memory, and report no change when the server accepted no write."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile_answers import VERSION, Server

from ansible_collections.restate.admin.plugins.module_utils import (
    _deployment_info_task,
    _deployment_task,
    _invocation_info_task,
    _invocation_task,
    _object_state_info_task,
    _object_state_task,
    _recovery_task,
    _service_info_task,
    _service_task,
)
from ansible_collections.restate.admin.plugins.module_utils._restate_module import with_connection
from ansible_collections.restate.admin.plugins.plugin_utils._controller_task import ControllerTask, TaskDone

IDS = ["inv_1gbO4O3R4kKt0AUtCr5TtqigaNEEA53DU6", "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ"]
KEYS = ["rows", "services", "deployments", "id", "name", "revision", "status", "count", "n", "message", "succeeded",
        "failed", "invocation_id", "new_invocation_id", "version", "uri", "ty", "deployment_id", "public", "info",
        "pinned_deployment_id", "target", "created_at", "paths", "min_admin_api_version", "max_admin_api_version",
        "handlers", "service_key", "key", "value", "value_utf8", "retry_count", "last_failure", "restarted_from"]
ROUTES = ["GET /version", "POST /query", "GET /services", "GET /services/", "PATCH /services/", "POST /services/",
          "GET /deployments",
          "GET /deployments/", "POST /deployments", "DELETE /deployments/", "PATCH /invocations/",
          "DELETE /invocations/", "POST /internal/", "GET /openapi"]
TASKS = [
    (_invocation_task, {"ids": IDS, "state": "killed", "wait": True, "wait_timeout": 1}),
    (_invocation_task, {"ids": IDS, "state": "restarted"}),
    (_invocation_task, {"filters": {"service": "Greeter"}, "state": "purged", "report": "failed"}),
    (_invocation_info_task, {}),
    (_service_task, {"name": "Greeter", "public": False}),
    (_service_info_task, {}),
    (_deployment_task, {"uri": "http://127.0.0.1:9080"}),
    (_deployment_task, {"id": "dp_11y34lPUiDu9cYkItxmdc2Z", "state": "absent"}),
    (_deployment_info_task, {}),
    (_object_state_task, {"service": "Counter", "key": "k", "state": {"count": 1}}),
    (_object_state_task, {"service": "Counter", "key": "k", "state": "absent"}),
    (_object_state_info_task, {"service": "Counter", "key": "k"}),
    (_object_state_info_task, {"service": "Counter"}),
    (_recovery_task, {"filters": {"service": "Greeter"}, "kill_older_than": "1h", "wait_timeout": 1}),
]
# Whether a route changes something on the server: POST /query only reads.
WRITES = {route for route in ROUTES if not route.startswith(("GET ", "POST /query"))}
# What one run may hold at most, answers and all: the largest hostile answer here is 60 KB.
MEMORY_BOUND = 32 * 2**20

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(IDS + ["dp_11y34lPUiDu9cYkItxmdc2Z", "Greeter", "completed", "running"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25)
bodies = st.one_of(json_values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40),
                   st.just(b""), st.integers(1, 3).map(lambda n: b"[" * (n * 20000)))
random_answers = st.tuples(st.sampled_from([200, 200, 200, 201, 202, 204, 301, 307, 400, 404, 409, 500, 503]), bodies,
                           st.sampled_from(["application/json", "text/html", "application/octet-stream"]))
versions = st.one_of(st.just((200, json.dumps(VERSION).encode(), "application/json")), random_answers)

# Answers of the right shape with random content, so that runs also get past the shape checks to a result.
DEPLOYMENT = "dp_11y34lPUiDu9cYkItxmdc2Z"
row = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(IDS), "invocation_id": st.sampled_from(IDS), "restarted_from": st.sampled_from(IDS),
    "status": st.sampled_from(["pending", "scheduled", "ready", "running", "suspended", "backing-off", "paused",
                               "completed"]),
    "target": st.just("Greeter/greet"), "target_service_name": st.just("Greeter"), "retry_count": st.integers(0, 20),
    "n": st.integers(0, 3), "count": st.integers(0, 3), "entries": st.integers(0, 3), "bytes": st.integers(0, 99),
    "pinned_deployment_id": st.sampled_from([DEPLOYMENT, None]), "last_attempt_deployment_id": st.just(DEPLOYMENT),
    "last_failure": st.text(max_size=12), "created_at": st.just("2026-12-01T00:00:00.000Z"),
    "modified_at": st.just("2026-12-01T00:00:01.000Z"), "service_key": st.just("k"), "key": st.just("count"),
    "value": st.sampled_from(["31", "", "7b7d", "zz"])})
service = st.fixed_dictionaries({
    "name": st.sampled_from(["Greeter", "Counter"]), "ty": st.sampled_from(["Service", "VirtualObject", "Workflow"]),
    "revision": st.integers(1, 3), "public": st.booleans(), "deployment_id": st.just(DEPLOYMENT),
    "handlers": st.just([])})
deployment = st.fixed_dictionaries({
    "id": st.just(DEPLOYMENT), "uri": st.sampled_from(["http://127.0.0.1:9080/", "http://127.0.0.1:9081/"]),
    "created_at": st.just("2026-12-01T00:00:00.000Z"), "services": st.lists(service, max_size=2)})
batch = st.builds(lambda failed: {"succeeded": [i for i in IDS if i not in failed],
                                  "failed": [{"invocation_id": i, "error": "no"} for i in failed]},
                  st.sets(st.sampled_from(IDS)))
SHAPES = {
    "POST /query": st.fixed_dictionaries({"rows": st.lists(row, max_size=3)}),
    "GET /services": st.fixed_dictionaries({"services": st.lists(service, max_size=2)}),
    "GET /services/": service, "PATCH /services/": service, "POST /services/": st.just({}),
    "GET /deployments": st.fixed_dictionaries({"deployments": st.lists(deployment, max_size=2)}),
    "GET /deployments/": deployment, "POST /deployments": deployment, "PATCH /invocations/": st.one_of(
        st.just({}), st.fixed_dictionaries({"new_invocation_id": st.sampled_from(IDS)})),
    "POST /internal/": batch,
}


def answers_of(route):
    """What the fake server answers on ``route`` in one example: of the right shape, or anything at all."""
    shaped = SHAPES.get(route, st.just({}))
    right = st.tuples(st.sampled_from([200, 200, 201, 202]), shaped.map(lambda v: json.dumps(v).encode()),
                      st.just("application/json"))
    return st.one_of(right, random_answers)


class Hostile:
    """The answers of one example: one per route, the server's GET /version mostly as a 1.7 server gives it."""

    def __init__(self):
        self.routes = {}
        self.accepted_writes = 0

    def __call__(self, method, path, unused_body):
        route = next((r for r in ROUTES if f"{method} {path}" == r or
                      (r.endswith("/") and f"{method} {path}".startswith(r))), None)
        status, body, kind = self.routes.get(route, (404, b"", "text/plain"))
        if route in WRITES and status < 300:
            self.accepted_writes += 1
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n"
        if 300 <= status < 400:
            head += "location: http://127.0.0.1:1/\r\n"
        return head.encode() + b"\r\n" + body


@pytest.fixture(scope="module")
def hostile():
    answer = Hostile()
    server = Server(answer)
    yield answer, server
    server.close()


class Task(ControllerTask):
    def __init__(self, module, url, options):
        spec = with_connection(module.SPEC)["argument_spec"]
        params = {name: option.get("default") for name, option in spec.items()}
        params.update(options, admin_url=[url], timeout=2.0, retries=0)
        super().__init__(params, check_mode=False, diff=True)


# FUZZ_EXAMPLES raises the count for a longer search (1,500 passed once).
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(task=st.sampled_from(TASKS), version=versions, routes=st.fixed_dictionaries({r: answers_of(r) for r in ROUTES[1:]}))
def test_every_module_ends_cleanly_whatever_the_server_answers(hostile, monkeypatch, task, version, routes):
    answer, server = hostile
    answer.routes = dict(routes, **{"GET /version": version})
    answer.accepted_writes = 0
    # the read-back of a state change waits up to 15 s for a server that shows the old state: not this server's
    monkeypatch.setattr(_object_state_task, "APPLY_WAIT", 0.5)
    module, options = task
    runner = Task(module, server.url, json.loads(json.dumps(options)))
    started = time.monotonic()
    result = None
    tracemalloc.start()
    try:
        module.run(runner)
    except TaskDone as done:
        result = done.result
    except Exception:  # pylint: disable=broad-exception-caught
        pytest.fail(f"{module.__name__} raised instead of failing cleanly:\n{traceback.format_exc()}")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        runner.close()
    assert result is not None, f"{module.__name__} returned without a result"
    assert time.monotonic() - started < 20
    assert peak < MEMORY_BOUND, f"{module.__name__} held {peak} bytes"
    if not answer.accepted_writes:
        assert not result.get("changed"), f"{module.__name__} reported a change no write made: {result}"
    if result.get("failed"):
        assert isinstance(result["msg"], str) and len(result["msg"]) < 5000
        assert "Traceback" not in result["msg"]
    assert len(json.dumps(result, default=str)) < 1_000_000
