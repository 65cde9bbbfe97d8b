# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The one way to the Admin API: a pooled session, the retry policy, failover between nodes, TLS, compression, and
the one place where transport and library errors become the collection's messages (``RestateApiError``).

Knows HTTP, nothing of Ansible and nothing of what the Admin API's paths mean: the API areas (``_invocations_api``,
``_queries_api``, ...) build on it.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import traceback
from urllib.parse import urlsplit

from ansible_collections.restate.admin.plugins.module_utils._pipelined_http import (
    RETRYABLE_STATUSES,
    DeadlineIO,
    PipelinedSender,
    redirect_target,
)

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    import requests.certs
    from requests.adapters import HTTPAdapter
    from requests.utils import get_environ_proxies
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    requests = None
    HTTPAdapter = NewConnectionError = HTTPConnection = HTTPSConnection = ProtocolError = ReadTimeoutError = object
    HTTPConnectionPool = HTTPSConnectionPool = object
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

DEFAULT_ADMIN_URL = "http://localhost:9070"

# What an answer's error text is cut to: the server's own words, not a whole HTML page.
MESSAGE_LENGTH = 500
# The most of an answer read into memory: more than any answer of the Admin API but a /query's (which asks for its
# own cap) takes; an error answer's body is cut much shorter, only its message is kept.
ANSWER_BYTES = 16 * 1024 * 1024
ERROR_BYTES = 1024 * 1024


class RestateApiError(Exception):
    """A failed call to the Admin API.

    ``status`` is the HTTP status, or None when no response arrived (``reason`` then says why:
    'connection', 'timeout', 'tls', 'request'); 'redirect', 'size' and 'answer' come with the status of an answer
    that was not used: a redirect, too large, or not of the expected shape. ``bodiless``: the answer had no body.
    """

    def __init__(self, method, path, status=None, message="", admin_url="", reason=None, bodiless=False):
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.admin_url = admin_url
        self.reason = reason
        self.bodiless = bodiless
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.method} {self.admin_url}{self.path}"
        if self.reason == "tls":
            return (f"TLS failed for {where}: {self.message}. Check admin_url, or give the "
                    "server's CA with ca_path (validate_certs=false only for throw-away servers).")
        if self.reason == "timeout":
            return (f"No answer from the Restate Admin API within the timeout for {where}: {self.message}. "
                    "Check admin_url or raise timeout.")
        if self.reason == "connection":
            return (f"Cannot reach the Restate Admin API at admin_url={self.admin_url} ({self.method} {self.path}): "
                    f"{self.message}. Check admin_url (host and admin port, default 9070) and that the server runs.")
        if self.reason == "request":
            return f"Cannot send {where}: {self.message}"
        if self.reason == "redirect":
            return (f"{where}: {self.message}. The collection follows no redirect (the token and headers would go "
                    "with it) and sends nothing more after one: set admin_url to the address the Admin API is "
                    "served at.")
        if self.reason == "size":
            return f"{where}: {self.message}"
        if self.reason == "answer":
            return (f"{where} gave an unexpected answer (HTTP {self.status}): {self.message}; is admin_url a "
                    "Restate Admin API? Give the admin port (9070 by default) of a supported Restate server.")
        if self.status in (401, 403):
            return (f"The Restate Admin API at admin_url={self.admin_url} refused {self.method} {self.path} "
                    f"with HTTP {self.status}: {self.message or 'not authorized'}. Check token "
                    "(or RESTATE_AUTH_TOKEN).")
        return f"{where} failed with HTTP {self.status}: {self.message}"

    @property
    def not_found(self) -> bool:
        return self.status == 404


def server_message(body: bytes, fallback: str = "") -> str:
    """The server's own words in an error answer: JSON errors carry them in 'message'."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return cut(body.decode("utf-8", "replace").strip() or fallback)
    if isinstance(parsed, dict) and parsed.get("message"):
        return cut(str(parsed["message"]))
    return cut(str(parsed))


def cut(text: str, length: int = MESSAGE_LENGTH) -> str:
    """``text`` cut to ``length`` characters, saying so: a server's message may be megabytes long."""
    return text if len(text) <= length else f"{text[:length]}... ({len(text) - length} more characters)"


def answer_json(response, method, path, admin_url, expected, valid=None):
    """The JSON of an answer when ``valid(value)`` holds, else a RestateApiError naming the call and ``expected``.

    The one place an answer of the wrong shape (not JSON, a list for an object, a key missing) becomes the collection's
    message, never Python's ("Expecting value", "'int' object has no attribute 'get'"). JSON objects are read as
    ``Row``, whose missing keys raise the same error.
    """
    try:
        value = json.loads(response.content, object_pairs_hook=lambda pairs: Row(pairs, call=(method, path, admin_url)))
    except (ValueError, RecursionError):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        got = "an empty body" if not response.content.strip() else f"a body that is not JSON ({cut(kind, 60)})"
        raise unexpected(method, path, admin_url, response.status_code, expected, got) from None
    if valid is not None and not valid(value):
        raise unexpected(method, path, admin_url, response.status_code, expected, shape(value))
    return value


class UnexpectedAnswer(RestateApiError, ValueError):
    """An answer not of the shape the call expects. A ValueError too, as requests' ``json()`` raises for a body that
    is not JSON: code that handles that handles this."""


def unexpected(method, path, admin_url, status, expected, got) -> RestateApiError:
    return UnexpectedAnswer(method, path, status=status, admin_url=admin_url, reason="answer",
                            message=f"expected {expected}, got {got}")


def shape(value) -> str:
    """What a JSON value is, in a few words (never the value itself: it may be megabytes, or echo a secret)."""
    if isinstance(value, dict):
        keys = ", ".join(cut(str(key), 40) for key in list(value)[:8])
        return f"an object with keys {keys}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(type(value), "a value")


def objects(value, *keys) -> bool:
    """Whether ``value`` is a list of objects, each with a string at every key of ``keys``."""
    return isinstance(value, list) and all(
        isinstance(item, dict) and all(isinstance(item.get(key), str) for key in keys) for item in value)


class Row(dict):
    """A JSON object of an answer: a key it lacks fails as an unexpected answer of the call it came with."""

    __slots__ = ("call",)

    def __init__(self, pairs=(), call=None):
        super().__init__(pairs)
        self.call = call

    def __missing__(self, key):
        method, path, admin_url = self.call or ("?", "?", "")
        raise unexpected(method, path, admin_url, 200, f"an object with {cut(str(key), 60)!r}", shape(self))


class RetryPolicy:
    """How often and how long to wait before a call that is safe to repeat is sent again, announced each time.

    Shared by the session's calls and the pipelined bulk calls, so both repeat the same way.
    """

    def __init__(self, retries=4, backoff=0.5, on_retry=None, sleep=time.sleep):
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.on_retry = on_retry  # called with a short text each time a call is repeated
        self.repeats = 0  # calls repeated (or moved to another node) so far in this run
        self._sleep = sleep

    def announce(self, text):
        self.repeats += 1
        if self.on_retry:
            self.on_retry(text)

    def back_off(self, attempt, why) -> int:
        """Wait before repetition ``attempt + 1``, saying why; returns the new attempt count."""
        delay = self.backoff * (2 ** min(attempt, 6))
        self.announce(f"{why}; retrying in {delay:.1f}s (retry {attempt + 1} of {self.retries})")
        self._sleep(delay)
        return attempt + 1


# The deadline of the call this thread is making (a monotonic time), read by the answers the session's connections
# create: ``timeout`` bounds the whole answer, not each read (a server trickling a byte a second never hits a per-read
# time-out).
_CALL = threading.local()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's answer, read through a DeadlineReader when the thread's call has a deadline."""

    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        deadline = getattr(_CALL, "deadline", None)
        self.deadline_io = None  # moved on by Transport.parts for each part of an answer read as a stream
        if deadline is not None:
            # The file http.client opened is kept open with it: a connection closed after this answer ("connection:
            # close") is closed for real only once no file of its socket is open, after the body is read.
            self.deadline_io = DeadlineIO(sock, deadline, holds=self.fp)
            self.fp = io.BufferedReader(self.deadline_io)


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter over connections whose answers keep the call's deadline (proxied ones too)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, *args, **kwargs):
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


class Transport:
    """One pooled ``requests.Session`` for one module run, over one or more nodes of a cluster.

    ``admin_url`` may list several nodes: calls go to one node, and move to the next when it cannot be reached (or
    answers 502/503/504) and repeating is safe. Any node's Admin API sees every partition.
    """

    def __init__(self, admin_url=DEFAULT_ADMIN_URL, token=None, validate_certs=True, ca_path=None,
                 client_cert=None, client_key=None, timeout=30.0, headers=None, retries=4,
                 retry_backoff=0.5, pool_size=16, on_retry=None):
        if requests is None:
            raise RuntimeError("the Python library 'requests' is required")
        urls = [admin_url] if isinstance(admin_url, str) else list(admin_url or [])
        self.admin_urls = [url.rstrip("/") for url in urls if url] or [DEFAULT_ADMIN_URL]
        self.node = 0  # index in admin_urls of the node calls go to
        self.timeout = timeout
        self.retry = RetryPolicy(retries, retry_backoff, on_retry)
        self.session = requests.Session()
        adapter = _DeadlineAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"accept": "application/json", "user-agent": "restate.admin-ansible"})
        if all(_loopback(url) for url in self.admin_urls):
            # Compression costs both ends more than it saves where nothing crosses a network: a 10,000-row answer
            # of /query took 25-30 ms longer gzipped from a local 1.7 server.
            self.session.headers["accept-encoding"] = "identity"
        if headers:
            self.session.headers.update({str(k): str(v) for k, v in headers.items()})
        if token:
            self.session.headers["authorization"] = f"Bearer {token}"
        # Passed with every request: a session-level value would lose to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
        # from the environment, and ca_path or validate_certs=false would be silently ignored.
        self.verify = (ca_path or True) if validate_certs else False
        self.cert = ((client_cert, client_key) if client_key else client_cert) if client_cert else None
        # Set by a redirect: every call after it is refused unsent, with the same error.
        self.stopped = None

    @property
    def admin_url(self) -> str:
        """The node calls go to now."""
        return self.admin_urls[self.node]

    def close(self):
        self.session.close()

    # pylint: disable-next=too-many-arguments
    def request(self, method, path, json_body=None, params=None, idempotent=True, ok_statuses=(),
                retry_statuses=RETRYABLE_STATUSES, max_bytes=ANSWER_BYTES, stream=False):
        """Send one call and return the response, its body read; raise RestateApiError for anything not 2xx.

        A refused connection is repeated for every call (nothing reached the server); 502/503/504,
        timeouts and dropped connections only when ``idempotent``. Back-off doubles each time. When the retries
        run out, the error raised is the last answer a node gave, if any did: a live node's "HTTP 500: connect
        throttled" says more than a dead one's refused connection.

        The whole answer must arrive within ``timeout`` and hold at most ``max_bytes`` (an error answer much less).
        A redirect is never followed: it fails this call and every later one, unsent. With ``stream``, the body of a
        2xx answer is left unread, for ``parts`` to read.
        """
        attempt = 0
        tried = 1  # nodes tried since the last back-off
        answered = None  # the last error that came with an HTTP answer
        while True:
            if self.stopped is not None:
                raise self.stopped
            node = self.node
            admin_url = self.admin_urls[node]
            _CALL.deadline = time.monotonic() + self.timeout if self.timeout else None
            try:
                response = self._sent(method, admin_url, path, {"json": json_body, "params": params},
                                      None if stream else max_bytes)
            except RestateApiError:
                raise
            except Exception as exc:  # pylint: disable=broad-exception-caught  # mapped, never passed through
                error, why = self._unanswered(method, path, admin_url, exc, idempotent)
            else:
                error = self._refusal(response, method, path, admin_url, ok_statuses,
                                      retry_statuses if idempotent else ())
                if error is None:
                    return response
                answered, why = error, f"HTTP {response.status_code}"
            finally:
                _CALL.deadline = None
            retry = self.next_try(attempt, tried, node, f"{method} {path}: {why}")
            if retry is None:
                raise answered or error
            attempt, tried = retry

    def _sent(self, method, admin_url, path, content, max_bytes):
        """The answer of one node to one call (``content``: its json body and query parameters), body read unless
        ``max_bytes`` is None and the answer is a 2xx."""
        response = self.session.request(method, admin_url + path, timeout=self.timeout, verify=self.verify,
                                        cert=self.cert, allow_redirects=False, stream=True, **content)
        if max_bytes is not None or not 200 <= response.status_code < 300:
            self._read_body(response, method, path, admin_url, max_bytes or ANSWER_BYTES)
        return response

    # pylint: disable-next=too-many-arguments
    def parts(self, response, method, path, max_bytes=ANSWER_BYTES, size=64 * 1024):
        """The body of an answer that request(stream=True) left unread, ``size`` bytes at a time, each part within
        ``timeout`` of the one before (an answer of a million rows takes longer than one call may, but never stalls
        unseen), at most ``max_bytes`` in all as for a call; closes the answer once read, or when the reader stops.
        A failure on the way is a RestateApiError (reason connection, timeout or size), as for a call."""
        admin_url = self.admin_url
        deadline_io = getattr(getattr(response.raw, "_fp", None), "deadline_io", None)
        read = 0
        try:
            while True:
                if deadline_io is not None and self.timeout:
                    deadline_io.deadline = time.monotonic() + self.timeout
                try:
                    part = response.raw.read(size, decode_content=True)
                except Exception as exc:  # pylint: disable=broad-exception-caught  # mapped, never passed through
                    raise self._failure(method, path, admin_url, exc)[0] from None
                if not part:
                    return
                read += len(part)
                if read > max_bytes:
                    raise _too_large(method, path, response.status_code, admin_url, max_bytes)
                yield part
        finally:
            response.close()

    # pylint: disable-next=too-many-arguments
    def _unanswered(self, method, path, admin_url, exc, idempotent):
        """(the error, why in a few words) of a call that got no answer, when it may be sent again; raises if not."""
        error, repeatable = self._failure(method, path, admin_url, exc)
        if _CALL.deadline is not None and time.monotonic() >= _CALL.deadline:
            error = RestateApiError(method, path, admin_url=admin_url, reason="timeout",
                                    message=f"the whole answer did not arrive within timeout={self.timeout:g}s")
            repeatable = "idempotent"
        if not (repeatable is True or (repeatable == "idempotent" and idempotent)):
            raise error from None
        return error, (error.message if error.reason == "connection" else "timed out")

    # pylint: disable-next=too-many-arguments
    def _refusal(self, response, method, path, admin_url, ok_statuses, retry_statuses):
        """None for an answer to return; the error of one to repeat (``retry_statuses``); raises for the others."""
        status = response.status_code
        if 300 <= status < 400:
            # No status: the call was not answered in a way that can be used (a batch refused with a status would be
            # sent again one call each). It stops every later call too.
            self.stopped = RestateApiError(method, path, admin_url=admin_url, reason="redirect",
                                           message=(f"answered HTTP {status}, a redirect "
                                                    f"{redirect_target(response.headers.get('location'))}"))
            raise self.stopped
        message = server_message(response.content, response.reason) if status >= 400 else None
        if status in retry_statuses:
            return RestateApiError(method, path, status=status, message=message, admin_url=admin_url)
        if status >= 400 and status not in ok_statuses:
            raise RestateApiError(method, path, status=status, message=message, admin_url=admin_url,
                                  bodiless=not response.content.strip())
        return None

    def _read_body(self, response, method, path, admin_url, max_bytes):
        """Read the answer's body into ``response`` (at most ``max_bytes``, or ERROR_BYTES for anything not 2xx); a
        longer one is dropped with its connection and fails the call."""
        if 300 <= response.status_code < 400:
            response.close()  # its body is not needed; the connection goes with it
            response._content = b""  # pylint: disable=protected-access  # requests' own cache of the body
            return
        limit = max_bytes if response.status_code < 300 else ERROR_BYTES
        body = response.raw.read(limit + 1, decode_content=True)
        if len(body) > limit:
            response.close()
            if response.status_code < 300:
                raise _too_large(method, path, response.status_code, admin_url, limit)
            body = cut(body[:MESSAGE_LENGTH].decode("utf-8", "replace")).encode() + b" (cut)"
        response._content = body  # pylint: disable=protected-access  # requests' own cache of the body
        response._content_consumed = True  # pylint: disable=protected-access
        # Every reading of the answer as JSON fails as an unexpected answer of this call, never as Python's error.
        response.json = functools.partial(answer_json, response, method, path, admin_url, "a JSON answer")

    def _failure(self, method, path, admin_url, exc):
        """(RestateApiError, when it may be repeated: True, "idempotent" or False) for what the library raised.

        The one place library errors become the collection's messages. Their text is never passed on where it may
        hold a header value (requests prints a refused header whole, the token with it).
        """
        def error(reason, message):
            return RestateApiError(method, path, message=message, admin_url=admin_url, reason=reason)

        if isinstance(exc, requests.exceptions.SSLError):
            message = scheme_hint(admin_url, _short(exc), "https:", PLAIN_SERVER_SIGNS,
                                  "the server speaks plain HTTP: use http:// in admin_url")
            return error("tls", message), False
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):  # dropped in the middle of an answer
            return error("connection", _short(exc)), "idempotent"
        if isinstance(exc, requests.exceptions.ConnectionError):
            return error("connection", _short(exc)), True if _never_sent(exc) else "idempotent"
        if isinstance(exc, (requests.exceptions.Timeout, ReadTimeoutError, socket.timeout)):
            return error("timeout", _short(exc)), "idempotent"
        if isinstance(exc, ProtocolError):  # the body, read by the transport itself, ended early
            return error("connection", _short(exc)), "idempotent"
        header_refused = isinstance(exc, (requests.exceptions.InvalidHeader, UnicodeError))  # not latin-1 either
        if header_refused or "header" in str(exc).lower():
            return error("request", "a header value is not allowed in HTTP (check token and headers: no line "
                                    "breaks or control characters)"), False
        if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                            requests.exceptions.InvalidURL)):
            return error("request", f"admin_url={admin_url} is not a URL the client can call; use "
                                    "http://host:9070 or https://host:9070"), False
        if isinstance(exc, OSError) and not isinstance(exc, requests.exceptions.RequestException):
            # requests' own check of the CA bundle and client certificate files
            return error("tls", f"the TLS files could not be used ({_short(exc)}); check ca_path, client_cert "
                                "and client_key"), False
        return error("request", f"{type(exc).__name__} from the HTTP library"), False

    def next_try(self, attempt, tried, node, why):
        """After a failure on ``node`` that is safe to repeat: the next node at once, or the same round of nodes
        again after a back-off once every node was tried. Returns the new (attempt, tried), or None when retries
        are spent."""
        if tried < len(self.admin_urls):
            self.fail_over(node, why)
            return attempt, tried + 1
        if attempt >= self.retry.retries:
            return None
        attempt = self.retry.back_off(attempt, why)
        if len(self.admin_urls) > 1:
            self.fail_over(node, why)
        return attempt, 1

    # pylint: disable-next=too-many-arguments
    def pipelined(self, method, paths, params=None, connections=16, window=4) -> list:
        """Send ``method`` (bodiless, safe to repeat) to every path, pipelined over ``connections`` connections
        (_pipelined_http); what the server did not take (no answer, 502/503/504) is sent again as request() repeats
        one call: to the next node at once, else after a back-off, until the retries are spent. One Answer per path,
        in order: the last one each got."""
        answers = [None] * len(paths)
        left = list(range(len(paths)))
        attempt, tried = 0, 1
        while True:
            node = self.node
            admin_url = self.admin_urls[node]
            sender = PipelinedSender(admin_url, self.bare_headers(), timeout=self.timeout,
                                     ssl_context=self.ssl_context() if admin_url.startswith("https:") else None,
                                     connections=connections, window=window)
            for i, answer in zip(left, sender.send(method, [paths[i] for i in left], params)):
                answers[i] = answer
            left = [i for i in left if answers[i].repeatable()]
            if not left or sender.halted is not None:
                return answers
            first = answers[left[0]]
            why = first.error or f"HTTP {first.status}"
            retry = self.next_try(attempt, tried, node, f"{len(left)} of {len(paths)} bulk {method} calls: {why}")
            if retry is None:
                return answers
            attempt, tried = retry

    def fail_over(self, node, why):
        """Move calls on from ``node``; a no-op when another thread already did (calls run concurrently, and each
        failure on a dead node must not push the others past the live ones and back onto it)."""
        if self.node != node:
            return
        self.node = (node + 1) % len(self.admin_urls)
        self.retry.announce(f"admin_url {self.admin_urls[node]}: {why}; going on with {self.admin_url}")

    def proxied(self) -> bool:
        """Whether calls must go through an HTTP proxy named in the environment."""
        return bool(self.session.trust_env and any(get_environ_proxies(url) for url in self.admin_urls))

    def bare_headers(self) -> dict:
        """The session's headers without requests' transport ones, for a sender that frames its own connections
        and reads plain bodies (asked for gzip, the server compresses even a 409's two lines)."""
        headers = {name: value for name, value in self.session.headers.items()
                   if name.lower() not in ("accept-encoding", "connection")}
        headers["accept-encoding"] = "identity"
        return headers

    def ssl_context(self):
        """The trust the session uses, as an ``ssl`` context: ca_path, else REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, else
        certifi; the client certificate when given."""
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            bundle = self.verify if isinstance(self.verify, str) else (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where())
            if os.path.isdir(bundle):
                context = ssl.create_default_context(capath=bundle)
            else:
                context = ssl.create_default_context(cafile=bundle)
        if self.cert:
            certfile, keyfile = self.cert if isinstance(self.cert, tuple) else (self.cert, None)
            context.load_cert_chain(certfile, keyfile)
        return context


def _too_large(method, path, status, admin_url, limit) -> RestateApiError:
    return RestateApiError(method, path, status=status, admin_url=admin_url, reason="size",
                           message=(f"the answer is larger than {limit // 1024 // 1024} MB, more than this call can "
                                    "hold; not read further"))


def _loopback(url) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# What a TLS client reads from a plain HTTP server, and what a plain client reads from a TLS server: its alert record
# (0x15 0x03) where an HTTP status line should be, or (Python's ssl) a reset. Only the first call of a run is judged
# so (AdminClient.version): later, a dropped connection says nothing of TLS.
PLAIN_SERVER_SIGNS = ("wrong version number", "record layer", "unknown protocol", "packet length")
TLS_SERVER_SIGNS = ("\\x15\\x03", "badstatusline", "remotedisconnected", "connection reset")


def scheme_hint(admin_url, message, scheme, signs, advice) -> str:
    """``message``, with ``advice`` added when an ``scheme`` URL failed in a way that says the server speaks the other
    way (TLS to a plain HTTP server, or the reverse)."""
    lowered = message.lower()
    if admin_url.startswith(scheme) and any(sign in lowered for sign in signs):
        return f"{message} ({advice})"
    return message


def _short(exc) -> str:
    reason = _urllib3_reason(exc)
    # urllib3 wraps "connection refused" in two layers that repeat the host and port admin_url already names.
    text = str(reason).split("): ", 1)[-1] if isinstance(reason, NewConnectionError) else str(exc)
    return text if len(text) <= 300 else text[:300] + "..."


def _never_sent(exc) -> bool:
    """True when the connection was refused or never opened, so the request cannot have arrived."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(_urllib3_reason(exc), NewConnectionError)


def _urllib3_reason(exc):
    """What urllib3 found wrong under a requests ConnectionError (a NewConnectionError when refused), or None."""
    return getattr(exc.args[0], "reason", None) if exc.args else None
