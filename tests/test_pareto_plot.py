"""The search's Pareto table and plot from a synthetic log (no search run needed)."""
from __future__ import annotations

import csv

from harness.search.pareto import write_pareto


def _episode(episode: int, latency: float, accuracy: float, flash: int, bits: int) -> dict:
    return {"event": "episode", "episode": episode, "policy_hash": f"h{episode}", "accuracy": accuracy,
            "predicted_latency": latency, "flash_bytes": flash, "ram_bytes": 1000, "reward": accuracy,
            "latency_unit": "instructions", "layers": {"a": {"w_bits": bits, "a_bits": bits}}}


def test_pareto_csv_flags_the_front_and_the_plot_is_written(tmp_path):
    records = [_episode(0, 2.0e6, 0.90, 40_000, 8), _episode(1, 1.0e6, 0.85, 20_000, 4),
               _episode(2, 2.5e6, 0.80, 30_000, 2), _episode(3, 1.5e6, 0.95, 35_000, 8)]
    records.append({"event": "verified", "policy_hash": "h3", "episode": 3, "accuracy": 0.95,
                    "predicted_latency": 1.5e6, "measured_latency": 1.45e6, "device_accuracy": 0.94})
    csv_path, png_path = write_pareto(records, tmp_path, ["a"], chosen="h3")
    rows = list(csv.DictReader(csv_path.open()))
    assert [row["policy_hash"] for row in rows] == ["h1", "h3", "h0", "h2"]  # by predicted latency
    assert {row["policy_hash"]: row["pareto"] for row in rows} == {"h1": "1", "h3": "1", "h0": "0", "h2": "0"}
    assert next(row for row in rows if row["policy_hash"] == "h3")["measured_latency"] == "1450000"
    assert png_path.read_bytes().startswith(b"\x89PNG")
