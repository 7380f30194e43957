"""English and Simplified Chinese: choosing the language, the switch, and a complete catalog."""

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app.services import accounts, commands, lease

ROOT = Path(__file__).resolve().parents[2]
ZH_PO = ROOT / "app/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def submit(app, message="你好，世界"):
    with app.app_context():
        alice = accounts.find_user("alice")
        params = {"stages": 2, "seconds": 0, "message": message}
        return commands.submit(alice, "demo", params, 6, actor="alice").id


def test_accept_language_picks_chinese_and_english_is_the_default(client):
    english = client.get("/login").data.decode()
    assert '<html lang="en">' in english and "<h1>Log in</h1>" in english
    chinese = client.get("/login", headers=ZH).data.decode()
    assert '<html lang="zh-CN">' in chinese and "<h1>登录</h1>" in chinese
    other = client.get("/login", headers={"Accept-Language": "fr-FR,de;q=0.8"}).data.decode()
    assert "<h1>Log in</h1>" in other


def test_the_footer_switch_sticks_and_beats_accept_language(client, browser):
    browser.login("alice")
    response = browser.post("/language", data={"lang": "zh_Hans_CN", "next": "/tasks?q=x"})
    assert response.status_code == 302 and response.location == "/tasks?q=x"
    assert "lang=zh_Hans_CN" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    page = client.get("/tasks").data.decode()
    assert "<h1>任务</h1>" in page and 'aria-pressed="true"' in page
    browser.post("/language", data={"lang": "en"})
    assert "<h1>Tasks</h1>" in client.get("/tasks", headers=ZH).data.decode()


def test_the_switch_ignores_unknown_languages_and_off_site_targets(client, browser):
    browser.login("alice")
    response = browser.post("/language", data={"lang": "xx", "next": "https://evil.example/"})
    assert response.location == "/" and "Set-Cookie" not in response.headers
    assert browser.post("/language", data={"lang": "en"}).location == "/"


def test_the_switch_needs_the_csrf_token(client):
    assert client.post("/language", data={"lang": "zh_Hans_CN"}).status_code == 400


def test_flash_messages_and_field_errors_are_translated(browser, app):
    task_id = submit(app)
    browser.login("alice")
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    page = browser.post(f"/tasks/{task_id}/cancel", follow_redirects=True).data.decode()
    assert "任务已取消" in page and "已取消" in page
    again = browser.post(f"/tasks/{task_id}/cancel", follow_redirects=True).data.decode()
    assert "状态为 &#39;cancelled&#39; 的任务无法取消" in again
    form = browser.post(
        "/tasks/new", data={"type": "demo", "params.stages": "99", "priority": "6"}
    ).data.decode()
    assert "99 大于最大值 20" in form and "任务运行几个阶段。" in form and "6 · 普通" in form


def test_task_data_is_shown_as_entered_in_either_language(browser, app):
    task_id = submit(app, message="Transcribe 会议 <b>1</b>")
    browser.login("alice")
    for lang in ("en", "zh_Hans_CN"):
        browser.post("/language", data={"lang": lang})
        page = browser.get(f"/tasks/{task_id}").data.decode()
        assert "Transcribe 会议 &lt;b&gt;1&lt;/b&gt;" in page and "step 1" in page


def test_the_json_api_always_answers_in_english(api, client, browser, app):
    task_id = submit(app)
    alice = api("alice")
    response = alice.post(f"/tasks/{task_id}/cancel", headers=dict(ZH))
    assert response.get_json()["message"] == "Task cancelled"
    browser.login("alice")
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    response = client.get(f"/api/v1/tasks/{'f' * 32}", headers=ZH)
    assert response.get_json() == {"detail": "Task not found"}


def test_times_and_durations_follow_the_language(browser, app):
    task_id = submit(app)
    with app.app_context():
        run = lease.start_stage(task_id, 0, 1)
        lease.finish_stage(run, {})
    browser.login("alice")
    english = browser.get("/tasks").data.decode()
    assert " ago</time>" in english or "sec. ago" in english
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    chinese = browser.get("/tasks").data.decode()
    assert "秒前</time>" in chinese or "分钟前</time>" in chinese
    detail = browser.get(f"/tasks/{task_id}").data.decode()
    assert "年" in detail and "秒</span>" in detail  # created date and the stage's duration


def test_every_message_in_the_code_is_translated_to_chinese():
    """`make translations` refreshes the catalog; this fails until new text is translated."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    in_code = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    with open(ZH_PO, "rb") as po:
        catalog = read_po(po)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id and not m.fuzzy
    }
    missing = sorted(
        text
        for text in in_code
        if text not in translated
        or not all(
            translated[text].string
            if isinstance(translated[text].string, tuple)
            else [translated[text].string]
        )
    )
    assert not missing, f"Untranslated: {missing}"
    problems = [(m.id, errors) for m, errors in catalog.check() if errors]
    assert not problems  # placeholders like %(name)s match in every translation


@pytest.mark.parametrize("path", ["/", "/tasks", "/tasks/new", "/tokens", "/tasks/X"])
def test_every_page_renders_in_chinese(browser, app, client, path):
    task_id = submit(app)
    browser.login("alice")
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    page = client.get(path.replace("X", task_id))
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.data.decode() and "概览" in page.data.decode()


def test_labels_of_literal_states_are_translated_on_every_render(browser, client):
    """Jinja would fold `'failed'|state_label` at compile time, in the first request's language."""
    browser.login("alice")
    assert '<span class="label">Succeeded</span>' in client.get("/").data.decode()
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    assert '<span class="label">成功</span>' in client.get("/").data.decode()
