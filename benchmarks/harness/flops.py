"""FLOP counting (multiply-add = 2 FLOPs; GEMM-like work only: conv and dense layers;
activations, pooling, loss and optimizer are memory-bound and not counted)."""

# The lecture's convnet, layer by layer, in Keras layout: (kind, input HWC, output HWC, kernel)
CONVNET_LAYERS = [
    ("conv2d", (28, 28, 1), (26, 26, 32), (3, 3, 1, 32)),
    ("max_pooling2d", (26, 26, 32), (13, 13, 32), None),
    ("conv2d", (13, 13, 32), (11, 11, 64), (3, 3, 32, 64)),
    ("max_pooling2d", (11, 11, 64), (5, 5, 64), None),
    ("conv2d", (5, 5, 64), (3, 3, 128), (3, 3, 64, 128)),
    ("flatten", (3, 3, 128), (1152,), None),
    ("dense", (1152,), (10,), (1152, 10)),
]
DENSE_LAYERS = [
    ("dense", (784,), (512,), (784, 512)),
    ("dense", (512,), (10,), (512, 10)),
]
ARCH = {"dense": DENSE_LAYERS, "convnet": CONVNET_LAYERS}


def layer_flops(kind, out_shape, kernel, n, first):
    """(forward, backward) FLOPs of one layer for a batch of n.  Backward = dW + dX, the dX
    GEMM skipped for the model's first layer (its input needs no gradient)."""
    if kind == "conv2d":
        kh, kw, c, o = kernel
        oh, ow = out_shape[0], out_shape[1]
        f = 2 * n * oh * ow * kh * kw * c * o
    elif kind == "dense":
        f = 2 * n * kernel[0] * kernel[1]
    else:
        return 0, 0
    return f, f if first else 2 * f


def model_flops(name, n=1):
    """(forward, training) FLOPs of the model for n samples; training = fwd + bwd."""
    fwd = bwd = 0
    first = True
    for kind, _, out, kernel in ARCH[name]:
        f, b = layer_flops(kind, out, kernel, n, first)
        if kernel is not None:
            first = False
        fwd += f
        bwd += b
    return fwd, fwd + bwd


def row_flops(model, arch_indices, first):
    """(forward, backward, first) for one timed row covering the layers ``arch_indices`` of
    ``model`` for a batch; ``first`` says whether no layer with a kernel came before, and the
    returned one whether that still holds after this row."""
    from . import BATCH
    arch = ARCH[model]
    f = b = 0
    for a in arch_indices:
        kind, _, out, kernel = arch[a] if a < len(arch) else ("?", None, None, None)
        fa, ba = layer_flops(kind, out, kernel, BATCH, first)
        f, b = f + fa, b + ba
        if kernel is not None:
            first = False
    return f, b, first
