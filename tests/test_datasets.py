"""The dataset registry: specs, the fixed stratified split and its cache, the vendored MNIST and
digits, preprocessing, class-balanced calibration, and one-line refusals of data that cannot feed
a model."""
import gzip
import hashlib
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import zoo
from harness.datasets import registry
from harness.datasets.imagefolder import Preprocess, load_image
from harness.datasets.measured import measured_inputs
from harness.errors import HarnessError
from harness.paths import POLICIES_DIR
from harness.policy import load_policy
from harness.quantize.lower import structural_graph

SAMPLES = Path(__file__).parent / "data" / "samples" / "cifar10"


def _check_split(split: registry.Split, n: int, classes: int) -> None:
    parts = (split.train_labels, split.val_labels, split.test_labels)
    assert sum(len(p) for p in parts) == n
    assert len(split.test_labels) == math.ceil(registry.TEST_FRACTION * n)  # sklearn rounds the test part up
    assert len(split.val_labels) == round(registry.VAL_FRACTION * n)
    overall = np.bincount(np.concatenate(parts), minlength=classes) / n
    for labels in parts:  # stratified: every part has the classes in the overall proportions
        share = np.bincount(labels, minlength=classes) / len(labels)
        assert np.abs(share - overall).max() < 0.02


def test_mnist_is_the_vendored_5k_split_stratified():
    split = registry.load("mnist", (28, 28, 1))
    _check_split(split, 5000, 10)
    assert (len(split.train_labels), len(split.val_labels), len(split.test_labels)) == (3250, 500, 1250)
    assert split.test_images.shape == (1250, 28, 28, 1) and split.test_images.dtype == np.float32
    assert split.test_images.min() == 0.0 and split.test_images.max() == 1.0


def test_digits_split_is_fixed_and_keeps_the_old_test_set():
    """The test part is sklearn's train_test_split(test_size=0.25, random_state=0, stratified):
    the same 450 images the harness tested on before the registry."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    split = registry.load("digits", (16, 16, 1))
    _check_split(split, 1797, 10)
    target = load_digits().target
    _, test = train_test_split(np.arange(len(target)), test_size=0.25, random_state=0, stratify=target)
    assert np.array_equal(split.test_labels, target[test])
    again = registry.load.__wrapped__("digits", (16, 16, 1))
    assert np.array_equal(again.train_images, split.train_images)


def test_vendored_digits_are_scikit_learn_s():
    from sklearn.datasets import load_digits

    from harness.datasets.digits import DIGITS_FILE, DIGITS_SHA256
    from harness.datasets.vendored import vendored_table

    table = vendored_table(DIGITS_FILE, DIGITS_SHA256)
    digits = load_digits()
    assert np.array_equal(table[:, :-1].reshape(-1, 8, 8), digits.images)
    assert np.array_equal(table[:, -1], digits.target)


def test_a_vendored_file_that_was_changed_is_refused(tmp_path, monkeypatch):
    from harness.datasets import vendored

    (tmp_path / "table.csv.gz").write_bytes(gzip.compress(b"1,2,3\n"))
    monkeypatch.setattr(vendored, "DATA_DIR", tmp_path)
    digest = hashlib.sha256((tmp_path / "table.csv.gz").read_bytes()).hexdigest()
    assert vendored.vendored_table("table.csv.gz", digest).tolist() == [[1, 2, 3]]
    with pytest.raises(HarnessError, match=r"table.csv.gz: not the vendored file \(sha256 differs\)"):
        vendored.vendored_table("table.csv.gz", "0" * 64)


def test_the_split_is_drawn_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """A cold cache draws the split with scikit-learn and keeps it; a warm one gives the same
    indices without importing scikit-learn (seconds)."""
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    labels = np.repeat(np.arange(4), 10)
    drawn = registry.split_indices(labels)
    assert len(list((tmp_path / "splits").iterdir())) == 1
    assert all(np.array_equal(a, b) for a, b in zip(registry._draw_split(labels, registry.SPLIT_SEED), drawn))
    draw = registry._draw_split
    monkeypatch.setattr(registry, "_draw_split", lambda *_: pytest.fail("drew the split again"))
    assert all(np.array_equal(a, b) for a, b in zip(registry.split_indices(labels), drawn))
    monkeypatch.setattr(registry, "_draw_split", draw)
    registry.split_indices(np.repeat(np.arange(4), 11))  # other labels: another entry
    assert len(list((tmp_path / "splits").iterdir())) == 2
    script = ("import sys; from harness.datasets import registry; registry.load('digits', (16, 16, 1)); "
              "import harness.commands.measure; print(sorted({'sklearn', 'pytest'} & set(sys.modules)))")
    env = {**os.environ, "MPQ_HARNESS_CACHE": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "['sklearn']"  # the digits split was not cached yet
    warm = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == "[]"


def test_sample_folder_labels_come_from_file_names_and_are_all_test():
    split = registry.load(f"samples:{SAMPLES}", (32, 32, 3))
    assert len(split.train_labels) == 0 and len(split.test_labels) == 20
    assert split.test_labels[:3].tolist() == [3, 8, 8]  # cifar10_00_3, cifar10_01_8, cifar10_02_8
    assert registry.describe(str(SAMPLES)).max_label == 9  # a bare folder: sample folder by its files


def test_image_folder_split_and_balanced_calibration(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        for k in range(10):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / name / f"{k}.png")
    split = registry.load(f"imagefolder:{tmp_path}", (8, 8, 3))
    assert sorted(np.bincount(split.test_labels)) == [2, 3, 3] or sorted(np.bincount(split.test_labels)) == [2, 2, 3]
    chosen = registry.across_classes(split.train_labels, 6)
    assert np.bincount(split.train_labels[chosen]).tolist() == [2, 2, 2]  # not the first 6 of one class


def test_preprocess_mean_std_and_channel_order(tmp_path):
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    Image.fromarray(pixels).save(tmp_path / "red.png")
    rgb = load_image(tmp_path / "red.png", (8, 8, 3), Preprocess(resize=8))
    bgr = load_image(tmp_path / "red.png", (8, 8, 3), Preprocess(resize=8, channels="bgr"))
    assert rgb[0, 0].tolist() == [1, 0, 0] and bgr[0, 0].tolist() == [0, 0, 1]
    normalized = registry.real_images(rgb, Preprocess(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)))
    assert normalized[0, 0].tolist() == [2.0, -1.0, -0.5]
    with pytest.raises(HarnessError, match="give both mean and std"):
        Preprocess.parse({"mean": [0.5]})


@pytest.mark.parametrize("spec,model,message", [
    ("digits", "mlperf_ic_resnet8", "--data digits: 1-channel images, but model mlperf_ic_resnet8 takes 32x32x3 inputs"),
    ("mnist", "digits-cnn", "--data mnist: 28x28 images, but model digits-cnn takes 16x16x1 inputs"),
    ("digits", "mlperf_kws_dscnn", "--data digits: 10 classes, but model mlperf_kws_dscnn has 12 outputs"),
    ("nonsense", "digits-cnn", "--data 'nonsense': unknown dataset"),
])
def test_data_that_cannot_feed_the_model_is_refused(spec, model, message):
    with pytest.raises(HarnessError, match=re.escape(message)):
        registry.check_fits(spec, zoo.build(model))


def test_rgb_samples_feed_a_grey_model():
    registry.check_fits(f"samples:{SAMPLES}", zoo.build("lenet5-mnist"))  # converted to grey; labels < 10


def test_labels_beyond_the_classifier_are_refused():
    with pytest.raises(HarnessError, match="label 9 in a file name, but model digits-cnn has 5 outputs"):
        registry.check_fits(f"samples:{SAMPLES}", zoo.build("digits-cnn", {"num_classes": 5}))


def test_measure_refuses_a_three_channel_model_with_digits_in_one_line():
    """Before any quantizing or building: exit 2, one line naming the mismatch."""
    policy = POLICIES_DIR / "mobilenet_v1-0.75-224-2MB-512kB.json"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "measure", str(policy), "--data", "digits",
                           "--board", "qemu-m7", "--random-weights"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --data digits: 1-channel images, but model mobilenet_v1_0.75_224 "
                                   "takes 224x224x3 inputs")


def test_measure_streams_the_policys_own_dataset():
    policy = load_policy(POLICIES_DIR / "lenet5-mnist-int8.json")
    inputs, labels = measured_inputs(policy, structural_graph(policy), 50)
    split = registry.load("mnist", (28, 28, 1))
    assert inputs.shape == (50, 28, 28, 1) and np.array_equal(labels, split.test_labels[:50])
    assert np.array_equal(inputs, registry.integer_inputs(split, split.test_images[:50], policy.input))
