"""The Fine-tune panel end to end (offscreen): a real folder, real training on the bundled model, no sleeps."""
import os
import shutil

import pytest

from convviz.core.images import load_image
from convviz.ui.finetune.panel import FinetunePanel
from convviz.workers.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATS_DOGS = os.path.join(ROOT, "..", "shared", "data", "cats-dogs-60")
STEP_MS = 120_000
#: every event-loop turn from the Train click to the results shown, the click's own included (it paints
#: the cleared curves; the job starts after that paint): click turn 11-28 ms, later ones 14-23 ms over
#: 7 runs of the UI suite on this busy 2-core machine (measured)


@pytest.fixture
def tiny_folder(tmp_path):
    """4 cats and 4 dogs (3 train + 1 val each after the stratified split)."""
    if not os.path.isdir(CATS_DOGS):  # CI always has ../shared: there a missing folder is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("../shared/data/cats-dogs-60 is not here")
    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(1, 5):
            shutil.copy(os.path.join(CATS_DOGS, name, f"{name}-{i:02d}.jpg"), root / name)
    return str(root)


@pytest.fixture
def panel(request, qtbot, lite0_engine, sample_path, tmp_path, monkeypatch):
    """A Fine-tune panel bound to a session on the shared Lite0, showing the cat; jobs awaited after."""
    monkeypatch.setenv("CONVVIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path / "cache"))
    session = Session(engine=lite0_engine)
    panel = FinetunePanel()
    panel.prepare_in_background = request.node.get_closest_marker("prepare") is not None
    qtbot.addWidget(panel)
    panel.bind(session)
    panel.resize(1100, 900)
    panel.show()
    session.set_image(load_image(sample_path("cat")))
    session.adopt_installed_model()
    qtbot.waitUntil(lambda: bool(panel.frozen_layers), timeout=STEP_MS)  # the freeze count is in
    yield panel
    assert session.shutdown(60.0)


def scan(qtbot, panel, folder):
    panel.scan_folder(folder)
    qtbot.waitUntil(lambda: panel.report is not None and panel.report.scan.root == os.path.abspath(folder), timeout=STEP_MS)


def updates_of(panel):
    got = []
    panel.training_progress.connect(got.append)
    return got


def test_scan_report_lists_classes_counts_and_thumbnails(qtbot, panel, tiny_folder):
    (open(os.path.join(tiny_folder, "cat", "notes.txt"), "w")).write("not an image")
    scan(qtbot, panel, tiny_folder)
    report = panel.report
    assert report.scan.classes == ["cat", "dog"]
    assert report.scan.counts("train") == {"cat": 3, "dog": 3} and report.scan.counts("val") == {"cat": 1, "dog": 1}
    text = panel.data.report.text()
    assert "2 classes" in text and "Skipped 1 file" in text and "not an image" in text
    assert [strip.count() for _label, strip in panel.data.strips] == [4, 4]
    # the preview shows training sample 0 and names its class
    qtbot.waitUntil(lambda: "the label is still <b>" in panel.augment.shift.text(), timeout=STEP_MS)
    assert report.scan.classes[report.scan.train[0].label] in panel.augment.shift.text()


def test_the_augment_seed_is_the_previews_and_the_runs(qtbot, panel, tiny_folder):
    """The preview is epoch 1 of training with the seed on screen (the training dataset's own draws);
    "New seed" draws another; the run's config carries it (the checkpoint records the config)."""
    import numpy as np

    from convviz.core.finetune.features import first_epoch_preview

    scan(qtbot, panel, tiny_folder)
    panel.augment.set_spec(hflip=0.5, crop=0.3)
    panel.augment.seed.setValue(42)
    caption = panel.augment.preview_caption
    qtbot.waitUntil(lambda: caption.text().startswith("Epoch 1 with seed 42: training images 1–6, exactly as training "
                                                      "will draw them") and "hflip, crop" in caption.text(), timeout=STEP_MS)
    assert panel.config().seed == 42 and panel.augment.shown_preview.seed == 42
    want, _ = first_epoch_preview(panel.report.scan.train, panel.augment.spec(), panel.train_preprocess(), 42)
    got = panel.augment.shown_preview.images
    assert len(got) == len(want) == 6 and all(np.array_equal(a, b) for a, b in zip(got, want))
    panel.augment.new_seed.click()
    seed = panel.augment.seed_value()
    assert seed != 42 and panel.config().seed == seed
    qtbot.waitUntil(lambda: caption.text().startswith(f"Epoch 1 with seed {seed}:"), timeout=STEP_MS)


def test_frozen_layers_match_what_training_leaves_unchanged(qtbot, panel, tiny_folder):
    """Strategy last:1 → the layers the panel announces as frozen keep their pretrained weights (torch
    compare of the saved checkpoint against the engine's model), and the head changes."""
    import torch

    with qtbot.waitSignal(panel.frozen_layers_changed, timeout=STEP_MS) as first:
        scan(qtbot, panel, tiny_folder)  # once a folder is chosen, the Layers tree is told what is frozen
    assert "conv_stem" in first.args[0]
    with qtbot.waitSignal(panel.frozen_layers_changed, timeout=STEP_MS) as blocker:
        panel.freeze.last.setChecked(True)
        panel.freeze.blocks.setValue(1)
    frozen = blocker.args[0]
    modules = dict(panel.session.engine.loaded.module.named_modules())
    assert frozen and all(name in modules for name in frozen)
    assert "classifier" not in frozen and "conv_stem" in frozen and not any(n.startswith("conv_head") for n in frozen)
    qtbot.waitUntil(lambda: "parameters train" in panel.freeze.count.text(), timeout=STEP_MS)
    panel.training.epochs.setValue(1)
    panel.training.batch.setValue(3)
    with qtbot.waitSignal(panel.training_finished, timeout=STEP_MS) as done:
        panel.start_training()
    outcome = done.args[0]
    state = torch.load(outcome.checkpoint, weights_only=True)["state_dict"]
    original = panel.session.engine.loaded.module.state_dict()
    for name in frozen:
        for key, value in modules[name].state_dict().items():
            assert torch.equal(state[f"{name}.{key}"], value), f"{name}.{key} changed although frozen"
    # the new head reads the last layer's 1280 pooled features and blocks.4's and blocks.5's (112 + 192)
    # channel means and log standard deviations
    assert state["classifier.weight"].shape == (2, original["classifier.weight"].shape[1] + 2 * (112 + 192))
    params = dict(panel.session.engine.loaded.module.named_parameters())
    changed = [k for k in params if state[k].shape != params[k].shape or not torch.equal(state[k], params[k])]
    allowed = [k for k in params if k.rpartition(".")[0] not in frozen]  # the parameters of layers not frozen
    # the saved model is the best by validation: the warm-started head, or it after the epoch moved every
    # allowed parameter; either way nothing else moved, and the count shown is torch's count of those
    assert "classifier.weight" in changed and set(changed) <= set(allowed)
    shown = int(panel.freeze.count.text().split("</b>")[0].split("<b>")[1].replace(",", ""))
    assert shown == outcome.facts.trainable_params == sum(state[k].numel() for k in allowed)


def test_train_end_to_end_results_and_use_model(qtbot, panel, tiny_folder):
    """scan → train → results → use model → predictions name the new classes. (How responsive the GUI
    stays meanwhile is measured in tests/bench/bench_finetune_gui.py.)"""
    import torch

    from convviz.core.model.loading import load_model

    scan(qtbot, panel, tiny_folder)
    panel.training.epochs.setValue(20)
    with qtbot.waitSignal(panel.training_finished, timeout=STEP_MS) as done:
        panel.start_training()
        assert not panel.training.train.isEnabled() and panel.training.cancel.isEnabled()
    outcome = done.args[0]
    assert outcome.classes == ["cat", "dog"] and not outcome.cancelled and 1 <= outcome.facts.epochs_done <= 20  # L-BFGS may converge
    assert os.path.dirname(outcome.checkpoint) == os.path.join(os.environ["CONVVIZ_DATA_DIR"], "finetuned")
    assert len(panel.training.val_acc.getData()[1]) == outcome.facts.epochs_done  # curves drawn
    assert f"{outcome.facts.epochs_done} L-BFGS iteration" in panel.results.caption.text()
    assert panel.training.loss_plot.getAxis("bottom").labelText == "L-BFGS iteration"  # one point per iteration
    assert "one point per L-BFGS iteration" in panel.training.legend.text()
    panel.augment.checks["hflip"].setChecked(True)  # settings for a full-loop run: the shown curves keep their unit
    assert "one point per L-BFGS iteration" in panel.training.legend.text()
    panel.augment.checks["hflip"].setChecked(False)
    # the shown accuracy and confusion matrix agree with the saved model run by torch
    loaded = load_model(outcome.checkpoint)
    assert loaded.labels == ("cat", "dog") and loaded.mirror  # it predicts from each photo and its mirror image
    right, confusion = 0, [[0, 0], [0, 0]]
    for sample in panel.report.scan.val:
        with torch.no_grad():
            pred = int(loaded.class_scores(loaded.preprocess.to_tensor(load_image(sample.path).rgb)).argmax(1))
        confusion[sample.label][pred] += 1
        right += pred == sample.label
    assert outcome.accuracy == pytest.approx(right / len(panel.report.scan.val))
    assert panel.results.matrix == confusion
    text = panel.results.confusion.text()
    assert all(f"&nbsp;{n}&nbsp;" in text for row in confusion for n in row)
    assert f"{outcome.accuracy:.1%}" in panel.results.summary.text()
    assert panel.results.use.isEnabled()
    # misclassified images open in the other panels
    if outcome.gallery:
        with qtbot.waitSignal(panel.open_image_requested, timeout=1000) as opened:
            panel.results.gallery.itemClicked.emit(panel.results.gallery.item(0))
        assert opened.args[0] == outcome.gallery[0][0].path
    # Use this model: the normal model path, then the predictions show the new class names
    session = panel.session
    with qtbot.waitSignal(session.model_loaded, timeout=STEP_MS):
        panel.use_model()
    assert session.model_info.spec == outcome.checkpoint
    assert "Now the current model" in panel.results.saved.text()
    with qtbot.waitSignal(session.view_ready, timeout=STEP_MS, check_params_cb=lambda k, _d: k == "t.pred") as got:
        session.request_view("t.pred", "predictions", k=2)
    assert {p["label"] for p in got.args[1].top} == {"cat", "dog"}


def test_cancel_stops_within_one_batch_and_keeps_the_best_model(qtbot, panel, tiny_folder):
    scan(qtbot, panel, tiny_folder)
    panel.augment.set_spec(hflip=0.5)
    panel.training.epochs.setValue(50)
    panel.training.batch.setValue(2)
    with qtbot.waitSignal(panel.training_finished, timeout=STEP_MS) as done:
        updates = updates_of(panel)
        panel.start_training()
        qtbot.waitUntil(lambda: any(u.stage == "train" and u.epoch == 2 for u in updates), timeout=STEP_MS)
        seen = len([u for u in updates if u.stage == "train"])
        panel.cancel_training()
    outcome = done.args[0]
    after = [u for u in updates if u.stage == "train"][seen:]
    assert len({(u.epoch, u.batch) for u in after}) <= 1  # at most the batch that was running
    assert outcome.cancelled and outcome.facts.epochs_done == 1 and outcome.checkpoint and os.path.isfile(outcome.checkpoint)
    assert "best epoch so far" in panel.results.caption.text()
    kept = "the warm-started head" if outcome.facts.kept_epoch == 0 else f"after epoch {outcome.facts.kept_epoch}"
    assert outcome.facts.kept_epoch in (0, 1) and kept in panel.results.caption.text()
    assert panel.training.train.isEnabled() and not panel.training.cancel.isEnabled()


def test_cancel_before_the_job_starts_starts_nothing(qtbot, panel, tiny_folder):
    """The job starts only once the running state is painted; a Cancel before that starts no job at all."""
    scan(qtbot, panel, tiny_folder)
    panel.start_training()
    assert panel.training_running and not panel.session.task_running("finetune.train")  # not submitted within the click's turn
    panel.cancel_training()
    assert not panel.training_running and not panel.session.task_running("finetune.train")
    assert "Cancelled before it started" in panel.training.status.text()
    assert panel.training.train.isEnabled() and not panel.training.cancel.isEnabled()


@pytest.mark.parametrize("case, expected", [
    ("empty", "no class folders"),
    ("one_class", "only one class"),
    ("unreadable", "has no readable images"),
])
def test_bad_folders_show_one_line_and_keep_the_previous_scan(qtbot, panel, tiny_folder, tmp_path, case, expected):
    scan(qtbot, panel, tiny_folder)
    bad = tmp_path / case
    bad.mkdir()
    if case == "one_class":
        shutil.copytree(os.path.join(tiny_folder, "cat"), bad / "cat")
    elif case == "unreadable":
        for name in ("a", "b"):
            (bad / name).mkdir()
            (bad / name / "x.jpg").write_bytes(b"not a jpeg at all")
    with qtbot.waitSignal(panel.message_shown, timeout=STEP_MS) as message:
        panel.scan_folder(str(bad))
    assert expected in message.args[0] and "\n" not in message.args[0]
    assert panel.message.isVisible()
    assert panel.report.scan.root == os.path.abspath(tiny_folder)
    assert panel.data.path.text() == os.path.abspath(tiny_folder)


def test_unwritable_save_paths_are_one_line_messages(qtbot, panel, tiny_folder, tmp_path):
    scan(qtbot, panel, tiny_folder)
    panel.save_path = str(tmp_path / "missing" / "model.pt")
    with qtbot.waitSignal(panel.message_shown, timeout=STEP_MS) as message:
        panel.start_training()
    assert message.args[0].startswith("cannot write") and "does not exist" in message.args[0]
    qtbot.waitUntil(lambda: panel.training.train.isEnabled(), timeout=STEP_MS)
    # a trained model, then Save… to a folder that does not exist: message, the model stays usable
    panel.save_path = None
    panel.training.epochs.setValue(2)
    with qtbot.waitSignal(panel.training_finished, timeout=STEP_MS):
        panel.start_training()
    kept = panel.model_path
    with qtbot.waitSignal(panel.message_shown, timeout=STEP_MS) as message:
        panel.save_model(str(tmp_path / "nowhere" / "x.pt"))
    assert "cannot write" in message.args[0]
    assert panel.model_path == kept and os.path.isfile(kept)
    target = str(tmp_path / "mine.pt")
    panel.save_model(target)
    qtbot.waitUntil(lambda: panel.model_path == target, timeout=STEP_MS)
    assert open(target, "rb").read() == open(kept, "rb").read()


def test_closing_the_window_during_training_cancels_it(qtbot, lite0_engine, sample_path, tiny_folder, tmp_path,
                                                             monkeypatch):
    from PySide6.QtCore import QSettings

    from convviz.ui.main_window import MainWindow

    monkeypatch.setenv("CONVVIZ_DATA_DIR", str(tmp_path / "data"))
    window = MainWindow(session=Session(engine=lite0_engine),
                        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.session.set_image(load_image(sample_path("cat")))
    window.session.adopt_installed_model()
    panel = window.panels["finetune"]
    scan(qtbot, panel, tiny_folder)
    panel.augment.set_spec(hflip=0.5)
    panel.training.epochs.setValue(50)
    panel.training.batch.setValue(2)
    updates = updates_of(panel)
    panel.start_training()
    qtbot.waitUntil(lambda: any(u.stage == "train" and u.epoch == 2 for u in updates), timeout=STEP_MS)
    window.close()  # how soon: tests/bench/bench_finetune_gui.py
    assert window.session.runner.closed
    qtbot.waitUntil(lambda: not window.session.runner.jobs, timeout=STEP_MS)  # the job stopped, nothing outlives it


@pytest.mark.prepare
def test_fast_path_graph_is_prepared_in_the_background_and_used(qtbot, panel, tiny_folder):
    """Choosing a folder exports the backbone graph in the background; training then runs on it."""
    scan(qtbot, panel, tiny_folder)
    qtbot.waitUntil(lambda: panel.fast_path_kind() is not None, timeout=STEP_MS)
    assert panel.fast_path_kind() == "onnx"
    panel.training.epochs.setValue(5)
    with qtbot.waitSignal(panel.training_finished, timeout=STEP_MS) as done:
        panel.start_training()
    assert done.args[0].facts.backbone == panel.fast_path_kind()
