"""Pipelined calls (PipelinedSender sends them once, Transport.pipelined sends again what the server did not take)
against a real local TCP server that speaks HTTP/1.1 with pipelining, and misbehaves on demand."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ansible_collections.restate.admin.plugins.module_utils._transport import Transport


class RawServer:
    """Reads pipelined requests, answers each with ``behave(path, seen_count)``: bytes to send, "drop" (close without
    answering) or "hang" (never answer). Records every request it read, per path."""

    def __init__(self, behave):
        self.behave = behave
        self.seen = {}
        self.heads = []
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, unused_addr = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
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
                path = head.split(b" ")[1].decode()
                with self.lock:
                    self.heads.append(head.decode())
                    self.seen[path] = self.seen.get(path, 0) + 1
                    count = self.seen[path]
                answer = self.behave(path, count)
                if answer == "drop":
                    return
                if answer == "hang":
                    time.sleep(5)
                    return
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                if b"close" in answer.lower().split(b"\r\n\r\n")[0]:
                    return

    def close(self):
        self.stopping = True
        self.listener.close()


def echo(path: str):
    """A 404 whose body names the path: error bodies are kept, so answers can be matched to requests."""
    body = path.encode()
    return b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def ok(body: bytes, extra=b""):
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n" + extra + b"content-length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def make_server():
    servers = []

    def start(behave):
        servers.append(RawServer(behave))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


class Pipelined:
    """A transport's pipelined calls, as the invocations area makes them."""

    def __init__(self, url, retries, on_retry, timeout, connections, window):
        self.transport = Transport(url, token="t0k", retries=retries, retry_backoff=0.01, on_retry=on_retry,
                                   timeout=timeout)
        self.connections, self.window = connections, window

    def send(self, method, paths_, params=None):
        return self.transport.pipelined(method, paths_, params, connections=self.connections, window=self.window)


def sender(url, retries=3, on_retry=None, timeout=30.0, connections=4, window=8):
    return Pipelined(url, retries, on_retry, timeout, connections, window)


def paths(n):
    return [f"/invocations/inv_{i:05d}/purge" for i in range(n)]


def test_answers_come_back_in_order_for_every_path(make_server):
    srv = make_server(lambda path, count: echo(path))
    answers = sender(srv.url).send("PATCH", paths(2000))
    assert [a.body.decode() for a in answers] == paths(2000)
    assert all(a.status == 404 and a.error is None for a in answers)
    assert set(srv.seen.values()) == {1}, "each request sent once"
    assert srv.connections == 4


def test_query_parameters_and_base_path_are_kept(make_server):
    srv = make_server(lambda path, count: echo(path))
    answers = sender(srv.url + "/admin/", connections=1).send("PATCH", ["/invocations/inv_1/resume"],
                                                              {"deployment": "dp_1 x"})
    assert answers[0].body == b"/admin/invocations/inv_1/resume?deployment=dp_1+x"


def test_chunked_answers_are_read(make_server):
    def chunked(path, count):
        return (b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
                b"5\r\n{\"mes\r\n" + b"%x\r\n%s\r\n" % (len(path) + 10, b'sage": "' + path.encode() + b'"}') +
                b"0\r\n\r\n")

    srv = make_server(chunked)
    answers = sender(srv.url).send("PATCH", paths(50))
    assert [a.status for a in answers] == [404] * 50
    assert answers[7].body == b'{"message": "' + paths(50)[7].encode() + b'"}'


def test_connection_close_sends_the_unanswered_rest_again_without_counting_a_retry(make_server):
    srv = make_server(lambda path, count: ok(b"x", b"connection: close\r\n" if int(path[17:22]) % 3 == 0 else b""))
    answers = sender(srv.url, retries=0).send("PATCH", paths(300))
    assert all(a.status == 200 for a in answers)
    assert srv.connections > 100


def test_a_malformed_answer_fails_its_requests_instead_of_losing_them(make_server):
    srv = make_server(lambda path, count: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
    answers = sender(srv.url, retries=1, connections=2).send("PATCH", paths(6))
    assert all(a.reason == "connection" and "malformed" in a.error for a in answers)


def test_http_10_answers_end_the_connection(make_server):
    srv = make_server(lambda path, count: b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")
    answers = sender(srv.url, retries=0).send("PATCH", paths(40))
    assert all(a.status == 200 and a.error is None for a in answers)
    assert srv.connections >= 40


def test_503_is_sent_again_until_it_succeeds(make_server):
    srv = make_server(lambda path, count: ok(b"done") if count > 2 else
                      b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
    warnings = []
    answers = sender(srv.url, retries=3, on_retry=warnings.append).send("PATCH", paths(100))
    assert all(a.status == 200 for a in answers)
    assert set(srv.seen.values()) == {3}
    assert warnings and "retrying" in warnings[0]


def test_503_beyond_the_budget_is_the_answer(make_server):
    srv = make_server(lambda path, count: b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
    answers = sender(srv.url, retries=2).send("PATCH", paths(10))
    assert all(a.status == 503 and a.body == b"busy" for a in answers)
    assert set(srv.seen.values()) == {3}


def test_a_dropped_connection_sends_the_unanswered_requests_again(make_server):
    drops = {"left": 3}
    lock = threading.Lock()

    def behave(path, count):
        with lock:
            if path.endswith("00010/purge") and drops["left"]:
                drops["left"] -= 1
                return "drop"
        return ok(b"fine")

    srv = make_server(behave)
    answers = sender(srv.url, retries=3).send("PATCH", paths(200))
    assert all(a.status == 200 for a in answers)
    assert srv.seen["/invocations/inv_00010/purge"] == 4


def test_a_connection_that_keeps_dropping_fails_the_requests_with_a_reason(make_server):
    srv = make_server(lambda path, count: "drop")
    answers = sender(srv.url, retries=1, connections=1).send("PATCH", paths(3))
    assert all(a.error and a.reason == "connection" and a.status is None for a in answers)


def test_no_answer_within_the_timeout_is_a_timeout(make_server):
    srv = make_server(lambda path, count: "hang")
    started = time.monotonic()
    answers = sender(srv.url, retries=0, timeout=0.5, connections=1).send("PATCH", paths(2))
    assert time.monotonic() - started < 4
    assert all(a.reason == "timeout" and "0.5s" in a.error for a in answers)


def test_refused_connection_is_reported_after_the_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answers = sender(f"http://127.0.0.1:{port}", retries=2).send("PATCH", paths(5))
    assert all(a.reason == "connection" and "cannot connect" in a.error for a in answers)


def test_headers_are_sent_with_every_request(make_server):
    srv = make_server(lambda path, count: ok(b""))
    sender(srv.url, connections=1).send("PATCH", paths(3))
    assert len(srv.heads) == 3
    for head in srv.heads:
        lines = head.lower().split("\r\n")
        assert lines[0].startswith("patch /invocations/inv_0000") and lines[0].endswith(" http/1.1")
        assert {"authorization: bearer t0k", "accept: application/json", "content-length: 0",
                f"host: 127.0.0.1:{srv.port}"} <= set(lines[1:])


@pytest.mark.parametrize("connection", [b"Connection:close", b"Connection: keep-alive, close", b"CONNECTION:  Close"])
def test_every_spelling_of_connection_close_ends_the_connection(make_server, connection):
    srv = make_server(lambda path, count: ok(b"x", connection + b"\r\n"))
    answers = sender(srv.url, retries=0, connections=1).send("PATCH", paths(20))
    assert all(a.status == 200 and a.error is None for a in answers)
    assert srv.connections == 20, "a connection the server closes after each answer is never used again"


def test_chunked_wins_over_content_length(make_server):
    # RFC 9112 6.3: with both, Transfer-Encoding decides the length (and the answer after it stays aligned).
    def both(path, count):
        body = path.encode()
        return (b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    srv = make_server(both)
    answers = sender(srv.url, connections=1, window=8).send("PATCH", paths(16))
    assert [a.body.decode() for a in answers] == paths(16)


def test_an_interim_103_answer_is_skipped_and_answers_stay_aligned(make_server):
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
    srv = make_server(lambda path, count: hints + echo(path))
    answers = sender(srv.url, connections=1, window=8).send("PATCH", paths(16))
    assert [(a.status, a.body.decode()) for a in answers] == [(404, p) for p in paths(16)]
