# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The Admin API client of one module run: one transport and the API areas over it.

Knows HTTP and the Admin API, and nothing of Ansible: modules build an ``AdminClient`` from their connection
options and turn ``RestateApiError`` into ``fail_json``. Each area is a file of its own (``_invocations_api``,
``_queries_api``, ``_services_api``, ``_deployments_api``, ``_state_api``); this file wires them and checks that the
server is an Admin API this client speaks.
"""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._deployments_api import DeploymentsApi
from ansible_collections.restate.admin.plugins.module_utils._invocations_api import InvocationsApi
from ansible_collections.restate.admin.plugins.module_utils._queries_api import QueriesApi
from ansible_collections.restate.admin.plugins.module_utils._services_api import ServicesApi
from ansible_collections.restate.admin.plugins.module_utils._state_api import StateApi
from ansible_collections.restate.admin.plugins.module_utils._transport import (
    DEFAULT_ADMIN_URL,
    TLS_SERVER_SIGNS,
    RestateApiError,
    Transport,
    answer_json,
    scheme_hint,
)

# The admin API versions this client speaks; a server announces its own range in GET /version.
# /invocations/{id}/{cancel,kill,pause,resume,purge,purge-journal,restart-as-new} are in v2+.
CLIENT_ADMIN_API_VERSIONS = (2, 3, 4)
# What a Restate ingress answers to GET /version, by status (1.7, 1.6).
INGRESS_ANSWERS = {400: "bad path", 404: "service 'version' not found"}
NOT_AN_ADMIN_API = ("is admin_url a Restate Admin API? Give the admin port (9070 by default), not the ingress "
                    "(8080) or another server")


class AdminClient:
    """``transport`` plus the areas: ``invocations`` (actions), ``queries`` (SQL), ``services``, ``deployments`` and
    ``state`` (objects' K/V state);
    ``request``, ``query``, ``rows`` and ``count`` are the transport's and the SQL area's, for a plain call."""

    def __init__(self, admin_url=DEFAULT_ADMIN_URL, batch_calls=True, **transport_options):
        self.transport = Transport(admin_url, **transport_options)
        self._server_version = None
        self.invocations = InvocationsApi(self.transport, lambda: self._server_version, batch_calls=batch_calls)
        self.queries = QueriesApi(self.transport)
        self.services = ServicesApi(self.transport)
        self.deployments = DeploymentsApi(self.transport, self.queries, self.services)
        self.state = StateApi(self.transport, self.queries)
        self.request = self.transport.request
        self.query = self.queries.query
        self.rows = self.queries.rows
        self.count = self.queries.count

    @property
    def admin_url(self) -> str:
        return self.transport.admin_url

    @property
    def repeats(self) -> int:
        """How many calls this run repeated, or moved to another node, after a failure that is safe to repeat."""
        return self.transport.retry.repeats

    def close(self):
        self.invocations.close()
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def version(self) -> dict:
        """GET /version, once per run. A server that answers but is not an Admin API is named as such."""
        if self._server_version is None:
            try:
                response = self.request("GET", "/version")
            except RestateApiError as error:
                # 1.7's ingress answers /version "bad path"; 1.6's looks for a service named version.
                said = INGRESS_ANSWERS.get(error.status)
                if said and said in (error.message or ""):
                    raise RestateApiError("GET", "/version", status=error.status, admin_url=error.admin_url,
                                          message=(f"this is a Restate ingress (it answered '{said}'), not the "
                                                   "Admin API: use the admin port, 9070 by default"))
                if error.status in (404, 405):
                    raise RestateApiError("GET", "/version", status=error.status, admin_url=error.admin_url,
                                          message=f"{error.message or 'not found'}; {NOT_AN_ADMIN_API}")
                if error.reason == "connection":  # the run's first call: a TLS server drops a plain one
                    raise RestateApiError("GET", "/version", admin_url=error.admin_url, reason="connection",
                                          message=scheme_hint(error.admin_url, error.message, "http:",
                                                              TLS_SERVER_SIGNS,
                                                              "if the server speaks TLS, use https:// in admin_url"))
                raise
            self._server_version = answer_json(response, "GET", "/version", self.admin_url,
                                               "an object with the server's version", _version_shape)
        return self._server_version

    def check_compatible(self) -> dict:
        """Fail clearly when the server's admin API range excludes every version this client speaks."""
        info = self.version()
        low = info.get("min_admin_api_version")
        high = info.get("max_admin_api_version")
        if low is None or high is None:
            if "version" not in info:
                raise RestateApiError("GET", "/version", status=200, admin_url=self.admin_url,
                                      message=f"unexpected answer {str(info)[:200]}; {NOT_AN_ADMIN_API}")
            return info
        if not any(low <= v <= high for v in CLIENT_ADMIN_API_VERSIONS):
            raise RestateApiError(
                "GET", "/version", status=200, admin_url=self.admin_url,
                message=(f"Restate server {info.get('version')} speaks admin API versions {low}-{high}; this "
                         f"collection needs one of {', '.join(map(str, CLIENT_ADMIN_API_VERSIONS))}"))
        return info


def _version_shape(value) -> bool:
    """GET /version: an object; its version a string and its API range whole numbers, where given."""
    return isinstance(value, dict) and isinstance(value.get("version", ""), str) and all(
        isinstance(value.get(key, 0), int) and not isinstance(value.get(key), bool)
        for key in ("min_admin_api_version", "max_admin_api_version"))
