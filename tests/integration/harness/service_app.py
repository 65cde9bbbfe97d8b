"""A Restate service, written with the Python SDK, whose handlers put invocations into every status.

Served over plain HTTP/1.1 by hypercorn; the harness registers it with `use_http_11`.

| status        | how                                                                    |
|---------------|------------------------------------------------------------------------|
| scheduled     | a delayed send (`/Tester/ok/send?delay=1h`), made by the harness       |
| pending       | a second call to a busy `Holder` key waits in that key's inbox          |
| running       | `Tester/run_long`: inside a long `ctx.run`                             |
| suspended     | `Tester/sleep`, `Tester/wait_awakeable`, `Flow/run` (workflow promise)  |
| backing-off   | `Tester/fail_backoff`: retryable failure with a one-hour retry interval|
| paused        | `Tester/pause_then_sleep`: pauses after two quick failed attempts; once |
|               | resumed it succeeds and sleeps (suspended); `Tester/fail_pause` never  |
| completed     | `Tester/ok` (success), `Tester/fail_terminal` (terminal failure)        |
|               | `Tester/fan_out` sends many one-way `Tester/ok` (or `Tester/sleep`)   |
|               | calls at once (load)                                                   |

`Keeper` is a Virtual Object for the state tests: `Keeper/{key}/read` returns the key's state as a handler sees it,
and `Keeper/{key}/take` gets stuck (paused) while the key's `stock` state is not a whole number.

The handlers that should simply settle retry a failed attempt within a second: with the server's default policy
(500 ms doubling to a minute), a few transient failures of this one-worker service outlast the harness's waits.
"""

import asyncio
import base64
import json
from datetime import timedelta

import restate
from restate.retry_policy import InvocationRetryPolicy
from restate.serde import BytesSerde

tester = restate.Service("Tester")
holder = restate.VirtualObject("Holder")
flow = restate.Workflow("Flow")
keeper = restate.VirtualObject("Keeper")

SETTLE_SOON = InvocationRetryPolicy(initial_interval=timedelta(milliseconds=100), max_interval=timedelta(seconds=1))


@tester.handler(invocation_retry_policy=SETTLE_SOON)
async def ok(ctx: restate.Context, value: str) -> str:
    return value


@tester.handler(invocation_retry_policy=SETTLE_SOON)
async def fan_out(ctx: restate.Context, order: dict) -> int:
    """Sends ``order["count"]`` one-way calls to `Tester/ok`, bodies ``order["tag"]-0``, ``-1``, ...: the load tests
    make a million completed invocations this way, a few hundred ingress calls instead of a million. With
    ``order["sleep"]`` (seconds), to `Tester/sleep` instead: as many suspended ones."""
    for n in range(order["count"]):
        if "sleep" in order:
            ctx.service_send(sleep, order["sleep"])
        else:
            ctx.service_send(ok, f"{order['tag']}-{n}")
    return order["count"]


@tester.handler(invocation_retry_policy=SETTLE_SOON)
async def fail_terminal(ctx: restate.Context, value: str) -> str:
    raise restate.TerminalError(f"terminal failure for {value}", status_code=500)


@tester.handler(invocation_retry_policy=SETTLE_SOON)
async def sleep(ctx: restate.Context, seconds: int) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "slept"


@tester.handler(invocation_retry_policy=SETTLE_SOON)
async def wait_awakeable(ctx: restate.Context, value: str) -> str:
    unused_awakeable_id, promise = ctx.awakeable()
    return await promise


async def _idle(seconds: int) -> str:
    await asyncio.sleep(seconds)
    return "done"


@tester.handler(inactivity_timeout=timedelta(hours=2), abort_timeout=timedelta(hours=2),
                invocation_retry_policy=SETTLE_SOON)
async def run_long(ctx: restate.Context, seconds: int) -> str:
    return await ctx.run_typed("idle", _idle, seconds=seconds)


@tester.handler(inactivity_timeout=timedelta(hours=2), abort_timeout=timedelta(hours=2),
                invocation_retry_policy=SETTLE_SOON)
async def idle_first(ctx: restate.Context, seconds: int) -> str:
    """Runs ``seconds`` before its first journal entry: an attempt running on its deployment, not pinned to it."""
    await asyncio.sleep(seconds)
    return "done"


@tester.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(hours=1), max_attempts=1000, on_max_attempts="pause"
    )
)
async def fail_backoff(ctx: restate.Context, value: str) -> str:
    raise RuntimeError(f"retryable failure for {value}")


@tester.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=50), max_attempts=2, on_max_attempts="pause"
    )
)
async def fail_pause(ctx: restate.Context, value: str) -> str:
    raise RuntimeError(f"failure that pauses for {value}")


_attempts: dict = {}  # invocation id -> attempts seen by this process


@tester.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=50), max_attempts=2, on_max_attempts="pause"
    )
)
async def pause_then_sleep(ctx: restate.Context, seconds: int) -> str:
    invocation_id = ctx.request().id
    _attempts[invocation_id] = _attempts.get(invocation_id, 0) + 1
    if _attempts[invocation_id] <= 2:
        raise RuntimeError(f"failure {_attempts[invocation_id]} of 2 before the invocation pauses")
    await ctx.sleep(timedelta(seconds=seconds))
    return "resumed and slept"


async def _step() -> str:
    return "journaled"


@tester.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(hours=1), max_attempts=1000, on_max_attempts="pause"
    )
)
async def pinned_backoff(ctx: restate.Context, value: str) -> str:
    """Journals a ctx.run first (so the invocation is pinned to its deployment), then fails: backing-off."""
    await ctx.run_typed("step", _step)
    raise RuntimeError(f"retryable failure after a journaled step for {value}")


@tester.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=50), max_attempts=2, on_max_attempts="pause"
    )
)
async def pinned_pause(ctx: restate.Context, value: str) -> str:
    """Journals a ctx.run first (so the invocation is pinned to its deployment), then fails until it pauses."""
    await ctx.run_typed("step", _step)
    raise RuntimeError(f"failure after a journaled step that pauses for {value}")


@holder.handler(invocation_retry_policy=SETTLE_SOON)
async def hold(ctx: restate.ObjectContext, seconds: int) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "held"


@flow.main(invocation_retry_policy=SETTLE_SOON)
async def run(ctx: restate.WorkflowContext, value: str) -> str:
    return await ctx.promise("approval").value()


@flow.handler()
async def approve(ctx: restate.WorkflowSharedContext, value: str) -> None:
    await ctx.promise("approval").resolve(value)


@keeper.handler(kind="shared", invocation_retry_policy=SETTLE_SOON)
async def read(ctx: restate.ObjectSharedContext) -> dict:
    """The key's whole state as the handler reads it: state key -> the stored bytes in base64 (any bytes)."""
    values = {}
    for name in await ctx.state_keys():
        values[name] = base64.b64encode(await ctx.get(name, serde=BytesSerde()) or b"").decode()
    return values


@keeper.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=50), max_attempts=2, on_max_attempts="pause"
    )
)
async def take(ctx: restate.ObjectContext, count: int) -> int:
    """Takes ``count`` from the JSON number in state ``stock``; anything else there fails until the invocation pauses."""
    stock = await ctx.get("stock", serde=BytesSerde())
    try:
        left = int(json.loads(stock)) - count
    except (TypeError, ValueError) as error:
        raise RuntimeError(f"stock is not a whole number: {stock!r}") from error
    ctx.set("stock", left)
    return left


app = restate.app(services=[tester, holder, flow, keeper])
