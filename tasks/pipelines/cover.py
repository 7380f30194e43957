"""A document's cover: its title on a calm colour field, as a PNG drawn with Pillow.

A Chinese title needs a font with CJK glyphs: Debian's `fonts-noto-cjk`
(or any Noto CJK / Source Han font fontconfig keeps under /usr/share/fonts).
Without one the title is drawn in DejaVu or Pillow's own font, whose
missing glyphs show as boxes, and `font()` says so for the stage's log.
"""

import hashlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tasks.pipelines.notes import HAN

SIZE = (1200, 800)
MARGIN = 96
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
CJK_FONTS = ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Regular.ttc", "SourceHanSans*.tt?", "*CJK*.tt?")
LATIN_FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LiberationSans-Bold.ttf")
# In the Noto CJK collections the Simplified Chinese face is the third (JP, KR, SC, TC, HK).
SC_FACE = 2
# Background hues: dark enough for white text at 4.5:1 or more.
# Punctuation that may not begin a line: it stays with the character before it.
CLOSING = set("，。、：；！？）」』》】〉…,.:;!?)")
HUES = ((31, 64, 104), (46, 80, 60), (92, 45, 80), (110, 58, 30), (40, 60, 90), (70, 50, 110))


def needs_cjk(text: str) -> bool:
    return bool(HAN.search(text)) or any("\u3000" <= ch <= "\u30ff" for ch in text)


def font(text: str) -> tuple[Path | None, int]:
    """(font file, face index) to draw `text` with; (None, 0) means Pillow's built-in font.

    A CJK font when the text needs one, else DejaVu; failing those, whatever is there.
    """
    patterns = (CJK_FONTS if needs_cjk(text) else ()) + LATIN_FONTS + CJK_FONTS
    for pattern in patterns:
        for folder in FONT_DIRS:
            found = sorted(folder.rglob(pattern)) if folder.is_dir() else []
            if found:
                face = SC_FACE if found[0].name.startswith("NotoSansCJK") else 0
                return found[0], face
    return None, 0


def has_cjk(path: Path | None) -> bool:
    return path is not None and any(mark in path.name for mark in ("CJK", "Han"))


def draw(title: str, subtitle: str, target: Path) -> Path | None:
    """Write the cover PNG; the font file used (None: Pillow's built-in one)."""
    path, face = font(title + subtitle)
    hue = HUES[hashlib.sha256(title.encode()).digest()[0] % len(HUES)]
    image = Image.new("RGB", SIZE, hue)
    pen = ImageDraw.Draw(image)
    width = SIZE[0] - 2 * MARGIN
    pen.rectangle((MARGIN, MARGIN, MARGIN + 120, MARGIN + 12), fill=(255, 255, 255))
    size, lines = _fitted(pen, title, path, face, width)
    y = MARGIN + 80
    big = _font(path, face, size)
    for line in lines:
        pen.text((MARGIN, y), line, font=big, fill=(255, 255, 255))
        y += int(size * 1.25)
    small = _font(path, face, 36)
    pen.text((MARGIN, SIZE[1] - MARGIN - 36), subtitle, font=small, fill=(225, 230, 240))
    image.save(target, "PNG", optimize=True)
    return path


def _fitted(pen, title: str, path, face, width: int) -> tuple[int, list[str]]:
    """The largest size (96 down to 40) at which the title fits in four lines."""
    for size in range(96, 39, -8):
        lines = _wrapped(pen, title, _font(path, face, size), width)
        if len(lines) <= 4:
            return size, lines
    small = _font(path, face, 40)
    lines = _wrapped(pen, title, small, width)
    if len(lines) > 4:  # the rest does not fit: the fourth line ends with …
        last = lines[3]
        while last and pen.textlength(last + "…", font=small) > width:
            last = last[:-1]
        lines = [*lines[:3], last + "…"]
    return 40, lines


def _wrapped(pen, text: str, face, width: int) -> list[str]:
    """Lines no wider than `width`: at spaces for words, anywhere in Chinese."""
    lines: list[str] = []
    line = ""
    pieces = (
        bit
        for piece in _pieces(" ".join(text.split()))
        # A word wider than the line (a long URL, a name with no spaces) breaks anywhere.
        for bit in (list(piece) if pen.textlength(piece.strip(), font=face) > width else [piece])
    )
    for piece in pieces:
        trial = line + piece
        if line and pen.textlength(trial.strip(), font=face) > width:
            lines.append(line.strip())
            line = piece.lstrip()
        else:
            line = trial
    return [*lines, line.strip()]


def _pieces(text: str) -> list[str]:
    """Words with their leading space, each Chinese character on its own."""
    pieces, word = [], ""
    for ch in text:
        if ch in CLOSING and pieces and not word:
            pieces[-1] += ch
        elif needs_cjk(ch):
            if word:
                pieces.append(word)
            pieces.append(ch)
            word = ""
        elif ch == " " and word.strip():
            pieces.append(word)
            word = ch
        else:
            word += ch
    return pieces + ([word] if word else [])


def _font(path: Path | None, face: int, size: int):
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size, index=face)
