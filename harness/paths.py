"""Where the harness keeps what it can make again: trained weights, lowered graphs, builds."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"
BOARDS_DIR = REPO_ROOT / "boards"
POLICIES_DIR = REPO_ROOT / "policies"


def cache_dir(*parts: str) -> Path:
    """A folder under $MPQ_HARNESS_CACHE (default ~/.cache/mpq-harness), created on demand."""
    root = Path(os.environ.get("MPQ_HARNESS_CACHE", Path.home() / ".cache" / "mpq-harness"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
