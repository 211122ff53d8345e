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
    if padding in ("same", "causal"):      # causal: left padding k - 1, then valid
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
                   strides: tuple[int, int], padding: str, what: str = "kernel",
                   dilation: tuple[int, int] = (1, 1)) -> tuple:
    """(out_h, out_w) for an NHWC input shape, with an error that shows the arithmetic. A
    dilated kernel covers its effective size ``(k - 1) * dilation + 1``."""
    out = []
    for axis, label in ((1, "height"), (2, "width")):
        n, s = input_shape[axis], strides[axis - 1]
        k = effective_size(window[axis - 1], dilation[axis - 1])
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


def effective_size(k: int, dilation: int) -> int:
    """The extent of a kernel of k taps dilated by ``dilation``: ``(k - 1) * dilation + 1``."""
    return (k - 1) * dilation + 1


def conv_pads(shape_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
              padding: str, dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """(top, left) padding of a (dilated) convolution; "causal" pads only the left (width)."""
    out = []
    for n, k, s, d in zip(shape_hw, kernel, strides, dilation):
        k = effective_size(k, d)
        if padding == "causal":
            out.append(k - 1)
        else:
            out.append(pads(n, k, s, padding)[0])
    if padding == "causal":
        out[0] = 0
    return out[0], out[1]


def deconv_output_length(n: Optional[int], k: int, padding: str, output_padding: Optional[int],
                         stride: int, dilation: int = 1) -> Optional[int]:
    """Keras' output length of a transposed convolution along one axis:
    valid: ``(n - 1) * s + k + output_padding`` (default ``max(k, s) - k``); same: ``n * s``
    without ``output_padding``, else ``(n - 1) * s + k % 2 + output_padding``; k dilated."""
    if n is None:
        return None
    k = effective_size(k, dilation)
    if padding == "valid":
        op = max(k, stride) - k if output_padding is None else output_padding
        return (n - 1) * stride + k + op
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + k % 2 + output_padding


def deconv_pad(k: int, padding: str, output_padding: Optional[int], stride: int,
               dilation: int = 1) -> int:
    """The top/left padding p of the convolution a transposed convolution is the transpose of
    (output cell ``i * stride + tap * dilation - p``): JAX's left padding of the stride-dilated
    input is ``k - 1 - p`` (Keras' conversion, backend_utils), k dilated."""
    k = effective_size(k, dilation)
    if padding == "valid":
        return 0
    if output_padding is None:
        pad_len = stride + k - 2
    else:
        pad_len = k + k % 2 - 2 + output_padding
    left = min(pad_len // 2 + pad_len % 2, k - 1)
    return k - 1 - left


def groups_arg(groups, filters: int) -> int:
    """Keras' checks of ``groups``: a positive integer that divides ``filters``."""
    import numpy as np
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError(f"The number of groups must be a positive integer. "
                         f"Received: groups={groups}.")
    if filters % groups:
        raise ValueError(f"The number of filters must be evenly divisible by the number of "
                         f"groups. Received: groups={groups}, filters={filters}.")
    return int(groups)


def check_groups_divide(groups: int, channels, input_shape) -> None:
    if channels is None:
        raise ValueError(f"The channel dimension of the inputs should be defined. "
                         f"Found `None`. Full input shape received: {_fmt(input_shape)}")
    if channels % groups:
        raise ValueError(f"The number of input channels must be evenly divisible by the number "
                         f"of groups. Received groups={groups}, but the input has {channels} "
                         f"channels (full input shape is {_fmt(input_shape)}).")


def check_strides_dilation(strides: tuple, dilation: tuple) -> None:
    """Keras: a strided convolution cannot also be dilated."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                         f"Received: strides={tuple(strides)} and "
                         f"dilation_rate={tuple(dilation)}")
