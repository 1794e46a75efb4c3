"""The inputs a measurement streams: a sample folder (--data), a dataset's test split, or seeded
random inputs for a random-weights graph or a model file without data (labelled -1: there is
nothing to be right about)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.datasets.digits import integer_test_set
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.policy import Policy

DEFAULT_IMAGES = 100  # what a measurement streams without --images (a sample folder: all its images)
MEASURED_INPUTS_SEED = 0  # `harness measure` streams random_inputs(graph, n, MEASURED_INPUTS_SEED)


def random_inputs(graph: Graph, count: int, seed: int) -> np.ndarray:
    """`count` seeded random integer inputs [count, H, W, C] covering the input's whole range."""
    t = graph.tensors[graph.input]
    return np.random.default_rng(seed).integers(0, 1 << t.bits, size=(count, *t.shape)).astype(np.int32)


def measured_inputs(policy: Policy, graph: Graph, n_images: int | None,
                    data_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `n_images` (integer inputs, labels) to stream; HarnessError if there are fewer."""
    if data_dir is not None:
        from harness.datasets.samples import load_samples

        inputs, labels = load_samples(data_dir, policy.architecture.input_shape, policy.input)
        n_images = len(labels) if n_images is None else n_images
        return _first(inputs, labels, n_images)
    n_images = DEFAULT_IMAGES if n_images is None else n_images
    if graph.meta.get("random_weights") or policy.model.file is not None:
        count = max(n_images, 1)
        inputs, labels = random_inputs(graph, count, MEASURED_INPUTS_SEED), np.full(count, -1)
    else:
        inputs, labels = integer_test_set(policy)
    return _first(inputs, labels, n_images)


def _first(inputs: np.ndarray, labels: np.ndarray, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    if not 1 <= n_images <= len(labels):
        raise HarnessError(f"--images must be 1 .. {len(labels)} (the images there are), got {n_images}")
    return inputs[:n_images], labels[:n_images]
