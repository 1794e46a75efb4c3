"""The residual networks' ops at every bit combination through codegen -> build -> the --board
target: avg_pool, max_pool, add (two inputs of different scales and zero-points), the 5x5 /
stride-2 depthwise layers, rectangular windows (kh x kw, (sh, sw), four paddings) and fully
connected layers over a flattened H x W x C input. One firmware image per op holds all its
test networks."""
import pytest
from support.device_checks import device_mismatches

from harness.ir.packing import BITS
from harness.ir.random_graphs import BIT_COMBOS, random_add_graph, random_layer_graph

pytestmark = pytest.mark.device
SEED = 4321


def _graphs(op: str) -> dict:
    if op in ("avg_pool", "max_pool"):
        return {f"i{i}o{o}": random_layer_graph(op, i, None, o, seed=SEED + n, asymmetric=True)
                for n, (i, o) in enumerate((i, o) for i in BITS for o in BITS)}
    if op == "rectangular_windows":
        return {f"{kind}_i{i}w{w}o{o}": random_layer_graph(kind, i, w, o, seed=SEED + n, asymmetric=True)
                for kind in ("conv2d", "depthwise_conv2d") for n, (i, w, o) in enumerate(BIT_COMBOS)}
    if op == "flattened_fc":
        return {f"i{i}w{w}o{o}": random_layer_graph("fully_connected", i, w, o, seed=SEED + n, spatial_fc=True)
                for n, (i, w, o) in enumerate(BIT_COMBOS)}
    if op == "add":
        return {f"a{a}b{b}o{o}": random_add_graph(a, b, o, seed=SEED + n) for n, (a, b, o) in enumerate(BIT_COMBOS)}
    kernel, stride = {"depthwise_5x5": (5, 1), "depthwise_5x5_stride2": (5, 2), "depthwise_3x3_stride2": (3, 2)}[op]
    return {f"i{i}w{w}o{o}": random_layer_graph("depthwise_conv2d", i, w, o, seed=SEED + n, kernel=kernel, stride=stride)
            for n, (i, w, o) in enumerate(BIT_COMBOS)}


@pytest.fixture(scope="module", params=["avg_pool", "max_pool", "add", "depthwise_5x5", "depthwise_5x5_stride2",
                                        "depthwise_3x3_stride2", "rectangular_windows", "flattened_fc"])
def op_firmware(request, device_session):
    cases = _graphs(request.param)
    with device_session(list(cases.values())) as device:
        yield request.param, cases, device


def test_every_bit_combination_is_bit_exact(op_firmware):
    op, cases, device = op_firmware
    mismatches = device_mismatches(device, cases)
    assert len(cases) >= 9
    assert not mismatches, f"{op}: " + "; ".join(mismatches)
