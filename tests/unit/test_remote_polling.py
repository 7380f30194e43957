"""remote_job's poll back-off: at once after a change of state or stage, no faster than every
MOVING_POLL seconds while only progress or the log moves, slowing to MAX_POLL while quiet."""

from tasks.pipelines.remote import FIRST_POLL, MAX_POLL, MOVING_POLL, _next_delay


def test_a_job_that_reports_progress_all_the_time_is_not_polled_twice_a_second():
    delay, seen, waits = FIRST_POLL, None, []
    for tick in range(12):
        now = ("running", "remote stage: step 1", tick / 12, tick)  # progress and log move
        delay = _next_delay(delay, seen, now)
        seen = now
        waits.append(delay)
    assert waits[0] == FIRST_POLL and waits[-1] == MOVING_POLL
    assert sum(60 / w for w in waits[-5:]) / 5 == 60 / MOVING_POLL  # 30 polls a minute


def test_a_new_stage_is_polled_at_once_and_a_quiet_job_slowly():
    quiet = ("running", "remote stage: step 1", 0.5, 3)
    delay = MOVING_POLL
    for _ in range(20):
        delay = _next_delay(delay, quiet, quiet)
    assert delay == MAX_POLL
    assert _next_delay(delay, quiet, ("running", "remote stage: step 2", 0.5, 3)) == FIRST_POLL
    assert _next_delay(delay, quiet, ("succeeded", "remote stage: step 1", 1.0, 3)) == FIRST_POLL
