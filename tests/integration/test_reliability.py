"""Faults and hostile conditions, against the real server through a real proxy that misbehaves on demand.

Nothing may be lost silently: after every fault, SQL on the server proves what the task reported.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from harness.fault_proxy import FaultProxy
from harness.load import invocations_of, make_by_fan_out, ok_count
from harness.playbook import ROOT, run_with_peak_rss
from harness.server import CLI_BIN, Restate, server_version, sql_ids, wait_until

MODULE = "restate.admin.restate_invocation"
INFO = "restate.admin.restate_invocation_info"
TOKEN = "rel-token-5d1f0b7a"


@pytest.fixture
def proxy(restate):
    instance = FaultProxy(restate.admin_url)
    yield instance
    instance.close()


def suspended(restate, count):
    return restate.make("suspended", count)


def completions(restate, ids) -> dict:
    rows = restate.query(f"SELECT id, status, completion_failure FROM sys_invocation WHERE id IN ({sql_ids(ids)})")
    return {row["id"]: (row["status"], row.get("completion_failure")) for row in rows}


def test_503_bursts_are_retried_with_warnings(restate, ansible, proxy):
    ids = suspended(restate, 40)
    proxy.add("status503", 2)  # the version check and the first query
    proxy.add("status503", 6, match="/cancel")
    result = ansible.run(MODULE, {"admin_url": proxy.url, "ids": ids, "state": "cancelled", "wait": True})
    assert not result["failed"], result["msg"]
    assert result["summary"]["changed"] == 40
    assert any("503" in warning and "retrying" in warning for warning in result["warnings"])
    assert set(completions(restate, ids).values()) == {("completed", "[409] cancelled")}


def test_connection_resets_before_and_after_the_request_lose_nothing(restate, ansible, proxy):
    ids = suspended(restate, 60)
    proxy.add("reset_before", 3, match="/kill")
    proxy.add("reset_after", 3, match="/kill")  # killed on the server, answer lost: the repeat hears 409
    result = ansible.run(MODULE, {"admin_url": proxy.url, "ids": ids, "state": "killed", "wait": True})
    assert not result["failed"], result["msg"]
    assert result["summary"]["changed"] == 60 and result["summary"]["failed"] == 0
    assert set(completions(restate, ids).values()) == {("completed", "[409] killed")}


def test_lost_purge_answers_are_not_reported_as_failures(restate, ansible, proxy):
    ids = restate.make("completed-success", 20)
    proxy.add("reset_after", 4, match="/purge")  # purged, answer lost; the repeat hears 404
    result = ansible.run(MODULE, {"admin_url": proxy.url, "ids": ids, "state": "purged"})
    assert not result["failed"], result["msg"]
    assert {item["after"] for item in result["invocations"]} == {"absent"}
    assert completions(restate, ids) == {}


def test_refusals_on_the_bulk_path_keep_the_servers_words(restate, client):
    """The server compresses answers when asked; the pipelined path asks for plain ones and quotes them."""
    ids = restate.make("completed-success", 3)
    errors = client.invocations.actions(ids, "kill")
    for invocation_id, error in zip(ids, errors):
        assert error is not None and error.status == 409
        assert error.message == f"The invocation '{invocation_id}' was already completed.", str(error)


def test_compressed_answers_read_as_plain_ones(restate):
    """Over a network the session takes gzip (over loopback it asks for plain answers): both read the same."""
    from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient, RestateApiError

    ids = restate.make("completed-success", 2)
    sql = f"SELECT id, status FROM sys_invocation WHERE id IN ('{ids[0]}', '{ids[1]}') ORDER BY id"
    answers = {}
    for encoding in ("gzip", "identity"):
        with AdminClient(restate.admin_url, headers={"Accept-Encoding": encoding}) as admin:
            response = admin.request("POST", "/query", json_body={"query": sql})
            # 1.6 answers /query uncompressed whatever is asked.
            compressed = encoding == "gzip" and server_version() >= (1, 7, 0)
            assert response.headers.get("content-encoding") == ("gzip" if compressed else None)
            with pytest.raises(RestateApiError) as refused:
                admin.invocations.action(ids[0], "kill")
            answers[encoding] = (admin.query(sql), refused.value.status, refused.value.message)
    assert answers["gzip"] == answers["identity"]
    assert answers["gzip"][1:] == (409, f"The invocation '{ids[0]}' was already completed.")


def test_restart_as_new_whose_answer_was_lost_is_not_made_twice(restate, ansible, proxy):
    original = restate.make("completed-success", 1)[0]
    proxy.add("reset_after", 1, match="/restart-as-new")
    result = ansible.run(MODULE, {"admin_url": proxy.url, "id": original, "state": "restarted"})
    assert not result["failed"], result["msg"]
    restarts = restate.query(f"SELECT id FROM sys_invocation WHERE restarted_from = '{original}'")
    assert len(restarts) == 1, "exactly one restart on the server"
    assert result["invocations"][0]["new_invocation_id"] == restarts[0]["id"]
    assert "lost" in result["invocations"][0]["note"]
    assert sum("/restart-as-new" in line for line in proxy.requests) == 1, "restart-as-new is never repeated"


def test_added_latency_slows_but_does_not_break_a_bulk_task(restate, ansible, proxy):
    ids = suspended(restate, 30)
    proxy.latency = 0.05
    result = ansible.run(MODULE, {"admin_url": proxy.url, "ids": ids, "state": "killed"})
    assert not result["failed"] and result["summary"]["changed"] == 30


def test_a_stall_past_timeout_fails_within_the_timeout_budget_and_names_admin_url(restate, ansible, proxy):
    ids = suspended(restate, 3)
    proxy.add("stall", 100, match="/kill")
    started = time.monotonic()
    result = ansible.run(MODULE, {"admin_url": proxy.url, "ids": ids, "state": "killed", "timeout": 1, "retries": 1})
    elapsed = time.monotonic() - started
    assert result["failed"] and result["summary"]["failed"] == 3
    assert elapsed < 30
    # batch calls (requests) and pipelined ones both name the time-out, for the whole answer, and admin_url
    assert "within timeout=1s" in result["msg"] and proxy.url in result["msg"]
    assert set(completions(restate, ids).values()) == {("suspended", None)}, "a stalled call did nothing"


def test_token_required_by_a_proxy(restate, ansible, proxy):
    proxy.token = TOKEN
    missing = ansible.run(INFO, {"admin_url": proxy.url, "filters": {"status": "suspended"}, "limit": 1})
    assert missing["failed"] and "HTTP 401" in missing["msg"] and f"admin_url={proxy.url}" in missing["msg"]
    assert "token" in missing["msg"]
    wrong = ansible.run(INFO, {"admin_url": proxy.url, "token": "not-the-token", "limit": 1})
    assert wrong["failed"] and "HTTP 403" in wrong["msg"]
    by_option = ansible.run(INFO, {"admin_url": proxy.url, "token": TOKEN, "limit": 1})
    assert not by_option["failed"], by_option["msg"]
    by_env = ansible.run(INFO, {"admin_url": proxy.url, "limit": 1}, env={"RESTATE_AUTH_TOKEN": TOKEN})
    assert not by_env["failed"], by_env["msg"]


def test_the_token_never_shows_in_output_results_or_vvvv_logs(restate, ansible, proxy):
    proxy.token = TOKEN
    ids = suspended(restate, 3)
    tasks = [{MODULE: {"admin_url": proxy.url, "token": TOKEN, "ids": ids, "state": "killed"}},
             {MODULE: {"admin_url": proxy.url, "token": TOKEN, "ids": ids + ["inv_1nope0000000000000000000000000000"],
                       "state": "paused"}},
             {INFO: {"admin_url": proxy.url, "token": TOKEN, "id": ids[0], "journal": True}}]
    results = ansible.run_tasks(tasks, extra_args=("-vvvv",), diff=True)
    assert not results[0]["failed"] and results[1]["failed"] and not results[2]["failed"]
    assert TOKEN not in ansible.last_output
    assert TOKEN not in json.dumps(results)
    assert all(auth == f"Bearer {TOKEN}" for auth in proxy.seen_authorization), "the token was sent"


@pytest.mark.parametrize("require_client_cert", [False, True])
def test_tls_terminator_in_front_of_the_admin_api(restate, ansible, pki, require_client_cert):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if require_client_cert:
        context.load_verify_locations(pki / "ca.pem")
        context.verify_mode = ssl.CERT_REQUIRED
    terminator = FaultProxy(restate.admin_url, tls_context=context)
    try:
        ids = suspended(restate, 5)
        unknown_ca = ansible.run(MODULE, {"admin_url": terminator.url, "ids": ids, "state": "killed"})
        assert unknown_ca["failed"] and "TLS" in unknown_ca["msg"] and "ca_path" in unknown_ca["msg"]
        args = {"admin_url": terminator.url, "ids": ids, "state": "killed", "ca_path": str(pki / "ca.pem"),
                "retries": 0}
        if require_client_cert:
            without = ansible.run(MODULE, args)
            assert without["failed"]
            args.update(client_cert=str(pki / "client.pem"), client_key=str(pki / "client.key"))
        trusted = ansible.run(MODULE, args)
        assert not trusted["failed"], trusted["msg"]
        assert trusted["summary"]["changed"] == 5
        assert set(completions(restate, ids).values()) == {("completed", "[409] killed")}
    finally:
        terminator.close()


def test_unreachable_wrong_port_dns_and_a_foreign_server_fail_clearly(ansible):
    class Foreign(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<html>not restate</html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        urls = {"refused": "http://127.0.0.1:9", "dns": "http://restate.invalid:9070",
                "foreign": f"http://127.0.0.1:{foreign.server_address[1]}"}
        tasks = [{INFO: {"admin_url": url, "limit": 1, "timeout": 3, "retries": 1}} for url in urls.values()]
        started = time.monotonic()
        refused, dns, other = ansible.run_tasks(tasks)
        assert time.monotonic() - started < 60
    finally:
        foreign.shutdown()
    assert refused["failed"] and "Cannot reach the Restate Admin API at admin_url=http://127.0.0.1:9" in refused["msg"]
    assert dns["failed"] and "admin_url=http://restate.invalid:9070" in dns["msg"]
    assert other["failed"] and "is admin_url a Restate Admin API?" in other["msg"]


@pytest.fixture
def own_server(tmp_path):
    """A server of its own: this test kills it."""
    instance = Restate(tmp_path / "killed").start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.mark.parametrize("count", [3000, pytest.param(10_000, marks=pytest.mark.load)])
def test_server_killed_and_restarted_mid_bulk_loses_nothing(own_server, ansible, count):
    restate = own_server
    ids = suspended(restate, count)

    def kill_and_restart():
        time.sleep(2.5)  # ansible start-up plus part of the calls
        restate.server.stop(signal.SIGKILL)
        time.sleep(1)
        restate.server.restart()

    chaos = threading.Thread(target=kill_and_restart)
    chaos.start()
    first = ansible.run(MODULE, {"admin_url": restate.admin_url, "ids": ids, "state": "cancelled", "wait": True,
                                 "wait_timeout": 60, "retries": 6})
    chaos.join()
    restate.wait_healthy()
    if first["failed"]:
        # Either it failed while reading, before acting on anything (no invocations listed), or it names
        # every invocation whose outcome it could not confirm.
        failed = {item["id"] for item in first["invocations"] if "error" in item}
        assert failed or not first["invocations"], f"unnamed failure: {first['msg']}"
        assert failed <= set(ids)
    second = ansible.run(MODULE, {"admin_url": restate.admin_url, "ids": ids, "state": "cancelled", "wait": True,
                                  "wait_timeout": 120})
    assert not second["failed"], second["msg"]
    final = completions(restate, ids)
    assert len(final) == len(ids), "no invocation went missing"
    assert set(final.values()) == {("completed", "[409] cancelled")}


def test_a_selection_whose_answer_breaks_off_is_read_again_after_its_last_row(own_server, ansible):
    ids = own_server.make("completed-success", 2000)
    proxy = FaultProxy(own_server.admin_url)
    try:
        # The count of the selection goes through; the selection's answer (about 260 KB) breaks off half way.
        proxy.add("none", 1, match="POST /query")
        proxy.add("cut_half", 1, match="POST /query")
        result = ansible.run(MODULE, {"admin_url": proxy.url, "filters": {"service": "Tester", "handler": "ok"},
                                      "state": "purged", "report": "failed", "limit": 5000},
                             env={"RESTATE_ADMIN_TEST_PAGE_ROWS": "300"})
    finally:
        proxy.close()
    assert not result["failed"], result["msg"]
    assert result["summary"]["changed"] == 2000 and result["summary"]["failed"] == 0, result["summary"]
    assert completions(own_server, ids) == {}, "every one purged, once (a second purge would have failed)"
    assert sum(1 for line in proxy.requests if line.startswith("POST /query")) == 3, proxy.requests


# -- hostile input: generated values, run as real queries, compared with a Python-side filter --------------------
TRICKY_KEYS = ["it's", "a'; DELETE FROM sys_invocation; --", "100%", "_", "%_%", "back\\slash", "ünï☃😀", "--",
               "/* c */", "tab\tx", "''", "O'Brien's", "\\'", "x" * 300, "semi;colon", " lead", "trail ", "LIKE"]


@pytest.fixture(scope="module")
def tricky(restate):
    ids = [restate.send(f"Holder/{urllib.parse.quote(key, safe='')}/hold", 0) for key in TRICKY_KEYS]
    restate.wait_statuses(ids, "completed")
    return ids


def test_generated_filter_values_match_literally_on_the_real_server(restate, client, tricky):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ansible_collections.restate.admin.plugins.module_utils._selection import (
        InputError, normalize_filters, select_sql, where_conditions)

    columns = {"service": "target_service_name", "handler": "target_handler_name", "key": "target_service_key",
               "idempotency_key": "idempotency_key"}
    rows = restate.query("SELECT id, target_service_name, target_handler_name, target_service_key, idempotency_key "
                         "FROM sys_invocation")
    known = sorted({row.get(c) for row in rows for c in columns.values() if row.get(c)})
    values = st.one_of(st.sampled_from(known), st.text(max_size=40),
                       st.sampled_from(known).map(lambda v: v + "%"), st.sampled_from(known).map(lambda v: v[:-1]),
                       st.sampled_from(known).map(lambda v: v.replace("'", "''")))
    checked = {"matched": 0, "rejected": 0, "queries": 0}

    @settings(max_examples=10000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(option=st.sampled_from(sorted(columns)), value=values)
    def check(option, value):
        try:
            filters = normalize_filters({option: value})
        except InputError as error:
            assert f"filters.{option}" in str(error)
            assert "\x00" in value or not value or len(value) > 4096
            checked["rejected"] += 1
            return
        found = {row["id"] for row in client.query(select_sql(["id"], where_conditions(filters), "oldest_first"))}
        expected = {row["id"] for row in rows if row.get(columns[option]) == filters[option]}
        assert found == expected, (option, value)
        checked["queries"] += 1
        checked["matched"] += bool(found)

    check()
    assert checked["queries"] + checked["rejected"] >= 10000
    # hypothesis does not repeat an example, so exact hits are bounded by the distinct (option, known value) pairs
    assert checked["matched"] >= 50, "generated values hit real rows, so literal matching is proven, not just misses"


LOAD_N = int(os.environ.get("LOAD_N", "1000000"))
SUSPENDED_N = int(os.environ.get("LOAD_SUSPENDED_N", "200000"))
PURGE_SECTION = "## Purge in one task, beside the raw batch route and the CLI"
SUSPENDED_SECTION = "## Cancel and kill of suspended invocations in one task"
RAW_BATCHES = ROOT / "bench" / "raw_batches.py"
TASK_WAY = "restate_invocation, one ansible-playbook task, `report: failed`"
RAW_WAY = "the server's batch route driven raw (bench/raw_batches.py: one SQL query, 1,000 ids a call, 2 in flight)"
CLI_WAY = "official CLI, one process"


class Contenders:
    """One bulk action on as many invocations, made afresh for each way of doing it, side by side on one server: the
    module's task, the server's batch route driven raw (the physical limit here) and the official CLI. Each way's
    figures: (seconds, peak RSS in MB of its largest process, load average as it started, note)."""

    def __init__(self, server, handler, total, say):
        self.server, self.handler, self.total, self.say = server, handler, total, say
        self.figures = {}
        self.made_seconds = []

    def make(self, tag):
        seconds = make_by_fan_out(self.server, self.total, tag, handler=self.handler)
        self.made_seconds.append(seconds)
        self.say(f"made {self.total:,} Tester/{self.handler} in {seconds:.0f} s ({self.total / seconds:,.0f}/s)")

    def task(self, ansible, state):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = ansible.run(MODULE, {"filters": {"service": "Tester", "handler": self.handler}, "state": state,
                                      "report": "failed", "limit": self.total},
                             env={"RESTATE_ADMIN_URL": self.server.admin_url})
        seconds = time.perf_counter() - started
        assert not result["failed"], result.get("msg")
        assert result["summary"]["changed"] == self.total and result["invocations"] == []
        pending = result["summary"].get("pending", 0)
        self.record(TASK_WAY, seconds, ansible.last_peak_mb, load, f"{pending:,} reported pending" if pending else "")
        return result

    def raw(self, action):
        load = os.getloadavg()[0]
        proc, seconds, peak_mb = run_with_peak_rss([sys.executable, str(RAW_BATCHES), self.server.admin_url, action,
                                                    "Tester", self.handler], dict(os.environ))
        assert proc.returncode == 0, proc.stderr[-2000:]
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        assert figures["selected"] == figures["done"] == self.total, figures
        self.record(RAW_WAY, seconds, peak_mb, load, f"selection {figures['selection_seconds']:.1f} s")

    def cli(self, verb_args):
        env = dict(os.environ, RESTATE_ADMIN_URL=self.server.admin_url, RESTATE_HOST="127.0.0.1", NO_COLOR="1",
                   CLICOLOR="0", RESTATE_NO_TELEMETRY="1")
        load = os.getloadavg()[0]
        proc, seconds, peak_mb = run_with_peak_rss(
            [str(CLI_BIN), "invocations", *verb_args, f"Tester/{self.handler}", "--limit", str(self.total), "--yes"],
            env)
        assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        self.record(CLI_WAY, seconds, peak_mb, load, "")

    def record(self, way, seconds, peak_mb, load, note):
        self.figures[way] = (seconds, peak_mb, load, note)
        self.say(f"{way}: {seconds:.1f} s ({self.total / seconds:,.0f}/s), {peak_mb:.0f} MB peak RSS"
                 + (f", {note}" if note else ""))

    def ratio(self, way, to) -> float:
        return self.figures[to][0] / self.figures[way][0]

    def table(self, title):
        rows = [f"| {title} | {way} | {seconds:.1f} | {self.total / seconds:,.0f} | {self.ratio(way, RAW_WAY):.2f}x | "
                f"{self.ratio(way, CLI_WAY):.2f}x | {peak_mb:.0f} MB | {load:.1f} | {note} |"
                for way, (seconds, peak_mb, load, note) in self.figures.items()]
        return rows


TABLE_HEAD = ["| action | way | seconds | invocations/s | ratio to raw | ratio to CLI | peak RSS, largest process | "
              "load average at start | note |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]


@pytest.mark.load
def test_a_million_purged_in_one_task_beside_the_raw_batch_route_and_the_cli(tmp_path, ansible, capsys):
    """Load: LOAD_N (a million) completed invocations purged by one `report: failed` task, every process of
    ansible-playbook at or under 150 MB peak RSS; then as many, made again, by the batch route driven raw, then by
    the official CLI. The figures are printed as they come (make load shows them), and written into
    docs/benchmarks.md for a run of 100,000 or more."""

    def say(line):
        with capsys.disabled():
            print(line, flush=True)

    server = Restate(tmp_path / "million").start()
    try:
        # HTTP/2 to the service: over HTTP/1.1 the server opens a connection per invocation in flight, more than the
        # service's listen backlog takes (connect errors, retries, a creation rate that falls to a quarter)
        server.http.post(f"{server.admin_url}/deployments", json={"uri": server.service.url, "use_http_11": False,
                                                                  "force": True}, timeout=30).raise_for_status()
        contenders = Contenders(server, "ok", LOAD_N, say)
        contenders.make("task")
        contenders.task(ansible, "purged")
        assert ok_count(server) == 0, "every invocation purged"
        contenders.make("raw")
        contenders.raw("purge")
        assert ok_count(server) == 0, "the raw batches purged every invocation"
        contenders.make("cli")
        contenders.cli(["purge"])
        assert ok_count(server) == 0, "the CLI purged every invocation"
        if LOAD_N >= 100_000:
            record_section(PURGE_SECTION, "\n".join([
                PURGE_SECTION, "", measured_by(f"LOAD_N={LOAD_N}", contenders) + f"{LOAD_N:,} completed `Tester/ok` "
                "invocations purged by one `restate_invocation` task (`filters: {service: Tester, handler: ok}`, "
                "`state: purged`, `report: failed`, `limit` the count) through `ansible-playbook`; as many made "
                "again and purged by the batch route driven raw, then by the official CLI (`restate invocations "
                f"purge Tester/ok --limit {LOAD_N} --yes`). Target: at least 0.8x the raw route and 2x the CLI, "
                "150 MB.", "", *TABLE_HEAD, *contenders.table("purge"), "",
                f"The restate-server's own peak RSS over the whole run: {server_peak_rss_mb(server):.0f} MB.", ""]))
        peak_mb = contenders.figures[TASK_WAY][1]
        assert peak_mb <= 150, f"a process of the task peaked at {peak_mb:.0f} MB purging {LOAD_N:,}"
    finally:
        server.stop()
        shutil.rmtree(server.workdir / "data", ignore_errors=True)  # gigabytes at a million


def measured_by(knob, contenders) -> str:
    made = ", ".join(f"{seconds:.0f}" for seconds in contenders.made_seconds)
    return (f"Measured by `make load` ({time.strftime('%Y-%m-%d')}, `{knob}`), one run each way on one server, "
            f"{os.cpu_count()} cores, the invocations made by a fan-out handler of the SDK test service before each "
            f"way (in {made} s): ")


def server_peak_rss_mb(server) -> float:
    """The restate-server process's own peak RSS so far (VmHWM), in MB."""
    status = (Path("/proc") / str(server.server.process.pid) / "status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def record_section(title, section):
    """Put ``section`` (starting with its ``title`` line) in docs/benchmarks.md in place of the one there, or at the
    end (make bench keeps the load sections when it rewrites the rest)."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    start = text.find(title)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(title))
        text = text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    path.write_text(text)


SUSPENDED_TABLES = {}  # state -> its rows, for the section written after the last of them


@pytest.mark.load
@pytest.mark.parametrize("state", ["cancelled", "killed"])
def test_suspended_cancelled_or_killed_in_one_task_beside_the_raw_batch_route_and_the_cli(tmp_path, ansible, capsys,
                                                                                          state):
    """Load: LOAD_SUSPENDED_N (200,000) `Tester/sleep` invocations, suspended on a two-hour timer, cancelled (or
    killed) by one `report: failed` task, every process of ansible-playbook at or under 150 MB peak RSS; then as many
    made again for the batch route driven raw, and for the official CLI; after each, SQL shows every one of them
    ended that way."""

    def say(line):
        with capsys.disabled():
            print(line, flush=True)

    server = Restate(tmp_path / state).start()
    failure = "[409] cancelled" if state == "cancelled" else "[409] killed"
    action = "cancel" if state == "cancelled" else "kill"

    def all_ended(rounds):
        def ended():
            return invocations_of(server, "sleep", f" AND completion_failure = '{failure}'") == rounds * SUSPENDED_N
        wait_until(ended, timeout=max(120, SUSPENDED_N / 300), interval=2, what=f"{SUSPENDED_N:,} ended {failure}")
        assert invocations_of(server, "sleep") == rounds * SUSPENDED_N, "nothing else happened to them"

    try:
        server.http.post(f"{server.admin_url}/deployments", json={"uri": server.service.url, "use_http_11": False,
                                                                  "force": True}, timeout=30).raise_for_status()
        # Over HTTP/2 the SDK keeps a sleeping invocation's stream open until the server asks it to suspend, after
        # the inactivity timeout (a minute by default): 10,000 in flight would then make 170 a second
        server.http.patch(f"{server.admin_url}/services/Tester", json={"inactivity_timeout": "1s"},
                          timeout=30).raise_for_status()
        contenders = Contenders(server, "sleep", SUSPENDED_N, say)
        contenders.make(f"{state}-task")
        contenders.task(ansible, state)
        all_ended(1)
        contenders.make(f"{state}-raw")
        contenders.raw(action)
        all_ended(2)
        contenders.make(f"{state}-cli")
        contenders.cli(["cancel"] if state == "cancelled" else ["cancel", "--kill"])
        all_ended(3)
        SUSPENDED_TABLES[state] = (contenders.table(action), measured_by(f"LOAD_SUSPENDED_N={SUSPENDED_N}",
                                                                         contenders))
        if SUSPENDED_N >= 100_000 and len(SUSPENDED_TABLES) == 2:
            record_section(SUSPENDED_SECTION, "\n".join([
                SUSPENDED_SECTION, "", SUSPENDED_TABLES["killed"][1] + f"{SUSPENDED_N:,} `Tester/sleep` invocations "
                "suspended on a two-hour timer, then one `restate_invocation` task (`filters: {service: Tester, "
                "handler: sleep}`, `report: failed`, `limit` the count) through `ansible-playbook`; as many made "
                "again for the batch route driven raw, and for the official CLI (`restate invocations cancel "
                "[--kill] Tester/sleep`); SQL shows every one of them completed with `[409] cancelled` (or `killed`) "
                "before the next way starts, a server of its own for each action. Pending: accepted, not ended yet "
                "when the task read them back. Target: at least 1.3x the CLI, 150 MB.", "", *TABLE_HEAD,
                *SUSPENDED_TABLES["cancelled"][0], *SUSPENDED_TABLES["killed"][0], ""]))
        peak_mb = contenders.figures[TASK_WAY][1]
        assert peak_mb <= 150, f"a process of the task peaked at {peak_mb:.0f} MB ({state}, {SUSPENDED_N:,})"
    finally:
        server.stop()
        shutil.rmtree(server.workdir / "data", ignore_errors=True)


@pytest.mark.load
def test_100000_invocations_listed_counted_and_purged_in_one_task(tmp_path, ansible):
    """Load: counts match SQL, one task purges all of them, memory stays bounded both ways the code runs."""
    server = Restate(tmp_path / "load").start()
    try:
        total = 100_000

        def make_completed(tag):
            make_by_fan_out(server, total, tag)

        make_completed("load")
        env = {"RESTATE_ADMIN_URL": server.admin_url}
        selection = {"target": "Tester/ok", "status": ["completed"]}
        listed = ansible.run(INFO, {"filters": {"target": "Tester/ok"}, "limit": 1, "fields": ["id"]}, env=env)
        assert listed["matched"] == total and listed["summary"] == {"completed": total}
        check = ansible.run(MODULE, {"filters": selection, "state": "purged", "limit": total}, check=True, env=env)
        assert check["summary"]["changed"] == total and check["changed"], "the dry run predicts every purge"
        assert server.query("SELECT COUNT(*) AS n FROM sys_invocation")[0]["n"] == total, "only Tester/ok is left"
        # The real run in ansible-playbook, the code in Ansible's worker: no process of the run (the worker, or the
        # main process that gets the result) grows past the bound when the result lists only failures.
        purged = ansible.run(MODULE, {"filters": selection, "state": "purged", "limit": total, "report": "failed"},
                             env=env)
        task_peak_mb = ansible.last_peak_mb
        assert purged["summary"]["changed"] == total and purged["invocations"] == [], purged.get("msg")
        assert server.query("SELECT COUNT(*) AS n FROM sys_invocation")[0]["n"] == 0
        # As on a remote host: the module process alone, with every invocation in its result.
        make_completed("again")
        purged, module_peak_mb, unused_seconds = ansible.run_measured(
            MODULE, {"admin_url": server.admin_url, "state": "purged", "filters": selection, "limit": total})
        assert not purged.get("failed"), purged.get("msg")
        assert purged["summary"]["changed"] == total and len(purged["invocations"]) == total
        assert server.query("SELECT COUNT(*) AS n FROM sys_invocation")[0]["n"] == 0
        print(f"peak RSS purging {total:,}: ansible-playbook task {task_peak_mb:.0f} MB, "
              f"module process {module_peak_mb:.0f} MB")
        assert task_peak_mb <= 150, f"a process of the task peaked at {task_peak_mb:.0f} MB purging {total:,}"
        assert module_peak_mb <= 150, f"the module process peaked at {module_peak_mb:.0f} MB purging {total:,}"
    finally:
        server.stop()
