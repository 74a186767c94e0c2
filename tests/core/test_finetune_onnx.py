"""ONNX Runtime backbone: equal to eager torch, cached once, refused when damaged or different; the L-BFGS head."""
import os

import pytest
import torch
import torch.nn.functional as F

from convviz.core.finetune import onnx_backbone
from convviz.core.finetune.backend import OnnxBackend, TorchBackend, cache_dir, choose_backend, weights_hash
from convviz.core.finetune.head_fit import choose_columns, choose_l2, fit_logistic, standardizer
from convviz.core.finetune.heads import headless
from convviz.core.finetune.network import Network
from convviz.core.model.preprocess import Preprocess

from test_finetune_fixtures import tiny_model

# they are dependencies: in CI (CI=true) a missing one fails these tests instead of skipping them
pytestmark = pytest.mark.skipif(not onnx_backbone.available() and not os.environ.get("CI"),
                                reason="onnxruntime/onnx/onnxscript not installed")
SIZE = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(eager backbone, path of its exported graph), exported once for the module."""
    torch.manual_seed(0)
    backbone = headless(tiny_model(SIZE).module)
    path = str(tmp_path_factory.mktemp("onnx") / "cache" / "g.onnx")  # export_onnx creates "cache"
    onnx_backbone.export_onnx(backbone, SIZE, path)
    return backbone, path


def test_onnx_features_equal_eager_torch(exported):
    backbone, path = exported
    runner = onnx_backbone.load_onnx(path, backbone, SIZE)
    assert runner is not None
    x = torch.randn(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))  # batch size unlike the export's
    with torch.no_grad():
        want = backbone(x.contiguous(memory_format=torch.channels_last))
    got = runner(x)
    assert got.shape == want.shape == (5, 1024)
    assert (got - want).abs().max().item() <= 1e-4
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700  # our cache folder: private


def test_mismatching_or_corrupt_graph_is_refused(exported, tmp_path):
    backbone, path = exported
    other = headless(tiny_model(SIZE).module)
    with torch.no_grad():
        other.classifier[0].bias.add_(0.5)  # same architecture, other weights: features differ
    assert onnx_backbone.load_onnx(path, other, SIZE) is None
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(open(path, "rb").read()[:2000])  # truncated
    assert onnx_backbone.load_onnx(str(broken), backbone, SIZE) is None
    assert onnx_backbone.load_onnx(str(tmp_path / "missing.onnx"), backbone, SIZE) is None


def tiny_network(model):
    return Network("tiny", Preprocess(input_size=SIZE, crop_pct=1.0), model=model)


def test_backend_exports_once_reuses_and_falls_back(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path))
    model = tiny_model(SIZE).module
    backbone, path = exported
    key = onnx_backbone.onnx_path(cache_dir(), "tiny", weights_hash(headless(model)), SIZE)
    nothing = choose_backend(tiny_network(model), graph="cached")  # nothing exported yet: torch, no export
    assert isinstance(nothing, TorchBackend) and nothing.open() == "eager" and not os.path.exists(key)
    os.makedirs(os.path.dirname(key), mode=0o700)
    with open(path, "rb") as src, open(key, "wb") as dst:  # the export for these weights, placed as the cache
        dst.write(src.read())
    stamp = os.stat(key).st_mtime_ns
    cached = choose_backend(tiny_network(model), graph="auto")
    assert isinstance(cached, OnnxBackend) and cached.open() == "onnx" and os.stat(key).st_mtime_ns == stamp  # reused
    x = torch.randn(3, 3, SIZE, SIZE)
    eager = choose_backend(tiny_network(model), graph="eager")
    assert isinstance(eager, TorchBackend) and eager.cache_key == cached.cache_key  # the same features, one cache
    assert (cached(x) - eager(x)).abs().max().item() <= 1e-4
    with open(key, "wb") as dst:
        dst.write(b"not an onnx file")
    fallback = choose_backend(tiny_network(model), graph="cached")
    assert fallback.kind == "onnx" and fallback.open() == "eager"  # opened on first use, then torch
    assert torch.allclose(fallback(x), eager(x))


def test_backend_exports_when_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path))
    model = tiny_model(SIZE).module
    said = []
    backend = choose_backend(tiny_network(model), graph="auto", on_status=said.append)
    assert not os.path.exists(cache_dir())  # nothing done before it is used
    x = torch.randn(2, 3, SIZE, SIZE)
    got = backend(x)
    assert backend.kind == "onnx" and len(said) == 1 and "exporting" in said[0] and len(os.listdir(cache_dir())) == 1
    assert (got - choose_backend(tiny_network(model), graph="eager")(x)).abs().max().item() <= 1e-4


def test_graph_mode_is_checked():
    with pytest.raises(ValueError, match="auto, cached or eager"):
        choose_backend(tiny_network(tiny_model(SIZE).module), graph="prepared")


def test_logistic_head_reaches_the_regularised_optimum():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(60, 5, generator=g)
    y = (z[:, 0] + 0.5 * torch.randn(60, generator=g) > 0).long()
    linear = fit_logistic(z, y, 2, l2=0.01, iterations=200)
    weight = linear.weight.detach().clone().requires_grad_(True)
    bias = linear.bias.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(z @ weight.T + bias, y) + 0.01 * weight.pow(2).sum()
    loss.backward()  # the objective's gradient, by torch autograd, vanishes at the fit
    assert weight.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3
    assert float((linear(z).argmax(1) == y).float().mean()) > 0.8


def test_l2_chosen_by_cross_validated_log_loss_with_groups_kept_together():
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(20, 4, generator=g) + 3, torch.randn(20, 4, generator=g) - 3])
    y = torch.cat([torch.zeros(20), torch.ones(20)]).long()
    groups = torch.arange(40)
    # well separated: the weakest L2 gives the most confident right answers, the least log-loss
    assert choose_l2(z, y, groups, 2, grid=(1e-3, 1.0)) == 1e-3
    # labels that are noise: the strongest L2 (predicting near 50 %) has the least held-out log-loss …
    noise = torch.randn(40, 8, generator=g)
    coin = torch.randint(0, 2, (40,), generator=g)
    twice, coins = torch.cat([noise, noise]), torch.cat([coin, coin])
    assert choose_l2(twice, coins, torch.cat([groups, groups]), 2, grid=(1e-3, 1.0)) == 1.0
    # … when each sample's twin is in its fold; tested on twins it has learnt, it would pick the weakest
    assert choose_l2(twice, coins, torch.arange(80), 2, grid=(1e-3, 1.0)) == 1e-3

def test_feature_columns_are_kept_only_where_cross_validation_says_they_help():
    """The fast path's choice between a head on every column and one on a subset (the tapped stages'
    means without their log standard deviations): the least held-out log-loss decides."""
    g = torch.Generator().manual_seed(1)
    y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    weak = (2 * y - 1).float()[:, None] * 0.3 + torch.randn(80, 3, generator=g)  # a little signal
    strong = (2 * y - 1).float()[:, None] * 2.0 + torch.randn(80, 2, generator=g)
    noise = torch.randn(80, 40, generator=g)
    groups, subset = torch.arange(80), [0, 1, 2]
    grid = (0.1, 1.0)
    # the extra columns separate the classes: the head reads them
    name, l2 = choose_columns(torch.cat([weak, strong], 1), y, groups, 2, {"all": (None, grid), "subset": (subset, grid)})
    assert name == "all" and l2 in grid
    # they are noise that only lets the head overfit: the subset wins
    name, _ = choose_columns(torch.cat([weak, noise], 1), y, groups, 2, {"all": (None, grid), "subset": (subset, grid)})
    assert name == "subset"


def test_a_feature_constant_on_the_training_images_reads_as_zero_for_every_image():
    """A channel dead on every training photo but alive on a new one must not blow up its score."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 20, generator=g)
    x[:, 1] = 0.0  # dead on every training image
    x[:, 2] = 1e-7 * torch.randn(12, generator=g)  # all but dead
    mu, sd = standardizer(x)
    assert torch.isinf(sd[1:3]).all()
    plain = [0, *range(3, 20)]
    assert torch.allclose(mu[plain], x[:, plain].mean(0)) and torch.allclose(sd[plain], x[:, plain].std(0))
    new = torch.zeros(1, 20)
    new[0, 1:3] = torch.tensor([3.0, 2.0])  # the dead channels fire on a new image
    z = (new - mu) / sd
    assert torch.isfinite(z).all() and (z[0, 1:3] == 0).all()
    head = fit_logistic((x - mu) / sd, (x[:, 0] > 0).long(), 2, l2=0.1)
    assert (head.weight[:, 1:3] == 0).all()  # nothing to learn from a constant: its weight stays 0
