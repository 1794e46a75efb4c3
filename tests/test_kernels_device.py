"""Every kernel at every bit combination, through codegen -> build -> the --board target.

One firmware image per op holds all its single-layer test networks (27 bit combinations,
int32-logit variants, a zero-point input), so the suite boots the target a handful of times.
"""
import numpy as np
import pytest

from harness import reference
from harness.device import pack_tensor, unpack_tensor
from harness.random_graphs import BIT_COMBOS, KERNEL_OPS, random_input, random_layer_graph

pytestmark = pytest.mark.device
SEED = 1234
IN_W_BITS = sorted({(i, w) for i, w, _ in BIT_COMBOS})


def _graphs(op: str) -> dict:
    """Test networks of one op, keyed by their test id."""
    if op == "global_avg_pool":
        cases = {f"i{i}o{o}": random_layer_graph(op, i, 8, o, seed=SEED + n)
                 for n, (i, o) in enumerate((i, o) for i in (2, 4, 8) for o in (2, 4, 8))}
        return cases
    cases = {f"i{i}w{w}o{o}": random_layer_graph(op, i, w, o, seed=SEED + n) for n, (i, w, o) in enumerate(BIT_COMBOS)}
    cases |= {f"i{i}w{w}o32": random_layer_graph(op, i, w, 32, seed=SEED + 100 + n) for n, (i, w) in enumerate(IN_W_BITS)}
    return cases


@pytest.fixture(scope="module", params=KERNEL_OPS + ("global_avg_pool",))
def op_firmware(request, device_session):
    """(test networks, live session) for one op."""
    cases = _graphs(request.param)
    with device_session(list(cases.values())) as device:
        yield request.param, cases, device


def test_every_bit_combination_is_bit_exact(op_firmware):
    op, cases, device = op_firmware
    mismatches = []
    for index, (case, graph) in enumerate(cases.items()):
        for seed in (0, 1):
            x = random_input(graph, seed)
            device.load(index, pack_tensor(x, graph.tensors[graph.input]))
            run = device.run(index)
            assert run.ok, f"{op} {case}: firmware status {run.status}"
            got = unpack_tensor(device.read_output(index), graph.tensors[graph.output])
            expected = reference.predict(graph, x)
            if not np.array_equal(got, expected):
                mismatches.append(f"{case} (input seed {seed}): {int((got != expected).sum())} values differ")
    assert len(cases) >= 9
    assert not mismatches, f"{op}: " + "; ".join(mismatches)
