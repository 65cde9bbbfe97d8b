"""Many invocations made fast on a real server, for `make load` and the benchmarks: a fan-out handler of the SDK
test service makes them from inside the service, far faster than one ingress call each."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness.server import wait_until

# The handlers Tester/fan_out calls, and the status each settles in.
FANNED_OUT = {"ok": "completed", "sleep": "suspended"}


def invocations_of(server, handler, condition="") -> int:
    """How many `Tester/<handler>` invocations the server has (``condition``: more SQL, from AND). Asked again for a
    while if refused: a server just started answers "expecting a partition store" until its partitions run."""
    sql = ("SELECT COUNT(*) AS n FROM sys_invocation WHERE target_service_name = 'Tester' AND "
           f"target_handler_name = '{handler}'{condition}")

    def answer():
        try:
            return server.query(sql)
        except AssertionError:
            return None

    return wait_until(answer, timeout=60, interval=0.5, what="an answer to a count")[0]["n"]


def ok_count(server, condition="") -> int:
    return invocations_of(server, "ok", condition)


def make_by_fan_out(server, count, tag, handler="ok", per_call=1000, backlog=10_000) -> float:
    """``count`` more `Tester/ok` invocations, completed (or `Tester/sleep` ones, suspended for two hours), made by
    `Tester/fan_out` (each call sends ``per_call`` one-way calls from inside the service), with at most ``backlog`` of
    them not settled yet (300,000 at once: the server opened a connection to the service for each until it ran out of
    file descriptors); returns the seconds until all of them settled. The fan_out invocations are purged after: only
    the ones made are left. One ingress call per invocation made about 10,000 a minute here; this, what the server
    and the service can run."""
    settled = f" AND status = '{FANNED_OUT[handler]}'"
    # Those of an earlier round may be left, ended otherwise (cancelled suspended ones): counted apart.
    before, settled_before = invocations_of(server, handler), invocations_of(server, handler, settled)
    started = time.monotonic()
    orders = [{"count": min(per_call, count - start), "tag": f"{tag}-{start}"} for start in range(0, count, per_call)]
    if handler == "sleep":
        for order in orders:
            order["sleep"] = 7200
    step = max(1, backlog // per_call // 2)
    fan_outs = []
    sent = [0]

    def backlog_small():
        return sent[0] - (invocations_of(server, handler, settled) - settled_before) <= backlog // 2

    with ThreadPoolExecutor(step) as pool:
        for first in range(0, len(orders), step):
            chunk = orders[first:first + step]
            wait_until(backlog_small, timeout=600, interval=1, what=f"the backlog of Tester/{handler} to shrink")
            fan_outs += pool.map(lambda order: server.send("Tester/fan_out", order), chunk)
            sent[0] += sum(order["count"] for order in chunk)

    def all_settled():
        return invocations_of(server, handler, settled) >= settled_before + count

    wait_until(all_settled, timeout=max(600, count / 50), interval=2,
               what=f"{count:,} {FANNED_OUT[handler]} Tester/{handler}")
    seconds = time.monotonic() - started
    assert invocations_of(server, handler) == before + count, "fan_out made exactly the invocations asked for"
    server.wait_statuses(fan_outs, "completed", timeout=60)
    with ThreadPoolExecutor(16) as pool:
        purges = list(pool.map(lambda i: server.http.patch(f"{server.admin_url}/invocations/{i}/purge", timeout=30),
                               fan_outs))
    assert {response.status_code for response in purges} == {200}, "the fan_out invocations purged"
    return seconds
