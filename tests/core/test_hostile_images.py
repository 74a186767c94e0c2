"""Hostile images: refused formats never reach Ghostscript, fuzzed files fail in one line,
and the 8-bit conversion stays within a few times the decoded size."""
import os
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageOps

from convviz.core import images
from convviz.core.images import ALLOWED_FORMATS, ImageError, load_image, probe_image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hostile_corpus as corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def gs_spy(tmp_path, monkeypatch):
    """A fake Ghostscript first on PATH; yields the file it writes when called."""
    bindir, record = corpus.fake_gs(tmp_path)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("gs") == os.path.join(bindir, "gs"), "the spy must be the gs Pillow would find"
    return record


def _one_line_error(path) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message and os.path.basename(str(path)) in message
    return message


@pytest.mark.parametrize("name", ["page.eps", "photo.png", "photo.jpg", "scan.tif"])
def test_postscript_is_refused_without_running_ghostscript(tmp_path, gs_spy, name):
    path = corpus.eps_file(tmp_path, name)
    assert "PostScript" in _one_line_error(path)
    with pytest.raises(ImageError):
        probe_image(path)
    assert not os.path.exists(gs_spy), "Ghostscript was started"


def test_refused_formats_name_the_format(tmp_path, gs_spy):
    written = [(fmt, corpus.refused_format(tmp_path, fmt)) for fmt in corpus.REFUSED_FORMATS]
    written = [(fmt, path) for fmt, path in written if path]
    assert {"EPS", "PDF", "DDS", "BLP"} <= {fmt for fmt, _ in written}
    for fmt, path in written:
        message = _one_line_error(path)
        assert "not opened" in message or "never opened" in message or "not an image" in message, (fmt, message)
    assert not os.path.exists(gs_spy)


def test_allowed_formats_open(tmp_path):
    for fmt, path in corpus.allowed_images(tmp_path).items():
        assert load_image(path).rgb.shape == (16, 24, 3), fmt
    assert {"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM"} <= set(ALLOWED_FORMATS)
    assert not {"EPS", "PDF"} & set(ALLOWED_FORMATS)


def test_fuzzed_files_load_or_fail_in_one_line(tmp_path, gs_spy):
    sources = list(corpus.allowed_images(tmp_path).values())
    sources += [p for p in (corpus.refused_format(tmp_path, f) for f in ("AVIF", "BLP", "DDS")) if p]
    outcomes = {"loaded": 0, "refused": 0}
    for source in sources:
        for path in corpus.fuzzed(source, tmp_path, 12, seed=len(source)):
            try:
                assert load_image(path).rgb.dtype == np.uint8
                outcomes["loaded"] += 1
            except ImageError as exc:
                assert "\n" not in str(exc)
                outcomes["refused"] += 1
    assert outcomes["refused"] > 0
    assert not os.path.exists(gs_spy)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(rgb).save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.array_equal(load_image(path).rgb, expected)


def test_decoded_byte_limit(tmp_path, monkeypatch):
    path = corpus.deep_png(tmp_path, 300, 200)
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 100_000)
    assert "MB decoded" in _one_line_error(path)


def test_16bit_conversion_works_in_tiles(tmp_path, monkeypatch):
    """numpy's peak (traced) while loading a 16-bit image: the RGB result plus about one tile."""
    width, height = 2000, 1500
    path = corpus.deep_png(tmp_path, width, height)
    monkeypatch.setattr(images, "TILE_PIXELS", 1 << 18)
    tracemalloc.start()
    try:
        rgb = load_image(path).rgb
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and rgb.shape == (height, width, 3)
    assert peak < 3 * width * height + 8 * (1 << 18) + 2**20, f"peak {peak / 2**20:.1f} MB"


PROBE = """
import resource, sys, tracemalloc
from convviz.core.images import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
rgb = load_image(sys.argv[1]).rgb
traced = tracemalloc.get_traced_memory()[1]
print(rgb.nbytes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, traced)
"""


def test_largest_16bit_png_peak_memory(tmp_path):
    """A 9400×9400 16-bit PNG (under 1 MB, near the pixel limit): peak RSS < 4× its 8-bit RGB size
    (its decode time: ``tests/bench/bench_decode.py``)."""
    path = corpus.deep_png(tmp_path, 9400, 9400)
    assert 9400 * 9400 <= images.MAX_PIXELS and os.path.getsize(path) < 2**20
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    rgb_bytes, rss_delta, traced = int(out[0]), int(out[1]), int(out[2])
    assert rss_delta < 4 * rgb_bytes, f"peak RSS grew {rss_delta / 2**20:.0f} MB for {rgb_bytes / 2**20:.0f} MB of RGB"
    assert traced < rgb_bytes + 64 * 2**20
