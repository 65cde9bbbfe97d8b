# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The audit_log option: every invocation a task acted on, as JSON Lines, written as the task goes.

One line per record, appended to the file: a ``start`` line with the time, the module, the server, check mode and
the task's options (never the token or header values), an ``accepted`` line as each call's answer arrives (the
action and the ids the server accepted: what it was asked to do, before the task reads back what it did), one
``invocation`` line per invocation acted on (or that would be, in check mode) or failed, and an ``end`` line with the
summary. A task that fails half-way leaves the lines
of what it did up to then, and an ``end`` line with the failure when it can; one stopped by SIGTERM (what AWX's
cancel sends) or SIGINT writes its ``end`` line, with the invocations whose calls had no answer yet, before it
exits.

The file is the task's own record, kept where others cannot read it: opened without following a symbolic link,
only if it is a regular file (a FIFO would block the task), created with mode 0600, and an existing one readable by
others is narrowed to 0600 with a warning. Every secret value of the task's options is replaced before a line is
written (a server's error message may echo request headers).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat
import threading
from datetime import datetime, timezone

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

# Item keys written per invocation (internal '_' keys never).
ITEM_KEYS = ("id", "target", "before", "after", "changed", "pending", "note", "error", "new_invocation_id",
             "killed_after_cancel")
SECRET_OPTIONS = ("token",)
MASK = "********"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


def secret_values(params: dict) -> list:
    """The values no line may hold: the token and every header value, each also as JSON writes it."""
    values = [params.get("token")] + list((params.get("headers") or {}).values())
    found = set()
    for value in values:
        if isinstance(value, str) and value:
            found.update((value, json.dumps(value)[1:-1]))
    return sorted(found, key=len, reverse=True)  # a secret inside another is replaced after it


def open_audit_file(path, warn=None) -> int:
    """A descriptor to append to ``path``, or an InputError naming audit_log: a regular file, not through a symbolic
    link, not readable by others."""
    if not isinstance(path, str) or not path:
        raise InputError("audit_log: empty; give the path of a file to append to")
    if "\x00" in path:
        raise InputError("audit_log: the path contains a NUL character; give the path of a file to append to")
    shown = repr(path[:300])
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(f"audit_log: {shown} is a symbolic link, which is not followed (it could append the "
                             "record to another file); give the path of the file itself") from None
        if error.errno == errno.ENXIO:
            raise InputError(f"audit_log: {shown} is a FIFO or socket with no reader; give a regular file") from None
        raise InputError(f"audit_log: cannot open {shown} for appending: {error.strerror}; give a path in a "
                         "writable directory on the host that runs the module") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"audit_log: {shown} is not a regular file (a FIFO, device or directory); give the path "
                             "of a regular file")
        if status.st_mode & 0o077:
            try:
                os.fchmod(descriptor, 0o600)
            except OSError as error:
                raise InputError(f"audit_log: {shown} can be read or written by other users (mode "
                                 f"{stat.S_IMODE(status.st_mode):04o}) and its mode cannot be narrowed "
                                 f"({error.strerror}); give a file only its owner can read") from None
            if warn:
                warn(f"audit_log: {path[:300]} could be read by other users (mode "
                     f"{stat.S_IMODE(status.st_mode):04o}); narrowed to 0600")
        fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class AuditLog:
    """An open audit file. Each line goes to the file in one ``write`` as it is made: what is written stays
    written whatever happens next, and a signal's ``end`` line cannot cut another line in two.

    ``summary``, when given, returns the task's summary so far (for the ``end`` line written on a signal); ``acting``
    tells which invocations' calls are being sent.
    """

    def __init__(self, path: str, module: str, params: dict, check_mode: bool, warn=None, summary=None):
        self.descriptor = open_audit_file(path, warn)
        self.path = path
        self.written = 0
        self.secrets = secret_values(params)
        self.summary = summary
        self.in_flight = {}  # ids whose calls were sent and which no invocation line confirms yet (dict: in order)
        self.answered = set()
        self.write_error = None  # an accepted line that could not be written, raised by the task's next line
        self._lock = threading.RLock()  # accepted lines come from the threads that send the calls
        self._previous = {}
        self._write({"record": "start", "time": now(), "module": module, "check_mode": bool(check_mode),
                     "options": safe_options(params)})
        self._catch_signals()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def _write(self, record: dict):
        if self.descriptor is None:
            return
        line = self.scrub(json.dumps(record, default=str, sort_keys=False)) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            while data:
                data = data[os.write(self.descriptor, data):]

    def accepted(self, action: str, ids):
        """The server accepted ``action`` for ``ids`` (one call's answer, from the thread that got it): written at
        once, so that a task killed before it reads back leaves a record of what it asked the server to do."""
        ids = list(ids)
        try:
            self._write({"record": "accepted", "time": now(), "action": action, "ids": ids})
        except OSError as error:
            self.write_error = self.write_error or error  # not a failure of the call: raised from the task's thread
        with self._lock:
            self.answered.update(ids)

    def acting(self, items):
        """The items whose calls are about to be sent: those without an answer yet are named in the ``end`` line if
        a signal stops the task. The items of an earlier batch stay named until their invocation lines are written
        (a batch is read back while the calls of the batch after next are sent)."""
        self.raise_write_error()
        self.in_flight.update((item["id"], None) for item in items if item.get("changed"))

    def unanswered(self) -> list:
        """The ids whose calls were sent (or are being sent) and have no answer yet."""
        with self._lock:
            return [invocation_id for invocation_id in self.in_flight if invocation_id not in self.answered]

    def raise_write_error(self):
        if self.write_error is not None:
            error, self.write_error = self.write_error, None
            raise error

    def items(self, items):
        """One line per item that was acted on (changed) or failed; unchanged ones are counted in the end line."""
        self.raise_write_error()
        for item in items:
            if item.get("changed") or "error" in item:
                record = {"record": "invocation", "time": now()}
                record.update((key, item[key]) for key in ITEM_KEYS if key in item)
                self._write(record)
                self.written += 1
        with self._lock:
            for item in items:
                self.in_flight.pop(item["id"], None)
                self.answered.discard(item["id"])

    def end(self, summary: dict, failed: bool, msg: str | None = None):
        record = {"record": "end", "time": now(), "failed": failed, "summary": summary}
        if msg:
            record["msg"] = msg
        self._write(record)
        self.close()

    def close(self):
        self._release_signals()
        if self.descriptor is not None:
            os.close(self.descriptor)
            self.descriptor = None

    # -- SIGTERM and SIGINT -----------------------------------------------------------------------------------
    def _catch_signals(self):
        for number in STOP_SIGNALS:
            try:
                previous = signal.getsignal(number)
                if previous is signal.SIG_IGN:
                    continue
                signal.signal(number, self._stopped)
            except ValueError:  # not the main thread: the host that runs the task handles its signals
                continue
            self._previous[number] = previous

    def _release_signals(self):
        for number, previous in self._previous.items():
            try:
                signal.signal(number, previous if previous is not None else signal.SIG_DFL)
            except ValueError:
                pass
        self._previous = {}

    def _stopped(self, number, frame):
        """Write the end line with what is known, then let the signal do what it did before."""
        name = signal.Signals(number).name
        previous = self._previous.get(number, signal.SIG_DFL)
        record = {"record": "end", "time": now(), "failed": True, "interrupted": name,
                  "msg": f"stopped by {name}; the calls for the invocations in unconfirmed had no answer yet, and "
                         "those of the accepted lines since the last invocation lines were not read back: run the "
                         "task again to finish"}
        try:
            record["summary"] = self.summary() if self.summary else {"written": self.written}
        except Exception:  # pylint: disable=broad-exception-caught  # the end line matters more than the summary
            record["summary"] = {"written": self.written}
        unanswered = self.unanswered()
        if unanswered:
            record["unconfirmed"] = unanswered
        self._write(record)
        self.close()
        if callable(previous):
            previous(number, frame)
        else:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
