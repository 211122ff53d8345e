"""Which format a file name means, and the calls behind ``model.save``, ``load_model``,
``save_weights`` and ``load_weights`` for the HDF5 and ``.keras`` formats."""
from __future__ import annotations

import os
from typing import Optional

from . import keras_file, keras_h5, legacy_h5


def save_weights(model, filepath: str, kind: str, **kwargs) -> None:
    if kind == "keras":
        raise ValueError(f"{filepath}: save_weights() writes weights only; use a name ending "
                         "in .weights.h5 (or model.save() for a .keras file)")
    if kind == "keras3-weights":
        _write_h5(filepath, lambda h5: keras_h5.write(model, h5, include_optimizer=False))
    else:
        _write_h5(filepath, lambda h5: legacy_h5.write_weights(model, h5))


def _write_h5(filepath: str, fill) -> None:
    """An HDF5 file built in memory, then written atomically."""
    import io
    from ..utils.file_io import atomic_write
    buf = io.BytesIO()
    with keras_h5.open_weights(buf, "w") as h5:
        fill(h5)
    with atomic_write(filepath) as f:
        f.write(buf.getvalue())


def load_weights(model, filepath: str, kind: str, skip_mismatch: bool = False,
                 by_name: bool = False, **kwargs) -> None:
    if kind == "keras":
        loaded = keras_file.load(filepath, compile=False)
        model.set_weights(loaded.get_weights())
        return
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No such file: {filepath}")
    with keras_h5.open_weights(filepath, "r") as h5:
        if "layer_names" in h5.attrs or "model_weights" in h5:
            group = h5["model_weights"] if "model_weights" in h5 else h5
            legacy_h5.read_weights(model, group, filepath, by_name=by_name,
                                   skip_mismatch=skip_mismatch)
        elif "layers" in h5 or "vars" in h5:
            keras_h5.read(model, h5, filepath, skip_mismatch=skip_mismatch,
                          load_optimizer=False)
        else:
            raise ValueError(f"{filepath}: not a Keras weights file (neither Keras 3's nor "
                             "tf.keras 2's layout)")


def save_model(model, filepath, kind: Optional[str] = None, include_optimizer: bool = True,
               **kwargs) -> None:
    """``model.save``: ``.keras`` (Keras 3) or ``.h5`` (tf.keras 2)."""
    filepath = os.fspath(filepath)
    kind = kind or _kind_of(filepath)
    if kind == "keras":
        keras_file.save(model, filepath, include_optimizer)
    elif kind in ("h5", "keras3-weights"):
        _write_h5(filepath, lambda h5: legacy_h5.write_model(model, h5))
    else:
        raise ValueError(f"Invalid filepath extension for saving: {filepath!r}. Please add "
                         "either a `.keras` extension for the native Keras format "
                         "(recommended) or a `.h5` extension.")


def _kind_of(filepath: str) -> str:
    from ..models.saving import _kind
    if not (filepath.endswith(".keras") or filepath.endswith(".h5") or
            filepath.endswith(".hdf5")):
        return "unknown"
    return _kind(filepath)


def load_model(filepath, custom_objects: Optional[dict] = None, compile: bool = True,
               safe_mode: bool = True):
    """A model saved by ``model.save`` (pycnn or Keras): ``.keras`` or tf.keras 2 ``.h5``."""
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"File not found: filepath={filepath}. Please ensure the file "
                                "is an accessible `.keras` zip file.")
    if filepath.endswith(".keras") or _is_zip(filepath):
        return keras_file.load(filepath, custom_objects, compile, safe_mode)
    if filepath.endswith(".h5") or filepath.endswith(".hdf5"):
        with keras_h5.open_weights(filepath, "r") as h5:
            model, training = legacy_h5.read_model(h5, filepath, custom_objects)
        if compile and training:
            _compile_legacy(model, training, custom_objects)
        return model
    raise ValueError(f"File format not supported: filepath={filepath}. pycnn reads .keras "
                     "files and tf.keras 2 .h5 files.")


def _is_zip(filepath: str) -> bool:
    with open(filepath, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _compile_legacy(model, training: dict, custom_objects) -> None:
    from .. import optimizers
    opt = training.get("optimizer_config")
    try:
        optimizer = optimizers.deserialize(opt) if isinstance(opt, dict) else "rmsprop"
    except (ValueError, TypeError):
        optimizer = "rmsprop"
    loss = training.get("loss")
    if loss is None:
        return
    metrics = training.get("metrics")
    if isinstance(metrics, list) and metrics and isinstance(metrics[0], list) and \
            len(model.outputs) == 1:
        metrics = metrics[0]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                  loss_weights=training.get("loss_weights"))
