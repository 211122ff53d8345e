"""`image_dataset_from_directory`: a folder of images per class -> a `Dataset` of batches.

The files are listed, ordered, shuffled and split exactly as Keras 3 does
(`keras.utils.image_dataset_from_directory`), so `file_paths` and the
training / validation subsets are the same files as in Keras for the same
`seed`. Images are decoded with Pillow and resized with the arithmetic of
`tf.image.resize` (see `pycnn.utils.image_resize`) in a pool of worker
threads, ahead of the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import image_resize
from .dataset import Dataset
from .image_utils import pil_image

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

#: Threads that decode and resize images.
NUM_WORKERS = 4


def image_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: tuple[int, int] | int = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
) -> Dataset | list[Dataset]:
    """Generates a dataset from image files in a directory.

    If your directory structure is:

    ```
    main_directory/
    ...class_a/
    ......a_image_1.jpg
    ......a_image_2.jpg
    ...class_b/
    ......b_image_1.jpg
    ......b_image_2.jpg
    ```

    Then calling `image_dataset_from_directory(main_directory,
    labels='inferred')` will return a dataset that yields batches of images
    from the subdirectories `class_a` and `class_b`, together with labels 0
    and 1 (0 corresponding to `class_a` and 1 corresponding to `class_b`).

    Supported image formats: `.jpeg`, `.jpg`, `.png`, `.bmp`, `.gif`.
    Animated gifs are truncated to the first frame.

    Args:
        directory: Directory where the data is located. If `labels` is
            `"inferred"`, it should contain subdirectories, each containing
            images for a class. Otherwise, the directory structure is ignored.
        labels: Either `"inferred"` (labels are generated from the directory
            structure), `None` (no labels), or a list/tuple of integer labels
            of the same size as the number of image files found in the
            directory, sorted according to the alphanumeric order of the
            image file paths (obtained via `os.walk(directory)`).
        label_mode: `"int"` (`int32` labels, shape `(batch_size,)`),
            `"categorical"` (`float32` one-hot, `(batch_size, num_classes)`),
            `"binary"` (`float32` 0 or 1, `(batch_size, 1)`, exactly two
            classes), or `None` (no labels).
        class_names: Only valid if `labels` is `"inferred"`. The explicit
            list of class names (must match names of subdirectories), to
            control the order of the classes (otherwise alphanumerical).
        color_mode: One of `"grayscale"`, `"rgb"`, `"rgba"`: images are
            converted to 1, 3 or 4 channels. Defaults to `"rgb"`.
        batch_size: Size of the batches of data. Defaults to 32. If `None`,
            the data is not batched (the dataset yields single samples).
        image_size: Size to resize images to, `(height, width)` (or one int
            for a square). Defaults to `(256, 256)`.
        shuffle: Whether to shuffle the data. Defaults to `True`. If `False`,
            sorts the data in alphanumeric order.
        seed: Optional random seed for shuffling.
        validation_split: Optional float between 0 and 1, fraction of data
            to reserve for validation.
        subset: `"training"`, `"validation"` or `"both"` (a list of the two
            datasets). Only used if `validation_split` is set.
        interpolation: The interpolation method used when resizing images:
            `"bilinear"` (the default), `"nearest"`, `"bicubic"`, `"area"`,
            `"lanczos3"`, `"lanczos5"`, `"gaussian"`, `"mitchellcubic"`.
        follow_links: Whether to visit subdirectories pointed to by symlinks.
        crop_to_aspect_ratio: If `True`, resize the images without aspect
            ratio distortion: the largest centred window with the target
            aspect ratio is cropped, then resized.
        data_format: `"channels_last"` (the default, `None`) or
            `"channels_first"`.
        verbose: Whether to print the number of files and classes found.

    Returns:
        A `Dataset` (a list `[train, validation]` with `subset="both"`) with
        the attributes `class_names` and `file_paths`. It yields
        `(images, labels)`, or only `images` when `label_mode` is `None`:
        `images` are `float32` arrays `(batch_size, height, width,
        channels)` with values 0..255; `labels` as described for
        `label_mode`. Iterating again (the next epoch) reshuffles the
        training data.

    Differences from Keras: JPEG files are decoded by Pillow (libjpeg), so
    their pixels can differ by a few levels from TensorFlow's decoder, and
    the reshuffling of each epoch (Keras' `shuffle(buffer_size=8 *
    batch_size)`) draws from NumPy's generator, not TensorFlow's.
    """
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, "
                "of the same size as the number of image files in the target "
                "directory. If you wish to infer the labels from the "
                "subdirectory "
                'names in the target directory, pass `labels="inferred"`. '
                "If you wish to get a dataset that only contains images "
                f"(no labels), pass `labels=None`. Received: labels={labels}"
            )
        if class_names:
            raise ValueError(
                "You can only pass `class_names` if "
                f'`labels="inferred"`. Received: labels={labels}, and '
                f"class_names={class_names}"
            )
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError(
            '`label_mode` argument must be one of "int", '
            '"categorical", "binary", '
            f"or None. Received: label_mode={label_mode}"
        )
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}.get(color_mode)
    if channels is None:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
            f"Received: color_mode={color_mode}"
        )
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    elif not isinstance(image_size, (list, tuple)) or not len(image_size) == 2:
        raise ValueError(
            "Invalid `image_size` value. Expected a tuple of 2 integers. "
            f"Received: image_size={image_size}"
        )
    image_size = (int(image_size[0]), int(image_size[1]))
    interpolation = interpolation.lower()
    if interpolation not in image_resize.INTERPOLATIONS:
        raise ValueError(
            "Argument `interpolation` should be one of "
            f"{image_resize.INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(
            'The `data_format` argument must be one of "channels_first", '
            f'"channels_last". Received: data_format={data_format!r}'
        )
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            f"`batch_size` must be a positive integer or None. Received: batch_size={batch_size!r}"
        )
    check_validation_split_arg(validation_split, subset, shuffle, seed)

    if seed is None:
        seed = np.random.randint(1e6)
    directory = os.fspath(directory)
    image_paths, labels, class_names = index_directory(
        directory,
        labels,
        formats=ALLOWLIST_FORMATS,
        class_names=class_names,
        shuffle=shuffle,
        seed=seed,
        follow_links=follow_links,
        verbose=verbose,
    )
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 '
            f"class_names. Received: class_names={class_names}"
        )
    shuffle_buffer_size = batch_size * 8 if batch_size is not None else 1024
    options = dict(
        image_size=image_size,
        num_channels=channels,
        label_mode=label_mode,
        num_classes=len(class_names) if class_names else 0,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        channels_first=data_format == "channels_first",
        batch_size=batch_size,
    )

    def finish(ds: Dataset, paths: list[str]) -> Dataset:
        ds.class_names = class_names
        ds.file_paths = paths
        return ds

    if subset == "both":
        paths_train, labels_train = get_training_or_validation_split(
            image_paths, labels, validation_split, "training"
        )
        paths_val, labels_val = get_training_or_validation_split(
            image_paths, labels, validation_split, "validation"
        )
        _check_found(paths_train, directory, "training ")
        _check_found(paths_val, directory, "validation ")
        train = paths_and_labels_to_dataset(
            paths_train, labels_train, shuffle=shuffle,
            shuffle_buffer_size=shuffle_buffer_size, seed=seed, **options
        )
        val = paths_and_labels_to_dataset(paths_val, labels_val, shuffle=False, **options)
        return [finish(train, paths_train), finish(val, paths_val)]

    image_paths, labels = get_training_or_validation_split(
        image_paths, labels, validation_split, subset
    )
    _check_found(image_paths, directory)
    ds = paths_and_labels_to_dataset(
        image_paths, labels, shuffle=shuffle,
        shuffle_buffer_size=shuffle_buffer_size, seed=seed, **options
    )
    return finish(ds, image_paths)


def _check_found(paths: list, directory, which: str = "") -> None:
    """Keras' error when a subset (`which`: "training ", "validation " or "") has no image."""
    if not paths:
        raise ValueError(
            f"No {which}images found in directory {directory}. "
            f"Allowed formats: {ALLOWLIST_FORMATS}"
        )


# --------------------------------------------------------------------------
# listing and splitting the files (Keras' dataset_utils)


def check_validation_split_arg(
    validation_split: float | None, subset: str | None, shuffle: bool, seed: int | None
) -> None:
    """Raises Keras' errors for inconsistent `validation_split`, `subset`, `seed`."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(
            "`validation_split` must be between 0 and 1, "
            f"received: {validation_split}"
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(
            "If `subset` is set, `validation_split` must be set, and inversely."
        )
    if subset not in ("training", "validation", "both", None):
        raise ValueError(
            '`subset` must be either "training", '
            f'"validation" or "both", received: {subset}'
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must "
            "provide a `seed` argument, to make sure that there is no "
            "overlap between the training and validation subset."
        )


def index_directory(
    directory: str,
    labels: str | Sequence[int] | None,
    formats: tuple[str, ...],
    class_names: Sequence[str] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> tuple[list[str], np.ndarray | Sequence[int] | None, list[str] | None]:
    """Lists the files of `directory` with their labels, as Keras' `index_directory`.

    Class sub-directories in alphanumeric order (hidden ones skipped), files
    in each class in the order of a sorted `os.walk`, then, with `shuffle`,
    paths and labels shuffled with `np.random.RandomState(seed)`.

    Returns:
        `(file_paths, labels, class_names)`.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Could not find directory {directory}")
    if labels == "inferred":
        subdirs = []
        for subdir in sorted(os.listdir(directory)):
            if os.path.isdir(os.path.join(directory, subdir)) and not subdir.startswith("."):
                subdirs.append(subdir.rstrip("/"))
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError(
                    "The `class_names` passed did not match the "
                    "names of the subdirectories of the target directory. "
                    f"Expected: {subdirs} (or a subset of it), "
                    f"but received: class_names={class_names}"
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            if labels is None:
                raise ValueError(
                    "When `labels=None` (no labels), argument `class_names` "
                    "cannot be specified."
                )
            raise ValueError(
                "When argument `labels` is specified, argument "
                "`class_names` cannot be specified (the `class_names` "
                "will be the sorted list of labels)."
            )
    class_names = list(subdirs)
    class_indices = {name: i for i, name in enumerate(class_names)}

    filenames: list[str] = []
    labels_list: list[list[int]] = []
    for subdir in subdirs:
        names, found = _index_subdirectory(
            os.path.join(directory, subdir), class_indices, follow_links, formats
        )
        filenames += names
        labels_list.append(found)

    if labels == "inferred":
        labels = np.zeros((len(filenames),), dtype="int32")
        i = 0
        for part in labels_list:
            labels[i : i + len(part)] = part
            i += len(part)
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError(
                "Expected the lengths of `labels` to match the number "
                f"of files in the target directory. len(labels) is {len(labels)} "
                f"while we found {len(filenames)} files in directory {directory}."
            )
        class_names = [str(label) for label in sorted(set(labels))]
        labels = list(labels)
    if verbose:
        if labels is None:
            print(f"Found {len(filenames)} files.")
        else:
            print(f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, name) for name in filenames]

    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _index_subdirectory(
    directory: str, class_indices: dict[str, int], follow_links: bool, formats: tuple[str, ...]
) -> tuple[list[str], list[int]]:
    dirname = os.path.basename(directory)
    walk = os.walk(directory, followlinks=follow_links)
    filenames, labels = [], []
    for root, _, files in sorted(walk, key=lambda x: x[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                labels.append(class_indices[dirname])
                absolute = os.path.join(root, fname)
                filenames.append(os.path.join(dirname, os.path.relpath(absolute, directory)))
    return filenames, labels


def get_training_or_validation_split(
    samples: list[str], labels: Any, validation_split: float | None, subset: str | None
) -> tuple[list[str], Any]:
    """The training (first) or validation (last `int(validation_split * n)`) part."""
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    num_train = len(samples) - num_val
    if subset == "training":
        print(f"Using {num_train} files for training.")
        samples = samples[:num_train]
        labels = labels[:num_train] if labels is not None else None
    elif subset == "validation":
        print(f"Using {num_val} files for validation.")
        samples = samples[num_train:]
        labels = labels[num_train:] if labels is not None else None
    else:
        raise ValueError(
            '`subset` must be either "training" '
            f'or "validation", received: {subset}'
        )
    return samples, labels


# --------------------------------------------------------------------------
# decoding and batching


def load_image(
    path: str,
    image_size: tuple[int, int],
    num_channels: int,
    interpolation: str,
    crop_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """Reads one image file as float32 `(height, width, num_channels)`, resized to `image_size`."""
    image = pil_image()
    with image.open(path) as img:
        if num_channels == 1:
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
        elif num_channels == 4:
            if img.mode != "RGBA":
                img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        x = np.asarray(img, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if crop_to_aspect_ratio:
        x = image_resize.crop_to_aspect_ratio(x, image_size)
    return image_resize.resize(x, image_size, interpolation)


def _labels_array(labels: Any, label_mode: str, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if label_mode == "int":
        return labels.astype(np.int32)
    if label_mode == "binary":
        return labels.astype(np.float32).reshape(-1, 1)
    out = np.zeros((len(labels), num_classes), np.float32)
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return out


def paths_and_labels_to_dataset(
    image_paths: list[str],
    labels: Any,
    image_size: tuple[int, int],
    num_channels: int,
    label_mode: str | None,
    num_classes: int,
    interpolation: str,
    crop_to_aspect_ratio: bool = False,
    channels_first: bool = False,
    batch_size: int | None = 32,
    shuffle: bool = False,
    shuffle_buffer_size: int | None = None,
    seed: int | None = None,
) -> Dataset:
    """The pipeline: (shuffle) -> decode + resize in worker threads -> (batch) -> prefetch."""
    paths = np.asarray(image_paths, dtype=object)
    if label_mode:
        ds = Dataset.from_tensor_slices((paths, _labels_array(labels, label_mode, num_classes)))
    else:
        ds = Dataset.from_tensor_slices(paths)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer_size or 1024, seed=seed)
    args = (image_size, num_channels, interpolation, crop_to_aspect_ratio)

    def load(path: Any) -> np.ndarray:
        x = load_image(str(path), *args)
        return x.transpose(2, 0, 1) if channels_first else x

    if label_mode:
        ds = ds.map(lambda p, y: (load(p), y), num_parallel_calls=NUM_WORKERS)
    else:
        ds = ds.map(load, num_parallel_calls=NUM_WORKERS)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds.prefetch(2)
