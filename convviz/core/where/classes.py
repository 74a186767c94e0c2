"""Naming classes: a user's ``tiger cat`` / ``282`` → a class index, checked against the model."""
from __future__ import annotations

import difflib


def resolve_class(spec, labels) -> int:
    """The class index ``spec`` (an int, a digit string, or a label, case-insensitive) names.

    ValueError with one sentence when it is out of range or matches no label (or several)."""
    count = len(labels)
    text = str(spec).strip()
    if isinstance(spec, int) or text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < count:
            raise ValueError(f"class {index} is out of range: this model has {count} classes (0–{count - 1})")
        return index
    lowered = [str(label).lower() for label in labels]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    partial = [i for i, label in enumerate(lowered) if text.lower() in label]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(repr(labels[i]) for i in partial[:4]) + (" …" if len(partial) > 4 else "")
        raise ValueError(f"class {text!r} matches {len(partial)} classes ({shown}); give one of them or its index")
    close = difflib.get_close_matches(text.lower(), lowered, n=1)
    hint = f"; did you mean {labels[lowered.index(close[0])]!r}?" if close else ""
    raise ValueError(f"no class called {text!r} in this model's {count} classes{hint}")


def resolve_classes(specs, labels) -> tuple[int, ...]:
    """Distinct class indices for a list of specs (or a comma-separated string), in order given."""
    if isinstance(specs, str):
        specs = [part for part in specs.split(",") if part.strip()]
    out: list[int] = []
    for spec in specs:
        index = resolve_class(spec, labels)
        if index not in out:
            out.append(index)
    return tuple(out)
