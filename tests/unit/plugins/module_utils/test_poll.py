"""The one poll helper: rounds until done or the deadline, kill_after's moment, one more read after an action."""

from __future__ import annotations

from ansible_collections.restate.admin.plugins.module_utils._poll import Poll


class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def poll_with(clock, timeout, interval=1.0):
    return Poll(timeout, interval=interval, clock=clock, sleep=clock.sleep)


def test_rounds_stop_when_done_without_sleeping_after_the_last():
    clock = Clock()
    poll = poll_with(clock, 10)
    seen = []
    for number in poll.rounds():
        seen.append(number)
        if number == 2:
            poll.done()
    assert seen == [0, 1, 2] and clock.slept == [1.0, 1.0] and not poll.timed_out


def test_rounds_stop_at_the_deadline_and_say_so():
    clock = Clock()
    poll = poll_with(clock, 3)
    rounds = list(poll.rounds())
    assert rounds == [0, 1, 2, 3] and poll.timed_out and poll.elapsed() == 3.0


def test_a_zero_timeout_still_reads_once():
    poll = poll_with(Clock(), 0)
    assert list(poll.rounds()) == [0] and poll.timed_out


def test_at_fires_once_when_its_time_has_come_and_never_for_none():
    clock = Clock()
    poll = poll_with(clock, 10)
    fired = [number for number in poll.rounds() if poll.at(2.5)]
    assert fired == [3]
    assert not poll_with(clock, 1).at(None)


def test_again_gives_one_more_round_at_once_even_past_the_deadline():
    clock = Clock()
    poll = poll_with(clock, 2)
    rounds = []
    for number in poll.rounds():
        rounds.append((number, clock.now))
        if poll.at(2):
            poll.again()
    assert rounds == [(0, 100.0), (1, 101.0), (2, 102.0), (3, 102.0)] and poll.timed_out
