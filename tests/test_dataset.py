"""pycnn's tf.data-like Dataset: element order, cardinalities, seeds, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pycnn.data import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset


def values(ds) -> list:
    return [np.asarray(e).tolist() for e in ds]


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before


def xy(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return x, y


def test_from_tensor_slices_yields_numpy_tuples_in_order():
    x, y = xy()
    ds = Dataset.from_tensor_slices((x, y))
    items = list(ds)
    assert len(items) == len(ds) == ds.cardinality() == 10
    for i, (a, b) in enumerate(items):
        np.testing.assert_array_equal(a, x[i])
        assert b == y[i]
    d = Dataset.from_tensor_slices({"a": x, "b": y})
    first = next(iter(d))
    assert set(first) == {"a", "b"} and first["b"] == 0
    assert values(Dataset.from_tensor_slices([1, 2, 3])) == [1, 2, 3]


def test_from_tensor_slices_errors():
    with pytest.raises(ValueError, match="same first dimension"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="rank >= 1"):
        Dataset.from_tensor_slices(np.float32(1))


def test_iteration_restarts_every_pass():
    ds = Dataset.from_tensor_slices(np.arange(5)).map(lambda v: v * 2).batch(2)
    assert values(ds) == values(ds) == [[0, 2], [4, 6], [8]]


def test_batch_stacks_and_counts():
    x, y = xy(10)
    ds = Dataset.from_tensor_slices((x, y)).batch(4)
    batches = list(ds)
    assert len(ds) == 3 and [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert batches[2][1].tolist() == [8, 9]
    assert len(Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)) == 2
    assert len(list(Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True))) == 2
    with pytest.raises(ValueError, match="batch_size"):
        Dataset.range(3).batch(0)
    ragged = Dataset.from_generator(lambda: iter([np.zeros(2), np.zeros(3)])).batch(2)
    with pytest.raises(ValueError, match="cannot batch elements of different shapes"):
        list(ragged)


def test_unbatch_inverts_batch():
    x, y = xy(7)
    ds = Dataset.from_tensor_slices((x, y)).batch(3).unbatch()
    assert ds.cardinality() == UNKNOWN_CARDINALITY
    with pytest.raises(TypeError, match="The dataset length is unknown."):
        len(ds)
    out = list(ds)
    np.testing.assert_array_equal(np.stack([a for a, _ in out]), x)
    assert [int(b) for _, b in out] == list(range(7))


def test_map_unpacks_tuples_and_parallel_map_keeps_order():
    x, y = xy(50)
    ds = Dataset.from_tensor_slices((x, y))

    def slow(a, b):
        time.sleep(0.001 * (int(b) % 3))
        return a.sum(), b

    serial = [(float(a), int(b)) for a, b in ds.map(slow)]
    for calls in (2, 4, AUTOTUNE):
        assert [(float(a), int(b)) for a, b in ds.map(slow, num_parallel_calls=calls)] == serial
    assert ds.map(slow, num_parallel_calls=4).cardinality() == 50


def test_parallel_map_uses_threads():
    seen = set()

    def record(v):
        seen.add(threading.get_ident())
        time.sleep(0.002)
        return v

    list(Dataset.range(40).map(record, num_parallel_calls=4))
    assert len(seen) > 1


def test_map_exception_propagates_and_threads_end():
    def boom(v):
        if v == 5:
            raise RuntimeError("bad element")
        return v

    with pytest.raises(RuntimeError, match="bad element"):
        list(Dataset.range(20).map(boom, num_parallel_calls=3))
    with pytest.raises(RuntimeError, match="bad element"):
        list(Dataset.range(20).map(boom).prefetch(2))


def test_shuffle_is_a_permutation_deterministic_with_seed():
    ds = Dataset.range(100).shuffle(100, seed=3)
    a, b = values(ds), values(ds)
    assert sorted(a) == list(range(100)) and sorted(b) == list(range(100))
    assert a != b  # reshuffled each pass
    assert values(Dataset.range(100).shuffle(100, seed=3)) == a  # same seed, same passes
    fixed = Dataset.range(100).shuffle(100, seed=3, reshuffle_each_iteration=False)
    assert values(fixed) == values(fixed)
    assert values(Dataset.range(100).shuffle(100, seed=4)) != a


def test_shuffle_buffer_limits_how_far_elements_move():
    # With a buffer of 5, the element yielded i-th comes from the first i + 5 inputs.
    order = values(Dataset.range(200).shuffle(5, seed=0))
    assert sorted(order) == list(range(200))
    assert all(v < i + 5 for i, v in enumerate(order))
    assert values(Dataset.range(10).shuffle(1, seed=0)) == list(range(10))


def test_shuffle_without_seed_follows_numpy_global_seed():
    np.random.seed(11)
    a = values(Dataset.range(30).shuffle(30))
    np.random.seed(11)
    assert values(Dataset.range(30).shuffle(30)) == a


def test_take_skip_repeat_cardinalities():
    ds = Dataset.range(10)
    assert values(ds.take(3)) == [0, 1, 2] and len(ds.take(3)) == 3
    assert values(ds.skip(8)) == [8, 9] and len(ds.skip(8)) == 2
    assert len(ds.take(-1)) == 10 and len(ds.skip(-1)) == 0 and values(ds.skip(-1)) == []
    assert len(ds.skip(20)) == 0
    assert values(ds.take(2).repeat(3)) == [0, 1] * 3 and len(ds.take(2).repeat(3)) == 6
    inf = ds.repeat()
    assert inf.cardinality() == INFINITE_CARDINALITY
    with pytest.raises(TypeError, match="The dataset is infinite."):
        len(inf)
    assert values(inf.take(25)) == list(range(10)) * 2 + list(range(5))
    assert len(inf.take(25)) == 25
    assert len(ds.batch(3).repeat(2)) == 8
    assert values(Dataset.range(0).repeat()) == []


def test_repeat_reshuffles_each_repetition():
    ds = Dataset.range(20).shuffle(20, seed=1).repeat(2)
    out = values(ds)
    assert sorted(out[:20]) == sorted(out[20:]) == list(range(20))
    assert out[:20] != out[20:]


def test_cache_runs_the_pipeline_once():
    calls = []
    ds = Dataset.range(5).map(lambda v: calls.append(int(v)) or v * 10).cache()
    assert values(ds) == [0, 10, 20, 30, 40]
    assert values(ds) == [0, 10, 20, 30, 40]
    assert calls == [0, 1, 2, 3, 4]
    partial = Dataset.range(5).map(lambda v: calls.append(int(v)) or v).cache()
    calls.clear()
    next(iter(partial))
    assert values(partial) == [0, 1, 2, 3, 4]  # an interrupted pass cached nothing
    with pytest.raises(NotImplementedError, match="in memory only"):
        Dataset.range(3).cache("file.cache")


def test_prefetch_yields_everything_and_its_thread_ends():
    x, y = xy(33)
    ds = Dataset.from_tensor_slices((x, y)).batch(4).prefetch(2)
    assert len(ds) == 9
    assert [int(b[-1]) for _, b in ds] == [3, 7, 11, 15, 19, 23, 27, 31, 32]
    # Abandoned after one batch: the producer thread is stopped and joined.
    it = iter(ds)
    next(it)
    assert any(t.name == "pycnn-prefetch" for t in threading.enumerate())
    it.close()
    assert not any(t.name == "pycnn-prefetch" for t in threading.enumerate())
    for i, _ in enumerate(Dataset.range(1000).prefetch(AUTOTUNE)):
        if i == 3:
            break


def test_prefetch_runs_ahead_in_the_background():
    produced = []
    ds = Dataset.range(10).map(lambda v: produced.append(int(v)) or v).prefetch(3)
    it = iter(ds)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(produced) >= 4  # element 0 taken, 1..3 in the buffer
    it.close()


def test_filter_zip_range_from_tensors():
    assert values(Dataset.range(10).filter(lambda v: v % 3 == 0)) == [0, 3, 6, 9]
    z = Dataset.zip((Dataset.range(3), Dataset.range(10, 20)))
    assert [(int(a), int(b)) for a, b in z] == [(0, 10), (1, 11), (2, 12)] and len(z) == 3
    assert values(Dataset.range(2, 8, 3)) == [2, 5]
    one = Dataset.from_tensors((np.zeros((2, 2)), np.ones(2)))
    assert len(one) == 1 and next(iter(one))[0].shape == (2, 2)


def test_a_typical_pipeline_gives_fit_batches():
    x, y = xy(20)
    ds = (Dataset.from_tensor_slices((x, y)).shuffle(20, seed=0)
          .map(lambda a, b: (a / 10.0, b), num_parallel_calls=AUTOTUNE)
          .batch(8).prefetch(AUTOTUNE))
    assert len(ds) == 3
    for _ in range(2):  # two epochs
        seen = []
        for bx, by in ds:
            assert isinstance(bx, np.ndarray) and isinstance(by, np.ndarray)
            np.testing.assert_allclose(bx, x[by] / 10.0)
            seen += by.tolist()
        assert sorted(seen) == list(range(20))


def test_argument_errors():
    with pytest.raises(TypeError, match="count"):
        Dataset.range(3).take(1.5)
    with pytest.raises(ValueError, match="count"):
        Dataset.range(3).skip(-2)
    with pytest.raises(ValueError, match="buffer_size"):
        Dataset.range(3).shuffle(0)
    with pytest.raises(TypeError, match="map_func"):
        Dataset.range(3).map(3)
    assert values(Dataset.range(3).take(np.int64(2))) == [0, 1]
