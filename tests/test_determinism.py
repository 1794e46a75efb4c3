"""Two runs select the same random cases: the parametrized ids (which carry the seeds) and the
examples hypothesis draws are identical across processes with different string-hash seeds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240

# Replace each @given test's body by a recorder (hypothesis' documented inner_test hook), run it,
# print every example drawn.
_RECORD_EXAMPLES = """
import sys
sys.path.insert(0, "tests")
import conftest  # the suite's hypothesis profile
import test_requant, test_packing
for module in (test_requant, test_packing):
    for name in sorted(vars(module)):
        test = getattr(module, name)
        if name.startswith("test_") and hasattr(test, "hypothesis"):
            seen = []
            test.hypothesis.inner_test = lambda seen=seen, **kwargs: seen.append(
                repr(sorted((k, v) for k, v in kwargs.items() if k != "data")))
            test()
            print(name, len(seen), seen)
"""


def _run(command: list[str], hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_two_runs_collect_the_same_seeded_cases():
    """The whole suite: an id that holds anything process-specific (an object's address, a set's
    order) differs between the two collections."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "tests"]
    first, second = ([line for line in _run(command, seed).splitlines() if "::" in line] for seed in "12")
    ids = first
    assert len(ids) > 1000
    assert first == second, "\n".join(sorted(set(first) ^ set(second))[:10])
    assert any("-s" in line.rsplit("[", 1)[-1] for line in ids if "naive_loops" in line)  # seed in the id


def test_two_runs_draw_the_same_hypothesis_examples():
    command = [sys.executable, "-c", _RECORD_EXAMPLES]
    first, second = _run(command, "1"), _run(command, "2")
    lines = first.splitlines()
    assert len(lines) >= 6 and all(int(line.split()[1]) >= 50 for line in lines), first[-2000:]
    assert first == second
