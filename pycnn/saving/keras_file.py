"""Keras 3's ``.keras`` file: a zip of ``metadata.json``, ``config.json`` (the model's
serialized config, with its compile config) and ``model.weights.h5`` (keras_h5.py's layout).
Written atomically; read with every member's size checked before it is inflated."""
from __future__ import annotations

import datetime
import io
import json
import zipfile
from typing import Optional

from . import keras_h5

#: Largest member pycnn inflates from a .keras file, and largest compression ratio it trusts.
MAX_MEMBER_BYTES = 8 * 2**30
MAX_RATIO = 1000
FORMAT_VERSION = "3.10.0"   # the Keras saving format written (Keras 3's .keras layout)


def save(model, filepath: str, include_optimizer: bool = True) -> None:
    from ..models import functional_config
    from ..utils.file_io import atomic_write
    config = functional_config.serialize_model(model)
    if not include_optimizer:
        config.pop("compile_config", None)
    from .. import __version__
    metadata = {"keras_version": FORMAT_VERSION, "producer": f"pycnn {__version__}",
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = io.BytesIO()
    with keras_h5.open_weights(weights, "w") as h5:
        keras_h5.write(model, h5, include_optimizer)
    with atomic_write(filepath) as f:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr("metadata.json", json.dumps(metadata))
            zf.writestr("config.json", json.dumps(config))
            zf.writestr("model.weights.h5", weights.getvalue(),
                        compress_type=zipfile.ZIP_STORED)


def _member(zf: zipfile.ZipFile, name: str, filepath: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ValueError(f"{filepath}: not a Keras model file (no {name!r} inside)") from None
    if info.file_size > MAX_MEMBER_BYTES or (
            info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_RATIO):
        raise ValueError(f"{filepath}: member {name!r} declares {info.file_size} bytes from "
                         f"{info.compress_size} compressed; refusing to inflate it")
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ValueError(f"{filepath}: member {name!r} is not the size it declares")
    return data


def load(filepath: str, custom_objects: Optional[dict] = None, compile: bool = True,
         safe_mode: bool = True):
    from ..models import functional_config
    try:
        zf = zipfile.ZipFile(filepath)
    except (zipfile.BadZipFile, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{filepath}: not a .keras file ({err})") from None
    with zf:
        try:
            config = json.loads(_member(zf, "config.json", filepath))
        except ValueError as err:
            raise ValueError(f"{filepath}: corrupt config.json ({err})") from None
        from ..layers.lambda_layer import safe_mode_scope
        try:
            with safe_mode_scope(safe_mode):
                model = functional_config.deserialize_layer(config, custom_objects, filepath)
        except ValueError as err:
            if filepath in str(err):
                raise
            raise ValueError(f"{filepath}: {err}") from None
        if not model.built:
            shape = (config.get("build_config") or {}).get("input_shape")
            if shape is not None:
                model.build(tuple(shape))
        compile_config = config.get("compile_config")
        if compile and compile_config:
            compile_from_config(model, compile_config, custom_objects)
        weights = _member(zf, "model.weights.h5", filepath)
    with keras_h5.open_weights(io.BytesIO(weights), "r", filepath) as h5:
        keras_h5.read(model, h5, filepath)
    return model


def compile_from_config(model, cfg: dict, custom_objects: Optional[dict] = None) -> None:
    """``model.compile`` from a saved compile config."""
    from .. import losses, metrics, optimizers, serialization

    def loss_of(v):
        if isinstance(v, (list, tuple)):
            return [loss_of(x) for x in v]
        if isinstance(v, dict) and "class_name" not in v:
            return {k: loss_of(x) for k, x in v.items()}
        if isinstance(v, dict):
            return serialization.deserialize(v, vars(losses), custom_objects, "loss")
        if isinstance(v, str):          # a custom loss function saved by its name
            found = serialization.get_registered_object(v, custom_objects)
            if found is not None:
                return found
        return v

    def metric_of(v):
        if isinstance(v, (list, tuple)):
            return [metric_of(x) for x in v]
        if isinstance(v, dict) and "class_name" not in v:
            return {k: metric_of(x) for k, x in v.items()}
        if isinstance(v, dict):
            return serialization.deserialize(v, vars(metrics), custom_objects, "metric")
        if isinstance(v, str):
            found = serialization.get_registered_object(v, custom_objects)
            if found is not None:
                return found
        return v

    opt = cfg.get("optimizer")
    optimizer = optimizers.deserialize(opt) if isinstance(opt, dict) else opt
    model.compile(optimizer=optimizer or "rmsprop", loss=loss_of(cfg.get("loss")),
                  loss_weights=cfg.get("loss_weights"), metrics=metric_of(cfg.get("metrics")),
                  weighted_metrics=metric_of(cfg.get("weighted_metrics")))
