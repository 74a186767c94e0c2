"""convviz: open up a convolutional network and see what it does."""

__version__ = "0.1.0"
