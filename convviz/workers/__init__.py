"""The only package with threads: background work for the GUI, cancellable."""
