"""Weights on disk: one ``.npz`` file (read without pickle), layout in docs/weights-format.md:

    "__format__"               -> "pycnn-weights-1"
    "NNN/<layer name>/<weight>" -> float32 array, NNN = the layer's index in model.layers
Loading matches layers by order (as Keras does) and checks every shape; the first layer that
does not match is named.
"""
from __future__ import annotations

import os

import numpy as np

FORMAT = "pycnn-weights-1"


def _entries(model):
    for i, layer in enumerate(model.layers):
        for var in layer.weights:
            yield i, layer, var


def save_weights(model, filepath: str, overwrite: bool = True) -> None:
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    arrays = {"__format__": np.array(FORMAT)}
    for i, layer, var in _entries(model):
        arrays[f"{i:03d}/{layer.name}/{var.name.split('/')[-1]}"] = var.value
    tmp = filepath + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, filepath)


def load_weights(model, filepath: str) -> None:
    filepath = os.fspath(filepath)
    try:
        with np.load(filepath, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ValueError("not an .npz archive")
            stored = {k: npz[k] for k in npz.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError, MemoryError):
        raise
    except Exception as err:  # zip, zlib, npy-header errors of a corrupt file alike
        raise ValueError(f"{filepath}: not a pycnn weights file "
                         f"({type(err).__name__}: {err})") from None
    for key, value in stored.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{filepath}: entry {key!r} is not an array")
    fmt = stored.pop("__format__", None)
    if fmt is None or str(fmt) != FORMAT:
        raise ValueError(f"{filepath}: not a pycnn weights file (format {fmt!r}, "
                         f"expected {FORMAT!r})")
    by_layer: dict[int, list] = {}
    for key in sorted(stored):
        parts = key.split("/")
        if len(parts) != 3 or not parts[0].isdigit():
            raise ValueError(f"{filepath}: unexpected entry {key!r}")
        by_layer.setdefault(int(parts[0]), []).append((parts[2], stored[key]))
    weighted = [(i, l) for i, l in enumerate(model.layers) if l.weights]
    if len(weighted) != len(by_layer):
        raise ValueError(f"{filepath} holds weights for {len(by_layer)} layers, but model "
                         f'"{model.name}" has {len(weighted)} layers with weights')
    updates = []
    for (i, layer), (j, saved) in zip(weighted, sorted(by_layer.items())):
        names = {n for n, _ in saved}
        order = {"kernel": 0, "bias": 1}
        saved.sort(key=lambda e: order.get(e[0], 2))
        if len(saved) != len(layer.weights):
            raise ValueError(f'{filepath}: layer "{layer.name}" (index {i}) expects '
                             f"{len(layer.weights)} weights, the file has {len(saved)} for "
                             f"stored layer {j} {sorted(names)}")
        for var, (name, arr) in zip(layer.weights, saved):
            if arr.shape != var.shape:
                raise ValueError(f'{filepath}: layer "{layer.name}" (index {i}) weight '
                                 f"{var.name.split('/')[-1]!r} has shape {var.shape}, the file "
                                 f"has {arr.shape}")
            if arr.dtype.kind != "f":
                raise ValueError(f"{filepath}: weight {name!r} has dtype {arr.dtype}")
            updates.append((var, arr))
    for var, arr in updates:
        var.assign(arr)
