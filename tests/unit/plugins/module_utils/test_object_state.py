"""restate_object_state(_info): the decisions (encoding, comparison by value, version, diff) and run() against a small
fake of the state area. tests/integration/test_object_state.py runs the same against a real server."""

from __future__ import annotations

import pytest
from fake_task import FakeTask, run_task

from ansible_collections.restate.admin.plugins.module_utils import _object_state_info_task, _object_state_task
from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._state_api import (
    changed_keys,
    decode_value,
    diff_text,
    encode_value,
    merged_state,
    same_value,
    shown,
    version_of,
    wanted_state,
)
from ansible_collections.restate.admin.plugins.module_utils._transport import RestateApiError


# -- decisions --------------------------------------------------------------------------------------------------------

def test_version_is_the_servers_digest_of_the_sorted_entries():
    # Computed by a real 1.7.12 server's check: a change carrying this version of {stock: 5} was applied, another not.
    assert version_of({}) == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    assert version_of({"b": b"2", "a": b"1"}) == version_of({"a": b"1", "b": b"2"})
    assert version_of({"a": b"1"}) != version_of({"a": b"1 "})
    assert version_of({"ab": b""}) != version_of({"a": b"b"})  # the separators keep key and value apart


@pytest.mark.parametrize("value, encoding, stored", [
    ({"sku": "A-1", "count": 2}, "json", b'{"sku":"A-1","count":2}'),
    ("lots", "json", b'"lots"'),
    (5, "json", b"5"),
    (None, "json", b"null"),
    ("grün", "json", '"grün"'.encode()),
    ("plain text", "text", b"plain text"),
    ("/wBh", "base64", b"\xff\x00a"),
    ("/w Bh\n", "base64", b"\xff\x00a"),
])
def test_values_are_encoded_as_stored(value, encoding, stored):
    assert encode_value(value, encoding, "state.x") == stored


@pytest.mark.parametrize("value, encoding, words", [
    (5, "text", "state.x: with encoding=text a value is a string, got int"),
    ("not base64!", "base64", "state.x: not base64"),
    (float("nan"), "json", "state.x: cannot be written as JSON"),
])
def test_bad_values_are_refused_naming_the_state_key(value, encoding, words):
    with pytest.raises(InputError, match=words):
        encode_value(value, encoding, "state.x")


def test_the_state_option_is_a_mapping_or_absent():
    assert wanted_state("absent", "json") == {} and wanted_state({}, "json") == {}
    with pytest.raises(InputError, match="state: give a mapping"):
        wanted_state(["a"], "json")
    with pytest.raises(InputError, match="state: a state key is a non-empty string"):
        wanted_state({"": 1}, "json")


def test_json_compares_by_value_and_keeps_the_stored_spelling():
    assert same_value(b'{ "b": 1, "a": [1, 2] }', b'{"a":[1,2],"b":1}', "json")
    assert not same_value(b"1", b"true", "json") and not same_value(b"1", b"1.0", "json")
    assert not same_value(b'"1"', b"1", "json")
    assert not same_value(b"\xff", b'"x"', "json")
    assert not same_value(b'{"a": 1}', b'{"a":1}', "text")
    current = {"cart": b'{ "a": 1 }', "gone": b"1"}
    after = merged_state(current, {"cart": b'{"a":1}', "new": b"2"}, "json")
    assert after == {"cart": b'{ "a": 1 }', "new": b"2"}
    assert changed_keys(current, after) == {"added": ["new"], "changed": [], "removed": ["gone"]}


def test_values_are_decoded_or_refused_naming_the_key():
    assert decode_value(b'{"a":1}', "json", "state.k") == {"a": 1}
    assert decode_value(b"\xff\x00a", "base64", "state.k") == "/wBh"
    with pytest.raises(InputError, match="state.k: the stored value is not UTF-8; read it with encoding=base64"):
        decode_value(b"\xff", "text", "state.k")
    with pytest.raises(InputError, match="state.k: the stored value is not JSON"):
        decode_value(b"lots", "json", "state.k")


def test_the_diff_shows_values_as_stored_or_only_their_size():
    assert diff_text({"b": b'"x"', "a": b"\xff\x00a"}) == 'a: base64:/wBh\nb: "x"\n'
    hidden = diff_text({"secret": b"hunter2"}, show_values=False)
    assert "hunter2" not in hidden and hidden.startswith("secret: (7 bytes, sha256 ")
    long = shown(b"x" * 5000)
    assert long.startswith("x" * 1000 + "... (5000 bytes, sha256 ") and len(long) < 1100


# -- run() against a fake -------------------------------------------------------------------------------------------

class FakeState:
    """The state area as the real 1.7.12 server behaves: a change is applied (or dropped on a version mismatch) when
    the key is free, and waits while an invocation holds it. ``meanwhile`` changes the state between read and apply."""

    def __init__(self, services=None):
        self.objects = {}
        self.held = {}
        self.queued = []
        self.sent = []
        self.meanwhile = None

    def read(self, service, key):
        return dict(self.objects.get((service, key), {}))

    def holder(self, service, key):
        return self.held.get((service, key))

    def keys(self, service, after=None, limit=1000):
        found = sorted(k for (s, k) in self.objects if s == service and self.objects[(s, k)]
                       and (after is None or k > after))
        return [{"key": k, "entries": len(self.objects[(service, k)]),
                 "bytes": sum(map(len, self.objects[(service, k)].values()))} for k in found[:limit]]

    def replace(self, service, key, state, version=None):
        self.sent.append((service, key, dict(state), version))
        if sum(map(len, state.values())) > 400_000:  # the 2 MiB of JSON a 1.7.12 server takes
            raise RestateApiError("POST", f"/services/{service}/state", status=413, message="length limit exceeded")
        if self.meanwhile is not None:
            self.objects[(service, key)] = self.meanwhile
        if (service, key) in self.held:
            self.queued.append((service, key, state, version))
        elif version is None or version == version_of(self.read(service, key)):
            self.objects[(service, key)] = dict(state)


class FakeServices:
    KINDS = {"Keeper": "VirtualObject", "Flow": "Workflow", "Tester": "Service"}

    def get(self, name):
        return {"name": name, "ty": self.KINDS[name]} if name in self.KINDS else None


class FakeClient:
    def __init__(self):
        self.state = FakeState()
        self.services = FakeServices()


def run(client, code=_object_state_task, **options) -> dict:
    return run_task(FakeTask(code, client, **options))


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(_object_state_task, "HELD_WAIT", 0.0)
    monkeypatch.setattr(_object_state_task, "APPLY_WAIT", 0.0)
    return FakeClient()


def test_set_then_a_second_run_changes_nothing(client):
    done = run(client, service="Keeper", key="k", state={"stock": 5, "name": "x"}, diff=True)
    assert done["changed"] and done["applied"] and done["changes"]["added"] == ["name", "stock"]
    assert client.state.read("Keeper", "k") == {"stock": b"5", "name": b'"x"'}
    assert done["diff"]["before"] == "" and done["diff"]["after"] == 'name: "x"\nstock: 5\n'
    assert done["version"] == version_of(client.state.read("Keeper", "k"))
    assert client.state.sent[0][3] == version_of({})  # sent with the version it read
    again = run(client, service="Keeper", key="k", state={"name": "x", "stock": 5})
    assert not again["changed"] and again["applied"] and len(client.state.sent) == 1


def test_check_mode_predicts_and_sends_nothing(client):
    client.state.objects[("Keeper", "k")] = {"stock": b"5"}
    planned = run(client, service="Keeper", key="k", state="absent", check_mode=True, diff=True)
    assert planned["changed"] and not planned["applied"] and planned["changes"]["removed"] == ["stock"]
    assert planned["diff"] == {"before": "stock: 5\n", "after": "", "before_header": "state of Keeper/k",
                               "after_header": "state of Keeper/k"}
    assert client.state.sent == [] and client.state.read("Keeper", "k") == {"stock": b"5"}


def test_a_change_made_meanwhile_is_not_overwritten_and_fails_the_task(client):
    client.state.objects[("Keeper", "k")] = {"stock": b"5"}
    client.state.meanwhile = {"stock": b"6"}
    failed = run(client, service="Keeper", key="k", state={"stock": 7})
    assert failed["failed"] and "changed while this task ran" in failed["msg"]
    assert client.state.read("Keeper", "k") == {"stock": b"6"}


def test_a_stale_version_is_refused_before_anything_is_sent(client):
    client.state.objects[("Keeper", "k")] = {"stock": b"5"}
    failed = run(client, service="Keeper", key="k", state={"stock": 7}, version=version_of({"stock": b"4"}))
    assert failed["failed"] and failed["msg"].startswith("version: the state of Keeper/k is at version ")
    assert client.state.sent == []
    assert run(client, service="Keeper", key="k", state={"stock": 7},
               version=version_of({"stock": b"5"}))["applied"]


def test_a_held_key_is_refused_naming_the_invocation_unless_queued(client):
    client.state.held[("Keeper", "k")] = "inv_1held"
    refused = run(client, service="Keeper", key="k", state={"stock": 1})
    assert refused["failed"] and refused["msg"].startswith("queue: invocation inv_1held holds Keeper/k")
    assert client.state.sent == []
    queued = run(client, service="Keeper", key="k", state={"stock": 1}, queue=True)
    assert queued["changed"] and not queued["applied"] and queued["held_by"] == "inv_1held"
    assert "waits behind invocation inv_1held" in queued["warnings"][0]
    assert len(client.state.queued) == 1


def test_a_state_too_large_for_the_server_fails_naming_state(client):
    failed = run(client, service="Keeper", key="k", encoding="text", state={"big": "x" * 500_000})
    assert failed["failed"] and failed["msg"].startswith("state: the new state of Keeper/k, 500000 bytes, is more")
    assert client.state.read("Keeper", "k") == {}


@pytest.mark.parametrize("service, words", [
    ("Tester", "service: 'Tester' is a Service; only Virtual Objects and Workflows have state"),
    ("Nope", "service: the server has no service 'Nope'"),
    (" ", "service: give the Virtual Object's"),
])
def test_a_service_without_state_is_refused_naming_it(client, service, words):
    failed = run(client, service=service, key="k", state={"a": 1})
    assert failed["failed"] and failed["msg"].startswith(words), failed["msg"]
    assert client.state.sent == []


def test_a_workflow_has_state_too_and_values_can_be_hidden(client):
    done = run(client, service="Flow", key="w", state={"token": "hunter2"}, encoding="text", show_values=False,
               diff=True)
    done.pop("invocation")  # the task's options, as every module returns them: no_log on the task hides those
    assert done["changed"] and "hunter2" not in str(done)
    assert done["sizes"] == {"token": 7}


def test_info_reads_a_key_and_pages_keys(client):
    client.state.objects[("Keeper", "a")] = {"stock": b"5", "blob": b"\xff"}
    client.state.objects[("Keeper", "b")] = {"stock": b"1"}
    one = run(client, _object_state_info_task, service="Keeper", key="a", encoding="base64")
    assert one["state"] == {"stock": "NQ==", "blob": "/w=="} and one["count"] == 2 and one["held_by"] is None
    assert one["version"] == version_of(client.state.objects[("Keeper", "a")])
    refused = run(client, _object_state_info_task, service="Keeper", key="a")
    assert refused["failed"] and "state.blob: the stored value is not UTF-8" in refused["msg"]
    page = run(client, _object_state_info_task, service="Keeper", limit=1)
    assert page["objects"] == [{"key": "a", "entries": 2, "bytes": 2}] and page["next_after"] == "a"
    rest = run(client, _object_state_info_task, service="Keeper", limit=1, after="a")
    assert [k["key"] for k in rest["objects"]] == ["b"]
    last = run(client, _object_state_info_task, service="Keeper", limit=5, after="b")
    assert last["objects"] == [] and last["next_after"] is None
    assert run(client, _object_state_info_task, service="Keeper", limit=0)["msg"].startswith("limit: from 1")
