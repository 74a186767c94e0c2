"""Multi-layer heads (core.taps) and mirror-averaged predictions, each checked against torch itself."""
import copy

import pytest
import torch
from convviz.core.finetune.heads import replace_head
from convviz.core.model.loading import LoadedModel, ModelError, load_model, mirror_scores
from convviz.core.model.taps import (DEFAULT_POOL, DEFAULT_TAPS, POOLS, add_taps, can_tap, check_taps, default_taps,
                                     head_features, pool_of, state_head_features, taps_of)


@pytest.fixture(scope="module")
def lite0():
    return load_model("default")


def stage_pool(out, pool):
    """A stage's pooled output as written out by hand: channel means, then (``mean+logstd``) the log of
    each channel's standard deviation over the map."""
    flat = out.flatten(2)
    return flat.mean(2) if pool == "mean" else torch.cat([flat.mean(2), flat.std(2, unbiased=False).log()], 1)


def pooled_by_hooks(model, x, stages, pool="mean"):
    """blocks[i] outputs, pooled (:func:`stage_pool`), recorded by forward hooks on the plain timm model."""
    seen = {}
    handles = [model.blocks[i].register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, stage_pool(out, pool)))
               for i in stages]
    try:
        final = model.forward_head(model.forward_features(x), pre_logits=True)
    finally:
        for h in handles:
            h.remove()
    return torch.cat([final] + [seen[i] for i in stages], 1)


@pytest.mark.parametrize("pool,width", [("mean", 1280 + 112 + 192), ("mean+logstd", 1280 + 2 * (112 + 192))])
def test_tapped_forward_is_the_plain_forward_with_a_wider_classifier(lite0, pool, width):
    plain = copy.deepcopy(lite0.module).eval()
    tapped = add_taps(copy.deepcopy(lite0.module), DEFAULT_TAPS, pool).eval()
    head = replace_head(tapped, 3)
    assert taps_of(tapped) == (4, 5) and pool_of(tapped) == pool and head.in_features == head_features(tapped) == width
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = head(pooled_by_hooks(plain, x, DEFAULT_TAPS, pool))
        got = tapped(x)
    assert torch.allclose(got, want, atol=1e-5)
    # the model's class, its module tree (what every panel explores) and its state-dict keys are unchanged
    assert type(tapped) is type(plain) and "forward" not in tapped.__dict__
    assert [(n, type(m)) for n, m in tapped.named_modules()] == [(n, type(m)) for n, m in plain.named_modules()]
    assert list(tapped.state_dict()) == list(plain.state_dict())
    state = tapped.state_dict()
    assert state_head_features(state, DEFAULT_TAPS, pool) == width and state["classifier.weight"].shape == (3, width)


def test_the_default_pool_is_mean_and_log_std_and_unknown_pools_are_refused(lite0):
    assert DEFAULT_POOL == "mean+logstd" and POOLS == ("mean", "mean+logstd")
    assert pool_of(add_taps(copy.deepcopy(lite0.module))) == DEFAULT_POOL
    with pytest.raises(ValueError, match="expected one of mean, mean\\+logstd"):
        add_taps(copy.deepcopy(lite0.module), DEFAULT_TAPS, "max")


def test_copies_keep_their_own_tapped_forward(lite0):
    tapped = add_taps(copy.deepcopy(lite0.module)).eval()
    replace_head(tapped, 2)
    twin = copy.deepcopy(tapped)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        twin.classifier.bias.add_(5.0)
        assert torch.allclose(twin(x) - tapped(x), torch.full((1, 2), 5.0), atol=1e-4)
    assert taps_of(twin) == taps_of(tapped)
    add_taps(twin, ())  # back to the architecture's own forward (the classifier must be replaced to fit again)
    assert taps_of(twin) == () and taps_of(tapped) == (4, 5)
    assert not twin.global_pool._forward_hooks and not any(stage._forward_hooks for stage in twin.blocks)
    replace_head(twin, 2)
    with torch.no_grad():
        assert twin(x).shape == (1, 2) and torch.allclose(twin.forward_head(twin.forward_features(x)), twin(x))


def test_two_threads_running_one_tapped_model_each_get_their_own_stages(lite0):
    import threading

    tapped = add_taps(copy.deepcopy(lite0.module)).eval()
    replace_head(tapped, 2)
    inputs = [torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    with torch.no_grad():
        want = [tapped(x) for x in inputs]
    got, errors = [[], []], []
    start = threading.Barrier(2)

    def work(i):
        try:
            start.wait()
            with torch.no_grad():
                for _ in range(20):
                    got[i].append(tapped(inputs[i]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [len(g) for g in got] == [20, 20]
    assert all(torch.equal(out, want[i]) for i in range(2) for out in got[i])


def test_a_checkpoint_of_the_earlier_tapped_class_loads_as_the_same_network(lite0, tmp_path):
    """Checkpoints saved when taps swapped the model's class, or before the pool was a choice (no
    ``head.pool``), hold the plain network's keys and a classifier over average-pooled stages; they load
    to the same function (written out here: pooled bn2, blocks.4, blocks.5, linear)."""
    from convviz.core.model.files import checkpoint_dict, save_checkpoint

    state = dict(lite0.module.state_dict())
    torch.manual_seed(3)
    state["classifier.weight"], state["classifier.bias"] = torch.randn(2, 1584) * 0.05, torch.randn(2)
    path = str(tmp_path / "before.pt")
    payload = checkpoint_dict(state, arch="default", labels=["a", "b"], preprocess=lite0.preprocess,
                              training={}, taps=(4, 5), mirror=False)
    del payload["head"]["pool"]  # as written before the choice
    save_checkpoint(path, payload)
    loaded = load_model(path)
    assert pool_of(loaded.module) == "mean"
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = pooled_by_hooks(lite0.module, x, (4, 5)) @ state["classifier.weight"].T + state["classifier.bias"]
        assert taps_of(loaded.module) == (4, 5) and torch.allclose(loaded.module(x), want, atol=1e-4)


def test_a_tapped_model_is_freed_by_reference_counting(lite0):
    """No reference cycle: the session calls gc.freeze() at every model load, and a model in a cycle
    would then never be freed after it is replaced."""
    import gc
    import weakref

    model = add_taps(copy.deepcopy(lite0.module))
    alive = weakref.ref(model)
    gc.disable()
    try:
        del model
        assert alive() is None
    finally:
        gc.enable()


def test_taps_are_refused_where_they_do_not_fit(lite0):
    import torchvision

    assert not can_tap(torchvision.models.resnet18())
    with pytest.raises(ValueError, match="EfficientNet"):
        add_taps(torchvision.models.resnet18(), (1,))
    with pytest.raises(ValueError, match="stages 0 to 5"):
        check_taps(lite0.module, (6,))
    assert check_taps(lite0.module, [5, 4, 5]) == (4, 5) and taps_of(lite0.module) == ()
    import timm

    with torch.device("meta"):
        mobilenet, mixnet = timm.create_model("mobilenetv3_large_100"), timm.create_model("mixnet_s")
    # MobileNetV3 pools before its conv_head (not this forward); MixNet-S has no stage 5 to spare
    assert default_taps(lite0.module) == (4, 5) and default_taps(mobilenet) == default_taps(mixnet) == ()
    assert default_taps(torchvision.models.resnet18()) == ()


def test_mirror_scores_are_mean_log_softmax_and_the_loaded_model_uses_them(lite0):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 224, 224)
    loaded = LoadedModel("default", "t", lite0.module, lite0.preprocess, mirror=True)
    with torch.no_grad():
        a, b = lite0.module(x), lite0.module(torch.flip(x, dims=[3]))
    scores = loaded.class_scores(x)
    want = (a.log_softmax(1) + b.log_softmax(1)) / 2
    assert torch.allclose(scores, want, atol=1e-5) and torch.allclose(mirror_scores(a, b), want)
    probs = scores.softmax(1)  # the normalised geometric mean of the two predictions
    geo = (a.softmax(1) * b.softmax(1)).sqrt()
    assert torch.allclose(probs, geo / geo.sum(1, keepdim=True), atol=1e-5)
    plain = LoadedModel("default", "t", lite0.module, lite0.preprocess)
    assert torch.allclose(plain.class_scores(x), a, atol=1e-6)


def test_tapped_mirror_checkpoint_round_trip(lite0, tmp_path):
    from convviz.core.model.files import checkpoint_dict, save_checkpoint

    tapped = add_taps(copy.deepcopy(lite0.module)).eval()
    torch.manual_seed(2)
    replace_head(tapped, 2)
    path = str(tmp_path / "tapped.pt")
    save_checkpoint(path, checkpoint_dict(tapped, arch="default", labels=["a", "b"], preprocess=lite0.preprocess,
                                          training={}, taps=taps_of(tapped), pool=pool_of(tapped), mirror=True))
    loaded = load_model(path)
    assert taps_of(loaded.module) == (4, 5) and pool_of(loaded.module) == "mean+logstd"
    assert loaded.mirror and not loaded.note  # not a warning: a fact
    assert loaded.head_note == ("The head reads the pooled outputs of the last layer and, of blocks.4 and blocks.5, "
                                "each channel's mean and log standard deviation over the map; "
                                "it predicts from the photo and its mirror image (averaged)")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), tapped(x), atol=1e-5)
    assert torch.allclose(loaded.class_scores(x), mirror_scores(tapped(x), tapped(x.flip(3))), atol=1e-5)


def test_taps_on_an_architecture_without_stages_are_refused_in_one_line(tmp_path):
    import hostile_corpus as corpus

    path = corpus.checkpoint(tmp_path, head={"taps": [1], "mirror": False})
    with pytest.raises(ModelError, match="ckpt.pt.*EfficientNet") as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_predictions_view_averages_the_mirror_image_for_such_a_model(lite0, sample_path):
    from convviz.core.capture.activations import Capturer, predict_top
    from convviz.core.images import load_image
    from convviz.core.views.standard import predictions
    from convviz.core.views.registry import ViewContext

    rgb = load_image(sample_path("cat")).rgb
    loaded = LoadedModel("default", "t", lite0.module, lite0.preprocess, mirror=True)
    x = lite0.preprocess.to_tensor(rgb)
    capture = Capturer(lite0.module, layers=())(x)
    shown = predictions(ViewContext(capture=capture, model=loaded, make_input=lambda: x), k=3)
    with torch.no_grad():
        want = predict_top(mirror_scores(lite0.module(x), lite0.module(x.flip(3))), loaded.label_names(1000), 3)
    assert [t["label"] for t in shown.top] == [t["label"] for t in want]
    assert [round(t["prob"], 5) for t in shown.top] == [round(t["prob"], 5) for t in want]
