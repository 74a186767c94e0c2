"""Layers panel speed: layer switch (render only) and new image → updated maps, with raw baselines.

Prints one JSON line per figure (medians; baselines measured in the same run, interleaved):
- ``layer_switch_render``: the view data is ready; time to show it (tile, scale, setImage) and
  paint the mosaic, for Lite0's ``conv_head`` (1280×7×7) and ``conv_stem`` (32×112×112).
  Baseline: one ``ImageItem.setImage`` of the worker's square mosaic and the same paint. Target ≤ 30 ms.
- ``new_image_to_maps``: open a photo until its maps are on screen: from ``open_image`` to the end of
  the mosaic canvas's first paint after the panel got them (decode, forward with capture, the views,
  GUI update, paint; what other panels do after that paint is not counted). Baseline: decode +
  preprocess + a raw forward of a hook-free twin. Target ≤ 1.5×.
  Also the CPU time of the whole process per photo, every panel's work included (``app_cpu_ms``, of
  which ``gui_thread_cpu_ms``), beside the baseline's (``raw_cpu_ms``): when the machine's cores are
  busy with other work, the wall times follow the CPU totals, and these say where they go.
The window runs with the app's start-up settings (``configure_gui_process``) and every panel's
subscriptions, as ``convviz`` does.
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

    from convviz.workers.process import configure_gui_process

    torch.set_num_threads(1)
    configure_gui_process()  # as the app does at start-up
    app = QApplication.instance() or QApplication([])
    from convviz.core.images import load_image
    from convviz.ui.layers.panel import MOSAIC_KEY
    from convviz.ui.main_window import MainWindow
    from convviz.ui.widgets.mosaic_view import _Canvas
    from convviz.workers.engine import Engine
    from convviz.workers.session import Session

    class FirstPaint:
        """Notes the end of the mosaic canvas's first paint once armed (the maps have arrived)."""

        armed, loop, canvas, ended = False, None, None, 0.0

    first_paint = FirstPaint()
    canvas_paint = _Canvas.paintEvent

    def paint_and_note(view, event):  # set before the window is built: PySide binds overrides then
        canvas_paint(view, event)
        if first_paint.armed and view is first_paint.canvas:
            first_paint.armed, first_paint.ended = False, time.perf_counter()
            first_paint.loop.quit()

    _Canvas.paintEvent = paint_and_note

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

    first_paint.canvas = canvas

    def open_in_app(path):
        """Open ``path``; returns the ms until the canvas has painted that photo's maps."""
        loop = QEventLoop()
        first_paint.loop = loop

        def arrived(key, data):
            if key == MOSAIC_KEY and data.layer == panel.current and window.session.image.source == path:
                first_paint.armed = True

        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        guard.start(120_000)
        window.session.view_ready.connect(arrived)  # after the panel's own slot: the maps are set
        started = time.perf_counter()
        window.session.open_image(path)
        loop.exec()
        guard.stop()
        window.session.view_ready.disconnect(arrived)
        assert not first_paint.armed, "the maps were never painted"
        return (first_paint.ended - started) * 1000

    def settle():
        """Let every panel finish with the photo (jobs, results, paints): none of it lands in the next timing."""
        deadline = time.perf_counter() + 60
        while window.session.runner.jobs and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)
        for _ in range(3):
            app.processEvents()

    def open_and_settle(path):
        elapsed = open_in_app(path)
        settle()
        return elapsed

    def cpu_ms(fn, into: dict) -> float:
        """What ``fn`` returns (else its wall ms); its process and GUI-thread CPU ms are appended to ``into``."""
        process, thread = time.process_time(), time.thread_time()
        started = time.perf_counter()
        result = fn()
        wall = (time.perf_counter() - started) * 1000
        into.setdefault("process", []).append((time.process_time() - process) * 1000)
        into.setdefault("thread", []).append((time.thread_time() - thread) * 1000)
        return wall if result is None else result

    for layer in ("conv_stem", "conv_head"):
        show(layer)
        app.processEvents()
        raw_forward(SAMPLES[1])
        open_in_app(SAMPLES[1])
        settle()
        app_ms, raw_ms, app_cpu, raw_cpu = [], [], {}, {}
        repeats = max(3, args.repeats // 2)
        for i in range(repeats):
            path = SAMPLES[i % len(SAMPLES)]
            raw_ms.append(cpu_ms(lambda: raw_forward(path), raw_cpu))
            app_ms.append(cpu_ms(lambda: open_and_settle(path), app_cpu))
        a, r = statistics.median(app_ms), statistics.median(raw_ms)
        assert panel.mosaic.name == layer and window.session.image.source == path
        print(json.dumps({"figure": "new_image_to_maps", "layer": layer, "median_ms": round(a, 1),
                          "raw_decode_forward_ms": round(r, 1), "ratio": round(a / r, 3),
                          "paired_ratio_median": round(statistics.median(x / y for x, y in zip(app_ms, raw_ms)), 3),
                          "app_cpu_ms": round(statistics.median(app_cpu["process"]), 1),
                          "gui_thread_cpu_ms": round(statistics.median(app_cpu["thread"]), 1),
                          "raw_cpu_ms": round(statistics.median(raw_cpu["process"]), 1),
                          "load_avg_1m": round(os.getloadavg()[0], 2), "target_ratio": 1.5, "repeats": repeats}),
              flush=True)
    window.close()
    window.session.shutdown(5.0)
    raw_view.close()


if __name__ == "__main__":
    main()
