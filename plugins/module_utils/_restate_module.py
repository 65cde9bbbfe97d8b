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

import decimal
import math
import sys

from ansible.module_utils.basic import AnsibleModule, _load_params, env_fallback
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_connection
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._client import AdminClient
from ansible_collections.restate.admin.plugins.module_utils._transport import (
    DEFAULT_ADMIN_URL,
    REQUESTS_IMPORT_ERROR,
    RestateApiError,
)
from ansible_collections.restate.admin.plugins.module_utils._selection import (
    COMPLETION_RESULTS,
    INVOKED_BY,
    STATUSES,
)


def requests_missing(python: str) -> str:
    """The message of a task whose Python lacks requests: which Python, and the command that installs it there."""
    return (f"The Python library requests is not installed in {python}, the Python that runs this task; install it "
            f"with: {python} -m pip install 'requests>=2.25' (or set ansible_python_interpreter to a Python that has "
            "it)")


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
        "pinned": {"type": "bool"},
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
    """A module's ``SPEC`` as AnsibleModule's keywords (argument spec, constraints, ``supports_check_mode``), with the
    connection options added. A module supports check mode only where its SPEC says so."""
    merged = dict(spec)
    merged.setdefault("supports_check_mode", False)
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


# Options whose values are all secrets, given as a dictionary or as a key=value (or JSON) string.
SECRET_DICTS = ("headers", "additional_headers")


def headers_as_dict(args):
    """The task's arguments, with ``headers`` (and ``additional_headers``) given as a key=value (or JSON) string
    already a dictionary: Ansible hides the values of a no_log dictionary, but of a string only the whole string, and
    would show the values it reads from it in a refusal's module_args. Both hosts read the arguments through this."""
    if not isinstance(args, dict):
        return args
    for name in SECRET_DICTS:
        if isinstance(args.get(name), str):
            try:
                args = dict(args, **{name: check_type_dict(args[name])})
            except (TypeError, ValueError):
                pass  # refused by Ansible, whose message does not show it
    return args


def shape_error(spec: dict, args: dict):
    """A message for a value Ansible's own validation raises an exception on instead of refusing it, or None.

    Those are an option with suboptions (filters) given as something other than a dictionary (``filters: false``,
    ``filters: [1]``, a key that is not a string), and a whole-number option given an infinite or NaN value
    (``from_entry: .inf``, ``limit: "inf"``); a number too large for a float option. Both hosts ask this first.
    """
    if not isinstance(args, dict):
        return None
    for name, option in spec["argument_spec"].items():
        value = args.get(name)
        if value is None:
            continue
        error = _number_error(name, option, value)
        if error or "options" not in option:
            if error:
                return error
            continue
        if isinstance(value, str):
            try:
                value = check_type_dict(value)  # JSON or key=value, as Ansible reads it
            except (TypeError, ValueError):
                pass
        if not (isinstance(value, dict) and all(isinstance(key, str) for key in value)):
            example = ("{service: Greeter, status: [suspended]}" if name == "filters"
                       else "{" + ", ".join(f"{key}: ..." for key in list(option["options"])[:2]) + "}")
            got = ("a dictionary whose keys are not all names" if isinstance(value, dict) else
                   "a string that is neither JSON nor key=value pairs" if isinstance(value, str) else
                   type(value).__name__)
            return f"{name}: expected a dictionary such as {example}, got {got}"
        for key, sub_option in option["options"].items():
            if value.get(key) is not None:
                error = _number_error(f"{name}.{key}", sub_option, value[key])
                if error:
                    return error
    return None


def _number_error(name, option, value):
    if isinstance(value, bool):
        return None
    if option.get("type") == "int":
        if isinstance(value, (list, tuple)):  # Ansible hands a list to decimal.Decimal, which reads (sign, digits, exp)
            return f"{name}: expected a whole number, got a list"
        number = value
        if isinstance(value, str):
            try:
                number = decimal.Decimal(value.strip())
            except (decimal.DecimalException, ValueError):
                return None  # Ansible refuses it
        infinite_decimal = isinstance(number, decimal.Decimal) and not number.is_finite()
        if infinite_decimal or (isinstance(number, float) and not math.isfinite(number)):
            return f"{name}: expected a whole number, got {str(value)[:40]!r}"
    if option.get("type") == "float" and isinstance(value, int) and abs(value) > sys.float_info.max:
        return f"{name}: expected a number, got one too large for a floating-point number"
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

    def progress(self, message: str):
        """How far a long task is. A module process cannot say so while it runs (Ansible reads its output when it
        ends); the worker's host prints it (plugin_utils/_controller_task.py)."""

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
        spec = with_connection(spec)
        shape = shape_error(spec, _load_params())
        if shape:
            # Every option taken as it is, so that Ansible's validation does not fail first, and then refused;
            # secrets stay no_log.
            spec = {"supports_check_mode": spec["supports_check_mode"], "argument_spec": {
                name: dict({"type": "raw", "no_log": bool(option.get("no_log"))},
                           **{key: option[key] for key in ("fallback",) if key in option})
                for name, option in spec["argument_spec"].items()}}
        super().__init__(**spec)
        if shape:
            self.fail_json(msg=shape)
        if REQUESTS_IMPORT_ERROR:
            self.fail_json(msg=requests_missing(sys.executable), exception=REQUESTS_IMPORT_ERROR)
        error = connection_error(self.params)
        # The token and header values used are the given ones without their surrounding whitespace: hidden in the
        # result as well.
        self.no_log_values.update(value for value in [self.params.get("token")] + [
            value for name in SECRET_DICTS if isinstance(self.params.get(name), dict)
            for value in self.params[name].values()] if isinstance(value, str) and value)
        if error:
            self.fail_json(msg=error)

    def _load_params(self):
        super()._load_params()
        self.params = headers_as_dict(self.params)
