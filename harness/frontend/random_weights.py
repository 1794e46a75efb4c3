"""`--random-weights`: a zoo network's integer graph with random float weights, for latency and
memory runs that need no trained model and no dataset; and `policy_graph`, which picks how the
commands get a policy's graph (random weights, QAT, or a user checkpoint).

Weights are He-normal (std sqrt(2 / fan_in); the classifier sqrt(1 / fan_in)), biases small
normal, all from a seeded generator; the requantization is calibrated on seeded random inputs by
harness.quantize.ptq, so every layer's outputs spread over its integer range as a trained network's
would. Predictions are meaningless: every report says so ("random_weights": true and a note).
Graphs are cached by policy hash and seed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.paths import cache_dir
from harness.policy import Policy
from harness.frontend.float_graph import FloatLayer
from harness.quantize.ptq import lower_float, weight_shape

NOTE = ("random weights: predictions and accuracy are meaningless; latency, memory and bit-exactness are real")
CALIBRATION_INPUTS = 2
CHECKPOINT_CALIBRATION_IMAGES = 32  # images of a --calibration folder used to calibrate a checkpoint
BIAS_STD = 0.05
INPUT_SEED_OFFSET = 1_000_003  # calibration inputs are not the measured inputs
# zoo models `harness train` trains on their own dataset (Architecture.dataset: digits, mnist); any other
# model needs a checkpoint or --random-weights here
TRAINED_HERE = ("digits-cnn", "lenet5-mnist", "dsnet-mnist")


def random_float_weights(policy: Policy, seed: int) -> dict[str, FloatLayer]:
    """He-normal float weights and small biases for every weighted layer of the policy's model."""
    arch = policy.architecture
    rng = np.random.default_rng(seed)
    shapes, in_channels = arch.shapes(), arch.input_channels()
    weights = {}
    for spec in arch.layers:
        if not spec.has_weights:
            continue
        shape = weight_shape(spec, in_channels[spec.name], shapes[spec.name][2])
        fan_in = int(np.prod(shape[1:])) if spec.op != "depthwise_conv2d" else int(np.prod(shape[:2]))
        gain = 1.0 if spec.name == arch.classifier else 2.0
        weights[spec.name] = FloatLayer(rng.normal(0.0, np.sqrt(gain / fan_in), size=shape),
                                        rng.normal(0.0, BIAS_STD, size=shapes[spec.name][2]))
    return weights


def random_weights_graph(policy: Policy, seed: int = 0, progress: Callable[[str], None] | None = None) -> Graph:
    """The policy's integer graph with random weights (cached); meta says random_weights."""
    directory = cache_dir("graphs-random", policy.hash) / f"seed{seed}"
    if (directory / "graph.json").is_file():
        return Graph.load(directory)
    if progress:
        progress(f"random weights (seed {seed}) and calibration of {policy.name}")
    shape = policy.architecture.input_shape
    calibration = np.random.default_rng(seed + INPUT_SEED_OFFSET).integers(
        0, 1 << policy.input.bits, size=(CALIBRATION_INPUTS, *shape)).astype(np.int32)
    meta = {"model": policy.model.zoo, "model_args": policy.model.args, "random_weights": True,
            "weights_seed": seed, "note": NOTE}
    graph = lower_float(policy, random_float_weights(policy, seed), calibration, meta)
    _save(directory, graph)
    return graph


def _save(directory: Path, graph: Graph) -> None:
    """Write to a temporary sibling, then rename: readers never see half an entry."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".staging-"))
    graph.save(staging)
    try:
        os.rename(staging, directory)
    except OSError:  # another process finished the same entry first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)


def policy_graph(policy: Policy, random_weights: bool, progress: Callable[[str], None] | None = None,
                 calibration_dir: Path | None = None) -> Graph:
    """The graph `harness build` / `measure` deploy (torch is imported only when needed):
    - random weights;
    - a model trained here (TRAINED_HERE): the QAT pipeline, from its checkpoint if the policy names one;
    - any other zoo model with `model.checkpoint`: the checkpoint lowered by harness.quantize.ptq, calibrated
      on the images of `calibration_dir` (an ImageFolder), else on seeded random inputs.
    HarnessError when the model has neither training data here nor a checkpoint."""
    if random_weights:
        return random_weights_graph(policy, progress=progress)
    if policy.model.zoo in TRAINED_HERE:
        from harness.quantize.pipeline import graph_for_policy

        return graph_for_policy(policy, progress)
    if policy.model.checkpoint is None:
        raise HarnessError(f"model {policy.model.zoo!r} has no training data in this harness (trainable: "
                           f"{', '.join(TRAINED_HERE)}): give the policy a model.checkpoint, or use --random-weights "
                           "for latency and memory")
    return _checkpoint_graph(policy, calibration_dir, progress)


def _checkpoint_graph(policy: Policy, calibration_dir: Path | None, progress: Callable[[str], None] | None) -> Graph:
    from harness.frontend.zoo_torch import checkpoint_graph, load_checkpoint

    shape = policy.architecture.input_shape
    if calibration_dir is not None:
        from harness.datasets import registry
        from harness.datasets.imagefolder import Preprocess

        split = registry.load(f"imagefolder:{calibration_dir}", shape, Preprocess.parse(policy.preprocess))
        images, labels = (split.train_images, split.train_labels) if len(split.train_labels) else \
            (split.test_images, split.test_labels)
        chosen = registry.across_classes(labels, CHECKPOINT_CALIBRATION_IMAGES)
        calibration, source = registry.integer_inputs(split, images[chosen], policy.input), str(calibration_dir)
    else:
        calibration = np.random.default_rng(INPUT_SEED_OFFSET).integers(
            0, 1 << policy.input.bits, size=(CALIBRATION_INPUTS, *shape)).astype(np.int32)
        source = "seeded random inputs"
    if progress:
        progress(f"lowering checkpoint {policy.model.checkpoint} (calibration: {source})")
    graph = checkpoint_graph(policy, load_checkpoint(policy.architecture, policy.model.checkpoint), calibration,
                             str(policy.model.checkpoint))
    graph.meta["calibration"] = source
    return graph
