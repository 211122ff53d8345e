"""Images on disk <-> NumPy arrays, as `keras.utils.load_img` and friends.

`load_img` returns a PIL image, `img_to_array` turns it into a `(height,
width, channels)` array, `array_to_img` and `save_img` go the other way.
Pillow is imported only inside these functions (it is an optional
dependency: `pip install pillow`), so `import pycnn` never needs it.

pycnn's layouts are always channels-last; `data_format="channels_first"`
is accepted for compatibility with code written for Keras.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from typing import Any

import numpy as np

#: Keras' interpolation names for `load_img`, in Keras' order.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def pil_image() -> Any:
    """Returns `PIL.Image`, or raises an ImportError telling how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            "Could not import PIL.Image: reading and writing images requires "
            "Pillow. Install it with `pip install pillow` (or "
            "`pip install pycnn[image]`)."
        ) from exc
    return Image


def _resampling(interpolation: str) -> int:
    image = pil_image()
    methods = getattr(image, "Resampling", image)
    return getattr(methods, interpolation.upper())


def _data_format(data_format: str | None) -> str:
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            'The `data_format` argument must be one of "channels_first", '
            f'"channels_last". Received: data_format={data_format!r}'
        )
    return data_format


def load_img(
    path: str | os.PathLike[str] | bytes | io.BytesIO,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
):
    """Loads an image into PIL format.

    Example:

    ```python
    image = pycnn.utils.load_img(image_path)
    input_arr = pycnn.utils.img_to_array(image)
    input_arr = np.array([input_arr])  # Convert single image to a batch.
    predictions = model.predict(input_arr)
    ```

    Args:
        path: Path to image file (or an `io.BytesIO` holding its bytes).
        color_mode: One of `"grayscale"`, `"rgb"`, `"rgba"`. Default: `"rgb"`.
            The desired image format. 8-, 16- and 32-bit grayscale images
            (PIL modes `L`, `I;16`, `I`) are kept as they are with
            `"grayscale"`; anything else is converted to 8-bit `L`.
        target_size: Either `None` (default to original size) or tuple of ints
            `(img_height, img_width)`.
        interpolation: Interpolation method used to resample the image if the
            target size is different from that of the loaded image. One of
            `"nearest"` (the default), `"bilinear"`, `"bicubic"`,
            `"lanczos"`, `"box"` and `"hamming"` (Pillow's filters).
        keep_aspect_ratio: Boolean, whether to resize images to a target
            size without aspect ratio distortion. The image is cropped in
            the center with target aspect ratio before resizing.

    Returns:
        A PIL Image instance.
    """
    image = pil_image()
    if isinstance(path, io.BytesIO):
        img = image.open(path)
    elif isinstance(path, (pathlib.Path, bytes, str)):
        if isinstance(path, pathlib.Path):
            path = str(path.resolve())
        with open(path, "rb") as f:
            img = image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")

    if color_mode == "grayscale":
        # An 8-, 16- or 32-bit grayscale image is kept; anything else becomes 8-bit.
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif color_mode == "rgb":
        if img.mode != "RGB":
            img = img.convert("RGB")
    else:
        raise ValueError('color_mode must be "grayscale", "rgb", or "rgba"')
    if target_size is not None:
        size = (int(target_size[1]), int(target_size[0]))  # PIL: (width, height)
        if img.size != size:
            if interpolation not in INTERPOLATIONS:
                raise ValueError(
                    f"Invalid interpolation method {interpolation} specified. "
                    f"Supported methods are {', '.join(INTERPOLATIONS)}"
                )
            resample = _resampling(interpolation)
            if keep_aspect_ratio:
                img = img.resize(size, resample, box=_center_crop_box(img.size, size))
            else:
                img = img.resize(size, resample)
    return img


def _center_crop_box(
    size: tuple[int, int], target: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The centred box (left, upper, right, lower) of `size` with `target`'s aspect ratio.

    Both sizes are (width, height); integer arithmetic as Keras' `load_img`.
    """
    width, height = size
    target_width, target_height = target
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return (left, top, left + crop_width, top + crop_height)


def img_to_array(img, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """Converts a PIL Image instance to a NumPy array.

    Example:

    ```python
    img_data = np.random.random(size=(100, 100, 3))
    img = pycnn.utils.array_to_img(img_data)
    array = pycnn.utils.img_to_array(img)
    ```

    Args:
        img: Input PIL Image instance.
        data_format: `"channels_last"` (the default, `None`) or
            `"channels_first"`.
        dtype: Dtype to use. Defaults to `"float32"`.

    Returns:
        A 3D NumPy array: `(height, width, channels)`; a grayscale image has
        one channel.
    """
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype="float32" if dtype is None else dtype)
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    elif x.ndim == 2:
        if data_format == "channels_first":
            x = x.reshape((1, x.shape[0], x.shape[1]))
        else:
            x = x.reshape((x.shape[0], x.shape[1], 1))
    else:
        raise ValueError(f"Unsupported image shape: {x.shape}")
    return x


def array_to_img(
    x, data_format: str | None = None, scale: bool = True, dtype: Any = None
):
    """Converts a 3D NumPy array to a PIL Image instance.

    Example:

    ```python
    img = np.random.random(size=(100, 100, 3))
    pil_img = pycnn.utils.array_to_img(img)
    ```

    Args:
        x: Input data, in any form that can be converted to a NumPy array,
            of shape `(height, width, channels)` with 1, 3 or 4 channels.
        data_format: `"channels_last"` (the default, `None`) or
            `"channels_first"`.
        scale: Whether to rescale the image such that minimum and maximum
            values are 0 and 255 respectively. Defaults to `True`. Without
            rescaling, values are cast to `uint8` as they are (NumPy's cast:
            fractions truncated).
        dtype: Dtype to compute in. Defaults to `"float32"`.

    Returns:
        A PIL Image instance: mode `RGB`, `RGBA`, `L`, or `I` for one
        channel whose maximum exceeds 255.
    """
    data_format = _data_format(data_format)
    image = pil_image()
    x = np.asarray(x, dtype="float32" if dtype is None else dtype)
    if x.ndim != 3:
        raise ValueError(
            "Expected image array to have rank 3 (single image). "
            f"Got array with shape: {x.shape}"
        )
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return image.fromarray(np.ascontiguousarray(x.astype("uint8")), "RGBA")
    if channels == 3:
        return image.fromarray(np.ascontiguousarray(x.astype("uint8")), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            # 32-bit signed integer grayscale image. PIL mode "I".
            return image.fromarray(np.ascontiguousarray(x[:, :, 0].astype("int32")), "I")
        return image.fromarray(np.ascontiguousarray(x[:, :, 0].astype("uint8")), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def save_img(
    path,
    x,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Saves an image stored as a NumPy array to a path or file object.

    Args:
        path: Path or file object.
        x: NumPy array, `(height, width, channels)`.
        data_format: `"channels_last"` (the default, `None`) or
            `"channels_first"`.
        file_format: Optional file format override. If omitted, the format to
            use is determined from the filename extension. If a file object
            was used instead of a filename, this parameter should always be
            used.
        scale: Whether to rescale image values to be within `[0, 255]`.
        **kwargs: Additional keyword arguments passed to `PIL.Image.save()`.
    """
    data_format = _data_format(data_format)
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    img.save(path, format=file_format or None, **kwargs)
