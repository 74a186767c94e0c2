"""Training as a generator of :class:`TrainProgress`; the last item carries the result.

Two paths, same output:

* **fast** (backbone frozen, no augmentation): features once, then a linear head (:mod:`.fast_path`).
* **full** (augmentation or unfrozen blocks): epochs over augmented batches, starting from the
  fast path's head (:mod:`.full_loop`).

:func:`fine_tune` starts from a loaded model; :func:`fine_tune_network` from a :class:`~.network.Network`
(the CLI's bundled model is only a state dict: :mod:`.bundled_fast`). Either way the result is made here.

Cancellation: pass ``should_stop`` (a callable); it is checked once per batch (and once per
epoch of head training), and a cancelled run still ends with a result holding the best model so
far. Abandoning the generator (``.close()``) also stops it, without a result.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator

import torch

from ..model.files import ModelError, is_convviz_checkpoint, read_weights
from ..model.loading import DEFAULT_SPEC, LoadedModel
from ..model.taps import DEFAULT_POOL, add_taps, default_taps, pool_of, taps_of
from .backend import choose_backend
from .fast_path import fast
from .full_loop import full
from .network import Network
from .scan import ScanResult
from .train_types import (FAST_EPOCHS, FULL_EPOCHS, FineTuneResult, Run, TrainConfig, TrainProgress, final_progress,
                          preprocess_for)

__all__ = ["FAST_EPOCHS", "FULL_EPOCHS", "FineTuneResult", "TrainConfig", "TrainProgress", "arch_of", "fine_tune",
           "fine_tune_network", "network_of", "prepare_backbone", "preprocess_for", "with_taps"]


def arch_of(loaded: LoadedModel) -> str:
    """The architecture spec to rebuild ``loaded`` from (``default``, ``resnet18``, ``timm:NAME``)."""
    spec = loaded.spec
    if "=" in spec:
        spec = spec.split("=", 1)[0].strip()
    elif spec != DEFAULT_SPEC and not spec.startswith("timm:") and ("/" in spec or "." in spec):
        obj = read_weights(spec)
        if not is_convviz_checkpoint(obj):
            raise ModelError(f"{loaded.title}: architecture unknown; fine-tune a named model (default, resnet18, timm:NAME)")
        spec = obj["arch"]
    return spec


def network_of(loaded: LoadedModel, config: TrainConfig = TrainConfig(), *, copy_model: bool = True) -> Network:
    """The network a run with ``config`` trains: (a copy of) ``loaded.module`` on the CPU, with the
    multi-layer head input :func:`with_taps` gives it, and the run's input (:func:`preprocess_for`)."""
    model = with_taps((copy.deepcopy(loaded.module) if copy_model else loaded.module).cpu(), config)
    return Network(arch_of(loaded), preprocess_for(loaded.preprocess, config), taps_of(model), pool_of(model), model=model)


def prepare_backbone(loaded: LoadedModel, config: TrainConfig = TrainConfig(),
                     on_status: Callable[[str], None] | None = None, *, copy_model: bool = True) -> str:
    """Export (once per machine) and check the graph the fast path will use for ``loaded``; returns the
    backend's kind (``onnx`` or ``eager``). Run it in the background before training, so that
    training with ``graph="cached"`` finds it ready. ``copy_model=False``: as for :func:`fine_tune`."""
    config = config.resolved()
    if not config.fast or config.device != "cpu":
        return "eager"
    return choose_backend(network_of(loaded, config, copy_model=copy_model), graph="auto", on_status=on_status).open()


def fine_tune(loaded: LoadedModel, scan: ScanResult, config: TrainConfig = TrainConfig(), *,
              should_stop: Callable[[], bool] | None = None,
              on_status: Callable[[str], None] | None = None, copy_model: bool = True) -> Iterator[TrainProgress]:
    """Fine-tune a copy of ``loaded.module`` on ``scan``; the last progress has ``result`` set.

    ``copy_model=False`` trains ``loaded.module`` itself: for a caller that already holds a private
    copy (the app's training job builds one from the spec), saving a second deep copy.
    """
    config = _checked(config)
    network = network_of(loaded, config, copy_model=copy_model)
    return (yield from fine_tune_network(network, scan, config, should_stop=should_stop, on_status=on_status))


def fine_tune_network(network: Network, scan: ScanResult, config: TrainConfig = TrainConfig(), *,
                      should_stop: Callable[[], bool] | None = None,
                      on_status: Callable[[str], None] | None = None) -> Iterator[TrainProgress]:
    """Fine-tune ``network`` (trained in place when it holds a model) on ``scan``; as :func:`fine_tune`."""
    config = _checked(config)
    run = Run(network=network, scan=scan, config=config, stop=should_stop or (lambda: False),
              started=time.perf_counter(), on_status=on_status)
    outcome = yield from (fast(run) if config.fast else full(run))
    trained = outcome.trained
    if trained.model is not None:
        trained.model.cpu().eval()
    result = FineTuneResult(model=trained.model, state_dict=trained.state, arch=network.arch, labels=run.labels,
                            preprocess=network.preprocess, evaluation=outcome.evaluation, history=outcome.history,
                            config=config, freeze=trained.freeze, seconds=time.perf_counter() - run.started,
                            cancelled=outcome.cancelled, train_images=len(scan.train), val_images=len(scan.val),
                            skipped=list(scan.skipped), backbone=outcome.backbone, taps=network.taps,
                            pool=outcome.pool or network.pool,
                            kept_epoch=outcome.kept_epoch)
    yield final_progress(outcome.last, result)


def _checked(config: TrainConfig) -> TrainConfig:
    """``config`` resolved; ValueError / ModelError for settings no run can use."""
    config = config.resolved()
    if config.head not in ("lbfgs", "adamw"):
        raise ValueError(f"head must be lbfgs or adamw, not {config.head!r}")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device is available")
    return config


def head_taps(model, config: TrainConfig) -> tuple[int, ...]:
    """The stages the new head reads too: ``config.taps``, else the model's own (a fine-tuned model
    again), else :func:`~convviz.core.model.taps.default_taps`."""
    if config.taps is not None:
        return tuple(config.taps)
    return taps_of(model) or default_taps(model)


def with_taps(model, config: TrainConfig = TrainConfig()):
    """``model`` (in place) with the multi-layer head input a run with ``config`` trains (:func:`head_taps`),
    its stages pooled by :data:`~convviz.core.model.taps.DEFAULT_POOL` (whatever a fine-tuned model's own
    head read: the fast path chooses again whether the head reads the log standard deviations)."""
    taps = head_taps(model, config)
    if taps != taps_of(model) or (taps and pool_of(model) != DEFAULT_POOL):
        try:
            add_taps(model, taps, DEFAULT_POOL)  # the old head no longer fits: every run puts a new one in
        except ValueError as exc:
            raise ModelError(str(exc)) from None
    return model
