"""The weight-streaming engine (fully connected, wide pointwise: mpq_matvec_m7.c) and the
residual add on the --board target, at every bit combination, through codegen -> build ->
the device: partial last weight words, a lone last output channel and pixel, outputs over
several chunks of sums (MPQ_M7_MATVEC_CHUNK) ending in a partial group, an input longer than one
add chunk. One firmware image (the shipped build: the wrappers pick the _m7 kernels)."""
import pytest
from support.device_checks import device_mismatches

from harness.ir.random_graphs import BIT_COMBOS
from harness.measure.bench import BenchShape, shape_graph

pytestmark = pytest.mark.device
SHAPES = (
    BenchShape("fc_odd", "fully connected 645 -> 37", "fully_connected", 1, 1, 645, 37, 1, 1, 0, 0.0),
    BenchShape("fc_flat", "fully connected 2x3x12 -> 9", "fully_connected", 2, 3, 12, 9, 1, 1, 0, 0.0),
    BenchShape("pw_wide", "pointwise 1x3x1030 -> 9", "conv2d", 1, 3, 1030, 9, 1, 1, 0, 0.0),
    BenchShape("fc_chunks", "fully connected 72 -> 133", "fully_connected", 1, 1, 72, 133, 1, 1, 0, 0.0),
    BenchShape("pw_chunks", "pointwise 1x3x40 -> 131", "conv2d", 1, 3, 40, 131, 1, 1, 0, 0.0),
)


@pytest.fixture(scope="module")
def streamed_firmware(device_session):
    cases = {f"{s.name}_i{i}w{w}o{o}": shape_graph(s, (i, w, o), seed=n)
             for s in SHAPES for n, (i, w, o) in enumerate(BIT_COMBOS + ((8, 4, 32), (2, 8, 32)))}
    with device_session(list(cases.values())) as device:
        yield cases, device


def test_streamed_weights_are_bit_exact_on_the_device(streamed_firmware):
    cases, device = streamed_firmware
    mismatches = device_mismatches(device, cases)
    assert len(cases) == len(SHAPES) * 29
    assert not mismatches, "; ".join(mismatches)
