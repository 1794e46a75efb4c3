"""The cache's listing, clean and least-recently-used eviction, on a cache folder of its own."""
from __future__ import annotations

import json
import os

import pytest

from harness import cache
from harness.cli import main


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    return tmp_path


def _entry(root, kind: str, name: str, size: int, age_s: float, now: float) -> None:
    path = root / kind / name
    path.mkdir(parents=True)
    (path / "blob").write_bytes(b"x" * size)
    os.utime(path, (now - age_s, now - age_s))


def test_eviction_removes_oldest_evictable_entries_until_under_the_cap(root):
    now = 1_000_000.0
    _entry(root, "builds", "old", 400, 7200, now)
    _entry(root, "builds", "middle", 400, 3600, now)
    _entry(root, "builds", "recent", 400, 60, now)  # within the grace period: kept even over the cap
    _entry(root, "latency", "table", 400, 9000, now)  # measured data: never evicted
    removed = cache.evict_to_cap(cap=900, root=root, now=now)
    assert [entry.path.name for entry in removed] == ["old", "middle"]
    assert sorted(path.name for path in (root / "builds").iterdir()) == ["recent"]
    assert (root / "latency" / "table").exists()


def test_a_touched_entry_counts_as_recently_used(root):
    now = 1_000_000.0
    _entry(root, "builds", "a", 100, 7200, now)
    _entry(root, "builds", "b", 100, 3600, now)
    os.utime(root / "builds" / "a", (now, now))
    removed = cache.evict_to_cap(cap=150, root=root, now=now + cache.EVICTION_GRACE_S + 1)
    assert [entry.path.name for entry in removed] == ["b"]


def test_cli_info_json_and_clean_older_than(root, capsys):
    now = __import__("time").time()
    _entry(root, "builds", "old", 10, 10 * 86_400, now)
    _entry(root, "graphs", "new", 20, 0, now)
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kinds"] == {"builds": {"entries": 1, "bytes": 10}, "graphs": {"entries": 1, "bytes": 20}}
    assert main(["cache", "clean", "--older-than", "7"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not (root / "builds" / "old").exists() and (root / "graphs" / "new").exists()


def test_clean_refuses_unknown_kind_and_negative_age(root, capsys):
    _entry(root, "builds", "x", 1, 0, __import__("time").time())
    assert main(["cache", "clean", "--kind", "nope"]) == 2
    assert "no such kind" in capsys.readouterr().err
    assert main(["cache", "clean", "--older-than", "-1"]) == 2


def test_bad_cap_is_one_line(monkeypatch):
    from harness.errors import HarnessError

    monkeypatch.setenv("MPQ_HARNESS_CACHE_MAX", "lots")
    with pytest.raises(HarnessError, match="MPQ_HARNESS_CACHE_MAX"):
        cache.cap_bytes()
