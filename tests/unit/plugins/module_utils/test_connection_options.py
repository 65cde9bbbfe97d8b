"""The connection options checked before any request: each refusal names the option and never shows a secret."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest

from ansible_collections.restate.admin.plugins.module_utils._connection_options import check_connection
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._restate_module import CONNECTION_ARGSPEC, connection_error

SECRET = "s3cr3t-TOKEN-value"


def defaults(**options):
    params = {name: option.get("default") for name, option in CONNECTION_ARGSPEC.items()}
    params["admin_url"] = list(params["admin_url"])
    params.update(options)
    return params


def refusal(**options) -> str:
    with pytest.raises(InputError) as refused:
        check_connection(defaults(**options))
    return str(refused.value)


def leaked(secret: str, text: str) -> bool:
    """Whether any form of ``secret`` is in ``text``: raw, escaped, percent-encoded, or 8 characters of it in a row."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret), quote(secret, safe="")}
    core = secret.strip()
    forms |= {core[i:i + 8] for i in range(max(0, len(core) - 7))}
    return any(form and form in text for form in forms)


@pytest.mark.parametrize("token, what", [
    ("s3cr3t-TOKEN\nvalue", "a line break"),
    ("s3cr3t-TOKEN\r\nvalue", "a line break"),
    ("s3cr3t-TOKEN\u2028value", "a line break"),
    ("s3cr3t-TOKEN\u2029value", "a line break"),
    ("s3cr3t-TOKEN\x85value", "a line break"),
    ("s3cr3t-TOKEN\x00value", "a control"),
    ("s3cr3t-TOKEN\x1bvalue", "a control"),
    ("s3cr3t-TOKEN\u200bvalue", "a control, format"),
    ("s3cr3t-TOKEN value", "a space"),
    ("s3cr3t-TOKEN\tvalue", "a space"),
    ("s3cr3t-TOKEN\u00e9value", "a non-ASCII character"),
])
def test_a_token_with_a_character_no_header_can_carry_is_refused_without_showing_it(token, what):
    message = refusal(token=token)
    assert message.startswith("token: contains ") and what in message
    assert not leaked(token, message), message


def test_a_token_pasted_with_its_bearer_prefix_is_refused_with_the_fix():
    message = refusal(token="Bearer " + SECRET)
    assert message.startswith("token: starts with 'Bearer '; give the token alone") and not leaked(SECRET, message)


def test_a_very_long_token_is_refused_by_its_length_only():
    token = "s3cr3t" * 5000
    message = refusal(token=token)
    assert message.startswith("token: 30000 characters") and not leaked(token, message)


@pytest.mark.parametrize("pasted", [SECRET + "\n", "\n " + SECRET + " \r\n", "\t" + SECRET + "\u2028", SECRET])
def test_whitespace_around_a_token_is_removed_as_from_a_pasted_one(pasted):
    params = defaults(token=pasted)
    check_connection(params)
    assert params["token"] == SECRET


@pytest.mark.parametrize("blank", ["", " ", "\n"])
def test_an_empty_token_sends_no_token(blank):
    params = defaults(token=blank)
    check_connection(params)
    assert params["token"] is None


@pytest.mark.parametrize("url, expected", [
    ("127.0.0.1:9070", "admin_url: '127.0.0.1:9070' has no scheme; add http:// (or https:// for TLS), "
                       "e.g. http://127.0.0.1:9070"),
    ("localhost", "has no scheme; add http://"),
    ("ftp://restate.example.com:9070", "uses ftp://; the Admin API speaks http:// or https://"),
    ("", "admin_url: empty; give the Admin API's URL, e.g. http://localhost:9070, or leave admin_url"),
    ("   ", "admin_url: empty"),
    ("http://", "has no host"),
    ("http://:9070", "has no host"),
    ("http://localhost:99999", "has no valid port"),
    ("http://localhost:0", "has no valid port"),
    ("http://localhost:port", "has no valid port"),
    ("http://localhost:9070/query", "ends in an Admin API route (/query); give the base URL, e.g. "
                                    "http://localhost:9070"),
    ("http://localhost:9070/restate/invocations", "ends in an Admin API route"),
    ("http://localhost:9070/?x=1", "has a query"),
    ("http://localhost:9070#top", "or fragment"),
    ("http://local host:9070", "contains a space"),
    ("http://localhost:9070\n", None),  # surrounding whitespace is removed: accepted
    ("http://rest\u00e4te.example.com", "contains a non-ASCII character"),
])
def test_admin_url_must_be_an_http_or_https_base_url(url, expected):
    if expected is None:
        params = defaults(admin_url=[url])
        check_connection(params)
        assert params["admin_url"] == [url.strip()]
        return
    message = refusal(admin_url=[url])
    assert message.startswith("admin_url: ") and expected in message


def test_admin_url_refuses_credentials_without_showing_them():
    message = refusal(admin_url=["https://user:" + SECRET + "@restate.example.com"])
    assert "user name or password" in message and not leaked(SECRET, message)


@pytest.mark.parametrize("urls", [[], None])
def test_no_admin_url_at_all_is_refused(urls):
    assert refusal(admin_url=urls).startswith("admin_url: empty")


def test_admin_url_keeps_a_proxy_path_and_normalizes_case_and_whitespace():
    params = defaults(admin_url=[" HTTPS://proxy.example.com/restate-admin/ ", "http://[::1]:9070"])
    check_connection(params)
    assert params["admin_url"] == ["https://proxy.example.com/restate-admin/", "http://[::1]:9070"]


def test_a_missing_ca_file_is_named():
    assert refusal(ca_path="/nonexistent.pem") == (
        "ca_path: /nonexistent.pem does not exist; give a PEM file or a directory of hashed certificates readable "
        "by the user the task runs as (the module runs where the task runs: the controller with connection local)")


def test_ca_path_must_hold_a_certificate(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    assert "holds no PEM certificate" in refusal(ca_path=str(not_pem))
    params = defaults(ca_path=str(tmp_path))  # a directory of hashed certificates is what requests also takes
    check_connection(params)


@pytest.mark.parametrize("option", ["client_cert", "client_key"])
def test_client_certificate_files_must_exist_and_be_files(option, tmp_path):
    assert refusal(**{option: str(tmp_path / "missing.pem")}).startswith(f"{option}: ")
    assert "is a directory" in refusal(**{option: str(tmp_path)})
    assert refusal(**{option: ""}).startswith(f"{option}: empty")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_named(tmp_path):
    locked = tmp_path / "key.pem"
    locked.write_text("x")
    locked.chmod(0)
    assert "cannot be read by this user" in refusal(client_cert=str(locked))


@pytest.mark.parametrize("options, expected", [
    ({"timeout": -1}, "timeout: must be from 0 to 86400 (0 waits forever), got -1"),
    ({"timeout": float("nan")}, "timeout: expected a number from 0 to 86400"),
    ({"timeout": float("inf")}, "timeout: expected a number"),
    ({"timeout": 1e9}, "timeout: must be from 0 to 86400"),
    ({"retries": -1}, "retries: must be from 0 to 10, got -1"),
    ({"retries": 1000}, "retries: must be from 0 to 10, got 1000"),
    ({"retries": 10 ** 400}, "retries: must be from 0 to 10, got 100000000000..."),
    ({"timeout": -10 ** 400}, "timeout: must be from 0 to 86400 (0 waits forever), got -10000000000..."),
])
def test_timeout_and_retries_ranges(options, expected):
    assert refusal(**options) == expected or refusal(**options).startswith(expected)


@pytest.mark.parametrize("value, what", [
    ("Bearer abc\ndef", "a line break"),
    ("abc\r\nX-Injected: 1", "a line break"),
    ("abc\u2028def", "a line break"),
    ("abc\x00def", "a control"),
    ("abc\u00ffdef", "a non-ASCII"),
])
def test_a_header_value_no_header_can_carry_is_refused_naming_the_header_not_the_value(value, what):
    secret = value.replace("abc", SECRET)
    message = refusal(headers={"X-Api-Key": secret})
    assert message.startswith("headers.X-Api-Key: contains ") and what in message
    assert not leaked(secret, message), message


def test_header_values_are_strings_without_surrounding_whitespace():
    params = defaults(headers={"X-Api-Key": f" {SECRET}\n", "X-Count": 31415926, "X-Spaced": "a b c d e"})
    check_connection(params)
    assert params["headers"] == {"X-Api-Key": SECRET, "X-Count": "31415926", "X-Spaced": "a b c d e"}


@pytest.mark.parametrize("headers, expected", [
    ({"X Api Key": "v"}, "headers: a header name starting 'X' contains a space or tab"),
    ({"Authorization: Bearer " + SECRET: ""}, "headers: a header name starting 'Authorization' contains"),
    ({"": "v"}, "headers: a header name is empty"),
    ({"X-Flag": True}, "headers.X-Flag: YAML read the value as a boolean; quote it"),
    ({"X-Empty": None}, "headers.X-Empty: expected a string value, got nothing"),
    ({"X-Nested": {"a": "b"}}, "headers.X-Nested: expected a string value, got a dict"),
    ({"Host": "other"}, "headers.Host: set by the collection for every request; remove it"),
])
def test_header_names_must_be_http_tokens_and_values_strings(headers, expected):
    message = refusal(headers=headers)
    assert message.startswith(expected), message
    assert not leaked(SECRET, message)


def test_a_token_and_an_authorization_header_are_not_both_given():
    message = refusal(token=SECRET, headers={"authorization": "Bearer other-secret-value"})
    assert message.startswith("headers.authorization: token sets this header too")
    assert not leaked(SECRET, message) and not leaked("other-secret-value", message)


def test_connection_error_reports_the_refusal_and_none_for_good_options():
    assert connection_error(defaults(admin_url=["127.0.0.1:9070"])).startswith("admin_url: '127.0.0.1:9070'")
    assert connection_error(defaults(token=SECRET + "\n", headers={"X-Api-Key": "k3y-value"})) is None


def test_header_values_and_the_token_are_no_log():
    assert CONNECTION_ARGSPEC["token"]["no_log"] and CONNECTION_ARGSPEC["headers"]["no_log"]


@pytest.mark.parametrize("given", [{"token": "abc"}, {"token": " 1234567 "}, {"headers": {"X-Api-Key": "k"}},
                                   {"headers": {"X-Api-Key": "seven77"}}])
def test_a_secret_shorter_than_8_characters_is_refused_saying_why(given):
    message = refusal(**given)
    option = "token" if "token" in given else "headers.X-Api-Key"
    assert message.startswith(f"{option}: shorter than 8 characters") and "hides" in message
    assert "abc" not in message and "1234567" not in message and "seven77" not in message


def test_a_secret_of_8_characters_is_taken():
    params = defaults(token="12345678", headers={"X-Api-Key": "abcdefgh"})
    check_connection(params)
    assert params["token"] == "12345678"
