"""The weight-streaming engine (fully connected, wide pointwise: mpq_matvec_m7.c) and the
residual add on the --board target, at every bit combination, through codegen -> build ->
the device: partial last weight words, a lone last output channel and pixel, outputs over
several chunks of sums (MPQ_M7_MATVEC_CHUNK) ending in a partial group or in a chunk of one
channel, a layer of one output channel, short rows, an input longer than one add chunk; few
rows (input read raw) at several input zero-points. Two firmware images (the shipped build: the
wrappers pick the _m7 kernels)."""
import pytest
from support.device_checks import device_mismatches
from support.streamed_shapes import FEW_ROW_SHAPES, SHORT_ROW_SHAPES, with_shift_32

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
SMALL_SHAPES = (  # at the 27 combinations only: one image holds at most 255 models
    *SHORT_ROW_SHAPES,
    BenchShape("pw_one", "pointwise 1x3x20 -> 1", "conv2d", 1, 3, 20, 1, 1, 1, 0, 0.0),
    BenchShape("fc_chunk_of_one", "fully connected 20 -> 65", "fully_connected", 1, 1, 20, 65, 1, 1, 0, 0.0),
)
COMBOS = BIT_COMBOS + ((8, 4, 32), (2, 8, 32))


@pytest.fixture(scope="module")
def streamed_firmware(device_session):
    cases = {f"{s.name}_i{i}w{w}o{o}": shape_graph(s, (i, w, o), seed=n)
             for shapes, combos in ((SHAPES, COMBOS), (SMALL_SHAPES, BIT_COMBOS))
             for s in shapes for n, (i, w, o) in enumerate(combos)}
    with device_session(list(cases.values())) as device:
        yield cases, device


def test_streamed_weights_are_bit_exact_on_the_device(streamed_firmware):
    cases, device = streamed_firmware
    mismatches = device_mismatches(device, cases)
    assert len(cases) == len(SHAPES) * len(COMBOS) + len(SMALL_SHAPES) * len(BIT_COMBOS)
    assert not mismatches, "; ".join(mismatches)


def test_short_row_shapes_take_both_paths():
    """The data above reaches the short-row path and its fallback: at 8/8/8 every shift of the
    short-row shapes is above 32, at 2/8/8 one is not."""
    seeds = {combo: n for n, combo in enumerate(BIT_COMBOS)}  # the fixture's seeds
    for shape in SHORT_ROW_SHAPES:
        assert min(shape_graph(shape, (8, 8, 8), seed=seeds[(8, 8, 8)]).layers[0].shift) > 32
        assert min(shape_graph(shape, (2, 8, 8), seed=seeds[(2, 8, 8)]).layers[0].shift) <= 32


@pytest.fixture(scope="module")
def few_rows_firmware(device_session):
    """The few-row shapes at 8/8/8 and 8/8/32 (the written-out raw-input loops) at input
    zero-points 0, 77 and 255, the 8-bit outputs also with a shift of 32 in their last channel
    (the general path)."""
    cases = {}
    for shape in FEW_ROW_SHAPES:
        for zero_point in (0, 77, 255):
            name = f"{shape.name}_z{zero_point}"
            cases[name] = shape_graph(shape, (8, 8, 8), seed=zero_point, zero_point=zero_point)
            cases[f"{name}_shift32"] = with_shift_32(shape_graph(shape, (8, 8, 8), seed=zero_point,
                                                                 zero_point=zero_point), shape.cout - 1)
            cases[f"{name}_logits"] = shape_graph(shape, (8, 8, 32), seed=zero_point, zero_point=zero_point)
    with device_session(list(cases.values())) as device:
        yield cases, device


def test_few_rows_are_bit_exact_on_the_device(few_rows_firmware):
    cases, device = few_rows_firmware
    assert not (mismatches := device_mismatches(device, cases)), "; ".join(mismatches)
