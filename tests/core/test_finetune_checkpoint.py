"""Atomic writes (convviz.core.atomic, the one home): a writer killed mid-write leaves the previous file
intact; a failed write leaves nothing; several files are written all or none; weights-only loadable."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from convviz.core.atomic import WriteError, atomic_write, atomic_write_all, check_writable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SLOW_WRITER = r'''
import sys, time
sys.path.insert(0, sys.argv[2])
from convviz.core.atomic import atomic_write
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
    with pytest.raises(WriteError, match="does not exist"):
        check_writable(str(tmp_path / "missing" / "x.pt"))
    with pytest.raises(WriteError, match="is a folder"):
        check_writable(str(tmp_path))
    with pytest.raises(WriteError, match="does not exist"):
        atomic_write(str(tmp_path / "missing" / "x.pt"), lambda h: None)
    assert issubclass(WriteError, ValueError)  # callers that report a ValueError in one line report it too


def test_write_all_removes_everything_on_failure(tmp_path):
    def fails(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    first = tmp_path / "a.png"
    with pytest.raises(WriteError, match="No space left"):
        atomic_write_all([(str(first), lambda h: h.write(b"png")), (str(tmp_path / "b.npy"), fails)])
    assert os.listdir(tmp_path) == []
    atomic_write_all([(str(first), lambda h: h.write(b"png")), (str(tmp_path / "b.npy"), lambda h: h.write(b"npy"))])
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.npy"] and first.read_bytes() == b"png"


def test_outputs_get_the_mode_a_plain_open_gives(tmp_path):
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    atomic_write(str(tmp_path / "atomic.bin"), lambda h: h.write(b"x"))
    assert (tmp_path / "atomic.bin").stat().st_mode == plain.stat().st_mode
