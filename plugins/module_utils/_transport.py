# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The one way to the Admin API: a pooled session, the retry policy, failover between nodes, TLS, compression, and
the one place where transport and library errors become the collection's messages (``RestateApiError``).

Knows HTTP, nothing of Ansible and nothing of what the Admin API's paths mean: the API areas (``_invocations_api``,
``_queries_api``, ...) build on it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import time
import traceback
from urllib.parse import urlsplit

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    import requests.certs
    from requests.adapters import HTTPAdapter
    from requests.utils import get_environ_proxies
    from urllib3.exceptions import NewConnectionError
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    requests = None
    HTTPAdapter = NewConnectionError = object
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

DEFAULT_ADMIN_URL = "http://localhost:9070"

# Statuses a gateway or a restarting server answers with; repeating is safe for idempotent calls.
RETRYABLE_STATUSES = frozenset((502, 503, 504))
# What an answer's error text is cut to: the server's own words, not a whole HTML page.
MESSAGE_LENGTH = 500


class RestateApiError(Exception):
    """A failed call to the Admin API.

    ``status`` is the HTTP status, or None when no response arrived (``reason`` then says why:
    'connection', 'timeout', 'tls'). ``bodiless``: the answer had no body.
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
    except ValueError:
        return (body.decode("utf-8", "replace").strip() or fallback)[:MESSAGE_LENGTH]
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return str(parsed)[:MESSAGE_LENGTH]


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
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
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

    @property
    def admin_url(self) -> str:
        """The node calls go to now."""
        return self.admin_urls[self.node]

    def close(self):
        self.session.close()

    def request(self, method, path, json_body=None, params=None, idempotent=True, ok_statuses=(),
                retry_statuses=RETRYABLE_STATUSES):
        """Send one call and return the response; raise RestateApiError for anything not 2xx.

        A refused connection is repeated for every call (nothing reached the server); 502/503/504,
        timeouts and dropped connections only when ``idempotent``. Back-off doubles each time. When the retries
        run out, the error raised is the last answer a node gave, if any did: a live node's "HTTP 500: connect
        throttled" says more than a dead one's refused connection.
        """
        attempt = 0
        tried = 1  # nodes tried since the last back-off
        answered = None  # the last error that came with an HTTP answer
        while True:
            node = self.node
            admin_url = self.admin_urls[node]
            try:
                response = self.session.request(method, admin_url + path, json=json_body, params=params,
                                                timeout=self.timeout, verify=self.verify, cert=self.cert)
            except Exception as exc:  # pylint: disable=broad-exception-caught  # mapped, never passed through
                error, repeatable = self._failure(method, path, admin_url, exc)
                if not (repeatable is True or (repeatable == "idempotent" and idempotent)):
                    raise error from None
                why = error.message if error.reason == "connection" else "timed out"
            else:
                if response.status_code in retry_statuses and idempotent:
                    error = answered = RestateApiError(method, path, status=response.status_code,
                                                       message=server_message(response.content, response.reason),
                                                       admin_url=admin_url)
                    why = f"HTTP {response.status_code}"
                elif response.status_code >= 400 and response.status_code not in ok_statuses:
                    raise RestateApiError(method, path, status=response.status_code,
                                          message=server_message(response.content, response.reason),
                                          admin_url=admin_url, bodiless=not response.content.strip())
                else:
                    return response
            retry = self.next_try(attempt, tried, node, f"{method} {path}: {why}")
            if retry is None:
                raise answered or error
            attempt, tried = retry

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
        if isinstance(exc, requests.exceptions.Timeout):
            return error("timeout", _short(exc)), "idempotent"
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
