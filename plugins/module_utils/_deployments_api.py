# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The deployments area of the Admin API: register, read and remove deployments, and judge whether one is drained.

``DeploymentsApi`` calls the server over the transport (and reads pins with SQL); the functions beside it are pure.
What a 1.7 server answers is recorded in docs/deployments-and-services.md: POST /deployments answers 201 for a new deployment and 200 for a known
endpoint; a forced registration of a known endpoint gives its services new revisions; DELETE removes only with
``force=true`` (202), so every safety check before removal is ours.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.restate.admin.plugins.module_utils._queries_api import STATUS_COUNT
from ansible_collections.restate.admin.plugins.module_utils._selection import sql_literal
from ansible_collections.restate.admin.plugins.module_utils._transport import answer_json, objects

STATUSES = ("active", "draining", "drained")
# The key under which judge's ``pinned`` counts attempts running on a deployment before they are pinned to it.
RUNNING_UNPINNED = "running (attempt not pinned yet)"


def same_uri(first, second) -> bool:
    """The server stores an HTTP endpoint with a trailing '/': compare without it."""
    return bool(first) and bool(second) and str(first).rstrip("/") == str(second).rstrip("/")


def find_deployment(deployments, deployment_id=None, uri=None, arn=None):
    """The deployment of ``deployments`` (GET /deployments entries) with that id, URI or ARN, or None."""
    for deployment in deployments:
        if deployment_id and deployment.get("id") == deployment_id:
            return deployment
        if uri and same_uri(deployment.get("uri"), uri):
            return deployment
        if arn and deployment.get("arn") == arn:
            return deployment
    return None


def latest_of(services) -> dict:
    """{deployment id: [names of the services whose latest deployment it is]} from GET /services."""
    latest = {}
    for service in services:
        latest.setdefault(service.get("deployment_id"), []).append(service.get("name"))
    return latest


def replaced(deployments, latest: dict, new_id: str, new_services) -> list:
    """The deployments of ``deployments`` that the deployment ``new_id`` replaces: they serve one of ``new_services``
    and, in ``latest`` (latest_of of the services as they are, or will be, after the registration), are the latest of
    no service. A deployment still the latest of any service is live and never replaced (after a rollback, the
    deployment rolled back to is the latest again)."""
    names = set(new_services)

    def shares_a_service(deployment):
        return any(s.get("name") in names for s in deployment.get("services", []))

    return [d for d in deployments if d.get("id") != new_id and not latest.get(d.get("id")) and shares_a_service(d)]


def behind(new_id: str, new_services, latest: dict) -> dict:
    """{service: the deployment it runs on} for each of ``new_services`` whose latest deployment is not ``new_id``."""
    runs_on = {name: deployment_id for deployment_id, names in latest.items() for name in names}
    return {name: runs_on.get(name) for name in sorted(new_services) if runs_on.get(name) != new_id}


def judge(deployment: dict, latest: dict, pinned: dict) -> dict:
    """The deployment's status: ``active`` while it is the latest of a service, else ``draining`` while invocations
    not completed are pinned to it, else ``drained``; with what decides it."""
    serves = sorted(latest.get(deployment["id"], []))
    counts = pinned.get(deployment["id"], {})
    if serves:
        status = "active"
    elif counts:
        status = "draining"
    else:
        status = "drained"
    return {"status": status, "latest_of": serves, "pinned": dict(sorted(counts.items())),
            "pinned_total": sum(counts.values())}


def describe(deployment: dict, judged: dict) -> dict:
    """A deployment as the modules return it."""
    result = {"id": deployment.get("id")}
    # additional_headers are left out: they may carry credentials.
    for key in ("uri", "arn", "protocol_type", "http_version", "created_at", "sdk_version", "metadata"):
        if key in deployment:
            result[key] = deployment[key]
    if isinstance(result.get("uri"), str) and "@" in result["uri"].split("://", 1)[-1].split("/", 1)[0]:
        # Registered with credentials in it (by another client: this one refuses such a uri): never shown.
        scheme, rest = result["uri"].split("://", 1) if "://" in result["uri"] else ("", result["uri"])
        authority = rest.split("/", 1)[0]
        result["uri"] = f"{scheme}{'://' if scheme else ''}********@{authority.rsplit('@', 1)[1]}{rest[len(authority):]}"
    result["services"] = sorted(({"name": s.get("name"), "revision": s.get("revision")}
                                 for s in deployment.get("services", [])), key=lambda s: s["name"])
    result.update(judged)
    return result


class DeploymentsApi:
    """Deployments over the transport; ``queries`` reads what is pinned to them, ``services`` which is the latest."""

    def __init__(self, transport, queries, services):
        self.transport = transport
        self.queries = queries
        self.services = services

    def list(self) -> list:
        response = self.transport.request("GET", "/deployments")
        return answer_json(response, "GET", "/deployments", self.transport.admin_url, DEPLOYMENTS,
                           _deployments_shape).get("deployments", [])

    def get(self, deployment_id: str):
        """The deployment (services in full), or None when the server does not know it."""
        response = self.transport.request("GET", _path(deployment_id), ok_statuses=(404,))
        if response.status_code == 404:
            return None
        return answer_json(response, "GET", _path(deployment_id), self.transport.admin_url, DEPLOYMENT,
                           _deployment_shape)

    def register(self, body: dict):
        """POST /deployments; (created, answer): created is True for 201 (new deployment, or a dry run of one)."""
        response = self.transport.request("POST", "/deployments", json_body=body, idempotent=bool(body.get("dry_run")))
        return response.status_code == 201, answer_json(response, "POST", "/deployments", self.transport.admin_url,
                                                        DEPLOYMENT, _deployment_shape)

    def update(self, deployment_id: str, changes: dict) -> dict:
        """PATCH /deployments/{id} (headers, metadata, use_http_11); the deployment as the server answers after it."""
        path = _path(deployment_id)
        return answer_json(self.transport.request("PATCH", path, json_body=changes), "PATCH", path,
                           self.transport.admin_url, "the deployment: an object",
                           lambda value: isinstance(value, dict))

    def remove(self, deployment_id: str) -> bool:
        """DELETE with force=true (the only removal the server does); False when it was already gone."""
        response = self.transport.request("DELETE", _path(deployment_id), params={"force": "true"}, idempotent=True,
                                          ok_statuses=(404,))
        return response.status_code != 404

    def pinned_counts(self, deployment_ids) -> dict:
        """{deployment id: {status: count}} of invocations not completed that are pinned to each deployment, and under
        ``RUNNING_UNPINNED`` the attempts running on it that are not pinned yet (a handler in its first step, which
        pins to it once it journals): removing the deployment under them would strand them."""
        ids = [i for i in deployment_ids if i]
        counts = {i: {} for i in ids}
        if not ids:
            return counts
        listed = ", ".join(map(sql_literal, ids))
        rows = self.queries.query(
            "SELECT pinned_deployment_id, last_attempt_deployment_id, status, COUNT(*) AS count FROM sys_invocation "
            f"WHERE status != 'completed' AND (pinned_deployment_id IN ({listed}) OR (pinned_deployment_id IS NULL "
            f"AND status = 'running' AND last_attempt_deployment_id IN ({listed}))) "
            "GROUP BY pinned_deployment_id, last_attempt_deployment_id, status", required=STATUS_COUNT)
        for row in rows:
            if row.get("pinned_deployment_id"):
                mine = counts.setdefault(row["pinned_deployment_id"], {})
                mine[row["status"]] = mine.get(row["status"], 0) + row["count"]
            else:
                mine = counts.setdefault(row["last_attempt_deployment_id"], {})
                mine[RUNNING_UNPINNED] = mine.get(RUNNING_UNPINNED, 0) + row["count"]
        return counts

    def judged(self, deployments) -> dict:
        """{id: judged} for ``deployments``, from two calls: the services' latest deployments and the pins."""
        latest = latest_of(self.services.list())
        pinned = self.pinned_counts([d["id"] for d in deployments])
        return {d["id"]: judge(d, latest, pinned) for d in deployments}


DEPLOYMENTS = "an object with 'deployments', a list of objects each with an 'id' and a list of 'services'"
DEPLOYMENT = "a deployment: an object with its 'id' and a list of 'services' each with a 'name'"


def _deployments_shape(value) -> bool:
    if not isinstance(value, dict) or not objects(value.get("deployments", []), "id"):
        return False
    return all(_deployment_shape(d) for d in value.get("deployments", []))


def _deployment_shape(value) -> bool:
    if not isinstance(value, dict) or not objects([value], "id"):
        return False
    services = value.get("services", [])
    return objects(services, "name") and all(isinstance(s.get("revision", 0), int) for s in services)


def _path(deployment_id: str) -> str:
    return "/deployments/" + quote(deployment_id, safe="")
