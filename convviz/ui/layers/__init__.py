"""The Layers panel: layer table, channel mosaic."""
