"""Features cached on disk per image content: a second run computes only what is new."""
import os
import shutil

import numpy as np
import pytest
import torch

from convviz.core.finetune.feature_cache import FeatureStore, file_digest
from convviz.core.finetune.backend import choose_backend
from convviz.core.finetune.features import extract_features
from convviz.core.finetune.network import Network
from convviz.core.finetune.scan import scan_folder
from convviz.core.model.loading import build_architecture
from convviz.core.model.preprocess import Preprocess

from test_finetune_fixtures import make_folder

PP = Preprocess(input_size=32, crop_pct=1.0)


@pytest.fixture()
def cache_on(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_FEATURE_CACHE", "1")
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Counting:
    """A backbone that counts the images it is asked for."""

    def __init__(self, backbone):
        self.backbone, self.device, self.kind, self.cache_key, self.seen = backbone, "cpu", "eager", backbone.cache_key, 0

    def __call__(self, x):
        self.seen += len(x)
        return self.backbone(x)


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    module, _, _, _ = build_architecture("mobilenet_v3_small", num_classes=2)
    return choose_backend(Network("mobilenet_v3_small", PP, model=module.eval()), graph="eager")


def _run(backbone, samples, mirror=False, cache=True):
    counting = Counting(backbone)
    *_, (done, state) = extract_features(counting, samples, PP, batch_size=4, mirror=mirror, workers=0, cache=cache)
    assert done == len(samples)
    return counting.seen, state


def test_second_run_computes_nothing_and_gives_the_same_features(cache_on, tmp_path, backbone):
    samples = scan_folder(make_folder(tmp_path / "d", per_class=5)).train
    first_seen, uncached = _run(backbone, samples, cache=False)
    seen, first = _run(backbone, samples)
    again_seen, again = _run(backbone, samples)
    assert first_seen == seen == len(samples) and again_seen == 0
    torch.testing.assert_close(first["features"], uncached["features"])
    torch.testing.assert_close(again["features"], first["features"])
    assert torch.equal(again["labels"], first["labels"]) and bool(again["ok"].all())


def test_grown_renamed_and_edited_folders_compute_only_what_is_new(cache_on, tmp_path, backbone):
    root = make_folder(tmp_path / "d", per_class=4)
    first = scan_folder(root)
    _run(backbone, first.train + first.val)
    make_folder(tmp_path / "more", per_class=6, seed=7)  # other pixels: new content
    shutil.copy(tmp_path / "more" / "red" / "5.png", os.path.join(root, "red", "new.png"))
    os.rename(os.path.join(root, "blue", "0.png"), os.path.join(root, "blue", "renamed.png"))
    scan = scan_folder(root)
    seen, state = _run(backbone, scan.train + scan.val)
    assert seen == 1  # only the new photo; the renamed one's content is known
    _, uncached = _run(backbone, scan.train + scan.val, cache=False)
    torch.testing.assert_close(state["features"], uncached["features"])


def test_mirror_is_its_own_view(cache_on, tmp_path, backbone):
    samples = scan_folder(make_folder(tmp_path / "d", per_class=4)).train
    _run(backbone, samples)
    seen, state = _run(backbone, samples, mirror=True)
    assert seen == 2 * len(samples)  # both views computed: the mirror was never stored
    assert _run(backbone, samples, mirror=True)[0] == 0
    assert not torch.equal(state["features"], state["mirror_features"])


def test_cancelled_run_keeps_what_it_computed(cache_on, tmp_path, backbone):
    samples = scan_folder(make_folder(tmp_path / "d", per_class=6)).train
    run = extract_features(Counting(backbone), samples, PP, batch_size=2, workers=0)
    next(run)  # one batch, then the user cancels
    run.close()
    seen, _ = _run(backbone, samples)
    assert seen == len(samples) - 2


def test_damaged_or_foreign_shards_are_ignored(cache_on, tmp_path, backbone):
    samples = scan_folder(make_folder(tmp_path / "d", per_class=3)).train
    _run(backbone, samples)
    shards = [os.path.join(d, f) for d, _, fs in os.walk(cache_on) for f in fs if f.endswith(".npz")]
    assert shards
    for shard in shards:
        with open(shard, "wb") as handle:
            handle.write(b"PK\x03\x04 not a zip")
    assert _run(backbone, samples)[0] == len(samples)


def test_store_merges_shards_and_file_digest_is_content(tmp_path):
    store = FeatureStore(str(tmp_path / "s"))
    for i in range(20):
        store.add([f"k{i}"], np.full((1, 3), i, np.float32))
    assert len(os.listdir(tmp_path / "s")) <= 16
    fresh = FeatureStore(str(tmp_path / "s"))
    assert {i: float(v[0]) for i, v in fresh.get([f"k{i}" for i in range(20)]).items()} == {i: float(i) for i in range(20)}
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same"), b.write_bytes(b"same")
    assert file_digest(str(a)) == file_digest(str(b)) and file_digest(str(tmp_path / "missing")) is None
