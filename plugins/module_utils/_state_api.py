# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The state area of the Admin API: the K/V state of Virtual Object and Workflow keys.

``StateApi`` reads the state with SQL (table ``state``) and replaces it with ``POST /services/{service}/state``; the
functions beside it are pure (values in an encoding, the version, what differs). What a 1.7.12 server does, measured
(docs/object-state.md):

- The POST replaces the key's whole state (keys left out are cleared) and answers 202 before it is applied; on a free
  key it shows in ``state`` about 10 ms later.
- ``version`` is compared when the change is applied; a change whose version differs is dropped without a word (the
  202 was already sent), so whether it was applied can only be read back.
- While an invocation holds the key (``sys_keyed_service_status``), the change waits in the key's queue behind it and
  behind the invocations already waiting; a paused invocation holds the key until it ends.
- The version is SHA-256 over the entries sorted by key bytes: for the i-th, ``i`` as 8 big-endian bytes, 0x01, the
  key, 0x02, the value, 0x03; URL-safe base64 without padding (the server's and the official CLI's).
- A ``state`` row has ``value`` as hex and ``value_utf8`` only when the value is UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from urllib.parse import quote

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._selection import sql_literal
from ansible_collections.restate.admin.plugins.module_utils._transport import unexpected

ENCODINGS = ("json", "text", "base64")
# The kinds of service that have state; the server refuses the others with HTTP 400.
STATEFUL_KINDS = ("VirtualObject", "Workflow")
# How much of a value the diff shows before it gives the size and a digest instead of the rest.
SHOWN_LENGTH = 1000


def version_of(state: dict) -> str:
    """The server's version of a state ({key: bytes}), as it compares the ``version`` of a change with it."""
    digest = hashlib.sha256()
    for index, (key, value) in enumerate(sorted((key.encode(), value) for key, value in state.items())):
        digest.update(index.to_bytes(8, "big") + b"\x01" + key + b"\x02" + value + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_value(value, encoding: str, option: str) -> bytes:
    """The bytes to store for ``value`` given in ``encoding``; InputError names ``option`` (``state.<key>``)."""
    if encoding == "json":
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise InputError(f"{option}: cannot be written as JSON ({error}); give plain data, or set encoding") \
                from None
    if not isinstance(value, str):
        raise InputError(f"{option}: with encoding={encoding} a value is a string, got {type(value).__name__}; "
                         "quote it, or use encoding=json")
    if encoding == "text":
        return value.encode()
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{option}: not base64 (encoding=base64); give the bytes base64-encoded, "
                         "for example /wBh for ff 00 61") from None


def decode_value(stored: bytes, encoding: str, option: str):
    """``stored`` in ``encoding``; InputError names ``option`` when it cannot be read that way."""
    if encoding == "base64":
        return base64.b64encode(stored).decode()
    try:
        text = stored.decode()
    except UnicodeDecodeError:
        raise InputError(f"{option}: the stored value is not UTF-8; read it with encoding=base64") from None
    if encoding == "text":
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise InputError(f"{option}: the stored value is not JSON; read it with encoding=text or base64") from None


def same_value(stored: bytes, wanted: bytes, encoding: str) -> bool:
    """Whether ``stored`` already holds ``wanted``: JSON by value (key order and spacing aside, 1 is not true nor
    1.0), other encodings byte for byte."""
    if stored == wanted:
        return True
    if encoding != "json":
        return False
    try:
        return _canonical_json(json.loads(stored)) == _canonical_json(json.loads(wanted))
    except ValueError:  # not UTF-8 or not JSON: only the same bytes are the same
        return False


def wanted_state(values, encoding: str) -> dict:
    """{state key: bytes} for the ``state`` option (a mapping, or None/``absent`` for an empty state)."""
    if values is None or values == "absent":
        return {}
    if not isinstance(values, dict):
        raise InputError(f"state: give a mapping of state key to value, or absent to clear the key; got "
                         f"{type(values).__name__}")
    wanted = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"state: a state key is a non-empty string, got {key!r}")
        wanted[key] = encode_value(value, encoding, f"state.{key}")
    return wanted


def merged_state(current: dict, wanted: dict, encoding: str) -> dict:
    """The state to send: ``wanted``, with the stored bytes kept where they already hold the same value."""
    return {key: current[key] if key in current and same_value(current[key], value, encoding) else value
            for key, value in wanted.items()}


def changed_keys(before: dict, after: dict) -> dict:
    """{'added': [...], 'changed': [...], 'removed': [...]} between two states ({key: bytes}), keys sorted."""
    return {"added": sorted(set(after) - set(before)),
            "changed": sorted(key for key in set(before) & set(after) if before[key] != after[key]),
            "removed": sorted(set(before) - set(after))}


def shown(value: bytes, show_values: bool = True) -> str:
    """A value as the server stores it, for a diff: its UTF-8 text, or base64 when it is not UTF-8; a long value cut,
    and with ``show_values`` false only its size and digest."""
    digest = f"{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}"
    if not show_values:
        return f"({digest})"
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = "base64:" + base64.b64encode(value).decode()
    if len(text) > SHOWN_LENGTH:
        return f"{text[:SHOWN_LENGTH]}... ({digest})"
    return text


def diff_text(state: dict, show_values: bool = True) -> str:
    return "".join(f"{key}: {shown(state[key], show_values)}\n" for key in sorted(state))


def check_stateful(service: dict, name: str):
    """InputError unless ``service`` (the server's, or None) is a Virtual Object or a Workflow."""
    if service is None:
        raise InputError(f"service: the server has no service {name!r}; register the deployment that serves it "
                         "first (restate.admin.restate_deployment)")
    if service.get("ty") not in STATEFUL_KINDS:
        raise InputError(f"service: {name!r} is a {service.get('ty')}; only Virtual Objects and Workflows have "
                         "state: name one of those")


class StateApi:
    def __init__(self, transport, queries):
        self.transport = transport
        self.queries = queries

    def _where(self, service: str, key: str) -> str:
        return f"service_name = {sql_literal(service)} AND service_key = {sql_literal(key)}"

    def read(self, service: str, key: str) -> dict:
        """{state key: bytes} of one object key (empty when it has none)."""
        rows = self.queries.query(f"SELECT key, value FROM state WHERE {self._where(service, key)}",
                                  required={"key": str})
        try:  # an empty value may come as no column at all
            return {row["key"]: bytes.fromhex(row.get("value") or "") for row in rows}
        except (TypeError, ValueError):
            raise unexpected("POST", "/query", self.transport.admin_url, 200, "values in hexadecimal",
                             "a value that is not") from None

    def holder(self, service: str, key: str):
        """The invocation that holds the key (a change waits behind it), or None."""
        rows = self.queries.query("SELECT invocation_id FROM sys_keyed_service_status WHERE "
                                  f"{self._where(service, key)} LIMIT 1", required={"invocation_id": str})
        return rows[0].get("invocation_id") if rows else None

    def keys(self, service: str, after=None, limit: int = 1000) -> list:
        """A page of the service's keys that have state, in key order after ``after``: [{key, entries, bytes}]."""
        condition = f"service_name = {sql_literal(service)}"
        if after is not None:
            condition += f" AND service_key > {sql_literal(after)}"
        rows = self.queries.query(
            "SELECT service_key, COUNT(*) AS entries, SUM(value_length) AS bytes FROM state "
            f"WHERE {condition} GROUP BY service_key ORDER BY service_key LIMIT {int(limit)}",
            required={"service_key": str, "entries": int, "bytes": int})
        return [{"key": row["service_key"], "entries": row["entries"], "bytes": row["bytes"]} for row in rows]

    def replace(self, service: str, key: str, state: dict, version=None):
        """Ask the server to replace the key's whole state with ``state`` ({key: bytes}) if its version is still
        ``version``; it answers before it applies (or drops) the change."""
        body = {"object_key": key, "new_state": {name: list(value) for name, value in state.items()}}
        if version is not None:
            body["version"] = version
        # Safe to repeat with a version: a second copy no longer matches the state the first one made.
        self.transport.request("POST", f"/services/{quote(service, safe='')}/state", json_body=body,
                               idempotent=version is not None)
