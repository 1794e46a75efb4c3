"""Renode backend: run the ELF on Renode's STM32H7 model, headless, its USART3 on a TCP port.

The generated .resc builds the machine from `platforms/boards/nucleo_h753zi.repl` (the H743's
memory map and peripherals), adds a DWT at 0xE0001000 with the core frequency, sets the core's
PerformanceInMips to the same number of millions (Renode's DWT counts virtual time at its
frequency, and virtual time advances by PerformanceInMips million instructions a second, so
one tick is one executed instruction: docs/protocol.md kind 2, said by the board file), creates `emulation CreateServerSocketTerminal PORT "uart" false` and connects
it to `sysbus.usart3`, loads the ELF and starts. The link is `socket://127.0.0.1:PORT`.

Renode runs headless: `--console --disable-gui` (recent releases) or `--disable-xwt` (older
ones), whichever its `--help` lists. It is stopped with `quit` on its monitor (stdin), then
SIGTERM/SIGKILL of its process group if it does not exit in time.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.backends import Backend, Link, ToolStatus, register_backend
from harness.errors import HarnessError
from harness.processes import free_loopback_port, start_in_group, stop_group, stopped_reason, version_line

if TYPE_CHECKING:
    from harness.boards import Board

RENODE = "renode"
INSTALL_HINT = ("install the renode package from https://github.com/renode/renode/releases "
                "(renode_<version>_amd64.deb with apt, or the portable linux tarball) and put `renode` on PATH")
_POLL_S = 0.2


@dataclass(frozen=True)
class RenodeSettings:
    """The board file's [backend] table for `name = "renode"`."""

    platform: str = "platforms/boards/nucleo_h753zi.repl"  # relative to Renode's installation
    dwt_frequency_hz: int = 480_000_000  # the DWT peripheral's core frequency
    performance_in_mips: int = 480       # virtual instructions per second of the core, in millions
    uart: str = "sysbus.usart3"          # the UART the serial link connects to
    start_timeout_s: float = 60.0        # until the UART's server socket accepts connections
    stop_timeout_s: float = 5.0          # after `quit`, before the process group is killed
    extra_commands: tuple[str, ...] = ()  # monitor commands run before `start`

    def __post_init__(self) -> None:
        for name in ("dwt_frequency_hz", "performance_in_mips", "start_timeout_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        # Renode's DWT counts virtual time at its frequency, and virtual time advances one second
        # per performance_in_mips million instructions: a tick is one instruction only when they match
        if self.dwt_frequency_hz != self.performance_in_mips * 1_000_000:
            raise ValueError(f"dwt_frequency_hz ({self.dwt_frequency_hz}) must equal performance_in_mips * 1e6 "
                             f"({self.performance_in_mips * 1_000_000}) so that a DWT tick is one instruction")


class RenodeLink(Link):
    """A running Renode; `failure()` reports its exit and the end of its output."""

    def __init__(self, url: str, description: str, process: subprocess.Popen, output: IO[bytes]) -> None:
        super().__init__(url, description)
        self.process = process
        self._output = output

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return f"Renode exited with code {code}" + (f": {_tail(self._output)}" if _tail(self._output) else "")

    def health(self) -> str | None:
        stopped = stopped_reason(self.process.pid)
        return self.failure() or (f"Renode (pid {self.process.pid}) {stopped}" if stopped else None)


@register_backend
class RenodeBackend(Backend):
    name = "renode"
    settings_type = RenodeSettings

    @classmethod
    def tool_status(cls) -> ToolStatus:
        path = shutil.which(RENODE)
        if path is None:
            return ToolStatus(False, f"{RENODE} not found; {INSTALL_HINT}")
        version = _version(path)
        if version is None:
            return ToolStatus(False, f"{path} does not run; {INSTALL_HINT}")
        return ToolStatus(True, version)

    @classmethod
    @contextmanager
    def open_link(cls, board: Board, elf_path: Path) -> Iterator[RenodeLink]:
        settings: RenodeSettings = board.backend_settings
        executable = shutil.which(RENODE)
        if executable is None:
            raise HarnessError(f"{RENODE} not found (needed by board {board.name}); {INSTALL_HINT}")
        port = free_loopback_port()
        with tempfile.TemporaryDirectory(prefix="mpq-renode-") as scratch, \
                tempfile.TemporaryFile() as output:
            script = Path(scratch) / f"{board.name}.resc"
            script.write_text(resc_script(board.name, settings, elf_path.resolve(), port))
            command = [executable, *headless_flags(executable), str(script)]
            process = start_in_group(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
            try:
                _wait_for_port(process, output, port, settings.start_timeout_s)
                url = f"socket://127.0.0.1:{port}"
                yield RenodeLink(url, f"Renode ({board.name}, {url})", process, output)
            finally:
                _quit(process, settings.stop_timeout_s)


def resc_script(machine: str, settings: RenodeSettings, elf_path: Path, port: int) -> str:
    """The Renode script that builds the machine, wires the UART to a server socket and starts."""
    dwt = f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000 {{ frequency: {settings.dwt_frequency_hz} }}"
    lines = [
        f'mach create "{machine}"',
        f"machine LoadPlatformDescription @{settings.platform}",
        f'machine LoadPlatformDescriptionFromString "{dwt}"',
        f"sysbus.cpu PerformanceInMips {settings.performance_in_mips}",
        f'emulation CreateServerSocketTerminal {port} "uart" false',
        f"connector Connect {settings.uart} uart",
        f"sysbus LoadELF @{elf_path}",
        *settings.extra_commands,
        "start",
    ]
    return "\n".join(lines) + "\n"


@cache
def headless_flags(executable: str) -> tuple[str, ...]:
    """The options that run this Renode without a window: newer and older spellings."""
    try:
        result = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=60)
        help_text = result.stdout + result.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HarnessError(f"{executable} --help failed: {error}") from None
    return headless_flags_from_help(help_text)


def headless_flags_from_help(help_text: str) -> tuple[str, ...]:
    """`--console --disable-gui` when listed, else `--console --disable-xwt` (or without --console)."""
    console = ("--console",) if "--console" in help_text else ()
    if "--disable-gui" in help_text:
        return (*console, "--disable-gui")
    if "--disable-xwt" in help_text:
        return (*console, "--disable-xwt")
    raise HarnessError("this renode lists neither --disable-gui nor --disable-xwt in --help: cannot run it headless")


def _wait_for_port(process: subprocess.Popen, output: IO[bytes], port: int, timeout_s: float) -> None:
    """Return once the UART's server socket accepts a connection; HarnessError if Renode dies or is late."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise HarnessError(f"Renode exited with code {code} before its UART socket opened: {_tail(output)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(_POLL_S)
    raise HarnessError(f"Renode did not open its UART socket within {timeout_s:g} s: {_tail(output)}")


def _quit(process: subprocess.Popen, grace_s: float) -> None:
    """`quit` on the monitor, then stop the process group (whatever is left after grace_s)."""
    try:
        process.stdin.write(b"quit\n")
        process.stdin.close()
        process.wait(timeout=grace_s)
    except (OSError, subprocess.TimeoutExpired):
        pass
    stop_group(process, grace_s)


def _tail(output: IO[bytes], limit: int = 300) -> str:
    """The last lines Renode printed, as one line."""
    if output.closed:
        return ""
    output.flush()
    output.seek(0)
    lines = [line.strip() for line in output.read().decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]


def _version(executable: str) -> str | None:
    """"Renode v1.15.3..." or None when it does not run (its runtime starts slowly)."""
    return version_line(executable, timeout_s=60.0)
