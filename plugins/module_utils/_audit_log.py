# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The audit_log option: every invocation a task acted on, as JSON Lines, written as the task goes.

One line per record, appended to the file (created with mode 0600): a ``start`` line with the time, the module, the
server, check mode and the task's options (never the token or header values), one ``invocation`` line per
invocation acted on (or that would be, in check mode) or failed, and an ``end`` line with the summary. A task that
fails half-way leaves the lines of what it did up to then, and an ``end`` line with the failure when it can.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

# Item keys written per invocation (internal '_' keys never).
ITEM_KEYS = ("id", "target", "before", "after", "changed", "pending", "note", "error", "new_invocation_id",
             "killed_after_cancel")
SECRET_OPTIONS = ("token",)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_options(params: dict) -> dict:
    """The task's options without secrets: no token, header names only."""
    options = {}
    for name, value in params.items():
        if name in SECRET_OPTIONS:
            continue
        if name == "headers":
            value = sorted(value or {})
        options[name] = value
    return options


class AuditLog:
    """An open audit file; every write is flushed, so what is written stays written whatever happens next."""

    def __init__(self, path: str, module: str, params: dict, check_mode: bool):
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            raise InputError(f"audit_log: cannot open {path!r} for appending: {error.strerror}; give a path in a "
                             "writable directory on the host that runs the module") from None
        self.path = path
        self.file = os.fdopen(descriptor, "a", encoding="utf-8")
        self.written = 0
        self._write({"record": "start", "time": now(), "module": module, "check_mode": bool(check_mode),
                     "options": safe_options(params)})

    def _write(self, record: dict):
        self.file.write(json.dumps(record, default=str, sort_keys=False) + "\n")
        self.file.flush()

    def items(self, items):
        """One line per item that was acted on (changed) or failed; unchanged ones are counted in the end line."""
        for item in items:
            if item.get("changed") or "error" in item:
                record = {"record": "invocation", "time": now()}
                record.update((key, item[key]) for key in ITEM_KEYS if key in item)
                self._write(record)
                self.written += 1

    def end(self, summary: dict, failed: bool, msg: str | None = None):
        record = {"record": "end", "time": now(), "failed": failed, "summary": summary}
        if msg:
            record["msg"] = msg
        self._write(record)
        self.close()

    def close(self):
        if not self.file.closed:
            self.file.close()
