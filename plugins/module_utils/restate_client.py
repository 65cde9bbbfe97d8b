# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP client for the Restate Admin API.

This file knows HTTP and the Admin API, and nothing of Ansible: modules build an
``AdminClient`` from their connection options and turn ``RestateApiError`` into ``fail_json``.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import traceback

from ansible_collections.restate.admin.plugins.module_utils.bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils.pipelined_http import PipelinedSender

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

# The admin API versions this client speaks; a server announces its own range in GET /version.
# /invocations/{id}/{cancel,kill,pause,resume,purge,purge-journal,restart-as-new} are in v2+.
CLIENT_ADMIN_API_VERSIONS = (2, 3, 4)

# Statuses a gateway or a restarting server answers with; repeating is safe for idempotent calls.
RETRYABLE_STATUSES = frozenset((502, 503, 504))

INVOCATION_ACTIONS = ("cancel", "kill", "pause", "resume", "purge", "purge-journal", "restart-as-new")
# restart-as-new creates a new invocation each time it is accepted: never repeat it blindly.
NON_IDEMPOTENT_ACTIONS = frozenset(("restart-as-new",))
# Bulk calls are pipelined this many per connection over concurrency / PIPELINE_WINDOW connections. The server
# answers a connection's pipelined requests one after the other, so connections bring the parallelism and the
# window hides the round trips (make bench measured 128 x 4 best on a local 1.7 server).
PIPELINE_WINDOW = 4
MAX_CONNECTIONS = 128


class RestateApiError(Exception):
    """A failed call to the Admin API.

    ``status`` is the HTTP status, or None when no response arrived (``reason`` then says why:
    'connection', 'timeout', 'tls').
    """

    def __init__(self, method, path, status=None, message="", admin_url="", reason=None):
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.admin_url = admin_url
        self.reason = reason
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.method} {self.admin_url}{self.path}"
        if self.reason == "tls":
            return (f"TLS verification failed for {where}: {self.message}. Check admin_url, or give the "
                    "server's CA with ca_path (validate_certs=false only for throw-away servers).")
        if self.reason == "timeout":
            return (f"No answer from the Restate Admin API within the timeout for {where}: {self.message}. "
                    "Check admin_url or raise timeout.")
        if self.reason == "connection":
            return (f"Cannot reach the Restate Admin API at admin_url={self.admin_url} ({self.method} {self.path}): "
                    f"{self.message}. Check admin_url (host and admin port, default 9070) and that the server runs.")
        if self.status in (401, 403):
            return (f"The Restate Admin API at admin_url={self.admin_url} refused {self.method} {self.path} "
                    f"with HTTP {self.status}: {self.message or 'not authorized'}. Check token "
                    "(or RESTATE_AUTH_TOKEN).")
        return f"{where} failed with HTTP {self.status}: {self.message}"

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _error_message(response) -> str:
    """The server's own words: JSON errors carry them in 'message'."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:500]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:500]


def _body_message(body: bytes) -> str:
    """_error_message for a raw answer body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return str(parsed)[:500]


class AdminClient:
    """One pooled ``requests.Session`` for one module run."""

    def __init__(self, admin_url=DEFAULT_ADMIN_URL, token=None, validate_certs=True, ca_path=None,
                 client_cert=None, client_key=None, timeout=30.0, headers=None, retries=3,
                 retry_backoff=0.5, pool_size=16, on_retry=None):
        if requests is None:
            raise RuntimeError("the Python library 'requests' is required")
        self.admin_url = (admin_url or DEFAULT_ADMIN_URL).rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.retry_backoff = retry_backoff
        self.on_retry = on_retry  # called with a short text each time a call is repeated
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"accept": "application/json", "user-agent": "restate.admin-ansible"})
        if headers:
            self.session.headers.update({str(k): str(v) for k, v in headers.items()})
        if token:
            self.session.headers["authorization"] = f"Bearer {token}"
        # Passed with every request: a session-level value would lose to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
        # from the environment, and ca_path or validate_certs=false would be silently ignored.
        self.verify = (ca_path or True) if validate_certs else False
        self.cert = ((client_cert, client_key) if client_key else client_cert) if client_cert else None
        self._server_version = None

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- HTTP ----------------------------------------------------------------------------------
    def request(self, method, path, json_body=None, params=None, idempotent=True, ok_statuses=(),
                retry_statuses=RETRYABLE_STATUSES):
        """Send one call and return the response; raise RestateApiError for anything not 2xx.

        A refused connection is repeated for every call (nothing reached the server); 502/503/504,
        timeouts and dropped connections only when ``idempotent``. Back-off doubles each time.
        """
        url = self.admin_url + path
        attempt = 0
        while True:
            try:
                response = self.session.request(method, url, json=json_body, params=params, timeout=self.timeout,
                                                verify=self.verify, cert=self.cert)
            except requests.exceptions.SSLError as exc:
                raise RestateApiError(method, path, message=_short(exc), admin_url=self.admin_url, reason="tls")
            except requests.exceptions.ConnectionError as exc:
                never_sent = _never_sent(exc)
                if attempt < self.retries and (never_sent or idempotent):
                    attempt = self._back_off(attempt, method, path, _short(exc))
                    continue
                raise RestateApiError(method, path, message=_short(exc), admin_url=self.admin_url,
                                      reason="connection")
            except requests.exceptions.Timeout as exc:
                if attempt < self.retries and idempotent:
                    attempt = self._back_off(attempt, method, path, "timed out")
                    continue
                raise RestateApiError(method, path, message=_short(exc), admin_url=self.admin_url, reason="timeout")
            if response.status_code in retry_statuses and idempotent and attempt < self.retries:
                attempt = self._back_off(attempt, method, path, f"HTTP {response.status_code}")
                continue
            if response.status_code >= 400 and response.status_code not in ok_statuses:
                raise RestateApiError(method, path, status=response.status_code, message=_error_message(response),
                                      admin_url=self.admin_url)
            return response

    def _back_off(self, attempt, method, path, why):
        delay = self.retry_backoff * (2 ** attempt)
        if self.on_retry:
            self.on_retry(f"{method} {path}: {why}; retrying in {delay:.1f}s (retry {attempt + 1} of {self.retries})")
        time.sleep(delay)
        return attempt + 1

    # -- Admin API -----------------------------------------------------------------------------
    def version(self) -> dict:
        if self._server_version is None:
            response = self.request("GET", "/version")
            try:
                self._server_version = response.json()
            except ValueError:
                raise RestateApiError("GET", "/version", status=response.status_code,
                                      message="the answer is not JSON: is admin_url a Restate Admin API?",
                                      admin_url=self.admin_url)
        return self._server_version

    def check_compatible(self) -> dict:
        """Fail clearly when the server's admin API range excludes every version this client speaks."""
        info = self.version()
        low = info.get("min_admin_api_version")
        high = info.get("max_admin_api_version")
        if low is None or high is None:
            if "version" not in info:
                raise RestateApiError("GET", "/version", status=200, admin_url=self.admin_url,
                                      message=f"unexpected answer {str(info)[:200]}: is admin_url a Restate Admin API?")
            return info
        if not any(low <= v <= high for v in CLIENT_ADMIN_API_VERSIONS):
            raise RestateApiError(
                "GET", "/version", status=200, admin_url=self.admin_url,
                message=(f"Restate server {info.get('version')} speaks admin API versions {low}-{high}; this "
                         f"collection needs one of {', '.join(map(str, CLIENT_ADMIN_API_VERSIONS))}"))
        return info

    def query(self, sql: str, columns=None) -> list:
        """Run SQL through POST /query and return the rows as dicts.

        The server leaves NULL columns out of a JSON row; ``columns`` fills them in as None so every
        row has the same keys. Reads are safe to repeat.
        """
        # A read is always safe to repeat; a restarting node also answers 500 ("node ... was shut down").
        response = self.request("POST", "/query", json_body={"query": sql}, idempotent=True,
                                retry_statuses=RETRYABLE_STATUSES | {500})
        try:
            rows = response.json().get("rows", [])
        except (ValueError, AttributeError):
            raise RestateApiError("POST", "/query", status=response.status_code, admin_url=self.admin_url,
                                  message="the answer is not JSON rows: is admin_url a Restate Admin API?")
        if columns:
            for row in rows:  # in place: a copy of 100,000 rows would double the peak memory
                for column in columns:
                    row.setdefault(column, None)
        return rows

    def invocation_actions(self, invocation_ids, action: str, params=None, concurrency=256):
        """The same PATCH for many invocations; returns one RestateApiError or None per id, in order.

        Idempotent actions are pipelined over a few keep-alive connections (see pipelined_http); restart-as-new,
        and any call that must go through an HTTP proxy from the environment, take one thread per request
        over the session instead.
        """
        invocation_ids = list(invocation_ids)
        if action not in INVOCATION_ACTIONS:
            raise ValueError(f"unknown invocation action {action!r}")
        if not invocation_ids:
            return []
        if action in NON_IDEMPOTENT_ACTIONS or self._proxied():
            return self._threaded_actions(invocation_ids, action, params, concurrency)
        sender = PipelinedSender(
            self.admin_url, dict(self.session.headers), timeout=self.timeout, retries=self.retries,
            retry_backoff=self.retry_backoff, ssl_context=self._ssl_context() if self.admin_url.startswith("https:")
            else None, connections=min(MAX_CONNECTIONS, -(-concurrency // PIPELINE_WINDOW)),
            window=min(PIPELINE_WINDOW, concurrency), on_retry=self.on_retry)
        paths = [f"/invocations/{invocation_id}/{action}" for invocation_id in invocation_ids]
        errors = []
        for path, answer in zip(paths, sender.send("PATCH", paths, params)):
            if answer.error is not None:
                errors.append(RestateApiError("PATCH", path, message=answer.error, admin_url=self.admin_url,
                                              reason=answer.reason))
            elif answer.status >= 400:
                errors.append(RestateApiError("PATCH", path, status=answer.status,
                                              message=_body_message(answer.body), admin_url=self.admin_url))
            else:
                errors.append(None)
        return errors

    def _threaded_actions(self, invocation_ids, action, params, concurrency):
        outcomes = run_each(lambda invocation_id: self.invocation_action(invocation_id, action, params=params),
                            invocation_ids, min(concurrency, 64))
        return [error for unused_id, unused_response, error in outcomes]

    def _proxied(self) -> bool:
        return bool(self.session.trust_env and get_environ_proxies(self.admin_url))

    def _ssl_context(self):
        """The trust the requests session would use: ca_path, else REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, else certifi."""
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

    def invocation_action(self, invocation_id: str, action: str, params=None, ok_statuses=()):
        """PATCH /invocations/{id}/{action}; returns the response (JSON body, if any, via .json())."""
        if action not in INVOCATION_ACTIONS:
            raise ValueError(f"unknown invocation action {action!r}")
        return self.request("PATCH", f"/invocations/{invocation_id}/{action}", params=params,
                            idempotent=action not in NON_IDEMPOTENT_ACTIONS, ok_statuses=ok_statuses)


def _short(exc) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."


def _never_sent(exc) -> bool:
    """True when the connection was refused or never opened, so the request cannot have arrived."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
