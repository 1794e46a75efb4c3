"""Reading a dataset file vendored in harness/datasets/data/ (see its README): its sha256 is
checked, then its rows of comma-separated integers are parsed."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

DATA_DIR = Path(__file__).resolve().parent / "data"


def vendored_table(name: str, sha256: str) -> np.ndarray:
    """The rows of the gzip-compressed CSV file `name` of DATA_DIR, as a 2-D uint8 array."""
    path = DATA_DIR / name
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HarnessError(f"{path}: not the vendored file (sha256 differs); reinstall the package")
    return np.loadtxt(gzip.decompress(data).decode().splitlines(), delimiter=",", dtype=np.uint8, ndmin=2)
