"""The integer graph (IR): the contract between lowering, host reference, codegen and firmware.

Arithmetic and packing are specified in docs/integer-arithmetic.md. A graph is saved as
`graph.json` (structure, scales) plus `graph.npz` (weights unpacked as int8, int32 bias, mult,
shift); weights are packed only where bytes matter (codegen, memory model).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.ir.packing import BITS, row_bytes

FORMAT = "mpq-ir/1"
OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "global_avg_pool", "avg_pool", "max_pool", "add")
WEIGHTED_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")
WINDOW_OPS = ("conv2d", "depthwise_conv2d", "avg_pool", "max_pool")  # sliding windows
POOL_OPS = ("avg_pool", "max_pool")
CHANNEL_BITS = (0,) + BITS  # per-channel weight bits; 0 = pruned (the dense graph before lowering reorders)


@dataclass
class Tensor:
    """A feature map H x W x C; bits 2/4/8 (unsigned) or 32 (int32 logits)."""

    name: str
    shape: tuple[int, int, int]
    bits: int
    scale: float
    zero_point: int = 0

    @property
    def channels(self) -> int:
        return self.shape[2]

    @property
    def size(self) -> int:
        """H * W * C: the values a fully connected layer reads from it (flattened in H, W, C order)."""
        h, w, c = self.shape
        return h * w * c

    @property
    def nbytes(self) -> int:
        """Bytes in memory: packed rows, or 4 bytes per int32 value."""
        h, w, c = self.shape
        if self.bits == 32:
            return h * w * c * 4
        return h * w * row_bytes(c, self.bits)


@dataclass
class Layer:
    """One operator. `weights` holds unpacked signed values in the layout of the docs."""

    name: str
    op: str
    input: str
    output: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    w_bits: int | list[int] | None = None  # per layer, or per output channel (channel-wise, 2/4/8)
    weights: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray = field(default=None, repr=False)
    mult: np.ndarray = field(default=None, repr=False)
    shift: np.ndarray = field(default=None, repr=False)
    input2: str | None = None  # the second operand of "add"

    def structure(self) -> dict:
        """JSON-able description without the arrays (`input2` only when there is one, so the
        hashes of single-input graphs are unchanged)."""
        return ({"input2": self.input2} if self.input2 is not None else {}) | {
            "name": self.name,
            "op": self.op,
            "input": self.input,
            "output": self.output,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "w_bits": self.w_bits,
        }


@dataclass(frozen=True)
class Run:
    """Output channels start .. start + count - 1 of a layer, whose weights all have `bits` bits:
    one kernel call (an output-channel window) of a channel-wise layer."""

    start: int
    count: int
    bits: int


def weight_runs(layer: Layer, channels: int) -> list[Run]:
    """The maximal runs of equal weight bits over the layer's `channels` output channels."""
    if not isinstance(layer.w_bits, list):
        return [Run(0, channels, layer.w_bits)]
    runs: list[Run] = []
    for channel, bits in enumerate(layer.w_bits):
        if runs and runs[-1].bits == bits:
            runs[-1] = Run(runs[-1].start, runs[-1].count + 1, bits)
        else:
            runs.append(Run(channel, 1, bits))
    return runs


@dataclass
class Graph:
    """A chain (later: DAG) of layers over named tensors, batch 1, NHWC."""

    name: str
    tensors: dict[str, Tensor]
    layers: list[Layer]
    input: str
    output: str
    meta: dict = field(default_factory=dict)

    # -- derived facts ------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def in_offset(self, layer: Layer) -> int:
        """-zero_point of the layer's input (non-zero only for the network input)."""
        return -self.tensors[layer.input].zero_point

    def weight_bytes(self, layer: Layer) -> int:
        """Packed weight bytes of a layer (0 for weightless ops): each output channel's rows at
        its bits for a channel-wise layer."""
        if layer.weights is None:
            return 0
        rows = int(np.prod(layer.weights.shape[:-1]))
        if not isinstance(layer.w_bits, list):
            return rows * row_bytes(layer.weights.shape[-1], layer.w_bits)
        per_channel = rows // layer.weights.shape[0]
        return sum(per_channel * row_bytes(layer.weights.shape[-1], bits) for bits in layer.w_bits)

    def param_bytes(self, layer: Layer) -> int:
        """Bias, mult (int32 each) and shift (int8) per output channel."""
        return self.tensors[layer.output].channels * (4 + 4 + 1)

    def macs(self, layer: Layer) -> int:
        out = self.tensors[layer.output]
        inp = self.tensors[layer.input]
        ho, wo, co = out.shape
        kh, kw = layer.kernel
        if layer.op == "conv2d":
            return ho * wo * co * kh * kw * inp.channels
        if layer.op == "depthwise_conv2d":
            return ho * wo * co * kh * kw
        if layer.op == "fully_connected":
            return co * inp.size
        if layer.op in POOL_OPS:
            return ho * wo * co * kh * kw
        return int(np.prod(inp.shape))

    # -- integrity ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check shapes, bits and array sizes; raise HarnessError naming the first problem."""
        if self.input not in self.tensors or self.output not in self.tensors:
            raise HarnessError("graph input/output tensor missing")
        for t in self.tensors.values():
            if t.bits not in BITS and not (t.bits == 32 and t.name == self.output):
                raise HarnessError(f"tensor {t.name}: bits {t.bits} not allowed")
        for layer in self.layers:
            _validate_layer(self, layer)

    # -- serialization ------------------------------------------------------------------
    def structure(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "tensors": [asdict(t) | {"shape": list(t.shape)} for t in self.tensors.values()],
            "layers": [layer.structure() for layer in self.layers],
            "meta": self.meta,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for layer in self.layers:
            if layer.weights is not None:
                out[f"{layer.name}.weights"] = layer.weights.astype(np.int8)
            out[f"{layer.name}.bias"] = layer.bias.astype(np.int32)
            out[f"{layer.name}.mult"] = layer.mult.astype(np.int32)
            out[f"{layer.name}.shift"] = layer.shift.astype(np.int8)
        return out

    def hash(self) -> str:
        """Content hash of structure and arrays (meta excluded): the firmware's model hash."""
        digest = hashlib.sha256()
        structure = self.structure()
        structure.pop("meta")
        digest.update(json.dumps(structure, sort_keys=True).encode())
        for key, value in sorted(self.arrays().items()):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:16]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "graph.json").write_text(json.dumps(self.structure(), indent=1) + "\n")
        np.savez_compressed(directory / "graph.npz", **self.arrays())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Graph":
        directory = Path(directory)
        try:
            structure = json.loads((directory / "graph.json").read_text())
            arrays = dict(np.load(directory / "graph.npz"))
        except (OSError, ValueError) as error:
            raise HarnessError(f"cannot load integer graph from {directory}: {error}") from None
        if structure.get("format") != FORMAT:
            raise HarnessError(f"{directory}: not an {FORMAT} graph")
        tensors = {
            t["name"]: Tensor(t["name"], tuple(t["shape"]), t["bits"], t["scale"], t["zero_point"])
            for t in structure["tensors"]
        }
        layers = []
        for s in structure["layers"]:
            name = s["name"]
            layers.append(
                Layer(
                    name=name,
                    op=s["op"],
                    input=s["input"],
                    output=s["output"],
                    kernel=tuple(s["kernel"]),
                    stride=tuple(s["stride"]),
                    padding=tuple(s["padding"]),
                    w_bits=s["w_bits"],
                    weights=arrays[f"{name}.weights"].astype(np.int32) if f"{name}.weights" in arrays else None,
                    bias=arrays[f"{name}.bias"],
                    mult=arrays[f"{name}.mult"],
                    shift=arrays[f"{name}.shift"],
                    input2=s.get("input2"),
                )
            )
        graph = cls(structure["name"], tensors, layers, structure["input"], structure["output"], structure.get("meta", {}))
        graph.validate()
        return graph


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """k or (kh, kw) as (kh, kw): kernels and strides."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def padding_tlbr(value: int | tuple[int, int] | tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """p, (rows, columns) or (top, left, bottom, right) as (top, left, bottom, right), the IR's order."""
    if isinstance(value, int):
        return (value,) * 4
    if len(value) == 2:
        ph, pw = (int(v) for v in value)
        return (ph, pw, ph, pw)
    top, left, bottom, right = (int(v) for v in value)
    return (top, left, bottom, right)


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - kernel) // stride + 1


def _validate_layer(graph: Graph, layer: Layer) -> None:
    where = f"layer {layer.name}"
    if layer.op not in OPS:
        raise HarnessError(f"{where}: unknown op {layer.op!r}")
    inp, out = graph.tensors[layer.input], graph.tensors[layer.output]
    h, w, c = inp.shape
    ho, wo, co = out.shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.padding
    if (layer.op == "add") != (layer.input2 is not None):
        raise HarnessError(f"{where}: add needs a second input, other ops none")
    if layer.op == "add":
        _validate_add(graph, layer, where)
        return
    if layer.op in WINDOW_OPS:
        expected = (conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr))
        if (ho, wo) != expected:
            raise HarnessError(f"{where}: output {ho}x{wo} but geometry gives {expected[0]}x{expected[1]}")
    if layer.op == "depthwise_conv2d" and co != c:
        raise HarnessError(f"{where}: depthwise needs equal channels, got {c} -> {co}")
    if layer.op in ("fully_connected", "global_avg_pool") and (ho, wo) != (1, 1):
        raise HarnessError(f"{where}: output must be 1x1xC")
    if layer.op == "fully_connected":
        check_flattenable(layer.name, inp)
    if layer.op in ("global_avg_pool",) + POOL_OPS and co != c:
        raise HarnessError(f"{where}: {layer.op} keeps channels, got {c} -> {co}")
    if layer.op in POOL_OPS and (max(pt, pb) >= kh or max(pl, pr) >= kw):
        raise HarnessError(f"{where}: padding {layer.padding} must be smaller than the kernel {layer.kernel}")
    expected_w = {
        "conv2d": (co, kh, kw, c),
        "depthwise_conv2d": (kh, kw, c),
        "fully_connected": (co, inp.size),
    }.get(layer.op)
    if expected_w is not None:
        if isinstance(layer.w_bits, list):
            if layer.op == "depthwise_conv2d":
                raise HarnessError(f"{where}: depthwise weight bits are layer-wise, got a list")
            if len(layer.w_bits) != co or any(bits not in CHANNEL_BITS for bits in layer.w_bits):
                raise HarnessError(f"{where}: channel-wise weight bits must be {co} values in {CHANNEL_BITS}")
            if not any(layer.w_bits):
                raise HarnessError(f"{where}: every output channel is pruned (0 bits)")
        elif layer.w_bits not in BITS:
            raise HarnessError(f"{where}: weight bits {layer.w_bits} not in {BITS}")
        if layer.weights is None or tuple(layer.weights.shape) != expected_w:
            got = None if layer.weights is None else tuple(layer.weights.shape)
            raise HarnessError(f"{where}: weights shape {got}, expected {expected_w}")
    for key in ("bias", "mult", "shift"):
        arr = getattr(layer, key)
        if arr is None or arr.shape != (co,):
            raise HarnessError(f"{where}: {key} must have {co} entries")


def check_flattenable(layer_name: str, tensor: Tensor) -> None:
    """A fully connected layer reads an H x W x C tensor as the vector of its H * W * C values
    (H, W, C order). Packed rows start on a byte boundary, so the bytes in memory are that
    vector packed exactly when H * W == 1 or a row has no padding bits (C * bits % 8 == 0)."""
    h, w, c = tensor.shape
    if h * w > 1 and tensor.bits != 32 and (c * tensor.bits) % 8:
        raise HarnessError(
            f"layer {layer_name}: fully connected over {tensor.name} ({h}x{w}x{c} at {tensor.bits} bits) needs "
            f"channels * bits to be a multiple of 8 (rows are byte-aligned); give {tensor.name} 8 bits or "
            f"a channel count divisible by {8 // np.gcd(8, tensor.bits)}")


ADD_ARRAY_SHAPES = {"bias": (1,), "mult": (2,), "shift": (1,)}


def _validate_add(graph: Graph, layer: Layer, where: str) -> None:
    """add: both inputs and the output of one shape; bias = [output zero-point],
    mult = [m1, m2], shift = [shift] (docs/integer-arithmetic.md, "add")."""
    if layer.input2 not in graph.tensors:
        raise HarnessError(f"{where}: second input {layer.input2!r} missing")
    shapes = {graph.tensors[name].shape for name in (layer.input, layer.input2, layer.output)}
    if len(shapes) != 1:
        raise HarnessError(f"{where}: add needs equal input and output shapes, got {sorted(shapes)}")
    if graph.tensors[layer.output].bits == 32 or layer.weights is not None:
        raise HarnessError(f"{where}: add has no weights and a 2/4/8-bit output")
    for key, shape in ADD_ARRAY_SHAPES.items():
        arr = getattr(layer, key)
        if arr is None or arr.shape != shape:
            raise HarnessError(f"{where}: {key} of add must have shape {shape}")
    if not (0 <= int(layer.mult.min()) and int(layer.mult.max()) < 2**31 and 1 <= int(layer.shift[0]) <= 62):
        raise HarnessError(f"{where}: add multipliers must be in [0, 2^31) and the shift in [1, 62]")
