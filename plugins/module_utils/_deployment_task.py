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
    describe,
    find_deployment,
    validate_deployment_id,
)
from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_headers
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._poll import Poll
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
    },
    "mutually_exclusive": [["id", "uri", "arn"]],
    "required_one_of": [["id", "uri", "arn"]],
}

PRESENT_ONLY = ("use_http_11", "additional_headers", "metadata", "assume_role_arn", "breaking")
ABSENT_ONLY = ("wait",)


def check_options(params):
    """InputError naming the option, before any request."""
    state = params["state"]
    if params["wait_timeout"] < 0:
        raise InputError(f"wait_timeout must be 0 or more seconds, got {params['wait_timeout']}")
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


def present(task, client, params):
    endpoint = params["uri"] or params["arn"]
    deployments = client.deployments.list()
    existing = find_deployment(deployments, uri=params["uri"], arn=params["arn"])
    current = _runs_on(client.services.list())
    outcome = {"changed": False}

    answer = None
    if existing is not None:
        names = [s["name"] for s in existing.get("services", [])]
        behind = sorted(n for n in names if current.get(n, {}).get("deployment_id") != existing["id"])
        try:
            created, answer = client.deployments.register(_body(params, force=False, dry_run=True))
            unchanged = True
        except RestateApiError as error:
            if not params["force"] or error.status is None or error.status >= 500:
                raise RestateApiError(error.method, error.path, status=error.status, admin_url=error.admin_url,
                                      reason=error.reason,
                                      message=f"{error.message} (endpoint {endpoint} is already registered as "
                                              f"{existing['id']} and what it serves now differs; force: true "
                                              "registers it again)")
            unchanged = False
        if unchanged and not (params["force"] and behind):
            if behind:
                runs_on = ", ".join(f"{n} runs on {current[n]['deployment_id']}" for n in behind)
                task.warn(f"{endpoint} is registered as {existing['id']} but is not the latest deployment of "
                          f"{', '.join(behind)} ({runs_on}); registering it again changes nothing. Set force: true "
                          "to make it the latest again (a rollback); that gives those services new revisions")
            outcome["deployment"] = dict(describe(existing, {}), created=False)
            outcome["runs_on"] = {n: current[n] for n in names if n in current}
            outcome["latest"] = not behind
            if task.diff_mode:
                view = {n: current[n] for n in names if n in current}
                outcome["diff"] = _diff(view, view, f"deployment {endpoint}")
            return outcome

    try:
        created, answer = client.deployments.register(_body(params, force=params["force"], dry_run=task.check_mode))
    except RestateApiError as error:
        if error.status != 409 or params["breaking"]:
            raise
        raise RestateApiError(error.method, error.path, status=error.status, admin_url=error.admin_url,
                              message=f"{error.message} (nothing was registered; breaking: true allows an "
                                      "incompatible change)")
    services = answer.get("services", [])
    names = [s.get("name") for s in services]
    after = _runs_on(services)
    before = {n: current.get(n, {"deployment_id": None, "revision": None}) for n in names}
    outcome["changed"] = True
    deployment = {"id": answer.get("id"), ("uri" if params["uri"] else "arn"): endpoint,
                  "services": sorted(({"name": s.get("name"), "revision": s.get("revision")} for s in services),
                                     key=lambda s: s["name"]),
                  "created": created}
    if answer.get("sdk_version"):
        deployment["sdk_version"] = answer["sdk_version"]
    if task.check_mode and created:
        deployment["dry_run"] = True  # the server's dry run gives an id it does not keep
    outcome["deployment"] = deployment
    outcome["runs_on"] = after
    outcome["latest"] = True
    if task.diff_mode:
        outcome["diff"] = _diff(before, after, f"deployment {endpoint}")
    return outcome


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


def absent(task, client, params):
    deployments = client.deployments.list()
    target = find_deployment(deployments, deployment_id=params["id"], uri=params["uri"], arn=params["arn"])
    if target is None:
        return {"changed": False, "deployment": None, "removed": False}
    judged = _state(client, target)
    outcome = {"changed": True, "removed": False}
    waited = 0.0
    if judged["status"] != "drained" and not params["force"]:
        if not params["wait"]:
            outcome.update(changed=False, deployment=describe(target, judged))
            raise _Refused(not_drained_message(target, judged) + ". wait: true waits up to wait_timeout for the "
                           "drain; force: true removes it anyway", outcome)
        if task.check_mode:
            task.warn(not_drained_message(target, judged) + f"; the run would wait up to {params['wait_timeout']}s "
                      "for the drain before removing it")
        else:
            poll = Poll(timeout=params["wait_timeout"])
            for unused_round in poll.rounds():
                judged = _state(client, target)
                poll.last = judged
                if judged["status"] == "drained":
                    poll.done()
            waited = round(poll.elapsed(), 1)
            if poll.timed_out:
                outcome.update(changed=False, deployment=describe(target, judged), waited=waited)
                raise _Refused(not_drained_message(target, judged) + f" after waiting {waited}s (wait_timeout "
                               f"{params['wait_timeout']}); nothing was removed", outcome)
    outcome["deployment"] = describe(target, judged)
    outcome["waited"] = waited
    if not task.check_mode:
        outcome["removed"] = client.deployments.remove(target["id"])
        outcome["changed"] = outcome["removed"]
    if task.diff_mode:
        outcome["diff"] = {"before": f"{target['id']}: {judged['status']}\n", "after": "",
                           "before_header": f"deployment {target['id']}", "after_header": f"deployment {target['id']}"}
    return outcome


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
