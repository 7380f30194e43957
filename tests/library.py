"""A folder of photos and notes for the media_index tests (integration and browser).

Images made with Pillow (one with EXIF, a copy of it, one truncated), notes in
UTF-8, GBK and mojibake, Chinese names, and a symlink that leads out.
"""

import io
import os
from pathlib import Path

from PIL import Image

GBK_TEXT = "北京烤鸭很好吃，我们下周再去。今天天气很好，适合出去散步。" * 3
MOJIBAKE = "Our café résumé, written naïvely".encode().decode("latin-1")


def jpeg(size=(400, 300), exif=None) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, "JPEG", quality=90, exif=exif or b"")
    return out.getvalue()


def make_library(files: Path) -> Path:
    """files/library: 4 good images (2 the same), 1 truncated JPEG, 3 notes, 1 link out."""
    library = files / "library"
    (library / "photos").mkdir(parents=True)
    (library / "notes").mkdir()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    exif[0x8769] = {0x9003: "2026:05:01 18:30:00"}
    sunset = jpeg(exif=exif)
    (library / "photos" / "sunset.jpg").write_bytes(sunset)
    (library / "photos" / "sunset copy.jpg").write_bytes(sunset)  # a copy: one thumbnail
    Image.new("RGB", (120, 90), (20, 120, 200)).save(library / "photos" / "猫.png")
    (library / "photos" / "beach.jpg").write_bytes(jpeg((300, 500)))
    whole = jpeg()
    (library / "photos" / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    (library / "notes" / "会议.md").write_text("# 会议记录\n\n今天讨论了季度预算和招聘计划。\n")
    (library / "notes" / "gbk.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (library / "notes" / "mojibake.txt").write_text(MOJIBAKE, encoding="utf-8")
    os.symlink("/etc/hostname", library / "photos" / "escape.jpg")
    return library
