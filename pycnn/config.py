"""pycnn's settings: which Keras the printed output imitates.

``summary()`` and the progress bars of ``fit`` / ``evaluate`` / ``predict`` print what
tf.keras 2.15 prints (the lecture's output) unless asked for Keras 3's format::

    import pycnn
    pycnn.config.set_output_style("keras3")     # boxed summary, ━━━ progress bar
    pycnn.config.set_output_style("tf_keras")   # back to tf.keras 2.15 (the default)

or, before ``import pycnn``, with the environment variable ``PYCNN_OUTPUT_STYLE=keras3``
(read once, at import, like pycnn's other variables).
"""
from __future__ import annotations

import os

__all__ = ["OUTPUT_STYLES", "set_output_style", "get_output_style"]

#: The accepted styles: tf.keras 2.15's output (default) and Keras 3's.
OUTPUT_STYLES = ("tf_keras", "keras3")
_ENV = "PYCNN_OUTPUT_STYLE"


def _check(style, what: str) -> str:
    if not isinstance(style, str) or style not in OUTPUT_STYLES:
        raise ValueError(f'{what} must be one of "tf_keras" (tf.keras 2.15\'s output, the '
                         f'default) or "keras3". Received: {what}={style!r}')
    return style


def _from_environment() -> str:
    value = os.environ.get(_ENV)
    if value is None or value == "":
        return "tf_keras"
    return _check(value, _ENV)


_style: str = _from_environment()


def set_output_style(style: str) -> None:
    """Print like ``"tf_keras"`` (tf.keras 2.15, the default) or ``"keras3"`` (Keras 3): the
    ``summary()`` table and the progress bar of ``fit``, ``evaluate`` and ``predict``."""
    global _style
    _style = _check(style, "style")


def get_output_style() -> str:
    """The current output style: ``"tf_keras"`` or ``"keras3"``."""
    return _style
