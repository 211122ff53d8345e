"""What a convnet computes, as Chollet's book shows it (*Deep Learning with Python*, 2nd ed.,
section 9.4): a layer's feature maps for one image, each filter's kernel and the input pattern
that excites it most, and Grad-CAM's class activation map.

Each figure function returns the matplotlib Figure with the arrays it drew as attributes
(``fig.feature_maps``, ``fig.kernels``, ``fig.patterns``, ``fig.heatmap``...); the arrays alone
come from ``activations``, ``filter_patterns`` and ``grad_cam``, which need no matplotlib.
Images are given as the model takes them (already preprocessed as its training data).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from ..layers.base import Layer
from ..utils.image_resize import resize
from . import _model
from ._model import display_image
from ._mpl import finish, pyplot

LayerRef = Union[str, int, Layer]


# ---- feature maps --------------------------------------------------------------------------
def activations(model, image, layer: LayerRef) -> np.ndarray:
    """The output of ``layer`` for one ``image`` (the batch axis dropped), e.g. ``(26, 26, 32)``
    for the lecture's first convolution."""
    node = _model.find_node(model, layer)
    x = _model.as_batch(model, image, "activations")
    sub = _model.submodel(model, _model.graph_of(model).inputs, [node.outputs[0]], "features")
    return _model.forward(sub, x)[0]


def _channel_image(a: np.ndarray) -> np.ndarray:
    """The book's per-channel normalisation: centred, divided by its standard deviation, times
    64 plus 128, clipped to 0..255 (an all-zero channel stays 0)."""
    a = a.astype(np.float64).copy()
    if a.sum() != 0:
        a -= a.mean()
        std = a.std()
        if std > 0:
            a /= std
        a *= 64
        a += 128
    return np.clip(a, 0, 255).astype(np.uint8)


def _grid(images: Sequence[np.ndarray], per_row: int, fill: float = 0.0) -> np.ndarray:
    """Images of one shape ``(h, w[, c])`` in rows of ``per_row``, one pixel between them."""
    h, w = images[0].shape[:2]
    rows = int(math.ceil(len(images) / per_row))
    shape = ((h + 1) * rows - 1, (w + 1) * per_row - 1) + images[0].shape[2:]
    out = np.full(shape, fill, dtype=np.float64)
    for i, im in enumerate(images):
        r, c = divmod(i, per_row)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = im
    return out


def feature_maps(model, image, layer: LayerRef, to_file: Optional[str] = None,
                 images_per_row: int = 16, cmap: str = "viridis"):
    """Every channel of ``layer``'s output for one image, in a grid (the book's "visualizing
    intermediate activations": each channel centred, scaled by its standard deviation to
    ``64 * z + 128``, clipped to 0..255, drawn with viridis; one inch per channel).

    Returns:
        the matplotlib Figure; ``fig.feature_maps`` holds the raw output ``(h, w, channels)``
        (``activations(model, image, layer)`` returns it without drawing).
    """
    node = _model.find_node(model, layer)
    acts = activations(model, image, node.layer)
    if acts.ndim != 3:
        raise ValueError(f'feature_maps needs a layer whose output is a batch of images '
                         f'(batch, height, width, channels); layer "{node.layer.name}" outputs '
                         f"{node.outputs[0].shape}")
    channels = acts.shape[-1]
    per_row = max(1, min(int(images_per_row), channels))
    grid = _grid([_channel_image(acts[:, :, k]) for k in range(channels)], per_row)
    plt = pyplot()
    scale = 1.0 / max(acts.shape[0], acts.shape[1])
    fig = plt.figure(figsize=(max(scale * grid.shape[1], 2.0),
                              max(scale * grid.shape[0], 1.0) + 0.4))
    ax = fig.add_axes((0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    ax.set_title(node.layer.name)
    ax.grid(False)
    ax.axis("off")
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=255)
    fig.feature_maps = acts
    return finish(fig, to_file)


# ---- filters ----------------------------------------------------------------------------------
def _conv_node(model, layer: LayerRef):
    node = _model.find_node(model, layer)
    kernel = getattr(node.layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 4 or len(node.outputs[0].shape) != 4:
        raise ValueError(f'expected a Conv2D layer (a 4-D kernel); layer "{node.layer.name}" '
                         f"is a {type(node.layer).__name__}")
    return node


def filter_patterns(model, layer: LayerRef, filter_indices: Optional[Sequence[int]] = None,
                    ascent_steps: int = 30, size: Optional[tuple] = None,
                    step_size: float = 0.015, value_range: tuple = (0.0, 1.0),
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The input patterns that maximally excite filters of a Conv2D layer, by gradient ascent
    on the input (the book's procedure): start from grey noise (uniform in the middle fifth of
    ``value_range``), then ``ascent_steps`` times add ``step_size * (range width) * g / rms(g)``
    where ``g`` is the gradient of the mean activation of filter ``k`` (its 2-pixel border left
    out, as the book does) with respect to the image. The gradient is taken through the
    filter's pre-activation (its output before the layer's own relu), so that a filter that is
    silent on grey noise still climbs. All filters climb together in one batch.

    Returns:
        ``(patterns, history)``: the images ``(filters, H, W, C)`` and the mean output of each
        filter (after the layer's activation, the 2-pixel border left out) before the first
        step and after each step, ``(ascent_steps + 1, filters)``.
    """
    node = _conv_node(model, layer)
    graph = _model.graph_of(model)
    want = graph.inputs[0].shape
    if len(want) != 4:
        raise ValueError(f'Model "{model.name}" does not take images (its input shape is '
                         f"{want})")
    filters = node.outputs[0].shape[-1]
    idx = list(range(filters)) if filter_indices is None else [int(i) for i in filter_indices]
    bad = [i for i in idx if not 0 <= i < filters]
    if bad or not idx:
        raise ValueError(f'filter_indices must be in [0, {filters}) for layer '
                         f'"{node.layer.name}". Received: {list(filter_indices or [])}')
    if size is None:
        if want[1] is None or want[2] is None:
            raise ValueError(f'Model "{model.name}" takes images of any size: give size=(h, w)')
        size = (want[1], want[2])
    size = (int(size[0]), int(size[1]))
    if any(w is not None and w != s for w, s in zip(want[1:3], size)):
        raise ValueError(f'Model "{model.name}" takes images of size {tuple(want[1:3])}. '
                         f"Received: size={size}")
    lo, hi = float(value_range[0]), float(value_range[1])
    width = hi - lo
    rng = np.random.default_rng(seed)
    x = (lo + width * rng.uniform(0.4, 0.6, (len(idx),) + size + (want[3],))).astype(np.float32)
    sub = _model.submodel(model, graph.inputs, [node.outputs[0]], "filters")
    h, w = node.outputs[0].shape[1:3]
    h = h if h is not None else _model.forward(sub, x[:1]).shape[1]
    w = w if w is not None else _model.forward(sub, x[:1]).shape[2]
    b = 2 if min(h, w) > 8 else 0
    region = (slice(b, h - b), slice(b, w - b))
    count = (h - 2 * b) * (w - 2 * b)

    def dout(out: np.ndarray) -> np.ndarray:
        d = np.zeros_like(out)
        for i, k in enumerate(idx):
            d[i, region[0], region[1], k] = 1 / count
        return d

    history = []
    for _ in range(int(ascent_steps)):
        out, g, _ = _model.forward_backward(sub, x, dout, logits=True)
        act = getattr(node.layer, "activation", "linear")
        if act not in ("relu", "linear"):       # the output of the layer itself
            out = _model.forward(sub, x)
        history.append(_mean_activation(np.maximum(out, 0) if act == "relu" else out,
                                        region, idx))
        rms = np.sqrt(np.mean(np.square(g, dtype=np.float64), axis=(1, 2, 3)))
        x += (step_size * width * g / (rms[:, None, None, None] + 1e-5)).astype(np.float32)
    history.append(_mean_activation(_model.forward(sub, x), region, idx))
    return x, np.asarray(history, dtype=np.float64)


def _mean_activation(out: np.ndarray, region, idx: list) -> np.ndarray:
    return np.array([out[i, region[0], region[1], k].mean() for i, k in enumerate(idx)])


def _deprocess(img: np.ndarray) -> np.ndarray:
    """The book's deprocess_image: centred, scaled to 64 per standard deviation around 128,
    clipped, with a border of an eighth of the size cropped off (as 25 of 200)."""
    a = img.astype(np.float64) - img.mean()
    a /= a.std() + 1e-5
    a = np.clip(a * 64 + 128, 0, 255) / 255
    c = min(a.shape[0], a.shape[1]) // 8 if min(a.shape[:2]) >= 32 else 0
    a = a[c:a.shape[0] - c, c:a.shape[1] - c]
    if a.shape[-1] == 1:
        return a[..., 0]
    return a if a.shape[-1] == 3 else a.mean(axis=-1)


def _kernel_image(k: np.ndarray) -> np.ndarray:
    """One filter's kernel ``(kh, kw, cin)`` stretched to [0, 1] (grey for one channel)."""
    lo, hi = k.min(), k.max()
    a = (k - lo) / (hi - lo) if hi > lo else np.full_like(k, 0.5)
    return a[..., 0] if a.shape[-1] == 1 else a


def filters(model, layer: LayerRef, to_file: Optional[str] = None, ascent_steps: int = 30,
            size: Optional[tuple] = None, filter_indices: Optional[Sequence[int]] = None,
            max_filters: int = 64, step_size: float = 0.015, value_range: tuple = (0.0, 1.0),
            per_row: int = 8, seed: int = 0):
    """A Conv2D layer's filters: the learned kernels drawn as images (when the layer reads one
    or three channels, i.e. a first layer on grey or colour images) and, for every filter,
    the input pattern that excites it most (``filter_patterns``, the book's gradient ascent
    from grey noise; ``ascent_steps=0`` skips it).

    Returns:
        the matplotlib Figure with ``fig.kernels`` ``(filters, kh, kw, cin)``,
        ``fig.patterns`` ``(filters, H, W, C)`` (the raw images; None without ascent),
        ``fig.ascent_history`` ``(ascent_steps + 1, filters)`` (each filter's mean activation
        at each step) and ``fig.filter_indices``.
    """
    node = _conv_node(model, layer)
    n = node.outputs[0].shape[-1]
    idx = list(range(min(n, int(max_filters)))) if filter_indices is None else \
        [int(i) for i in filter_indices]
    kernel = node.layer.kernel.numpy()
    kernels = np.moveaxis(kernel, 3, 0)[idx]
    patterns = history = None
    if ascent_steps > 0:
        patterns, history = filter_patterns(model, node.layer, idx, ascent_steps, size,
                                            step_size, value_range, seed)
    panels = []
    if kernels.shape[-1] in (1, 3):
        panels.append(("kernels of " + node.layer.name,
                       _grid([_kernel_image(k) for k in kernels], min(per_row, len(idx)), 1.0)))
    if patterns is not None:
        panels.append((f"patterns that maximise each filter of {node.layer.name} "
                       f"({ascent_steps} steps)",
                       _grid([_deprocess(p) for p in patterns], min(per_row, len(idx)), 1.0)))
    if not panels:
        raise ValueError(f'layer "{node.layer.name}" reads {kernels.shape[-1]} channels: its '
                         "kernels are not images; ask for the patterns (ascent_steps > 0)")
    plt = pyplot()
    ncol = min(per_row, len(idx))
    heights = [p[1].shape[0] / p[1].shape[1] * ncol for p in panels]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(1.1 * ncol + 0.5, sum(1.1 * h + 0.5 for h in heights)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (title, grid) in zip(axes[:, 0], panels):
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.kernels, fig.patterns, fig.ascent_history = kernels, patterns, history
    fig.filter_indices = idx
    return finish(fig, to_file)


# ---- Grad-CAM ---------------------------------------------------------------------------------
def grad_cam(model, image, layer: Optional[LayerRef] = None,
             class_index: Optional[int] = None) -> tuple[np.ndarray, int, np.ndarray]:
    """Grad-CAM (Selvaraju et al. 2017, the book's section 9.4.3) for one image.

    The score of class ``class_index`` (default: the predicted class) is taken before the
    output activation (the logits, as the paper does) when the output layer has one; its
    gradient with respect to ``layer``'s output (default: the last convolution) averaged over
    the positions weighs each channel; the heatmap is the relu of the weighted sum of the
    channels, divided by its maximum and upsampled (bilinear) to the image size.

    Returns:
        ``(heatmap, class_index, cam)``: the heatmap ``(H, W)`` in [0, 1] (maximum 1 unless it
        is all zero), the class explained, and the map at the layer's resolution ``(h, w)``.
    """
    node = _model.last_image_node(model) if layer is None else _model.find_node(model, layer)
    graph = _model.graph_of(model)
    if len(node.outputs[0].shape) != 4:
        raise ValueError(f'Grad-CAM needs a layer whose output is a batch of images; layer '
                         f'"{node.layer.name}" outputs {node.outputs[0].shape}')
    x = _model.as_batch(model, image, "grad_cam")
    tensor = node.outputs[0]
    feats = _model.forward(_model.submodel(model, graph.inputs, [tensor], "gradcam_features"), x)
    head = _model.submodel(model, [tensor], [graph.outputs[0]], "gradcam_head")
    chosen = {}

    def dout(scores: np.ndarray) -> np.ndarray:
        flat = scores.reshape(1, -1)
        k = int(np.argmax(flat[0])) if class_index is None else int(class_index)
        if not 0 <= k < flat.shape[1]:
            raise ValueError(f"class_index must be in [0, {flat.shape[1]}). "
                             f"Received: class_index={class_index}")
        chosen["k"] = k
        d = np.zeros_like(flat)
        d[0, k] = 1
        return d.reshape(scores.shape)

    _, grads, _ = _model.forward_backward(head, feats, dout, logits=True)
    weights = grads[0].mean(axis=(0, 1))
    cam = np.maximum(feats[0].astype(np.float64) @ weights.astype(np.float64), 0)
    top = cam.max()
    cam = cam / top if top > 0 else np.zeros_like(cam)
    heat = resize(cam[..., None].astype(np.float32), x.shape[1:3], "bilinear")[..., 0]
    heat = np.clip(heat, 0, None)
    top = heat.max()
    heat = (heat / top if top > 0 else heat).astype(np.float32)
    return heat, chosen["k"], cam.astype(np.float32)


def class_activation_map(model, image, layer: Optional[LayerRef] = None,
                         class_index: Optional[int] = None, to_file: Optional[str] = None,
                         class_names: Optional[Sequence[str]] = None, alpha: float = 0.4,
                         cmap: str = "jet"):
    """Where the model looks for a class: Grad-CAM (see ``grad_cam``) drawn as the book does,
    the heatmap at the layer's resolution and superimposed (jet colours, ``alpha``) on the
    image.

    Returns:
        the matplotlib Figure with ``fig.heatmap`` (``(H, W)`` in [0, 1]), ``fig.cam`` (the
        layer-resolution map) and ``fig.class_index``.
    """
    heat, k, cam = grad_cam(model, image, layer, class_index)
    img = np.asarray(image)
    if img.ndim == 4:
        img = img[0]
    shown, grey = display_image(img)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.4))
    name = str(class_names[k]) if class_names is not None and k < len(class_names) else str(k)
    axes[0].imshow(shown, cmap=grey, vmin=0, vmax=1)
    axes[0].set_title("image")
    axes[1].imshow(cam, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("Grad-CAM heatmap")
    colours = plt.get_cmap(cmap)(heat)[..., :3]
    base = np.repeat(shown[..., None], 3, axis=-1) if shown.ndim == 2 else shown[..., :3]
    axes[2].imshow(np.clip(base * (1 - alpha) + colours * alpha, 0, 1))
    axes[2].set_title(f"class {name}")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.heatmap, fig.cam, fig.class_index = heat, cam, k
    return finish(fig, to_file)
