"""5,000 real MNIST images (500 per class), vendored in harness/datasets/data/ (see its README)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

MNIST_FILE = Path(__file__).resolve().parent / "data" / "mnist_5k.csv.gz"
MNIST_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST_SHAPE = (28, 28, 1)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """(float32 images [5000, 28, 28, 1] in [0, 1], int64 labels [5000])."""
    data = MNIST_FILE.read_bytes()
    if hashlib.sha256(data).hexdigest() != MNIST_SHA256:
        raise HarnessError(f"{MNIST_FILE}: not the vendored MNIST file (sha256 differs); reinstall the package")
    table = np.loadtxt(gzip.decompress(data).decode().splitlines(), delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, *MNIST_SHAPE).astype(np.float32) / 255.0
    return images, table[:, -1].astype(np.int64)
