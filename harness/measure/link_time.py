"""Where a measure run's time went: host wall time on the link (LOAD, FILL and READ round trips)
against the compute, both as the device's counter says it (real time on a board's cycle counter,
virtual time in an emulator) and as the host waited for RUN/PERF answers."""
from __future__ import annotations

from harness.link.protocol import CounterKind, DeviceInfo

LINK_COMMANDS = ("LOAD", "FILL", "READ")  # moving inputs and outputs; RUN/PERF answers wait for compute
TIMED_COMMANDS = ("RUN", "PERF")


def spent_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Host wall seconds per command between two snapshots of Device.seconds."""
    return {name: after[name] - before.get(name, 0.0) for name in after}


def link_time(spent: dict[str, float], ticks: int, info: DeviceInfo, images: int, bytes_loaded: int) -> dict:
    """The report's "link_time": host wall seconds on the link vs the device's compute (`ticks`
    summed over the measured runs, in seconds of its counter), per run and in total."""
    link_s = sum(spent.get(name, 0.0) for name in LINK_COMMANDS)
    compute_s = ticks / info.counter_hz
    emulated = info.counter_kind != CounterKind.CORE_CYCLES
    return {
        "load_s": spent.get("LOAD", 0.0), "fill_s": spent.get("FILL", 0.0), "read_s": spent.get("READ", 0.0),
        "link_s": link_s,
        "run_round_trips_s": sum(spent.get(name, 0.0) for name in TIMED_COMMANDS),
        "device_compute_s": compute_s,
        "link_per_run_s": link_s / images, "device_compute_per_run_s": compute_s / images,
        "link_over_compute": link_s / compute_s if compute_s else None,
        "bytes_loaded": bytes_loaded,
        "load_bytes_per_s": bytes_loaded / spent["LOAD"] if spent.get("LOAD") else None,
        "meaning": "link: host wall time of the LOAD, FILL and READ requests (retries included); device compute: the "
                   "ticks of the timed runs in seconds of the device's counter"
                   + (" (emulator virtual time: 1 ns per instruction, not wall time; run_round_trips_s is the host's "
                      "wall time waiting for RUN/PERF answers)" if emulated else " (core cycles: real time on the board)"),
    }
