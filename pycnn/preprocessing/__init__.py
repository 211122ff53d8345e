"""tf.keras 2's legacy preprocessing API: ``pycnn.preprocessing.image.ImageDataGenerator``
(also importable from here)."""
from . import image
from .image import (DirectoryIterator, ImageDataGenerator, Iterator, NumpyArrayIterator,
                    apply_affine_transform)

__all__ = ["DirectoryIterator", "ImageDataGenerator", "Iterator", "NumpyArrayIterator",
           "apply_affine_transform", "image"]
