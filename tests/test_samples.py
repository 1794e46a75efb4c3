"""Sample folders through the dataset registry (`samples:DIR` or a bare folder): labels from the
file names, pixels passed through unchanged for a [0, 255] 8-bit input of the images' size,
one-line errors for an empty folder."""
import numpy as np
import pytest
from PIL import Image

from harness.datasets import registry
from harness.datasets.imagefolder import scan_sample_folder
from harness.errors import HarnessError
from harness.paths import REPO_ROOT
from harness.policy import InputQuantization

CIFAR10 = REPO_ROOT / "tests" / "data" / "samples" / "cifar10"
PIXELS = InputQuantization(8, 0.0, 255.0)


def test_cifar10_samples_load_with_their_labels_and_raw_pixels():
    split = registry.load(str(CIFAR10), (32, 32, 3))  # a bare folder without sub-folders: samples
    inputs = registry.integer_inputs(split, split.test_images, PIXELS)
    assert split.spec == str(CIFAR10) and len(split.train_labels) == 0  # evaluation only
    assert inputs.shape == (20, 32, 32, 3) and split.test_labels[:4].tolist() == [3, 8, 8, 0]
    first = np.asarray(Image.open(CIFAR10 / "cifar10_00_3.png").convert("RGB"), dtype=np.int32)
    assert np.array_equal(inputs[0], first)  # raw 0..255 pixels, HWC, unchanged


def test_labels_and_unlabelled_names(tmp_path):
    for name in ("cifar10_07_6.png", "photo.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    files = scan_sample_folder(tmp_path)
    assert {path.name: label for path, label in files.samples} == {"cifar10_07_6.png": 6, "photo.png": -1}


def test_other_sizes_are_resized_and_an_empty_folder_is_refused(tmp_path):
    split = registry.load(f"samples:{CIFAR10}", (16, 16, 3))
    assert split.test_images.shape == (20, 16, 16, 3)
    with pytest.raises(HarnessError, match="no images"):
        registry.load(f"samples:{tmp_path}", (32, 32, 3))
