"""How media_index reads one file: text cut safely, image sizes, refusals, snippets."""

import io

import pytest
from PIL import Image

from tasks.pipelines import files, media


def test_a_long_chinese_note_is_cut_at_a_line_end_and_decodes():
    line = "今天讨论了季度预算和招聘计划，会议记录如下。\n"
    for shift in range(3):  # wherever 64 KiB falls inside a character
        data = ("x" * shift + line * 3000).encode()
        text = media.read_text(io.BytesIO(data))
        assert text.startswith("x" * shift + "今天") and text.endswith("。\n")
    gbk = ("北京烤鸭很好吃，我们下周再去。\n" * 3000).encode("gbk")
    assert media.read_text(io.BytesIO(gbk)).startswith("北京烤鸭")


def test_an_image_is_measured_at_full_size_and_refused_when_too_large(monkeypatch):
    out = io.BytesIO()
    Image.new("RGB", (2000, 1500), (10, 20, 30)).save(out, "JPEG")
    width, height, taken, camera = media.read_image(io.BytesIO(out.getvalue()))
    assert (width, height, taken, camera) == (2000, 1500, None, None)  # not draft()'s size
    monkeypatch.setattr(media, "MAX_PIXELS", 1_000_000)
    with pytest.raises(ValueError, match="more than 1,000,000 pixels"):
        media.read_image(io.BytesIO(out.getvalue()))


def test_a_short_query_marks_its_match_like_the_full_text_snippet():
    text = "notes/会议.md  今天讨论了季度预算和招聘计划"
    assert media._marked(text, "预算", around=4) == "…论了季度[预算]和招聘计…"
    assert media._marked("Canon EOS", "canon") == "[Canon] EOS"


def test_an_image_pillow_cannot_decode_is_an_image_without_a_size_not_a_broken_file(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(files.ROOT_ENV, str(tmp_path))
    heic = tmp_path / "IMG_0001.HEIC"  # an iPhone photo's first box: ftyp, brand heic
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    sha, kind, mime, width, height, *_ = media.describe(heic, lambda: None)
    assert (kind, mime, width, height) == ("image", "image/heic", None, None)
    index = tmp_path / "index.sqlite"
    media.build_index(index, [("IMG_0001.HEIC", kind, 88, None, None, None, None)])
    (match,) = media.search(index, "IMG_0001", 5)
    assert match["kind"] == "image" and match["thumbnail"] is None  # no thumbnail promised
