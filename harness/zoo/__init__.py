"""The model zoo: zoo name -> builder(**args) -> Architecture.

A model is added by writing a module in this package whose builder is decorated with
`@register(name)`; modules are discovered, so nothing else changes.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Callable

from harness.errors import HarnessError
from harness.zoo.architecture import Architecture

_BUILDERS: dict[str, Callable[..., Architecture]] = {}


def register(name: str) -> Callable:
    """Decorator: make `builder` available as zoo model `name`."""
    def decorate(builder: Callable[..., Architecture]) -> Callable[..., Architecture]:
        _BUILDERS[name] = builder
        return builder
    return decorate


def names() -> list[str]:
    _load_modules()
    return sorted(_BUILDERS)


def builder_module(name: str) -> str:
    """The module that defines zoo model `name` (its source is part of what trained weights depend on)."""
    _load_modules()
    if name not in _BUILDERS:
        raise HarnessError(f"unknown model {name!r} (known: {', '.join(names())})")
    return _BUILDERS[name].__module__


def build(name: str, args: dict | None = None) -> Architecture:
    """The architecture of zoo model `name` with keyword `args`; HarnessError if either is bad."""
    _load_modules()
    if name not in _BUILDERS:
        raise HarnessError(f"unknown model {name!r} (known: {', '.join(names())})")
    builder = _BUILDERS[name]
    args = dict(args or {})
    accepted = inspect.signature(builder).parameters
    for key, value in args.items():
        if key not in accepted:
            raise HarnessError(f"model {name!r} has no argument {key!r} (arguments: {', '.join(accepted)})")
        _check_argument(name, key, value, accepted[key].default)
    try:
        return builder(**args)
    except (TypeError, ValueError) as error:
        raise HarnessError(f"model {name!r}: {error}") from None


MAX_INT_ARGUMENT = 4096  # channels, sizes, classes: far above any model this harness can fit
MAX_FLOAT_ARGUMENT = 16.0  # width multipliers


def _check_argument(name: str, key: str, value: object, default: object) -> None:
    """An argument has its default's type (int or float; an int is a float too) and a sane size,
    before the builder sees it: a width of 1e9 would otherwise try to allocate tens of GiB."""
    where = f"model {name!r} argument {key!r}"
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HarnessError(f"{where}: must be a number, got {value!r}")
    if isinstance(default, int) and not isinstance(value, int):
        raise HarnessError(f"{where}: must be an integer, got {value!r}")
    limit = MAX_INT_ARGUMENT if isinstance(default, int) else MAX_FLOAT_ARGUMENT
    if not 0 < value <= limit:
        raise HarnessError(f"{where}: must be in (0, {limit:g}], got {value!r}")


def _load_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
