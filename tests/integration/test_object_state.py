"""restate_object_state and restate_object_state_info against a real server, with the SDK test service's Keeper
object reading its state back: set, re-run unchanged, check mode, a concurrent change refused, clear, non-UTF-8 and
large values, bad input, and the recipe of docs/object-state.md (a stuck object fixed, a new invocation sees it)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from harness.playbook import BIN
from harness.server import wait_until

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError
from ansible_collections.restate.admin.plugins.module_utils._object_state_task import settle
from ansible_collections.restate.admin.plugins.module_utils._state_api import version_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "object-state.md"
STATE = "restate.admin.restate_object_state"
INFO = "restate.admin.restate_object_state_info"
INVOCATION = "restate.admin.restate_invocation"


def new_key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def handler_sees(restate, key) -> dict:
    """The key's state as Keeper/read, a handler, reads it: {state key: bytes}."""
    response = restate.http.post(f"{restate.ingress_url}/Keeper/{key}/read", timeout=30)
    assert response.status_code == 200, response.text
    return {name: base64.b64decode(value) for name, value in response.json().items()}


def test_set_rerun_unchanged_check_mode_and_clear(ansible, restate):
    key = new_key()
    wanted = {"service": "Keeper", "key": key, "state": {"stock": 5, "cart": {"sku": "A-1", "count": 2}}}
    planned = ansible.run(STATE, wanted, check=True, diff=True)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] and not planned["applied"] and planned["changes"]["added"] == ["cart", "stock"]
    assert planned["diff"]["after"] == 'cart: {"sku":"A-1","count":2}\nstock: 5\n'
    assert handler_sees(restate, key) == {}  # check mode sent nothing

    done = ansible.run(STATE, wanted, diff=True)
    assert done["changed"] and done["applied"] and done["state"] == wanted["state"]
    assert handler_sees(restate, key) == {"stock": b"5", "cart": b'{"sku":"A-1","count":2}'}
    assert done["version"] == version_of(handler_sees(restate, key))

    for check in (True, False):
        again = ansible.run(STATE, wanted, check=check, diff=True)
        assert not again["changed"] and again["diff"]["before"] == again["diff"]["after"], again

    info = ansible.run(INFO, {"service": "Keeper", "key": key})
    assert info["state"] == wanted["state"] and info["version"] == done["version"] and info["held_by"] is None

    cleared = ansible.run(STATE, {"service": "Keeper", "key": key, "state": "absent"}, diff=True)
    assert cleared["changed"] and cleared["changes"]["removed"] == ["cart", "stock"] and cleared["diff"]["after"] == ""
    assert handler_sees(restate, key) == {}
    assert not ansible.run(STATE, {"service": "Keeper", "key": key, "state": {}})["changed"]


def test_a_state_stored_in_another_json_spelling_is_the_same_value(ansible, restate, client):
    key = new_key()
    client.state.replace("Keeper", key, {"cart": b'{ "count": 2, "sku": "A-1" }'}, version_of({}))
    time.sleep(0.2)
    same = ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"cart": {"sku": "A-1", "count": 2}}})
    assert not same["changed"], same
    assert handler_sees(restate, key) == {"cart": b'{ "count": 2, "sku": "A-1" }'}


def test_values_that_are_not_utf8_as_bytes(ansible, restate):
    key = new_key()
    done = ansible.run(STATE, {"service": "Keeper", "key": key, "encoding": "base64",
                               "state": {"blob": "/wBh", "text": base64.b64encode(b"ok").decode()}}, diff=True)
    assert done["changed"] and "blob: base64:/wBh\n" in done["diff"]["after"]
    assert handler_sees(restate, key) == {"blob": b"\xff\x00a", "text": b"ok"}
    read = ansible.run(INFO, {"service": "Keeper", "key": key, "encoding": "base64"})
    assert read["state"] == {"blob": "/wBh", "text": "b2s="} and read["sizes"] == {"blob": 3, "text": 2}
    as_json = ansible.run(INFO, {"service": "Keeper", "key": key})
    assert as_json["failed"] and "state.blob: the stored value is not UTF-8" in as_json["msg"]


def test_large_state_is_set_and_a_too_large_one_refused(ansible, restate):
    key = new_key()
    value = "x" * 300_000
    done = ansible.run(STATE, {"service": "Keeper", "key": key, "encoding": "text", "state": {"big": value}},
                       diff=True)
    assert done["changed"] and done["sizes"] == {"big": 300_000}
    assert "... (300000 bytes, sha256 " in done["diff"]["after"]
    assert handler_sees(restate, key) == {"big": value.encode()}
    assert not ansible.run(STATE, {"service": "Keeper", "key": key, "encoding": "text", "state": {"big": value}})[
        "changed"]
    refused = ansible.run(STATE, {"service": "Keeper", "key": key, "encoding": "text", "state": {"big": "y" * 600_000}})
    assert refused["failed"] and refused["msg"].startswith("state: the new state of Keeper/") and "413" in refused["msg"]
    assert handler_sees(restate, key) == {"big": value.encode()}


def test_a_concurrent_change_is_refused_not_overwritten(ansible, restate, client):
    key = new_key()
    assert ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": 5}})["changed"]
    inspected = ansible.run(INFO, {"service": "Keeper", "key": key})
    client.state.replace("Keeper", key, {"stock": b"6"})  # someone else, after the inspection
    time.sleep(0.2)
    stale = ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": 7},
                                "version": inspected["version"]})
    assert stale["failed"] and stale["msg"].startswith(f"version: the state of Keeper/{key} is at version ")
    assert handler_sees(restate, key) == {"stock": b"6"}

    # A change made between the module's read and the server applying its change: the server drops the module's
    # (its version no longer matches) and the read-back says so.
    before = client.state.read("Keeper", key)
    client.state.replace("Keeper", key, {"stock": b"8"})
    client.state.replace("Keeper", key, {"stock": b"9"}, version_of(before))
    with pytest.raises(InputError, match="changed while this task ran"):
        settle(client, "Keeper", key, before, {"stock": b"9"}, 5.0)
    assert handler_sees(restate, key) == {"stock": b"8"}


@pytest.mark.parametrize("args, words", [
    ({"service": "Tester"}, "service: 'Tester' is a Service; only Virtual Objects and Workflows have state"),
    ({"service": "NoSuchService"}, "service: the server has no service 'NoSuchService'"),
    ({"state": ["stock", 1]}, "state: give a mapping of state key to value"),
    ({"encoding": "text", "state": {"stock": 1}}, "state.stock: with encoding=text a value is a string"),
    ({"encoding": "base64", "state": {"stock": "*"}}, "state.stock: not base64"),
    ({"encoding": "utf16"}, "value of encoding must be one of"),
])
def test_bad_input_is_refused_naming_the_option(ansible, restate, args, words):
    key = new_key()
    refused = ansible.run(STATE, dict({"service": "Keeper", "key": key, "state": {"stock": 1}}, **args))
    assert refused["failed"] and words in refused["msg"], refused["msg"]
    assert handler_sees(restate, key) == {}


def test_info_pages_the_keys_with_their_sizes(ansible, client):
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    for n in range(3):
        client.state.replace("Flow", f"{prefix}-{n}", {"a": b"1" * (n + 1), "b": b"2"}, version_of({}))
    time.sleep(0.3)
    seen, after = [], f"{prefix}-"
    while True:
        page = ansible.run(INFO, {"service": "Flow", "limit": 2, "after": after})
        assert not page["failed"], page["msg"]
        seen += [k for k in page["objects"] if k["key"].startswith(prefix)]
        if page["next_after"] is None or not page["next_after"].startswith(prefix):
            break
        after = page["next_after"]
    assert seen == [{"key": f"{prefix}-{n}", "entries": 2, "bytes": n + 2} for n in range(3)]


def test_recipe_a_stuck_object_fixed_and_a_new_invocation_sees_it(ansible, restate):
    """docs/object-state.md: take is stuck (paused) on a stock that is not a number; the fix waits behind it, the
    stuck invocation is killed, the fix applies, and a new take sees the new stock."""
    key = new_key()
    assert ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": "lots"}})["changed"]
    stuck = restate.send(f"Keeper/{key}/take", 2)
    restate.wait_statuses([stuck], "paused")

    inspected = ansible.run(INFO, {"service": "Keeper", "key": key})
    assert inspected["state"] == {"stock": "lots"} and inspected["held_by"] == stuck

    refused = ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": 10}})
    assert refused["failed"] and refused["msg"].startswith(f"queue: invocation {stuck} holds Keeper/{key}")
    fixed = ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": 10}, "queue": True,
                                "version": inspected["version"]})
    assert fixed["changed"] and not fixed["applied"] and fixed["held_by"] == stuck
    assert any(stuck in warning for warning in fixed["warnings"])
    assert handler_sees(restate, key) == {"stock": b'"lots"'}  # waits behind the stuck invocation

    killed = ansible.run(INVOCATION, {"id": stuck, "state": "killed"})
    assert not killed["failed"], killed["msg"]
    wait_until(lambda: handler_sees(restate, key) == {"stock": b"10"}, timeout=10, what="the fix applied")
    after = ansible.run(INFO, {"service": "Keeper", "key": key})
    assert after["state"] == {"stock": 10} and after["held_by"] is None

    taken = restate.http.post(f"{restate.ingress_url}/Keeper/{key}/take", data=json.dumps(2),
                              headers={"content-type": "application/json"}, timeout=30)
    assert taken.status_code == 200 and taken.json() == 8, taken.text
    assert not ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": 8}})["changed"]


def docs_recipe() -> list:
    """The tasks of the recipe's YAML block in docs/object-state.md, as written there."""
    text = DOCS.read_text().split("## Recipe", 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))


def test_the_docs_recipe_runs_as_written(ansible, restate):
    """The recipe's playbook, word for word, on a stuck object: afterwards a new take sees the fixed stock."""
    key = new_key()
    assert ansible.run(STATE, {"service": "Keeper", "key": key, "state": {"stock": "lots"}})["changed"]
    stuck = restate.send(f"Keeper/{key}/take", 2)
    restate.wait_statuses([stuck], "paused")

    workdir = Path(tempfile.mkdtemp(dir=ansible.workdir, prefix="recipe-"))
    results = workdir / "results.json"
    tasks = docs_recipe() + [{"ansible.builtin.copy": {
        "content": "{{ {'inspected': inspected, 'fixed': fixed} | to_json }}", "dest": str(results)}}]
    playbook = workdir / "recipe.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                         "vars": {"object_key": key}, "tasks": tasks}], sort_keys=False))
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], capture_output=True,
                          text=True, env=ansible.env(), timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    found = json.loads(results.read_text())
    assert found["inspected"]["state"] == {"stock": "lots"} and found["inspected"]["held_by"] == stuck
    assert found["fixed"]["state"] == {"stock": 10} and found["fixed"]["held_by"] is None
    assert restate.statuses([stuck]) == {stuck: "completed-failure"}  # killed

    taken = restate.http.post(f"{restate.ingress_url}/Keeper/{key}/take", data=json.dumps(2),
                              headers={"content-type": "application/json"}, timeout=30)
    assert taken.status_code == 200 and taken.json() == 8, taken.text
