"""Command-line plumbing every ``convviz`` command shares.

* :func:`emit_json` — always valid JSON: non-finite floats become ``null``;
* :func:`shown` — a path printable on any terminal (undecodable bytes as ``\\xNN``);
* :func:`time_limit` — a SIGALRM deadline for one step (main thread only, else no limit);
* :func:`collected_warnings` — warnings held back, printed as one ``warning:`` line each
  only when the command succeeds.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

from .core.atomic import shown
from .core.tasks import TaskState


#: Seconds one image may take to decode before the command gives up on it.
DECODE_SECONDS = 60


class CliError(Exception):
    """A user-facing failure: printed as ``error: …``, exit code 2."""


class TimeLimitExceeded(BaseException):
    """Raised by :func:`time_limit` (a BaseException, so no ``except Exception`` swallows it)."""


def model_options(p) -> None:
    """``--model SPEC`` and the explicit opt-in for model files that are code."""
    p.add_argument("--model", default="default", metavar="SPEC",
                   help="'default' (bundled EfficientNet-Lite0), a torchvision name, timm:NAME, "
                        "a model file, or ARCH=STATE_DICT_FILE")
    trust_option(p)


def trust_option(p) -> None:
    """The explicit opt-in for model files that are code."""
    p.add_argument("--allow-pickle", "--trust-code", dest="allow_pickle", action="store_true",
                   help="allow a model file that is code (a fully pickled model or TorchScript): "
                        "it runs code from the file, use it only if you trust the file's source")


def load_model_arg(args, require_weights: bool, spec: str | None = None):
    """The model ``--model`` (or ``spec``) names (its note, if any, becomes a warning line)."""
    from .core.model.loading import load_model

    loaded = load_model(spec or args.model, require_weights=require_weights, allow_pickle=args.allow_pickle)
    if loaded.note:
        warnings.warn(loaded.note, UserWarning, stacklevel=2)
    return loaded


def no_hooks(loaded, command: str) -> None:
    """:class:`CliError` when ``command`` needs hooks inside ``loaded`` and it is TorchScript (it takes none)."""
    if loaded.scripted:
        raise CliError(f"{loaded.title}: TorchScript takes no hooks, so `{command}` cannot look inside it "
                       "(use a state dict or a convviz checkpoint; `predict` works)")


def decode_image(path: str):
    """Decode one image within :data:`DECODE_SECONDS` (a :class:`~convviz.core.images.LoadedImage`)."""
    from .core.images import load_image

    with time_limit(DECODE_SECONDS, shown(os.path.basename(path) or path)):
        return load_image(path)


def finite_or_none(value):
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def emit_json(obj, stream=None) -> None:
    """Print ``obj`` as one line of strict JSON (non-finite numbers written as ``null``)."""
    stream = stream or sys.stdout
    print(json.dumps(finite_or_none(obj), allow_nan=False), file=stream, flush=True)


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` (message: ``what`` took too long) after ``seconds``.

    Uses SIGALRM, so it works only in the main thread of a POSIX process; elsewhere it is a
    no-op. Python decoders return to the interpreter between chunks, where the alarm lands.
    """
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread() and seconds > 0

    def expired(signum, frame):
        raise TimeLimitExceeded(f"{what}: took longer than {seconds:g} s; stopped")

    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """Hold back Python warnings (torch's included); the list gets one line per distinct warning."""
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield lines
        finally:
            for item in caught:
                text = str(item.message).strip().splitlines()
                line = text[0] if text else item.category.__name__
                if line not in lines:
                    lines.append(line)


def safe_stdout() -> None:
    """Never fail on printing: unencodable characters on stdout/stderr become escapes."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def quiet_broken_pipe() -> int:
    """After a BrokenPipeError (``convviz … | head``): silence stdout and return the exit code 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)


@contextmanager
def task_progress(desc: str):
    """A core :class:`~convviz.core.tasks.TaskState` whose progress draws a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", file=sys.stderr, leave=False,
               bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}")

    def report(progress) -> None:
        if progress.fraction is not None:
            bar.update(round(100 * progress.fraction, 1) - bar.n)
        if progress.text:
            bar.set_postfix_str(progress.text, refresh=False)

    try:
        yield TaskState(report)
    finally:
        bar.close()
