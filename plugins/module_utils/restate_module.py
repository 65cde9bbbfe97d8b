# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side shared by every module: connection options, client construction, error reporting."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.restate.admin.plugins.module_utils.restate_client import (
    DEFAULT_ADMIN_URL,
    REQUESTS_IMPORT_ERROR,
    AdminClient,
    RestateApiError,
)
from ansible_collections.restate.admin.plugins.module_utils.selection import (
    COMPLETION_RESULTS,
    INVOKED_BY,
    STATUSES,
    SelectionError,
)

# Documented once, in plugins/doc_fragments/connection.py; the env variables are the official CLI's.
CONNECTION_ARGSPEC = {
    # A list: the nodes of one cluster, tried in order (a comma-separated string, as from the environment, splits).
    "admin_url": {"type": "list", "elements": "str", "default": [DEFAULT_ADMIN_URL],
                  "fallback": (env_fallback, ["RESTATE_ADMIN_URL"])},
    "token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["RESTATE_AUTH_TOKEN"])},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path"},
    "timeout": {"type": "float", "default": 30.0},
    "retries": {"type": "int", "default": 3},
    "headers": {"type": "dict", "default": {}},
}

_TIME = {"type": "str"}
# Documented in plugins/doc_fragments/filters.py; values are checked further by selection.normalize_filters.
FILTERS_ARGSPEC = {
    "type": "dict",
    "options": {
        "service": {"type": "str"},
        "handler": {"type": "str"},
        "key": {"type": "str", "no_log": False},
        "target": {"type": "str"},
        "status": {"type": "list", "elements": "str", "choices": list(STATUSES)},
        "completion_result": {"type": "str", "choices": list(COMPLETION_RESULTS)},
        "deployment": {"type": "str"},
        "invoked_by": {"type": "str", "choices": list(INVOKED_BY)},
        "idempotency_key": {"type": "str", "no_log": False},
        "zombie": {"type": "bool"},
        "min_retry_count": {"type": "int"},
        "created_before": _TIME,
        "created_after": _TIME,
        "modified_before": _TIME,
        "modified_after": _TIME,
        "completed_before": _TIME,
        "completed_after": _TIME,
    },
}


class RestateModule(AnsibleModule):
    """An AnsibleModule with the connection options merged in and one AdminClient for the run."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(CONNECTION_ARGSPEC)
        spec.update(argument_spec)
        required_together = list(kwargs.pop("required_together", [])) + [["client_key", "client_cert"]]
        super().__init__(argument_spec=spec, required_together=required_together, **kwargs)
        if REQUESTS_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        for option in ("timeout", "retries"):
            if self.params[option] < 0:
                self.fail_json(msg=f"{option} must be zero or more, got {self.params[option]}")
        self._client = None

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            p = self.params
            self._client = AdminClient(
                admin_url=p["admin_url"], token=p["token"], validate_certs=p["validate_certs"],
                ca_path=p["ca_path"], client_cert=p["client_cert"], client_key=p["client_key"],
                timeout=p["timeout"] or None, headers=p["headers"], retries=p["retries"],
                pool_size=self.pool_size(), on_retry=self.warn, **self.client_options())
            try:
                self.server_version = self._client.check_compatible().get("version")
            except RestateApiError as error:
                self.fail_on(error)
        return self._client

    def pool_size(self) -> int:
        """Connections kept open; modules that send requests concurrently override it."""
        return 4

    def client_options(self) -> dict:
        """More AdminClient arguments from a module's own options."""
        return {}

    def fail_on(self, error: Exception, **result):
        """Report a client or input error as the module's failure, with whatever was done so far."""
        if isinstance(error, (RestateApiError, SelectionError)):
            self.fail_json(msg=str(error), **result)
        raise error
