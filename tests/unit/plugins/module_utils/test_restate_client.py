"""AdminClient against a real local HTTP server that answers as the Restate Admin API does (and as it cannot
be made to: 503 bursts, late start-up)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

ALREADY_COMPLETED = {"message": "The invocation 'inv_1gbO4O3R4kKt0AUtCr5TtqigaNEEA53DU6' was already completed.",
                     "restate_code": None}
BAD_FORMAT = {"message": "The request field 'invocation_id' is invalid. Reason: unrecognized codec version",
              "restate_code": None}
NOT_FOUND = {"message": "The requested invocation 'inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ' does not exist",
             "restate_code": None}
SQL_ERROR = {"message": 'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC")'}
VERSION = {"version": "1.7.12", "min_admin_api_version": 2, "max_admin_api_version": 4}


class ScriptedServer:
    """An HTTP server whose answers are queued per path; it records every request it gets."""

    def __init__(self, port=0, tls_context=None):
        self.answers = {}
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": body})
                queue = outer.answers.get(self.path.split("?")[0]) or [(200, {})]
                status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
                if callable(payload):  # an answer computed from the request's JSON body
                    payload = payload(json.loads(body))
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls_context:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def script(self, path, *answers):
        self.answers[path] = list(answers)

    def count(self, path):
        return sum(1 for r in self.requests if r["path"].split("?")[0] == path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def client_for(url, **kwargs):
    kwargs.setdefault("retry_backoff", 0.01)
    return AdminClient(url, **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("status, body, fragment", [
    (400, BAD_FORMAT, "HTTP 400: The request field 'invocation_id' is invalid"),
    (404, NOT_FOUND, "HTTP 404: The requested invocation 'inv_1foAirY4KKzi6oY45SHQfWYR94XJmfjEiZ' does not exist"),
    (409, ALREADY_COMPLETED, "HTTP 409: The invocation 'inv_1gbO4O3R4kKt0AUtCr5TtqigaNEEA53DU6' was already completed."),
    (425, {"message": "The invocation is inboxed or scheduled", "restate_code": None}, "HTTP 425: The invocation is"),
    (500, "internal error", "HTTP 500: internal error"),
])
def test_error_carries_method_path_status_and_the_servers_message(server, status, body, fragment):
    server.script("/invocations/inv_x/cancel", (status, body))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url()).invocations.action("inv_x", "cancel")
    error = caught.value
    assert (error.method, error.path, error.status) == ("PATCH", "/invocations/inv_x/cancel", status)
    assert fragment in str(error)
    assert f"PATCH {server.url()}/invocations/inv_x/cancel" in str(error)


def test_query_error_shows_the_sql_message(server):
    server.script("/query", (400, SQL_ERROR))
    with pytest.raises(RestateApiError, match="ParserError"):
        client_for(server.url()).query("SELEC 1")


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_name_admin_url_and_token(server, status):
    server.script("/version", (status, {"message": "unauthorized"}))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url()).version()
    text = str(caught.value)
    assert f"admin_url={server.url()}" in text and "token" in text and str(status) in text


def test_503_burst_is_retried_until_success(server):
    server.script("/query", (503, "busy"), (503, "busy"), (200, {"rows": [{"n": 1}]}))
    retries = []
    client = client_for(server.url(), retries=3, on_retry=retries.append)
    assert client.query("SELECT 1 AS n") == [{"n": 1}]
    assert server.count("/query") == 3
    assert len(retries) == 2 and "HTTP 503" in retries[0]


def test_503_beyond_the_retry_budget_fails(server):
    server.script("/query", (503, "busy"))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url(), retries=2).query("SELECT 1")
    assert caught.value.status == 503
    assert server.count("/query") == 3


def test_a_read_is_repeated_after_a_500_from_a_restarting_node_but_an_action_is_not(server):
    shut_down = {"message": "Datafusion error: External error: node N1:2 was shut down or removed"}
    server.script("/query", (500, shut_down), (200, {"rows": []}))
    assert client_for(server.url(), retries=2).query("SELECT 1") == []
    assert server.count("/query") == 2
    server.script("/invocations/inv_x/cancel", (500, "internal"), (202, {}))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url(), retries=2).invocations.action("inv_x", "cancel")
    assert caught.value.status == 500 and server.count("/invocations/inv_x/cancel") == 1


def test_restart_as_new_is_never_repeated_after_a_503(server):
    server.script("/invocations/inv_x/restart-as-new", (503, "busy"), (200, {"new_invocation_id": "inv_y"}))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url(), retries=3).invocations.action("inv_x", "restart-as-new")
    assert caught.value.status == 503
    assert server.count("/invocations/inv_x/restart-as-new") == 1


@pytest.mark.parametrize("status", [400, 404, 409, 425])
def test_client_errors_are_not_retried(server, status):
    server.script("/invocations/inv_x/kill", (status, ALREADY_COMPLETED))
    with pytest.raises(RestateApiError):
        client_for(server.url(), retries=3).invocations.action("inv_x", "kill")
    assert server.count("/invocations/inv_x/kill") == 1


def test_refused_connection_is_retried_until_the_server_listens():
    port = free_port()
    started = []

    def start_later():
        time.sleep(0.3)
        srv = ScriptedServer(port=port)
        srv.script("/version", (200, VERSION))
        started.append(srv)

    thread = threading.Thread(target=start_later)
    thread.start()
    retries = []
    try:
        client = AdminClient(f"http://127.0.0.1:{port}", retries=6, retry_backoff=0.1, on_retry=retries.append)
        assert client.version()["version"] == "1.7.12"
        assert retries, "the first attempt should have been refused"
    finally:
        thread.join()
        for srv in started:
            srv.close()


def test_refused_connection_names_admin_url_when_retries_run_out():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RestateApiError) as caught:
        client_for(url, retries=1).version()
    assert caught.value.reason == "connection"
    assert f"admin_url={url}" in str(caught.value)
    assert "Failed to establish a new connection" in str(caught.value)
    assert "HTTPConnectionPool" not in str(caught.value), "said once, without urllib3's wrapping"


def test_refused_restart_as_new_is_retried_because_nothing_was_sent():
    url = f"http://127.0.0.1:{free_port()}"
    retries = []
    with pytest.raises(RestateApiError):
        client_for(url, retries=2, on_retry=retries.append).invocations.action("inv_x", "restart-as-new")
    assert len(retries) == 2


def test_read_timeout_is_reported_with_admin_url():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(RestateApiError) as caught:
            client_for(url, timeout=0.3, retries=0).version()
    finally:
        listener.close()
    assert caught.value.reason in ("timeout", "connection")
    assert url in str(caught.value)


def test_bearer_token_and_extra_headers_are_sent(server):
    server.script("/version", (200, VERSION))
    client_for(server.url(), token="s3cret", headers={"X-Proxy": "yes"}).version()
    headers = {k.lower(): v for k, v in server.requests[-1]["headers"].items()}
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-proxy"] == "yes"


def test_answers_come_uncompressed_over_loopback_only(server):
    server.script("/version", (200, VERSION))
    client_for(server.url()).version()
    assert {k.lower(): v for k, v in server.requests[-1]["headers"].items()}["accept-encoding"] == "identity"
    for url in ("http://localhost:9070", "http://[::1]:9070", ["http://127.0.0.1:9070", "http://127.0.0.2:9070"]):
        assert client_for(url).transport.session.headers["accept-encoding"] == "identity"
    for url in ("https://restate.example.com:9070", "http://10.0.0.7:9070", ["http://127.0.0.1:9070", "http://node2:9070"]):
        assert "gzip" in client_for(url).transport.session.headers["accept-encoding"]
    assert client_for("http://localhost:9070", headers={"Accept-Encoding": "gzip"}).transport.session.headers[
        "accept-encoding"] == "gzip", "the headers option has the last word"


def test_no_authorization_header_without_token(server):
    server.script("/version", (200, VERSION))
    client_for(server.url()).version()
    assert "authorization" not in {k.lower() for k in server.requests[-1]["headers"]}


def test_query_asks_for_json_and_fills_columns_the_server_leaves_out(server):
    server.script("/query", (200, {"rows": [{"id": "inv_a", "status": "running"}, {"id": "inv_b"}]}))
    rows = client_for(server.url()).query("SELECT id, status FROM sys_invocation", columns=["id", "status"])
    assert rows == [{"id": "inv_a", "status": "running"}, {"id": "inv_b", "status": None}]
    sent = server.requests[-1]
    assert json.loads(sent["body"]) == {"query": "SELECT id, status FROM sys_invocation"}
    assert {k.lower(): v for k, v in sent["headers"].items()}["accept"] == "application/json"


def test_compatible_server_passes_the_version_check(server):
    server.script("/version", (200, VERSION))
    assert client_for(server.url()).check_compatible()["version"] == "1.7.12"


def test_server_without_a_common_admin_api_version_is_refused(server):
    server.script("/version", (200, {"version": "9.0.0", "min_admin_api_version": 7, "max_admin_api_version": 9}))
    with pytest.raises(RestateApiError, match="speaks admin API versions 7-9"):
        client_for(server.url()).check_compatible()


@pytest.mark.parametrize("answer", ["<html>hello</html>", {"status": "ok"}])
def test_a_server_that_is_not_restate_is_named_as_such(server, answer):
    server.script("/version", (200, answer))
    with pytest.raises(RestateApiError, match="Restate Admin API"):
        client_for(server.url()).check_compatible()


# -- TLS ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def tls_server(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    srv = ScriptedServer(tls_context=context)
    srv.script("/version", (200, VERSION))
    yield srv
    srv.close()


def test_unknown_ca_is_rejected_by_default_with_advice(tls_server):
    with pytest.raises(RestateApiError) as caught:
        client_for(tls_server.url("https"), retries=0).version()
    assert caught.value.reason == "tls"
    assert "ca_path" in str(caught.value)


def test_ca_path_makes_the_server_trusted(tls_server, pki):
    assert client_for(tls_server.url("https"), ca_path=str(pki / "ca.pem")).version()["version"] == "1.7.12"


def test_validate_certs_false_skips_verification(tls_server):
    assert client_for(tls_server.url("https"), validate_certs=False).version()["version"] == "1.7.12"


def test_client_certificate_is_presented(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    srv = ScriptedServer(tls_context=context)
    srv.script("/version", (200, VERSION))
    try:
        with pytest.raises(RestateApiError):
            client_for(srv.url("https"), ca_path=str(pki / "ca.pem"), retries=0).version()
        client = client_for(srv.url("https"), ca_path=str(pki / "ca.pem"), client_cert=str(pki / "client.pem"),
                            client_key=str(pki / "client.key"))
        assert client.version()["version"] == "1.7.12"
    finally:
        srv.close()


# -- bulk calls --------------------------------------------------------------------------------------------------
def test_bulk_actions_map_each_answer_to_an_error_or_none(server):
    server.script("/invocations/inv_b/purge", (404, NOT_FOUND))
    server.script("/invocations/inv_c/purge", (409, ALREADY_COMPLETED))
    client = client_for(server.url(), batch_calls=False)
    errors = client.invocations.actions(["inv_a", "inv_b", "inv_c"], "purge", concurrency=8)
    assert errors[0] is None
    assert (errors[1].status, errors[1].path) == (404, "/invocations/inv_b/purge")
    assert "does not exist" in str(errors[1]) and f"PATCH {server.url()}/invocations/inv_b/purge" in str(errors[1])
    assert errors[2].status == 409 and "already completed" in str(errors[2])


def test_bulk_actions_go_out_in_id_order_and_answer_in_the_callers_order(server):
    server.script("/invocations/inv_b/kill", (409, ALREADY_COMPLETED))
    ids = ["inv_d", "inv_b", "inv_c", "inv_a"]
    errors = client_for(server.url(), batch_calls=False).invocations.actions(ids, "kill", concurrency=1)
    assert [r["path"] for r in server.requests] == [f"/invocations/{i}/kill" for i in sorted(ids)]
    assert [error is not None for error in errors] == [False, True, False, False]
    assert errors[1].path == "/invocations/inv_b/kill"


def test_bulk_actions_send_params_and_token(server):
    client_for(server.url(), token="s3cret").invocations.actions(["inv_a"], "resume", params={"deployment": "latest"})
    request = server.requests[-1]
    assert request["method"] == "PATCH" and request["path"] == "/invocations/inv_a/resume?deployment=latest"
    assert request["headers"]["authorization"] == "Bearer s3cret"


def test_bulk_restart_as_new_is_not_pipelined_and_not_repeated(server):
    server.script("/invocations/inv_a/restart-as-new", (503, "busy"), (200, {"new_invocation_id": "inv_n"}))
    errors = client_for(server.url()).invocations.actions(["inv_a"], "restart-as-new")
    assert errors[0].status == 503 and server.count("/invocations/inv_a/restart-as-new") == 1


def test_bulk_actions_go_through_a_proxy_from_the_environment(server, monkeypatch):
    # The scripted server stands in for the proxy: it then sees absolute URLs.
    monkeypatch.setenv("HTTP_PROXY", server.url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    errors = client_for("http://restate.invalid:9070", batch_calls=False).invocations.actions(["inv_a", "inv_b"], "kill")
    assert errors == [None, None]
    assert sorted(r["path"] for r in server.requests) == ["http://restate.invalid:9070/invocations/inv_a/kill",
                                                          "http://restate.invalid:9070/invocations/inv_b/kill"]
    server.script("http://restate.invalid:9070/internal/invocations_batch_operations/kill", (200, batch_answer(set())))
    server.requests.clear()
    assert client_for("http://restate.invalid:9070").invocations.actions(["inv_a", "inv_b"], "kill") == [None, None]
    assert [r["path"] for r in server.requests] == ["http://restate.invalid:9070/internal/invocations_batch_operations/kill"]


def test_bulk_actions_trust_ca_path_and_reject_an_unknown_ca(tls_server, pki):
    trusted = client_for(tls_server.url("https"), ca_path=str(pki / "ca.pem")).invocations.actions(["inv_a"], "cancel")
    assert trusted == [None]
    unknown = client_for(tls_server.url("https"), retries=0).invocations.actions(["inv_a"], "cancel")
    assert unknown[0].reason == "tls" and "ca_path" in str(unknown[0])
    unverified = client_for(tls_server.url("https"), validate_certs=False).invocations.actions(["inv_a"], "cancel")
    assert unverified == [None]


# -- several nodes (admin_url as a list) -------------------------------------------------------------------------
def test_a_call_moves_to_the_next_node_when_the_first_is_down_and_stays_there(server):
    down = f"http://127.0.0.1:{free_port()}"
    server.script("/query", (200, {"rows": [{"n": 1}]}))
    notes = []
    client = client_for([down, server.url()], retries=0, on_retry=notes.append)
    assert client.query("SELECT 1 AS n") == [{"n": 1}]
    assert client.admin_url == server.url()
    assert len(notes) == 1 and down in notes[0] and server.url() in notes[0]
    client.query("SELECT 1 AS n")
    assert server.count("/query") == 2 and len(notes) == 1, "later calls go straight to the node that answered"


def test_a_node_answering_503_hands_over_to_the_next(server):
    other = ScriptedServer()
    try:
        server.script("/query", (503, "shutting down"))
        other.script("/query", (200, {"rows": []}))
        assert client_for([server.url(), other.url()], retries=0).query("SELECT 1") == []
        assert server.count("/query") == 1 and other.count("/query") == 1
    finally:
        other.close()


def test_every_node_down_fails_naming_the_last_one_after_the_retries():
    urls = [f"http://127.0.0.1:{free_port()}" for unused in range(3)]
    notes = []
    with pytest.raises(RestateApiError) as caught:
        client_for(urls, retries=1, on_retry=notes.append).version()
    assert caught.value.reason == "connection" and "admin_url=http://127.0.0.1:" in str(caught.value)
    # two rounds over three nodes: two hand-overs, a back-off, then two more hand-overs
    assert sum("going on with" in note for note in notes) == 5 and sum("retrying in" in note for note in notes) == 1


def test_when_retries_run_out_the_error_is_the_last_answer_a_node_gave(server):
    down = f"http://127.0.0.1:{free_port()}"
    throttled = {"message": "Datafusion error: External error: connect throttled; 1.5s left in throttling window"}
    server.script("/query", (500, throttled))
    with pytest.raises(RestateApiError) as caught:
        client_for([server.url(), down], retries=1).query("SELECT 1")
    assert caught.value.status == 500 and caught.value.admin_url == server.url()
    assert "connect throttled" in str(caught.value)
    assert server.count("/query") == 2, "a round over both nodes, a back-off, and another round"


def test_restart_as_new_sent_to_a_node_that_then_fails_is_not_repeated_on_another(server):
    other = ScriptedServer()
    try:
        server.script("/invocations/inv_x/restart-as-new", (503, "busy"))
        with pytest.raises(RestateApiError):
            client_for([server.url(), other.url()], retries=3).invocations.action("inv_x", "restart-as-new")
        assert other.count("/invocations/inv_x/restart-as-new") == 0
    finally:
        other.close()


def test_bulk_calls_a_node_could_not_take_go_to_the_next_node(server):
    down = f"http://127.0.0.1:{free_port()}"
    server.script("/invocations/inv_b/cancel", (404, NOT_FOUND))
    notes = []
    client = client_for([down, server.url()], retries=1, on_retry=notes.append, batch_calls=False)
    errors = client.invocations.actions(["inv_a", "inv_b", "inv_c"], "cancel", concurrency=8)
    assert errors[0] is None and errors[2] is None and errors[1].status == 404
    assert errors[1].admin_url == server.url()
    assert sorted(r["path"] for r in server.requests) == [f"/invocations/inv_{n}/cancel" for n in "abc"]
    assert any("3 of 3 bulk PATCH calls: cannot connect" in note and "going on with" in note for note in notes), notes


class DyingNode:
    """A node that takes the connections of ``calls`` calls and then drops them all at once, as a node killed with
    calls in flight does; it does the same to every later call."""

    def __init__(self, calls):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.calls = calls
        self.taken = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, unused_addr = self.listener.accept()
            except OSError:
                return
            conn.recv(65536)  # the request arrived: the client cannot tell whether it was acted on
            self.taken.append(conn)
            if len(self.taken) >= self.calls:
                for taken in self.taken:
                    taken.close()
                self.calls = 1

    def close(self):
        self.listener.close()


def test_calls_failing_together_on_a_dying_node_move_on_once_and_not_back_onto_it(server):
    dying = DyingNode(calls=2)
    try:
        server.script(BATCH + "cancel", (200, batch_answer(set())))
        notes = []
        client = client_for([dying.url, server.url()], retries=0, on_retry=notes.append)
        ids = [f"inv_{n:05d}" for n in range(2000)]  # two batches, in flight together
        assert client.invocations.actions(ids, "cancel") == [None] * len(ids)
        assert len(dying.taken) == 2 and server.count(BATCH + "cancel") == 2
        assert client.admin_url == server.url()
        assert sum("going on with" in note for note in notes) == 1, notes
    finally:
        dying.close()


def test_admin_url_is_one_url_or_a_list_of_nodes():
    # "a,b" is split by the modules' admin_url option (type list), not here.
    assert AdminClient(["http://a:9070/", "http://b:9070"]).transport.admin_urls == ["http://a:9070", "http://b:9070"]
    assert AdminClient("http://a:9070").transport.admin_urls == ["http://a:9070"]


# -- servers without an operation ---------------------------------------------------------------------------------
OPENAPI_DELETE_ONLY = {"paths": {"/invocations/{invocation_id}": {"delete": {"deprecated": True}},
                                 "/invocations/{invocation_id}/cancel": {"patch": {}}}}


def test_an_unknown_invocations_404_is_not_taken_for_a_missing_operation(server):
    server.script("/invocations/inv_x/kill", (404, NOT_FOUND))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url()).invocations.action("inv_x", "kill")
    assert "does not exist" in str(caught.value) and server.count("/openapi") == 0


def test_a_server_without_the_patch_form_is_driven_through_the_older_delete_form(server):
    server.script("/invocations/inv_x/kill", (404, ""))
    server.script("/openapi", (200, OPENAPI_DELETE_ONLY))
    client = client_for(server.url(), batch_calls=False)
    client.invocations.action("inv_x", "kill")
    sent = [(r["method"], r["path"]) for r in server.requests[-2:]]
    assert sent == [("GET", "/openapi"), ("DELETE", "/invocations/inv_x?mode=kill")]
    server.script("/invocations/inv_y/purge", (404, ""))
    server.script("/invocations/inv_z/purge", (404, ""))
    assert client.invocations.actions(["inv_y", "inv_z"], "purge") == [None, None]
    assert server.count("/openapi") == 1, "the server's operations are read once"
    assert {r["path"] for r in server.requests if r["method"] == "DELETE"} >= {
        "/invocations/inv_y?mode=purge", "/invocations/inv_z?mode=purge"}


@pytest.mark.parametrize("bulk", [False, True])
def test_a_server_without_an_operation_fails_naming_it_and_the_server_version(server, bulk):
    server.script("/version", (200, dict(VERSION, version="1.4.0")))
    server.script("/invocations/inv_x/pause", (404, ""))
    server.script("/openapi", (200, OPENAPI_DELETE_ONLY))
    client = client_for(server.url())
    client.check_compatible()
    with pytest.raises(RestateApiError) as caught:
        if bulk:
            client.invocations.actions(["inv_x"], "pause")
        else:
            client.invocations.action("inv_x", "pause")
    assert "Restate server 1.4.0 does not have the pause operation" in str(caught.value)
    assert "PATCH" in str(caught.value) and "/invocations/{invocation_id}/pause" in str(caught.value)


# -- batch calls (Restate 1.6+: POST /internal/invocations_batch_operations/<action>) ------------------------------
BATCH = "/internal/invocations_batch_operations/"


def batch_answer(failing):
    """A batch route that fails the ids in ``failing`` the way the server words it, and does the rest."""
    def answer(body):
        ids = body["invocation_ids"]
        return {"succeeded": [i for i in ids if i not in failing],
                "failed": [{"invocation_id": i, "error": f"Invocation '{i}' not found"} for i in ids if i in failing]}
    return answer


def batch_bodies(server, action):
    return [json.loads(r["body"])["invocation_ids"] for r in server.requests if r["path"] == BATCH + action]


def test_batches_carry_up_to_1000_ids_in_id_order_and_only_failures_go_one_by_one(server):
    ids = [f"inv_{n:05d}" for n in range(2500)][::-1]
    failing = {"inv_00007", "inv_02499"}
    server.script(BATCH + "purge", (200, batch_answer(failing)))
    for invocation_id in failing:
        server.script(f"/invocations/{invocation_id}/purge", (404, NOT_FOUND))
    errors = client_for(server.url()).invocations.actions(ids, "purge")
    sent = batch_bodies(server, "purge")
    assert sorted(len(body) for body in sent) == [500, 1000, 1000] and len(sent[0]) == 1000
    assert sorted(i for body in sent for i in body) == sorted(ids) and all(body == sorted(body) for body in sent)
    assert sorted(r["path"] for r in server.requests if r["method"] == "PATCH") == [
        "/invocations/inv_00007/purge", "/invocations/inv_02499/purge"]
    assert {ids[n] for n, error in enumerate(errors) if error is not None} == failing
    assert errors[0].status == 404 and errors[0].path == "/invocations/inv_02499/purge", "errors in the caller's order"


def test_the_ids_each_answer_accepted_are_told_as_it_arrives(server):
    ids = [f"inv_{n:05d}" for n in range(2500)]
    failing = {"inv_00007", "inv_02499"}
    server.script(BATCH + "purge", (200, batch_answer(failing)))
    server.script("/invocations/inv_00007/purge", (404, NOT_FOUND))  # refused again one by one
    client = client_for(server.url())
    told = []
    client.invocations.on_accepted = lambda action, accepted: told.append((action, accepted))
    errors = client.invocations.actions(ids, "purge")
    # One telling per batch answer (1,000, 1,000 and 500 ids, less the failed), then the one-by-one PATCHes.
    assert sorted(len(accepted) for unused, accepted in told) == [1, 499, 999, 1000]
    assert {action for action, unused in told} == {"purge"}
    assert sorted(i for unused, accepted in told for i in accepted) == sorted(set(ids) - {"inv_00007"})
    assert [ids[n] for n, error in enumerate(errors) if error is not None] == ["inv_00007"]


def test_the_calls_of_a_batch_started_next_queue_behind_those_of_the_one_before(server):
    """start_actions returns while its calls are out; the next batch's calls wait for a free lane (two in flight,
    never more), so a caller keeps the server busy across its batches; each gives its own answers when asked."""
    gate, lock, arrived, flying = threading.Event(), threading.Lock(), [], [0, 0]  # flying: now, peak

    def held(body):
        with lock:
            arrived.append(body["invocation_ids"][0])
            flying[0] += 1
            flying[1] = max(flying)
        gate.wait(10)
        with lock:
            flying[0] -= 1
        return batch_answer({"inv_b2999"})(body)

    server.script(BATCH + "kill", (200, held))
    server.script("/invocations/inv_b2999/kill", (404, NOT_FOUND))
    client = client_for(server.url())
    first, second = [f"inv_a{n:04d}" for n in range(3000)], [f"inv_b{n:04d}" for n in range(3000)]
    answers_of_first = client.invocations.start_actions(first, "kill")
    answers_of_second = client.invocations.start_actions(second, "kill")
    deadline = time.monotonic() + 5
    while len(arrived) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert sorted(arrived) == ["inv_a0000", "inv_a1000"], "both started while the server holds the first two calls"
    gate.set()
    errors_of_second = answers_of_second()
    assert [second[n] for n, error in enumerate(errors_of_second) if error is not None] == ["inv_b2999"]
    assert answers_of_first() == [None] * len(first)
    assert sorted(arrived[2:]) == ["inv_a2000", "inv_b0000", "inv_b1000", "inv_b2000"] and flying[1] == 2
    client.close()


def test_a_server_without_the_batch_route_is_driven_one_patch_each_and_not_asked_again(server):
    server.script(BATCH + "kill", (404, ""))
    client = client_for(server.url())
    assert client.invocations.actions(["inv_a", "inv_b"], "kill") == [None, None]
    assert client.invocations.actions(["inv_c", "inv_d"], "kill") == [None, None]
    assert server.count(BATCH + "kill") == 1
    assert server.count("/invocations/inv_a/kill") == 1 and server.count("/invocations/inv_d/kill") == 1


def test_without_the_batch_route_only_the_first_batches_in_flight_are_tried(server):
    server.script(BATCH + "purge", (404, ""))
    ids = [f"inv_{n:05d}" for n in range(3500)]  # four batches, two in flight
    assert client_for(server.url()).invocations.actions(ids, "purge") == [None] * len(ids)
    assert server.count(BATCH + "purge") <= 2
    assert sum(1 for r in server.requests if r["method"] == "PATCH") == len(ids)


@pytest.mark.parametrize("answer", [(200, {"unexpected": True}), (405, ""), (200, "not json")])
def test_a_batch_route_that_does_not_answer_as_expected_is_not_used(server, answer):
    server.script(BATCH + "cancel", answer)
    assert client_for(server.url()).invocations.actions(["inv_a", "inv_b"], "cancel") == [None, None]
    assert server.count("/invocations/inv_a/cancel") == 1 and server.count("/invocations/inv_b/cancel") == 1


def test_a_refused_batch_goes_one_by_one_and_the_route_is_kept_for_the_next(server):
    too_large = {"message": "Batch size 1001 exceeds maximum allowed size of 1000", "restate_code": None}
    server.script(BATCH + "pause", (400, too_large), (200, batch_answer(set())))
    client = client_for(server.url())
    assert client.invocations.actions(["inv_a", "inv_b"], "pause") == [None, None]
    assert server.count("/invocations/inv_a/pause") == 1
    assert client.invocations.actions(["inv_c", "inv_d"], "pause") == [None, None]
    assert server.count(BATCH + "pause") == 2 and server.count("/invocations/inv_c/pause") == 0


def test_a_batch_answered_503_is_repeated_like_any_idempotent_call(server):
    server.script(BATCH + "purge-journal", (503, "busy"), (200, batch_answer(set())))
    assert client_for(server.url()).invocations.actions(["inv_a", "inv_b"], "purge-journal") == [None, None]
    assert server.count(BATCH + "purge-journal") == 2 and not any(r["method"] == "PATCH" for r in server.requests)


def test_a_batch_without_any_answer_reports_every_id_of_it():
    down = f"http://127.0.0.1:{free_port()}"
    errors = client_for(down, retries=0).invocations.actions(["inv_a", "inv_b"], "cancel")
    assert [error.reason for error in errors] == ["connection", "connection"]
    assert all(BATCH + "cancel" in str(error) for error in errors)


@pytest.mark.parametrize("ids, action, params", [
    (["inv_a"], "cancel", None),  # one invocation: its own PATCH
    (["inv_a", "inv_b"], "resume", {"deployment": "latest"}),  # options the batch route does not take
    (["inv_a", "inv_b"], "restart-as-new", None),  # not idempotent
])
def test_what_is_not_sent_in_batches(server, ids, action, params):
    server.script(f"/invocations/inv_a/{action}", (200, {"new_invocation_id": "inv_n"}))
    client_for(server.url()).invocations.actions(ids, action, params=params)
    assert server.count(BATCH + action) == 0 and server.count(f"/invocations/inv_a/{action}") == 1


def test_batch_calls_false_sends_one_patch_each(server):
    client_for(server.url(), batch_calls=False).invocations.actions(["inv_a", "inv_b"], "kill")
    assert server.count(BATCH + "kill") == 0 and server.count("/invocations/inv_b/kill") == 1


@pytest.mark.parametrize("secret", ["s3cr3t-TOKEN-value\n", "s3cr3t-TOKEN\r\nvalue", "s3cr3t\u2028TOKEN-value"])
def test_a_header_value_http_refuses_never_appears_in_the_error(server, secret):
    # The modules refuse such values before any call; the transport must not print one even so: requests names a
    # refused header value whole in its exception.
    for client in (client_for(server.url(), token=secret), client_for(server.url(), headers={"x-key": secret})):
        with pytest.raises(RestateApiError) as caught:
            client.version()
        text = str(caught.value)
        assert "header" in text and "token" in text
        for form in (secret, repr(secret), secret.strip(), "s3cr3t", "TOKEN"):
            assert form not in text


@pytest.mark.parametrize("answer", [
    (400, "bad path: /version"),  # what restate-server 1.7's ingress answers
    (404, '{"message":"service \'version\' not found, make sure to register the service before calling it."}'),  # 1.6
])
def test_the_ingress_port_is_named_as_such(server, answer):
    server.script("/version", answer)
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url()).check_compatible()
    assert "this is a Restate ingress" in str(caught.value) and "9070" in str(caught.value)
    assert f"HTTP {answer[0]}" in str(caught.value)


def test_a_web_server_that_is_not_the_admin_api_is_named_as_such(server):
    server.script("/version", (404, "<html>Not Found</html>"))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url()).check_compatible()
    assert "HTTP 404" in str(caught.value) and "Admin API" in str(caught.value) and "9070" in str(caught.value)


def test_https_to_a_plain_http_server_says_use_http(server):
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url("https"), retries=0).check_compatible()
    assert "use http://" in str(caught.value)


def test_http_to_a_tls_server_says_use_https(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    tls_server = ScriptedServer(tls_context=context)
    try:
        with pytest.raises(RestateApiError) as caught:
            client_for(tls_server.url("http"), retries=0).check_compatible()
        assert "use https://" in str(caught.value)
    finally:
        tls_server.close()
