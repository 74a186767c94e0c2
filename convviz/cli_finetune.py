"""``convviz finetune DATA_DIR``: transfer learning on an image folder, from the command line."""
from __future__ import annotations

import copy
import json
import os
import sys
import time

from .cli_io import CliError


def add_parsers(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a folder with one sub-folder per class")
    p.add_argument("data", metavar="DATA_DIR", help="DATA_DIR/<class>/<image> (optionally DATA_DIR/train/ and DATA_DIR/val/)")
    p.add_argument("--model", default="default", metavar="SPEC", help="model to start from (default: bundled EfficientNet-Lite0)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="default: 100 L-BFGS iterations of the head (frozen, no augmentation) or 5 epochs")
    p.add_argument("--freeze", default="head", metavar="head|last:N|none",
                   help="what stays fixed: head = only the new head trains (fast path), last:N = also the last N blocks, none = all")
    p.add_argument("--augment", default="", metavar="LIST", help="comma list of hflip,vflip,grayscale,crop,jitter,translate,rotate")
    p.add_argument("--lr", type=float, default=None, metavar="X")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed of the validation split, the augmentation draws, the shuffling and the new head "
                        "(recorded in the checkpoint; the app's Augment section sets the same seed, its split stays at 0)")
    p.add_argument("--input-size", type=int, default=None, metavar="N", help="square input side (default: the model's)")
    p.add_argument("--val-fraction", type=float, default=0.2, metavar="F", help="held out per class without train/ val/ folders")
    p.add_argument("--graph", default="auto", choices=("auto", "cached", "eager"),
                   help="frozen-backbone forward: ONNX Runtime, exporting the model's graph once if needed (auto), "
                        "only a graph already exported (cached), or eager torch")
    p.add_argument("--head", default="lbfgs", choices=("lbfgs", "adamw"),
                   help="frozen backbone: logistic-regression head by L-BFGS with L2 chosen by cross-validation on train "
                        "(default), or mini-batch AdamW (uses --lr)")
    p.add_argument("--no-mirror", action="store_true", help="frozen backbone: don't add mirrored training images as samples")
    p.add_argument("--plain-head", action="store_true",
                   help="the head reads only the last layer's features and predicts from the photo alone "
                        "(default: it also reads two middle stages where the model has them, and each photo's prediction is "
                        "averaged with its mirror image's)")
    p.add_argument("--out", default=None, metavar="PATH", help="checkpoint to write (default: finetuned.pt in the current folder)")
    p.add_argument("--json", action="store_true", help="print one JSON line with the results")


def cmd_finetune(args) -> int:
    started = time.perf_counter()
    import torch
    from tqdm import tqdm

    from .core.finetune import AugmentSpec, TrainConfig, check_writable, fine_tune, scan_folder
    from .core.finetune.heads import apply_freeze, parse_freeze
    from .core.model.files import ModelError
    from .core.finetune.bundled_fast import fine_tune_bundled
    from .core.finetune.bundled_fast import prepare as prepare_bundled
    from .core.model.loading import DEFAULT_SPEC, load_model

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    out = args.out or os.path.join(os.getcwd(), "finetuned.pt")
    try:
        augment = AugmentSpec.from_names(args.augment)
        parse_freeze(args.freeze)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for name, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--input-size", args.input_size)):
        if value is not None and value < 1:
            raise CliError(f"{name} must be at least 1")
    if args.lr is not None and not args.lr > 0:
        raise CliError("--lr must be positive")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        raise CliError(f"--device must be cpu or cuda, not {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device is available")
    check_writable(out)
    scan = scan_folder(args.data, val_fraction=args.val_fraction, seed=args.seed)
    for skipped in scan.skipped[:5]:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if len(scan.skipped) > 5:
        print(f"skipped {len(scan.skipped) - 5} more files", file=sys.stderr)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, freeze=args.freeze, augment=augment,
                         device=args.device, seed=args.seed, input_size=args.input_size, graph=args.graph,
                         head=args.head, mirror_train=not args.no_mirror,
                         **({"taps": (), "mirror_test": False} if args.plain_head else {}))
    bundled = prepare_bundled(config) if args.model == DEFAULT_SPEC else None
    if bundled is not None:  # the bundled model on the fast path: no model to build (no timm import)
        run = fine_tune_bundled(bundled, scan, config)
    else:
        loaded = load_model(args.model)
        try:
            apply_freeze(copy.deepcopy(loaded.module), args.freeze)  # no head, or last:N too deep: say so before any work
        except ModelError:
            raise
        except ValueError as exc:
            raise CliError(str(exc).splitlines()[0]) from None
        run = fine_tune(loaded, scan, config, on_status=lambda m: bar.write(m, file=sys.stderr),  # bar: below
                        copy_model=False)  # nothing else uses ``loaded``: trained in place, not copied again
    # the bar appears only once every check has passed, so an error stays the only line on stderr
    bar = tqdm(total=100, desc="finetune", unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}")
    last = None
    try:
        for last in run:
            bar.update(round(100 * last.fraction, 1) - bar.n)  # tqdm throttles redraws (mininterval)
            if last.stage != bar.desc:
                bar.set_description(last.stage, refresh=False)
            if last.val_acc is not None:
                bar.set_postfix_str(f"val_acc={last.val_acc:.3f}", refresh=False)
    finally:
        bar.close()
    result = last.result
    result.save(out)
    ev = result.evaluation
    summary = {"classes": result.labels, "train_images": result.train_images, "val_images": result.val_images,
               "val_accuracy": ev.accuracy, "per_class_accuracy": ev.per_class_accuracy, "confusion": ev.confusion,
               "seconds": round(time.perf_counter() - started, 3), "out": os.path.abspath(out)}
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"{len(result.labels)} classes, {result.train_images} train / {result.val_images} val images "
              f"({scan.split} split), {len(scan.skipped)} skipped")
        print(f"val accuracy {ev.accuracy * 100:.1f}%  " + "  ".join(f"{c}: {a * 100:.1f}%" for c, a in ev.per_class_accuracy.items()))
        if result.reads:
            print(result.reads)
        for m in ev.misclassified[:5]:
            print(f"  misclassified {m.path}: {m.true} → {m.predicted} ({m.prob * 100:.0f}%)")
        print(f"saved {os.path.abspath(out)} ({summary['seconds']:.1f} s); try: convviz predict IMAGE --model {out}")
    return 0


COMMANDS = {"finetune": cmd_finetune}
