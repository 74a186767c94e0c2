"""Before / after: a real fine-tune's frozen layers show exactly zero weight change, its trained layers
move, a known change is measured exactly, another architecture is refused in one sentence."""
import copy

import numpy as np
import pytest
import torch

from convviz.core.finetune import TrainConfig, fine_tune, scan_folder
from convviz.core.model.loading import LoadedModel, build_architecture, load_model
from convviz.core.model.preprocess import Preprocess
from convviz.core.tasks import TaskInputs, get_task
from convviz.core.where import compare

from test_finetune_fixtures import make_folder, tiny_model


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return scan_folder(make_folder(tmp_path_factory.mktemp("d"), per_class=6), val_fraction=0.34)


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (40, 48, 3)).astype(np.uint8)


def tuned(scan, tmp_path, freeze, epochs):
    loaded = tiny_model()
    result = list(fine_tune(loaded, scan, TrainConfig(epochs=epochs, freeze=freeze, graph="eager", workers=0,
                                                      batch_size=4)))[-1].result
    path = str(tmp_path / f"{freeze.replace(':', '_')}.pt")
    result.save(path)
    return loaded, load_model(path)


def test_frozen_layers_of_a_real_fine_tune_do_not_move(scan, tmp_path, rgb):
    before, after = tuned(scan, tmp_path, "head", 5)
    changes = {c.layer: c for c in compare.weight_changes(before.module, after.module)}
    assert changes["classifier.3"].status == "replaced" and changes["classifier.3"].note == "1000 → 2 outputs"
    frozen = [c for name, c in changes.items() if name != "classifier.3"]
    assert len(frozen) > 50 and all(c.change == 0.0 and c.status == "unchanged" for c in frozen)
    result = compare.compare_models(before, after, rgb)
    assert result.summary().startswith(f"{len(frozen)} of {len(changes)} layers unchanged; classifier.3 replaced")
    assert result.same_input and result.maps_a.shape == result.maps_b.shape
    np.testing.assert_array_equal(result.maps_a, result.maps_b)  # frozen backbone, same pixels: the same maps
    assert (result.channel_change == 0).all()
    assert [p["label"] for p in result.predictions_b] == ["blue", "red"] and len(result.predictions_a) == 5


def test_unfrozen_blocks_move_and_the_rest_stays():
    from convviz.core.finetune.heads import apply_freeze, set_train_mode
    from convviz.core.model.head import replace_head

    before = tiny_model(48)
    model = copy.deepcopy(before.module)
    replace_head(model, 2)
    apply_freeze(model, "last:1")  # the last block and the head train, as a fine-tune's "last:1" does
    set_train_mode(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 48, 48)), torch.tensor([0, 1, 0, 1])).backward()
    opt.step()
    changes = compare.weight_changes(before.module, model.eval())
    moved = {c.layer for c in changes if c.status == "changed"}
    assert moved and all(name.startswith(("features.12", "classifier")) for name in moved)
    assert all(c.change > 0 for c in changes if c.status == "changed")
    assert all(c.change == 0.0 for c in changes if not c.layer.startswith(("features.12", "classifier")))


def test_known_change_is_measured_exactly(rgb):
    a = tiny_model(48)
    b = LoadedModel("b", "b", copy.deepcopy(a.module), a.preprocess)
    with torch.no_grad():
        b.module.features[0][0].weight.mul_(1.25)  # ‖1.25 W − W‖ / ‖W‖ = 0.25 (the conv has no bias)
        b.module.features[0][1].bias.add_(1.0)  # batch norm: ‖Δ‖² = C over ‖weight‖² + ‖bias‖²
    changes = {c.layer: c for c in compare.weight_changes(a.module, b.module)}
    assert changes["features.0.0"].change == pytest.approx(0.25, rel=1e-6)
    bn = a.module.features[0][1]
    want = np.sqrt(bn.bias.numel() / float(bn.weight.detach().pow(2).sum() + bn.bias.detach().pow(2).sum()))
    assert changes["features.0.1"].change == pytest.approx(want, rel=1e-6)
    assert sum(c.status == "changed" for c in changes.values()) == 2
    result = get_task("where.compare:compare_task")(
        TaskInputs(args={"layer": "features.0.0", "k": 3}, model=a, second=b, rgb=rgb))
    np.testing.assert_allclose(result.maps_b, 1.25 * result.maps_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.channel_change, 0.25, rtol=1e-4)
    assert len(result.predictions_a) == 3


def test_another_architecture_is_one_sentence(rgb):
    a = tiny_model()
    module, *_ = build_architecture("resnet18", require_weights=False)
    other = LoadedModel("resnet18", "resnet18 (random weights)", module.eval(), Preprocess(input_size=32))
    with pytest.raises(compare.ArchitectureMismatch) as info:
        compare.compare_models(a, other, rgb)
    message = str(info.value)
    assert message == ("the two models' architectures do not match (resnet18 (random weights) has no layer features.0.0): "
                       "compare needs a model and one derived from it, such as its fine-tune")
    wider = copy.deepcopy(a.module)
    wider.features[0][0] = torch.nn.Conv2d(3, 16, 5, 2, 2, bias=False)
    with pytest.raises(compare.ArchitectureMismatch, match=r"\(the second model's features.0.0.weight is 16×3×5×5, not 16×3×3×3\)"):
        compare.weight_changes(a.module, wider)


def test_different_crop_uses_the_first_models_pixels_and_says_so(rgb):
    a = tiny_model(48)
    b = LoadedModel("b", "tuned", copy.deepcopy(a.module), Preprocess(input_size=48, crop_pct=0.5))
    result = compare.compare_models(a, b, rgb, layer="features.1")
    assert result.same_input and "both maps from tiny's crop" in result.input_note
    np.testing.assert_array_equal(result.maps_a, result.maps_b)
    c = LoadedModel("c", "other scaling", copy.deepcopy(a.module), Preprocess(input_size=48, crop_pct=1.0, mean=(0.5,) * 3))
    result = compare.compare_models(a, c, rgb, layer="features.1")
    assert not result.same_input and "scale their input differently" in result.input_note
    assert (result.channel_change > 0).any()


def test_each_model_shows_its_evidence_for_its_own_top_class(scan, tmp_path, rgb):
    before, after = tuned(scan, tmp_path, "head", 5)
    result = compare.compare_models(before, after, rgb, layer="features.3")
    for cam, preds in ((result.cam_a, result.predictions_a), (result.cam_b, result.predictions_b)):
        # its top class (A's random ImageNet head scores every class alike: the same probability, maybe another name)
        assert cam.layer == "features.3" and cam.prob == pytest.approx(preds[0]["prob"], abs=1e-4)
        assert cam.cam.shape == result.maps_a.shape[1:] and 0 <= cam.heat.max() <= 1 + 1e-6
    assert result.cam_b.label == result.predictions_b[0]["label"] and result.cam_b.labels == ("blue", "red") and len(result.cam_a.labels) == 1000
    vector = compare.compare_models(before, after, rgb, layer="classifier.0")
    assert vector.cam_a is None and vector.maps_a.shape[1:] == (1, 1)
