"""Quantization policies (policy.json): load, validate against the schema and the model, hash.

Every error names the file and the field, as one line: `policy.json: layers.conv1.w_bits: 3 is
not one of [2, 4, 8]`. The format is described in docs/policy.md.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
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
    """Bits of a layer's weights (None: no weights; a tuple: one per output channel, 0 = pruned)
    and output activation (None: int32 logits)."""

    w_bits: int | tuple[int, ...] | None
    a_bits: int | None

    @property
    def channel_wise(self) -> bool:
        return isinstance(self.w_bits, tuple)


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
    """A zoo model with arguments (`checkpoint`, a resolved path, replaces `harness train`), or
    a model file (`file`, a resolved .onnx / .tflite path; `zoo` is then empty)."""

    zoo: str
    args: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    file: Path | None = None

    @property
    def label(self) -> str:
        """What reports call the model: the zoo name or the file name."""
        return self.file.name if self.file is not None else self.zoo


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

    def with_qat_epochs(self, epochs: int) -> "Policy":
        """The policy with qat.epochs replaced (bounded runs of tools/ and tests)."""
        document = json.loads(canonical_json(self.document | {"qat": self.document.get("qat", {}) | {"epochs": epochs}}))
        return replace(self, document=document, qat=replace(self.qat, epochs=epochs))

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


MAX_POLICY_BYTES = 1 << 20  # a policy is a few kB; anything near this is not one
MAX_DEPTH = 16  # nesting of objects and arrays (a policy needs 4)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # policy names become file names and report text


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; HarnessError naming the file and field on any problem."""
    path = Path(path)
    document = read_policy_json(path)
    return parse_policy(document, source=str(path), base_dir=path.parent)


def read_policy_json(path: Path) -> object:
    """The JSON document in a policy file: a regular file of at most MAX_POLICY_BYTES, UTF-8, with
    no duplicate keys, no NaN or Infinity and at most MAX_DEPTH levels of nesting."""
    data = _read_regular_file(path, MAX_POLICY_BYTES)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise HarnessError(f"{path}: not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    if b"\0" in data:
        raise HarnessError(f"{path}: a binary file (it holds NUL bytes), not a JSON policy")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise HarnessError(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as error:
        raise HarnessError(f"{path}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise HarnessError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    except _JsonValueError as error:
        raise HarnessError(f"{path}: {error}") from None
    if _depth(document) > MAX_DEPTH:
        raise HarnessError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)")
    return document


def safe_name(text: str) -> str:
    """`text` reduced to the characters SAFE_NAME allows ('_' for the others), for file names."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:64].lstrip("._-")
    return cleaned or "unnamed"


class _JsonValueError(ValueError):
    """A JSON value a policy may not hold (raised from json.loads hooks)."""


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path`, refusing anything but a regular file of at most `limit` bytes; opened
    without blocking, so a named pipe or a device is refused instead of hanging."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such policy file") from None
    except OSError as error:
        raise HarnessError(f"{path}: cannot read: {error.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise HarnessError(f"{path}: is a directory, not a policy file")
        raise HarnessError(f"{path}: not a regular file (a pipe, socket or device); give a policy file")
    if info.st_size > limit:
        os.close(fd)
        raise HarnessError(f"{path}: {info.st_size} bytes, more than a policy can be ({limit} at most)")
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(limit + 1)
        except OSError as error:
            raise HarnessError(f"{path}: cannot read: {error.strerror}") from None
    if len(data) > limit:
        raise HarnessError(f"{path}: more than {limit} bytes, more than a policy can be")
    return data


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _JsonValueError(f"duplicate key {duplicates[0]!r} in one object (JSON would silently keep the last)")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise _JsonValueError(f"{name} is not a number a policy may hold")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JsonValueError(f"number {text[:32]} is out of range (not finite)")
    return value


def _depth(value: object) -> int:
    """Nesting depth of objects and arrays, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_policy(document: dict, source: str = "policy", base_dir: Path | None = None) -> Policy:
    """Validate a policy document (schema, then against its model) and build the Policy."""
    _check_schema(document, source)
    _check_whole_numbers(document, source)
    document = json.loads(canonical_json(document))  # a private copy: the hash cannot drift

    def fail(where: str, message: str) -> HarnessError:
        return HarnessError(f"{source}: {where}: {message}")

    model, architecture = _model(document["model"], base_dir or Path.cwd(), fail)

    low, high = (float(v) for v in document["input"]["range"])
    if not low < high:
        raise fail("input.range", f"low {low:g} must be below high {high:g}")
    input_quant = InputQuantization(int(document["input"]["bits"]), low, high)

    layers = _layer_bits(document.get("layers", {}), architecture, fail)
    budget = Budget(**{key: _budget_size(document["budget"][key], f"budget.{key}", fail) for key in ("flash", "ram")})
    qat = QATSettings(**document.get("qat", {}))
    return Policy(document.get("name", model.label), model, input_quant, layers, budget, qat, document, architecture)


def _model(model_doc: dict, base_dir: Path, fail) -> tuple[ModelRef, Architecture]:
    """The model a policy names and its architecture: a zoo network, or a model file whose
    architecture the importer reads (onnx / tflite load only for a file model)."""
    if ("zoo" in model_doc) == ("file" in model_doc):
        raise fail("model", "give either `zoo` (a zoo network) or `file` (an .onnx / .tflite model)")
    if "file" in model_doc:
        extra = sorted(key for key in model_doc if key != "file")
        if extra:
            raise fail(f"model.{extra[0]}", "not allowed with model.file")
        from harness.frontend.importer import load_model_file

        path = base_dir / model_doc["file"]
        try:
            return ModelRef("", {}, None, path), load_model_file(path).architecture
        except HarnessError as error:
            raise fail("model.file", str(error)) from None
    model = ModelRef(model_doc["zoo"], dict(model_doc.get("args", {})), None)
    try:
        architecture = zoo.build(model.zoo, model.args)
    except HarnessError as error:
        where = "model.zoo" if model.zoo not in zoo.names() else "model.args"
        raise fail(where, str(error)) from None
    if "checkpoint" in model_doc:
        model = ModelRef(model.zoo, model.args, _checkpoint_path(model_doc["checkpoint"], base_dir, fail))
    return model, architecture


def _check_whole_numbers(document: dict, source: str) -> None:
    """Bits, epochs, seeds and byte budgets must be written as integers: JSON Schema's "integer"
    (and an enum of integers) also admits 8.0, which would then flow on as a float."""
    fields = [("input.bits", document["input"]["bits"])]
    for name, entry in document.get("layers", {}).items():
        for key, value in entry.items():
            values = enumerate(value) if isinstance(value, list) else [(None, value)]  # a per-channel list
            fields += [(f"layers.{name}.{key}" + ("" if i is None else f"[{i}]"), v) for i, v in values]
    fields += [(f"qat.{key}", document.get("qat", {})[key]) for key in ("epochs", "seed") if key in document.get("qat", {})]
    fields += [(f"budget.{key}", value) for key, value in document["budget"].items() if not isinstance(value, str)]
    for where, value in fields:
        if type(value) is not int:
            raise HarnessError(f"{source}: {where}: must be an integer, got {value!r}")


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _check_schema(document: object, source: str) -> None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        where, message = _describe(error)
        raise HarnessError(f"{source}: {where}: {message}")


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(dotted field, message) of a schema error, phrased for people (of `oneOf`, the error of the
    alternative of the value's kind that got deepest: `3 is not one of [2, 4, 8]`)."""
    if error.validator == "oneOf" and error.context:
        candidates = [e for e in error.context if e.validator != "type"] or list(error.context)
        return _describe(max(candidates, key=lambda e: len(e.absolute_path)))
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


DEFAULT_BITS = 8  # what a layer, or a field of a layer, left out of a policy gets


def _layer_bits(layers_doc: dict, architecture: Architecture, fail) -> dict[str, LayerBits]:
    """Bits of every layer of the model: as the policy says, DEFAULT_BITS for what it leaves
    out; only the bits its kind of layer has."""
    names = [spec.name for spec in architecture.layers]
    for name in layers_doc:
        if name not in names:
            raise fail(f"layers.{name}", f"{architecture.name} has no such layer (layers: {', '.join(names)})")
    result = {}
    for spec in architecture.layers:
        where = f"layers.{spec.name}"
        entry = layers_doc.get(spec.name, {})
        is_classifier = spec.name == architecture.classifier
        if not spec.has_weights and "w_bits" in entry:
            raise fail(f"{where}.w_bits", f"not allowed: {spec.op} has no weights")
        if is_classifier and "a_bits" in entry:
            raise fail(f"{where}.a_bits", "not allowed: the classifier outputs 32-bit logits")
        w_bits = entry.get("w_bits", DEFAULT_BITS) if spec.has_weights else None
        if isinstance(w_bits, list):
            w_bits = _channel_bits(spec, w_bits, is_classifier, f"{where}.w_bits", fail)
        elif w_bits is not None:
            w_bits = int(w_bits)
        a_bits = None if is_classifier else int(entry.get("a_bits", DEFAULT_BITS))
        result[spec.name] = LayerBits(w_bits, a_bits)
    _check_linked_pruning(architecture, result, fail)
    return result


def _checkpoint_path(text: str, base_dir: Path | None, fail) -> Path:
    """The checkpoint file (relative to the policy's directory): it must exist and be a regular file.
    Whether it holds a matching state dict is checked where torch is loaded (`policy check`, build)."""
    checkpoint = (base_dir or Path.cwd()) / text
    if checkpoint.is_dir():
        raise fail("model.checkpoint", f"{str(checkpoint)!r} is a directory, not a checkpoint file")
    if not checkpoint.exists():
        raise fail("model.checkpoint", f"no such file {str(checkpoint)!r}")
    if not checkpoint.is_file():
        raise fail("model.checkpoint", f"{str(checkpoint)!r} is not a regular file")
    return checkpoint


def _channel_bits(spec, bits: list[int], is_classifier: bool, where: str, fail) -> tuple[int, ...]:
    """Per-output-channel weight bits of one layer, checked against the layer."""
    if spec.op == "depthwise_conv2d":
        raise fail(where, "depthwise layers stay layer-wise (one value); a channel is pruned when its producer's is")
    if is_classifier:
        raise fail(where, "the classifier's int32 logits share one scale: give it one value")
    if len(bits) != spec.out_channels:
        raise fail(where, f"{len(bits)} values for {spec.out_channels} output channels")
    if not any(bits):
        raise fail(where, "every channel is pruned (0): keep at least one")
    return tuple(int(b) for b in bits)


def _check_linked_pruning(architecture: Architecture, layers: dict[str, LayerBits], fail) -> None:
    """Layers whose outputs meet in a residual add (through channel-preserving ops) prune the same
    channels; nothing feeding the network input's or output's channels is pruned."""
    from harness.ir.channel_order import architecture_components, fixed_components

    comp, fixed = architecture_components(architecture), fixed_components(architecture)
    first: dict[str, tuple[str, frozenset]] = {}
    for spec in architecture.layers:
        bits = layers[spec.name].w_bits
        if not isinstance(bits, tuple):
            if spec.has_weights and spec.op != "depthwise_conv2d":
                bits = (bits,) * spec.out_channels
            else:
                continue
        pruned = frozenset(c for c, b in enumerate(bits) if b == 0)
        root = comp[spec.name]
        if pruned and root in fixed:
            raise fail(f"layers.{spec.name}.w_bits", "no channel may be pruned here: it feeds the network's input or output channels")
        if root in first and first[root][1] != pruned:
            raise fail(f"layers.{spec.name}.w_bits", f"must prune the same channels as {first[root][0]} "
                       "(their outputs meet in a residual add)")
        first.setdefault(root, (spec.name, pruned))


MAX_BUDGET_BYTES = 1 << 40  # 1 TiB: far above any microcontroller


def _budget_size(value: str | int, where: str, fail) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        raise fail(where, f"must not be negative, got {value!r}")
    try:
        size = parse_size(value)
    except HarnessError as error:
        raise fail(where, str(error)) from None
    if size <= 0:
        raise fail(where, f"must be a positive size, got {value!r}")
    if size > MAX_BUDGET_BYTES:
        raise fail(where, f"{value!r} is more than {MAX_BUDGET_BYTES} bytes (1 TiB); not a device budget")
    return size
