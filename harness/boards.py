"""Boards are data: `boards/<name>.toml` says what a board is and which backend runs it.

A board file holds the CPU and core clock, the BSP to build with, the memory regions (the ones
the BSP's linker script uses), the budgets a policy must fit, what the cycle counter counts, and
a `[backend]` table: `name` picks the backend (harness.backends), the other keys are that
backend's settings. This module only reads the data; `harness.backends.load_board` adds the
backend's validated settings (the registry looks boards up, not the other way round). Sizes are written as "2MB" or
"512kB" (binary units, see harness.units). See boards/qemu-m7.toml for a commented example.
"""
from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.paths import BOARDS_DIR, REPO_ROOT
from harness.units import parse_size

DEFAULT_BOARD = "qemu-m7"  # what commands and the test suite run on when no --board is given
REGION_KINDS = ("flash", "ram")
# what one tick of the firmware's counter is; the values are docs/protocol.md's counter_kind
COUNTER_KINDS = {"cycles": 0, "virtual-time": 1, "instructions": 2}


@dataclass(frozen=True)
class MemoryRegion:
    """An address range of the board. `reserved` regions (the stack) lie outside the RAM budget."""

    name: str
    kind: str
    origin: int
    size: int
    reserved: bool = False

    def contains(self, address: int) -> bool:
        return self.origin <= address < self.origin + self.size


@dataclass(frozen=True)
class Budget:
    """Bytes a firmware may use: flash (code, weights, .data image) and RAM (.data, .bss with the arena; the stack has its own region)."""

    flash: int
    ram: int

    def of_kind(self, kind: str) -> int:
        return getattr(self, kind)


@dataclass(frozen=True)
class Counter:
    """What the firmware's tick counter counts on this board (a COUNTER_KINDS key) and a sentence."""

    kind: str
    description: str

    @property
    def protocol_kind(self) -> int:
        """The counter_kind value INFO reports for this board (docs/protocol.md)."""
        return COUNTER_KINDS[self.kind]


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    core_clock_hz: int
    bsp: str
    memory: tuple[MemoryRegion, ...]
    budget: Budget
    counter: Counter
    backend: str
    backend_options: dict  # the board file's [backend] table without `name`, as written
    path: Path
    # the board whose ELF this one runs: itself, or another board with the same BSP (renode-h743
    # runs nucleo-h743's image; its own [counter] then says what the ticks mean there)
    firmware: str = ""
    # the backend's settings_type instance, parsed from backend_options by harness.backends.load_board
    backend_settings: Any = None
    # the clock of the hardware this board stands for (an emulator carries the H743's budgets):
    # reports estimate milliseconds at it; 0 means core_clock_hz
    estimate_clock_hz: int = 0

    @property
    def clock_for_estimates(self) -> int:
        return self.estimate_clock_hz or self.core_clock_hz

    def firmware_board(self) -> Board:
        """The board to build the firmware for: this one, or the one named by `firmware`."""
        if self.firmware in ("", self.name):
            return self
        target = load_board(self.firmware, self.path.parent)
        if target.bsp != self.bsp or target.firmware_board() is not target:
            raise HarnessError(f"{display_path(self.path)}: firmware {self.firmware!r} must be a board with its own "
                               f"firmware and the same bsp ({self.bsp!r})")
        return target

    def with_serial_port(self, port: str | None) -> Board:
        """This board reached at serial `port` (the --port option); itself when port is None."""
        if port is None:
            return self
        if "port" not in {field.name for field in dataclasses.fields(self.backend_settings)}:
            raise HarnessError(f"--port: board {self.name} ({self.backend} backend) has no serial port to choose")
        return dataclasses.replace(self, backend_settings=dataclasses.replace(self.backend_settings, port=port))

    def with_baud(self, baud: int | None) -> Board:
        """This board's link at `baud` (the --baud option; the firmware is built for it too);
        itself when baud is None."""
        if baud is None:
            return self
        if "baud" not in {field.name for field in dataclasses.fields(self.backend_settings)}:
            raise HarnessError(f"--baud: board {self.name} ({self.backend} backend) has no UART baud rate to choose")
        if not 1200 <= baud <= 15_000_000:
            raise HarnessError(f"--baud must be 1200 .. 15000000, got {baud}")
        return dataclasses.replace(self, backend_settings=dataclasses.replace(self.backend_settings, baud=baud))

    def region_at(self, address: int) -> MemoryRegion | None:
        return next((region for region in self.memory if region.contains(address)), None)

    def region_named(self, name: str) -> MemoryRegion | None:
        """The region called `name`, ignoring case (linker scripts say FLASH, board files flash)."""
        return next((region for region in self.memory if region.name.lower() == name.lower()), None)


def board_names(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(path.stem for path in boards_dir.glob("*.toml"))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """The board `name` (boards/<name>.toml) or a path to a board file; HarnessError if unknown or invalid."""
    path = Path(name) if name.endswith(".toml") else boards_dir / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(board_names(boards_dir)) or "none"
        raise HarnessError(f"unknown board {name!r} (known boards: {known})")
    return _parse_file(path)


def load_boards(boards_dir: Path = BOARDS_DIR) -> list[Board]:
    return [load_board(name, boards_dir) for name in board_names(boards_dir)]


def _parse_file(path: Path) -> Board:
    where = display_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise HarnessError(f"{where}: not valid TOML: {error}") from None
    fields = _Table(data, where)
    name = fields.get("name", str)
    if name != path.stem:
        raise HarnessError(f"{where}: name {name!r} must match the file name {path.stem!r}")
    backend_fields = fields.child("backend")
    backend_name = backend_fields.get("name", str)
    backend_table = {key: value for key, value in backend_fields.table.items() if key != "name"}
    board = Board(
        name=name,
        description=fields.get("description", str),
        cpu=fields.get("cpu", str),
        core_clock_hz=fields.positive("core_clock_hz"),
        bsp=fields.get("bsp", str),
        memory=_memory(fields.child("memory")),
        budget=_budget(fields.child("budget")),
        counter=_counter(fields.child("counter")),
        backend=backend_name,
        backend_options=backend_table,
        path=path,
        firmware=fields.get("firmware", str, name),
        estimate_clock_hz=fields.get("estimate_clock_hz", int, 0),
    )
    fields.reject_unknown()
    return board


class _Table:
    """Typed access to one TOML table; errors name the file and the dotted key."""

    def __init__(self, table: dict, file: str, prefix: str = "") -> None:
        self.table, self.file, self.prefix, self.used = table, file, prefix, set()

    def error(self, key: str, problem: str) -> HarnessError:
        return HarnessError(f"{self.file}: {self.prefix}{key}: {problem}")

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.error(key, "missing")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {_KIND_WORDS[kind]}, got {value!r}")
        return value

    def child(self, key: str) -> _Table:
        return _Table(self.get(key, dict), self.file, f"{self.prefix}{key}.")

    def positive(self, key: str) -> int:
        value = self.get(key, int)
        if value <= 0:
            raise self.error(key, f"must be positive, got {value}")
        return value

    def choice(self, key: str, options: Iterable[str]) -> str:
        value = self.get(key, str)
        if value not in options:
            raise self.error(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def size(self, key: str) -> int:
        """A memory size > 0 ("2MB", "512kB" or bytes)."""
        try:
            size = parse_size(self.get(key, (str, int)))
        except HarnessError as error:
            raise self.error(key, str(error)) from None
        if size == 0:
            raise self.error(key, "must not be zero")
        return size

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise HarnessError(f"{self.file}: unknown key(s) {', '.join(self.prefix + key for key in unknown)}")


_KIND_WORDS = {str: "a string", int: "an integer", bool: "true or false", dict: "a table", (str, int): "a size"}


def _memory(fields: _Table) -> tuple[MemoryRegion, ...]:
    regions = []
    for name in fields.table:
        region_fields = fields.child(name)
        region = MemoryRegion(
            name=name,
            kind=region_fields.choice("kind", REGION_KINDS),
            origin=region_fields.get("origin", int),
            size=region_fields.size("size"),
            reserved=region_fields.get("reserved", bool, False),
        )
        region_fields.reject_unknown()
        if region.origin < 0 or region.origin + region.size > 2**32:
            raise fields.error(name, "must lie inside the 32-bit address space")
        regions.append(region)
    for kind in REGION_KINDS:
        if not any(region.kind == kind for region in regions):
            raise HarnessError(f"{fields.file}: memory needs at least one region of kind {kind!r}")
    ordered = sorted(regions, key=lambda region: region.origin)
    for low, high in zip(ordered, ordered[1:]):
        if low.origin + low.size > high.origin:
            raise HarnessError(f"{fields.file}: memory regions {low.name} and {high.name} overlap")
    return tuple(regions)


def _budget(fields: _Table) -> Budget:
    budget = Budget(flash=fields.size("flash"), ram=fields.size("ram"))
    fields.reject_unknown()
    return budget


def _counter(fields: _Table) -> Counter:
    counter = Counter(kind=fields.choice("kind", COUNTER_KINDS), description=fields.get("description", str))
    fields.reject_unknown()
    return counter


def display_path(path: Path) -> str:
    """The path relative to the repository when inside it (shorter error messages)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
