"""The document pipeline's parts on their own: reading notes, the extractive engine, the cover,
the key file's rules, and long values cut on the page."""

import os

import pytest
from PIL import Image, ImageDraw

from app.web.filters import SHOWN_MAX, shown_value
from tasks.pipelines import cover, engines, notes
from tasks.pipelines.document import page


def test_sentences_split_chinese_and_english_lists_and_headings():
    text = "# 计划\n明年发布。测试先行！\n- 备份数据\n- 迁移\n在三月。\nWe ship. Tests first?\n"
    assert notes.sentences(text) == [
        "计划",
        "明年发布。",
        "测试先行！",
        "备份数据",
        "迁移",
        "在三月。",
        "We ship.",
        "Tests first?",
    ]
    assert notes.sentences("第一行没有句号\n第二行。") == ["第一行没有句号第二行。"]  # no space


def test_words_segment_chinese_and_drop_stop_words():
    assert notes.words("我们讨论了发布计划") == ("讨论", "发布", "计划")
    assert notes.words("The release plan and the budget") == ("release", "plan", "budget")


def test_headings_make_the_sections_and_later_ones_fold_into_the_last():
    text = "Intro.\n# A\nOne.\n## Sub\nTwo.\n# B\nThree.\n# C\nFour.\n# D\nFive."
    found, source = notes.outline(text, 3)
    assert source == "headings"
    assert [(s.title, s.sentences) for s in found] == [
        ("A", ["Intro.", "One.", "Sub", "Two."]),
        ("B", ["Three."]),
        ("C", ["Four.", "D", "Five."]),
    ]


def test_without_headings_the_cuts_fall_where_the_words_change():
    said = ["数据库迁移在三月。", "数据库要先备份。", "备份每天运行。"]
    said += ["预算上升了。", "预算要重新估算。", "预算周五批准。"]
    found, source = notes.outline("".join(said), 2)
    assert source == "keywords"
    assert [s.sentences for s in found] == [said[:3], said[3:]]
    assert "数据库" in found[0].title and "预算" in found[1].title
    found = notes.outline("".join(said), 4)[0]
    assert len(found) == 4 and [s for f in found for s in f.sentences] == said  # all, in order
    assert notes.outline("Just one sentence.", 6)[0][0].sentences == ["Just one sentence."]


def test_the_extractive_engine_keeps_the_notes_order_and_their_words():
    said = tuple(f"Sentence {n} about budget." if n % 2 else f"Other {n}." for n in range(1, 11))
    text = engines.Extractive().write(engines.Request("Doc", "Budget", said, 1, 1))
    kept = [s for s in said if s in text]
    assert len(kept) == engines.KEPT and kept == sorted(kept, key=said.index)
    assert all(s in kept for s in said if "budget" in s)  # the section's words first
    chinese = ("第一句。", "第二句。")
    assert (
        engines.Extractive().write(engines.Request("D", "H", chinese, 1, 1)) == "第一句。第二句。"
    )
    with pytest.raises(ValueError, match="nothing for section 'Empty'"):
        engines.Extractive().write(engines.Request("D", "Empty", (), 1, 1))


def test_the_key_file_must_be_the_owner_s_alone(tmp_path, monkeypatch):
    key = tmp_path / "llm.key"
    key.write_text("sk-secret\n")
    monkeypatch.delenv(engines.KEY_ENV, raising=False)
    monkeypatch.setenv(engines.KEY_FILE_ENV, str(key))
    os.chmod(key, 0o640)
    with pytest.raises(ValueError, match="owner only") as refused:
        engines._key()
    assert "sk-secret" not in str(refused.value)
    os.chmod(key, 0o600)
    assert engines._key() == "sk-secret"
    monkeypatch.setenv(engines.KEY_ENV, "sk-from-env")
    assert engines._key() == "sk-from-env"


def test_openai_is_offered_only_when_its_endpoint_is_set(monkeypatch):
    monkeypatch.delenv(engines.URL_ENV, raising=False)
    assert engines.configured() == ["extractive"]
    with pytest.raises(RuntimeError, match="TASKDECK_LLM_URL"):
        engines.engine("openai")
    monkeypatch.setenv(engines.URL_ENV, "http://127.0.0.1:9/v1")
    assert engines.configured() == ["extractive", "openai"]
    assert engines.engine("openai").url == "http://127.0.0.1:9/v1"


def test_a_chinese_title_gets_a_cjk_font_and_fits_the_cover(tmp_path):
    path, face = cover.font("路线图")
    assert cover.has_cjk(path) and face == cover.SC_FACE  # fonts-noto-cjk (.ci/run installs it)
    assert not cover.has_cjk(cover.font("Roadmap")[0])
    title = "二〇二六年产品路线图：从想法到发布的每一步，以及之后的维护计划"
    used = cover.draw(title, "背景 · 计划", tmp_path / "c.png")
    assert used == path
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == cover.SIZE
        pen = ImageDraw.Draw(image)
        size, lines = cover._fitted(pen, title, path, face, cover.SIZE[0] - 2 * cover.MARGIN)
    assert "".join(lines) == title and len(lines) <= 4
    assert not any(line.startswith(("：", "，")) for line in lines)  # no line opens on a comma


def test_long_values_are_cut_on_the_page(app):
    with app.test_request_context():
        assert shown_value("会" * SHOWN_MAX) == "会" * SHOWN_MAX
        cut = shown_value("会" * (SHOWN_MAX + 1))
        assert len(cut) == SHOWN_MAX and cut.endswith("…")


def test_the_html_page_escapes_everything_and_runs_no_script():
    html = page("<b>T</b>", [("<i>h</i>", "<script>x</script>\n\np2"), ("gone", None)], "AAAA")
    assert "<script" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<h1>&lt;b&gt;T&lt;/b&gt;</h1>" in html and "<h2>&lt;i&gt;h&lt;/i&gt;</h2>" in html
    assert "<p>p2</p>" in html and 'class="missing"' in html


def test_a_heading_line_of_200_kb_of_spaces_is_read_at_once():
    found, source = notes.outline("# a" + " " * 200_000 + "b #\nText under it.", 3)
    assert source == "headings" and found[0].title.startswith("a ") and found[0].title[-1] == "b"


def test_notes_from_a_browser_s_form_and_titles_are_tidied_and_empty_notes_refused():
    from tasks.pipelines.document import document

    params = document.parse({"title": " 计划\r\n 第二行 ", "notes": "第一行\r\n第二行。\r\n"})
    assert params.title == "计划 第二行" and params.notes == "第一行\n第二行。\n"
    assert notes.sentences(params.notes) == ["第一行第二行。"]  # no space from the \r\n
    with pytest.raises(ValueError, match="must hold some text"):
        document.parse({"title": "t", "notes": "# \n- \n1. \n"})


def test_a_long_word_in_a_title_breaks_to_fit_the_cover(tmp_path):
    path, face = cover.font("x")
    with Image.new("RGB", cover.SIZE) as image:
        pen = ImageDraw.Draw(image)
        width = cover.SIZE[0] - 2 * cover.MARGIN
        size, lines = cover._fitted(pen, "https://example.com/" + "a" * 180, path, face, width)
        face_used = cover._font(path, face, size)
        assert all(pen.textlength(line, font=face_used) <= width for line in lines)
        assert len(lines) <= 4
