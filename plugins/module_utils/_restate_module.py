# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The Ansible side shared by every module: connection options, client construction, error reporting.

A module's work is a ``run(task)`` function of its own module_utils file, where ``task`` gives what the work needs
from Ansible (``params``, ``check_mode``, ``diff_mode``, ``warn``, ``exit_json``, ``fail_json``) and the Admin API
client. ``RestateModule`` is that task in a module process; the collection's action plugins run the same function
in the controller's worker process when the module would run on the controller anyway
(``plugin_utils/_controller_task.py``).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_connection
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._client import (
    DEFAULT_ADMIN_URL,
    REQUESTS_IMPORT_ERROR,
    AdminClient,
    RestateApiError,
)
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    COMPLETION_RESULTS,
    INVOKED_BY,
    STATUSES,
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
    "retries": {"type": "int", "default": 4},
    # Header values are secrets as much as the token (an API key, a proxy's credentials).
    "headers": {"type": "dict", "default": {}, "no_log": True},
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


def with_connection(spec: dict) -> dict:
    """A module's argument spec and its constraints (AnsibleModule's keywords), with the connection options added."""
    merged = dict(spec)
    merged["argument_spec"] = dict(CONNECTION_ARGSPEC, **spec["argument_spec"])
    merged["required_together"] = list(spec.get("required_together", [])) + [["client_key", "client_cert"]]
    return merged


def connection_error(params: dict):
    """What is wrong with the connection options (a message naming the option, never a secret), or None.

    Run before any request by both hosts of a module's work; the options the client is to use are put back in
    ``params`` (the token and header values without surrounding whitespace, admin_url without its own).
    """
    try:
        check_connection(params)
    except InputError as error:
        return str(error)
    return None


class RestateTask:
    """What every host of a module's work shares: the Admin API client and how errors end the task.

    A host provides ``params``, ``warn``, ``fail_json`` (which does not return), ``check_mode`` and ``_diff``.
    """

    _client = None
    server_version = None

    @property
    def diff_mode(self) -> bool:
        return bool(self._diff)

    def connect(self, pool_size: int = 4, **options) -> AdminClient:
        """The run's one AdminClient (made at the first call): ``pool_size`` connections kept open, ``options``
        passed on to AdminClient. Fails the task when the server cannot be reached or speaks no known API."""
        if self._client is None:
            p = self.params
            self._client = AdminClient(
                admin_url=p["admin_url"], token=p["token"], validate_certs=p["validate_certs"],
                ca_path=p["ca_path"], client_cert=p["client_cert"], client_key=p["client_key"],
                timeout=p["timeout"] or None, headers=p["headers"], retries=p["retries"],
                pool_size=pool_size, on_retry=self.warn, **options)
            try:
                self.server_version = self._client.check_compatible().get("version")
            except RestateApiError as error:
                self.fail_on(error)
        return self._client

    def fail_on(self, error: Exception, **result):
        """Report a client or input error as the task's failure, with whatever was done so far."""
        if isinstance(error, (RestateApiError, InputError)):
            self.fail_json(msg=str(error), **result)
        raise error


class RestateModule(RestateTask, AnsibleModule):
    """The task in a module process: an AnsibleModule with the connection options merged in."""

    def __init__(self, spec: dict):
        super().__init__(supports_check_mode=True, **with_connection(spec))
        if REQUESTS_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        error = connection_error(self.params)
        if self.params.get("token"):
            # The token used is the given one without its surrounding whitespace: hidden in the result as well.
            self.no_log_values.add(self.params["token"])
        if error:
            self.fail_json(msg=error)
