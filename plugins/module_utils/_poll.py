# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Polling until something is done or a deadline passes: wait, kill_after and a deployment's drain wait use it."""

from __future__ import annotations

import time

POLL_INTERVAL = 0.5


class Poll:
    """One wait: ``rounds()`` yields until ``done()`` is called or the deadline passes; ``last`` keeps what the caller
    last saw, for the message of a timed-out wait.

        poll = Poll(timeout=120)
        for unused_round in poll.rounds():
            rows = read()
            if not pending(rows):
                poll.done()
            poll.last = rows
        if poll.timed_out: ...

    ``at(seconds)`` tells once when that many seconds have passed since the start (kill_after).
    """

    def __init__(self, timeout: float, interval: float = POLL_INTERVAL, clock=time.monotonic, sleep=time.sleep):
        self.started = clock()
        self.deadline = self.started + max(0.0, timeout)
        self.interval = interval
        self.last = None
        self.timed_out = False
        self._clock = clock
        self._sleep = sleep
        self._done = False
        self._again = False
        self._fired = set()

    def done(self):
        self._done = True

    def again(self):
        """The next round comes at once, past the deadline too: after an action (kill_after's kill) whose effect the
        wait must read at least once."""
        self._again = True

    def elapsed(self) -> float:
        return self._clock() - self.started

    def at(self, seconds) -> bool:
        """True the first time it is asked once ``seconds`` have passed (None: never)."""
        if seconds is None or seconds in self._fired or self.elapsed() < seconds:
            return False
        self._fired.add(seconds)
        return True

    def rounds(self):
        """Yield the round number until done() or the deadline; the deadline is checked after each round, so there
        is always at least one round, and a round that ends done is never reported as timed out."""
        number = 0
        while True:
            yield number
            if self._done:
                return
            number += 1
            if self._again:
                self._again = False
                continue
            if self._clock() >= self.deadline:
                self.timed_out = True
                return
            self._sleep(self.interval)
