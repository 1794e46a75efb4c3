"""The inputs a measurement streams: the test part of the policy's dataset (harness.datasets.registry:
its own, or --data SPEC, e.g. a sample folder), or seeded random inputs for a random-weights graph
or a model file without data (labelled -1: there is nothing to be right about)."""
from __future__ import annotations

import numpy as np

from harness.datasets.registry import integer_test_set
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.policy import Policy

DEFAULT_IMAGES = 100  # what a measurement streams without --images (at most the whole test part)
MEASURED_INPUTS_SEED = 0  # `harness measure` streams random_inputs(graph, n, MEASURED_INPUTS_SEED)


def random_inputs(graph: Graph, count: int, seed: int) -> np.ndarray:
    """`count` seeded random integer inputs [count, H, W, C] covering the input's whole range."""
    t = graph.tensors[graph.input]
    return np.random.default_rng(seed).integers(0, 1 << t.bits, size=(count, *t.shape)).astype(np.int32)


def measured_inputs(policy: Policy, graph: Graph, n_images: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `n_images` (integer inputs, labels) to stream (None: DEFAULT_IMAGES, or all the
    test part holds if fewer); HarnessError if there are fewer."""
    if graph.meta.get("random_weights") or (policy.model.file is not None and policy.data is None):
        count = max(DEFAULT_IMAGES if n_images is None else n_images, 1)
        inputs, labels = random_inputs(graph, count, MEASURED_INPUTS_SEED), np.full(count, -1)
    else:
        _, inputs, labels = integer_test_set(policy)
        n_images = min(DEFAULT_IMAGES, len(labels)) if n_images is None else n_images
    n_images = len(labels) if n_images is None else n_images
    if not 1 <= n_images <= len(labels):
        raise HarnessError(f"--images must be 1 .. {len(labels)} (the images there are), got {n_images}")
    return inputs[:n_images], labels[:n_images]
