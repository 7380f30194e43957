"""media_index from the browser (JavaScript ON): pick a folder the form suggests, watch the
task end, see its thumbnails load and search its index in Chinese and English."""

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.library import make_library
from tests.live import running_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    files = folder / "files"
    make_library(files)
    with running_server(folder, {"TASKDECK_FILES_ROOT": str(files)}) as (http, _):
        yield http


def test_index_a_folder_from_the_form_then_see_thumbnails_and_search(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/tasks/new?type=media_index")
    suggested = page.locator("#choices-folder option")
    assert "library/photos" in [o.get_attribute("value") for o in suggested.all()]
    page.fill("#p-folder", "library")
    page.fill("#p-thumb_size", "96")
    page.click("button:text-is('Submit task')")
    page.wait_for_url(f"{http.base}/tasks/*")
    badge = page.locator("#task-status .badge").first
    expect(badge).to_have_text("Partly succeeded", timeout=30_000)  # the truncated JPEG
    # Ended before the page loaded or while it polled, the results are there without a reload.
    thumbs = page.locator(".thumbs img")
    expect(thumbs).to_have_count(3)
    for img in thumbs.all():  # served as artifacts (nosniff, sandboxed) and still shown
        img.scroll_into_view_if_needed()
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("i => i.naturalWidth") > 0
    page.fill("#index-q", "季度预算")
    page.click("#results button[type=submit]")
    expect(page.locator(".matches li")).to_have_count(1)
    expect(page.locator(".matches")).to_contain_text("library/notes/会议.md")
    page.fill("#index-q", "sunset")
    page.click("#results button[type=submit]")
    expect(page.locator(".matches li img")).to_have_count(2)  # it and its copy, one thumbnail
    assert not [m for m in page.console if "error" in m.lower()], page.console
    page.screenshot(path=str(ARTIFACTS / "media-index.png"), full_page=True)


def test_a_folder_outside_the_files_root_is_refused_on_the_form(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/tasks/new?type=media_index")
    page.fill("#p-folder", "../..")
    page.click("button:text-is('Submit task')")
    expect(page.locator(".field-error")).to_contain_text("outside the files root")
    expect(page.locator("#p-folder")).to_have_attribute("aria-invalid", "true")
