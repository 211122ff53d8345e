"""Record what tf.keras 2 and Keras 3 print for printing_cases.py (run from this directory):

    TF_USE_LEGACY_KERAS=1 /work/venvs/tf/bin/python make_printing.py tf_keras
    /work/venvs/keras3/bin/python make_printing.py keras3

writes printing_tf_keras.json / printing_keras3.json: the summaries (print_fn's lines for
tf.keras; for Keras 3 the one string it gives print_fn, at 80 and at 200 terminal columns),
Keras 3's Progbar for each scenario and its fit / predict output with a fake clock."""
import contextlib
import io
import json
import os
import sys

import printing_cases as cases

which = sys.argv[1]
out = {"summary": {}}
if which == "tf_keras":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    from tf_keras import layers

    for name, build in cases.MODELS.items():
        if name in cases.KERAS3_ONLY:
            continue
        keras.backend.clear_session()
        lines = []
        build(keras, layers).summary(print_fn=lines.append)
        out["summary"][name] = lines
else:
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import keras.src.utils.progbar as progbar_module
    from keras import layers

    for columns in ("80", "200"):
        os.environ["COLUMNS"] = columns
        out["summary"][columns] = {}
        for name, build in cases.MODELS.items():
            keras.backend.clear_session()
            texts = []
            build(keras, layers).summary(print_fn=texts.append)
            out["summary"][columns][name] = texts
    out["progbar"] = {}
    for name, (kwargs, updates, step) in cases.PROGBARS.items():
        progbar_module.time = cases.FakeTime(step)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            bar = progbar_module.Progbar(**kwargs)
            for current, values, finalize in updates:
                bar.update(current, values, finalize=finalize)
        out["progbar"][name] = buf.getvalue()
    out["fit"] = {}
    for mode in ("v1", "v2", "predict"):
        keras.backend.clear_session()
        progbar_module.time = cases.FakeTime(0.0125)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cases.fit_run(keras, layers, mode)
        out["fit"][mode] = buf.getvalue()
with open(f"printing_{which}.json", "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
