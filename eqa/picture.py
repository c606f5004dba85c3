"""The episode picture of a question episode: top-down map, key views and the outcome in text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlm.visual_prompt import FONT_PATH

VIEW_WIDTH = 320  # pixels per view thumbnail
MARGIN = 8


def compose_episode_png(map_png: Path, views: list[tuple[str, np.ndarray]], lines: list[str], out: Path,
                        font_size: int = 14) -> Path:
    """Write `out`: the map PNG on the left, the titled RGB views stacked on the right, text lines below."""
    font = ImageFont.truetype(str(FONT_PATH), size=font_size)
    top = Image.open(map_png).convert("RGB") if Path(map_png).is_file() else Image.new("RGB", (320, 240), "white")
    thumbs = []
    for title, rgb in views:
        img = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
        img = img.resize((VIEW_WIDTH, max(1, round(img.height * VIEW_WIDTH / img.width))), Image.BILINEAR)
        thumbs.append((title, img))
    line_h = font_size + 4
    right_h = sum(t.height + line_h for _, t in thumbs)
    height = max(top.height, right_h) + MARGIN * 2 + line_h * len(lines)
    width = top.width + (VIEW_WIDTH + MARGIN if thumbs else 0) + MARGIN * 2
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    canvas.paste(top, (MARGIN, MARGIN))
    y = MARGIN
    x = top.width + 2 * MARGIN
    for title, img in thumbs:
        draw.text((x, y), title, fill=(0, 0, 0), font=font)
        canvas.paste(img, (x, y + line_h))
        y += img.height + line_h
    y = max(top.height, right_h) + MARGIN * 2
    for line in lines:
        draw.text((MARGIN, y), line, fill=(0, 0, 0), font=font)
        y += line_h
    out = Path(out)
    canvas.save(out)
    return out
