"""convviz: open up a convolutional network and see what it does."""
import os as _os

# The one place for this, before anything can import onnxruntime (app, CLI, workers, tests all import
# this package first): onnxruntime's wheels otherwise create a persistent device id and a telemetry
# store under the user's cache directory on import (Microsoft/DeveloperTools/.onnxruntime), and mean
# to send a process event. An offline teaching app writes nothing of the kind.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.2.0"
