"""The datasets, by spec (`--data SPEC`, or a policy's "data"), with one fixed split each.

Specs:
- `digits`: the 1797 8x8 UCI digits scikit-learn ships (vendored, harness/datasets/data/),
  upsampled to the model's H x W (1 channel, 10 classes);
- `mnist`: 5,000 real MNIST images, 28 x 28 x 1, 10 classes (vendored, harness/datasets/data/);
- `imagefolder:DIR`: DIR/<class>/<image>, one class per sub-folder, preprocessed to the model's input;
- `samples:DIR`: DIR/<name>_<index>_<label>.<ext> (the 20-image CIFAR-10 and ImageNet samples),
  labels from the file names (-1 without one); evaluation only (every image is in the test part);
  images of the model's H x W are taken unchanged;
- a bare existing DIR: `imagefolder:DIR` when it has sub-folders, else `samples:DIR`.

Images are float32 NHWC in [0, 1]; `real_images` maps them onto the network's real input,
`integer_inputs` quantizes them exactly as torch's fake-quant of the QAT model does, so the
integer reference, the firmware and the fake-quant model all see the same input values.

The split is fixed, seeded and stratified: `test` (TEST_FRACTION of each class; for digits the
same 450 images as before the registry), then `val` (VAL_FRACTION of the whole) from the rest,
`train` the remainder; each part holds at least one image of every class. A folder with fewer
than MIN_PER_CLASS images in some class is all test (evaluation only). scikit-learn draws the
split; the indices are kept in the cache ("splits"), so a warm run does not spend the seconds
importing it takes.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from harness.cache import touch
from harness.datasets.imagefolder import Preprocess
from harness.errors import HarnessError
from harness.files import write_atomic
from harness.paths import cache_dir
from harness.policy import InputQuantization

SPLIT_SEED = 0
TEST_FRACTION = 0.25  # digits: 450 test images (one is 0.22 points); mnist: 1250
VAL_FRACTION = 0.1
MIN_PER_CLASS = 3
FLOAT_TRAINING_RANGE = (-1.0, 1.0)  # the real input range float models are trained on here
NAMED = ("digits", "mnist")
PREFIXED = ("imagefolder", "samples")


@dataclass(frozen=True)
class DataInfo:
    """What a dataset can feed, known without reading its images: `channels` (None: 1 or 3 by
    conversion), `size` (H, W; None: resized to the model's), `num_classes` (None: labels from
    file names, each must be below the model's classes)."""

    spec: str
    channels: int | None
    size: tuple[int, int] | None
    num_classes: int | None
    max_label: int | None = None  # the largest label in the file names (when num_classes is None)


@dataclass(frozen=True)
class Split:
    """Images [N, H, W, C] in [0, 1] and int64 labels of the three parts."""

    spec: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    preprocess: Preprocess = field(default=Preprocess())

    def real(self, images: np.ndarray, quant: InputQuantization | None = None) -> np.ndarray:
        """The network's real inputs for images of this split (see `real_images`)."""
        return real_images(images, self.preprocess, quant)


def _parse(spec: str) -> tuple[str, Path | None]:
    kind, _, rest = spec.partition(":")
    if kind in NAMED and not rest:
        return kind, None
    if kind in PREFIXED and rest:
        return kind, Path(rest)
    if Path(spec).is_dir():
        return ("imagefolder" if any(entry.is_dir() for entry in Path(spec).iterdir()) else "samples"), Path(spec)
    raise HarnessError(f"--data {spec!r}: unknown dataset (known: {', '.join(NAMED)}, "
                       f"{', '.join(f'{p}:DIR' for p in PREFIXED)})")


def describe(spec: str) -> DataInfo:
    """The dataset's channels, size and classes (reads folder names, no images)."""
    from harness.datasets.imagefolder import scan_image_folder, scan_sample_folder

    kind, root = _parse(spec)
    if kind == "digits":
        return DataInfo(spec, 1, None, 10)
    if kind == "mnist":
        return DataInfo(spec, 1, (28, 28), 10)
    files = scan_image_folder(root) if kind == "imagefolder" else scan_sample_folder(root)
    return DataInfo(spec, None, None, files.num_classes, int(files.labels.max()))


def check_fits(spec: str, architecture) -> DataInfo:
    """HarnessError (one line naming the mismatch) if the dataset cannot feed the model."""
    info = describe(spec)
    h, w, c = architecture.input_shape
    model = f"model {architecture.name} takes {h}x{w}x{c} inputs"
    if info.channels is not None and info.channels != c:
        raise HarnessError(f"--data {spec}: {info.channels}-channel images, but {model}")
    if info.channels is None and c not in (1, 3):
        raise HarnessError(f"--data {spec}: images give 1 or 3 channels, but {model}")
    if info.size is not None and info.size != (h, w):
        raise HarnessError(f"--data {spec}: {info.size[0]}x{info.size[1]} images, but {model}")
    classes = architecture.num_classes
    if info.num_classes is not None and info.num_classes != classes:
        raise HarnessError(f"--data {spec}: {info.num_classes} classes, but model {architecture.name} "
                           f"has {classes} outputs")
    if info.num_classes is None and info.max_label >= classes:
        raise HarnessError(f"--data {spec}: label {info.max_label} in a file name, but model {architecture.name} "
                           f"has {classes} outputs")
    return info


@lru_cache(maxsize=8)
def load(spec: str, shape: tuple[int, int, int], preprocess: Preprocess = Preprocess()) -> Split:
    """The fixed split of dataset `spec` for a model input of `shape` (H, W, C)."""
    from harness.datasets.imagefolder import scan_image_folder, scan_sample_folder

    kind, root = _parse(spec)
    evaluation_only = kind == "samples"
    if kind == "digits":
        from harness.datasets.digits import load_digits

        images, labels = load_digits(shape[0], shape[1])
    elif kind == "mnist":
        from harness.datasets.mnist import load_mnist

        images, labels = load_mnist()
    else:
        files = scan_image_folder(root) if kind == "imagefolder" else scan_sample_folder(root)
        images, labels = files.images(shape, preprocess), files.labels
    if images.shape[1:] != tuple(shape):
        raise HarnessError(f"--data {spec}: images are {'x'.join(map(str, images.shape[1:]))}, "
                           f"the model takes {'x'.join(map(str, shape))}")
    counts = None if evaluation_only else np.bincount(labels)  # sample labels may be -1
    if evaluation_only or counts[counts > 0].min() < MIN_PER_CLASS:
        train, val, test = np.array([], int), np.array([], int), np.arange(len(labels))
    else:
        train, val, test = split_indices(labels)
    parts = [array[index] for index in (train, val, test) for array in (images, labels)]
    for array in parts:
        array.setflags(write=False)  # shared through the cache
    return Split(spec, *parts, preprocess=preprocess)


def model_split(architecture, data: str | None, preprocess: dict | None = None) -> Split:
    """The split of `data` (default: the model's own dataset) for the model, checked to fit it."""
    data = data or architecture.dataset
    if data is None:
        raise HarnessError(f"model {architecture.name} has no dataset of its own here: give --data")
    check_fits(data, architecture)
    return load(data, architecture.input_shape, Preprocess.parse(preprocess))


def integer_test_set(policy) -> tuple[Split, np.ndarray, np.ndarray]:
    """The policy's split, its test part as the policy's integer inputs [N, H, W, C] (what
    `harness measure` streams), and the test labels."""
    split = model_split(policy.architecture, policy.data, policy.preprocess)
    return split, integer_inputs(split, split.test_images, policy.input), split.test_labels


def split_indices(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, val, test) indices: test first, then val from the rest. Drawn once per
    label array, seed and scikit-learn version, then read from the cache."""
    labels = np.asarray(labels, dtype=np.int64)
    key = hashlib.sha256(labels.tobytes() + f"{seed} {TEST_FRACTION} {VAL_FRACTION} "
                         f"{version('scikit-learn')}".encode()).hexdigest()[:24]
    path = cache_dir("splits") / f"{key}.npz"
    if path.is_file():
        touch(path)
        with np.load(path) as kept:
            return kept["train"], kept["val"], kept["test"]
    train, val, test = _draw_split(labels, seed)
    buffer = io.BytesIO()
    np.savez(buffer, train=train, val=val, test=test)
    write_atomic(path, buffer.getvalue())
    return train, val, test


def _draw_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # seconds to import: only on a cache miss

    everything, n_classes = np.arange(len(labels)), len(np.unique(labels))
    n_test = max(int(np.ceil(TEST_FRACTION * len(labels))), n_classes)  # at least one of each class
    rest, test = train_test_split(everything, test_size=n_test, random_state=seed, stratify=labels)
    train, val = train_test_split(rest, test_size=max(round(VAL_FRACTION * len(labels)), n_classes),
                                  random_state=seed, stratify=labels[rest])
    return np.sort(train), np.sort(val), test


def real_images(images: np.ndarray, preprocess: Preprocess = Preprocess(),
                quant: InputQuantization | None = None) -> np.ndarray:
    """Images in [0, 1] -> the network's real inputs: (x - mean) / std when the preprocessing
    gives them, else [0, 1] linearly onto the input range (the policy's, or FLOAT_TRAINING_RANGE)."""
    x = images.astype(np.float32)
    if preprocess.mean is not None:
        return (x - np.float32(preprocess.mean)) / np.float32(preprocess.std)
    low, high = (quant.low, quant.high) if quant is not None else FLOAT_TRAINING_RANGE
    return np.float32(low) + x * np.float32(high - low)


def quantize_real(real: np.ndarray, quant: InputQuantization) -> np.ndarray:
    """Integer inputs (int32) of real inputs: q = clamp(z + nearbyint(x * (1/s)), 0, 2^b - 1) in
    float32, the arithmetic of torch.fake_quantize_per_tensor_affine."""
    inv_scale = np.float32(1.0) / np.float32(quant.scale)
    q = np.rint(real.astype(np.float32) * inv_scale) + quant.zero_point
    return np.clip(q, 0, quant.levels).astype(np.int32)


def integer_inputs(split: Split, images: np.ndarray, quant: InputQuantization) -> np.ndarray:
    """The integer input tensors [N, H, W, C] of images of `split`."""
    return quantize_real(split.real(images, quant), quant)


def across_classes(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` samples taken class by class in turn (the first of every class,
    then the second, ...): a calibration set that sees every class."""
    rank = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank[members] = np.arange(len(members))
    order = np.lexsort((labels, rank))
    return np.sort(order[:count])
