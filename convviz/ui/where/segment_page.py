"""Step 3, segmentation: the dense class maps on the photo, coloured by the winning picked class."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QWidget

from convviz.core.where.boxes import palette
from convviz.ui.where.cam_page import css_rgb, page_layout, side_column, slider, swatch
from convviz.ui.where.canvas import PhotoCanvas
from convviz.ui.widgets.sections import text_label

#: Classes offered (most probability over the photo first) and ticked at first.
OFFERED, TICKED = 10, 4


def _nowrap(text: str) -> str:
    return html.escape(text).replace(" ", "&nbsp;")


class SegmentPage(QWidget):
    """Class picks and the background threshold on the left; the coloured photo, legend and why it is coarse."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result = None
        self.segmentation = None
        self.photo = None
        self._offered: tuple[int, ...] = ()
        self.classes = QListWidget()
        self.classes.setMaximumHeight(self.classes.fontMetrics().lineSpacing() * (OFFERED + 1) + 12)
        self.classes.itemChanged.connect(lambda _item: self.redraw())
        self.background_label = text_label()
        self.background = slider(0, 95, 30)
        self.background.valueChanged.connect(lambda _v: self.redraw())
        self.opacity = slider(10, 100, 55)
        self.opacity_label = QLabel()
        self.opacity.valueChanged.connect(lambda _v: self.redraw())
        side = side_column(text_label("<b>Classes</b> to colour (most of the photo first)"), self.classes,
                           self.background_label, self.background, self.opacity_label, self.opacity)
        self.canvas = PhotoCanvas()
        self.legend = text_label(rich=True)
        self.note = text_label(colour="#444")
        page_layout(self, side, self.canvas, self.legend, self.note)
        self._labels()

    def picked(self) -> tuple[int, ...]:
        return tuple(self.classes.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.classes.count())
                     if self.classes.item(r).checkState() == Qt.CheckState.Checked)

    def set_picked(self, classes) -> None:
        """Tick exactly ``classes`` among those offered (tests, and keeping picks across runs)."""
        self.classes.blockSignals(True)
        for r in range(self.classes.count()):
            item = self.classes.item(r)
            ticked = item.data(Qt.ItemDataRole.UserRole) in set(classes)
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.classes.blockSignals(False)
        self.redraw()

    def background_value(self) -> float:
        return self.background.value() / 100

    def set_photo(self, photo) -> None:
        self.photo = photo

    def set_dense(self, result) -> None:
        """New dense maps: offer their top classes (keeping the ticks of classes still offered)."""
        from convviz.core.where.dense import top_classes

        kept = set(self.picked())
        self.result = result
        offered = top_classes(result, OFFERED)
        self.classes.blockSignals(True)
        self.classes.clear()
        for rank, index in enumerate(offered):
            item = QListWidgetItem(result.labels[index])
            item.setData(Qt.ItemDataRole.UserRole, int(index))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = index in kept if kept & set(offered) else rank < TICKED
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        self._offered = tuple(offered)
        self.canvas.set_photo(self.photo)
        self.redraw()

    def clear(self, message: str = "") -> None:
        self.result = self.segmentation = None
        self.canvas.set_photo(None)
        self.legend.setText("")
        self.note.setText(message)

    def redraw(self) -> None:
        self._labels()
        if self.result is None:
            return
        from convviz.core.where.dense import coarseness_text, segment
        from convviz.core.where.render import segment_rgba

        seg = segment(self.result, self.picked(), self.background_value())
        self.segmentation = seg
        self.canvas.set_overlay(segment_rgba(seg.label_map, self.opacity.value() / 100))
        colours = palette(len(seg.classes))
        items = [swatch(css_rgb(c), _nowrap(f"{label} {share:.0%}"))
                 for c, label, share in zip(colours, seg.labels, seg.fractions)]
        items.append(swatch("#dddddd", _nowrap(f"background {(seg.label_map < 0).mean():.0%}")))
        self.legend.setText(" &nbsp; ".join(items) if seg.classes else "Tick a class to colour it.")
        self.note.setText(coarseness_text(self.result))

    def _labels(self) -> None:
        self.background_label.setText(f"Background where the ticked classes together have less than "
                                      f"{self.background.value()} %")
        self.opacity_label.setText(f"Colour opacity: {self.opacity.value()} %")
