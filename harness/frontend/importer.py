"""What the ONNX and TFLite importers share: the one-line rejection, the builder that turns a
file's operators into LayerSpecs and float weights (a FloatGraph), and `load_model_file`, which
picks the importer by file extension.

The builder maps every tensor of the file to the layer whose output it is (or to the network
input); operators that change no values (Identity, Dropout, a flatten before a classifier) are
aliases, a Pad waits for the conv or pool that reads it, a ReLU or Clip(0, 6) is fused into the
layer that produced its input. When the graph is complete, every layer's output shape is
compared with the shape the file declares, so nothing the IR would compute differently gets
through.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.frontend.float_graph import FloatGraph, FloatLayer
from harness.zoo.architecture import INPUT, Architecture, LayerSpec

MODEL_SUFFIXES = (".onnx", ".tflite")


def rejection(source: str, node: str, op: str, reason: str) -> HarnessError:
    """The one-line error for a construct the harness cannot import."""
    return HarnessError(f"{source}: node {node!r} ({op}): {reason}")


@dataclass
class _Pending:
    """A Pad seen but not yet folded: the tensor it pads and (top, left, bottom, right)."""

    source: str
    pads: tuple[int, int, int, int]
    node: str


@dataclass
class GraphBuilder:
    """Collects layers in execution order while an importer walks the file's operators."""

    source: str  # the file name, for messages and FloatGraph.source
    name: str
    input_tensor: str
    input_shape: tuple[int, int, int]
    specs: list[LayerSpec] = field(default_factory=list)
    weights: dict[str, FloatLayer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _producer: dict[str, str] = field(default_factory=dict)  # file tensor -> layer name or INPUT
    _flattened: set[str] = field(default_factory=set)  # tensors that only a classifier may read
    _pads: dict[str, _Pending] = field(default_factory=dict)
    _declared: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # layer -> H x W x C in the file

    def __post_init__(self) -> None:
        self._producer[self.input_tensor] = INPUT

    def reject(self, node: str, op: str, reason: str) -> HarnessError:
        return rejection(self.source, node, op, reason)

    def layer_of(self, tensor: str, node: str, op: str, *, flattened_ok: bool = False) -> str:
        """The layer whose output `tensor` is; a rejection if it is not one the IR holds."""
        if tensor in self._pads:
            raise self.reject(node, op, f"reads a Pad ({self._pads[tensor].node}); only a conv or pool can absorb a Pad")
        if tensor not in self._producer:
            raise self.reject(node, op, f"input {tensor!r} is not produced by a supported layer")
        if tensor in self._flattened and not flattened_ok:
            raise self.reject(node, op, "reads a flattened tensor; only a fully connected layer may")
        return self._producer[tensor]

    def take_padding(self, tensor: str) -> tuple[str, tuple[int, int, int, int]]:
        """(tensor actually read, padding a Pad before it added): a Pad folds into its consumer."""
        pending = self._pads.pop(tensor, None)
        return (tensor, (0, 0, 0, 0)) if pending is None else (pending.source, pending.pads)

    def add_pad(self, node: str, op: str, inp: str, out: str, pads: tuple[int, int, int, int]) -> None:
        self.layer_of(inp, node, op)
        if inp in self._pads:
            raise self.reject(node, op, "two Pads in a row")
        self._pads[out] = _Pending(inp, pads, node)

    def alias(self, out: str, inp: str, node: str, op: str, *, flatten: bool = False) -> None:
        """`out` holds the same values as `inp` (Identity, Dropout, a flatten)."""
        self._producer[out] = self.layer_of(inp, node, op, flattened_ok=flatten)
        if flatten or inp in self._flattened:
            self._flattened.add(out)

    def add_layer(self, out: str, node: str, op: str, spec: LayerSpec, inputs: list[str],
                  declared: tuple[int, int, int] | None, weight: np.ndarray | None = None,
                  bias: np.ndarray | None = None) -> None:
        """A layer reading the file tensors `inputs`, whose output is the file tensor `out`."""
        flattened_ok = spec.op == "fully_connected"
        sources = tuple(self.layer_of(tensor, node, op, flattened_ok=flattened_ok) for tensor in inputs)
        name = self._unique(spec.name)
        spec = replace(spec, name=name, inputs=sources)
        self.specs.append(spec)
        self._producer[out] = name
        if declared is not None:
            self._declared[name] = declared
        if weight is not None:
            out_channels = weight.shape[-1] if spec.op == "depthwise_conv2d" else weight.shape[0]
            self.weights[name] = FloatLayer(np.asarray(weight, np.float32),
                                            np.zeros(out_channels, np.float32) if bias is None
                                            else np.asarray(bias, np.float32).reshape(out_channels))

    def fuse_activation(self, out: str, inp: str, node: str, op: str, activation: str, consumers: int) -> None:
        """A ReLU / ReLU6 after a layer becomes that layer's activation (when nothing else reads
        the values before it)."""
        layer = self.layer_of(inp, node, op)
        index = next((k for k, spec in enumerate(self.specs) if spec.name == layer), None)
        if index is None or self.specs[index].activation != "linear" or consumers != 1 or inp in self._flattened:
            raise self.reject(node, op, "an activation must directly follow the only reader of a conv, "
                                        "fully connected, pool or add output")
        self.specs[index] = replace(self.specs[index], activation=activation)
        self._producer[out] = layer

    def finish(self, output: str) -> FloatGraph:
        """The FloatGraph ending at the file tensor `output`; rejections if the IR cannot hold it."""
        if output in self._pads or output not in self._producer:
            raise self.reject(output, "output", "the graph output is not produced by a supported layer")
        last = self._producer[output]
        if not self.specs or last != self.specs[-1].name or self.specs[-1].op != "fully_connected":
            raise self.reject(output, "output", "the network must end in a fully connected layer (the classifier)")
        if self.specs[-1].activation != "linear":
            raise self.reject(self.specs[-1].name, "output", "the classifier outputs int32 logits: no activation after it")
        unused = [pending.node for pending in self._pads.values()]
        if unused:
            raise self.reject(unused[0], "Pad", "pads a tensor no conv or pool reads")
        specs = [replace(spec, inputs=() if spec.inputs == self._previous(k) else spec.inputs)
                 for k, spec in enumerate(self.specs)]
        try:
            architecture = Architecture(self.name, self.input_shape, tuple(specs))
            shapes = architecture.shapes()
        except ValueError as error:
            raise HarnessError(f"{self.source}: the IR cannot express this graph: {error}") from None
        for name, declared in self._declared.items():
            if shapes[name] != declared:
                op = next(spec.op for spec in specs if spec.name == name)
                raise self.reject(name, op, f"the file says output {declared}, the IR computes {shapes[name]}")
        return FloatGraph(architecture, dict(self.weights), self.source, tuple(self.notes))

    def _previous(self, index: int) -> tuple[str, ...]:
        return (self.specs[index - 1].name if index else INPUT,)

    def _unique(self, name: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "layer"
        if name[0].isdigit() or name == INPUT:
            name = f"l_{name}"
        taken = {spec.name for spec in self.specs}
        candidate, k = name, 1
        while candidate in taken:
            k += 1
            candidate = f"{name}_{k}"
        return candidate


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) of TensorFlow's SAME padding: output ceil(size / stride), the odd pixel
    of padding after (bottom / right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def load_model_file(path: str | Path) -> FloatGraph:
    """Import an .onnx or .tflite file (cached on its path and content digest)."""
    path = Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise HarnessError(f"{path}: unknown model format (supported: {', '.join(MODEL_SUFFIXES)})")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such model file") from None
    except OSError as error:
        raise HarnessError(f"{path}: cannot read: {error.strerror}") from None
    return _import(str(path), hashlib.sha256(data).hexdigest())


@lru_cache(maxsize=8)
def _import(path: str, digest: str) -> FloatGraph:
    data = Path(path).read_bytes()
    if path.lower().endswith(".onnx"):
        from harness.frontend.onnx_import import import_onnx

        return import_onnx(data, Path(path).name)
    from harness.frontend.tflite_import import import_tflite

    return import_tflite(data, Path(path).name)
