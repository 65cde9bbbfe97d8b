# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""HTTP/1.1 pipelining over a few keep-alive connections, for thousands of small bodiless calls.

The bulk path of the client: one ``PATCH /invocations/{id}/{action}`` per invocation, 10,000 at a time.
A thread per request (requests/urllib3) spends its time in Python bookkeeping, not on the wire; here each
connection writes a window of requests in one ``send`` and parses the answers from one buffer, in order
(HTTP/1.1 answers pipelined requests in the order they were sent). ``make bench`` measures the difference.

Only for calls that are safe to repeat: a request whose answer was lost to a dropped connection is sent
again. Standard library only; TLS through ``ssl`` with the same trust settings as the requests session.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from urllib.parse import urlencode, urlsplit

RETRYABLE_STATUSES = frozenset((502, 503, 504))
RECV_SIZE = 16384  # small reads: 128 threads each holding big buffers in their own malloc arenas cost 100+ MB


class Answer:
    """One request's outcome: ``status`` and ``body``, or ``error`` (a short text) with ``reason``."""

    __slots__ = ("status", "body", "error", "reason")

    def __init__(self, status=None, body=b"", error=None, reason=None):
        self.status = status
        self.body = body
        self.error = error
        self.reason = reason


class _Incomplete(Exception):
    """The buffer does not hold the whole answer yet."""


class _Closed(Exception):
    """The server closed the connection (or said it would) before answering everything sent."""


def _parse_answer(buf, start):
    """(status, body, close, next_start) for the answer at ``buf[start:]``; raises _Incomplete."""
    end = buf.find(b"\r\n\r\n", start)
    if end < 0:
        raise _Incomplete()
    head = bytes(buf[start:end]).lower()
    try:
        status = int(head[9:12])
    except ValueError:
        raise _Closed(f"not an HTTP answer: {bytes(buf[start:start + 40])!r}")
    # HTTP/1.0 answers end the connection unless they say otherwise.
    keep_alive = b"\r\nconnection: keep-alive" in head
    close = b"\r\nconnection: close" in head or (head.startswith(b"http/1.0") and not keep_alive)
    body_start = end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:stop if stop >= 0 else len(head)])
        if len(buf) < body_start + length:
            raise _Incomplete()
        return status, bytes(buf[body_start:body_start + length]), close, body_start + length
    if b"\r\ntransfer-encoding:" in head and b"chunked" in head:
        return _parse_chunked(buf, body_start, status, close)
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", close, body_start
    raise _Closed("an answer without a length ends with the connection")


def _parse_chunked(buf, pos, status, close):
    parts = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            raise _Incomplete()
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                raise _Incomplete()
            return status, b"".join(parts), close, trailer_end + 4
        if len(buf) < pos + size + 2:
            raise _Incomplete()
        parts.append(bytes(buf[pos:pos + size]))
        pos += size + 2


class PipelinedSender:
    """Send many bodiless requests to one server over ``connections`` connections, ``window`` at a time each."""

    def __init__(self, base_url, headers, timeout=30.0, retries=3, retry_backoff=0.5, ssl_context=None,
                 connections=16, window=16, on_retry=None):
        url = urlsplit(base_url)
        self.host = url.hostname
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.prefix = url.path.rstrip("/")
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.connections = max(1, connections)
        self.window = max(1, window)
        self.on_retry = on_retry
        host_header = self.host if url.port is None else f"{self.host}:{url.port}"
        lines = [f"host: {host_header}", "content-length: 0"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() not in ("host", "content-length")]
        self._header_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, method, paths, params=None):
        """Send ``method`` to every path (relative to the base URL); returns one Answer per path, in order."""
        query = ("?" + urlencode(params)) if params else ""
        start = f"{method} {self.prefix}".encode("latin-1")
        end = f"{query} HTTP/1.1\r\n".encode("latin-1") + self._header_bytes

        def requests_bytes(index):  # built when sent: 100,000 requests held at once would be 20 MB
            return start + paths[index].encode("latin-1") + end

        answers = [None] * len(paths)
        attempts = [0] * len(paths)
        pending = list(range(len(paths) - 1, -1, -1))  # popped from the end: first path first
        lock = threading.Lock()
        workers = [threading.Thread(target=self._work, args=(requests_bytes, answers, attempts, pending, lock),
                                    daemon=True) for unused_n in range(min(self.connections, len(paths)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        # A worker that died on something unforeseen must not leave a request unreported.
        return [answer or Answer(error="no answer recorded (internal error)", reason="connection")
                for answer in answers]

    # -- one connection's loop ---------------------------------------------------------------------
    def _work(self, requests_bytes, answers, attempts, pending, lock):
        conn = None
        backoff_attempt = 0
        try:
            while True:
                with lock:
                    batch = [pending.pop() for unused_n in range(min(self.window, len(pending)))]
                if not batch:
                    return
                if conn is None:
                    try:
                        conn = self._connect()
                    except ssl.SSLError as exc:
                        self._fail(batch, answers, f"TLS handshake failed: {exc}", "tls")
                        continue
                    except OSError as exc:
                        # Nothing was sent: always safe to try again.
                        if backoff_attempt < self.retries:
                            self._requeue(batch, pending, lock)
                            backoff_attempt = self._back_off(backoff_attempt, f"cannot connect: {exc}")
                            continue
                        self._fail(batch, answers, f"cannot connect: {exc}", "connection")
                        continue
                done, retry_status, trouble, closing = self._exchange(conn, batch, requests_bytes, answers)
                left = batch[done:]
                if trouble is not None or closing:
                    conn.close()
                    conn = None
                if closing and left:
                    # "connection: close": the server answered up to here and did not read the rest.
                    self._requeue(left, pending, lock)
                    left = []
                if retry_status:
                    left = retry_status + left
                if left:
                    give_up = [i for i in left if attempts[i] >= self.retries]
                    again = [i for i in left if attempts[i] < self.retries]
                    for i in again:
                        attempts[i] += 1
                    if give_up:
                        why, reason = trouble or ("the server kept answering 502/503/504", None)
                        self._fail(give_up, answers, why, reason, keep_answered=True)
                    if again:
                        self._requeue(again, pending, lock)
                        backoff_attempt = self._back_off(backoff_attempt, (trouble or ("HTTP 502/503/504",))[0])
                else:
                    backoff_attempt = 0
        finally:
            if conn is not None:
                conn.close()

    def _exchange(self, conn, batch, requests_bytes, answers):
        """Write the batch, read its answers.

        Returns (answered count, indexes to retry for 502/503/504, trouble as (text, reason) or None, whether
        the server announced it closes the connection).
        """
        retry_status = []
        done = 0
        close = False
        try:
            conn.sendall(b"".join(requests_bytes(i) for i in batch))
            buf = bytearray()
            pos = 0
            while done < len(batch) and not close:
                try:
                    status, body, close, pos = _parse_answer(buf, pos)
                except ValueError as exc:
                    raise _Closed(f"malformed HTTP answer ({exc})")
                except _Incomplete:
                    chunk = conn.recv(RECV_SIZE)
                    if not chunk:
                        raise _Closed("the server closed the connection")
                    buf += chunk
                    continue
                index = batch[done]
                done += 1
                # Bodies of successful answers are not needed; dropping them keeps 100,000 answers small.
                answers[index] = Answer(status, body if status >= 300 else b"")
                if status in RETRYABLE_STATUSES:
                    retry_status.append(index)  # the answer stands if the retries run out
            return done, retry_status, None, close
        except socket.timeout:
            return done, retry_status, (f"no answer within {self.timeout}s", "timeout"), False
        except ssl.SSLError as exc:
            return done, retry_status, (f"TLS error: {exc}", "tls"), False
        except (_Closed, OSError) as exc:
            return done, retry_status, (str(exc) or type(exc).__name__, "connection"), False

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        return sock

    @staticmethod
    def _requeue(indexes, pending, lock):
        with lock:
            pending.extend(reversed(indexes))

    @staticmethod
    def _fail(indexes, answers, why, reason, keep_answered=False):
        for i in indexes:
            if keep_answered and answers[i] is not None:
                continue  # the last 502/503/504 answer stands
            answers[i] = Answer(error=why, reason=reason)

    def _back_off(self, attempt, why):
        delay = self.retry_backoff * (2 ** min(attempt, 6))
        if self.on_retry:
            self.on_retry(f"bulk calls: {why}; retrying in {delay:.1f}s")
        time.sleep(delay)
        return attempt + 1
