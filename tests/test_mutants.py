"""tools/mutants.py as a test: every named mutation of the reference, the requantization, the
memory-driven sweeps and the HAQ reward makes its tests fail (bounded: a few minutes)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_mutant_is_killed(tmp_path):
    results = tmp_path / "mutants.md"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "mutants.py"), "--results", str(results)],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line for line in results.read_text().splitlines() if line.startswith("| `")]
    assert len(rows) >= 9 and all("| killed |" in row for row in rows), rows
