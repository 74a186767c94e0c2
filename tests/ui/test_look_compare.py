"""The Compare tab: the current model beside a checkpoint derived from it (one layer moved, the head
replaced) — maps, evidence, predictions and the weight chart; another architecture is one line; a new
photo runs the comparison again by itself."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from convviz.core.finetune import checkpoint_dict
from convviz.core.model.head import replace_head
from convviz.core.images import load_image
from convviz.core.where.look_figures import colour
from convviz.ui.compare.panel import KEY, suggested_other

from ui_helpers import STEP_MS


@pytest.fixture
def derived(lite0_engine, tmp_path):
    """A checkpoint of the bundled model with conv_head's weights ×1.1 and a new 2-class head."""
    module = copy.deepcopy(lite0_engine.loaded.module)
    torch.manual_seed(0)
    replace_head(module, 2)
    with torch.no_grad():
        module.conv_head.weight.mul_(1.1)
    path = tmp_path / "derived.pt"
    torch.save(checkpoint_dict(module, arch="default", labels=["cat", "dog"], preprocess=lite0_engine.loaded.preprocess,
                               training={}), path)
    return str(path)


def compare(qtbot, window, action, signal="task_ready"):
    with qtbot.waitSignal(getattr(window.session, signal), timeout=STEP_MS,
                          check_params_cb=lambda k, *_: k == KEY) as blocker:
        action()
    return blocker.args[-1]


def test_before_after_maps_evidence_predictions_and_weights(qtbot, ready, derived, sample_path):
    ready.set_view("compare")
    panel = ready.panels["compare"]
    assert panel.layer.currentText() == "bn2"  # the last layer with a map
    panel.other.setText(derived)
    panel.order.setCurrentIndex(0)  # after the current one
    result = compare(qtbot, ready, panel.run)
    assert result.title_a == "EfficientNet-Lite0 (ImageNet)" and result.layer == "bn2"
    changes = {c.layer: c for c in result.changes}
    assert changes["conv_head"].change == pytest.approx(0.1, rel=1e-5) and changes["classifier"].status == "replaced"
    assert all(c.change == 0.0 for name, c in changes.items() if name not in ("conv_head", "classifier"))
    assert panel.summary.text() == result.summary() and "conv_head, 10 %" in panel.summary.text()
    assert panel.chart.table.rowCount() == 2 and panel.chart.table.item(0, 0).text() == "classifier"
    assert len(panel.chart.changes) == len(result.changes)
    assert all(tile.picture.pixmap() is not None and not tile.picture.pixmap().isNull() for tile in panel.tiles)
    assert "evidence for “tiger cat”" in panel.tiles[4].caption.text()
    assert "tiger cat" in panel.preds[0].text() and panel.preds[1].text().count("</tr>") == 2
    assert not panel.running and not panel.cancel.isEnabled() and panel.is_ready()
    # one channel instead of the mean: redrawn from the result, nothing recomputed
    panel.channel.setValue(7)
    assert "channel 7" in panel.tiles[1].caption.text()
    a, b = result.maps_a[7], result.maps_b[7]
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    np.testing.assert_array_equal(panel.tiles[1].rgb, colour(a, lo, hi))  # both on one scale
    np.testing.assert_array_equal(panel.tiles[2].rgb, colour(b, lo, hi))
    # a new photo: the comparison runs again by itself (replayed by the session)
    again = compare(qtbot, ready, lambda: ready.session.set_image(load_image(sample_path("coffee"))))
    assert again is not result and again.predictions_a[0]["label"] != result.predictions_a[0]["label"]
    # … but a hidden tab loads nothing: it compares when it is shown again
    ready.set_view("layers")
    ready.session.set_image(load_image(sample_path("cat")))
    assert not ready.session.task_running(KEY) and panel._pending
    back = compare(qtbot, ready, lambda: ready.set_view("compare"))
    assert back.predictions_a[0]["label"] == result.predictions_a[0]["label"]


def test_another_architecture_is_one_line_and_suggestions(qtbot, ready, derived):
    ready.set_view("compare")
    panel = ready.panels["compare"]
    panel.other.setText("resnet18")
    message = compare(qtbot, ready, panel.run, signal="task_failed")
    assert message.startswith("the two models' architectures do not match (") and "\n" not in message
    assert panel.status.text() == message and not panel.running
    info = ready.session.model_info
    from dataclasses import replace

    assert suggested_other(replace(info, title="derived.pt (fine-tuned default)")) == ("default", 1)


@pytest.mark.parametrize("size", [(1280, 800), (1024, 700)], ids=["1280x800", "1024x700"])
def test_compare_with_results_fits(qtbot, ready, derived, size):
    from layout_check import cut_off, settle, short_labels, text_over_plots
    from test_layout import overlaps, sideways_scrolling

    ready.resize(*size)
    ready.set_view("compare")
    panel = ready.panels["compare"]
    panel.other.setText(derived)
    compare(qtbot, ready, panel.run)
    settle()
    assert not sideways_scrolling(ready)
    assert not overlaps(ready), overlaps(ready)
    assert not short_labels(ready) and not cut_off(ready) and not text_over_plots(ready), (
        short_labels(ready), cut_off(ready), text_over_plots(ready))
