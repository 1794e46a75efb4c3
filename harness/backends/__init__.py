"""Backends turn (board, ELF) into a live serial link and clean up after themselves.

Every backend is a `Backend` subclass in a module of this package, registered by name with
`@register_backend`; the board file's `[backend] name = "..."` picks it. Nothing above this
package knows which backend runs: all links are pyserial URLs (`/dev/ttyACM0`,
`socket://127.0.0.1:PORT`).

    with open_link(board, elf_path) as link:
        serial.serial_for_url(link.url, ...)
        ...
        link.raise_if_dead()      # after a timeout: a clear reason if the target died
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError

from harness.boards import BOARDS_DIR, Board, board_names, display_path
from harness.boards import load_board as load_board_data


@dataclass(frozen=True)
class ToolStatus:
    """Whether the host tools a backend needs are installed; `detail` says which, or how to install."""

    present: bool
    detail: str


class Link(ABC):
    """A running target reachable at a pyserial URL. Valid only inside `open_link`'s with-block."""

    # True when the backend already waited for the firmware's hello frame (a board reset with
    # the port open), so a session need not wait for it again
    hello_consumed = False

    def __init__(self, url: str, description: str) -> None:
        self.url = url
        self.description = description

    @abstractmethod
    def failure(self) -> str | None:
        """Why the target is gone (one line), or None while it runs."""

    def health(self) -> str | None:
        """Why the target cannot answer right now (dead, frozen, detached), or None. Asked
        before every protocol retry and while an answer is awaited, so it must be cheap."""
        return self.failure()

    def alive(self) -> bool:
        return self.failure() is None

    def raise_if_dead(self) -> None:
        """HarnessError with the reason when the target has died: call it when the link goes quiet."""
        reason = self.failure()
        if reason is not None:
            raise HarnessError(f"{self.description}: {reason}")


class Backend(ABC):
    """One way of running firmware. Subclasses set `name` and `settings_type` and register."""

    name: ClassVar[str]
    # dataclass describing the board file's [backend] table (besides `name`)
    settings_type: ClassVar[type]

    @classmethod
    @abstractmethod
    def tool_status(cls) -> ToolStatus:
        """Whether this backend's host tools are present (shown by `harness boards`)."""

    @classmethod
    @abstractmethod
    def open_link(cls, board: Board, elf_path: Path) -> AbstractContextManager[Link]:
        """Load `elf_path` on `board`, yield its Link, and stop it on exit, error or Ctrl-C."""


_REGISTRY: dict[str, type[Backend]] = {}
_discovered = False


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make `cls` available under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"two backends named {cls.name!r}: {_REGISTRY[cls.name]} and {cls}")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    """Import every module of this package once, so their @register_backend runs."""
    global _discovered
    if not _discovered:
        for module_info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module_info.name}")
        _discovered = True


def backend_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as `name`; HarnessError listing the known ones otherwise."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HarnessError(f"unknown backend {name!r} (known: {', '.join(backend_names())})") from None


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """The board `name` (or a path to a board file) with its backend's settings parsed and
    checked; HarnessError naming the file and the key otherwise."""
    board = load_board_data(name, boards_dir)
    where = f"{display_path(board.path)}: backend"
    try:
        backend = get_backend(board.backend)
    except HarnessError as error:
        raise HarnessError(f"{where}.name: {error}") from None
    settings = parse_settings(backend.settings_type, board.backend_options, where)
    return dataclasses.replace(board, backend_settings=settings)


def load_boards(boards_dir: Path = BOARDS_DIR) -> list[Board]:
    return [load_board(name, boards_dir) for name in board_names(boards_dir)]


def open_link(board: Board, elf_path: str | Path) -> AbstractContextManager[Link]:
    """Run `elf_path` on `board` with the board's backend; use as `with open_link(...) as link`."""
    elf_path = Path(elf_path)
    if not elf_path.is_file():
        raise HarnessError(f"no firmware image at {elf_path}")
    return get_backend(board.backend).open_link(board, elf_path)


def parse_settings(settings_type: type, table: Mapping[str, Any], where: str) -> Any:
    """Build the dataclass `settings_type` from a TOML table, checking names and types.

    Supported field types: str, int, float, bool, tuple[str, ...] (a TOML array) and `X | None`
    (optional; TOML has no null, so None means "absent"). Errors name the field, e.g.
    "boards/qemu-m7.toml: backend.icount_shift: expected an integer, got 'zero'".
    """
    hints = typing.get_type_hints(settings_type)
    fields = {f.name: f for f in dataclasses.fields(settings_type)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise HarnessError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    values = {}
    for name, field in fields.items():
        if name in table:
            values[name] = _typed(table[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise HarnessError(f"{where}.{name}: missing")
    try:
        return settings_type(**values)
    except ValueError as error:
        raise HarnessError(f"{where}: {error}") from None


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _typed(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against the type `hint` (see parse_settings)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _typed(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise HarnessError(f"{where}: expected a list, got {value!r}")
        return tuple(_typed(item, args[0], f"{where}[{i}]") for i, item in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPE_WORDS and isinstance(value, hint) and (hint is bool or not isinstance(value, bool)):
        return value
    if hint in _TYPE_WORDS:
        raise HarnessError(f"{where}: expected {_TYPE_WORDS[hint]}, got {value!r}")
    raise TypeError(f"parse_settings does not support the field type {hint!r} ({where})")
