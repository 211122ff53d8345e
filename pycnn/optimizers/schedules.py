"""Learning rate schedules with Keras' names, arguments and formulas
(``keras.optimizers.schedules``): each is a callable of the optimizer's step count (the number of
updates made so far, from 0) returning the learning rate of the next update.

    lr = optimizers.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    opt = optimizers.SGD(learning_rate=lr)

Subclass ``LearningRateSchedule`` (``__call__(step)`` and ``get_config()``) for your own.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize"]


def _number(value, arg: str) -> float:
    """A real number (Python or NumPy), as a float; the error names the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:   # NumPy 0-d arrays and scalars
            import numpy as np
            if isinstance(value, np.ndarray) and value.ndim == 0 and \
                    np.issubdtype(value.dtype, np.number):
                return float(value)
        except ImportError:  # pragma: no cover
            pass
        raise TypeError(f"Argument `{arg}` must be a number. Received: {arg}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Argument `{arg}` must be a finite number. Received: {arg}={value}")
    return value


def _steps(value, arg: str) -> float:
    v = _number(value, arg)
    if v <= 0:
        raise ValueError(f"Argument `{arg}` must be > 0. Received: {arg}={value}")
    return v


def _step(step) -> float:
    """The step a schedule is called with: an int, float or NumPy scalar >= 0."""
    if hasattr(step, "iterations") and not isinstance(step, numbers.Real):
        step = step.iterations
    return _number(step, "step")


class LearningRateSchedule:
    """The base class of learning rate schedules: a subclass defines ``__call__(self, step)``
    returning the learning rate for the step (the number of updates made so far) and
    ``get_config()`` returning the arguments that recreate it."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{self.__class__.__name__}' must "
                                  "override `__call__(self, step)`.")

    def get_config(self) -> dict:
        raise NotImplementedError(f"Learning rate schedule '{self.__class__.__name__}' must "
                                  "override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class _BuiltinSchedule(LearningRateSchedule):
    """A built-in schedule: its (validated) arguments are its attributes and its config."""

    _config: tuple[str, ...] = ()

    def _keep(self, **config) -> None:
        """Stores the arguments as attributes; ``get_config`` returns them in this order."""
        self.__dict__.update(config)
        self._config = tuple(config)

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in self._config}


class _StaircaseDecay(_BuiltinSchedule):
    """The schedules of ``step / decay_steps`` (rounded down with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase: bool, name: str):
        _number(initial_learning_rate, "initial_learning_rate")
        _steps(decay_steps, "decay_steps")
        _number(decay_rate, "decay_rate")
        self._keep(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                   decay_rate=decay_rate, staircase=bool(staircase), name=name)

    def _progress(self, step) -> float:
        p = _step(step) / float(self.decay_steps)
        return math.floor(p) if self.staircase else p


class ExponentialDecay(_StaircaseDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase=True``
    the exponent is rounded down (the rate changes every ``decay_steps`` steps)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase: bool = False,
                 name: str = "ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step) -> float:
        return float(self.initial_learning_rate) * float(self.decay_rate) ** self._progress(step)


class PiecewiseConstantDecay(_BuiltinSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name: str = "PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}.")
        for i, b in enumerate(boundaries):
            _number(b, f"boundaries[{i}]")
        for i, v in enumerate(values):
            _number(v, f"values[{i}]")
        if any(float(b) > float(c) for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"Argument `boundaries` must be in increasing order. Received: "
                             f"boundaries={boundaries}")
        self._keep(boundaries=boundaries, values=values, name=name)

    def __call__(self, step) -> float:
        s = _step(step)
        for b, v in zip(self.boundaries, self.values):
            if s <= float(b):
                return float(v)
        return float(self.values[-1])


class PolynomialDecay(_BuiltinSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end`` with the step held at
    ``decay_steps`` afterwards; with ``cycle=True`` ``decay_steps`` grows to the first multiple
    of itself at or above the step instead."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle: bool = False, name: str = "PolynomialDecay"):
        _number(initial_learning_rate, "initial_learning_rate")
        _steps(decay_steps, "decay_steps")
        _number(end_learning_rate, "end_learning_rate")
        _number(power, "power")
        self._keep(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                   end_learning_rate=end_learning_rate, power=power, cycle=bool(cycle), name=name)

    def __call__(self, step) -> float:
        s, steps = _step(step), float(self.decay_steps)
        if self.cycle:
            steps *= 1.0 if s == 0 else math.ceil(s / steps)
        else:
            s = min(s, steps)
        p = s / steps
        init, end = float(self.initial_learning_rate), float(self.end_learning_rate)
        return (init - end) * (1.0 - p) ** float(self.power) + end


class InverseTimeDecay(_StaircaseDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (the quotient rounded
    down with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase: bool = False,
                 name: str = "InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step) -> float:
        return float(self.initial_learning_rate) / (
            1.0 + float(self.decay_rate) * self._progress(step))


class CosineDecay(_BuiltinSchedule):
    """Cosine decay from ``initial_learning_rate`` (or, after a linear warmup of
    ``warmup_steps`` steps, from ``warmup_target``) to ``alpha`` times that over
    ``decay_steps`` steps (SGDR without restarts)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name: str = "CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _number(initial_learning_rate, "initial_learning_rate")
        _steps(decay_steps, "decay_steps")
        _number(alpha, "alpha")
        if warmup_target is not None:
            _number(warmup_target, "warmup_target")
        if _number(warmup_steps, "warmup_steps") < 0:
            raise ValueError(f"Argument `warmup_steps` must be >= 0. Received: "
                             f"warmup_steps={warmup_steps}")
        self._keep(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                   alpha=alpha, name=name, warmup_target=warmup_target, warmup_steps=warmup_steps)

    def _decay(self, step: float, decay_from: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / float(self.decay_steps)))
        alpha = float(self.alpha)
        return decay_from * ((1.0 - alpha) * cosine + alpha)

    def __call__(self, step) -> float:
        s, steps = _step(step), float(self.decay_steps)
        init = float(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decay(min(s, steps), init)
        target, warmup = float(self.warmup_target), float(self.warmup_steps)
        s = min(s, steps + warmup)
        if s < warmup:
            return (target - init) * (s / warmup) + init
        return self._decay(s - warmup, target)


class CosineDecayRestarts(_BuiltinSchedule):
    """Cosine decay with warm restarts (SGDR): the first period lasts ``first_decay_steps``
    steps, each next one ``t_mul`` times longer and starting from ``m_mul`` times the previous
    initial rate; the rate decays to ``alpha`` times the period's initial rate."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name: str = "SGDRDecay"):
        _number(initial_learning_rate, "initial_learning_rate")
        _steps(first_decay_steps, "first_decay_steps")
        if _number(t_mul, "t_mul") <= 0:
            raise ValueError(f"Argument `t_mul` must be > 0. Received: t_mul={t_mul}")
        _number(m_mul, "m_mul")
        _number(alpha, "alpha")
        self._keep(initial_learning_rate=initial_learning_rate,
                   first_decay_steps=first_decay_steps, t_mul=t_mul, m_mul=m_mul, alpha=alpha,
                   name=name)

    def __call__(self, step) -> float:
        fraction = _step(step) / float(self.first_decay_steps)
        t_mul, m_mul, alpha = float(self.t_mul), float(self.m_mul), float(self.alpha)
        if t_mul == 1.0:
            i_restart = math.floor(fraction)
            fraction -= i_restart
        else:
            i_restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            sum_r = (1.0 - t_mul ** i_restart) / (1.0 - t_mul)
            fraction = (fraction - sum_r) / t_mul ** i_restart
        cosine = 0.5 * m_mul ** i_restart * (1.0 + math.cos(math.pi * fraction))
        return float(self.initial_learning_rate) * ((1.0 - alpha) * cosine + alpha)


_BUILTIN = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                     InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict:
    """The schedule as Keras 3 serialises it: ``{"module", "class_name", "config",
    "registered_name"}``."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError("serialize() expects a LearningRateSchedule. Received: "
                        f"{learning_rate_schedule!r}")
    cls = type(learning_rate_schedule)
    builtin = _BUILTIN.get(cls.__name__) is cls
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__,
            "class_name": cls.__name__, "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config: dict, custom_objects: Optional[dict] = None) -> LearningRateSchedule:
    """A schedule from ``serialize``'s dict (Keras 3's or tf.keras 2's ``{"class_name",
    "config"}``); user classes are looked up in ``custom_objects``."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret learning rate schedule config: {config!r}")
    name = config["class_name"]
    objects: dict[str, Any] = dict(_BUILTIN)
    objects.update(custom_objects or {})
    cls = objects.get(name) or objects.get(config.get("registered_name") or "")
    if cls is None:
        raise ValueError(f"Unknown decay: '{name}'. Please ensure you are using a "
                         "`keras.utils.custom_object_scope` and that this object is included "
                         "in the scope (pass it in `custom_objects`).")
    return cls.from_config(dict(config.get("config", {})))
