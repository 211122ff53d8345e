"""pycnn: convolutional networks for Python, with Keras' API and every kernel in C.

    import pycnn as keras
    from pycnn import layers
    from pycnn.datasets import mnist
"""
from . import backend
from . import config               # config.set_output_style("keras3"): Keras 3's printing
from . import activations, initializers, layers, losses, metrics, optimizers, callbacks
from . import utils, datasets
from . import preprocessing      # keras.preprocessing.image.ImageDataGenerator
from . import ops
from .backend import get_num_threads, set_num_threads
from .layers import Input, InputLayer
from .models import Model, Sequential

__version__ = "0.1.0"

__all__ = ["Input", "InputLayer", "Model", "Sequential", "activations", "backend", "callbacks",
           "datasets", "get_num_threads", "initializers", "layers", "losses", "metrics",
           "config", "ops", "optimizers", "set_num_threads", "utils"]
