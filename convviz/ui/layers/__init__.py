"""The Layers panel: module tree, channel mosaic or bar chart, lab tabs."""
