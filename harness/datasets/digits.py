"""The UCI handwritten digits as scikit-learn ships them (1797 real 8x8 images, pixels 0..16),
vendored in harness/datasets/data/ (see its README), bilinearly upsampled to the model's input size.
Read without importing scikit-learn, which takes seconds."""
from __future__ import annotations

import numpy as np

from harness.datasets.vendored import vendored_table

DIGITS_FILE = "digits.csv.gz"
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SOURCE_SIZE = 8
PIXEL_MAX = 16


def load_digits(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32 images [1797, height, width, 1] in [0, 1], int64 labels)."""
    table = vendored_table(DIGITS_FILE, DIGITS_SHA256)
    pixels = table[:, :-1].reshape(-1, SOURCE_SIZE, SOURCE_SIZE).astype(np.float32) / PIXEL_MAX
    return upsample(pixels, height, width), table[:, -1].astype(np.int64)


def upsample(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of [N, h, w] images to [N, height, width, 1] (half-pixel centres)."""
    rows = _interpolation_matrix(images.shape[1], height)
    cols = _interpolation_matrix(images.shape[2], width)
    resized = np.einsum("yh,nhw,xw->nyx", rows, images.astype(np.float64), cols)
    return resized.astype(np.float32)[..., None]


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of 1-D linear interpolation, edges clamped."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = centres - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - frac
    matrix[np.arange(n_out), high] += frac
    return matrix
