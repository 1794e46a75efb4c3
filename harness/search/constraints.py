"""Make an agent's bits fit the budget as HAQ does: cut bits, last layer first, until RAM and flash fit.

The structural graph's bits are halved in place (weights while flash is exceeded, activations
while RAM is), one layer at a time from the last to the first and round again (Wang et al.
2019's final_action_wall), skipping what is already at 2 bits (or fixed: the network input
and the logits, and what the search pins: HAQ's first and last layer at 8 bits), and checking the
budget after every layer.

Then `give_back_flash` spends the flash the cuts and the agent left free where the board's latency
table says it costs no time: one layer's weight bits raised at a time, the raise that saves most
first, while the budget holds (weight bits barely change a kernel's speed, and where they do
it is measured, so free flash is otherwise wasted precision).
"""
from __future__ import annotations

from collections.abc import Collection

from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.ir.memory import MemoryReport, memory_report
from harness.measure.latency import LatencyTable
from harness.policy import Budget

LOWEST_BITS = 2


def enforce_budget(graph: Graph, budget: Budget, keep_weights: Collection[str] = (),
                   keep_activations: Collection[str] = ()) -> tuple[MemoryReport, int]:
    """Cut `graph`'s bits until it fits, never those of the layers in `keep_weights` (by layer name)
    or the tensors in `keep_activations`; (its memory report, number of halvings).
    HarnessError when everything else is at 2 bits and it still does not fit."""
    cuts = idle = 0
    position = len(graph.layers) - 1
    while True:
        report = memory_report(graph)
        flash_over = report.flash_bytes > budget.flash
        ram_over = report.ram_bytes > budget.ram
        if not (flash_over or ram_over):
            return report, cuts
        if idle == len(graph.layers):
            pinned = " but the pinned first and last layer" if keep_weights or keep_activations else ""
            raise HarnessError(f"{graph.name}: does not fit the budget even at {LOWEST_BITS} bits everywhere{pinned}: "
                               + "; ".join(report.over_budget(budget)))
        layer = graph.layers[position]
        if _cut_layer(graph, position, flash_over and layer.name not in keep_weights,
                      ram_over and layer.output not in keep_activations):
            cuts, idle = cuts + 1, 0
        else:
            idle += 1
        position = (position - 1) % len(graph.layers)


def _cut_layer(graph: Graph, index: int, weights: bool, activations: bool) -> bool:
    """Halve layer `index`'s weights (if flash is over) and output (if RAM is over) where above 2 bits."""
    layer = graph.layers[index]
    out = graph.tensors[layer.output]
    cut = False
    if weights and layer.w_bits is not None and layer.w_bits > LOWEST_BITS:
        layer.w_bits //= 2
        cut = True
    if activations and layer.output != graph.output and out.bits > LOWEST_BITS:
        out.bits //= 2
        cut = True
    return cut


def give_back_flash(graph: Graph, budget: Budget, table: LatencyTable, keep_weights: Collection[str] = ()) -> int:
    """Raise weight bits in place (to 4 or 8) where the table predicts no slower layer and the
    budget still holds, the largest saving first; the number of raises. A configuration the table
    lacks is not raised."""
    raises = 0
    while True:
        candidates = []
        for layer in graph.layers:
            if layer.w_bits is None or layer.w_bits == 8 or layer.name in keep_weights:
                continue
            now = table.layer_entry(graph, layer)
            for higher in (bits for bits in (4, 8) if bits > layer.w_bits):
                raised = table.layer_entry(graph, layer, higher)
                if now is not None and raised is not None and raised <= now:
                    candidates.append((raised - now, len(candidates), layer, higher))
        for _, _, layer, higher in sorted(candidates, key=lambda c: c[:2]):
            lower, layer.w_bits = layer.w_bits, higher
            report = memory_report(graph)
            if report.flash_bytes <= budget.flash and report.ram_bytes <= budget.ram:
                raises += 1
                break
            layer.w_bits = lower
        else:
            return raises
