"""The optimizer base class: Keras 3's arguments and behaviour common to every update rule
(keras/src/optimizers/base_optimizer.py).

One training step, ``optimizer.apply(variables)``, runs in this order, as Keras does:
gradient accumulation (``gradient_accumulation_steps``: only every n-th call updates, with the
mean of the last n gradients), clipping (``clipnorm`` per variable, ``global_clipnorm`` over all,
``clipvalue`` elementwise), decoupled weight decay (``w -= w * lr * weight_decay``), the rule's
update, the moving average of the weights (``use_ema``), then ``iterations += 1``. Clipping,
weight decay and the update are one C call per variable (``pycnn._C.<rule>_update``), after one
C reduction per variable for the clipping norms.

The state of the rule (Keras' "slots": momentums, velocities, ...) belongs to each variable
object: it is created at the variable's first update, kept while the variable lives, and
dropped when it dies, so a new variable never inherits a dead one's moments even if Python
gives it the dead one's ``id``.
"""
from __future__ import annotations

import inspect
import math
import numbers
import warnings
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from .. import _C, backend
from ..layers.base import Variable as _LayerVariable
from . import schedules as schedules_mod

LearningRate = Union[float, "schedules_mod.LearningRateSchedule", Callable]

_FINFO = np.finfo(np.float32)
_F32 = np.dtype(np.float32)


# ---- argument checks ---------------------------------------------------------------------------

def _is_real(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Real, np.number)) \
        and not isinstance(value, np.complexfloating)


def check_float(value, arg: str, lo: float = -math.inf, hi: float = math.inf,
                lo_open: bool = False, hi_open: bool = False, message: Optional[str] = None
                ) -> float:
    """``value`` as a float: a real Python or NumPy number in the interval; the error names the
    argument (``message``: Keras' own wording, followed by the value received)."""
    ok = _is_real(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        if message is None:
            interval = ("(" if lo_open else "[") + f"{lo:g}, {hi:g}" + (")" if hi_open else "]")
            message = f"Argument `{arg}` must be a number in {interval}"
        raise ValueError(f"{message}. Received: {arg}={value!r}")
    return float(value)


def check_epsilon(value) -> float:
    """``epsilon``: a number >= 0 (every rule's check)."""
    return check_float(value, "epsilon", 0.0, message="`epsilon` must be >= 0")


#: The arguments of the base class (Keras 3's base optimizer), which every rule's ``__init__``
#: takes by name after its own and passes on with ``base_arguments(locals())``.
BASE_ARGUMENTS = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
                  "use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                  "gradient_accumulation_steps", "name")


def base_arguments(args: dict, extra: Sequence[str] = ()) -> dict:
    """The keyword arguments for ``super().__init__`` out of a subclass ``__init__``'s
    ``locals()``: the base class's (``BASE_ARGUMENTS``), those named in ``extra``, and its
    ``**kwargs`` (tf.keras 2's legacy names; anything else is refused by the base class)."""
    out = {k: args[k] for k in BASE_ARGUMENTS + tuple(extra)}
    out.update(args.get("kwargs") or {})
    return out


def _optional_positive(value, arg: str) -> Optional[float]:
    """Clipping thresholds: None, or a number >= 0 (0 means no clipping, as in Keras)."""
    if value is None:
        return None
    return check_float(value, arg, 0.0, message=f"Argument `{arg}` must be a number >= 0 or "
                                                "None")


def _check_learning_rate(value):
    if isinstance(value, schedules_mod.LearningRateSchedule) or callable(value):
        return value
    if not _is_real(value) or not math.isfinite(float(value)) or float(value) < 0 or \
            float(value) > _FINFO.max:
        raise ValueError(
            "Argument `learning_rate` should be float, or an instance of LearningRateSchedule, "
            "or a callable (that takes in the current iteration value and returns the "
            "corresponding learning rate value); a float must be finite, >= 0 and fit in "
            f"float32. Received instead: learning_rate={value!r}")
    return float(value)


# ---- optimizer variables -------------------------------------------------------------------------

class OptimizerVariable:
    """One entry of ``optimizer.variables``: the iteration count, the learning rate or a slot
    of a variable, under Keras' path (``adam/dense_kernel_momentum``). ``numpy()`` reads it,
    ``assign(value)`` writes it; a slot's ``value`` is the live array the kernels update."""

    def __init__(self, path: str, getter: Callable[[], np.ndarray],
                 setter: Callable[[np.ndarray], None]):
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self._get, self._set = getter, setter

    @classmethod
    def of_array(cls, path: str, array: np.ndarray) -> "OptimizerVariable":
        def setter(value):
            value = np.asarray(value)
            if value.shape != array.shape:
                raise ValueError(f"Optimizer variable {path} has shape {array.shape} not "
                                 f"compatible with provided weight shape {value.shape}.")
            array[...] = value
        v = cls(path, lambda: array, setter)
        v.value = array
        return v

    @property
    def shape(self) -> tuple:
        return np.shape(self._get())

    @property
    def dtype(self) -> str:
        return str(np.asarray(self._get()).dtype)

    def numpy(self) -> np.ndarray:
        return np.array(self._get())

    def assign(self, value) -> None:
        self._set(value)

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._get())
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"<OptimizerVariable path={self.path} shape={self.shape} dtype={self.dtype}>"


class _VarState:
    """What an optimizer keeps for one variable: a weak reference to it (the check that an id
    still means the same object), its slots, and its average / accumulated gradient."""
    __slots__ = ("ref", "label", "slots", "average", "accumulator", "__weakref__")

    def __init__(self, ref, label: str):
        self.ref = ref
        self.label = label
        self.slots: dict[str, np.ndarray] = {}
        self.average: Optional[np.ndarray] = None
        self.accumulator: Optional[np.ndarray] = None


def _is_variable(obj) -> bool:
    return hasattr(obj, "value") and hasattr(obj, "trainable") and not isinstance(obj, np.ndarray)


def _weak(obj, callback):
    try:
        return weakref.ref(obj, callback)
    except TypeError:            # not weak-referenceable: hold it (its id is then never reused)
        return lambda: obj


# ---- the base class ------------------------------------------------------------------------------

class Optimizer:
    """Base class of pycnn's optimizers, with Keras 3's common arguments:

    learning_rate: a float, a ``LearningRateSchedule`` or a callable (of the step count, or of
        nothing) giving the learning rate.
    weight_decay: if set, ``w -= w * learning_rate * weight_decay`` before each update.
    clipnorm: if set, each variable's gradient is scaled so its L2 norm is at most this.
    clipvalue: if set, each gradient element is clipped to ``[-clipvalue, clipvalue]``.
    global_clipnorm: if set, all gradients are scaled so that their global norm is at most this.
    use_ema: keep an exponential moving average of the weights (``ema_momentum``, 0.99), copied
        into the weights every ``ema_overwrite_frequency`` steps if set, and by
        ``finalize_variable_values(var_list)``.
    gradient_accumulation_steps: if set (>= 2), update every n-th step with the mean of the last
        n gradients.
    name: the optimizer's name (automatic: ``adam``, ``adam_1``, ...).

    Subclasses give ``_slot_groups()`` (the slot names, in Keras' order) and ``_update(w, g,
    slots, lr, pre)`` (one C call), and their own ``get_config``.
    """

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema: bool = False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        kwargs.pop("is_legacy_optimizer", None)     # tf.keras 2 configs carry these
        kwargs.pop("jit_compile", None)
        if "lr" in kwargs:
            warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                          UserWarning, stacklevel=3)
            learning_rate = kwargs.pop("lr")
        decay = kwargs.pop("decay", None)
        if decay is not None and decay != 0:
            raise ValueError(
                f"Argument `decay` is no longer supported (tf.keras 2's legacy optimizers "
                f"only). For the same learning rate, lr / (1 + decay * iterations), pass "
                f"learning_rate=keras.optimizers.schedules.InverseTimeDecay({learning_rate!r}, "
                f"decay_steps=1, decay_rate={decay!r}). Received: decay={decay!r}")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self.name = name if name is not None else \
            backend.unique_name(backend.snake_case(type(self).__name__))
        self._learning_rate = _check_learning_rate(learning_rate)
        self.weight_decay = None if weight_decay is None else \
            check_float(weight_decay, "weight_decay", 0.0,
                        message="Argument `weight_decay` must be a number >= 0 or None")
        self.clipnorm = _optional_positive(clipnorm, "clipnorm")
        self.clipvalue = _optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = _optional_positive(global_clipnorm, "global_clipnorm")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        self.use_ema = bool(use_ema)
        if self.use_ema:
            check_float(ema_momentum, "ema_momentum", 0.0, 1.0,
                        message="`ema_momentum` must be in the range [0, 1]")
        if ema_overwrite_frequency is not None and self.use_ema and (
                not isinstance(ema_overwrite_frequency, (numbers.Integral, np.integer)) or
                isinstance(ema_overwrite_frequency, bool) or ema_overwrite_frequency < 1):
            raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                             f"Received: ema_overwrite_frequency={ema_overwrite_frequency}")
        self.ema_momentum = float(ema_momentum) if _is_real(ema_momentum) else ema_momentum
        self.ema_overwrite_frequency = None if ema_overwrite_frequency is None else \
            int(ema_overwrite_frequency) if isinstance(ema_overwrite_frequency,
                                                       (numbers.Integral, np.integer)) \
            else ema_overwrite_frequency
        if loss_scale_factor is not None:
            raise ValueError("pycnn trains in float32 and does not scale losses: "
                             "`loss_scale_factor` must be None. Received: "
                             f"loss_scale_factor={loss_scale_factor!r}")
        self.loss_scale_factor = None
        if gradient_accumulation_steps is not None and (
                not isinstance(gradient_accumulation_steps, (numbers.Integral, np.integer)) or
                isinstance(gradient_accumulation_steps, bool) or
                gradient_accumulation_steps < 2):
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                             f"gradient_accumulation_steps={gradient_accumulation_steps}")
        self.gradient_accumulation_steps = None if gradient_accumulation_steps is None else \
            int(gradient_accumulation_steps)
        self._iterations = 0
        self._states: dict[int, _VarState] = {}
        self._wd_excluded_ids: dict[int, Any] = {}
        self._wd_excluded_names: tuple[str, ...] = ()
        self.built = False
        self.last_nonfinite = 0

    # ---- iterations and learning rate --------------------------------------------------------

    @property
    def iterations(self) -> int:
        """The number of updates made (calls divided by ``gradient_accumulation_steps``)."""
        if self.gradient_accumulation_steps:
            return self._iterations // self.gradient_accumulation_steps
        return self._iterations

    @iterations.setter
    def iterations(self, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) \
                or value < 0:
            raise ValueError(f"`iterations` must be an integer >= 0. Received: {value!r}")
        self._iterations = int(value) * (self.gradient_accumulation_steps or 1)

    def _learning_rate_at(self, step: int) -> float:
        lr = self._learning_rate
        if isinstance(lr, schedules_mod.LearningRateSchedule):
            return float(lr(step))
        if callable(lr):
            return float(lr(step) if _takes_an_argument(lr) else lr())
        return lr

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next update, in float32 as Keras keeps it (a schedule is
        evaluated at the current step). Set it to a float, a schedule or a callable."""
        return float(np.float32(self._learning_rate_at(self._iterations)))

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if not isinstance(value, schedules_mod.LearningRateSchedule) and not callable(value) \
                and isinstance(self._learning_rate, schedules_mod.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument.")
        self._learning_rate = _check_learning_rate(value)

    lr = learning_rate   # tf.keras 2's alias

    # ---- state ----------------------------------------------------------------------------------

    def _slot_groups(self) -> list[tuple[str, ...]]:
        """The slot names, grouped as Keras creates them: for each group, for each variable,
        for each name in the group (Adam: [("momentum", "velocity")])."""
        return []

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def _state(self, var) -> _VarState:
        """The state of ``var``, created at its first use (an id once held by a dead variable
        starts afresh: the weak reference no longer points at ``var``)."""
        key = id(var)
        st = self._states.get(key)
        if st is not None and st.ref() is var:
            return st
        states = self._states

        def forget(ref, key=key):
            held = states.get(key)
            if held is not None and held.ref is ref:
                del states[key]

        st = _VarState(None, str(getattr(var, "path", None) or getattr(var, "name", "variable")))
        st.ref = _weak(var, forget)
        states.pop(key, None)        # a dead variable's leftover (its callback not yet run)
        states[key] = st
        self._fill_slots(st, var.value.shape)
        return st

    def _fill_slots(self, st: _VarState, shape) -> None:
        for group in self._slot_groups():
            for slot in group:
                if slot not in st.slots:
                    a = backend.zeros(shape)
                    init = self._slot_initial_value(slot)
                    if init:
                        a[...] = init
                    st.slots[slot] = a
        if self.use_ema and st.average is None:
            st.average = backend.zeros(shape)
        if self.gradient_accumulation_steps and st.accumulator is None:
            st.accumulator = backend.zeros(shape)

    def _live_states(self) -> list[_VarState]:
        return [st for st in list(self._states.values()) if st.ref() is not None]

    def build(self, var_list: Sequence) -> None:
        """Create the state of every trainable variable of ``var_list``, in order (Keras builds
        at the first update; call it first to load saved optimizer variables)."""
        for var in var_list:
            if getattr(var, "trainable", True):
                self._state(var)
        self.built = True

    def get_slots(self, variable) -> dict[str, np.ndarray]:
        """The live slot arrays of ``variable`` by name (``{"momentum": ..., "velocity": ...}``),
        empty when the optimizer has not updated it."""
        st = self._states.get(id(variable))
        if st is None or st.ref() is not variable:
            return {}
        return dict(st.slots)

    def _extra_variables(self) -> list[OptimizerVariable]:
        return []

    @property
    def variables(self) -> list[OptimizerVariable]:
        """The optimizer's state in Keras 3's order: the iteration count, the learning rate
        (when it is a float), the weights' moving averages (use_ema), the gradient accumulators,
        the slots (group by group, variable by variable), then rule-specific scalars."""
        out = [OptimizerVariable(f"{self.name}/iteration",
                                 lambda: np.array(self._iterations, np.int64),
                                 self._assign_iterations)]
        if not callable(self._learning_rate):
            out.append(OptimizerVariable(f"{self.name}/learning_rate",
                                         lambda: np.array(self._learning_rate, np.float32),
                                         self._assign_learning_rate))
        states = self._live_states()

        def path(st, what):
            return f"{self.name}/{st.label.replace('/', '_').replace(':', '_')}_{what}"

        if self.use_ema:
            out += [OptimizerVariable.of_array(path(st, "average"), st.average) for st in states]
        if self.gradient_accumulation_steps:
            out += [OptimizerVariable.of_array(path(st, "gradient_accumulator"), st.accumulator)
                    for st in states]
        for group in self._slot_groups():
            for st in states:
                out += [OptimizerVariable.of_array(path(st, slot), st.slots[slot])
                        for slot in group]
        return out + self._extra_variables()

    def _assign_iterations(self, value) -> None:
        value = np.asarray(value)
        if value.shape != () or not np.issubdtype(value.dtype, np.number):
            raise ValueError(f"The iteration count must be a scalar. Received: {value!r}")
        self._iterations = int(value)

    def _assign_learning_rate(self, value) -> None:
        self.learning_rate = float(np.asarray(value))

    def save_own_variables(self, store: dict) -> None:
        """Write the state into ``store`` as Keras 3 does in a ``.keras`` file:
        ``store["0"], store["1"], ...`` in the order of ``variables``."""
        for i, v in enumerate(self.variables):
            store[str(i)] = v.numpy()

    def load_own_variables(self, store) -> None:
        """Read the state written by ``save_own_variables`` (or a ``.keras`` file's
        ``optimizer/vars``). Build the optimizer on the model's trainable variables first;
        a store of another length is skipped with a warning, as Keras does."""
        variables = self.variables
        if len(store.keys()) != len(variables):
            msg = (f"Skipping variable loading for optimizer '{self.name}', because it has "
                   f"{len(variables)} variables whereas the saved optimizer has "
                   f"{len(store.keys())} variables. ")
            if len(variables) <= 2:
                msg += "This is likely because the optimizer has not been called/built yet."
            warnings.warn(msg, stacklevel=2)
            return
        for i, v in enumerate(variables):
            v.assign(np.asarray(store[str(i)]))

    def set_weights(self, weights: Sequence) -> None:
        """Set every entry of ``variables`` (Keras 3's ``Optimizer.set_weights``)."""
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(f"Optimizer '{self.name}' has {len(variables)} variables; "
                             f"received {len(weights)} weights.")
        for v, w in zip(variables, weights):
            v.assign(np.asarray(w))

    def get_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.variables]

    # ---- weight decay ---------------------------------------------------------------------------

    def exclude_from_weight_decay(self, var_list: Optional[Iterable] = None,
                                  var_names: Optional[Iterable[str]] = None) -> None:
        """Exclude the variables of ``var_list``, and those whose name contains one of
        ``var_names`` (``["bias"]``), from weight decay."""
        self._wd_excluded_ids = {id(v): _weak(v, None) for v in (var_list or [])}
        self._wd_excluded_names = tuple(var_names or ())

    def _use_weight_decay(self, var) -> bool:
        ref = self._wd_excluded_ids.get(id(var))
        if ref is not None and ref() is var:
            return False
        name = str(getattr(var, "name", ""))
        return not any(s in name for s in self._wd_excluded_names)

    # ---- the step -------------------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars: Iterable) -> int:
        """Keras' ``apply_gradients([(grad, variable), ...])``: one update; returns
        ``iterations`` as Keras does (``last_nonfinite`` says how many weights were left
        unchanged because their update was not finite)."""
        pairs = list(grads_and_vars)
        for p in pairs:
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise ValueError("`grads_and_vars` must be a list of (gradient, variable) "
                                 f"pairs. Received an element {p!r}")
        self._apply_pairs([(g, v) for g, v in pairs])
        return self.iterations

    def apply(self, grads_or_variables: Sequence, trainable_variables: Optional[Sequence] = None
              ) -> int:
        """One update. ``apply(variables)`` updates each trainable variable from its ``.grad``
        (pycnn's training step); ``apply(grads, variables)`` is Keras' form (``apply(grads)``
        after ``build``: the built variables in order). Returns how many weights were left as
        they were because their update would not have been finite (0 normally)."""
        items = grads_or_variables if type(grads_or_variables) is list else \
            list(grads_or_variables)
        if not items:                     # nothing to train (Keras: a no-op)
            return 0
        if trainable_variables is None and all(type(x) is _LayerVariable or _is_variable(x)
                                               for x in items):
            pairs = [(v.grad, v) for v in items if v.trainable]
            if not pairs:
                return 0
            return self._apply_pairs(pairs)
        if trainable_variables is None:
            variables = [st.ref() for st in self._live_states()]
            if not self.built or not variables:
                raise ValueError("When passing `grads` without `variables`, the optimizer must "
                                 "already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
        else:
            variables = list(trainable_variables)
        if len(items) != len(variables):
            raise ValueError(f"Received {len(items)} gradients for {len(variables)} variables: "
                             "they must match one to one.")
        if not items:
            return 0
        return self._apply_pairs(list(zip(items, variables)))

    def _gradient(self, g, var) -> np.ndarray:
        w = var.value
        if not (type(g) is np.ndarray and g.dtype is _F32 and g.flags.c_contiguous and
                g.flags.aligned) and not (isinstance(g, np.ndarray) and g.dtype == np.float32
                                          and g.flags.c_contiguous and g.flags.aligned):
            g = np.ascontiguousarray(np.asarray(g, dtype=np.float32))
        if g.shape != w.shape:
            raise ValueError(f"The gradient of variable {getattr(var, 'name', var)!r} has "
                             f"shape {g.shape}, but the variable has shape {w.shape}")
        return g

    def _apply_pairs(self, pairs: list) -> int:
        pairs = [(g, v) for g, v in pairs if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        gradient, state, known = self._gradient, self._state, self._states
        grads, variables, states = [], [], []
        for g, v in pairs:                  # one pass: the state looked up in place when known
            grads.append(gradient(g, v))
            variables.append(v)
            st = known.get(id(v))
            states.append(st if st is not None and st.ref() is v else state(v))
        self.built = True
        lr = self._learning_rate
        if type(lr) is not float:
            lr = self._learning_rate_at(self._iterations)
        if not (lr >= 0 and lr != math.inf):            # False for NaN too
            raise ValueError(f"{type(self).__name__}: the learning rate at step "
                             f"{self._iterations} is {lr}; it must be a finite number >= 0")
        bad = 0
        steps = self.gradient_accumulation_steps
        update = not steps or (self._iterations + 1) % steps == 0
        if steps:
            for st, g in zip(states, grads):
                _C.grad_accumulate(st.accumulator, g, float(steps) if update else 1.0)
            grads = [st.accumulator for st in states]
        if update:
            bad = self._update_all(variables, states, grads, lr)
            if steps:
                for st in states:
                    st.accumulator[...] = 0.0
        if self.use_ema:
            self._update_average()
        self._iterations += 1
        self.last_nonfinite = bad
        return bad

    def _gradient_scales(self, grads: list) -> list[float]:
        if self.clipnorm:
            c = self.clipnorm
            out = []
            for g in grads:
                norm = math.sqrt(_C.sum_squares(g))
                out.append(1.0 if norm == 0 else c / max(norm, c) if norm == norm else math.nan)
            return out
        if self.global_clipnorm:
            c = self.global_clipnorm
            norm = math.sqrt(math.fsum(_C.sum_squares(g) for g in grads))
            scale = math.nan if not math.isfinite(norm) else \
                1.0 if norm == 0 else c * min(1.0 / norm, 1.0 / c)
            return [scale] * len(grads)
        return [1.0] * len(grads)

    def _update_all(self, variables: list, states: list, grads: list, lr: float) -> int:
        self._before_update()
        clip = self.clipvalue if self.clipvalue else math.inf
        wd = self.weight_decay
        n_slots = sum(map(len, self._slot_groups()))
        update = self._update
        bad = 0
        if not (self.clipnorm or self.global_clipnorm or wd):
            # the training step's common case: one preprocessing for every variable
            pre = {"gscale": 1.0, "clip": clip, "decay": 0.0}
            for var, st, g in zip(variables, states, grads):
                if len(st.slots) != n_slots:
                    self._fill_slots(st, var.value.shape)   # a hyper-parameter changed
                bad += update(var.value, g, st.slots, lr, pre)
            return bad
        for var, st, g, scale in zip(variables, states, grads, self._gradient_scales(grads)):
            if not math.isfinite(scale):          # a NaN or infinite gradient norm
                bad += var.value.size
                continue
            if len(st.slots) != n_slots:
                self._fill_slots(st, var.value.shape)   # a hyper-parameter changed
            decay = lr * wd if wd and self._use_weight_decay(var) else 0.0
            bad += update(var.value, g, st.slots, lr,
                          {"gscale": scale, "clip": clip, "decay": decay})
        return bad

    def _before_update(self) -> None:
        """Hook run once per update before the variables' updates (Nadam's momentum product)."""

    def _update(self, w: np.ndarray, g: np.ndarray, slots: dict, lr: float, pre: dict) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define `_update`")

    # ---- moving average of the weights --------------------------------------------------------

    def _update_average(self) -> None:
        momentum = self.ema_momentum if self.iterations != 0 else 0.0
        overwrite = self.ema_overwrite_frequency and \
            (self.iterations + 1) % self.ema_overwrite_frequency == 0
        for st in self._live_states():
            var = st.ref()
            if var is None or st.average is None:
                continue
            _C.ema_update(st.average, var.value, momentum)
            if overwrite:
                var.value[...] = st.average

    def finalize_variable_values(self, var_list: Sequence) -> None:
        """With ``use_ema``, copy the moving averages into the variables (Keras' ``fit`` does
        this after the last epoch)."""
        if not self.use_ema:
            return
        for var in var_list:
            st = self._states.get(id(var))
            if st is not None and st.ref() is var and st.average is not None:
                var.value[...] = st.average

    # ---- configuration --------------------------------------------------------------------------

    def get_config(self) -> dict:
        lr = self._learning_rate
        if isinstance(lr, schedules_mod.LearningRateSchedule):
            lr = schedules_mod.serialize(lr)
        elif not callable(lr):
            lr = float(np.float32(lr))
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config: dict, custom_objects: Optional[dict] = None) -> "Optimizer":
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_mod.deserialize(config["learning_rate"],
                                                                custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name} learning_rate={self.learning_rate:g}>"


def _takes_an_argument(fn: Callable) -> bool:
    """Whether a learning-rate callable takes the step (pycnn's and tf.keras 1's style) or
    nothing (Keras 3's)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               and p.default is p.empty for p in params) or \
        any(p.kind == p.VAR_POSITIONAL for p in params)
