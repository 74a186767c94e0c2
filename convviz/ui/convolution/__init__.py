"""The Convolution panel: toy grid and real layer."""
