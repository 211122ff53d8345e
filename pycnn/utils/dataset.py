"""A small `tf.data.Dataset` for NumPy: input pipelines without TensorFlow.

```python
ds = pycnn.data.Dataset.from_tensor_slices((x_train, y_train))
ds = ds.shuffle(1024, seed=0).map(augment, num_parallel_calls=4).batch(32).prefetch(2)
model.fit(ds, epochs=5)
```

A `Dataset` is a recipe: iterating over it (`for batch in ds`, `iter(ds)`)
runs the pipeline from the start each time, so one dataset serves every
epoch of `fit`. Elements are NumPy arrays, or tuples / lists / dicts of
them (the structure `from_tensor_slices` was given); `batch` stacks
elements along a new first axis, so batches are NumPy arrays as well.

`Model.fit(dataset)` iterates the dataset once per epoch and expects each
element to be a batch `(x, y)` or `(x, y, sample_weight)`; `len(dataset)`
(when the number of batches is known) gives the steps per epoch.

Differences from `tf.data`: there is no graph and no `element_spec`;
`map` calls the function on NumPy arrays; the random order of `shuffle`
comes from NumPy's generator (with a seed it repeats from run to run,
but it is not TensorFlow's order).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

#: `cardinality()` of an infinite dataset (as `tf.data.INFINITE_CARDINALITY`).
INFINITE_CARDINALITY = -1
#: `cardinality()` when the number of elements is not known in advance.
UNKNOWN_CARDINALITY = -2
#: Let pycnn choose the parallelism or buffer size (as `tf.data.AUTOTUNE`).
AUTOTUNE = -1

_AUTOTUNE_WORKERS = 4
_AUTOTUNE_BUFFER = 2


# --------------------------------------------------------------------------
# nested structures: arrays, tuples, lists and dicts of them


def _map_structure(fn: Callable[..., Any], *trees: Any) -> Any:
    first = trees[0]
    if isinstance(first, tuple) and not hasattr(first, "_fields"):
        return tuple(_map_structure(fn, *parts) for parts in zip(*trees, strict=True))
    if isinstance(first, list):
        return [_map_structure(fn, *parts) for parts in zip(*trees, strict=True)]
    if isinstance(first, dict):
        return {k: _map_structure(fn, *(t[k] for t in trees)) for k in first}
    return fn(*trees)


def _leaves(tree: Any) -> list[Any]:
    out: list[Any] = []
    _map_structure(out.append, tree)
    return out


def _same_structure(a: Any, b: Any) -> bool:
    try:
        _map_structure(lambda *_: None, a, b)
    except (ValueError, KeyError, TypeError):
        return False
    return type(a) is type(b) or not isinstance(a, (tuple, list, dict))


def _check_count(value: Any, name: str, allow_minus_one: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    value = int(value)
    if value < (-1 if allow_minus_one else 1):
        expected = "-1 or a non-negative integer" if allow_minus_one else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value}")
    return value


def _call(fn: Callable[..., Any], element: Any) -> Any:
    """Calls `fn` as `tf.data` does: a tuple element is unpacked into arguments."""
    if isinstance(element, tuple):
        return fn(*element)
    return fn(element)


class Dataset:
    """A re-iterable pipeline of NumPy elements, with `tf.data.Dataset`'s methods.

    Build one with `Dataset.from_tensor_slices`, `from_tensors`, `range`,
    `zip` or `from_generator`, then chain `map`, `filter`, `shuffle`,
    `batch`, `unbatch`, `take`, `skip`, `repeat`, `cache` and `prefetch`;
    each returns a new dataset and leaves this one unchanged.
    """

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], cardinality: int):
        """Internal: `make_iterator()` starts a fresh pass over the elements."""
        self._make_iterator = make_iterator
        self._cardinality = int(cardinality)

    # ---- sources -----------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors: Any) -> Dataset:
        """A dataset whose elements are slices of `tensors` along their first axis.

        `tensors` is an array, or a tuple / list / dict of arrays that all
        have the same first dimension: `from_tensor_slices((x, y))` yields
        `(x[i], y[i])`. A list of numbers is one array, as in `tf.data`.
        """
        if isinstance(tensors, list) and not any(
            isinstance(t, (np.ndarray, tuple, list, dict)) for t in tensors
        ):
            tensors = np.asarray(tensors)
        tensors = _map_structure(np.asarray, tensors)
        leaves = _leaves(tensors)
        if not leaves:
            raise ValueError("from_tensor_slices() needs at least one array.")
        for leaf in leaves:
            if leaf.ndim == 0:
                raise ValueError(
                    "from_tensor_slices() slices along the first axis; every "
                    f"component needs rank >= 1. Received a scalar: {leaf!r}"
                )
        lengths = {leaf.shape[0] for leaf in leaves}
        if len(lengths) != 1:
            shapes = [leaf.shape for leaf in leaves]
            raise ValueError(
                "Dimensions of the components given to from_tensor_slices() "
                f"must all have the same first dimension. Received shapes: {shapes}"
            )
        n = lengths.pop()

        def make() -> Iterator[Any]:
            for i in range(n):
                yield _map_structure(lambda a: a[i], tensors)

        return Dataset(make, n)

    @staticmethod
    def from_tensors(tensors: Any) -> Dataset:
        """A dataset of one element: `tensors` itself."""
        tensors = _map_structure(np.asarray, tensors)
        return Dataset(lambda: iter((tensors,)), 1)

    @staticmethod
    def range(*args: int) -> Dataset:
        """`Dataset.range(stop)` or `range(start, stop[, step])`, as Python's `range`."""
        r = range(*(int(a) for a in args))
        return Dataset(lambda: (np.int64(i) for i in r), len(r))

    @staticmethod
    def zip(*datasets: Any) -> Dataset:
        """Zips datasets (a tuple of them, or several arguments) into tuples of elements."""
        if len(datasets) == 1 and isinstance(datasets[0], (tuple, list)):
            datasets = tuple(datasets[0])
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.zip() expects datasets. Received: {d!r}")
        cards = [d.cardinality() for d in datasets]
        finite = [c for c in cards if c >= 0]
        if finite:
            card = min(finite) if UNKNOWN_CARDINALITY not in cards else UNKNOWN_CARDINALITY
            if UNKNOWN_CARDINALITY in cards and min(finite) == 0:
                card = 0
        elif UNKNOWN_CARDINALITY in cards:
            card = UNKNOWN_CARDINALITY
        else:
            card = INFINITE_CARDINALITY

        def make() -> Iterator[Any]:
            return zip(*(iter(d) for d in datasets))

        return Dataset(make, card)

    @staticmethod
    def from_generator(generator: Callable[[], Iterable[Any]], **_ignored: Any) -> Dataset:
        """A dataset whose elements come from calling `generator()` (once per pass).

        `output_signature` and the other `tf.data` arguments are accepted and
        ignored: elements are converted with `np.asarray`.
        """
        if not callable(generator):
            raise TypeError("`generator` must be a callable that returns an iterable.")

        def make() -> Iterator[Any]:
            for element in generator():
                yield _map_structure(np.asarray, element)

        return Dataset(make, UNKNOWN_CARDINALITY)

    # ---- iteration and size -------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        """Starts a new pass over the elements (every call starts from the beginning)."""
        return self._make_iterator()

    def as_numpy_iterator(self) -> Iterator[Any]:
        """An iterator over the elements (they already are NumPy arrays)."""
        return iter(self)

    def cardinality(self) -> int:
        """The number of elements; `INFINITE_CARDINALITY` (-1) or `UNKNOWN_CARDINALITY` (-2)."""
        return self._cardinality

    def __len__(self) -> int:
        """The number of elements; a `TypeError` when infinite or unknown, as `tf.data`."""
        if self._cardinality == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if self._cardinality == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return self._cardinality

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        card = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}
        return f"<Dataset cardinality={card.get(self._cardinality, self._cardinality)}>"

    # ---- transformations ----------------------------------------------------

    def map(
        self,
        map_func: Callable[..., Any],
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Applies `map_func` to each element (a tuple element is unpacked into arguments).

        With `num_parallel_calls` (a number, or `AUTOTUNE`) the calls run in
        that many worker threads; the order of the elements is kept
        (`deterministic` is accepted and ignored). Functions that spend their
        time in NumPy or Pillow release the GIL, so the threads overlap.
        """
        if not callable(map_func):
            raise TypeError(f"`map_func` must be callable. Received: {map_func!r}")
        workers = _workers(num_parallel_calls)
        source = self

        def convert(out: Any) -> Any:
            return _map_structure(np.asarray, out) if out is not None else out

        if workers <= 1:
            def make() -> Iterator[Any]:
                for element in source:
                    yield convert(_call(map_func, element))
        else:
            def make() -> Iterator[Any]:
                return _parallel_map(source, lambda e: convert(_call(map_func, e)), workers)

        return Dataset(make, self._cardinality)

    def _unknown_unless_infinite(self) -> int:
        """The cardinality of a dataset drawn from this one in an unknown number: infinite
        stays infinite, anything else is unknown."""
        if self._cardinality == INFINITE_CARDINALITY:
            return INFINITE_CARDINALITY
        return UNKNOWN_CARDINALITY

    def filter(self, predicate: Callable[..., Any]) -> Dataset:
        """Keeps the elements for which `predicate` is true."""
        source = self

        def make() -> Iterator[Any]:
            for element in source:
                if bool(np.asarray(_call(predicate, element))):
                    yield element

        return Dataset(make, self._unknown_unless_infinite())

    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Stacks `batch_size` consecutive elements into one (arrays with a new first axis).

        The last batch is smaller unless `drop_remainder=True` drops it.
        """
        batch_size = _check_count(batch_size, "batch_size", allow_minus_one=False)
        source = self

        def make() -> Iterator[Any]:
            it = iter(source)
            try:
                while True:
                    chunk = list(itertools.islice(it, batch_size))
                    if not chunk or (drop_remainder and len(chunk) < batch_size):
                        return
                    yield _stack(chunk)
            finally:
                _close(it)

        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        return Dataset(make, card)

    def unbatch(self) -> Dataset:
        """Splits each element along its first axis into separate elements."""
        source = self

        def make() -> Iterator[Any]:
            for element in source:
                leaves = _leaves(element)
                n = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
                if None in n or len(n) != 1:
                    raise ValueError(
                        "unbatch() needs every component of an element to have "
                        "the same first dimension."
                    )
                for i in range(n.pop()):
                    yield _map_structure(lambda a: a[i], element)

        return Dataset(make, self._unknown_unless_infinite())

    def shuffle(
        self,
        buffer_size: int,
        seed: int | None = None,
        reshuffle_each_iteration: bool = True,
        name: str | None = None,
    ) -> Dataset:
        """Shuffles the elements with a buffer of `buffer_size`, as `tf.data`.

        The first `buffer_size` elements fill a buffer; each element yielded
        is drawn at random from it and replaced by the next input element.
        A buffer at least as large as the dataset gives a uniform shuffle.

        With a `seed`, the order repeats from run to run. With
        `reshuffle_each_iteration=True` (the default) each pass (each epoch)
        has a different order; with `False` every pass has the same one.
        Without a seed, one is drawn from NumPy's global generator (seeded
        by `pycnn.utils.set_random_seed`).
        """
        buffer_size = _check_count(buffer_size, "buffer_size")
        if buffer_size == 0:
            raise ValueError("`buffer_size` must be greater than zero.")
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"`seed` must be an integer. Received: seed={seed!r}")
            seed = int(seed) % (2**63)
        source = self
        passes = itertools.count()
        lock = threading.Lock()

        def make() -> Iterator[Any]:
            with lock:
                epoch = next(passes) if reshuffle_each_iteration else 0
            rng = np.random.default_rng([seed, epoch])
            return _shuffled(source, buffer_size, rng)

        return Dataset(make, self._cardinality)

    def take(self, count: int, name: str | None = None) -> Dataset:
        """The first `count` elements (all of them when `count` is -1)."""
        count = _check_count(count, "count")
        if count == -1:
            return Dataset(self._make_iterator, self._cardinality)
        source = self

        def make() -> Iterator[Any]:
            it = iter(source)
            try:
                yield from itertools.islice(it, count)
            finally:
                _close(it)

        card = self._cardinality
        card = count if card == INFINITE_CARDINALITY else (
            min(card, count) if card >= 0 else UNKNOWN_CARDINALITY)
        return Dataset(make, card)

    def skip(self, count: int, name: str | None = None) -> Dataset:
        """All but the first `count` elements (none when `count` is -1)."""
        count = _check_count(count, "count")
        source = self

        def make() -> Iterator[Any]:
            if count == -1:
                return
            it = iter(source)
            try:
                yield from itertools.islice(it, count, None)
            finally:
                _close(it)

        card = self._cardinality
        if count == -1:
            card = 0 if card != INFINITE_CARDINALITY else UNKNOWN_CARDINALITY
        elif card >= 0:
            card = max(card - count, 0)
        return Dataset(make, card)

    def repeat(self, count: int | None = None, name: str | None = None) -> Dataset:
        """Repeats the dataset `count` times (forever when `count` is None or -1).

        Each repetition is a new pass: a shuffled dataset under `repeat` is
        reshuffled each time (as `tf.data`).
        """
        count = -1 if count is None else _check_count(count, "count")
        source = self

        def make() -> Iterator[Any]:
            passes = itertools.count() if count == -1 else range(count)
            for _ in passes:
                got = False
                for element in source:
                    got = True
                    yield element
                if not got:
                    return

        card = self._cardinality
        if count == -1:
            card = 0 if card == 0 else INFINITE_CARDINALITY
        elif card >= 0:
            card = card * count
        elif count == 0:
            card = 0
        return Dataset(make, card)

    def cache(self, filename: str = "", name: str | None = None) -> Dataset:
        """Keeps the elements in memory after the first complete pass.

        Later passes read them from memory instead of running the pipeline
        above `cache()` again (a pass stopped early caches nothing). Only
        the in-memory cache exists: `filename` must be empty.
        """
        if filename:
            raise NotImplementedError(
                "pycnn's Dataset.cache() keeps elements in memory only; "
                f"a file cache is not supported. Received: filename={filename!r}"
            )
        if self._cardinality == INFINITE_CARDINALITY:
            raise ValueError("cache() of an infinite dataset would never complete.")
        source = self
        store: list[list[Any]] = []
        lock = threading.Lock()

        def make() -> Iterator[Any]:
            with lock:
                cached = store[0] if store else None
            if cached is not None:
                yield from cached
                return
            elements = []
            for element in source:
                elements.append(element)
                yield element
            with lock:
                if not store:
                    store.append(elements)

        return Dataset(make, self._cardinality)

    def prefetch(self, buffer_size: int, name: str | None = None) -> Dataset:
        """Prepares up to `buffer_size` elements ahead in a background thread.

        While the model trains on one batch, the thread produces the next
        ones. The thread is stopped and joined when the pass ends, also when
        it is abandoned early (`break`, an exception, garbage collection).
        `buffer_size=AUTOTUNE` (-1) means 2.
        """
        buffer_size = _check_count(buffer_size, "buffer_size")
        if buffer_size == -1:
            buffer_size = _AUTOTUNE_BUFFER
        if buffer_size == 0:
            return Dataset(self._make_iterator, self._cardinality)
        source = self

        def make() -> Iterator[Any]:
            return _prefetched(source, buffer_size)

        return Dataset(make, self._cardinality)


# --------------------------------------------------------------------------
# the iterators behind the transformations


def _workers(num_parallel_calls: int | None) -> int:
    if num_parallel_calls is None:
        return 1
    n = _check_count(num_parallel_calls, "num_parallel_calls")
    if n == -1:
        return _AUTOTUNE_WORKERS
    if n == 0:
        raise ValueError("`num_parallel_calls` must be positive or AUTOTUNE.")
    return n


def _close(it: Iterator[Any]) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


def _stack(chunk: list[Any]) -> Any:
    first = chunk[0]
    for element in chunk[1:]:
        if not _same_structure(first, element):
            raise ValueError("batch(): the elements do not all have the same structure.")

    def stack(*parts: Any) -> np.ndarray:
        try:
            return np.stack([np.asarray(p) for p in parts])
        except ValueError:
            shapes = sorted({np.shape(p) for p in parts})
            raise ValueError(
                "batch(): cannot batch elements of different shapes "
                f"{shapes}; resize them first (e.g. in map())."
            ) from None

    return _map_structure(stack, *chunk)


def _shuffled(source: Dataset, buffer_size: int, rng: np.random.Generator) -> Iterator[Any]:
    it = iter(source)
    buffer: list[Any] = []
    try:
        for element in it:
            if len(buffer) < buffer_size:
                buffer.append(element)
                continue
            i = int(rng.integers(len(buffer)))
            out, buffer[i] = buffer[i], element
            yield out
        while buffer:
            i = int(rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    finally:
        _close(it)


def _parallel_map(source: Dataset, fn: Callable[[Any], Any], workers: int) -> Iterator[Any]:
    """`fn` over `source` in `workers` threads, results in input order."""
    from concurrent.futures import ThreadPoolExecutor

    it = iter(source)
    pending: list[Any] = []
    window = 2 * workers
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pycnn-map")
    try:
        for element in it:
            pending.append(executor.submit(fn, element))
            if len(pending) >= window:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True)
        _close(it)


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _prefetched(source: Dataset, buffer_size: int) -> Iterator[Any]:
    """Elements of `source` produced by a background thread into a bounded queue."""
    q: queue.Queue[Any] = queue.Queue(maxsize=buffer_size)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = None
        try:
            it = iter(source)
            for element in it:
                if not put(element):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
        finally:
            if it is not None:
                _close(it)

    thread = threading.Thread(target=produce, name="pycnn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()

