"""tf.keras 2's legacy ``ImageDataGenerator`` (``keras.preprocessing.image``): random rotations,
shifts, shears, zooms, flips, channel shifts and brightness applied to each image as it is
batched, plus rescaling and feature/sample-wise standardisation.

``flow(x, y)`` and ``flow_from_directory(directory)`` return iterators that are Keras
``Sequence``s (``len()``, ``[i]``, ``on_epoch_end()``) and Python iterators, so ``model.fit``
takes them. The geometry follows tf.keras 2's ``apply_affine_transform`` (rotation and shear in
degrees, shifts in pixels, zoom factors, the matrix centred at ``(h/2 - 0.5, w/2 - 0.5)``) with
SciPy's fill modes; a batch's warps run in one call of the C kernel (``_C.affine_warp``), one
image per task. Random draws use a ``np.random.RandomState`` seeded as tf.keras seeds NumPy's
global generator (``seed + batches seen``), so a seeded iterator yields tf.keras' batches.
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Callable, Optional

import numpy as np

from .. import _C, backend

_FILL_MODES = {"nearest": "nearest", "reflect": "reflect", "wrap": "scipy_wrap",
               "constant": "scipy_constant"}
_WHITE_LIST = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")


def _number(v: Any, arg: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                              np.floating)):
        raise ValueError(f"`{arg}` should be a number. Received: {v!r}")
    return float(v)


def transform_matrix(theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0, h=1, w=1) -> np.ndarray:
    """tf.keras 2's affine map of one image as pycnn's warp takes it, ``[a0, a1, a2, b0, b1,
    b2]`` (output column q, row r -> input column a0 q + a1 r + a2, row b0 q + b1 r + b2): the
    product rotation . shift . shear . zoom (``theta`` and ``shear`` in degrees, shifts in
    pixels), centred at (h/2 - 0.5, w/2 - 0.5), with its first two rows and columns exchanged
    as tf.keras exchanges them for channels-last images; so, as in tf.keras, ``tx`` (drawn from
    ``height_shift_range``) moves the content left by tx columns and ``ty`` up by ty rows."""
    m = np.eye(3)
    if theta != 0:
        t = np.deg2rad(theta)
        m = m @ np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if tx != 0 or ty != 0:
        m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    if shear != 0:
        s = np.deg2rad(shear)
        m = m @ np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    if zx != 1 or zy != 1:
        m = m @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    ox, oy = float(h) / 2 - 0.5, float(w) / 2 - 0.5
    m = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]) @ m @ \
        np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    m[:, [0, 1]] = m[:, [1, 0]]
    m[[0, 1]] = m[[1, 0]]
    # scipy: input (row, col) = m[:2, :2] @ (row, col) + m[:2, 2]
    return np.array([m[1, 1], m[1, 0], m[1, 2], m[0, 1], m[0, 0], m[0, 2]])


class ImageDataGenerator:
    """Generate batches of image data with real-time augmentation (tf.keras 2's legacy API).

    Example (the course's second practical)::

        datagen = ImageDataGenerator(rotation_range=10, zoom_range=0.1,
                                     width_shift_range=0.1, height_shift_range=0.1,
                                     horizontal_flip=True)
        model.fit(datagen.flow(x_train, y_train, batch_size=32), epochs=10)
    """

    def __init__(self, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None,
                 shear_range=0.0, zoom_range=0.0, channel_shift_range=0.0,
                 fill_mode="nearest", cval=0.0, horizontal_flip=False, vertical_flip=False,
                 rescale=None, preprocessing_function: Optional[Callable] = None,
                 data_format=None, validation_split=0.0, interpolation_order=1, dtype=None):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' only. "
                             f"Received: data_format={data_format!r}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"pycnn's ImageDataGenerator yields float32. Received: "
                             f"dtype={dtype!r}")
        if zca_whitening:
            raise ValueError("pycnn's ImageDataGenerator does not support `zca_whitening` yet")
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"`fill_mode` should be one of {sorted(_FILL_MODES)}. Received: "
                             f"{fill_mode!r}")
        if interpolation_order not in (0, 1):
            raise ValueError(f"pycnn supports interpolation_order 0 (nearest) and 1 (bilinear). "
                             f"Received: {interpolation_order!r}")
        if validation_split and not 0 < validation_split < 1:
            raise ValueError("`validation_split` must be strictly between 0 and 1.  "
                             f"Received: {validation_split}")
        if isinstance(zoom_range, (float, int, np.floating, np.integer)) and \
                not isinstance(zoom_range, bool):
            zoom = [1 - float(zoom_range), 1 + float(zoom_range)]
        elif isinstance(zoom_range, (tuple, list)) and len(zoom_range) == 2 and all(
                isinstance(v, (float, int, np.floating, np.integer)) for v in zoom_range):
            zoom = [float(zoom_range[0]), float(zoom_range[1])]
        else:
            raise ValueError("`zoom_range` should be a float or a tuple or list of two floats. "
                             f"Received: {zoom_range}")
        if brightness_range is not None and (not isinstance(brightness_range, (tuple, list))
                                             or len(brightness_range) != 2):
            raise ValueError("`brightness_range should be tuple or list of two floats. "
                             f"Received: {brightness_range}")
        for arg, v in (("rotation_range", rotation_range), ("shear_range", shear_range),
                       ("channel_shift_range", channel_shift_range), ("cval", cval)):
            _number(v, arg)
        self.featurewise_center = bool(featurewise_center)
        self.samplewise_center = bool(samplewise_center)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        if featurewise_std_normalization and not featurewise_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, "
                          "which overrides setting of `featurewise_center`.")
        if samplewise_std_normalization and not samplewise_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, "
                          "which overrides setting of `samplewise_center`.")
        self.zca_whitening, self.zca_epsilon = False, zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.brightness_range = brightness_range
        self.shear_range, self.zoom_range = shear_range, zoom
        self.channel_shift_range = channel_shift_range
        self.fill_mode, self.cval = fill_mode, float(cval)
        self.horizontal_flip, self.vertical_flip = bool(horizontal_flip), bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = "channels_last"
        self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        self.interpolation_order = interpolation_order
        self.dtype = "float32"
        self._validation_split = float(validation_split or 0.0)
        self.mean = self.std = None

    # ---- iterators ------------------------------------------------------------------------------
    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None,
             save_to_dir=None, save_prefix="", save_format="png", ignore_class_split=False,
             subset=None) -> "NumpyArrayIterator":
        """Batches of augmented ``x`` (N, H, W, C) with ``y`` (and ``sample_weight``)."""
        if save_to_dir is not None:
            raise ValueError("pycnn's ImageDataGenerator does not support `save_to_dir` yet")
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle,
                                  sample_weight=sample_weight, seed=seed,
                                  ignore_class_split=ignore_class_split, subset=subset)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32, shuffle=True,
                            seed=None, save_to_dir=None, save_prefix="", save_format="png",
                            follow_links=False, subset=None, interpolation="nearest",
                            keep_aspect_ratio=False) -> "DirectoryIterator":
        """Batches of augmented images read from ``directory/<class>/*`` (one sub-directory per
        class, in alphanumeric order), resized to ``target_size`` as they are read."""
        if save_to_dir is not None:
            raise ValueError("pycnn's ImageDataGenerator does not support `save_to_dir` yet")
        return DirectoryIterator(directory, self, target_size=target_size,
                                 color_mode=color_mode, classes=classes, class_mode=class_mode,
                                 batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 follow_links=follow_links, subset=subset,
                                 interpolation=interpolation,
                                 keep_aspect_ratio=keep_aspect_ratio)

    # ---- transforms -----------------------------------------------------------------------------
    def get_random_transform(self, img_shape, seed=None, random_state=None) -> dict:
        """Random parameters for one image of ``img_shape`` (H, W, C), drawn in tf.keras' order
        (``seed`` reseeds; ``random_state`` is the iterator's generator)."""
        rs = np.random.RandomState(seed) if seed is not None else (
            random_state if random_state is not None else _fresh_state())
        theta = rs.uniform(-self.rotation_range, self.rotation_range) \
            if self.rotation_range else 0

        def shift(rng_value, size):
            if not rng_value:
                return 0
            if isinstance(rng_value, (list, tuple, np.ndarray)) or (
                    isinstance(rng_value, (int, np.integer)) and not isinstance(rng_value, bool)):
                v = rs.choice(rng_value) if not isinstance(rng_value, (int, np.integer)) \
                    else rs.choice(rng_value)
                v = v * rs.choice([-1, 1])
            else:
                v = rs.uniform(-rng_value, rng_value)
            if np.max(rng_value) < 1:
                v *= size
            return v

        tx = shift(self.height_shift_range, img_shape[0])
        ty = shift(self.width_shift_range, img_shape[1])
        shear = rs.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = rs.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_h = (rs.random_sample() < 0.5) * self.horizontal_flip
        flip_v = (rs.random_sample() < 0.5) * self.vertical_flip
        channel_shift = rs.uniform(-self.channel_shift_range, self.channel_shift_range) \
            if self.channel_shift_range != 0 else None
        brightness = rs.uniform(self.brightness_range[0], self.brightness_range[1]) \
            if self.brightness_range is not None else None
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_h, "flip_vertical": flip_v,
                "channel_shift_intensity": channel_shift, "brightness": brightness}

    def apply_transform(self, x, transform_parameters) -> np.ndarray:
        """One image (H, W, C) transformed by the given parameters (tf.keras 2's order: affine
        warp, channel shift, horizontal then vertical flip, brightness)."""
        x = np.asarray(x, np.float32)
        if x.ndim != 3:
            raise ValueError("Input arrays must be multi-channel 2D images.")
        return self._transform_batch(x[None], [transform_parameters])[0]

    def random_transform(self, x, seed=None) -> np.ndarray:
        """One image (H, W, C) with freshly drawn random parameters."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def _transform_batch(self, x: np.ndarray, params: list) -> np.ndarray:
        """Images x (N, H, W, C) float32, each by its parameters: one C call for the warps."""
        n, h, w, c = x.shape
        t = np.empty((n, 6), np.float64)
        warped = np.zeros(n, bool)
        for i, p in enumerate(params):
            args = (p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                    p.get("zx", 1), p.get("zy", 1))
            warped[i] = args != (0, 0, 0, 0, 1, 1)
            t[i] = transform_matrix(*args, h=h, w=w)
        out = np.array(x, dtype=np.float32, copy=True)
        if warped.any():
            idx = np.flatnonzero(warped)
            src = np.ascontiguousarray(x[idx])
            dst = np.empty_like(src)
            _C.affine_warp(src, np.ascontiguousarray(t[idx], dtype=np.float32), dst,
                           interpolation="bilinear" if self.interpolation_order else "nearest",
                           fill_mode=_FILL_MODES[self.fill_mode], fill_value=self.cval)
            out[idx] = dst
        for i, p in enumerate(params):
            s = p.get("channel_shift_intensity")
            if s is not None:       # tf.keras: clip to the image's range after the warp
                lo, hi = out[i].min(), out[i].max()
                out[i] = np.clip(out[i] + np.float32(s), lo, hi)
        flags = np.array([(1 if p.get("flip_horizontal", False) else 0) |
                          (2 if p.get("flip_vertical", False) else 0) for p in params], np.uint8)
        if flags.any():
            flipped = np.empty_like(out)
            _C.flip(out, flags, flipped)
            out = flipped
        for i, p in enumerate(params):
            if p.get("brightness") is not None:
                out[i] = _brightness(out[i], p["brightness"])
        return out

    def standardize(self, x) -> np.ndarray:
        """``preprocessing_function``, ``rescale``, then sample-wise and feature-wise
        centring and scaling, on one image or a batch (in place for float32 arrays)."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        x = np.asarray(x, np.float32)
        if self.rescale:
            x *= np.float32(self.rescale)
        axes = tuple(range(x.ndim - 3, x.ndim))
        if self.samplewise_center:
            x -= np.mean(x, axis=axes, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, axis=axes, keepdims=True) + np.float32(1e-6)
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                warnings.warn("This ImageDataGenerator specifies `featurewise_center`, but it "
                              "hasn't been fit on any training data. Fit it first by calling "
                              "`.fit(numpy_data)`.")
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + np.float32(1e-6)
            else:
                warnings.warn("This ImageDataGenerator specifies "
                              "`featurewise_std_normalization`, but it hasn't been fit on any "
                              "training data. Fit it first by calling `.fit(numpy_data)`.")
        return x

    def _standardize_batch(self, batch: np.ndarray) -> np.ndarray:
        if self.preprocessing_function:     # tf.keras calls it on each image
            for i in range(len(batch)):
                batch[i] = self.preprocessing_function(batch[i])
        fn, self.preprocessing_function = self.preprocessing_function, None
        try:
            return self.standardize(batch)
        finally:
            self.preprocessing_function = fn

    def fit(self, x, augment=False, rounds=1, seed=None) -> None:
        """Compute the feature-wise mean and std (per channel) that ``featurewise_center`` and
        ``featurewise_std_normalization`` use, from sample data ``x`` (N, H, W, C)."""
        x = np.array(x, dtype=np.float32, copy=True)
        if x.ndim != 4:
            raise ValueError("Input to `.fit()` should have rank 4. Got array with shape: "
                             + str(x.shape))
        if x.shape[3] not in (1, 3, 4):
            warnings.warn(f"Expected input to be images (as Numpy array) following the data "
                          f'format convention "channels_last" (channels on axis 3), i.e. '
                          f"expected either 1, 3 or 4 channels on axis 3. However, it was "
                          f"passed an array with shape {x.shape} ({x.shape[3]} channels).")
        rs = np.random.RandomState(seed) if seed is not None else _fresh_state()
        if self.rescale:
            x *= np.float32(self.rescale)
        if augment:
            params = [self.get_random_transform(x.shape[1:], random_state=rs)
                      for _ in range(rounds) for _ in range(len(x))]
            x = self._transform_batch(np.concatenate([x] * rounds), params)
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(np.float32)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, 1, 2)).reshape(1, 1, -1).astype(np.float32)


def _fresh_state() -> np.random.RandomState:
    return np.random.RandomState(int(backend.rng().integers(2**31)))


def _brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """tf.keras 2's apply_brightness_shift(x, factor, scale=False): through an 8-bit PIL image
    (values truncated to integers, Pillow's blend with black truncating factor * value), scaled
    to 0-255 and back when the image leaves that range."""
    lo, hi = float(x.min()), float(x.max())
    local = lo < 0 or hi > 255
    v = x.astype(np.float64)
    if local:
        v = v - lo
        m = v.max()
        if m != 0:
            v = v / m
        v = v * 255
    v = np.trunc(np.clip(v, 0, 255)).astype(np.float32)      # array_to_img's astype("uint8")
    v = np.clip(np.trunc(v * np.float32(factor)), 0, 255)    # ImageEnhance.Brightness
    if local:
        v = v / 255 * (hi - lo) + lo
    return v.astype(np.float32)


class Iterator:
    """A Keras ``Sequence`` of batches over ``n`` samples (tf.keras 2's ``Iterator``): ``len()``
    batches, ``it[i]`` the i-th batch of this epoch's order, ``on_epoch_end()`` reshuffles, and
    ``next(it)`` walks the batches endlessly."""

    white_list_formats = _WHITE_LIST

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: Optional[int]):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"`batch_size` should be a positive integer. Received: "
                             f"{batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"`seed` should be None or a non-negative integer. Received: "
                             f"{seed!r}")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), seed
        self.shuffle = bool(shuffle)
        self.batch_index = 0
        self.total_batches_seen = 0
        self.lock = threading.Lock()
        self.index_array = None
        self._random = _fresh_state() if seed is None else np.random.RandomState(seed)
        self.index_generator = self._flow_index()

    def _reseed(self) -> None:
        if self.seed is not None:
            self._random = np.random.RandomState(int(self.seed) + self.total_batches_seen)

    def _set_index_array(self) -> None:
        self.index_array = np.arange(self.n)
        if self.shuffle:
            self.index_array = self._random.permutation(self.n)

    def __getitem__(self, idx):
        if idx >= len(self) or idx < -len(self):
            raise ValueError(f"Asked to retrieve element {idx}, but the Sequence has length "
                             f"{len(self)}")
        idx = idx % len(self)
        with self.lock:
            self._reseed()
            self.total_batches_seen += 1
            if self.index_array is None:
                self._set_index_array()
            index_array = self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)]
            return self._get_batches_of_transformed_samples(index_array)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def on_epoch_end(self) -> None:
        self._set_index_array()

    def reset(self) -> None:
        self.batch_index = 0

    def _flow_index(self):
        self.reset()
        while True:
            self._reseed()
            if self.batch_index == 0:
                self._set_index_array()
            current = (self.batch_index * self.batch_size) % self.n if self.n else 0
            if self.n > current + self.batch_size:
                self.batch_index += 1
            else:
                self.batch_index = 0
            self.total_batches_seen += 1
            yield self.index_array[current:current + self.batch_size]

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self):
        """The next batch."""
        with self.lock:
            index_array = next(self.index_generator)
            return self._get_batches_of_transformed_samples(index_array)

    def _augment(self, batch: np.ndarray) -> np.ndarray:
        gen = self.image_data_generator
        params = [gen.get_random_transform(batch.shape[1:], random_state=self._random)
                  for _ in range(len(batch))]
        return gen._standardize_batch(gen._transform_batch(batch, params))

    def _get_batches_of_transformed_samples(self, index_array):
        raise NotImplementedError


class NumpyArrayIterator(Iterator):
    """Batches of augmented images from arrays (``ImageDataGenerator.flow``)."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=False,
                 sample_weight=None, seed=None, subset=None, ignore_class_split=False,
                 **kwargs):
        if isinstance(x, (tuple, list)):
            misc = [np.asarray(x[1])] if not isinstance(x[1], list) else \
                [np.asarray(v) for v in x[1]]
            x = x[0]
            for v in misc:
                if len(x) != len(v):
                    raise ValueError("All of the arrays in `x` should have the same length. "
                                     f"Found a pair with: len(x[0]) = {len(x)}, len(x[?]) = "
                                     f"{len(v)}")
        else:
            misc = []
        if y is not None and len(x) != len(y):
            raise ValueError("`x` (images tensor) and `y` (labels) should have the same length. "
                             f"Found: x.shape = {np.asarray(x).shape}, y.shape = "
                             f"{np.asarray(y).shape}")
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError("`x` (images tensor) and `sample_weight` should have the same "
                             f"length. Found: x.shape = {np.asarray(x).shape}, "
                             f"sample_weight.shape = {np.asarray(sample_weight).shape}")
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f"Invalid subset name: {subset}; expected \"training\" or "
                                 "\"validation\".")
            split = int(len(x) * image_data_generator._validation_split)
            if y is not None and not ignore_class_split and not np.array_equal(
                    np.unique(np.asarray(y)[:split]), np.unique(np.asarray(y)[split:])):
                raise ValueError("Training and validation subsets have different number of "
                                 "classes after the split. If your numpy arrays are sorted by "
                                 "the label, you might want to shuffle them.")
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x, misc = x[part], [v[part] for v in misc]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
        self.x = np.asarray(x, dtype=np.float32)
        if self.x.ndim != 4:
            raise ValueError("Input data in `NumpyArrayIterator` should have rank 4. You passed "
                             f"an array with shape {self.x.shape}")
        if self.x.shape[3] not in (1, 3, 4):
            warnings.warn('NumpyArrayIterator is set to use the data format convention '
                          '"channels_last" (channels on axis 3), i.e. expected either 1, 3, or '
                          f"4 channels on axis 3. However, it was passed an array with shape "
                          f"{self.x.shape} ({self.x.shape[3]} channels).")
        self.x_misc = misc
        self.y = None if y is None else np.asarray(y)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self.image_data_generator = image_data_generator
        self.data_format = "channels_last"
        self.dtype = "float32"
        super().__init__(self.x.shape[0], batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array):
        batch_x = self._augment(np.ascontiguousarray(self.x[index_array]))
        miscs = [v[index_array] for v in self.x_misc]
        first = batch_x if not miscs else [batch_x] + miscs
        if self.y is None:
            return first
        out = (first, self.y[index_array])
        if self.sample_weight is not None:
            out += (self.sample_weight[index_array],)
        return out


def _valid_files(directory: str, follow_links: bool):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links),
                                 key=lambda t: t[0]):
        for fname in sorted(files):
            if fname.lower().endswith(_WHITE_LIST):
                yield root, fname


class DirectoryIterator(Iterator):
    """Batches of augmented images read from a directory of class sub-directories
    (``ImageDataGenerator.flow_from_directory``)."""

    allowed_class_modes = {"categorical", "binary", "sparse", "input", None}

    def __init__(self, directory, image_data_generator, target_size=(256, 256),
                 color_mode="rgb", classes=None, class_mode="categorical", batch_size=32,
                 shuffle=True, seed=None, data_format=None, follow_links=False, subset=None,
                 interpolation="nearest", keep_aspect_ratio=False, dtype=None, **kwargs):
        if color_mode not in ("rgb", "rgba", "grayscale"):
            raise ValueError(f"Invalid color mode: {color_mode}; expected \"rgb\", \"rgba\", "
                             "or \"grayscale\".")
        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"Invalid class_mode: {class_mode}; expected one of: "
                             f"{self.allowed_class_modes}")
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"Could not find directory {directory}")
        self.image_data_generator = image_data_generator
        self.target_size = tuple(int(v) for v in target_size)
        self.color_mode, self.class_mode = color_mode, class_mode
        self.interpolation, self.keep_aspect_ratio = interpolation, keep_aspect_ratio
        self.directory = directory
        self.data_format, self.dtype = "channels_last", "float32"
        channels = {"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode]
        self.image_shape = self.target_size + (channels,)
        if subset is not None:
            vs = image_data_generator._validation_split
            if subset == "validation":
                split = (0, vs)
            elif subset == "training":
                split = (vs, 1)
            else:
                raise ValueError(f"Invalid subset name: {subset};expected \"training\" or "
                                 "\"validation\"")
        else:
            split = None
        self.split, self.subset = split, subset
        if not classes:
            classes = [d for d in sorted(os.listdir(directory))
                       if os.path.isdir(os.path.join(directory, d))]
        self.num_classes = len(classes)
        self.class_indices = dict(zip(classes, range(len(classes))))
        self.filenames, labels = [], []
        for name in classes:
            sub = os.path.join(directory, name)
            files = list(_valid_files(sub, follow_links))
            if split:
                files = files[int(split[0] * len(files)):int(split[1] * len(files))]
            for root, fname in files:
                labels.append(self.class_indices[name])
                self.filenames.append(os.path.join(name, os.path.relpath(
                    os.path.join(root, fname), sub)))
        self.samples = len(self.filenames)
        self.classes = np.array(labels, dtype=np.int32)
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        self._filepaths = [os.path.join(directory, f) for f in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed)

    @property
    def filepaths(self) -> list:
        return self._filepaths

    @property
    def labels(self) -> np.ndarray:
        return self.classes

    def _load(self, path: str) -> np.ndarray:
        from ..utils.image_utils import img_to_array, load_img
        img = load_img(path, color_mode=self.color_mode, target_size=self.target_size,
                       interpolation=self.interpolation,
                       keep_aspect_ratio=self.keep_aspect_ratio)
        x = img_to_array(img, dtype="float32")
        if hasattr(img, "close"):
            img.close()
        return x

    def _get_batches_of_transformed_samples(self, index_array):
        batch = np.zeros((len(index_array),) + self.image_shape, np.float32)
        for i, j in enumerate(index_array):
            batch[i] = self._load(self._filepaths[j])
        batch_x = self._augment(batch) if self.image_data_generator else batch
        if self.class_mode == "input":
            return batch_x, batch_x.copy()
        if self.class_mode in ("binary", "sparse"):
            return batch_x, self.classes[index_array].astype(np.float32)
        if self.class_mode == "categorical":
            y = np.zeros((len(batch_x), self.num_classes), np.float32)
            y[np.arange(len(batch_x)), self.classes[index_array]] = 1.0
            return batch_x, y
        return batch_x


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=0, col_axis=1,
                           channel_axis=2, fill_mode="nearest", cval=0.0, order=1) -> np.ndarray:
    """tf.keras 2's ``apply_affine_transform`` of one channels-last image (H, W, C)."""
    if (row_axis, col_axis, channel_axis) != (0, 1, 2):
        raise ValueError("pycnn supports channels-last images: row_axis=0, col_axis=1, "
                         "channel_axis=2")
    gen = ImageDataGenerator(fill_mode=fill_mode, cval=cval, interpolation_order=order)
    return gen.apply_transform(x, {"theta": theta, "tx": tx, "ty": ty, "shear": shear,
                                   "zx": zx, "zy": zy})
