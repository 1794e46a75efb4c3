"""The memory model of an integer graph: flash and RAM bytes, per layer and in total.

- flash = packed weights + per-channel parameters (int32 bias, int32 mult, int8 shift)
  + CODE_FLASH_BYTES, an estimate of the kernels, runtime, BSP and C library;
- RAM = the activation arena (harness.ir.planner.plan_arena: tensors and per-layer scratch; the
  network input dies after its last consumer, so this is the RAM a deployed model needs)
  + M7_WORK_BYTES, the Cortex-M7 kernels' static work buffer (kernel scratch outside the arena,
  MPQ_M7_WORK_BYTES in firmware/kernels/src/mpq_m7.h) + RUNTIME_RAM_BYTES, the runtime's frame
  buffers and state. The stack has its own region (DTCM on the H743) outside the budget. The
  simple bound (largest input + output of one layer) is reported next to the arena: no plan
  can be smaller.

Both constants are calibrated on built ELFs (tests/test_memory_calibration.py checks that the
prediction never falls below what the linker reports, and stays close to it); both are listed
in every report so a budget decision can be checked by hand.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.ir.graph import Graph
from harness.ir.planner import kernel_for, plan_arena, simple_bound
from harness.policy import Budget
from harness.units import format_size

CODE_FLASH_BYTES = 60 * 1024  # kernels, runtime, BSP, libc: ~57 kB measured with the M7 kernels (one loop per
# bits / window / output-bits case: depthwise ~23 kB, the streaming engine ~11 kB)
M7_WORK_BYTES = 24 * 1024  # = MPQ_M7_WORK_BYTES of firmware/kernels/src/mpq_m7.h
RUNTIME_RAM_BYTES = 7 * 1024  # protocol buffers and state: ~6.3 kB measured (the 4 kB UART ring that
# holds the LOAD window, a 1 kB frame buffer, per-layer ticks)
FIXED_RAM_BYTES = RUNTIME_RAM_BYTES + M7_WORK_BYTES  # RAM outside the arena, whatever the model


@dataclass(frozen=True)
class LayerMemory:
    """One row of the memory table."""

    name: str
    op: str  # the kernel that runs it: conv2d, pointwise, depthwise_conv2d, fully_connected, a pool, add
    kernel: tuple[int, int]
    stride: tuple[int, int]
    params: int  # weight values + biases
    macs: int
    w_bits: int | None
    a_bits: int  # bits of the output tensor (32: logits)
    weight_bytes: int  # packed
    param_bytes: int  # bias, mult, shift
    activation_bytes: int  # the output tensor

    @property
    def flash_bytes(self) -> int:
        return self.weight_bytes + self.param_bytes


@dataclass(frozen=True)
class MemoryReport:
    layers: tuple[LayerMemory, ...]
    input_bytes: int
    arena_bytes: int
    simple_bound_bytes: int
    input_survives: bool = True  # the arena never reuses the input's bytes (PERF may repeat on one LOAD)
    code_bytes: int = CODE_FLASH_BYTES
    work_buffer_bytes: int = M7_WORK_BYTES
    runtime_ram_bytes: int = RUNTIME_RAM_BYTES

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def param_bytes(self) -> int:
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flash_bytes(self) -> int:
        return self.weight_bytes + self.param_bytes + self.code_bytes

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes + self.work_buffer_bytes + self.runtime_ram_bytes

    def over_budget(self, budget: Budget) -> list[str]:
        """One message per exceeded budget (empty: the graph fits)."""
        problems = []
        for name, used, limit in (("flash", self.flash_bytes, budget.flash), ("RAM", self.ram_bytes, budget.ram)):
            if used > limit:
                problems.append(f"{name} needs {format_size(used)} ({used} B), over the {format_size(limit)} "
                                f"budget by {used - limit} B")
        return problems

    def to_dict(self) -> dict:
        return {
            "flash_bytes": self.flash_bytes, "weight_bytes": self.weight_bytes, "param_bytes": self.param_bytes,
            "code_bytes": self.code_bytes, "ram_bytes": self.ram_bytes, "arena_bytes": self.arena_bytes,
            "work_buffer_bytes": self.work_buffer_bytes, "runtime_ram_bytes": self.runtime_ram_bytes,
            "simple_bound_bytes": self.simple_bound_bytes, "input_bytes": self.input_bytes,
            "input_survives": self.input_survives, "macs": self.macs,
            "layers": [vars(layer) | {"flash_bytes": layer.flash_bytes} for layer in self.layers],
        }


def memory_report(graph: Graph) -> MemoryReport:
    """Bytes of every layer and of the whole graph."""
    rows = []
    for layer in graph.layers:
        out = graph.tensors[layer.output]
        weights = 0 if layer.weights is None else int(layer.weights.size) + out.channels
        rows.append(LayerMemory(layer.name, kernel_for(layer), layer.kernel, layer.stride, weights, graph.macs(layer),
                                layer.w_bits, out.bits, graph.weight_bytes(layer), graph.param_bytes(layer),
                                out.nbytes))
    plan = plan_arena(graph)
    return MemoryReport(tuple(rows), graph.tensors[graph.input].nbytes, plan.size, simple_bound(graph),
                        plan.input_survives)
