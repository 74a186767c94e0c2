"""Head replacement and freezing: counts checked against the parameters torch reports."""
import pytest
import timm
import torch
import torchvision
from torch import nn

from convviz.core.finetune import apply_freeze, backbone_blocks, head_name, replace_head, set_train_mode


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("build, head", [
    (lambda: torchvision.models.resnet18(), "fc"),
    (lambda: torchvision.models.mobilenet_v3_small(), "classifier.3"),
    (lambda: timm.create_model("efficientnet_lite0"), "classifier"),
])
def test_replace_head_gives_new_classes(build, head):
    model = build().eval()
    assert head_name(model) == head
    new = replace_head(model, 3)
    assert isinstance(new, nn.Linear) and model.get_submodule(head) is new
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_freeze_counts_match_torch():
    model = torchvision.models.resnet18()
    replace_head(model, 2)
    report = apply_freeze(model, "head")
    assert report.trainable_params == trainable(model) == model.fc.weight.numel() + model.fc.bias.numel()
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert "layer4.1.conv2" in report.frozen_modules and "fc" not in report.frozen_modules
    report = apply_freeze(model, "last:1")
    assert report.trainable_blocks == ["layer4"]
    assert report.trainable_params == trainable(model) == sum(p.numel() for p in model.layer4.parameters()) + 2 * 512 + 2
    assert "layer4.1.conv2" not in report.frozen_modules and "layer3.1.conv2" in report.frozen_modules
    report = apply_freeze(model, "none")
    assert report.trainable_params == report.total_params and report.frozen_modules == []
    with pytest.raises(ValueError, match="only 5 blocks"):
        apply_freeze(model, "last:9")
    with pytest.raises(ValueError, match="unknown freeze"):
        apply_freeze(model, "some")


def test_timm_blocks_and_frozen_batchnorm_stays_in_eval():
    model = timm.create_model("efficientnet_lite0")
    names = [b for b, _ in backbone_blocks(model)]
    assert names[0] == "conv_stem+bn1" and names[-1] == "conv_head+bn2" and "blocks.6" in names
    apply_freeze(model, "last:2")
    set_train_mode(model)
    assert model.bn2.training and model.blocks[6][0].bn1.training
    assert not model.blocks[0][0].bn1.training and not model.bn1.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.bn1.running_mean)
