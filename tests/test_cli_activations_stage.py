"""`convviz activations --stage input|output`: the layer's recorded input, checked against a torch hook."""
import numpy as np
import pytest
import torch
from PIL import Image

from convviz.cli import main


def hooked(name, path):
    """(input, output) of module ``name`` of the default model on image ``path`` (batch item 0)."""
    from convviz.core.images import load_image
    from convviz.core.model.loading import load_model

    loaded = load_model("default")
    module = dict(loaded.module.named_modules())[name]
    got = []
    handle = module.register_forward_hook(lambda _m, args, out: got.append((args[0].clone(), out.clone())))
    with torch.no_grad():
        loaded.module(loaded.preprocess.to_tensor(load_image(path).rgb))
    handle.remove()
    return got[0][0][0].numpy(), got[0][1][0].numpy()


def test_stage_input_and_output_of_a_1x1_conv(capsys, tmp_path, sample_path):
    name = "blocks.1.0.conv_pwl"
    files = {stage: (tmp_path / f"{stage}.png", tmp_path / f"{stage}.npy") for stage in ("input", "output")}
    for stage, (png, npy) in files.items():
        code = main(["activations", sample_path("cat"), "--layer", name, "--stage", stage, "--out", str(png),
                     "--npy", str(npy)])
        err = capsys.readouterr().err
        assert code == 0 and f"{name}: {stage} " in err
        with Image.open(png) as picture:
            assert picture.format == "PNG"
    x, y = hooked(name, sample_path("cat"))
    np.testing.assert_allclose(np.load(files["input"][1]), x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.load(files["output"][1]), y, rtol=0, atol=1e-6)
    assert np.load(files["input"][1]).shape == (96, 56, 56) and np.load(files["output"][1]).shape == (24, 56, 56)


@pytest.mark.parametrize("argv, expected", [
    (["--layer", "bn1", "--stage", "input"], "bn1: its input is not recorded"),
    (["--layer", "conv_stem", "--stage", "middle"], "invalid choice"),
])
def test_stage_refusals_are_one_line(capsys, tmp_path, sample_path, argv, expected):
    png = tmp_path / "x.png"
    try:
        code = main(["activations", sample_path("cat"), *argv, "--out", str(png)])
    except SystemExit as exc:  # argparse rejects a bad choice with exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and not png.exists()
    assert "Traceback" not in err
    if "invalid choice" not in expected:
        assert err.count("\n") == 1 and err.startswith("error: ")
