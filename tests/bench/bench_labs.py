"""Speed of a lab switch: new lab arguments → view computed from the cache → rendered.

One JSON line per lab on EfficientNet-Lite0 and the cat (900×600 widget, offscreen):

* ``render_ms``: median ms of the widget's render (setImage / setData / texts) plus a
  synchronous repaint — target ≤ 30 ms;
* ``switch_ms``: median ms from the request to the rendered result (the view is computed in a
  worker from the cached forward pass; includes the event-loop round trip);
* ``forward_passes``: new forward passes during the switches (must be 0).

Run: ``python tests/bench/bench_labs.py [--repeats 15]``.
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

import torch  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from convviz.core.images import load_image  # noqa: E402
from convviz.ui.labs import DropoutLab, PointwiseLab, PoolLab, ReluLab  # noqa: E402
from convviz.workers.engine import Engine  # noqa: E402
from convviz.workers.session import Session  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: lab class, layer, and the argument change of switch i
CASES = (
    (ReluLab, "bn1", lambda lab, i: lab.channel.setValue(i % 32)),
    (PoolLab, "bn1", lambda lab, i: lab.set_settings(kernel=2 + i % 3, stride=2, channel=i % 32)),
    (DropoutLab, "conv_head", lambda lab, i: lab.set_p(0.05 * (1 + i % 18))),
    (PointwiseLab, "blocks.1.0.conv_pwl", lambda lab, i: lab.channel.setValue(i % 24)),
)


def wait(app, condition, timeout_s: float = 120.0) -> None:
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the lab did not render in time")
        app.processEvents()
        time.sleep(0.0005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication([])
    engine = Engine()
    engine.import_torch()
    loaded = engine.build("default")
    info = engine.describe(loaded)
    with engine.lock:
        engine.install(loaded, info)
    session = Session(engine=engine)
    session.set_image(load_image(os.path.join(ROOT, "resources", "samples", "cat.jpg")))
    session.adopt_installed_model()
    rows = {r.name: r for r in session.model_info.rows}
    for cls, layer, change in CASES:
        lab = cls()
        lab.resize(900, 600)
        lab.show()
        lab.bind(session)
        lab.set_layer(layer, rows[layer])
        wait(app, lab.is_ready)
        passes = session.forward_passes
        renders, switches = [], []
        for i in range(1, args.repeats + 1):
            lab._ready = False
            started = time.perf_counter()
            change(lab, i)
            wait(app, lab.is_ready)
            switches.append((time.perf_counter() - started) * 1000.0)
            t = time.perf_counter()
            lab.repaint()
            renders.append(lab.render_ms + (time.perf_counter() - t) * 1000.0)
        print(json.dumps({"figure": "lab_switch", "lab": cls.NAME, "layer": layer, "repeats": args.repeats,
                          "render_ms": round(statistics.median(renders), 2),
                          "switch_ms": round(statistics.median(switches), 2), "target_render_ms": 30,
                          "forward_passes": session.forward_passes - passes}), flush=True)
        lab.close()
    session.shutdown(5.0)


if __name__ == "__main__":
    main()
