# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What the event source ``restate.admin.invocations`` watches for, and how one poll finds what is new.

``watch_options(args)`` checks the event source's arguments (connection options as the modules take them); a
``Watch`` polls (blocking HTTP: the event source runs ``poll`` in a thread) and returns the events to put on the
queue. No Ansible imports: ansible-rulebook runs this without ansible-core's plugin loader.

Each invocation condition is read with one SQL query per poll, bounded by ``LIMIT`` and paged with a keyset
cursor over the time the invocation entered the condition (its *marker* column): a row already reported is behind
the cursor and is not read again, so a poll costs the same with ten or ten million invocations on the server, and
what the watch keeps is a cursor per condition plus a bounded memory (``memory`` entries) for the one condition
whose marker moves while the invocation stays in it (backing-off: every retry changes ``modified_at``).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from datetime import datetime, timezone

from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient
from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_connection
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    AGE_PART,
    AGE_PATTERN,
    AGE_UNITS,
    normalize_filters,
    sql_literal,
    where_conditions,
    where_sql,
)
from ansible_collections.restate.admin.plugins.module_utils._transport import DEFAULT_ADMIN_URL, RestateApiError

# What an invocation event carries (sys_invocation columns); the event renames a few (see invocation_event).
EVENT_COLUMNS = ("id", "target", "target_service_name", "target_handler_name", "target_service_key", "status",
                 "retry_count", "last_failure", "last_failure_error_code", "pinned_deployment_id",
                 "last_attempt_deployment_id", "created_at", "modified_at", "last_start_at")


class Condition:
    """An invocation condition: its SQL (``where(options)``) and the column that tells when an invocation
    entered it. ``moving``: the marker changes while the invocation stays in the condition, so what was reported is
    remembered by id instead."""

    def __init__(self, name, where, marker, moving=False):
        self.name = name
        self.where = where
        self.marker = marker
        self.moving = moving


# A row is read once it is this old by the server's clock: the partitions of a server write their rows
# independently, so one entered a condition a moment before another may show in SQL a moment after it; read too
# soon, the keyset cursor would have passed it. Ages are the server's too (now() in SQL), whatever the clock here.
SETTLE_SECONDS = 2


def _settled(column, seconds=0):
    return f"{column} <= now() - INTERVAL '{max(int(seconds), SETTLE_SECONDS)} seconds'"


INVOCATION_CONDITIONS = {condition.name: condition for condition in (
    Condition("backing_off", lambda options: ["status = 'backing-off'",
                                              f"retry_count >= {int(options['min_retry_count'])}",
                                              _settled("modified_at")], "modified_at", moving=True),
    Condition("paused", lambda options: ["status = 'paused'", _settled("modified_at")], "modified_at"),
    Condition("running_too_long", lambda options: [
        "status = 'running'", _settled("last_start_at", options["running_longer_than"])], "last_start_at"),
    Condition("suspended_too_long", lambda options: [
        "status = 'suspended'", _settled("modified_at", options["suspended_longer_than"])], "modified_at"),
)}
CONDITIONS = tuple(INVOCATION_CONDITIONS) + ("outdated_deployment", "drained_deployment")
# Conditions about the server itself, each reported once per change.
SERVER_UNREACHABLE = "server_unreachable"
SERVER_REACHABLE = "server_reachable"

DEFAULTS = {"interval": 30.0, "max_events": 100, "min_retry_count": 10, "running_longer_than": "1h",
            "suspended_longer_than": "1d", "memory": 10000}
MAX_EVENTS = 10000
CONNECTION_DEFAULTS = {"admin_url": None, "token": None, "validate_certs": True, "ca_path": None,
                       "client_cert": None, "client_key": None, "timeout": 30.0, "retries": 4, "headers": None}
KNOWN_ARGS = set(CONNECTION_DEFAULTS) | set(DEFAULTS) | {"conditions", "filters"}


def _duration(value, option) -> int:
    text = str(value).strip()
    if not AGE_PATTERN.match(text):
        raise InputError(f"{option}: {text[:80]!r} is not a duration; use e.g. 90s, 15m, 2h, 1d12h "
                         "(units s, m, h, d, w)")
    return sum(int(n) * AGE_UNITS[unit] for n, unit in AGE_PART.findall(text))


def _whole(value, option, low, high) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit() or not low <= int(value) <= high:
        raise InputError(f"{option}: expected a whole number from {low} to {high}, got {str(value)[:40]!r}")
    return int(value)


def _seconds(value, option, low) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= 86400:
        raise InputError(f"{option}: expected a number of seconds from {low:g} to 86400, got {str(value)[:40]!r}")
    return number


def watch_options(args, environ=None) -> dict:
    """The event source's arguments checked (InputError naming the option), with defaults, the environment's
    RESTATE_ADMIN_URL and RESTATE_AUTH_TOKEN, and the connection options as the client takes them."""
    environ = os.environ if environ is None else environ
    args = dict(args or {})
    unknown = sorted(str(key) for key in args if key not in KNOWN_ARGS)
    if unknown:
        raise InputError(f"unknown argument(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_ARGS))}")
    options = dict(CONNECTION_DEFAULTS, **DEFAULTS)
    options.update({key: value for key, value in args.items() if value is not None})
    if options["admin_url"] is None:
        options["admin_url"] = environ.get("RESTATE_ADMIN_URL") or DEFAULT_ADMIN_URL
    if isinstance(options["admin_url"], str):
        options["admin_url"] = [url for url in options["admin_url"].split(",") if url.strip()] or [""]
    if options["token"] is None and environ.get("RESTATE_AUTH_TOKEN"):
        options["token"] = environ["RESTATE_AUTH_TOKEN"]
    if not isinstance(options["validate_certs"], bool):
        raise InputError(f"validate_certs: expected true or false, got {str(options['validate_certs'])[:40]!r}")
    check_connection(options)
    conditions = options.get("conditions", list(CONDITIONS))
    if isinstance(conditions, str):
        conditions = [part.strip() for part in conditions.split(",")]
    if not isinstance(conditions, list) or not conditions or any(c not in CONDITIONS for c in conditions):
        raise InputError(f"conditions: expected a list of {', '.join(CONDITIONS)}, got {str(conditions)[:120]!r}")
    options["conditions"] = [c for c in CONDITIONS if c in conditions]
    filters = options.get("filters") or {}
    if isinstance(filters, dict) and "status" in filters:
        raise InputError("filters.status: the conditions choose the statuses; remove filters.status and list the "
                         "conditions wanted in conditions")
    normalize_filters(filters)  # refused here, at the start, rather than at the first poll
    options["filters"] = filters
    options["interval"] = _seconds(options["interval"], "interval", 0.1)
    options["max_events"] = _whole(options["max_events"], "max_events", 1, MAX_EVENTS)
    options["memory"] = _whole(options["memory"], "memory", 1, 10 ** 7)
    options["min_retry_count"] = _whole(options["min_retry_count"], "min_retry_count", 0, 10 ** 9)
    for option in ("running_longer_than", "suspended_longer_than"):
        options[option] = _duration(options[option], option)
    return options


def make_client(options, on_retry=None) -> AdminClient:
    return AdminClient(admin_url=options["admin_url"], token=options["token"],
                       validate_certs=options["validate_certs"], ca_path=options["ca_path"],
                       client_cert=options["client_cert"], client_key=options["client_key"],
                       timeout=options["timeout"] or None, headers=options["headers"], retries=options["retries"],
                       pool_size=1, on_retry=on_retry)


def invocation_event(condition: str, row: dict, admin_url: str, extra=None) -> dict:
    """The event for ``row`` (a sys_invocation row): under the key ``restate``, with a ``condition`` name."""
    event = {"condition": condition, "kind": "invocation", "admin_url": admin_url, "id": row.get("id"),
             "target": row.get("target"), "service": row.get("target_service_name"),
             "handler": row.get("target_handler_name"), "key": row.get("target_service_key"),
             "status": row.get("status"), "retry_count": row.get("retry_count"),
             "last_failure": row.get("last_failure"), "last_failure_error_code": row.get("last_failure_error_code"),
             # Like the modules' deployment filter: one not yet pinned runs on the deployment of its last attempt.
             "deployment": row.get("pinned_deployment_id") or row.get("last_attempt_deployment_id"),
             "pinned": row.get("pinned_deployment_id") is not None,
             "created_at": row.get("created_at"), "modified_at": row.get("modified_at"),
             "last_start_at": row.get("last_start_at")}
    event.update(extra or {})
    return {"restate": event}


class Memory:
    """The keys reported lately, the oldest forgotten first once there are ``size``."""

    def __init__(self, size: int):
        self.size = size
        self._keys = OrderedDict()

    def __contains__(self, key):
        return key in self._keys

    def __len__(self):
        return len(self._keys)

    def discard(self, key):
        self._keys.pop(key, None)

    def add(self, key):
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)


class Watch:
    """One watched server. ``poll()`` returns the events of one poll (at most ``max_events``, server events aside).

    Kept between polls: a keyset cursor per invocation condition, per service the latest deployment seen and a
    cursor through the invocations pinned to an older one, and a bounded memory: constant size whatever the number
    of invocations.
    """

    def __init__(self, options: dict, client=None, clock=time.monotonic, on_retry=None):
        self.options = options
        self.client = client or make_client(options, on_retry)
        self.clock = clock
        self.cursors = {}  # condition -> (marker, id) of the last row read
        self.latest = {}  # service -> [latest deployment id, id of the last outdated invocation read]
        self.memory = Memory(options["memory"])
        self.unreachable_since = None
        self.compatible = False
        self.turn = 0  # which condition goes first: each in turn, so a busy one cannot starve the others

    @property
    def admin_url(self) -> str:
        return self.client.admin_url

    def close(self):
        self.client.close()

    def poll(self) -> list:
        """The events of one poll. A failed call gives one ``server_unreachable`` event per outage (the error says
        what failed, never a secret) and the poll ends; the first poll that succeeds after one gives
        ``server_reachable``, and the cursors go on from where they were."""
        events = []
        try:
            if not self.compatible:
                self.client.check_compatible()
                self.compatible = True
            conditions = self.options["conditions"]
            self.turn = (self.turn + 1) % len(conditions)
            budget = self.options["max_events"]
            for name in conditions[self.turn:] + conditions[:self.turn]:
                if budget <= 0:
                    break
                found = self._poll_condition(name, budget)
                budget -= len(found)
                events.extend(found)
            if self.unreachable_since is not None:  # back only once a whole poll went through
                events.insert(0, {"restate": {"condition": SERVER_REACHABLE, "kind": "server",
                                              "admin_url": self.admin_url,
                                              "unreachable_for": round(self.clock() - self.unreachable_since, 1)}})
                self.unreachable_since = None
        except RestateApiError as error:
            self.client.transport.close()  # a new connection next time: the server may have restarted
            self.compatible = False
            if self.unreachable_since is None:
                self.unreachable_since = self.clock()
                events.append({"restate": {"condition": SERVER_UNREACHABLE, "kind": "server",
                                           "admin_url": self.admin_url, "error": str(error)}})
        return events

    def _poll_condition(self, name, budget) -> list:
        if name == "outdated_deployment":
            return self._poll_outdated(budget)
        if name == "drained_deployment":
            return self._poll_drained(budget)
        return self._poll_invocations(INVOCATION_CONDITIONS[name], budget)

    def _filters(self, now) -> list:
        return where_conditions(normalize_filters(self.options["filters"], now))

    def _poll_invocations(self, condition: Condition, budget) -> list:
        now = datetime.now(timezone.utc)
        marker = condition.marker
        conditions = condition.where(self.options) + self._filters(now) + [f"{marker} IS NOT NULL"]
        cursor = self.cursors.get(condition.name)
        if cursor:
            after = f"TIMESTAMP {sql_literal(cursor[0])}"
            conditions.append(f"({marker} > {after} OR ({marker} = {after} AND id > {sql_literal(cursor[1])}))")
        columns = EVENT_COLUMNS if marker in EVENT_COLUMNS else EVENT_COLUMNS + (marker,)
        rows = self.client.query(f"SELECT {', '.join(columns)} FROM sys_invocation{where_sql(conditions)} "
                                 f"ORDER BY {marker} ASC, id ASC LIMIT {int(budget)}", columns=columns)
        events = []
        for row in rows:
            self.cursors[condition.name] = (row[marker], row["id"])
            if condition.moving:
                key = (condition.name, row["id"])
                if key in self.memory:
                    continue
                self.memory.add(key)
            else:
                # It left backing-off (paused, say): once back, it is backing-off anew.
                self.memory.discard(("backing_off", row["id"]))
            events.append(invocation_event(condition.name, row, self.admin_url))
        return events

    def _poll_outdated(self, budget) -> list:
        """Invocations not completed pinned to a deployment that is no longer their service's latest: read once per
        change of a service's latest deployment, through the ids in order."""
        services = self.client.query("SELECT name, deployment_id FROM sys_service", columns=("name", "deployment_id"))
        current = {row["name"]: row["deployment_id"] for row in services if row["deployment_id"]}
        for service in list(self.latest):
            if service not in current:
                del self.latest[service]
        per_service = []
        for service, latest in sorted(current.items()):
            if self.latest.get(service, [None])[0] != latest:
                self.latest[service] = [latest, None]
            after = self.latest[service][1]
            per_service.append(f"(target_service_name = {sql_literal(service)} AND pinned_deployment_id <> "
                               f"{sql_literal(latest)}" + (f" AND id > {sql_literal(after)}" if after else "") + ")")
        if not per_service:
            return []
        now = datetime.now(timezone.utc)
        conditions = ["status <> 'completed'", "pinned_deployment_id IS NOT NULL",
                      "(" + " OR ".join(per_service) + ")"] + self._filters(now)
        rows = self.client.query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM sys_invocation{where_sql(conditions)} "
                                 f"ORDER BY id ASC LIMIT {int(budget)}", columns=EVENT_COLUMNS)
        events = []
        for row in rows:
            # The rows come in id order: each service's cursor ends at its last row of this page.
            self.latest[row["target_service_name"]][1] = row["id"]
            events.append(invocation_event("outdated_deployment", row, self.admin_url,
                                           {"latest_deployment": current[row["target_service_name"]]}))
        return events

    def _poll_drained(self, budget) -> list:
        """Deployments that are the latest of no service and have no invocation that is not completed pinned to
        them (as restate_deployment judges a drain); each reported once while remembered."""
        rows = self.client.query(
            "SELECT id, endpoint, created_at, services FROM sys_deployment WHERE id NOT IN "
            "(SELECT deployment_id FROM sys_service WHERE deployment_id IS NOT NULL) AND id NOT IN "
            "(SELECT pinned_deployment_id FROM sys_invocation WHERE status <> 'completed' AND "
            f"pinned_deployment_id IS NOT NULL) ORDER BY created_at ASC, id ASC LIMIT {MAX_EVENTS}",
            columns=("id", "endpoint", "created_at", "services"))
        service = self.options["filters"].get("service")
        events = []
        for row in rows:
            key = ("drained_deployment", row["id"])
            if key in self.memory or (service and service not in (row["services"] or [])):
                continue
            self.memory.add(key)
            events.append({"restate": {"condition": "drained_deployment", "kind": "deployment",
                                       "admin_url": self.admin_url, "id": row["id"], "endpoint": row["endpoint"],
                                       "created_at": row["created_at"], "services": row["services"] or []}})
            if len(events) >= budget:
                break
        return events
