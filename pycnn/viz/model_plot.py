"""``plot_model``: the layer graph drawn as Keras draws it (a box "name (Class)" per layer, its
input and output shapes, arrows along the graph with its branches and merges), without the
graphviz program: layers are laid out by depth (the longest path from an input) and drawn with
matplotlib."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..layers.base import format_shape
from ..layers.symbolic import InputLayer
from . import _model
from ._mpl import finish, pyplot

FONT_SIZE = 10.0
_CHAR_W = 0.602 * FONT_SIZE / 72        # DejaVu Sans Mono advance, inches
_LINE_H = 1.3 * FONT_SIZE / 72
_PAD_X, _PAD_Y = 0.12, 0.08
_GAP_ALONG, _GAP_ACROSS, _MARGIN = 0.45, 0.3, 0.15


@dataclass
class Box:
    """One layer's box: its text lines, level (depth from the inputs), centre and size in
    inches (``y`` grows downwards)."""
    name: str
    lines: list
    level: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    parents: list = field(default_factory=list)


def _shapes_text(tensors) -> str:
    shapes = [format_shape(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _lines(layer, node, show_shapes, show_layer_names, show_dtype, show_layer_activations,
           show_trainable) -> list:
    cls = type(layer).__name__
    lines = [f"{layer.name} ({cls})" if show_layer_names else cls]
    act = getattr(layer, "activation", None)
    if show_layer_activations and isinstance(act, str):
        lines.append(f"activation: {act}")
    if show_dtype:
        lines.append("dtype: float32")
    if show_trainable:
        lines.append(f"trainable: {'Y' if layer.trainable else 'N'}")
    if show_shapes:
        if isinstance(layer, InputLayer):
            text = "[" + _shapes_text(node.outputs) + "]"
            lines += [f"input:  {text}", f"output: {text}"]
        else:
            lines += [f"input:  {_shapes_text(node.inputs)}",
                      f"output: {_shapes_text(node.outputs)}"]
    return lines


def model_layout(model, show_shapes: bool = False, show_layer_names: bool = True,
                 rankdir: str = "TB", show_dtype: bool = False,
                 show_layer_activations: bool = False, show_trainable: bool = False):
    """The layout ``plot_model`` draws, without drawing: ``(boxes, edges, size)`` with
    ``boxes`` ``{layer name: Box}``, ``edges`` a list of ``(from, to)`` layer names and
    ``size`` the picture's ``(width, height)`` in inches."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' (top to bottom) or 'LR' (left to right). "
                         f"Received: rankdir={rankdir!r}")
    graph = _model.graph_of(model)
    opts = (show_shapes, show_layer_names, show_dtype, show_layer_activations, show_trainable)
    boxes: dict = {}
    edges: list = []
    for t in graph.inputs:
        if t.node is not None and t.node.layer.name not in boxes:
            boxes[t.node.layer.name] = Box(t.node.layer.name, _lines(t.node.layer, t.node,
                                                                     *opts))
    for node in graph.nodes:
        name = node.layer.name
        box = boxes.get(name)
        if box is None:
            box = boxes[name] = Box(name, _lines(node.layer, node, *opts))
        for t in node.inputs:
            if t.node is None:
                continue
            src = t.node.layer.name
            if src in boxes and (src, name) not in edges:
                edges.append((src, name))
                box.parents.append(src)
                box.level = max(box.level, boxes[src].level + 1)
    for box in boxes.values():
        width = max(len(s) for s in box.lines) * _CHAR_W + 2 * _PAD_X
        height = len(box.lines) * _LINE_H + 2 * _PAD_Y
        box.w, box.h = width, height
    # along: the level axis (y for TB, x for LR); across: the other one
    along_size = (lambda b: b.h) if rankdir == "TB" else (lambda b: b.w)
    across_size = (lambda b: b.w) if rankdir == "TB" else (lambda b: b.h)
    levels: dict[int, list] = {}
    for box in boxes.values():
        levels.setdefault(box.level, []).append(box)
    across: dict[str, float] = {}
    along = 0.0
    for level in sorted(levels):
        row = levels[level]
        want = {b.name: (sum(across[p] for p in b.parents) / len(b.parents)
                         if b.parents else None) for b in row}
        order = {b.name: i for i, b in enumerate(row)}
        row.sort(key=lambda b: (want[b.name] if want[b.name] is not None else float("inf"),
                                order[b.name]))
        pos, prev_edge = [], None
        for b in row:
            lo = None if prev_edge is None else prev_edge + _GAP_ACROSS + across_size(b) / 2
            c = want[b.name] if want[b.name] is not None else (lo if lo is not None else 0.0)
            if lo is not None:
                c = max(c, lo)
            pos.append(c)
            prev_edge = c + across_size(b) / 2
        targets = [w for w in want.values() if w is not None]
        if targets:                     # centre the row on where its parents are
            shift = sum(targets) / len(targets) - sum(pos) / len(pos)
            pos = [p + shift for p in pos]
        depth = max(along_size(b) for b in row)
        for b, c in zip(row, pos):
            across[b.name] = c
            if rankdir == "TB":
                b.x, b.y = c, along + depth / 2
            else:
                b.x, b.y = along + depth / 2, c
        along += depth + _GAP_ALONG
    lo_x = min(b.x - b.w / 2 for b in boxes.values())
    lo_y = min(b.y - b.h / 2 for b in boxes.values())
    for b in boxes.values():
        b.x += _MARGIN - lo_x
        b.y += _MARGIN - lo_y
    width = max(b.x + b.w / 2 for b in boxes.values()) + _MARGIN
    height = max(b.y + b.h / 2 for b in boxes.values()) + _MARGIN
    return boxes, edges, (width, height)


def plot_model(model, to_file: Optional[str] = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 96, layer_range=None,
               show_layer_activations: bool = False, show_trainable: bool = False):
    """Draw the model's layer graph and save it to ``to_file`` (as ``keras.utils.plot_model``;
    ``to_file=None`` only returns the figure). One box per layer, "name (Class)" (only the
    class with ``show_layer_names=False``), with ``show_shapes`` its input and output shapes,
    arrows from each layer to the layers that read its output; layers sit at their depth (the
    longest path from an input), top to bottom (``rankdir="TB"``) or left to right ("LR").
    A nested model is one box (``expand_nested=True`` is not supported yet).

    Returns:
        the matplotlib Figure with ``fig.boxes`` (``{layer name: Box}``, positions in inches
        from the top left) and ``fig.edges`` (``[(from, to)]``).
    """
    from ..models.model import Model
    if layer_range is not None:
        raise NotImplementedError("plot_model(layer_range=...) is not supported yet")
    if expand_nested and any(isinstance(l, Model) for l in model.layers):
        raise NotImplementedError("plot_model(expand_nested=True) is not supported yet: "
                                  "nested models are drawn as one box")
    boxes, edges, (width, height) = model_layout(model, show_shapes, show_layer_names, rankdir,
                                                 show_dtype, show_layer_activations,
                                                 show_trainable)
    plt = pyplot()
    from matplotlib.patches import Rectangle
    fig = plt.figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for src, dst in edges:
        a, b = boxes[src], boxes[dst]
        if rankdir == "TB":
            down = b.y >= a.y
            start = (a.x, a.y + (a.h / 2 if down else -a.h / 2))
            end = (b.x, b.y - (b.h / 2 if down else -b.h / 2))
        else:
            right = b.x >= a.x
            start = (a.x + (a.w / 2 if right else -a.w / 2), a.y)
            end = (b.x - (b.w / 2 if right else -b.w / 2), b.y)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="black", lw=1.0,
                                    shrinkA=0, shrinkB=0, mutation_scale=12))
    for b in boxes.values():
        ax.add_patch(Rectangle((b.x - b.w / 2, b.y - b.h / 2), b.w, b.h, facecolor="white",
                               edgecolor="black", linewidth=1.0, zorder=2))
        ax.text(b.x, b.y, "\n".join(b.lines), ha="center", va="center", family="monospace",
                fontsize=FONT_SIZE, linespacing=1.3, zorder=3)
    fig.boxes, fig.edges = boxes, edges
    return finish(fig, to_file, dpi=dpi)
