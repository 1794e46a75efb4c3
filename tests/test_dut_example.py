# This file is the README's "Write your own board test" example, word for word (a test checks it).
import numpy as np
import pytest


@pytest.mark.device
def test_my_model_on_the_board(dut):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2 ** dut.input.bits, size=dut.input.shape)
    output, ticks, layer_ticks = dut.infer(x)  # fails if the output differs from the host reference
    assert output.shape == tuple(dut.output.shape) and ticks > 0
    assert len(layer_ticks) == len(dut.graph.layers)
    perf = dut.perf(3)                         # 3 timed runs of x, no I/O in between
    assert perf.min_ticks <= perf.max_ticks
    print(f"{dut.info.board}: {ticks} ticks ({dut.info.tick_meaning})")
