"""`transcribe` from the browser: upload a recording with the new-task form, watch it go through
its four stages, read the transcript with its speakers (JavaScript ON, and OFF); cancel one for
real while it is transcribing."""

import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.sounds import MEETING, recording

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
STAGES = ["transcribing", "identifying", "correcting", "summarizing"]


def upload(page, base, path, vocabulary=""):
    page.goto(base + "/tasks/new?type=transcribe")
    page.set_input_files("#p-audio", str(path))
    page.fill("#p-vocabulary", vocabulary)
    page.click("button:text-is('Submit task')")
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
    return page.url.rsplit("/", 1)[1]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_upload_a_recording_watch_its_stages_and_read_the_transcript(site, tmp_path, javascript):
    http, open_page = site
    page = open_page(javascript=javascript)
    meeting = recording(tmp_path / "周会 meeting.wav", turns=MEETING)
    task_id = upload(page, http.base, meeting, vocabulary="monday => Monday")
    task = http.task(task_id)
    assert task["params"]["audio"] == f"upload:{task_id}/audio/周会 meeting.wav"
    badge = page.locator("#task-status .badge").first
    if javascript:
        # The poll shows the stage it is in; transcribing takes seconds (the model loads).
        expect(page.locator("#task-status .stage").first).to_contain_text(
            "transcribing", timeout=30_000
        )
        expect(badge).to_have_text("Succeeded", timeout=90_000)
    else:
        for _ in range(180):
            if badge.inner_text() == "Succeeded":
                break
            page.wait_for_timeout(500)
            page.reload()
    expect(page.locator("ol.stages > li")).to_have_count(4)
    for position, name in enumerate(STAGES):
        expect(page.locator("ol.stages > li").nth(position)).to_contain_text(name)
    transcript = page.locator("ol.transcript > li")
    expect(transcript).to_have_count(3)
    expect(transcript.nth(0)).to_contain_text("Speaker 1")
    expect(transcript.nth(0)).to_contain_text("The quick brown fox")
    expect(transcript.nth(1)).to_contain_text("Speaker 2")
    expect(transcript.nth(1)).to_contain_text("Monday")  # the vocabulary's correction
    links = page.locator("#task-status a[download]")
    expect(links).to_have_text(["transcript.txt", "transcript.srt", "transcript.json"])
    if javascript:
        assert not [m for m in page.console if "error" in m.lower()], page.console
    name = "js" if javascript else "no-js"
    page.screenshot(path=str(ARTIFACTS / f"transcribe-{name}.png"), full_page=True)


def test_cancel_while_transcribing_stops_it_for_real(site, tmp_path):
    http, open_page = site
    page = open_page()
    long = recording(tmp_path / "long.wav", repeat=8)  # about two minutes: four chunks
    task_id = upload(page, http.base, long)
    expect(page.locator("#task-status .stage").first).to_contain_text(
        "transcribing", timeout=30_000
    )
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill(f"#reason-{task_id}", "wrong recording")
    page.click("#task-status button.danger")
    expect(page.locator("#task-status .badge").first).to_have_text("Cancelled", timeout=20_000)
    task = http.task(task_id)
    items = task["stages"][0]["items"] or {"done": 0}  # none yet if stopped in the first chunk
    assert task["state"] == "cancelled" and items["done"] < 4
    assert "wrong recording" in page.content()
