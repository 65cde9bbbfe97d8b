"""The event source restate.admin.invocations against a real server: its ``main`` run as ansible-rulebook runs it
(the file loaded by path, events put on a queue), on a server of this module's own (the lab: its deployments change).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import runpy
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.server import wait_until

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "extensions" / "eda" / "plugins" / "event_source" / "invocations.py"
# Matching invocations for the flat-memory test (EDA_WATCH_N=10000 for the figure in docs/eda.md).
WATCH_N = int(os.environ.get("EDA_WATCH_N", "2000"))


class ListQueue:
    """What main puts on the queue, in order (main only ever calls put)."""

    def __init__(self):
        self.events = []

    async def put(self, event):
        self.events.append(event)


class Source:
    """The plugin's main running in an event loop of its own thread, as ansible-rulebook runs a source."""

    def __init__(self, args):
        self.queue = ListQueue()
        self.loop = asyncio.new_event_loop()
        self.main = runpy.run_path(str(PLUGIN))["main"]
        self.task = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)
        self.thread.start()

    def _run(self, args):
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.main(self.queue, args))
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # pylint: disable=broad-exception-caught  # the test reads it
            self.error = error

    @property
    def events(self) -> list:
        return [event["restate"] for event in list(self.queue.events)]

    def of(self, ids) -> list:
        return [event for event in self.events if event.get("id") in set(ids)]

    def wait(self, predicate, timeout=30.0, what="events"):
        return wait_until(lambda: self.error is not None or predicate(self.events), timeout=timeout, what=what)

    def stop(self):
        wait_until(lambda: self.task is not None, timeout=10, what="the source to start")
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert self.error is None, self.error


@pytest.fixture
def source(lab):
    started = []

    def start(**args):
        started.append(Source(dict({"admin_url": lab.server.admin_url, "interval": 0.2}, **args)))
        return started[-1]
    yield start
    for running in started:
        running.stop()


def test_each_condition_reported_once_whatever_the_number_of_polls(lab, source):
    server = lab.server
    paused = [server.send("Tester/fail_pause", "again")]  # fails at every attempt: paused after each resume
    server.wait_statuses(paused, "paused")
    backing_off = server.make("backing-off")
    running = server.make("running")
    suspended = server.make("suspended")
    completed = server.make("completed-success")
    watched = source(min_retry_count=1, running_longer_than="2s", suspended_longer_than="2s",
                     conditions=["backing_off", "paused", "running_too_long", "suspended_too_long"])
    mine = paused + backing_off + running + suspended + completed
    watched.wait(lambda events: len(watched.of(mine)) >= 4, what="one event per condition")
    time.sleep(2)  # ten more polls: nothing more
    events = watched.of(mine)
    assert sorted((e["id"], e["condition"]) for e in events) == sorted(
        [(paused[0], "paused"), (backing_off[0], "backing_off"), (running[0], "running_too_long"),
         (suspended[0], "suspended_too_long")])
    by_condition = {e["condition"]: e for e in events}
    assert by_condition["backing_off"]["retry_count"] >= 1 and by_condition["backing_off"]["last_failure"]
    assert by_condition["paused"]["status"] == "paused" and by_condition["paused"]["service"] == "Tester"
    assert by_condition["running_too_long"]["target"].startswith("Tester/run_long")
    assert by_condition["suspended_too_long"]["deployment"] == server.deployment_id
    assert all(e["kind"] == "invocation" and e["admin_url"] == server.admin_url for e in events)

    # A second entry into a condition is a second event: resumed, the invocation fails again until it pauses anew.
    resumed = server.http.patch(f"{server.admin_url}/invocations/{paused[0]}/resume", timeout=30)
    assert resumed.status_code in (200, 202), resumed.text
    watched.wait(lambda events: Counter(e["condition"] for e in watched.of(paused))["paused"] == 2,
                 what="the second pause reported")
    # The short thresholds: a new suspended invocation too is reported once it has been suspended for 2 s, not before.
    later = server.make("suspended")
    time.sleep(1)
    assert not watched.of(later)
    watched.wait(lambda events: watched.of(later), what="the new suspended invocation")
    for invocation_id in paused + backing_off + running + suspended + later:
        lab.kill(invocation_id)


def test_filters_and_conditions_narrow_what_is_reported(lab, source):
    paused = lab.server.make("paused", 2)
    held = lab.server.make("pending")  # a Holder invocation waiting on a busy key: no condition
    watched = source(conditions=["paused", "suspended_too_long"], suspended_longer_than="1s",
                     filters={"service": "Tester", "handler": "pause_then_sleep"})
    watched.wait(lambda events: len(watched.of(paused)) == 2, what="both paused")
    time.sleep(1.5)
    assert {e["condition"] for e in watched.events} == {"paused"}  # the Holder key's suspended holder is filtered out
    assert not watched.of(held)
    for invocation_id in paused:
        lab.kill(invocation_id)


def test_memory_and_query_size_stay_flat_over_many_matching_invocations(lab):
    from ansible_collections.restate.admin.plugins.plugin_utils._event_watch import Watch, watch_options

    ids = set(lab.server.make("paused", WATCH_N))
    watch = Watch(watch_options({"admin_url": lab.server.admin_url, "conditions": ["paused", "backing_off"],
                                 "max_events": 100, "memory": 500, "min_retry_count": 0}))
    rows_read = []
    query = watch.client.query

    def counting_query(sql, columns=None):
        rows = query(sql, columns)
        rows_read.append(len(rows))
        return rows
    watch.client.query = counting_query
    seen = Counter()
    state_sizes = []
    started = time.monotonic()
    deadline = started + 120
    while time.monotonic() < deadline:
        events = watch.poll()
        seen.update(e["restate"]["id"] for e in events if e["restate"]["id"] in ids)
        state_sizes.append(len(pickle.dumps((watch.cursors, watch.latest, list(watch.memory._keys)))))
        if len(seen) == len(ids):
            break
        if not events:
            time.sleep(0.2)  # the newest are not settled yet (2 s by the server's clock)
    for unused_poll in range(3):  # and nothing more after that
        seen.update(e["restate"]["id"] for e in watch.poll() if e["restate"]["id"] in ids)
    took = time.monotonic() - started
    watch.close()
    assert set(seen) == ids and set(seen.values()) == {1}, "each paused invocation reported exactly once"
    assert max(rows_read) <= 100  # never more rows than max_events from one query
    assert max(state_sizes) < 2000, state_sizes  # a cursor per condition: the same size after 1 or N events
    print(f"\n{WATCH_N} paused: {len(rows_read)} queries, at most {max(rows_read)} rows each, state at most "
          f"{max(state_sizes)} bytes, {took:.1f}s (polling without pause)")
    lab.server.query("SELECT 1")
    for invocation_id in ids:
        lab.kill(invocation_id)


def test_server_restart_reported_once_and_recovered_without_duplicates(lab, source):
    server = lab.server
    before = server.make("paused")
    watched = source(conditions=["paused"], retries=0, timeout=2)
    watched.wait(lambda events: watched.of(before), what="the paused invocation")
    server.server.stop()
    watched.wait(lambda events: any(e["condition"] == "server_unreachable" for e in events), what="unreachable")
    time.sleep(1.5)  # more failed polls: still one event
    down = [e for e in watched.events if e["condition"] == "server_unreachable"]
    assert len(down) == 1 and "Cannot reach the Restate Admin API" in down[0]["error"]
    server.server.restart()
    server.wait_healthy()
    watched.wait(lambda events: any(e["condition"] == "server_reachable" for e in events), timeout=60,
                 what="reachable again")
    after = server.make("paused")
    watched.wait(lambda events: watched.of(after), what="an invocation paused after the restart")
    time.sleep(1)
    assert Counter(e["id"] for e in watched.of(before + after)) == {before[0]: 1, after[0]: 1}
    assert [e["condition"] for e in watched.events if e["kind"] == "server"] == [
        "server_unreachable", "server_reachable"]
    for invocation_id in before + after:
        lab.kill(invocation_id)


def test_outdated_then_drained_deployment(lab, source):
    server = lab.server
    old_id = lab.latest()["Tester"]
    pinned = server.send("Tester/sleep", 7200)
    server.wait_statuses([pinned], "suspended")
    lab.wait_pinned(pinned, old_id)
    watched = source(conditions=["outdated_deployment", "drained_deployment"])
    time.sleep(1)
    assert not watched.of([pinned])  # its deployment is still the latest
    new_id = lab.register(lab.version().url)
    watched.wait(lambda events: watched.of([pinned]), what="the outdated invocation")
    event = watched.of([pinned])[0]
    assert (event["condition"], event["deployment"], event["latest_deployment"]) == (
        "outdated_deployment", old_id, new_id)
    assert not watched.of([old_id])  # draining, not drained
    # Everything still pinned to the old deployment ends: it drains.
    for row in server.query("SELECT id FROM sys_invocation WHERE status <> 'completed' AND "
                            f"pinned_deployment_id = '{old_id}'"):
        lab.kill(row["id"])
    watched.wait(lambda events: watched.of([old_id]), what="the drained deployment")
    drained = watched.of([old_id])[0]
    assert drained["kind"] == "deployment" and "Tester" in drained["services"]
    time.sleep(1)
    assert len(watched.of([pinned])) == 1 and len(watched.of([old_id])) == 1
    assert not watched.of([new_id])


def test_bad_arguments_fail_the_source_naming_the_option_and_not_the_token(lab):
    main = runpy.run_path(str(PLUGIN))["main"]
    for args, expected in (
            ({"interval": "soon"}, "interval:"),
            ({"conditions": ["stuck"]}, "conditions:"),
            ({"filters": {"status": ["paused"]}}, "filters.status"),
            ({"running_longer_than": "an hour"}, "running_longer_than:"),
            ({"admin_url": "localhost:9070"}, "admin_url:"),
            ({"token": "sec ret-token"}, "token:")):
        with pytest.raises(ValueError) as raised:
            asyncio.run(main(ListQueue(), dict({"admin_url": lab.server.admin_url}, **args)))
        assert expected in str(raised.value) and "ret-token" not in str(raised.value)
