"""`document` from the browser: paste Chinese notes, watch the task end, read the document in
its sandboxed preview and see its cover (JavaScript ON); the same without JavaScript; a refusal
shown at its field."""

import pytest

from tests.browser.conftest import ARTIFACTS

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
NOTES = """# 背景
去年我们开始做这个项目。团队有五个人，大家都很忙。
# 计划
明年五月发布第一个版本。发布之前需要完成测试。
# 风险
预算很紧。招聘需要时间。<script>alert("xss")</script>只是文字。
"""


def write(page, base, title):
    page.goto(base + "/tasks/new?type=document")
    page.fill("#p-title", title)
    page.fill("#p-notes", NOTES)
    page.click("button:text-is('Submit task')")
    page.wait_for_url(f"{base}/tasks/*")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_paste_notes_and_read_the_document_with_its_cover(site, javascript):
    http, open_page = site
    page = open_page(javascript=javascript)
    write(page, http.base, "项目路线图")
    badge = page.locator("#task-status .badge").first
    if javascript:
        expect(badge).to_have_text("Succeeded", timeout=30_000)  # the poll brings the results
    else:
        for _ in range(60):
            if badge.inner_text() == "Succeeded":
                break
            page.wait_for_timeout(500)
            page.reload()
    frame = page.frame_locator("iframe.preview")
    expect(frame.locator("h1")).to_have_text("项目路线图")
    expect(frame.locator("h2")).to_have_text(["背景", "计划", "风险"])
    expect(frame.locator("body")).to_contain_text('<script>alert("xss")</script>只是文字')
    cover = frame.locator("img")
    expect(cover).to_have_js_property("complete", True)
    assert cover.evaluate("i => i.naturalWidth") == 1200  # the inlined cover drew
    expect(page.locator(".thumbs img")).to_have_count(1)  # cover.png among the images
    if javascript:
        assert not [m for m in page.console if "error" in m.lower()], page.console
    name = "js" if javascript else "no-js"
    page.screenshot(path=str(ARTIFACTS / f"document-{name}.png"), full_page=True)
    # A full-page capture leaves the frame (another process: it has an origin of its own) blank.
    page.locator("iframe.preview").scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # its first paint (a picture only: nothing is asserted on it)
    page.screenshot(path=str(ARTIFACTS / f"document-preview-{name}.png"))


def test_notes_over_200_kb_are_refused_at_their_field(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/tasks/new?type=document")
    page.fill("#p-title", "太长")
    page.fill("#p-notes", "中" * 70_000)  # 210,000 bytes: the browser's maxlength counts chars
    page.click("button:text-is('Submit task')")
    expect(page.locator(".field-error")).to_contain_text("at most 204,800 bytes")
    expect(page.locator("#p-notes")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#p-title")).to_have_value("太长")  # what was typed is kept
