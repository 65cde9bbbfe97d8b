"""Where the modules' code runs: in Ansible's worker process on the local connection, else as a module.

Both ways must give the same result for the same task; only the way there differs.
"""

from __future__ import annotations

import json

from ansible import constants as C
from harness.playbook import BIN
from test_invocation import MODULE, UNKNOWN_ID

INFO = "restate.admin.restate_invocation_info"
TOKEN = "tok-3f9a1c-not-a-real-secret"
# Any task environment makes the action plugin hand the task to the module, which runs in a process of its own.
AS_MODULE = {"environment": {"RESTATE_CONTROLLER_RUN_TEST": "1"}}


def comparable(result: dict) -> dict:
    """A result without what differs between two runs of the same task by nature."""
    return {key: value for key, value in result.items() if key not in ("_ansible_no_log",)}


def test_the_local_connection_runs_the_code_in_the_worker_and_an_environment_runs_the_module(restate, ansible):
    ids = restate.make("completed-success", 2)
    results = ansible.run_tasks([{MODULE: {"id": ids[0], "state": "purged"}},
                                 dict(AS_MODULE, **{MODULE: {"id": ids[1], "state": "purged"}})],
                                extra_args=("-vvv",))
    assert all(r["changed"] and not r["failed"] for r in results), results
    # -vvv shows every command the local connection runs: the module's file once, for the second task only.
    assert ansible.last_output.count("AnsiballZ_restate_invocation.py") >= 1
    first_task, second_task = ansible.last_output.split("TASK [task 1]")
    assert "AnsiballZ_restate_invocation" not in first_task
    assert "AnsiballZ_restate_invocation" in second_task
    assert restate.row(ids[0]) is None and restate.row(ids[1]) is None


def test_both_ways_give_the_same_result(restate, ansible):
    completed, running = restate.make("completed-success")[0], restate.make("running")[0]
    tasks = [
        # check mode, diff, a failure among changes, an unknown id, a secret
        {MODULE: {"ids": [completed, running, UNKNOWN_ID], "state": "purged", "token": TOKEN},
         "check_mode": True, "diff": True, "vars": {"ansible_inject_invocation": True}},  # (2.21+: off by default)
        {MODULE: {"ids": [completed, running], "state": "purged", "report": "failed"}, "check_mode": True},
        {MODULE: {"filters": {"status": ["sleeping"]}, "state": "killed"}},  # refused by the filters check
        {MODULE: {"id": completed, "state": "gone"}},  # refused by the argument spec
        {MODULE: {"id": completed, "state": "purged", "wait_time": 3}},  # an option the module does not have
        {MODULE: {"id": completed, "state": "purged", "timeout": -1}},  # refused by the connection check
        {INFO: {"id": completed, "journal": True, "fields": ["id", "status", "target"]}},
        {INFO: {"id": completed, "admin_url": "http://127.0.0.1:9"}},  # nothing listens there
    ]
    in_worker = ansible.run_tasks(tasks, extra_args=("-vvv",))  # -vvv prints each result with its module_args
    worker_output = ansible.last_output
    as_module = ansible.run_tasks([dict(task, **AS_MODULE) for task in tasks])
    for task, worker_result, module_result in zip(tasks, in_worker, as_module):
        assert comparable(worker_result) == comparable(module_result), task
    purge, failed_only, bad_filter, bad_state, unknown_option, bad_timeout, info, unreachable = in_worker
    assert purge["failed"] and purge["summary"] == {"matched": 3, "changed": 1, "unchanged": 1, "failed": 1,
                                                    "missing": 1, "pending": 0, "done": 1, "already": 1, "left": 0,
                                                    "check_mode": True, "changed_by_service": {"Tester": 1}}
    assert purge["diff"]["before"] == f"{completed}: completed\n"
    assert TOKEN not in json.dumps(in_worker) and TOKEN not in worker_output
    assert '"token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in worker_output
    if "INJECT_INVOCATION" in C.config.get_configuration_definitions():  # 2.21+: only where a task asks for it
        assert "invocation" in purge and not any("invocation" in result for result in in_worker[1:] + as_module[1:])
    assert "is unsupported in variable storage" not in worker_output  # 2.21 on a result that is not plain dicts
    assert [item["id"] for item in failed_only["invocations"]] == [running]
    assert "filters.status" in bad_filter["msg"] or "sleeping" in bad_filter["msg"]
    assert "value of state must be one of" in bad_state["msg"]
    assert unknown_option["msg"].startswith(f"Unsupported parameters for ({MODULE}) module: wait_time")
    assert bad_timeout["msg"] == "timeout: must be from 0 to 86400 (0 waits forever), got -1"
    assert info["invocations"][0]["status"] == "completed" and info["count"] == 1
    assert unreachable["failed"] and "127.0.0.1:9" in unreachable["msg"]
    assert restate.row(completed) is not None  # check mode changed nothing


def test_report_failed_lists_only_the_failures_and_counts_everything(restate, ansible):
    completed, running = restate.make("completed-success", 2), restate.make("running")[0]
    failing = ansible.run(MODULE, {"ids": completed + [running], "state": "purged", "report": "failed"})
    assert failing["failed"] and failing["summary"]["changed"] == 2 and failing["summary"]["failed"] == 1
    assert [item["id"] for item in failing["invocations"]] == [running]
    assert running in failing["invocations"][0]["error"]
    more = restate.make("completed-success", 3)
    done = ansible.run(MODULE, {"ids": more, "state": "purged", "report": "failed"}, diff=True)
    assert done["changed"] and not done["failed"] and done["invocations"] == []
    assert done["summary"] == {"matched": 3, "changed": 3, "unchanged": 0, "failed": 0, "missing": 0, "pending": 0,
                               "done": 3, "already": 0, "left": 0, "check_mode": False,
                               "changed_by_service": {"Tester": 3}}
    assert done["diff"]["before"].count("completed") == 3  # the diff still shows every change
    assert all(restate.row(i) is None for i in completed + more)


def test_an_inventory_that_names_another_python_for_localhost_gets_a_module_process_run_by_it(restate, ansible):
    ids = restate.make("completed-success", 2)
    this_python = str(BIN / "python")  # the interpreter ansible-playbook itself runs on (its shebang)
    other_python = str(BIN / "python3")  # another path: the inventory asked for it, so a module process runs it
    results = ansible.run_tasks([
        {MODULE: {"id": ids[0], "state": "purged"}, "vars": {"ansible_python_interpreter": this_python}},
        {MODULE: {"id": ids[1], "state": "purged"}, "vars": {"ansible_python_interpreter": other_python}},
    ], extra_args=("-vvv",))
    assert all(r["changed"] and not r["failed"] for r in results), results
    first_task, second_task = ansible.last_output.split("TASK [task 1]")
    assert "AnsiballZ_restate_invocation" not in first_task
    assert "AnsiballZ_restate_invocation" in second_task and other_python in second_task


def test_a_long_task_in_the_worker_says_how_far_it_is_in_the_job_output(restate, ansible):
    running = restate.make("running")[0]  # inside a long ctx.run: a pause takes effect at its next await point
    result = ansible.run_tasks([{MODULE: {"id": running, "state": "paused", "wait": True, "wait_timeout": 13}}])[0]
    assert result["failed"] and "did not reach state=paused within wait_timeout=13s" in result["msg"]
    assert "task 0: waiting: 0 of 1 reached state=paused" in ansible.last_output
    restate.query(f"SELECT id FROM sys_invocation WHERE id = '{running}'")  # still there: the server is fine
