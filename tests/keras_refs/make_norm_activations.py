"""Writes norm_activations_keras3.json: Keras 3.15.1 (JAX backend) numbers for
tests/test_normalization.py, test_activations_more.py and test_regularizers.py. Run with the
Keras venv (never needed by the tests):
    KERAS_BACKEND=jax /work/venvs/keras3/bin/python tests/keras_refs/make_norm_activations.py
"""
import numpy as np, keras, json
from keras import layers as L, activations as A, regularizers as R, constraints as C
out = {}
# deterministic inputs (reproducible in pycnn tests with the same formula)
def inp(shape, k=1.0, off=0.0):
    n = int(np.prod(shape))
    return (np.sin(np.arange(n, dtype=np.float64) * 0.7 + 0.3) * 2.0 * k + off).reshape(shape).astype(np.float32)
x = inp((4, 3, 3, 2), off=0.5)
bn = L.BatchNormalization(momentum=0.9)
bn.build(x.shape)
bn.set_weights([np.array([1.5, 0.5], np.float32), np.array([0.1, -0.2], np.float32), np.zeros(2, np.float32), np.ones(2, np.float32)])
ys = []
for i in range(3):
    xi = x * (1 + i) + i
    ys.append(np.asarray(bn(xi, training=True)).tolist())
out["bn_train_y"] = ys
out["bn_moving"] = [np.asarray(w).tolist() for w in bn.get_weights()]
out["bn_infer_y"] = np.asarray(bn(x, training=False)).tolist()
bn.trainable = False
out["bn_frozen_y"] = np.asarray(bn(x, training=True)).tolist()
out["bn_frozen_moving"] = [np.asarray(w).tolist() for w in bn.get_weights()]
# axis=1 BN on (4, 3, 5)
x2 = inp((4, 3, 5))
bn2 = L.BatchNormalization(axis=1, epsilon=0.01)
out["bn_axis1_y"] = np.asarray(bn2(x2, training=True)).tolist()
out["bn_axis1_moving"] = [np.asarray(w).tolist() for w in bn2.get_weights()]
# layer norm
ln = L.LayerNormalization()
out["ln_y"] = np.asarray(ln(x2)).tolist()
ln2 = L.LayerNormalization(axis=[1, 2], epsilon=0.1)
out["ln_axes_y"] = np.asarray(ln2(x)).tolist()
ln3 = L.LayerNormalization(rms_scaling=True)
out["ln_rms_y"] = np.asarray(ln3(x2)).tolist()
# activations
z = np.linspace(-5, 5, 41).astype(np.float32)
acts = {}
for name in ["elu", "selu", "softplus", "softsign", "silu", "swish", "hard_sigmoid", "hard_silu", "hard_swish", "relu6", "leaky_relu", "exponential", "gelu", "mish", "log_sigmoid", "hard_tanh", "relu", "sigmoid", "tanh"]:
    acts[name] = np.asarray(A.get(name)(z)).tolist()
acts["gelu_approx"] = np.asarray(A.gelu(z, approximate=True)).tolist()
acts["elu_0.5"] = np.asarray(A.elu(z, alpha=0.5)).tolist()
out["acts"] = acts
import jax
grads = {}
for name in ["elu", "selu", "softplus", "softsign", "silu", "hard_sigmoid", "hard_silu", "relu6", "leaky_relu", "exponential", "gelu", "mish", "log_sigmoid", "hard_tanh"]:
    f = A.get(name)
    zz = z + np.float32(0.0625)   # avoid kinks at 0, +-3, +-1, 6 exactly
    grads[name] = np.asarray(jax.vmap(jax.grad(lambda t: f(t)))(zz)).tolist()
out["act_grads"] = grads
out["leaky_layer"] = np.asarray(L.LeakyReLU()(z)).tolist()
out["elu_layer"] = np.asarray(L.ELU(alpha=0.7)(z)).tolist()
p = L.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2])
out["prelu"] = np.asarray(p(x)).tolist()
out["prelu_alpha_shape"] = list(p.get_weights()[0].shape)
# regularizers
w = inp((3, 4), k=0.5)
out["reg_l1"] = float(R.L1(0.02)(w)); out["reg_l2"] = float(R.L2(0.03)(w)); out["reg_l1l2"] = float(R.L1L2(0.01, 0.02)(w))
wt = keras.ops.convert_to_tensor(w); out["reg_orth_rows"] = float(R.OrthogonalRegularizer(0.1)(wt)); out["reg_orth_cols"] = float(R.OrthogonalRegularizer(0.1, mode="columns")(wt))
wk = inp((3, 3, 2, 4), k=0.5)
out["c_maxnorm"] = np.asarray(C.MaxNorm(0.8, axis=[0, 1, 2])(wk)).tolist()
out["c_minmax"] = np.asarray(C.MinMaxNorm(0.9, 1.2, rate=0.5, axis=0)(w)).tolist()
out["c_unit"] = np.asarray(C.UnitNorm(axis=1)(w)).tolist()
out["c_nonneg"] = np.asarray(C.NonNeg()(w)).tolist()
out["gap"] = np.asarray(L.GlobalAveragePooling2D()(x)).tolist()
out["gmp1"] = np.asarray(L.GlobalMaxPooling1D(keepdims=True)(x2)).tolist()
import os
json.dump(out, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "norm_activations_keras3.json"), "w"))
print("ok", out["bn_moving"], out["reg_orth_rows"], out["reg_l1"])
