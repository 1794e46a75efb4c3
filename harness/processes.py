"""Child processes that never outlive the harness: each runs in its own process group.

A child in its own session does not get the terminal's Ctrl-C; the harness gets
KeyboardInterrupt instead and stops the whole group (the child and anything it spawned, e.g.
make's compilers) itself, then reaps it, so no process or zombie is left behind.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_in_group(command: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """Popen `command` as the leader of a new process group (see stop_group)."""
    return subprocess.Popen(list(command), start_new_session=True, **popen_kwargs)


def stop_group(process: subprocess.Popen, grace_s: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after `grace_s`, and reap the leader.
    A SIGCONT follows the SIGTERM, so a stopped (SIGSTOP) child handles it at once."""
    _signal_group(process.pid, signal.SIGTERM)
    _signal_group(process.pid, signal.SIGCONT)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)  # the leader if it ignored SIGTERM, or children it left
    process.wait()


def stopped_reason(pid: int) -> str | None:
    """"... is stopped (SIGSTOP)" when the process is in state T or t (/proc/PID/stat), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone (the caller's poll says so) or no /proc
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("T", "t"):
        return "is stopped (SIGSTOP or a debugger): it cannot answer until it gets SIGCONT"
    return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the whole group is already gone
        pass


def run_logged(command: Sequence[str], log_path: Path, timeout_s: float,
               env: Mapping[str, str] | None = None) -> int | None:
    """Run `command` with stdout and stderr into `log_path`; its exit code, or None on timeout.

    The process group is stopped on timeout and on any exception (Ctrl-C included).
    """
    with open(log_path, "wb") as log:
        process = start_in_group(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        finally:
            stop_group(process)


def free_loopback_port() -> int:
    """A loopback TCP port nobody listens on right now (an emulator binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def version_line(executable: str, timeout_s: float = 10.0) -> str | None:
    """The first line `executable --version` prints, or None when it does not run."""
    try:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else None
