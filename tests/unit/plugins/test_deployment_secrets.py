"""restate_deployment's secrets on both hosts (module process and worker): additional_headers read as headers are,
given as a dictionary or a string; credentials in uri refused; metadata values that cannot be sent refused."""

from __future__ import annotations

import json

import pytest
from test_bad_input import HOSTS, check_refused, closed_url, no_back_off  # noqa: F401  # pylint: disable=unused-import  # fixtures

SECRET = "QxZ7k2Vw9Jq4Lm8RtY"


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("given", [f"Authorization=Bearer_{SECRET}", json.dumps({"Authorization": f"Bearer {SECRET}"}),
                                   {"Authorization": f"Bearer {SECRET}"}])
def test_additional_headers_as_a_string_or_a_dict_stay_hidden_when_the_task_is_refused(host, given, closed_url):
    msg = check_refused("restate_deployment", host, {"uri": "ftp://checkout:9080", "additional_headers": given,
                                                     "admin_url": closed_url}, header_secrets=[SECRET])
    assert msg.startswith("uri:")


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("given, refusal", [
    ({"X-Key": SECRET + "\nX-Other: 1"}, "additional_headers.X-Key: contains a line break"),
    ({"X Key": SECRET}, "additional_headers: a header name starting 'X' contains a space"),
    ({"X-Key": "Zq7"}, "additional_headers.X-Key: shorter than 8 characters"),
    ({"X-Key": {"nested": SECRET}}, "additional_headers.X-Key: expected a string value, got a dict"),
    (f"X-Key={SECRET},Host=evil.example", "additional_headers.Host: set by the collection"),
])
def test_additional_headers_are_checked_as_headers_are(host, given, refusal, closed_url):
    msg = check_refused("restate_deployment", host, {"uri": "http://checkout:9080", "additional_headers": given,
                                                     "admin_url": closed_url}, header_secrets=[SECRET])
    assert msg.startswith(refusal), msg


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("uri", [f"http://deployer:{SECRET}@checkout:9080", f"https://{SECRET}@checkout:9080/x"])
def test_credentials_in_the_uri_are_refused_with_the_remedy_without_showing_them(host, uri, closed_url):
    msg = check_refused("restate_deployment", host, {"uri": uri, "admin_url": closed_url})
    assert msg.startswith("uri: user name or password in the URL are not supported") and "additional_headers" in msg
    assert SECRET not in msg


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("metadata, refusal", [
    ({"team": {"name": "payments"}}, "metadata.team: expected a string, got a dict"),
    ({"team": ["a", "b"]}, "metadata.team: expected a string, got a list"),
    ({"team": "pay\nments"}, "metadata.team: holds a line break"),
])
def test_metadata_that_cannot_be_sent_as_is_is_refused(host, metadata, refusal, closed_url):
    msg = check_refused("restate_deployment", host, {"uri": "http://checkout:9080", "metadata": metadata,
                                                     "admin_url": closed_url})
    assert msg.startswith(refusal), msg
