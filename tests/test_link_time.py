"""harness.measure.link_time: the link's host wall time against the device's compute, as measure reports it."""
import dataclasses

import pytest

from harness.commands.measure import format_link_time
from harness.link.protocol import CounterKind, DeviceInfo
from harness.measure.link_time import link_time, spent_since

QEMU_INFO = DeviceInfo(3, 1, CounterKind.VIRTUAL_TIME, 25_000_000, 25_000_000, 4096, 1024, 4096, "h" * 16, "", "qemu-m7")


def test_link_is_load_and_read_and_compute_is_the_counter_in_seconds():
    spent = spent_since({"LOAD": 1.0, "READ": 0.5}, {"LOAD": 3.0, "READ": 0.75, "RUN": 0.25, "INFO": 0.1})
    assert spent == {"LOAD": 2.0, "READ": 0.25, "RUN": 0.25, "INFO": 0.1}
    report = link_time(spent, 2 * 500_000, QEMU_INFO, images=2, bytes_loaded=10_000)  # 500k ticks = 20 ms each
    assert report["link_s"] == 2.25 and report["run_round_trips_s"] == 0.25
    assert report["device_compute_s"] == pytest.approx(0.04) and report["device_compute_per_run_s"] == pytest.approx(0.02)
    assert report["link_over_compute"] == pytest.approx(2.25 / 0.04) and report["load_bytes_per_s"] == 5000
    assert "virtual time" in report["meaning"]
    board = link_time(spent, 480_000_000, dataclasses.replace(QEMU_INFO, counter_kind=CounterKind.CORE_CYCLES,
                                                              counter_hz=480_000_000), 1, 0)
    assert board["device_compute_s"] == 1.0 and board["load_bytes_per_s"] == 0.0
    assert "real time on the board" in board["meaning"]


def test_the_summary_prints_both_sides():
    rows = dict(format_link_time(link_time({"LOAD": 2.0, "READ": 0.5}, 500_000, QEMU_INFO, 1, 4000)))
    assert rows["link per run (host wall)"].startswith("2500.0 ms (LOAD 2.00 s, READ 0.50 s in all, LOAD 2.0 kB/s)")
    assert rows["compute per run (device counter)"].startswith("20.00 ms")
    assert format_link_time(None) == []
