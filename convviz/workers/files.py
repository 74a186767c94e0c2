"""Writing finished pictures to disk (run as a job of the :class:`~convviz.workers.jobs.JobRunner`)."""
from __future__ import annotations

import os


def write_gif(frames: list, path: str, durations: list[int]) -> int:
    """Save Pillow ``frames`` (one shared palette) as a looping GIF; returns the frame count.

    The file appears whole or not at all (written beside it, then renamed).
    """
    tmp = f"{path}.part"
    try:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                       loop=0, optimize=False, disposal=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(frames)
