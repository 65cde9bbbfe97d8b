# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_deployment task does, in whichever process runs it (see _restate_module.py).

present: a new endpoint is registered (201). A known endpoint is first probed with an unforced dry run (200 when
unchanged); it changes nothing unless ``force`` is true and the endpoint changed or is not the latest of its services,
because a forced registration of a known endpoint always gives its services new revisions. Check mode sends the same
registration with ``dry_run: true``.

absent: removes (DELETE ?force=true, the only removal the server does) a drained deployment: the latest of no
service, no invocation that is not completed pinned to it. ``wait`` polls for the drain; ``force`` removes anyway.
"""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._deployments_api import (
    behind,
    describe,
    find_deployment,
    judge,
    latest_of,
    replaced,
)
from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_headers
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._poll import Poll
from ansible_collections.restate.admin.plugins.module_utils._selection import validate_deployment_id
from ansible_collections.restate.admin.plugins.module_utils._services_api import SETTINGS
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "id": {"type": "str"},
        "uri": {"type": "str"},
        "arn": {"type": "str"},
        "use_http_11": {"type": "bool", "default": False},
        "additional_headers": {"type": "dict", "no_log": True},
        "metadata": {"type": "dict"},
        "assume_role_arn": {"type": "str"},
        "breaking": {"type": "bool", "default": False},
        "force": {"type": "bool", "default": False},
        "wait": {"type": "bool", "default": False},
        "wait_timeout": {"type": "int", "default": 300},
        "drain_delay": {"type": "int", "default": 0},
    },
    "mutually_exclusive": [["id", "uri", "arn"]],
    "required_one_of": [["id", "uri", "arn"]],
}

PRESENT_ONLY = ("use_http_11", "additional_headers", "metadata", "assume_role_arn", "breaking")
ABSENT_ONLY = ("wait", "drain_delay")


def check_options(params):
    """InputError naming the option, before any request."""
    state = params["state"]
    if params["wait_timeout"] < 0:
        raise InputError(f"wait_timeout must be 0 or more seconds, got {params['wait_timeout']}")
    if params["drain_delay"] < 0:
        raise InputError(f"drain_delay must be 0 or more seconds, got {params['drain_delay']}")
    if state == "present":
        if params["id"]:
            raise InputError("id: state=present registers by uri (HTTP) or arn (Lambda); the server chooses the id. "
                             "Give uri or arn instead")
        for option in ABSENT_ONLY:
            if params[option]:
                raise InputError(f"{option} applies only to state=absent; remove it")
    else:
        for option in PRESENT_ONLY:
            if params[option] not in (None, False):
                raise InputError(f"{option} applies only to state=present; remove it")
        if params["id"] is not None:
            params["id"] = validate_deployment_id(params["id"])
    uri = params["uri"]
    if uri is not None and "@" in str(uri).strip().split("://", 1)[-1].split("/", 1)[0]:
        # Not shown: what comes before the @ is a password. The server would keep and show it with the deployment.
        raise InputError("uri: user name or password in the URL are not supported (nor shown); give the URL without "
                         "them, and the credentials as a header in additional_headers (e.g. Authorization)")
    if uri is not None and not str(uri).strip().lower().startswith(("http://", "https://")):
        raise InputError(f"uri: {str(uri)[:80]!r} is not an HTTP endpoint; give e.g. http://checkout:9080 "
                         "(for Lambda, use arn)")
    if params["additional_headers"] is not None:
        params["additional_headers"] = check_headers(params["additional_headers"], None, "additional_headers")
    if params["metadata"] is not None:
        check_metadata(params["metadata"])
    arn = params["arn"]
    if arn is not None and not str(arn).strip().startswith("arn:"):
        raise InputError(f"arn: {str(arn)[:80]!r} is not a Lambda ARN; give e.g. "
                         "arn:aws:lambda:eu-central-1:123456789012:function:checkout:7")
    if params["assume_role_arn"] is not None and not params["arn"]:
        raise InputError("assume_role_arn applies only to a Lambda deployment (arn); remove it or give arn")
    if params["use_http_11"] and not params["uri"]:
        raise InputError("use_http_11 applies only to an HTTP deployment (uri); remove it")


def check_metadata(metadata):
    """Metadata is names to plain values: a nested dictionary or list would reach the server as its Python text."""
    for name, value in metadata.items():
        if not str(name).strip() or _control(str(name)):
            raise InputError("metadata: a name is empty or holds a line break or control character; give plain names")
        if value is None or isinstance(value, (dict, list, tuple, set)):
            kind = "nothing" if value is None else f"a {type(value).__name__}"
            raise InputError(f"metadata.{str(name)[:40]}: expected a string, got {kind}; quote it, or give each value "
                             "its own name")
        if _control(str(value)):
            raise InputError(f"metadata.{str(name)[:40]}: holds a line break or control character; give a plain "
                             "value")


def _control(text) -> bool:
    return any(char in "\r\n\x0b\x0c\x85\u2028\u2029" or ord(char) < 32 or ord(char) == 127 for char in text)


def _body(params, force, dry_run):
    if params["uri"]:
        body = {"uri": params["uri"].strip(), "use_http_11": params["use_http_11"]}
    else:
        body = {"arn": params["arn"].strip()}
        if params["assume_role_arn"]:
            body["assume_role_arn"] = params["assume_role_arn"]
    if params["additional_headers"]:
        body["additional_headers"] = {str(k): str(v) for k, v in params["additional_headers"].items()}
    if params["metadata"]:
        body["metadata"] = {str(k): str(v) for k, v in params["metadata"].items()}
    # force defaults differ between the server's API paths and have changed before: always send it.
    body.update(breaking=params["breaking"], force=force, dry_run=dry_run)
    return body


def _runs_on(services) -> dict:
    return {s.get("name"): {"deployment_id": s.get("deployment_id"), "revision": s.get("revision")}
            for s in services}


def _diff(before: dict, after: dict, header: str) -> dict:
    def text(view):
        return "".join(f"{name}: {view[name]['deployment_id']} revision {view[name]['revision']}\n"
                       for name in sorted(view))
    return {"before": text(before), "after": text(after), "before_header": header, "after_header": header}


def _replacement(client, deployments, new_id, names, latest_after) -> dict:
    """``latest`` (the deployment is the latest of all its services after the task), ``behind`` (the services it is
    not the latest of, and what they run on) and ``replaces`` (the older deployments it replaces, judged): none
    while it is behind, since then the live deployment is another one (a rollback, or another run's release)."""
    lagging = behind(new_id, names, latest_after)
    if lagging:
        return {"latest": False, "behind": lagging, "replaces": []}
    older = replaced(deployments, latest_after, new_id, names)
    pinned = client.deployments.pinned_counts([d["id"] for d in older]) if older else {}
    return {"latest": True, "behind": {},
            "replaces": sorted((describe(d, judge(d, latest_after, pinned)) for d in older),
                               key=lambda d: (d.get("created_at") or "", d["id"]))}


def _behind_message(endpoint, deployment_id, lagging) -> str:
    runs_on = ", ".join(f"{name} runs on {where}" for name, where in lagging.items())
    return (f"{endpoint} is registered as {deployment_id} but is not the latest deployment of "
            f"{', '.join(lagging)} ({runs_on})")


def _predicted_latest(services, answer_services, new_id) -> dict:
    """latest_of after a registration the server only dry-ran: its services move to the new deployment."""
    moved = {s.get("name") for s in answer_services}
    after = [s for s in services if s.get("name") not in moved] + [
        {"name": name, "deployment_id": new_id} for name in moved]
    return latest_of(after)


def _headers_text(headers: dict, changed=()) -> str:
    """Header names only: the values may be credentials."""
    return "".join(f"header {name}: (hidden{', new value' if name in changed else ''})\n" for name in sorted(headers))


def _update_in_place(task, client, params, existing):
    """Bring a registered endpoint's additional_headers to the given ones with PATCH /deployments/{id} (which a 1.7
    server applies without new revisions), and say so where the server cannot update what differs (metadata,
    use_http_11). (changed, (diff before, diff after))."""
    have = {str(k): str(v) for k, v in (existing.get("additional_headers") or {}).items()}
    notes = []
    if params["metadata"] is not None:
        wanted_metadata = {str(k): str(v) for k, v in params["metadata"].items()}
        if wanted_metadata != (existing.get("metadata") or {}):
            notes.append("metadata")
    if params["uri"] and existing.get("http_version") and \
            (existing["http_version"] == "HTTP/1.1") != bool(params["use_http_11"]):
        notes.append(f"use_http_11 (registered with {existing['http_version']})")
    if notes:
        task.warn(f"deployment {existing['id']} is registered with other {' and '.join(notes)} than given; the server "
                  "does not update them on a registered deployment (PATCH /deployments/{id} ignores them), so they "
                  "are unchanged. Register the endpoint under a new URI (a new deployment) to change them")
    if params["additional_headers"] is None:
        return False, ("", "")
    wanted = {str(k): str(v) for k, v in params["additional_headers"].items()}
    if wanted == have:
        return False, (_headers_text(have), _headers_text(have))
    new_values = {name for name in wanted if have.get(name) != wanted[name]}
    if not task.check_mode:
        try:
            answer = client.deployments.update(existing["id"], {"additional_headers": wanted})
        except RestateApiError as error:
            if error.status not in (404, 405, 501):
                raise
            raise RestateApiError(error.method, error.path, status=error.status, admin_url=error.admin_url,
                                  reason=error.reason,
                                  message=f"{error.message} (this server does not update the headers of registered "
                                          f"deployment {existing['id']}, or it was removed meanwhile; register the "
                                          "endpoint under a new URI with the new headers)")
        answered = answer.get("additional_headers") or {}
        if not isinstance(answered, dict) or {str(k): str(v) for k, v in answered.items()} != wanted:
            raise RestateApiError("PATCH", f"/deployments/{existing['id']}", status=200,
                                  message="the server answered with other headers than sent; they were not updated")
    return True, (_headers_text(have), _headers_text(wanted, new_values))


def present(task, client, params):
    """Register the endpoint, or keep it as registered when the server has it with the same services."""
    deployments = client.deployments.list()
    existing = find_deployment(deployments, uri=params["uri"], arn=params["arn"])
    services = client.services.list()
    current = _runs_on(services)  # {service: the deployment and revision it runs on now}
    if existing is not None:
        outcome = _kept(task, client, params, existing, deployments, (services, current))
        if outcome is not None:
            return outcome
    return _registered(task, client, params, existing, deployments, (services, current))


def _kept(task, client, params, existing, deployments, now):
    """The outcome for an endpoint registered already whose services the server's dry run finds unchanged (its
    headers updated in place), or None when it must be registered again (it changed, or force rolls back to it).
    ``now``: the services as GET /services lists them, and what each runs on."""
    endpoint = params["uri"] or params["arn"]
    services, current = now
    names = [s["name"] for s in existing.get("services", [])]
    lagging = sorted(n for n in names if current.get(n, {}).get("deployment_id") != existing["id"])
    try:
        client.deployments.register(_body(params, force=False, dry_run=True))
    except RestateApiError as error:
        if not params["force"] or error.status is None or error.status >= 500:
            raise RestateApiError(error.method, error.path, status=error.status, admin_url=error.admin_url,
                                  reason=error.reason,
                                  message=f"{error.message} (endpoint {endpoint} is already registered as "
                                          f"{existing['id']} and what it serves now differs; force: true "
                                          "registers it again)")
        return None
    if params["force"] and lagging:
        return None
    updated, header_diff = _update_in_place(task, client, params, existing)
    replacement = _replacement(client, deployments, existing["id"], names, latest_of(services))
    if lagging:
        task.warn(_behind_message(endpoint, existing["id"], replacement["behind"]) + "; registering it "
                  "again changes nothing. Set force: true to make it the latest again (a rollback); that "
                  "gives those services new revisions")
    runs_on = {n: current[n] for n in names if n in current}
    outcome = {"changed": updated, "deployment": dict(describe(existing, {}), created=False), "runs_on": runs_on}
    outcome.update(replacement)
    if task.diff_mode:
        outcome["diff"] = _diff(runs_on, runs_on, f"deployment {endpoint}")
        outcome["diff"]["before"] += header_diff[0]
        outcome["diff"]["after"] += header_diff[1]
    return outcome


def _registered(task, client, params, existing, deployments, now):
    """Register the endpoint (in check mode, the server's dry run) and say what it changed."""
    endpoint = params["uri"] or params["arn"]
    services, current = now
    try:
        created, answer = client.deployments.register(_body(params, force=params["force"], dry_run=task.check_mode))
    except RestateApiError as error:
        if error.status != 409 or params["breaking"]:
            raise
        raise RestateApiError(error.method, error.path, status=error.status, admin_url=error.admin_url,
                              message=f"{error.message} (nothing was registered; breaking: true allows an "
                                      "incompatible change)")
    answer_services = answer.get("services", [])
    names = [s.get("name") for s in answer_services]
    after = _runs_on(answer_services)
    before = {n: current.get(n, {"deployment_id": None, "revision": None}) for n in names}
    new_id = answer.get("id")
    known = find_deployment(deployments, deployment_id=new_id)
    # A 200 for an endpoint not found by its URI: the server took it for a registered one (the https form of an
    # http endpoint). Changed only if the services moved or got new revisions.
    changed = created or before != after
    if known is not None and existing is None:
        nothing = "" if changed else " and changed nothing"
        task.warn(f"{endpoint} is the endpoint the server has registered as {new_id} "
                  f"({known.get('uri') or known.get('arn')}); the server took it as that one{nothing}")
    outcome = {"changed": changed, "deployment": _registration(params, answer, known, created, task.check_mode),
               "runs_on": after,
               # What the registration resets the settings to (in check mode, what it would): a check run of
               # restate_service compares with these, since the dry run left the server's as they were.
               "service_settings": {s.get("name"): {k: s[k] for k in SETTINGS if k in s} for s in answer_services}}
    # Read again after a real registration: another run may have registered its own deployment meanwhile.
    latest_after = (_predicted_latest(services, answer_services, new_id) if task.check_mode
                    else latest_of(client.services.list()))
    outcome.update(_replacement(client, deployments, new_id, names, latest_after))
    if task.diff_mode:
        outcome["diff"] = _diff(before, after, f"deployment {endpoint}")
    return outcome


def _registration(params, answer, known, created, check_mode) -> dict:
    """The deployment a registration answered with, as the module returns it."""
    endpoint = params["uri"] or params["arn"]
    deployment = {"id": answer.get("id"),
                  ("uri" if params["uri"] else "arn"): (known.get("uri") or known.get("arn")) if known else endpoint,
                  "services": sorted(({"name": s.get("name"), "revision": s.get("revision")}
                                      for s in answer.get("services", [])), key=lambda s: s["name"]),
                  "created": created}
    if answer.get("sdk_version"):
        deployment["sdk_version"] = answer["sdk_version"]
    if check_mode and created:
        deployment["dry_run"] = True  # the server's dry run gives an id it does not keep
    return deployment


def _state(client, deployment):
    return client.deployments.judged([deployment])[deployment["id"]]


def not_drained_message(deployment, judged) -> str:
    parts = []
    if judged["latest_of"]:
        parts.append(f"it is the latest deployment of {', '.join(judged['latest_of'])} (register their new "
                     "deployment first; removing it removes those services)")
    if judged["pinned_total"]:
        counts = ", ".join(f"{status}: {count}" for status, count in judged["pinned"].items())
        parts.append(f"{judged['pinned_total']} invocations not completed are pinned to it ({counts})")
    return f"deployment {deployment['id']} is not drained: " + "; ".join(parts)


def blocked_by(judged) -> list:
    """Why a deployment is not drained: ``latest`` (it is the latest of a service) and/or ``pinned``."""
    return [reason for reason, present_ in (("latest", judged["latest_of"]), ("pinned", judged["pinned_total"]))
            if present_]


def _gone(target, judged, waited) -> dict:
    """The outcome when the deployment is no longer on the server: someone (another run) removed it."""
    return {"changed": False, "removed": False, "gone": True, "blocked_by": [], "waited": waited,
            "deployment": describe(target, judged or {})}


def _until_drained(task, client, target, judged, params):
    """(judged, seconds waited) once the deployment has been drained for drain_delay (judged None: it went away
    meanwhile); raises _Refused when it is not drained and wait is off, or not in time. In check mode, no wait."""
    delay = params["drain_delay"]
    refused = {"changed": False, "removed": False, "gone": False}
    if judged["status"] != "drained" and not params["wait"]:
        refused.update(deployment=describe(target, judged), blocked_by=blocked_by(judged))
        raise _Refused(not_drained_message(target, judged) + ". wait: true waits up to wait_timeout for the "
                       "drain; force: true removes it anyway", refused)
    if task.check_mode:
        if judged["status"] != "drained":
            task.warn(not_drained_message(target, judged) + f"; the run would wait up to "
                      f"{params['wait_timeout']}s for the drain before removing it")
        return judged, 0.0
    judged, waited, drained_for = _watch(client, target, judged, params)
    if judged is None or (drained_for is not None and drained_for >= delay):
        return judged, waited
    reasons = blocked_by(judged) or ["drain_delay"]
    refused.update(deployment=describe(target, judged), waited=waited, blocked_by=reasons)
    if reasons == ["drain_delay"]:
        message = f"deployment {target['id']} has been drained for {drained_for or 0:.1f}s only, less than drain_delay {delay}s"
    else:
        message = not_drained_message(target, judged)
    raise _Refused(message + f" after waiting {waited}s (wait_timeout {params['wait_timeout']}, drain_delay {delay}); "
                   "nothing was removed", refused)


def absent(task, client, params):
    deployments = client.deployments.list()
    target = find_deployment(deployments, deployment_id=params["id"], uri=params["uri"], arn=params["arn"])
    if target is None:
        return {"changed": False, "deployment": None, "removed": False, "gone": True, "blocked_by": []}
    judged = _state(client, target)
    waited = 0.0
    if not params["force"] and (judged["status"] != "drained" or params["drain_delay"]):
        judged, waited = _until_drained(task, client, target, judged, params)
        if judged is None:
            return _gone(target, {}, waited)
    outcome = {"changed": True, "removed": False, "gone": False}
    outcome["deployment"] = describe(target, judged)
    outcome["waited"] = waited
    outcome["blocked_by"] = []
    if not task.check_mode:
        outcome["removed"] = client.deployments.remove(target["id"])
        outcome["changed"] = outcome["removed"]
        outcome["gone"] = not outcome["removed"]  # 404: removed meanwhile by someone else
    if task.diff_mode:
        outcome["diff"] = {"before": f"{target['id']}: {judged['status']}\n", "after": "",
                           "before_header": f"deployment {target['id']}", "after_header": f"deployment {target['id']}"}
    return outcome


def _watch(client, target, judged, params):
    """Poll the deployment until it has been drained for drain_delay seconds in a row, or the time is up: not drained
    at wait_timeout (without wait: at once), or not drained long enough by wait_timeout plus drain_delay. (judged, waited, drained
    for how many seconds at the end or None); judged is None when the deployment is gone."""
    delay = params["drain_delay"]
    poll = Poll(timeout=(params["wait_timeout"] if params["wait"] else 0) + delay)
    drained_since = None
    for unused_round in poll.rounds():
        if client.deployments.get(target["id"]) is None:
            return None, round(poll.elapsed(), 1), None
        judged = _state(client, target)
        if judged["status"] != "drained":
            drained_since = None
            if not params["wait"] or poll.elapsed() >= params["wait_timeout"]:
                break  # the delay counts only once drained: not drained by wait_timeout is a timeout
            continue
        if drained_since is None:
            drained_since = poll.elapsed()
        if poll.elapsed() - drained_since >= delay:
            poll.done()
    waited = round(poll.elapsed(), 1)
    drained_for = None if drained_since is None else poll.elapsed() - drained_since
    return judged, waited, drained_for


class _Refused(Exception):
    def __init__(self, msg, outcome):
        super().__init__(msg)
        self.outcome = outcome


def run(task):
    """Register or remove; ends with ``task.exit_json`` or ``task.fail_json``."""
    params = dict(task.params)
    try:
        check_options(params)
        client = task.connect()
        outcome = present(task, client, params) if params["state"] == "present" else absent(task, client, params)
    except _Refused as refused:
        task.fail_json(msg=str(refused), **refused.outcome)
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)
    task.exit_json(**outcome)
