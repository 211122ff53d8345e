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
