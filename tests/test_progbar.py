"""Progbar output must be byte-for-byte tf.keras 2.15's."""

import io
import sys

import numpy as np
import pytest

from pycnn.utils.progbar import (
    Progbar,
    format_epoch_header,
    format_eta,
    format_time,
    format_value,
    render_console,
)

METRICS = ["loss", "accuracy"]


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def make(target, clock, dynamic=True, **kw):
    stream = io.StringIO()
    kw.setdefault("stateful_metrics", METRICS)
    bar = Progbar(target, stream=stream, dynamic_display=dynamic, clock=clock, **kw)
    return bar, stream


def logs(loss, acc):
    return [("loss", loss), ("accuracy", acc)]


# --- verbose=1 -----------------------------------------------------------

def test_lecture_final_line_verbose1():
    clock = FakeClock(0.0)
    bar, out = make(469, clock)
    clock.t = 1.0  # the first step is slow; Keras leaves it out of ms/step
    bar.update(1, logs(2.3, 0.1), finalize=False)
    clock.t = 1.0 + 468 * 0.005
    bar.update(469, logs(0.26331, 0.92389), finalize=True)
    shown = render_console(out.getvalue())
    assert shown == (
        "469/469 [==============================] - 3s 5ms/step"
        " - loss: 0.2633 - accuracy: 0.9239\n"
    )


def test_running_and_final_lines_dynamic_exact_bytes():
    clock = FakeClock(100.0)
    bar, out = make(3, clock)

    clock.t = 101.0
    bar.update(1, logs(0.5, 0.25), finalize=False)
    line1 = "1/3 [=========>....................] - ETA: 2s - loss: 0.5000 - accuracy: 0.2500"
    assert out.getvalue() == "\r" + line1

    clock.t = 102.5  # steps after the first: (102.5 - 101) / 1 = 1.5 s each
    bar.update(2, logs(0.4, 0.5), finalize=False)
    line2 = "2/3 [===================>..........] - ETA: 1s - loss: 0.4000 - accuracy: 0.5000"
    assert out.getvalue() == "\r" + line1 + "\b" * len(line1) + "\r" + line2

    clock.t = 104.0  # 1.5 s/step rounds (half to even) to 2s
    bar.update(3, logs(0.3, 0.75), finalize=False)  # like Keras' on_batch_end
    line3 = "3/3 [==============================] - ETA: 0s - loss: 0.3000 - accuracy: 0.7500"
    clock.t = 104.2
    bar.update(3, logs(0.3, 0.75), finalize=True)  # like on_epoch_end
    final = "3/3 [==============================] - 4s 2s/step - loss: 0.3000 - accuracy: 0.7500"
    assert out.getvalue() == (
        "\r" + line1
        + "\b" * len(line1) + "\r" + line2
        + "\b" * len(line2) + "\r" + line3
        + "\b" * len(line3) + "\r" + final + "\n"
    )
    assert render_console(out.getvalue()) == final + "\n"


def test_non_dynamic_starts_every_update_on_a_new_line():
    clock = FakeClock(0.0)
    bar, out = make(2, clock, dynamic=False)
    clock.t = 0.010
    bar.update(1, logs(1.0, 0.5), finalize=False)
    clock.t = 0.020
    bar.update(2, logs(0.75, 0.625), finalize=True)
    assert out.getvalue() == (
        "\n1/2 [==============>...............] - ETA: 0s - loss: 1.0000 - accuracy: 0.5000"
        "\n2/2 [==============================] - 0s 10ms/step - loss: 0.7500 - accuracy: 0.6250\n"
    )


def test_shorter_line_is_padded_to_erase_the_previous_one():
    clock = FakeClock(0.0)
    bar, out = make(100, clock, stateful_metrics=None)
    clock.t = 1.0
    bar.update(1)  # 1 s/step, 99 steps left -> ETA 1:39
    first = "  1/100 [..............................] - ETA: 1:39"
    assert out.getvalue() == "\r" + first
    clock.t = 2.0 + 1 / 3  # later steps are faster
    bar.update(60)
    second = " 60/100 [=================>............] - ETA: 0s"
    # (60 - 1) steps took 1.333 s -> 0.0226 s/step * 40 = 0.9 s -> "0s"
    assert out.getvalue() == (
        "\r" + first + "\b" * len(first) + "\r" + second
        + " " * (len(first) - len(second))
    )


def test_interval_throttles_redraws_but_never_the_final_one():
    clock = FakeClock(10.0)
    bar, out = make(4, clock)
    clock.t = 10.5
    bar.update(1, logs(1.0, 0.0), finalize=False)
    n = len(out.getvalue())
    clock.t = 10.52  # less than 0.05 s since the last redraw: skipped
    bar.update(2, logs(0.9, 0.1), finalize=False)
    assert len(out.getvalue()) == n
    clock.t = 10.53
    bar.update(4, logs(0.8, 0.2), finalize=True)
    assert render_console(out.getvalue()) == (
        "4/4 [==============================] - 1s 10ms/step - loss: 0.8000 - accuracy: 0.2000\n"
    )


def test_values_not_stateful_are_averaged_weighted_by_steps():
    clock = FakeClock(0.0)
    bar, out = make(4, clock, stateful_metrics=None, verbose=2)
    bar.add(1, [("loss", 1.0)])
    bar.update(3, [("loss", 2.0)])  # weight 2: (1 + 4) / 3
    assert bar._values["loss"] == [5.0, 3]
    clock.t = 4.0
    bar.update(4, [("loss", 4.0)])  # (5 + 4) / 4 = 2.25; finalize by default
    assert out.getvalue() == "4/4 - 4s - loss: 2.2500 - 4s/epoch - 1s/step\n"


def test_stateful_values_are_shown_as_given():
    clock = FakeClock(0.0)
    bar, out = make(4, clock, verbose=2)
    bar.update(1, logs(9.0, 0.0))
    bar.update(3, logs(1.0, 0.5))
    clock.t = 0.4
    bar.update(4, logs(0.123456, 0.98765))
    assert out.getvalue() == (
        "4/4 - 0s - loss: 0.1235 - accuracy: 0.9877 - 400ms/epoch - 100ms/step\n"
    )


def test_metric_order_is_first_seen_order():
    clock = FakeClock(0.0)
    bar, out = make(1, clock, stateful_metrics=["b", "a", "val_a"])
    clock.t = 0.002
    bar.update(1, [("b", 0.5), ("a", 0.25), ("val_a", 0.125)])
    assert out.getvalue() == (
        "\r1/1 [==============================] - 0s 2ms/step"
        " - b: 0.5000 - a: 0.2500 - val_a: 0.1250\n"
    )


def test_unknown_target():
    clock = FakeClock(0.0)
    bar, out = make(None, clock)
    clock.t = 1.0
    bar.update(5, logs(0.5, 0.5))
    assert out.getvalue() == "\r      5/Unknown - 1s 200ms/step - loss: 0.5000 - accuracy: 0.5000"
    clock.t = 2.0
    bar.update(10, logs(0.25, 0.75), finalize=True)
    assert render_console(out.getvalue()) == (
        "     10/Unknown - 2s 200ms/step - loss: 0.2500 - accuracy: 0.7500\n"
    )


def test_predict_style_bar_without_values():
    clock = FakeClock(0.0)
    bar, out = make(1, clock)
    clock.t = 0.05
    bar.update(1, None, finalize=True)
    assert out.getvalue() == "\r1/1 [==============================] - 0s 50ms/step\n"


def test_verbose0_prints_nothing():
    clock = FakeClock(0.0)
    bar, out = make(3, clock, verbose=0)
    for i in range(1, 4):
        clock.t += 1
        bar.update(i, logs(0.1, 0.2))
    assert out.getvalue() == ""


def test_width_and_digit_padding():
    clock = FakeClock(0.0)
    bar, out = make(1000, clock, width=10, stateful_metrics=None)
    clock.t = 2.0
    bar.update(7)  # 7/1000 of 10 columns = 0: no head yet
    assert out.getvalue() == "\r   7/1000 [..........] - ETA: 4:43"


# --- verbose=2 -----------------------------------------------------------

def test_lecture_line_verbose2():
    clock = FakeClock(50.0)
    bar, out = make(469, clock, verbose=2)
    clock.t = 50.0 + 2.6  # Keras calls verbose=2 bars only at the end
    bar.update(469, logs(0.26331, 0.92389), finalize=True)
    assert out.getvalue() == (
        "469/469 - 3s - loss: 0.2633 - accuracy: 0.9239 - 3s/epoch - 6ms/step\n"
    )


def test_verbose2_is_silent_until_finalize():
    clock = FakeClock(0.0)
    bar, out = make(313, clock, verbose=2)
    for i in range(1, 313):
        clock.t = i * 0.002
        bar.update(i, logs(0.06, 0.98), finalize=False)
    assert out.getvalue() == ""
    clock.t = 0.7
    bar.update(313, logs(0.0605, 0.9817), finalize=True)
    assert out.getvalue() == (
        "313/313 - 1s - loss: 0.0605 - accuracy: 0.9817 - 700ms/epoch - 2ms/step\n"
    )


def test_verbose2_small_and_negative_values_use_exponent():
    clock = FakeClock(0.0)
    bar, out = make(10, clock, verbose=2, stateful_metrics=["a", "b", "c"])
    clock.t = 0.001
    bar.update(10, [("a", -0.5), ("b", 0.0005), ("c", 0.01)], finalize=True)
    assert out.getvalue() == (
        "10/10 - 0s - a: -5.0000e-01 - b: 5.0000e-04 - c: 0.0100 - 1ms/epoch - 100us/step\n"
    )


# --- formatting helpers --------------------------------------------------

@pytest.mark.parametrize(
    "value, text",
    [
        (0.26331, "0.2633"),
        (0.00123, "0.0012"),
        (0.001, "1.0000e-03"),  # the test is abs(v) > 1e-3
        (0.0005, "5.0000e-04"),
        (0.0, "0.0000e+00"),
        (-0.0005, "-5.0000e-04"),
        (-0.5, "-0.5000"),
        (12345.678, "12345.6780"),
        (np.float32(0.9817), "0.9817"),
        (np.array([0.25, 0.75]), "0.5000"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_verbose1_line_uses_abs_for_exponent_rule():
    clock = FakeClock(0.0)
    bar, out = make(1, clock, stateful_metrics=["a", "b"])
    clock.t = 3.0
    bar.update(1, [("a", -0.5), ("b", 0.00042)])
    assert out.getvalue().endswith(" - 3s 3s/step - a: -0.5000 - b: 4.2000e-04\n")


@pytest.mark.parametrize(
    "time_per_step, text",
    [
        (0, " 0s/step"),
        (1.0, " 1s/step"),
        (2.5, " 2s/step"),  # %.0f rounds half to even
        (3.5, " 4s/step"),
        (0.999, " 999ms/step"),
        (0.0054, " 5ms/step"),
        (0.001, " 1ms/step"),
        (0.00099, " 990us/step"),
        (0.0000004, " 0us/step"),
    ],
)
def test_format_time(time_per_step, text):
    # a formatting test: it checks the printed text, it times nothing
    assert format_time(time_per_step, "step") == text


def test_format_time_unit_name():
    assert format_time(3.2, "epoch") == " 3s/epoch"
    assert format_time(0.02, "sample") == " 20ms/sample"


@pytest.mark.parametrize(
    "eta, text",
    [
        (0.9, "0s"),
        (7.99, "7s"),  # truncated, not rounded
        (60, "60s"),
        (60.5, "1:00"),
        (61, "1:01"),
        (3599, "59:59"),
        (3600, "60:00"),
        (3661, "1:01:01"),
        (36000 + 59.9, "10:00:59"),
    ],
)
def test_format_eta(eta, text):
    assert format_eta(eta) == text


def test_eta_in_hours_through_the_bar():
    clock = FakeClock(0.0)
    bar, out = make(10000, clock, stateful_metrics=None)
    clock.t = 1.0
    bar.update(1)  # 1 s/step * 9999 steps
    assert out.getvalue() == "\r    1/10000 [..............................] - ETA: 2:46:39"


def test_epoch_header():
    assert format_epoch_header(3, 5) == "Epoch 3/5"
    assert format_epoch_header(1, 12) == "Epoch 1/12"


# --- streams and display mode ---------------------------------------------

def test_default_stream_is_sys_stdout_at_call_time(capsys):
    clock = FakeClock(0.0)
    bar = Progbar(2, verbose=2, clock=clock)
    clock.t = 0.5
    bar.update(2, [("loss", 0.5)])
    assert capsys.readouterr().out == "2/2 - 0s - loss: 0.5000 - 500ms/epoch - 250ms/step\n"


def test_dynamic_display_rule(monkeypatch):
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert Progbar(1, stream=io.StringIO()).dynamic_display == ("posix" in sys.modules)
    monkeypatch.delitem(sys.modules, "posix", raising=False)
    assert Progbar(1, stream=io.StringIO()).dynamic_display is False
    monkeypatch.setenv("PYCHARM_HOSTED", "1")
    assert Progbar(1, stream=io.StringIO()).dynamic_display is True
    monkeypatch.delenv("PYCHARM_HOSTED")

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert Progbar(1, stream=Tty()).dynamic_display is True
    assert Progbar(1, stream=io.StringIO(), dynamic_display=True).dynamic_display is True


def test_real_clock_default():
    out = io.StringIO()
    bar = Progbar(2, stream=out, dynamic_display=False)
    bar.update(1)
    bar.update(2)
    lines = out.getvalue().split("\n")
    assert lines[0] == ""
    assert lines[2].startswith("2/2 [==============================] - 0s ")
    assert lines[2].endswith("s/step")


def test_render_console():
    assert render_console("abc\rxy") == "xyc"
    assert render_console("abc\b\bZ\nq") == "aZc\nq"
    assert render_console("12345" + "\b" * 5 + "\r" + "ab   \n") == "ab   \n"


# ---- Keras 3's bar (tests/keras_refs/make_printing.py, Keras 3.15 with a fake clock) ----------
import contextlib as _contextlib
import io as _io
import json as _json
import os as _os
import sys as _sys

_REFS = _os.path.join(_os.path.dirname(__file__), "keras_refs")
_sys.path.insert(0, _REFS)
import printing_cases as _cases  # noqa: E402

_sys.path.remove(_REFS)
with open(_os.path.join(_REFS, "printing_keras3.json"), encoding="utf-8") as _f:
    _KERAS3 = _json.load(_f)


@pytest.mark.parametrize("name", sorted(_cases.PROGBARS))
def test_keras3_progbar_writes_what_keras_3_writes(name):
    from pycnn.utils.progbar import Keras3Progbar

    kwargs, updates, step = _cases.PROGBARS[name]
    clock = _cases.FakeTime(step)
    buf = _io.StringIO()
    bar = Keras3Progbar(**kwargs, stream=buf, clock=clock.time, dynamic_display=True)
    for current, values, finalize in updates:
        bar.update(current, values, finalize=finalize)
    assert buf.getvalue() == _KERAS3["progbar"][name]


def test_keras3_progbar_final_line_by_hand():
    from pycnn.utils.progbar import Keras3Progbar

    t = iter([0.0, 3.0])
    buf = _io.StringIO()
    bar = Keras3Progbar(469, stream=buf, clock=lambda: next(t), dynamic_display=False,
                        stateless_metrics=[])
    bar.update(469, [("accuracy", 0.92391), ("loss", 0.26333)], finalize=True)
    assert buf.getvalue() == ("\n\x1b[1m469/469\x1b[0m \x1b[32m" + "━" * 20 + "\x1b[0m\x1b[37m"
                              "\x1b[0m \x1b[1m3s\x1b[0m 6ms/step - accuracy: 0.9239 - loss: 0.2633\n")
    assert render_console(buf.getvalue().replace("\x1b[1m", "").replace("\x1b[0m", "")
                          .replace("\x1b[32m", "").replace("\x1b[37m", "")) == \
        "\n469/469 ━━━━━━━━━━━━━━━━━━━━ 3s 6ms/step - accuracy: 0.9239 - loss: 0.2633\n"


def test_keras3_progbar_rejects_both_metric_lists():
    from pycnn.utils.progbar import Keras3Progbar

    with pytest.raises(ValueError, match="Only one of `stateful_metrics` or `stateless_metrics`"):
        Keras3Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


@pytest.fixture
def keras3_style():
    import pycnn

    before = pycnn.config.get_output_style()
    pycnn.config.set_output_style("keras3")
    yield
    pycnn.config.set_output_style(before)


@pytest.mark.parametrize("mode", ["v1", "v2", "predict"])
def test_keras3_style_fit_prints_what_keras_3_prints(mode, keras3_style, monkeypatch):
    import pycnn
    import pycnn.utils.progbar as progbar_module
    from pycnn import layers

    monkeypatch.setattr(progbar_module, "time", _cases.FakeTime(0.0125))
    buf = _io.StringIO()
    with _contextlib.redirect_stdout(buf):
        _cases.fit_run(pycnn, layers, mode)
    assert buf.getvalue() == _KERAS3["fit"][mode]


def test_keras3_style_sorts_the_logs_as_keras_3(keras3_style, capsys):
    import pycnn
    from pycnn.callbacks import ProgbarLogger

    logger = ProgbarLogger()
    logger.set_params({"verbose": 2, "epochs": 1, "steps": 2})
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    logger.on_epoch_end(0, {"loss": 0.5, "mae": 0.25, "accuracy": 0.75, "val_loss": 0.4,
                            "val_accuracy": 0.5})
    line = capsys.readouterr().out
    assert line.startswith("2/2 - ")
    assert line.endswith("/step - accuracy: 0.7500 - loss: 0.5000 - mae: 0.2500 - "
                         "val_accuracy: 0.5000 - val_loss: 0.4000\n")


def test_default_style_keeps_tf_keras_bar_and_log_order(capsys):
    import pycnn
    from pycnn.callbacks import ProgbarLogger
    from pycnn.utils.progbar import Progbar

    assert pycnn.config.get_output_style() == "tf_keras"
    logger = ProgbarLogger()
    logger.set_params({"verbose": 2, "epochs": 1, "steps": 2})
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    assert type(logger.progbar) is Progbar
    logger.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75})
    assert " - loss: 0.5000 - accuracy: 0.7500 - " in capsys.readouterr().out


def test_environment_variable_gives_keras3_bar_in_a_child_process():
    import subprocess

    root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    env = {k: v for k, v in _os.environ.items() if not k.startswith("PYCNN_")}
    env.update(PYCNN_OUTPUT_STYLE="keras3",
               PYTHONPATH=root + _os.pathsep + env.get("PYTHONPATH", ""))
    code = ("import sys; sys.path.insert(0, 'tests/keras_refs'); import printing_cases as c; "
            "import pycnn, pycnn.utils.progbar as p; from pycnn import layers; "
            "p.time = c.FakeTime(0.0125); c.fit_run(pycnn, layers, 'v2')")
    r = subprocess.run([_sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                       text=True, encoding="utf-8", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == _KERAS3["fit"]["v2"]
