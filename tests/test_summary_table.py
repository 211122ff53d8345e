"""model.summary() text must match tf.keras 2.15 character for character."""

import pytest

from pycnn.utils.summary_table import (
    format_summary,
    print_summary,
    readable_memory_size,
    summary_lines,
)

RULE = "_" * 65
BLANK = " " * 65

# The lecture's first table (lecture4.md, part 2), every line padded to 65.
LECTURE_MODEL = [
    'Model: "model"',
    '_________________________________________________________________',
    ' Layer (type)                Output Shape              Param #   ',
    '=================================================================',
    ' input_2 (InputLayer)        [(None, 28, 28, 1)]       0         ',
    '                                                                 ',
    ' conv2d_1 (Conv2D)           (None, 26, 26, 32)        320       ',
    '                                                                 ',
    ' max_pooling2d (MaxPooling2  (None, 13, 13, 32)        0         ',
    ' D)                                                              ',
    '                                                                 ',
    ' conv2d_2 (Conv2D)           (None, 11, 11, 64)        18496     ',
    '                                                                 ',
    ' max_pooling2d_1 (MaxPoolin  (None, 5, 5, 64)          0         ',
    ' g2D)                                                            ',
    '                                                                 ',
    ' conv2d_3 (Conv2D)           (None, 3, 3, 128)         73856     ',
    '                                                                 ',
    ' flatten (Flatten)           (None, 1152)              0         ',
    '                                                                 ',
    ' dense (Dense)               (None, 10)                11530     ',
    '                                                                 ',
    '=================================================================',
    'Total params: 104202 (407.04 KB)',
    'Trainable params: 104202 (407.04 KB)',
    'Non-trainable params: 0 (0.00 Byte)',
]
LECTURE_MODEL_ROWS = [
    ("input_2", "InputLayer", "[(None, 28, 28, 1)]", 0),
    ("conv2d_1", "Conv2D", "(None, 26, 26, 32)", 320),
    ("max_pooling2d", "MaxPooling2D", "(None, 13, 13, 32)", 0),
    ("conv2d_2", "Conv2D", "(None, 11, 11, 64)", 18496),
    ("max_pooling2d_1", "MaxPooling2D", "(None, 5, 5, 64)", 0),
    ("conv2d_3", "Conv2D", "(None, 3, 3, 128)", 73856),
    ("flatten", "Flatten", "(None, 1152)", 0),
    ("dense", "Dense", "(None, 10)", 11530),
]

# The lecture's second table (part 3, no pooling).
LECTURE_MODEL_1 = [
    'Model: "model_1"',
    '_________________________________________________________________',
    ' Layer (type)                Output Shape              Param #   ',
    '=================================================================',
    ' input_2 (InputLayer)        [(None, 28, 28, 1)]       0         ',
    '                                                                 ',
    ' conv2d_3 (Conv2D)           (None, 26, 26, 32)        320       ',
    '                                                                 ',
    ' conv2d_4 (Conv2D)           (None, 24, 24, 64)        18496     ',
    '                                                                 ',
    ' conv2d_5 (Conv2D)           (None, 22, 22, 128)       73856     ',
    '                                                                 ',
    ' flatten_1 (Flatten)         (None, 61952)             0         ',
    '                                                                 ',
    ' dense_1 (Dense)             (None, 10)                619530    ',
    '                                                                 ',
    '=================================================================',
    'Total params: 712202 (2.72 MB)',
    'Trainable params: 712202 (2.72 MB)',
    'Non-trainable params: 0 (0.00 Byte)',
]
LECTURE_MODEL_1_ROWS = [
    ("input_2", "InputLayer", "[(None, 28, 28, 1)]", 0),
    ("conv2d_3", "Conv2D", "(None, 26, 26, 32)", 320),
    ("conv2d_4", "Conv2D", "(None, 24, 24, 64)", 18496),
    ("conv2d_5", "Conv2D", "(None, 22, 22, 128)", 73856),
    ("flatten_1", "Flatten", "(None, 61952)", 0),
    ("dense_1", "Dense", "(None, 10)", 619530),
]


def test_expected_tables_are_padded_like_the_lecture():
    # guards the expected data itself against editors stripping spaces
    for expected in (LECTURE_MODEL, LECTURE_MODEL_1):
        for line in expected[1:-3]:
            assert len(line) == 65, repr(line)


@pytest.mark.parametrize(
    "name, rows, total, expected",
    [
        ("model", LECTURE_MODEL_ROWS, 104202, LECTURE_MODEL),
        ("model_1", LECTURE_MODEL_1_ROWS, 712202, LECTURE_MODEL_1),
    ],
)
def test_lecture_tables_exactly(name, rows, total, expected):
    assert sum(r[3] for r in rows) == total
    text = format_summary(name, rows, trainable_count=total, non_trainable_count=0)
    # Keras ends with a closing rule the lecture's excerpt leaves out.
    assert text == "\n".join(expected + [RULE])


def test_lecture_table_line_by_line_for_readable_failures():
    lines = summary_lines("model", LECTURE_MODEL_ROWS, 104202, 0)
    assert len(lines) == len(LECTURE_MODEL) + 1
    for got, want in zip(lines, LECTURE_MODEL):
        assert got == want
    assert lines[-1] == RULE


def test_print_summary_calls_print_fn_per_line():
    got = []
    print_summary("model_1", LECTURE_MODEL_1_ROWS, 712202, 0, print_fn=got.append)
    assert got == LECTURE_MODEL_1 + [RULE]


def test_print_summary_defaults_to_stdout(capsys):
    print_summary("model", LECTURE_MODEL_ROWS, 104202, 0)
    assert capsys.readouterr().out == "\n".join(LECTURE_MODEL + [RULE]) + "\n"


def test_columns_start_at_1_29_55():
    lines = summary_lines("m", [("a", "B", "(None, 3)", 7)], 7, 0)
    row = lines[4]
    assert row == " a (B)" + " " * 23 + "(None, 3)" + " " * 17 + "7" + " " * 9
    assert row.index("(None") == 29 and row.index("7") == 55 and len(row) == 65
    assert lines[5] == BLANK


def test_first_column_fits_26_characters_then_wraps():
    name26 = "abcdefghijklmnopq (Conv2D)"  # exactly 26 characters
    assert len(name26) == 26
    lines = summary_lines("m", [("abcdefghijklmnopq", "Conv2D", "(None, 1)", 1)], 1, 0)
    assert lines[4] == " " + name26 + "  " + "(None, 1)" + " " * 17 + "1" + " " * 9
    assert lines[5] == BLANK  # no continuation line

    long_rows = [("a_very_long_layer_name_indeed", "MaxPooling2D", "(None, 2)", 0)]
    lines = summary_lines("m", long_rows, 0, 0)
    text = "a_very_long_layer_name_indeed (MaxPooling2D)"
    assert lines[4] == " " + text[:26] + "  " + "(None, 2)" + " " * 17 + "0" + " " * 9
    assert lines[5] == (" " + text[26:]).ljust(65)
    assert lines[6] == BLANK
    assert lines[7] == "=" * 65


def test_cell_wraps_over_three_lines():
    name = "x" * 60
    lines = summary_lines("m", [(name, "Dense", "(None, 1)", 5)], 5, 0)
    full = name + " (Dense)"
    assert lines[4].startswith(" " + full[:26] + "  (None, 1)")
    assert lines[5] == (" " + full[26:52]).ljust(65)
    assert lines[6] == (" " + full[52:]).ljust(65)
    assert lines[7] == BLANK


def test_output_shape_column_wraps_after_a_closing_bracket():
    # Keras prefers to break after "),", "},", "]," or "',"
    rows = [("lstm", "LSTM", "[(None, 10), (None, 10), (None, 10)]", 840)]
    lines = summary_lines("m", rows, 840, 0)
    assert lines[4] == " lstm (LSTM)".ljust(29) + "[(None, 10),".ljust(26) + "840".ljust(10)
    assert lines[5] == " " * 29 + " (None, 10),".ljust(26) + " " * 10
    assert lines[6] == " " * 29 + " (None, 10)]".ljust(26) + " " * 10
    assert lines[7] == BLANK


def test_output_shape_column_hard_wraps_at_23():
    shape = "(None, 1000000, 1000000, 1000000)"
    lines = summary_lines("m", [("d", "Dense", shape, 1)], 1, 0)
    assert lines[4][29:52] == shape[:23] and lines[4][52:55] == "   "
    assert lines[5] == (" " * 29 + shape[23:]).ljust(65)


def test_non_trainable_and_totals():
    lines = summary_lines("m", [("bn", "BatchNormalization", "(None, 8)", 32)], 16, 16)
    assert lines[-4:] == [
        "Total params: 32 (128.00 Byte)",
        "Trainable params: 16 (64.00 Byte)",
        "Non-trainable params: 16 (64.00 Byte)",
        RULE,
    ]


def test_empty_model_and_custom_width():
    lines = summary_lines("sequential", [], 0, 0, line_length=40)
    assert lines == [
        'Model: "sequential"',
        "_" * 40,
        # positions int(40*.45)=18, int(40*.85)=34, 40: the last column
        # holds 6 characters, so even the header wraps (as in Keras)
        " Layer (type)     Output Shape    Param ",
        " " * 34 + "#" + " " * 5,
        "=" * 40,
        "=" * 40,
        "Total params: 0 (0.00 Byte)",
        "Trainable params: 0 (0.00 Byte)",
        "Non-trainable params: 0 (0.00 Byte)",
        "_" * 40,
    ]


def test_four_column_layout_with_connections():
    headers = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    rows = [("add", "Add", "(None, 4)", 0, ["dense[0][0]", "dense_1[0][0]"])]
    lines = summary_lines(
        "model", rows, 0, 0, line_length=98, positions=(0.3, 0.6, 0.7, 1.0),
        headers=headers,
    )
    # positions 29, 58, 68, 98
    assert lines[2] == " Layer (type)".ljust(29) + "Output Shape".ljust(29) \
        + "Param #".ljust(10) + "Connected to".ljust(30)
    assert lines[4] == " add (Add)".ljust(29) + "(None, 4)".ljust(29) + "0".ljust(10) \
        + "['dense[0][0]',".ljust(30)
    assert lines[5] == " " * 68 + " 'dense_1[0][0]']".ljust(30)


def test_row_length_is_checked():
    with pytest.raises(ValueError):
        summary_lines("m", [("a", "B", "(None, 1)")], 0, 0)


@pytest.mark.parametrize(
    "n_bytes, text",
    [
        (0, "0.00 Byte"),
        (4, "4.00 Byte"),
        (1023, "1023.00 Byte"),
        (1024, "1.00 KB"),
        (104202 * 4, "407.04 KB"),
        (712202 * 4, "2.72 MB"),
        (3 * 1024**3, "3.00 GB"),
        (5 * 1024**4, "5.00 TB"),
        (5 * 1024**5, "5.00 PB"),
    ],
)
def test_readable_memory_size(n_bytes, text):
    assert readable_memory_size(n_bytes) == text


# ---- models against tf.keras 2 and Keras 3 (tests/keras_refs/make_printing.py) -------------------
import contextlib as _contextlib
import io as _io
import json as _json
import os as _os
import sys as _sys

_REFS = _os.path.join(_os.path.dirname(__file__), "keras_refs")
_sys.path.insert(0, _REFS)
import printing_cases as _cases  # noqa: E402

_sys.path.remove(_REFS)
with open(_os.path.join(_REFS, "printing_tf_keras.json"), encoding="utf-8") as _f:
    TF_KERAS = _json.load(_f)
with open(_os.path.join(_REFS, "printing_keras3.json"), encoding="utf-8") as _f:
    KERAS3 = _json.load(_f)


@pytest.fixture
def style():
    """Set pycnn's output style for one test, restoring the previous one afterwards."""
    import pycnn

    before = pycnn.config.get_output_style()
    yield pycnn.config.set_output_style
    pycnn.config.set_output_style(before)


def _pycnn_model(name):
    import pycnn
    from pycnn import layers

    return _cases.MODELS[name](pycnn, layers)


@pytest.mark.parametrize("name", sorted(TF_KERAS["summary"]))
def test_summary_prints_what_tf_keras_2_prints(name):
    lines = []
    _pycnn_model(name).summary(print_fn=lines.append)
    assert lines == TF_KERAS["summary"][name]


def test_connected_to_column_for_a_two_input_model():
    # tf.keras 2's lines (98 wide: columns at 29, 58, 68; a list cell breaks after "',")
    lines = []
    _pycnn_model("two_inputs").summary(print_fn=lines.append)
    assert lines[2] == " Layer (type)".ljust(29) + "Output Shape".ljust(29) + \
        "Param #".ljust(10) + "Connected to".ljust(30)
    assert lines[12:14] == [
        " concat (Concatenate)        (None, 32)                   0         ['dense_a[0][0]',"
        "             ",
        "                                                                     'dense_b[0][0]']"
        "             ",
    ]
    assert all(len(line) == 98 for line in lines[1:18])


def test_shared_layer_lists_both_calls_and_its_node_indices():
    lines = []
    _pycnn_model("shared_layer").summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "['left[0][0]'," in text and "'right[0][0]']" in text
    assert "['shared[0][0]'," in text and "'shared[1][0]']" in text


def test_node_index_counts_calls_made_for_other_models():
    lines = []
    _pycnn_model("reused_from_another_model").summary(print_fn=lines.append)
    assert any("['reused[1][0]'," in line for line in lines)


def test_nested_functional_model_shows_as_functional():
    lines = []
    _pycnn_model("nested_functional_chain").summary(print_fn=lines.append)
    assert lines[6].startswith(" encoder (Functional)  ")


def test_chain_with_a_nested_sequential_keeps_three_columns():
    lines = []
    _pycnn_model("nested_sequential_chain").summary(print_fn=lines.append)
    assert len(lines[1]) == 65 and "Connected to" not in lines[2]


def test_subclassed_model_is_named_after_its_class():
    import pycnn

    class MyModel(pycnn.Model):
        def call(self, x):
            return x

    class HTTPNet2D(pycnn.Model):
        def call(self, x):
            return x

    assert [MyModel().name, MyModel().name] == ["my_model", "my_model_1"]
    assert HTTPNet2D().name == "http_net2d"
    inp = pycnn.Input((2,))
    assert pycnn.Model(inp, pycnn.layers.Dense(1)(inp)).name == "model"
    assert pycnn.Sequential().name == "sequential"


@pytest.mark.parametrize("columns", ["80", "200"])
@pytest.mark.parametrize("name", sorted(set(KERAS3["summary"]["80"]) - set(_cases.KERAS3_SKIP)))
def test_keras3_style_summary_prints_what_keras_3_prints(name, columns, style, monkeypatch):
    # Keras 3 is as wide as the terminal allows (shutil.get_terminal_size: $COLUMNS first)
    monkeypatch.setenv("COLUMNS", columns)
    style("keras3")
    texts = []
    _pycnn_model(name).summary(print_fn=texts.append)
    assert texts == KERAS3["summary"][columns][name]


def test_keras3_style_summary_without_print_fn_writes_the_same_text(style, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    style("keras3")
    _pycnn_model("lecture_convnet").summary()
    out = capsys.readouterr().out
    assert [out] == KERAS3["summary"]["80"]["lecture_convnet"]
    assert out.splitlines()[-3:] == [" Total params: 104,202 (407.04 KB)",
                                     " Trainable params: 104,202 (407.04 KB)",
                                     " Non-trainable params: 0 (0.00 B)"]


def test_keras3_table_layout_narrow():
    # Keras 3's summary(line_length=40 / 30) of Sequential([Input((1232,)), Dense(1001)]):
    # rich takes the borders' room off the columns, wraps at spaces, cuts a word that does
    # not fit with "…" and aligns header cells at the bottom.
    from pycnn.utils.summary_table import keras3_summary_text

    rows = [("d", "Dense", "(None, 1001)", 1234233)]
    assert keras3_summary_text("m", rows, 1234233, 0, line_length=40) == (
        'Model: "m"\n┏━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━┓\n┃                 ┃ Output     '
        '┃ Param ┃\n┃ Layer (type)    ┃ Shape      ┃     # ┃\n┡━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━'
        '╇━━━━━━━┩\n│ d (Dense)       │ (None,     │ 1,23… │\n│                 │ 1001)      │  '
        '     │\n└─────────────────┴────────────┴───────┘\n Total params: 1,234,233 (4.71 MB)'
        '\n Trainable params: 1,234,233 (4.71 MB)\n Non-trainable params: 0 (0.00 B)\n')
    assert keras3_summary_text("m", rows, 1234233, 0, line_length=30) == (
        'Model: "m"\n┏━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━┓\n┃ Layer      ┃ Output  ┃ Pa… ┃\n┃ (type)  '
        '   ┃ Shape   ┃   # ┃\n┡━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━┩\n│ d (Dense)  │ (None,  │ 1,… │\n│ '
        '           │ 1001)   │     │\n└────────────┴─────────┴─────┘\n Total params: 1,234,233 '
        '(4.71 MB)\n Trainable params: 1,234,233 (4.71 MB)\n Non-trainable params: 0 (0.00 B)\n')


def test_tf_keras_style_is_the_default_and_unchanged_by_keras3_calls(style):
    import pycnn

    assert pycnn.config.get_output_style() == "tf_keras"
    style("keras3")
    style("tf_keras")
    lines = []
    _pycnn_model("lecture_convnet").summary(print_fn=lines.append)
    assert lines[1] == "_" * 65 and lines[-4] == "Total params: 104202 (407.04 KB)"


@pytest.mark.parametrize("bad", ["keras2", "Keras3", "", None, 3])
def test_set_output_style_names_the_choices(bad, style):
    with pytest.raises(ValueError, match='"tf_keras".*"keras3"'):
        style(bad)


def _child(code, **env):
    import subprocess

    root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    child_env = {k: v for k, v in _os.environ.items() if not k.startswith("PYCNN_")}
    child_env.update(env)
    child_env["PYTHONPATH"] = root + _os.pathsep + child_env.get("PYTHONPATH", "")
    child_env["COLUMNS"] = "80"
    return subprocess.run([_sys.executable, "-c", code], env=child_env, cwd=root,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


_CHILD_SUMMARY = (
    "import sys; sys.path.insert(0, 'tests/keras_refs'); import printing_cases as c; "
    "import pycnn; from pycnn import layers; print(pycnn.config.get_output_style()); "
    "c.lecture_convnet(pycnn, layers).summary()")


def test_environment_variable_selects_keras3_output():
    r = _child(_CHILD_SUMMARY, PYCNN_OUTPUT_STYLE="keras3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "keras3\n" + KERAS3["summary"]["80"]["lecture_convnet"][0]


def test_environment_variable_tf_keras_or_unset_gives_the_lectures_output():
    for env in ({}, {"PYCNN_OUTPUT_STYLE": "tf_keras"}):
        r = _child(_CHILD_SUMMARY, **env)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "tf_keras"
        assert lines[1:] == TF_KERAS["summary"]["lecture_convnet"]


def test_bad_environment_variable_names_the_variable():
    r = _child("import pycnn", PYCNN_OUTPUT_STYLE="keras_3")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError:") and "PYCNN_OUTPUT_STYLE" in last
    assert "'keras_3'" in last and '"keras3"' in last
