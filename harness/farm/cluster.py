"""Starting or joining the Ray cluster the farm's boards live on.

A board kind is the custom resource `board:<board name>`, one unit per board: a host with two
Nucleo boards runs `ray start --address HEAD:6379 --resources '{"board:nucleo-h743": 2}'`.
Without an address, the command starts Ray in this process with `local_boards` emulated boards
(small: 2 CPUs, no dashboard), and stops it when done.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import HarnessError

LOCAL_CPUS = 2
OBJECT_STORE_BYTES = 200 * 1024 * 1024
INSTALL_HINT = "the farm needs Ray: pip install -e '.[farm]'"


def board_resource(board_name: str) -> str:
    return f"board:{board_name}"


def parse_boards(spec: str) -> dict[str, int]:
    """'qemu-m7:2,nucleo-h743:1' -> {'qemu-m7': 2, 'nucleo-h743': 1}; HarnessError when malformed."""
    from harness.backends import load_board

    boards: dict[str, int] = {}
    for part in spec.split(","):
        name, _, count = part.strip().partition(":")
        if not name or not count.isdigit() or not 1 <= int(count) <= 64:
            raise HarnessError(f"--boards: {part.strip()!r} is not NAME:COUNT with COUNT 1 .. 64 "
                               "(e.g. qemu-m7:2)")
        name = load_board(name).name
        boards[name] = boards.get(name, 0) + int(count)
    return boards


def import_ray():
    """The ray module; HarnessError with the install command when it is not installed."""
    try:
        import ray
    except ImportError:
        raise HarnessError(INSTALL_HINT) from None
    return ray


@contextmanager
def connected(address: str | None, local_boards: dict[str, int]) -> Iterator[None]:
    """Ray joined at `address` (a running cluster: `harness farm up`, `ray start --head`), or with
    no address started here with `local_boards`; shut down (left, for a cluster) afterwards."""
    ray = import_ray()
    settings = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address is None:
            ray.init(num_cpus=LOCAL_CPUS, object_store_memory=OBJECT_STORE_BYTES,
                     resources={board_resource(name): count for name, count in local_boards.items()}, **settings)
        else:
            ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as error:
        hint = "" if address is None or os.environ.get("RAY_AUTH_MODE") else \
            " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token: docs/farm.md)"
        raise HarnessError(f"--farm {address or ''}: cannot start or join Ray: {str(error).splitlines()[0]}{hint}") \
            from None
    try:
        yield
    finally:
        ray.shutdown()


def ray_command() -> str:
    """The `ray` CLI installed beside this Python."""
    command = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if command is None:
        raise HarnessError(INSTALL_HINT)
    return command


def start_head(boards: dict[str, int], port: int) -> str:
    """`ray start --head` on this host with `boards` advertised; its output (the address to join)."""
    resources = json.dumps({board_resource(name): count for name, count in boards.items()})
    result = subprocess.run([ray_command(), "start", "--head", f"--port={port}", f"--num-cpus={LOCAL_CPUS}",
                             f"--resources={resources}", "--include-dashboard=false", "--disable-usage-stats"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise HarnessError(f"ray start failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result.stdout


def stop_local() -> None:
    """`ray stop`: the Ray processes of this host (a `harness farm up`'s, or a `ray start`'s)."""
    subprocess.run([ray_command(), "stop"], capture_output=True, text=True, timeout=120, check=False)
