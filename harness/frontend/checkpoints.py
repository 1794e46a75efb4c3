"""Where a zoo model's float checkpoint lives and what its bytes hash to (no torch needed)."""
from __future__ import annotations

from pathlib import Path

from harness import zoo
from harness.frontend.shipped import file_sha256
from harness.paths import cache_dir
from harness.policy import ModelRef, policy_hash


def checkpoint_path(model: ModelRef, data: str | None = None) -> Path:
    """The policy's own checkpoint, or the cached one `harness train` writes for this zoo model
    trained on `data` (default: the model's own dataset)."""
    if model.checkpoint is not None:
        return model.checkpoint
    suffix = f"-{policy_hash(model.args)[:8]}" if model.args else ""
    own = zoo.build(model.zoo, model.args).dataset
    if data is not None and data != own:
        suffix += f"-data-{policy_hash({'data': data})[:8]}"
    return cache_dir("models") / f"{model.zoo}{suffix}.pt"


def checkpoint_digest(model: ModelRef, data: str | None = None) -> str:
    """sha256 (16 hex) of the float checkpoint's bytes: what a cached quantized model came from."""
    return file_sha256(checkpoint_path(model, data))[:16]
