# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The SQL area of the Admin API: ``POST /query`` over the system tables (sys_invocation, sys_journal, ...).

The SQL itself is built elsewhere (``_selection``), with every user value quoted or validated first.
"""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._transport import RETRYABLE_STATUSES, RestateApiError


class QueriesApi:
    def __init__(self, transport):
        self.transport = transport

    def query(self, sql: str, columns=None) -> list:
        """Run SQL and return the rows as dicts.

        The server leaves NULL columns out of a JSON row; ``columns`` fills them in as None so every
        row has the same keys. Reads are safe to repeat; a restarting node also answers 500 ("node ... was shut
        down"), which is repeated too.
        """
        response = self.transport.request("POST", "/query", json_body={"query": sql}, idempotent=True,
                                          retry_statuses=RETRYABLE_STATUSES | {500})
        try:
            rows = response.json().get("rows", [])
        except (ValueError, AttributeError):
            raise RestateApiError("POST", "/query", status=response.status_code, admin_url=self.transport.admin_url,
                                  message="the answer is not JSON rows: is admin_url a Restate Admin API?")
        if columns:
            for row in rows:  # in place: a copy of 100,000 rows would double the peak memory
                for column in columns:
                    row.setdefault(column, None)
        return rows
