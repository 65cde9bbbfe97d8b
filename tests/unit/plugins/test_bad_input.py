"""Bad input, refused at the door on both hosts of a module's work: the module process and Ansible's worker.

Every task here is run in this process, as a module (``main()`` of the module file, its arguments patched in as
AnsiballZ would hand them over) and as the action plugin runs it on the local connection (``ControllerAction.run``).
admin_url points at a local port that refuses connections, so a task that gets past the checks fails to connect:
no invocation can change. Each result must be a failure whose ``msg`` names an option, with no traceback and no
secret (the token, a header value) in any form.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible.module_utils import basic

from ansible_collections.restate.admin.plugins.action import restate_deployment as deployment_action
from ansible_collections.restate.admin.plugins.action import restate_invocation as invocation_action
from ansible_collections.restate.admin.plugins.action import restate_invocation_info as info_action
from ansible_collections.restate.admin.plugins.action import restate_invocation_recovery as recovery_action
from ansible_collections.restate.admin.plugins.module_utils import _transport
from ansible_collections.restate.admin.plugins.module_utils import _deployment_task, _invocation_info_task, _invocation_task
from ansible_collections.restate.admin.plugins.module_utils import _recovery_task
from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_admin_url
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._restate_module import CONNECTION_ARGSPEC
from ansible_collections.restate.admin.plugins.module_utils._selection import FILTER_KEYS
from ansible_collections.restate.admin.plugins.modules import restate_deployment, restate_invocation, restate_invocation_info
from ansible_collections.restate.admin.plugins.modules import restate_invocation_recovery

GOOD_ID = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"
MODULES = {
    "restate_invocation": (restate_invocation, invocation_action.ActionModule, _invocation_task.SPEC),
    "restate_invocation_info": (restate_invocation_info, info_action.ActionModule, _invocation_info_task.SPEC),
    "restate_invocation_recovery": (restate_invocation_recovery, recovery_action.ActionModule, _recovery_task.SPEC),
    "restate_deployment": (restate_deployment, deployment_action.ActionModule, _deployment_task.SPEC),
}
# Until the worker hides the values of no_log options that are dictionaries (the lead's part of issue 19), a
# header value that passes the checks shows in the worker's result under invocation.module_args.headers.
WORKER_HIDES_HEADER_VALUES = True


@pytest.fixture(scope="module")
def closed_url():
    """A local port bound but not listening: every connection to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch):
    monkeypatch.setattr(_transport.RetryPolicy, "back_off", lambda policy, attempt, why: attempt + 1)


@contextlib.contextmanager
def module_args(args):
    try:
        from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19+
    except ImportError:  # older ansible-core reads the bytes of _ANSIBLE_ARGS
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
            yield
        return
    with patch_module_args(args):
        yield


def as_module(name, args) -> tuple:
    """(result, everything printed) of the module's main() in this process."""
    module = MODULES[name][0]
    out, err = io.StringIO(), io.StringIO()
    with module_args(args), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with pytest.raises(SystemExit):
            module.main()
    printed = out.getvalue() + err.getvalue()
    result = json.loads(next(line for line in out.getvalue().splitlines() if line.startswith("{")))
    return result, printed


def in_worker(name, args) -> tuple:
    """(result, "") of the action plugin on the local connection, which runs the work in this process."""
    action_class = MODULES[name][1]
    task = SimpleNamespace(args=args, check_mode=False, diff=True, action=f"restate.admin.{name}", async_val=0,
                           environment=[{}], no_log=False, get_name=lambda: name)
    connection = SimpleNamespace(transport="local", _shell=SimpleNamespace(tmpdir="/nonexistent"))
    action = action_class(task, connection, SimpleNamespace(become=False), None, None)
    return action.run(task_vars={}), ""


HOSTS = {"module": as_module, "worker": in_worker}


def option_names(name) -> set:
    spec = MODULES[name][2]["argument_spec"]
    return set(spec) | set(CONNECTION_ARGSPEC) | {f"filters.{key}" for key in FILTER_KEYS}


def names_an_option(name, msg) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(option)}(?![\w])", msg) for option in option_names(name))


def secret_forms(secret: str) -> set:
    """The forms a secret may leak in: raw, escaped, percent-encoded, and every 8 characters in a row of its runs
    of letters and digits (what survives any escaping)."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret), quote(secret, safe="")}
    for run in re.findall(r"[A-Za-z0-9]{8,}", secret):
        forms |= {run[i:i + 8] for i in range(len(run) - 7)}
    return {form for form in forms if len(form) >= 8}


def check_refused(name, host, args, secrets=(), header_secrets=()):
    result, printed = HOSTS[host](name, args)
    assert result.get("failed") is True, result
    assert not result.get("changed"), result
    msg = result["msg"]
    # ansible-core 2.21's AnsibleModule refuses a NUL character in any argument itself, before the module's code runs,
    # while it logs the task's arguments to syslog: its words, naming no option.
    ansible_refused_nul = host == "module" and "\\x00" in repr(args) and "embedded null character" in msg
    assert ansible_refused_nul or names_an_option(name, msg), msg
    assert "Traceback" not in msg + printed and "exception" not in result, result
    shown = json.dumps(result) + printed
    if host == "worker" and not WORKER_HIDES_HEADER_VALUES:
        hidden = json.loads(json.dumps(result))
        hidden.get("invocation", {}).get("module_args", {}).pop("headers", None)
        shown = json.dumps(hidden)
    # What the other options hold may show (admin_url in a message) and may, generated, share characters with a
    # secret: only forms of a secret that no other option holds count.
    public = repr({key: value for key, value in args.items() if key not in ("token", "headers")})
    public += json.dumps(public)

    def leaks(secret, text):
        return [form for form in secret_forms(secret) if form in text and form not in public]

    for secret in secrets:
        assert not leaks(secret, shown), (host, msg)
    for secret in header_secrets:
        assert not leaks(secret, shown), (host, msg)
    return msg


# -- the issue's rows, each on both hosts ---------------------------------------------------------------------------
SECRET = "s3cr3t-TOKEN-value"


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("token", [SECRET + "x\ny", SECRET + "\r\nmore", SECRET + "\u2028x", "a\x00" + SECRET])
def test_a_token_with_a_line_break_inside_is_refused_unshown(host, token, closed_url):
    task = {"id": GOOD_ID, "state": "purged", "token": token, "admin_url": closed_url}
    msg = check_refused("restate_invocation", host, task, secrets=[token])
    assert msg.startswith("token: contains ")


@pytest.mark.parametrize("host", HOSTS)
def test_a_token_with_a_trailing_newline_is_used_without_it(host, closed_url):
    msg = check_refused("restate_invocation_info", host, {"id": GOOD_ID, "token": SECRET + "\n",
                                                          "admin_url": closed_url, "retries": 0},
                        secrets=[SECRET + "\n"])
    assert msg.startswith(f"Cannot reach the Restate Admin API at admin_url={closed_url}")


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("args, expected", [
    ({"admin_url": "127.0.0.1:9070"}, "admin_url: '127.0.0.1:9070' has no scheme; add http://"),
    ({"admin_url": "ftp://127.0.0.1:9070"}, "admin_url: 'ftp://127.0.0.1:9070' uses ftp://; the Admin API speaks "
                                            "http:// or https://"),
    ({"admin_url": ""}, "admin_url: empty; give the Admin API's URL"),
    ({"ca_path": "/nonexistent.pem"}, "ca_path: /nonexistent.pem does not exist"),
    ({"headers": {"X-Api-Key": SECRET + "\nX-Other: 1"}}, "headers.X-Api-Key: contains a line break"),
    ({"state": "resumed", "deployment": "dp_bogus"}, "deployment: 'dp_bogus' is neither latest, keep nor a "
                                                     "deployment id"),
    ({"id": None, "filters": {"completed_before": "1 month"}},
     "filters.completed_before: '1 month' is neither an RFC 3339 timestamp nor an age"),
    ({"id": ""}, "id: '' is not an invocation id"),
    ({"kill_after": float("nan"), "state": "cancelled"}, "kill_after must be 0 or more seconds"),
    # What Ansible's own validation raises an exception on, refused first.
    ({"limit": float("inf")}, "limit: expected a whole number, got 'inf'"),
    ({"from_entry": "-Infinity", "state": "restarted"}, "from_entry: expected a whole number, got '-Infinity'"),
    ({"id": None, "filters": False}, "filters: expected a dictionary such as {service: Greeter, status: "
                                     "[suspended]}, got bool"),
    ({"id": None, "filters": [1]}, "filters: expected a dictionary such as"),
    ({"id": None, "filters": "no-equals-sign"}, "filters: expected a dictionary such as"),
    ({"id": None, "filters": {"min_retry_count": float("inf")}}, "filters.min_retry_count: expected a whole number"),
    ({"timeout": 10 ** 400}, "timeout: expected a number, got one too large"),
    ({"concurrency": [0, [1], 10 ** 400]}, "concurrency: expected a whole number, got a list"),
])
def test_the_issues_rows_get_their_message_before_any_request(host, args, expected, closed_url):
    task = {"id": GOOD_ID, "state": "purged", "admin_url": closed_url}
    task.update(args)
    task = {key: value for key, value in task.items() if value is not None}
    msg = check_refused("restate_invocation", host, task, header_secrets=[SECRET])
    assert msg.startswith(expected), msg


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("args", [{"filters": {"service": "Greeter"}}, {}])
def test_info_refuses_a_journal_without_an_id(host, args, closed_url):
    msg = check_refused("restate_invocation_info", host, dict(args, journal=True, admin_url=closed_url))
    assert msg.startswith("journal: a journal is read for one invocation only; give id")


@pytest.mark.parametrize("host", HOSTS)
def test_a_good_deployment_keyword_gets_past_the_checks(host, closed_url):
    msg = check_refused("restate_invocation", host, {"id": GOOD_ID, "state": "resumed", "deployment": " Latest ",
                                                     "admin_url": closed_url, "retries": 0})
    assert msg.startswith("Cannot reach the Restate Admin API")


# -- generated input over every option ------------------------------------------------------------------------------
ODD = [" ", "\n", "\r\n", "\t", "\x00", "\x1b", "\x85", "\u2028", "\u2029", "\u200b", "'", '"', "\\", "%0a", "{{",
       "é", "😀"]
odd_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\n"] + ODD),
    st.lists(st.sampled_from(ODD + ["a", "1", "/", ":", "inv_", "dp_", "http://"]), max_size=6).map("".join),
    st.integers(2, 5).map(lambda n: "x" * 10 ** n),  # up to 100,000 characters
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2 ** 70, 2 ** 70),
                   st.floats(allow_nan=True, allow_infinity=True), odd_text,
                   st.sampled_from([float("inf"), "inf", "-Infinity", "NaN", "sNaN", 10 ** 400, "1e400", "0x10"]))
anything = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(odd_text, scalar, max_size=2))
# Letters and digits no message is made of (a secret shrunk to 'Sx9invocati' would "leak" in 'invocation').
# (Lists of characters rather than st.text(alphabet=...), whose shrinking fails inside hypothesis 6.155.)
secret_core = st.lists(st.sampled_from("QXZJKVWqxzjkvw23456789"), min_size=10, max_size=40).map(lambda chars: "Sx9" + "".join(chars))
whitespace = st.lists(st.sampled_from(" \t\r\n\u2028\u2029\x0b\x0c\x85"), max_size=3).map("".join)
# A secret as people paste them: whitespace around it, perhaps a line break, control character or quote inside.
secret = st.one_of(
    st.tuples(whitespace, secret_core, whitespace).map("".join),
    st.tuples(whitespace, secret_core, st.sampled_from(ODD), secret_core, whitespace).map("".join),
    st.integers(3, 5).map(lambda n: "Sx9" + "k" * 10 ** n),
)


def filters_strategy():
    return st.dictionaries(st.one_of(st.sampled_from(FILTER_KEYS), odd_text), anything, max_size=3)


OPTION_VALUES = {
    "id": st.one_of(anything, st.just(GOOD_ID), st.just(" " + GOOD_ID + "\n")),
    "ids": st.one_of(anything, st.lists(st.one_of(st.just(GOOD_ID), odd_text), max_size=3)),
    "filters": st.one_of(anything, filters_strategy()),
    "state": st.one_of(anything, st.sampled_from(list(_invocation_task.STATES))),
    "limit": anything, "max_matched": anything, "wait": anything, "wait_timeout": anything, "kill_after": anything,
    "deployment": st.one_of(anything, st.sampled_from(["latest", "keep", "dp_13puM96j0yI6Wh3QjADKUsp"])),
    "from_entry": anything, "concurrency": anything, "batch_calls": anything, "report": anything,
    "journal": anything, "order": anything, "fields": anything, "all_invocations": anything,
    # Never a path that could be created (an audit log is opened before the first request, and a path option turns
    # true or [1] into a file name).
    "audit_log": st.one_of(st.none(), st.just("/nonexistent-restate-admin-test/audit.jsonl")),
    "admin_url": anything, "validate_certs": anything, "ca_path": anything, "client_cert": anything,
    "client_key": anything, "timeout": anything, "retries": anything,
    "max_retries": anything, "kill_older_than": anything,
}


def reaches_elsewhere(value, closed_url) -> bool:
    """Whether admin_url, as Ansible would read it, holds a URL the checks take that is not the closed port."""
    values = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    for url in values:
        try:
            text = check_admin_url(str(url))
        except InputError:
            continue
        if not text.startswith(closed_url):
            return True
    return False


@st.composite
def bad_tasks(draw, name):
    spec = MODULES[name][2]["argument_spec"]
    options = sorted((set(spec) | set(CONNECTION_ARGSPEC)) - {"token", "headers"})
    args = {"restate_invocation_info": {"id": GOOD_ID}, "restate_invocation_recovery": {}}.get(
        name, {"id": GOOD_ID, "state": "purged"})
    for option in draw(st.lists(st.sampled_from(options), min_size=1, max_size=4, unique=True)):
        args[option] = draw(OPTION_VALUES[option])
    secrets, header_secrets = [], []
    token = draw(st.sampled_from(["secret", "anything", None]))
    if token == "secret":
        args["token"] = draw(secret)
        secrets.append(args["token"])
    elif token == "anything":  # a wrong type or value, but no distinctive secret to look for
        # Not a short string: Ansible hides a no_log value wherever it occurs in the result, so a token such as
        # 'r' leaves no message readable (every r becomes ********), whoever writes it.
        long_text = odd_text.filter(lambda text: len(text.strip()) >= 12)
        args["token"] = draw(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                       st.lists(long_text, max_size=2), long_text))  # a list's items are hidden too
    if draw(st.booleans()):
        value = draw(secret)
        name_ = draw(st.sampled_from(["X-Api-Key", "X Key", "Authorization", ""]))
        # A dictionary, or the key=value string Ansible also reads as one.
        args["headers"] = draw(st.sampled_from([{name_: value}, f"{name_}={value}"]))
        header_secrets.append(value)
    return args, secrets, header_secrets


def run_generated(name, host, data, closed_url):
    args, secrets, header_secrets = data
    args.setdefault("admin_url", closed_url)
    args.setdefault("retries", 0)
    assume(not reaches_elsewhere(args["admin_url"], closed_url))
    check_refused(name, host, args, secrets=secrets, header_secrets=header_secrets)


# Derandomized: make test runs the same examples every time (a CI run never fails on a new draw); run with
# --hypothesis-seed=N and a larger max_examples to explore further.
PROPERTY = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


@pytest.mark.parametrize("host", HOSTS)
@PROPERTY
@given(data=bad_tasks("restate_invocation"))
def test_restate_invocation_refuses_generated_input_by_name_without_secrets(host, data, closed_url):
    run_generated("restate_invocation", host, data, closed_url)


@pytest.mark.parametrize("host", HOSTS)
@PROPERTY
@given(data=bad_tasks("restate_invocation_info"))
def test_restate_invocation_info_refuses_generated_input_by_name_without_secrets(host, data, closed_url):
    run_generated("restate_invocation_info", host, data, closed_url)


@pytest.mark.parametrize("host", HOSTS)
@PROPERTY
@given(data=bad_tasks("restate_invocation_recovery"))
def test_restate_invocation_recovery_refuses_generated_input_by_name_without_secrets(host, data, closed_url):
    run_generated("restate_invocation_recovery", host, data, closed_url)


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("admin_url", [None, "127.0.0.1:1"])
def test_headers_given_as_a_key_value_string_stay_hidden_when_another_option_is_refused(host, admin_url):
    # Ansible's own refusal (admin_url: null) and the collection's (no scheme) alike.
    secret_value = "QxZ7k2Vw9Jq4Lm8RtY"
    msg = check_refused("restate_invocation", host, {"id": GOOD_ID, "state": "purged", "admin_url": admin_url,
                                                     "headers": "X-Api-Key=" + secret_value},
                        header_secrets=[secret_value])
    assert "admin_url" in msg


@pytest.mark.parametrize("host", HOSTS)
def test_a_nul_character_is_refused_whoever_refuses_it(closed_url, host):
    # The worker path refuses it by name; ansible-core 2.21's AnsibleModule refuses it first on the module path.
    check_refused("restate_invocation", host, {"id": GOOD_ID, "state": "purged", "admin_url": closed_url,
                                               "filters": "\x00", "retries": 0})
