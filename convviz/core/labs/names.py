"""The labs: their names, their view kinds and which layers each applies to — the one home of all three.

Torch-free, so the GUI reads it at start-up without importing torch (the first model load imports
it, off the GUI thread): ``--lab`` (:mod:`convviz.app`), the lab widgets (:mod:`convviz.ui.labs`),
the Layers panel's first layer for a lab and the core views (:mod:`.labs`) all read these rules.

A layer is described by facts a :class:`~convviz.core.capture.layer_table.LayerRow` holds (type name,
output shape, kernel, groups, real padding) plus, for timm's fused ``BatchNormAct2d``, the type of
its ``act`` child (its own row, ``NAME.act``; an ``Identity`` act means no activation to show).
"""
from __future__ import annotations

LABS = ("relu", "pool", "dropout", "pointwise")
VIEW_KIND = {lab: f"{lab}_lab" for lab in LABS}
ACTIVATION_TYPES = ("ReLU", "ReLU6", "SiLU", "Hardswish")
BATCHNORM_ACT = "BatchNormAct2d"  #: timm's fused BatchNorm + activation
POOL_TYPE_NAMES = ("MaxPool2d", "AvgPool2d", "LPPool2d")
#: torch's dropout modules the lab reproduces: element-wise, channel-wise, and SELU's alpha variants
DROPOUT_KINDS = ("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "FeatureAlphaDropout")
DROPOUT_TYPE_NAMES = DROPOUT_KINDS
INFERENCE_NOTE = "Dropout does nothing at inference: in eval mode its output is its input."


def is_map_shape(shape) -> bool:
    """True for a (C, H, W) output with every side at least 1."""
    return shape is not None and len(shape) == 3 and min(shape) >= 1


def labs_for(type_name: str, out_shape=None, kernel=None, groups=None, pads=None, act_type: str | None = None,
             ) -> tuple[str, ...]:
    """The labs (of :data:`LABS`, in that order) that apply to a layer of these facts.

    ``out_shape`` None: unknown (a module without a forward pass: only its type counts);
    ``pads``: (top, bottom, left, right) real padding; ``act_type``: a ``BatchNormAct2d``'s act type.
    """
    labs = []
    if type_name in ACTIVATION_TYPES or (type_name == BATCHNORM_ACT and act_type in ACTIVATION_TYPES):
        labs.append("relu")
    if is_map_shape(out_shape) or type_name in POOL_TYPE_NAMES:
        labs.append("pool")
    if (out_shape is not None and len(out_shape) in (1, 3)) or type_name in DROPOUT_TYPE_NAMES:
        labs.append("dropout")
    if type_name == "Conv2d" and tuple(kernel or ()) == (1, 1) and groups == 1 and not any(pads or ()):
        labs.append("pointwise")
    return tuple(labs)


def act_type_of(rows, name: str) -> str | None:
    """Type of ``name``'s ``act`` child among ``rows`` (a fused BatchNormAct2d's activation), else None."""
    child = f"{name}.act"
    return next((r.type for r in rows if r.name == child), None)


def row_labs(row, type_name: str | None = None, act_type: str | None = None) -> tuple[str, ...]:
    """:func:`labs_for` of a LayerRow (``type_name``: the module's type when known, else the row's)."""
    return labs_for(type_name or row.type, tuple(row.out_shape), row.kernel, row.groups, row.pads, act_type)


def first_row_for_lab(rows, lab: str) -> str | None:
    """Name of the first row (model call order) where ``lab`` applies, or None.

    For ``pool`` and ``dropout`` a real pooling / Dropout layer is preferred; without one
    (EfficientNet-Lite0 has no MaxPool) the first layer with a (C, H, W) map is chosen.
    """
    if lab not in LABS:
        raise ValueError(f"unknown lab {lab!r} (one of {', '.join(LABS)})")
    rows = list(rows)
    if lab in ("pool", "dropout"):
        own = POOL_TYPE_NAMES if lab == "pool" else DROPOUT_TYPE_NAMES
        found = next((r.name for r in rows if r.type in own), None)
        return found or next((r.name for r in rows if is_map_shape(r.out_shape)), None)
    acts = {r.name[: -len(".act")]: r.type for r in rows if r.name.endswith(".act")}
    return next((r.name for r in rows if lab in row_labs(r, act_type=acts.get(r.name))), None)
