"""`pycnn.data`: input pipelines, spelled as `tf.data` (`pycnn.data.Dataset`, `AUTOTUNE`).

The implementation lives in `pycnn.utils.dataset`; see `Dataset`.
"""

from .utils.dataset import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    Dataset,
)

__all__ = ["AUTOTUNE", "Dataset", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY"]
