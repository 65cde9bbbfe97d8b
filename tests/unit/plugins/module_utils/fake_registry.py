"""A fake of the Admin API's deployment and service routes, for unit tests of restate_deployment(_info) and
restate_service(_info)'s run(): the routes answer as a real restate-server 1.7.12 answered them (recorded in
docs/deployments-and-services.md), over the transport's ``request`` interface, so the collection's own
DeploymentsApi and ServicesApi read the answers. What is pinned to a deployment is read with SQL from fake_admin's
sys_invocation. The integration tests run the same paths against a real server.
"""

from __future__ import annotations

import itertools
import json
from urllib.parse import unquote

from fake_admin import Answer, FakeAdmin

from ansible_collections.restate.admin.plugins.module_utils._deployments_api import DeploymentsApi
from ansible_collections.restate.admin.plugins.module_utils._services_api import ServicesApi
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

# What a registration gives a service that the endpoint declares nothing for (the 1.7 defaults, as the server answers).
DEFAULT_SETTINGS = {"public": True, "idempotency_retention": "1d", "journal_retention": "1d",
                    "inactivity_timeout": "1m", "abort_timeout": "1m"}


class FakeRegistry:
    """The server's deployments and services. ``endpoints`` is what each URI serves now ({uri: {service: type}}):
    a test changes it as a new version of the code would; ``calls`` records every (method, path, body) sent."""

    admin_url = "http://fake-admin:9070"

    def __init__(self):
        self.endpoints = {}
        self.deployments = {}  # id -> the deployment as GET /deployments/{id} shows it
        self.services = {}  # name -> the service as GET /services/{name} shows it
        self.calls = []
        self._ids = (f"dp_{n:011d}AbCdEfGh" for n in itertools.count(1))
        self._created = (f"2026-11-01T00:{n // 60:02d}:{n % 60:02d}.000Z" for n in itertools.count(1))

    # -- the transport's interface ------------------------------------------------------------------------------
    def request(self, method, path, json_body=None, params=None, idempotent=True, ok_statuses=(), **unused):
        self.calls.append((method, path, json_body))
        status, body = self._route(method, unquote(path), json_body or {}, params or {})
        if status >= 400 and status not in ok_statuses:
            raise RestateApiError(method, path, status=status, admin_url=self.admin_url,
                                  message=(body or {}).get("message", ""))
        answer = Answer(body)
        answer.status_code = status
        return answer

    def writes(self) -> list:
        """The calls that change something on a real server (a dry run changes nothing)."""
        return [(method, path) for method, path, body in self.calls
                if method != "GET" and not (body or {}).get("dry_run")]

    # -- routes ------------------------------------------------------------------------------------------------
    def _route(self, method, path, body, params):
        parts = path.strip("/").split("/")
        if parts[0] == "deployments":
            if len(parts) == 1:
                return self._register(body) if method == "POST" else (200, {"deployments": self._listed()})
            return self._one_deployment(method, parts[1], body, params)
        if parts[0] == "services":
            if len(parts) == 1:
                return 200, {"services": [json.loads(json.dumps(s)) for s in self.services.values()]}
            return self._one_service(method, parts[1], body)
        return 404, {"message": f"no route {method} {path}"}

    def _listed(self) -> list:
        listed = []
        for deployment in self.deployments.values():
            entry = {key: value for key, value in deployment.items() if key != "services"}
            entry["services"] = [{"name": s["name"], "revision": s["revision"]} for s in deployment["services"]]
            listed.append(entry)
        return listed

    def _one_deployment(self, method, deployment_id, body, params):
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            return 404, {"message": f"not found in the schema registry: deployment with id '{deployment_id}'"}
        if method == "GET":
            return 200, json.loads(json.dumps(deployment))
        if method == "PATCH":
            if "additional_headers" in body:  # metadata and use_http_11 are ignored, as 1.7.12 ignores them
                deployment["additional_headers"] = dict(body["additional_headers"])
            return 200, json.loads(json.dumps(deployment))
        if method == "DELETE":
            if params.get("force") != "true":
                return 501, None
            del self.deployments[deployment_id]
            for name in [n for n, s in self.services.items() if s["deployment_id"] == deployment_id]:
                del self.services[name]  # removing a service's latest deployment removes the service
            return 202, None
        return 405, {"message": "method not allowed"}

    def _register(self, body):
        uri = body["uri"].rstrip("/") + "/"
        if body["uri"].rstrip("/") not in self.endpoints:
            return 500, {"message": f"[META0003] cannot reach the service endpoint {body['uri']}"}
        served = self.endpoints[body["uri"].rstrip("/")]
        for name, kind in served.items():
            registered = self.services.get(name)
            if registered and registered["ty"] != kind and not (body.get("breaking") or body.get("force")):
                return 409, {"message": f"[META0006] detected a new service revision for '{name}' changing the "
                                        f"service type from {registered['ty']} to {kind}"}
        known = next((d for d in self.deployments.values() if d.get("uri") == uri), None)
        changed_code = known is not None and {s["name"]: s["ty"] for s in known["services"]} != served
        if known is not None and not body.get("force") and not changed_code:
            return 200, json.loads(json.dumps(known))  # the same endpoint, unchanged: nothing changes
        if known is not None and changed_code and not body.get("force"):
            # Not recorded in docs/deployments-and-services.md: a refusal whose status restate_deployment does not
            # read (it names force: true for any refusal of the unforced dry run), so only "refused" is modelled.
            return 409, {"message": f"[META0004] the deployment at {uri} changed; force to overwrite it"}
        deployment_id = known["id"] if known else next(self._ids)
        services = [self._service(name, kind, deployment_id) for name, kind in sorted(served.items())]
        deployment = {"id": deployment_id, "uri": uri, "protocol_type": "RequestResponse",
                      "http_version": "HTTP/1.1" if body.get("use_http_11") else "HTTP/2.0",
                      "created_at": known["created_at"] if known else next(self._created),
                      "additional_headers": dict(body.get("additional_headers") or {}),
                      "metadata": dict(body.get("metadata") or {}), "sdk_version": "restate-sdk-python/1.3.0",
                      "services": services}
        if not body.get("dry_run"):
            self.deployments[deployment_id] = deployment
            for service in services:
                self.services[service["name"]] = service
        return (200 if known else 201), json.loads(json.dumps(deployment))

    def _service(self, name, kind, deployment_id) -> dict:
        """The service as the registration leaves it: the next revision, the endpoint's settings (defaults)."""
        revision = self.services[name]["revision"] + 1 if name in self.services else 1
        return dict(DEFAULT_SETTINGS, name=name, ty=kind, deployment_id=deployment_id, revision=revision,
                    handlers=[{"name": "run"}], info=[])

    def _one_service(self, method, name, body):
        service = self.services.get(name)
        if service is None:
            return 404, {"message": f"service '{name}' not found"}
        if method == "PATCH":
            service.update(body)
        return 200, json.loads(json.dumps(service))


class FakeClient:
    """What ``task.connect()`` hands out: the collection's own deployments and services areas over the fake
    routes, and SQL over fake_admin's sys_invocation (the pins)."""

    def __init__(self, registry: FakeRegistry, admin: FakeAdmin):
        self.transport = registry
        self.admin_url = registry.admin_url
        self.queries = admin
        self.services = ServicesApi(registry)
        self.deployments = DeploymentsApi(registry, admin, self.services)
        self.repeats = 0

    def close(self):
        pass
