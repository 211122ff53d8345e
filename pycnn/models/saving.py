"""Weights and models on disk, by file name:

- ``.npz``: pycnn's own weights file (read without pickle), layout in docs/weights-format.md;
- ``.weights.h5`` (Keras 3), ``.h5`` (tf.keras 2), ``.keras`` (Keras 3's model zip): see
  pycnn/saving/.

Weights are matched to the model's by layer name (or position, when every name differs, as in
a model built in another session) and, within a layer, by weight name and shape: never by
position alone.
"""
from __future__ import annotations

import json
import os

import numpy as np

FORMAT = "pycnn-weights-2"
OLD_FORMAT = "pycnn-weights-1"


def _kind(filepath: str) -> str:
    name = os.fspath(filepath)
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".weights.h5"):
        return "keras3-weights"
    if name.endswith(".h5") or name.endswith(".hdf5"):
        return "h5"
    if name.endswith(".keras"):
        return "keras"
    return "npz"


def save_weights(model, filepath, overwrite: bool = True, **kwargs) -> None:
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    kind = _kind(filepath)
    if kind != "npz":
        from ..saving import dispatch
        return dispatch.save_weights(model, filepath, kind, **kwargs)
    manifest, arrays = [], {}
    for i, layer in enumerate(model.layers):
        names = [v.name.rsplit("/", 1)[-1] for v in layer.weights]
        if not names:
            continue
        manifest.append({"index": i, "layer": layer.name, "weights": names})
        for j, v in enumerate(layer.weights):
            arrays[f"{i:04d}/{j:03d}"] = v.value
    arrays["__format__"] = np.array(FORMAT)
    arrays["__manifest__"] = np.array(json.dumps(manifest))
    from ..utils.file_io import atomic_write
    with atomic_write(filepath) as f:
        np.savez(f, **arrays)


def load_weights(model, filepath, skip_mismatch: bool = False, by_name: bool = False,
                 **kwargs) -> None:
    filepath = os.fspath(filepath)
    kind = _kind(filepath)
    if kind != "npz":
        from ..saving import dispatch
        return dispatch.load_weights(model, filepath, kind, skip_mismatch=skip_mismatch,
                                     by_name=by_name, **kwargs)
    from ..utils.safe_npz import load_npz
    stored = load_npz(filepath)
    fmt = stored.pop("__format__", None)
    fmt = None if fmt is None else str(fmt)
    if fmt == FORMAT:
        try:
            manifest = json.loads(str(stored.pop("__manifest__")))
            layers = [(e["layer"], [(w, stored[f"{e['index']:04d}/{j:03d}"])
                                    for j, w in enumerate(e["weights"])]) for e in manifest]
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{filepath}: corrupt pycnn weights file ({err})") from None
    elif fmt == OLD_FORMAT:
        layers = _old_layout(stored, filepath)
    else:
        raise ValueError(f"{filepath}: not a pycnn weights file (format {fmt!r}, expected "
                         f"{FORMAT!r})")
    assign_layers(model, layers, filepath, skip_mismatch, by_name)


def _old_layout(stored: dict, filepath: str) -> list:
    by_layer: dict[int, tuple] = {}
    for key, value in stored.items():
        parts = key.split("/")
        if len(parts) < 3 or not parts[0].isdigit():
            raise ValueError(f"{filepath}: unexpected entry {key!r}")
        name, weight = "/".join(parts[1:-1]), parts[-1]
        entry = by_layer.setdefault(int(parts[0]), (name, []))
        entry[1].append((weight, value))
    return [by_layer[i] for i in sorted(by_layer)]


def assign_layers(model, stored: list, filepath: str, skip_mismatch: bool = False,
                  by_name: bool = False) -> None:
    """Give each weighted layer of ``model`` its stored arrays: ``stored`` is a list of
    ``(layer name, [(weight name, array), ...])``. Every match is checked before any weight
    changes (all or nothing)."""
    weighted = [l for l in model.layers if l.weights]
    names = {name for name, _ in stored}
    pairs = []
    if by_name or all(l.name in names for l in weighted):
        table = dict(stored)
        for layer in weighted:
            if layer.name in table:
                pairs.append((layer, table[layer.name]))
            elif not (by_name or skip_mismatch):
                raise ValueError(f'{filepath}: no weights stored for layer "{layer.name}"')
    else:
        if len(stored) != len(weighted):
            raise ValueError(f"{filepath} holds weights for {len(stored)} layers, but model "
                             f'"{model.name}" has {len(weighted)} layers with weights')
        pairs = list(zip(weighted, [w for _, w in stored]))
    updates = []
    for layer, saved in pairs:
        plan = _match_weights(layer, saved, filepath, skip_mismatch)
        updates.extend(plan)
    for var, arr in updates:
        var.assign(arr)


def _match_weights(layer, saved: list, filepath: str, skip_mismatch: bool) -> list:
    wanted = [(v.name.rsplit("/", 1)[-1], v) for v in layer.weights]
    saved_names = [n.split(":")[0].rsplit("/", 1)[-1] for n, _ in saved]
    if len(saved) != len(wanted):
        if skip_mismatch:
            return []
        raise ValueError(f'{filepath}: layer "{layer.name}" expects {len(wanted)} weights '
                         f"{[n for n, _ in wanted]}, the file has {len(saved)} {saved_names}")
    by_name = dict(zip(saved_names, (a for _, a in saved)))
    use_names = len(by_name) == len(saved) and set(by_name) == {n for n, _ in wanted}
    out = []
    for k, (name, var) in enumerate(wanted):
        arr = by_name[name] if use_names else saved[k][1]
        arr = np.asarray(arr)
        if arr.shape != var.shape:
            if skip_mismatch:
                return []
            raise ValueError(f'{filepath}: layer "{layer.name}" weight {name!r} has shape '
                             f"{var.shape}, the file has {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{filepath}: weight {name!r} of layer \"{layer.name}\" has dtype "
                             f"{arr.dtype}")
        out.append((var, arr))
    return out


def save_model(model, filepath, overwrite: bool = True, **kwargs) -> None:
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    from ..saving import dispatch
    dispatch.save_model(model, filepath, _kind(filepath), **kwargs)
