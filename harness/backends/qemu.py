"""QEMU backend: run the ELF in qemu-system-arm with deterministic virtual time.

`-icount shift=0` makes virtual time advance one nanosecond per executed instruction, so the
firmware's timer counts instructions, not pipeline cycles (docs/protocol.md, counter kind 1).
QEMU's first serial port (CMSDK UART0 on mps2-an500) listens on a free loopback TCP port; the
link is `socket://127.0.0.1:PORT`. QEMU holds the guest at reset until the first client
connects (`wait=on`), so that client sees everything from the first byte (the hello frame);
QEMU's own "waiting for connection" line tells that the port is bound by QEMU and nobody else.

`open_pty_link` exposes the serial port as a pseudo-terminal instead (`-serial pty`), for a
host program that only opens serial devices (MLPerf Tiny's runner, docs/mlperf-tiny.md); the
guest starts at once and what it prints before someone opens the pty is lost.
"""
from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.backends import Backend, Link, ToolStatus, register_backend
from harness.errors import HarnessError
from harness.processes import free_loopback_port, start_in_group, stop_group, stopped_reason, version_line

if TYPE_CHECKING:
    from harness.boards import Board

QEMU = "qemu-system-arm"
INSTALL_HINT = "install it with: sudo apt-get install qemu-system-arm"
_PORT_TAKEN = "Address already in use"
_LISTENING = "waiting for connection on: disconnected:tcp:127.0.0.1:{port}"
_PTY = re.compile(r"char device redirected to (/dev/\S+)")
_POLL_S = 0.02


@dataclass(frozen=True)
class QemuSettings:
    """The board file's [backend] table for `name = "qemu"`."""

    machine: str
    cpu: str
    icount_shift: int = 0
    start_timeout_s: float = 10.0   # until the serial port accepts connections
    stop_timeout_s: float = 3.0     # SIGTERM grace before SIGKILL
    port_attempts: int = 5          # free ports tried when one is taken meanwhile
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.icount_shift <= 10:
            raise ValueError(f"icount_shift must be 0..10, got {self.icount_shift}")
        for name in ("start_timeout_s", "stop_timeout_s", "port_attempts"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class QemuLink(Link):
    """A running QEMU; `failure()` reports its exit (code or signal, and QEMU's error message)."""

    def __init__(self, url: str, description: str, process: subprocess.Popen, stderr: IO[bytes]) -> None:
        super().__init__(url, description)
        self.process = process
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return _exit_reason(code, _stderr_summary(self._stderr))

    def health(self) -> str | None:
        stopped = stopped_reason(self.process.pid)
        return self.failure() or (f"QEMU (pid {self.process.pid}) {stopped}" if stopped else None)


@register_backend
class QemuBackend(Backend):
    name = "qemu"
    settings_type = QemuSettings

    @classmethod
    def tool_status(cls) -> ToolStatus:
        path = shutil.which(QEMU)
        version = _version(path) if path else None
        if version is None:
            return ToolStatus(False, f"{QEMU} not found or not runnable; {INSTALL_HINT}")
        return ToolStatus(True, version)

    @classmethod
    @contextmanager
    def open_link(cls, board: Board, elf_path: Path) -> Iterator[QemuLink]:
        settings: QemuSettings = board.backend_settings
        executable = shutil.which(QEMU)
        if executable is None:
            raise HarnessError(f"{QEMU} not found (needed by board {board.name}); {INSTALL_HINT}")
        for _ in range(settings.port_attempts):
            port = _free_port()
            command = _command(executable, settings, elf_path,
                               f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on")  # nodelay: no 40 ms Nagle wait per answer
            with tempfile.TemporaryFile() as stderr:
                process = start_in_group(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=stderr, preexec_fn=_child_setup)
                try:
                    if not _wait_for_port(process, stderr, port, settings.start_timeout_s):
                        continue  # the port was taken between picking and binding: try another
                    url = f"socket://127.0.0.1:{port}"
                    yield QemuLink(url, f"QEMU ({board.name}, {url})", process, stderr)
                    return
                finally:
                    stop_group(process, settings.stop_timeout_s)
        raise HarnessError(f"{QEMU} could not bind a free loopback port in {settings.port_attempts} attempts")


@contextmanager
def open_pty_link(board: Board, elf_path: Path) -> Iterator[QemuLink]:
    """Run `elf_path` on the QEMU `board` with its serial port on a new pseudo-terminal; the
    link's url is the pty's path (/dev/pts/N). QEMU stops on exit, error or Ctrl-C."""
    settings: QemuSettings = board.backend_settings
    executable = shutil.which(QEMU)
    if executable is None:
        raise HarnessError(f"{QEMU} not found (needed by board {board.name}); {INSTALL_HINT}")
    with tempfile.TemporaryFile() as stderr:
        process = start_in_group(_command(executable, settings, elf_path, "pty"), stdin=subprocess.DEVNULL,
                                 stdout=stderr, stderr=stderr, preexec_fn=_child_setup)
        try:
            path = _wait_for_pty(process, stderr, settings.start_timeout_s)
            yield QemuLink(path, f"QEMU ({board.name}, serial on {path})", process, stderr)
        finally:
            stop_group(process, settings.stop_timeout_s)


def _wait_for_pty(process: subprocess.Popen, stderr: IO[bytes], timeout_s: float) -> str:
    """The pty path QEMU announces ("char device redirected to /dev/pts/N")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _PTY.search(_stderr_text(stderr))
        if match:
            return match.group(1)
        code = process.poll()
        if code is not None:
            raise HarnessError(f"{QEMU} stopped before its serial pty opened: {_exit_reason(code, _stderr_summary(stderr))}")
        time.sleep(_POLL_S)
    raise HarnessError(f"{QEMU} did not announce its serial pty within {timeout_s:g} s")


def _command(executable: str, settings: QemuSettings, elf_path: Path, serial: str) -> list[str]:
    return [
        executable,
        "-machine", settings.machine,
        "-cpu", settings.cpu,
        "-icount", f"shift={settings.icount_shift}",
        "-kernel", str(elf_path),
        "-display", "none",
        "-monitor", "none",
        "-serial", serial,
        *settings.extra_args,
    ]


_free_port = free_loopback_port  # a module attribute, so tests can hand out a taken port


def _wait_for_port(process: subprocess.Popen, stderr: IO[bytes], port: int, timeout_s: float) -> bool:
    """True once QEMU listens on `port`, False if QEMU found it taken; HarnessError otherwise."""
    listening = _LISTENING.format(port=port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if listening in _stderr_text(stderr):
            return True
        if code is not None:
            message = _stderr_summary(stderr)
            if _PORT_TAKEN in message:
                return False
            raise HarnessError(f"{QEMU} stopped before its serial port opened: {_exit_reason(code, message)}")
        time.sleep(_POLL_S)
    raise HarnessError(f"{QEMU} did not open its serial port within {timeout_s:g} s")


def _exit_reason(code: int, stderr_summary: str) -> str:
    if code < 0:
        how = f"killed by signal {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
    else:
        how = f"exited with code {code}"
    return f"QEMU {how}" + (f": {stderr_summary}" if stderr_summary else "")


def _stderr_text(stderr: IO[bytes]) -> str:
    if stderr.closed:  # the link outlived its with-block
        return ""
    # pread: QEMU shares the file offset, so never move it
    return os.pread(stderr.fileno(), os.fstat(stderr.fileno()).st_size, 0).decode(errors="replace")


def _stderr_summary(stderr: IO[bytes], limit: int = 300) -> str:
    """QEMU's error message as one line: first paragraph, info/warnings and option echoes dropped."""
    paragraph = _stderr_text(stderr).strip().split("\n\n", 1)[0]  # a CPU lockup is followed by a register dump
    lines = [_OPTION_ECHO.sub("", line).strip() for line in paragraph.splitlines()]
    errors = [line for line in lines if line and not line.startswith(("info:", "warning:"))]
    return "; ".join(dict.fromkeys(errors or [line for line in lines if line.startswith("warning:")]))[:limit]


_OPTION_ECHO = re.compile(r"^qemu(-system-\w+)?: (-\w+ \S+: )?")


def _version(executable: str) -> str | None:
    """"qemu-system-arm 7.2.22", or None when it does not run."""
    line = version_line(executable)
    return None if line is None else line.replace("QEMU emulator version", QEMU).split(" (")[0]


def _child_setup() -> None:
    """In the QEMU child before exec: no core file when a firmware lockup makes QEMU abort, and on
    Linux a SIGTERM when the harness dies without cleaning up (killed), so no QEMU spins on."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# loaded in the parent: only calling into it is safe between fork and exec
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1
