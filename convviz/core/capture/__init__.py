"""One forward pass → every layer's output, the layer table, receptive fields."""
