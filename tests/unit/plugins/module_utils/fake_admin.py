"""A fake Admin API for unit tests of the modules' run(): the system tables in SQLite, the invocation actions applied
as a real 1.7 server applies them (see /work/shared/restate-admin-api.md and _invocation_state.py's notes).

The rows are recorded from a real restate-server 1.7.12 (fixtures/sys_invocation.json); the SQL is the collection's
own, run by SQLite with DataFusion's ``TIMESTAMP '...'`` literals read as text (timestamps are stored in the same
text form, so they compare in time order).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ansible_collections.restate.admin.plugins.module_utils._selection import INVOCATION_COLUMNS
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JOURNAL_COLUMNS = ("id", "index", "entry_type", "name", "completed", "appended_at", "entry_lite_json")
TIME_COLUMNS = [c for c in INVOCATION_COLUMNS if c.endswith("_at")]
CANCEL_SIGNAL = ("Notification: Signal", '{"SignalIndex":1}')


ACCEPTED = "accepted"


def refused(status, message, invocation_id="inv_x", action="y"):
    return RestateApiError("PATCH", f"/invocations/{invocation_id}/{action}", status=status, message=message,
                           admin_url="http://fake:9070")


def timestamp(text):
    """The one text form of a timestamp, so that SQLite compares them in time order."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recorded_rows() -> dict:
    """{status: a sys_invocation row a real server gave for an invocation in that status}."""
    return json.loads((FIXTURES / "sys_invocation.json").read_text())


class Answer:
    """An answer as the transport gives one: status, headers, the body's bytes and json()."""

    def __init__(self, body=None):
        self.status_code = 200
        self._body = body
        self.headers = {"content-type": "application/json"}
        self.content = b"" if body is None else json.dumps(body).encode()

    def json(self):
        if self._body is None:
            raise ValueError("no body")
        return self._body


class FakeAdmin:
    """``query`` and ``invocations`` as the AdminClient has them; ``calls`` records every action sent."""

    def __init__(self):
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"CREATE TABLE sys_invocation ({', '.join(INVOCATION_COLUMNS)})")
        self.db.execute("CREATE TABLE sys_journal (" + ", ".join(f'"{c}"' for c in JOURNAL_COLUMNS) + ")")
        self.calls = []
        self.started = []  # the ids of each start_actions, in order
        self.queries = []
        self.invocations = self  # the area and the client are one object here
        self.admin_url = "http://fake-admin:9070"
        self.on_accepted = None
        # Actions whose first answer is lost: applied, then the transport repeats the call, which is refused as the
        # server refuses a call whose work is done (purge: 404, the others: 409 already completed).
        self.lose_answers = set()
        self.cancel_ignored = False  # a handler that never reaches an await point (cancel stays pending)
        # What a real server cannot be made to do on demand: intercept(admin, id, action) returns None (the call
        # is applied as usual), ACCEPTED (answered, not applied: a request the server applies later, or never) or
        # a RestateApiError (refused, e.g. because another run got there first).
        self.intercept = None
        self.repeats = 0  # as AdminClient.repeats: calls the transport repeated
        self._templates = recorded_rows()
        self._serial = 0

    # -- the server's state ----------------------------------------------------------------------------------
    def add(self, status, count=1, **columns) -> list:
        """Add ``count`` invocations like the recorded one in ``status``; returns their ids in creation order."""
        ids = []
        for unused in range(count):
            self._serial += 1
            row = dict(self._templates.get(status) or self._templates[f"{status}-success"])
            row["id"] = "inv_1" + f"{self._serial:05d}" + uuid.uuid4().hex[:28]
            row["created_at"] = f"2026-11-01T00:00:{self._serial // 1000:02d}.{self._serial % 1000:03d}Z"
            row.update(columns)
            self._insert(row)
            ids.append(row["id"])
        return ids

    def _insert(self, row):
        row = {key: timestamp(value) if key in TIME_COLUMNS and value else value for key, value in row.items()}
        keys = [key for key in row if key in INVOCATION_COLUMNS]
        self.db.execute(f"INSERT INTO sys_invocation ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                        [row[key] for key in keys])

    def row(self, invocation_id):
        found = self.db.execute("SELECT * FROM sys_invocation WHERE id = ?", (invocation_id,)).fetchone()
        return dict(found) if found else None

    def status(self, invocation_id):
        row = self.row(invocation_id)
        return row["status"] if row else "absent"

    def remove(self, invocation_id):
        self.db.execute("DELETE FROM sys_invocation WHERE id = ?", (invocation_id,))

    def ids(self) -> list:
        return [row["id"] for row in self.db.execute("SELECT id FROM sys_invocation ORDER BY created_at, id")]

    def set(self, invocation_id, **columns):
        sets = ", ".join(f"{key} = ?" for key in columns)
        self.db.execute(f"UPDATE sys_invocation SET {sets} WHERE id = ?", [*columns.values(), invocation_id])

    # -- POST /query -----------------------------------------------------------------------------------------
    def query(self, sql, columns=None, required=None):
        self.queries.append(sql)
        lite = re.sub(r"TIMESTAMP '([^']*)'", lambda m: f"'{timestamp(m.group(1))}'", sql)
        lite = re.sub(r"\bindex\b", '"index"', lite)
        rows = []
        for found in self.db.execute(lite).fetchall():
            row = {key: found[key] for key in found.keys() if found[key] is not None}  # NULLs left out, as served
            rows.append(row)
        for row in rows:
            # what the code declares it relies on must be what its SQL reads (the real server never leaves it out)
            assert all(row.get(column) is not None for column in required or ()), (sql, required, row)
            for column in columns or ():
                row.setdefault(column, None)
        return rows

    def count(self, sql):
        return self.query(sql)[0]["n"]

    def rows(self, sql, columns=None, required=None):
        """As QueriesApi.rows: the query is sent when the first row is asked for."""
        yield from self.query(sql, columns, required)

    # -- PATCH /invocations/{id}/{action} --------------------------------------------------------------------
    def start_actions(self, invocation_ids, action, params=None, concurrency=256):
        """As InvocationsApi.start_actions; the calls are made here at once, their answers given when asked for."""
        self.started.append(list(invocation_ids))
        errors = self.actions(invocation_ids, action, params, concurrency)
        return lambda: errors

    def actions(self, invocation_ids, action, params=None, concurrency=256):
        errors = []
        for invocation_id in invocation_ids:
            try:
                self.action(invocation_id, action, params)
                errors.append(None)
            except RestateApiError as error:
                errors.append(error)
        accepted = [i for i, error in zip(invocation_ids, errors) if error is None]
        if self.on_accepted is not None and accepted:  # as InvocationsApi tells the audit log
            self.on_accepted(action, accepted)
        return errors

    def action(self, invocation_id, action, params=None, ok_statuses=()):
        self.calls.append((action, invocation_id))
        decided = self.intercept(self, invocation_id, action) if self.intercept else None
        if isinstance(decided, RestateApiError):
            raise decided  # pylint: disable=raising-bad-type
        body = None if decided is ACCEPTED else self._apply(invocation_id, action, params or {})
        if action in self.lose_answers:
            self.lose_answers.discard(action)
            self.repeats += 1
            if action in ("purge", "purge-journal"):
                raise self._error(invocation_id, action, 404, f"The invocation '{invocation_id}' does not exist")
            raise self._error(invocation_id, action, 409, f"The invocation '{invocation_id}' was already completed.")
        return Answer(body)

    @staticmethod
    def _error(invocation_id, action, status, message):
        return refused(status, message, invocation_id, action)

    def _apply(self, invocation_id, action, params):
        status = self.status(invocation_id)
        if status in ("completed", "absent") and action in ("cancel", "kill", "pause", "resume"):
            raise self._error(invocation_id, action, 409, f"The invocation '{invocation_id}' was already completed.")
        if action in ("purge", "purge-journal", "restart-as-new") and status == "absent":
            raise self._error(invocation_id, action, 404, f"The invocation '{invocation_id}' does not exist")
        if action in ("purge", "purge-journal", "restart-as-new") and status != "completed":
            raise self._error(invocation_id, action, 409, "The invocation is not yet completed")
        if action in ("cancel", "kill") and status in ("scheduled", "pending"):
            self.remove(invocation_id)
        elif action == "kill" or (action == "cancel" and status == "suspended" and not self.cancel_ignored):
            self.set(invocation_id, status="completed", completion_result="failure", journal_size=1,
                     completion_failure=f"[409] {'killed' if action == 'kill' else 'cancelled'}")
        elif action == "cancel":  # a request: the handler sees it at its next await point
            self.db.execute("INSERT INTO sys_journal (id, entry_type, entry_lite_json) VALUES (?, ?, ?)",
                            (invocation_id, *CANCEL_SIGNAL))
        elif action == "pause" and status in ("ready", "running", "backing-off"):
            self.set(invocation_id, status="paused")
        elif action == "resume" and status == "paused":
            self.set(invocation_id, status="running", modified_at=timestamp("2026-12-01T00:00:00Z"))
        elif action == "purge":
            self.remove(invocation_id)
        elif action == "purge-journal":
            self.set(invocation_id, journal_size=0)
        elif action == "restart-as-new":
            new = self.add("completed", restarted_from=invocation_id)[0]
            return {"new_invocation_id": new}
        return None
