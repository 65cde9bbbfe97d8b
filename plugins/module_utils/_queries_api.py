# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The SQL area of the Admin API: ``POST /query`` over the system tables (sys_invocation, sys_journal, ...).

The SQL itself is built by the callers (``_selection`` for the filters, the task and API modules for their own
reads), every user value quoted with ``sql_literal`` or validated first.
"""

from __future__ import annotations

import codecs
import json
import re

from ansible_collections.restate.admin.plugins.module_utils._transport import (
    RETRYABLE_STATUSES,
    answer_json,
    shape,
    unexpected,
)

# What a /query answer may hold: ROW_BYTES a row asked for with LIMIT (a sys_invocation row of every column is about
# 1 KB; a journal entry's JSON more), else QUERY_BYTES; a larger answer fails the call unread.
ROW_BYTES = 8 * 1024
MIN_QUERY_BYTES = 1024 * 1024
QUERY_BYTES = 64 * 1024 * 1024
TRAILING_LIMIT = re.compile(r"\sLIMIT\s+(\d+)\s*$", re.IGNORECASE)
ROWS = "an object with 'rows', a list of objects"
# How an answer of rows begins and how its parts are separated, as rows() reads them one at a time.
ROWS_HEAD = re.compile(r'\s*\{\s*"rows"\s*:\s*\[')
BLANK = re.compile(r"\s*")
KINDS = {str: "a string", int: "a number"}
# The columns most reads rely on: an invocation's id; the n of a COUNT(*) AS n.
ID = {"id": str}
COUNT = {"n": int}
STATUS_COUNT = {"status": str, "count": int}


class QueriesApi:
    def __init__(self, transport):
        self.transport = transport

    def query(self, sql: str, columns=None, required=None) -> list:
        """Run SQL and return the rows as dicts.

        The server leaves NULL columns out of a JSON row; ``columns`` fills them in as None so every row has the
        same keys. ``required`` ({column: type}) names the columns the caller relies on, which the server never
        leaves out (an id, a count): a row without one, or of another type, fails the call. Reads are safe to
        repeat; a restarting node also answers 500 ("node ... was shut down"), which is repeated too. A query with
        a LIMIT may be answered with that many rows at most, and its answer's size is capped to fit them.
        """
        rows_asked, max_bytes = answer_bounds(sql)
        response = self.transport.request("POST", "/query", json_body={"query": sql}, idempotent=True,
                                          retry_statuses=RETRYABLE_STATUSES | {500}, max_bytes=max_bytes)
        answer = answer_json(response, "POST", "/query", self.transport.admin_url, ROWS,
                             lambda value: isinstance(value, dict) and isinstance(value.get("rows", []), list))
        rows = answer.get("rows", [])
        if not all(isinstance(row, dict) for row in rows):
            raise unexpected("POST", "/query", self.transport.admin_url, response.status_code, ROWS,
                             "rows that are not all objects")
        if rows_asked is not None and len(rows) > rows_asked:
            raise unexpected("POST", "/query", self.transport.admin_url, response.status_code,
                             f"at most {rows_asked} rows (the query's LIMIT)", f"{len(rows)}")
        for column, kind in (required or {}).items():
            wrong = next((row for row in rows if not of_kind(row, column, kind)), None)
            if wrong is not None:
                raise unexpected("POST", "/query", self.transport.admin_url, response.status_code,
                                 *column_problem(wrong, column, kind))
        if columns:
            for row in rows:  # in place: a copy of 100,000 rows would double the peak memory
                for column in columns:
                    row.setdefault(column, None)
        return rows

    def rows(self, sql: str, columns=None, required=None):
        """The rows of ``sql`` as query() gives them, one at a time, read from the answer as it arrives: a selection
        of a million rows is one query, and never held whole (the caller holds what it keeps). Each row is checked as
        query() checks them; the answer is bounded as it is read (ROW_BYTES a row, at most the query's LIMIT rows),
        and each part of it must arrive within the transport's timeout. A reader that stops early closes the answer.
        """
        rows_asked, max_bytes = answer_bounds(sql)
        response = self.transport.request("POST", "/query", json_body={"query": sql}, idempotent=True,
                                          retry_statuses=RETRYABLE_STATUSES | {500}, stream=True)
        admin_url = self.transport.admin_url

        def wrong(got, expected=ROWS):
            return unexpected("POST", "/query", admin_url, response.status_code, expected, got)

        parts = self.transport.parts(response, "POST", "/query", max_bytes)
        read = 0
        kinds, columns = tuple((required or {}).items()), tuple(columns or ())
        try:
            for row in _parsed_rows(parts, wrong):
                read += 1
                if rows_asked is not None and read > rows_asked:
                    raise wrong("more", f"at most {rows_asked} rows (the query's LIMIT)")
                for column, kind in kinds:
                    if not of_kind(row, column, kind):
                        expected, got = column_problem(row, column, kind)
                        raise wrong(got, expected)
                for column in columns:
                    if column not in row:
                        row[column] = None
                yield row
        finally:
            parts.close()
            response.close()

    def count(self, sql: str) -> int:
        """The n of ``SELECT COUNT(*) AS n ...``: one row, whatever the server answered."""
        rows = self.query(sql, required=COUNT)
        if len(rows) != 1:
            raise unexpected("POST", "/query", self.transport.admin_url, 200, "one row (a count)", f"{len(rows)} rows")
        return rows[0]["n"]


def answer_bounds(sql) -> tuple:
    """(the rows a query asks for with a trailing LIMIT, or None; the most bytes its answer may hold)."""
    limit = TRAILING_LIMIT.search(sql)
    rows_asked = int(limit.group(1)) if limit else None
    return rows_asked, (QUERY_BYTES if rows_asked is None else max(MIN_QUERY_BYTES, rows_asked * ROW_BYTES))


def of_kind(row, column, kind) -> bool:
    """Whether the row's ``column`` is exactly of ``kind``: True is an int to isinstance, and no count."""
    return type(row.get(column)) is kind  # pylint: disable=unidiomatic-typecheck


def column_problem(row, column, kind) -> tuple:
    """(what was expected, what came) for a row whose ``column`` is not of ``kind``."""
    return (f"rows each with {column!r}, {KINDS[kind]}",
            shape(row[column]) if column in row else "a row without it")


def _parsed_rows(parts, wrong):
    """The objects of an answer ``{"rows": [...]}`` arriving in ``parts`` (bytes), one at a time; ``wrong(got)`` is
    the error raised for an answer of another shape, or a row larger than ROW_BYTES."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    scan = json.JSONDecoder().raw_decode
    text, at, ended = "", 0, False

    def more():
        nonlocal text, at, ended
        part = next(parts, None)
        ended = part is None
        text = text[at:] + decoder.decode(part or b"", final=ended)
        at = 0

    while not ended and not ROWS_HEAD.match(text) and len(text) < 1024:
        more()
    head = ROWS_HEAD.match(text)
    if head is None:
        raise wrong(f"an answer beginning {text[:40]!r}")
    at = head.end()
    separated = True  # a row may come (the list's start, or a comma read)
    rows_read = False
    while True:
        at = BLANK.match(text, at).end()
        if at == len(text):
            if ended:
                raise wrong("an answer that ends in the middle of its rows")
            more()
            continue
        if text[at] == "]":
            if separated and rows_read:
                raise wrong("a comma before the end of the rows")
            break
        if not separated:
            if text[at] != ",":
                raise wrong(f"rows separated by {text[at]!r}")
            at, separated = at + 1, True
            continue
        try:
            row, end = scan(text, at)
        except json.JSONDecodeError:
            if ended:
                raise wrong("a row that is not JSON") from None
            if len(text) - at > ROW_BYTES:
                raise wrong(f"a row longer than {ROW_BYTES} bytes") from None
            more()  # the row's end has not arrived yet
            continue
        if not isinstance(row, dict):
            raise wrong(f"rows that are not all objects ({shape(row)})")
        if end - at > ROW_BYTES:
            raise wrong(f"a row longer than {ROW_BYTES} bytes")
        at, separated, rows_read = end, False, True
        yield row
    rest = text[at + 1:]
    while not ended and len(rest) <= 1024:
        text, at = "", 0
        more()
        rest += text
    if rest.strip() != "}":
        raise wrong(f"an answer that goes on after its rows with {rest.strip()[:40]!r}")
