"""The memory model against bytes counted by hand for a three-layer graph."""
import numpy as np

from harness.ir.graph import Graph, Layer, Tensor
from harness.ir.memory import CODE_FLASH_BYTES, M7_WORK_BYTES, RUNTIME_RAM_BYTES, memory_report
from harness.ir.planner import plan_arena
from harness.policy import Budget


def small_graph() -> Graph:
    """input 4x4x3 @8 -> conv 3x3 (w 2 bits) -> 4x4x5 @4 -> avgpool -> 1x1x5 @8 -> fc (w 4 bits) -> 3 logits."""
    tensors = {
        "x": Tensor("x", (4, 4, 3), 8, 1.0, 3),
        "c": Tensor("c", (4, 4, 5), 4, 1.0),
        "p": Tensor("p", (1, 1, 5), 8, 1.0),
        "y": Tensor("y", (1, 1, 3), 32, 1.0),
    }

    def arrays(n):
        return np.zeros(n, np.int32), np.zeros(n, np.int32), np.ones(n, np.int8)

    layers = [
        Layer("conv", "conv2d", "x", "c", (3, 3), (1, 1), (1, 1, 1, 1), 2, np.zeros((5, 3, 3, 3), np.int32),
              *arrays(5)),
        Layer("pool", "global_avg_pool", "c", "p", (1, 1), (1, 1), (0, 0, 0, 0), None, None, *arrays(5)),
        Layer("fc", "fully_connected", "p", "y", (1, 1), (1, 1), (0, 0, 0, 0), 4, np.zeros((3, 5), np.int32),
              *arrays(3)),
    ]
    graph = Graph("small", tensors, layers, "x", "y")
    graph.validate()
    return graph


def test_per_layer_bytes_counted_by_hand():
    report = memory_report(small_graph())
    conv, pool, fc = report.layers
    # conv: 5*3*3 rows of 3 two-bit values -> 1 byte each; 9 parameter bytes per output channel
    assert (conv.weight_bytes, conv.param_bytes, conv.params, conv.macs) == (45, 45, 5 * 27 + 5, 16 * 5 * 27)
    # output 4x4 pixels of 5 four-bit values -> 3 bytes per pixel
    assert conv.activation_bytes == 48 and conv.a_bits == 4 and conv.op == "conv2d"
    assert (pool.weight_bytes, pool.param_bytes, pool.params, pool.macs, pool.activation_bytes) == (0, 45, 0, 80, 5)
    # fc: 3 rows of 5 four-bit values -> 3 bytes each; int32 logits
    assert (fc.weight_bytes, fc.param_bytes, fc.params, fc.macs, fc.activation_bytes) == (9, 27, 18, 15, 12)
    assert fc.a_bits == 32 and conv.flash_bytes == 90


def test_totals_counted_by_hand():
    graph = small_graph()
    report = memory_report(graph)
    assert report.weight_bytes == 54 and report.param_bytes == 117
    assert report.flash_bytes == 54 + 117 + CODE_FLASH_BYTES
    assert report.input_bytes == 48
    assert report.simple_bound_bytes == 48 + 48  # conv: input + output
    assert report.arena_bytes == plan_arena(graph).size >= report.simple_bound_bytes
    assert report.ram_bytes == report.arena_bytes + M7_WORK_BYTES + RUNTIME_RAM_BYTES
    assert report.macs == 2160 + 80 + 15  # pool: one addition per input value (4*4*5)


def test_budget_check_names_what_is_exceeded():
    report = memory_report(small_graph())
    assert report.over_budget(Budget(flash=report.flash_bytes, ram=report.ram_bytes)) == []
    (problem,) = report.over_budget(Budget(flash=report.flash_bytes - 1, ram=report.ram_bytes))
    assert problem.startswith("flash needs") and problem.endswith("by 1 B")
    (problem,) = report.over_budget(Budget(flash=report.flash_bytes, ram=report.ram_bytes - 10))
    assert problem.startswith("RAM needs") and problem.endswith("by 10 B")
    assert len(report.over_budget(Budget(flash=1, ram=1))) == 2
