"""The argument checks of the binding's convolution, pooling, fused and augmentation entry points
(csrc/bind_conv.c, bind_conv_general.c, bind_augment.c, the shared conv_geometry in binding.c).

Every case starts from a valid call (which must succeed, see
``test_valid_calls_succeed``), changes one argument, and expects the error type and a message
that names the entry point and the argument(s) at fault. Arguments are passed by keyword, as the
entry points' keyword lists allow; ``test_keywords_and_positions_give_the_same_result`` checks
that both spellings reach the same kernel.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from pycnn import _C

INT_MAX = 2**31 - 1


def f32(*shape):
    return np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape).astype(np.float32)


def i32(*shape):
    return np.zeros(shape, np.int32)


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def noncontig(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    v = big[..., ::2]
    v[...] = a
    assert not v.flags.c_contiguous
    return v


GEO = dict(strides=(1, 1), pads=(0, 0))
DIL = dict(GEO, dilation=(1, 1))
POOL = dict(pool=(2, 2), strides=(2, 2), pads=(0, 0))
FUSED_GEO = dict(strides=(1, 1), pads=(0, 0), conv_hw=(4, 4), pool=(2, 2), pool_strides=(2, 2),
                 pool_pads=(0, 0))
IDENTITY = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (2, 1))


def valid(entry: str) -> dict:
    """A valid keyword call of each entry point, with fresh arrays."""
    return {
        "conv2d_forward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 4, 6), b=f32(6),
                                       y=f32(2, 3, 3, 6), **GEO),
        "conv2d_backward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 4, 6), dy=f32(2, 3, 3, 6),
                                        dx=f32(2, 5, 5, 4), dw=f32(3, 3, 4, 6), db=f32(6), **GEO),
        "convg_forward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 2, 6), b=f32(6),
                                      y=f32(2, 3, 3, 6), **DIL, groups=2),
        "convg_backward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 2, 6), dy=f32(2, 3, 3, 6),
                                       dx=f32(2, 5, 5, 4), dw=f32(3, 3, 2, 6), db=f32(6),
                                       **DIL, groups=2),
        "conv_transpose_forward": lambda: dict(x=f32(2, 3, 3, 6), w=f32(3, 3, 4, 6), b=f32(4),
                                               y=f32(2, 5, 5, 4), **DIL),
        "conv_transpose_backward": lambda: dict(x=f32(2, 3, 3, 6), w=f32(3, 3, 4, 6),
                                                dy=f32(2, 5, 5, 4), dx=f32(2, 3, 3, 6),
                                                dw=f32(3, 3, 4, 6), db=f32(4), **DIL),
        "depthwise_forward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 4, 2), b=f32(8),
                                          y=f32(2, 3, 3, 8), **DIL),
        "depthwise_backward": lambda: dict(x=f32(2, 5, 5, 4), w=f32(3, 3, 4, 2),
                                           dy=f32(2, 3, 3, 8), dx=f32(2, 5, 5, 4),
                                           dw=f32(3, 3, 4, 2), db=f32(8), **DIL),
        "conv2d_maxpool_forward": lambda: dict(x=f32(1, 6, 6, 2), w=f32(3, 3, 2, 3), b=f32(3),
                                               y=f32(1, 2, 2, 3), argmax=i32(1, 2, 2, 3),
                                               **FUSED_GEO),
        "conv2d_maxpool_backward": lambda: dict(x=f32(1, 6, 6, 2), w=f32(3, 3, 2, 3),
                                                dy=f32(1, 2, 2, 3), argmax=i32(1, 2, 2, 3),
                                                dx=f32(1, 6, 6, 2), dw=f32(3, 3, 2, 3),
                                                db=f32(3), **FUSED_GEO),
        "maxpool2d_forward": lambda: dict(x=f32(2, 4, 4, 3), y=f32(2, 2, 2, 3),
                                          argmax=i32(2, 2, 2, 3), **POOL),
        "maxpool2d_backward": lambda: dict(dy=f32(2, 2, 2, 3), argmax=i32(2, 2, 2, 3),
                                           dx=f32(2, 4, 4, 3)),
        "avgpool2d_forward": lambda: dict(x=f32(2, 4, 4, 3), y=f32(2, 2, 2, 3), **POOL),
        "avgpool2d_backward": lambda: dict(dy=f32(2, 2, 2, 3), dx=f32(2, 4, 4, 3), **POOL),
        "affine_warp": lambda: dict(x=f32(2, 4, 4, 1), transforms=IDENTITY.copy(),
                                    y=f32(2, 4, 4, 1)),
        "affine_warp_backward": lambda: dict(dy=f32(2, 4, 4, 1), transforms=IDENTITY.copy(),
                                             dx=f32(2, 4, 4, 1)),
        "flip": lambda: dict(x=f32(2, 4, 4, 1), flags=np.array([1, 2], np.uint8),
                             y=f32(2, 4, 4, 1)),
        "crop": lambda: dict(x=f32(2, 4, 4, 1), offsets=i32(2, 2), y=f32(2, 3, 3, 1)),
        "crop_backward": lambda: dict(dy=f32(2, 3, 3, 1), offsets=i32(2, 2), dx=f32(2, 4, 4, 1)),
        "adjust_contrast": lambda: dict(x=f32(2, 4, 4, 1), factors=f32(2), y=f32(2, 4, 4, 1),
                                        lo=-1.0, hi=1.0),
        "adjust_brightness": lambda: dict(x=f32(2, 4, 4, 1), deltas=f32(2), y=f32(2, 4, 4, 1),
                                          lo=-1.0, hi=1.0),
    }[entry]()


ENTRIES = ["conv2d_forward", "conv2d_backward", "convg_forward", "convg_backward",
           "conv_transpose_forward", "conv_transpose_backward", "depthwise_forward",
           "depthwise_backward", "conv2d_maxpool_forward", "conv2d_maxpool_backward",
           "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
           "affine_warp", "affine_warp_backward", "flip", "crop", "crop_backward",
           "adjust_contrast", "adjust_brightness"]

# the arrays of each entry point: (name, rank, dtype, is an output)
ARRAYS = {
    "conv2d_forward": [("x", 4, "f", 0), ("w", 4, "f", 0), ("b", 1, "f", 0), ("y", 4, "f", 1)],
    "conv2d_backward": [("x", 4, "f", 0), ("w", 4, "f", 0), ("dy", 4, "f", 0), ("dx", 4, "f", 1),
                        ("dw", 4, "f", 1), ("db", 1, "f", 1)],
    "conv2d_maxpool_forward": [("x", 4, "f", 0), ("w", 4, "f", 0), ("b", 1, "f", 0),
                               ("y", 4, "f", 1), ("argmax", 4, "i", 1)],
    "conv2d_maxpool_backward": [("x", 4, "f", 0), ("w", 4, "f", 0), ("dy", 4, "f", 0),
                                ("argmax", 4, "i", 0), ("dx", 4, "f", 1), ("dw", 4, "f", 1),
                                ("db", 1, "f", 1)],
    "maxpool2d_forward": [("x", 4, "f", 0), ("y", 4, "f", 1), ("argmax", 4, "i", 1)],
    "maxpool2d_backward": [("dy", 4, "f", 0), ("argmax", 4, "i", 0), ("dx", 4, "f", 1)],
    "avgpool2d_forward": [("x", 4, "f", 0), ("y", 4, "f", 1)],
    "avgpool2d_backward": [("dy", 4, "f", 0), ("dx", 4, "f", 1)],
    "affine_warp": [("x", 4, "f", 0), ("transforms", 2, "f", 0), ("y", 4, "f", 1)],
    "affine_warp_backward": [("dy", 4, "f", 0), ("transforms", 2, "f", 0), ("dx", 4, "f", 1)],
    "flip": [("x", 4, "f", 0), ("flags", 1, "u", 0), ("y", 4, "f", 1)],
    "crop": [("x", 4, "f", 0), ("offsets", 2, "i", 0), ("y", 4, "f", 1)],
    "crop_backward": [("dy", 4, "f", 0), ("offsets", 2, "i", 0), ("dx", 4, "f", 1)],
    "adjust_contrast": [("x", 4, "f", 0), ("factors", 1, "f", 0), ("y", 4, "f", 1)],
    "adjust_brightness": [("x", 4, "f", 0), ("deltas", 1, "f", 0), ("y", 4, "f", 1)],
}
for _e in ("convg", "conv_transpose", "depthwise"):
    ARRAYS[_e + "_forward"] = ARRAYS["conv2d_forward"]
    ARRAYS[_e + "_backward"] = ARRAYS["conv2d_backward"]

WRONG_DTYPE = {"f": np.float64, "i": np.int64, "u": np.int8}


def call(entry: str, **changes):
    kw = valid(entry)
    kw.update(changes)
    return getattr(_C, entry)(**kw)


def assert_error(entry, exc, names, **changes):
    """call(entry, **changes) raises exc with a message naming the entry point and every name."""
    with pytest.raises(exc) as info:
        call(entry, **changes)
    msg = str(info.value)
    assert msg.startswith(entry + "()"), f"{msg!r} does not name {entry}()"
    for n in names:
        assert re.search(r"(?<![A-Za-z0-9_])" + re.escape(n) + r"(?![A-Za-z0-9_])", msg), \
            f"{msg!r} does not name {n!r}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_valid_calls_succeed(entry):
    assert call(entry) is None


def _array_cases():
    for entry, arrays in ARRAYS.items():
        for name, rank, kind, out in arrays:
            a = valid(entry)[name]
            yield entry, name, "dtype", TypeError, a.astype(WRONG_DTYPE[kind])
            yield entry, name, "rank", ValueError, a.reshape(a.shape + (1,))
            yield entry, name, "noncontiguous", ValueError, noncontig(a)
            yield entry, name, "empty", ValueError, a[:0]
            if out:
                yield entry, name, "readonly", ValueError, readonly(a)


ARRAY_CASES = list(_array_cases())


@pytest.mark.parametrize("entry, name, what, exc, bad", ARRAY_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in ARRAY_CASES])
def test_each_array_argument_is_checked(entry, name, what, exc, bad):
    assert_error(entry, exc, [name], **{name: bad})


CONV_ENTRIES = [e for e in ENTRIES if "conv" in e or "depthwise" in e]
# None stands for "no bias" and "no input gradient / no bias gradient" in the convolutions only
OPTIONAL = {e: {"b"} if e.endswith("forward") else {"dx", "db"} for e in CONV_ENTRIES}
REQUIRED = [(e, a[0]) for e in ENTRIES for a in ARRAYS[e] if a[0] not in OPTIONAL.get(e, ())]


@pytest.mark.parametrize("entry, name", REQUIRED, ids=[f"{e}-{n}" for e, n in REQUIRED])
def test_required_arrays_refuse_none(entry, name):
    assert_error(entry, TypeError, [name], **{name: None})


@pytest.mark.parametrize("entry", CONV_ENTRIES)
def test_optional_arrays_accept_none(entry):
    assert call(entry, **{name: None for name in OPTIONAL[entry]}) is None


def _overlap_cases():
    """Each output aliased with each other array of the same shape and dtype (or a view of it)."""
    for entry, arrays in ARRAYS.items():
        kw = valid(entry)
        for name, _, _, out in arrays:
            if not out:
                continue
            for other, _, _, _ in arrays:
                if other != name and kw[other].shape == kw[name].shape \
                        and kw[other].dtype == kw[name].dtype:
                    yield entry, name, other


OVERLAPS = list(_overlap_cases())


@pytest.mark.parametrize("entry, out, other", OVERLAPS, ids=[f"{e}-{o}-is-{a}" for e, o, a in OVERLAPS])
def test_outputs_must_not_share_memory(entry, out, other):
    kw = valid(entry)
    shared = kw[other]
    with pytest.raises(ValueError) as info:
        getattr(_C, entry)(**{**kw, out: shared})
    msg = str(info.value)
    assert msg.startswith(entry + "()") and f"'{out}'" in msg and f"'{other}'" in msg, msg
    assert "share memory" in msg


@pytest.mark.parametrize("entry", ["conv2d_forward", "convg_forward", "depthwise_forward",
                                   "conv_transpose_forward", "maxpool2d_forward",
                                   "avgpool2d_forward", "affine_warp", "flip",
                                   "adjust_contrast"])
def test_an_output_that_overlaps_an_input_partly_is_refused(entry):
    """A view of a larger buffer that starts inside the input (not the same array)."""
    kw = valid(entry)
    first = ARRAYS[entry][0][0]
    out = [n for n, _, _, o in ARRAYS[entry] if o][0]
    buf = np.zeros(kw[first].size + kw[out].size, np.float32)
    buf[:kw[first].size] = kw[first].ravel()
    kw[first] = buf[:kw[first].size].reshape(kw[first].shape)
    kw[out] = buf[kw[first].size // 2:kw[first].size // 2 + kw[out].size].reshape(kw[out].shape)
    with pytest.raises(ValueError, match=f"'{out}' must not share memory with '{first}'"):
        getattr(_C, entry)(**kw)


# ---- shape agreement ---------------------------------------------------------------------------

SHAPE_CASES = [
    # (entry, changes, names the message must hold)
    ("conv2d_forward", dict(w=f32(3, 3, 3, 6)), ["w", "x"]),
    ("conv2d_forward", dict(y=f32(2, 3, 3, 5)), ["y"]),
    ("conv2d_forward", dict(y=f32(1, 3, 3, 6)), ["y"]),
    ("conv2d_backward", dict(dy=f32(2, 3, 3, 5)), ["dy"]),
    ("convg_forward", dict(w=f32(3, 3, 4, 6)), ["w", "x"]),
    ("convg_forward", dict(groups=4), ["groups"]),
    ("convg_forward", dict(y=f32(2, 3, 3, 4)), ["y"]),
    ("convg_backward", dict(dy=f32(2, 3, 3, 4)), ["dy"]),
    ("conv_transpose_forward", dict(x=f32(2, 3, 3, 5)), ["x"]),
    ("conv_transpose_forward", dict(y=f32(2, 5, 5, 3)), ["w", "y"]),
    ("conv_transpose_forward", dict(y=f32(1, 5, 5, 4)), ["x"]),
    ("conv_transpose_backward", dict(dy=f32(2, 5, 5, 3)), ["w", "dy"]),
    ("depthwise_forward", dict(w=f32(3, 3, 3, 2)), ["w", "x"]),
    ("depthwise_forward", dict(y=f32(2, 3, 3, 4)), ["y"]),
    ("depthwise_backward", dict(dy=f32(2, 3, 3, 4)), ["dy"]),
    ("conv2d_maxpool_forward", dict(w=f32(3, 3, 1, 3)), ["w", "x"]),
    ("conv2d_maxpool_forward", dict(y=f32(1, 2, 2, 2)), ["y"]),
    ("conv2d_maxpool_forward", dict(argmax=i32(1, 2, 1, 3)), ["argmax"]),
    ("conv2d_maxpool_backward", dict(dy=f32(1, 2, 2, 4)), ["dy"]),
    ("conv2d_maxpool_backward", dict(argmax=i32(1, 1, 2, 3)), ["argmax"]),
    ("maxpool2d_forward", dict(y=f32(2, 2, 2, 2)), ["y"]),
    ("maxpool2d_forward", dict(argmax=i32(2, 2, 2, 2)), ["argmax"]),
    ("maxpool2d_backward", dict(dy=f32(2, 2, 2, 2)), ["dy"]),
    ("maxpool2d_backward", dict(argmax=i32(2, 2, 1, 3)), ["argmax"]),
    ("avgpool2d_forward", dict(y=f32(3, 2, 2, 3)), ["y"]),
    ("avgpool2d_backward", dict(dy=f32(2, 2, 2, 2)), ["dy"]),
    ("affine_warp", dict(y=f32(2, 4, 4, 2)), ["y"]),
    ("affine_warp", dict(transforms=np.tile(IDENTITY[:1], (3, 1))), ["transforms"]),
    ("affine_warp", dict(transforms=np.zeros((2, 5), np.float32)), ["transforms"]),
    ("affine_warp_backward", dict(dy=f32(1, 4, 4, 1)), ["dy"]),
    ("affine_warp_backward", dict(transforms=IDENTITY[:1].copy()), ["transforms"]),
    ("flip", dict(y=f32(2, 4, 3, 1)), ["y", "x"]),
    ("flip", dict(flags=np.array([1, 2, 3], np.uint8)), ["flags"]),
    ("crop", dict(y=f32(2, 3, 3, 2)), ["y"]),
    ("crop", dict(offsets=i32(3, 2)), ["offsets"]),
    ("crop", dict(offsets=i32(2, 3)), ["offsets"]),
    ("crop_backward", dict(dx=f32(2, 4, 4, 2)), ["dx"]),
    ("crop_backward", dict(offsets=i32(1, 2)), ["offsets"]),
    ("adjust_contrast", dict(y=f32(2, 4, 4, 2)), ["y", "x"]),
    ("adjust_contrast", dict(factors=f32(3)), ["factors"]),
    ("adjust_brightness", dict(deltas=f32(1)), ["deltas"]),
]




def _gradient_shape_cases():
    """Every axis of a convolution's bias, of its gradients dx, dw, db and of the relu output y
    of a backward pass is fixed by the other arguments: one more along any axis is refused."""
    for entry in CONV_ENTRIES:
        kw = valid(entry)
        like = dict(kw, y=kw.get("dy"))
        for name in (("b",) if entry.endswith("forward") else ("dx", "dw", "db", "y")):
            shape = like[name].shape
            for axis in range(len(shape)):
                bad = tuple(d + (i == axis) for i, d in enumerate(shape))
                yield entry, {name: f32(*bad)}, [name]


SHAPE_CASES += list(_gradient_shape_cases())


@pytest.mark.parametrize("entry, changes, names", SHAPE_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(SHAPE_CASES)])
def test_shapes_must_agree(entry, changes, names):
    assert_error(entry, ValueError, names, **changes)


# ---- window, stride, pad, dilation and groups ranges --------------------------------------------

RANGE_CASES = [
    ("conv2d_forward", dict(strides=(0, 1)), ValueError, ["strides"]),
    ("conv2d_forward", dict(pads=(0, -1)), ValueError, ["pads"]),
    ("conv2d_forward", dict(strides=(1,)), TypeError, ["strides"]),
    ("conv2d_forward", dict(pads=(0.5, 0)), TypeError, ["pads"]),
    ("conv2d_forward", dict(strides=(INT_MAX, 1), y=f32(2, 2, 3, 6)), ValueError, ["int range"]),
    ("conv2d_backward", dict(pads=(INT_MAX, 0)), ValueError, ["int range"]),
    ("convg_forward", dict(dilation=(1, 0)), ValueError, ["dilation"]),
    ("convg_forward", dict(dilation=(1, 2, 3)), TypeError, ["dilation"]),
    ("convg_forward", dict(groups=0), ValueError, ["groups"]),
    # the input channels split into groups, the 5 filters do not
    ("convg_forward", dict(w=f32(3, 3, 2, 5), b=f32(5), y=f32(2, 3, 3, 5)), ValueError,
     ["groups", "filters"]),
    ("convg_backward", dict(w=f32(3, 3, 2, 5), dy=f32(2, 3, 3, 5), dw=f32(3, 3, 2, 5),
                            db=f32(5)), ValueError, ["groups", "filters"]),
    ("conv_transpose_forward", dict(x=f32(2, 3, 3, 5), w=f32(3, 3, 2, 5), groups=2), ValueError,
     ["groups", "filters"]),
    ("convg_forward", dict(groups=3), ValueError, ["groups"]),
    ("convg_forward", dict(dilation=(2**30, 1)), ValueError, ["int range"]),
    ("convg_backward", dict(strides=(1, -1)), ValueError, ["strides"]),
    ("convg_backward", dict(groups=-2), ValueError, ["groups"]),
    ("conv_transpose_forward", dict(groups=0), ValueError, ["groups"]),
    ("conv_transpose_forward", dict(pads=(-1, 0)), ValueError, ["pads"]),
    ("conv_transpose_backward", dict(dilation=(0, 0)), ValueError, ["dilation"]),
    ("conv_transpose_backward", dict(strides=(INT_MAX, INT_MAX)), ValueError, ["int range"]),
    ("depthwise_forward", dict(strides=(0, 0)), ValueError, ["strides"]),
    ("depthwise_forward", dict(dilation=(2**30, 1)), ValueError, ["int range"]),
    ("depthwise_backward", dict(pads=(0, -3)), ValueError, ["pads"]),
    ("depthwise_backward", dict(dilation="ab"), TypeError, ["dilation"]),
    ("conv2d_maxpool_forward", dict(conv_hw=(0, 4)), ValueError, ["conv_hw"]),
    ("conv2d_maxpool_forward", dict(conv_hw=(7, 4)), ValueError, ["conv_hw"]),
    ("conv2d_maxpool_forward", dict(pool=(0, 2)), ValueError, ["pool"]),
    ("conv2d_maxpool_forward", dict(pool_strides=(2, 0)), ValueError, ["pool_strides"]),
    ("conv2d_maxpool_forward", dict(pool_pads=(-1, 0)), ValueError, ["pool_pads"]),
    ("conv2d_maxpool_forward", dict(strides=(0, 1)), ValueError, ["strides"]),
    ("conv2d_maxpool_forward", dict(pool_strides=None), TypeError, ["pool_strides"]),
    ("conv2d_maxpool_backward", dict(conv_hw=(4, 7)), ValueError, ["conv_hw"]),
    ("conv2d_maxpool_backward", dict(pads=(0, -1)), ValueError, ["pads"]),
    ("conv2d_maxpool_backward", dict(pool_pads=(0, -1)), ValueError, ["pool_pads"]),
    ("conv2d_maxpool_backward", dict(pool=(1, 2, 3)), TypeError, ["pool"]),
    ("maxpool2d_forward", dict(pool=(2, 0)), ValueError, ["pool"]),
    ("maxpool2d_forward", dict(strides=(INT_MAX, INT_MAX)), ValueError, ["x"]),
    ("avgpool2d_forward", dict(pads=(0, -1)), ValueError, ["pads"]),
    ("avgpool2d_backward", dict(pool=(0, 1)), ValueError, ["pool"]),
    ("avgpool2d_backward", dict(strides=(2, -2)), ValueError, ["strides"]),
    ("avgpool2d_backward", dict(pads=3), TypeError, ["pads"]),
]


@pytest.mark.parametrize("entry, changes, exc, names", RANGE_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(RANGE_CASES)])
def test_geometry_ranges_are_checked(entry, changes, exc, names):
    assert_error(entry, exc, names, **changes)


# ---- the augmentation entries' other arguments --------------------------------------------------

AUGMENT_CASES = [
    ("affine_warp", dict(interpolation="bicubic"), ValueError, ["interpolation"]),
    ("affine_warp", dict(fill_mode="mirror"), ValueError, ["fill_mode"]),
    ("affine_warp", dict(fill_value=float("nan")), ValueError, ["fill_value"]),
    ("affine_warp_backward", dict(fill_mode="mirror"), ValueError, ["fill_mode"]),
    ("affine_warp_backward", dict(interpolation="area"), ValueError, ["interpolation"]),
    ("crop", dict(y=f32(2, 5, 3, 1)), ValueError, ["window"]),
    ("crop", dict(offsets=np.array([[0, 0], [0, 2]], np.int32)), ValueError, ["offsets"]),
    ("crop_backward", dict(offsets=np.array([[-1, 0], [0, 0]], np.int32)), ValueError,
     ["offsets"]),
    ("adjust_contrast", dict(lo=1.0, hi=0.0), ValueError, ["lo", "hi"]),
    ("adjust_brightness", dict(lo=float("nan")), ValueError, ["lo", "hi"]),
]


@pytest.mark.parametrize("entry, changes, exc, names", AUGMENT_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(AUGMENT_CASES)])
def test_augmentation_arguments_are_checked(entry, changes, exc, names):
    assert_error(entry, exc, names, **changes)


@pytest.mark.parametrize("entry", ["affine_warp", "affine_warp_backward"])
@pytest.mark.parametrize("value", [1e12, np.inf, np.nan])
def test_warp_transforms_that_map_too_far_are_refused(entry, value):
    bad = IDENTITY.copy()
    bad[1, 2] = value
    with pytest.raises(ValueError, match=rf"^{entry}\(\): transforms\[1\] is not finite"):
        call(entry, transforms=bad)


# ---- keywords and positions -------------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES)
def test_keywords_and_positions_give_the_same_result(entry):
    """The keyword lists name the arguments in positional order: the two spellings of one call
    write the same outputs."""
    kw = valid(entry)
    by_position = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    getattr(_C, entry)(**kw)
    getattr(_C, entry)(*by_position.values())
    for name, _, _, out in ARRAYS[entry]:
        if out:
            np.testing.assert_array_equal(kw[name], by_position[name], err_msg=name)


@pytest.mark.parametrize("entry, out, other", [
    ("maxpool2d_forward", "argmax", "y"),
    ("conv2d_maxpool_forward", "argmax", "y"),
    ("conv2d_maxpool_forward", "argmax", "x"),
    ("conv2d_maxpool_backward", "dx", "argmax"),
    ("conv2d_maxpool_backward", "db", "argmax"),
    ("maxpool2d_backward", "dx", "argmax"),
])
def test_argmax_must_not_share_memory_with_float_arrays(entry, out, other):
    """argmax (int32) and a float32 array viewed on the same bytes: refused, whichever of the two
    is the output."""
    kw = valid(entry)
    big = max(kw[out].nbytes, kw[other].nbytes)
    buf = np.zeros(big, np.uint8)
    for name in (out, other):
        a = buf[:kw[name].nbytes].view(kw[name].dtype).reshape(kw[name].shape)
        a[...] = kw[name]
        kw[name] = a
    with pytest.raises(ValueError) as info:
        getattr(_C, entry)(**kw)
    msg = str(info.value)
    assert msg.startswith(entry + "()") and "share memory" in msg, msg
    assert f"'{out}'" in msg and f"'{other}'" in msg, msg
