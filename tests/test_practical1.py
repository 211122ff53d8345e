"""examples/practical1_mlp.py end to end in ``--quick`` mode (2,000 training images from
train.csv, 2 epochs; test.csv then holds only MNIST's first 500 test images, so the submission
has 500 rows, not Kaggle's 28,000 or MNIST's 10,000), in a child process as a student runs it.

The child finds MNIST through ``PYCNN_DATA_DIR`` set to the suite's ``mnist_dir`` (the tests
skip when MNIST is not there)."""
from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from childproc import child_env, python_cmd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "practical1_mlp.py"
QUICK_TEST_IMAGES = 500


@pytest.fixture(scope="module")
def quick_run(mnist_dir, tmp_path_factory):
    """Run the example once with --quick into a temporary work directory; return (stdout,
    workdir)."""
    tmp_path = tmp_path_factory.mktemp("practical1")
    workdir = tmp_path / "work"
    env = child_env(PYCNN_DATA_DIR=str(mnist_dir), PYCNN_CACHE_DIR=str(tmp_path / "cache"),
                    KERAS_HOME=str(tmp_path / "keras"))
    proc = subprocess.run(python_cmd() + [str(EXAMPLE), "--quick", "--seed", "0",
                                          "--workdir", str(workdir)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, workdir


def test_quick_run_writes_the_competition_files(quick_run):
    _, workdir = quick_run
    with open(workdir / "train.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label"] + [f"pixel{i}" for i in range(784)]
    assert len(rows) == 1 + 2000
    assert all(len(r) == 785 for r in rows[1:])
    assert rows[1][0] == "5" and rows[2][0] == "0"          # MNIST's first training labels
    with open(workdir / "test.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [f"pixel{i}" for i in range(784)]
    assert len(rows) == 1 + QUICK_TEST_IMAGES
    pixels = np.array(rows[1:], dtype=np.int64)
    assert pixels.min() == 0 and pixels.max() == 255


def test_quick_run_submission_has_kaggles_format(quick_run):
    _, workdir = quick_run
    with open(workdir / "submission.csv", newline="") as f:
        text = f.read()
    lines = text.splitlines()
    assert lines[0] == "ImageId,Label"
    assert len(lines) == 1 + QUICK_TEST_IMAGES
    ids, labels = zip(*(line.split(",") for line in lines[1:]))
    assert [int(i) for i in ids] == list(range(1, QUICK_TEST_IMAGES + 1))
    assert all(re.fullmatch(r"[0-9]", label) for label in labels)
    assert len(set(labels)) > 1                 # not one class for every image


def test_quick_run_prints_progress_and_an_accuracy_that_matches_the_submission(
        quick_run, mnist_dir):
    from pycnn.datasets import mnist

    out, workdir = quick_run
    assert re.search(r"^Epoch 1/2$", out, re.M) and re.search(r"^Epoch 2/2$", out, re.M)
    assert len(re.findall(r"^16/16 - .* - loss: [0-9.]+ - accuracy: [0-9.]+", out, re.M)) == 2
    m = re.search(r"^test accuracy: ([0-9.]+)$", out, re.M)
    assert m, out[-2000:]
    accuracy = float(m.group(1))
    _, (_, y_test) = mnist.load_data(path=mnist_dir / "mnist")
    with open(workdir / "submission.csv", newline="") as f:
        submitted = np.array([int(r["Label"]) for r in csv.DictReader(f)])
    assert accuracy == pytest.approx(np.mean(submitted == y_test[:QUICK_TEST_IMAGES]), abs=5e-5)
    assert accuracy > 0.5                       # two epochs on 2,000 images learn something
    assert re.search(r"^training time: [0-9.]+ s", out, re.M)
