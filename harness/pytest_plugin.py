"""pytest plugin (registered through the `pytest11` entry point): `pytest --board NAME`.

As in pytest-embedded, one option maps to one fixture: `--board` -> `board`. Tests marked
`@pytest.mark.device` need the board's backend (emulator, probe) and the ARM toolchain; tests
marked `@pytest.mark.tools(NAME, ...)` (or calling `require_tools`) need those host tools. A test
whose tool is missing is skipped with the reason and the install hint, except in strict mode
(MPQ_STRICT_TOOLS=1, set by tools/test.sh and so CI): there a missing tool that tools/setup.sh
installs (SETUP_TOOLS) fails the test, naming it. Hardware (no probe) and Renode stay skips.

Fixtures:
- `board_name`, `board`: the board of --board (default qemu-m7).
- `device_session`: a function `graphs -> context manager yielding a protocol Device` that
  generates, builds (cached) and starts firmware for those graphs on the board.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NoReturn

import pytest

DEFAULT_BOARD = "qemu-m7"
STRICT_ENV = "MPQ_STRICT_TOOLS"
# What tools/setup.sh installs, with how; "unicorn" is a Python module, the rest executables.
SETUP_TOOLS = {
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "make": "apt-get install make",
    "qemu-system-arm": "apt-get install qemu-system-arm",
    "cc": "apt-get install gcc",
    "unicorn": "pip install -e '.[test]'",
}
PYTHON_MODULES = ("unicorn",)
BACKEND_TOOLS = {"qemu": "qemu-system-arm"}  # backends whose tool tools/setup.sh installs


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "mixed-precision harness")
    group.addoption("--board", default=DEFAULT_BOARD, help=f"board to run device tests on (default {DEFAULT_BOARD})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "device: runs firmware on the --board target; skipped where its tools are missing")
    config.addinivalue_line("markers", f"tools(*names): needs these host tools; skipped where missing ({STRICT_ENV}=1: fails)")


def strict_tools() -> bool:
    """Strict mode: a missing tool that tools/setup.sh installs fails instead of skipping."""
    return os.environ.get(STRICT_ENV) == "1"


def missing_tool(reason: str, tool: str | None) -> NoReturn:
    """Skip for `reason`; in strict mode fail instead when `tool` is one tools/setup.sh installs."""
    if tool in SETUP_TOOLS and strict_tools():
        pytest.fail(f"missing tool {tool}: {reason} ({STRICT_ENV}=1: tools/setup.sh installs it)", pytrace=False)
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    """Skip (strict mode: fail) the calling test unless every tool in `names` is installed."""
    for name in names:
        present = importlib.util.find_spec(name) is not None if name in PYTHON_MODULES else shutil.which(name)
        if not present:
            missing_tool(f"{name} is not installed ({SETUP_TOOLS.get(name, 'see README')})", name)


def _missing_device_tools(board_name: str) -> tuple[str, str | None] | None:
    """(why device tests cannot run on this board here, the missing tool), or None."""
    from harness.backends import get_backend
    from harness.backends import load_board
    from harness.build.firmware import GCC, toolchain_status

    board = load_board(board_name)
    status = toolchain_status()
    if not status.present:
        return f"board {board_name}: {status.detail}", next((t for t in (GCC, "make") if not shutil.which(t)), GCC)
    status = get_backend(board.backend).tool_status()
    if not status.present:
        return f"board {board_name}: {status.detail}", BACKEND_TOOLS.get(board.backend)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("tools"):
        require_tools(*marker.args)
    if item.get_closest_marker("device") is None:
        return
    cache = item.config.stash.setdefault(_missing_key, {})
    name = item.config.getoption("--board")
    if name not in cache:
        cache[name] = _missing_device_tools(name)
    if cache[name] is not None:
        missing_tool(*cache[name])


_missing_key = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def board_name(request: pytest.FixtureRequest) -> str:
    """The board named by --board."""
    return request.config.getoption("--board")


@pytest.fixture(scope="session")
def board(board_name: str):
    """The Board of --board (harness.boards.Board)."""
    from harness.backends import load_board

    return load_board(board_name)


@pytest.fixture(scope="session")
def device_session(board) -> Callable[..., AbstractContextManager]:
    """`device_session(graphs)`: build firmware holding `graphs` and open a live session to it."""
    from harness.build.codegen import model_hash
    from harness.link.device import open_device
    from harness.build.firmware import build_graphs

    def open_session(graphs, **options) -> AbstractContextManager:
        build = build_graphs(list(graphs), board)
        return open_device(board, build.elf_path, expected_hash=model_hash(list(graphs)), **options)

    return open_session
