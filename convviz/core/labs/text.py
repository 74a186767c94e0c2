"""Number wording shared by the labs and their widgets — torch-free, so the GUI imports it at start-up."""
from __future__ import annotations


def share_text(share: float) -> str:
    """``40.1%``; a share that is not 0 (or 1) never rounds to ``0.0%`` (``100.0%``)."""
    if 0 < share < 0.0005:
        return "<0.1%"
    if 0.9995 < share < 1:
        return ">99.9%"
    return f"{100 * share:.1f}%"
