"""Where fine-tuning's save helpers used to live; their one home is lower in core now:

* atomic writes and the early writability check: :mod:`convviz.core.atomic`;
* the convviz checkpoint, read and written: :mod:`convviz.core.model_files`.

Only names are re-exported here (no definitions), for modules that still import them from this one.
"""
from __future__ import annotations

from ..atomic import WriteError, atomic_write, check_writable
from ..model_files import checkpoint_dict, save_checkpoint

__all__ = ["WriteError", "atomic_write", "check_writable", "checkpoint_dict", "save_checkpoint"]
