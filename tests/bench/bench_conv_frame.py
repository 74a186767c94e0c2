"""Speed of the Convolution panel: one animation frame, and a slider being dragged.

Prints one JSON line per figure:

* ``toy_frame`` for W = 7, 32, 64: median ms to show the next frame (window overlay,
  output grid, readout) *and* repaint the whole stage synchronously (``repaint()``), target
  ≤ 8 ms; baseline in the same run: a bare widget of the same size repainting one
  pre-filled QImage, plus the raw geometry time of the frame's settings (no Qt);
* ``slider_drag``: W dragged 1 → 64 → 1, each value followed by a stage repaint, in frames
  per second, target ≥ 30; baseline: the same sequence of pure geometry (no Qt).

Run: ``python tests/bench/bench_conv_frame.py [--repeats 5]`` (offscreen by default).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from PySide6.QtGui import QColor, QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget  # noqa: E402

from convviz.core.geometry.arithmetic import conv_axis, sliding_output, toy_input, toy_kernel  # noqa: E402
from convviz.ui.convolution.panel import ConvolutionPanel  # noqa: E402


class BareImage(QWidget):
    """Baseline: a widget that only draws one QImage of its own size."""

    def __init__(self):
        super().__init__()
        self.image = QImage(10, 10, QImage.Format_RGB32)

    def paintEvent(self, event):  # noqa: N802 (Qt name)
        if self.image.size() != self.size():
            self.image = QImage(self.size(), QImage.Format_RGB32)
            self.image.fill(QColor(240, 240, 240))
        p = QPainter(self)
        p.drawImage(0, 0, self.image)
        p.end()


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _geometry(w: int, k: int = 3, s: int = 1, p: int = 1) -> None:
    geom = conv_axis(w, k, s, p)
    sliding_output(toy_input(1, w), toy_kernel(1, k), geom, geom)


def bench_frames(app, panel, bare, repeats: int) -> None:
    stage = panel.toy.stage
    for w in (7, 32, 64):
        panel.toy.set_values(W=w, K=3, S=1, P=1, D=1)
        app.processEvents()
        count = panel.frame_count()
        frames, baseline, geometry = [], [], []
        for rep in range(repeats):
            for i in range(0, min(count, 60)):
                index = (rep * 61 + i) % count

                def frame(index=index):
                    panel.set_frame(index)
                    stage.repaint()

                frames.append(_ms(frame))
                baseline.append(_ms(bare.repaint))
            geometry.append(_ms(lambda: _geometry(w)))
        median, base = statistics.median(frames), statistics.median(baseline)
        print(json.dumps({"figure": "toy_frame", "W": w, "frames": count, "median_ms": round(median, 3),
                          "p90_ms": round(sorted(frames)[int(0.9 * len(frames))], 3),
                          "baseline": "bare same-size widget repainting one QImage",
                          "baseline_ms": round(base, 3), "ratio": round(median / base, 2),
                          "geometry_only_ms": round(statistics.median(geometry), 3),
                          "target_ms": 8, "ok": median <= 8}), flush=True)


def bench_drag(app, panel, repeats: int) -> None:
    slider = panel.toy.sliders["W"]
    stage = panel.toy.stage
    values = list(range(1, 65)) + list(range(64, 0, -1))
    drag_fps, geom_fps = [], []
    for _ in range(repeats):
        slider.setValue(1)
        app.processEvents()

        def drag():
            for v in values:
                slider.setValue(v)
                stage.repaint()

        drag_fps.append(len(values) / (_ms(drag) / 1000))
        geom_fps.append(len(values) / (_ms(lambda: [_geometry(v, 3, 1, 0) for v in values]) / 1000))
    fps, base = statistics.median(drag_fps), statistics.median(geom_fps)
    print(json.dumps({"figure": "slider_drag", "values": len(values), "fps": round(fps, 1),
                      "baseline": "same W sequence, pure geometry, no Qt", "baseline_fps": round(base, 1),
                      "ratio": round(base / fps, 2), "target_fps": 30, "ok": fps >= 30}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    window = QMainWindow()
    panel = ConvolutionPanel()
    window.setCentralWidget(panel)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    bare = BareImage()
    bare.resize(panel.toy.stage.size())
    bare.show()
    app.processEvents()
    bench_frames(app, panel, bare, args.repeats)
    bench_drag(app, panel, args.repeats)
    panel.pause()
    bare.close()
    window.close()


if __name__ == "__main__":
    main()
