"""A fake Admin API client and task host for the restate_invocation work: only for what a real server cannot be made
to do on demand (a refusal because another run got there first, a call repeated after a lost answer, a page size of
three), and for counting what the task asks of the server."""

from __future__ import annotations

import re
import string

from ansible_collections.restate.admin.plugins.module_utils._client import RestateApiError
from ansible_collections.restate.admin.plugins.module_utils._invocation_task import SPEC
from ansible_collections.restate.admin.plugins.module_utils._restate_module import CONNECTION_ARGSPEC

ID_IN = re.compile(r"'(inv_[0-9A-Za-z]+)'")
LIMIT = re.compile(r"LIMIT (\d+)")
AFTER = re.compile(r"created_at > TIMESTAMP '([^']+)' OR \(created_at = TIMESTAMP '[^']+' AND id > '([^']+)'\)")


def make_id(n: int) -> str:
    digits = string.digits + string.ascii_letters
    text = ""
    while True:
        n, r = divmod(n, 62)
        text = digits[r] + text
        if not n:
            break
    return "inv_1" + text.rjust(20, "0")


class Done(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class FakeClient:
    """Invocations by id; ``answer(id, action)`` decides each call: None (done, and applied as ``apply`` says), or a
    RestateApiError. Records every action call and every query."""

    def __init__(self, rows, answer=None, apply=None):
        self.rows = {row["id"]: dict(row) for row in rows}
        self.answer = answer or (lambda invocation_id, action: None)
        self.apply = apply if apply is not None else default_apply
        self.calls = []
        self.queries = []
        self.on_retry = None

    def query(self, sql, columns=None):
        self.queries.append(sql)
        if "sys_journal" in sql or "restarted_from" in sql:
            return []
        if "COUNT(*)" in sql:
            return [{"n": len(self.selected(sql))}]
        if " id IN (" in sql:
            wanted = set(ID_IN.findall(sql))
            rows = [dict(row) for i, row in self.rows.items() if i in wanted]
        else:
            rows = self.selected(sql)
            limit = LIMIT.search(sql)
            if limit:
                rows = rows[:int(limit.group(1))]
        if columns:
            rows = [{c: row.get(c) for c in columns} for row in rows]
        return rows

    def selected(self, sql):
        rows = sorted(self.rows.values(), key=lambda row: (row["created_at"], row["id"]))
        if "status = 'completed'" in sql:
            rows = [row for row in rows if row["status"] == "completed"]
        after = AFTER.search(sql)
        if after:
            rows = [row for row in rows if (row["created_at"], row["id"]) > (after.group(1), after.group(2))]
        return [dict(row) for row in rows]

    def invocation_actions(self, ids, action, params=None, concurrency=256):
        errors = []
        for invocation_id in ids:
            self.calls.append((invocation_id, action))
            error = self.answer(invocation_id, action)
            if error is None:
                self.apply(self, invocation_id, action)
            errors.append(error)
        return errors


def default_apply(client, invocation_id, action):
    if action == "purge":
        client.rows.pop(invocation_id, None)
    elif action in ("cancel", "kill") and invocation_id in client.rows:
        client.rows[invocation_id]["status"] = "completed"
    elif action == "pause" and invocation_id in client.rows:
        client.rows[invocation_id]["status"] = "paused"
    elif action == "purge-journal" and invocation_id in client.rows:
        client.rows[invocation_id]["journal_size"] = 0


def refused(status, message):
    return RestateApiError("PATCH", "/invocations/x/y", status=status, message=message)


class FakeTask:
    """The task host: validated params with their defaults, and exit/fail raised as Done."""

    server_version = "1.7.12"

    def __init__(self, client, check_mode=False, diff=False, **args):
        spec = dict(CONNECTION_ARGSPEC, **SPEC["argument_spec"])
        self.params = {name: option.get("default") for name, option in spec.items()}
        self.params.update(args)
        self.client = client
        self.check_mode = check_mode
        self.diff_mode = diff
        self.warnings = []

    def connect(self, **unused):
        if self.client.on_retry is None:
            self.client.on_retry = self.warn  # as RestateTask.connect makes the client
        return self.client

    def warn(self, message):
        self.warnings.append(message)

    def exit_json(self, **result):
        result["warnings"] = self.warnings
        raise Done(result)

    def fail_json(self, msg, **result):
        self.exit_json(failed=True, msg=msg, **result)

    def fail_on(self, error, **result):
        self.fail_json(str(error), **result)


def completed_rows(count, target="Tester/ok", start=0):
    return [{"id": make_id(start + n), "target": target, "status": "completed", "journal_size": 3,
             "target_service_ty": "service", "modified_at": "2026-01-01T00:00:00Z",
             "created_at": f"2026-01-01T00:00:{(start + n) // 1000:02d}.{(start + n) % 1000:03d}Z"}
            for n in range(count)]
