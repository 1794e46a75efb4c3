"""A fault campaign: measure a policy's images through the seeded fault link and compare every
accepted result with a fault-free run of the same firmware.

For each fault rate, every image is measured once through `fault://` (harness/link/protocol_fault.py).
An image counts as measured when measure_image returned; it is a wrong result accepted when its
output differs from the fault-free run's (which is itself checked bit-exact against the host
reference), and its timing is equal when the total and every per-layer tick count equal the
fault-free run's. An image that takes longer than HANG_S is a hang (the retry budgets should make
that impossible). tools/fault_run.py runs a campaign and writes the results file
docs/reliability.md quotes.
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from harness.boards import Board
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.link.device import open_device
from harness.measure.run import ImageResult, build_policy_firmware, measure_image, start_session
from harness.policy import Policy

HANG_S = 120.0


class _Hang(Exception):
    pass


@contextmanager
def _watchdog(seconds: float):
    """Raise _Hang in the main thread if the block runs longer than `seconds`."""
    def expire(signum, frame):
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _measure_all(policy: Policy, graph: Graph, board: Board, elf, inputs: np.ndarray, labels: np.ndarray,
                 link_faults: str | None, progress: Callable[[str], None]) -> dict:
    results: list[ImageResult | None] = []
    failures: list[str] = []
    hangs = 0
    started = time.monotonic()
    with open_device(board, elf, expected_hash=graph.hash(), link_faults=link_faults) as device:
        session = start_session(device, graph, board, inputs[0])
        for index in range(len(inputs)):
            try:
                with _watchdog(HANG_S):
                    results.append(measure_image(session, index, inputs[index], labels[index]))
            except _Hang:
                hangs += 1
                results.append(None)
                failures.append(f"image {index}: no result within {HANG_S:g} s")
            except HarnessError as error:
                if device.health_check is not None and device.health_check() is not None:
                    raise
                results.append(None)
                failures.append(str(error))
            if index % 100 == 99:
                progress(f"{link_faults or 'fault-free'}: {index + 1}/{len(inputs)} images")
        stats = dict(device.stats)
        injected = dict(getattr(device.port, "counts", {}))
    return {"results": results, "failures": failures, "hangs": hangs, "stats": stats, "injected": injected,
            "remeasured": session.remeasured, "seconds": time.monotonic() - started}


def fault_campaign(policy: Policy, graph: Graph, board: Board, inputs: np.ndarray, labels: np.ndarray,
                   rates: list[float], seed: int, progress: Callable[[str], None] = lambda message: None) -> dict:
    """The results document: the fault-free reference run, then one entry per fault rate."""
    build = build_policy_firmware(graph, policy, board)
    clean = _measure_all(policy, graph, board, build.elf_path, inputs, labels, None, progress)
    reference = clean["results"]
    if any(result is None or not result.bit_exact for result in reference):
        raise HarnessError("the fault-free run itself failed or was not bit-exact: "
                           + "; ".join(clean["failures"][:3]))
    runs = []
    for rate in rates:
        faulty = _measure_all(policy, graph, board, build.elf_path, inputs, labels, f"rate={rate}&seed={seed}",
                              progress)
        accepted = [(got, want) for got, want in zip(faulty["results"], reference) if got is not None]
        runs.append({
            "rate": rate,
            "images": len(inputs),
            "measured": len(accepted),
            "measured_fraction": len(accepted) / len(inputs),
            "wrong_results_accepted": sum(got.output_hash != want.output_hash or not got.bit_exact
                                          for got, want in accepted),
            "timing_equal": sum(got.ticks == want.ticks and got.layer_ticks == want.layer_ticks
                                for got, want in accepted),
            "hangs": faulty["hangs"],
            "remeasured": faulty["remeasured"],
            "frames": faulty["stats"]["tries"] + faulty["stats"]["frames_in"],
            "link": faulty["stats"],
            "faults_injected": faulty["injected"],
            "seconds": round(faulty["seconds"], 1),
            "failures": faulty["failures"][:10],
        })
    return {"policy": policy.name, "policy_hash": policy.hash, "board": board.name, "seed": seed,
            "images": len(inputs), "fault_free": {"frames": clean["stats"]["tries"] + clean["stats"]["frames_in"],
                                                  "seconds": round(clean["seconds"], 1)},
            "runs": runs}
