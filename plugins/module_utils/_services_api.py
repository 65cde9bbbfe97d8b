# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The services area of the Admin API: read services and patch their settings (GET/PATCH /services).

``ServicesApi`` calls the server over the transport; the functions beside it are pure (what a setting's value is,
what differs). What a 1.7 server answers is recorded in docs/deployments-and-services.md.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import quote

from ansible_collections.restate.admin.plugins.module_utils._durations import parse_duration, to_server
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._transport import answer_json, objects

# The settings PATCH /services/{name} takes; all but public are durations.
DURATION_SETTINGS = ("idempotency_retention", "journal_retention", "workflow_completion_retention",
                     "inactivity_timeout", "abort_timeout")
SETTINGS = ("public",) + DURATION_SETTINGS
WORKFLOW_ONLY = ("workflow_completion_retention",)
# What a service is returned with: the server's view without its handlers (those belong to the deployment).
SERVICE_KEYS = ("name", "ty", "deployment_id", "revision") + SETTINGS + ("enable_lazy_state", "retry_policy")


def _path(name: str) -> str:
    return "/services/" + quote(name, safe="")


def summary(service: dict) -> dict:
    """A service as modules return it: its settings, latest deployment and revision, without handlers."""
    return {key: service[key] for key in SERVICE_KEYS if key in service}


class ServicesApi:
    def __init__(self, transport):
        self.transport = transport

    def list(self) -> list:
        return self._json("GET", "/services", SERVICES,
                          lambda value: isinstance(value, dict) and objects(value.get("services", []), "name"))\
            .get("services", [])

    def get(self, name: str):
        """The service, or None when the server does not know it."""
        response = self.transport.request("GET", _path(name), ok_statuses=(404,))
        if response.status_code == 404:
            return None
        return answer_json(response, "GET", _path(name), self.transport.admin_url, SERVICE, _service_shape)

    def patch(self, name: str, changes: dict) -> dict:
        """Apply ``changes`` (setting -> value in the server's form); the service as the server answers after it."""
        return self._json("PATCH", _path(name), SERVICE, _service_shape, json_body=changes)

    def _json(self, method, path, expected, valid, **options):
        response = self.transport.request(method, path, **options)
        return answer_json(response, method, path, self.transport.admin_url, expected, valid)


SERVICES = "an object with 'services', a list of objects each with a 'name'"
SERVICE = "a service: an object with its 'name'"


def _service_shape(value) -> bool:
    return isinstance(value, dict) and objects([value], "name") and isinstance(value.get("info") or [], list)


def settings_given(params: dict) -> dict:
    """The settings as options: ``params`` itself, or its ``settings`` dict (a role passes one per service) with every
    key checked, since a misspelled key would otherwise leave that setting as a registration reset it."""
    given = params.get("settings")
    if given is None:
        return params
    unknown = sorted(str(key) for key in given if key not in SETTINGS)
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)
                 for key, close in ((key, difflib.get_close_matches(key, SETTINGS, n=1)) for key in unknown)]
        raise InputError(f"settings: unknown {'key' if len(unknown) == 1 else 'keys'} {', '.join(hints)}; the "
                         f"settings are {', '.join(SETTINGS)}")
    if "public" in given and not isinstance(given["public"], bool):
        raise InputError(f"settings: public must be true or false, got {given['public']!r}")
    return dict(given)


def wanted_settings(params: dict) -> dict:
    """The settings given in ``params`` (None: not managed), durations as milliseconds; InputError names the option."""
    params = settings_given(params)
    wanted = {}
    if params.get("public") is not None:
        wanted["public"] = bool(params["public"])
    for option in DURATION_SETTINGS:
        if params.get(option) is not None:
            wanted[option] = parse_duration(params[option], option)
    return wanted


# A setting the server keeps but does not apply (inactivity_timeout of a service exposed request/response) shows as its
# default; the service's info notice (RT0021) names the configured value, which is what a re-run compares with.
NOT_APPLIED = re.compile(r"The configured (\w+) (.+?) will not be applied")


def configured(service: dict) -> dict:
    """{setting: value as configured} for the settings the service's info notices say are kept but not applied."""
    found = {}
    for info in service.get("info") or []:
        match = NOT_APPLIED.search(str((info or {}).get("message", "")))
        if match and match.group(1) in DURATION_SETTINGS:
            found[match.group(1)] = match.group(2)
    return found


def setting_changes(service: dict, wanted: dict) -> dict:
    """What differs between the service and ``wanted`` (from wanted_settings), in the server's form, by value."""
    changes = {}
    kept = configured(service)
    for option, value in wanted.items():
        if option == "public":
            if service.get("public") != value:
                changes["public"] = value
            continue
        if option in WORKFLOW_ONLY and service.get("ty") != "Workflow":
            raise InputError(f"{option} applies only to workflows; service {service.get('name')!r} is a "
                             f"{service.get('ty')}: remove {option}")
        current = kept.get(option, service.get(option))
        try:
            same = current is not None and parse_duration(current, option) == value
        except InputError:
            same = False
        if not same:
            changes[option] = to_server(value)
    return changes
