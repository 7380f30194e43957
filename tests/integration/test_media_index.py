"""The built-in `media_index` pipeline through a real worker, on files the tests make.

Images made with Pillow (one with EXIF, one truncated), notes in UTF-8, GBK
and mojibake, Chinese names, a symlink leading out: success with a failed
item (partly succeeded), path-escape refusals, an incremental re-run, a
cancel mid-preprocess and a retry that resumes, search in Chinese and
English, and artifacts only their owner can read.
"""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import api_submit, finished, wait_for
from tests.library import make_library


@pytest.fixture
def files(app):
    return Path(app.config["FILES_ROOT"])


def outputs(task) -> dict:
    return {stage["name"]: stage["output"] for stage in task["stages"]}


def search(api_as, task_id, q):
    response = api_as.get(f"/tasks/{task_id}/search", query_string={"q": q})
    assert response.status_code == 200, response.get_json()
    return [match["path"] for match in response.get_json()["items"]]


def test_a_folder_is_indexed_with_its_broken_image_a_failed_item(api, worker, files):
    worker(workers=1)
    make_library(files)
    alice = api("alice")
    task = finished(alice, api_submit(alice, "media_index", folder="library", thumb_size=64))
    assert task["state"] == "partial_success", task
    out = outputs(task)
    assert out["scan"]["files"] == 8 and out["scan"]["by_kind"] == {"image": 5, "text": 3}
    assert out["preprocess"] == {"processed": 7, "unchanged": 0, "failed": 1}
    (broken,) = task["failed_items"]
    assert broken["key"] == "library/photos/broken.jpg" and "truncated" in broken["error"]
    assert out["thumbnails"] == {"made": 3} and out["index"] == {"indexed": 7}
    log = alice.get(f"/tasks/{task['id']}/logs.txt").data.decode()
    assert "skipped (leads out or not text): 'library/photos/escape.jpg'" in log

    names = [a["name"] for a in alice.get(f"/tasks/{task['id']}/artifacts").get_json()["items"]]
    thumbs = [n for n in names if n.startswith("thumb-")]
    assert len(thumbs) == 3 and "index.sqlite" in names
    image = alice.get(f"/tasks/{task['id']}/artifacts/{thumbs[0]}")
    with Image.open(io.BytesIO(image.data)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 64

    tid = task["id"]
    assert search(alice, tid, "会议") == ["library/notes/会议.md"]  # 2 characters: a scan
    assert search(alice, tid, "季度预算") == ["library/notes/会议.md"]  # FTS5 trigrams
    assert search(alice, tid, "烤鸭") == ["library/notes/gbk.txt"]  # decoded from GBK
    assert search(alice, tid, "café résumé") == ["library/notes/mojibake.txt"]  # repaired
    assert sorted(search(alice, tid, "Canon")) == [  # EXIF
        "library/photos/sunset copy.jpg",
        "library/photos/sunset.jpg",
    ]
    assert search(alice, tid, "猫") == ["library/photos/猫.png"]
    items = alice.get(f"/tasks/{tid}/search?q=sunset").get_json()["items"]
    copy, original = sorted(items, key=lambda match: match["path"])
    assert original["kind"] == "image" and original["thumbnail"] in thumbs
    assert copy["thumbnail"] == original["thumbnail"]  # the same image: one thumbnail
    assert "[sunset]" in original["snippet"]


def test_paths_outside_the_files_root_are_refused_naming_the_param(api, files, tmp_path):
    library = make_library(files)
    os.symlink(tmp_path, library / "out")
    alice = api("alice")
    for folder in ("..", "../..", "/etc", "library/../..", "library/out", "nowhere", ""):
        response = alice.post("/tasks", json={"type": "media_index", "params": {"folder": folder}})
        assert response.status_code == 422, folder
        assert "folder" in response.get_json()["detail"], response.get_json()
    nul = alice.post("/tasks", json={"type": "media_index", "params": {"folder": "a\x00b"}})
    assert nul.status_code == 400 and nul.get_json()["detail"]  # NUL: refused on arrival
    assert alice.get("/tasks").get_json()["items"] == []  # nothing half-written


def test_a_re_run_reuses_unchanged_files(api, worker, files):
    worker(workers=1)
    library = make_library(files)
    alice = api("alice")
    finished(alice, api_submit(alice, "media_index", folder="library", thumbnails=False))
    again = finished(alice, api_submit(alice, "media_index", folder="library", thumbnails=False))
    assert outputs(again)["preprocess"] == {"processed": 0, "unchanged": 7, "failed": 1}
    note = library / "notes" / "会议.md"
    note.write_text(note.read_text() + "补充：下周再议。\n")
    third = finished(alice, api_submit(alice, "media_index", folder="library", thumbnails=False))
    assert outputs(third)["preprocess"] == {"processed": 1, "unchanged": 6, "failed": 1}
    assert search(alice, third["id"], "下周再议") == ["library/notes/会议.md"]


def test_a_cancel_mid_preprocess_and_a_retry_resume_after_the_done_files(api, worker, files):
    worker(workers=1)
    bulk = files / "bulk"
    bulk.mkdir()
    for n in range(600):
        # ~16 KiB each: enough text that describing them takes a few seconds in all
        (bulk / f"note-{n:04}.txt").write_text(f"第 {n} 条笔记 note number {n}，内容。\n" * 500)
    alice = api("alice")
    task_id = api_submit(alice, "media_index", folder="bulk", thumbnails=False)

    def done_items():
        stage = alice.get(f"/tasks/{task_id}").get_json()["stages"][1]
        return (stage["items"] or {}).get("done", 0)

    wait_for(lambda: done_items() >= 20, timeout=30, interval=0.2)  # (the worker shares the GIL)
    alice.post(f"/tasks/{task_id}/cancel", json={"reason": "enough"})
    cancelled = finished(alice, task_id)
    assert cancelled["state"] == "cancelled", cancelled["state"]
    done = cancelled["stages"][1]["items"]["done"]
    assert 0 < done < 600
    retry = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()
    task = finished(alice, retry["new_task_id"], timeout=60)
    assert task["state"] == "succeeded"
    out = outputs(task)["preprocess"]
    assert out["unchanged"] >= done and out["processed"] + out["unchanged"] == 600
    assert out["processed"] <= 600 - done  # the done files were not described again


def test_only_the_owner_reads_the_index_and_the_thumbnails(api, worker, files):
    worker(workers=1)
    make_library(files)
    alice, bob = api("alice"), api("bob")
    task = finished(alice, api_submit(alice, "media_index", folder="library", thumb_size=64))
    thumb = next(a["name"] for a in task_artifacts(alice, task) if a["name"].startswith("thumb"))
    assert bob.get(f"/tasks/{task['id']}/artifacts/{thumb}").status_code == 403
    assert bob.get(f"/tasks/{task['id']}/search?q=会议").status_code == 403
    demo = alice.post("/tasks", json={"type": "demo", "params": {"stages": 1, "seconds": 0}})
    missing = alice.get(f"/tasks/{demo.get_json()['id']}/search?q=x")
    assert missing.status_code == 404 and "no search index" in missing.get_json()["detail"]


def task_artifacts(api_as, task):
    return api_as.get(f"/tasks/{task['id']}/artifacts").get_json()["items"]


def test_the_task_page_shows_the_thumbnails_and_searches_the_index(api, worker, files, browser):
    worker(workers=1)
    make_library(files)
    alice = api("alice")
    task = finished(alice, api_submit(alice, "media_index", folder="library", thumb_size=64))
    browser.login("alice")
    page = browser.get(f"/tasks/{task['id']}").data.decode()
    assert "Images (3)" in page and page.count(f"/tasks/{task['id']}/artifacts/thumb-") == 6
    assert 'id="index-q"' in page and "thumb-" not in page.split('id="results"')[0]  # not polled
    found = browser.get(f"/tasks/{task['id']}?q=会议").data.decode()
    assert "<code>library/notes/会议.md</code>" in found and "[会议]" in found  # a scan, marked
    found = browser.get(f"/tasks/{task['id']}?q=季度预算").data.decode()
    assert "[季度预算]" in found  # the FTS5 snippet marks the match
    assert "Nothing matches “zzzz”." in browser.get(f"/tasks/{task['id']}?q=zzzz").data.decode()
    long = browser.get(f"/tasks/{task['id']}?q={'x' * 201}").data.decode()
    assert "Search for at most 200 characters" in long
