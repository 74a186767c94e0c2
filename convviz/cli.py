"""``convviz`` command line: predict, layers, activations — the same core as the app.

Every failure prints one ``error: …`` line on stderr and exits with code 2 (no traceback);
warnings are printed (one line each) only when the command succeeds; a closed pipe
(``convviz layers | head -1``) ends the command quietly. Without a sub-command,
``convviz`` launches the desktop app.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import time

from .cli_io import (
    CliError, TimeLimitExceeded, collected_warnings, emit_json, load_model_arg as _load, decode_image as _decode, model_options,
    no_hooks, quiet_broken_pipe, safe_stdout, shown,
)
from .core.atomic import WriteError, atomic_write_all
from .core.capture.allocator import keep_freed_memory
from .core.capture.layer_tree import build_tree
from .core.errors import first_line

EXIT_USAGE = 2
#: Largest ``layers --input-size``.
MAX_INPUT_SIZE = 4096


#: Modules that add sub-commands: each has ``add_parsers(sub)`` and ``COMMANDS`` (name → function).
COMMAND_MODULES = ("convviz.cli_finetune", "convviz.cli_look", "convviz.cli_where")


def _command_modules():
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convviz", description="See what a convolutional network does.")
    names = ["predict", "layers", "activations"] + [n for m in _command_modules() for n in m.COMMANDS] + ["app"]
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(names) + "}")

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
    p.add_argument("--stage", choices=("input", "output"), default="output",
                   help="the layer's output (default) or the input it received (convolution, pooling, "
                        "activation, dropout and linear layers record it)")

    for module in _command_modules():
        module.add_parsers(sub)
    sub.add_parser("app", help="launch the desktop app (the default without a command)")
    return parser


def _report(message: str) -> None:
    """One ``error:`` line for a failure that does not stop the command."""
    from tqdm import tqdm

    tqdm.write(f"error: {shown(message)}", file=sys.stderr)


def cmd_predict(args) -> int:
    import torch
    from tqdm import tqdm

    from .core.capture.activations import predict_top
    from .core.images import ImageError, probe_image

    if args.topk < 1:
        raise CliError("--topk must be at least 1")
    good, failed = [], 0
    for path in args.images:  # every image is checked before the model is loaded
        try:
            probe_image(path)
            good.append(path)
        except ImageError as exc:
            _report(str(exc))
            failed += 1
    if not good:
        return EXIT_USAGE
    loaded = _load(args, require_weights=True)
    for path in tqdm(good, desc="predict", unit="img", disable=len(good) < 2, file=sys.stderr):
        try:
            image = _decode(path)
        except (ImageError, TimeLimitExceeded) as exc:
            _report(str(exc))
            failed += 1
            continue
        with torch.no_grad():  # the model's one scoring function, as every view uses it (mirror included)
            scores = loaded.class_scores(loaded.preprocess.to_tensor(image.rgb))
        if not torch.isfinite(scores).all():
            _report(f"{os.path.basename(path)}: the model's output is not finite (NaN or infinite weights?)")
            failed += 1
            continue
        top = predict_top(scores, loaded.label_names(scores.shape[-1]), args.topk)
        if args.json:
            emit_json({"model": loaded.title, "spec": shown(loaded.spec), "image": shown(path), "top": top,
                       "mirror": loaded.mirror})
        else:
            mirror = ", averaged with its mirror image" if loaded.mirror else ""
            print(f"{shown(path)}  ({shown(loaded.title)}{mirror})")
            for t in top:
                print(f"  {t['prob'] * 100:6.2f}%  {t['label']}  [{t['index']}]")
            sys.stdout.flush()
    return EXIT_USAGE if failed else 0


def cmd_layers(args) -> int:
    from .core.capture.layer_table import layer_table

    if args.input_size is not None and not 1 <= args.input_size <= MAX_INPUT_SIZE:
        raise CliError(f"--input-size must be from 1 to {MAX_INPUT_SIZE} pixels")
    loaded = _load(args, require_weights=False)
    no_hooks(loaded, "layers")
    size = args.input_size or loaded.preprocess.input_size
    try:
        rows = layer_table(loaded.module, (3, size, size))
    except RuntimeError as exc:
        raise CliError(f"{loaded.title} cannot take a {size}×{size} input ({first_line(exc)})") from None
    rows = [node.row for node in build_tree(rows).order]  # the app's order: a container before its children
    if args.json:
        emit_json({"model": loaded.title, "spec": shown(loaded.spec), "input": [3, size, size],
                   "layers": [r.as_json() for r in rows]})
        return 0
    print(f"{shown(loaded.title)}, input 3×{size}×{size}")
    print(f"{'layer':40} {'type':22} {'output':18} {'k':>5} {'s':>3} {'p':>9} {'d':>3} {'rf':>5} {'jump':>4}")
    for r in rows:
        j = r.as_json()
        cell = lambda v: "" if v is None else str(v[0] if isinstance(v, list) else v)  # noqa: E731
        print(f"{r.name:40} {r.type:22} {'×'.join(map(str, r.out_shape)):18} {cell(j['kernel']):>5} "
              f"{cell(j['stride']):>3} {j['padding_text']:>9} {cell(j['dilation']):>3} {cell(j['rf']):>5} {cell(j['jump']):>4}")
    return 0


def cmd_activations(args) -> int:
    import numpy as np
    from PIL import Image

    from .core.capture.activations import Capturer
    from .core.views.colormaps import lookup_table
    from .core.views.mosaic import channel_mosaic, to_rgb8

    try:
        lut = lookup_table(args.colormap)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    image = _decode(args.image)
    loaded = _load(args, require_weights=False)
    no_hooks(loaded, "activations")
    capture = Capturer(loaded.module)(loaded.preprocess.to_tensor(image.rgb))
    if args.layer not in capture.outputs:
        close = difflib.get_close_matches(args.layer, capture.names(), n=1)
        hint = f"; did you mean {close[0]}?" if close else " (see `convviz layers`)"
        raise CliError(f"no layer named {args.layer!r} in {loaded.title}{hint}")
    if args.stage == "input":
        if args.layer not in capture.inputs:
            raise CliError(f"{args.layer}: its input is not recorded (only convolution, pooling, activation, "
                           f"dropout and linear layers keep theirs); use --stage output")
        array = capture.inputs[args.layer][0].detach().float().cpu().numpy()
    else:
        array = capture.output_array(args.layer)
    rgb = to_rgb8(channel_mosaic(array), lut)
    scale = max(1, 768 // max(rgb.shape[:2]))
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    outputs = [(args.out, lambda h: Image.fromarray(rgb).save(h, format="PNG"))]
    if args.npy:
        outputs.append((args.npy, lambda h: np.save(h, array)))
    atomic_write_all(outputs)  # both files or neither
    print(f"{args.layer}: {args.stage} {'×'.join(map(str, array.shape))} → {shown(args.out)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] == "app" or (argv[0].startswith("--") and argv[0] not in ("--help", "-h")):
        from .app import main as app_main

        sub = bool(argv) and argv[0] == "app"
        return app_main(argv[1:] if sub else argv, exit_process=True, prog="convviz app" if sub else "convviz")
    args = _parser().parse_args(argv)
    from .core.images import ImageError
    from .core.model.files import ModelError

    safe_stdout()
    keep_freed_memory()
    commands = {"predict": cmd_predict, "layers": cmd_layers, "activations": cmd_activations}
    for module in _command_modules():
        commands.update(module.COMMANDS)
    started = time.perf_counter()
    try:
        with collected_warnings() as held:
            code = commands[args.command](args)
            sys.stdout.flush()
    except (CliError, ImageError, ModelError, WriteError, TimeLimitExceeded) as exc:
        print(f"error: {shown(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the promise is one line, never a traceback (CONVVIZ_DEBUG=1 shows it)
        if os.environ.get("CONVVIZ_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {shown(first_line(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if code == 0:
        for line in held:
            print(f"warning: {shown(line)}", file=sys.stderr)
    if os.environ.get("CONVVIZ_TIMING"):
        print(f"{args.command}: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return code


def run() -> None:
    """The ``convviz`` command: run :func:`main`, then end the process at once (outputs are already
    written and flushed; tearing down torch module by module would add about a second)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
