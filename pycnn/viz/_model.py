"""Looking inside a model: the node of a layer in its graph, sub-models that share its weights
(``Model(model.input, layer.output)``, ``Model(layer.output, model.output)``), and one forward
and backward pass that returns the gradient with respect to the sub-model's input.

The backward pass writes the layers' weight gradients (``Variable.grad``) as training does: run
these functions outside ``fit``."""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from ..layers.base import Layer


def graph_of(model):
    """The graph of a built model (a functional, Sequential or traced subclassed model)."""
    if not getattr(model, "built", False) or not hasattr(model, "_current_graph"):
        raise ValueError(f"expected a built pycnn model (call it on data or give it an Input "
                         f"first). Received: model={model!r}")
    return model._current_graph()


def find_node(model, layer: Union[str, int, Layer]):
    """The first node (call) of ``layer`` (a name, an index into ``model.layers`` or a layer
    object) in ``model``'s graph."""
    graph = graph_of(model)
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        layer = model.get_layer(index=int(layer))
    nodes = list(graph.nodes)
    for node in nodes:
        if (node.layer is layer) if isinstance(layer, Layer) else (node.layer.name == layer):
            return node
    names = [n.layer.name for n in nodes]
    got = layer.name if isinstance(layer, Layer) else layer
    raise ValueError(f"No such layer: {got}. Existing layers are: {names}.")


def last_image_node(model):
    """The node of the last convolution (a layer with a kernel_size) whose output is a batch of
    images (rank 4); else the last node with a rank-4 output."""
    nodes = [n for n in graph_of(model).nodes if len(n.outputs) == 1 and
             len(n.outputs[0].shape) == 4]
    convs = [n for n in nodes if hasattr(n.layer, "kernel_size")]
    if convs:
        return convs[-1]
    if nodes:
        return nodes[-1]
    raise ValueError(f'Model "{model.name}" has no layer with an image output '
                     "(batch, height, width, channels)")


def submodel(model, inputs: list, outputs: list, suffix: str):
    """A functional model over ``model``'s tensors (it shares the layers and their weights)."""
    from ..models.model import Model
    try:
        return Model(list(inputs), list(outputs), name=f"{model.name}_{suffix}")
    except ValueError as err:
        raise ValueError(f'Model "{model.name}": cannot cut the model there ({err})') from None


def as_batch(model, image, where: str) -> np.ndarray:
    """One image (``(H, W, C)``, ``(1, H, W, C)``, or ``(H, W)`` for a one-channel input) as a
    float32 batch of one, checked against the model's input shape."""
    x = np.asarray(image)
    want = graph_of(model).inputs[0].shape
    if x.ndim == len(want) - 2 and want[-1] == 1:
        x = x[..., None]
    if x.ndim == len(want) - 1:
        x = x[None]
    if x.ndim != len(want) or x.shape[0] != 1:
        raise ValueError(f"{where}: expected one image of shape {tuple(want[1:])} (or a batch "
                         f"of one). Received: image of shape {np.shape(image)}")
    return model._prepare_inputs(x, where)[0]


def forward(model, x: np.ndarray, logits: bool = False) -> np.ndarray:
    """The first output of ``model`` for the batch ``x`` (inference mode); with ``logits``
    the output layer stops before its activation when it can."""
    plan = model.compiled_plan(False, logits=(bool(logits),))
    with model._running(plan):
        return np.array(plan.forward([x])[0], dtype=np.float32, copy=True)


def forward_backward(model, x: np.ndarray,
                     dout: Callable[[np.ndarray], np.ndarray],
                     logits: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(output, d(sum(dout * output)) / d(input), logits_used)`` for the batch ``x``:
    ``dout(output)`` gives the weights of the output's elements."""
    plan = model.compiled_plan(False, logits=(bool(logits),), input_grads=True)
    with model._running(plan):
        out = np.array(plan.forward([x])[0], dtype=np.float32, copy=True)
        d = np.ascontiguousarray(dout(out), dtype=np.float32)
        _, grads = plan.backward([d], return_input_grads=True)
        g = grads[0]
        g = np.zeros_like(x) if g is None else np.array(g, dtype=np.float32, copy=True)
    return out, g.reshape(x.shape), bool(plan.logits_outputs[0])


def display_image(img: np.ndarray) -> tuple[np.ndarray, Optional[str]]:
    """An image ready for ``imshow``: ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1] (values in
    0..255 divided by 255, other ranges stretched), and the colormap for a grey image."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[-1] not in (3, 4):
        a = a.mean(axis=-1)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image (height, width[, channels]). Received shape "
                         f"{np.shape(img)}")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1:
        pass
    elif lo >= 0 and hi <= 255:
        a = a / 255.0
    else:
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return a, ("gray" if a.ndim == 2 else None)
