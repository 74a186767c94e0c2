"""Figures for top patches, before/after and effective fields as (H, W, 3) uint8 (numpy + Pillow).

The CLI writes them as PNG; the app could save them the same way. Colours: the theoretical field is
drawn orange, as in the app's receptive-field views; maps and heat use viridis.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from ..views.colormaps import lookup_table
from .render import blend, font, heat_rgba, plain, seen_mask, view_photo

BACKGROUND = (250, 250, 250)
INK = (30, 30, 30)
MUTED = (110, 110, 110)
ORANGE = (255, 140, 0)
EMPTY = (225, 225, 225)


def say(draw, xy, text: str, face, fill=INK) -> None:
    draw.text(xy, plain(text, face), fill=fill, font=face)


def fit(rgb: np.ndarray, side: int, fill=EMPTY) -> Image.Image:
    """``rgb`` scaled to fit a ``side`` × ``side`` square (centred, ``fill`` around)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    scale = side / max(img.width, img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.NEAREST if scale >= 2 else Image.BILINEAR)
    square = Image.new("RGB", (side, side), fill)
    square.paste(img, ((side - size[0]) // 2, (side - size[1]) // 2))
    return square


def colour(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """A 2-D array through viridis, scaled to ``lo``…``hi`` (default: its own range)."""
    values = np.nan_to_num(np.asarray(values, np.float64))
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return lookup_table("viridis")[np.clip((scaled * 255).round(), 0, 255).astype(np.int32)]


def _canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (width, height), BACKGROUND)
    return img, ImageDraw.Draw(img)


def _clip_text(draw, text: str, width: int, face) -> str:
    text = plain(text, face)
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def top_patches_figure(top, patches_by_channel: dict, title: str, subtitle: str = "") -> np.ndarray:
    """One channel: a 3 × 3 grid of its patches, value and file name under each. Several: one row
    of patches per channel, labelled. ``title`` and ``subtitle``: the two heading lines."""
    head, small = font(15), font(12)
    top_y = 56 if subtitle else 40
    if len(patches_by_channel) == 1:
        (channel, patches), = patches_by_channel.items()
        cell, cols = 180, 3
        rows = max(1, -(-top.values.shape[1] // cols))
        img, draw = _canvas(cols * (cell + 10) + 10, top_y + rows * (cell + 44))
        say(draw, (10, 10), _clip_text(draw, f"channel {channel} · {title}", img.width - 20, head), head)
        say(draw, (10, 32), _clip_text(draw, subtitle, img.width - 20, small), small, MUTED)
        for i in range(top.values.shape[1]):
            x, y = 10 + (i % cols) * (cell + 10), top_y + (i // cols) * (cell + 44)
            patch = patches[i] if i < len(patches) else None
            img.paste(fit(patch.rgb, cell) if patch else Image.new("RGB", (cell, cell), EMPTY), (x, y))
            if patch:
                say(draw, (x, y + cell + 3), f"#{i + 1}  {patch.value:.3g}", small, INK)
                name = _clip_text(draw, os.path.basename(patch.path), cell, small)
                say(draw, (x, y + cell + 19), name, small, MUTED)
        return np.asarray(img)
    cell, label = 96, 70
    k = top.values.shape[1]
    img, draw = _canvas(label + k * (cell + 4) + 6, top_y + len(patches_by_channel) * (cell + 22))
    say(draw, (10, 10), _clip_text(draw, title, img.width - 20, head), head, INK)
    say(draw, (10, 32), _clip_text(draw, subtitle, img.width - 20, small), small, MUTED)
    for r, (channel, patches) in enumerate(patches_by_channel.items()):
        y = top_y + r * (cell + 22)
        say(draw, (8, y + cell // 2 - 8), f"ch {channel}", head, INK)
        for i in range(k):
            x = label + i * (cell + 4)
            patch = patches[i] if i < len(patches) else None
            img.paste(fit(patch.rgb, cell) if patch else Image.new("RGB", (cell, cell), EMPTY), (x, y))
            if patch:
                say(draw, (x, y + cell + 3), f"{patch.value:.3g}", small, INK)
    return np.asarray(img)


def _draw_box(draw, box, scale: float, offset: tuple[int, int], width: int = 2) -> None:
    (top, bottom), (left, right) = box
    ox, oy = offset
    draw.rectangle([ox + left * scale, oy + top * scale, ox + (right + 1) * scale - 1, oy + (bottom + 1) * scale - 1],
                   outline=ORANGE, width=width)


def heat_overlay(photo: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The photo dimmed, with ``heat`` (0…1) laid over it in viridis where it is strong."""
    alpha = np.clip(heat, 0, 1)[..., None] ** 0.4 * 0.9  # the tails show too, not only the peak
    base = photo.astype(np.float32) * 0.5
    return (base * (1 - alpha) + colour(heat, 0.0, 1.0).astype(np.float32) * alpha).round().astype(np.uint8)


def erf_figure(unit, average=None, title: str = "") -> np.ndarray:
    """The photo with the effective field laid over it and the theoretical box; the heat alone; the numbers."""
    side = 320
    scale = side / unit.heat.shape[1]
    head, small = font(15), font(12)
    lines = [unit.sentence()]
    if average is not None:
        lines.append(f"layer average over {len(average.units)} units: {average.mean_share * 100:.0f} % of the box holds "
                     f"90 % of the gradient, σ ≈ {average.mean_std[0]:.1f} × {average.mean_std[1]:.1f} px")
    img, draw = _canvas(2 * side + 30, side + 60 + 18 * len(lines) * 2)
    channel = "all channels" if unit.channel is None else f"channel {unit.channel}"
    draw.text((10, 10), _clip_text(draw, f"{title} · {unit.layer} · unit {unit.unit} · {channel}", img.width - 20, head),
              fill=INK, font=head)
    photo = unit.input_rgb if unit.input_rgb is not None else np.zeros((*unit.heat.shape, 3), np.uint8)
    img.paste(fit(heat_overlay(photo, unit.heat), side), (10, 40))
    img.paste(fit(colour(np.sqrt(unit.heat), 0.0, 1.0), side), (side + 20, 40))
    for offset in ((10, 40), (side + 20, 40)):
        _draw_box(draw, unit.box, scale, offset)
    say(draw, (10, side + 44), "photo + |∂unit/∂input| (orange: theoretical field)", small, MUTED)
    say(draw, (side + 20, side + 44), "|∂unit/∂input| alone (square-root scale)", small, MUTED)
    y = side + 64
    for line in lines:
        for part in _wrap(draw, line, img.width - 20, small):
            say(draw, (10, y), part, small, INK)
            y += 18
    return np.asarray(img)[:y + 6]


def _wrap(draw, text: str, width: int, face) -> list[str]:
    text = plain(text, face)
    words, lines, line = text.split(" "), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=face) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line] if line else lines


def _predictions(draw, x: int, y: int, preds, width: int, face) -> None:
    for p in preds:
        say(draw, (x, y), _clip_text(draw, f"{p['prob'] * 100:5.1f}%  {p['label']}", width, face), face, INK)
        y += 16


def evidence_picture(photo: np.ndarray, cam) -> np.ndarray:
    """The photo under a Grad-CAM result's heat (grey where the model saw nothing), as the cam views draw it."""
    out_hw = cam.heat.shape
    return blend(view_photo(photo, out_hw), heat_rgba(cam.heat, 0.6, seen_mask(cam.frame, out_hw)))


def compare_figure(result, model_input: np.ndarray, photo: np.ndarray | None = None) -> np.ndarray:
    """The model input, both models' mean maps of the layer (one scale) and their difference; each
    model's Grad-CAM for its top class on ``photo`` (when the result has them) and its top predictions;
    a strip of the relative weight change per layer."""
    side, head, small = 200, font(15), font(12)
    mean_a, mean_b = result.maps_a.mean(0), result.maps_b.mean(0)
    lo, hi = float(min(mean_a.min(), mean_b.min())), float(max(mean_a.max(), mean_b.max()))
    diff = np.abs(mean_b - mean_a) if mean_a.shape == mean_b.shape else np.zeros_like(mean_a)
    panels = [(model_input, "the photo (model input)"), (colour(mean_a, lo, hi), f"A: {result.title_a}"),
              (colour(mean_b, lo, hi), f"B: {result.title_b}"),
              (colour(diff, 0.0, max(hi - lo, 1e-12)),
               "|B − A|, same scale" if diff.max() > 0 else "|B − A| = 0: the maps agree")]
    cams = photo is not None and result.cam_a is not None and result.cam_b is not None
    width = 4 * (side + 10) + 10
    img, draw = _canvas(width, 40 + (side + 30) * (2 if cams else 1) + 110 + 30 + 140)
    say(draw, (10, 10), _clip_text(draw, f"{result.layer}: mean over {len(result.maps_a)} channels", width - 20, head), head)
    for i, (panel, caption) in enumerate(panels):
        x = 10 + i * (side + 10)
        img.paste(fit(panel, side), (x, 40))
        say(draw, (x, 44 + side), _clip_text(draw, caption, side, small), small, MUTED)
    y = 40 + side + 26
    if cams:
        for i, cam in enumerate((result.cam_a, result.cam_b)):
            x = 10 + (i + 1) * (side + 10)
            img.paste(fit(evidence_picture(photo, cam), side), (x, y))
            say(draw, (x, y + side + 4), _clip_text(draw, f"{'AB'[i]}'s evidence for {cam.label}", side, small), small,
                MUTED)
        say(draw, (10, y), "\n".join(_wrap(draw, "Grad-CAM: where each model's evidence for its own top class lies "
                                                 "(at this layer)", side, small)), small, MUTED)
        y += side + 26
    _predictions(draw, 10 + (side + 10), y, result.predictions_a[:5], side, small)
    _predictions(draw, 10 + 2 * (side + 10), y, result.predictions_b[:5], side, small)
    note = " ".join(n for n in (result.input_note, result.evidence_note) if n)
    if note:
        say(draw, (10, y), "\n".join(_wrap(draw, note, side, small)[:6]), small, MUTED)
    y += 110
    say(draw, (10, y), _clip_text(draw, "weight change ‖ΔW‖/‖W‖ per layer: " + result.summary(), width - 20, small), small)
    _change_strip(draw, result.changes, (10, y + 22, width - 10, y + 130), small)
    return np.asarray(img)


def _change_strip(draw, changes, rect, face) -> None:
    """One bar per layer in model order (height: relative change, square-root scale); replaced layers orange."""
    x0, y0, x1, y1 = rect
    base = y1 - 16
    draw.line([x0, base, x1, base], fill=MUTED)
    if not changes:
        return
    moved = [c.change for c in changes if c.change]
    top = max(moved) if moved else 0.0
    step = (x1 - x0) / len(changes)
    for i, c in enumerate(changes):
        left = x0 + i * step
        if c.change == 0.0:  # unchanged: a short grey tick, so the frozen layers can be counted
            draw.line([left, base, left, base + 3], fill=MUTED)
        elif c.status == "replaced":
            draw.rectangle([left, y0 + 16, left + max(1, step - 1), base], fill=ORANGE)
        elif c.change:
            height = (base - y0 - 16) * np.sqrt(c.change / top)
            draw.rectangle([left, base - height, left + max(1, step - 1), base], fill=(59, 81, 139))
    say(draw, (x0, base + 2), changes[0].layer, face, MUTED)
    last = changes[-1].layer
    say(draw, (x1 - draw.textlength(last, font=face), base + 2), last, face, MUTED)
    legend = f"tallest bar: {top * 100:.3g} % (square-root scale)" if top else "no layer's weights moved"
    say(draw, (x0, y0 - 2), legend + "; orange: replaced (new head)" * any(c.status == "replaced" for c in changes),
        face, MUTED)
