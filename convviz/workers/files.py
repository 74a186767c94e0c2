"""Writing finished pictures to disk (run as a job of the :class:`~convviz.workers.jobs.JobRunner`)."""
from __future__ import annotations

from convviz.core.atomic import atomic_write


def write_gif(frames: list, path: str, durations: list[int]) -> int:
    """Save Pillow ``frames`` (one shared palette) as a looping GIF; returns the frame count.

    The file appears whole or not at all (:func:`convviz.core.atomic.atomic_write`).
    """
    atomic_write(path, lambda handle: frames[0].save(handle, format="GIF", save_all=True, append_images=frames[1:],
                                                    duration=durations, loop=0, optimize=False, disposal=1))
    return len(frames)
