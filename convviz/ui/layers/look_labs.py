"""Wire the "Top patches" and "Effective field" tabs into the Layers panel.

Both follow the mosaic's chosen channel; a click on a unit of the mosaic or of the enlarged channel
sets the effective field's unit. Clicking a top patch opens its photo in every panel, keeps the layer
and channel, and once the new maps are in draws that unit's field on the photo and differentiates it.
"""
from __future__ import annotations

from .erf_view import ErfView
from .top_patches_view import TopPatchesView

MOSAIC_KEY = "layers.mosaic"


class LookLabs:
    """The two tabs and their wiring; ``panel`` is the :class:`~convviz.ui.layers.panel.LayersPanel`."""

    def __init__(self, panel):
        self.panel = panel
        self.top_patches = TopPatchesView()
        self.erf = ErfView()
        self._hovered = None  #: (layer, row, col) under the mouse in the mosaic or the channel view
        self._opening: tuple | None = None  #: (path, layer, channel, unit) of a patch being opened
        panel.add_lab("top_patches", "Top patches", self.top_patches)
        panel.add_lab("erf", "Effective field", self.erf)
        mosaic = panel.mosaic
        mosaic.channel_changed.connect(self.top_patches.set_channel)
        mosaic.channel_changed.connect(self.erf.set_channel)
        mosaic.unit_hovered.connect(self._on_hover)
        mosaic.channel.unit_hovered.connect(self._on_hover)
        mosaic.mosaic_widget.scene().sigMouseClicked.connect(self._on_click)
        mosaic.channel.channel_widget.scene().sigMouseClicked.connect(self._on_channel_click)
        self.top_patches.open_requested.connect(self.open_patch)

    def bind(self, session) -> None:
        session.view_ready.connect(self._on_view)

    def _on_hover(self, unit) -> None:
        self._hovered = unit

    def _on_click(self, _event) -> None:
        if self._hovered is not None:
            self.erf.set_unit(*self._hovered)

    def _on_channel_click(self, event) -> None:
        found = self.panel.mosaic.channel.unit_at(event.scenePos())
        if found is not None and self.panel.current:
            self.erf.set_unit(self.panel.current, *found)

    def open_patch(self, path: str, layer: str, channel: int, unit) -> None:
        """Open ``path`` everywhere; when its maps of ``layer`` arrive, show ``channel`` and ``unit``."""
        self._opening = (path, layer, channel, tuple(unit))
        self.panel.select_layer(layer)
        self.panel.open_image_requested.emit(path)

    def _on_view(self, key: str, data) -> None:
        if key != MOSAIC_KEY or self._opening is None:
            return
        path, layer, channel, unit = self._opening
        image = self.panel.session.image if self.panel.session is not None else None
        if data.layer != layer or image is None or image.source != path:
            return
        self._opening = None
        self.panel.mosaic.select_channel(channel)
        self.panel.unit_hovered.emit((layer, *unit))  # the main window draws its field on the photo
        self.erf.set_unit(layer, *unit)
