"""pytest plugin (registered through the `pytest11` entry point): `pytest --board NAME`.

As in pytest-embedded, one option maps to one fixture: `--board` -> `board`. Tests marked
`@pytest.mark.device` need the board's backend (emulator, probe) and the ARM toolchain; they
are skipped, with the reason and the install hint, where those are missing.

Fixtures:
- `board_name`, `board`: the board of --board (default qemu-m7).
- `device_session`: a function `graphs -> context manager yielding a protocol Device` that
  generates, builds (cached) and starts firmware for those graphs on the board.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

DEFAULT_BOARD = "qemu-m7"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "mixed-precision harness")
    group.addoption("--board", default=DEFAULT_BOARD, help=f"board to run device tests on (default {DEFAULT_BOARD})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "device: runs firmware on the --board target; skipped where its tools are missing")


def _missing_device_tools(board_name: str) -> str | None:
    """Why device tests cannot run on this board here, or None."""
    from harness.backends import get_backend
    from harness.backends import load_board
    from harness.build.firmware import toolchain_status

    board = load_board(board_name)
    for status in (toolchain_status(), get_backend(board.backend).tool_status()):
        if not status.present:
            return f"board {board_name}: {status.detail}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("device") is None:
        return
    cache = item.config.stash.setdefault(_missing_key, {})
    name = item.config.getoption("--board")
    if name not in cache:
        cache[name] = _missing_device_tools(name)
    if cache[name] is not None:
        missing_tool(cache[name], _setup_tool_missing(name))


_missing_key = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def board_name(request: pytest.FixtureRequest) -> str:
    """The board named by --board."""
    return request.config.getoption("--board")


# -- missing tools: skip, or in strict mode (MPQ_STRICT_TOOLS=1, set by tools/test.sh and so CI)
# fail naming the tool when tools/setup.sh installs it. Hardware (no probe) and Renode stay skips.
STRICT_ENV = "MPQ_STRICT_TOOLS"
SETUP_TOOLS = {  # what tools/setup.sh installs, and how; "unicorn" is a Python module
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "make": "apt-get install make",
    "qemu-system-arm": "apt-get install qemu-system-arm",
    "cc": "apt-get install gcc",
    "unicorn": "pip install -e '.[test]'",
}
PYTHON_MODULES = ("unicorn",)
BACKEND_TOOLS = {"qemu": "qemu-system-arm"}  # backends whose tool tools/setup.sh installs


def missing_tool(reason: str, tool: str | None) -> None:
    """pytest.skip for `reason`; in strict mode pytest.fail instead when `tool` is in SETUP_TOOLS."""
    import os

    if tool in SETUP_TOOLS and os.environ.get(STRICT_ENV) == "1":
        pytest.fail(f"missing tool {tool}: {reason} ({STRICT_ENV}=1: tools/setup.sh installs it)", pytrace=False)
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    """Skip (strict mode: fail) the calling test unless every tool in `names` is installed.
    Tests may also say `@pytest.mark.tools(NAME, ...)` (tests/conftest.py applies it)."""
    import importlib.util
    import shutil

    for name in names:
        present = importlib.util.find_spec(name) is not None if name in PYTHON_MODULES else shutil.which(name)
        if not present:
            missing_tool(f"{name} is not installed ({SETUP_TOOLS.get(name, 'see README')})", name)


def _setup_tool_missing(board_name: str) -> str | None:
    """The tool tools/setup.sh installs that keeps the board's device tests from running here,
    or None when what is missing is not one (a debug probe, Renode)."""
    import shutil

    from harness.backends import load_board
    from harness.build.firmware import GCC, toolchain_status

    if not toolchain_status().present:
        return next((tool for tool in (GCC, "make") if not shutil.which(tool)), GCC)
    return BACKEND_TOOLS.get(load_board(board_name).backend)


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
