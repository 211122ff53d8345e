"""``utils.plot_model``, as ``keras.utils.plot_model`` (drawn by ``pycnn.viz.model_plot`` with
matplotlib, which is imported only when a model is drawn; no graphviz needed)."""
from __future__ import annotations

from typing import Optional


def plot_model(model, to_file: Optional[str] = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 96, layer_range=None,
               show_layer_activations: bool = False, show_trainable: bool = False):
    """Draw the model's layer graph to ``to_file`` and return the matplotlib Figure: a box per
    layer, "name (Class)", with ``show_shapes`` its input and output shapes, arrows along the
    graph (branches and merges included), top to bottom (``rankdir="TB"``) or left to right
    (``"LR"``). See ``pycnn.viz.plot_model``."""
    from ..viz.model_plot import plot_model as draw
    return draw(model, to_file=to_file, show_shapes=show_shapes, show_dtype=show_dtype,
                show_layer_names=show_layer_names, rankdir=rankdir,
                expand_nested=expand_nested, dpi=dpi, layer_range=layer_range,
                show_layer_activations=show_layer_activations, show_trainable=show_trainable)
