"""pytest plugin (registered through the `pytest11` entry point): `pytest --board NAME`.

As in pytest-embedded, one option maps to one fixture: `--board` -> `board`; `--port`,
`--probe-id` and `--baud` override the board file's backend settings of that name. A board
name or an option the board cannot take is a usage error at start-up, not a failure per test.
Tests marked `@pytest.mark.device` need the board's backend (emulator, probe) and the ARM
toolchain; they are skipped, with the reason and the install hint, where those are missing; the
fixtures that need a device skip the same way in any test.

Fixtures:
- `board_name`, `board`: the board of --board (default qemu-m7), with the options applied.
- `device_session`: a function `graphs -> context manager yielding a protocol Device` that
  generates, builds (cached) and starts firmware for those graphs on the board.
- `dut`: the model of `dut_graph` running on the board (harness.measure.dut.Dut):
  `dut.infer(x) -> (output, ticks, layer_ticks)` checked against the host reference,
  `dut.perf(n)`, `dut.info`. `dut_graph` is the graph of `--policy` (default
  policies/digits-mixed.json); override the `dut_graph` fixture to test another graph.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from harness.boards import DEFAULT_BOARD

DEFAULT_POLICY = "policies/digits-mixed.json"
# option -> the backend setting it replaces
SETTING_OPTIONS = {"--port": "port", "--probe-id": "probe_id", "--baud": "baud"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "mixed-precision harness")
    group.addoption("--board", default=DEFAULT_BOARD, help=f"board to run device tests on (default {DEFAULT_BOARD})")
    group.addoption("--port", default=None, help="serial port of the board (default: the board file's, or found by USB id)")
    group.addoption("--probe-id", default=None, help="debug probe unique id (a prefix is enough) when several are attached")
    group.addoption("--baud", default=None, type=int, help="UART baud rate (must match the firmware's)")
    group.addoption("--policy", default=DEFAULT_POLICY, help=f"policy whose model the `dut` fixture runs (default {DEFAULT_POLICY})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "device: runs firmware on the --board target; skipped where its tools are missing")
    from harness.errors import HarnessError

    try:
        config.stash[_board_key] = _configured_board(config)
    except HarnessError as error:
        raise pytest.UsageError(str(error)) from None


def _configured_board(config: pytest.Config):
    """The --board board with --port / --probe-id / --baud applied; HarnessError if impossible."""
    from harness.backends import load_board
    from harness.errors import HarnessError

    board = load_board(config.getoption("--board"))
    names = {field.name for field in dataclasses.fields(board.backend_settings)}
    changes = {}
    for option, setting in SETTING_OPTIONS.items():
        value = config.getoption(option)
        if value is None:
            continue
        if setting not in names:
            raise HarnessError(f"{option}: board {board.name} ({board.backend} backend) has no {setting} setting")
        changes[setting] = value
    try:
        settings = dataclasses.replace(board.backend_settings, **changes)
    except ValueError as error:
        raise HarnessError(f"{', '.join(SETTING_OPTIONS)}: {error}") from None
    return dataclasses.replace(board, backend_settings=settings)


def _missing_device_tools(board) -> str | None:
    """Why device tests cannot run on this board here, or None."""
    from harness.backends import get_backend
    from harness.build.firmware import toolchain_status

    for status in (toolchain_status(), get_backend(board.backend).tool_status()):
        if not status.present:
            return f"board {board.name}: {status.detail}"
    return None


def skip_without_device_tools(config: pytest.Config) -> None:
    """pytest.skip with the reason when the --board's tools are missing (checked once per run); in
    strict mode a failure when tools/setup.sh installs what is missing."""
    cache = config.stash.setdefault(_missing_key, {})
    board = config.stash[_board_key]
    if board.name not in cache:
        cache[board.name] = _missing_device_tools(board)
    if cache[board.name] is not None:
        missing_tool(cache[board.name], _setup_tool_missing(board.name))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("device") is not None:
        skip_without_device_tools(item.config)


_missing_key = pytest.StashKey[dict]()
_board_key = pytest.StashKey[object]()


@pytest.fixture(scope="session")
def board_name(request: pytest.FixtureRequest) -> str:
    """The board named by --board."""
    return request.config.getoption("--board")


# -- missing tools: skip, or in strict mode (MPQ_STRICT_TOOLS=1, set by tools/test.sh and so CI)
# fail naming the tool when tools/setup.sh installs it. Hardware (no probe) and Renode stay skips.
# "unicorn" and "ray" are Python modules (the test and farm extras).
STRICT_ENV = "MPQ_STRICT_TOOLS"
SETUP_TOOLS = {  # what tools/setup.sh installs, and how
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "make": "apt-get install make",
    "qemu-system-arm": "apt-get install qemu-system-arm",
    "cc": "apt-get install gcc",
    "chromium": "apt-get install chromium",
    "unicorn": "pip install -e '.[test]'",
    "ray": "pip install -e '.[farm]'",
}
PYTHON_MODULES = ("unicorn", "ray")
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
def board(request: pytest.FixtureRequest):
    """The Board of --board (harness.boards.Board), with --port / --probe-id / --baud applied."""
    return request.config.stash[_board_key]


@pytest.fixture(scope="session")
def device_session(request: pytest.FixtureRequest, board) -> Callable[..., AbstractContextManager]:
    """`device_session(graphs)`: build firmware holding `graphs` and open a live session to it."""
    skip_without_device_tools(request.config)
    from harness.build.codegen import model_hash
    from harness.link.device import open_device
    from harness.build.firmware import build_graphs

    def open_session(graphs, **options) -> AbstractContextManager:
        build = build_graphs(list(graphs), board)
        return open_device(board, build.elf_path, expected_hash=model_hash(list(graphs)), **options)

    return open_session


@pytest.fixture(scope="session")
def dut_policy(request: pytest.FixtureRequest):
    """The Policy of --policy (a path relative to the current directory or to the repository)."""
    from pathlib import Path

    from harness.paths import REPO_ROOT
    from harness.policy import load_policy

    path = Path(request.config.getoption("--policy"))
    return load_policy(path if path.exists() or path.is_absolute() else REPO_ROOT / path)


@pytest.fixture(scope="session")
def dut_graph(request: pytest.FixtureRequest, dut_policy):
    """The integer graph the `dut` runs: --policy's, quantized (cached). Override to test another."""
    skip_without_device_tools(request.config)
    from harness.quantize.pipeline import graph_for_policy

    return graph_for_policy(dut_policy)


@pytest.fixture(scope="module")
def dut(request: pytest.FixtureRequest, board, dut_graph) -> Iterator:
    """`dut_graph` running on the board: `dut.infer(x)`, `dut.perf(n)`, `dut.info` (harness.measure.dut)."""
    skip_without_device_tools(request.config)
    from harness.measure.dut import open_dut

    policy_hash = request.getfixturevalue("dut_policy").hash if "dut_policy" in request.fixturenames else ""
    with open_dut(board, dut_graph, policy_hash) as device_under_test:
        yield device_under_test
