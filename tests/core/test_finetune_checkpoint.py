"""Atomic save: a writer killed mid-write leaves the previous file intact; weights-only loadable."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from convviz.core.finetune import atomic_write, check_writable
from convviz.core.model_files import ModelError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SLOW_WRITER = r'''
import sys, time
sys.path.insert(0, sys.argv[2])
from convviz.core.finetune import atomic_write
def write(handle):
    handle.write(b"NEW" * 1000); handle.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], write)
'''


def test_killed_writer_leaves_old_file(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"OLD")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target), ROOT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"  # the temp file is half written now
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert target.read_bytes() == b"OLD"


def test_failed_write_removes_temp_and_keeps_old(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"OLD")

    def boom(handle):
        handle.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(str(target), boom)
    assert target.read_bytes() == b"OLD" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    atomic_write(str(target), lambda h: torch.save({"x": torch.ones(2)}, h))
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(2))


def test_unwritable_paths(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        check_writable(str(tmp_path / "missing" / "x.pt"))
    with pytest.raises(ModelError, match="is a folder"):
        check_writable(str(tmp_path))
    with pytest.raises(ModelError, match="does not exist"):
        atomic_write(str(tmp_path / "missing" / "x.pt"), lambda h: None)
