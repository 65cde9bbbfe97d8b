"""Bad input against a real server, through ansible-playbook -vvv on both hosts of a module's work.

The first task of each pair runs in Ansible's worker (connection local), the second as a module process (a task
``environment`` hands it to the module; see test_controller_run.py). No secret may show in the output in any form,
and every refusal names its option before any request.
"""

from __future__ import annotations

import json
import re
import ssl
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fault_proxy import FaultProxy
from harness.server import free_port
from test_controller_run import AS_MODULE, INFO
from test_invocation import MODULE

CORE = "s3cr3t-TOKEN-value-Qx7Zk9"
# Each a token as it may be stored: the trailing newline of a YAML block scalar, a Windows line end, a Unicode
# line separator, quotes, very long.
WORKING_TOKENS = [CORE + "\n", CORE + "\r\n", "  " + CORE + "\u2028", CORE + "'\"quoted\"'", "\t" + CORE * 400 + "\n"]
REFUSED_TOKENS = [CORE + "\nX-Injected: 1", CORE + "\r\n" + CORE, CORE + "\u2028" + CORE, CORE + " " + CORE,
                  CORE + "\x1b[31m", CORE * 1000]


def forms(secret: str) -> set:
    """A secret raw, escaped (repr, JSON), percent-encoded, and every 8 characters in a row of its letter/digit runs."""
    found = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret), quote(secret, safe="")}
    for run in re.findall(r"[A-Za-z0-9]{8,}", secret):
        found |= {run[i:i + 8] for i in range(len(run) - 7)}
    return {form for form in found if len(form) >= 8}


def assert_hidden(secrets, *texts):
    shown = "\n".join(texts)
    for secret in secrets:
        leaked = sorted(form for form in forms(secret) if form in shown)
        assert not leaked, f"secret shown as {leaked[:3]}"


def both_hosts(tasks) -> list:
    """Every task twice: in the worker, then as a module process."""
    return [variant for task in tasks for variant in (task, dict(task, **AS_MODULE))]


def test_a_token_with_whitespace_around_it_works_and_is_never_shown(restate, ansible):
    ids = restate.make("completed-success", len(WORKING_TOKENS) * 2)
    tasks = both_hosts([{INFO: {"id": ids[0], "token": token}} for token in WORKING_TOKENS])
    # The same tokens on a task that changes something: the calls went out with the token.
    tasks += [dict(task, **{MODULE: {"id": invocation_id, "state": "purged", "token": token}})
              for invocation_id, (token, task) in zip(ids, [(t, h) for t in WORKING_TOKENS for h in ({}, AS_MODULE)])]
    results = ansible.run_tasks(tasks, extra_args=("-vvv",))
    for task, result in zip(tasks, results):
        assert not result["failed"], (task.keys(), result.get("msg"))
    assert all(r["changed"] for r in results[len(WORKING_TOKENS) * 2:])
    assert all(restate.row(i) is None for i in ids)
    assert "AnsiballZ_restate_invocation" in ansible.last_output  # the module process ran too
    assert_hidden(WORKING_TOKENS, ansible.last_output, json.dumps(results))


def test_a_token_with_a_line_break_inside_is_refused_by_name_and_never_shown(restate, ansible):
    invocation_id = restate.make("completed-success")[0]
    tasks = both_hosts([{MODULE: {"id": invocation_id, "state": "purged", "token": token}} for token in REFUSED_TOKENS])
    tasks += both_hosts([{MODULE: {"id": invocation_id, "state": "purged",
                                   "headers": {"X-Api-Key": token}}} for token in REFUSED_TOKENS[:3]])
    results = ansible.run_tasks(tasks, extra_args=("-vvv",))
    for result in results[:len(REFUSED_TOKENS) * 2]:
        assert result["failed"] and result["msg"].startswith("token: "), result["msg"]
    for result in results[len(REFUSED_TOKENS) * 2:]:
        assert result["failed"] and result["msg"].startswith("headers.X-Api-Key: contains a line break")
    assert restate.row(invocation_id) is not None  # nothing was sent
    assert_hidden(REFUSED_TOKENS, ansible.last_output, json.dumps(results))


@pytest.mark.parametrize("token, works", [(CORE + "\n", True), ("\t" + CORE + "\r\n", True),
                                          (CORE + "\n" + CORE, False)])
def test_a_token_from_the_environment_is_treated_alike(restate, ansible, token, works):
    tasks = both_hosts([{INFO: {"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ"}}])
    results = ansible.run_tasks(tasks, env={"RESTATE_AUTH_TOKEN": token}, extra_args=("-vvv",))
    for result in results:
        if works:
            assert not result["failed"] and result["count"] == 0, result
        else:
            assert result["failed"] and result["msg"].startswith("token: contains a line break"), result["msg"]
    assert_hidden([token], ansible.last_output, json.dumps(results))


CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the server is "down"
ROWS = [  # (task, the start of its message): the issue's rows about input
    ({MODULE: {"admin_url": "127.0.0.1:9070"}}, "admin_url: '127.0.0.1:9070' has no scheme; add http:// (or "
                                                "https:// for TLS), e.g. http://127.0.0.1:9070"),
    ({MODULE: {"admin_url": "ftp://127.0.0.1:9070"}}, "admin_url: 'ftp://127.0.0.1:9070' uses ftp://; the Admin API "
                                                      "speaks http:// or https://"),
    ({MODULE: {"admin_url": ""}}, "admin_url: empty; give the Admin API's URL, e.g. http://localhost:9070"),
    ({MODULE: {"ca_path": "/nonexistent.pem"}}, "ca_path: /nonexistent.pem does not exist"),
    ({MODULE: {"headers": {"X-Api-Key": CORE + "\n" + CORE}}}, "headers.X-Api-Key: contains a line break"),
    ({MODULE: {"state": "resumed", "deployment": "dp_bogus"}}, "deployment: 'dp_bogus' is neither latest, keep nor "
                                                               "a deployment id"),
    ({INFO: {"journal": True, "filters": {"service": "Tester"}}}, "journal: a journal is read for one invocation only; give id"),
    ({MODULE: {"id": None, "filters": {"completed_before": "1 month"}, "admin_url": CLOSED}},
     "filters.completed_before: '1 month' is neither an RFC 3339 timestamp nor an age; use e.g. "),
    ({INFO: {"filters": {"completed_before": "1 month"}, "admin_url": CLOSED}},
     "filters.completed_before: '1 month' is neither an RFC 3339 timestamp nor an age; use e.g. "),
]


def test_the_issues_rows_are_refused_by_name_before_any_request(restate, ansible):
    invocation_id = restate.make("completed-success")[0]
    tasks = []
    for task, unused_expected in ROWS:
        (module, args), = task.items()
        base = {"id": invocation_id, "state": "purged"} if module == MODULE else {}
        args = {key: value for key, value in dict(base, **args).items() if value is not None}
        tasks.append({module: args})
    results = ansible.run_tasks(both_hosts(tasks), extra_args=("-vvv",))
    for n, (unused_task, expected) in enumerate(ROWS):
        for result in results[2 * n:2 * n + 2]:
            assert result["failed"] and result["msg"].startswith(expected), (expected, result["msg"])
    assert restate.row(invocation_id) is not None  # not purged by any of them
    assert_hidden([CORE + "\n" + CORE], ansible.last_output, json.dumps(results))


def test_a_real_deployment_id_gets_past_the_check_to_the_server(restate, ansible):
    paused = restate.make("paused")[0]
    deployment = restate.query("SELECT id FROM sys_deployment")[0]["id"]
    result = ansible.run(MODULE, {"id": paused, "state": "resumed", "deployment": deployment})
    # The server read the id as a deployment's (a malformed one gets HTTP 400 "unrecognized codec version") and
    # answered for this invocation: the test service's paused invocations are not pinned to a deployment yet.
    error = result["invocations"][0]["error"]
    assert "resume failed" in error and "deployment id cannot be changed" in error, error
    assert "codec" not in error
    keep = ansible.run(MODULE, {"id": paused, "state": "resumed", "deployment": "keep"})
    assert keep["changed"] and not keep["failed"], keep


# Generated tokens, both refused and accepted ones, on both hosts at -vvv.
ODD = ["\n", "\r\n", "\r", "\t", " ", "\u2028", "\u2029", "\x85", "\x0b", "\x00", "\x1b", "\u200b", "'", '"', "\\",
       "%0a", "é"]
core = st.lists(st.sampled_from("QXZJKVWqxzjkvw23456789"), min_size=12, max_size=60).map(
    lambda chars: "Sx9" + "".join(chars))
edge = st.lists(st.sampled_from(ODD), max_size=3).map("".join)
generated_token = st.one_of(st.tuples(edge, core, edge).map("".join),
                            st.tuples(edge, core, st.sampled_from(ODD), core, edge).map("".join),
                            st.tuples(core, st.integers(1, 400)).map(lambda pair: pair[0] * pair[1]))


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(tokens=st.lists(generated_token, min_size=8, max_size=8))
def test_generated_tokens_are_never_shown(restate, ansible, tokens):
    tokens = [token for token in tokens if "\x00" not in token]  # Ansible refuses NUL in YAML itself
    tasks = both_hosts([{INFO: {"id": "inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ", "token": token, "limit": 1}}
                        for token in tokens])
    results = ansible.run_tasks(tasks, extra_args=("-vvv",))
    for token, pair in zip(tokens, zip(results[::2], results[1::2])):
        for result in pair:
            if result["failed"]:
                assert result["msg"].startswith("token: "), result["msg"]
            else:
                assert result["count"] == 0
        assert pair[0]["failed"] == pair[1]["failed"]
    assert_hidden(tokens, ansible.last_output, json.dumps(results))


def test_an_admin_url_with_a_path_works_behind_a_proxy_that_serves_the_api_under_it(restate, ansible):
    proxy = FaultProxy(restate.admin_url, prefix="/restate-admin")
    try:
        ids = restate.make("completed-success", 6)
        url = proxy.url + "/restate-admin/"
        tasks = [{MODULE: {"ids": ids[:2], "state": "purged", "admin_url": url}},  # the batch route
                 dict(AS_MODULE, **{MODULE: {"ids": ids[2:4], "state": "purged", "admin_url": url}}),
                 {MODULE: {"ids": ids[4:], "state": "purged", "admin_url": url, "batch_calls": False}},  # pipelined
                 {INFO: {"filters": {"service": "Tester"}, "limit": 1, "admin_url": url}}]
        results = ansible.run_tasks(tasks)
        assert [r["changed"] for r in results[:3]] == [True] * 3 and not any(r["failed"] for r in results), results
        assert all(restate.row(i) is None for i in ids)
        assert proxy.requests and all(line.split(" ")[1].startswith("/restate-admin/") for line in proxy.requests)
        assert any("PATCH /restate-admin/invocations/" in line for line in proxy.requests)
    finally:
        proxy.close()


def test_a_server_that_is_not_the_admin_api_is_named_as_such(restate, ansible, pki):
    # The real ingress port answers "bad path"; a TLS terminator reached over http:// and the admin port over
    # https:// say which scheme to use.
    invocation_id = restate.make("completed-success")[0]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    terminator = FaultProxy(restate.admin_url, tls_context=context)
    try:
        tasks = [{MODULE: {"id": invocation_id, "state": "purged", "admin_url": url, "retries": 0}}
                 for url in (restate.ingress_url, terminator.url.replace("https:", "http:"),
                             restate.admin_url.replace("http:", "https:"))]
        results = ansible.run_tasks(both_hosts(tasks))
    finally:
        terminator.close()
    for n, expected in enumerate(("Restate ingress", "use https://", "use http://")):
        for result in results[2 * n:2 * n + 2]:  # in the worker and as a module process
            assert result["failed"] and expected in result["msg"], (expected, result["msg"])
    assert "9070" in results[0]["msg"]
    assert restate.row(invocation_id) is not None
