"""Keras-compatible progress bar (tf.keras 2.15's ``keras.utils.Progbar``).

This module uses only the standard library and NumPy, so it can be imported
on its own.  The text it writes is byte-for-byte what tf.keras 2.15 writes for
the same sequence of ``update`` calls and the same clock readings.

What ``fit`` / ``evaluate`` / ``predict`` should do (as tf.keras 2.15's
``ProgbarLogger`` does):

* create one ``Progbar(target=steps, verbose=verbose,
  stateful_metrics=metric_names)`` at the start of every epoch (and of every
  ``evaluate`` / ``predict`` call);
* with ``verbose == 1`` only: after every batch call
  ``update(batch_index + 1, list(logs.items()), finalize=False)``;
* at the end (epoch end, end of evaluate / predict) call
  ``update(steps, list(logs.items()), finalize=True)`` with the final logs
  (for ``fit`` these include the ``val_*`` entries);
* print ``format_epoch_header(epoch + 1, epochs)`` before an epoch when
  ``verbose`` is truthy and ``epochs > 1``.
"""

import math
import os
import sys
import time

import numpy as np

__all__ = ["Progbar", "Keras3Progbar", "make_progbar", "format_epoch_header",
           "render_console"]


def format_epoch_header(epoch, epochs):
    """Return the line Keras prints before an epoch, e.g. ``"Epoch 3/5"``.

    ``epoch`` is the 1-based number that is displayed (Keras' callbacks get a
    0-based index and print ``epoch + 1``).
    """
    return f"Epoch {epoch}/{epochs}"


def _keras_dynamic_display(stream):
    """tf.keras 2.15's rule for redrawing the bar in place."""
    try:
        tty = bool(hasattr(stream, "isatty") and stream.isatty())
    except (ValueError, OSError):  # closed or odd streams
        tty = False
    return (
        tty
        or "ipykernel" in sys.modules
        or "posix" in sys.modules
        or "PYCHARM_HOSTED" in os.environ
    )


def _num_digits(target):
    if target >= 1:
        return int(math.log10(target)) + 1
    return 1


def format_value(value):
    """Format a metric value the way the verbose=1 line does.

    ``%.4f`` when ``abs(value) > 1e-3``, else ``%.4e`` (so ``0.001`` itself
    and ``0`` are printed in exponent form: ``1.0000e-03``, ``0.0000e+00``).
    """
    avg = np.mean(value)
    if abs(avg) > 1e-3:
        return f"{avg:.4f}"
    return f"{avg:.4e}"


def _format_value_verbose2(value):
    # tf.keras 2.15's verbose=2 branch tests ``avg > 1e-3`` (no abs), so a
    # negative value is always printed in exponent form there.
    avg = np.mean(value)
    if avg > 1e-3:
        return f"{avg:.4f}"
    return f"{avg:.4e}"


def format_eta(eta):
    """Keras' ETA text: ``%d:%02d:%02d`` above an hour, ``%d:%02d`` above a
    minute, else ``%ds`` (all truncating, not rounding)."""
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def format_time(time_per_unit, unit_name):
    """Keras' ``Progbar._format_time``: ``" 3s/epoch"``, ``" 5ms/step"``,
    ``" 120us/step"`` (note the leading space; values rounded with ``%.0f``).
    Exactly 0 is shown as ``" 0s/<unit>"``."""
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1000.0:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1000000.0:.0f}us/{unit_name}"


class Progbar:
    """Displays a progress bar, exactly like tf.keras 2.15.

    Args:
        target: total number of steps expected, ``None`` if unknown.
        width: width of the bar in characters (30).
        verbose: 0 (silent), 1 (bar, redrawn as it goes), 2 (one line at
            the end).
        interval: minimum time in seconds between two redraws (verbose=1);
            the final update is never skipped.
        stateful_metrics: names of values shown as given (not averaged).
        unit_name: ``"step"`` or ``"sample"``, shown in ``5ms/step``.
        stream: where to write; ``None`` means ``sys.stdout`` looked up at
            every write (so pytest's ``capsys`` sees it).
        dynamic_display: redraw in place with ``\\b``/``\\r`` (True) or start
            every update on a new line (False); ``None`` applies Keras' rule:
            the stream is a tty, or ``ipykernel``/``posix`` is in
            ``sys.modules``, or ``PYCHARM_HOSTED`` is set (so it is True on
            every Linux/macOS system).
        clock: a callable returning the time in seconds; ``None`` means
            ``time.time`` (looked up when called).
    """

    def __init__(
        self,
        target,
        width=30,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        unit_name="step",
        stream=None,
        dynamic_display=None,
        clock=None,
    ):
        self._init_display(target, width, verbose, interval, unit_name, stream,
                           dynamic_display, clock)
        self.stateful_metrics = set(stateful_metrics) if stateful_metrics else set()
        self._total_width = 0
        self._time_at_epoch_end = None

    def _init_display(self, target, width, verbose, interval, unit_name, stream,
                      dynamic_display, clock):
        """The arguments and the starting state both progress bars share."""
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self._stream = stream
        self._clock = clock
        if dynamic_display is None:
            dynamic_display = _keras_dynamic_display(self.stream)
        self._dynamic_display = bool(dynamic_display)
        self._seen_so_far = 0
        # name -> [weighted sum, weight] (stateful values: [value, 1])
        self._values = {}
        self._values_order = []
        self._start = self._now()
        # Keras starts this at 0 (the epoch), which can never throttle the
        # first update with a real clock; None keeps that true for a fake
        # clock starting at 0.
        self._last_update = None
        self._time_at_epoch_start = self._start
        self._time_after_first_step = None

    # ------------------------------------------------------------------
    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    @property
    def dynamic_display(self):
        return self._dynamic_display

    def _now(self):
        clock = self._clock if self._clock is not None else time.time
        return clock()

    def _write(self, message):
        stream = self.stream
        stream.write(message)
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()

    # ------------------------------------------------------------------
    def update(self, current, values=None, finalize=None):
        """Update the bar.

        Args:
            current: index of the current step (1-based count of steps done).
            values: list of ``(name, value)`` pairs. Names in
                ``stateful_metrics`` are shown as given; the others are
                averaged over steps, weighted by ``current - previous current``.
            finalize: whether this is the last update; ``None`` means
                ``current >= target``.
        """
        if finalize is None:
            finalize = False if self.target is None else current >= self.target

        for k, v in values or []:
            if k not in self._values_order:
                self._values_order.append(k)
            if k not in self.stateful_metrics:
                self._accumulate(k, v, current)
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current

        now = self._now()
        info = f" - {now - self._start:.0f}s"
        if current == self.target:
            self._time_at_epoch_end = now

        if self.verbose == 1:
            if self._throttled(now, finalize):
                return
            self._write(self._verbose1_message(current, now, info, finalize))
        elif self.verbose == 2:
            if finalize:
                self._write(self._verbose2_message(current, now, info))

        self._last_update = now

    def _accumulate(self, name, value, current):
        """Adds ``value`` to the average of ``name``, weighted by the steps since the last
        update (Keras forces a weight of at least 1: on_epoch_end may repeat the last step's
        ``current``)."""
        value_base = max(current - self._seen_so_far, 1)
        if name not in self._values:
            self._values[name] = [value * value_base, value_base]
        else:
            self._values[name][0] += value * value_base
            self._values[name][1] += value_base

    def _throttled(self, now, finalize):
        """Whether a verbose=1 redraw comes too soon after the last one (``interval``)."""
        return (
            self._last_update is not None
            and now - self._last_update < self.interval
            and not finalize
        )

    def add(self, n, values=None):
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    # ------------------------------------------------------------------
    def _verbose1_message(self, current, now, info, finalize):
        prev_total_width = self._total_width
        if self._dynamic_display:
            message = "\b" * prev_total_width + "\r"
        else:
            message = "\n"

        if self.target is not None:
            bar = f"%{_num_digits(self.target)}d/%d [" % (current, self.target)
            prog = float(current) / self.target if self.target else 1.0
            prog_width = int(self.width * prog)
            if prog_width > 0:
                bar += "=" * (prog_width - 1)
                bar += ">" if current < self.target else "="
            bar += "." * (self.width - prog_width)
            bar += "]"
        else:
            bar = "%7d/Unknown" % current
        self._total_width = len(bar)
        message += bar

        time_per_unit = self._estimate_step_duration(current, now)
        if self.target is None or finalize:
            info += format_time(time_per_unit, self.unit_name)
        else:
            eta = time_per_unit * (self.target - current)
            info = f" - ETA: {format_eta(eta)}"

        for k in self._values_order:
            info += f" - {k}:"
            entry = self._values[k]
            info += " " + format_value(entry[0] / max(1, entry[1]))

        self._total_width += len(info)
        if prev_total_width > self._total_width:
            info += " " * (prev_total_width - self._total_width)
        if finalize:
            info += "\n"
        return message + info

    def _verbose2_message(self, current, now, info):
        if self.target is not None:
            count = f"%{_num_digits(self.target)}d/%d" % (current, self.target)
        else:
            count = "%7d/Unknown" % current
        info = count + info
        for k in self._values_order:
            entry = self._values[k]
            info += f" - {k}: " + _format_value_verbose2(entry[0] / max(1, entry[1]))
        if self._time_at_epoch_end is not None and self.target:
            time_per_epoch = self._time_at_epoch_end - self._time_at_epoch_start
            avg_time_per_step = time_per_epoch / self.target
            self._time_at_epoch_start = now
            self._time_at_epoch_end = None
            info += " -" + format_time(time_per_epoch, "epoch")
            info += " -" + format_time(avg_time_per_step, self.unit_name)
        # Keras adds the newline only together with the timing fields (it
        # then leaves the line open when finalizing before the target was
        # reached); pycnn always ends the line.
        return info + "\n"

    def _estimate_step_duration(self, current, now):
        """Seconds per step, ignoring the (slow) first step once known."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit

    def _update_stateful_metrics(self, stateful_metrics):
        self.stateful_metrics = self.stateful_metrics.union(stateful_metrics)


class Keras3Progbar:
    """Keras 3's progress bar (``keras.utils.Progbar`` in Keras 3), byte for byte.

    verbose=1 draws ``\x1b[1m 12/469\x1b[0m`` then a bar of ``━`` (20 wide: the done part
    green ``\x1b[32m``, the rest grey ``\x1b[37m``), then `` \x1b[1m7s\x1b[0m 5ms/step``
    (the ETA while running, the elapsed seconds at the end, always followed by the time per
    step) and `` - name: value`` per value. Keras 3 writes these ANSI codes whether or not the
    output is a terminal, and redraws in place with ``\b``/``\r`` under the same rule as
    tf.keras. verbose=2 writes one line at the end: ``469/469 - 3s - 6ms/step - accuracy:
    0.9239 - loss: 0.2633``.

    Args are those of :class:`Progbar` (``width`` defaults to 20), plus ``stateless_metrics``:
    names averaged over the steps when ``stateful_metrics`` is not given (Keras 3's
    ``ProgbarLogger`` passes an empty set: every value is shown as given). Without either, all
    values are averaged; a value given at the final update replaces its average.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        stream=None,
        dynamic_display=None,
        clock=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` or `stateless_metrics` can be provided. "
                "`stateful_metrics` is used to make metrics stateless by default (with an "
                "exclusion list), while `stateless_metrics` is used to make metrics stateful "
                "by default (with an exclusion list)."
            )
        self._init_display(target, width, verbose, interval, unit_name, stream,
                           dynamic_display, clock)
        if stateful_metrics is not None:
            self.stateful_metrics = set(stateful_metrics)
            self.stateless_metrics = None
        elif stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set()
            self.stateless_metrics = None
        self._prev_total_width = 0

    _init_display = Progbar._init_display
    _accumulate = Progbar._accumulate
    _throttled = Progbar._throttled
    stream = Progbar.stream
    dynamic_display = Progbar.dynamic_display
    _now = Progbar._now
    _write = Progbar._write
    _estimate_step_duration = Progbar._estimate_step_duration

    def _is_stateless(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _value_text(self, name, abs_test=True):
        values, count = self._values[name]
        if not isinstance(values, float):
            values = np.mean(values)
        avg = values / max(1, count)
        if (abs(avg) if abs_test else avg) > 1e-3:
            return f"{avg:.4f}"
        return f"{avg:.4e}"

    def update(self, current, values=None, finalize=None):
        """Update the bar (arguments as :meth:`Progbar.update`)."""
        if finalize is None:
            finalize = False if self.target is None else current >= self.target

        for k, v in values or []:
            if k not in self._values_order:
                self._values_order.append(k)
            if self._is_stateless(k):
                if finalize:
                    self._values[k] = [v, 1]
                else:
                    self._accumulate(k, v, current)
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current

        now = self._now()
        time_per_unit = self._estimate_step_duration(current, now)
        known = self.target is not None and self.target > 0

        if self.verbose == 1:
            if self._throttled(now, finalize):
                return
            message = ("\b" * self._prev_total_width + "\r") if self._dynamic_display else "\n"
            special = 0
            if known:
                bar = f"%{_num_digits(self.target)}d/%d" % (current, self.target)
                bar = f"\x1b[1m{bar}\x1b[0m "
                special += 8
                prog_width = int(self.width * float(current) / self.target)
                if prog_width > 0:
                    bar += f"\x1b[32m{'━' * prog_width}\x1b[0m"
                    special += 9
                bar += f"\x1b[37m{'━' * (self.width - prog_width)}\x1b[0m"
                special += 9
            else:
                bar = "%7d/Unknown" % current
            if known and not finalize:
                info = f" \x1b[1m{format_eta(time_per_unit * (self.target - current))}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            special += 8
            info += format_time(time_per_unit, self.unit_name)
            for k in self._values_order:
                info += f" - {k}: " + self._value_text(k)
            total_width = len(bar) + len(info) - special
            message += bar + info
            if self._prev_total_width > total_width:
                message += " " * (self._prev_total_width - total_width)
            if finalize:
                message += "\n"
            self._write(message)
            self._prev_total_width = total_width
        elif self.verbose == 2:
            if finalize and known:
                count = f"%{_num_digits(self.target)}d/%d" % (current, self.target)
                info = f"{count} - {now - self._start:.0f}s"
                info += " -" + format_time(time_per_unit, self.unit_name)
                for k in self._values_order:
                    info += f" - {k}: " + self._value_text(k, abs_test=False)
                self._write(info + "\n")

        self._last_update = now

    def add(self, n, values=None):
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)


def make_progbar(target, verbose=1, stateful_metrics=None, unit_name="step", style=None,
                 **kwargs):
    """The progress bar of the current output style (``pycnn.config``): tf.keras 2.15's
    :class:`Progbar`, or :class:`Keras3Progbar` with every value shown as given (as Keras 3's
    ``ProgbarLogger`` makes it)."""
    if style is None:
        from .. import config

        style = config.get_output_style()
    if style == "keras3":
        return Keras3Progbar(target, verbose=verbose, stateless_metrics=set(),
                             unit_name=unit_name, **kwargs)
    return Progbar(target, verbose=verbose, stateful_metrics=stateful_metrics,
                   unit_name=unit_name, **kwargs)


def render_console(text):
    """Return what a terminal would show after printing ``text``.

    Interprets ``\\r`` (back to column 0), ``\\b`` (one column left) and
    ``\\n``; later characters overwrite earlier ones.  Useful to compare a
    dynamic progress bar's raw output with what the user sees (the lecture's
    printed text).  Trailing spaces of each line are kept.
    """
    lines = [[]]
    col = 0
    for ch in text:
        line = lines[-1]
        if ch == "\n":
            lines.append([])
            col = 0
        elif ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(col - 1, 0)
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.extend(" " * (col - len(line)))
                line.append(ch)
            col += 1
    return "\n".join("".join(line) for line in lines)
