"""The fast path's choice of the tapped stages' pooling (means, or means and log standard deviations)
is what the saved model computes, and the full loop starts from the same function (core.taps)."""
import pytest
import torch
import torch.nn.functional as F

from convviz.core.finetune import AugmentSpec, TrainConfig, fast_path, fine_tune, scan_folder
from convviz.core.finetune.heads import head_name
from convviz.core.images import load_image
from convviz.core.model.loading import load_model
from convviz.core.model.taps import DEFAULT_POOL, pool_of, taps_of

from test_finetune_fixtures import make_folder

FAST = TrainConfig(epochs=30, graph="eager", workers=0)


@pytest.fixture(scope="module")
def lite0():
    return load_model("default")


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return scan_folder(make_folder(tmp_path_factory.mktemp("pool") / "d", per_class=6, size=48), val_fraction=0.34)


def forced(monkeypatch, pool: str) -> None:
    """Make cross-validation choose ``pool`` (with L2 0.3) whatever the data."""
    monkeypatch.setattr(fast_path, "choose_columns", lambda *a, **k: (pool, 0.3))


def val_loss(model_path: str, scan) -> float:
    """Mean cross-entropy of the reloaded model's scores (mirror-averaged, as it predicts) on the validation images."""
    loaded = load_model(model_path)
    with torch.no_grad():
        scores = torch.cat([loaded.class_scores(loaded.preprocess.to_tensor(load_image(s.path).rgb)) for s in scan.val])
    return float(F.cross_entropy(scores, torch.tensor([s.label for s in scan.val])))


@pytest.mark.parametrize("pool,width", [("mean", 1280 + 112 + 192), ("mean+logstd", 1280 + 2 * (112 + 192))])
def test_the_chosen_pool_is_saved_and_reloads_as_the_evaluated_function(lite0, scan, tmp_path, monkeypatch, pool, width):
    forced(monkeypatch, pool)
    items = list(fine_tune(lite0, scan, FAST))
    result = items[-1].result
    assert result.pool == pool and result.taps == (4, 5)
    assert any(f"stage means{' and log std' if pool != 'mean' else ''} (chosen on train)" in p.message for p in items)
    path = str(tmp_path / f"{pool}.pt")
    result.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["head"]["pool"] == pool and payload["state_dict"]["classifier.weight"].shape == (2, width)
    loaded = load_model(path)
    assert pool_of(loaded.module) == pool and taps_of(loaded.module) == (4, 5)
    assert ("log standard deviation" in loaded.head_note) == (pool != "mean")
    assert val_loss(path, scan) == pytest.approx(result.evaluation.loss, abs=1e-3)


def test_the_full_loop_starts_from_a_mean_head_widened_with_zeros(lite0, scan, monkeypatch):
    """The full loop's model reads every column (means and log std); a warm start whose cross-validation
    chose the means only gets zero weights on the log std: the same function as the fast path's model."""
    forced(monkeypatch, "mean")
    fast = list(fine_tune(lite0, scan, FAST))[-1].result
    full = list(fine_tune(lite0, scan, TrainConfig(freeze="last:1", augment=AugmentSpec(hflip=0.5), epochs=1, lr=1e-12,
                                                   graph="eager", workers=0)))[-1].result
    assert pool_of(full.model) == DEFAULT_POOL and pool_of(fast.model) == "mean"
    head = full.model.get_submodule(head_name(full.model))
    assert head.in_features == 1280 + 2 * (112 + 192)
    # bn2 1280 | blocks.4: 112 means, 112 log std | blocks.5: 192 means, 192 log std
    logstd = [*range(1280 + 112, 1280 + 224), *range(1504 + 192, 1504 + 384)]
    assert head.weight[:, logstd].abs().max() < 1e-9 < head.weight.abs().max()  # (an lr of 1e-12 moves them ~1e-24)
    means = [c for c in range(head.in_features) if c not in logstd]
    fast_head = fast.model.get_submodule(head_name(fast.model))
    # (the weights, not the outputs: the unfrozen block's BatchNorm statistics move in training mode)
    assert torch.allclose(head.weight[:, means], fast_head.weight, atol=1e-5)
    assert torch.allclose(head.bias, fast_head.bias, atol=1e-5)
