"""``convviz cam IMAGE`` and ``convviz detect IMAGE``: where a classifier looks, from the command line.

``cam`` draws the Grad-CAM evidence for one class with the box around its strongest region;
``detect`` finds every object by crop-and-classify windows or by the classifier made fully
convolutional (one pass over the whole photo), or (``--segment``) colours the photo by class.
The same core functions as the app's Where tab (:mod:`convviz.core.where`).
"""
from __future__ import annotations

import sys

from .cli_io import CliError, decode_image, emit_json, load_model_arg, model_options, no_hooks, shown, task_progress
from .core.atomic import atomic_write
from .core.where.classes import resolve_classes


def add_parsers(sub) -> None:
    p = sub.add_parser("cam", help="Grad-CAM: where the evidence for a class lies, and the box around it")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--class", dest="target", default=None, metavar="NAME|INDEX",
                   help="class name (e.g. 'tiger cat') or index (default: the top prediction)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="layer whose output is weighed (default: the last layer with spatial extent; see `convviz layers`)")
    p.add_argument("--threshold", type=float, default=None, metavar="F",
                   help="the box holds the region above F × the peak (default 0.5)")
    model_options(p)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true", help="print one JSON line: class, score, layer, box")

    p = sub.add_parser("detect", help="boxes for every object: crop-and-classify windows, or one dense pass")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--method", choices=("dense", "windows"), default="dense",
                   help="dense: the classifier as a 1×1 convolution over the whole photo's last feature map (default); "
                        "windows: every crop classified on its own")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="dense: the photo resized to about N×N pixels, aspect kept (default 448)")
    p.add_argument("--classes", default=None, metavar="LIST",
                   help="comma list of class names or indices to look for (default: every class that reaches the threshold)")
    p.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="class probability a box (or a coloured pixel with --segment) needs (default 0.3)")
    p.add_argument("--segment", action="store_true",
                   help="dense only: colour each pixel by its winning class instead of drawing boxes")
    model_options(p)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line: boxes with label and score (dense: the map's shape, window and stride)")


def _fraction(value, name: str):
    if value is not None and not 0 < value < 1:
        raise CliError(f"{name} must be between 0 and 1, not {value:g}")
    return value


def cmd_cam(args) -> int:
    from .core.where.gradcam import BOX_THRESHOLD, grad_cam
    from .core.where.render import cam_picture, png_bytes

    threshold = _fraction(args.threshold, "--threshold") or BOX_THRESHOLD
    image = decode_image(args.image)
    loaded = load_model_arg(args, require_weights=True)
    no_hooks(loaded, "cam")
    try:  # one pass and one gradient: no progress bar (an error stays the only line on stderr)
        result = grad_cam(loaded, image.rgb, args.target, args.layer, threshold=threshold)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    picture = cam_picture(image.rgb, result)
    atomic_write(args.out, lambda h: h.write(png_bytes(picture)))
    if args.json:
        emit_json({"image": shown(args.image), "model": loaded.title, "class": result.label, "index": result.index,
                   "score": result.logit, "prob": result.prob, "layer": result.layer, "map": list(result.grid.shape),
                   "stride": result.grid.jump[0], "window": result.grid.rf[0], "stride_photo": result.stride_photo,
                   "box": [round(v, 1) for v in result.box], "threshold": result.threshold, "out": shown(args.out)})
    else:
        print(result.caption())
        print(f"box {', '.join(f'{v:.0f}' for v in result.box)} (x0, y0, x1, y1 photo px) → {shown(args.out)}")
    return 0


def cmd_detect(args) -> int:
    from .core.where import dense, windows
    from .core.where.fcn import find_head
    from .core.where.render import boxes_picture, png_bytes, segment_picture

    if args.method == "windows" and (args.input_size is not None or args.segment):
        raise CliError("--input-size and --segment belong to --method dense")
    threshold = _fraction(args.threshold, "--threshold") or dense.THRESHOLD
    image = decode_image(args.image)
    loaded = load_model_arg(args, require_weights=True)
    no_hooks(loaded, "detect")
    size = args.input_size or dense.DEFAULT_SIZE
    try:  # every check before the bar appears, so an error stays the only line on stderr
        if args.method == "dense":
            dense.input_hw(image.rgb.shape[:2], size)
            count = find_head(loaded.module, loaded.preprocess.input_size, loaded.title).classes
        else:
            count = _class_count(loaded)
        classes = resolve_classes(args.classes, loaded.label_names(count)) if args.classes else None
        with task_progress(f"detect ({args.method})") as state:
            if args.method == "dense":
                result = dense.dense_maps(loaded, image.rgb, size, state)
            else:
                result = windows.classify_windows(loaded, image.rgb, state=state)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    summary = {"image": shown(args.image), "model": loaded.title, "method": args.method,
               "seconds": round(result.seconds, 3), "threshold": threshold}
    if args.method == "dense":
        summary.update({"input": [result.frame.input_hw[1], result.frame.input_hw[0]], "layer": result.layer,
                        "map": list(result.shape), "window": result.grid.rf[0], "stride": result.grid.jump[0],
                        "exact": result.exact})
    else:
        summary.update({"windows": len(result.windows), "sizes": sorted({int(w[2] - w[0]) for w in result.windows})})
    if args.segment:
        seg = dense.segment(result, classes, threshold)
        picture = segment_picture(image.rgb, seg, dense.coarseness_text(result))
        summary["segments"] = [{"label": label, "index": c, "fraction": round(f, 4)}
                               for c, label, f in zip(seg.classes, seg.labels, seg.fractions)]
        lines = [f"{label} [{c}]: {f:.1%} of the photo" for c, label, f in zip(seg.classes, seg.labels, seg.fractions)]
    else:
        boxes = (dense.dense_boxes if args.method == "dense" else windows.crop_boxes)(result, classes, threshold)
        picture = boxes_picture(image.rgb, boxes, result.caption())
        summary["boxes"] = [b.as_json() for b in boxes]
        lines = [f"{b.score:.2f}  {b.label} [{b.index}]  box {b.x0:.0f}, {b.y0:.0f}, {b.x1:.0f}, {b.y1:.0f}" for b in boxes]
    atomic_write(args.out, lambda h: h.write(png_bytes(picture)))
    summary["out"] = shown(args.out)
    if args.json:
        emit_json(summary)
    else:
        print(result.caption())
        for line in lines or ["nothing reaches the threshold"]:
            print("  " + line)
        print(f"→ {shown(args.out)}", file=sys.stderr)
    return 0


def _class_count(loaded) -> int:
    """How many classes ``loaded`` scores (one pass on a blank input)."""
    import numpy as np

    size = loaded.preprocess.input_size
    return int(loaded.class_scores(loaded.preprocess.to_tensor(np.zeros((size, size, 3), np.uint8))).shape[-1])


COMMANDS = {"cam": cmd_cam, "detect": cmd_detect}
