"""A grid of images with their labels, wrong predictions in red: ``show_images(x, y, preds)``."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ._model import display_image
from ._mpl import finish, pyplot

WRONG_COLOR = "#d62020"


def class_indices(labels, where: str) -> np.ndarray:
    """Class indices from labels: integers ``(N,)`` / ``(N, 1)``, one-hot or probabilities
    ``(N, C)`` (argmax), or one sigmoid probability ``(N, 1)`` (> 0.5)."""
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
        if a.dtype.kind == "f" and np.any(np.mod(a, 1) != 0):
            return (a > 0.5).astype(np.int64)
    if a.ndim == 2:
        return np.argmax(a, axis=1).astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"{where}: expected class indices (N,) or scores (N, classes). "
                         f"Received shape {a.shape}")
    if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(np.mod(a, 1) == 0)):
        raise ValueError(f"{where}: expected integer class indices (or scores of shape "
                         f"(N, classes)). Received values of dtype {a.dtype}")
    return a.astype(np.int64)


def _name(i: int, class_names: Optional[Sequence[str]]) -> str:
    if class_names is not None and 0 <= i < len(class_names):
        return str(class_names[i])
    return str(int(i))


def show_images(x, y=None, predictions=None, class_names: Optional[Sequence[str]] = None,
                n: int = 25, ncols: Optional[int] = None, cmap: Optional[str] = None,
                to_file: Optional[str] = None, figsize: Optional[tuple] = None):
    """The first ``n`` images of ``x`` in a grid, each titled with its label.

    With ``predictions`` (class indices or the model's output scores), each title is the
    predicted class; a wrong prediction gets a red title ``"3 (true 5)"`` and a red frame.

    Args:
        x: images ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)``, uint8 or float (values
            in 0..1 or 0..255 are shown as they are; other ranges are stretched).
        y: true labels (class indices or one-hot), optional.
        predictions: predicted class indices or scores ``(N, classes)``, optional.
        class_names: names for the class indices.
        cmap: the colormap of grey images (default ``"binary"``: black ink on white, as the
            book shows MNIST digits).
        to_file: also save the figure there (PNG).

    Returns:
        the matplotlib Figure; ``fig.wrong`` lists the positions (in ``x``) of the shown images
        whose prediction is wrong.
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of images (N, H, W[, C]). Received: x of "
                         f"shape {x.shape}")
    count = min(int(n), len(x))
    if count <= 0:
        raise ValueError(f"n must be positive. Received: n={n}")
    t = None if y is None else class_indices(y, "y")
    p = None if predictions is None else class_indices(predictions, "predictions")
    for arr, what in ((t, "y"), (p, "predictions")):
        if arr is not None and len(arr) < count:
            raise ValueError(f"{what} has {len(arr)} labels for {count} images")
    ncols = int(ncols) if ncols else int(math.ceil(math.sqrt(count)))
    nrows = int(math.ceil(count / ncols))
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (1.7 * ncols, 1.9 * nrows),
                             squeeze=False)
    wrong = []
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= count:
            ax.axis("off")
            continue
        img, grey = display_image(x[i])
        ax.imshow(img, cmap=(cmap or "binary") if grey else None, vmin=0, vmax=1)
        color = "black"
        if p is not None:
            title = _name(p[i], class_names)
            if t is not None and p[i] != t[i]:
                title += f" (true {_name(t[i], class_names)})"
                color = WRONG_COLOR
                wrong.append(i)
                for spine in ax.spines.values():
                    spine.set_edgecolor(WRONG_COLOR)
                    spine.set_linewidth(3)
        elif t is not None:
            title = _name(t[i], class_names)
        else:
            title = ""
        ax.set_title(title, color=color, fontsize=9)
    fig.tight_layout()
    fig.wrong = wrong
    return finish(fig, to_file)
