"""``keras.utils.PyDataset``/``Sequence`` subclasses as fit/evaluate/predict take them: batches
by index, every index once per epoch (in a new order with shuffle=True), on_epoch_begin/end
called around each epoch, steps per epoch from len()."""
import math

import numpy as np
import pytest

import pycnn as keras
from pycnn import layers


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seen, self.begins, self.ends = [], 0, 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        self.seen.append(idx)
        lo = idx * self.batch_size
        return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

    def on_epoch_begin(self):
        self.begins += 1

    def on_epoch_end(self):
        self.ends += 1


def _data():
    r = np.random.default_rng(0)
    return r.standard_normal((50, 6)).astype(np.float32), r.integers(0, 3, 50)


def _model():
    m = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_visits_every_batch_once_per_epoch_and_calls_the_epoch_hooks(shuffle):
    x, y = _data()
    seq = Batches(x, y, 16)
    history = _model().fit(seq, epochs=3, shuffle=shuffle, verbose=0)
    assert len(history.history["loss"]) == 3
    visits = [i for i in seq.seen]
    epochs = [visits[k:k + 4] for k in range(len(visits) - 12, len(visits), 4)]
    assert all(sorted(e) == [0, 1, 2, 3] for e in epochs)
    if not shuffle:
        assert all(e == [0, 1, 2, 3] for e in epochs)
    assert seq.ends == 3 and seq.begins == 3


def test_sequence_is_tf_keras_2s_name_and_evaluate_predict_take_it():
    assert keras.utils.Sequence is keras.utils.PyDataset
    x, y = _data()
    model = _model()
    model.fit(Batches(x, y, 16), epochs=1, verbose=0)
    loss, acc = model.evaluate(Batches(x, y, 16), verbose=0)
    np.testing.assert_allclose([loss, acc], model.evaluate(x, y, batch_size=16, verbose=0),
                               rtol=1e-6)
    np.testing.assert_array_equal(model.predict(Batches(x, y, 16), verbose=0),
                                  model.predict(x, batch_size=16, verbose=0))


def test_a_pydataset_without_len_or_getitem_says_what_to_define():
    class Empty(keras.utils.PyDataset):
        pass

    with pytest.raises(NotImplementedError, match="__len__"):
        len(Empty())
    with pytest.raises(ValueError, match="workers"):
        Empty(workers=0)
