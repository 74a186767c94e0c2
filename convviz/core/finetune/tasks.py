"""The fine-tune panel's steps as tasks (:mod:`convviz.core.tasks`): scan, preview, count, prepare, train, save.

Each is a plain ``run(inputs, state)`` returning plain data (:mod:`.outcomes`); the GUI session runs
them on its job runner, the CLI may call them directly. Nothing heavy is imported at module level,
so naming a task costs nothing before torch is loaded.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace

from ..atomic import atomic_write, check_writable
from ..errors import first_line
from ..tasks import Need, Scope, task
from .outcomes import AugmentPreview, FreezeInfo, ScanReport, train_outcome
from .thumbs import thumbnail, tile

THUMBS_PER_CLASS = 8
PREVIEW_COUNT = 8
#: the preview grid: columns and side of each augmented image
PREVIEW_COLS, PREVIEW_SIDE = 4, 84
GALLERY_MAX = 48
#: at most this often a training update is handed over (each one redraws curves)
UPDATE_INTERVAL_S = 0.25


def default_save_dir() -> str:
    """``$CONVVIZ_DATA_DIR`` or ``$XDG_DATA_HOME/convviz/finetuned`` (``~/.local/share/…``)."""
    base = os.environ.get("CONVVIZ_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share"), "convviz")
    return os.path.join(base, "finetuned")


def default_save_path(root: str, stamp: float | None = None) -> str:
    """A new file in :func:`default_save_dir` named after the data folder and the time."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(os.path.normpath(root)))[:40] or "data"
    when = time.strftime("%Y%m%d-%H%M%S", time.localtime(stamp if stamp is not None else time.time()))
    return os.path.join(default_save_dir(), f"{name}-{when}.pt")


@task(Scope.NONE, title="Scanning images…")
def scan_task(inputs, state) -> ScanReport:
    """``args``: root, seed. The folder's classes and samples (core rules) and a thumbnail strip per class."""
    from . import scan_folder

    root = inputs.args["root"]
    state.progress(None, f"Scanning {os.path.basename(os.path.normpath(root))}…")
    try:
        scan = scan_folder(root, seed=inputs.args.get("seed", 0))
    except OSError as exc:
        raise ValueError(first_line(exc)) from None
    thumbs: dict = {}
    total = len(scan.classes) * THUMBS_PER_CLASS
    for c, name in enumerate(scan.classes):
        state.check()
        thumbs[name] = [(path, image) for path in scan.paths_of(name, THUMBS_PER_CLASS)
                        if (image := thumbnail(path)) is not None]
        state.progress((c + 1) * THUMBS_PER_CLASS / total, "Reading thumbnails…")
    return ScanReport(scan, thumbs)


@task(Scope.MODEL, title="Augmenting the preview…")
def preview_task(inputs, state) -> AugmentPreview:
    """``args``: source, spec, preprocess, count, seed. ``count`` augmented versions of ``source`` and
    the one-pixel-shift numbers of its model input.

    ``source``: training samples (the grid is epoch 1 of the first ``count``, drawn by the training
    dataset itself with ``seed``), an image path, or an (H, W, 3) uint8 array (``count`` draws of it).
    """
    from . import preview_grid, shift_by_one_pixel_demo
    from .features import decode_rgb, first_epoch_preview, model_input_uint8

    a = inputs.args
    source, spec, preprocess = a["source"], a["spec"], a["preprocess"]
    count, seed = a.get("count", PREVIEW_COUNT), int(a.get("seed", 0))
    samples = list(source) if isinstance(source, (list, tuple)) else None
    if samples:
        source = samples[0].path  # the shift demo: training image 1
    if isinstance(source, str):
        try:
            rgb = decode_rgb(source, 2 * round(preprocess.input_size / preprocess.crop_pct))
        except OSError as exc:
            raise ValueError(first_line(exc)) from None
    else:
        rgb = source
    if samples:
        images, _errors = first_epoch_preview(samples, spec, preprocess, seed, count)
    else:
        images = preview_grid(rgb, spec, preprocess, count, seed=seed)
    model_input = model_input_uint8(rgb, preprocess).permute(1, 2, 0).numpy()
    return AugmentPreview(images, tile(images, PREVIEW_COLS, PREVIEW_SIDE), shift_by_one_pixel_demo(model_input),
                          preprocess.input_size, seed, bool(samples))


@task(Scope.MODEL, (Need.MODEL_COPY,), title="Counting parameters…")
def freeze_task(inputs, state) -> FreezeInfo:
    """``args``: strategy, num_classes. What ``strategy`` trains on (a copy of) the current model."""
    import torch

    from . import apply_freeze, augment, backbone_blocks, replace_head, with_taps

    model = inputs.model.module
    with augment.rng_guard:  # a new head's init draws from torch's global generator, which a preview reseeds
        replace_head(with_taps(model), max(2, inputs.args["num_classes"]))
    report = apply_freeze(model, inputs.args["strategy"])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return FreezeInfo(report.strategy, report.trainable_params, report.total_params, list(report.frozen_modules),
                      len(backbone_blocks(model)), devices, _reads(model))


def _reads(model) -> str:
    """What the new head reads, as a sentence, before a run (the fast path may drop the log standard deviations)."""
    from ..model.taps import pool_of, tap_sentence, taps_of

    pool = pool_of(model)
    return tap_sentence(taps_of(model), pool, "" if pool == "mean" else " (head only, no augmentation: the log standard "
                        "deviations only if cross-validation on the training images prefers them)")


@task(Scope.MODEL, (Need.MODEL_COPY,), title="Preparing the fast feature extractor (once)…")
def prepare_task(inputs, state) -> str:
    """``args``: config. Export and check the fast path's graph before Train is pressed (once per
    machine, model and input size); returns its kind."""
    from . import prepare_backbone

    return prepare_backbone(inputs.model, inputs.args["config"], copy_model=False)  # the copy is the task's own


@task(Scope.NONE, (Need.MODEL_COPY,), title="Fine-tuning…", graceful=True)
def train_task(inputs, state):
    """``args``: scan, config, save_path (None: a new file in :func:`default_save_dir`).

    Fine-tunes the copy, hands over a training update (a core ``TrainProgress`` without its model) at
    most every :data:`UPDATE_INTERVAL_S`, stops within one batch when cancelled and still evaluates
    and saves the best model so far. Returns a :class:`~.outcomes.TrainOutcome`.
    """
    from . import check_writable, fine_tune

    scan, config = inputs.args["scan"], inputs.args["config"]
    save_path = inputs.args.get("save_path")
    if config.workers is None:  # no decode processes: forking the GUI's process stalls every thread (measured)
        config = replace(config, workers=0)
    path = os.path.abspath(save_path or default_save_path(scan.root))
    if save_path is None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    check_writable(path)
    stop = lambda: state.cancelled  # noqa: E731
    notes: list[str] = []
    result, last, shown_at = None, None, 0.0
    state.progress(0.0, "Training…")
    for step in fine_tune(inputs.model, scan, config, should_stop=stop, on_status=notes.append, copy_model=False):
        update = replace(step, result=None, fraction=float(step.fraction),
                         history={k: list(v) for k, v in step.history.items()})
        if step.result is not None:
            result, last = step.result, update
            break
        now = time.perf_counter()
        if now - shown_at >= UPDATE_INTERVAL_S or update.batch_grid is not None or stop():
            state.partial(update, step.fraction, progress_text(update))
            shown_at = time.perf_counter()
    if result is None:
        raise ValueError("training ended without a result")
    checkpoint = None
    if result.history.get("val_acc"):  # saved before the last update is shown, so the GUI is idle meanwhile
        result.save(path)
        checkpoint = path
    state.partial(last, 1.0, progress_text(last))
    gallery = [(m, thumb) for m in result.evaluation.misclassified[:GALLERY_MAX]
               if (thumb := thumbnail(m.path)) is not None]
    return train_outcome(result, checkpoint, notes, gallery)


@task(Scope.NONE, title="Saving the model…")
def copy_checkpoint_task(inputs, state) -> str:
    """``args``: source, target. Write the checkpoint ``source`` to ``target`` atomically; returns ``target``."""
    target = os.path.abspath(inputs.args["target"])
    check_writable(target)
    try:
        with open(inputs.args["source"], "rb") as handle:
            data = handle.read()
        atomic_write(target, lambda out: out.write(data))
    except OSError as exc:
        raise ValueError(first_line(exc)) from None
    return target


def progress_text(update) -> str:
    """One line for a training update."""
    if update.stage == "features":
        return f"Reading images: {update.batch}/{update.batches}"
    if update.stage in ("done", "cancelled"):
        return "Finishing…"
    return f"Epoch {update.epoch}/{update.epochs}" + (f", batch {update.batch}/{update.batches}" if update.batches > 1 else "")


__all__ = ["scan_task", "preview_task", "freeze_task", "prepare_task", "train_task", "copy_checkpoint_task"]
