"""Image files read with PIL, no torchvision: ImageFolder trees and sample folders.

- ImageFolder (root/<class>/<image>): classes are the sub-folders in sorted order (label = index),
  images the files with a known extension in sorted order, as torchvision.datasets.ImageFolder.
- A sample folder (root/<name>_<index>_<label>.<ext>, e.g. cifar10_07_6.png): the label is the
  last number of the file name (-1, unlabelled, for a name without one). An image that already
  has the model's H x W is taken as it is (no resize, no crop: the pixels stream unchanged).

Preprocessing (`Preprocess`, given in the policy or with --preprocess): resize the shorter side
to `resize` (default: the input size / 0.875, 256 for 224, bilinear), centre-crop to the model's
H x W, RGB (or BGR, or grey for 1-channel inputs), values in [0, 1]; `mean`/`std` (per channel,
in [0, 1] units) make the network's real input (x - mean) / std, otherwise [0, 1] is mapped
linearly onto the policy's input range (harness.datasets.registry.real_images).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CROP_FRACTION = 0.875
CHANNEL_ORDERS = ("rgb", "bgr")
_SAMPLE_NAME = re.compile(r".*_(\d+)$")


@dataclass(frozen=True)
class Preprocess:
    """How image files become network inputs (see the module docstring)."""

    resize: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: str = "rgb"

    @classmethod
    def parse(cls, document: dict | None, where: str = "preprocess") -> "Preprocess":
        """From a JSON object {"resize": 256, "mean": [...], "std": [...], "channels": "bgr"}."""
        document = dict(document or {})
        unknown = set(document) - {"resize", "mean", "std", "channels"}
        if unknown:
            raise HarnessError(f"{where}: unknown keys {sorted(unknown)} (known: resize, mean, std, channels)")
        resize = document.get("resize")
        if resize is not None and (not isinstance(resize, int) or resize < 1):
            raise HarnessError(f"{where}.resize: must be a positive integer, got {resize!r}")
        if document.get("channels", "rgb") not in CHANNEL_ORDERS:
            raise HarnessError(f"{where}.channels: must be one of {CHANNEL_ORDERS}, got {document['channels']!r}")
        if ("mean" in document) != ("std" in document):
            raise HarnessError(f"{where}: give both mean and std, or neither")
        vectors = {}
        for key in ("mean", "std"):
            value = document.get(key)
            if value is None:
                continue
            if not isinstance(value, list) or not value or not all(isinstance(v, (int, float)) for v in value):
                raise HarnessError(f"{where}.{key}: must be a list of numbers, one per channel")
            if key == "std" and any(v <= 0 for v in value):
                raise HarnessError(f"{where}.std: every value must be positive")
            vectors[key] = tuple(float(v) for v in value)
        return cls(resize, vectors.get("mean"), vectors.get("std"), document.get("channels", "rgb"))


@dataclass(frozen=True)
class ImageFiles:
    """Image files with labels; `num_classes` is None when labels come from file names."""

    root: Path
    samples: tuple[tuple[Path, int], ...]
    num_classes: int | None
    keep_sized: bool = False  # an image of the model's H x W is taken as it is (sample folders)

    def __len__(self) -> int:
        return len(self.samples)

    def images(self, shape: tuple[int, int, int], preprocess: Preprocess) -> np.ndarray:
        """float32 images [N, H, W, C] in [0, 1]."""
        return np.stack([load_image(path, shape, preprocess, self.keep_sized) for path, _ in self.samples])

    @property
    def labels(self) -> np.ndarray:
        return np.array([label for _, label in self.samples], dtype=np.int64)


def _folder(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"{root}: no such dataset folder")
    return root


def _images_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_EXTENSIONS)


def scan_image_folder(root: str | Path) -> ImageFiles:
    """An ImageFolder tree: one sub-folder per class."""
    root = _folder(root)
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise HarnessError(f"{root}: no class folders (expected {root}/<class>/<image>)")
    samples = tuple((path, label) for label, name in enumerate(classes) for path in _images_in(root / name))
    if not samples:
        raise HarnessError(f"{root}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
    return ImageFiles(root, samples, len(classes))


def scan_sample_folder(root: str | Path) -> ImageFiles:
    """A folder of <name>_<index>_<label>.<ext> files."""
    root = _folder(root)
    samples = []
    for path in _images_in(root):
        match = _SAMPLE_NAME.match(path.stem)
        samples.append((path, int(match.group(1)) if match else -1))
    if not samples:
        raise HarnessError(f"{root}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
    return ImageFiles(root, tuple(samples), None, keep_sized=True)


def load_image(path: Path, shape: tuple[int, int, int], preprocess: Preprocess = Preprocess(),
               keep_sized: bool = False) -> np.ndarray:
    """One image preprocessed to `shape` (H x W x C, C = 1 or 3), values in [0, 1]; with
    `keep_sized` and no explicit resize, an image of exactly H x W is only converted."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    if channels not in (1, 3):
        raise HarnessError(f"images can feed 1- or 3-channel inputs, not {channels}")
    shorter = preprocess.resize or max(height, width) / CROP_FRACTION
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if keep_sized and preprocess.resize is None and image.size == (width, height):
                image.load()
                array = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0
                return array[..., ::-1] if preprocess.channels == "bgr" and channels == 3 else array
            scale = shorter / min(image.size)
            resized = image.resize((max(width, round(image.size[0] * scale)), max(height, round(image.size[1] * scale))),
                                   Image.BILINEAR)
    except (OSError, UnidentifiedImageError) as error:
        raise HarnessError(f"{path}: cannot read image: {error}") from None
    left, top = (resized.size[0] - width) // 2, (resized.size[1] - height) // 2
    array = np.asarray(resized.crop((left, top, left + width, top + height)), dtype=np.float32) / 255.0
    array = array.reshape(height, width, channels)
    return array[..., ::-1] if preprocess.channels == "bgr" and channels == 3 else array
