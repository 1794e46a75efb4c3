"""policy -> float checkpoint -> QAT -> integer graph, cached; and the accuracy of each stage.

The quantized model of a policy is cached under cache_dir("graphs", quantization_hash, checkpoint
digest): the lowered graph (graph.json, graph.npz) and the QAT state (qat.pt). A second call is
a load; a new float checkpoint (e.g. after `harness train`) gives a new entry.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from harness import __version__

from harness.ir import reference
from harness.datasets.registry import integer_test_set
from harness.ir.graph import Graph
from harness.quantize.lower import lower
from harness.paths import cache_dir
from harness.policy import Policy
from harness.quantize.qat import QATNet, run_qat
from harness.frontend.train import Progress, checkpoint_digest, configure_torch, load_float, predict

QAT_STATE = "qat.pt"


@dataclass
class Quantized:
    """A policy's trained fake-quant model and its lowered integer graph."""

    net: QATNet
    graph: Graph


def quantize(policy: Policy, progress: Progress | None = None) -> Quantized:
    """The policy's QAT model and integer graph, from the cache or made (training the float
    model first if its checkpoint is missing). Deterministic on one machine."""
    if progress:
        progress(f"policy {policy.name} ({policy.hash})")
    float_net = load_float(policy.model, progress, policy.data)  # trains it first if the checkpoint is missing
    directory = cache_dir("graphs", policy.quantization_hash) / checkpoint_digest(policy.model, policy.data)
    if (directory / QAT_STATE).is_file():
        return _load(directory, policy)
    if progress:
        progress(f"quantization-aware training: {policy.qat.epochs} epochs")
    net = run_qat(policy, float_net, progress)
    meta = {"model": policy.model.zoo, "model_args": policy.model.args,
            "checkpoint_sha": directory.name, "harness": __version__, "torch": torch.__version__}
    quantized = Quantized(net, lower(net, policy, meta))
    _save(directory, quantized)
    return quantized


def graph_for_policy(policy: Policy, progress: Progress | None = None) -> Graph:
    """The policy's integer graph (see `quantize`)."""
    return quantize(policy, progress).graph


@dataclass(frozen=True)
class Evaluation:
    """Test-split accuracy of each stage, and how often integer and fake-quant agree."""

    n_test: int
    float_accuracy: float
    fake_quant_accuracy: float
    integer_accuracy: float
    argmax_agreement: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(policy: Policy, progress: Progress | None = None) -> tuple[Evaluation, Graph]:
    """Float vs fake-quant vs integer-reference accuracy on the policy's test split."""
    quantized = quantize(policy, progress)
    split, inputs, labels = integer_test_set(policy)
    configure_torch(policy.qat.seed)
    float_pred = predict(load_float(policy.model, data=policy.data), split.real(split.test_images)).argmax(axis=1)
    fake_pred = predict(quantized.net, split.real(split.test_images, policy.input)).argmax(axis=1)
    if progress:
        progress(f"integer reference on {len(labels)} test images")
    int_pred = integer_logits(quantized.graph, inputs).argmax(axis=1)
    evaluation = Evaluation(
        n_test=len(labels),
        float_accuracy=float(np.mean(float_pred == labels)),
        fake_quant_accuracy=float(np.mean(fake_pred == labels)),
        integer_accuracy=float(np.mean(int_pred == labels)),
        argmax_agreement=float(np.mean(int_pred == fake_pred)),
    )
    return evaluation, quantized.graph


def integer_logits(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """The integer reference's int32 logits [N, classes] for integer inputs [N, H, W, C]."""
    return np.stack([reference.predict(graph, x).reshape(-1) for x in inputs])


def _load(directory: Path, policy: Policy) -> Quantized:
    net = QATNet(policy.architecture, policy)
    net.load_state_dict(torch.load(directory / QAT_STATE, map_location="cpu", weights_only=True))
    return Quantized(net.eval(), Graph.load(directory))


def _save(directory: Path, quantized: Quantized) -> None:
    """Write to a temporary sibling, then rename: readers never see half an entry."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".staging-"))
    quantized.graph.save(staging)
    torch.save(quantized.net.state_dict(), staging / QAT_STATE)
    try:
        os.rename(staging, directory)
    except OSError:  # another process finished the same entry first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
