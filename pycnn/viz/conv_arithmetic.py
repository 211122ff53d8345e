"""The lecture's drawing of a convolution's arithmetic: the input grid with its padding cells,
where the kernel window goes, the output grid, and ``O = (I - F + 2P) / S + 1`` written with
the numbers (I input size, F kernel (filter) size, P padding, S stride, O output size).

``padding="valid"`` adds nothing; ``padding="same"`` pads as TensorFlow does so that
``O = ceil(I / S)``, the odd cell (when the total padding is odd) going to the bottom/right, in
which case the formula's ``2P`` is written as the sum of the two sides; an integer pads that
many cells on every side (the formula's P, for the lecture's exercises; Keras layers take only
"valid" and "same")."""
from __future__ import annotations

from typing import Optional, Union

from ..layers import conv_utils
from ._mpl import finish, pyplot

Size = Union[int, tuple]


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{what} must be an integer or a pair of integers. Received: "
                             f"{what}={v!r}")
        a, b = v
    else:
        a = b = v
    try:
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer or a pair of integers. Received: "
                         f"{what}={v!r}") from None
    if a <= 0 or b <= 0:
        raise ValueError(f"{what} must be positive. Received: {what}={v!r}")
    return a, b


def _pads(n: int, k: int, s: int, padding) -> tuple[int, int]:
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("valid", "same"):
            raise ValueError(f'padding must be "valid", "same" or a number of cells. '
                             f"Received: padding={padding!r}")
        return conv_utils.pads(n, k, s, p)
    if isinstance(padding, bool) or int(padding) != padding or padding < 0:
        raise ValueError(f'padding must be "valid", "same" or a number of cells >= 0. '
                         f"Received: padding={padding!r}")
    return int(padding), int(padding)


def _axis(i: int, f: int, s: int, padding) -> tuple[int, tuple[int, int], str]:
    """``(O, (P_before, P_after), formula text)`` along one axis."""
    pb, pa = _pads(i, f, s, padding)
    span = i - f + pb + pa
    if span < 0:
        raise ValueError(f"the kernel ({f}) is larger than the padded input "
                         f"({i} + {pb + pa}): I - F + 2P = {span} < 0")
    o = span // s + 1
    two_p = f"2*{pb}" if pb == pa else f"({pb} + {pa})"
    if span % s == 0:
        text = f"O = (I - F + 2P) / S + 1 = ({i} - {f} + {two_p}) / {s} + 1 = {o}"
    else:
        text = (f"O = floor((I - F + 2P) / S) + 1 = floor(({i} - {f} + {two_p}) / {s}) + 1 "
                f"= {o}")
    return o, (pb, pa), text


def output_size(input_size: Size, kernel: Size, strides: Size = 1,
                padding: Union[str, int] = "valid") -> tuple[int, int]:
    """The output size ``(height, width)`` of a convolution or pooling window."""
    (ih, iw), (fh, fw), (sh, sw) = (_pair(input_size, "input_size"), _pair(kernel, "kernel"),
                                    _pair(strides, "strides"))
    return _axis(ih, fh, sh, padding)[0], _axis(iw, fw, sw, padding)[0]


def formula(input_size: Size, kernel: Size, strides: Size = 1,
            padding: Union[str, int] = "valid") -> str:
    """The lecture's ``O = (I - F + 2P) / S + 1`` with the numbers, e.g. for a 5x5 input, a
    3x3 kernel, stride 2, "same" padding: ``"O = (I - F + 2P) / S + 1 = (5 - 3 + 2*1) / 2 + 1
    = 3"`` (``floor(...)`` when S does not divide; one line per axis, "height: ..." and
    "width: ...", when the two axes differ)."""
    (ih, iw), (fh, fw), (sh, sw) = (_pair(input_size, "input_size"), _pair(kernel, "kernel"),
                                    _pair(strides, "strides"))
    th, tw = _axis(ih, fh, sh, padding)[2], _axis(iw, fw, sw, padding)[2]
    return th if th == tw else f"height: {th}\nwidth: {tw}"


def conv_arithmetic(input_size: Size, kernel: Size, strides: Size = 1,
                    padding: Union[str, int] = "valid", to_file: Optional[str] = None,
                    window: tuple = (0, 0), cell: float = 0.32):
    """Draw a convolution's arithmetic: on the left the input (white cells) inside its padding
    (grey hatched cells), the kernel window at output position ``window`` (blue), its next
    position along the row (orange, dashed: the stride) and a dot at the top-left corner of
    every window position; on the right the output grid with the same cells marked; the
    formula with the numbers above.

    Returns:
        the matplotlib Figure with ``fig.formula`` (the text) and ``fig.output_size``.
    """
    (ih, iw), (fh, fw), (sh, sw) = (_pair(input_size, "input_size"), _pair(kernel, "kernel"),
                                    _pair(strides, "strides"))
    oh, (pt, pb), _ = _axis(ih, fh, sh, padding)
    ow, (pl, pr), _ = _axis(iw, fw, sw, padding)
    text = formula((ih, iw), (fh, fw), (sh, sw), padding)
    wi, wj = int(window[0]), int(window[1])
    if not (0 <= wi < oh and 0 <= wj < ow):
        raise ValueError(f"window must be an output position in [0, {oh}) x [0, {ow}). "
                         f"Received: window={window!r}")
    plt = pyplot()
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle
    H, W = ih + pt + pb, iw + pl + pr
    lines = text.count("\n") + 1
    longest = max(len(t) for t in text.split("\n"))
    fig = plt.figure(figsize=(max(cell * (W + ow) + 2.0, 1.0 + 0.075 * longest),
                              cell * max(H, oh) + 1.4 + 0.25 * lines))
    gs = fig.add_gridspec(1, 2, width_ratios=[W, ow], wspace=0.15,
                          top=1 - (0.75 + 0.25 * lines) / fig.get_figheight(), bottom=0.04,
                          left=0.04, right=0.96)
    ax_in, ax_out = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    cells = {True: [], False: []}
    for r in range(H):
        for c in range(W):
            cells[pt <= r < pt + ih and pl <= c < pl + iw].append(Rectangle((c, r), 1, 1))
    ax_in.add_collection(PatchCollection(cells[True], facecolor="white", edgecolor="#555555",
                                         linewidth=0.8))
    if cells[False]:
        ax_in.add_collection(PatchCollection(cells[False], facecolor="#d9d9d9",
                                             edgecolor="#999999", linestyle="--",
                                             linewidth=0.8, hatch="//"))
    ax_in.plot([j * sw + 0.5 for i in range(oh) for j in range(ow)],
               [i * sh + 0.5 for i in range(oh) for j in range(ow)], "o", color="#1f4e9e",
               markersize=2.5, linestyle="none")
    ax_in.add_patch(Rectangle((wj * sw, wi * sh), fw, fh, facecolor="#1f77b4", alpha=0.35,
                              edgecolor="#1f4e9e", linewidth=2.5))
    nxt = (wi, wj + 1) if wj + 1 < ow else ((wi + 1, 0) if wi + 1 < oh else None)
    if nxt is not None:
        ax_in.add_patch(Rectangle((nxt[1] * sw, nxt[0] * sh), fw, fh, fill=False,
                                  edgecolor="#ff7f0e", linestyle="--", linewidth=2))
    out_cells, colours = [], []
    for r in range(oh):
        for c in range(ow):
            out_cells.append(Rectangle((c, r), 1, 1))
            colours.append("#1f77b4" if (r, c) == (wi, wj) else
                           ("#ffbb78" if nxt is not None and (r, c) == nxt else "#e6f0fa"))
    ax_out.add_collection(PatchCollection(out_cells, facecolor=colours, edgecolor="#555555",
                                          linewidth=0.8))
    pad_text = (f"padding {padding!r}" if isinstance(padding, str) else f"padding {padding}") \
        + (f" ({pt}/{pb}, {pl}/{pr})" if (pt, pb, pl, pr) != (0, 0, 0, 0) else "")
    ax_in.set_title(f"input {ih}x{iw}, {pad_text}\nkernel {fh}x{fw}, stride {sh}"
                    + ("" if sh == sw else f"x{sw}"), fontsize=9)
    ax_out.set_title(f"output {oh}x{ow}", fontsize=9)
    for ax, (h, w) in ((ax_in, (H, W)), (ax_out, (oh, ow))):
        ax.set_xlim(-0.1, w + 0.1)
        ax.set_ylim(h + 0.1, -0.1)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(text, fontsize=10, y=1 - 0.15 / fig.get_figheight(), va="top")
    fig.formula, fig.output_size = text, (oh, ow)
    return finish(fig, to_file)
