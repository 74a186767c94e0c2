"""Names of the labs and of the layer types they apply to — torch-free, so the GUI can read them at
start-up without importing torch (the first model load imports it, off the GUI thread)."""
from __future__ import annotations

LABS = ("relu", "pool", "dropout", "pointwise")
VIEW_KIND = {lab: f"{lab}_lab" for lab in LABS}
ACTIVATION_TYPES = ("ReLU", "ReLU6", "SiLU", "Hardswish")
POOL_TYPE_NAMES = ("MaxPool2d", "AvgPool2d", "LPPool2d")
#: torch's dropout modules the lab reproduces: element-wise, channel-wise, and SELU's alpha variants
DROPOUT_KINDS = ("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "FeatureAlphaDropout")
DROPOUT_TYPE_NAMES = DROPOUT_KINDS
INFERENCE_NOTE = "Dropout does nothing at inference: in eval mode its output is its input."
