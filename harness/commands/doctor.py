"""`harness doctor`: what this machine has for building and running firmware.

The ARM toolchain, every backend's tools (QEMU, Renode, pyocd with the probes it sees), and the
serial ports, with USB ids so an ST-LINK's virtual COM port is easy to spot. Always exits 0:
it reports, it does not judge (`harness boards` says which boards can run).
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from harness.backends import backend_names, get_backend
from harness.build.firmware import toolchain_status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="report the toolchain, emulators, debug probes and serial ports",
                                   description="Report what this machine has to build and run firmware.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    tools = Table(title="tools")
    for column in ("tool", "status", "detail"):
        tools.add_column(column, no_wrap=column != "detail")
    statuses = [("firmware toolchain", toolchain_status())]
    statuses += [(f"{name} backend", get_backend(name).tool_status()) for name in backend_names()]
    for name, status in statuses:
        tools.add_row(name, "[green]ok[/green]" if status.present else "[red]missing[/red]", status.detail)
    console.print(tools)
    console.print(serial_ports_table())
    return 0


def serial_ports_table() -> Table:
    """Every serial port pyserial sees, with its USB id and serial number."""
    from serial.tools import list_ports

    table = Table(title="serial ports")
    for column in ("port", "usb id", "serial number", "description"):
        table.add_column(column)
    for port in sorted(list_ports.comports(), key=lambda port: port.device):
        usb_id = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else ""
        table.add_row(port.device, usb_id, port.serial_number or "", port.description or "")
    if not table.rows:
        table.add_row("(none)", "", "", "")
    return table
