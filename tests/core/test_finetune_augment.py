"""Augmentation: seeded, the preview equals what training sees; the one-pixel shift demo."""
import numpy as np
import pytest
import torch

from convviz.core.finetune import AugmentSpec, build_transform, preview_grid, shift_by_one_pixel_demo
from convviz.core.finetune.features import ImageDataset
from convviz.core.finetune.scan import scan_folder
from convviz.core.images import load_image
from convviz.core.model.preprocess import Preprocess

from test_finetune_fixtures import make_folder

SPEC = AugmentSpec(grayscale=0.3, hflip=0.5, vflip=0.5, crop=0.4, jitter=0.4, translate=0.1, rotate=20)
PP = Preprocess(input_size=32, crop_pct=1.0)


def test_preview_is_deterministic_and_varied():
    rgb = np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    a, b = preview_grid(rgb, SPEC, PP, 6, seed=1), preview_grid(rgb, SPEC, PP, 6, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (32, 32, 3) and a[0].dtype == np.uint8
    assert len({x.tobytes() for x in a}) == 6  # different epochs, different views
    c = preview_grid(rgb, SPEC, PP, 6, seed=2)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_training_sees_the_preview(tmp_path):
    scan = scan_folder(make_folder(tmp_path / "d", per_class=3, size=48))
    dataset = ImageDataset(scan.train, PP, build_transform(SPEC, PP), seed=5)
    for epoch in (0, 3):
        dataset.epoch = epoch
        image, _, _, error = dataset[1]
        preview = preview_grid(load_image(scan.train[1].path).rgb, SPEC, PP, 4, seed=5, index=1)[epoch]
        assert error == "" and np.array_equal(image.permute(1, 2, 0).numpy(), preview)


def test_off_spec_is_plain_preprocessing():
    rgb = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    out = preview_grid(rgb, AugmentSpec(), PP, 2)
    assert np.array_equal(out[0], out[1])
    assert not AugmentSpec().active and SPEC.active


def test_without_crop_the_photo_becomes_the_model_input_as_everywhere_else():
    """No random crop: the augmentations start from Preprocess.to_uint8's picture (its crop box and the
    model's own interpolation), the one home of photo → model pixels."""
    rgb = np.random.default_rng(2).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    pp = Preprocess(input_size=32, crop_pct=0.875, interpolation="bicubic")
    flipped = preview_grid(rgb, AugmentSpec(hflip=1.0), pp, 1)[0]
    assert np.array_equal(flipped, pp.to_uint8(rgb)[:, ::-1])


def test_names():
    assert AugmentSpec.from_names("hflip, crop").names() == ["hflip", "crop"]
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        AugmentSpec.from_names("hflip,blur")


def test_shift_by_one_pixel_counts_changed_values():
    rgb = np.random.default_rng(2).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    demo = shift_by_one_pixel_demo(rgb)
    t = torch.from_numpy(rgb).long()
    shifted = torch.roll(t, 1, dims=1)
    shifted[:, 0] = t[:, 0]
    diff = (shifted - t).abs()
    assert demo.changed_values == int((diff != 0).sum()) and demo.total_values == rgb.size
    assert demo.max_abs_change == int(diff.max()) and demo.mean_abs_change == pytest.approx(float(diff.float().mean()))
    flat = shift_by_one_pixel_demo(np.full((8, 8, 3), 7, np.uint8))
    assert flat.changed_values == 0


def preview_of(source, preprocess, seed: int):
    """The Fine-tune panel's preview task, run directly (six images)."""
    from convviz.core.finetune.tasks import preview_task
    from convviz.core.tasks import TaskInputs

    return preview_task.task(TaskInputs(args=dict(source=source, spec=SPEC, preprocess=preprocess, count=6, seed=seed)))


def test_the_preview_is_what_the_training_loader_draws_in_epoch_1(tmp_path, monkeypatch):
    """A real (tiny) full-loop run with a seed: the batches its loader yields in epoch 1 hold exactly the
    preview's images; the result and the checkpoint record the seed."""
    from convviz.core.finetune import TrainConfig, fine_tune, preprocess_for
    from convviz.core.finetune import full_loop as train_module
    from convviz.core.finetune.features import first_epoch_preview
    from test_finetune_fixtures import tiny_model

    scan = scan_folder(make_folder(tmp_path / "d", per_class=5, size=40), val_fraction=0.2)
    loaded = tiny_model()
    config = TrainConfig(epochs=1, batch_size=3, freeze="last:1", augment=SPEC, seed=7, workers=0)
    drawn = {}

    def spying_loader(dataset, *args, **kwargs):
        loader = make_loader(dataset, *args, **kwargs)
        if dataset.transform is None:  # the warm start's plain features
            return loader
        def batches():
            for images, labels, indices, errors in loader:
                drawn.update({(dataset.epoch, int(i)): img.permute(1, 2, 0).numpy() for img, i in zip(images, indices)})
                yield images, labels, indices, errors
        return batches()

    make_loader = train_module.make_loader
    monkeypatch.setattr(train_module, "make_loader", spying_loader)
    result = list(fine_tune(loaded, scan, config))[-1].result
    preprocess = preprocess_for(loaded.preprocess, config)
    preview, errors = first_epoch_preview(scan.train, SPEC, preprocess, seed=7, count=6)
    assert len(preview) == 6 and errors == [""] * 6 and preview[0].shape == (32, 32, 3)
    for index, image in enumerate(preview):
        assert np.array_equal(drawn[(0, index)], image), index
    job = preview_of(scan.train[:6], preprocess, seed=7)
    assert job.first_epoch and job.seed == 7 and all(np.array_equal(a, b) for a, b in zip(job.images, preview))
    other, _ = first_epoch_preview(scan.train, SPEC, preprocess, seed=8, count=6)
    assert not all(np.array_equal(a, b) for a, b in zip(other, preview))  # another seed, other draws
    assert result.config.seed == 7 and result.checkpoint()["training"]["seed"] == 7


def test_preview_jobs_in_parallel_threads_draw_what_one_thread_draws():
    """torchvision draws from torch's global generator: seeded draws of two job threads must not mix."""
    import threading

    from convviz.workers.process import share_rng_lock

    share_rng_lock()  # as the job runner does before any task
    rgb = np.random.default_rng(3).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    alone = {seed: preview_grid(rgb, SPEC, PP, 6, seed=seed) for seed in (1, 2)}
    got, threads = {}, []
    for seed in (1, 2):
        def work(seed=seed):
            got[seed] = [preview_of(rgb, PP, seed=seed).images for _ in range(4)]
        threads.append(threading.Thread(target=work))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, runs in got.items():
        assert all(np.array_equal(a, b) for run in runs for a, b in zip(run, alone[seed])), seed
