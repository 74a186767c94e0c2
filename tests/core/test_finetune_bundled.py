"""The shipped weight-less graph of the bundled backbone and the fast path that needs no model built.

Every check is against the bundled model built by timm and run by eager torch."""
import os
import subprocess
import sys

import pytest
import torch

from convviz.core.finetune import onnx_backbone
from convviz.core.finetune.backend import OnnxBackend, TorchBackend, choose_backend
from convviz.core.finetune.bundled_graph import GRAPH_SIZES, POOL, TAPS, graph_file, load_bundled, probe
from convviz.core.finetune.features import ImageDataset, normalize
from convviz.core.finetune.heads import headless
from convviz.core.finetune.network import Network
from convviz.core.model.lite import PREPROCESS, bundled_weights_path, remap_keys
from convviz.core.model.files import read_weights

from test_finetune_fixtures import make_folder

# they are dependencies: in CI (CI=true) a missing one fails these tests instead of skipping them
pytestmark = pytest.mark.skipif(not onnx_backbone.available() and not os.environ.get("CI"),
                                reason="onnxruntime/onnx/onnxscript not installed")
SIZE = GRAPH_SIZES[0]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def lite0():
    from convviz.core.model.loading import load_model

    return load_model("default")


@pytest.fixture(scope="module")
def tapped(lite0):
    """The headless bundled model as the fast path reads it: pooled bn2, then blocks.4 and blocks.5 each as
    channel means and log standard deviations (core.taps)."""
    import copy

    from convviz.core.model.taps import add_taps

    return headless(add_taps(copy.deepcopy(lite0.module), TAPS, POOL))


@pytest.fixture(scope="module")
def state():
    return remap_keys(read_weights(bundled_weights_path()))


def backbone_state(state):
    """The bundled state dict without its classifier, as a state-only network gives it to the graph."""
    from convviz.core.model.preprocess import Preprocess

    kept = Network("default", Preprocess(**PREPROCESS), TAPS, state=state).backbone_state()
    assert "classifier.weight" in state and not any(k.startswith("classifier.") for k in kept)
    return kept


def test_graph_ships_no_weights_and_its_reference_is_torchs(tapped):
    import json

    import onnx

    path = graph_file(SIZE)
    assert os.path.getsize(path) < 300_000  # topology only: the weights (18 MB) come from the installed package
    model = onnx.load(path, load_external_data=False)
    empty = [i for i in model.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    assert empty and all(not i.raw_data for i in empty)
    eager = tapped
    assert {i.name for i in empty} <= set(eager.state_dict())
    stored = torch.tensor(json.loads({p.key: p.value for p in model.metadata_props}["convviz.probe_features"]))
    with torch.no_grad():
        want = eager(probe(SIZE).contiguous(memory_format=torch.channels_last))
    assert stored.shape == want.shape == (2, 1280 + 2 * (112 + 192))
    assert (stored - want).abs().max().item() <= onnx_backbone.TOLERANCE


def test_filled_graph_equals_eager_torch_on_real_photos(lite0, tapped, state):
    from convviz.core.finetune.scan import scan_folder
    from convviz.core.finetune.train import preprocess_for
    from convviz.core.finetune.train_types import TrainConfig

    runner = load_bundled(backbone_state(state), SIZE)
    assert runner is not None
    pp = preprocess_for(lite0.preprocess, TrainConfig())
    assert pp.input_size == SIZE
    photos = os.path.join(ROOT, "..", "shared", "data", "cats-dogs-60")
    if not os.path.isdir(photos):  # CI always has ../shared: there a missing folder is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("../shared/data/cats-dogs-60 is not here")
    scan = scan_folder(photos)
    dataset = ImageDataset(scan.train[:3] + scan.val[:2], pp)
    x = normalize(torch.stack([dataset[i][0] for i in range(len(dataset))]), pp)
    with torch.no_grad():
        want = tapped(x)
    assert (runner(x) - want).abs().max().item() <= 1e-4


def test_unusable_weights_or_sizes_are_refused(tapped, state):
    weights = backbone_state(state)
    assert load_bundled(weights, SIZE + 32) is None  # no graph for that size
    missing = dict(weights)
    missing.pop("conv_head.weight")
    assert load_bundled(missing, SIZE) is None
    misshaped = dict(weights, **{"conv_stem.weight": torch.zeros(16, 3, 3, 3)})
    assert load_bundled(misshaped, SIZE) is None
    other = dict(weights, **{"bn2.bias": weights["bn2.bias"] + 0.5})  # other weights: the stored probe disagrees
    assert load_bundled(other, SIZE) is None
    # … unless the caller's own eager model is the reference (a fine-tuned backbone)
    import copy

    model = copy.deepcopy(tapped)
    with torch.no_grad():
        model.bn2.bias.add_(0.5)
    assert load_bundled(model.state_dict(), SIZE, reference=model) is not None


def test_backend_uses_the_shipped_graph_without_exporting(lite0, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path))
    from convviz.core.finetune.train import network_of
    from convviz.core.finetune.train_types import TrainConfig

    backend = choose_backend(network_of(lite0, TrainConfig()), graph="cached")
    assert isinstance(backend, OnnxBackend) and backend.open() == "onnx"
    # nothing exported: the only file is the shipped graph filled with these weights (read as it is next time)
    assert [f for _, _, fs in os.walk(tmp_path) for f in fs] == [f"bundled-{backend.cache_key.split('|')[0]}-{SIZE}.onnx"]
    plain = choose_backend(network_of(lite0, TrainConfig(taps=())), graph="cached")  # other outputs: not the shipped graph
    assert isinstance(plain, TorchBackend) and plain(probe(SIZE)).shape == (2, 1280)
    bundled = choose_backend(Network("default", plain_preprocess(lite0), TAPS, state=lite0.module.state_dict()))
    assert bundled.cache_key != backend.cache_key and bundled.open() == "onnx"  # a state-only network: no module built
    x = probe(SIZE)
    assert (bundled(x) - backend(x)).abs().max().item() <= 1e-4


def plain_preprocess(lite0):
    from convviz.core.finetune.train import preprocess_for
    from convviz.core.finetune.train_types import TrainConfig

    return preprocess_for(lite0.preprocess, TrainConfig())


def test_a_state_only_network_that_cannot_open_the_graph_builds_the_model(lite0, state, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path))
    from convviz.core.finetune import backend as backend_module

    network = Network("default", plain_preprocess(lite0), TAPS, state=state)
    onnx = choose_backend(network)
    assert onnx.open() == "onnx"
    monkeypatch.setattr(backend_module, "load_bundled", lambda *args, **kwargs: None)  # e.g. a damaged package file
    fallback = choose_backend(network)
    assert fallback.kind == "onnx" and fallback.open() == "eager" and fallback.cache_key == onnx.cache_key
    x = probe(SIZE)
    assert (fallback(x) - onnx(x)).abs().max().item() <= 1e-4


def test_a_cancelled_bundled_run_saves_what_the_built_model_saves(lite0, tmp_path):
    """Cancelled before every feature was in: the head keeps its seeded initialisation, the same either way."""
    from convviz.core.finetune import TrainConfig, fine_tune, scan_folder
    from convviz.core.finetune.bundled_fast import fine_tune_bundled, prepare

    scan = scan_folder(make_folder(tmp_path / "data", per_class=3, size=40))
    config = TrainConfig(seed=3)
    *_, mine = fine_tune_bundled(prepare(config), scan, config, should_stop=lambda: True)
    *_, built = fine_tune(lite0, scan, config, should_stop=lambda: True)
    a, b = mine.result, built.result
    assert a.cancelled and b.cancelled and mine.stage == built.stage == "cancelled"
    assert a.freeze == b.freeze and a.history == b.history == {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    weights = a.checkpoint()["state_dict"]["classifier.weight"]
    assert weights.shape == (2, 1280 + 2 * (112 + 192)) and weights.abs().sum() > 0
    assert torch.equal(weights, b.checkpoint()["state_dict"]["classifier.weight"])


def test_preprocess_constant_is_timms_config(lite0):
    from convviz.core.model.preprocess import Preprocess

    assert Preprocess(**PREPROCESS) == lite0.preprocess


def test_head_freeze_report_from_state_matches_the_module(lite0, state):
    import copy

    from convviz.core.finetune.heads import apply_freeze, head_freeze_report

    assert head_freeze_report(state) == apply_freeze(copy.deepcopy(lite0.module), "head")


def test_bundled_run_saves_the_same_checkpoint_as_the_built_model(lite0, tmp_path):
    from convviz.core.finetune import TrainConfig, fine_tune, scan_folder
    from convviz.core.finetune.bundled_fast import fine_tune_bundled, prepare

    scan = scan_folder(make_folder(tmp_path / "data", per_class=5, size=48))
    config = TrainConfig(epochs=20)
    bundled = prepare(config)
    assert bundled is not None and bundled.model is None and bundled.taps == TAPS
    assert prepare(TrainConfig(freeze="none")) is None and prepare(TrainConfig(input_size=256)) is None
    *_, mine = fine_tune_bundled(bundled, scan, config)
    *_, built = fine_tune(lite0, scan, config)
    a, b = mine.result, built.result
    assert a.model is None and a.backbone == b.backbone == "onnx"
    assert a.evaluation.accuracy == b.evaluation.accuracy and a.evaluation.confusion == b.evaluation.confusion
    assert a.freeze == b.freeze and a.history == b.history
    mine_state, built_state = a.checkpoint()["state_dict"], b.checkpoint()["state_dict"]
    assert list(mine_state) == list(built_state)
    for key, value in built_state.items():
        assert torch.allclose(mine_state[key].float(), value.float(), atol=1e-5), key


def test_cli_default_finetune_imports_neither_timm_nor_torchvision_and_a_warm_run_no_onnx(tmp_path):
    data = make_folder(tmp_path / "data", per_class=5, size=48)
    env = dict(os.environ, CONVVIZ_CACHE_DIR=str(tmp_path / "cache"), CONVVIZ_FEATURE_CACHE="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "convviz.cli", "finetune", data, "--json",
                          "--epochs", "5", "--out", str(tmp_path / "ft.pt")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and "timm" not in imported and "torchvision" not in imported
    head = torch.load(tmp_path / "ft.pt", weights_only=True)["head"]
    assert head["taps"] == list(TAPS) and head["mirror"] and head["pool"] in (POOL, "mean")  # the run's choice
    again = subprocess.run(out.args, cwd=ROOT, env=env, capture_output=True, text=True)  # every feature cached now
    assert again.returncode == 0, again.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in again.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" not in imported and "onnx" not in imported  # the backend was never opened


def test_cache_key_names_the_network_not_only_its_weights(monkeypatch):
    """Same weights, other padding rule (the pre-0.2 bundled network): another cache key, so a graph
    cached before an upgrade is never used after it; a new CACHE_VERSION changes every key."""
    import timm

    from convviz.core.finetune import backend

    old = timm.create_model("efficientnet_lite0").eval()
    new = timm.create_model("tf_efficientnet_lite0").eval()
    new.load_state_dict(old.state_dict())
    keys = {backend.weights_hash(old), backend.weights_hash(new)}
    monkeypatch.setattr(backend, "CACHE_VERSION", backend.CACHE_VERSION + 1)
    keys.add(backend.weights_hash(new))
    assert len(keys) == 3
    assert onnx_backbone.onnx_path("/c", "default", backend.weights_hash(old), SIZE) != \
        onnx_backbone.onnx_path("/c", "default", backend.weights_hash(new), SIZE)


def test_shipped_graph_of_another_network_is_refused(state, tmp_path, monkeypatch):
    import onnx

    from convviz.core.finetune import bundled_graph

    model = onnx.load(graph_file(SIZE), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == "convviz.source":
            prop.value = "timm efficientnet_lite0, headless, tapped, torch.onnx.export(dynamo=True)"  # the old graph
    stale = tmp_path / "stale.onnx"
    onnx.save_model(model, str(stale))
    assert load_bundled(backbone_state(state), SIZE) is not None
    monkeypatch.setattr(bundled_graph, "graph_file", lambda size: str(stale))
    assert load_bundled(backbone_state(state), SIZE) is None
