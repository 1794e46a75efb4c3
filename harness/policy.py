"""Quantization policies (policy.json): load, validate against the schema and the model, hash.

Every error names the file and the field, as one line: `policy.json: layers.conv1.w_bits: 3 is
not one of [2, 4, 8]`. The format is described in docs/policy.md.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import jsonschema
import numpy as np

from harness import zoo
from harness.errors import HarnessError
from harness.units import parse_size
from harness.zoo.architecture import Architecture

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "policy.schema.json"


@dataclass(frozen=True)
class InputQuantization:
    """The network input: integers 0 .. 2^bits-1 stand for the real range [low, high]."""

    bits: int
    low: float
    high: float

    @property
    def levels(self) -> int:
        return (1 << self.bits) - 1

    @property
    def scale(self) -> float:
        """(high - low) / (2^bits - 1), rounded to float32 as torch's fake-quant uses it."""
        return float(np.float32((self.high - self.low) / self.levels))

    @property
    def zero_point(self) -> int:
        """The integer standing for real 0, clamped to the integer range."""
        return int(min(max(round(-self.low / self.scale), 0), self.levels))


@dataclass(frozen=True)
class LayerBits:
    """Bits of a layer's weights (None: no weights) and output activation (None: int32 logits)."""

    w_bits: int | None
    a_bits: int | None


@dataclass(frozen=True)
class Budget:
    """Memory budget in bytes."""

    flash: int
    ram: int


@dataclass(frozen=True)
class QATSettings:
    """Quantization-aware fine-tuning from the float checkpoint."""

    epochs: int = 8
    lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class ModelRef:
    """A zoo model with arguments; `checkpoint` (resolved path) replaces `harness train`."""

    zoo: str
    args: dict = field(default_factory=dict)
    checkpoint: Path | None = None


@dataclass(frozen=True)
class Policy:
    """A validated policy; `document` is the JSON it came from (what the hash covers)."""

    name: str
    model: ModelRef
    input: InputQuantization
    layers: dict[str, LayerBits]
    budget: Budget
    qat: QATSettings
    document: dict = field(repr=False)
    architecture: Architecture = field(repr=False, compare=False)

    @property
    def hash(self) -> str:
        return policy_hash(self.document)

    @property
    def data(self) -> str | None:
        """The dataset spec (harness.datasets.registry): the policy's "data", else the zoo model's."""
        return self.document.get("data", self.architecture.dataset)

    @property
    def preprocess(self) -> dict:
        """The policy's "preprocess" object (harness.datasets.imagefolder.Preprocess), {} if none."""
        return dict(self.document.get("preprocess", {}))

    def with_data(self, spec: str | None, preprocess: dict | None = None) -> "Policy":
        """The policy with "data" (and "preprocess") replaced when given (--data, --preprocess)."""
        changes = {key: value for key, value in (("data", spec), ("preprocess", preprocess)) if value is not None}
        if not changes:
            return self
        return replace(self, document=json.loads(canonical_json(self.document | changes)))

    @property
    def quantization_hash(self) -> str:
        """Hash of what the quantized model depends on: model, input, bits, QAT settings.
        Name, description and budget are left out, so a new budget reuses the trained graph."""
        return policy_hash({key: value for key, value in self.document.items()
                            if key not in ("name", "description", "budget")})


def canonical_json(document: dict) -> str:
    """Sorted keys, no whitespace: equal documents give equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def policy_hash(document: dict) -> str:
    """sha256 of the canonical JSON, first 16 hex digits (the firmware's policy hash)."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()[:16]


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; HarnessError naming the file and field on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such policy file") from None
    except OSError as error:
        raise HarnessError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise HarnessError(f"{path}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    return parse_policy(document, source=str(path), base_dir=path.parent)


def parse_policy(document: dict, source: str = "policy", base_dir: Path | None = None) -> Policy:
    """Validate a policy document (schema, then against its model) and build the Policy."""
    _check_schema(document, source)
    document = json.loads(canonical_json(document))  # a private copy: the hash cannot drift

    def fail(where: str, message: str) -> HarnessError:
        return HarnessError(f"{source}: {where}: {message}")

    model_doc = document["model"]
    model = ModelRef(model_doc["zoo"], dict(model_doc.get("args", {})), None)
    try:
        architecture = zoo.build(model.zoo, model.args)
    except HarnessError as error:
        where = "model.zoo" if model.zoo not in zoo.names() else "model.args"
        raise fail(where, str(error)) from None
    if "checkpoint" in model_doc:
        checkpoint = (base_dir or Path.cwd()) / model_doc["checkpoint"]
        if not checkpoint.is_file():
            raise fail("model.checkpoint", f"no such file {str(checkpoint)!r}")
        model = ModelRef(model.zoo, model.args, checkpoint)

    low, high = (float(v) for v in document["input"]["range"])
    if not low < high:
        raise fail("input.range", f"low {low:g} must be below high {high:g}")
    input_quant = InputQuantization(int(document["input"]["bits"]), low, high)

    layers = _layer_bits(document["layers"], architecture, fail)
    budget = Budget(**{key: _budget_size(document["budget"][key], f"budget.{key}", fail) for key in ("flash", "ram")})
    qat = QATSettings(**document.get("qat", {}))
    return Policy(document.get("name", model.zoo), model, input_quant, layers, budget, qat, document, architecture)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _check_schema(document: object, source: str) -> None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        where, message = _describe(error)
        raise HarnessError(f"{source}: {where}: {message}")


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(dotted field, message) of a schema error, phrased for people."""
    where = _dotted(error.absolute_path)
    if error.validator == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        return _join(where, missing), "missing (required)"
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = error.schema.get("properties", {})
        extra = sorted(key for key in error.instance if key not in known)[0]
        return _join(where, extra), f"unknown field (allowed: {', '.join(known)})"
    return where or "(top level)", error.message


def _dotted(path) -> str:
    text = ""
    for part in path:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, str(part))
    return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _layer_bits(layers_doc: dict, architecture: Architecture, fail) -> dict[str, LayerBits]:
    """Every layer of the model present, and only the bits its kind of layer has."""
    names = [spec.name for spec in architecture.layers]
    for name in layers_doc:
        if name not in names:
            raise fail(f"layers.{name}", f"{architecture.name} has no such layer (layers: {', '.join(names)})")
    result = {}
    for spec in architecture.layers:
        where = f"layers.{spec.name}"
        if spec.name not in layers_doc:
            raise fail(where, f"missing (every layer of {architecture.name} needs its bits)")
        entry = layers_doc[spec.name]
        is_classifier = spec.name == architecture.classifier
        if spec.has_weights and "w_bits" not in entry:
            raise fail(f"{where}.w_bits", "missing (required for a layer with weights)")
        if not spec.has_weights and "w_bits" in entry:
            raise fail(f"{where}.w_bits", f"not allowed: {spec.op} has no weights")
        if not is_classifier and "a_bits" not in entry:
            raise fail(f"{where}.a_bits", "missing (bits of the layer's output activation)")
        if is_classifier and "a_bits" in entry:
            raise fail(f"{where}.a_bits", "not allowed: the classifier outputs 32-bit logits")
        w_bits = int(entry["w_bits"]) if "w_bits" in entry else None
        a_bits = int(entry["a_bits"]) if "a_bits" in entry else None
        result[spec.name] = LayerBits(w_bits, a_bits)
    return result


def _budget_size(value: str | int, where: str, fail) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        raise fail(where, f"must not be negative, got {value!r}")
    try:
        size = parse_size(value)
    except HarnessError as error:
        raise fail(where, str(error)) from None
    if size <= 0:
        raise fail(where, f"must be a positive size, got {value!r}")
    return size
