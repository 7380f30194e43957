"""The soak benchmark in a short form: worker processes kill -9'd during a run lose nothing."""

from bench.soak import soak


def test_short_soak_loses_nothing_and_reruns_no_completed_stage():
    result = soak(tasks=30, workers=2, threads=2, kills=2, cancels=5, seconds=0.2)
    assert (result["lost"], result["rerun"], result["finished"]) == (0, 0, 30), result
    assert result["cancelled"] == result["cancels"], result
