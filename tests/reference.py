"""Plain float64 NumPy reference implementations of pycnn's kernels (the test oracle).

Everything here is written for clarity, not speed: explicit padding, one einsum per kernel
tap, loops over pooling windows.  Every function takes NumPy arrays of any float dtype,
computes in float64 and returns new float64 arrays (it never modifies its arguments).

Layouts follow Keras (channels-last), as in docs/kernels.md:
activations NHWC ``(N, H, W, C)``, conv kernel ``(KH, KW, C, O)``, dense kernel ``(IN, OUT)``,
integer labels ``(N,)``.

The semantics follow docs/kernels.md and /work/shared/guides/keras-semantics.md; the optimizer
and crossentropy formulas were checked against keras-team/keras (keras/src/optimizers/sgd.py,
rmsprop.py, adam.py and keras/src/backend/tensorflow/nn.py).
"""

import math

import numpy as np

#: Keras' ``backend.epsilon()``: the clipping bound of crossentropy on probabilities.
EPSILON = 1e-7

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Output sizes and TF "same"/"valid" padding
# ---------------------------------------------------------------------------------------------

def conv_output_size(n, k, s, padding):
    """Output length of a conv/pool along one axis of length ``n`` (kernel ``k``, stride ``s``).

    valid: ``floor((n - k) / s) + 1`` (ValueError if that is <= 0); same: ``ceil(n / s)``.
    """
    if n < 1 or k < 1 or s < 1:
        raise ValueError(f"sizes must be positive, got n={n}, k={k}, s={s}")
    if padding == "valid":
        out = (n - k) // s + 1
        if out <= 0:
            raise ValueError(f"valid padding: kernel {k} does not fit input {n}")
        return out
    if padding == "same":
        return -(-n // s)
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def same_pads(n, k, s):
    """TensorFlow's SAME padding along one axis: ``(before, after)``; the odd cell goes after."""
    out = conv_output_size(n, k, s, "same")
    total = max((out - 1) * s + k - n, 0)
    before = total // 2
    return before, total - before


def pads_for(n, k, s, padding):
    """``(before, after)`` for ``padding`` in {"valid", "same"}."""
    if padding == "valid":
        conv_output_size(n, k, s, "valid")  # validates
        return 0, 0
    return same_pads(n, k, s)


def geometry(h, w, kh, kw, sh, sw, padding):
    """``(out_h, out_w, (top, left))`` of a 2-D conv/pool with the given padding mode."""
    oh = conv_output_size(h, kh, sh, padding)
    ow = conv_output_size(w, kw, sw, padding)
    top = pads_for(h, kh, sh, padding)[0]
    left = pads_for(w, kw, sw, padding)[0]
    return oh, ow, (top, left)


def _padded(x, kh, kw, strides, pads, out_hw, fill):
    """Embed NHWC ``x`` in an array filled with ``fill`` so that every window of the output
    grid is inside it: window (i, j) covers rows ``i*sh .. i*sh+kh-1`` (in padded coordinates).
    """
    n, h, w, c = x.shape
    sh, sw = strides
    top, left = pads
    oh, ow = out_hw
    ph = max(top + h, (oh - 1) * sh + kh)
    pw = max(left + w, (ow - 1) * sw + kw)
    xp = np.full((n, ph, pw, c), fill, dtype=np.float64)
    xp[:, top:top + h, left:left + w, :] = x
    return xp


# ---------------------------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------------------------

def dense_forward(x, w, b=None):
    """``y = x @ w + b``; x (N, IN), w (IN, OUT), b (OUT,) or None."""
    y = _f64(x) @ _f64(w)
    if b is not None:
        y = y + _f64(b)
    return y


def dense_backward(x, w, dy):
    """Returns ``(dx, dw, db)`` = ``(dy @ w.T, x.T @ dy, dy.sum(0))``."""
    x, w, dy = _f64(x), _f64(w), _f64(dy)
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Conv2D (cross-correlation, NHWC, kernel (KH, KW, C, O))
# ---------------------------------------------------------------------------------------------

def conv2d_forward(x, w, b, strides, pads, out_hw):
    """``y[n,i,j,o] = b[o] + sum_{p,q,c} xpad[n, i*sh+p, j*sw+q, c] * w[p,q,c,o]``.

    ``pads = (top, left)``; the output size ``out_hw = (OH, OW)`` is given; cells outside the
    input read as 0.
    """
    x, w = _f64(x), _f64(w)
    kh, kw, c, o = w.shape
    sh, sw = strides
    oh, ow = out_hw
    xp = _padded(x, kh, kw, strides, pads, out_hw, 0.0)
    y = np.zeros((x.shape[0], oh, ow, o))
    for p in range(kh):
        for q in range(kw):
            patch = xp[:, p:p + (oh - 1) * sh + 1:sh, q:q + (ow - 1) * sw + 1:sw, :]
            y += np.einsum("nhwc,co->nhwo", patch, w[p, q])
    if b is not None:
        y += _f64(b)
    return y


def conv2d_backward(x, w, dy, strides, pads):
    """Gradients ``(dx, dw, db)`` of :func:`conv2d_forward` given ``dy`` (N, OH, OW, O)."""
    x, w, dy = _f64(x), _f64(w), _f64(dy)
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    sh, sw = strides
    top, left = pads
    oh, ow = dy.shape[1:3]
    xp = _padded(x, kh, kw, strides, pads, (oh, ow), 0.0)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for p in range(kh):
        for q in range(kw):
            rows = slice(p, p + (oh - 1) * sh + 1, sh)
            cols = slice(q, q + (ow - 1) * sw + 1, sw)
            dw[p, q] = np.einsum("nhwc,nhwo->co", xp[:, rows, cols, :], dy)
            dxp[:, rows, cols, :] += np.einsum("nhwo,co->nhwc", dy, w[p, q])
    dx = dxp[:, top:top + h, left:left + wd, :].copy()
    db = dy.sum(axis=(0, 1, 2))
    return dx, dw, db


def conv2d_forward_naive(x, w, b, strides, pads, out_hw):
    """The same as :func:`conv2d_forward` with seven nested loops and no padding array
    (an independent check of the einsum version on tiny shapes)."""
    x, w = _f64(x), _f64(w)
    n_, h, wd, c_ = x.shape
    kh, kw, _, o_ = w.shape
    sh, sw = strides
    top, left = pads
    oh, ow = out_hw
    y = np.zeros((n_, oh, ow, o_))
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for o in range(o_):
                    acc = 0.0 if b is None else float(b[o])
                    for p in range(kh):
                        for q in range(kw):
                            r, s = i * sh + p - top, j * sw + q - left
                            if 0 <= r < h and 0 <= s < wd:
                                for c in range(c_):
                                    acc += x[n, r, s, c] * w[p, q, c, o]
                    y[n, i, j, o] = acc
    return y


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

def maxpool2d_forward(x, pool, strides, pads, out_hw):
    """Max pooling with -inf padding.  Returns ``(y, argmax)``; ``argmax`` (int64) is the flat
    index ``h*W + w`` within the image of the FIRST maximum of each window, scanning the window
    row by row (np.argmax returns the first occurrence)."""
    x = _f64(x)
    n, h, wd, c = x.shape
    ph, pw = pool
    sh, sw = strides
    top, left = pads
    oh, ow = out_hw
    xp = _padded(x, ph, pw, strides, pads, out_hw, -np.inf)
    y = np.empty((n, oh, ow, c))
    argmax = np.empty((n, oh, ow, c), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :].reshape(n, ph * pw, c)
            k = np.argmax(win, axis=1)                     # (n, c), first max in row-major order
            y[:, i, j, :] = np.take_along_axis(win, k[:, None, :], axis=1)[:, 0, :]
            r = i * sh + k // pw - top                     # row in the unpadded image
            s = j * sw + k % pw - left
            argmax[:, i, j, :] = r * wd + s
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape):
    """``dx`` zeroed, then each ``dy`` added at its argmax (flat ``h*W + w`` per image/channel)."""
    dy = _f64(dy)
    n, h, wd, c = x_shape
    dx = np.zeros((n, h * wd, c))
    nn, _, _, cc = np.indices(dy.shape)
    np.add.at(dx, (nn.ravel(), np.asarray(argmax).ravel(), cc.ravel()), dy.ravel())
    return dx.reshape(n, h, wd, c)


def _avg_counts(h, wd, pool, strides, pads, out_hw):
    """Number of real (non-padding) input cells in each window, shape (OH, OW)."""
    ones = np.ones((1, h, wd, 1))
    ph, pw = pool
    sh, sw = strides
    oh, ow = out_hw
    onesp = _padded(ones, ph, pw, strides, pads, out_hw, 0.0)
    cnt = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            cnt[i, j] = onesp[0, i * sh:i * sh + ph, j * sw:j * sw + pw, 0].sum()
    return cnt


def avgpool2d_forward(x, pool, strides, pads, out_hw):
    """Mean over the real (non-padding) cells of each window."""
    x = _f64(x)
    n, h, wd, c = x.shape
    ph, pw = pool
    sh, sw = strides
    oh, ow = out_hw
    xp = _padded(x, ph, pw, strides, pads, out_hw, 0.0)
    cnt = _avg_counts(h, wd, pool, strides, pads, out_hw)
    y = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            y[:, i, j, :] = xp[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :].sum(axis=(1, 2))
            y[:, i, j, :] /= cnt[i, j]
    return y


def avgpool2d_backward(dy, x_shape, pool, strides, pads):
    """Gradient of :func:`avgpool2d_forward`: each ``dy / count`` spread over its window."""
    dy = _f64(dy)
    n, h, wd, c = x_shape
    ph, pw = pool
    sh, sw = strides
    top, left = pads
    oh, ow = dy.shape[1:3]
    cnt = _avg_counts(h, wd, pool, strides, pads, (oh, ow))
    dxp = _padded(np.zeros(x_shape), ph, pw, strides, pads, (oh, ow), 0.0)
    for i in range(oh):
        for j in range(ow):
            dxp[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :] += (dy[:, i, j, :] / cnt[i, j])[:, None, None, :]
    return dxp[:, top:top + h, left:left + wd, :].copy()


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

def activation_forward(kind, x):
    x = _f64(x)
    if kind == "linear":
        return x.copy()
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "sigmoid":
        # 1 / (1 + exp(-x)) written so that neither branch overflows
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {kind!r}")


def activation_backward(kind, y, dy):
    """``dx`` given the forward OUTPUT ``y`` and the upstream gradient ``dy``."""
    y, dy = _f64(y), _f64(dy)
    if kind == "linear":
        return dy.copy()
    if kind == "relu":
        return dy * (y > 0)
    if kind == "sigmoid":
        return dy * y * (1.0 - y)
    if kind == "tanh":
        return dy * (1.0 - y * y)
    if kind == "softmax":
        # Jacobian of softmax: diag(y) - y y^T, per row of the last axis
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    raise ValueError(f"unknown activation {kind!r}")


# ---------------------------------------------------------------------------------------------
# Losses (mean over the batch)
# ---------------------------------------------------------------------------------------------

def log_softmax(logits):
    z = _f64(logits)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax_xent_sparse(logits, labels):
    """Returns ``(loss, probs, dlogits)``: mean of ``-log softmax(logits)[n, label]`` and
    ``dlogits = (probs - onehot) / N``."""
    ls = log_softmax(logits)
    n, c = ls.shape
    labels = np.asarray(labels)
    loss = -ls[np.arange(n), labels].mean()
    probs = np.exp(ls)
    d = probs.copy()
    d[np.arange(n), labels] -= 1.0
    return float(loss), probs, d / n


def softmax_xent(logits, targets):
    """Returns ``(loss, probs, dlogits)``: mean of ``-sum_c t log softmax(logits)`` and
    ``dlogits = (probs - targets) / N`` (the exact gradient when each target row sums to 1,
    as TensorFlow's softmax_cross_entropy_with_logits computes it)."""
    ls = log_softmax(logits)
    t = _f64(targets)
    n = ls.shape[0]
    loss = -(t * ls).sum(axis=-1).mean()
    probs = np.exp(ls)
    return float(loss), probs, (probs - t) / n


def _clip_mask(p):
    """1 where clip(p, EPSILON, 1 - EPSILON) passes the gradient (p inside the bounds)."""
    return ((p >= EPSILON) & (p <= 1.0 - EPSILON)).astype(np.float64)


def xent_sparse(probs, labels):
    """Returns ``(loss, dprobs)``: Keras' sparse categorical crossentropy on probabilities,
    which (tf.keras 2.21 and Keras 3 alike) renormalises each row first: ``q = p / sum(p)``,
    mean of ``-log(clip(q[n, label], 1e-7, 1 - 1e-7))``; the categorical one with one-hot
    targets."""
    p = _f64(probs)
    labels = np.asarray(labels)
    return xent(p, np.eye(p.shape[1])[labels])


def xent(probs, targets):
    """Keras' categorical crossentropy on probabilities: ``q = p / sum(p)`` per row,
    ``loss = mean_n -sum_c t log(clip(q, 1e-7, 1 - 1e-7))``.  Returns ``(loss, dprobs)``,
    the exact gradient through the renormalisation and the clip."""
    p = _f64(probs)
    t = _f64(targets)
    n = p.shape[0]
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    qc = np.clip(q, EPSILON, 1.0 - EPSILON)
    loss = -(t * np.log(qc)).sum(axis=-1).mean()
    g = -t / qc * _clip_mask(q)                      # dL_n/dq
    # q_j = p_j / S  =>  dq_j/dp_k = (delta_jk - q_j) / S
    dp = (g - (g * q).sum(axis=-1, keepdims=True)) / s
    return float(loss), dp / n


# ---------------------------------------------------------------------------------------------
# Optimizers (one step; return new arrays, never modify the arguments)
# ---------------------------------------------------------------------------------------------

def sgd_step(w, g, velocity, lr, momentum=0.0, nesterov=False):
    """Keras SGD.  Returns ``(w, velocity)`` (velocity None when momentum == 0).

    momentum == 0: ``w -= lr*g``;  else ``v = momentum*v - lr*g`` and
    ``w += v`` (plain) or ``w += momentum*v - lr*g`` (nesterov).
    """
    w, g = _f64(w), _f64(g)
    if momentum == 0:
        return w - lr * g, None
    v = momentum * _f64(velocity) - lr * g
    if nesterov:
        return w + momentum * v - lr * g, v
    return w + v, v


def rmsprop_step(w, g, v, lr, rho=0.9, epsilon=1e-7, momentum=0.0, mom=None,
                 centered=False, mg=None):
    """Keras 3 RMSprop.  Returns ``(w, v, mom, mg)`` (mom/mg None when unused).

    ``v = rho*v + (1-rho)*g^2``; centered: ``mg = rho*mg + (1-rho)*g``,
    ``denom = v - mg^2 + eps`` else ``denom = v + eps``; ``inc = lr*g / sqrt(denom)``;
    momentum > 0: ``mom = momentum*mom + inc; w -= mom`` else ``w -= inc``.
    """
    w, g = _f64(w), _f64(g)
    v = rho * _f64(v) + (1.0 - rho) * g * g
    if centered:
        mg = rho * _f64(mg) + (1.0 - rho) * g
        denom = v - mg * mg + epsilon
    else:
        mg = None
        denom = v + epsilon
    inc = lr * g / np.sqrt(denom)
    if momentum > 0:
        mom = momentum * _f64(mom) + inc
        return w - mom, v, mom, mg
    return w - inc, v, None, mg


def adam_step(w, g, m, v, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, step=1):
    """Keras Adam, ``step`` counted from 1.  Returns ``(w, m, v)``.

    ``alpha = lr*sqrt(1-beta_2^t)/(1-beta_1^t)``; ``m += (g-m)(1-beta_1)``;
    ``v += (g^2-v)(1-beta_2)``; ``w -= alpha*m/(sqrt(v)+epsilon)``.
    """
    if step < 1:
        raise ValueError("step counts from 1")
    w, g, m, v = _f64(w), _f64(g), _f64(m), _f64(v)
    alpha = lr * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    m = m + (g - m) * (1.0 - beta_1)
    v = v + (g * g - v) * (1.0 - beta_2)
    return w - alpha * m / (np.sqrt(v) + epsilon), m, v


# ---------------------------------------------------------------------------------------------
# Numerical differentiation helpers (used by the tests)
# ---------------------------------------------------------------------------------------------

def central_difference(f, flat, k, h=1e-6):
    """``(f() at flat[k] + h - f() at flat[k] - h) / 2h``: the central difference of the
    scalar ``f()`` along coordinate ``k`` of the float64 array ``flat`` (a flat view of what
    ``f`` reads); ``flat[k]`` is restored."""
    old = flat[k]
    flat[k] = old + h
    fp = f()
    flat[k] = old - h
    fm = f()
    flat[k] = old
    return (fp - fm) / (2 * h)


def numerical_grad(f, x, h=1e-6):
    """Central-difference gradient of the scalar function ``f`` at float64 array ``x``."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, g_flat = x.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        g_flat[k] = central_difference(lambda: f(x), flat, k, h)
    return g


def out_of_tolerance(what, actual, expected, err, bound):
    """The failure message of an elementwise comparison: how many elements have ``err``
    above ``bound``, and the worst of them."""
    i = np.unravel_index(np.argmax(err - bound), err.shape)
    return (f"{what}: {int((err > bound).sum())}/{err.size} elements out of tolerance; worst "
            f"at {i}: got {actual[i]!r}, expected {expected[i]!r} (abs err {err[i]:.3g}, "
            f"bound {bound[i]:.3g})")
