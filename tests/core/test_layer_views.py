"""First-layer filters and vector views against the real Lite0 weights and torch's own ops."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convviz.core.capture.activations import Capturer
from convviz.core.views.filters import filter_pictures, first_image_conv
from convviz.core.views.layer import descending_ranks, is_vector_shape
from convviz.core.model.loading import load_model
from convviz.core.views.registry import ViewContext, get_view, view_kinds


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    loaded = load_model("default")
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    capture = Capturer(loaded.module)(x)
    return loaded, capture, x


def ctx_for(lite0, layer=None):
    loaded, capture, _ = lite0
    module = dict(loaded.module.named_modules()).get(layer) if layer else None
    return ViewContext(capture=capture, model=loaded, layer=layer, module=module)


def test_kinds_are_registered():
    assert {"first_filters", "vector", "mosaic"} <= set(view_kinds())


def test_first_filters_are_conv_stems_real_weights_and_make_its_maps(lite0):
    loaded, capture, x = lite0
    data = get_view("first_filters")(ctx_for(lite0))
    stem = loaded.module.conv_stem
    assert data.layer == "conv_stem"
    np.testing.assert_array_equal(data.weights, stem.weight.detach().numpy())
    assert data.rgb.shape == (32, 3, 3, 3) and data.rgb.dtype == np.uint8
    assert data.stride == (2, 2)
    # these weights, with the padding the view states (TF "SAME": 0 before, 1 after), made the captured maps
    assert data.padding == (0, 1, 0, 1)
    top, bottom, left, right = data.padding
    with torch.no_grad():
        again = stem(x)
        direct = F.conv2d(F.pad(x, (left, right, top, bottom)), torch.from_numpy(data.weights), None, stem.stride, 0)
    torch.testing.assert_close(capture.outputs["conv_stem"], again)
    torch.testing.assert_close(again, direct)
    for k in (0, 7, 31):  # brightest tap = the largest weight, darkest = the most negative, per colour
        w, pic = data.weights[k], data.rgb[k].transpose(2, 0, 1).astype(int)
        peak = np.abs(w).max()
        assert pic.flat[np.argmax(w)] == round(127.5 + 127.5 * w.max() / peak)
        assert pic.flat[np.argmin(w)] == round(127.5 + 127.5 * w.min() / peak)
        assert max(pic.max(), 255 - pic.min()) == 255  # one tap reaches full scale
        order = np.argsort(w.ravel(), kind="stable")
        assert np.all(np.diff(pic.ravel()[order]) >= 0)  # brightness follows the weight


def test_filter_pictures_shared_scale_and_grey():
    w = np.zeros((2, 1, 1, 2), np.float32)
    w[0, 0, 0] = [1.0, -1.0]
    w[1, 0, 0] = [0.5, 0.0]
    own, scale = filter_pictures(w)
    assert own.shape == (2, 1, 2, 3) and list(scale) == [1.0, 0.5]
    assert list(own[0, 0, :, 0]) == [255, 0] and list(own[1, 0, :, 1]) == [255, 128]
    shared, _ = filter_pictures(w, shared=True)
    assert list(shared[1, 0, :, 2]) == [191, 128]
    with pytest.raises(ValueError):
        filter_pictures(np.zeros((3, 3)))


def test_first_image_conv_skips_other_convs():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 3, 1, groups=3), nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3))
    assert first_image_conv(model, ["0", "1", "2"])[0] == "1"
    assert first_image_conv(model, ["2"]) is None


def test_classifier_vector_has_class_names_ranks_and_softmax(lite0):
    loaded, capture, x = lite0
    data = get_view("vector")(ctx_for(lite0, "classifier"))
    with torch.no_grad():
        logits = loaded.module(x)[0]
    np.testing.assert_allclose(data.values, logits.numpy(), rtol=1e-5, atol=1e-5)
    assert data.is_logits and len(data.labels) == 1000
    top = torch.topk(logits, 5).indices.tolist()
    assert [int(np.flatnonzero(data.ranks == r)[0]) for r in range(1, 6)] == top
    np.testing.assert_allclose(data.probs, torch.softmax(logits, 0).numpy(), rtol=1e-4, atol=1e-7)
    assert data.labels[top[0]] == loaded.label_names(1000)[top[0]]


def test_pooled_vector_is_not_labelled(lite0):
    loaded, capture, x = lite0
    got = []
    handle = loaded.module.global_pool.register_forward_hook(lambda _m, _i, out: got.append(out.clone()))
    with torch.no_grad():
        loaded.module(x)
    handle.remove()
    data = get_view("vector")(ctx_for(lite0, "global_pool"))
    np.testing.assert_allclose(data.values, got[0][0].numpy(), rtol=1e-5, atol=1e-6)
    assert not data.is_logits and data.probs is None
    with pytest.raises(ValueError, match="spatial"):
        get_view("vector")(ctx_for(lite0, "conv_head"))


def test_a_multi_layer_heads_input_names_its_parts(lite0):
    """A fine-tuned head's input (core.taps, mean + log std): the vector says which part each value is,
    and each named value is what torch computes for that channel."""
    import copy

    from convviz.core.finetune.heads import replace_head
    from convviz.core.model.loading import LoadedModel
    from convviz.core.model.taps import add_taps

    loaded, _, x = lite0
    model = add_taps(copy.deepcopy(loaded.module), (4, 5), "mean+logstd").eval()
    replace_head(model, 2)
    capture = Capturer(model)(x)
    tapped = LoadedModel("t", "t", model, loaded.preprocess, labels=("a", "b"))
    data = get_view("vector")(ViewContext(capture=capture, model=tapped, layer="global_pool", module=model.global_pool))
    assert data.parts == (("bn2 mean", 1280), ("blocks.4 mean", 112), ("blocks.4 log std", 112),
                          ("blocks.5 mean", 192), ("blocks.5 log std", 192))
    assert data.what == "values: bn2 mean 1280 · blocks.4 mean 112 · blocks.4 log std 112 · blocks.5 mean 192 · blocks.5 log std 192"
    seen = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: seen.__setitem__(n, o)) for n in ("blocks.4", "blocks.5")]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for index, name, want in ((7, "bn2 mean 7", None), (1280 + 3, "blocks.4 mean 3", seen["blocks.4"][0, 3].mean()),
                              (1392 + 5, "blocks.4 log std 5", seen["blocks.4"][0, 5].std(unbiased=False).log()),
                              (1887, "blocks.5 log std 191", seen["blocks.5"][0, 191].std(unbiased=False).log())):
        assert data.entry_name(index) == name
        if want is not None:
            assert abs(float(data.values[index]) - float(want)) < 1e-4
    plain = get_view("vector")(ctx_for(lite0, "global_pool"))
    assert plain.parts == () and plain.what == "values, one per channel" and plain.entry_name(7) == "channel 7"


def test_mosaic_view_carries_the_raw_maps(lite0):
    _, capture, _ = lite0
    data = get_view("mosaic")(ctx_for(lite0, "conv_stem"))
    np.testing.assert_array_equal(data.maps, capture.outputs["conv_stem"][0].numpy())


def test_small_helpers():
    assert is_vector_shape((10,)) and is_vector_shape((8, 1, 1)) and not is_vector_shape((8, 2, 1))
    assert list(descending_ranks(np.array([0.1, 3.0, 2.0, 3.0]))) == [4, 1, 3, 2]
