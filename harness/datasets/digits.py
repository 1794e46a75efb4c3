"""scikit-learn's digits (1797 real 8x8 images): fixed split, upsampling, integer inputs.

Images are float32 NHWC in the model's real domain [-1, 1] (pixel / 8 - 1, pixels are 0..16),
bilinearly upsampled to the model's input size. `quantize_images` turns them into the integer
input tensor exactly as torch's fake-quant of the QAT model does, so the integer reference, the
firmware and the fake-quant model all see the same input values.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.policy import InputQuantization, Policy

SPLIT_SEED = 0
TEST_FRACTION = 0.25  # 450 test images: one image is 0.22 percentage points
SOURCE_SIZE = 8
PIXEL_MAX = 16


@dataclass(frozen=True)
class DigitsSplit:
    """Float images [N, H, W, 1] in [-1, 1] and int64 labels, for training and testing."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@lru_cache(maxsize=4)
def load_split(size: int = 16) -> DigitsSplit:
    """The fixed stratified train/test split, upsampled to size x size."""
    from sklearn.datasets import load_digits  # slow to import: only when the data is needed
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = digits.images.astype(np.float32) / (PIXEL_MAX / 2) - 1.0
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, digits.target.astype(np.int64), test_size=TEST_FRACTION,
        random_state=SPLIT_SEED, stratify=digits.target)
    split = DigitsSplit(upsample(train_x, size), train_y, upsample(test_x, size), test_y)
    for array in (split.train_images, split.train_labels, split.test_images, split.test_labels):
        array.setflags(write=False)  # shared through the cache
    return split


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of [N, h, w] images to [N, size, size, 1] (half-pixel centres)."""
    rows = _interpolation_matrix(images.shape[1], size)
    cols = _interpolation_matrix(images.shape[2], size)
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


def quantize_images(images: np.ndarray, quant: InputQuantization) -> np.ndarray:
    """Integer input tensors [N, H, W, C] (uint8, unpacked) for real images.

    q = clamp(z + nearbyint(x * (1/s)), 0, 2^b - 1) in float32, the arithmetic of
    torch.fake_quantize_per_tensor_affine, so the values equal what QAT saw.
    """
    inv_scale = np.float32(1.0) / np.float32(quant.scale)
    q = np.rint(images.astype(np.float32) * inv_scale) + quant.zero_point
    return np.clip(q, 0, quant.levels).astype(np.uint8)


def integer_test_set(policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The test split as the policy's integer inputs [N, H, W, C] and labels (what
    `harness measure` streams to the device)."""
    split = load_split(policy.architecture.input_shape[0])
    return quantize_images(split.test_images, policy.input), split.test_labels
