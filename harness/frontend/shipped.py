"""Trained files shipped in the repository, so a first run measures without training.

harness/frontend/shipped/ holds the digits float checkpoint and the QAT state of
policies/digits-mixed.json, and manifest.json: per file its kind, sha256 and key. A key is the
sha256 of what made the file: the model (or the policy's quantization hash and the float
checkpoint's sha256), the torch version and the source text of the modules that train it
(FLOAT_CODE, QAT_CODE). A shipped file is used only when its key equals the key the current code
computes and its bytes match its sha256; otherwise the harness trains, as without it, and says
why. `python tools/ship_checkpoints.py` (REGENERATE) writes the files and the manifest again;
tests/test_shipped_checkpoints.py fails while a key is stale.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import zoo
from harness.policy import ModelRef, Policy, canonical_json

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
MANIFEST = SHIPPED_DIR / "manifest.json"
REGENERATE = "python tools/ship_checkpoints.py"
SHIPPED_POLICIES = ("policies/digits-mixed.json",)
# modules whose source decides the trained float weights (besides the model's zoo module and its dataset module)
FLOAT_CODE = ("harness.frontend.train", "harness.frontend.float_net", "harness.frontend.float_graph",
              "harness.zoo.architecture", "harness.datasets.registry", "harness.datasets.vendored")
# modules whose source decides the QAT state (besides the dataset module)
QAT_CODE = ("harness.quantize.qat", "harness.quantize.lower", "harness.frontend.train", "harness.frontend.float_net",
            "harness.frontend.float_graph", "harness.zoo.architecture", "harness.datasets.registry",
            "harness.datasets.vendored")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Shipped:
    """One manifest entry: `file` (in SHIPPED_DIR) of `kind` ("float" or "qat") made under `key`."""

    kind: str
    name: str
    file: str
    key: str
    sha256: str

    @property
    def path(self) -> Path:
        return SHIPPED_DIR / self.file


def entries() -> list[Shipped]:
    """The manifest's entries (none without a manifest)."""
    if not MANIFEST.is_file():
        return []
    return [Shipped(**entry) for entry in json.loads(MANIFEST.read_text())["files"]]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _module_sources(modules: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            found[module] = file_sha256(Path(spec.origin))
    return found


def _key(document: dict, modules: tuple[str, ...]) -> str:
    import torch

    document = document | {"torch": torch.__version__, "code": _module_sources(modules)}
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def _dataset(model: ModelRef, data: str | None) -> str | None:
    return data or zoo.build(model.zoo, model.args).dataset


def float_key(model: ModelRef, data: str | None, epochs: int) -> str:
    """The key of the float checkpoint this code makes training `model` on `data` for `epochs`."""
    dataset = _dataset(model, data)
    modules = (*FLOAT_CODE, zoo.builder_module(model.zoo), f"harness.datasets.{dataset}")
    return _key({"zoo": model.zoo, "args": model.args, "data": dataset, "epochs": epochs}, modules)


def qat_key(policy: Policy, checkpoint_sha256: str) -> str:
    """The key of the policy's QAT state trained from the float checkpoint with this sha256."""
    dataset = _dataset(policy.model, policy.data)
    return _key({"quantization": policy.quantization_hash, "checkpoint": checkpoint_sha256},
                (*QAT_CODE, f"harness.datasets.{dataset}"))


def _find(kind: str, name: str, key: str, log: Log | None) -> Path | None:
    candidates = [entry for entry in entries() if entry.kind == kind and entry.name == name]
    for entry in candidates:
        if entry.key == key and entry.path.is_file() and file_sha256(entry.path) == entry.sha256:
            if log:
                log(f"using the shipped {kind} file {entry.path} (key {key[:12]}): no training")
            return entry.path
    if candidates and log:
        log(f"the shipped {kind} file for {name} does not match this code (key {key[:12]}), so it is not used: "
            f"training instead; `{REGENERATE}` ships a new one")
    return None


def shipped_float(model: ModelRef, data: str | None, epochs: int, log: Log | None = None) -> Path | None:
    """The shipped float checkpoint of `model` trained on `data` for `epochs` by this code, if there is one."""
    if model.checkpoint is not None or model.args:
        return None
    return _find("float", model.zoo, float_key(model, data, epochs), log)


def shipped_qat(policy: Policy, checkpoint_sha256: str, log: Log | None = None) -> Path | None:
    """The shipped QAT state of `policy` from this float checkpoint made by this code, if there is one."""
    return _find("qat", policy.quantization_hash, qat_key(policy, checkpoint_sha256), log)
