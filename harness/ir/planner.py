"""Static activation-arena planner: where every tensor (and kernel scratch) lives in RAM.

Each buffer has a lifetime, an interval of layer indices [first, last] (the graph's layers are
in execution order):
- a tensor lives from the layer that produces it to its last consumer, so a layer's input and
  output are always live together, and a tensor read by several layers (DAGs) stays live until
  the last of them;
- the network input is a tensor like any other: it dies after its last consumer, so later
  tensors may reuse its bytes (the RAM a deployed model needs). `ArenaPlan.input_survives`
  says whether any later buffer does; when none does, the firmware may run the model again on
  one loaded input (protocol PERF with n > 1), otherwise the host LOADs before every run
  (docs/protocol.md, the MODEL answer's flags);
- the network output lives until the end (the host reads it after the run);
- a layer's kernel scratch lives only during that layer.

Placement is greedy with first fit on offsets: buffers are taken one by one, each at the lowest
4-byte-aligned offset where it overlaps, in memory, no already-placed buffer whose lifetime
intersects its own. Two orders are tried and the smaller arena kept (the first on a tie):
largest first (the "greedy by size" planner of TensorFlow Lite Micro: large buffers fix the
peak, small ones fill the gaps), then by first use (ping-pong along a chain, which wins when a
large tensor sits between smaller ones). On random chains this lands on average within 1 % of
the lower bound max_step(sum of live bytes), worst seen 12 %. Ties inside an order are broken by
name, so the plan is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer

OFFSET_ALIGN = 4  # every tensor offset: int32 logits and word loads need it
ARENA_ALIGN = 8  # the arena itself is declared aligned(8)


TENSOR, SCRATCH = "tensor", "scratch"


@dataclass(frozen=True)
class Buffer:
    """A block of bytes the arena must hold from layer `first` to layer `last` (inclusive);
    `key` is (TENSOR, tensor name) or (SCRATCH, layer name)."""

    key: tuple[str, str]
    size: int
    first: int
    last: int

    def live_with(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class ArenaPlan:
    """Offsets into one static arena of `size` bytes.

    `offsets` maps tensor names to byte offsets; `scratch_offsets` maps the names of layers
    whose kernel needs scratch to the offset of that scratch, `scratch_sizes` to its bytes.
    `scratch_size` is the largest of them (0 when no kernel needs scratch). `input_survives`
    is False when a buffer that comes alive after the input's last consumer reuses its bytes.
    """

    size: int
    offsets: dict[str, int]
    scratch_offsets: dict[str, int]
    scratch_sizes: dict[str, int]
    input_survives: bool = True  # no buffer placed after the input's last use overlaps it

    @property
    def scratch_size(self) -> int:
        return max(self.scratch_sizes.values(), default=0)


def kernel_for(layer: Layer) -> str:
    """The C kernel (mpq_kernels.h) that runs a layer: a 1x1, stride-1, unpadded conv2d is pointwise."""
    if layer.op == "conv2d" and layer.kernel == (1, 1) and layer.stride == (1, 1) and not any(layer.padding):
        return "pointwise"
    return layer.op


def layer_scratch_bytes(graph: Graph, layer: Layer) -> int:
    """Scratch bytes the layer's kernel asks for: mpq_<kernel>_get_buffer_size() of the kernel
    firmware/kernels/src/mpq_dispatch.c selects. The portable _ref kernels and the Cortex-M7 _m7
    kernels ask for the same (the sizes in mpq_internal.h: int16 rows; the _m7 kernels work in a
    static buffer of their own, mpq_m7.h), so one plan serves both builds. Generated code checks
    these sizes against the C functions on its first run and fails with MPQ_MODEL_ERR_SCRATCH if a
    kernel wants more."""
    kernel = kernel_for(layer)
    inp = graph.tensors[layer.input]
    cin = inp.size if kernel == "fully_connected" else inp.channels
    if kernel == "conv2d":
        kh, kw = layer.kernel
        return (kh * kw * cin + cin) * 2
    if kernel in ("pointwise", "fully_connected"):
        return 2 * cin * 2
    if kernel == "depthwise_conv2d":
        return cin * (4 + 2 * 2)
    return 0


def layer_inputs(layer: Layer) -> tuple[str, ...]:
    """The tensors a layer reads (two for add)."""
    return (layer.input,) if layer.input2 is None else (layer.input, layer.input2)


def last_use(graph: Graph, name: str) -> int:
    """Index of the last layer that reads tensor `name` (-1: none does)."""
    return max((index for index, layer in enumerate(graph.layers) if name in layer_inputs(layer)), default=-1)


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def buffers(graph: Graph) -> list[Buffer]:
    """Every tensor the layers touch and every non-empty scratch, with its lifetime."""
    if not graph.layers:
        raise HarnessError(f"graph {graph.name}: no layers to plan")
    end = len(graph.layers) - 1
    first: dict[str, int] = {graph.input: 0}
    last: dict[str, int] = {graph.output: end}
    result = []
    for index, layer in enumerate(graph.layers):
        for source in layer_inputs(layer):
            if source not in first:
                raise HarnessError(f"graph {graph.name}: layer {layer.name} reads {source} before it is produced")
            last[source] = max(last.get(source, index), index)
        first.setdefault(layer.output, index)
        last[layer.output] = max(last.get(layer.output, index), index)
        scratch = layer_scratch_bytes(graph, layer)
        if scratch:
            result.append(Buffer((SCRATCH, layer.name), scratch, index, index))
    if graph.output not in first:
        raise HarnessError(f"graph {graph.name}: no layer produces the output {graph.output}")
    result += [Buffer((TENSOR, name), graph.tensors[name].nbytes, first[name], last[name]) for name in first]
    return result


PLACEMENT_ORDERS = (
    lambda b: (-b.size, b.first, b.key),  # largest first
    lambda b: (b.first, -b.size, b.key),  # first use first
)


def place(blocks: list[Buffer], order) -> dict[tuple[str, str], int]:
    """First fit in the given order: offsets such that buffers live together never overlap."""
    placed: list[tuple[int, Buffer]] = []
    offsets = {}
    for block in sorted(blocks, key=order):
        busy = sorted((offset, offset + other.size) for offset, other in placed if other.live_with(block))
        offset = 0
        for start, stop in busy:
            if offset + block.size <= start:
                break
            offset = max(offset, _align(stop, OFFSET_ALIGN))
        placed.append((offset, block))
        offsets[block.key] = offset
    return offsets


def _extent(blocks: list[Buffer], offsets: dict[tuple[str, str], int]) -> int:
    return max(offsets[b.key] + b.size for b in blocks)


def plan_arena(graph: Graph) -> ArenaPlan:
    """Plan the activation arena of one graph (tensors and kernel scratch)."""
    blocks = buffers(graph)
    offsets = min((place(blocks, order) for order in PLACEMENT_ORDERS), key=lambda o: _extent(blocks, o))
    size = _align(_extent(blocks, offsets), ARENA_ALIGN)
    return ArenaPlan(
        size=size,
        offsets={b.key[1]: offsets[b.key] for b in blocks if b.key[0] == TENSOR},
        scratch_offsets={b.key[1]: offsets[b.key] for b in blocks if b.key[0] == SCRATCH},
        scratch_sizes={b.key[1]: b.size for b in blocks if b.key[0] == SCRATCH},
        input_survives=_survives(blocks, offsets, (TENSOR, graph.input)),
    )


def _survives(blocks: list[Buffer], offsets: dict[tuple[str, str], int], key: tuple[str, str]) -> bool:
    """Whether no buffer that comes alive after `key`'s last use overlaps its bytes."""
    block = next(b for b in blocks if b.key == key)
    start, stop = offsets[key], offsets[key] + block.size
    return not any(b.first > block.last and offsets[b.key] < stop and start < offsets[b.key] + b.size
                   for b in blocks)


def simple_bound(graph: Graph) -> int:
    """Lower bound of any arena: the largest (input bytes + output bytes) of one layer."""
    return max(sum(graph.tensors[name].nbytes for name in (*layer_inputs(layer), layer.output))
               for layer in graph.layers)
