"""The memory-driven bit-width rules of Rusci et al. 2020, on the structural graph (no training).

Everything starts at 8 bits and bits are only ever halved (8 -> 4 -> 2).

Activations first. Layer i needs its input and output tensors in RAM together; it fits when
    in_bytes + out_bytes + resident_i <= RAM budget - FIXED_RAM_BYTES,
where FIXED_RAM_BYTES is the runtime and the Cortex-M7 kernels' work buffer (harness.ir.memory)
and resident_i is what the arena must hold beside them anyway: the network input while it is
still live (up to its last consumer, harness.ir.planner) unless it is the layer's own input,
and the layer's kernel scratch. For a violating layer the tensor to cut is
the one with more bits; with equal bits the larger one (in bytes). The first layer can only cut
its output (the network input's bits are the policy's), the last only its input (its output is
the int32 logits). A forward sweep (first to last layer) makes the cuts that fall on a layer's
output; a layer whose cut falls on its input is left for the backward sweep (last to first),
which cuts it there: the previous layer's output. Sweeps alternate until one full sweep finds no
violation; a layer with both tensors at 2 bits (or fixed) that still does not fit is a failure.
The arena planner then places the tensors; if its plan is larger than the per-layer rule
predicted (fragmentation), the rule's budget is lowered by the difference and the sweeps go on.

Then weights. While weights + quantization parameters + code estimate exceed the flash budget:
among the layers whose weights are not yet at 2 bits, take those whose share of all weight
bytes is within 5 percentage points of the largest such share, and halve the weights of the
earliest. Failure when every layer is at 2 bits and flash still does not fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import zoo
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.quantize.lower import structural_graph
from harness.ir.memory import CODE_FLASH_BYTES, FIXED_RAM_BYTES, MemoryReport, memory_report
from harness.ir.planner import last_use, layer_inputs, layer_scratch_bytes, plan_arena
from harness.policy import Budget, Policy, parse_policy
from harness.search.documents import layer_entries, uniform_policy
from harness.units import format_size, parse_size

LOWEST_BITS = 2
SHARE_WINDOW = 0.05  # 5 percentage points
MAX_PLANNER_ROUNDS = 16


@dataclass(frozen=True)
class Cut:
    """One halving the rules made, in order."""

    phase: str  # "forward", "backward" (activations) or "weights"
    layer: str  # the layer whose rule made the cut
    tensor: str  # the activation tensor (its producing layer) or the layer whose weights were cut
    bits: tuple[int, int]  # before, after


@dataclass
class MemoryDrivenResult:
    policy: Policy
    report: MemoryReport
    cuts: list[Cut]


def search(model: str, args: dict, flash: str | int, ram: str | int, name: str | None = None,
           input_quant: dict | None = None) -> MemoryDrivenResult:
    """The memory-driven policy of zoo model `model` for the budget; HarnessError when impossible."""
    architecture = zoo.build(model, args)
    start = uniform_policy(name or f"{model}-memory-driven", model, args, architecture, 8,
                           {"flash": flash, "ram": ram}, input_quant=input_quant)
    return search_from(start, flash, ram, start.name)


def search_from(start: Policy, flash: str | int, ram: str | int, name: str | None = None,
                base_dir: Path | None = None) -> MemoryDrivenResult:
    """The memory-driven policy for the model and input of `start` (a zoo model or a model file,
    e.g. the starter policy of `harness import`), every tensor starting at 8 bits. `base_dir`
    is what a model file's path is relative to."""
    budget_doc = {"flash": flash, "ram": ram}
    budget = Budget(parse_size(flash), parse_size(ram))
    name = name or f"{start.name}-memory-driven"
    eight = parse_policy(start.document | {"name": name, "budget": budget_doc, "layers": {}}, base_dir=base_dir)
    graph = structural_graph(eight)
    cuts = cut_activations(graph, budget.ram)
    cuts += cut_weights(graph, budget.flash)
    w_bits = {layer.name: layer.w_bits for layer in graph.layers if layer.w_bits is not None}
    a_bits = {name: tensor.bits for name, tensor in graph.tensors.items()}
    document = eight.document | {
        "layers": layer_entries(eight.architecture, w_bits, a_bits),
        "description": f"memory-driven rules (Rusci et al. 2020) for flash {flash}, RAM {ram}"}
    policy = parse_policy(document, base_dir=base_dir)
    report = memory_report(structural_graph(policy))
    problems = report.over_budget(budget)
    if problems:  # the rules stop only when both fit, so this is a bug, not user input
        raise AssertionError(f"memory-driven result does not fit: {problems}")
    return MemoryDrivenResult(policy, report, cuts)


# -- activations ---------------------------------------------------------------------------
def cut_activations(graph: Graph, ram_budget: int) -> list[Cut]:
    """Halve activation bits (in place) until every layer's pair and the planned arena fit."""
    allowed = ram_budget - FIXED_RAM_BYTES
    if allowed <= 0:
        raise HarnessError(f"RAM budget {format_size(ram_budget)} leaves nothing for activations: the runtime "
                           f"and the kernels' work buffer alone take {FIXED_RAM_BYTES} B")
    cuts: list[Cut] = []
    for _ in range(MAX_PLANNER_ROUNDS):
        cuts += _sweep_until_clean(graph, allowed, ram_budget)
        arena = plan_arena(graph).size
        if arena <= ram_budget - FIXED_RAM_BYTES:
            return cuts
        allowed -= arena - (ram_budget - FIXED_RAM_BYTES)
    raise HarnessError(f"cannot fit the activations in {format_size(ram_budget)} RAM: the arena planner "
                       f"keeps needing more than the per-layer rule after {MAX_PLANNER_ROUNDS} rounds")


def layer_need(graph: Graph, index: int) -> int:
    """RAM bytes layer `index` needs: its input(s), its output and what stays resident beside them."""
    layer = graph.layers[index]
    inputs = layer_inputs(layer)
    resident = layer_scratch_bytes(graph, layer)
    if graph.input not in inputs and index <= last_use(graph, graph.input):
        resident += graph.tensors[graph.input].nbytes
    return sum(graph.tensors[name].nbytes for name in inputs) + graph.tensors[layer.output].nbytes + resident


def _cuttable(graph: Graph, name: str) -> bool:
    """An activation the rules may halve: not the network input, not the logits, above 2 bits."""
    return name not in (graph.input, graph.output) and graph.tensors[name].bits > LOWEST_BITS


def tensor_to_cut(graph: Graph, index: int) -> str | None:
    """The tensor a violating layer cuts: more bits first, then more bytes (None: nothing left)."""
    layer = graph.layers[index]
    candidates = [name for name in (*layer_inputs(layer), layer.output) if _cuttable(graph, name)]
    if not candidates:
        return None
    return max(candidates, key=lambda name: (graph.tensors[name].bits, graph.tensors[name].nbytes,
                                             name == layer.output))


def _sweep_until_clean(graph: Graph, allowed: int, ram_budget: int) -> list[Cut]:
    cuts: list[Cut] = []
    forward = True
    idle_sweeps = 0
    while True:
        violations, made = _sweep(graph, allowed, ram_budget, forward, cuts)
        if not violations:
            return cuts
        idle_sweeps = 0 if made else idle_sweeps + 1
        if idle_sweeps >= 2:  # cannot happen with tensor_to_cut; a guard against a silent endless loop
            raise AssertionError("activation sweeps stopped making progress")
        forward = not forward


def _sweep(graph: Graph, allowed: int, ram_budget: int, forward: bool, cuts: list[Cut]) -> tuple[int, int]:
    """One sweep; returns (layers still violating after it, cuts made)."""
    order = range(len(graph.layers)) if forward else range(len(graph.layers) - 1, -1, -1)
    violations = made = 0
    for index in order:
        layer = graph.layers[index]
        while layer_need(graph, index) > allowed:
            target = tensor_to_cut(graph, index)
            if target is None:
                raise _no_fit(graph, index, allowed, ram_budget)
            if (target == layer.output) != forward:
                break  # left for the other sweep
            tensor = graph.tensors[target]
            cuts.append(Cut("forward" if forward else "backward", layer.name, target, (tensor.bits, tensor.bits // 2)))
            tensor.bits //= 2
            made += 1
        violations += layer_need(graph, index) > allowed
    return violations, made


def _no_fit(graph: Graph, index: int, allowed: int, ram_budget: int) -> HarnessError:
    layer = graph.layers[index]
    inp, out = graph.tensors[layer.input], graph.tensors[layer.output]
    need = layer_need(graph, index)
    return HarnessError(
        f"cannot fit layer {layer.name} in {format_size(ram_budget)} RAM: with its input at {inp.bits} bits "
        f"({inp.nbytes} B) and output at {out.bits} bits ({out.nbytes} B) it needs {need} B, over the "
        f"{allowed} B left for activations (RAM budget minus {FIXED_RAM_BYTES} B runtime and kernel work buffer) "
        f"by {need - allowed} B")


# -- weights ---------------------------------------------------------------------------------
def flash_bytes(graph: Graph) -> int:
    """What memory_report counts as flash: weights + parameters + the code estimate."""
    return sum(graph.weight_bytes(layer) + graph.param_bytes(layer) for layer in graph.layers) + CODE_FLASH_BYTES


def layer_to_cut(graph: Graph) -> str | None:
    """The earliest layer whose weight share is within 5 points of the largest, among layers above 2 bits."""
    total = sum(graph.weight_bytes(layer) for layer in graph.layers)
    shares = {layer.name: graph.weight_bytes(layer) / total for layer in graph.layers
              if layer.w_bits is not None and layer.w_bits > LOWEST_BITS}
    if not shares:
        return None
    largest = max(shares.values())
    return next(name for name, share in shares.items() if share >= largest - SHARE_WINDOW - 1e-12)


def cut_weights(graph: Graph, flash_budget: int) -> list[Cut]:
    """Halve weight bits (in place) until flash fits."""
    cuts: list[Cut] = []
    layers = {layer.name: layer for layer in graph.layers}
    while (used := flash_bytes(graph)) > flash_budget:
        name = layer_to_cut(graph)
        if name is None:
            raise HarnessError(f"cannot fit the weights in {format_size(flash_budget)} flash: every layer is at "
                               f"{LOWEST_BITS} bits and flash still needs {used} B (including the "
                               f"{CODE_FLASH_BYTES} B code estimate)")
        layer = layers[name]
        cuts.append(Cut("weights", name, name, (layer.w_bits, layer.w_bits // 2)))
        layer.w_bits //= 2
    return cuts
