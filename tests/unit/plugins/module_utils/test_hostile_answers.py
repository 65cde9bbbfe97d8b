"""The client against a server that answers as no Restate server does: redirects, answers trickled a byte at a time,
answers too large to hold, and answers of the wrong shape. Each must end in a clear RestateApiError, in bounded time,
with nothing sent after a redirect and nothing counted that the server did not accept."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient
from ansible_collections.restate.admin.plugins.module_utils._pipelined_http import PipelinedSender
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

VERSION = {"version": "1.7.12", "min_admin_api_version": 2, "max_admin_api_version": 4}
IDS = [f"inv_1{i:035d}" for i in range(40)]


class Server:
    """Answers each request with ``answer(method, path, body)``: bytes (sent whole), a list of byte strings (sent
    ``gap`` seconds apart: a slow server; None in it closes the connection there), or "close". Counts requests per (method, path) and keeps their heads."""

    def __init__(self, answer, gap=0.4):
        self.answer = answer
        self.gap = gap
        self.requests = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, unused = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
                              0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                body, buf = buf[:length], buf[length:]
                with self.lock:
                    self.requests.append((method, path.split("?")[0], head.decode("latin-1")))
                answer = self.answer(method, path.split("?")[0], body)
                try:
                    if answer == "close":
                        return
                    if isinstance(answer, list):
                        for piece in answer:
                            if piece is None:  # the connection closes here
                                return
                            conn.sendall(piece)
                            time.sleep(self.gap)
                    else:
                        conn.sendall(answer)
                except OSError:
                    return

    def count(self, method=None, path=None):
        return sum(1 for m, p, unused in self.requests if method in (None, m) and path in (None, p))

    def close(self):
        self.listener.close()


def http(status, body=b"", content_type="application/json", extra=""):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return (f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


@pytest.fixture
def serve():
    servers = []

    def start(answer, gap=0.4):
        servers.append(Server(answer, gap))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(url, **options):
    options.setdefault("retry_backoff", 0.01)
    options.setdefault("retries", 1)
    return AdminClient(url, **options)


def version_then(other):
    """GET /version answered as a 1.7 server does, everything else by ``other``."""
    return lambda method, path, body: http(200, VERSION) if path == "/version" else other(method, path, body)


# -- case 1: redirects ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method, path", [("GET", "/version"), ("POST", "/query"), ("PATCH", "/services/Greeter"),
                                          ("DELETE", "/deployments/dp_1"), ("POST", "/internal/x")])
def test_a_redirect_is_never_followed_and_nothing_is_sent_after_it(serve, status, method, path):
    elsewhere = serve(lambda *unused: http(200, VERSION))
    server = serve(lambda *unused: http(status, extra=f"location: {elsewhere.url}/steal?token=s3cr3t-value\r\n"))
    client = client_for(server.url, headers={"X-Api-Key": "s3cr3t-value"}, retries=3)
    with pytest.raises(RestateApiError) as caught:
        client.request(method, path, json_body={"query": "SELECT 1"} if method == "POST" else None)
    text = str(caught.value)
    assert f"redirect to http://127.0.0.1:{elsewhere.port}" in text and "admin_url" in text
    assert "steal" not in text and "s3cr3t" not in text and str(status) in text
    with pytest.raises(RestateApiError, match="redirect"):
        client.request("GET", "/version")
    assert elsewhere.count() == 0
    assert server.count() == 1  # the call after the redirect was not sent


def test_a_redirect_of_the_batch_route_counts_no_invocation_and_sends_nothing_more(serve):
    server = serve(version_then(lambda *unused: http(307, extra="location: https://other.example:8443/x\r\n")))
    client = client_for(server.url)
    client.check_compatible()
    errors = client.invocations.actions(IDS, "purge")
    assert all(error is not None and "redirect to https://other.example:8443" in str(error) for error in errors)
    assert server.count("POST") <= 2 and server.count("PATCH") == 0  # the batches in flight together, no more
    with pytest.raises(RestateApiError, match="redirect"):
        client.query("SELECT 1")
    assert server.count("POST", "/query") == 0


def test_a_redirect_on_the_pipelined_path_stops_it_after_the_window_in_flight(serve):
    server = serve(version_then(lambda *unused: http(308, extra="location: http://10.0.0.9:80/\r\n")))
    client = client_for(server.url, batch_calls=False)
    client.check_compatible()
    errors = client.invocations.actions(IDS, "kill", concurrency=4)  # one connection, 4 in flight
    assert all(error is not None for error in errors)
    assert all("10.0.0.9:80" in str(error) for error in errors)
    assert server.count("PATCH") <= 4
    with pytest.raises(RestateApiError, match="redirect"):
        client.invocations.actions(IDS, "kill", concurrency=4)
    assert server.count("PATCH") <= 4


def test_a_pipelined_redirect_answer_is_an_error_not_an_accepted_call(serve):
    server = serve(lambda *unused: http(307, extra="location: /elsewhere\r\n"))
    sender = PipelinedSender(server.url, {}, connections=2, window=2)
    answers = sender.send("PATCH", [f"/invocations/{i}/purge" for i in IDS])
    assert all(answer.error and answer.reason == "redirect" for answer in answers)
    assert server.count() <= 4


# -- case 4: a deadline for the whole answer --------------------------------------------------------------------
def trickle(status=200, size=40):
    body = b"x" * size
    return [f"HTTP/1.1 {status} OK\r\ncontent-length: {size}\r\n\r\n".encode()] + [bytes([c]) for c in body]


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickled_answer_fails_at_the_timeout_not_per_byte(serve, where):
    pieces = trickle() if where == "body" else [bytes([c]) for c in http(200, VERSION)]
    server = serve(lambda *unused: pieces, gap=0.3)
    client = client_for(server.url, timeout=1.0, retries=0)
    started = time.monotonic()
    with pytest.raises(RestateApiError) as caught:
        client.request("GET", "/version")
    assert time.monotonic() - started < 3
    assert caught.value.reason == "timeout" and "timeout=1s" in str(caught.value)


def test_a_trickled_answer_on_the_pipelined_path_fails_at_the_timeout(serve):
    server = serve(lambda *unused: trickle(404), gap=0.3)
    sender = PipelinedSender(server.url, {}, timeout=1.0, connections=1, window=1)
    started = time.monotonic()
    answers = sender.send("PATCH", ["/invocations/inv_1/kill"])
    assert time.monotonic() - started < 3
    assert answers[0].reason == "timeout" and "timeout=1s" in answers[0].error


# -- case 5: bounded size ---------------------------------------------------------------------------------------
def test_a_query_answer_larger_than_its_limit_allows_is_refused_unread(serve):
    row = {"id": "inv_1" + "x" * 1000}
    huge = json.dumps({"rows": [row] * 3000}).encode()  # 3 MB for a query of LIMIT 10: at most 1 MB
    server = serve(version_then(lambda *unused: http(200, huge)))
    client = client_for(server.url)
    with pytest.raises(RestateApiError) as caught:
        client.query("SELECT id FROM sys_invocation LIMIT 10")
    assert caught.value.reason == "size" and "larger than 1 MB" in str(caught.value)


def test_more_rows_than_the_limit_asked_for_is_an_unexpected_answer(serve):
    server = serve(version_then(lambda *unused: http(200, {"rows": [{"id": "a"}] * 3})))
    with pytest.raises(RestateApiError, match="at most 2 rows"):
        client_for(server.url).query("SELECT id FROM sys_invocation LIMIT 2")


def test_a_huge_error_message_is_cut(serve):
    message = json.dumps({"message": "m" * 30_000_000}).encode()
    server = serve(lambda *unused: http(400, message))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url).request("GET", "/version")
    assert len(str(caught.value)) < 1000 and "HTTP 400" in str(caught.value)


def test_a_long_json_error_message_is_cut_to_500_characters(serve):
    server = serve(lambda *unused: http(409, {"message": "m" * 5000}))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url).request("GET", "/version")
    assert "m" * 500 in str(caught.value) and "m" * 501 not in str(caught.value)
    assert "4500 more characters" in str(caught.value)


def test_a_pipelined_answer_larger_than_64_kb_is_an_error(serve):
    server = serve(lambda *unused: http(404, b"e" * 200_000))
    sender = PipelinedSender(server.url, {}, connections=1, window=1)
    answers = sender.send("PATCH", ["/invocations/inv_1/kill"])
    assert answers[0].reason == "size" and "larger than 64 KB" in answers[0].error


# -- case 6: answers of the wrong shape -------------------------------------------------------------------------
@pytest.mark.parametrize("body, got", [
    (b"<html>hello</html>", "not JSON"),
    (b"", "an empty body"),
    (b"[1, 2]", "a list of 2 items"),
    (b'{"rows": 5}', "an object with keys rows"),
    (b'{"rows": [1, "x"]}', "not all objects"),
])
def test_query_answers_of_the_wrong_shape_name_the_call_and_what_was_expected(serve, body, got):
    server = serve(version_then(lambda *unused: http(200, body)))
    with pytest.raises(RestateApiError) as caught:
        client_for(server.url).query("SELECT id FROM sys_invocation")
    text = str(caught.value)
    assert "POST" in text and "/query" in text and "expected an object with 'rows'" in text and got in text


def test_a_row_without_a_column_the_code_reads_is_an_unexpected_answer(serve):
    server = serve(version_then(lambda *unused: http(200, {"rows": [{"other": 1}]})))
    rows = client_for(server.url).query("SELECT id FROM sys_invocation")
    with pytest.raises(RestateApiError, match="POST .*/query gave an unexpected answer.*expected an object with 'id'"):
        rows[0]["id"]  # pylint: disable=pointless-statement


@pytest.mark.parametrize("rows, got", [
    ([{"id": None}], "null"),
    ([{"id": "inv_1"}, {"id": 7}], "a number"),
    ([{"id": True}], "a boolean"),
    ([{"target": "Greeter/greet"}], "a row without it"),
])
def test_a_row_whose_id_is_missing_or_not_a_string_is_an_unexpected_answer(serve, rows, got):
    # an id of null reached the sorting of the ids to act on: a TypeError, found by test_fuzz_answers
    server = serve(version_then(lambda *unused: http(200, {"rows": rows})))
    with pytest.raises(RestateApiError, match=f"/query.*expected rows each with 'id', a string, got {got}"):
        client_for(server.url).query("SELECT id FROM sys_invocation", columns=["id"], required={"id": str})


@pytest.mark.parametrize("rows, got", [([], "0 rows"), ([{"n": 1}, {"n": 2}], "2 rows"), ([{"n": "3"}], "a string")])
def test_a_count_is_one_row_with_a_number(serve, rows, got):
    server = serve(version_then(lambda *unused: http(200, {"rows": rows})))
    with pytest.raises(RestateApiError, match=f"/query.*got {got}"):
        client_for(server.url).count("SELECT COUNT(*) AS n FROM sys_invocation")


def test_a_state_value_that_is_not_hexadecimal_is_an_unexpected_answer(serve):
    server = serve(version_then(lambda *unused: http(200, {"rows": [{"key": "count", "value": "zz"}]})))
    with pytest.raises(RestateApiError, match="/query.*expected values in hexadecimal"):
        client_for(server.url).state.read("Counter", "k")


@pytest.mark.parametrize("area, path, body", [
    ("services.list", "/services", {"services": [1, 2]}),
    ("services.list", "/services", {"services": [{"ty": "Service"}]}),
    ("services.get", "/services/Greeter", ["Greeter"]),
    ("services.patch", "/services/Greeter", 7),
    ("deployments.list", "/deployments", {"deployments": "dp_1"}),
    ("deployments.list", "/deployments", {"deployments": [{"id": "dp_1", "services": [3]}]}),
    ("deployments.get", "/deployments/dp_1", {"services": []}),
    ("deployments.register", "/deployments", {"services": [{"name": "Greeter"}]}),
    ("deployments.update", "/deployments/dp_1", ["dp_1"]),
])
def test_service_and_deployment_answers_of_the_wrong_shape(serve, area, path, body):
    server = serve(version_then(lambda *unused: http(200, body)))
    client = client_for(server.url)
    name, call = area.split(".")
    arguments = {"list": (), "get": ("Greeter" if name == "services" else "dp_1",),
                 "patch": ("Greeter", {"public": True}), "register": ({"uri": "http://x:9080"},),
                 "update": ("dp_1", {"additional_headers": {"x-team": "a"}})}[call]
    with pytest.raises(RestateApiError) as caught:
        getattr(getattr(client, name), call)(*arguments)
    assert path in str(caught.value) and "unexpected answer" in str(caught.value) and "expected" in str(caught.value)


@pytest.mark.parametrize("body", [b"", b"[]", b'{"new_invocation_id": 5}', b'{"id": "inv_1"}', b"<html>"])
def test_a_restart_answer_without_a_new_id_is_named_not_a_python_error(serve, body):
    from ansible_collections.restate.admin.plugins.module_utils._invocations_api import new_invocation_id
    server = serve(version_then(lambda *unused: http(200, body)))
    client = client_for(server.url)
    response = client.invocations.action(IDS[0], "restart-as-new")
    with pytest.raises(ValueError, match=f"PATCH .*/invocations/{IDS[0]}/restart-as-new gave an unexpected answer.*"
                                         "expected an object with the 'new_invocation_id'"):
        new_invocation_id(response, IDS[0], client.admin_url)


@pytest.mark.parametrize("openapi", [{"paths": ["/invocations/{invocation_id}/cancel"]}, [1, 2],
                                     {"paths": {"/invocations/{invocation_id}/cancel": 3}}])
def test_an_openapi_answer_of_another_shape_lists_no_operation(serve, openapi):
    def answer(method, path, unused_body):
        return http(200, openapi) if path == "/openapi" else http(404, b"")
    server = serve(version_then(answer))
    with pytest.raises(RestateApiError, match="does not have the cancel operation"):
        client_for(server.url).invocations.action(IDS[0], "cancel")


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'{"version": 17}', b'{"min_admin_api_version": "2"}'])
def test_a_version_answer_of_the_wrong_shape_is_named(serve, body):
    server = serve(lambda *unused: http(200, body))
    with pytest.raises(RestateApiError, match="GET .*/version gave an unexpected answer"):
        client_for(server.url).check_compatible()


def test_a_deployment_registered_with_credentials_in_its_uri_is_shown_without_them():
    from ansible_collections.restate.admin.plugins.module_utils._deployments_api import describe
    shown = describe({"id": "dp_1", "uri": "http://deployer:s3cr3t@pass@checkout:9080/", "services": []}, {})
    assert shown["uri"] == "http://********@checkout:9080/"
