"""5,000 real MNIST images (500 per class), vendored in harness/datasets/data/ (see its README)."""
from __future__ import annotations

import numpy as np

from harness.datasets.vendored import vendored_table

MNIST_FILE = "mnist_5k.csv.gz"
MNIST_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST_SHAPE = (28, 28, 1)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """(float32 images [5000, 28, 28, 1] in [0, 1], int64 labels [5000])."""
    table = vendored_table(MNIST_FILE, MNIST_SHA256)
    images = table[:, :-1].reshape(-1, *MNIST_SHAPE).astype(np.float32) / 255.0
    return images, table[:, -1].astype(np.int64)
