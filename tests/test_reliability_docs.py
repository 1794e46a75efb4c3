"""docs/reliability.md quotes results/fault-run.json (written by tools/fault_run.py) exactly."""
from __future__ import annotations

import json

from harness.paths import REPO_ROOT

RESULTS = REPO_ROOT / "results" / "fault-run.json"
PAGE = REPO_ROOT / "docs" / "reliability.md"


def test_the_fault_run_table_matches_the_results_file_and_the_issue_bars():
    results = json.loads(RESULTS.read_text())
    rows = [line for line in PAGE.read_text().splitlines() if line.startswith("| ") and "%" in line.split("|")[1]]
    assert len(rows) == len(results["runs"])
    for row, run in zip(rows, results["runs"]):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells == [f"{run['rate'] * 100:g}%", f"{run['measured']} / {run['images']}", str(run["frames"]),
                         str(run["wrong_results_accepted"]), str(run["timing_equal"]), str(run["hangs"]),
                         str(run["remeasured"]), str(sum(run["faults_injected"].values())), f"{run['seconds']:g}"]
        assert run["wrong_results_accepted"] == 0 and run["hangs"] == 0 and run["timing_equal"] == run["measured"]
    by_rate = {run["rate"]: run for run in results["runs"]}
    assert by_rate[0.001]["measured"] == by_rate[0.001]["images"]
    assert by_rate[0.01]["measured_fraction"] >= 0.95 and by_rate[0.01]["frames"] >= 10_000
    fault_free = results["fault_free"]
    assert f"{fault_free['frames']} frames and {fault_free['seconds']:g} s" in PAGE.read_text()
