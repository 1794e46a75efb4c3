"""The quantizer's entry: a policy's integer graph, whichever source its float graph comes from.

`policy_graph` is the one chooser build, measure and evaluate call:
- random weights (harness.frontend.random_weights), calibrated post-training (harness.quantize.ptq);
- a model trained here (digits-cnn): QAT (harness.quantize.qat) from the float checkpoint, then
  lowering; `quantize` caches it under cache_dir("graphs", quantization_hash, checkpoint
  digest): the lowered graph (graph.json, graph.npz) and the QAT state (qat.pt). A second call is
  a load; a new float checkpoint (e.g. after `harness train`) gives a new entry. The float
  checkpoint and QAT state shipped in the repository (harness.frontend.shipped) stand in for
  training when they were made by the current code;
- any other zoo model with `model.checkpoint`: the checkpoint's float graph calibrated
  post-training on the images of a calibration folder, else on seeded random inputs;
- a model file (`model.file`, ONNX / TFLite): its imported float graph calibrated the same way
  (harness.quantize.imported).
Layers above receive a Graph and never ask where it came from. Torch is imported only when a
path needs it (random weights do not).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from harness import __version__
from harness.errors import HarnessError
from harness.frontend.random_weights import NOTE, random_float_graph
from harness.ir import reference
from harness.ir.graph import Graph
from harness.paths import cache_dir
from harness.policy import Policy
from harness.quantize.ptq import lower_float

if TYPE_CHECKING:
    from harness.quantize.qat import QATNet

Progress = Callable[[str], None]
QAT_STATE = "qat.pt"
CALIBRATION_INPUTS = 2
CHECKPOINT_CALIBRATION_IMAGES = 32  # images of a --calibration folder used to calibrate a checkpoint
INPUT_SEED_OFFSET = 1_000_003  # calibration inputs are not the measured inputs
# zoo models `harness train` trains on their own dataset (Architecture.dataset: digits, mnist); any other
# model needs a checkpoint or --random-weights here
TRAINED_HERE = ("digits-cnn", "lenet5-mnist", "dsnet-mnist")


def policy_graph(policy: Policy, random_weights: bool, progress: Progress | None = None,
                 calibration_dir: Path | None = None) -> Graph:
    """The graph `harness build` / `measure` deploy (see the module doc). HarnessError when the
    model has neither training data here nor a checkpoint."""
    if random_weights:
        return random_weights_graph(policy, progress=progress)
    if policy.model.file is not None:
        from harness.quantize.imported import model_file_graph

        return model_file_graph(policy, calibration_dir, progress)
    if policy.model.zoo in TRAINED_HERE:
        return cached_graph(policy) or quantize(policy, progress).graph
    if policy.model.checkpoint is None:
        raise HarnessError(f"model {policy.model.zoo!r} has no training data in this harness (trainable: "
                           f"{', '.join(TRAINED_HERE)}): give the policy a model.checkpoint, or use --random-weights "
                           "for latency and memory")
    return _checkpoint_graph(policy, calibration_dir, progress)


def random_weights_graph(policy: Policy, seed: int = 0, progress: Progress | None = None) -> Graph:
    """The policy's integer graph with random weights (cached by policy hash and seed); meta says
    random_weights."""
    directory = cache_dir("graphs-random", policy.hash) / f"seed{seed}"
    if (directory / "graph.json").is_file():
        return Graph.load(directory)
    if progress:
        progress(f"random weights (seed {seed}) and calibration of {policy.name}")
    meta = {"model": policy.model.zoo, "model_args": policy.model.args, "random_weights": True,
            "weights_seed": seed, "note": NOTE}
    graph = lower_float(policy, random_float_graph(policy.architecture, seed),
                        _random_inputs(policy, seed + INPUT_SEED_OFFSET), meta)
    _publish(directory, graph.save)
    return graph


def _random_inputs(policy: Policy, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(
        0, 1 << policy.input.bits, size=(CALIBRATION_INPUTS, *policy.architecture.input_shape)).astype(np.int32)


def _checkpoint_graph(policy: Policy, calibration_dir: Path | None, progress: Progress | None) -> Graph:
    from harness.frontend.float_net import checkpoint_float_graph

    if calibration_dir is not None:
        from harness.datasets import registry
        from harness.datasets.imagefolder import Preprocess

        split = registry.load(f"imagefolder:{calibration_dir}", policy.architecture.input_shape,
                              Preprocess.parse(policy.preprocess))
        images, labels = (split.train_images, split.train_labels) if len(split.train_labels) else \
            (split.test_images, split.test_labels)
        chosen = registry.across_classes(labels, CHECKPOINT_CALIBRATION_IMAGES)
        calibration, source = registry.integer_inputs(split, images[chosen], policy.input), str(calibration_dir)
    else:
        calibration, source = _random_inputs(policy, INPUT_SEED_OFFSET), "seeded random inputs"
    if progress:
        progress(f"lowering checkpoint {policy.model.checkpoint} (calibration: {source})")
    return lower_float(policy, checkpoint_float_graph(policy.architecture, policy.model.checkpoint), calibration,
                       checkpoint_meta(policy, str(policy.model.checkpoint), len(calibration)) | {"calibration": source})


def checkpoint_meta(policy: Policy, source: str, calibration_inputs: int) -> dict:
    """The meta of a graph lowered post-training from a float model."""
    import torch

    return {"model": policy.model.zoo, "model_args": policy.model.args, "checkpoint": source,
            "calibration_inputs": int(calibration_inputs), "torch": torch.__version__}


@dataclass
class Quantized:
    """A policy's trained fake-quant model and its lowered integer graph."""

    net: QATNet
    graph: Graph


def qat_directory(policy: Policy, checkpoint_sha: str) -> Path:
    """Where the policy's QAT state and integer graph from this float checkpoint are cached."""
    return cache_dir("graphs", policy.quantization_hash) / checkpoint_sha[:16]


def cached_graph(policy: Policy) -> Graph | None:
    """The integer graph a previous `quantize` of the policy cached, read without torch; None if none."""
    from harness.frontend.checkpoints import checkpoint_path
    from harness.frontend.shipped import file_sha256

    checkpoint = checkpoint_path(policy.model, policy.data)
    if not checkpoint.is_file():
        return None
    directory = qat_directory(policy, file_sha256(checkpoint))
    return Graph.load(directory) if (directory / QAT_STATE).is_file() else None


def quantize(policy: Policy, progress: Progress | None = None, use_shipped: bool = True) -> Quantized:
    """The policy's QAT model and integer graph, from the cache, from the shipped QAT state made
    by this code (harness.frontend.shipped), or made (training the float model first if its
    checkpoint is missing and none is shipped). Deterministic on one machine."""
    import torch

    from harness.frontend.float_net import float_graph
    from harness.frontend.shipped import file_sha256, shipped_qat
    from harness.frontend.checkpoints import checkpoint_path
    from harness.frontend.train import load_float, training_split
    from harness.quantize.lower import lower
    from harness.quantize.qat import run_qat

    if progress:
        progress(f"policy {policy.name} ({policy.hash})")
    float_net = load_float(policy.model, progress, policy.data, use_shipped)  # trains it if missing and not shipped
    checkpoint_sha = file_sha256(checkpoint_path(policy.model, policy.data))
    directory = qat_directory(policy, checkpoint_sha)
    if (directory / QAT_STATE).is_file():
        return _load(directory, policy)
    shipped = shipped_qat(policy, checkpoint_sha, progress) if use_shipped else None
    if shipped is not None:
        net = _qat_net(policy, shipped)
    else:
        if progress:
            progress(f"quantization-aware training: {policy.qat.epochs} epochs")
        split = training_split(policy.architecture, policy.data, policy.preprocess)
        net = run_qat(policy, float_graph(float_net, f"checkpoint {checkpoint_path(policy.model, policy.data)}"),
                      split.real(split.train_images, policy.input), split.train_labels, progress)
    meta = {"model": policy.model.zoo, "model_args": policy.model.args,
            "checkpoint_sha": directory.name, "harness": __version__, "torch": torch.__version__}
    quantized = Quantized(net, lower(net, policy, meta))
    _publish(directory, lambda staging: _save(staging, quantized))
    return quantized


def graph_for_policy(policy: Policy, progress: Progress | None = None) -> Graph:
    """The policy's integer graph through QAT (see `quantize`)."""
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
    from harness.datasets.registry import integer_test_set
    from harness.frontend.train import configure_torch, load_float, predict

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
    return Quantized(_qat_net(policy, directory / QAT_STATE), Graph.load(directory))


def _qat_net(policy: Policy, state: Path) -> QATNet:
    """The policy's QATNet with the state saved at `state`, in eval mode."""
    import torch

    from harness.quantize.qat import QATNet

    net = QATNet(policy.architecture, policy)
    net.load_state_dict(torch.load(state, map_location="cpu", weights_only=True))
    return net.eval()


def _save(staging: Path, quantized: Quantized) -> None:
    import torch

    quantized.graph.save(staging)
    torch.save(quantized.net.state_dict(), staging / QAT_STATE)


def _publish(directory: Path, write: Callable[[Path], object]) -> None:
    """`write` into a temporary sibling, then rename: readers never see half an entry."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".staging-"))
    write(staging)
    try:
        os.rename(staging, directory)
    except OSError:  # another process finished the same entry first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
