"""Layers panel speed: layer switch (render only) and new image → updated maps, with raw baselines.

Prints one JSON line per figure (medians; baselines measured in the same run, interleaved):
- ``layer_switch_render``: the view data is ready; time to show it (tile, scale, setImage) and
  paint the mosaic, for Lite0's ``conv_head`` (1280×7×7) and ``conv_stem`` (32×112×112).
  Baseline: one ``ImageItem.setImage`` of the worker's square mosaic and the same paint. Target ≤ 30 ms.
- ``new_image_to_maps``: open a photo until the panel shows its maps (decode, forward with capture,
  the mosaic view, GUI update). Baseline: decode + preprocess + a raw forward of a hook-free twin.
  Target ≤ 1.5×.
Run: ``python tests/bench/bench_layers.py [--repeats 15]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SAMPLES = [os.path.join(ROOT, "resources", "samples", f"{n}.jpg") for n in ("cat", "coffee", "rocket")]


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    import pyqtgraph as pg
    import torch
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication([])
    from convviz.core.images import load_image
    from convviz.ui.layers.panel import MOSAIC_KEY
    from convviz.ui.main_window import MainWindow
    from convviz.workers.engine import Engine
    from convviz.workers.session import Session

    engine = Engine()
    engine.import_torch()
    loaded = engine.build("default")
    with engine.lock:
        engine.install(loaded, engine.describe(loaded))
    window = MainWindow(session=Session(engine=engine), persist=False)
    window.resize(1400, 880)
    window.set_view("layers")
    window.show()
    panel = window.layers_panel

    def wait_ready() -> None:
        loop = QEventLoop()
        panel.ready.connect(loop.quit)
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        guard.start(120_000)
        loop.exec()
        guard.stop()
        panel.ready.disconnect(loop.quit)

    window.session.set_image(load_image(SAMPLES[0]))
    window.session.adopt_installed_model()
    wait_ready()
    app.processEvents()

    # ---- layer switch, render only ----------------------------------------------------------
    rgb = window.session.image.rgb
    data = {name: engine.view("mosaic", name, {}, ("bench", 0), rgb) for name in ("conv_head", "conv_stem")}
    canvas = panel.mosaic.mosaic_widget
    raw_view = pg.GraphicsLayoutWidget()
    raw_view.resize(canvas.size())
    raw_box = raw_view.addViewBox(lockAspect=True, invertY=True)
    raw_item = pg.ImageItem(axisOrder="row-major")
    raw_item.setLookupTable(panel.mosaic.lut)
    raw_box.addItem(raw_item)
    raw_view.show()

    def show(name):
        panel._request(name)  # what a click does on the GUI side (the worker's result is `data`)
        panel._on_view(MOSAIC_KEY, data[name])
        canvas.grab()

    def raw(name):
        raw_item.setImage(data[name].mosaic, autoLevels=False, levels=(0.0, 1.0))
        raw_box.autoRange(padding=0.01)
        raw_view.grab()

    for name in ("conv_head", "conv_stem") * 2:
        show(name)
        raw(name)
    times = {n: ([], []) for n in data}
    for _ in range(args.repeats):
        for name in data:
            other = "conv_stem" if name == "conv_head" else "conv_head"
            show(other)  # a real switch: the other layer was shown before
            times[name][0].append(_ms(lambda: show(name)))
            times[name][1].append(_ms(lambda: raw(name)))
    for name, (ui_ms, raw_ms) in times.items():
        shape = data[name].shape
        print(json.dumps({"figure": "layer_switch_render", "layer": name, "shape": list(shape),
                          "median_ms": round(statistics.median(ui_ms), 2),
                          "raw_setimage_ms": round(statistics.median(raw_ms), 2), "target_ms": 30,
                          "repeats": args.repeats}), flush=True)
    app.processEvents()
    window.session.drop_view("layers.vector")

    # ---- new image → updated maps ---------------------------------------------------------------
    twin = copy.deepcopy(loaded.module)
    for module in twin.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()

    def raw_forward(path):
        image = load_image(path)
        with torch.no_grad():
            twin(loaded.preprocess.to_tensor(image.rgb))

    def open_in_app(path):
        """Open ``path``; done when the panel has shown that photo's maps (and painted them)."""
        loop = QEventLoop()

        def arrived(key, data):
            if key == MOSAIC_KEY and data.layer == panel.current and window.session.image.source == path:
                loop.quit()

        window.session.view_ready.connect(arrived)  # after the panel's own slot: the maps are set
        window.session.open_image(path)
        loop.exec()
        window.session.view_ready.disconnect(arrived)
        canvas.grab()

    for layer in ("conv_stem", "conv_head"):
        show(layer)
        app.processEvents()
        raw_forward(SAMPLES[1])
        open_in_app(SAMPLES[1])
        app_ms, raw_ms = [], []
        repeats = max(3, args.repeats // 2)
        for i in range(repeats):
            path = SAMPLES[i % len(SAMPLES)]
            raw_ms.append(_ms(lambda: raw_forward(path)))
            app_ms.append(_ms(lambda: open_in_app(path)))
        a, r = statistics.median(app_ms), statistics.median(raw_ms)
        assert panel.mosaic.name == layer and window.session.image.source == path
        print(json.dumps({"figure": "new_image_to_maps", "layer": layer, "median_ms": round(a, 1),
                          "raw_decode_forward_ms": round(r, 1), "ratio": round(a / r, 3),
                          "paired_ratio_median": round(statistics.median(x / y for x, y in zip(app_ms, raw_ms)), 3),
                          "target_ratio": 1.5, "repeats": repeats}), flush=True)
    window.close()
    window.session.shutdown(5.0)
    raw_view.close()


if __name__ == "__main__":
    main()
