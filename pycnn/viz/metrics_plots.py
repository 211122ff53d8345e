"""The classification pictures of the computer-vision lecture: the confusion matrix, ROC and
precision-recall curves. The numbers (``confusion_matrix``, ``roc_curve``,
``precision_recall_curve``, ``auc``) need no matplotlib."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _C
from ._mpl import finish, pyplot
from .images import class_indices

_NORMALIZE = (None, "true", "pred", "all")


def confusion_matrix(y_true, y_pred, num_classes: Optional[int] = None,
                     normalize: Optional[str] = None, weights=None) -> np.ndarray:
    """The confusion matrix: ``cm[i, j]`` counts the samples of true class ``i`` predicted as
    class ``j`` (rows true, columns predicted, as ``tf.math.confusion_matrix`` and scikit-learn).

    Args:
        y_true, y_pred: class indices ``(N,)``, or one-hot labels / predicted scores
            ``(N, classes)`` (argmax), or one sigmoid probability per sample ``(N, 1)`` (> 0.5).
        num_classes: the matrix size; default one more than the largest index (TensorFlow's).
        normalize: None (integer counts), ``"true"`` (each row sums to 1), ``"pred"`` (each
            column sums to 1) or ``"all"`` (everything sums to 1), as scikit-learn; an empty
            row or column stays 0.
        weights: a weight per sample (the matrix is then float).

    Returns:
        an int64 matrix ``(num_classes, num_classes)`` (float64 when normalized or weighted).
    """
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}. Received: "
                         f"normalize={normalize!r}")
    t = class_indices(y_true, "y_true")
    p = class_indices(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same number of samples. Received: "
                         f"{len(t)} and {len(p)}")
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("class indices must be non-negative")
    k = int(num_classes) if num_classes is not None else \
        (int(max(t.max(), p.max())) + 1 if t.size else 0)
    if t.size and max(t.max(), p.max()) >= k:
        raise ValueError(f"a class index ({int(max(t.max(), p.max()))}) is out of range for "
                         f"num_classes={k}")
    w = None
    if weights is not None:
        w = np.ascontiguousarray(np.broadcast_to(np.asarray(weights, np.float32), t.shape))
    cm = np.zeros((k, k), np.float64)
    if t.size:
        _C.confusion_matrix(np.ascontiguousarray(t), np.ascontiguousarray(p), w, cm)
    if normalize is None:
        return cm if w is not None else np.rint(cm).astype(np.int64)
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    total = cm.sum(axis=axis, keepdims=axis is not None)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, cm / np.where(total > 0, total, 1), 0.0)
    return out


def plot_confusion_matrix(y_true, y_pred, class_names: Optional[Sequence[str]] = None,
                          num_classes: Optional[int] = None, normalize: Optional[str] = None,
                          cmap: str = "Blues", to_file: Optional[str] = None,
                          figsize: Optional[tuple] = None):
    """The confusion matrix drawn as scikit-learn's ``ConfusionMatrixDisplay`` draws it: a
    coloured grid, each cell written in (white on dark cells), "True label" down the side and
    "Predicted label" along the bottom.

    Returns:
        the matplotlib Figure; ``fig.matrix`` holds the matrix.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes, normalize)
    k = cm.shape[0]
    names = [str(c) for c in class_names] if class_names is not None else \
        [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names for {k} classes")
    plt = pyplot()
    side = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=figsize or (side + 1, side))
    im = ax.imshow(cm, interpolation="nearest", cmap=cmap)
    fig.colorbar(im, ax=ax)
    hi, lo = float(cm.max()) if cm.size else 0.0, float(cm.min()) if cm.size else 0.0
    middle = (hi + lo) / 2
    if k <= 30:
        for i in range(k):
            for j in range(k):
                v = cm[i, j]
                text = f"{v:.2f}" if normalize is not None or cm.dtype.kind == "f" else str(v)
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if v > middle else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticklabels(names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title("Confusion matrix" + (f" (normalized over {normalize})" if normalize else ""))
    fig.tight_layout()
    fig.matrix = cm
    return finish(fig, to_file)


# ---- curves -----------------------------------------------------------------------------------
def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).reshape(-1)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if t.shape != s.shape:
        raise ValueError(f"y_true and y_score must have one value per sample. Received shapes "
                         f"{np.shape(y_true)} and {np.shape(y_score)}")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("y_true must hold binary labels (0 or 1) for a binary curve")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score must be finite")
    return t.astype(np.float64), s


def _counts(y_true, y_score):
    """True and false positives at each distinct score taken as the threshold (score >= t),
    thresholds decreasing."""
    t, s = _binary(y_true, y_score)
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], int)
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    return tps, fps, s[last]


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` of a binary classifier, as scikit-learn's ``roc_curve`` with
    ``drop_intermediate=False``: one point per distinct score (positive when
    ``score >= threshold``), thresholds decreasing, starting at ``(0, 0)`` with threshold
    ``inf``."""
    tps, fps, thr = _counts(y_true, y_score)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thr = np.r_[np.inf, thr]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, thr


def precision_recall_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` as scikit-learn's ``precision_recall_curve``:
    thresholds increasing (every distinct score; the first point is the class balance at
    recall 1), and a last point ``precision 1, recall 0`` without a threshold."""
    tps, fps, thr = _counts(y_true, y_score)
    if tps.size == 0 or tps[-1] == 0:
        raise ValueError("precision_recall_curve needs at least one positive sample")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    sl = slice(None, None, -1)
    return np.r_[precision[sl], 1.0], np.r_[recall[sl], 0.0], thr[sl]


def auc(x, y) -> float:
    """The area under a curve by the trapezoidal rule (x monotonic)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
    return abs(area)


def average_precision(y_true, y_score) -> float:
    """Scikit-learn's average precision: ``sum((R_n - R_{n-1}) * P_n)``."""
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def _one_vs_rest(y_true, y_score, class_names):
    """``[(name, binary labels, scores)]``: one curve for binary scores, one per class for
    scores ``(N, classes)`` (labels as indices or one-hot)."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        name = class_names[1] if class_names is not None and len(class_names) > 1 else None
        return [(name, np.asarray(y_true).reshape(-1), s.reshape(-1))]
    if s.ndim != 2:
        raise ValueError(f"y_score must be (N,) or (N, classes). Received shape {s.shape}")
    t = class_indices(y_true, "y_true")
    out = []
    for k in range(s.shape[1]):
        name = str(class_names[k]) if class_names is not None else str(k)
        out.append((name, (t == k).astype(np.int64), s[:, k]))
    return out


def _finish_curves(fig, ax, curves: dict, xlabel: str, ylabel: str, title: str, y_top: float,
                   legend_loc: str, to_file: Optional[str]):
    """Dresses a plot of curves over [0, 1] (y up to ``y_top``), keeps ``curves`` as
    ``fig.curves`` and finishes the figure (``finish``)."""
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, y_top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend_loc)
    fig.tight_layout()
    fig.curves = curves
    return finish(fig, to_file)


def plot_roc_curve(y_true, y_score, class_names: Optional[Sequence[str]] = None,
                   to_file: Optional[str] = None, figsize: tuple = (5.5, 5.0)):
    """ROC curves with their AUC in the legend: one for binary scores ``(N,)``, one per class
    (one-vs-rest) for scores ``(N, classes)``; the chance diagonal dashed.

    Returns:
        the matplotlib Figure; ``fig.curves`` maps each curve's label to
        ``(fpr, tpr, thresholds, auc)``.
    """
    curves = {}
    fig, ax = pyplot().subplots(figsize=figsize)
    for name, t, s in _one_vs_rest(y_true, y_score, class_names):
        fpr, tpr, thr = roc_curve(t, s)
        area = auc(fpr, tpr)
        label = f"{name + ' ' if name else ''}(AUC = {area:.3f})"
        ax.plot(fpr, tpr, label=label)
        curves[name or "ROC"] = (fpr, tpr, thr, area)
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    return _finish_curves(fig, ax, curves, "False positive rate", "True positive rate",
                          "ROC curve", 1.01, "lower right", to_file)


def plot_precision_recall_curve(y_true, y_score, class_names: Optional[Sequence[str]] = None,
                                to_file: Optional[str] = None, figsize: tuple = (5.5, 5.0)):
    """Precision-recall curves (recall on x, precision on y, drawn as steps) with the average
    precision in the legend, one per class for scores ``(N, classes)``.

    Returns:
        the matplotlib Figure; ``fig.curves`` maps each curve's label to
        ``(precision, recall, thresholds, average_precision)``.
    """
    curves = {}
    fig, ax = pyplot().subplots(figsize=figsize)
    for name, t, s in _one_vs_rest(y_true, y_score, class_names):
        precision, recall, thr = precision_recall_curve(t, s)
        ap = float(-np.sum(np.diff(recall) * precision[:-1]))
        ax.step(recall, precision, where="post", label=f"{name + ' ' if name else ''}"
                                                      f"(AP = {ap:.3f})")
        curves[name or "PR"] = (precision, recall, thr, ap)
    return _finish_curves(fig, ax, curves, "Recall", "Precision", "Precision-recall curve",
                          1.05, "lower left", to_file)
