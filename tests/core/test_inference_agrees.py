"""Inference means one thing: a fine-tuned model that predicts from each photo and its mirror image
gives the same top class and the same probabilities in the Predictions view, in the Layers panel's
vector view of its classifier and in ``convviz predict --json`` (each through its real code path:
the app's engine builds the views' context, the CLI runs as a user runs it)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.cli import main as cli_main
from convviz.core.finetune import TrainConfig, fine_tune, scan_folder
from convviz.core.images import load_image
from convviz.core.model.loading import load_model
from convviz.core.model.taps import taps_of
from convviz.workers.engine import Engine

#: Classes of crops from the bundled photos: (class, photos), each photo cut into crops.
CLASSES = (("animal", ("cat",)), ("space", ("rocket", "astronaut")))
PER_CLASS = 6
TOL = 1e-5


def real_crops(root, sample_path) -> str:
    """``root/<class>/<i>.jpg``: seeded random crops (30-70 % of the short side, resized) of the photos."""
    rng = np.random.default_rng(0)
    for name, photos in CLASSES:
        os.makedirs(os.path.join(root, name))
        for i in range(PER_CLASS):
            with Image.open(sample_path(photos[i % len(photos)])) as img:
                img = img.convert("RGB")
                side = int(min(img.size) * rng.uniform(0.3, 0.7))
                left, top = (int(rng.integers(0, n - side + 1)) for n in img.size)
                crop = img.crop((left, top, left + side, top + side)).resize((int(rng.integers(96, 160)),) * 2)
                crop.save(os.path.join(root, name, f"{i}.jpg"), quality=90)
    return str(root)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A real fine-tune of the bundled model (head only, the fast path, default taps, mirror on), saved."""
    from convviz.ui.settings import sample_path

    root = tmp_path_factory.mktemp("inference")
    scan = scan_folder(real_crops(root / "data", sample_path), val_fraction=0.34)
    config = TrainConfig(epochs=30, graph="eager", workers=0, mirror_test=True)
    assert config.fast
    result = list(fine_tune(load_model("default"), scan, config))[-1].result
    path = str(root / "tuned.pt")
    result.save(path)
    return path


def _views(path: str, image: str):
    """The Predictions view (top 2) and the vector view of ``classifier``, as the app computes them."""
    engine = Engine()
    loaded = engine.build(path)
    engine.install(loaded, engine.describe(loaded))
    rgb = load_image(image).rgb
    return (loaded, engine.view("predictions", None, {"k": 2}, "img", rgb),
            engine.view("vector", "classifier", {}, "img", rgb))


def _cli(capsys, path: str, image: str) -> dict:
    capsys.readouterr()
    code = cli_main(["predict", image, "--model", path, "--json", "--topk", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.mark.parametrize("photo", ["coffee", "cat", "astronaut"])
def test_predictions_vector_view_and_cli_agree(tuned, capsys, sample_path, photo):
    image = sample_path(photo)
    loaded, predictions, vector = _views(tuned, image)
    assert loaded.mirror and taps_of(loaded.module) and "mirror image" in loaded.head_note  # said on the model card
    cli = _cli(capsys, tuned, image)
    assert cli["mirror"] is True

    labels = [name for name, _ in CLASSES]
    assert vector.is_logits and vector.mirrored and list(vector.labels) == labels
    by_vector = {labels[i]: float(vector.probs[i]) for i in range(len(labels))}
    top_vector = labels[int(np.argmin(vector.ranks))]
    assert predictions.top[0]["label"] == top_vector == cli["top"][0]["label"]
    for shown in (predictions.top, cli["top"]):
        assert [t["label"] for t in shown] == sorted(labels, key=lambda n: -by_vector[n])
        for t in shown:
            assert abs(t["prob"] - by_vector[t["label"]]) <= TOL, (t, by_vector)


def test_the_mirror_image_counts_for_these_images(tuned, sample_path):
    """The agreement above means something: without the mirror image the probabilities differ."""
    loaded = load_model(tuned)
    gaps = []
    for photo in ("coffee", "cat", "astronaut"):
        x = loaded.preprocess.to_tensor(load_image(sample_path(photo)).rgb)
        with torch.no_grad():
            plain = torch.softmax(loaded.module(x), -1)
        gaps.append(float((loaded.probabilities(x) - plain).abs().max()))
    assert max(gaps) > 100 * TOL, gaps
