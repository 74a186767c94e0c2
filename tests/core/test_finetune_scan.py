"""Dataset scan: ImageFolder semantics, skipped files with reasons, clear errors."""
import os

import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from convviz.core.finetune import scan_folder
from convviz.core.images import ImageError

from test_finetune_fixtures import make_folder


def test_classes_and_split_match_imagefolder(tmp_path):
    root = make_folder(tmp_path / "d", classes=("red", "blue", "green"), per_class=10)
    scan = scan_folder(root, val_fraction=0.2, seed=3)
    reference = ImageFolder(root)
    assert scan.classes == reference.classes
    got = sorted((s.path, s.label) for s in scan.train + scan.val)
    assert got == sorted(reference.samples)
    assert scan.counts("val") == {"blue": 2, "green": 2, "red": 2}  # stratified
    again = scan_folder(root, val_fraction=0.2, seed=3)
    assert [s.path for s in again.val] == [s.path for s in scan.val]  # fixed seed
    assert [s.path for s in scan_folder(root, seed=4).val] != [s.path for s in scan.val]


def test_train_val_folders(tmp_path):
    make_folder(tmp_path / "train", per_class=4)
    make_folder(tmp_path / "val", per_class=2, seed=1)
    scan = scan_folder(tmp_path)
    assert scan.split == "folders" and len(scan.train) == 8 and len(scan.val) == 4


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = make_folder(tmp_path / "d", per_class=4)
    (tmp_path / "d" / "red" / "notes.txt").write_text("hello")
    (tmp_path / "d" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (tmp_path / "d" / "red" / "empty.png").write_bytes(b"")
    Image.new("RGB", (5, 5)).save(tmp_path / "d" / "blue" / "tiny.png")
    scan = scan_folder(root)
    reasons = {os.path.basename(s.path): s.reason for s in scan.skipped}
    assert reasons["notes.txt"] == "not an image"
    assert reasons["empty.png"] == "empty file"
    assert reasons["tiny.png"].startswith("too small")
    assert "broken.jpg" in reasons
    assert len(scan.train) + len(scan.val) == 8


def test_scan_and_decode_use_the_image_allow_list(tmp_path):
    """A PostScript file posing as a photo is refused by the scan and by the fast path's decoder,
    naming what it is; a phone's multi-picture JPEG (MPO) is accepted and decoded."""
    from convviz.core.finetune.features import decode_rgb
    from convviz.core.images import ImageError

    root = make_folder(tmp_path / "d", per_class=4)
    eps = tmp_path / "d" / "red" / "photo.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n")
    Image.new("RGB", (64, 48), "blue").save(tmp_path / "d" / "blue" / "phone.mpo", format="MPO", save_all=True,
                                             append_images=[Image.new("RGB", (64, 48), "red")])
    scan = scan_folder(root)
    reasons = {os.path.basename(s.path): s.reason for s in scan.skipped}
    assert reasons["photo.jpg"].startswith("PostScript/EPS files are never opened")
    assert any(s.path.endswith("phone.mpo") for s in scan.train + scan.val)
    with pytest.raises(ImageError, match="never opened"):
        decode_rgb(str(eps), 32)
    assert decode_rgb(str(tmp_path / "d" / "blue" / "phone.mpo"), 32).shape == (48, 64, 3)


@pytest.mark.parametrize("case, message", [
    ("empty", "no class folders"),
    ("one_class", "only one class"),
    ("unreadable_class", "class 'red' has no readable images (not an image)"),
    ("missing", "no such folder"),
    ("loose_files", "one sub-folder per class"),
])
def test_unusable_folders(tmp_path, case, message):
    root = tmp_path / "d"
    root.mkdir()
    if case == "one_class":
        make_folder(root, classes=("red",))
    elif case == "unreadable_class":
        make_folder(root, classes=("blue",))
        (root / "red").mkdir()
        (root / "red" / "a.txt").write_text("text")
    elif case == "missing":
        root = tmp_path / "nope"
    elif case == "loose_files":
        Image.new("RGB", (30, 30)).save(root / "a.png")
    with pytest.raises(ImageError) as info:
        scan_folder(root)
    assert message in str(info.value) and "\n" not in str(info.value)
