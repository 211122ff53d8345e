"""pycnn: convolutional networks for Python, with Keras' API and every kernel in C.

    import pycnn as keras
    from pycnn import layers
    from pycnn.datasets import mnist
"""
import importlib as _importlib

from . import backend
from . import config               # config.set_output_style("keras3"): Keras 3's printing
from . import activations, initializers, layers, losses, metrics, optimizers, callbacks
from . import utils, datasets
from . import preprocessing      # keras.preprocessing.image.ImageDataGenerator
from . import ops
from . import models, regularizers, constraints, saving
from .backend import get_num_threads, set_num_threads
from .layers import Input, InputLayer
from .models import Model, Sequential

__version__ = "0.2.0"

#: Modules imported when first used (they pull in more code, or optional libraries).
_LAZY = ("applications", "viz", "data")


def __getattr__(name: str):
    """``keras.applications``, ``keras.viz``, ``keras.data`` without importing them up front."""
    if name in _LAZY:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pycnn' has no attribute {name!r}")


__all__ = ["Input", "InputLayer", "Model", "Sequential", "activations", "applications",
           "backend", "callbacks", "config", "constraints", "data", "datasets",
           "get_num_threads", "initializers", "layers", "losses", "metrics", "models", "ops",
           "optimizers", "preprocessing", "regularizers", "saving", "set_num_threads", "utils",
           "viz"]
