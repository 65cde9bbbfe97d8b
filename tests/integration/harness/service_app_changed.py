"""The test service changed incompatibly: Tester becomes a virtual object (for the breaking-change tests)."""

import restate

tester = restate.VirtualObject("Tester")


@tester.handler()
async def ok(ctx: restate.ObjectContext, value: str) -> str:
    return value


app = restate.app(services=[tester])
