"""Weights in Keras 3's HDF5 layout (``model.weights.h5`` inside a ``.keras`` file, and
``.weights.h5`` files): each layer's variables under a path made of its container and its
class name in snake case, unique within the container (``layers/dense``, ``layers/dense_1``,
``layers/sequential/layers/dense``), as ``vars/0``, ``vars/1``, ... in the layer's weight order;
the ``vars`` group's ``name`` attribute holds the layer's name. The optimizer's state is under
``optimizer/vars``. A layer shared by several containers is stored once, at its first place.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

#: Largest array pycnn reads from a weights file (elements): a bound checked before reading.
MAX_ELEMENTS = 2**31 - 1


def snake(name: str) -> str:
    """Keras' ``naming.to_snake_case``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _children(model) -> list:
    return list(model.layers)


def _walk(model, prefix: str, visited: set, out: list) -> None:
    """(path, layer) for every layer below ``model``, in Keras' order and names."""
    from ..models.functional_config import keras_class_name
    from ..models.model import Model
    used: dict[str, int] = {}
    for layer in _children(model):
        base = snake(keras_class_name(layer))
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        if id(layer) in visited:
            continue
        visited.add(id(layer))
        path = f"{prefix}/{name}" if prefix else name
        out.append((path, layer))
        if isinstance(layer, Model):
            _walk(layer, f"{path}/layers", visited, out)


def layer_paths(model) -> list:
    out: list = []
    _walk(model, "layers", {id(model)}, out)
    return out


def write(model, h5, include_optimizer: bool = True) -> None:
    """Write the model's (and optimizer's) variables into the open h5py file or group."""
    from ..models.model import Model
    g = h5.create_group("vars")
    g.attrs["name"] = model.name
    for path, layer in layer_paths(model):
        g = h5.create_group(f"{path}/vars")
        g.attrs["name"] = layer.name
        if isinstance(layer, Model):
            continue
        for i, v in enumerate(layer.weights):
            g.create_dataset(str(i), data=np.asarray(v.value, np.float32))
    opt = getattr(model, "optimizer", None)
    if include_optimizer and opt is not None and hasattr(opt, "save_own_variables"):
        g = h5.create_group("optimizer/vars")
        g.attrs["name"] = getattr(opt, "name", "optimizer")
        store: dict = {}
        opt.save_own_variables(store)
        for k, value in store.items():
            g.create_dataset(str(k), data=np.asarray(value))


def _read_array(ds, where: str, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    import h5py
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{where} is not an array")
    if ds.dtype.kind not in "fiu" or ds.size > max_elements:
        raise ValueError(f"{where} has dtype {ds.dtype} and {ds.size} values; expected a "
                         "numeric array")
    return ds[()]


def read(model, h5, filepath: str, skip_mismatch: bool = False,
         load_optimizer: bool = True) -> None:
    """Load the variables of every layer of ``model`` from Keras 3's layout, checking every
    count and shape before any weight changes."""
    from ..models.model import Model
    updates = []
    problems = []
    for path, layer in layer_paths(model):
        if isinstance(layer, Model) or not layer.weights:
            continue
        group = h5.get(f"{path}/vars")
        if group is None:
            problems.append(f'layer "{layer.name}" (no group {path!r} in the file)')
            continue
        keys = sorted(group.keys(), key=lambda s: int(s) if s.isdigit() else -1)
        if len(keys) != len(layer.weights):
            problems.append(f'layer "{layer.name}" expects {len(layer.weights)} variables, '
                            f"the file has {len(keys)} at {path!r}")
            continue
        # shapes compared before anything is read (a file cannot make pycnn inflate more
        # than the model holds)
        shapes = [getattr(group[k], "shape", None) for k in keys]
        bad = [(v, s) for v, s in zip(layer.weights, shapes) if tuple(s or ()) != v.shape]
        if bad:
            v, s = bad[0]
            problems.append(f'layer "{layer.name}" weight {v.name.rsplit("/", 1)[-1]!r} has '
                            f"shape {v.shape}, the file has {s} at {path!r}")
            continue
        arrays = [_read_array(group[k], f"{filepath}: {path}/vars/{k}") for k in keys]
        updates.extend(zip(layer.weights, arrays))
    if problems and not skip_mismatch:
        raise ValueError(f"{filepath}: cannot load the weights: " + "; ".join(problems))
    for var, arr in updates:
        var.assign(arr)
    opt = getattr(model, "optimizer", None)
    group = h5.get("optimizer/vars")
    if load_optimizer and opt is not None and group is not None and \
            hasattr(opt, "load_own_variables"):
        store = {k: _read_array(group[k], f"{filepath}: optimizer/vars/{k}")
                 for k in group.keys()}
        unbuilt = len(opt.variables)            # iterations, learning rate, ...
        if len(store) != unbuilt and hasattr(opt, "build"):
            opt.build(model.trainable_weights)  # the saved one had trained: its slots too
        opt.load_own_variables(store)


def open_weights(path_or_file, mode: str, filepath: Optional[str] = None):
    """h5py.File over a path or file object, with h5py's errors as ValueError naming the
    file."""
    try:
        import h5py
    except ImportError:
        raise ImportError("Reading and writing HDF5 (.h5) files needs h5py: "
                          "pip install h5py") from None
    try:
        return h5py.File(path_or_file, mode)
    except (OSError, ValueError) as err:
        if mode == "r":
            raise ValueError(f"{filepath or path_or_file}: not a readable HDF5 file ({err})") \
                from None
        raise
