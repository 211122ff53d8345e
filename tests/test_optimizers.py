"""Optimizers and learning rate schedules (pycnn.optimizers): every update rule against a float64
NumPy implementation of Keras 3's formulas (keras/src/optimizers/*.py) over several steps, with
and without weight decay, clipping and each rule's options, and against numbers computed by
Keras 3.15 (JAX backend) for the same variables and gradients; the schedules against Keras'
values; the C kernels' thread-count independence and refusal of non-finite updates; state tied
to each variable object; Keras' variable order for saving; configuration and argument checks.
"""
from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pytest

import pycnn
from pycnn import _C, optimizers
from pycnn.layers.base import Variable
from pycnn.optimizers import schedules

# ---- float64 references of Keras' rules -----------------------------------------------------------

HP = {
    "sgd": {"lr": 0.05, "momentum": 0.0, "nesterov": False},
    "sgd_momentum": {"lr": 0.05, "momentum": 0.9, "nesterov": False},
    "sgd_nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "rmsprop": {"lr": 0.01, "rho": 0.9, "epsilon": 1e-7, "momentum": 0.0, "centered": False},
    "rmsprop_momentum_centered": {"lr": 0.01, "rho": 0.8, "epsilon": 1e-6, "momentum": 0.6,
                                  "centered": True},
    "adam": {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "adam_amsgrad": {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3, "amsgrad": True},
    "adamax": {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adagrad": {"lr": 0.1, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "adadelta": {"lr": 1.0, "rho": 0.95, "epsilon": 1e-7},
    "lion": {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.99},
}


def make_optimizer(kind: str, **common):
    hp = dict(HP[kind])
    lr = hp.pop("lr")
    cls = {"sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop, "adam": optimizers.Adam,
           "adamax": optimizers.Adamax, "nadam": optimizers.Nadam,
           "adagrad": optimizers.Adagrad, "adadelta": optimizers.Adadelta,
           "lion": optimizers.Lion}[kind.split("_")[0]]
    return cls(learning_rate=lr, **hp, **common)


def ref_rule(kind, w, g, s, t, lr):
    """One update of Keras' rule `kind` in float64; s: the state dict (updated); t from 1."""
    hp = HP[kind]
    z = np.zeros_like(w)
    base = kind.split("_")[0]
    if base == "sgd":
        mom = hp["momentum"]
        if not mom:
            return w - lr * g
        v = s.get("v", z) * mom - g * lr
        s["v"] = v
        return w + (v * mom - g * lr if hp["nesterov"] else v)
    if base == "rmsprop":
        rho, eps = hp["rho"], hp["epsilon"]
        v = rho * s.get("v", z) + (1 - rho) * g * g
        s["v"] = v
        denom = v
        if hp["centered"]:
            mg = rho * s.get("mg", z) + (1 - rho) * g
            s["mg"] = mg
            denom = v - mg * mg
        inc = lr * g / np.sqrt(denom + eps)
        if hp["momentum"] > 0:
            inc = hp["momentum"] * s.get("mom", z) + inc
            s["mom"] = inc
        return w - inc
    if base == "adam":
        b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
        m = s.get("m", z) + (g - s.get("m", z)) * (1 - b1)
        v = s.get("v", z) + (g * g - s.get("v", z)) * (1 - b2)
        s["m"], s["v"] = m, v
        if hp["amsgrad"]:
            v = np.maximum(s.get("vh", z), v)
            s["vh"] = v
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return w - m * alpha / (np.sqrt(v) + eps)
    if base == "adamax":
        b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
        m = s.get("m", z) + (g - s.get("m", z)) * (1 - b1)
        u = np.maximum(b2 * s.get("u", z), np.abs(g))
        s["m"], s["u"] = m, u
        return w - lr * m / ((1 - b1 ** t) * (u + eps))
    if base == "nadam":
        b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        p = s.get("p", 1.0) * u_t
        s["p"] = p
        m = s.get("m", z) + (g - s.get("m", z)) * (1 - b1)
        v = s.get("v", z) + (g * g - s.get("v", z)) * (1 - b2)
        s["m"], s["v"] = m, v
        m_hat = u_t1 * m / (1 - p * u_t1) + (1 - u_t) * g / (1 - p)
        v_hat = v / (1 - b2 ** t)
        return w - m_hat * lr / (np.sqrt(v_hat) + eps)
    if base == "adagrad":
        acc = s.get("acc", z + hp["initial_accumulator_value"]) + g * g
        s["acc"] = acc
        return w - lr * g / np.sqrt(acc + hp["epsilon"])
    if base == "adadelta":
        rho, eps = hp["rho"], hp["epsilon"]
        ag = rho * s.get("ag", z) + (1 - rho) * g * g
        d = -np.sqrt(s.get("ad", z) + eps) * g / np.sqrt(ag + eps)
        s["ag"], s["ad"] = ag, rho * s.get("ad", z) + (1 - rho) * d * d
        return w + lr * d
    if base == "lion":
        b1, b2 = hp["beta_1"], hp["beta_2"]
        w = w - lr * np.sign(s.get("m", z) * b1 + g * (1 - b1))
        s["m"] = s.get("m", z) * b2 + g * (1 - b2)
        return w
    raise AssertionError(kind)


def ref_step(kind, ws, gs, states, t, lr, weight_decay=None, clipnorm=None,
             global_clipnorm=None, clipvalue=None):
    """Keras' apply: clip the gradients, decay the weights, then the rule, in float64."""
    gs = [np.asarray(g, np.float64) for g in gs]
    if clipnorm:
        gs = [g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm) for g in gs]
    elif global_clipnorm:
        norm = math.sqrt(sum(np.sum(g * g) for g in gs))
        gs = [g * global_clipnorm * min(1 / norm, 1 / global_clipnorm) for g in gs]
    elif clipvalue:
        gs = [np.clip(g, -clipvalue, clipvalue) for g in gs]
    out = []
    for w, g, s in zip(ws, gs, states):
        if weight_decay:
            w = w - w * weight_decay * lr
        out.append(ref_rule(kind, w, g, s, t, lr))
    return out


def variables_and_gradients(shapes, steps, seed):
    r = np.random.default_rng(seed)
    vs = [Variable(r.standard_normal(s).astype(np.float32), f"layer/v{i}")
          for i, s in enumerate(shapes)]
    grads = [[(r.standard_normal(s) * (0.3 + t)).astype(np.float32) for s in shapes]
             for t in range(steps)]
    return vs, grads


def assert_close(got, want, what, rtol=2e-5, atol=2e-6):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


KINDS = list(HP)
COMMON = {
    "plain": {},
    "weight_decay": {"weight_decay": 0.05},
    "clipnorm": {"clipnorm": 0.7},
    "global_clipnorm": {"global_clipnorm": 1.5},
    "clipvalue": {"clipvalue": 0.4},
}


# ---- numbers computed by Keras 3.15 (JAX backend; /work/venvs/keras3): keras.optimizers.<case>
# applied with apply_gradients to keras_case_data()'s kernel and bias, the weights after each of
# four steps (and for sgd_ema the two moving averages after the last step)
KERAS = {
    'sgd': [
        ([-1.10000002, -0.626700044, -0.114300005, 0.272599995, 0.553100049, 0.9023], [0.519999981, -0.294400007, 0.0214999989]),
        ([-1.30000007, -0.493400037, -0.0919000059, 0.109499991, 0.748100042, 0.805599988], [0.539999962, -0.373600006, 0.0671000034]),
        ([-1.60000014, -0.19720003, -0.377000034, 0.376300007, 0.506300032, 1.01629996], [0.559999943, -0.396300018, 0.164400011]),
        ([-2.00000024, -0.0369000286, -0.105500042, -0.00159999728, 0.537800014, 1.36899996], [0.579999924, -0.323300004, 0.0945000127])],
    'sgd_momentum': [
        ([-1.10000002, -0.626700044, -0.114300005, 0.272599995, 0.553100049, 0.9023], [0.519999981, -0.294400007, 0.0214999989]),
        ([-1.38999999, -0.517430067, -0.0147700086, 0.174839988, 0.705890059, 0.717669964], [0.557999969, -0.413560003, -0.00355000421]),
        ([-1.95099998, -0.122887075, -0.210293025, 0.353655994, 0.601601064, 0.762202978], [0.612199962, -0.543504, 0.0712049901]),
        ([-2.85589981, 0.392501593, -0.114763752, 0.136690408, 0.539240956, 1.15498269], [0.680979967, -0.587453604, 0.0685844868])],
    'sgd_nesterov': [
        ([-1.19000006, -0.650730014, -0.0371700078, 0.337939978, 0.510890007, 0.814370036], [0.537999988, -0.334360003, -0.0491500124]),
        ([-1.65100002, -0.419087023, 0.0748069882, 0.0868559778, 0.843401015, 0.551503062], [0.592199981, -0.520803988, -0.0260950141]),
        ([-2.45589995, 0.232201666, -0.386263728, 0.514590383, 0.507740915, 0.80228281], [0.660979986, -0.660453558, 0.138484478]),
        ([-3.67031002, 0.856351495, -0.0287874043, -0.0585786104, 0.483116835, 1.5084846], [0.742882013, -0.6270082, 0.0662260279])],
    'rmsprop': [
        ([-1.03162277, -0.631622553, -0.16837725, 0.231622756, 0.568377316, 0.968377233], [0.53162241, -0.281622708, 0.0683772564]),
        ([-1.06019425, -0.600555718, -0.15997766, 0.202490926, 0.599207759, 0.945547819], [0.55456382, -0.309542447, 0.0848905444]),
        ([-1.0861007, -0.57155323, -0.190424368, 0.229252264, 0.57433033, 0.972627044], [0.573773205, -0.317692608, 0.108968399]),
        ([-1.10997581, -0.556893587, -0.168448061, 0.204455912, 0.577726722, 0.998997569], [0.590825498, -0.296886981, 0.0931728035])],
    'rmsprop_centered_momentum': [
        ([-1.0333333, -0.633333087, -0.166666687, 0.233333305, 0.566666782, 0.966666698], [0.533332884, -0.283333242, 0.0666667074]),
        ([-1.08139205, -0.617873549, -0.140946239, 0.220413595, 0.581771493, 0.924634099], [0.575489759, -0.330765635, 0.0665817186]),
        ([-1.1350348, -0.578700244, -0.159218982, 0.24115622, 0.564301968, 0.930741489], [0.619066477, -0.363696277, 0.0910399407]),
        ([-1.19022536, -0.542491853, -0.146313056, 0.226476014, 0.558971286, 0.961382091], [0.661906958, -0.359190792, 0.0874731839])],
    'adam': [
        ([-1.00999987, -0.609999835, -0.190000102, 0.209999889, 0.590000153, 0.990000129], [0.509999752, -0.259999871, 0.0900001079]),
        ([-1.01965153, -0.604018688, -0.181634963, 0.205924794, 0.59566921, 0.980003059], [0.519999564, -0.269766867, 0.0879460573]),
        ([-1.02923155, -0.596284568, -0.18581903, 0.209483758, 0.593548119, 0.981134117], [0.529999435, -0.278641403, 0.0915360451]),
        ([-1.03883553, -0.588034332, -0.184442893, 0.206940234, 0.592399538, 0.986404061], [0.539999247, -0.280794591, 0.091434665])],
    'adam_amsgrad': [
        ([-1.00999987, -0.609999835, -0.190000102, 0.209999889, 0.590000153, 0.990000129], [0.509999752, -0.259999871, 0.0900001079]),
        ([-1.01965153, -0.604018688, -0.181634963, 0.205924794, 0.59566921, 0.980003059], [0.519999564, -0.269766867, 0.0879460573]),
        ([-1.02923155, -0.596284568, -0.18581903, 0.209483758, 0.593548119, 0.981134117], [0.529999435, -0.278641403, 0.0915360451]),
        ([-1.03883553, -0.588034332, -0.184442893, 0.206940234, 0.592399538, 0.986404061], [0.539999247, -0.280794591, 0.091434665])],
    'adam_weight_decay': [
        ([-1.00899994, -0.609399855, -0.189800099, 0.209799886, 0.589400172, 0.989000142], [0.509499788, -0.25974986, 0.0899001062]),
        ([-1.01764262, -0.60280931, -0.181245163, 0.205514997, 0.594479859, 0.978014052], [0.518990099, -0.269257098, 0.0877561569]),
        ([-1.02620494, -0.594472408, -0.185247988, 0.208868444, 0.591764271, 0.978167117], [0.528470993, -0.27786237, 0.0912583917]),
        ([-1.03478277, -0.585627675, -0.183686599, 0.20611605, 0.590023935, 0.982458889], [0.53794235, -0.279737681, 0.091065757])],
    'adamw': [
        ([-1.00899994, -0.609399855, -0.189800099, 0.209799886, 0.589400172, 0.989000142], [0.509499788, -0.25974986, 0.0899001062]),
        ([-1.01764262, -0.60280931, -0.181245163, 0.205514997, 0.594479859, 0.978014052], [0.518990099, -0.269257098, 0.0877561569]),
        ([-1.02620494, -0.594472408, -0.185247988, 0.208868444, 0.591764271, 0.978167117], [0.528470993, -0.27786237, 0.0912583917]),
        ([-1.03478277, -0.585627675, -0.183686599, 0.20611605, 0.590023935, 0.982458889], [0.53794235, -0.279737681, 0.091065757])],
    'adamax': [
        ([-1.00999999, -0.610000014, -0.190000013, 0.209999993, 0.590000033, 0.99000001], [0.50999999, -0.25999999, 0.0900000036]),
        ([-1.01763153, -0.605685651, -0.183881387, 0.206845328, 0.5941239, 0.980043948], [0.519999981, -0.267918646, 0.0883188024]),
        ([-1.02453184, -0.600770473, -0.186412036, 0.209318489, 0.592532396, 0.980823874], [0.529999971, -0.273978978, 0.0911538377]),
        ([-1.03111005, -0.595705807, -0.185436726, 0.207649007, 0.591781735, 0.984062135], [0.539999962, -0.275595814, 0.0910754427])],
    'nadam': [
        ([-1.01062787, -0.61062789, -0.189372122, 0.210627884, 0.589372158, 0.989372134], [0.510627866, -0.260627866, 0.0893721282]),
        ([-1.02008927, -0.600751579, -0.186089635, 0.201586485, 0.599137306, 0.981670856], [0.518363714, -0.269893259, 0.0938823596]),
        ([-1.02932322, -0.590751708, -0.196009055, 0.210207716, 0.591328025, 0.989992917], [0.525477111, -0.273578733, 0.101537034]),
        ([-1.03862274, -0.584667861, -0.188855991, 0.20191884, 0.592133105, 0.999330044], [0.532494426, -0.267683417, 0.096752055])],
    'adagrad': [
        ([-1.09534621, -0.664512873, -0.106183149, 0.291680396, 0.517086744, 0.904859543], [0.553452253, -0.331452668, 0.00724339485]),
        ([-1.18390775, -0.569010139, -0.0823671743, 0.201722682, 0.613127649, 0.836304128], [0.600592673, -0.413827628, 0.0546775311]),
        ([-1.26380134, -0.478550494, -0.177332863, 0.284432143, 0.536545694, 0.919402122], [0.643232822, -0.436805874, 0.12581341]),
        ([-1.33670962, -0.434581041, -0.110258095, 0.208373442, 0.546472967, 1.00059783], [0.682456017, -0.377376258, 0.0803074837])],
    'adadelta': [
        ([-1.00141418, -0.601414204, -0.198585793, 0.201414213, 0.598585844, 0.998585761], [0.50141418, -0.25141421, 0.0985857919]),
        ([-1.00321209, -0.599451303, -0.198067769, 0.199579448, 0.600533068, 0.997160733], [0.50284636, -0.253169298, 0.0996097028]),
        ([-1.00537646, -0.596909225, -0.200025648, 0.201840088, 0.598375201, 0.999223232], [0.50429076, -0.253829449, 0.101269543]),
        ([-1.00790119, -0.595221817, -0.198104739, 0.199149475, 0.598734438, 1.00182748], [0.505744457, -0.252126485, 0.0999448895])],
    'lion': [
        ([-1.00999999, -0.610000014, -0.189999998, 0.210000008, 0.590000033, 0.99000001], [0.50999999, -0.25999999, 0.0900000036]),
        ([-1.01999998, -0.600000024, -0.179999992, 0.200000003, 0.600000024, 0.980000019], [0.519999981, -0.269999981, 0.100000001]),
        ([-1.02999997, -0.590000033, -0.189999998, 0.210000008, 0.590000033, 0.99000001], [0.529999971, -0.279999971, 0.109999999]),
        ([-1.03999996, -0.580000043, -0.179999992, 0.200000003, 0.600000024, 1], [0.539999962, -0.269999981, 0.100000001])],
    'sgd_clipnorm': [
        ([-1.02669823, -0.607128441, -0.177119583, 0.219382957, 0.587478518, 0.973915756], [0.510825157, -0.274031818, 0.0575113185]),
        ([-1.05419648, -0.588800848, -0.174039781, 0.196958125, 0.614289343, 0.960620344], [0.521514356, -0.316361159, 0.0818827599]),
        ([-1.07699025, -0.566295743, -0.19570151, 0.217229426, 0.595917523, 0.976629198], [0.53132838, -0.327500075, 0.129628018]),
        ([-1.10452461, -0.555261374, -0.177012563, 0.191216335, 0.59808588, 1.00090766], [0.541034341, -0.29207322, 0.0957055837])],
    'sgd_global_clipnorm': [
        ([-1.02394378, -0.606393039, -0.179480135, 0.217383221, 0.58877039, 0.976606905], [0.504788756, -0.260631055, 0.081204094]),
        ([-1.0505749, -0.588643372, -0.176497445, 0.195665509, 0.614735782, 0.963730752], [0.507451892, -0.271176994, 0.0872759968]),
        ([-1.07310033, -0.566403329, -0.19790408, 0.215698093, 0.596580327, 0.979551077], [0.508953571, -0.272881418, 0.0945817307]),
        ([-1.10036182, -0.555478275, -0.17940034, 0.189942807, 0.598727167, 1.00358891], [0.51031667, -0.267906189, 0.0898177847])],
    'adam_clipvalue': [
        ([-1.00999975, -0.609999776, -0.190000236, 0.20999977, 0.590000272, 0.990000248], [0.509999752, -0.259999782, 0.0900002271]),
        ([-1.0199995, -0.609473467, -0.180000454, 0.209473461, 0.590526581, 0.980000436], [0.519999564, -0.269999564, 0.0905265287]),
        ([-1.02999938, -0.605451405, -0.177380562, 0.212831348, 0.587168694, 0.977380514], [0.529999435, -0.279999435, 0.0945486203]),
        ([-1.03999925, -0.599691093, -0.172614723, 0.212305039, 0.587695003, 0.978430212], [0.539999247, -0.284183711, 0.0944933742])],
    'sgd_accumulation': [
        ([-1, -0.600000024, -0.200000003, 0.200000003, 0.600000024, 1], [0.5, -0.25, 0.100000001]),
        ([-1.14999998, -0.546700001, -0.145950004, 0.154750004, 0.674050033, 0.902800024], [0.519999981, -0.311800003, 0.0835499987]),
        ([-1.14999998, -0.546700001, -0.145950004, 0.154750004, 0.674050033, 0.902800024], [0.519999981, -0.311800003, 0.0835499987]),
        ([-1.57500005, -0.291799992, -0.125725016, 0.0765749961, 0.605925024, 1.13590002], [0.549999952, -0.317550004, 0.0890249982])],
    'sgd_ema': [
        ([-1.10000002, -0.626700044, -0.114300005, 0.272599995, 0.553100049, 0.9023], [0.519999981, -0.294400007, 0.0214999989]),
        ([-1.30000007, -0.493400037, -0.0919000059, 0.109499991, 0.748100042, 0.805599988], [0.539999962, -0.373600006, 0.0671000034]),
        ([-1.60000014, -0.19720003, -0.377000034, 0.376300007, 0.506300032, 1.01629996], [0.559999943, -0.396300018, 0.164400011]),
        ([-2.00000024, -0.0369000286, -0.105500042, -0.00159999728, 0.537800014, 1.36899996], [0.579999924, -0.323300004, 0.0945000127])],
    'sgd_schedule': [
        ([-1.10000002, -0.626700044, -0.114300005, 0.272599995, 0.553100049, 0.9023], [0.519999981, -0.294400007, 0.0214999989]),
        ([-1.24142134, -0.532442689, -0.0984608084, 0.157270879, 0.690985918, 0.833922744], [0.534142137, -0.350402862, 0.0537440702]),
        ([-1.39142132, -0.38434267, -0.241010815, 0.290670872, 0.570085943, 0.939272761], [0.544142127, -0.361752868, 0.102394074]),
        ([-1.53284264, -0.327668071, -0.145021066, 0.157063037, 0.581222892, 1.06397104], [0.551213205, -0.33594346, 0.0776806921])],
}
KERAS_EMA_AVERAGES = [[-1.25120008, -0.518267751, -0.135248601, 0.241301894, 0.563153088, 0.9513973], [0.531219959, -0.312876195, 0.0453546084]]

# keras.optimizers.schedules.<case>(step) at SCHEDULE_STEPS, by Keras 3.15 (float32)
SCHEDULE_STEPS = [0, 1, 2, 5, 7, 10, 15, 20, 25, 33, 50, 100]
KERAS_SCHEDULES = {
    'ExponentialDecay(0.1, 10, 0.5)': [0.100000001, 0.0933033004, 0.0870550573, 0.0707106814, 0.0615572222, 0.0500000007, 0.0353553407, 0.0250000004, 0.0176776703, 0.0101531548, 0.00312500005, 9.76562515e-05],
    'ExponentialDecay(0.1, 10, 0.5, staircase=True)': [0.100000001, 0.100000001, 0.100000001, 0.100000001, 0.100000001, 0.0500000007, 0.0500000007, 0.0250000004, 0.0250000004, 0.0125000002, 0.00312500005, 9.76562515e-05],
    'PiecewiseConstantDecay([5, 20], [1.0, 0.5, 0.1])': [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.100000001, 0.100000001, 0.100000001, 0.100000001],
    'PolynomialDecay(0.1, 20)': [0.100000001, 0.0950049981, 0.0900100023, 0.0750249997, 0.0650350004, 0.0500500016, 0.0250749998, 9.99999975e-05, 9.99999975e-05, 9.99999975e-05, 9.99999975e-05, 9.99999975e-05],
    'PolynomialDecay(0.1, 20, 0.01, power=2.0, cycle=True)': [0.100000001, 0.0912249982, 0.0828999951, 0.0606250018, 0.0480249971, 0.0324999988, 0.015625, 0.00999999978, 0.0226562507, 0.0127562508, 0.0125000002, 0.00999999978],
    'InverseTimeDecay(0.1, 10, 0.5)': [0.100000001, 0.0952381045, 0.0909090936, 0.0799999982, 0.0740740746, 0.0666666701, 0.0571428575, 0.0500000007, 0.0444444455, 0.0377358496, 0.0285714287, 0.0166666675],
    'InverseTimeDecay(0.1, 10, 0.5, staircase=True)': [0.100000001, 0.100000001, 0.100000001, 0.100000001, 0.100000001, 0.0666666701, 0.0666666701, 0.0500000007, 0.0500000007, 0.0399999991, 0.0285714287, 0.0166666675],
    'CosineDecay(0.1, 20)': [0.100000001, 0.0993844196, 0.0975528285, 0.0853553414, 0.0726995245, 0.049999997, 0.0146446619, 0, 0, 0, 0, 0],
    'CosineDecay(0.1, 20, alpha=0.1)': [0.100000001, 0.0994459763, 0.0977975428, 0.0868198127, 0.0754295737, 0.054999996, 0.0231801961, 0.0100000007, 0.0100000007, 0.0100000007, 0.0100000007, 0.0100000007],
    'CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=10)': [0, 0.0100000007, 0.0200000014, 0.0500000007, 0.0700000003, 0.100000001, 0.0853553414, 0.049999997, 0.0146446619, 0, 0, 0],
    'CosineDecayRestarts(0.1, 10)': [0.100000001, 0.0975528285, 0.0904508457, 0.049999997, 0.0206107404, 0.100000001, 0.0853553414, 0.049999997, 0.0146446619, 0.0986184999, 0.049999997, 0.0691341683],
    'CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5, alpha=0.1)': [0.100000001, 0.0977975428, 0.0914057642, 0.054999996, 0.0285496656, 0.0550000034, 0.0324999988, 0.0324999988, 0.0212500002, 0.0189312939, 0.0128124999, 0.0100878915],
    'CosineDecayRestarts(0.1, 7, t_mul=1.5, m_mul=0.8)': [0.100000001, 0.0950484425, 0.0811744854, 0.0188255012, 0.0800000057, 0.0649395883, 0.010677929, 0.0601030961, 0.0343913659, 3.97777585e-05, 0.00997353997, 0.0311058611],
}


# ---- each rule against its float64 reference, through the optimizer ------------------------------

@pytest.mark.parametrize("common", list(COMMON))
@pytest.mark.parametrize("kind", KINDS)
def test_update_rules_follow_keras_formulas_over_several_steps(kind, common):
    shapes = [(3, 5), (7,), (70000,)]           # the last is split over the threads
    vs, grads = variables_and_gradients(shapes, 4, seed=KINDS.index(kind))
    opt = make_optimizer(kind, **COMMON[common])
    ws = [v.value.astype(np.float64) for v in vs]
    states = [{} for _ in vs]
    for t, gs in enumerate(grads, start=1):
        for v, g in zip(vs, gs):
            v.grad[...] = g
        assert opt.apply(vs) == 0
        ws = ref_step(kind, ws, gs, states, t, HP[kind]["lr"], **COMMON[common])
        for v, w in zip(vs, ws):
            assert_close(v.value, w, f"{kind} {common} {v.name} step {t}")
    assert opt.iterations == 4


@pytest.mark.parametrize("kind", ["sgd_momentum", "rmsprop_momentum_centered", "adam_amsgrad",
                                  "adamax", "nadam", "adagrad", "adadelta", "lion"])
def test_slots_follow_the_reference_state(kind):
    vs, grads = variables_and_gradients([(4, 6)], 3, seed=7)
    opt = make_optimizer(kind)
    w = vs[0].value.astype(np.float64)
    state = {}
    for t, (g,) in enumerate(grads, start=1):
        vs[0].grad[...] = g
        opt.apply(vs)
        (w,) = ref_step(kind, [w], [g], [state], t, HP[kind]["lr"])
    names = {"sgd_momentum": {"momentum": "v"},
             "rmsprop_momentum_centered": {"velocity": "v", "momentum": "mom",
                                           "average_gradient": "mg"},
             "adam_amsgrad": {"momentum": "m", "velocity": "v", "velocity_hat": "vh"},
             "adamax": {"momentum": "m", "norm": "u"}, "nadam": {"momentum": "m", "velocity": "v"},
             "adagrad": {"accumulator": "acc"},
             "adadelta": {"accumulated_grad": "ag", "accumulated_delta_var": "ad"},
             "lion": {"momentum": "m"}}[kind]
    slots = opt.get_slots(vs[0])
    assert set(slots) == set(names)
    for keras_name, ref_name in names.items():
        assert_close(slots[keras_name], state[ref_name], f"{kind} slot {keras_name}")


def test_adamw_is_adam_with_decoupled_weight_decay():
    vs, grads = variables_and_gradients([(5, 5)], 3, seed=3)
    opt = optimizers.AdamW(learning_rate=0.01, weight_decay=0.2)
    assert opt.weight_decay == 0.2 and optimizers.AdamW().weight_decay == 0.004
    w, state = vs[0].value.astype(np.float64), {}
    for t, (g,) in enumerate(grads, start=1):
        vs[0].grad[...] = g
        opt.apply(vs)
        (w,) = ref_step("adam", [w], [g], [state], t, 0.01, weight_decay=0.2)
    assert_close(vs[0].value, w, "AdamW")


def test_weight_decay_skips_excluded_variables():
    vs, grads = variables_and_gradients([(4,), (4,), (4,)], 2, seed=4)
    vs[1].name = "dense/bias"
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[vs[2]], var_names=["bias"])
    ws = [v.value.astype(np.float64) for v in vs]
    for gs in grads:
        for v, g in zip(vs, gs):
            v.grad[...] = g
        opt.apply(vs)
        ws = [w * (1 - 0.05) - 0.1 * g if i == 0 else w - 0.1 * g
              for i, (w, g) in enumerate(zip(ws, gs))]
    for v, w in zip(vs, ws):
        assert_close(v.value, w, v.name)


def test_schedule_drives_the_learning_rate_of_each_step():
    sched = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    vs, grads = variables_and_gradients([(6,)], 4, seed=5)
    opt = optimizers.SGD(learning_rate=sched, weight_decay=0.1)
    w = vs[0].value.astype(np.float64)
    for t, (g,) in enumerate(grads):
        assert opt.learning_rate == pytest.approx(0.1 * 0.5 ** t, rel=1e-6)
        vs[0].grad[...] = g
        opt.apply(vs)
        lr = 0.1 * 0.5 ** t
        w = w - w * 0.1 * lr - lr * g
    assert_close(vs[0].value, w, "scheduled SGD")


def test_callable_learning_rates_with_and_without_the_step():
    vs, _ = variables_and_gradients([(3,)], 1, seed=1)
    vs[0].grad[...] = 1.0
    w0 = vs[0].value.copy()
    opt = optimizers.SGD(learning_rate=lambda step: 0.1 * (step + 1))
    opt.apply(vs)
    opt.apply(vs)
    assert_close(vs[0].value, w0 - 0.1 - 0.2, "callable of the step")
    opt2 = optimizers.SGD(learning_rate=lambda: 0.25)
    opt2.apply(vs)
    assert_close(vs[0].value, w0 - 0.55, "callable of nothing (Keras 3)")
    assert opt2.learning_rate == 0.25


def test_gradient_accumulation_updates_every_nth_step_with_the_mean():
    vs, grads = variables_and_gradients([(5,)], 6, seed=6)
    opt = optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=3)
    w, state = vs[0].value.astype(np.float64), {}
    for i, (g,) in enumerate(grads, start=1):
        vs[0].grad[...] = g
        before = vs[0].value.copy()
        opt.apply(vs)
        if i % 3:
            np.testing.assert_array_equal(vs[0].value, before)
        else:
            mean = np.mean([gg[0] for gg in grads[i - 3:i]], axis=0, dtype=np.float64)
            (w,) = ref_step("adam", [w], [mean], [state], i // 3, 0.01)
            assert_close(vs[0].value, w, f"accumulated step {i}")
        assert opt.iterations == i // 3


def test_ema_averages_the_weights_and_finalize_copies_them():
    vs, grads = variables_and_gradients([(4,)], 5, seed=8)
    opt = optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.8)
    avg = None
    for g, in grads:
        vs[0].grad[...] = g
        opt.apply(vs)
        w = vs[0].value.astype(np.float64)
        avg = w if avg is None else 0.8 * avg + 0.2 * w
    (average,) = [v.numpy() for v in opt.variables if v.path.endswith("_average")]
    assert_close(average, avg, "moving average")
    opt.finalize_variable_values(vs)
    assert_close(vs[0].value, avg, "finalized weights")


def test_ema_overwrite_frequency_copies_the_average_into_the_weights():
    vs, grads = variables_and_gradients([(4,)], 4, seed=9)
    opt = optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5,
                         ema_overwrite_frequency=2)
    for i, (g,) in enumerate(grads, start=1):
        vs[0].grad[...] = g
        opt.apply(vs)
        (average,) = [v.numpy() for v in opt.variables if v.path.endswith("_average")]
        if i % 2 == 0:
            np.testing.assert_array_equal(vs[0].value, average)
        else:
            assert not np.array_equal(vs[0].value, average) or i == 1


# ---- against Keras 3's own numbers ----------------------------------------------------------------

def keras_case_data():
    """The variables and gradients tests/…/gen script gave Keras (values rounded to 3
    decimals, so that they are the same float32 numbers here)."""
    w0 = np.round(np.linspace(-1, 1, 6).reshape(2, 3), 3).astype(np.float32)
    b0 = np.array([0.5, -0.25, 0.1], np.float32)
    gs = [(np.round(np.cos(np.arange(6) * (t + 1.3)) * (t + 1), 3).reshape(2, 3).astype(np.float32),
           np.round(np.sin(np.arange(3) * (t + 0.7)) - 0.2, 3).astype(np.float32)) for t in range(4)]
    return w0, b0, gs


O = optimizers
KERAS_CASES = {
    "sgd": lambda: O.SGD(0.1),
    "sgd_momentum": lambda: O.SGD(0.1, momentum=0.9),
    "sgd_nesterov": lambda: O.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: O.RMSprop(0.01),
    "rmsprop_centered_momentum": lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
    "adam": lambda: O.Adam(0.01),
    "adam_amsgrad": lambda: O.Adam(0.01, amsgrad=True),
    "adam_weight_decay": lambda: O.Adam(0.01, weight_decay=0.1),
    "adamw": lambda: O.AdamW(0.01, weight_decay=0.1),
    "adamax": lambda: O.Adamax(0.01),
    "nadam": lambda: O.Nadam(0.01),
    "adagrad": lambda: O.Adagrad(0.1),
    "adadelta": lambda: O.Adadelta(1.0),
    "lion": lambda: O.Lion(0.01),
    "sgd_clipnorm": lambda: O.SGD(0.1, clipnorm=0.5),
    "sgd_global_clipnorm": lambda: O.SGD(0.1, global_clipnorm=0.5),
    "adam_clipvalue": lambda: O.Adam(0.01, clipvalue=0.2),
    "sgd_accumulation": lambda: O.SGD(0.1, momentum=0.5, gradient_accumulation_steps=2),
    "sgd_ema": lambda: O.SGD(0.1, use_ema=True, ema_momentum=0.9),
    "sgd_schedule": lambda: O.SGD(schedules.ExponentialDecay(0.1, 2, 0.5)),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_four_steps_match_keras(case):
    w0, b0, gs = keras_case_data()
    w, b = Variable(w0, "kernel"), Variable(b0, "bias")
    opt = KERAS_CASES[case]()
    for t, ((gw, gb), (kw, kb)) in enumerate(zip(gs, KERAS[case]), start=1):
        opt.apply_gradients([(gw, w), (gb, b)])
        assert_close(w.value.ravel(), kw, f"{case} kernel after step {t}", rtol=1e-5, atol=1e-6)
        assert_close(b.value, kb, f"{case} bias after step {t}", rtol=1e-5, atol=1e-6)
    if case == "sgd_ema":
        averages = [v.numpy().ravel() for v in opt.variables if v.path.endswith("_average")]
        for got, want in zip(averages, KERAS_EMA_AVERAGES):
            assert_close(got, want, "EMA average", rtol=1e-5, atol=1e-6)


# ---- schedules ------------------------------------------------------------------------------------

S = schedules
SCHEDULES = {
    "ExponentialDecay(0.1, 10, 0.5)": lambda: S.ExponentialDecay(0.1, 10, 0.5),
    "ExponentialDecay(0.1, 10, 0.5, staircase=True)":
        lambda: S.ExponentialDecay(0.1, 10, 0.5, staircase=True),
    "PiecewiseConstantDecay([5, 20], [1.0, 0.5, 0.1])":
        lambda: S.PiecewiseConstantDecay([5, 20], [1.0, 0.5, 0.1]),
    "PolynomialDecay(0.1, 20)": lambda: S.PolynomialDecay(0.1, 20),
    "PolynomialDecay(0.1, 20, 0.01, power=2.0, cycle=True)":
        lambda: S.PolynomialDecay(0.1, 20, 0.01, power=2.0, cycle=True),
    "InverseTimeDecay(0.1, 10, 0.5)": lambda: S.InverseTimeDecay(0.1, 10, 0.5),
    "InverseTimeDecay(0.1, 10, 0.5, staircase=True)":
        lambda: S.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
    "CosineDecay(0.1, 20)": lambda: S.CosineDecay(0.1, 20),
    "CosineDecay(0.1, 20, alpha=0.1)": lambda: S.CosineDecay(0.1, 20, alpha=0.1),
    "CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=10)":
        lambda: S.CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=10),
    "CosineDecayRestarts(0.1, 10)": lambda: S.CosineDecayRestarts(0.1, 10),
    "CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5, alpha=0.1)":
        lambda: S.CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5, alpha=0.1),
    "CosineDecayRestarts(0.1, 7, t_mul=1.5, m_mul=0.8)":
        lambda: S.CosineDecayRestarts(0.1, 7, t_mul=1.5, m_mul=0.8),
}


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_schedules_match_keras(case):
    sched = SCHEDULES[case]()
    got = [sched(step) for step in SCHEDULE_STEPS]
    # Keras computes in float32: a few ulps of float32 apart (and 0 where it reaches 0)
    np.testing.assert_allclose(got, KERAS_SCHEDULES[case], rtol=2e-6, atol=1e-9, err_msg=case)
    assert sched(np.int64(5)) == sched(5) == sched(5.0)


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_schedule_config_round_trips(case):
    sched = SCHEDULES[case]()
    again = type(sched).from_config(sched.get_config())
    assert again.get_config() == sched.get_config()
    assert [again(s) for s in SCHEDULE_STEPS] == [sched(s) for s in SCHEDULE_STEPS]
    restored = schedules.deserialize(schedules.serialize(sched))
    assert type(restored) is type(sched) and restored.get_config() == sched.get_config()


def test_schedule_serialization_is_keras_3s():
    assert schedules.serialize(schedules.ExponentialDecay(0.1, 10, 0.5)) == {
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
                   "staircase": False, "name": "ExponentialDecay"},
        "registered_name": None}


def test_a_user_schedule_subclass_drives_an_optimizer_and_deserializes():
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, lr):
            self.lr = lr

        def __call__(self, step):
            return self.lr / 2 ** step

        def get_config(self):
            return {"lr": self.lr}

    opt = optimizers.SGD(learning_rate=Halving(0.4))
    vs, _ = variables_and_gradients([(2,)], 1, seed=2)
    vs[0].grad[...] = 1.0
    w0 = vs[0].value.copy()
    opt.apply(vs)
    opt.apply(vs)
    assert_close(vs[0].value, w0 - 0.4 - 0.2, "user schedule")
    config = optimizers.serialize(opt)
    again = optimizers.deserialize(config, custom_objects={"Halving": Halving})
    assert isinstance(again._learning_rate, Halving) and again.learning_rate == float(np.float32(0.4))


def test_schedule_base_class_requires_call_and_config():
    with pytest.raises(NotImplementedError, match="__call__"):
        schedules.LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        schedules.LearningRateSchedule().get_config()


@pytest.mark.parametrize("make, error, match", [
    (lambda: S.ExponentialDecay(0.1, 0, 0.5), ValueError, "Argument `decay_steps` must be > 0. Received: decay_steps=0"),
    (lambda: S.InverseTimeDecay(0.1, -2, 0.5), ValueError, "decay_steps"),
    (lambda: S.PolynomialDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: S.CosineDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: S.CosineDecayRestarts(0.1, 0), ValueError, "first_decay_steps"),
    (lambda: S.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), ValueError,
     "The length of boundaries should be 1 less than the length of values"),
    (lambda: S.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3]), ValueError, "increasing"),
    (lambda: S.ExponentialDecay("0.1", 10, 0.5), TypeError, "initial_learning_rate"),
    (lambda: S.CosineDecay(0.1, 10, warmup_steps=-1), ValueError, "warmup_steps"),
])
def test_schedule_arguments_are_checked(make, error, match):
    with pytest.raises(error, match=match.replace("(", r"\(").replace("`", "`")):
        make()


def test_schedules_accept_numpy_scalars():
    s = S.ExponentialDecay(np.float32(0.1), np.int64(10), np.float64(0.5))
    assert s(np.int32(10)) == pytest.approx(0.05, rel=1e-6)
    assert S.PiecewiseConstantDecay(np.array([5, 20]), np.array([1.0, 0.5, 0.1]))(6) == 0.5


# ---- non-finite updates ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_an_update_that_would_overflow_leaves_weights_and_state_unchanged(kind):
    w = Variable(np.array([1.0, 3e38, -2.0, 1e38], np.float32), "v")
    opt = make_optimizer(kind)
    w.grad[...] = [0.5, -1.0, 0.25, -1.0]
    opt.apply([w])                       # builds the state; finite
    before = w.value.copy()
    slots_before = {k: s.copy() for k, s in opt.get_slots(w).items()}
    w.grad[...] = [np.nan, 1.0, np.inf, 2.0]
    opt.learning_rate = 1e38
    bad = opt.apply([w])
    assert bad >= 2                      # the NaN and the inf gradient at least
    assert np.all(np.isfinite(w.value))
    for i in range(4):
        if not math.isfinite(float(w.grad[i])):
            assert w.value[i] == before[i]
            for k, s in opt.get_slots(w).items():
                assert s[i] == slots_before[k][i], (kind, k, i)


def test_a_nan_gradient_norm_leaves_the_whole_variable_unchanged():
    a, b = Variable(np.ones(3, np.float32), "a"), Variable(np.ones(2, np.float32), "b")
    a.grad[...] = [1.0, np.nan, 1.0]
    b.grad[...] = [1.0, 1.0]
    opt = optimizers.SGD(0.1, clipnorm=1.0)
    assert opt.apply([a, b]) == 3
    np.testing.assert_array_equal(a.value, np.ones(3, np.float32))
    assert_close(b.value, 1 - 0.1 / math.sqrt(2), "the other variable is clipped and updated")
    opt = optimizers.SGD(0.1, global_clipnorm=1.0)
    assert opt.apply([a, b]) == 5
    np.testing.assert_array_equal(b.value, np.float32(1 - 0.1 / math.sqrt(2)))


# ---- the C kernels: threads, reductions, argument checks --------------------------------------------

def test_sum_squares_is_exact_enough_and_the_same_for_any_thread_count(keep_num_threads):
    r = np.random.default_rng(0)
    x = (r.standard_normal(1_000_003) * 3).astype(np.float32)
    want = float(np.sum(x.astype(np.float64) ** 2))
    results = set()
    for n in (1, 2, 3):
        pycnn.set_num_threads(n)
        results.add(_C.sum_squares(x))
    assert len(results) == 1
    assert results.pop() == pytest.approx(want, rel=1e-13)
    assert _C.sum_squares(np.array([3.0, 4.0], np.float32)) == 25.0


@pytest.mark.parametrize("kind", ["adam_amsgrad", "rmsprop_momentum_centered", "lion", "nadam"])
def test_large_updates_are_the_same_for_any_thread_count(kind, keep_num_threads):
    results = []
    for n in (1, 2):
        pycnn.set_num_threads(n)
        vs, grads = variables_and_gradients([(300_001,)], 2, seed=11)
        opt = make_optimizer(kind, clipnorm=50.0)
        for (g,) in grads:
            vs[0].grad[...] = g
            opt.apply(vs)
        results.append(vs[0].value.copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_kernel_preprocessing_keywords():
    w = np.array([1.0, 2.0, -3.0], np.float32)
    g = np.array([4.0, -0.5, 1.0], np.float32)
    out = w.copy()
    assert _C.sgd_update(out, g, None, 0.1, 0.0, gscale=0.5, clip=1.0, decay=0.2) == 0
    want = w - w * 0.2 - 0.1 * np.clip(g * 0.5, -1, 1)
    assert_close(out, want, "gscale, clip and decay in one pass")


def test_kernel_ema_and_accumulation():
    avg, w = np.array([1.0, 2.0], np.float32), np.array([3.0, -1.0], np.float32)
    _C.ema_update(avg, w, 0.75)
    assert_close(avg, [1.5, 1.25], "ema")
    acc, g = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    _C.grad_accumulate(acc, g)
    assert_close(acc, [4.0, 6.0], "accumulate")
    _C.grad_accumulate(acc, g, 2.0)
    assert_close(acc, [3.5, 5.0], "mean")


def _f(*shape):
    return np.zeros(shape or (3,), np.float32)


@pytest.mark.parametrize("call, error, match", [
    (lambda: _C.adamax_update(_f(), _f(), _f(), _f(), 0.1, 0.9, 0.99, 1e-7, 0), ValueError, "step"),
    (lambda: _C.nadam_update(_f(), _f(), _f(), _f(), 0.1, 0.9, 0.99, 1e-7, 1, 1.0), ValueError, "u_product"),
    (lambda: _C.adagrad_update(_f(), _f(), _f(4), 0.1, 1e-7), ValueError, "acc"),
    (lambda: _C.adadelta_update(_f(), _f(), _f(), None, 1.0, 0.95, 1e-7), TypeError, "acc_delta"),
    (lambda: _C.lion_update(_f(), _f().astype(np.float64), _f(), 0.1, 0.9, 0.99), TypeError, "'g'"),
    (lambda: _C.adam_update(_f(), _f(), _f(), _f(), 0.1, 0.9, 0.99, 1e-7, 1, _f(2)), ValueError, "vhat"),
    (lambda: _C.sgd_update(_f(), _f(), None, 0.1, 0.0, clip=-1.0), ValueError, "clip"),
    (lambda: _C.sgd_update(_f(), _f(), None, 0.1, 0.0, gscale=float("nan")), ValueError, "gscale"),
    (lambda: _C.ema_update(_f(), _f(), 1.5), ValueError, "momentum"),
    (lambda: _C.grad_accumulate(_f(), _f(), 0.0), ValueError, "divisor"),
    (lambda: _C.sum_squares(_f().astype(np.float64)), TypeError, "'x'"),
])
def test_kernel_arguments_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_kernel_outputs_must_not_share_memory():
    a = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _C.lion_update(a[:3], _f(), a[2:5], 0.1, 0.9, 0.99)
    with pytest.raises(ValueError, match="share memory"):
        _C.ema_update(a, a, 0.5)


# ---- state belongs to the variable object ----------------------------------------------------------

def _model(seed):
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), pycnn.layers.Dense(3)])
    r = np.random.default_rng(seed)
    model.set_weights([r.standard_normal((4, 3)), r.standard_normal(3)])
    return model


def _train_a_variable_that_then_dies(opt) -> int:
    old = Variable(np.zeros(5, np.float32), "old")
    old.grad[...] = 100.0
    opt.apply([old])
    return id(old)


def test_a_new_variable_with_a_dead_ones_id_starts_with_fresh_state():
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    old_id = _train_a_variable_that_then_dies(opt)
    gc.collect()
    reused = None
    keep = []
    for _ in range(50_000):              # CPython hands the freed memory to a later object
        v = Variable(np.zeros(5, np.float32), "new")
        if id(v) == old_id:
            reused = v
            break
        keep.append(v)
    if reused is None:
        pytest.skip("the interpreter did not reuse the dead variable's id")
    reused.grad[...] = 1.0
    opt.apply([reused])
    np.testing.assert_array_equal(reused.value, np.full(5, -0.1, np.float32))
    np.testing.assert_array_equal(opt.get_slots(reused)["momentum"], np.full(5, -0.1, np.float32))


def test_an_optimizer_reused_after_del_model_starts_fresh_for_the_new_model():
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    opt = optimizers.Adam(learning_rate=0.05)
    model = _model(0)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    del model
    gc.collect()
    assert opt.variables[2:] == []       # the dead model's slots are gone
    fresh = optimizers.Adam(learning_rate=0.05)
    fresh.iterations = opt.iterations    # the same step count (bias corrections), fresh moments
    a, b = _model(5), _model(5)
    a.compile(optimizer=opt, loss="mse")
    b.compile(optimizer=fresh, loss="mse")
    a.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    b.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


# ---- variables in Keras' order, saving and loading --------------------------------------------------

@pytest.mark.parametrize("make, paths", [
    (lambda: O.SGD(), ["iteration", "learning_rate"]),
    (lambda: O.SGD(momentum=0.9), ["iteration", "learning_rate", "kernel_momentum", "bias_momentum"]),
    (lambda: O.RMSprop(momentum=0.5, centered=True),
     ["iteration", "learning_rate", "kernel_velocity", "bias_velocity", "kernel_momentum",
      "bias_momentum", "kernel_average_gradient", "bias_average_gradient"]),
    (lambda: O.Adam(amsgrad=True),
     ["iteration", "learning_rate", "kernel_momentum", "kernel_velocity", "bias_momentum",
      "bias_velocity", "kernel_velocity_hat", "bias_velocity_hat"]),
    (lambda: O.Adadelta(), ["iteration", "learning_rate", "kernel_accumulated_grad",
                            "kernel_accumulated_delta_var", "bias_accumulated_grad",
                            "bias_accumulated_delta_var"]),
    (lambda: O.Nadam(), ["iteration", "learning_rate", "kernel_momentum", "kernel_velocity",
                         "bias_momentum", "bias_velocity", "u_product"]),
    (lambda: O.Adam(gradient_accumulation_steps=2, use_ema=True),
     ["iteration", "learning_rate", "kernel_average", "bias_average",
      "kernel_gradient_accumulator", "bias_gradient_accumulator", "kernel_momentum",
      "kernel_velocity", "bias_momentum", "bias_velocity"]),
    (lambda: O.SGD(learning_rate=S.ExponentialDecay(0.1, 10, 0.5)), ["iteration"]),
])
def test_variables_are_in_keras_order(make, paths):
    """The orders Keras 3.15 lists for `optimizer.variables` after build([kernel, bias])."""
    opt = make()
    kernel, bias = Variable(np.ones((2, 3), np.float32), "kernel"), \
        Variable(np.ones(3, np.float32), "bias")
    opt.build([kernel, bias])
    assert [v.path.split("/", 1)[1] for v in opt.variables] == paths
    assert opt.variables[0].path == f"{opt.name}/iteration"


@pytest.mark.parametrize("kind", KINDS)
def test_saved_state_loads_into_a_new_optimizer_and_training_continues_identically(kind):
    vs, grads = variables_and_gradients([(3, 4), (4,)], 5, seed=12)
    opt = make_optimizer(kind)
    for gs in grads[:3]:
        for v, g in zip(vs, gs):
            v.grad[...] = g
        opt.apply(vs)
    store = {}
    opt.save_own_variables(store)
    assert list(store) == [str(i) for i in range(len(opt.variables))]
    assert store["0"] == 3
    copies = [Variable(v.value, v.name) for v in vs]
    new = make_optimizer(kind)
    new.build(copies)
    new.load_own_variables(store)
    assert new.iterations == 3
    for gs in grads[3:]:
        for v, c, g in zip(vs, copies, gs):
            v.grad[...] = g
            c.grad[...] = g
        opt.apply(vs)
        new.apply(copies)
    for v, c in zip(vs, copies):
        np.testing.assert_array_equal(v.value, c.value)


def test_loading_a_store_of_another_length_warns_and_skips():
    opt = optimizers.Adam()
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        opt.load_own_variables({"0": np.array(3), "1": np.array(0.1), "2": np.zeros(3)})
    assert opt.iterations == 0


def test_set_weights_checks_shapes():
    opt = optimizers.SGD(momentum=0.5)
    v = Variable(np.ones(3, np.float32), "v")
    opt.build([v])
    with pytest.raises(ValueError, match="shape"):
        opt.set_weights([np.array(2), np.array(0.1, np.float32), np.zeros(4)])
    opt.set_weights([np.array(2), np.array(0.5, np.float32), np.ones(3)])
    assert opt.iterations == 2 and opt.learning_rate == 0.5


# ---- apply's forms ---------------------------------------------------------------------------------

def test_apply_gradients_and_keras_apply_forms_agree_with_the_training_step():
    vs, grads = variables_and_gradients([(3, 2), (2,)], 2, seed=13)
    copies_a = [Variable(v.value, v.name) for v in vs]
    copies_b = [Variable(v.value, v.name) for v in vs]
    o1, o2, o3 = optimizers.Adam(0.01), optimizers.Adam(0.01), optimizers.Adam(0.01)
    for gs in grads:
        for v, g in zip(vs, gs):
            v.grad[...] = g
        o1.apply(vs)
        assert o2.apply_gradients(zip(gs, copies_a)) == o2.iterations
        o3.apply([g.astype(np.float64) for g in gs], copies_b)   # any float dtype is accepted
    o3.apply(grads[0])                                          # after build: the built variables
    o1.apply([Variable(np.zeros(1), "never-trained")])          # no error: a new variable
    for v, a, b in zip(vs, copies_a, copies_b):
        np.testing.assert_array_equal(v.value, a.value)
        assert not np.array_equal(v.value, b.value)


def test_apply_skips_non_trainable_variables_and_missing_gradients():
    a, b = Variable(np.ones(2, np.float32), "a"), Variable(np.ones(2, np.float32), "b", False)
    a.grad[...] = 1.0
    b.grad[...] = 1.0
    opt = optimizers.SGD(0.5)
    opt.apply([a, b])
    assert_close(a.value, [0.5, 0.5], "trainable")
    np.testing.assert_array_equal(b.value, [1.0, 1.0])
    opt.apply_gradients([(None, b), (np.ones(2), a)])
    assert_close(a.value, [0.0, 0.0], "the variable with a gradient")
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        opt.apply_gradients([(None, a)])


def test_apply_with_nothing_to_train_is_a_no_op():
    opt = optimizers.Adam()
    assert opt.apply([]) == 0 and opt.apply([], []) == 0
    assert opt.iterations == 0


def test_apply_checks_gradient_shapes_and_counts():
    a = Variable(np.ones((2, 3), np.float32), "dense/kernel")
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match=r"dense/kernel.*\(3, 2\)"):
        opt.apply_gradients([(np.ones((3, 2)), a)])
    with pytest.raises(ValueError, match="gradients"):
        opt.apply([np.ones((2, 3)), np.ones(3)], [a])
    with pytest.raises(ValueError, match="build"):
        optimizers.SGD().apply([np.ones((2, 3))])


# ---- learning rate and iterations ------------------------------------------------------------------

def test_learning_rate_reads_the_current_value_and_is_settable():
    opt = optimizers.Adam(learning_rate=0.01)
    assert opt.learning_rate == float(np.float32(0.01))       # float32, as Keras keeps it
    opt.learning_rate = np.float64(0.5)
    assert opt.learning_rate == 0.5 and opt.lr == 0.5
    opt.learning_rate = schedules.InverseTimeDecay(1.0, 1, 1.0)
    opt.iterations = 3
    assert opt.learning_rate == 0.25
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1


def test_lr_is_accepted_with_tf_keras_2s_deprecation_warning():
    with pytest.warns(UserWarning, match="The `lr` argument is deprecated, use `learning_rate` instead."):
        opt = optimizers.RMSprop(lr=0.02)
    assert opt.learning_rate == float(np.float32(0.02))


def test_legacy_decay_raises_a_clear_error_but_zero_is_accepted():
    with pytest.raises(ValueError, match="InverseTimeDecay"):
        optimizers.SGD(learning_rate=0.1, decay=1e-4)
    assert optimizers.SGD(decay=0.0).learning_rate == float(np.float32(0.01))


# ---- configuration, get, serialize ----------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("RMSprop", "RMSprop"), ("adam", "Adam"),
                                       ("AdamW", "AdamW"), ("adamax", "Adamax"),
                                       ("NADAM", "Nadam"), ("adagrad", "Adagrad"),
                                       ("adadelta", "Adadelta"), ("lion", "Lion")])
def test_get_by_name_class_instance_and_config(name, cls):
    opt = optimizers.get(name)
    assert type(opt).__name__ == cls
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(type(opt))) is type(opt)
    again = optimizers.get(optimizers.serialize(opt))
    assert type(again) is type(opt)
    config = again.get_config()
    config.pop("name")
    want = opt.get_config()
    want.pop("name")
    assert config == want


def test_get_rejects_unknown_identifiers():
    for bad in (None, "adamx", 3, {"class_name": "Nope", "config": {}}, optimizers.Optimizer):
        with pytest.raises(ValueError, match="optimizer identifier"):
            optimizers.get(bad)


def test_serialize_matches_keras_3():
    assert optimizers.serialize(optimizers.Adam(name="adam")) == {
        "module": "keras.optimizers", "class_name": "Adam",
        "config": {"name": "adam", "learning_rate": 0.0010000000474974513, "weight_decay": None,
                   "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                   "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None,
                   "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False},
        "registered_name": None}
    sgd = optimizers.serialize(optimizers.SGD(schedules.ExponentialDecay(0.1, 10, 0.5)))
    assert sgd["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    restored = optimizers.deserialize(sgd)
    assert isinstance(restored._learning_rate, schedules.ExponentialDecay)


def test_tf_keras_2_configs_deserialize():
    config = {"class_name": "RMSprop", "config": {
        "name": "RMSprop", "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
        "ema_overwrite_frequency": None, "jit_compile": False, "is_legacy_optimizer": False,
        "learning_rate": 0.0010000000474974513, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-07,
        "centered": False}}
    opt = optimizers.deserialize(config)
    assert isinstance(opt, optimizers.RMSprop) and opt.name == "RMSprop" and opt.rho == 0.9


def test_automatic_names_follow_keras_3():
    assert [optimizers.Adam().name, optimizers.Adam().name, optimizers.RMSprop().name,
            optimizers.AdamW().name] == ["adam", "adam_1", "rm_sprop", "adam_w"]


# ---- argument checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: O.SGD(momentum=1.5), r"`momentum` must be a float between \[0, 1\]. Received: momentum=1.5"),
    (lambda: O.SGD(learning_rate=-1), "learning_rate"),
    (lambda: O.SGD(learning_rate="fast"), "Argument `learning_rate` should be float"),
    (lambda: O.SGD(learning_rate=True), "learning_rate"),
    (lambda: O.RMSprop(rho=1.0), "rho"),
    (lambda: O.RMSprop(momentum=-0.1), "momentum"),
    (lambda: O.Adam(beta_1=1.0), "beta_1"),
    (lambda: O.Adam(beta_2=-0.5), "beta_2"),
    (lambda: O.Adam(epsilon=float("nan")), "epsilon"),
    (lambda: O.AdamW(weight_decay=None), "Argument `weight_decay` must be a float. Received: weight_decay=None"),
    (lambda: O.Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda: O.Adadelta(rho=2), "rho"),
    (lambda: O.Lion(beta_1=0.0), "Argument `beta_1` must be in the \\[0, 1\\] range. Otherwise, the optimizer degenerates to SignSGD"),
    (lambda: O.SGD(clipnorm=1.0, clipvalue=1.0), "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set"),
    (lambda: O.SGD(clipnorm=-1.0), "clipnorm"),
    (lambda: O.SGD(weight_decay=-0.1), "weight_decay"),
    (lambda: O.SGD(use_ema=True, ema_momentum=1.5), r"`ema_momentum` must be in the range \[0, 1\]"),
    (lambda: O.SGD(use_ema=True, ema_overwrite_frequency=0), "`ema_overwrite_frequency` must be an integer >= 1 or None"),
    (lambda: O.SGD(gradient_accumulation_steps=1), "`gradient_accumulation_steps` must be an integer >= 2. Received: gradient_accumulation_steps=1"),
    (lambda: O.SGD(gradient_accumulation_steps=2.5), "gradient_accumulation_steps"),
    (lambda: O.SGD(loss_scale_factor=128.0), "loss_scale_factor"),
    (lambda: O.Adam(betta_1=0.9), r"Argument\(s\) not recognized: \{'betta_1': 0.9\}"),
])
def test_arguments_are_checked_with_keras_messages(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_learning_rate_at_a_step_must_be_finite():
    opt = optimizers.SGD(learning_rate=lambda step: float("nan"))
    v = Variable(np.ones(2, np.float32), "v")
    with pytest.raises(ValueError, match="learning rate at step 0"):
        opt.apply([v])


def test_numpy_scalars_are_accepted_everywhere():
    opt = optimizers.Adam(learning_rate=np.float32(0.01), beta_1=np.float64(0.9),
                          beta_2=np.float32(0.99), epsilon=np.float64(1e-7),
                          weight_decay=np.float32(0.01), clipnorm=np.float64(1.0),
                          gradient_accumulation_steps=np.int64(2))
    assert opt.beta_1 == 0.9 and opt.gradient_accumulation_steps == 2
    optimizers.SGD(momentum=np.float32(0.5), use_ema=True, ema_momentum=np.float64(0.9),
                   ema_overwrite_frequency=np.int32(3))
    optimizers.SGD(momentum=1)        # an int too (Keras 3 insists on a float)
    opt.iterations = np.int64(4)
    assert opt.iterations == 4
    v = Variable(np.ones(2, np.float32), "v")
    v.grad[...] = 1.0
    opt.apply([v])
    opt.apply([v])
    assert opt.iterations == 5


@pytest.mark.parametrize("cls", ["SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam", "Adagrad",
                                 "Adadelta", "Lion"])
def test_every_optimizer_passes_the_base_arguments_on(cls):
    """Each rule's __init__ hands every common argument (and tf.keras 2's ``lr``) to the base
    class, by name, whatever its own arguments are."""
    kind = getattr(optimizers, cls)
    opt = kind(learning_rate=0.125, weight_decay=0.25, clipnorm=1.5, use_ema=True,
               ema_momentum=0.5, ema_overwrite_frequency=3, gradient_accumulation_steps=2,
               name="mine")
    cfg = opt.get_config()
    assert (cfg["learning_rate"], cfg["weight_decay"], cfg["clipnorm"], cfg["use_ema"],
            cfg["ema_momentum"], cfg["ema_overwrite_frequency"],
            cfg["gradient_accumulation_steps"], cfg["name"]) == \
        (0.125, 0.25, 1.5, True, 0.5, 3, 2, "mine")
    assert kind(global_clipnorm=2.0).global_clipnorm == 2.0
    assert kind(clipvalue=0.5).clipvalue == 0.5
    with pytest.warns(UserWarning, match="lr"):
        assert kind(lr=0.5).learning_rate == 0.5
    with pytest.raises(ValueError, match="not recognized"):
        kind(learning_rat=0.1)
    with pytest.raises(ValueError, match="epsilon|beta|rho|momentum"):
        kind(**{next(a for a in ("epsilon", "beta_2", "rho", "momentum")
                     if a in kind.__init__.__code__.co_varnames): -1.0})
