"""The accuracy term of the HAQ reward: a short QAT fine-tune on a subset, cached by policy.

`train_images` of the dataset's train part, taken class by class in turn (a split may come
sorted by class, as MNIST's does), fine-tune the policy's fake-quant model (BN folded, clips
calibrated, `epochs` passes of Adam; 0 epochs: calibration only, post-training quantization);
`val_images` of its validation part (which the float model never trained on), chosen the same
way, score it. The test part is never seen by the search; it is what the verified
candidates are measured on. A policy's accuracy is cached on disk (cache_dir("haq")) under its
hash, the settings and the float checkpoint's digest, so a repeated or resumed search does not
train it again.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.datasets.registry import across_classes
from harness.files import write_atomic
from harness.paths import cache_dir
from harness.policy import Policy, policy_hash

# The fine-tune is a few dozen small batches: one thread is fastest, and with two on a loaded
# two-core machine torch's spinning workers made it ten times slower (measured: 1.4 s vs 16-27 s).
SEARCH_TORCH_THREADS = 1
# Part of the score cache's key: bump it when the images a score is computed on change (version 2:
# the subsets are taken across classes; version 1 took the first images of each part).
ORACLE_VERSION = 2


@dataclass(frozen=True)
class ShortQAT:
    train_images: int = 400
    val_images: int = 400
    epochs: int = 1
    lr: float = 1e-3
    seed: int = 0


def scoring_subsets(split, settings: ShortQAT) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fine-tune images in the split's train part and of the scored images in its
    validation part: every class in near-equal numbers, whatever order the parts come in."""
    return across_classes(split.train_labels, settings.train_images), across_classes(split.val_labels, settings.val_images)


class AccuracyOracle:
    """Fine-tunes and scores policies of one float model; remembers every score."""

    def __init__(self, model_policy: Policy, settings: ShortQAT = ShortQAT()):
        from harness.frontend.float_net import float_graph
        from harness.frontend.checkpoints import checkpoint_digest, checkpoint_path
        from harness.frontend.train import load_float, training_split

        self.settings = settings
        data = model_policy.data
        self.float_graph = float_graph(load_float(model_policy.model, data=data),
                                       f"checkpoint {checkpoint_path(model_policy.model, data)}")
        split = training_split(model_policy.architecture, data, model_policy.preprocess)
        train, val = scoring_subsets(split, settings)
        self.train = (split.real(split.train_images[train], model_policy.input), split.train_labels[train])
        self.val = (split.real(split.val_images[val], model_policy.input), split.val_labels[val])
        tag = policy_hash({"settings": asdict(settings), "version": ORACLE_VERSION,
                           "checkpoint": checkpoint_digest(model_policy.model, data)})
        self.path: Path = cache_dir("haq") / f"accuracy-{tag}.json"
        self.scores: dict[str, float] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def fine_tune(self, policy: Policy):
        """The policy's fake-quant model after the short fine-tune (deterministic)."""
        import torch

        from harness.frontend.train import configure_torch, fit, nchw
        from harness.quantize.qat import from_float_graph

        configure_torch(self.settings.seed)
        torch.set_num_threads(SEARCH_TORCH_THREADS)
        net = from_float_graph(self.float_graph, policy, nchw(self.train[0]))
        fit(net, net.parameters(), *self.train, self.settings.epochs, self.settings.lr, self.settings.seed)
        return net

    def accuracy(self, policy: Policy) -> tuple[float, bool]:
        """(validation accuracy, whether it came from the cache)."""
        if policy.hash in self.scores:
            return self.scores[policy.hash], True
        from harness.frontend.train import accuracy

        score = accuracy(self.fine_tune(policy), *self.val)
        self.scores[policy.hash] = score
        write_atomic(self.path, json.dumps(self.scores))
        return score, False
