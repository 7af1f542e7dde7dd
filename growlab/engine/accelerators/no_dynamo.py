"""torch.optim and torch's FLOP counter without importing torch._dynamo while nothing compiles.

torch.optim wraps every optimizer's `step` in a helper that imports torch._dynamo to insert graph
breaks, and `add_param_group`, `zero_grad`, `state_dict` and `load_state_dict` in
`torch._disable_dynamo`, which imports it on first call: 1.2 to 1.5 s of every run's start-up on
a CPU. The FLOP counter's dispatch method is wrapped in `torch._disable_dynamo` too. These
wrappers only matter while torch.compile traces, and that needs torch._dynamo
imported. So the methods installed here run the plain method while torch._dynamo is absent from
`sys.modules`, and hand over to torch's own wrapper as soon as anything imports it: behaviour is
unchanged either way. Torch versions whose wrappers look different are left as they are.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, _use_grad_for_differentiable

_LEAN = "__growlab_lean__"
_DISABLE_DYNAMO_CODE = torch._disable_dynamo(lambda: None).__code__
_USE_GRAD_CODE = _use_grad_for_differentiable(lambda self: None).__code__
_BASE_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def dynamo_loaded() -> bool:
    return "torch._dynamo" in sys.modules


def _lean(wrapper: Callable[..., Any], plain: Callable[..., Any], step: bool) -> Callable:
    @functools.wraps(plain)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if dynamo_loaded():
            return wrapper(self, *args, **kwargs)
        if step:  # what torch's step wrapper does around the graph breaks
            with torch.set_grad_enabled(self.defaults["differentiable"]):
                return plain(self, *args, **kwargs)
        return plain(self, *args, **kwargs)

    setattr(method, _LEAN, True)
    return method


def _install(cls: type, name: str, wrapper_code: Any, step: bool) -> None:
    wrapper = vars(cls).get(name)
    if wrapper is None or getattr(wrapper, _LEAN, False):
        return
    plain = getattr(wrapper, "__wrapped__", None)
    if plain is None or getattr(wrapper, "__code__", None) is not wrapper_code:
        return
    setattr(cls, name, _lean(wrapper, plain, step))


def make_lean(cls: type[Optimizer]) -> None:
    """Install the lean methods on Optimizer and on `cls.step` (idempotent).

    Call before the first `cls(...)`: the constructor wraps `step` in its profiling hook.
    """
    for name in _BASE_METHODS:
        _install(Optimizer, name, _DISABLE_DYNAMO_CODE, step=False)
    for klass in cls.__mro__:  # AdamW inherits Adam's step, for instance
        if klass is not Optimizer and issubclass(klass, Optimizer):
            _install(klass, "step", _USE_GRAD_CODE, step=True)


def flop_counter_mode() -> Any:
    """A `torch.utils.flop_counter.FlopCounterMode(display=False)` whose dispatch is lean."""
    from torch.utils import flop_counter

    _install(flop_counter._FlopCounterMode, "__torch_dispatch__", _DISABLE_DYNAMO_CODE, False)
    return flop_counter.FlopCounterMode(display=False)
