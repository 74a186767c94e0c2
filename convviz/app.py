"""Builds the QApplication and the window, and wires the command line to them.

``python main.py [--image PATH] [--model SPEC] [--view NAME] [--screenshot PNG [--size WxH]] [--allow-pickle]``

Start-up order matters: the window is shown and painted first; only then does the
first model load start, in a worker thread, and with it ``import torch``. Nothing this
module imports at its top pulls in torch.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

EXIT_USAGE = 2
SCREENSHOT_TIMEOUT_MS = 300_000


from .core.labs.names import LABS  # noqa: E402  (torch-free: the one table of lab names, for --lab)
from .ui.registry import panel_names  # noqa: E402  (Qt-free: the one list of panels)
from .workers.process import configure_gui_process  # noqa: E402  (standard library only)

VIEWS = panel_names()


def _parser(prog: str = "main.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="convviz: see what a convolutional network does.")
    parser.add_argument("--image", metavar="PATH", help="photo to open (default: the last one, else the cat sample)")
    parser.add_argument("--model", metavar="SPEC",
                        help="'default' (bundled EfficientNet-Lite0), a torchvision name, timm:NAME, a model file, "
                             "or ARCH=STATE_DICT_FILE (default: the last one, else 'default')")
    parser.add_argument("--view", choices=VIEWS, help="panel to show first")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="load everything offscreen, save the window as PNG and exit")
    parser.add_argument("--conv", metavar="W,K,S,P[,D][,C=n,F=n,mode=conv|max|avg|l2,ceil,pad=tf]", type=_conv_settings,
                        help="toy grid settings of the Convolution panel, e.g. 7,3,3,0 (input, kernel, stride, "
                             "padding, dilation) or 32,5,1,2,C=3,F=3 (channels, filters) or 7,3,2,0,mode=max,ceil "
                             "or 8,3,2,0,pad=tf (TF / ONNX SAME padding instead of P)")
    parser.add_argument("--gif", metavar="GIF", help="with --screenshot: also save the toy animation as a GIF")
    parser.add_argument("--layer", metavar="NAME",
                        help="with --view layers: the layer to show, by module path (e.g. blocks.2.0.conv_dw)")
    parser.add_argument("--lab", choices=LABS,
                        help="the Layers panel's lab tab to show (without --layer: the first layer it applies to)")
    parser.add_argument("--where", choices=("cam", "detect", "segment"),
                        help="the Where it looks panel's step to show (localization, detection, segmentation)")
    parser.add_argument("--size", metavar="WxH", type=_window_size, help="window size in pixels, e.g. 1280x720")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow a fully pickled model file (runs code from the file: only if you trust it)")
    parser.add_argument("--exit-after-paint", action="store_true", help=argparse.SUPPRESS)
    return parser


def _conv_settings(text: str) -> dict:
    """``"7,3,3,0[,1][,C=3,F=2,mode=max,ceil]"`` → ``{"W": 7, "K": 3, "S": 3, "P": 0, "D": 1, "C": 3, …}``."""
    usage = "expected integers W,K,S,P[,D], then optional C=n, F=n, mode=conv|max|avg|l2, ceil, pad=sym|tf"
    numbers, named = [], {}
    for item in (part.strip() for part in text.split(",")):
        key, eq, value = item.partition("=")
        try:
            if item == "ceil":
                named["ceil"] = True
            elif eq and key in ("C", "F") and 1 <= int(value) <= (16 if key == "C" else 64):
                named[key] = int(value)
            elif eq and key == "mode" and value in ("conv", "max", "avg", "l2"):
                named["mode"] = value
            elif eq and key == "pad" and value in ("sym", "tf"):
                named["pad"] = value
            elif not eq and not named:
                numbers.append(int(item))
            else:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {usage} (C 1–16, F 1–64)") from None
    if len(numbers) not in (4, 5) or min(numbers) < 0 or 0 in numbers[:3] + numbers[4:]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected W,K,S,P[,D] with W, K, S, D ≥ 1 and P ≥ 0")
    pooling = named.get("mode", "conv") != "conv"
    if named.get("pad") == "tf" and pooling:
        raise argparse.ArgumentTypeError(f"{text!r}: pad=tf (TF / ONNX SAME) is a Conv2d padding rule; "
                                         f"pooling pads P on each side")
    if named.get("ceil") and not pooling:
        raise argparse.ArgumentTypeError(f"{text!r}: ceil is for pooling (mode=max|avg|l2); Conv2d always rounds down")
    return {**dict(zip("WKSPD", numbers)), **named}


def _window_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` → (1280, 720)."""
    try:
        width, height = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (320 <= width <= 8000 and 240 <= height <= 8000):
        raise argparse.ArgumentTypeError(f"{text!r}: width 320–8000 and height 240–8000 pixels")
    return width, height


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_paths(args) -> str | None:
    """A one-line problem with the file arguments, or None."""
    if args.image is not None and not os.path.isfile(args.image):
        return f"{args.image}: no such image file"
    if args.screenshot is not None:
        folder = os.path.dirname(os.path.abspath(args.screenshot))
        if not os.path.isdir(folder):
            return f"{args.screenshot}: folder {folder} does not exist"
        if not args.screenshot.lower().endswith(".png"):
            return f"{args.screenshot}: the screenshot must be a .png file"
    if args.gif is not None:
        if not args.screenshot:
            return "--gif needs --screenshot"
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.gif))):
            return f"{args.gif}: folder does not exist"
    return None


class _Screenshot:
    """Waits until the model, image, predictions and the chosen panel are in, then saves the window."""

    def __init__(self, app, window, path: str, view: str, gif: str | None = None):
        from PySide6.QtCore import QTimer

        self.app, self.window, self.path, self.gif = app, window, path, gif
        self.panel = window.panels[view]
        self.waiting = {"model", "image", "predictions", "panel"}
        s = window.session
        s.model_loaded.connect(lambda _info: self._done("model"))
        s.image_loaded.connect(lambda _image: self._done("image"))
        s.view_ready.connect(lambda key, _data: self._done("predictions") if key == "predictions" else self._check())
        self.panel.ready.connect(self._check)
        s.view_failed.connect(lambda _key, message: self._fail(message))
        for signal in (s.model_failed, s.image_failed):
            signal.connect(self._fail)
        s.model_needs_trust.connect(lambda _spec, message: self._fail(message + " (pass --allow-pickle)"))
        self.guard = QTimer()
        self.guard.setSingleShot(True)
        self.guard.timeout.connect(lambda: self._fail("timed out while loading"))
        self.guard.start(SCREENSHOT_TIMEOUT_MS)
        self.settle = QTimer()
        self.settle.setSingleShot(True)
        self.settle.timeout.connect(self._save)

    def _check(self) -> None:
        if not ({"model", "image"} & self.waiting) and self.panel.is_ready():
            self._done("panel")

    def _done(self, part: str) -> None:
        self.waiting.discard(part)
        if self.waiting == {"panel"}:
            self._check()
        if not self.waiting and self.guard.isActive():
            self.guard.stop()
            self.settle.start(300)  # let the views paint the last results

    def _save(self) -> None:
        from .ui.widgets.save import save_png

        problem = save_png(self.window.grab(), self.path)
        if problem:
            self._fail(problem)
            return
        print(f"saved {self.path}")
        if self.gif:
            frames = self.window.conv_panel.export_gif(self.gif)
            if not frames:
                self._fail(f"{self.gif}: no animation to save with these settings")
                return
            print(f"saved {self.gif} ({frames} frames)")
        self.app.exit(0)

    def _fail(self, message: str) -> None:
        self.guard.stop()
        self.settle.stop()
        print(f"error: {message}", file=sys.stderr)
        self.app.exit(EXIT_USAGE)

    def stop(self) -> None:
        self.guard.stop()
        self.settle.stop()


def main(argv: list[str] | None = None, started_at: float | None = None, exit_process: bool = False,
         prog: str = "main.py") -> int:
    """Run the app; returns the exit code (2 with ``error: …`` on stderr for bad input).

    ``prog``: the command's name in usage lines (``convviz app`` from the command line).

    With ``exit_process`` (``main.py`` and the ``convviz`` command) the process ends as soon as the
    window is gone and the settings are saved, instead of spending a second or more tearing down
    torch and Qt module by module.
    """
    started_at = time.perf_counter() if started_at is None else started_at
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser(prog).parse_args(args_list)
    except SystemExit as exc:  # argparse printed the usage and the error
        return int(exc.code or 0)
    problem = _check_paths(args)
    if problem:
        return _usage_error(problem)
    if (args.layer or args.lab) and not args.view:
        args.view = "layers"  # --layer / --lab are about the Layers panel
    if args.where and not args.view:
        args.view = "where"  # --where is about the Where it looks panel
    headless = bool(args.screenshot or args.exit_after_paint)
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .ui.settings import APP_NAME, organization

    configure_gui_process()

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "convviz"])
    app.setOrganizationName(organization())
    app.setApplicationName(APP_NAME)
    app.setStyle("Fusion")

    from .ui.main_window import MainWindow

    from .workers.session import Session

    session = Session()  # not a child of the window: it must outlive a window destroyed without closing
    window = MainWindow(session=session, persist=not headless, lazy=True)  # the other tabs: after the first paint
    if args.size:
        window.resize(*args.size)
    elif not args.screenshot:  # the default or last size, inside this screen's available geometry
        window.place_on_screen()
    if args.view:
        window.set_view(args.view)
    if args.conv:
        window.conv_panel.toy.set_values(**args.conv)
    if args.layer or args.lab:
        window.layers_panel.show_on_load(args.layer, args.lab)
    if args.where:
        window.panels["where"].show_step(args.where)
    screenshot = None
    if args.exit_after_paint:
        def report_paint():
            frame = window.frameGeometry()
            print(f"window {frame.width()}x{frame.height()}+{frame.x()}+{frame.y()}")
            print(f"first-paint {time.perf_counter() - started_at:.3f} torch-loaded={'torch' in sys.modules}", flush=True)
            app.quit()

        window.first_painted.connect(report_paint)
    else:
        if args.screenshot:
            screenshot = _Screenshot(app, window, args.screenshot, args.view or window.current_view(), args.gif)
        if args.layer or args.lab:  # a --layer / --lab wish the loaded model cannot meet
            window.layers_panel.failed.connect(screenshot._fail if screenshot else window.show_error)

        def start():
            window.build_all_panels()  # every panel is bound before the first image or model arrives
            window.start(args.image, args.model, args.allow_pickle, restore=not headless)

        window.first_painted.connect(lambda: QTimer.singleShot(0, start))
    # Quit when the window goes away, also without a close request (destroyed, or its native window closed).
    window.destroyed.connect(app.quit)
    window.show()
    handle = window.windowHandle()
    if handle is not None:
        handle.visibleChanged.connect(lambda visible: None if visible or window.isVisible() else app.quit())
    code = app.exec()
    if screenshot is not None:
        screenshot.stop()
    try:
        window.close()  # saves the settings; cancels running work and waits for it at most CLOSE_GRACE_S
    except RuntimeError:  # the window is already gone
        pass
    clean = session.shutdown(0.0)
    if exit_process or not clean:  # (not clean: a job stuck in a long C call; don't wait it out)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
