"""The filters vocabulary -> SQL: quoting, validation, target syntax, time windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.restate.admin.plugins.module_utils._selection import (
    ORDERS,
    InputError,
    after_condition,
    check_columns,
    count_by_status_sql,
    ids_condition,
    journal_sql,
    lifelong_conditions,
    normalize_filters,
    parse_time,
    select_sql,
    sql_literal,
    validate_invocation_id,
    where_conditions,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
GOOD_ID = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"


def unquote(literal: str) -> str:
    """Parse one single-quoted SQL literal the way the server does; fail on anything else."""
    assert literal[0] == "'" and literal[-1] == "'", literal
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        if body[i] == "'":
            assert body[i + 1:i + 2] == "'", f"unescaped quote in {literal!r}"
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize("hostile", ["O'Brien", "'; DROP TABLE sys_invocation; --", "a\\b\\'", "%_%", "ünï ☃ 😀",
                                     "''", "x" * 5000, "-- comment", "/* */", "a\nb"])
def test_literal_round_trips_hostile_text(hostile):
    assert unquote(sql_literal(hostile)) == hostile


@given(st.text().filter(lambda t: "\x00" not in t))
@settings(max_examples=2000)
def test_literal_round_trips_any_text(text):
    assert unquote(sql_literal(text)) == text


def test_literal_refuses_nul():
    with pytest.raises(InputError, match="NUL"):
        sql_literal("a\x00b")


@pytest.mark.parametrize("value", ["inv_", "inv_abc", f"{GOOD_ID}'", f"{GOOD_ID} x", "dp_1gdJBtdVEcM942bjcDmb1c1k",
                                   "inv_1gdJBtdVEcM942bjcDmb1c1k-oaJe11Hbz", "", None, "INV_1gdJBtdVEcM942bjcDmb1c1kh"])
def test_malformed_ids_are_refused_naming_the_option(value):
    with pytest.raises(InputError, match="^ids: "):
        validate_invocation_id(value, "ids")


def test_good_id_passes_and_surrounding_blanks_are_dropped():
    assert validate_invocation_id(GOOD_ID) == GOOD_ID
    assert validate_invocation_id(f" {GOOD_ID}\n") == GOOD_ID


@pytest.mark.parametrize("value, seconds", [("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800),
                                            ("2w", 1209600), ("1d12h", 129600)])
def test_ages_count_back_from_now(value, seconds):
    assert parse_time(value, "created_before", NOW) == NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize("value, expected", [
    ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=timezone.utc)),
    ("2026-01-31T14:00:00+02:00", datetime(2026, 1, 31, 12, tzinfo=timezone.utc)),
    ("2026-01-31T12:00:00.250Z", datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=timezone.utc)),
])
def test_timestamps_are_read_as_utc(value, expected):
    assert parse_time(value, "created_before", NOW) == expected


@pytest.mark.parametrize("value, message", [("2026-01-31T12:00:00", "no time zone"), ("yesterday", "neither"),
                                            ("7 days", "neither"), ("-5d", "neither"), ("5y", "neither")])
def test_bad_times_are_refused_with_an_example(value, message):
    with pytest.raises(InputError, match=f"filters.completed_after: .*{message}"):
        parse_time(value, "completed_after", NOW)


def test_unknown_filter_key_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown key 'servise'.*service"):
        normalize_filters({"servise": "A"})


@pytest.mark.parametrize("key, value", [("status", ["sleeping"]), ("completion_result", "ok"), ("invoked_by", "cron"),
                                        ("deployment", "dp_'x"), ("zombie", "maybe"), ("service", ""),
                                        ("handler", {"a": 1})])
def test_bad_values_name_their_key(key, value):
    with pytest.raises(InputError, match=f"filters.{key}"):
        normalize_filters({key: value})


def test_filters_must_be_a_dict():
    with pytest.raises(InputError, match="filters: expected a dictionary"):
        normalize_filters(["service"])


def test_status_accepts_one_or_many_and_sorts_them():
    assert normalize_filters({"status": "paused"})["status"] == ["paused"]
    assert normalize_filters({"status": ["paused", "backing-off", "paused"]})["status"] == ["backing-off", "paused"]


def test_where_conditions_quote_every_string():
    conditions = where_conditions(normalize_filters({"service": "a'b", "handler": "h", "key": "k;--",
                                                     "idempotency_key": "%"}))
    assert conditions == ["target_service_name = 'a''b'", "target_handler_name = 'h'",
                          "target_service_key = 'k;--'", "idempotency_key = '%'"]


def test_equality_only_so_wildcards_stay_literal():
    sql = " ".join(where_conditions(normalize_filters({"service": "%", "key": "_"})))
    assert "LIKE" not in sql.upper()


@pytest.mark.parametrize("target, expected", [
    ("Greeter", ["target_service_name = 'Greeter'"]),
    ("Greeter/greet", ["target_service_name = 'Greeter'",
                       "((target_service_ty = 'service' AND target_handler_name = 'greet') OR "
                       "(target_service_ty <> 'service' AND target_service_key = 'greet'))"]),
    ("Cart/c1/add", ["target_service_name = 'Cart'", "target_service_key = 'c1'", "target_handler_name = 'add'"]),
])
def test_target_syntax(target, expected):
    assert where_conditions(normalize_filters({"target": target})) == expected


@pytest.mark.parametrize("target", ["A/b/c/d", "/x", "A//b", "A/"])
def test_bad_targets_are_refused(target):
    with pytest.raises(InputError, match="filters.target"):
        normalize_filters({"target": target})


def test_time_windows_become_timestamp_literals():
    conditions = where_conditions(normalize_filters({"created_after": "1h", "completed_before": "2026-01-01T00:00:00Z"},
                                                    now=NOW))
    assert conditions == ["created_at >= TIMESTAMP '2026-11-24T11:00:00.000000Z'",
                          "completed_at < TIMESTAMP '2026-01-01T00:00:00.000000Z'"]


def test_lifelong_conditions_keep_only_what_an_invocation_keeps_for_life():
    """What bounds a read-back after an action: never the status, the deployment, the retries or a modification
    time, which the action itself may change."""
    filters = normalize_filters({"service": "Checkout", "handler": "pay", "key": "k'1", "idempotency_key": "i",
                                 "invoked_by": "ingress", "created_after": "1h", "created_before": "1m",
                                 "status": ["suspended"], "deployment": "dp_13puM96j0yI6Wh3QjADKUsp", "pinned": True,
                                 "min_retry_count": 2, "modified_before": "1h", "completed_after": "1d",
                                 "completion_result": "failure", "zombie": False}, now=NOW)
    kept = lifelong_conditions(filters)
    assert kept == ["target_service_name = 'Checkout'", "target_handler_name = 'pay'", "target_service_key = 'k''1'",
                    "idempotency_key = 'i'", "invoked_by = 'ingress'",
                    "created_at < TIMESTAMP '2026-11-24T11:59:00.000000Z'",
                    "created_at >= TIMESTAMP '2026-11-24T11:00:00.000000Z'"]
    assert lifelong_conditions(normalize_filters({"target": "Cart/k1/add", "status": ["paused"]})) == \
        where_conditions(normalize_filters({"target": "Cart/k1/add"}))
    assert lifelong_conditions(normalize_filters({"status": ["paused"]})) == []


def test_zombie_true_and_false():
    assert "NOT IN (SELECT id FROM sys_deployment)" in where_conditions({"zombie": True})[0]
    assert where_conditions({"zombie": False})[0].startswith("NOT (")


def test_pinned_true_and_false():
    assert where_conditions(normalize_filters({"pinned": True})) == ["pinned_deployment_id IS NOT NULL"]
    assert where_conditions(normalize_filters({"pinned": "false"})) == ["pinned_deployment_id IS NULL"]
    with pytest.raises(InputError, match="filters.pinned"):
        normalize_filters({"pinned": "maybe"})


def test_columns_come_from_the_fixed_list_only():
    with pytest.raises(InputError, match="unknown column"):
        check_columns(["id", "status; DROP"])
    with pytest.raises(InputError, match="unknown column"):
        select_sql(["id", "1=1"], [])


def test_select_sql_orders_and_limits():
    sql = select_sql(["id", "status"], ["status = 'paused'"], "oldest_first", 10)
    assert sql == ("SELECT id, status FROM sys_invocation WHERE status = 'paused' "
                   "ORDER BY created_at ASC, id ASC LIMIT 10")
    with pytest.raises(InputError, match="order"):
        select_sql(["id"], [], "random")


def test_other_statements():
    assert count_by_status_sql([]) == "SELECT status, COUNT(*) AS count FROM sys_invocation GROUP BY status"
    assert ids_condition([GOOD_ID]) == f"id IN ('{GOOD_ID}')"
    assert f"WHERE id = '{GOOD_ID}' ORDER BY index" in journal_sql(GOOD_ID)
    with pytest.raises(InputError):
        ids_condition(["inv_x' OR '1'='1"])


@pytest.mark.parametrize("value, expected", [(0, 0), (5, 5), ("7", 7), (" 3 ", 3)])
def test_min_retry_count_becomes_a_bound_on_retry_count(value, expected):
    filters = normalize_filters({"min_retry_count": value})
    assert filters == {"min_retry_count": expected}
    assert where_conditions(filters) == [f"retry_count >= {expected}"]


@pytest.mark.parametrize("value", [-1, "-1", "1; DROP", 1.5, True, "many", [3]])
def test_min_retry_count_rejects_what_is_not_a_count(value):
    with pytest.raises(InputError, match=r"filters\.min_retry_count: expected a whole number"):
        normalize_filters({"min_retry_count": value})


def test_keyset_paging_continues_after_the_last_row_in_the_oldest_first_order():
    condition = after_condition({"created_at": "2026-11-25T03:43:55.596Z", "id": "inv_1abc"})
    assert condition == ("(created_at > TIMESTAMP '2026-11-25T03:43:55.596Z' OR (created_at = TIMESTAMP "
                         "'2026-11-25T03:43:55.596Z' AND id > 'inv_1abc'))")
    assert ORDERS["oldest_first"] == "created_at ASC, id ASC", "the keyset must follow the selection's order"


def test_keyset_values_are_quoted_literals():
    condition = after_condition({"created_at": "2026' OR '1'='1", "id": "x') OR (1=1"})
    assert "TIMESTAMP '2026'' OR ''1''=''1'" in condition and "id > 'x'') OR (1=1'" in condition
