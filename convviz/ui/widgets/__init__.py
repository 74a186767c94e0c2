"""Shared widgets: photo, stage canvas and layout, transport, GIF export, mosaic, sections."""
