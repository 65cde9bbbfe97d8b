# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Turn the ``filters`` vocabulary shared by every module into SQL for ``sys_invocation``.

User values reach SQL only as quoted literals (``'`` doubled) or after validation against a strict
pattern; column names only from the fixed lists below. Equality is used everywhere, never LIKE,
so ``%`` and ``_`` in a value match themselves.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

STATUSES = ("scheduled", "pending", "ready", "running", "suspended", "backing-off", "paused", "completed")
COMPLETION_RESULTS = ("success", "failure")
INVOKED_BY = ("ingress", "service", "subscription")
ORDERS = {"newest_first": "created_at DESC, id DESC", "oldest_first": "created_at ASC, id ASC",
          # Not an option of any module: the order restate_invocation reads a selection it takes whole in, so that
          # each page holds one range of partition keys (an id begins with its invocation's partition key).
          "id_order": "id ASC"}

# Columns of sys_invocation (Restate 1.6/1.7) that the modules may read, in display order.
INVOCATION_COLUMNS = (
    "id", "target", "target_service_name", "target_service_key", "target_handler_name", "target_service_ty",
    "status", "completion_result", "completion_failure", "idempotency_key", "invoked_by",
    "invoked_by_service_name", "invoked_by_id", "invoked_by_target", "restarted_from", "pinned_deployment_id",
    "last_attempt_deployment_id", "trace_id", "journal_size", "created_at", "modified_at", "inboxed_at",
    "scheduled_at", "scheduled_start_at", "running_at", "completed_at", "completion_retention",
    "journal_retention", "retry_count", "last_start_at", "next_retry_at", "last_attempt_server",
    "last_failure", "last_failure_error_code",
)
JOURNAL_COLUMNS = ("index", "entry_type", "name", "completed", "appended_at")

# inv_ followed by base62; real ids are 34 characters after the prefix.
INVOCATION_ID_PATTERN = re.compile(r"^inv_[0-9A-Za-z]{10,64}$")
DEPLOYMENT_ID_PATTERN = re.compile(r"^dp_[0-9A-Za-z]{10,64}$")
AGE_PATTERN = re.compile(r"^(?:\d+[smhdw])+$")
AGE_PART = re.compile(r"(\d+)([smhdw])")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

STRING_FILTERS = {
    "service": "target_service_name",
    "handler": "target_handler_name",
    "key": "target_service_key",
    "idempotency_key": "idempotency_key",
}
TIME_FILTERS = {
    "created_before": ("created_at", "<"),
    "created_after": ("created_at", ">="),
    "modified_before": ("modified_at", "<"),
    "modified_after": ("modified_at", ">="),
    "completed_before": ("completed_at", "<"),
    "completed_after": ("completed_at", ">="),
}
FILTER_KEYS = tuple(STRING_FILTERS) + ("target", "status", "completion_result", "deployment", "invoked_by",
                                       "zombie", "pinned", "min_retry_count") + tuple(TIME_FILTERS)
MAX_STRING_LENGTH = 4096


def sql_literal(value) -> str:
    """A SQL string literal for ``value``: single quotes doubled, nothing else interpreted."""
    text = str(value)
    if "\x00" in text:
        raise InputError("NUL characters cannot be used in a filter value")
    return "'" + text.replace("'", "''") + "'"


def validate_invocation_id(value, option="id") -> str:
    text = str(value).strip() if value is not None else ""
    if not INVOCATION_ID_PATTERN.match(text):
        raise InputError(f"{option}: {str(value)[:80]!r} is not an invocation id; expected 'inv_' followed "
                         "by letters and digits, e.g. inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz")
    return text


def parse_time(value, option: str, now: datetime, prefix: str = "filters.") -> datetime:
    """An RFC 3339 timestamp, or an age such as 90s, 15m, 12h, 7d, 2w, 1d12h meaning that long before now; errors
    name ``prefix`` + ``option``."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if AGE_PATTERN.match(text):
            seconds = sum(int(n) * AGE_UNITS[unit] for n, unit in AGE_PART.findall(text))
            try:
                return now - timedelta(seconds=seconds)
            except OverflowError:
                raise InputError(f"{prefix}{option}: age {text!r} is too large")
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise InputError(f"{prefix}{option}: {text[:80]!r} is neither an RFC 3339 timestamp nor an age; "
                             "use e.g. '2026-01-31T12:00:00Z' or '7d' (units s, m, h, d, w)")
    if moment.tzinfo is None:
        raise InputError(f"{prefix}{option}: {str(value)[:80]!r} has no time zone; add 'Z' or an offset "
                         "such as '+02:00'")
    return moment.astimezone(timezone.utc)


def timestamp_literal(moment: datetime) -> str:
    return "TIMESTAMP '" + moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def _one_of(value, allowed, option):
    text = str(value).strip().lower()
    if text not in allowed:
        raise InputError(f"filters.{option}: {str(value)[:80]!r} is not one of {', '.join(allowed)}")
    return text


def _string(value, option):
    if isinstance(value, (dict, list)) or value is None:
        raise InputError(f"filters.{option}: expected a string, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise InputError(f"filters.{option}: must not be empty")
    if len(text) > MAX_STRING_LENGTH:
        raise InputError(f"filters.{option}: longer than {MAX_STRING_LENGTH} characters")
    if "\x00" in text:
        raise InputError(f"filters.{option}: NUL characters are not allowed")
    return text


def _bool(value, option):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise InputError(f"filters.{option}: expected true or false, got {str(value)[:80]!r}")


def _count(value, option):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise InputError(f"filters.{option}: expected a whole number of at least 0, e.g. 5; got {str(value)[:80]!r}")
    return int(value)


def parse_target(text: str) -> dict:
    """The CLI's target syntax: Service, Service/handler, Object/key, Object/key/handler, Workflow/key."""
    parts = text.split("/")
    if len(parts) > 3 or any(not part for part in parts):
        raise InputError(f"filters.target: {text[:80]!r} is not a target; use Service, Service/handler, "
                         "Object/key, Object/key/handler or Workflow/key (a key containing '/' goes in "
                         "filters.key instead)")
    return {"service": parts[0], "second": parts[1] if len(parts) > 1 else None,
            "handler": parts[2] if len(parts) > 2 else None}


def normalize_filters(filters, now: datetime | None = None) -> dict:
    """Validate ``filters`` and return them in canonical form (timestamps resolved against ``now``)."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise InputError("filters: expected a dictionary such as {service: Greeter, status: [suspended]}, got "
                         f"{type(filters).__name__} {str(filters)[:80]!r}")
    now = now or datetime.now(timezone.utc)
    result = {}
    for key, value in filters.items():
        if key not in FILTER_KEYS:
            raise InputError(f"filters: unknown key {str(key)[:80]!r}; known keys: {', '.join(sorted(FILTER_KEYS))}")
        if value is None:
            continue
        if key in STRING_FILTERS:
            result[key] = _string(value, key)
        elif key == "target":
            result[key] = parse_target(_string(value, key))
        elif key == "status":
            values = value if isinstance(value, list) else str(value).split(",")
            if not values:
                raise InputError("filters.status: give at least one status, e.g. [suspended, paused]")
            result[key] = sorted({_one_of(v, STATUSES, key) for v in values}, key=STATUSES.index)
        elif key == "completion_result":
            result[key] = _one_of(value, COMPLETION_RESULTS, key)
        elif key == "invoked_by":
            result[key] = _one_of(value, INVOKED_BY, key)
        elif key == "deployment":
            result[key] = validate_deployment_id(_string(value, key), "filters.deployment")
        elif key in ("zombie", "pinned"):
            result[key] = _bool(value, key)
        elif key == "min_retry_count":
            result[key] = _count(value, key)
        else:
            result[key] = parse_time(value, key, now)
    return result


def target_conditions(target: dict) -> list:
    """SQL conditions for a normalized ``target`` filter: Service, Service/second or Object/key/handler."""
    conditions = [f"target_service_name = {sql_literal(target['service'])}"]
    if target["handler"] is not None:
        conditions.append(f"target_service_key = {sql_literal(target['second'])}")
        conditions.append(f"target_handler_name = {sql_literal(target['handler'])}")
    elif target["second"] is not None:
        # Service/handler for plain services, Object/key or Workflow/key for keyed ones.
        second = sql_literal(target["second"])
        conditions.append(f"((target_service_ty = 'service' AND target_handler_name = {second}) OR "
                          f"(target_service_ty <> 'service' AND target_service_key = {second}))")
    return conditions


def where_conditions(filters: dict) -> list:
    """SQL conditions (to be joined with AND) for normalized ``filters``."""
    conditions = []
    for key, column in STRING_FILTERS.items():
        if key in filters:
            conditions.append(f"{column} = {sql_literal(filters[key])}")
    if filters.get("target"):
        conditions.extend(target_conditions(filters["target"]))
    if filters.get("status"):
        conditions.append("status IN (" + ", ".join(sql_literal(s) for s in filters["status"]) + ")")
    if "completion_result" in filters:
        conditions.append(f"completion_result = {sql_literal(filters['completion_result'])}")
    if "invoked_by" in filters:
        conditions.append(f"invoked_by = {sql_literal(filters['invoked_by'])}")
    if "deployment" in filters:
        # Like the official CLI: an invocation not yet pinned counts for the deployment of its last attempt.
        deployment = sql_literal(filters["deployment"])
        conditions.append(f"(pinned_deployment_id = {deployment} OR "
                          f"(pinned_deployment_id IS NULL AND last_attempt_deployment_id = {deployment}))")
    if "zombie" in filters:
        zombie = ("pinned_deployment_id IS NOT NULL AND pinned_deployment_id NOT IN "
                  "(SELECT id FROM sys_deployment)")
        conditions.append(zombie if filters["zombie"] else f"NOT ({zombie})")
    if "pinned" in filters:
        # Pinned once its deployment journaled something beyond the input; only a pinned invocation can be resumed
        # on a named deployment (the server answers 409 for one that is not).
        conditions.append(f"pinned_deployment_id IS {'NOT ' if filters['pinned'] else ''}NULL")
    if "min_retry_count" in filters:
        conditions.append(f"retry_count >= {int(filters['min_retry_count'])}")
    for key, (column, operator) in TIME_FILTERS.items():
        if key in filters:
            conditions.append(f"{column} {operator} {timestamp_literal(filters[key])}")
    return conditions


# The filters on what an invocation keeps for life (what it targets, who invoked it, when it was created): an
# invocation that matched them once still matches them after any action.
LIFELONG_FILTERS = ("service", "handler", "key", "idempotency_key", "target", "invoked_by", "created_before",
                    "created_after")


def lifelong_conditions(filters: dict) -> list:
    """The SQL conditions of the normalized ``filters`` that an invocation matches for life (LIFELONG_FILTERS)."""
    return where_conditions({key: value for key, value in filters.items() if key in LIFELONG_FILTERS})


def ids_condition(ids, column="id") -> str:
    """``id IN (...)`` (or another column of invocation ids) for the ids, each checked and quoted."""
    return f"{column} IN (" + ", ".join(sql_literal(validate_invocation_id(i)) for i in ids) + ")"


def where_sql(conditions) -> str:
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""


def check_columns(columns, allowed=INVOCATION_COLUMNS, option="fields"):
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise InputError(f"{option}: unknown column(s) {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(allowed)}")
    return list(columns)


def select_sql(columns, conditions, order="newest_first", limit=None, offset=None) -> str:
    check_columns(columns)
    if order not in ORDERS:
        raise InputError(f"order: {order!r} is not one of {', '.join(ORDERS)}")
    sql = f"SELECT {', '.join(columns)} FROM sys_invocation{where_sql(conditions)} ORDER BY {ORDERS[order]}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if offset:
        sql += f" OFFSET {int(offset)}"
    return sql


DEPLOYMENT_ID_FORM = ("'dp_' followed by letters and digits, e.g. dp_13puM96j0yI6Wh3QjADKUsp (the id column of "
                      "sys_deployment, or restate deployments list)")


def validate_deployment_id(value, option="id") -> str:
    """A deployment id (sys_deployment.id) as the server takes it, or an InputError naming ``option``."""
    text = str(value).strip() if value is not None else ""
    if not DEPLOYMENT_ID_PATTERN.match(text):
        raise InputError(f"{option}: {str(value)[:80]!r} is not a deployment id; expected {DEPLOYMENT_ID_FORM}")
    return text


def deployment_to_resume_on(value, option="deployment") -> str:
    """Where a resume runs an invocation: ``latest``, ``keep`` or a deployment id, as the server takes it; an
    InputError naming ``option`` otherwise."""
    text = str(value).strip()
    if text.lower() in ("latest", "keep"):
        return text.lower()
    if not DEPLOYMENT_ID_PATTERN.match(text):
        raise InputError(f"{option}: {text[:80]!r} is neither latest, keep nor a deployment id; a deployment id is "
                         f"{DEPLOYMENT_ID_FORM}")
    return text


def after_condition(row) -> str:
    """Keyset paging in the oldest_first order: the rows after ``row`` (which holds created_at and id)."""
    created = f"TIMESTAMP {sql_literal(row['created_at'])}"
    return f"(created_at > {created} OR (created_at = {created} AND id > {sql_literal(row['id'])}))"


def after_id_condition(row) -> str:
    """Keyset paging in id_order: the rows after ``row`` (which holds id)."""
    return f"id > {sql_literal(row['id'])}"


def between_condition(column, first, last, alias="") -> str:
    """``column`` (created_at or id, of the table aliased ``alias``) from ``first`` to ``last``, both included."""
    kind = "TIMESTAMP " if column == "created_at" else ""
    name = f"{alias}.{column}" if alias else column
    return f"{name} >= {kind}{sql_literal(first)} AND {name} <= {kind}{sql_literal(last)}"


def count_by_status_sql(conditions) -> str:
    return f"SELECT status, COUNT(*) AS count FROM sys_invocation{where_sql(conditions)} GROUP BY status"


def journal_sql(invocation_id: str) -> str:
    return (f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM sys_journal WHERE id = "
            f"{sql_literal(validate_invocation_id(invocation_id))} ORDER BY index")
