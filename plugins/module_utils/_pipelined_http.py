# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""HTTP/1.1 pipelining over a few keep-alive connections, for thousands of small bodiless calls.

The bulk path of the client where the batch route cannot serve: one ``PATCH /invocations/{id}/{action}`` per
invocation, 10,000 at a time. A thread per request (requests/urllib3) spends its time in Python bookkeeping, not on
the wire; here each connection writes a window of requests in one ``send`` and reads their answers in order
(HTTP/1.1 answers pipelined requests in the order they were sent). This file only sends, once: the standard
library's ``http.client`` reads each answer (framing, chunked bodies, ``Connection`` tokens, interim 1xx answers),
and the transport (``Transport.pipelined``) decides what to send again, when and to which node, as it does for one
call.

Only for calls that are safe to repeat: a request whose answer was lost to a dropped connection comes back as an
Answer without a status, for the transport to send again. TLS through the transport's one ``ssl`` context.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time
from urllib.parse import urlencode, urlsplit

# Statuses a gateway or a restarting server answers with; repeating is safe for idempotent calls. Defined here, at
# the lowest floor, for both senders (the transport imports it).
RETRYABLE_STATUSES = frozenset((502, 503, 504))
RECV_SIZE = 16384  # small reads: 128 threads each holding big buffers in their own malloc arenas cost 100+ MB
# The most of one answer's body read: these calls' answers are a few hundred bytes (an error message at most).
BODY_BYTES = 64 * 1024


class Answer:
    """One request's outcome: ``status`` and ``body``, or ``error`` (a short text) with ``reason``."""

    __slots__ = ("status", "body", "error", "reason")

    def __init__(self, status=None, body=b"", error=None, reason=None):
        self.status = status
        self.body = body
        self.error = error
        self.reason = reason

    def repeatable(self) -> bool:
        """The server did not take the call (no answer, but not a TLS refusal, a redirect or an answer too large), or
        answered 502/503/504: sending it again, there or to another node, is safe for these calls."""
        if self.error is not None:
            return self.reason not in ("tls", "redirect", "size")
        return self.status in RETRYABLE_STATUSES


class _Closed(Exception):
    """The server closed the connection (or sent something that is not HTTP) before answering everything sent."""


class _TooLarge(Exception):
    """An answer's body was longer than BODY_BYTES: the rest is not read, and the connection is dropped."""


class DeadlineIO(io.RawIOBase):
    """A socket's bytes, each read given only the time left until ``deadline`` (None: the socket's own time-out).

    ``timeout`` bounds a whole answer, not each read: a server trickling a byte a second never hits a per-read one.
    Also under the transport's session, whose answers read through it.
    """

    def __init__(self, sock, deadline=None, holds=None):
        super().__init__()
        self.holds = holds  # a file of the socket's to close with this one (it keeps the socket from closing)
        self.sock = sock
        self.raw = socket.SocketIO(sock, "rb")  # not makefile: its count of open files would keep the socket open
        self.read_timeout = sock.gettimeout()
        self.deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("the whole answer did not arrive within the timeout")
            self.sock.settimeout(left if self.read_timeout is None else min(left, self.read_timeout))
        return self.raw.readinto(buffer)

    def close(self):
        self.raw.close()
        if self.holds is not None:
            self.holds.close()
        super().close()


class _KeepOpen(io.BufferedReader):
    """A connection's one buffered reader: http.client closes its reader after each answer, this one outlives them
    (bytes of the next pipelined answer may already sit in its buffer)."""

    def close(self):
        pass


class _Source:
    """What ``http.client.HTTPResponse`` reads an answer from: the connection's shared reader."""

    def __init__(self, reader):
        self.reader = reader

    def makefile(self, *unused_args, **unused_kwargs):
        return self.reader


def read_answer(reader, method, max_body=BODY_BYTES):
    """(status, body, whether the server closes the connection after it, its Location header) for the next answer on
    ``reader``.

    Interim 1xx answers (103 Early Hints from a proxy, say) are skipped: they come before the real one.
    """
    try:
        while True:
            response = http.client.HTTPResponse(_Source(reader), method=method)
            response.begin()
            if not 100 <= response.status < 200:
                break
        body = b""
        while not response.isclosed() and len(body) <= max_body:
            chunk = response.read(max_body + 1 - len(body))
            if not chunk:
                break
            body += chunk
        if len(body) > max_body:
            raise _TooLarge(f"an answer larger than {max_body // 1024} KB (HTTP {response.status}), not read further")
    except http.client.RemoteDisconnected:
        raise _Closed("the server closed the connection")
    except http.client.HTTPException as exc:
        raise _Closed(f"malformed HTTP answer ({type(exc).__name__}: {str(exc)[:80]})")
    return response.status, body, response.will_close, response.getheader("location")


def redirect_target(location) -> str:
    """Where a redirect points, as 'to host:port' (never its path or query, which may hold a secret)."""
    try:
        parts = urlsplit(str(location or ""))
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host:
        return "to a path on the same server" if location else "without saying where to"
    port = port or {"https": 443, "http": 80}.get(parts.scheme, "")
    return f"to {parts.scheme + '://' if parts.scheme else ''}{host}{f':{port}' if port else ''}"


class PipelinedSender:
    """Send many bodiless requests to one server over ``connections`` connections, ``window`` at a time each."""

    def __init__(self, base_url, headers, timeout=30.0, ssl_context=None, connections=16, window=16):
        url = urlsplit(base_url)
        self.host = url.hostname
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.prefix = url.path.rstrip("/")
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.connections = max(1, connections)
        self.window = max(1, window)
        self.method = "PATCH"
        # Set by the first redirect: no request is sent after it, and what was not sent fails with this text.
        self.halted = None
        # Set by the first connection that cannot be made: no other is tried in this send (the transport backs off
        # and sends what is left again), and what was not sent fails with this text.
        self.unreachable = None
        host_header = self.host if url.port is None else f"{self.host}:{url.port}"
        lines = [f"host: {host_header}", "content-length: 0"]
        lines += [f"{name}: {value}" for name, value in headers.items()
                  if name.lower() not in ("host", "content-length")]
        self._header_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, method, paths, params=None):
        """Send ``method`` to every path (relative to the base URL), once; returns one Answer per path, in order."""
        query = ("?" + urlencode(params)) if params else ""
        self.method = method  # how http.client reads the answers (one send at a time per sender)
        start = f"{method} {self.prefix}".encode("latin-1")
        end = f"{query} HTTP/1.1\r\n".encode("latin-1") + self._header_bytes

        def requests_bytes(index):  # built when sent: 100,000 requests held at once would be 20 MB
            return start + paths[index].encode("latin-1") + end

        answers = [None] * len(paths)
        pending = list(range(len(paths) - 1, -1, -1))  # popped from the end: first path first
        lock = threading.Lock()
        workers = [threading.Thread(target=self._work, args=(requests_bytes, answers, pending, lock),
                                    daemon=True) for unused_n in range(min(self.connections, len(paths)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        # A worker that died on something unforeseen must not leave a request unreported.
        return [answer or Answer(error="no answer recorded (internal error)", reason="connection")
                for answer in answers]

    # -- one connection's loop ---------------------------------------------------------------------
    def _work(self, requests_bytes, answers, pending, lock):
        conn = None
        try:
            while True:
                with lock:
                    batch = [pending.pop() for unused_n in range(min(self.window, len(pending)))]
                if not batch:
                    return
                if self.halted is not None:
                    self._fail(batch, answers, f"not sent after an answer of {self.halted}", "redirect")
                    continue
                if conn is None:
                    conn = self._connected(batch, answers)
                    if conn is None:
                        continue
                done, trouble, closing = self._exchange(conn, batch, requests_bytes, answers)
                left = batch[done:]
                if trouble is not None or closing:
                    conn.close()
                    conn = None
                if closing and left:
                    # "connection: close": the server answered up to here and did not read the rest, which is sent
                    # on a new connection (not a repeat: the server never read them).
                    with lock:
                        pending.extend(reversed(left))
                elif left:
                    self._fail(left, answers, *trouble)
        finally:
            if conn is not None:
                conn.close()

    def _connected(self, batch, answers):
        """A new connection, or None when the batch failed: TLS refused, or no connection (this one, or an earlier
        one of this send: the transport backs off before it tries again)."""
        if self.unreachable is not None:
            self._fail(batch, answers, self.unreachable, "connection")
            return None
        try:
            return self._connect()
        except ssl.SSLError as exc:
            self._fail(batch, answers, f"TLS handshake failed: {exc}", "tls")
        except OSError as exc:
            self.unreachable = self.unreachable or f"cannot connect: {exc}"
            self._fail(batch, answers, self.unreachable, "connection")
        return None

    def _exchange(self, conn, batch, requests_bytes, answers):
        """Write the batch, read its answers.

        Returns (answered count, trouble as (text, reason) or None, whether the server announced it closes the
        connection).
        """
        done = 0
        close = False
        try:
            conn.sendall(b"".join(requests_bytes(i) for i in batch))
            source = DeadlineIO(conn)
            reader = _KeepOpen(source, RECV_SIZE)
            while done < len(batch) and not close:
                source.deadline = time.monotonic() + self.timeout if self.timeout else None
                status, body, close, location = read_answer(reader, self.method)
                index = batch[done]
                done += 1
                if 300 <= status < 400:
                    # Never followed (the headers would go with it), and nothing more is sent.
                    self.halted = f"HTTP {status}, a redirect {redirect_target(location)}"
                    answers[index] = Answer(status, error=f"answered {self.halted}", reason="redirect")
                    continue
                # Bodies of successful answers are not needed; dropping them keeps 100,000 answers small.
                answers[index] = Answer(status, body if status >= 300 else b"")
            return done, None, close
        except _TooLarge as exc:
            answers[batch[done]] = Answer(error=str(exc), reason="size")
            return done + 1, (str(exc), "size"), False
        except socket.timeout:
            return done, (f"no whole answer within timeout={self.timeout:g}s", "timeout"), False
        except ssl.SSLError as exc:
            return done, (f"TLS error: {exc}", "tls"), False
        except (_Closed, OSError) as exc:
            return done, (str(exc) or type(exc).__name__, "connection"), False

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        return sock

    @staticmethod
    def _fail(indexes, answers, why, reason):
        for i in indexes:
            answers[i] = Answer(error=why, reason=reason)
