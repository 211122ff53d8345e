"""Training curves: ``plot_history(model.fit(...))``."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from ._mpl import finish, pyplot


def _history_dict(history) -> tuple[dict, Optional[list]]:
    if hasattr(history, "history") and isinstance(history.history, dict):
        return history.history, list(getattr(history, "epoch", []) or [])
    if isinstance(history, dict):
        return history, None
    raise TypeError(f"expected the History that fit() returns (or its .history dict). "
                    f"Received: history of type {type(history).__name__}")


def plot_history(history, metrics: Union[str, Sequence[str], None] = None,
                 to_file: Optional[str] = None, figsize: Optional[tuple] = None):
    """The training and validation curves of each metric, one panel per metric, as Chollet's
    book draws them: training values as dots (``"bo"``), validation values as a line (``"b"``),
    legends "Training loss" / "Validation loss", title "Training and validation loss", epochs
    on the x axis (1, 2, ...).

    Args:
        history: the ``History`` returned by ``fit`` (or its ``.history`` dict).
        metrics: the metric names to draw (without ``val_``); default every logged name.
        to_file: also save the figure there (PNG).

    Returns:
        the matplotlib Figure (one Axes per metric in ``fig.axes``).
    """
    logs, epoch = _history_dict(history)
    if not logs:
        raise ValueError("The history is empty: train with fit() first.")
    names = [k for k in logs if not k.startswith("val_")] or \
        [k[4:] for k in logs if k.startswith("val_")]
    if metrics is None:
        metrics = names
    elif isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    for m in metrics:
        if m not in logs and f"val_{m}" not in logs:
            raise ValueError(f"Unknown metric {m!r} in the history; available: {names}")
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    plt = pyplot()
    n = len(metrics)
    fig, axes = plt.subplots(1, n, figsize=figsize or (5.0 * n, 4.0), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        train, val = logs.get(m), logs.get(f"val_{m}")
        length = len(train if train is not None else val)
        xs = [e + 1 for e in epoch] if epoch and len(epoch) == length else \
            list(range(1, length + 1))
        if train is not None:
            ax.plot(xs, list(train), "bo", label=f"Training {m}")
        if val is not None:
            ax.plot(xs[:len(val)], list(val), "b", label=f"Validation {m}")
        ax.set_title(f"Training and validation {m}" if train is not None and val is not None
                     else (f"Training {m}" if train is not None else f"Validation {m}"))
        ax.set_xlabel("Epochs")
        ax.set_ylabel(m[:1].upper() + m[1:])
        ax.legend()
    fig.tight_layout()
    return finish(fig, to_file)
