"""Sample folders (harness/datasets/samples.py): labels from the file names, pixels passed through
unchanged for a [0, 255] 8-bit input, one-line errors for a wrong size or an empty folder."""
import numpy as np
import pytest
from PIL import Image

from harness.datasets.samples import label_of, load_samples
from harness.errors import HarnessError
from harness.paths import REPO_ROOT
from harness.policy import InputQuantization

CIFAR10 = REPO_ROOT / "tests" / "data" / "samples" / "cifar10"


def test_cifar10_samples_load_with_their_labels_and_raw_pixels():
    inputs, labels = load_samples(CIFAR10, (32, 32, 3), InputQuantization(8, 0.0, 255.0))
    assert inputs.shape == (20, 32, 32, 3) and labels[:4].tolist() == [3, 8, 8, 0]
    first = np.asarray(Image.open(CIFAR10 / "cifar10_00_3.png").convert("RGB"), dtype=np.int32)
    assert np.array_equal(inputs[0], first)  # raw 0..255 pixels, HWC, unchanged


def test_labels_and_unlabelled_names(tmp_path):
    assert label_of(tmp_path / "cifar10_07_6.png") == 6 and label_of(tmp_path / "photo.png") == -1


def test_wrong_size_and_empty_folder_are_refused(tmp_path):
    with pytest.raises(HarnessError, match="32x32 pixels, the model takes 16x16"):
        load_samples(CIFAR10, (16, 16, 3), InputQuantization(8, 0.0, 255.0), limit=1)
    with pytest.raises(HarnessError, match="no images"):
        load_samples(tmp_path, (32, 32, 3), InputQuantization(8, 0.0, 255.0))
