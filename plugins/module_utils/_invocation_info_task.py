# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_invocation_info task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._queries_api import STATUS_COUNT
from ansible_collections.restate.admin.plugins.module_utils._restate_module import FILTERS_ARGSPEC
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    INVOCATION_COLUMNS,
    JOURNAL_COLUMNS,
    check_columns,
    count_by_status_sql,
    ids_condition,
    journal_sql,
    normalize_filters,
    select_sql,
    validate_invocation_id,
    where_conditions,
)

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "id": {"type": "str"},
        "journal": {"type": "bool", "default": False},
        "filters": FILTERS_ARGSPEC,
        "limit": {"type": "int", "default": 1000},
        "order": {"type": "str", "default": "newest_first", "choices": ["newest_first", "oldest_first"]},
        "fields": {"type": "list", "elements": "str"},
    },
    "mutually_exclusive": [["id", "filters"]],
}


def run(task):
    """Count per status, list (or describe one, with its journal); ends with ``task.exit_json`` or ``task.fail_json``."""
    params = task.params
    try:
        if params["limit"] < 0:
            raise InputError(f"limit must be 0 (count only) or more, got {params['limit']}")
        if params["journal"] and not params["id"]:
            raise InputError("journal: a journal is read for one invocation only; give id (the invocation's id) "
                             "with journal=true, or remove journal")
        columns = list(INVOCATION_COLUMNS)
        if params["fields"]:
            columns = ["id"] + [c for c in check_columns(params["fields"]) if c != "id"]
        if params["id"]:
            conditions = [ids_condition([validate_invocation_id(params["id"])])]
        else:
            conditions = where_conditions(normalize_filters(params["filters"]))

        client = task.connect()
        counts = client.query(count_by_status_sql(conditions), required=STATUS_COUNT)
        summary = {row["status"]: row["count"] for row in counts}
        invocations = []
        if params["limit"]:  # limit 0: the counts per status only, however many match
            invocations = client.query(select_sql(columns, conditions, params["order"], params["limit"]),
                                       columns=columns)
        if params["id"] and params["journal"] and invocations:
            invocations[0]["journal"] = client.query(journal_sql(params["id"]), columns=JOURNAL_COLUMNS)
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    matched = sum(summary.values())
    task.exit_json(changed=False, invocations=invocations, count=len(invocations), matched=matched,
                   truncated=matched > len(invocations), summary=summary)
