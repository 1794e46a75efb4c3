"""results/memory-2MB-512kB.json (docs/models.md's and docs/search.md's tables) is what tools/memory_table.py computes
now from the shipped policies and the memory model."""
import importlib.util
import json

from harness.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("memory_table", REPO_ROOT / "tools" / "memory_table.py")
memory_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_table)


def test_the_committed_memory_table_is_the_memory_models_now():
    committed = json.loads(memory_table.DEFAULT_OUT.read_text())
    assert committed["provenance"]["command"].startswith("python tools/memory_table.py")
    fresh = [memory_table.row(name) for name in memory_table.POLICIES]
    assert committed["policies"] == fresh, "stale: run `python tools/memory_table.py` and `python tools/docs.py update`"


def test_the_committed_memory_driven_policies_are_the_searchs_now():
    committed = json.loads(memory_table.DEFAULT_OUT.read_text())["memory_driven"]
    fresh = [memory_table.memory_driven_row(*case) for case in memory_table.MEMORY_DRIVEN]
    assert committed == fresh, "stale: run `python tools/memory_table.py` and `python tools/docs.py update`"
