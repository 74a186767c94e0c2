"""``convviz`` command line: predict, layers, activations — the same core as the app.

Bad input prints one ``error: …`` line on stderr and exits with code 2 (no traceback).
Without a sub-command, ``convviz`` launches the desktop app.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time

EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as ``error: …``, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convviz", description="See what a convolutional network does.")
    sub = parser.add_subparsers(dest="command", metavar="{predict,layers,activations,finetune,app}")

    def model_options(p):
        p.add_argument("--model", default="default", metavar="SPEC",
                       help="'default' (bundled EfficientNet-Lite0), a torchvision name, timm:NAME, "
                            "a model file, or ARCH=STATE_DICT_FILE")
        p.add_argument("--allow-pickle", action="store_true",
                       help="allow a fully pickled model file (runs code from the file: only if you trust it)")

    p = sub.add_parser("predict", help="top-k classes for one or more images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    model_options(p)
    p.add_argument("--topk", type=int, default=5, metavar="K")
    p.add_argument("--json", action="store_true", help="print JSON (one object per image)")

    p = sub.add_parser("layers", help="the layer table: shapes, window settings, receptive fields")
    model_options(p)
    p.add_argument("--input-size", type=int, default=None, metavar="N", help="square input side (default: the model's)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("activations", help="a mosaic PNG of all channels of one layer")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--layer", required=True, metavar="NAME", help="module path, e.g. blocks.2.1.conv_dw")
    model_options(p)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--npy", metavar="PATH", help="also save the raw (C, H, W) float32 array")
    p.add_argument("--colormap", default="viridis")

    from .cli_finetune import add_finetune_parser

    add_finetune_parser(sub)
    sub.add_parser("app", help="launch the desktop app (the default without a command)")
    return parser


def _load(args, require_weights: bool):
    from .core.models import load_model

    loaded = load_model(args.model, require_weights=require_weights, allow_pickle=args.allow_pickle)
    if loaded.note:
        print(f"warning: {loaded.note}", file=sys.stderr)
    return loaded


def cmd_predict(args) -> int:
    import torch
    from tqdm import tqdm

    from .core.activations import predict_top
    from .core.images import load_image

    if args.topk < 1:
        raise CliError("--topk must be at least 1")
    loaded = _load(args, require_weights=True)
    many = len(args.images) > 1
    for path in tqdm(args.images, desc="predict", unit="img", disable=not many, file=sys.stderr):
        image = load_image(path)
        with torch.no_grad():
            logits = loaded.module(loaded.preprocess.to_tensor(image.rgb))
        top = predict_top(logits, loaded.label_names(logits.shape[-1]), args.topk)
        result = {"model": loaded.title, "spec": loaded.spec, "image": path, "top": top}
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"{path}  ({loaded.title})")
            for t in top:
                print(f"  {t['prob'] * 100:6.2f}%  {t['label']}  [{t['index']}]")
    return 0


def cmd_layers(args) -> int:
    from .core.errors import first_line
    from .core.layer_table import layer_table

    loaded = _load(args, require_weights=False)
    size = args.input_size or loaded.preprocess.input_size
    if size < 1:
        raise CliError("--input-size must be a positive number of pixels")
    try:
        rows = layer_table(loaded.module, (3, size, size))
    except RuntimeError as exc:
        raise CliError(f"{loaded.title} cannot take a {size}×{size} input ({first_line(exc)})") from None
    if args.json:
        print(json.dumps({"model": loaded.title, "spec": loaded.spec, "input": [3, size, size],
                          "layers": [r.as_json() for r in rows]}))
        return 0
    print(f"{loaded.title}, input 3×{size}×{size}")
    print(f"{'layer':40} {'type':22} {'output':18} {'k':>5} {'s':>3} {'p':>3} {'d':>3} {'rf':>5} {'jump':>4}")
    for r in rows:
        j = r.as_json()
        cell = lambda v: "" if v is None else str(v[0] if isinstance(v, list) else v)  # noqa: E731
        print(f"{r.name:40} {r.type:22} {'×'.join(map(str, r.out_shape)):18} {cell(j['kernel']):>5} "
              f"{cell(j['stride']):>3} {cell(j['padding']):>3} {cell(j['dilation']):>3} {cell(j['rf']):>5} {cell(j['jump']):>4}")
    return 0


def cmd_activations(args) -> int:
    import numpy as np
    from PIL import Image

    from .core.activations import Capturer
    from .core.colormaps import lookup_table
    from .core.images import load_image
    from .core.mosaic import channel_mosaic, to_rgb8

    try:
        lut = lookup_table(args.colormap)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    image = load_image(args.image)
    loaded = _load(args, require_weights=False)
    capture = Capturer(loaded.module)(loaded.preprocess.to_tensor(image.rgb))
    if args.layer not in capture.outputs:
        close = difflib.get_close_matches(args.layer, capture.names(), n=1)
        hint = f"; did you mean {close[0]}?" if close else " (see `convviz layers`)"
        raise CliError(f"no layer named {args.layer!r} in {loaded.title}{hint}")
    array = capture.output_array(args.layer)
    rgb = to_rgb8(channel_mosaic(array), lut)
    scale = max(1, 768 // max(rgb.shape[:2]))
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    _write(lambda p: Image.fromarray(rgb).save(p, format="PNG"), args.out)
    if args.npy:
        _write(lambda p: np.save(p, array), args.npy)
    print(f"{args.layer}: output {'×'.join(map(str, array.shape))} → {args.out}", file=sys.stderr)
    return 0


def _write(save, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"cannot write {path}: folder {folder} does not exist")
    try:
        with open(path, "wb") as handle:
            save(handle)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] == "app" or (argv[0].startswith("--") and argv[0] not in ("--help", "-h")):
        from .app import main as app_main

        return app_main(argv[1:] if argv and argv[0] == "app" else argv)
    args = _parser().parse_args(argv)
    from .core.images import ImageError
    from .core.model_files import ModelError

    from .core.allocator import keep_freed_memory

    keep_freed_memory()
    from .cli_finetune import cmd_finetune

    commands = {"predict": cmd_predict, "layers": cmd_layers, "activations": cmd_activations, "finetune": cmd_finetune}
    started = time.perf_counter()
    try:
        code = commands[args.command](args)
    except (CliError, ImageError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if os.environ.get("CONVVIZ_TIMING"):
        print(f"{args.command}: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
