"""The text of ``model.summary()``, exactly as tf.keras 2.15 prints it.

Standard library only; import it on its own.  The model code collects one row
per layer and calls :func:`format_summary` or :func:`print_summary`::

    rows = [
        ("input_1", "InputLayer", "[(None, 28, 28, 1)]", 0),
        ("conv2d", "Conv2D", "(None, 26, 26, 32)", 320),
    ]
    print_summary("model", rows, trainable_count=320, non_trainable_count=0)

Layout (tf.keras 2.15 ``layer_utils.print_summary`` for a sequential-like
model): lines ``line_length`` (65) wide, padded with spaces; column ``i``
ends at ``positions[i]`` (``int(65 * p)`` for ``p`` in 0.45, 0.85, 1.0 ->
29, 55, 65); a cell longer than its column wraps onto following lines (26
characters for the first column, 23 for the second, 10 for the last); a
blank padded line follows every layer row; then the totals and a closing
rule of ``_``.
"""

__all__ = [
    "readable_memory_size",
    "format_summary",
    "summary_lines",
    "print_summary",
    "DEFAULT_HEADERS",
    "CONNECTED_HEADERS",
]

DEFAULT_HEADERS = ("Layer (type)", "Output Shape", "Param #")
# tf.keras uses these for a functional model that is not a simple chain,
# with line_length=98 and positions=(0.3, 0.6, 0.7, 1.0).
CONNECTED_HEADERS = ("Layer (type)", "Output Shape", "Param #", "Connected to")

_LINE_BREAK_MARKS = ("),", "},", "],", "',")


def readable_memory_size(weight_memory_size):
    """Keras' ``readable_memory_size``: bytes in 1024-based units with two
    decimals: ``0.00 Byte``, ``407.04 KB``, ``2.72 MB``."""
    units = ["Byte", "KB", "MB", "GB", "TB", "PB"]
    scale = 1024
    for unit in units:
        if weight_memory_size / scale < 1:
            return "{:.2f} {}".format(weight_memory_size, unit)
        weight_memory_size /= scale
    return "{:.2f} {}".format(weight_memory_size, units[-1])


def _absolute_positions(line_length, positions):
    positions = list(positions)
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    return positions


def _row_lines(fields, positions):
    """Lines for one table row, wrapping long cells like Keras' print_row."""
    left_to_print = [str(x) for x in fields]
    last = len(positions) - 1
    lines = []
    while any(left_to_print):
        line = ""
        for col in range(len(left_to_print)):
            start_pos = positions[col - 1] if col > 0 else 0
            end_pos = positions[col]
            # two spaces between columns, none after the last one
            space = 2 if col != last else 0
            cutoff = end_pos - start_pos - space
            # all but the last column lose one more character: the leading
            # space of the row keeps every column starting at its position
            if col != last:
                cutoff -= 1
            # (Keras would loop forever on a column too narrow for any text)
            cutoff = max(cutoff, 1)
            fit_into_line = left_to_print[col][:cutoff]
            # prefer to break after the end of a tuple/list/dict/string
            candidates = [
                fit_into_line.find(mark) + len(mark)
                for mark in _LINE_BREAK_MARKS
                if fit_into_line.find(mark) >= 0
            ]
            if candidates:
                cutoff = min(candidates)
                fit_into_line = fit_into_line[:cutoff]
            if col == 0:
                line += " "
            line += fit_into_line
            line += " " * space
            left_to_print[col] = left_to_print[col][cutoff:]
            # pad out to the next position
            line += " " * (positions[col] - len(line))
        lines.append(line)
    return lines


def summary_lines(
    model_name,
    rows,
    trainable_count,
    non_trainable_count,
    line_length=65,
    positions=(0.45, 0.85, 1.0),
    headers=None,
    bytes_per_param=4,
):
    """The summary as a list of lines (no newline characters).

    ``rows`` holds one tuple per layer: ``(layer_name, class_name,
    output_shape_text, param_count[, extra columns...])``; the first two are
    shown as ``"name (ClassName)"`` and every other cell with ``str()``.
    ``positions`` are fractions of ``line_length`` (or absolute columns when
    the last one is > 1), one per column.  Sizes are ``bytes_per_param``
    bytes per parameter (float32: 4).
    """
    headers = tuple(headers) if headers is not None else DEFAULT_HEADERS
    positions = _absolute_positions(line_length, positions)
    if len(positions) != len(headers):
        raise ValueError(
            f"positions must have one entry per column ({len(headers)}). "
            f"Received: positions={positions}"
        )

    lines = [f'Model: "{model_name}"', "_" * line_length]
    lines += _row_lines(headers, positions)
    lines.append("=" * line_length)
    for row in rows:
        name, cls_name, *cells = row
        fields = [f"{name} ({cls_name})"] + cells
        if len(fields) != len(headers):
            raise ValueError(
                f"each row must have {len(headers) + 1} items "
                f"(name, class name and one per other column). Received: {row!r}"
            )
        lines += _row_lines(fields, positions)
        lines.append(" " * line_length)
    lines.append("=" * line_length)

    trainable_size = trainable_count * bytes_per_param
    non_trainable_size = non_trainable_count * bytes_per_param
    total_size = trainable_size + non_trainable_size
    lines.append(
        f"Total params: {trainable_count + non_trainable_count} "
        f"({readable_memory_size(total_size)})"
    )
    lines.append(
        f"Trainable params: {trainable_count} "
        f"({readable_memory_size(trainable_size)})"
    )
    lines.append(
        f"Non-trainable params: {non_trainable_count} "
        f"({readable_memory_size(non_trainable_size)})"
    )
    lines.append("_" * line_length)
    return lines


def format_summary(*args, **kwargs) -> str:
    """The summary text (arguments as :func:`summary_lines`): its lines joined with ``"\\n"``,
    without a final newline (``print(format_summary(...))`` prints exactly what Keras prints)."""
    return "\n".join(summary_lines(*args, **kwargs))


def print_summary(*args, print_fn=None, **kwargs) -> None:
    """Print the summary (arguments as :func:`summary_lines`): ``print_fn(line)`` for every
    line (default ``print``, which looks ``sys.stdout`` up at call time)."""
    if print_fn is None:
        print_fn = print
    for line in summary_lines(*args, **kwargs):
        print_fn(line)
