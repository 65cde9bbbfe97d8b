"""A real HTTP/1.1 proxy in front of the admin API that misbehaves on demand.

It reads each request from the client (pipelined or not), then, by the faults queued for it:
answers 503 itself, drops the client connection before forwarding (the request never arrives), forwards
and drops the answer (the request arrived, the answer is lost) or half of it, stalls, adds latency, demands a Bearer
token, or first runs a test's callback (to kill the server behind it at an exact point of a task).
Everything else is forwarded byte for byte over one upstream connection per client connection.
With a TLS context it is also a TLS terminator (optionally requiring client certificates).
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit


def _read_request(conn, buf):
    """(request bytes, rest of buffer) or (None, buf) when the client closed."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in buf[:head_end].split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(buf) < head_end + length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    return buf[:head_end + length], buf[head_end + length:]


def _answer_end(buf):
    """Where the answer at the start of ``buf`` ends, or None when it is not all there. Restate's answers carry a
    content-length or are chunked (the proxy forwards them byte for byte, so it only needs their length)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end]).lower()
    pos = head_end + 4
    if b"\r\ntransfer-encoding: chunked" in head:
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if size == 0:
                return pos if len(buf) >= pos else None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head_end + 4 + length if len(buf) >= head_end + 4 + length else None


def _read_answer(upstream, buf):
    """(answer bytes, rest) from the upstream connection."""
    while True:
        end = _answer_end(buf)
        if end is not None:
            return bytes(buf[:end]), buf[end:]
        chunk = upstream.recv(262144)
        if not chunk:
            raise ConnectionError("upstream closed")
        buf += chunk


class FaultProxy:
    def __init__(self, upstream_url: str, tls_context=None, prefix: str = ""):
        target = urlsplit(upstream_url)
        # With a prefix, the proxy serves the Admin API under that path, as a proxy that routes by path does:
        # requests under it are forwarded without it, any other gets 404.
        self.prefix = prefix.rstrip("/")
        self.upstream = (target.hostname, target.port)
        self.tls_context = tls_context
        self.lock = threading.Lock()
        self.faults = []  # (kind, predicate on the request line) consumed in order
        self.latency = 0.0
        self.token = None
        self.hooks = []  # [match, requests still to let by, callback]
        self.requests = []  # request lines seen, in order
        self.seen_authorization = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- configuration ---------------------------------------------------------------------------
    def add(self, kind: str, count: int = 1, match: str = ""):
        """Queue ``count`` faults of ``kind`` (status503, reset_before, reset_after, cut_half, stall, or none: the
        request goes through as usual) for requests whose request line contains ``match``."""
        with self.lock:
            self.faults.extend([(kind, match)] * count)

    def before(self, match: str, nth: int, callback):
        """Call ``callback()`` when the ``nth`` request whose request line contains ``match`` has arrived, before
        it is forwarded."""
        with self.lock:
            self.hooks.append([match, nth, callback])

    def _take_hook(self, request_line: str):
        with self.lock:
            for hook in self.hooks:
                if hook[0] in request_line:
                    hook[1] -= 1
                    if hook[1] == 0:
                        self.hooks.remove(hook)
                        return hook[2]
        return None

    def clear(self):
        with self.lock:
            self.faults.clear()
            self.latency = 0.0
            self.token = None
            self.hooks.clear()

    def _take_fault(self, request_line: str):
        with self.lock:
            for index, (kind, match) in enumerate(self.faults):
                if match in request_line:
                    del self.faults[index]
                    return kind
        return None

    # -- serving ---------------------------------------------------------------------------------
    def _accept(self):
        while not self.closing:
            try:
                conn, unused_addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        upstream = None
        try:
            if self.tls_context:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            buf = b""
            up_buf = bytearray()
            while True:
                request, buf = _read_request(conn, buf)
                if request is None:
                    return
                head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                line = head.split("\r\n", 1)[0]
                authorization = next((h.split(":", 1)[1].strip() for h in head.split("\r\n")[1:]
                                      if h.lower().startswith("authorization:")), None)
                with self.lock:
                    self.requests.append(line)
                    self.seen_authorization.append(authorization)
                if self.prefix:
                    method, target, version = line.split(" ", 2)
                    if target.split("?", 1)[0] != self.prefix and not target.startswith(self.prefix + "/"):
                        conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nnot here\r\n")
                        continue
                    rewritten = f"{method} {target[len(self.prefix):] or '/'} {version}"
                    request = rewritten.encode("latin-1") + request[len(line):]
                if self.token is not None and authorization != f"Bearer {self.token}":
                    status = b"401 Unauthorized" if authorization is None else b"403 Forbidden"
                    body = b'{"message":"missing or wrong bearer token"}'
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                hook = self._take_hook(line)
                if hook:
                    hook()
                fault = self._take_fault(line)
                if fault == "status503":
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\n\r\noverloaded\n")
                    continue
                if fault == "reset_before":
                    return
                if fault == "stall":
                    time.sleep(3600)
                if self.latency:
                    time.sleep(self.latency)
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                upstream.sendall(request)
                answer, up_buf = _read_answer(upstream, up_buf)
                if fault == "reset_after":
                    return
                if fault == "cut_half":  # the answer breaks off half way, its connection closed
                    conn.sendall(answer[:len(answer) // 2])
                    return
                conn.sendall(answer)
        except (OSError, ConnectionError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.listener.close()
