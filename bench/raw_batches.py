"""The physical limit of a bulk action here: the server's own batch route driven raw, with nothing of the collection.

    python bench/raw_batches.py ADMIN_URL ACTION SERVICE HANDLER [IN_FLIGHT]

Selects every not yet completed (or, for purge, completed) invocation of SERVICE/HANDLER with one SQL query, then
POSTs their ids 1,000 a call (the server's limit) to the batch route, IN_FLIGHT calls at once (default 2, as the
collection sends). Prints one JSON line: how many were selected, how many the server reported done, the seconds
of the selection and of the whole run. `make load` runs it beside the module's task and the official CLI.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3

BATCH_PATH = "/internal/invocations_batch_operations/"  # as plugins/module_utils/_invocations_api.py
BATCH_SIZE = 1000


def main(admin_url: str, action: str, service: str, handler: str, in_flight: int = 2) -> dict:
    started = time.perf_counter()
    pool = urllib3.PoolManager(maxsize=in_flight + 1, timeout=urllib3.Timeout(total=600))
    status = "status = 'completed'" if action == "purge" else "status <> 'completed'"
    # The test service's names are plain identifiers: no quoting needed in this reference.
    sql = (f"SELECT id FROM sys_invocation WHERE target_service_name = '{service}' "
           f"AND target_handler_name = '{handler}' AND {status}")
    answer = pool.request("POST", f"{admin_url}/query", json={"query": sql}, headers={"accept": "application/json"})
    if answer.status != 200:
        raise SystemExit(f"POST /query answered {answer.status}: {answer.data[:500]!r}")
    ids = sorted(row["id"] for row in json.loads(answer.data)["rows"])
    selected = time.perf_counter() - started
    url = f"{admin_url}{BATCH_PATH}{action}"

    def send(chunk):
        reply = pool.request("POST", url, json={"invocation_ids": chunk})
        if reply.status != 200:
            raise SystemExit(f"POST {BATCH_PATH}{action} answered {reply.status}: {reply.data[:500]!r}")
        return len(json.loads(reply.data)["succeeded"])

    with ThreadPoolExecutor(in_flight) as executor:
        done = sum(executor.map(send, [ids[at:at + BATCH_SIZE] for at in range(0, len(ids), BATCH_SIZE)]))
    return {"selected": len(ids), "done": done, "selection_seconds": round(selected, 2),
            "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    print(json.dumps(main(*sys.argv[1:5], *(int(n) for n in sys.argv[5:]))))
