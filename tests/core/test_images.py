"""Image decoding: every mode to RGB, EXIF, and each bad-input class refused in one line."""
import numpy as np
import pytest
from PIL import Image

from convviz.core import images
from convviz.core.images import ImageError, image_from_array, load_image
from convviz.core.model.preprocess import Preprocess


def _save(tmp_path, img, name, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16", "I", "F", "YCbCr"])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode):
    base = Image.linear_gradient("L").resize((40, 30))
    img = base.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
        (np.asarray(base, dtype=np.float64) * 257).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    name = "x.tiff" if mode in ("CMYK", "F", "I", "YCbCr") else "x.png"
    if mode == "YCbCr":
        name = "x.jpg"
    loaded = load_image(_save(tmp_path, img, name))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (30, 40, 3)
    assert loaded.rgb[..., 0].min() < 30 and loaded.rgb[..., 0].max() > 200, "tonal range kept"


def test_16bit_is_scaled_not_clipped(tmp_path):
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    rgb = load_image(_save(tmp_path, Image.fromarray(arr), "deep.png")).rgb
    assert rgb[1, 1, 0] == 255 and rgb[0, 0, 0] == 0


def test_transparency_composited_on_white(tmp_path):
    img = Image.new("RGBA", (5, 5), (255, 0, 0, 0))
    rgb = load_image(_save(tmp_path, img, "clear.png")).rgb
    assert tuple(rgb[2, 2]) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    loaded = load_image(_save(tmp_path, img, "rot.jpg", exif=exif))
    assert loaded.size == (20, 60)


@pytest.mark.parametrize("size", [(1, 1), (4000, 3), (3, 2500)])
def test_tiny_and_very_wide_images_preprocess(tmp_path, size):
    rgb = load_image(_save(tmp_path, Image.new("RGB", size, (10, 200, 30)), "odd.png")).rgb
    arr = Preprocess(input_size=64).to_array(rgb)
    assert arr.shape == (3, 64, 64) and np.isfinite(arr).all()


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello, I am text")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_truncated_file(tmp_path, sample_path):
    data = open(sample_path("cat"), "rb").read()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_decompression_bomb(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.new("L", (2000, 2000)), "bomb.png", optimize=True)
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    with pytest.raises(ImageError, match="too large"):
        load_image(path)


def test_messages_are_one_line(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert "\n" not in str(info.value) and "bad.png" in str(info.value)


def test_image_from_array_grayscale_and_float():
    gray = image_from_array(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert gray.rgb.shape == (3, 4, 3) and gray.rgb.max() == 255
    with pytest.raises(ImageError):
        image_from_array(np.zeros((0, 3)))


def test_preprocess_matches_torchvision(sample_path):
    """Crop-then-resize equals torchvision's Resize(256) + CenterCrop(224) up to resampling."""
    import torch
    import torchvision.transforms as T

    rgb = load_image(sample_path("coffee")).rgb
    ours = Preprocess(interpolation="bilinear").to_tensor(rgb)
    ref = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                     T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])(Image.fromarray(rgb))[None]
    assert ours.shape == ref.shape
    assert torch.mean(torch.abs(ours - ref)) < 0.05
