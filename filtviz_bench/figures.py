"""Side-by-side pictures: rows are filters, columns are methods, every picture at its own pixel size
(no resampling, so a method's fine texture is shown as it is)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from filtviz_core.atomic import atomic_path

GAP = 4
LABEL_W = 112
HEAD_H = 20
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid(groups: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[np.ndarray]]]) -> Image.Image:
    """One image from panels placed left to right. A panel is ``(title, row labels, column titles,
    columns)``, each column an (R, H, W, 3) uint8 array (its pictures top to bottom); a column title
    may hold several lines."""
    font = _font()
    panels = []
    for title, rows, heads, columns in groups:
        h, w = columns[0].shape[1:3]
        width = LABEL_W + len(columns) * (w + GAP)
        head_lines = max(head.count("\n") + 1 for head in heads)
        height = HEAD_H * ((1 if title else 0) + head_lines) + len(rows) * (h + GAP)
        panel = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(panel)
        top = 0
        if title:
            draw.text((LABEL_W, 2), title, fill=INK, font=font)
            top = HEAD_H
        for j, head in enumerate(heads):
            draw.multiline_text((LABEL_W + j * (w + GAP), top + 2), head, fill=INK, font=font, spacing=4)
        top += HEAD_H * head_lines
        for i, label in enumerate(rows):
            y = top + i * (h + GAP)
            draw.text((4, y + h // 2 - 6), label, fill=INK, font=font)
            for j, col in enumerate(columns):
                panel.paste(Image.fromarray(np.asarray(col[i], np.uint8)), (LABEL_W + j * (w + GAP), y))
        panels.append(panel)
    out = Image.new(
        "RGB", (sum(p.width for p in panels) + GAP * (len(panels) - 1), max(p.height for p in panels)), BACKGROUND
    )
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + GAP
    return out


def save(image: Image.Image, path: str | os.PathLike[str], quality: int = 85) -> None:
    """Write atomically; ``.jpg``/``.jpeg`` as a JPEG of that quality, anything else as an optimized PNG."""
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    with atomic_path(path) as tmp:
        if suffix in ("jpg", "jpeg"):
            image.save(tmp, format="JPEG", quality=quality, optimize=True)
        else:
            image.save(tmp, format="PNG", optimize=True)
