"""Memory sizes as people write them in board files and policies: "2MB", "512kB", "128 KiB".

Units are binary and count bytes: k/kB/KB/KiB = 1024, M/MB/MiB = 1024**2, G/GB/GiB = 1024**3,
whatever the case ("512kb" is 512 KiB, not kilobits). That is how microcontroller datasheets
state flash and SRAM ("2 Mbytes of flash", "512 Kbytes of AXI SRAM"), so a budget copied from a
datasheet means what it says.
"""
from __future__ import annotations

import re

from harness.errors import HarnessError

_KIB = 1024
_UNITS = {
    "": 1, "b": 1,
    "k": _KIB, "kb": _KIB, "kib": _KIB,
    "m": _KIB**2, "mb": _KIB**2, "mib": _KIB**2,
    "g": _KIB**3, "gb": _KIB**3, "gib": _KIB**3,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_size(value: str | int) -> int:
    """Bytes in `value`: a non-negative int (bytes) or a string such as "2MB", "1.5 MiB", "4096".

    Raises HarnessError naming the value when it is negative, not whole bytes, or not a size.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise HarnessError(f"not a memory size: {value!r} (write bytes or a string like \"512kB\")")
    if isinstance(value, int):
        if value < 0:
            raise HarnessError(f"memory size must not be negative: {value}")
        return value
    match = _SIZE.match(value)
    if match is None:
        raise HarnessError(f"not a memory size: {value!r} (expected a number and a unit like \"512kB\" or \"2MB\")")
    unit = match["unit"].lower()
    if unit not in _UNITS:
        raise HarnessError(f"unknown unit {match['unit']!r} in memory size {value!r} (use B, kB, MB or GB)")
    number = match["number"]
    whole, _, fraction = number.partition(".")
    # exact arithmetic: "1.5MB" is 1.5 * 2**20 bytes with no float rounding
    numerator = int(whole + fraction) * _UNITS[unit]
    denominator = 10 ** len(fraction)
    if numerator % denominator:
        raise HarnessError(f"memory size {value!r} is not a whole number of bytes")
    return numerator // denominator


def format_size(n_bytes: int) -> str:
    """A short human form of a byte count in the same binary units: 2097152 -> "2 MB"."""
    for unit, factor in (("GB", _KIB**3), ("MB", _KIB**2), ("kB", _KIB)):
        if n_bytes >= factor:
            value = n_bytes / factor
            return f"{n_bytes // factor} {unit}" if n_bytes % factor == 0 else f"{value:.1f} {unit}"
    return f"{n_bytes} B"


def format_duration(seconds: float) -> str:
    """12 s, 3 min 05 s."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
