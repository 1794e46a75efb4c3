"""ImageFolder-style datasets (root/<class>/<image>) read with PIL, no torchvision.

Classes are the sub-folders in sorted order (label = index), images the files with a known
extension in sorted order, as torchvision.datasets.ImageFolder does. Preprocessing is the
standard ImageNet evaluation one: resize the shorter side to size / 0.875 (256 for 224, bilinear),
centre-crop size x size, RGB (or grey for 1-channel inputs), values in [0, 1]. The network input
is then the policy's: [0, 1] is mapped linearly onto its real range [low, high] ([-1, 1] is the
Inception/MobileNet convention) and quantized with its scale and zero-point.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.datasets import digits as data
from harness.errors import HarnessError
from harness.policy import InputQuantization

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class ImageFolder:
    """The files and labels of an ImageFolder tree."""

    root: Path
    classes: tuple[str, ...]
    samples: tuple[tuple[Path, int], ...]

    @classmethod
    def scan(cls, root: str | Path) -> "ImageFolder":
        root = Path(root)
        if not root.is_dir():
            raise HarnessError(f"{root}: no such dataset folder")
        classes = tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir()))
        if not classes:
            raise HarnessError(f"{root}: no class folders (expected {root}/<class>/<image>)")
        samples = tuple((path, label) for label, name in enumerate(classes)
                        for path in sorted((root / name).iterdir()) if path.suffix.lower() in IMAGE_EXTENSIONS)
        if not samples:
            raise HarnessError(f"{root}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
        return cls(root, classes, samples)

    def __len__(self) -> int:
        return len(self.samples)

    def images(self, shape: tuple[int, int, int], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(float32 images [N, H, W, C] in [0, 1], int labels [N]) of the first `limit` samples."""
        chosen = self.samples[:limit]
        return (np.stack([load_image(path, shape) for path, _ in chosen]),
                np.array([label for _, label in chosen], dtype=np.int64))


def load_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image preprocessed to `shape` (H x W x C, C = 1 or 3), values in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    if channels not in (1, 3):
        raise HarnessError(f"images can feed 1- or 3-channel inputs, not {channels}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            scale = max(height, width) / CROP_FRACTION / min(image.size)
            resized = image.resize((max(width, round(image.size[0] * scale)), max(height, round(image.size[1] * scale))),
                                   Image.BILINEAR)
    except (OSError, UnidentifiedImageError) as error:
        raise HarnessError(f"{path}: cannot read image: {error}") from None
    left, top = (resized.size[0] - width) // 2, (resized.size[1] - height) // 2
    array = np.asarray(resized.crop((left, top, left + width, top + height)), dtype=np.float32) / 255.0
    return array.reshape(height, width, channels)


def quantize_images(images: np.ndarray, quant: InputQuantization) -> np.ndarray:
    """Images in [0, 1] -> the network's integer inputs (int32): [0, 1] onto [low, high], then
    quantized exactly as harness.datasets.digits does for the digits (torch's fake-quant arithmetic)."""
    real = quant.low + images.astype(np.float32) * np.float32(quant.high - quant.low)
    return data.quantize_images(real, quant).astype(np.int32)
