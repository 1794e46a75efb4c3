"""The integer graph of a policy whose model is a file (ONNX / TFLite): the imported float graph
lowered post-training (harness.quantize.ptq), calibrated on the images of a folder (a sample
folder, or an ImageFolder tree) or, without one, on seeded random inputs (for latency and
bit-exactness only: the ranges of random inputs are not those of real data).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from harness.frontend.importer import load_model_file
from harness.ir.graph import Graph
from harness.policy import Policy
from harness.quantize.ptq import lower_float

CALIBRATION_LIMIT = 64  # images of a calibration folder used
RANDOM_CALIBRATION_INPUTS = 4
RANDOM_CALIBRATION_SEED = 1_000_003  # not the seed of the measured random inputs


def calibration_inputs(policy: Policy, folder: Path | None) -> tuple[np.ndarray, str]:
    """(integer inputs [N, H, W, C], where they came from) to calibrate a model file's policy."""
    shape = policy.architecture.input_shape
    if folder is None:
        rng = np.random.default_rng(RANDOM_CALIBRATION_SEED)
        inputs = rng.integers(0, 1 << policy.input.bits, size=(RANDOM_CALIBRATION_INPUTS, *shape)).astype(np.int32)
        return inputs, "seeded random inputs"
    from harness.datasets import registry
    from harness.datasets.imagefolder import Preprocess

    split = registry.load(str(folder), shape, Preprocess.parse(policy.preprocess))  # a sample folder or ImageFolder
    images = np.concatenate([split.train_images, split.val_images, split.test_images])
    labels = np.concatenate([split.train_labels, split.val_labels, split.test_labels])
    chosen = registry.across_classes(labels, CALIBRATION_LIMIT)
    return registry.integer_inputs(split, images[chosen], policy.input), str(folder)


def model_file_graph(policy: Policy, calibration_dir: Path | None = None,
                     progress: Callable[[str], None] | None = None) -> Graph:
    """The policy's integer graph, its model file's float weights calibrated post-training."""
    float_graph = load_model_file(policy.model.file)
    calibration, source = calibration_inputs(policy, calibration_dir)
    if progress:
        progress(f"post-training quantization of {policy.model.label} (calibration: {source})")
    meta = {"model": policy.model.label, "model_file": str(policy.model.file), "calibration": source,
            "calibration_inputs": int(len(calibration)), "import_notes": list(float_graph.notes)}
    return lower_float(policy, float_graph, calibration, meta)
