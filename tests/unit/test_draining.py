"""DrainTurn: one worker thread drains a busy queue of short stages while the others wait.

Real threads; waits are bounded, and a thread that should still be waiting
is given a moment to show it is not.
"""

import threading

import pytest

from tasks.draining import DrainTurn

MOMENT = 0.2  # long enough for a thread that should go on to have gone on


def in_thread(call) -> threading.Event:
    """Run `call` in a thread; the event is set once it returned."""
    done = threading.Event()

    def run():
        call()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


@pytest.fixture
def turn():
    turn = DrainTurn(threading.Event())
    turn.PATIENCE = 60  # no thread gives up waiting unless a test says so
    return turn


def test_while_one_thread_drains_the_others_wait_until_it_stops(turn):
    assert turn.take()
    waited = in_thread(turn.wait)
    assert not waited.wait(MOMENT)
    turn.leave()
    assert waited.wait(10)


def test_a_second_thread_does_not_drain_beside_the_first(turn):
    assert turn.take()
    answers = []
    in_thread(lambda: answers.append(turn.take())).wait(10)
    turn.leave()
    in_thread(lambda: answers.append(turn.take())).wait(10)
    assert answers == [False, True]


def test_a_long_stage_of_the_drainer_lets_the_others_go_at_once(turn):
    turn.SHORT = 0  # every stage is long
    assert turn.take()
    turn.began_stage()
    waited = in_thread(turn.wait)
    assert not waited.wait(MOMENT)
    turn.ended_stage()
    assert waited.wait(10)


def test_after_a_long_stage_threads_drain_side_by_side(turn):
    turn.SHORT = 0
    turn.began_stage()
    turn.ended_stage()
    assert turn.take()
    assert in_thread(turn.wait).wait(10)  # nobody drains alone
    answers = []
    in_thread(lambda: answers.append(turn.take())).wait(10)
    assert answers == [True]


def test_the_others_wait_at_most_patience_for_one_claim_or_stage(turn):
    turn.PATIENCE = 0.05
    assert turn.take()
    turn.began_stage()  # and it never ends
    assert in_thread(turn.wait).wait(10)


def test_a_stopping_worker_waits_for_nobody_and_takes_nothing():
    stop = threading.Event()
    turn = DrainTurn(stop)
    turn.PATIENCE = 60
    assert turn.take()
    stop.set()
    answers = []
    assert in_thread(lambda: answers.append(turn.wait())).wait(10)
    assert answers == [False]


def test_the_drainer_does_not_wait_for_itself(turn):
    assert turn.take()
    assert turn.wait() is True
