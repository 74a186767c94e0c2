"""``convviz top-patches | compare | erf``: what a channel responds to, what fine-tuning changed, and
how much of its field a unit really uses — the core tasks of :mod:`convviz.core.where`, as commands."""
from __future__ import annotations

import os
import sys

from .cli_io import CliError, decode_image, emit_json, load_model_arg, model_options, shown, task_progress, trust_option
from .core.atomic import atomic_write, check_writable

#: Most channels one ``top-patches --channels`` figure shows.
MAX_CHANNELS = 64


def add_parsers(sub) -> None:
    p = sub.add_parser("top-patches", help="the image patches of a folder that most activate a layer's channels")
    p.add_argument("folder", metavar="FOLDER", help="a folder of photos (sub-folders included)")
    p.add_argument("--layer", required=True, metavar="NAME", help="module path, e.g. blocks.2.1.conv_dw (see `convviz layers`)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--channel", type=int, default=None, metavar="C", help="one channel (default 0): a 3×3 grid")
    which.add_argument("--channels", default=None, metavar="A-B", help=f"a range of channels, one row each (at most {MAX_CHANNELS})")
    model_options(p)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true", help="print one JSON line: each channel's patches, values and files")

    p = sub.add_parser("compare", help="two models of one architecture on one photo: maps, predictions, weight change per layer")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--model", action="append", required=True, metavar="SPEC",
                   help="give it twice: the model before (e.g. default) and after (e.g. finetuned.pt)")
    trust_option(p)
    p.add_argument("--layer", default=None, metavar="NAME", help="whose maps to show (default: the last layer with a map)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true", help="print one JSON line: the weight change per layer and both predictions")

    p = sub.add_parser("erf", help="a unit's effective receptive field (|∂unit/∂input|) against its theoretical box")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--layer", required=True, metavar="NAME")
    p.add_argument("--unit", default=None, metavar="Y,X", help="the unit's row,column on the layer's map (default: the centre)")
    p.add_argument("--channel", type=int, default=None, metavar="C", help="one channel (default: the sum over all)")
    p.add_argument("--average", action="store_true", help="also the layer average over a 4×4 grid of units")
    model_options(p)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true")


def _save_png(path: str, rgb) -> None:
    from PIL import Image

    atomic_write(path, lambda handle: Image.fromarray(rgb).save(handle, format="PNG"))


def _channels(args, count: int, layer: str) -> list[int]:
    if args.channels is None:
        return [0 if args.channel is None else args.channel]
    lo, sep, hi = args.channels.partition("-")
    if not (lo.strip().isdigit() and (not sep or hi.strip().isdigit())):
        raise CliError(f"--channels {args.channels!r}: give a range such as 0-15")
    lo, hi = int(lo), int(hi) if sep else int(lo)
    if hi < lo:
        raise CliError(f"--channels {args.channels}: the range ends before it starts")
    if hi - lo + 1 > MAX_CHANNELS:
        raise CliError(f"--channels {args.channels}: at most {MAX_CHANNELS} channels in one figure")
    if hi >= count:
        raise CliError(f"channel {hi} is out of range: {layer} has {count} channels (0–{count - 1})")
    return list(range(lo, hi + 1))


def cmd_top_patches(args) -> int:
    from .core.where.layer_tap import check_channel, layer_row, spatial_row
    from .core.where.look_figures import top_patches_figure
    from .core.where.top_patches import crop_patches, list_images, scan_top

    check_writable(args.out)
    list_images(args.folder)  # an empty folder or one without photos: said before the model loads
    loaded = load_model_arg(args, require_weights=False)
    if loaded.scripted:
        raise CliError(f"{loaded.title}: TorchScript takes no hooks, so `top-patches` cannot look inside it")
    try:
        row = layer_row(loaded.module, args.layer, loaded.preprocess.input_size)
        channels = [check_channel(c, row.out_shape[0], args.layer) for c in _channels(args, row.out_shape[0], args.layer)]
        with task_progress("top-patches") as state:
            top = scan_top(loaded, args.folder, args.layer, state=state)
        patches = {c: crop_patches(top, c, loaded.preprocess, row) for c in channels}
    except ValueError as exc:  # ImageError included
        raise CliError(str(exc)) from None
    folder = os.path.basename(os.path.abspath(args.folder))
    field = f", field {row.rf[0]:g}×{row.rf[1]:g} px" if spatial_row(row) else ""
    title = f"{args.layer}{field}: the {top.values.shape[1]} strongest of {len(top.paths)} images"
    _save_png(args.out, top_patches_figure(top, patches, title, f"{loaded.title} · {folder} · a patch: "
                                                                "its image's strongest unit's field"))
    if args.json:
        emit_json({"model": loaded.title, "spec": shown(loaded.spec), "layer": args.layer, "folder": shown(args.folder),
                   "images": len(top.paths), "skipped": [[shown(p), r] for p, r in top.skipped], "cached": top.cached,
                   "rf": list(row.rf) if spatial_row(row) else None, "out": shown(args.out),
                   "channels": [{"channel": c, "patches": [
                       {"rank": p.rank + 1, "value": p.value, "path": shown(p.path), "unit": list(p.unit),
                        "photo_box": list(p.photo_box)} for p in ps]} for c, ps in patches.items()]})
    else:
        print(f"{args.layer}: {len(top.paths)} images{' (cached)' if top.cached else ''}, {len(top.skipped)} skipped "
              f"→ {shown(args.out)}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from .core.where.compare import check_same_architecture, compare_models
    from .core.where.look_figures import compare_figure

    if len(args.model) != 2:
        raise CliError(f"compare needs --model twice (the model before and after), not {len(args.model)} time(s)")
    check_writable(args.out)
    image = decode_image(args.image)
    a, b = (load_model_arg(args, False, spec) for spec in args.model)
    try:
        check_same_architecture(a.module, b.module, a.title, b.title)  # before the progress bar: one line
        with task_progress("compare") as state:
            result = compare_models(a, b, image.rgb, args.layer, state=state)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _save_png(args.out, compare_figure(result, a.preprocess.to_uint8(image.rgb), image.rgb))
    if args.json:
        emit_json({"image": shown(args.image), "model_a": a.title, "model_b": b.title, "layer": result.layer,
                   "summary": result.summary(), "same_input": result.same_input, "input_note": result.input_note,
                   "predictions_a": list(result.predictions_a), "predictions_b": list(result.predictions_b),
                   "changes": [{"layer": c.layer, "type": c.type, "params": c.params, "change": c.change,
                                "status": c.status, "note": c.note} for c in result.changes], "out": shown(args.out)})
    else:
        print(result.summary(), file=sys.stderr)
    return 0


def _unit(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise CliError(f"--unit {text!r}: give the row and column, such as 7,7")
    return int(parts[0]), int(parts[1])


def cmd_erf(args) -> int:
    from .core.where.erf import layer_erf, unit_erf
    from .core.where.layer_tap import table_rows
    from .core.where.look_figures import erf_figure

    check_writable(args.out)
    unit = _unit(args.unit)
    image = decode_image(args.image)
    loaded = load_model_arg(args, require_weights=False)
    if loaded.scripted:
        raise CliError(f"{loaded.title}: TorchScript takes no hooks, so `erf` cannot look inside it")
    try:
        rows = table_rows(loaded.module, loaded.preprocess.input_size)  # one layer table for both
        one = unit_erf(loaded, image.rgb, args.layer, unit, args.channel, rows)
        average = None
        if args.average:
            with task_progress("erf") as state:
                average = layer_erf(loaded, image.rgb, args.layer, args.channel, rows=rows, state=state)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _save_png(args.out, erf_figure(one, average, loaded.title))
    if args.json:
        emit_json({"model": loaded.title, "image": shown(args.image), "layer": args.layer, "unit": list(one.unit),
                   "channel": one.channel, "rf": list(one.rf), "seen": list(one.seen), "share": one.share,
                   "pixels": one.pixels, "std": list(one.std), "centre": list(one.centre), "outside": one.outside,
                   "sentence": one.sentence(), "out": shown(args.out),
                   "layer_average": None if average is None else {
                       "units": [list(u) for u in average.units], "shares": average.shares.tolist(),
                       "mean_share": average.mean_share, "mean_std": list(average.mean_std)}})
    else:
        print(one.sentence(), file=sys.stderr)
    return 0


COMMANDS = {"top-patches": cmd_top_patches, "compare": cmd_compare, "erf": cmd_erf}
