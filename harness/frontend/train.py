"""Float training of zoo models on the CPU: deterministic, seconds for digits-cnn (results/shipped-digits.json).

The trained FloatNet (harness.frontend.float_net) is saved as cache_dir("models")/<zoo>.pt
(with a suffix for model arguments or a dataset other than the model's own); its float graph is
the starting point of every policy's QAT. Training uses the dataset's train part, scored on its
test part, with the images mapped onto FLOAT_TRAINING_RANGE (harness.datasets.registry).
"""
from __future__ import annotations

import os
import shutil
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from harness import zoo
from harness.datasets import registry
from harness.errors import HarnessError
from harness.frontend.checkpoints import checkpoint_path
from harness.frontend.float_net import FloatNet, load_checkpoint
from harness.frontend.shipped import shipped_float
from harness.frontend.training_progress import TrainingProgress
from harness.policy import ModelRef
from harness.zoo.architecture import Architecture

TORCH_THREADS = 2
BATCH_SIZE = 32
FLOAT_EPOCHS = 30
FLOAT_LR = 3e-3
FLOAT_SEED = 0

Progress = Callable[[str], None]


def configure_torch(seed: int) -> None:
    """Few threads (the CPU is shared), deterministic kernels, seeded generators."""
    torch.set_num_threads(TORCH_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


def nchw(images: np.ndarray) -> torch.Tensor:
    """NHWC numpy images -> NCHW float32 torch tensor."""
    return torch.from_numpy(np.array(images.transpose(0, 3, 1, 2), dtype=np.float32))


def fit(model: nn.Module, parameters: Iterable[nn.Parameter], images: np.ndarray, labels: np.ndarray,
        epochs: int, lr: float, seed: int, progress: Progress | None = None, label: str = "training") -> None:
    """Adam with a cosine learning-rate decay over `epochs`, mini-batches shuffled by `seed`;
    progress shown as harness.frontend.training_progress does, named `label`."""
    x, y = nchw(images), torch.tensor(np.asarray(labels), dtype=torch.int64)
    optimizer = torch.optim.Adam(parameters, lr=lr)
    steps_per_epoch = -(-len(x) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    with TrainingProgress(label, epochs, steps_per_epoch, progress) as shown:
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), BATCH_SIZE):
                batch = order[start:start + BATCH_SIZE]
                optimizer.zero_grad()
                loss = loss_fn(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
                shown.step()
            shown.epoch(epoch + 1, total / len(x))
    model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Logits [N, classes] of a model in eval mode."""
    model.eval()
    return model(nchw(images)).numpy()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict(model, images).argmax(axis=1) == labels))


def training_split(arch: Architecture, data: str | None, preprocess: dict | None = None) -> registry.Split:
    """The split training uses; HarnessError when there is none, it cannot feed the model or it
    has no train part."""
    split = registry.model_split(arch, data, preprocess)
    if not len(split.train_labels):
        raise HarnessError(f"--data {split.spec}: too few images per class to train on (evaluation only)")
    return split


def train_float(model: ModelRef, epochs: int = FLOAT_EPOCHS, seed: int = FLOAT_SEED,
                progress: Progress | None = None, data: str | None = None) -> tuple[FloatNet, float]:
    """Train the float model on `data`'s train part, save its checkpoint, return it and its test accuracy."""
    arch = zoo.build(model.zoo, model.args)
    split = training_split(arch, data)
    configure_torch(seed)
    net = FloatNet(arch)
    fit(net, net.parameters(), split.real(split.train_images), split.train_labels, epochs, FLOAT_LR, seed, progress,
        f"float training of {model.zoo}")
    test_accuracy = accuracy(net, split.real(split.test_images), split.test_labels)
    path = checkpoint_path(ModelRef(model.zoo, model.args), data)
    torch.save({"zoo": model.zoo, "args": model.args, "data": split.spec, "state_dict": net.state_dict(),
                "epochs": epochs, "seed": seed, "test_accuracy": test_accuracy}, path)
    return net, test_accuracy


def load_float(model: ModelRef, progress: Progress | None = None, data: str | None = None,
               use_shipped: bool = True) -> FloatNet:
    """The float model of a policy: from its checkpoint; if it is missing, a copy of the shipped
    one made by this code (harness.frontend.shipped), else trained on `data` first."""
    path = checkpoint_path(model, data)
    shipped = None if path.is_file() or not use_shipped else shipped_float(model, data, FLOAT_EPOCHS, progress)
    if shipped is not None:
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        shutil.copyfile(shipped, staging)
        os.replace(staging, path)  # readers never see half a file
    if not path.is_file():
        if progress:
            progress(f"no float checkpoint at {path}: training {model.zoo}")
        net, _ = train_float(model, progress=progress, data=data)
        return net
    return load_checkpoint(zoo.build(model.zoo, model.args), path)
