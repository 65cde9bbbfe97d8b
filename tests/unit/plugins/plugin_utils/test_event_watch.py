"""The event source's decisions without a server: its arguments, one event per entry into a condition, the poll's
budget, the keyset paging, and the server going away and coming back (integration: test_eda_source.py)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError
from ansible_collections.restate.admin.plugins.plugin_utils._event_watch import (
    CONDITIONS,
    Memory,
    Watch,
    watch_options,
)

SECRET = "s3cr3t-TOKEN-value"
URL = "http://fake:9070"


class ScriptedClient:
    """Answers each query with the rows the test gives for the first pattern it matches; records the SQL."""

    admin_url = URL

    def __init__(self, answers=None):
        self.answers = answers or {}  # regex -> rows, or a callable(sql) -> rows
        self.sql = []
        self.down = False
        self.closed = 0
        self.transport = self

    def close(self):
        self.closed += 1

    version = None

    def check_compatible(self):
        """As the AdminClient's: the server's answer kept from the first call on."""
        if self.version is None:
            if self.down:
                raise RestateApiError("GET", "/version", admin_url=URL, reason="connection", message="refused")
            self.version = {"version": "1.7.12"}
        return self.version

    def query(self, sql, columns=None):
        if self.down:
            raise RestateApiError("POST", "/query", admin_url=URL, reason="connection", message="refused")
        self.sql.append(sql)
        for pattern, rows in self.answers.items():
            if re.search(pattern, sql):
                rows = rows(sql) if callable(rows) else rows
                return [dict({c: None for c in columns or ()}, **row) for row in rows]
        return []


def watch(client, **args):
    return Watch(watch_options(dict({"admin_url": URL}, **args), environ={}), client=client)


def row(invocation_id, **values):
    return dict({"id": invocation_id, "status": "paused", "target_service_name": "Tester",
                 "modified_at": "2026-01-01T00:00:00.000Z"}, **values)


def conditions_of(events):
    return [(e["restate"]["condition"], e["restate"].get("id")) for e in events]


# -- arguments ------------------------------------------------------------------------------------------------------
def test_defaults_and_the_environment_fill_what_is_not_given():
    options = watch_options({}, environ={"RESTATE_ADMIN_URL": "http://a:9070,http://b:9070",
                                         "RESTATE_AUTH_TOKEN": f" {SECRET} "})
    assert options["admin_url"] == ["http://a:9070", "http://b:9070"] and options["token"] == SECRET
    assert options["conditions"] == list(CONDITIONS)
    assert (options["interval"], options["max_events"], options["min_retry_count"]) == (30.0, 100, 10)
    assert (options["running_longer_than"], options["suspended_longer_than"]) == (3600, 86400)
    assert watch_options({"token": "given-token"}, environ={"RESTATE_AUTH_TOKEN": SECRET})["token"] == "given-token"
    assert watch_options({}, environ={})["admin_url"] == ["http://localhost:9070"]


@pytest.mark.parametrize("args, named", [
    ({"interval": 0}, "interval:"),
    ({"interval": "soon"}, "interval:"),
    ({"max_events": 0}, "max_events:"),
    ({"max_events": True}, "max_events:"),
    ({"memory": -1}, "memory:"),
    ({"min_retry_count": "ten"}, "min_retry_count:"),
    ({"running_longer_than": "1 hour"}, "running_longer_than:"),
    ({"suspended_longer_than": ""}, "suspended_longer_than:"),
    ({"conditions": ["stuck"]}, "conditions:"),
    ({"conditions": []}, "conditions:"),
    ({"filters": {"status": ["paused"]}}, "filters.status:"),
    ({"filters": {"colour": "red"}}, "filters: unknown key"),
    ({"filters": {"created_after": "yesterday"}}, "filters.created_after:"),
    ({"admin_url": "fake:9070"}, "admin_url:"),
    ({"validate_certs": "maybe"}, "validate_certs:"),
    ({"retries": 99}, "retries:"),
    ({"polling": 5}, "unknown argument(s) polling"),
    ({"token": "Bearer " + SECRET}, "token:"),
    ({"token": SECRET + "\n" + SECRET}, "token:"),
    ({"headers": {"X-Key": SECRET + "\r\nX-Other: 1"}}, "headers.X-Key:"),
])
def test_bad_arguments_are_refused_naming_the_option_and_never_the_secret(args, named):
    with pytest.raises(InputError) as refused:
        watch_options(dict({"admin_url": URL}, **args), environ={})
    assert named in str(refused.value)
    assert SECRET not in str(refused.value)


def test_conditions_may_be_a_comma_separated_string_and_keep_their_own_order():
    assert watch_options({"conditions": "paused, backing_off"}, environ={})["conditions"] == ["backing_off", "paused"]


# -- one event per entry --------------------------------------------------------------------------------------------
def test_a_paused_invocation_is_reported_once_and_the_next_query_reads_after_it():
    client = ScriptedClient({r"status = 'paused'": lambda sql: [] if "inv_1" in sql else [row("inv_1")]})
    source = watch(client, conditions=["paused"])
    assert conditions_of(source.poll()) == [("paused", "inv_1")]
    assert source.poll() == []
    last = client.sql[-1]
    assert "modified_at > TIMESTAMP '2026-01-01T00:00:00.000Z'" in last and "id > 'inv_1'" in last
    assert "ORDER BY modified_at ASC, id ASC LIMIT 100" in last


def test_a_backing_off_invocation_is_reported_once_while_it_keeps_retrying():
    retries = iter(range(1, 100))

    def answer(sql):
        attempt = next(retries)
        return [row("inv_1", status="backing-off", retry_count=attempt, modified_at=f"2026-01-01T00:00:{attempt:02d}Z")]
    client = ScriptedClient({r"status = 'backing-off'": answer})
    source = watch(client, conditions=["backing_off"], min_retry_count=1)
    events = [e for unused in range(5) for e in source.poll()]
    assert conditions_of(events) == [("backing_off", "inv_1")]
    assert "retry_count >= 1" in client.sql[0]


def test_the_memory_forgets_the_oldest_first():
    memory = Memory(2)
    for key in ("a", "b", "c"):
        memory.add(key)
    assert "a" not in memory and "b" in memory and "c" in memory and len(memory) == 2


def test_time_conditions_compare_with_the_age_and_filters_are_added():
    client = ScriptedClient()
    source = watch(client, conditions=["running_too_long", "suspended_too_long"], running_longer_than="15m",
                   filters={"service": "Check'out"})
    source.poll()
    running = next(sql for sql in client.sql if "status = 'running'" in sql)
    assert "last_start_at <= now() - INTERVAL '900 seconds'" in running
    assert "target_service_name = 'Check''out'" in running
    suspended = next(sql for sql in client.sql if "status = 'suspended'" in sql)
    assert "modified_at <= now() - INTERVAL '86400 seconds'" in suspended


def test_a_row_is_read_once_settled_by_the_servers_clock():
    client = ScriptedClient()
    watch(client, conditions=["paused", "running_too_long"], running_longer_than="1s").poll()
    assert all("<= now() - INTERVAL '2 seconds'" in sql for sql in client.sql)


def test_a_backing_off_invocation_that_paused_and_backs_off_again_is_reported_again():
    state = {"status": "backing-off", "at": 1}

    def answer(sql):
        at = f"2026-01-01T00:00:{state['at']:02d}Z"
        if f"status = '{state['status']}'" not in sql or f"TIMESTAMP '{at}'" in sql:  # or behind the cursor
            return []
        return [row("inv_1", status=state["status"], modified_at=at)]
    client = ScriptedClient({r"status = '(backing-off|paused)'": answer})
    source = watch(client, conditions=["backing_off", "paused"], min_retry_count=1)
    events = source.poll() + source.poll()
    state.update(status="paused", at=2)
    events += source.poll() + source.poll()
    state.update(status="backing-off", at=3)
    events += source.poll() + source.poll()
    assert conditions_of(events) == [("backing_off", "inv_1"), ("paused", "inv_1"), ("backing_off", "inv_1")]


def test_the_budget_of_a_poll_is_shared_and_the_conditions_take_turns():
    many = [row(f"inv_{n}") for n in range(3)]
    client = ScriptedClient({r"status = 'paused'": lambda sql: many[:int(re.search(r"LIMIT (\d+)", sql).group(1))],
                             r"status = 'backing-off'": lambda sql: [
                                 row(f"inv_b{n}", status="backing-off") for n in
                                 range(int(re.search(r"LIMIT (\d+)", sql).group(1)))]})
    source = watch(client, conditions=["backing_off", "paused"], max_events=2)
    first, second = source.poll(), source.poll()
    assert len(first) == 2 and len(second) == 2
    assert {e["restate"]["condition"] for e in first} != {e["restate"]["condition"] for e in second}


# -- deployments ----------------------------------------------------------------------------------------------------
def test_outdated_invocations_are_read_once_per_change_of_the_latest_deployment():
    latest = {"deployment": "dp_new0000000000"}

    def outdated(sql):
        return [] if "id > 'inv_1'" in sql else [row("inv_1", pinned_deployment_id="dp_old0000000000")]
    client = ScriptedClient({r"FROM sys_service": lambda sql: [{"name": "Tester",
                                                                "deployment_id": latest["deployment"]}],
                             r"pinned_deployment_id <>": outdated})
    source = watch(client, conditions=["outdated_deployment"])
    events = source.poll()
    assert conditions_of(events) == [("outdated_deployment", "inv_1")]
    assert events[0]["restate"]["latest_deployment"] == "dp_new0000000000"
    assert source.poll() == []
    latest["deployment"] = "dp_newer00000000"  # another release: the same invocation is outdated anew
    assert conditions_of(source.poll()) == [("outdated_deployment", "inv_1")]


def test_a_drained_deployment_is_reported_once_and_the_service_filter_applies():
    client = ScriptedClient({r"FROM sys_deployment": [
        {"id": "dp_a000000000000", "endpoint": "http://a/", "created_at": "t", "services": ["Tester"]},
        {"id": "dp_b000000000000", "endpoint": "http://b/", "created_at": "t", "services": ["Other"]}]})
    source = watch(client, conditions=["drained_deployment"], filters={"service": "Tester"})
    events = source.poll()
    assert conditions_of(events) == [("drained_deployment", "dp_a000000000000")]
    assert events[0]["restate"]["kind"] == "deployment" and events[0]["restate"]["services"] == ["Tester"]
    assert source.poll() == []


# -- the server going away -------------------------------------------------------------------------------------------
def test_an_outage_is_one_event_and_the_return_another_with_the_cursor_kept():
    clock = iter(range(0, 1000, 5))
    client = ScriptedClient({r"status = 'paused'": lambda sql: [] if "inv_1" in sql else [row("inv_1")]})
    source = Watch(watch_options({"admin_url": URL, "conditions": ["paused"], "token": SECRET}, environ={}),
                   client=client, clock=lambda: next(clock))
    assert conditions_of(source.poll()) == [("paused", "inv_1")]
    client.down = True
    down = source.poll()
    assert conditions_of(down) == [("server_unreachable", None)]
    assert "refused" in down[0]["restate"]["error"] and SECRET not in str(down)
    assert source.poll() == [] and source.poll() == []
    client.down = False
    back = source.poll()
    assert conditions_of(back) == [("server_reachable", None)] and back[0]["restate"]["unreachable_for"] > 0
    assert "id > 'inv_1'" in client.sql[-1]  # goes on after what it reported before the outage


# -- the documentation ----------------------------------------------------------------------------------------------
def test_the_documented_options_are_the_ones_taken_with_the_same_defaults_and_docs_eda_lists_them():
    import ast
    from pathlib import Path

    import yaml

    from ansible_collections.restate.admin.plugins.plugin_utils._event_watch import (
        CONNECTION_DEFAULTS,
        DEFAULTS,
        KNOWN_ARGS,
    )

    root = Path(__file__).resolve().parents[4]
    tree = ast.parse((root / "extensions/eda/plugins/event_source/invocations.py").read_text())
    strings = {node.targets[0].id: node.value.value for node in tree.body
               if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    options = yaml.safe_load(strings["DOCUMENTATION"])["options"]
    assert set(options) == KNOWN_ARGS
    for name, default in dict(CONNECTION_DEFAULTS, **DEFAULTS).items():
        if default is not None:
            assert options[name].get("default") == default, name
    assert options["conditions"]["choices"] == list(CONDITIONS) == options["conditions"]["default"]
    yaml.safe_load(strings["EXAMPLES"])
    page = (root / "docs/eda.md").read_text()
    assert all(f"| `{name}` |" in page for name in options)
    assert all(f"| `{name}` |" in page for name in CONDITIONS)
