# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""HTTP client for the Restate Admin API.

This file knows HTTP and the Admin API, and nothing of Ansible: modules build an
``AdminClient`` from their connection options and turn ``RestateApiError`` into ``fail_json``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import time
import traceback
from urllib.parse import urlsplit

from ansible_collections.restate.admin.plugins.module_utils._bulk import run_each
from ansible_collections.restate.admin.plugins.module_utils._pipelined_http import PipelinedSender

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
# Servers before the PATCH operations had DELETE /invocations/{id}?mode=... for these (and still list it, deprecated).
DELETE_MODES = frozenset(("cancel", "kill", "purge"))
# restart-as-new creates a new invocation each time it is accepted: never repeat it blindly.
NON_IDEMPOTENT_ACTIONS = frozenset(("restart-as-new",))
# Bulk calls are pipelined this many per connection over concurrency / PIPELINE_WINDOW connections. The server
# answers a connection's pipelined requests one after the other, so connections bring the parallelism and the
# window hides the round trips (make bench measured 128 x 4 best on a local 1.7 server).
PIPELINE_WINDOW = 4
MAX_CONNECTIONS = 128
# Restate 1.6 and 1.7 also take these actions for many invocations in one call (the route their web UI uses; not in
# the OpenAPI): POST {"invocation_ids": [...]} answers {"succeeded": [...], "failed": [{"invocation_id", "error"}]}.
# On a local 1.7 server 10,000 purges took 0.34 s this way (server CPU 0.56 s), and 1.1 s (0.93 s) for the official
# CLI's one PATCH each.
BATCH_PATH = "/internal/invocations_batch_operations/"
BATCH_ACTIONS = frozenset(("cancel", "kill", "pause", "resume", "purge", "purge-journal"))
BATCH_SIZE = 1000  # the server's limit per call
BATCHES_IN_FLIGHT = 2


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
    """One pooled ``requests.Session`` for one module run.

    ``admin_url`` may list several nodes of one cluster: calls go to one node, and move to the next when it cannot
    be reached (or answers 502/503/504) and repeating is safe. Any node's Admin API sees every partition.
    """

    def __init__(self, admin_url=DEFAULT_ADMIN_URL, token=None, validate_certs=True, ca_path=None,
                 client_cert=None, client_key=None, timeout=30.0, headers=None, retries=4,
                 retry_backoff=0.5, pool_size=16, on_retry=None, batch_calls=True):
        if requests is None:
            raise RuntimeError("the Python library 'requests' is required")
        urls = [admin_url] if isinstance(admin_url, str) else list(admin_url or [])
        self.admin_urls = [url.rstrip("/") for url in urls if url] or [DEFAULT_ADMIN_URL]
        self._node = 0  # index in admin_urls of the node calls go to
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.retry_backoff = retry_backoff
        self.on_retry = on_retry  # called with a short text each time a call is repeated
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
        self._server_version = None
        self._openapi_paths = None
        self._batch_route = None if batch_calls else False  # None: not known yet whether the server has it

    @property
    def admin_url(self) -> str:
        """The node calls go to now."""
        return self.admin_urls[self._node]

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
        timeouts and dropped connections only when ``idempotent``. Back-off doubles each time. When the retries
        run out, the error raised is the last answer a node gave, if any did: a live node's "HTTP 500: connect
        throttled" says more than a dead one's refused connection.
        """
        attempt = 0
        tried = 1  # nodes tried since the last back-off
        answered = None  # the last error that came with an HTTP answer
        while True:
            why = None
            node = self._node
            admin_url = self.admin_urls[node]
            try:
                response = self.session.request(method, admin_url + path, json=json_body, params=params,
                                                timeout=self.timeout, verify=self.verify, cert=self.cert)
            except requests.exceptions.SSLError as exc:
                raise RestateApiError(method, path, message=_short(exc), admin_url=admin_url, reason="tls")
            except requests.exceptions.ConnectionError as exc:
                if not (_never_sent(exc) or idempotent):
                    raise RestateApiError(method, path, message=_short(exc), admin_url=admin_url,
                                          reason="connection")
                why, error = _short(exc), RestateApiError(method, path, message=_short(exc),
                                                          admin_url=admin_url, reason="connection")
            except requests.exceptions.Timeout as exc:
                if not idempotent:
                    raise RestateApiError(method, path, message=_short(exc), admin_url=admin_url,
                                          reason="timeout")
                why, error = "timed out", RestateApiError(method, path, message=_short(exc),
                                                          admin_url=admin_url, reason="timeout")
            else:
                if response.status_code in retry_statuses and idempotent:
                    why, error = f"HTTP {response.status_code}", RestateApiError(
                        method, path, status=response.status_code, message=_error_message(response),
                        admin_url=admin_url)
                    answered = error
                elif response.status_code >= 400 and response.status_code not in ok_statuses:
                    raise RestateApiError(method, path, status=response.status_code,
                                          message=_error_message(response), admin_url=admin_url,
                                          bodiless=not response.content.strip())
                else:
                    return response
            retry = self._retry(attempt, tried, node, f"{method} {path}: {why}")
            if retry is None:
                raise answered or error
            attempt, tried = retry

    def _retry(self, attempt, tried, node, why):
        """After a failure on ``node`` that is safe to repeat: the next node at once, or the same round of nodes
        again after a back-off once every node was tried. Returns the new (attempt, tried), or None when retries
        are spent."""
        if tried < len(self.admin_urls):
            self._fail_over(node, why)
            return attempt, tried + 1
        if attempt >= self.retries:
            return None
        attempt = self._back_off(attempt, why)
        if len(self.admin_urls) > 1:
            self._fail_over(node, why)
        return attempt, 1

    def _fail_over(self, node, why):
        """Move calls on from ``node``; a no-op when another thread already did (calls run concurrently, and each
        failure on a dead node must not push the others past the live ones and back onto it)."""
        if self._node != node:
            return
        self._node = (node + 1) % len(self.admin_urls)
        if self.on_retry:
            self.on_retry(f"admin_url {self.admin_urls[node]}: {why}; going on with {self.admin_url}")

    def _back_off(self, attempt, why):
        delay = self.retry_backoff * (2 ** attempt)
        if self.on_retry:
            self.on_retry(f"{why}; retrying in {delay:.1f}s (retry {attempt + 1} of {self.retries})")
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
        """The same action for many invocations; returns one RestateApiError or None per id, in order.

        Where the server takes the action in batches (Restate 1.6+), 1,000 invocations go in one call and only
        what a batch could not do is sent again one PATCH per invocation, which gives each failure its own HTTP
        status and message. Otherwise, idempotent actions are pipelined over a few keep-alive connections (see
        pipelined_http); restart-as-new, and calls that must go through an HTTP proxy from the environment, take
        one thread per request over the session instead.
        """
        invocation_ids = list(invocation_ids)
        if action not in INVOCATION_ACTIONS:
            raise ValueError(f"unknown invocation action {action!r}")
        if not invocation_ids:
            return []
        if action in NON_IDEMPOTENT_ACTIONS:
            return self._threaded_actions(invocation_ids, action, params, concurrency)
        # Sent in id order: an id begins with its partition key, so calls in flight together meet few partitions,
        # which take them in larger batches (measured on a 1.7 server: 10,000 purges in creation order cost it 2.2
        # CPU-seconds, in id order 1.5). The answers go back in the caller's order.
        order = sorted(range(len(invocation_ids)), key=invocation_ids.__getitem__)
        ordered_ids = [invocation_ids[i] for i in order]
        if len(ordered_ids) > 1 and action in BATCH_ACTIONS and not params and self._batch_route is not False:
            ordered_errors = self._batched_actions(ordered_ids, action, concurrency)
        else:
            ordered_errors = self._one_call_each(ordered_ids, action, params, concurrency)
        errors = [None] * len(invocation_ids)
        for position, error in zip(order, ordered_errors):
            errors[position] = error
        return errors

    def _batched_actions(self, invocation_ids, action, concurrency):
        """invocation_actions through the batch route; what it did not do goes one PATCH per invocation."""
        chunks = [invocation_ids[start:start + BATCH_SIZE] for start in range(0, len(invocation_ids), BATCH_SIZE)]
        # The first batches go together, without waiting to learn whether the server has the route: if it has not,
        # each of them, and every later one, comes back None and its ids go one by one.
        outcomes = [error if error is not None else failed for unused, failed, error in
                    run_each(lambda chunk: self._batch_call(chunk, action), chunks, BATCHES_IN_FLIGHT)]
        errors = []
        again = []  # positions of the ids to send one by one
        for chunk, outcome in zip(chunks, outcomes):
            for invocation_id in chunk:
                if isinstance(outcome, Exception):
                    errors.append(outcome)  # the batch call itself failed after its retries: nothing is known
                else:
                    errors.append(None)
                    if outcome is None or invocation_id in outcome:
                        again.append(len(errors) - 1)
        if again:
            for position, error in zip(again, self._one_call_each([invocation_ids[i] for i in again], action, None,
                                                                  concurrency)):
                errors[position] = error
        return errors

    def _batch_call(self, invocation_ids, action):
        """One batch call: the set of ids it reported as failed, or None when its answer cannot be used.

        A 404/405 or an answer of another shape means no usable batch route on this server: it is remembered, and
        this client goes on one PATCH per invocation.
        """
        if self._batch_route is False:
            return None  # found missing by another batch meanwhile
        path = BATCH_PATH + action
        try:
            response = self.request("POST", path, json_body={"invocation_ids": invocation_ids})
            answer = response.json()
            failed = {entry["invocation_id"] for entry in answer["failed"]}
            if len(answer["succeeded"]) + len(failed) != len(invocation_ids):
                raise ValueError("an answer for other invocations")
        except RestateApiError as error:
            if error.status in (404, 405):
                self._batch_route = False
                return None
            if error.status is not None:
                return None  # refused as a batch (too large, a body it does not read...): one by one instead
            raise  # no answer after the retries
        except (ValueError, KeyError, TypeError, AttributeError):
            self._batch_route = False
            return None
        self._batch_route = True
        return failed

    def _one_call_each(self, invocation_ids, action, params, concurrency):
        """One PATCH per invocation: pipelined, or over the session's threads when an HTTP proxy from the
        environment must carry them (the pipelined sender speaks to the server directly)."""
        if self._proxied():
            return self._threaded_actions(invocation_ids, action, params, concurrency)
        return self._pipelined_actions(invocation_ids, action, params, concurrency)

    def _pipelined_actions(self, invocation_ids, action, params, concurrency):
        paths = [f"/invocations/{invocation_id}/{action}" for invocation_id in invocation_ids]
        errors = [None] * len(paths)
        unanswered = range(len(paths))
        for unused_pass in self.admin_urls:
            node = self._node
            answers = self._sender(concurrency).send("PATCH", [paths[i] for i in unanswered], params)
            for i, answer in zip(unanswered, answers):
                errors[i] = self._answer_error(paths[i], answer)
            # What this node could not take (down, restarting) goes to the next one: these actions are safe
            # to repeat.
            unanswered = [i for i, answer in zip(unanswered, answers) if _unanswered(answer)]
            if not unanswered or len(self.admin_urls) == 1:
                break
            self._fail_over(node, f"{len(unanswered)} of the PATCH .../{action} calls got no answer")
        no_route = [i for i, error in enumerate(errors) if _no_such_route(error)]
        if no_route and self._operation_form(action) == "DELETE":
            paths = [f"/invocations/{invocation_ids[i]}" for i in no_route]
            answers = self._sender(concurrency).send("DELETE", paths, {"mode": action})
            for i, path, answer in zip(no_route, paths, answers):
                errors[i] = self._answer_error(path, answer, "DELETE")
        return errors

    def _sender(self, concurrency):
        return PipelinedSender(
            self.admin_url, self._pipelined_headers(), timeout=self.timeout, retries=self.retries,
            retry_backoff=self.retry_backoff,
            ssl_context=self._ssl_context() if self.admin_url.startswith("https:") else None,
            connections=min(MAX_CONNECTIONS, -(-concurrency // PIPELINE_WINDOW)),
            window=min(PIPELINE_WINDOW, concurrency), on_retry=self.on_retry)

    def _pipelined_headers(self) -> dict:
        """The session's headers without requests' transport ones: the pipelined parser reads plain bodies and
        manages its connections itself (asked for gzip, the server compresses even a 409's two lines)."""
        headers = {name: value for name, value in self.session.headers.items()
                   if name.lower() not in ("accept-encoding", "connection")}
        headers["accept-encoding"] = "identity"
        return headers

    def _answer_error(self, path, answer, method="PATCH"):
        if answer.error is not None:
            return RestateApiError(method, path, message=answer.error, admin_url=self.admin_url, reason=answer.reason)
        if answer.status >= 400:
            return RestateApiError(method, path, status=answer.status, message=_body_message(answer.body),
                                   admin_url=self.admin_url, bodiless=not answer.body.strip())
        return None

    def _operation_form(self, action):
        """After a 404 without a body (no such route): how this server does ``action``, from its GET /openapi.

        "PATCH" when the server has the operation after all (the 404 stands), "DELETE" for the older
        DELETE /invocations/{id}?mode=... form; raises a clear error when it has neither.
        """
        if self._openapi_paths is None:
            try:
                self._openapi_paths = self.request("GET", "/openapi").json().get("paths", {})
            except (RestateApiError, ValueError, AttributeError):
                self._openapi_paths = {}
        if "patch" in self._openapi_paths.get(f"/invocations/{{invocation_id}}/{action}", {}):
            return "PATCH"
        if action in DELETE_MODES and "delete" in self._openapi_paths.get("/invocations/{invocation_id}", {}):
            return "DELETE"
        version = (self._server_version or {}).get("version", "of unknown version")
        raise RestateApiError("PATCH", f"/invocations/{{invocation_id}}/{action}", status=404, admin_url=self.admin_url,
                              message=(f"Restate server {version} does not have the {action} operation (its GET "
                                       "/openapi does not list it); it needs a newer Restate server"))

    def _threaded_actions(self, invocation_ids, action, params, concurrency):
        outcomes = run_each(lambda invocation_id: self.invocation_action(invocation_id, action, params=params),
                            invocation_ids, min(concurrency, 64))
        return [error for unused_id, unused_response, error in outcomes]

    def _proxied(self) -> bool:
        return bool(self.session.trust_env and any(get_environ_proxies(url) for url in self.admin_urls))

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
        try:
            return self.request("PATCH", f"/invocations/{invocation_id}/{action}", params=params,
                                idempotent=action not in NON_IDEMPOTENT_ACTIONS, ok_statuses=ok_statuses)
        except RestateApiError as error:
            if not _no_such_route(error) or self._operation_form(action) == "PATCH":
                raise
        return self.request("DELETE", f"/invocations/{invocation_id}", params={"mode": action}, ok_statuses=ok_statuses)


def _loopback(url) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_such_route(error) -> bool:
    """A 404 without a body comes from the router (no such operation); an unknown invocation's 404 says so."""
    return error is not None and error.status == 404 and error.bodiless


def _unanswered(answer) -> bool:
    """The node did not take the call: no answer (but not a TLS refusal), or 502/503/504 to the end."""
    if answer.error is not None:
        return answer.reason != "tls"
    return answer.status in RETRYABLE_STATUSES


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
