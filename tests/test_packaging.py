"""A wheel carries everything the app reads at run time, and the installed app finds it through the package."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
BUILD_INPUTS = ("pyproject.toml", "README.md", "convviz", "resources")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources (no build/ or egg-info left in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("convviz-*.whl")
    return built


def test_the_wheel_carries_every_module_sample_and_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "convviz").rglob("*.py")}
    assert modules and not modules - names, f"add their packages to [tool.setuptools] packages: {modules - names}"
    samples = {f"convviz/resources/samples/{p.name}" for p in SAMPLES.iterdir() if p.is_file()}
    assert "convviz/resources/samples/LICENSES.md" in samples and len(samples) >= 5
    assert not samples - names, sorted(samples - names)
    assert {"convviz/resources/__init__.py", "convviz/py.typed"} <= names
    assert "convviz/resources/graphs/tf_efficientnet_lite0-224.onnx" in names  # the bundled backbone's graph
    assert not any(name.startswith(("tests/", "resources/")) for name in names)  # nothing at the top level


def test_the_installed_app_finds_its_samples_inside_the_package(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--no-index", "-q",
                    "--target", str(site)], check=True, capture_output=True, timeout=300)
    probe = ("import convviz, json; from importlib.resources import files;"
             "from convviz.ui.settings import SAMPLE_NAMES, sample_path;"
             "print(json.dumps([convviz.__file__, [sample_path(n) for n in SAMPLE_NAMES],"
             " (files('convviz.resources') / 'samples' / 'LICENSES.md').read_text()[:200]]))")
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    import json

    package, paths, licences = json.loads(run.stdout)
    assert Path(package).resolve().parent == (site / "convviz").resolve()  # not the checkout
    for path in paths:
        path = Path(path).resolve()
        assert path.parent == (site / "convviz" / "resources" / "samples").resolve() and path.is_file()
        assert path.read_bytes() == (SAMPLES / path.name).read_bytes()
    assert "licen" in licences.lower()
