"""Training generator: fast path, full loop, cancel within one batch, round trip."""
import numpy as np
import pytest
import torch

from convviz.core.finetune import AugmentSpec, TrainConfig, fine_tune, scan_folder
from convviz.core.images import load_image
from convviz.core.model.loading import load_model

from test_finetune_fixtures import make_folder, tiny_model


@pytest.fixture
def scan(tmp_path):
    return scan_folder(make_folder(tmp_path / "d", per_class=8), val_fraction=0.25)


def run(loaded, scan, config, **kw):
    items = list(fine_tune(loaded, scan, config, **kw))
    return items, items[-1].result


def test_fast_path_learns_and_saved_model_reproduces_evaluation(scan, tmp_path):
    loaded = tiny_model()
    items, result = run(loaded, scan, TrainConfig(epochs=30, graph="eager", workers=0))
    assert items[-1].stage == "done" and {p.stage for p in items} >= {"features", "train"}
    assert result.backbone == "eager" and result.freeze.trainable_params == 1024 * 2 + 2
    assert 1 <= len(result.history["val_acc"]) <= 30 and result.evaluation.accuracy == 1.0  # L-BFGS may converge sooner
    assert sum(map(sum, result.evaluation.confusion)) == len(scan.val)
    # the folded head inside the saved model gives the evaluation's predictions
    path = str(tmp_path / "out.pt")
    result.save(path)
    reloaded = load_model(path)
    assert reloaded.label_names(2) == ("blue", "red")
    for key in ("input_size", "crop_pct", "mean", "std", "interpolation"):
        got, want = getattr(reloaded.preprocess, key), getattr(result.preprocess, key)
        assert (tuple(got) == tuple(want)) if key in ("mean", "std") else got == want
    with torch.no_grad():
        preds = [int(reloaded.class_scores(reloaded.preprocess.to_tensor(load_image(s.path).rgb)).argmax()) for s in scan.val]
    assert preds == [s.label for s in scan.val]
    assert torch.load(path, weights_only=True)["training"]["epochs"] == 30


def test_full_loop_with_augmentation_and_cancel_within_one_batch(scan):
    loaded = tiny_model()
    config = TrainConfig(epochs=3, batch_size=4, freeze="last:1", augment=AugmentSpec(hflip=0.5), workers=0)
    seen = []
    stop_after = 2

    def should_stop():
        return len([p for p in seen if p.stage == "train"]) >= stop_after

    for progress in fine_tune(loaded, scan, config, should_stop=should_stop):
        seen.append(progress)
    batches = [p for p in seen if p.stage == "train" and p.batch_grid is not None or p.stage == "train"]
    assert seen[-1].stage == "cancelled" and seen[-1].result is not None
    assert len([p for p in batches if p.val_acc is None]) == stop_after  # no batch after the stop request
    first = next(p for p in seen if p.stage == "train")
    assert first.batch_grid.shape == (64, 4 * 64, 3) and first.batch_grid.dtype == np.uint8
    assert seen[-1].result.cancelled and 0 <= seen[-1].result.evaluation.accuracy <= 1
    # the warm start (features once, then the head, as the fast path) comes first, within its share of the bar
    warm = [p for p in seen if p.stage == "features"]
    assert warm and seen.index(warm[-1]) < seen.index(first) and max(p.fraction for p in warm) <= 0.2 + 1e-9
    assert all("warm start" in p.message for p in warm)


def test_full_loop_runs_epochs(scan):
    _, result = run(tiny_model(), scan, TrainConfig(epochs=2, batch_size=6, freeze="none", workers=0))
    assert len(result.history["train_loss"]) == 2 and not result.cancelled and result.backbone == "full"


def test_fast_path_sees_the_whole_image_at_the_models_size():
    from convviz.core.finetune.train import preprocess_for
    from convviz.core.model.loading import LoadedModel
    from convviz.core.model.preprocess import Preprocess

    loaded = LoadedModel("x", "x", torch.nn.Identity(), Preprocess(input_size=224, crop_pct=0.875))
    fast = preprocess_for(loaded.preprocess, TrainConfig())
    assert (fast.input_size, fast.crop_pct) == (224, 1.0)  # the whole image, not the model's 87.5 % crop
    full = preprocess_for(loaded.preprocess, TrainConfig(freeze="none"))
    assert (full.input_size, full.crop_pct) == (224, 1.0)
    assert preprocess_for(loaded.preprocess, TrainConfig(input_size=160)).input_size == 160


def test_full_loop_starts_from_the_fast_path_head(scan):
    """Linear probe, then fine-tune: the full loop's head starts as the fast path's fitted head (a near-zero
    learning rate leaves it there), and that head was already scored as the first best candidate."""
    from convviz.core.finetune.heads import head_name

    loaded = tiny_model()
    _, fast = run(loaded, scan, TrainConfig(graph="eager", workers=0))
    _, full = run(loaded, scan, TrainConfig(freeze="last:1", augment=AugmentSpec(hflip=0.5), epochs=1, lr=1e-12,
                                            graph="eager", workers=0))
    name = head_name(fast.model)
    a, b = fast.model.get_submodule(name), full.model.get_submodule(name)
    assert torch.allclose(a.weight, b.weight, atol=1e-5) and torch.allclose(a.bias, b.bias, atol=1e-5)
    assert full.evaluation.accuracy >= fast.evaluation.accuracy - 1e-6
    assert fast.kept_epoch is None and full.kept_epoch in (0, 1)
    assert full.checkpoint()["training"]["kept_epoch"] == full.kept_epoch
