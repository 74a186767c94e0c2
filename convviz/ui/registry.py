"""The one list of panels: it feeds the tabs, ``--view``, the screenshot harness and the restored tab.

Qt-free on purpose: ``main.py --help`` and argument checks read it without importing PySide6.
Adding a panel is one entry here (and a :class:`~convviz.ui.panel.Panel` subclass).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PanelEntry:
    """A tab: its ``--view`` name, its title, and ``module:Class`` of its :class:`Panel`."""

    name: str
    title: str
    target: str

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


PANELS: tuple[PanelEntry, ...] = (
    PanelEntry("convolution", "Convolution", "convviz.ui.convolution.panel:ConvolutionPanel"),
    PanelEntry("layers", "Layers", "convviz.ui.layers.panel:LayersPanel"),
    PanelEntry("finetune", "Fine-tune", "convviz.ui.finetune.panel:FinetunePanel"),
    PanelEntry("compare", "Compare", "convviz.ui.compare.panel:ComparePanel"),
    PanelEntry("where", "Where it looks", "convviz.ui.where.panel:WherePanel"),
)


def panel_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in PANELS)
