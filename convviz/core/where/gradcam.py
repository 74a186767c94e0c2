"""Localization from a classifier: Grad-CAM (Selvaraju et al., 2017) and the box around its peak.

For class score y (the logit) and a layer's output A (C × h × w):
``cam = ReLU(Σ_c w_c · A_c)`` with ``w_c`` the spatial mean of ``∂y/∂A_c``. The model runs once on
the photo as it classifies it (the centre crop); only the part after the layer builds an autograd
graph, and only ``∂y/∂A`` is computed (no weight gradients). The box is the bounding box of the
connected region, above ``threshold`` × the peak, that holds the peak: inferred from a classifier's
evidence, not a trained box regressor.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..capture.activations import first_tensor
from ..tasks import Need, Scope, TaskInputs, TaskState, task
from .boxes import view_hw
from .classes import resolve_class
from .frame import Frame, Grid, crop_frame, grid_from_row, layer_grid, mask_boxes, mean_side, to_photo
from .layer_tap import find_module, on_call, spatial_row, table_rows

#: Default fraction of the peak the box's region stays above.
BOX_THRESHOLD = 0.5


@dataclass(frozen=True)
class CamResult:
    """A Grad-CAM map for one class at one layer, placed on the photo (plain data)."""

    index: int
    label: str
    logit: float  #: the class's score y (what was differentiated)
    prob: float  #: its softmax probability, as the predictions list shows it
    layer: str
    layer_type: str
    grid: Grid  #: the layer's units on the model input (receptive field, stride, centres)
    frame: Frame  #: the model input (the centre crop) on the photo
    cam: np.ndarray  #: (h, w) float32, ReLU(Σ w_c A_c), unnormalised
    heat: np.ndarray  #: (Hv, Wv) float32 in [0, 1] over the whole photo (its view size), 0 outside the crop
    box: tuple[float, float, float, float]  #: photo-pixel edges (x0, y0, x1, y1)
    threshold: float
    seconds: float
    labels: tuple[str, ...] = ()  #: every class name of the model (for a class picker)

    @property
    def stride_photo(self) -> float:
        """Photo pixels between neighbouring units of the layer."""
        return mean_side(self.grid.jump) * mean_side((self.frame.sy, self.frame.sx))

    def caption(self, threshold: float | None = None) -> str:
        """What the overlay shows, in one paragraph (``threshold``: the box's, when redrawn at another)."""
        h, w = self.grid.shape
        jump, rf = mean_side(self.grid.jump), mean_side(self.grid.rf)
        return (f"Grad-CAM for “{self.label}” [{self.index}] (logit {self.logit:.2f}, {self.prob * 100:.1f}%) at "
                f"{self.layer} ({self.layer_type}): a {h}×{w} map, one unit every {jump:g} input px = "
                f"{self.stride_photo:.1f} photo px, each seeing up to {rf:g} px. The box (region above "
                f"{self.threshold if threshold is None else threshold:.0%} of the peak) is inferred from a classifier's evidence, not a trained box regressor.")


def spatial_layers(rows) -> list[str]:
    """Record names of the Layers-table rows whose output is a map with more than one position."""
    return [r.name for r in rows if spatial_row(r) and r.out_shape[1] * r.out_shape[2] > 1]


def default_layer(rows) -> str:
    """The last layer with spatial extent (ValueError when there is none)."""
    names = spatial_layers(rows)
    if not names:
        raise ValueError("this model has no layer with a spatial output (more than 1×1), so there is no map to show")
    return names[-1]


def layer_cam(model, x: torch.Tensor, layer: str, target) -> tuple[np.ndarray, torch.Tensor, int, str]:
    """(cam (h, w), logits (1, K), class, layer type) for batch-of-one ``x``: Grad-CAM of ``logits[0, class]``,
    the class being ``target`` or ``target(logits)`` when it is a function.

    The pass runs without autograd up to ``layer``; its output becomes a leaf that requires grad
    (a clone goes on, so later in-place ops leave A intact) and autograd is on from there."""
    module, call = find_module(model, layer)
    seen: list[torch.Tensor] = []
    shapes: list[tuple] = []

    def at_layer(output):
        out = first_tensor(output)
        shapes.append(tuple(out.shape[1:]) if out is not None else ())
        if not isinstance(output, torch.Tensor) or output.dim() != 4 or not output.is_floating_point():
            return None
        leaf = output.detach().requires_grad_(True)
        seen.append(leaf)
        torch.set_grad_enabled(True)  # until the enclosing no_grad block ends
        return leaf.clone()

    handle = module.register_forward_hook(on_call(call, at_layer))
    try:
        with torch.no_grad():
            logits = first_tensor(model(x))
            if not shapes:
                raise ValueError(f"{layer}: the layer does not run in this model's forward pass")
            if not seen or tuple(seen[0].shape[-2:]) == (1, 1):
                shape = "×".join(map(str, shapes[0])) or "no tensor"
                raise ValueError(f"{layer}: its output ({shape}) has no spatial extent, so there is no map to show; "
                                 "choose a convolutional layer")
            if logits is None or logits.dim() != 2:
                raise ValueError("the model's output is not a (batch, classes) score vector")
            target = int(target(logits.detach()) if callable(target) else target)
            if not 0 <= target < logits.shape[1]:
                raise ValueError(f"class {target} is out of range: this model has {logits.shape[1]} classes "
                                 f"(0–{logits.shape[1] - 1})")
            if not logits.requires_grad:
                raise ValueError(f"{layer}: the class scores do not depend on this layer's output")
            grads = torch.autograd.grad(logits[0, target], seen[0], allow_unused=True)[0]
    finally:
        handle.remove()
    if grads is None:
        raise ValueError(f"{layer}: the class scores do not depend on this layer's output")
    acts = seen[0].detach()[0]
    weights = grads[0].mean((1, 2))
    cam = torch.relu((weights[:, None, None] * acts).sum(0))
    return cam.float().numpy(), logits.detach(), target, type(module).__name__


def grad_cam(loaded, rgb: np.ndarray, target=None, layer: str | None = None, rows=(),
             threshold: float = BOX_THRESHOLD) -> CamResult:
    """Grad-CAM of ``target`` (index or name; default: the top class) at ``layer`` (default: the last
    layer with spatial extent) for the photo ``rgb`` as ``loaded`` classifies it (its centre crop).
    ``rows``: the Layers table at the model's input size, when known."""
    if not 0 < threshold < 1:
        raise ValueError(f"box threshold must be between 0 and 1, not {threshold}")
    started = time.perf_counter()
    model, pre = loaded.module, loaded.preprocess
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError(f"{loaded.title}: TorchScript runs its layers outside Python, so Grad-CAM cannot read a "
                         "layer's output or gradient (load the weights as a state dict or a convviz checkpoint)")
    x = pre.to_tensor(rgb)
    if layer is None:
        rows = table_rows(model, pre.input_size, rows)
        layer = default_layer(rows)
    if target is None:
        def choose(logits):
            return int(loaded.class_scores(x, logits)[0].argmax())
    else:
        def choose(logits):
            return resolve_class(target, loaded.label_names(logits.shape[1]))
    cam, logits, index, layer_type = layer_cam(model, x, layer, choose)
    prob = float(loaded.probabilities(x, logits)[0, index])
    row = next((r for r in rows if r.name == layer), None) if rows else None
    grid = grid_from_row(row, cam.shape) if row is not None and tuple(row.out_shape[1:]) == cam.shape else None
    grid = grid or replace(layer_grid(model, layer, tuple(x.shape[-2:]), pre.input_size), shape=cam.shape)
    frame = crop_frame(pre, rgb.shape[:2])
    peak = float(cam.max())
    norm = cam / peak if peak > 0 else cam
    heat = to_photo(norm[None], grid, frame, view_hw(rgb.shape[:2]))[0]
    box = peak_box(heat, threshold, rgb.shape[:2], frame)
    labels = loaded.label_names(logits.shape[1])
    return CamResult(index, labels[index], float(logits[0, index]), prob, layer, layer_type, grid, frame,
                     cam, heat, box, threshold, time.perf_counter() - started, tuple(labels))


def peak_box(heat: np.ndarray, threshold: float, photo_hw, frame: Frame) -> tuple[float, float, float, float]:
    """Photo-pixel edges of the region above ``threshold`` × peak that contains the peak (the crop when flat)."""
    peak = float(heat.max())
    if peak <= 0:
        return frame.edges_to_photo(0, 0, frame.input_hw[1], frame.input_hw[0])
    at = np.unravel_index(int(heat.argmax()), heat.shape)
    for rows, cols, region in mask_boxes(heat >= threshold * peak):
        if rows.start <= at[0] < rows.stop and cols.start <= at[1] < cols.stop and region[at[0] - rows.start, at[1] - cols.start]:
            sy, sx = photo_hw[0] / heat.shape[0], photo_hw[1] / heat.shape[1]
            return (cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy)
    raise AssertionError("the peak lies in no region above a fraction of itself")


@task(Scope.IMAGE, (Need.MODEL, Need.GRADIENTS, Need.IMAGE), title="Computing Grad-CAM…")
def gradcam_task(inputs: TaskInputs, state: TaskState) -> CamResult:
    """args: ``target`` (index or name, None: top class), ``layer`` (None: last spatial), ``threshold``."""
    args = inputs.args
    state.progress(0.0, "Grad-CAM: one pass and the gradient back to the layer")
    state.check()
    result = grad_cam(inputs.model, inputs.rgb, args.get("target"), args.get("layer"), inputs.rows,
                      args.get("threshold", BOX_THRESHOLD))
    state.progress(1.0, f"Grad-CAM of {result.label} at {result.layer}")
    return result
