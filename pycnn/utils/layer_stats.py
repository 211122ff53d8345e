"""Per-layer numbers no Keras summary prints: the receptive field and the FLOPs.

Receptive field: how many input pixels (per axis) one output position sees, and the jump
(the input distance between two neighbouring output positions). From the input (size 1,
jump 1), a window of ``k`` with stride ``s`` (Conv2D, pooling) gives
``size' = size + (k - 1) * jump`` and ``jump' = jump * s``; the lecture's convnet has
3, 4, 8, 10, 18 (jumps 1, 2, 2, 4, 4). Layers that act per position (activations,
normalization, dropout, padding, a Dense on images) keep both; Flatten and Reshape keep the size
but end the grid (no jump); a Dense on flat vectors and global pooling see the whole input;
layers pycnn cannot reason about show ``?``.

FLOPs per sample: multiply-adds counted twice, for Conv2D (``2 * out_h * out_w * filters *
kh * kw * in_channels``), transposed convolutions (``2 * in_h * in_w * in_channels * kh * kw *
filters``) and Dense (``2 * in * units`` per position); pooling counts one
operation per window element per output (``out size * pool size``), global pooling one per
input element; bias additions and element-wise layers count 0.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Optional

from . import summary_table

_PER_POSITION = {
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "BatchNormalization",
    "LayerNormalization", "Dropout", "SpatialDropout2D", "SpatialDropout1D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Identity", "ZeroPadding1D", "ZeroPadding2D",
    "Cropping1D", "Cropping2D", "InputLayer", "Rescaling", "Normalization",
}


@dataclass
class LayerStats:
    """One layer's numbers: ``receptive_field`` and ``jump`` per spatial axis (None when not
    applicable, ``"?"`` when unknown, ``jump`` None once Flatten ended the grid) and ``flops``
    per sample (None when a size is unknown)."""
    receptive_field: object = None
    jump: object = None
    flops: Optional[int] = 0

    def rf_text(self) -> str:
        return _dims_text(self.receptive_field, square="x")

    def jump_text(self) -> str:
        if self.receptive_field in (None, "?") or self.jump is None:
            return self.rf_text() if self.receptive_field == "?" else "-"
        return _dims_text(self.jump, square=None)

    def flops_text(self) -> str:
        return "?" if self.flops is None else str(self.flops)


def _dims_text(dims, square: Optional[str]) -> str:
    if dims is None:
        return "-"
    if dims == "?":
        return "?"
    parts = ["all" if d is None else f"{d:g}" for d in dims]
    if square is None and len(set(parts)) == 1:
        return parts[0]
    return "x".join(parts)


def _window(layer):
    for attr in ("kernel_size", "pool_size"):
        k = getattr(layer, attr, None)
        if k is not None and getattr(layer, "strides", None) is not None:
            return tuple(k), tuple(layer.strides)
    return None


def _prod(shape) -> Optional[int]:
    if any(d is None for d in shape):
        return None
    return int(math.prod(shape))


def _flops(layer, node) -> Optional[int]:
    name = type(layer).__name__
    ins = [t.shape for t in node.inputs]
    out = node.outputs[0].shape if node.outputs else ()
    kernel = getattr(layer, "kernel", None)
    if name.startswith("Global"):
        return _prod(ins[0][1:])
    if hasattr(layer, "pool_size") and _window(layer):
        n = _prod(out[1:])
        return None if n is None else n * int(math.prod(layer.pool_size))
    if kernel is not None and getattr(layer, "kernel_size", None) is not None and \
            "Transpose" not in name:
        n = _prod(out[1:])
        return None if n is None else 2 * n * int(math.prod(kernel.shape[:-1]))
    if kernel is not None and "Transpose" in name:
        n = _prod(ins[0][1:])          # every input value meets the whole kernel once
        return None if n is None else 2 * n * int(math.prod(kernel.shape[:-1]))
    if kernel is not None and name == "Dense":
        n = _prod(out[1:])
        return None if n is None else 2 * n * int(kernel.shape[0])
    from ..models.model import Model
    if isinstance(layer, Model):
        inner = layer_stats(layer)
        if any(s.flops is None for s in inner.values()):
            return None
        return sum(s.flops for s in inner.values())
    return 0


def _whole(input_shape) -> tuple:
    return tuple(input_shape[1:-1])


def layer_stats(model) -> dict[str, LayerStats]:
    """``{layer name: LayerStats}`` for every layer of a built model (the first call of a
    shared layer gives its receptive field; its FLOPs are summed over its calls). A nested
    model counts as one layer: its receptive field composed from its own layers'."""
    return _walk(model._current_graph())[0]


def _nested(layer, first):
    """The state after a nested model: its own output's receptive field (relative to its
    input) composed with ``first``."""
    graph = layer._current_graph()
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return "?"
    inner = _walk(graph)[1].get(graph.outputs[0].id, "?")
    if inner in ("?", None):
        return inner
    (size, jump), (isize, ijump) = first, inner
    if any(r is None for r in isize):          # the whole input, of a size not known
        return (tuple(None for _ in isize), None)
    out_size = tuple(r + (ir - 1) * j for r, ir, j in zip(size, isize, jump))
    return (out_size, None if ijump is None else tuple(j * ij for j, ij in zip(jump, ijump)))


def _walk(graph) -> tuple[dict, dict]:
    state: dict[int, tuple] = {}        # tensor id -> (size, jump) | None | "?"
    whole = _whole(graph.inputs[0].shape) if graph.inputs else ()
    out: dict[str, LayerStats] = {}
    for t in graph.inputs:
        spatial = len(t.shape) - 2
        st = (tuple([1] * spatial), tuple([1] * spatial)) if spatial >= 1 else None
        state[t.id] = st
        if t.node is not None:
            out.setdefault(t.node.layer.name, _stats(st, 0))
    for node in graph.nodes:
        layer = node.layer
        name = type(layer).__name__
        ins = [state.get(t.id, "?") for t in node.inputs]
        first = ins[0] if ins else "?"
        if len(ins) > 1:
            if any(s == "?" for s in ins):
                st = "?"
            elif any(s is None for s in ins):
                st = None
            else:
                size = tuple(max(d) for d in zip(*(s[0] for s in ins)))
                jumps = [s[1] for s in ins]
                jump = None if any(j is None for j in jumps) else \
                    tuple(max(d) for d in zip(*jumps))
                st = (size, jump)
        elif first == "?" or first is None:
            st = first
        elif hasattr(layer, "_current_graph") and first[1] is not None:
            st = _nested(layer, first)
        elif name.startswith("Global"):
            st = (whole, None)
        elif _window(layer) and "Transpose" not in name and first[1] is not None:
            k, s = _window(layer)
            size, jump = first
            st = (tuple(r + (kk - 1) * j for r, kk, j in zip(size, k, jump)),
                  tuple(j * ss for j, ss in zip(jump, s)))
        elif name in ("Flatten", "Reshape"):
            st = (first[0], None)
        elif name == "Dense":
            st = first if len(node.inputs[0].shape) > 2 and first[1] is not None else \
                (whole, None)
        elif name in ("UpSampling2D", "UpSampling1D") and first[1] is not None:
            size = tuple(getattr(layer, "size", ())) or (1,) * len(first[1])
            st = (first[0], tuple(j / u for j, u in zip(first[1], size)))
        elif name in _PER_POSITION:
            st = first
        else:
            st = "?"
        for t in node.outputs:
            state[t.id] = st
        flops = _flops(layer, node)
        prev = out.get(layer.name)
        if prev is None:
            out[layer.name] = _stats(st, flops)
        elif prev.flops is not None:
            prev.flops = None if flops is None else prev.flops + flops
    return out, state


def _stats(st, flops) -> LayerStats:
    if st is None or st == "?":
        return LayerStats(st, None, flops)
    return LayerStats(st[0], st[1], flops)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def summary_lines(model, rows: list, trainable: int, non_trainable: int,
                  show_receptive_field: bool = True, show_flops: bool = True,
                  line_length: Optional[int] = None, positions=None) -> list[str]:
    """``model.summary()``'s lines with the extra columns "Receptive field", "Jump" and
    "FLOPs" (per sample), and a last line with the model's total FLOPs."""
    stats = layer_stats(model)
    headers = list(summary_table.DEFAULT_HEADERS)
    widths = []
    if show_receptive_field:
        headers += ["Receptive field", "Jump"]
        widths += [19, 8]
    if show_flops:
        headers += ["FLOPs"]
        widths += [16]
    if positions is None:
        base = line_length - sum(widths) if line_length is not None else 65
        positions = [int(base * p) for p in (0.45, 0.85, 1.0)]
        for w in widths:
            positions.append(positions[-1] + w)
    if line_length is None:
        line_length = positions[-1] if positions[-1] > 1 else 65 + sum(widths)
    full = []
    for name, cls, shape, params in rows:
        s = stats.get(name, LayerStats("?", None, None))
        cells = [name, cls, shape, params]
        if show_receptive_field:
            cells += [s.rf_text(), s.jump_text()]
        if show_flops:
            cells += [s.flops_text()]
        full.append(tuple(cells))
    lines = summary_table.summary_lines(model.name, full, trainable, non_trainable,
                                        line_length=line_length, positions=positions,
                                        headers=headers)
    if show_flops:
        counted = [stats[r[0]].flops for r in rows if r[0] in stats]
        total = None if any(f is None for f in counted) else sum(counted)
        text = "FLOPs per sample: ?" if total is None else \
            f"FLOPs per sample: {total} ({_human(total)})"
        lines.insert(len(lines) - 1, text)
    return lines


def print_summary(model, rows, trainable, non_trainable, show_receptive_field=True,
                  show_flops=True, print_fn=None, **kwargs) -> None:
    """Print ``summary_lines`` with ``print_fn`` (default ``print``)."""
    print_fn = print if print_fn is None else print_fn
    for line in summary_lines(model, rows, trainable, non_trainable, show_receptive_field,
                              show_flops, **kwargs):
        print_fn(line)


def summary_html(model) -> Optional[str]:
    """The summary as an HTML table (for Jupyter), None for a model not built yet."""
    if not getattr(model, "built", False):
        return None
    rows = model._summary_rows()
    try:
        stats = layer_stats(model)
    except Exception:                       # the plain table still helps
        stats = {}
    total = int(sum(math.prod(v.shape) for v in model.weights))
    trainable = int(sum(math.prod(v.shape) for v in model.trainable_weights))
    e = html.escape
    head = ["Layer (type)", "Output Shape", "Param #", "Receptive field", "FLOPs"]
    out = [f'<div><p><b>Model: "{e(model.name)}"</b></p>',
           '<table style="border-collapse: collapse; font-family: monospace">',
           "<thead><tr>" + "".join(f'<th style="text-align: left; padding: 2px 10px; '
                                   f'border-bottom: 2px solid">{e(h)}</th>' for h in head)
           + "</tr></thead><tbody>"]
    for name, cls, shape, params in rows:
        s = stats.get(name, LayerStats("?", None, None))
        rf = s.rf_text() + ("" if s.jump is None or s.receptive_field in (None, "?")
                            else f" (jump {s.jump_text()})")
        cells = [f"{name} ({cls})", shape, str(params), rf, s.flops_text()]
        out.append("<tr>" + "".join(f'<td style="text-align: left; padding: 2px 10px">'
                                    f"{e(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    size = summary_table.readable_memory_size
    out.append(f"<p>Total params: {total} ({size(total * 4)})<br>"
               f"Trainable params: {trainable} ({size(trainable * 4)})<br>"
               f"Non-trainable params: {total - trainable} "
               f"({size((total - trainable) * 4)})</p></div>")
    return "\n".join(out)
