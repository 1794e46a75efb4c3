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


def build(name: str, args: dict | None = None) -> Architecture:
    """The architecture of zoo model `name` with keyword `args`; HarnessError if either is bad."""
    _load_modules()
    if name not in _BUILDERS:
        raise HarnessError(f"unknown model {name!r} (known: {', '.join(names())})")
    builder = _BUILDERS[name]
    args = dict(args or {})
    accepted = inspect.signature(builder).parameters
    for key in args:
        if key not in accepted:
            raise HarnessError(f"model {name!r} has no argument {key!r} (arguments: {', '.join(accepted)})")
    try:
        return builder(**args)
    except (TypeError, ValueError) as error:
        raise HarnessError(f"model {name!r}: {error}") from None


def _load_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
