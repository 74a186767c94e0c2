"""Writing finished pictures to disk off the GUI thread."""
from __future__ import annotations

from superqt.utils import create_worker


def write_gif(frames: list, path: str, durations: list[int]) -> int:
    """Save Pillow ``frames`` (one shared palette) as a looping GIF; returns the frame count."""
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, optimize=False, disposal=1)
    return len(frames)


def write_gif_in_background(frames: list, path: str, durations: list[int], on_done, on_error):
    """Start :func:`write_gif` in a pool worker; ``on_done(frames)`` / ``on_error(exc)`` on the GUI thread."""
    worker = create_worker(write_gif, frames, path, durations, _start_thread=False, _ignore_errors=True)
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    worker.start()
    return worker
