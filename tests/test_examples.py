"""The course's vision examples (``examples/*.py``) run end to end with ``--quick``, each in a
child process as a student would run it: from an empty working directory, with its own
temporary directory, and without a network (``--quick`` needs no dataset files, except
``see_inside.py``, which reads the real MNIST and skips when it is absent).

Each checks what the script promises: it exits 0, prints its results, writes nothing into the
working directory, and leaves no temporary files behind."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path, *args: str, env: dict | None = None) -> str:
    """Run ``examples/<name> --quick *args`` in ``tmp_path/cwd`` with ``TMPDIR`` in
    ``tmp_path/tmp``; return its output (stdout and stderr) after checking that it exited 0,
    wrote nothing into its working directory and removed its temporary files."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    child_env = dict(os.environ)
    child_env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in
                                                     [os.environ.get("PYTHONPATH")] if p]),
        "TMPDIR": str(tmp),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(tmp_path / "mplconfig"),
        "PYCNN_CACHE_DIR": str(tmp_path / "pycnn-cache"),   # never the user's caches
        "KERAS_HOME": str(tmp_path / "keras-home"),
    })
    child_env.update(env or {})
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", *args], cwd=cwd,
                          env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    out = proc.stdout.replace("\r", "\n")
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{out[-4000:]}"
    assert sorted(p.name for p in cwd.iterdir()) == [], f"{name} wrote into its working directory"
    assert sorted(p.name for p in tmp.iterdir()) == [], f"{name} left temporary files behind"
    return out


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"no line matching {pattern!r} in the output:\n{text[-3000:]}"
    return float(m.group(1))


def test_each_example_says_what_it_does_and_how_to_run_it():
    for name in ["practical2_signs.py", "unet_shapes.py", "transfer_learning.py",
                 "see_inside.py"]:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""'), name
        doc = text.split('"""')[1]
        assert f"python examples/{name}" in doc and f"python examples/{name} --quick" in doc, \
            name
        assert "import pycnn as keras" in text, name


def test_practical2_signs_trains_saves_loads_and_predicts_on_an_image_file(tmp_path):
    out = run_example("practical2_signs.py", tmp_path)
    assert "data: shapes, 1500 training and 300 validation images (28, 28), 10 classes" in out
    assert "Total params: 256867" in out         # the practical's model: 256,867 parameters
    assert re.search(r"47/47 \[=+\] - .* - loss: [\d.]+ - accuracy: [\d.]+ - val_loss", out)
    m = re.search(r"the loaded model says \S+new_image\.png shows: (.+) \(p = ([\d.]+)\)", out)
    assert m, out[-3000:]
    assert 0 < float(m.group(2)) <= 1
    augmented = number(r"validation accuracy with augmentation: +([\d.]+)", out)
    reloaded = number(r"validation accuracy of the reloaded model: ([\d.]+)", out)
    assert reloaded == augmented                   # the .keras file holds the trained model
    assert 0 <= number(r"validation accuracy without augmentation: ([\d.]+)", out) <= 1


def test_practical2_signs_saves_into_save_dir_and_predicts_on_a_given_file(tmp_path):
    import numpy as np
    from pycnn.utils import save_img

    image = tmp_path / "my_letter.jpg"
    yy, xx = np.mgrid[0:40, 0:40]
    save_img(image, (((yy - 20) ** 2 + (xx - 20) ** 2 < 150) * 255.0)[..., None], scale=False)
    keep = tmp_path / "kept"
    out = run_example("practical2_signs.py", tmp_path, "--epochs", "1", "--image", str(image),
                      "--save-dir", str(keep))
    assert f"the loaded model says {image} shows: " in out
    assert (keep / "practical2_model.keras").is_file()
    from pycnn.models import load_model
    model = load_model(keep / "practical2_model.keras")
    assert model.count_params() == 256867
    assert model.output_shape == (None, 10)


def test_unet_shapes_trains_and_reports_iou_on_held_out_images(tmp_path):
    out = run_example("unet_shapes.py", tmp_path)
    assert "256 training and 64 held-out images (64, 64, 1)" in out
    assert "conv2d_transpose" in out and "concatenate" in out
    assert re.search(r"15/15 \[=+\] - .* - loss: [\d.]+ - iou: [\d.e+-]+ - val_loss", out)
    iou = number(r"held-out IoU of the shapes: ([\d.]+)", out)
    mean_iou = number(r"held-out mean IoU \(shapes and background\): ([\d.]+)", out)
    assert 0 <= iou <= 1 and 0 <= mean_iou <= 1


def test_transfer_learning_runs_both_phases_on_an_image_folder(tmp_path):
    out = run_example("transfer_learning.py", tmp_path)
    assert "wrote 60 generated images" in out
    assert "Found 60 files belonging to 3 classes." in out
    assert "Using 48 files for training." in out and "Using 12 files for validation." in out
    assert "RANDOM weights" in out                 # says the accuracies mean little
    # phase 1 trains only the head (1280 * 3 + 3), phase 2 also the base's top layers
    assert "Trainable params: 3843 " in out
    assert "fine-tuning the top 20 of the base's 154 layers" in out
    for phase in ("after feature extraction", "after fine-tuning"):
        assert 0 <= number(rf"validation accuracy {phase}: +([\d.]+)", out) <= 1


def test_transfer_learning_reads_a_given_data_dir(tmp_path):
    import numpy as np
    from pycnn.utils import save_img

    data = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (data / name).mkdir(parents=True)
        for i in range(10):
            save_img(data / name / f"{i}.png", rng.uniform(0, 255, (50, 70, 3)))
    out = run_example("transfer_learning.py", tmp_path, "--data-dir", str(data),
                      "--unfreeze", "5")
    assert "Found 20 files belonging to 2 classes." in out
    assert "classes: ['cats', 'dogs']" in out
    assert "fine-tuning the top 5 of the base's 154 layers" in out


def _mnist_data_dir() -> Path:
    for d in [DATA_DIR, os.environ.get("PYCNN_DATA_DIR")]:
        if d and all((Path(d) / "mnist" / f"{n}.gz").is_file() or (Path(d) / "mnist" / n)
                     .is_file() for n in ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]):
            return Path(d)
    pytest.skip(f"real MNIST data not found in {DATA_DIR}/mnist or $PYCNN_DATA_DIR/mnist")


def test_see_inside_draws_the_lecture_pictures(tmp_path):
    from PIL import Image

    pictures = tmp_path / "pictures"
    out = run_example("see_inside.py", tmp_path, "--out", str(pictures),
                      env={"PYCNN_DATA_DIR": str(_mnist_data_dir())})
    assert number(r"test accuracy: ([\d.]+)", out) > 0.3     # chance is 0.1
    names = ["history.png", "confusion_matrix.png", "filters_conv1.png", "filters_conv2.png",
             "filters_conv3.png"] + [f"feature_maps_{n}.png" for n in
                                     ("conv1", "pool1", "conv2", "conv3")] + \
        [f"class_activation_{i}.png" for i in range(3)]
    assert sorted(p.name for p in pictures.iterdir()) == sorted(names)
    for name in names:
        with Image.open(pictures / name) as im:
            assert im.format == "PNG"
            assert min(im.size) >= 100, (name, im.size)
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is None or len(colours) > 10, f"{name} is nearly blank"


def test_see_inside_default_output_directory_is_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "see_inside_output/" in ignored


def test_fit_takes_the_practicals_float_steps_per_epoch_as_tf_keras_2_does():
    """The practical's ``fit(img_iter, steps_per_epoch=len(x_train) / batch_size)``: tf.keras
    2 runs ceil(steps) batches an epoch (2.21: 4 batches for 100 / 32); 0, negative, NaN and
    infinite steps stay errors."""
    import math

    import numpy as np
    import pycnn as keras
    from pycnn.preprocessing.image import ImageDataGenerator

    x = np.random.default_rng(0).random((100, 8, 8, 1), dtype=np.float32)
    y = keras.utils.to_categorical(np.arange(100) % 3, 3)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    batches = []
    count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    img_iter = ImageDataGenerator(rotation_range=10).flow(x, y, batch_size=32)
    model.fit(img_iter, epochs=2, steps_per_epoch=len(x) / 32, verbose=0, callbacks=[count])
    assert batches == [0, 1, 2, 3, 0, 1, 2, 3]
    model.fit(x, y, epochs=1, steps_per_epoch=np.float64(1.5), verbose=0, callbacks=[count])
    assert batches[8:] == [0, 1]
    for bad in (0.0, -1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="steps_per_epoch"):
            model.fit(img_iter, steps_per_epoch=bad, verbose=0)
