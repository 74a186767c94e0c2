"""The fine-tune panel's jobs: count what trains, train, copy a checkpoint (scanning and the augmentation
preview are in :mod:`.scan_jobs`).

Each function runs on :attr:`Session.runner <convviz.workers.session.Session.runner>` and
returns plain data (numpy arrays, dataclasses of numbers and strings), never a model or a
tensor. Training works on :meth:`Engine.clean_model` (a fresh copy rebuilt from the current
spec), never on the engine's live model, and never holds ``engine.lock`` while it trains; it
checks the cancel token once per batch, so ``runner.submit(train_job, …, graceful=True)``
ends within one batch with the best model so far, written atomically to a checkpoint file
that :meth:`Session.load_model` opens like any other model file.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace

from convviz.core.errors import first_line

from .jobs import CancelToken, JobFailed, Progress
from .scan_jobs import share_rng_lock, thumbnail

GALLERY_MAX = 48
#: at most this often a training update is sent to the GUI (each one redraws curves)
UPDATE_INTERVAL_S = 0.25
#: Python's GIL switch interval while a training job runs
SWITCH_INTERVAL_S = 0.0005
#: the longest a training job waits for the GUI to draw an update before it goes on
SHOWN_WAIT_S = 0.1


# ------------------------------------------------------------------------------ plain results
@dataclass(frozen=True)
class FreezeInfo:
    """What a freeze strategy trains on the current architecture with ``num_classes`` outputs."""

    strategy: str
    trainable_params: int
    total_params: int
    frozen_modules: list  #: module paths whose parameters are all frozen (for the Layers tree)
    blocks: int  #: backbone blocks "last N" can open
    devices: list  #: "cpu" and "cuda" when present
    taps: tuple = ()  #: stages the new head reads beside the last layer (core.taps)


@dataclass(frozen=True)
class TrainOutcome:
    """A finished (or cancelled) run: what the results view shows and where the model is."""

    classes: list
    accuracy: float
    loss: float
    per_class_accuracy: dict
    confusion: list  #: rows: true class, columns: predicted class
    misclassified: list  #: core Misclassified(path, true, predicted, prob)
    history: dict
    cancelled: bool
    seconds: float
    train_images: int
    val_images: int
    trainable_params: int
    total_params: int
    backbone: str
    checkpoint: str | None  #: the saved file (None when nothing was trained)
    epochs_done: int = 0
    notes: list = field(default_factory=list)
    gallery: list = field(default_factory=list)  #: (Misclassified, (h, w, 3) uint8 thumbnail) per shown image
    unit: str = "epoch"  #: what one entry of ``history`` is: "epoch", or "L-BFGS iteration" (fast path's head)
    mirror: bool = False  #: validated (and predicting) on each photo and its mirror image
    kept_epoch: int | None = None  #: full loop: 0 = the warm-started head was kept, n = the state after epoch n


class UpdateGate:
    """Lets a training job pause until the GUI has drawn the update it just sent.

    Drawing an update (curves, axes) is 8-18 ms of Python on the GUI thread; with the job running
    Python beside it the two share the GIL and the same drawing stalled the event loop 37-47 ms
    (measured). So after each update the job waits (at most :data:`SHOWN_WAIT_S`) until the GUI
    calls :meth:`shown` with the number of updates it has drawn.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._event.set()
        self._sent = 0
        self._lock = threading.Lock()

    def sent(self) -> None:
        """The job: one more update is on its way."""
        with self._lock:
            self._sent += 1
            self._event.clear()

    def shown(self, count: int) -> None:
        """The GUI: the first ``count`` updates are drawn (a late answer to an older update opens nothing)."""
        with self._lock:
            if count >= self._sent:
                self._event.set()

    def wait(self, timeout: float = SHOWN_WAIT_S) -> bool:
        """The job: True once the GUI has drawn everything sent, False after ``timeout`` seconds."""
        return self._event.wait(timeout)


# ------------------------------------------------------------------------------ helpers
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


def prepare_backbone_job(engine, config) -> str:
    """Export and check the fast path's graph for the current model, before the user presses Train
    (a one-time cost per machine, model and input size); returns its kind. Works on a clean copy,
    without the engine lock."""
    from convviz.core.finetune import prepare_backbone

    try:
        return prepare_backbone(engine.clean_model(), config)
    except ValueError as exc:  # ModelError: not a model the fast path can prepare
        raise JobFailed(first_line(exc)) from None


def freeze_job(engine, strategy: str, num_classes: int) -> FreezeInfo:
    """Count trainable parameters of ``strategy`` on a copy of the current model (lock held only to copy)."""
    import torch

    from convviz.core.finetune import apply_freeze, backbone_blocks, replace_head, with_taps
    from convviz.core.taps import taps_of

    with engine.lock:
        if engine.loaded is None:
            raise JobFailed("no model is loaded")
        model = copy.deepcopy(engine.loaded.module)
    try:
        replace_head(with_taps(model), max(2, num_classes))
        blocks = len(backbone_blocks(model))
        report = apply_freeze(model, strategy)
    except ValueError as exc:  # ModelError is a ValueError
        raise JobFailed(first_line(exc)) from None
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return FreezeInfo(strategy, report.trainable_params, report.total_params, list(report.frozen_modules), blocks, devices,
                      taps_of(model))


def check_save_path(path: str) -> None:
    """JobFailed now (before training) when ``path`` cannot be written."""
    from convviz.core.finetune import check_writable

    try:
        check_writable(path)
    except ValueError as exc:
        raise JobFailed(first_line(exc)) from None


def train_job(engine, scan, config, save_path: str | None = None, gate: UpdateGate | None = None,
              cancel: CancelToken | None = None):
    """Fine-tune a clean copy of the current model; yield :class:`Progress` (partial: a core ``TrainProgress``
    without its model).

    Submit with ``graceful=True``: cancelling stops within one batch and the best model so far is
    still evaluated and saved. Returns a :class:`TrainOutcome`; the checkpoint is written atomically
    to ``save_path`` (or a new file in :func:`default_save_dir`). With a ``gate`` the job pauses after
    each update until the GUI has drawn it (:class:`UpdateGate`).

    ``config.workers=None`` becomes 0 here: the job runs inside the GUI's process, and forking a
    DataLoader decode process copies that whole process while holding the GIL (a 1.2 GB process:
    33-41 ms per fork, a 52 ms pause of every other thread when a loader starts; measured), which
    the full loop would do every epoch. Decoding then runs in the training thread (Pillow releases
    the GIL while it decodes).
    """
    if config.workers is None:
        config = replace(config, workers=0)
    path = os.path.abspath(save_path or default_save_path(scan.root))
    if save_path is None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise JobFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    check_save_path(path)
    stop = cancel if cancel is not None else (lambda: False)
    with gui_friendly():
        return (yield from _train(engine, scan, config, path, stop, gate))


@contextlib.contextmanager
def gui_friendly(interval_s: float = SWITCH_INTERVAL_S):
    """While training, let the GUI thread take the GIL sooner (Python's switch interval, 5 ms by default).

    Training makes many tiny torch calls between Python lines; every Python callback of a repaint on
    the GUI thread (pyqtgraph's paint methods) then waits up to one interval for the GIL, and a
    repaint needs dozens of them. The previous interval is restored when the job ends.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _train(engine, scan, config, path, stop, gate=None):
    share_rng_lock()
    from convviz.core.finetune import fine_tune

    yield Progress(0.0, "Preparing a copy of the model…")
    try:
        loaded = engine.clean_model()
    except ValueError as exc:
        raise JobFailed(first_line(exc)) from None
    if stop():
        raise JobFailed("cancelled before training started")
    gc.freeze()  # the copy's objects live for the whole run: a full collection never rescans them (see _on_model)
    notes: list[str] = []
    result, last, shown_at = None, None, 0.0
    try:
        for step in fine_tune(loaded, scan, config, should_stop=stop, on_status=notes.append, copy_model=False):
            # the core's own progress, less the model: plain data for the GUI thread
            update = replace(step, result=None, fraction=float(step.fraction),
                             history={k: list(v) for k, v in step.history.items()})
            if step.result is not None:
                result, last = step.result, update
                break
            now = time.perf_counter()
            if now - shown_at >= UPDATE_INTERVAL_S or update.batch_grid is not None or stop():
                yield from _send(Progress(step.fraction, _progress_text(update), update), gate)
                shown_at = time.perf_counter()
    except ValueError as exc:  # bad settings or data (ModelError, ImageError, freeze strategy)
        raise JobFailed(first_line(exc)) from None
    if result is None:
        raise JobFailed("training ended without a result")
    epochs_done = len(result.history.get("val_acc", []))
    checkpoint = None
    if epochs_done:  # saved before the last update is shown, so the GUI is idle meanwhile
        try:
            result.save(path)
        except ValueError as exc:
            raise JobFailed(first_line(exc)) from None
        checkpoint = path
    yield from _send(Progress(1.0, _progress_text(last), last), gate)
    ev = result.evaluation
    gallery = [(m, thumb) for m in ev.misclassified[:GALLERY_MAX] if (thumb := thumbnail(m.path)) is not None]
    return TrainOutcome(list(result.labels), ev.accuracy, ev.loss, dict(ev.per_class_accuracy), [list(r) for r in ev.confusion],
                        list(ev.misclassified), {k: list(v) for k, v in result.history.items()}, result.cancelled,
                        result.seconds, result.train_images, result.val_images, result.freeze.trainable_params,
                        result.freeze.total_params, result.backbone, checkpoint, epochs_done, notes, gallery,
                        result.config.unit, result.config.mirror_test, result.kept_epoch)


def _send(progress: Progress, gate: UpdateGate | None):
    """Yield a training update; with a gate, go on once the GUI has drawn it (or waited long enough)."""
    if gate is None:
        yield progress
        return
    gate.sent()
    yield progress
    gate.wait()


def copy_checkpoint_job(source: str, target: str) -> str:
    """Write the checkpoint ``source`` to ``target`` atomically (Save…); returns ``target``."""
    from convviz.core.finetune import atomic_write

    target = os.path.abspath(target)
    check_save_path(target)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
        atomic_write(target, lambda out: out.write(data))
    except (OSError, ValueError) as exc:
        raise JobFailed(first_line(exc)) from None
    return target


def _progress_text(update) -> str:
    if update.stage == "features":
        return f"Reading images: {update.batch}/{update.batches}"
    if update.stage in ("done", "cancelled"):
        return "Finishing…"
    return f"Epoch {update.epoch}/{update.epochs}" + (f", batch {update.batch}/{update.batches}" if update.batches > 1 else "")


def eta_text(seconds: float | None) -> str:
    """``ETA 1:05`` / ``ETA 12 s`` / ``ETA …`` (not known yet)."""
    if seconds is None:
        return "ETA …"
    seconds = max(0, int(round(seconds)))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds} s"
