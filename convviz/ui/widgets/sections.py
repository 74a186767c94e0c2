"""Small building blocks of the window's layout: section headings, scrollable tabs, the model card."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLayout, QScrollArea, QVBoxLayout, QWidget


def text_label(text: str = "", *, rich: bool = False, colour: str | None = None) -> QLabel:
    """A word-wrapping label; ``rich`` for rich text, ``colour`` (e.g. ``"#666"``) for a muted note."""
    label = QLabel(text)
    label.setWordWrap(True)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
    if colour:
        label.setStyleSheet(f"color: {colour};")
    return label


def _fill(layout, items, spacing: int | None):
    """Add ``items`` to ``layout``: widgets, layouts, ``(item, stretch)``; in a row also a str (a plain
    label), an int (that much space) or None (a stretch)."""
    if spacing is not None:
        layout.setSpacing(spacing)
    for item in items:
        item, stretch = item if isinstance(item, tuple) else (item, 0)
        if item is None:
            layout.addStretch(1)
        elif isinstance(item, int):
            layout.addSpacing(item)
        elif isinstance(item, QLayout):
            layout.addLayout(item, stretch)
        else:
            layout.addWidget(QLabel(item) if isinstance(item, str) else item, stretch)
    return layout


def vstack(owner: QWidget | None, *items, margins: int = 0, spacing: int | None = None) -> QVBoxLayout:
    """``owner``'s vertical layout (or a free one) holding ``items`` in order: widgets, layouts or
    ``(item, stretch)``."""
    layout = QVBoxLayout(owner) if owner is not None else QVBoxLayout()
    layout.setContentsMargins(margins, margins, margins, margins)
    return _fill(layout, items, spacing)


def hrow(*items, spacing: int | None = 6) -> QHBoxLayout:
    """A row of controls: widgets, layouts, ``(item, stretch)``, a str for a plain label, an int for
    that much space, None for a stretch."""
    return _fill(QHBoxLayout(), items, spacing)


def heading(text: str) -> tuple[QWidget, QLabel]:
    """A bold section title with a grey caption line under it."""
    box = QWidget()
    title, caption = QLabel(text), QLabel("")
    title.setStyleSheet("font-size: 11pt; font-weight: 600;")
    caption.setStyleSheet("color: #666;")
    caption.setWordWrap(True)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(1)
    layout.addWidget(title)
    layout.addWidget(caption)
    return box, caption


def scrollable(panel: QWidget) -> QScrollArea:
    """``panel`` in a frameless scroll area, so the window can be smaller than the panel's minimum."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def model_card_text(info) -> str:
    """A few lines on what the model expects and how big it is (rich text)."""
    p = info.preprocess
    resize = round(p.input_size / p.crop_pct)
    convs = len(info.conv_layers)
    lines = [
        f"<b>{html.escape(info.title)}</b>",
        f"Input {p.input_size}×{p.input_size}: short side resized to {resize}, centre crop "
        f"({p.crop_pct:.1%}), {p.interpolation}; scaled {html.escape(p.scaling_text)}",
        f"{info.params / 1e6:.2f} M parameters · {len(info.rows)} module calls · {convs} Conv2d layers",
    ]
    if getattr(info, "head", ""):
        lines.append(html.escape(info.head))
    if info.note:
        lines.append(f"<span style='color:#9a5b00'>⚠ {html.escape(info.note)}</span>")
    return "<br>".join(lines)


def rule(vertical: bool = False) -> QFrame:
    """A thin light-grey line between sections (horizontal, or vertical between columns)."""
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine if vertical else QFrame.Shape.HLine)
    line.setStyleSheet("color: #ddd;")
    return line
