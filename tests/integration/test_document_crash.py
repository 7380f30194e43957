"""A worker killed with SIGKILL while `document` writes its sections: it goes on at the next one.

Real processes (`taskdeck web`, two `taskdeck worker`s) and the stand-in
OpenAI-compatible endpoint (tests/llm.py), slow enough to kill mid-way.
"""

import signal
from collections import Counter

from tests.conftest import wait_for
from tests.live import FAST_RECOVERY, deck  # noqa: F401  (fixture)
from tests.llm import KEY, serving

NOTES = "\n".join(f"# 第{n}部分\n第{n}部分的内容。Part {n} text." for n in range(1, 7))


def test_a_kill_9_mid_content_resumes_at_the_next_section(deck):  # noqa: F811
    with serving(delay=1.0) as (endpoint, url):
        d = deck({**FAST_RECOVERY, "TASKDECK_LLM_URL": url, "TASKDECK_LLM_KEY": KEY})
        first = d.start_worker(threads=1)
        task_id = d.submit("document", title="六部分", notes=NOTES, engine="openai")
        wait_for(lambda: len(endpoint.asked) >= 3, timeout=30)  # 1 and 2 written, 3 asked
        first.send_signal(signal.SIGKILL)
        first.wait()
        d.start_worker(threads=1)
        wait_for(lambda: d.task(task_id)["state"] == "succeeded", timeout=60, interval=0.2)
        task = d.task(task_id)
        asked = Counter(endpoint.asked)
        assert asked[1] == asked[2] == 1  # saved before the kill: not written again
        assert asked[3] in (1, 2) and all(asked[n] == 1 for n in (4, 5, 6))
        assert sorted(asked) == [1, 2, 3, 4, 5, 6]
        content = next(s for s in task["stages"] if s["name"] == "content")
        assert sorted(content["output"]["texts"]) == ["1", "2", "3", "4", "5", "6"]
        requeued = [e for e in task["events"] if e["action"] == "stage_requeued"]
        assert [e["stage"] for e in requeued] == ["content"]
        assert KEY not in str(task)
