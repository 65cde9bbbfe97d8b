# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""What a restate_deployment_info task does, in whichever process runs it (see _restate_module.py)."""

from __future__ import annotations

import difflib
from collections import Counter
from datetime import datetime, timezone

from ansible_collections.restate.admin.plugins.module_utils._deployments_api import describe, find_deployment
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._selection import parse_time, validate_deployment_id

SPEC = {
    "supports_check_mode": True,
    "argument_spec": {
        "id": {"type": "str"},
        "uri": {"type": "str"},
        "arn": {"type": "str"},
        "service": {"type": "str"},
        "status": {"type": "list", "elements": "str", "choices": ["active", "draining", "drained"]},
        "created_before": {"type": "str"},
    },
    "mutually_exclusive": [["id", "uri", "arn", "service"]],
}


def _created_before(value):
    """The moment ``created_before`` names, as the first 19 characters of the server's created_at (UTC)."""
    if value is None:
        return None
    moment = parse_time(value, "created_before", datetime.now(timezone.utc), prefix="")  # a top-level option
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def run(task):
    """Every deployment (or the one given, or a service's) with its status; never changes anything."""
    params = task.params
    try:
        if params["id"] is not None:
            validate_deployment_id(params["id"])
        if params["service"] is not None and not params["service"].strip():
            raise InputError("service: an empty name names no service; leave service out to list every deployment")
        before = _created_before(params["created_before"])
        client = task.connect()
        deployments = client.deployments.list()
        judged = client.deployments.judged(deployments)
    except Exception as error:  # pylint: disable=broad-exception-caught
        task.fail_on(error)

    if params["id"] or params["uri"] or params["arn"]:
        one = find_deployment(deployments, deployment_id=params["id"], uri=params["uri"], arn=params["arn"])
        deployments = [one] if one else []
    elif params["service"]:
        name = params["service"].strip()
        served = sorted({s.get("name") for d in deployments for s in d.get("services", [])})
        if name not in served:
            # A misspelled name would match nothing and look like "nothing to do".
            close = difflib.get_close_matches(name, served, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            task.fail_json(msg=f"service: no deployment serves a service named {name!r}{hint}; the server's "
                               f"deployments serve {', '.join(served) or 'no service'}")
        deployments = [d for d in deployments if any(s.get("name") == name for s in d.get("services", []))]
    if before is not None:
        deployments = [d for d in deployments if (d.get("created_at") or "")[:19] < before]
    listed = [describe(d, judged[d["id"]]) for d in deployments]
    if params["status"]:
        listed = [d for d in listed if d["status"] in params["status"]]
    listed.sort(key=lambda d: (d.get("created_at") or "", d["id"]))
    summary = dict(Counter(d["status"] for d in listed))
    task.exit_json(changed=False, deployments=listed, count=len(listed), summary=summary)
