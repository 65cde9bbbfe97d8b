# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small shop, written with the Restate Python SDK, whose invocations end up in the states operators meet.

- ``Orders/checkout`` reserves the cart (a ``ctx.run``, journaled: the invocation is now pinned to the deployment
  that ran it), then waits for a payment confirmation that never comes (suspended).
- ``Orders/status`` answers at once; every tenth order id is unknown (completed, success or failure).
- ``Payments/charge`` keeps failing against a card processor that is down, retrying ever more slowly
  (backing-off, with a growing retry count).
- ``Inventory/reserve`` fails three times and pauses; once resumed it succeeds (paused, then completed).

``SHOP_VERSION=2`` in the environment serves version 2: the same services with one handler more, ``Orders/track``
(a compatible change: the server registers it as new revisions of the same services).
"""

import os
from datetime import timedelta

import restate
from restate.retry_policy import InvocationRetryPolicy

orders = restate.Service("Orders")
payments = restate.Service("Payments")
inventory = restate.Service("Inventory")


async def _reserve_cart(order_id: str) -> str:
    return f"cart of {order_id} reserved"


@orders.handler()
async def checkout(ctx: restate.Context, order_id: str) -> str:
    await ctx.run_typed("reserve the cart", _reserve_cart, order_id=order_id)
    unused_awakeable_id, confirmation = ctx.awakeable()
    return await confirmation


@orders.handler()
async def status(ctx: restate.Context, order_id: str) -> str:
    if order_id.endswith("0"):
        raise restate.TerminalError(f"unknown order {order_id}", status_code=404)
    return f"order {order_id} shipped"


@payments.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100), exponentiation_factor=2.0, max_interval=timedelta(hours=1),
        max_attempts=100, on_max_attempts="pause"
    )
)
async def charge(ctx: restate.Context, order_id: str) -> str:
    raise RuntimeError("card processor unavailable")


_attempts: dict = {}  # invocation id -> attempts seen by this process


@inventory.handler(
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=3, on_max_attempts="pause"
    )
)
async def reserve(ctx: restate.Context, order_id: str) -> str:
    invocation_id = ctx.request().id
    _attempts[invocation_id] = _attempts.get(invocation_id, 0) + 1
    if _attempts[invocation_id] <= 3:
        raise RuntimeError("warehouse lock timeout")
    return f"reserved stock for {order_id}"


if os.environ.get("SHOP_VERSION") == "2":

    @orders.handler()
    async def track(ctx: restate.Context, order_id: str) -> str:
        return f"order {order_id}: waiting for payment (answered by shop v2)"


app = restate.app(services=[orders, payments, inventory])
