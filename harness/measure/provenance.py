"""Where a result came from: harness version and commit, tool versions, firmware and board file
digests, date and host. Every JSON report carries this block, so a number can be traced."""
from __future__ import annotations

import datetime
import hashlib
import platform
import shlex
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from harness import __version__
from harness.boards import Board
from harness.paths import REPO_ROOT

NOT_A_CHECKOUT = "not a checkout"
CLI_MODULE = Path(__file__).resolve().parents[1] / "cli.py"  # what `python -m harness.cli` runs


def _program(argv0: str) -> str:
    """The program's name as a person types it: `python -m harness.cli` is the `harness` command."""
    return "harness" if Path(argv0).resolve() == CLI_MODULE else Path(argv0).name


def provenance(board: Board | None = None, elf_path: Path | None = None) -> dict:
    """The provenance block of a report about `board` running `elf_path` (either may be None)."""
    block = {
        "harness": __version__,
        "command": shlex.join([_program(sys.argv[0]), *sys.argv[1:]]),
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "packages": {name: _package_version(name) for name in ("torch", "numpy", "pyocd")},
        "gcc": _gcc_version(),
    }
    if board is not None:
        from harness.backends import get_backend  # the backend's tool line names its emulator or probe tool

        status = get_backend(board.backend).tool_status()
        block["board"] = board.name
        block["board_file_sha256"] = file_digest(board.path)
        block["backend"] = board.backend
        block["backend_tools"] = status.detail if status.present else f"missing: {status.detail}"
    if elf_path is not None:
        block["firmware_sha256"] = file_digest(elf_path)
    return block


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits), or "missing"."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


@cache
def git_commit() -> str:
    """The checkout's commit (with "-dirty" when files other than results/ differ from it: an
    experiment that rewrites a results file does not change the code the commit names), or
    NOT_A_CHECKOUT."""
    if not (REPO_ROOT / ".git").exists():
        return NOT_A_CHECKOUT
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)results"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return NOT_A_CHECKOUT
    if commit.returncode != 0:
        return NOT_A_CHECKOUT
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@cache
def _gcc_version() -> str | None:
    from harness.build.firmware import toolchain_status

    status = toolchain_status()
    return status.detail if status.present else None


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
