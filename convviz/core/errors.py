"""One-line error text for users."""
from __future__ import annotations


def first_line(exc: BaseException, prefix: str = "") -> str:
    """``prefix`` + the first line of an exception's text (its type name when it has none)."""
    text = str(exc).strip()
    return prefix + (text.splitlines()[0] if text else type(exc).__name__)
