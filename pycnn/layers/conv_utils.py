"""Output sizes and padding of convolutions and pooling, as TensorFlow computes them.

    valid: out = floor((n - k) / s) + 1                 (an error when <= 0)
    same:  out = ceil(n / s); total = max((out - 1) * s + k - n, 0),
           before = total // 2, after = total - before  (the odd pixel goes bottom/right)
This is the lecture's O = (I - F + 2P) / S + 1 with P chosen by the padding mode.
"""
from __future__ import annotations

from typing import Optional


def output_length(n: Optional[int], k: int, s: int, padding: str) -> Optional[int]:
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - k) // s + 1


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pads(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis."""
    return same_padding(n, k, s) if padding == "same" else (0, 0)


def spatial_output(layer_name: str, input_shape: tuple, window: tuple[int, int],
                   strides: tuple[int, int], padding: str, what: str = "kernel") -> tuple:
    """(out_h, out_w) for an NHWC input shape, with an error that shows the arithmetic."""
    out = []
    for axis, label in ((1, "height"), (2, "width")):
        n, k, s = input_shape[axis], window[axis - 1], strides[axis - 1]
        o = output_length(n, k, s, padding)
        if o is not None and o <= 0:
            raise ValueError(
                f'Layer "{layer_name}": the {what} size {window[0]}x{window[1]} does not fit the '
                f"input of shape {_fmt(input_shape)}: with padding='{padding}' and strides="
                f"{tuple(strides)} the output {label} is floor(({n} - {k}) / {s}) + 1 = {o}, "
                f"which is not positive. Use a smaller {what}, padding='same', or a larger input.")
        out.append(o)
    return tuple(out)


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
