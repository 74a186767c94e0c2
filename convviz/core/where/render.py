"""Pictures of the results, in plain numpy + Pillow (the CLI's PNGs and the app's exports; no torch).

Everything is drawn at the results' view size (the photo scaled to :data:`.boxes.VIEW_SIDE` at
most), with a legend strip below: a colour swatch and a label per class or box, then the caption.
"""
from __future__ import annotations

import io
import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..views.colormaps import lookup_table
from .boxes import Box, palette, view_hw

LEGEND_PAD = 8
BOX_COLOUR = (255, 64, 64)  #: the Grad-CAM box


#: how a symbol is spelled by a font that lacks it (Pillow's own, and fonts other than DejaVu Sans)
_PLAIN = str.maketrans({"×": "x", "“": '"', "”": '"', "–": "-", "−": "-", "…": "...", "²": "^2", "‖": "||",
                        "→": "->", "∂": "d", "σ": "sd", "Δ": "d", "≈": "~", "·": "-"})


def font(size: int = 14):
    """DejaVu Sans where the system has it (it has every symbol the figures use), else another font that
    spells them in ASCII (:func:`plain`)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        pass
    for name in ("Arial.ttf", "arial.ttf"):
        try:
            fallback = ImageFont.truetype(name, size)
            break
        except OSError:
            continue
    else:
        try:
            fallback = ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1: the bitmap font
            fallback = ImageFont.load_default()
    fallback.plain = True
    return fallback


def plain(text: str, text_font) -> str:
    """``text`` in characters ``text_font`` can draw."""
    return text.translate(_PLAIN) if getattr(text_font, "plain", False) else text


def view_photo(rgb: np.ndarray, out_hw=None) -> np.ndarray:
    """The photo resized to its view size (or ``out_hw``)."""
    out_hw = out_hw or view_hw(rgb.shape[:2])
    if tuple(rgb.shape[:2]) == tuple(out_hw):
        return np.ascontiguousarray(rgb[..., :3])
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., :3])).resize((out_hw[1], out_hw[0]), Image.BILINEAR))


def seen_mask(frame, out_hw) -> np.ndarray:
    """(Hv, Wv) bool: the view pixels that lie in the model input (the centre crop)."""
    x0, y0, x1, y1 = frame.edges_to_photo(0, 0, frame.input_hw[1], frame.input_hw[0])
    height, width = frame.photo_hw
    ys = (np.arange(out_hw[0]) + 0.5) * height / out_hw[0]
    xs = (np.arange(out_hw[1]) + 0.5) * width / out_hw[1]
    return ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]


def heat_rgba(heat: np.ndarray, opacity: float, seen: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 4) uint8: the heat (0…1) in viridis, ``opacity`` × (0.3 + 0.7 · heat) opaque; where the
    model saw nothing (``seen`` False) a grey veil instead."""
    lut = lookup_table("viridis")
    rgba = np.empty((*heat.shape, 4), np.uint8)
    rgba[..., :3] = lut[np.clip(heat * 255, 0, 255).astype(np.uint8)]
    rgba[..., 3] = np.clip(opacity * (0.3 + 0.7 * np.clip(heat, 0, 1)) * 255, 0, 255).astype(np.uint8)
    if seen is not None:
        rgba[~seen] = (40, 40, 40, 150)
    return rgba


def segment_rgba(label_map: np.ndarray, opacity: float) -> np.ndarray:
    """(H, W, 4) uint8: each class in its :func:`.boxes.palette` colour, background transparent."""
    colours = palette(max(1, int(label_map.max()) + 1))
    rgba = np.zeros((*label_map.shape, 4), np.uint8)
    labelled = label_map >= 0
    rgba[labelled, :3] = colours[label_map[labelled]]
    rgba[labelled, 3] = int(round(opacity * 255))
    return rgba


def blend(rgb: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    return (rgb.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha).round().astype(np.uint8)


def draw_boxes(img: np.ndarray, boxes, photo_hw, colours) -> np.ndarray:
    """Boxes (photo pixels) drawn on a view-sized image, each with its label and score."""
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    sx, sy = img.shape[1] / photo_hw[1], img.shape[0] / photo_hw[0]
    text_font = font(13)
    for box, colour in zip(boxes, colours):
        colour = tuple(int(c) for c in colour)
        x0, y0, x1, y1 = box.x0 * sx, box.y0 * sy, box.x1 * sx - 1, box.y1 * sy - 1
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=3)
        tag = plain(f"{box.label} {box.score:.2f}", text_font)
        tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), tag, font=text_font)
        ty = y0 if y0 + ty1 + 4 < img.shape[0] else max(0, y1 - ty1 - 4)
        draw.rectangle((x0, ty, x0 + tx1 + 6, ty + ty1 + 4), fill=colour)
        ink = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150 else (255, 255, 255)
        draw.text((x0 + 3, ty + 1), tag, fill=ink, font=text_font)
    return np.asarray(pil)


def with_legend(img: np.ndarray, items, caption: str = "") -> np.ndarray:
    """``img`` above a white strip: one swatch + text per (colour, text) item, then the caption wrapped."""
    text_font = font(14)
    width = img.shape[1]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = probe.textbbox((0, 0), "Ag", font=text_font)[3] + 6
    per_line = max(20, int(width / max(1.0, probe.textlength("n", font=text_font))))
    lines = textwrap.wrap(plain(caption, text_font), per_line) if caption else []
    items = [(colour, plain(text, text_font)) for colour, text in items]
    rows, x, placed = 1 if items else 0, LEGEND_PAD, []
    for colour, text in items:
        w = 22 + int(probe.textlength(text, font=text_font)) + 16
        if x + w > width and x > LEGEND_PAD:
            rows, x = rows + 1, LEGEND_PAD
        placed.append((x, rows - 1, colour, text))
        x += w
    height = LEGEND_PAD * 2 + line_h * (rows + len(lines))
    strip = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for x, row, colour, text in placed:
        y = LEGEND_PAD + row * line_h
        draw.rectangle((x, y + 2, x + 16, y + line_h - 6), fill=tuple(int(c) for c in colour), outline=(120, 120, 120))
        draw.text((x + 22, y), text, fill=(0, 0, 0), font=text_font)
    for k, line in enumerate(lines):
        draw.text((LEGEND_PAD, LEGEND_PAD + (rows + k) * line_h), line, fill=(40, 40, 40), font=text_font)
    return np.concatenate([img, np.asarray(strip)], 0)


def cam_picture(rgb: np.ndarray, cam, opacity: float = 0.6, box=None, caption: str | None = None) -> np.ndarray:
    """The photo under the Grad-CAM heat, its box (default: the result's), and a legend (the colour
    scale's ends) with the caption."""
    out_hw = cam.heat.shape
    photo = view_photo(rgb, out_hw)
    img = blend(photo, heat_rgba(cam.heat, opacity, seen_mask(cam.frame, out_hw)))
    box = box or Box(*cam.box, cam.index, cam.label, cam.prob)
    img = draw_boxes(img, [box], rgb.shape[:2], [BOX_COLOUR])
    lut = lookup_table("viridis")
    items = [(lut[0], "no evidence"), (lut[128], "half the peak"), (lut[255], "peak evidence"),
             ((40, 40, 40), "not seen (outside the crop)")]
    return with_legend(img, items, caption or cam.caption())


def boxes_picture(rgb: np.ndarray, boxes, caption: str, max_boxes: int = 12) -> np.ndarray:
    """The photo with the best ``max_boxes`` boxes, one colour per class, a legend and the caption."""
    boxes = list(boxes)[:max_boxes]
    photo = view_photo(rgb)
    classes = list(dict.fromkeys(b.index for b in boxes))
    colours = palette(len(classes))
    img = draw_boxes(photo, boxes, rgb.shape[:2], [colours[classes.index(b.index)] for b in boxes])
    names = {b.index: b.label for b in boxes}
    return with_legend(img, [(colours[k], f"{names[c]} [{c}]") for k, c in enumerate(classes)], caption)


def segment_picture(rgb: np.ndarray, seg, caption: str, opacity: float = 0.55) -> np.ndarray:
    """The photo under the coarse segmentation, a legend of the classes (with their share) and background."""
    photo = view_photo(rgb, seg.label_map.shape)
    img = blend(photo, segment_rgba(seg.label_map, opacity))
    colours = palette(len(seg.classes))
    items = [(colours[k], f"{label} {share:.0%}") for k, (label, share) in enumerate(zip(seg.labels, seg.fractions))]
    items.append(((255, 255, 255), f"background (ticked classes together below {seg.background:.0%})"))
    return with_legend(img, items, caption)


def side_by_side(*images: np.ndarray, gap: int = 12) -> np.ndarray:
    """Pictures next to each other on white, tops aligned."""
    height = max(i.shape[0] for i in images)
    parts = []
    for k, image in enumerate(images):
        pad = np.full((height - image.shape[0], image.shape[1], 3), 255, np.uint8)
        parts.append(np.concatenate([image, pad], 0))
        if k < len(images) - 1:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(parts, 1)


def png_bytes(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return buffer.getvalue()
