"""What the cache holds and how it is kept small: `harness cache info|clean`, and a size cap
with least-recently-used eviction after each new build.

The cache (harness.paths.cache_dir) has one folder per kind; each child of a kind folder is one
entry (a build, a generated model, a lowered graph, ...). An entry's modification time is its
last use: a cache hit touches it. Eviction removes only re-creatable kinds, oldest first, and
never an entry used in the last EVICTION_GRACE_S seconds (another run may be using it).
Measured data (latency tables, HAQ accuracy caches) and trained checkpoints go only on `clean`.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import cache_root
from harness.units import parse_size

EVICTABLE_KINDS = ("builds", "generated", "graphs", "graphs-random", "splits")
DEFAULT_CAP = "2GB"
CAP_VARIABLE = "MPQ_HARNESS_CACHE_MAX"
EVICTION_GRACE_S = 15 * 60


@dataclass(frozen=True)
class Entry:
    kind: str
    path: Path
    bytes: int
    last_used: float


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the cache, oldest use first."""
    root = root or cache_root()
    found = []
    for kind_dir in sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else ():
        for path in kind_dir.iterdir():
            if path.name.startswith(".staging-"):
                continue
            found.append(Entry(kind_dir.name, path, _size(path), _mtime(path)))
    return sorted(found, key=lambda entry: entry.last_used)


def touch(path: Path) -> None:
    """Mark an entry as just used (a cache hit)."""
    try:
        os.utime(path)
    except OSError:
        pass


def cap_bytes() -> int:
    """The size cap: $MPQ_HARNESS_CACHE_MAX (e.g. "500MB") or DEFAULT_CAP."""
    text = os.environ.get(CAP_VARIABLE, DEFAULT_CAP)
    try:
        return parse_size(text)
    except HarnessError as error:
        raise HarnessError(f"{CAP_VARIABLE}: {error}") from None


def evict_to_cap(cap: int | None = None, root: Path | None = None, now: float | None = None) -> list[Entry]:
    """Remove least-recently-used evictable entries until the cache is under `cap`; the removed."""
    cap = cap_bytes() if cap is None else cap
    now = time.time() if now is None else now
    all_entries = entries(root)
    total = sum(entry.bytes for entry in all_entries)
    removed = []
    for entry in all_entries:
        if total <= cap:
            break
        if entry.kind in EVICTABLE_KINDS and now - entry.last_used > EVICTION_GRACE_S:
            _remove(entry.path)
            total -= entry.bytes
            removed.append(entry)
    return removed


def clean(older_than_s: float | None = None, kinds: tuple[str, ...] | None = None, root: Path | None = None,
          now: float | None = None) -> list[Entry]:
    """Remove the entries (of `kinds`, unused for more than `older_than_s`); the removed."""
    now = time.time() if now is None else now
    removed = []
    for entry in entries(root):
        if kinds is not None and entry.kind not in kinds:
            continue
        if older_than_s is not None and now - entry.last_used <= older_than_s:
            continue
        _remove(entry.path)
        removed.append(entry)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


