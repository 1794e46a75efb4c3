"""Where the harness keeps what it can make again: trained weights, lowered graphs, builds."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"
BOARDS_DIR = REPO_ROOT / "boards"
POLICIES_DIR = REPO_ROOT / "policies"


def cache_root() -> Path:
    """$MPQ_HARNESS_CACHE, default ~/.cache/mpq-harness (harness.cache manages what is in it)."""
    return Path(os.environ.get("MPQ_HARNESS_CACHE", Path.home() / ".cache" / "mpq-harness"))


def cache_dir(*parts: str) -> Path:
    """A folder under cache_root(), created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
