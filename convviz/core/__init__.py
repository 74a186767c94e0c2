"""Pure torch/numpy computations. Never imports Qt (checked by import-linter)."""
