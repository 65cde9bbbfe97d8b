"""QueriesApi.rows: a query's answer read row by row as it arrives, over a real socket, split anywhere; checked and
bounded as a whole answer is (test_hostile_answers), with each part of it given the timeout instead of the whole."""

from __future__ import annotations

import json
import time

import pytest
from test_hostile_answers import Server, client_for

from ansible_collections.restate.admin.plugins.module_utils._queries_api import ROW_BYTES
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

# Values a row may hold that look like the answer's own punctuation, and text of more than one byte a character.
TRICKY_ROWS = [{"id": f"inv_1{i:035d}", "target": target, "n": i}
               for i, target in enumerate(['Svc/k},{"id":"x"}]/h', "Ünïcødé/ключ/处理", 'a\\"]}', "", "Svc/ok/h"])]


def chunked(body: bytes, cuts, status=200):
    """An HTTP answer of ``body`` in chunked transfer encoding (as a Restate server sends /query answers), as
    separate pieces cut at the offsets ``cuts``."""
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
    head = f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    return [head] + [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for chunk in chunks] + [b"0\r\n\r\n"]


@pytest.fixture
def serve():
    servers = []

    def start(pieces, gap=0.0):
        servers.append(Server(lambda *unused: pieces, gap))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def rows_of(url, sql="SELECT id, target, n FROM sys_invocation", **options):
    return list(client_for(url, **options).rows(sql, columns=["id", "target", "n", "status"], required={"id": str}))


@pytest.mark.parametrize("cut_every", [1, 7, 64, 10_000])
def test_rows_cut_anywhere_read_as_the_whole_answer_is(serve, cut_every):
    body = json.dumps({"rows": TRICKY_ROWS}, ensure_ascii=False).encode()
    server = serve(chunked(body, range(cut_every, len(body), cut_every)))
    assert rows_of(server.url) == [dict(row, status=None) for row in TRICKY_ROWS]


def test_an_empty_answer_and_one_with_blanks_between_its_parts(serve):
    assert rows_of(serve(chunked(b'{"rows":[]}', [3])).url) == []
    body = b' {\n "rows" : [ {"id": "inv_1"} ,\n {"id": "inv_2"} ] }\n'
    assert [row["id"] for row in rows_of(serve(chunked(body, [5, 20])).url)] == ["inv_1", "inv_2"]


@pytest.mark.parametrize("body, got", [
    (b"<html>hello</html>", "an answer beginning '<html>"),
    (b'[{"id": "inv_1"}]', "an answer beginning '["),
    (b'{"rows": [1]}', "rows that are not all objects"),
    (b'{"rows": [{"id": "inv_1"},]}', "a comma before the end of the rows"),
    (b'{"rows": [{"id": "inv_1"} {"id": "inv_2"}]}', "rows separated by '{'"),
    (b'{"rows": [{"id": "inv_1"}], "more": 1}', "goes on after its rows"),
    (b'{"rows": [{"id": "inv_1"}, {"id": ', "a row that is not JSON"),
    (b'{"rows": [{"id": "inv_1"}', "ends in the middle of its rows"),
    (b'{"rows": [{"id": 7}]}', "expected rows each with 'id', a string, got a number"),
    (b'{"rows": [{"target": "x"}]}', "got a row without it"),
])
def test_an_answer_of_another_shape_is_named_not_a_python_error(serve, body, got):
    server = serve(chunked(body, [4, 11]))
    with pytest.raises(RestateApiError) as caught:
        rows_of(server.url)
    assert "POST" in str(caught.value) and "/query" in str(caught.value) and got in str(caught.value)


def test_a_row_longer_than_a_row_may_be_is_refused_before_its_end(serve):
    body = b'{"rows": [{"id": "inv_1", "target": "' + b"x" * (4 * ROW_BYTES) + b'"}]}'
    server = serve(chunked(body, range(1000, len(body), 1000)))
    with pytest.raises(RestateApiError, match=f"a row longer than {ROW_BYTES} bytes"):
        rows_of(server.url)


def test_more_rows_than_the_limit_asked_for_is_an_unexpected_answer(serve):
    server = serve(chunked(json.dumps({"rows": [{"id": "a"}] * 3}).encode(), [9]))
    with pytest.raises(RestateApiError, match="at most 2 rows"):
        rows_of(server.url, "SELECT id FROM sys_invocation LIMIT 2")


@pytest.mark.parametrize("padding", [b" ", b"\n"])
def test_an_answer_larger_than_its_limit_allows_is_refused_however_it_is_padded(serve, padding):
    # Blanks between rows are no row: only the size of the whole answer bounds them (LIMIT 10: 1 MB at most).
    body = b'{"rows": [{"id": "inv_1"}' + padding * (2 * 1024 * 1024) + b"]}"
    server = serve(chunked(body, range(65536, len(body), 65536)))
    with pytest.raises(RestateApiError) as caught:
        rows_of(server.url, "SELECT id FROM sys_invocation LIMIT 10")
    assert caught.value.reason == "size" and "larger than 1 MB" in str(caught.value)


def test_an_answer_cut_off_is_a_connection_error_after_the_rows_it_gave(serve):
    rows = [{"id": f"inv_{i}", "target": "t" * 500} for i in range(400)]  # 200 KB: several parts
    body = json.dumps({"rows": rows}).encode()
    pieces = chunked(body, [150_000])
    server = serve(pieces[:2] + [None])  # the head and 150 KB, then the connection closes
    got = []
    with pytest.raises(RestateApiError) as caught:
        for row in client_for(server.url).rows("SELECT id FROM sys_invocation"):
            got.append(row["id"])
    assert caught.value.reason == "connection" and caught.value.status is None
    assert got == [row["id"] for row in rows[:len(got)]] and 0 < len(got) < len(rows)


def test_each_part_is_given_the_timeout_not_the_whole_answer(serve):
    # Seven parts of about 70 KB, 0.3 s apart: 2 s in all, with timeout=1s.
    rows = [{"id": f"inv_{i}", "target": "t" * 500} for i in range(1000)]
    body = json.dumps({"rows": rows}).encode()
    server = serve(chunked(body, range(70_000, len(body), 70_000)), gap=0.3)
    started = time.monotonic()
    assert len(rows_of(server.url, timeout=1.0)) == 1000
    assert time.monotonic() - started > 1.0


def test_a_trickled_answer_fails_at_the_timeout(serve):
    body = json.dumps({"rows": [{"id": "inv_1", "target": "t" * 1000}]}).encode()
    pieces = chunked(body, [])
    server = serve([pieces[0]] + [bytes([c]) for c in b"".join(pieces[1:])], gap=0.3)
    started = time.monotonic()
    with pytest.raises(RestateApiError) as caught:
        rows_of(server.url, timeout=1.0, retries=0)
    assert caught.value.reason == "timeout" and time.monotonic() - started < 3
