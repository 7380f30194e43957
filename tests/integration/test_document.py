"""The built-in `document` pipeline through a real worker: Chinese and English notes.

An outline from keyword clusters and one from headings, a section with
nothing under it as a failed item, params refused by name, the cover and
the escaped HTML, the sandboxed preview only its owner sees, and the
`openai` engine against a stand-in endpoint (tests/llm.py): its key never
shown, a failing section retried alone, a cancel then a retry going on at
the next section. The kill -9 test is in test_document_crash.py.
"""

import io

import pytest
from PIL import Image

from tests.conftest import api_submit, finished, wait_for
from tests.llm import KEY, serving

# Three topics, no headings: the outline is cut where the words change.
CHINESE_NOTES = """
数据库迁移计划在三月完成。迁移之前要备份全部数据库。数据库的备份每天晚上自动运行。
备份文件保存在两个机房。迁移脚本已经在测试环境跑通。

市场部门准备发布会的宣传材料。宣传材料包括海报和视频。海报由设计组负责。
视频在下周拍摄，宣传视频要有中文字幕。发布会邀请了二十家媒体。

预算审查发现成本上升了百分之十。财务部门要求重新估算预算。预算必须在周五之前批准。
新的预算包括服务器和招聘费用。招聘预算比去年多一倍。
"""
HEADED_NOTES = """A line before any heading.
# 背景
去年我们开始做这个项目。团队有五个人。
# Plan
We ship in May. Tests come first. <script>alert(1)</script> is only text.
# Empty
# Risks
The budget is tight. Hiring takes time.
"""


def outputs(task) -> dict:
    return {stage["name"]: stage["output"] for stage in task["stages"]}


def artifact(api_as, task_id, name) -> bytes:
    response = api_as.get(f"/tasks/{task_id}/artifacts/{name}")
    response.close()  # the file it was sent from
    assert response.status_code == 200, name
    return response.data


def test_chinese_notes_become_a_document_with_a_cover(api, worker):
    worker(workers=1)
    alice = api("alice")
    task = finished(
        alice,
        api_submit(alice, "document", title="二〇二六年路线图", notes=CHINESE_NOTES, sections=3),
    )
    assert task["state"] == "succeeded", task
    out = outputs(task)
    assert out["outline"]["from"] == "keywords" and len(out["outline"]["sections"]) == 3
    texts = out["content"]["texts"]
    assert sorted(texts) == ["1", "2", "3"] and out["content"]["failed"] == []
    assert "数据库" in texts["1"] and "宣传" in texts["2"] and "预算" in texts["3"]
    for text in texts.values():  # picked from the notes, in their order, nothing made up
        for sentence in text.replace("\n\n", "").split("。")[:-1]:
            assert sentence + "。" in CHINESE_NOTES.replace("\n", "")
    assert "数据库" in out["outline"]["sections"][0] and "预算" in out["outline"]["sections"][2]
    with Image.open(io.BytesIO(artifact(alice, task["id"], "cover.png"))) as cover:
        assert (cover.format, cover.size) == ("PNG", (1200, 800))
    assert out["cover"]["font"].startswith("NotoSansCJK")  # .ci/run installs fonts-noto-cjk
    markdown = artifact(alice, task["id"], "document.md").decode()
    assert markdown.startswith("# 二〇二六年路线图\n\n## ")
    assert all(f"## {title}\n\n{texts[str(n)]}" in markdown for n, title in numbered(out))
    page = artifact(alice, task["id"], "document.html").decode()
    assert "<h1>二〇二六年路线图</h1>" in page and 'src="data:image/png;base64,' in page


def numbered(out):
    return enumerate(out["outline"]["sections"], 1)


def test_headings_make_the_outline_and_a_section_without_notes_is_a_failed_item(api, worker):
    worker(workers=1)
    alice = api("alice")
    title = "Roadmap <b>2026</b> & “plans”"
    task = finished(alice, api_submit(alice, "document", title=title, notes=HEADED_NOTES))
    assert task["state"] == "partial_success", task
    out = outputs(task)
    assert out["outline"] == {"sections": ["背景", "Plan", "Empty", "Risks"], "from": "headings"}
    assert out["content"]["failed"] == [3]
    assert (
        out["content"]["texts"]["1"]
        == "A line before any heading. 去年我们开始做这个项目。团队有五个人。"
    )
    failed = {i["key"]: i["error"] for i in task["failed_items"]}
    assert failed == {"section 3": "ValueError: The notes have nothing for section 'Empty'"}
    assert "## Empty\n\n*(This section could not be written" in artifact(
        alice, task["id"], "document.md"
    ).decode("utf-8")
    page = artifact(alice, task["id"], "document.html").decode()
    assert "<h1>Roadmap &lt;b&gt;2026&lt;/b&gt; &amp; “plans”</h1>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page


@pytest.mark.parametrize(
    "params, named",
    [
        ({"title": "t", "notes": "中" * 70_000}, "notes"),  # 210,000 bytes in UTF-8
        ({"title": "t", "notes": "x", "sections": 31}, "sections"),
        ({"title": "t", "notes": "x", "sections": 0}, "sections"),
        ({"title": "   ", "notes": "x"}, "title"),
        ({"title": "t", "notes": "\n \n"}, "notes"),
        ({"title": "t", "notes": "x", "engine": "openai"}, "engine"),  # not set up here
        ({"title": "t", "notes": "x", "engine": "gpt"}, "engine"),
        ({"title": "t" * 201, "notes": "x"}, "title"),
        ({"notes": "x"}, "title"),
    ],
)
def test_bad_params_are_refused_naming_the_param(api, params, named):
    alice = api("alice")
    before = alice.get("/tasks").get_json()["items"]
    response = alice.post("/tasks", json={"type": "document", "params": params})
    assert response.status_code == 422, response.get_json()
    assert named in response.get_json()["detail"]
    assert alice.get("/tasks").get_json()["items"] == before  # nothing half-written


def test_notes_of_200_kb_are_taken(api):
    alice = api("alice")
    notes = ("会议记录。" * 13_653)[: 200 * 1024 // 3]  # 204,795 bytes
    response = alice.post(
        "/tasks", json={"type": "document", "params": {"title": "t", "notes": notes}}
    )
    assert response.status_code == 201, response.get_json()


def test_only_the_owner_sees_the_document_and_its_sandboxed_preview(api, worker, browser):
    worker(workers=1)
    alice, bob = api("alice"), api("bob")
    task = finished(
        alice, api_submit(alice, "document", title="预览", notes=HEADED_NOTES, sections=2)
    )
    preview = f"/tasks/{task['id']}/preview/document.html"
    browser.login("alice")
    page = browser.get(f"/tasks/{task['id']}").data.decode()
    assert f'<iframe class="preview" sandbox src="{preview}"' in page
    shown = browser.get(preview)
    shown.close()
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    policy = shown.headers["Content-Security-Policy"]
    assert policy.split(";")[0].strip() == "sandbox" and "frame-ancestors 'self'" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert browser.get(f"/tasks/{task['id']}/preview/cover.png").status_code == 404
    assert browser.get(f"/tasks/{task['id']}").headers["X-Frame-Options"] == "DENY"
    assert bob.get(f"/tasks/{task['id']}/artifacts/document.html").status_code == 403
    browser.login("bob")  # the same client, now bob's session
    assert browser.get(preview).status_code == 403


def test_the_openai_engine_writes_with_the_endpoint_and_never_shows_its_key(
    api, worker, monkeypatch
):
    with serving(fail=(2,)) as (endpoint, url):
        monkeypatch.setenv("TASKDECK_LLM_URL", url)
        monkeypatch.setenv("TASKDECK_LLM_MODEL", "tiny-model")
        monkeypatch.setenv("TASKDECK_LLM_KEY", KEY)
        worker(workers=1)
        alice = api("alice")
        task_id = api_submit(alice, "document", title="模型", notes=HEADED_NOTES, engine="openai")
        task = finished(alice, task_id)
        assert task["state"] == "partial_success"
        # Section 3 ("Empty") has no notes: a failed item, the endpoint never asked for it.
        assert sorted(endpoint.asked) == [1, 2, 4] and endpoint.keys == {f"Bearer {KEY}"}
        texts = outputs(task)["content"]["texts"]
        assert texts["1"] == "第 1 节由模型写成。\n\nSection 1, written by tiny-model."
        failed = {i["key"]: i["error"] for i in task["failed_items"]}
        assert sorted(failed) == ["section 2", "section 3"]
        assert "answered 500" in failed["section 2"]
        assert "model overloaded at section 2" in failed["section 2"]
        assert "nothing for section 'Empty'" in failed["section 3"]
        endpoint.fail.clear()
        retry = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()
        again = finished(alice, retry["new_task_id"])
        assert again["state"] == "partial_success"  # section 3 has still nothing to write from
        assert [i["key"] for i in again["failed_items"]] == ["section 3"]
        assert sorted(endpoint.asked) == [1, 2, 2, 4]  # only the failed section, again
        assert "第 2 节" in outputs(again)["content"]["texts"]["2"]
        for shown in (
            alice.get(f"/tasks/{task_id}").data,
            alice.get(f"/tasks/{retry['new_task_id']}").data,
            alice.get(f"/tasks/{task_id}/logs.txt").data,
        ):
            assert KEY.encode() not in shown


def test_a_cancel_mid_content_then_a_retry_goes_on_at_the_next_section(api, worker, monkeypatch):
    with serving(delay=0.4) as (endpoint, url):
        monkeypatch.setenv("TASKDECK_LLM_URL", url)
        monkeypatch.setenv("TASKDECK_LLM_KEY", KEY)
        worker(workers=1)
        alice = api("alice")
        notes = "\n".join(f"# Part {n}\nText of part {n}. More of part {n}." for n in range(1, 9))
        task_id = api_submit(
            alice, "document", title="Eight parts", notes=notes, sections=8, engine="openai"
        )
        wait_for(lambda: len(endpoint.asked) >= 3, timeout=30)
        alice.post(f"/tasks/{task_id}/cancel", json={"reason": "enough"})
        cancelled = finished(alice, task_id)
        assert cancelled["state"] == "cancelled"
        done = cancelled["stages"][1]["items"]["done"]
        assert 3 <= done < 8
        asked_before = list(endpoint.asked)
        retry = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()
        assert "resuming at 'content'" in retry["message"]
        task = finished(alice, retry["new_task_id"])
        assert task["state"] == "succeeded"
        asked_after = endpoint.asked[len(asked_before) :]
        assert sorted(asked_before[:done]) == list(range(1, done + 1))
        assert set(asked_after).isdisjoint(range(1, done + 1))  # the written ones not again
        assert sorted(set(asked_before + asked_after)) == list(range(1, 9))
        assert len(outputs(task)["content"]["texts"]) == 8


def test_the_key_is_never_sent_elsewhere_or_shown_when_an_endpoint_echoes_it(
    api, worker, monkeypatch
):
    with serving(echo=(1,)) as (endpoint, url):
        monkeypatch.setenv("TASKDECK_LLM_URL", url)
        monkeypatch.setenv("TASKDECK_LLM_KEY", KEY)
        worker(workers=1)
        alice = api("alice")
        task = finished(
            alice,
            api_submit(
                alice, "document", title="t", notes=HEADED_NOTES, sections=2, engine="openai"
            ),
        )
        failed = {i["key"]: i["error"] for i in task["failed_items"]}
        assert failed["section 1"].endswith("cannot use Bearer **** here")  # blanked
        monkeypatch.setenv("TASKDECK_LLM_URL", url.replace("/v1", "/moved/v1"))
        moved = finished(
            alice,
            api_submit(
                alice, "document", title="t", notes=HEADED_NOTES, sections=1, engine="openai"
            ),
        )
        (error,) = [i["error"] for i in moved["failed_items"]]
        assert "answered 302" in error  # not followed: the key would go where it points
        assert endpoint.asked == [1, 2]  # the moved request reached no model
        for task_id in (task["id"], moved["id"]):
            for path in ("", "/logs", "/logs.txt"):
                assert KEY not in alice.get(f"/tasks/{task_id}{path}").get_data(as_text=True)
