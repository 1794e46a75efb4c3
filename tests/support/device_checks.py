"""Shared check of the device kernel tests: run every test network on the device, compare."""
import numpy as np

from harness.ir import reference
from harness.link.device import pack_tensor, unpack_tensor
from harness.ir.random_graphs import random_input


def device_mismatches(device, cases: dict, seeds=(0, 1), inputs=random_input) -> list[str]:
    """Run each case (model index = position in `cases`) on the inputs(graph, seed) of each seed
    (default: two random inputs); describe every output that differs from the host reference. A
    non-zero firmware status fails at once."""
    mismatches = []
    for index, (case, graph) in enumerate(cases.items()):
        for seed in seeds:
            x = inputs(graph, seed)
            device.load(index, pack_tensor(x, graph.tensors[graph.input]))
            run = device.run(index)
            assert run.ok, f"{case}: firmware status {run.status}"
            got = unpack_tensor(device.read_output(index), graph.tensors[graph.output])
            expected = reference.predict(graph, x)
            if not np.array_equal(got, expected):
                mismatches.append(f"{case} (input seed {seed}): {int((got != expected).sum())} values differ")
    return mismatches
