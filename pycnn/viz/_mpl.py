"""matplotlib, imported only when a picture is asked for (it is an optional extra:
``pip install pycnn[plot]``), with the non-interactive Agg backend when there is no display."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

MISSING = ("pycnn.viz draws with matplotlib, which is not installed. Install it with "
           "`pip install matplotlib` (or `pip install pycnn[plot]`).")


def _headless() -> bool:
    """No display to open a window on (and no backend chosen by the user or a notebook)."""
    if os.environ.get("MPLBACKEND"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says how to install matplotlib."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(MISSING) from err
    if "matplotlib.pyplot" not in sys.modules and _headless():
        matplotlib.use("Agg")
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(MISSING) from err
    return plt


def finish(fig: Any, to_file: Optional[str], dpi: Optional[float] = None) -> Any:
    """Save ``fig`` to ``to_file`` (PNG unless the name ends with another format's extension)
    when given, and return it."""
    if to_file is not None:
        path = os.fspath(to_file)
        fmt = None if os.path.splitext(path)[1] else "png"
        fig.savefig(path, dpi=dpi if dpi is not None else fig.dpi, format=fmt)
    return fig
