"""The CLI against hostile input: one line, exit 2, nothing run, nothing left behind."""
import json
import math
import os
import subprocess
import sys
import time

import pytest

from convviz import cli_io
from convviz.cli import main
from convviz.cli_io import TimeLimitExceeded, emit_json, time_limit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_corpus as corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def gs_spy(tmp_path, monkeypatch):
    bindir, record = corpus.fake_gs(tmp_path)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    return record


def test_eps_named_png_refused_before_the_model_loads(capsys, tmp_path, gs_spy, monkeypatch):
    import convviz.core.model.loading as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    code, out, err = run(capsys, "predict", corpus.eps_file(tmp_path, "cat.png"))
    assert code == 2 and out == "" and "PostScript" in one_error_line(err)
    assert not os.path.exists(gs_spy)


def test_each_bad_image_reported_and_the_others_predicted(capsys, tmp_path, sample_path, gs_spy):
    paths = [sample_path("cat"), corpus.eps_file(tmp_path, "x.jpg"), str(tmp_path / "missing.png"),
             corpus.refused_format(tmp_path, "DDS"), *corpus.fuzzed(corpus.refused_format(tmp_path, "BLP"), tmp_path, 2),
             sample_path("coffee")]
    code, out, err = run(capsys, "predict", *paths, "--json", "--topk", "2", "--model", corpus.checkpoint(tmp_path))
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [os.path.basename(r["image"]) for r in results] == ["cat.jpg", "coffee.jpg"]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5 and "Traceback" not in err
    assert not os.path.exists(gs_spy)


def test_torchscript_needs_trust_and_takes_no_hooks(capsys, tmp_path, sample_path):
    marker = tmp_path / "marker"
    model = corpus.torchscript_marker(tmp_path, str(marker), "net.pt")
    code, _, err = run(capsys, "predict", sample_path("cat"), "--model", model)
    assert code == 2 and "TorchScript" in one_error_line(err)
    assert not marker.exists() and not (tmp_path / "marker.load").exists()
    for command in (["activations", sample_path("cat"), "--layer", "x", "--out", str(tmp_path / "a.png")], ["layers"]):
        code, _, err = run(capsys, *command, "--model", model, "--trust-code")
        assert code == 2 and "takes no hooks" in one_error_line(err), err
    assert not (tmp_path / "a.png").exists()
    code, out, err = run(capsys, "predict", sample_path("cat"), "--model", model, "--allow-pickle", "--json")
    assert code == 0 and len(json.loads(out)["top"]) == 3 and marker.exists()  # 3 outputs: channel means


def test_nan_weights_refused_and_json_stays_valid(capsys, tmp_path, sample_path):
    code, out, err = run(capsys, "predict", sample_path("cat"), "--model", corpus.nan_checkpoint(tmp_path), "--json")
    assert code == 2 and out == "" and "not finite" in one_error_line(err)


def test_json_writes_non_finite_numbers_as_null(capsys):
    emit_json({"prob": float("nan"), "top": [{"p": float("inf")}, {"p": 0.5}], "n": 3})
    text = capsys.readouterr().out
    assert json.loads(text) == {"prob": None, "top": [{"p": None}, {"p": 0.5}], "n": 3}
    assert "NaN" not in text and "Infinity" not in text
    assert cli_io.finite_or_none(-math.inf) is None


def test_crafted_checkpoint_one_line(capsys, tmp_path):
    for path in (corpus.huge_arch_checkpoint(tmp_path), corpus.checkpoint(tmp_path, preprocess={"input_size": 20000}),
                 corpus.zip_bomb(tmp_path, 80)):
        code, out, err = run(capsys, "layers", "--model", path)
        assert code == 2 and out == "" and os.path.basename(path) in one_error_line(err)


def test_outputs_are_both_or_neither(capsys, tmp_path, sample_path):
    png = tmp_path / "m.png"
    code, _, err = run(capsys, "activations", sample_path("cat"), "--layer", "conv_stem", "--out", str(png),
                       "--npy", str(tmp_path / "no" / "a.npy"))
    assert code == 2 and "does not exist" in one_error_line(err)
    assert os.listdir(tmp_path) == [], "no PNG and no temp file left behind"


def test_time_limit_stops_a_step_and_leaves_nothing_running():
    import signal

    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TimeLimitExceeded, match="took longer than 0.2 s"):
        with time_limit(0.2, "slow.png"):
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.2  # the deadline asked for, armed
            while True:
                pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) is handler
    with time_limit(0.2, "fast"):
        pass
    time.sleep(0.3)  # the alarm was cancelled: nothing fires after the block


def test_broken_pipe_exits_quietly(tmp_path):
    err = tmp_path / "err.txt"
    model = corpus.checkpoint(tmp_path)
    script = f"{sys.executable} -m convviz.cli layers --model {model} 2>{err} | head -1; " \
             "echo \"${PIPESTATUS[0]}\""
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    first, status = result.stdout.splitlines()
    # 141 when head closed the pipe while we still wrote; 0 when everything fit in the pipe first
    assert first.startswith("ckpt.pt") and status in ("141", "0")
    assert err.read_text() == ""


def test_non_utf8_filenames_on_a_strict_stdout(tmp_path, sample_path):
    folder = os.fsencode(tmp_path)
    good, bad = folder + b"/caf\xe9.jpg", folder + b"/\xff\xfe.png"
    with open(sample_path("cat"), "rb") as src, open(good, "wb") as dst:
        dst.write(src.read())
    corpus.eps_file(tmp_path, os.fsdecode(b"\xff\xfe.png"))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    model = corpus.checkpoint(tmp_path)
    result = subprocess.run([sys.executable, "-m", "convviz.cli", "predict", good, bad, "--json", "--model", model], cwd=ROOT,
                            capture_output=True, env=env, timeout=300)
    assert result.returncode == 2
    line = json.loads(result.stdout.decode("utf-8"))
    assert line["image"].endswith("caf\\xe9.jpg") and line["top"]
    err = result.stderr.decode("utf-8")
    assert one_error_line(err).startswith("error: \\xff\\xfe.png: PostScript")
