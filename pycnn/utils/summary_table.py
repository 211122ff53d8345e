"""The text of ``model.summary()``, exactly as tf.keras 2.15 prints it (or, with
:func:`keras3_summary_text`, as Keras 3 prints it).

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
    "keras3_summary_text",
    "keras3_readable_memory_size",
    "format_summary",
    "summary_lines",
    "print_summary",
    "DEFAULT_HEADERS",
    "CONNECTED_HEADERS",
]

DEFAULT_HEADERS = ("Layer (type)", "Output Shape", "Param #")
# tf.keras uses these for a functional model that is not a simple chain,
# with line_length=98 and positions=(0.3, 0.6, 0.7, 1.0) (columns at 29, 58, 68);
# the last cell is ``str()`` of the list of inbound tensors, ``['dense[0][0]', ...]``.
CONNECTED_LINE_LENGTH = 98
CONNECTED_POSITIONS = (0.3, 0.6, 0.7, 1.0)
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


# ---- Keras 3 ---------------------------------------------------------------------------------
# Keras 3 (keras/src/utils/summary_utils.py) draws the table with rich: a table ``line_length``
# wide (default 88, or 108 with "Connected to", but at most the terminal's width - 4), fixed
# column widths from ``positions``, shrunk by rich to make room for the borders, the box
# ``HEAVY_HEAD`` with a rule between rows, cells wrapped at spaces and a word too long for its
# cell cut with "…". Below is that layout for plain text (rich's colours, which it only adds on
# a terminal, are left out).

KERAS3_LINE_LENGTH = 88
KERAS3_POSITIONS = (0.45, 0.80, 1.0)
KERAS3_CONNECTED_LINE_LENGTH = 108
KERAS3_CONNECTED_POSITIONS = (0.3, 0.56, 0.74, 1.0)


def keras3_readable_memory_size(weight_memory_size) -> str:
    """Keras 3's ``readable_memory_size``: as tf.keras 2's, with ``B`` for bytes."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    for unit in units:
        if weight_memory_size / 1024 < 1:
            return "{:.2f} {}".format(weight_memory_size, unit)
        weight_memory_size /= 1024
    return "{:.2f} {}".format(weight_memory_size, units[-1])


def keras3_default_line_length(connected: bool) -> int:
    """Keras 3's default width: 88 (108 with the "Connected to" column), at most the terminal's
    columns - 4 (``shutil.get_terminal_size``: ``$COLUMNS``, the terminal, else 80)."""
    import shutil

    default = KERAS3_CONNECTED_LINE_LENGTH if connected else KERAS3_LINE_LENGTH
    return min(default, shutil.get_terminal_size().columns - 4)


def _round_half_even(x: float) -> int:
    return int(round(x))


def _rich_column_widths(line_length: int, positions) -> list[int]:
    """Content widths of the columns (without the padding of one space each side), as rich
    computes them for a ``Table(width=line_length)`` of fixed-width columns."""
    requested = []
    current = 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        requested.append(width)
        current += width
    max_width = line_length - (len(requested) + 1)        # the vertical borders
    widths = [min(w + 2, max_width) for w in requested]   # with the padding
    if sum(widths) > max_width:                           # rich's ratio_reduce, ratios all 1
        total_remaining = sum(widths) - max_width
        total_ratio = len(widths)
        reduced = []
        for w in widths:
            distributed = min(w, _round_half_even(total_remaining / total_ratio))
            reduced.append(w - distributed)
            total_remaining -= distributed
            total_ratio -= 1
        widths = reduced
    return [max(w - 2, 0) for w in widths]


def _rich_wrap(text: str, width: int, justify: str) -> list[str]:
    """rich's ``Text.wrap`` with ``overflow="ellipsis"``: lines broken before a word that does
    not fit (a word keeps the spaces after it), a word longer than the cell cut to
    ``width - 1`` characters and "…", then justified (padded) to ``width``."""
    import re

    if width <= 0:
        return [""]
    out: list[str] = []
    for line in text.split("\n"):
        breaks = []
        offset = 0
        for match in re.finditer(r"\s*\S+\s*", line):
            start, word = match.start(), match.group(0)
            length = len(word.rstrip())
            if width - offset >= length:
                offset += len(word)
            elif length > width:
                if start:
                    breaks.append(start)
                offset = len(word)
            elif offset and start:
                breaks.append(start)
                offset = len(word)
        pieces = [line[a:b] for a, b in zip([0] + breaks, breaks + [len(line)])]
        for piece in pieces:
            if len(piece) > width:                           # rstrip_end
                trailing = len(piece) - len(piece.rstrip())
                piece = piece[: len(piece) - min(trailing, len(piece) - width)]
            if justify == "right":
                piece = piece.rstrip()
            if len(piece) > width:
                piece = piece[: width - 1] + "…"
            piece = piece.rjust(width) if justify == "right" else piece.ljust(width)
            out.append(piece)
    return out


def _rich_table_lines(headers, justify, rows, widths) -> list[str]:
    """A rich ``Table`` (box HEAVY_HEAD, ``show_lines=True``) of plain-text cells."""

    def rule(left, fill, mid, right):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def row_lines(cells, bar, bottom=False):
        # rich aligns body cells at the top, header cells at the bottom
        wrapped = [_rich_wrap(str(c), w, j) for c, w, j in zip(cells, widths, justify)]
        height = max(len(c) for c in wrapped)
        wrapped = [([" " * w] * (height - len(c)) + c) if bottom else
                   (c + [" " * w] * (height - len(c))) for c, w in zip(wrapped, widths)]
        return [bar + bar.join(f" {c[i]} " for c in wrapped) + bar for i in range(height)]

    lines = [rule("┏", "━", "┳", "┓")]
    lines += row_lines(headers, "┃", bottom=True)
    lines.append(rule("┡", "━", "╇", "┩"))
    for i, cells in enumerate(rows):
        if i:
            lines.append(rule("├", "─", "┼", "┤"))
        lines += row_lines(cells, "│")
    lines.append(rule("└", "─", "┴", "┘"))
    return lines


def keras3_summary_text(
    model_name,
    rows,
    trainable_count,
    non_trainable_count,
    connections=None,
    line_length=None,
    positions=None,
    optimizer_count=None,
    bytes_per_param=4,
) -> str:
    """The summary as Keras 3 prints it when the output is not a terminal, one string ending
    with a newline (Keras 3 gives ``print_fn`` that one string).

    ``rows`` holds ``(layer_name, class_name, output_shape_text, param_count)`` per layer
    (``param_count`` an int, shown as ``1,200``, or a ready string); ``connections``, for a
    model that is not sequential-like, one list of ``"layer[node][tensor]"`` strings per row
    (shown comma-separated, ``-`` when empty). ``optimizer_count`` (the optimizer's variables,
    once it has been built) adds the "Optimizer params" line and counts in the total, as Keras
    3 does after ``fit``.
    """
    connected = connections is not None
    if line_length is None:
        line_length = keras3_default_line_length(connected)
    if positions is None:
        positions = KERAS3_CONNECTED_POSITIONS if connected else KERAS3_POSITIONS
    headers = ["Layer (type)", "Output Shape", "Param #"]
    justify = ["left", "left", "right"]
    if connected:
        headers.append("Connected to")
        justify.append("left")
    if len(positions) != len(headers):
        raise ValueError(
            f"positions must have one entry per column ({len(headers)}). "
            f"Received: positions={tuple(positions)}"
        )
    widths = _rich_column_widths(line_length, positions)
    cells = []
    for i, (name, cls_name, shape, params) in enumerate(rows):
        params = f"{params:,}" if isinstance(params, int) else str(params)
        row = [f"{name} ({cls_name})", shape, params]
        if connected:
            row.append(", ".join(connections[i]) or "-")
        cells.append(row)

    trainable_size = trainable_count * bytes_per_param
    non_trainable_size = non_trainable_count * bytes_per_param
    total_count = trainable_count + non_trainable_count + (optimizer_count or 0)
    total_size = total_count * bytes_per_param
    lines = [f'Model: "{model_name}"']
    lines += _rich_table_lines(headers, justify, cells, widths)
    lines.append(f" Total params: {total_count:,} ({keras3_readable_memory_size(total_size)})")
    lines.append(f" Trainable params: {trainable_count:,} "
                 f"({keras3_readable_memory_size(trainable_size)})")
    lines.append(f" Non-trainable params: {non_trainable_count:,} "
                 f"({keras3_readable_memory_size(non_trainable_size)})")
    if optimizer_count is not None:
        lines.append(f" Optimizer params: {optimizer_count:,} "
                     f"({keras3_readable_memory_size(optimizer_count * bytes_per_param)})")
    return "\n".join(lines) + "\n"
