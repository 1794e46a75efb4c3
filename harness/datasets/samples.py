"""Sample folders: image files side by side, the label the last `_N` of the file name
(`cifar10_07_6.png`: class 6; a name without one is unlabelled, -1).

Preprocessing is explicit and minimal: the image must already have the model's H x W (no
resizing), it is read as RGB (3 channels) or grey (1), HWC, and its 0 .. 255 pixel values are
mapped linearly onto the policy's input range [low, high] before quantization. A policy with
range [0, 255] and 8 bits (MLPerf Tiny's ResNet-8, which takes raw pixels) therefore streams the
pixels unchanged.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harness.datasets.imagefolder import IMAGE_EXTENSIONS, quantize_images
from harness.errors import HarnessError
from harness.policy import InputQuantization

LABEL = re.compile(r"_(\d+)$")


def sample_files(folder: str | Path) -> list[Path]:
    """The image files of a sample folder, sorted by name; HarnessError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"{folder}: no such sample folder")
    files = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise HarnessError(f"{folder}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
    return files


def label_of(path: Path) -> int:
    """The class in the file name (`..._6.png` -> 6), -1 if it has none."""
    match = LABEL.search(path.stem)
    return int(match.group(1)) if match else -1


def load_pixels(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image as float32 H x W x C pixel values 0 .. 255; HarnessError on a size mismatch."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    if channels not in (1, 3):
        raise HarnessError(f"images can feed 1- or 3-channel inputs, not {channels}")
    try:
        with Image.open(path) as image:
            if image.size != (width, height):
                raise HarnessError(f"{path}: {image.size[0]}x{image.size[1]} pixels, the model takes {width}x{height}")
            pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as error:
        raise HarnessError(f"{path}: cannot read image: {error}") from None
    return pixels.reshape(height, width, channels)


def load_samples(folder: str | Path, shape: tuple[int, int, int], quant: InputQuantization,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(integer inputs [N, H, W, C], labels [N]) of the first `limit` images of a sample folder."""
    files = sample_files(folder)[:limit]
    pixels = np.stack([load_pixels(path, shape) for path in files])
    return quantize_images(pixels / np.float32(255.0), quant), np.array([label_of(path) for path in files])
