"""pytest plugin (registered through the `pytest11` entry point): `pytest --board NAME`.

One option maps to one fixture, as in pytest-embedded: `--board` -> `board_name`.
"""
from __future__ import annotations

import pytest

DEFAULT_BOARD = "qemu-m7"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "mixed-precision harness")
    group.addoption("--board", default=DEFAULT_BOARD, help=f"board to run device tests on (default {DEFAULT_BOARD})")


@pytest.fixture(scope="session")
def board_name(request: pytest.FixtureRequest) -> str:
    """The board named by --board."""
    return request.config.getoption("--board")
